-- The projector's own bookkeeping around each batch: its lock, the checkpoint, skipped
-- events, the notification readers wait on, and a rebuild's reset.

-- name: projector-lock
-- One projector applies a batch at a time (transaction advisory lock).
SELECT pg_advisory_xact_lock($1);

-- name: checkpoint-for-update
SELECT last_seq FROM projection_checkpoints WHERE projection = $1 FOR UPDATE;

-- name: insert-checkpoint
INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, 0);

-- name: save-checkpoint
UPDATE projection_checkpoints SET last_seq = $2 WHERE projection = $1;

-- name: reset-checkpoint
-- A rebuild starts again from sequence 0.
INSERT INTO projection_checkpoints (projection, last_seq) VALUES ($1, 0)
ON CONFLICT (projection) DO UPDATE SET last_seq = 0;

-- name: insert-skipped
-- An event that could not be applied (unknown type, undecodable), kept for inspection.
INSERT INTO projection_skipped (seq, event_type, error) VALUES ($1, $2, $3)
ON CONFLICT (seq) DO NOTHING;

-- name: notify-projected
-- Wakes the readers waiting for the read models to reach a sequence.
SELECT pg_notify($1, $2);

-- name: create-recipients-incoming
-- The session's COPY target for large recipient imports (emptied at each commit).
CREATE TEMP TABLE IF NOT EXISTS recipients_incoming (
    campaign_id uuid, id uuid, email text, name text, attributes text,
    created_at timestamptz, updated_at timestamptz
) ON COMMIT DELETE ROWS;

-- name: empty-recipients-incoming
TRUNCATE recipients_incoming;

-- name: truncate-read-models
-- What a rebuild empties: every table in projection.READ_MODEL_TABLES (a test holds
-- the two lists together).
TRUNCATE mailboxes, mailbox_shares, campaigns, campaign_shares, recipients, campaign_links,
    messages, suppressions, open_events, link_clicks, unsubscribes, delivery_events,
    inbound_skipped, projection_skipped, message_states, campaign_counters;
