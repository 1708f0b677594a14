-- The projector's own bookkeeping around each batch: its lock, the checkpoint, skipped
-- events and the notification readers wait on.

-- name: projector-lock
-- One projector applies a batch at a time (transaction advisory lock).
SELECT pg_advisory_xact_lock($1);

-- name: checkpoint-for-update
SELECT last_seq FROM projection_checkpoints WHERE projection = $1 FOR UPDATE;

-- name: insert-checkpoint
INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, 0);

-- name: save-checkpoint
UPDATE projection_checkpoints SET last_seq = $2 WHERE projection = $1;

-- name: insert-skipped
-- An event that could not be applied (unknown type, undecodable), kept for inspection.
INSERT INTO projection_skipped (seq, event_type, error) VALUES ($1, $2, $3)
ON CONFLICT (seq) DO NOTHING;

-- name: notify-projected
-- Wakes the readers waiting for the read models to reach a sequence.
SELECT pg_notify($1, $2);
