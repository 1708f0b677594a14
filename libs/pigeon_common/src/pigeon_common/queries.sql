-- Named queries of pigeon_common's shared helpers (users, sending, the read-model
-- checkpoint, the migration runner, liveness). Every service prepares them at start.

-- name: insert-user
-- A new user; no row when the email is taken.
INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
ON CONFLICT (email) DO NOTHING
RETURNING id, token_epoch, password_hash;

-- name: user-count
-- How many users there are (`pigeon up` creates the first administrator on none).
SELECT count(*) FROM users;

-- name: user-token-parts
-- What a user's token is derived from, by email in any letter case.
SELECT id, token_epoch, password_hash FROM users WHERE lower(email) = lower($1);

-- name: campaign-recipient-ids
-- Every recipient of a campaign, in the order a first run sends them.
SELECT id FROM recipients WHERE campaign_id = $1 ORDER BY lower(email), id;

-- name: recipient-ids-without-outcome
-- The recipients of a campaign that have no message yet (what a resume sends).
SELECT r.id
FROM recipients r
LEFT JOIN messages m ON m.campaign_id = r.campaign_id AND m.recipient_id = r.id
WHERE r.campaign_id = $1 AND m.recipient_id IS NULL
ORDER BY lower(r.email), r.id;

-- name: campaign-spec
-- A campaign with its mailbox's sender identity, as the renderer takes them.
SELECT c.id, c.name, c.subject, c.template_markdown, m.from_name, m.from_address
FROM campaigns c LEFT JOIN mailboxes m ON m.id = c.mailbox_id
WHERE c.id = $1;

-- name: read-checkpoint
-- The last stream sequence a projection has applied.
SELECT last_seq FROM projection_checkpoints WHERE projection = $1;

-- name: ping
-- Liveness of a PostgreSQL connection (/readyz).
SELECT 1;

-- name: migration-lock
-- One migration runner at a time (session advisory lock).
SELECT pg_advisory_lock($1);

-- name: migration-unlock
SELECT pg_advisory_unlock($1);

-- name: create-schema-migrations
-- The migration runner's own table: which migration files are applied.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied-migrations
SELECT version FROM schema_migrations;

-- name: record-migration
INSERT INTO schema_migrations (version) VALUES ($1);
