-- Writes the projector makes; each one is idempotent per event.

-- name: upsert-mailbox
-- Create or replace a mailbox row from its whole configuration.
INSERT INTO mailboxes (id, name, from_name, from_address,
    smtp_host, smtp_port, smtp_security, smtp_username,
    imap_host, imap_port, imap_security, imap_username,
    sent_folder, bounce_folder, rate_per_second, rate_per_hour, rate_per_day,
    created_at, updated_at, last_seq, append_to_sent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $19, $20)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, from_name = excluded.from_name, from_address = excluded.from_address,
    smtp_host = excluded.smtp_host, smtp_port = excluded.smtp_port,
    smtp_security = excluded.smtp_security, smtp_username = excluded.smtp_username,
    imap_host = excluded.imap_host, imap_port = excluded.imap_port,
    imap_security = excluded.imap_security, imap_username = excluded.imap_username,
    sent_folder = excluded.sent_folder, bounce_folder = excluded.bounce_folder,
    rate_per_second = excluded.rate_per_second, rate_per_hour = excluded.rate_per_hour,
    rate_per_day = excluded.rate_per_day, updated_at = excluded.updated_at,
    last_seq = excluded.last_seq, append_to_sent = excluded.append_to_sent;

-- name: delete-mailbox
DELETE FROM mailboxes WHERE id = $1;

-- name: set-mailbox-owner
-- The creator (mailbox.created) or a new owner (mailbox.owner_changed).
UPDATE mailboxes SET owner_id = $2 WHERE id = $1;

-- name: delete-mailbox-shares
DELETE FROM mailbox_shares WHERE mailbox_id = $1;

-- name: insert-mailbox-share
INSERT INTO mailbox_shares (mailbox_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING;

-- name: delete-mailbox-share
DELETE FROM mailbox_shares WHERE mailbox_id = $1 AND user_id = $2;

-- name: set-campaign-owner
UPDATE campaigns SET owner_id = $2 WHERE id = $1;

-- name: delete-campaign-shares
DELETE FROM campaign_shares WHERE campaign_id = $1;

-- name: insert-campaign-share
INSERT INTO campaign_shares (campaign_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING;

-- name: delete-campaign-share
DELETE FROM campaign_shares WHERE campaign_id = $1 AND user_id = $2;

-- name: insert-campaign
INSERT INTO campaigns (id, name, subject, template_markdown, mailbox_id, status,
    created_at, updated_at, last_seq, owner_id, cloned_from)
VALUES ($1, $2, $3, $4, $5, 'draft', $6, $6, $7, $8, $9)
ON CONFLICT (id) DO NOTHING;

-- name: update-campaign
UPDATE campaigns
SET name = $2, subject = $3, template_markdown = $4, mailbox_id = $5,
    updated_at = $6, last_seq = $7
WHERE id = $1;

-- name: delete-campaign-recipients
DELETE FROM recipients WHERE campaign_id = $1;

-- name: delete-campaign
DELETE FROM campaigns WHERE id = $1;

-- name: upsert-recipient
-- Merge: a non-empty name replaces the old one, attributes merge key by key.
INSERT INTO recipients (campaign_id, id, email, name, attributes, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)
ON CONFLICT (campaign_id, id) DO UPDATE SET
    email = excluded.email,
    name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE recipients.name END,
    attributes = recipients.attributes || excluded.attributes,
    updated_at = excluded.updated_at;

-- name: upsert-recipients
-- The set-based form of upsert-recipient: one row per (campaign, recipient), already folded
-- by the same rule (projection.fold_recipient_writes); attributes as JSON text.
--
-- It also keeps message_states for a campaign that has no message, open, click, delivery
-- event or unsubscribe yet (a "quiet" one, as every campaign is while its list is being
-- imported): there compute_message_states gives each recipient the default state (queued,
-- nothing counted), so the state row is written here from the upserted recipient, and the
-- campaign's `recipients` and `queued` counters move by the state rows inserted. That
-- spares the import's rows the recomputation (a probe of each activity table per row),
-- the bulk of an import's cost in PostgreSQL. The pairs of the other campaigns come back
-- and go to message_states.refresh with the batch's other touched pairs. Either way the
-- rows are what a refresh would give at this point of the transaction, and a later write
-- of the batch to an activity table touches its pair, which the refresh recomputes.
WITH t AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
        $6::timestamptz[], $7::timestamptz[])
        AS t(campaign_id, id, email, name, attributes, created_at, updated_at)
), upserted AS (
    INSERT INTO recipients (campaign_id, id, email, name, attributes, created_at, updated_at)
    SELECT t.campaign_id, t.id, t.email, t.name, t.attributes::jsonb, t.created_at,
        t.updated_at
    FROM t
    ON CONFLICT (campaign_id, id) DO UPDATE SET
        email = excluded.email,
        name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE recipients.name END,
        attributes = recipients.attributes || excluded.attributes,
        updated_at = excluded.updated_at
    RETURNING campaign_id, id, email, name
), quiet AS (
    SELECT c.campaign_id FROM (SELECT DISTINCT campaign_id FROM t) c
    WHERE NOT EXISTS (SELECT 1 FROM messages x WHERE x.campaign_id = c.campaign_id)
        AND NOT EXISTS (SELECT 1 FROM open_events x WHERE x.campaign_id = c.campaign_id)
        AND NOT EXISTS (SELECT 1 FROM link_clicks x WHERE x.campaign_id = c.campaign_id)
        AND NOT EXISTS (SELECT 1 FROM delivery_events x WHERE x.campaign_id = c.campaign_id)
        AND NOT EXISTS (SELECT 1 FROM unsubscribes x WHERE x.campaign_id = c.campaign_id)
), states AS (
    INSERT INTO message_states (campaign_id, recipient_id, email, name, status, smtp_reply,
        hard_bounce, appended, reason, opens, human_opens, clicks, human_clicks, deferred,
        replied, auto_replied, unsubscribed, states)
    SELECT u.campaign_id, u.id, u.email, u.name, 'queued', '', false, false, '', 0, 0, 0, 0,
        false, false, false, false, '{}'
    FROM upserted u JOIN quiet q ON q.campaign_id = u.campaign_id
    ON CONFLICT (campaign_id, recipient_id) DO UPDATE SET
        email = excluded.email, name = excluded.name
    WHERE (message_states.email, message_states.name)
        IS DISTINCT FROM (excluded.email, excluded.name)
    -- xmax is 0 in a row this statement inserted, not in one it updated.
    RETURNING campaign_id, xmax = 0 AS inserted
), counted AS (
    INSERT INTO campaign_counters (campaign_id, counter, n)
    SELECT s.campaign_id, k.counter, count(*)
    FROM states s, (VALUES ('recipients'), ('queued')) AS k(counter)
    WHERE s.inserted GROUP BY s.campaign_id, k.counter
    ON CONFLICT (campaign_id, counter) DO UPDATE SET n = campaign_counters.n + excluded.n
)
SELECT u.campaign_id, u.id FROM upserted u
WHERE NOT EXISTS (SELECT 1 FROM quiet q WHERE q.campaign_id = u.campaign_id);

-- name: delete-recipient
DELETE FROM recipients WHERE campaign_id = $1 AND id = $2;

-- name: delete-recipients
-- The set-based form of delete-recipient: $1, $2 are the campaign and recipient ids, pairwise.
DELETE FROM recipients r
USING unnest($1::uuid[], $2::uuid[]) AS d(campaign_id, id)
WHERE r.campaign_id = d.campaign_id AND r.id = d.id;

-- name: schedule-campaign
UPDATE campaigns SET status = 'scheduled', send_at = $2, batch_size = $3,
    sleep_between_batches_sec = $4, updated_at = $5, last_seq = $6
WHERE id = $1 AND status IN ('draft', 'scheduled');

-- name: unschedule-campaign
UPDATE campaigns SET status = 'draft', send_at = NULL, updated_at = $2, last_seq = $3
WHERE id = $1 AND status = 'scheduled';

-- name: start-campaign
UPDATE campaigns SET status = 'sending', run_id = $2, batch_size = $3,
    sleep_between_batches_sec = $4, started_at = coalesce(started_at, $5), status_reason = '',
    updated_at = $5, last_seq = $6, run_chunks = $7
WHERE id = $1 AND status IN ('draft', 'scheduled');

-- name: insert-campaign-link
INSERT INTO campaign_links (campaign_id, link_index, url) VALUES ($1, $2, $3)
ON CONFLICT (campaign_id, link_index) DO NOTHING;

-- name: set-campaign-status
-- Pause, resume, cancel, complete, fail. A finished campaign keeps its final status.
UPDATE campaigns SET status = $2, status_reason = $3, updated_at = $4, last_seq = $5,
    run_id = coalesce($6, run_id), run_chunks = coalesce($7, run_chunks),
    finished_at = CASE WHEN $2 IN ('done', 'cancelled', 'failed') THEN $4 ELSE finished_at END
WHERE id = $1 AND status NOT IN ('done', 'cancelled', 'failed');

-- name: record-outcome
-- The outcome of higher rank wins: sent > failed > suppressed > unknown.
INSERT INTO messages (campaign_id, recipient_id, email, status, rank, message_id, smtp_code,
    smtp_reply, hard_bounce, appended, reason, at, last_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (campaign_id, recipient_id) DO UPDATE SET
    status = excluded.status, rank = excluded.rank, message_id = excluded.message_id,
    smtp_code = excluded.smtp_code, smtp_reply = excluded.smtp_reply,
    hard_bounce = excluded.hard_bounce, appended = excluded.appended,
    reason = excluded.reason, at = excluded.at, last_seq = excluded.last_seq
WHERE messages.rank < excluded.rank;

-- name: add-suppression
INSERT INTO suppressions (email_key, mailbox_key, email, reason, detail, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (email_key, mailbox_key, reason) DO NOTHING;

-- name: remove-suppression
-- Every reason, or only reason $3.
DELETE FROM suppressions WHERE email_key = $1 AND mailbox_key = $2
    AND ($3::text IS NULL OR reason = $3);

-- name: record-open
INSERT INTO open_events (id, campaign_id, recipient_id, at, machine, machine_reason,
    user_agent)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (id) DO NOTHING;

-- name: record-click
INSERT INTO link_clicks (id, campaign_id, recipient_id, link_index, url, at, machine,
    machine_reason, user_agent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO NOTHING;

-- name: record-unsubscribe
INSERT INTO unsubscribes (campaign_id, recipient_id, email, method, unsubscribed_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (campaign_id, recipient_id) DO UPDATE SET
    method = excluded.method, unsubscribed_at = excluded.unsubscribed_at,
    resubscribed_at = NULL
WHERE unsubscribes.resubscribed_at IS NOT NULL;

-- name: record-resubscribe
UPDATE unsubscribes SET resubscribed_at = $3
WHERE campaign_id = $1 AND recipient_id = $2 AND resubscribed_at IS NULL;

-- name: remove-unsubscribe-suppression
DELETE FROM suppressions WHERE email_key = $1 AND mailbox_key = $2 AND reason = 'unsubscribed';

-- name: record-delivery-event
INSERT INTO delivery_events (id, campaign_id, recipient_id, email, mailbox_id, kind, hard,
    status, action, diagnostic, from_address, subject, source, at, repeatable, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO NOTHING;

-- name: record-inbound-skipped
INSERT INTO inbound_skipped (source, mailbox_id, folder, uidvalidity, uid, kind, reason, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (source) DO NOTHING;

-- name: mark-copies-filed
-- A sent_copies.filed: these messages' copies are in Sent.
UPDATE messages SET appended = true, copy_pending = false
WHERE campaign_id = $1 AND recipient_id = ANY($2::uuid[]);

-- name: mark-copies-pending
-- A sent_copies.pending: these messages wait for their copies (unless filed since).
UPDATE messages SET copy_pending = true
WHERE campaign_id = $1 AND recipient_id = ANY($2::uuid[]) AND NOT appended;

-- name: copies-pending
-- For /metrics: sent messages whose Sent copy could not be filed yet (a partial index).
SELECT count(*) FROM messages WHERE copy_pending;
