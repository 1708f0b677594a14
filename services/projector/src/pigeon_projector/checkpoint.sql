-- The projector's own bookkeeping around each batch: its lock, the checkpoint, skipped
-- events and the notification readers wait on.

-- name: projector-lock
-- One projector applies a batch at a time (transaction advisory lock).
SELECT pg_advisory_xact_lock($1);

-- name: lock-and-checkpoint
-- The lock and the checkpoint in one round trip. The scan may read the row before the
-- lock is granted, but FOR UPDATE rechecks a row another batch changed meanwhile and
-- returns its committed version. No row (a new projection): no lock either; the caller
-- then takes both one by one. The commit does not wait for the WAL flush: everything here
-- is derived from the stream, and a crash that loses the last batches loses their
-- checkpoint with them, so they are applied again (docs/operations.md).
SELECT c.last_seq
FROM (SELECT pg_advisory_xact_lock($1), set_config('synchronous_commit', 'off', true)) AS l,
     projection_checkpoints AS c
WHERE c.projection = $2
FOR UPDATE OF c;

-- name: checkpoint-for-update
SELECT last_seq FROM projection_checkpoints WHERE projection = $1 FOR UPDATE;

-- name: insert-checkpoint
INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, 0);

-- name: save-checkpoint
UPDATE projection_checkpoints SET last_seq = $2 WHERE projection = $1;

-- name: save-checkpoint-and-notify
-- save-checkpoint and notify-projected in one round trip.
WITH saved AS (
    UPDATE projection_checkpoints SET last_seq = $2 WHERE projection = $1 RETURNING last_seq
)
SELECT pg_notify($3, saved.last_seq::text) FROM saved;

-- name: insert-skipped
-- An event that could not be applied (unknown type, undecodable), kept for inspection.
INSERT INTO projection_skipped (seq, event_type, error) VALUES ($1, $2, $3)
ON CONFLICT (seq) DO NOTHING;

-- name: notify-projected
-- Wakes the readers waiting for the read models to reach a sequence.
SELECT pg_notify($1, $2);
