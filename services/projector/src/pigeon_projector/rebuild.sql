-- The catalog reads of a rebuild beside the live read models (pigeon_projector.rebuild).
-- $1: the read-model table names (projection.READ_MODEL_TABLES). Definitions come back
-- as text for the caller's search_path (public), so names in them are unqualified.

-- name: table-constraints
-- The primary key, unique and exclusion constraints of one table ($1), with their names.
SELECT c.conname AS name, pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c
WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u', 'x')
ORDER BY c.oid;

-- name: table-indexes
-- The indexes of one table ($1) that back no constraint.
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = $1::text::regclass
    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY i.indexrelid;

-- name: dependent-views
-- The views of `public` that read a read-model table, directly or through another view,
-- in creation order.
WITH RECURSIVE deps(oid) AS (
    SELECT c.oid FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1::text[])
        AND c.relkind = 'r'
    UNION
    SELECT v.oid FROM deps d
    JOIN pg_depend dep ON dep.refobjid = d.oid AND dep.refclassid = 'pg_class'::regclass
        AND dep.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite r ON r.oid = dep.objid
    JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'v' AND v.oid <> d.oid
)
SELECT c.relname AS name, pg_get_viewdef(c.oid) AS definition
FROM deps JOIN pg_class c ON c.oid = deps.oid
WHERE c.relkind = 'v'
ORDER BY c.oid;

-- name: dependent-functions
-- The functions of `public` whose arguments or result are rows of a read-model table or
-- view ($1: those names); their bodies name tables late, so only these need a copy.
SELECT p.oid::regprocedure::text AS signature, pg_get_functiondef(p.oid) AS definition
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
    AND EXISTS (
        SELECT 1 FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1::text[])
            AND (c.reltype = p.prorettype OR c.reltype = ANY(p.proargtypes::oid[])
                OR c.reltype = ANY(coalesce(p.proallargtypes, '{}'::oid[]))))
ORDER BY p.oid;

-- name: shadow-functions
-- The functions now in the shadow schema ($1), by signature (schema-qualified).
SELECT p.oid::regprocedure::text AS signature
FROM pg_proc p
WHERE p.pronamespace = $1::text::regnamespace
ORDER BY p.oid;

-- name: forget-checkpoint
-- The rebuild's own position, gone with its shadow tables.
DELETE FROM projection_checkpoints WHERE projection = $1;

-- name: set-checkpoint
-- After the swap, the live projection continues from where the rebuild ended.
INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, $2)
ON CONFLICT (projection) DO UPDATE SET last_seq = excluded.last_seq;
