-- Reads and API-owned writes of the REST API.

-- name: user-by-id
SELECT id, email, password_hash, token_epoch, is_admin, created_at FROM users WHERE id = $1;

-- name: user-by-email
SELECT id, email, password_hash, token_epoch, is_admin, created_at FROM users WHERE lower(email) = lower($1);

-- name: insert-user
INSERT INTO users (id, email, password_hash, is_admin) VALUES ($1, $2, $3, $4)
ON CONFLICT (email) DO NOTHING
RETURNING id, email, password_hash, token_epoch, is_admin, created_at;

-- name: list-users
SELECT id, email, password_hash, token_epoch, is_admin, created_at FROM users ORDER BY created_at, email;

-- name: set-password
UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1
RETURNING id, email, password_hash, token_epoch, is_admin, created_at;

-- name: bump-token-epoch
UPDATE users SET token_epoch = token_epoch + 1, updated_at = now() WHERE id = $1
RETURNING id, email, password_hash, token_epoch, is_admin, created_at;

-- name: upsert-mailbox-secrets
INSERT INTO mailbox_secrets (mailbox_id, smtp_password, imap_password) VALUES ($1, $2, $3)
ON CONFLICT (mailbox_id) DO UPDATE SET smtp_password = excluded.smtp_password,
    imap_password = excluded.imap_password, updated_at = now();

-- name: update-mailbox-secrets
-- New encrypted passwords; a null one keeps the stored one.
UPDATE mailbox_secrets SET smtp_password = coalesce($2, smtp_password),
    imap_password = coalesce($3, imap_password), updated_at = now()
WHERE mailbox_id = $1;

-- name: delete-mailbox-secrets
DELETE FROM mailbox_secrets WHERE mailbox_id = $1;

-- name: mailbox-by-id
SELECT * FROM mailboxes WHERE id = $1;

-- name: list-mailboxes
SELECT * FROM mailboxes ORDER BY created_at, id LIMIT $1 OFFSET $2;

-- name: count-mailboxes
SELECT count(*) FROM mailboxes;

-- name: campaigns-using-mailbox
SELECT count(*) FROM campaigns WHERE mailbox_id = $1;

-- name: campaign-by-id
SELECT c.*, (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id) AS recipient_count
FROM campaigns c WHERE c.id = $1;

-- name: list-campaigns
-- Newest first; $3 filters by status when not null.
SELECT c.*, (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id) AS recipient_count
FROM campaigns c WHERE ($3::text IS NULL OR c.status = $3)
ORDER BY c.created_at DESC, c.id LIMIT $1 OFFSET $2;

-- name: count-campaigns
SELECT count(*) FROM campaigns WHERE ($1::text IS NULL OR status = $1);

-- name: recipient-by-id
SELECT * FROM recipients WHERE campaign_id = $1 AND id = $2;

-- name: list-recipients
-- $2: substring of email or name; $3: exact email; $4: attributes the row must contain.
SELECT * FROM recipients
WHERE campaign_id = $1
  AND ($2::text IS NULL OR email ILIKE '%' || $2 || '%' OR name ILIKE '%' || $2 || '%')
  AND ($3::text IS NULL OR lower(email) = lower($3))
  AND ($4::jsonb IS NULL OR attributes @> $4)
ORDER BY lower(email), id LIMIT $5 OFFSET $6;

-- name: count-recipients
SELECT count(*) FROM recipients
WHERE campaign_id = $1
  AND ($2::text IS NULL OR email ILIKE '%' || $2 || '%' OR name ILIKE '%' || $2 || '%')
  AND ($3::text IS NULL OR lower(email) = lower($3))
  AND ($4::jsonb IS NULL OR attributes @> $4);

-- name: recipient-attribute-keys
SELECT DISTINCT jsonb_object_keys(attributes) AS key FROM recipients WHERE campaign_id = $1 ORDER BY 1;

-- name: export-recipients
SELECT email, name, attributes FROM recipients WHERE campaign_id = $1 ORDER BY lower(email), id;

-- name: campaign-status
-- One pass over the campaign's messages.
SELECT c.id, c.status, c.status_reason, c.send_at, c.started_at, c.finished_at,
  (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id) AS recipients,
  coalesce(o.sent, 0) AS sent, coalesce(o.failed, 0) AS failed,
  coalesce(o.unknown, 0) AS unknown, coalesce(o.suppressed, 0) AS suppressed,
  coalesce(o.copies_pending, 0) AS copies_pending
FROM campaigns c
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE status = 'sent') AS sent,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'unknown') AS unknown,
         count(*) FILTER (WHERE status = 'suppressed') AS suppressed,
         count(*) FILTER (WHERE copy_pending) AS copies_pending
  FROM messages m WHERE m.campaign_id = c.id
) o ON true
WHERE c.id = $1;

-- name: list-messages
-- Every recipient with its outcome and what followed (the message_results view). $2
-- filters by outcome, $3 by a later state (opened, opened_human, clicked, clicked_human,
-- bounced, bounced_hard, bounced_soft, deferred, replied, auto_replied, unsubscribed).
SELECT * FROM message_results
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR $3 = ANY(states))
ORDER BY lower(email), recipient_id LIMIT $4 OFFSET $5;

-- name: count-messages
SELECT count(*) FROM message_results
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR $3 = ANY(states));

-- name: first-recipients
SELECT id, email, name, attributes FROM recipients WHERE campaign_id = $1
ORDER BY lower(email), id LIMIT $2;

-- name: recipients-by-ids
SELECT id, email, name, attributes FROM recipients
WHERE campaign_id = $1 AND id = ANY($2::uuid[]) ORDER BY lower(email), id;

-- name: mailbox-for-send
SELECT m.*, s.smtp_password, s.imap_password FROM mailboxes m
JOIN mailbox_secrets s ON s.mailbox_id = m.id WHERE m.id = $1;

-- name: campaign-stats
-- Unique recipients per outcome and engagement (opens and clicks as finally judged, in
-- the *_seen views: a machine's fetch is counted apart).
SELECT
  (SELECT count(*) FROM recipients WHERE campaign_id = $1) AS recipients,
  (SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'sent') AS sent,
  (SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'failed') AS failed,
  (SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'unknown') AS unknown,
  (SELECT count(*) FROM messages WHERE campaign_id = $1 AND status = 'suppressed') AS suppressed,
  (SELECT count(*) FROM opens_seen WHERE campaign_id = $1) AS opens,
  (SELECT count(DISTINCT recipient_id) FROM opens_seen WHERE campaign_id = $1) AS opened,
  (SELECT count(DISTINCT recipient_id) FROM opens_seen
     WHERE campaign_id = $1 AND NOT machine) AS opened_human,
  (SELECT count(DISTINCT recipient_id) FROM opens_seen
     WHERE campaign_id = $1 AND machine) AS opened_machine,
  (SELECT count(*) FROM clicks_seen WHERE campaign_id = $1) AS clicks,
  (SELECT count(DISTINCT recipient_id) FROM clicks_seen WHERE campaign_id = $1) AS clicked,
  (SELECT count(DISTINCT recipient_id) FROM clicks_seen
     WHERE campaign_id = $1 AND NOT machine) AS clicked_human,
  (SELECT count(DISTINCT recipient_id) FROM delivery_events
     WHERE campaign_id = $1 AND kind = 'bounced' AND hard) AS bounced_hard,
  (SELECT count(DISTINCT recipient_id) FROM delivery_events d
     WHERE d.campaign_id = $1 AND d.kind = 'bounced' AND NOT d.hard
       AND NOT EXISTS (SELECT 1 FROM delivery_events h WHERE h.campaign_id = $1
         AND h.recipient_id = d.recipient_id AND h.kind = 'bounced' AND h.hard)) AS bounced_soft,
  (SELECT count(DISTINCT recipient_id) FROM delivery_events
     WHERE campaign_id = $1 AND kind = 'deferred') AS deferred,
  (SELECT count(DISTINCT recipient_id) FROM delivery_events
     WHERE campaign_id = $1 AND kind = 'replied') AS replied,
  (SELECT count(DISTINCT recipient_id) FROM delivery_events
     WHERE campaign_id = $1 AND kind = 'auto_replied') AS auto_replied,
  (SELECT count(*) FROM unsubscribes
     WHERE campaign_id = $1 AND resubscribed_at IS NULL) AS unsubscribed;

-- name: link-stats
SELECT l.link_index, l.url,
  count(c.id) AS clicks,
  count(DISTINCT c.recipient_id) AS clicked,
  count(DISTINCT c.recipient_id) FILTER (WHERE NOT c.machine) AS clicked_human
FROM campaign_links l
LEFT JOIN clicks_seen c ON c.campaign_id = l.campaign_id AND c.link_index = l.link_index
WHERE l.campaign_id = $1
GROUP BY l.link_index, l.url ORDER BY l.link_index;

-- name: list-opens
SELECT o.id, o.recipient_id, r.email, o.at, o.machine, o.machine_reason, o.user_agent
FROM opens_seen o LEFT JOIN recipients r ON r.campaign_id = o.campaign_id AND r.id = o.recipient_id
WHERE o.campaign_id = $1 AND ($2::uuid IS NULL OR o.recipient_id = $2)
  AND ($3::boolean IS NULL OR o.machine = $3)
ORDER BY o.at DESC, o.id LIMIT $4 OFFSET $5;

-- name: count-opens
SELECT count(*) FROM opens_seen o
WHERE o.campaign_id = $1 AND ($2::uuid IS NULL OR o.recipient_id = $2)
  AND ($3::boolean IS NULL OR o.machine = $3);

-- name: list-clicks
SELECT c.id, c.recipient_id, r.email, c.link_index, c.url, c.at, c.machine, c.machine_reason,
       c.user_agent
FROM clicks_seen c LEFT JOIN recipients r ON r.campaign_id = c.campaign_id AND r.id = c.recipient_id
WHERE c.campaign_id = $1 AND ($2::uuid IS NULL OR c.recipient_id = $2)
  AND ($3::boolean IS NULL OR c.machine = $3)
ORDER BY c.at DESC, c.id LIMIT $4 OFFSET $5;

-- name: count-clicks
SELECT count(*) FROM clicks_seen c
WHERE c.campaign_id = $1 AND ($2::uuid IS NULL OR c.recipient_id = $2)
  AND ($3::boolean IS NULL OR c.machine = $3);

-- name: list-delivery-events
SELECT id, recipient_id, email, kind, hard, status, action, diagnostic, from_address, subject,
       source, at
FROM delivery_events
WHERE campaign_id = $1 AND ($2::uuid IS NULL OR recipient_id = $2)
  AND ($3::text IS NULL OR kind = $3)
ORDER BY at DESC, id LIMIT $4 OFFSET $5;

-- name: count-delivery-events
SELECT count(*) FROM delivery_events
WHERE campaign_id = $1 AND ($2::uuid IS NULL OR recipient_id = $2)
  AND ($3::text IS NULL OR kind = $3);

-- name: list-suppressions
SELECT email, nullif(mailbox_key, '00000000-0000-0000-0000-000000000000') AS mailbox_id,
       reason, detail, created_at
FROM suppressions
WHERE ($1::text IS NULL OR email_key = $1)
  AND ($2::uuid IS NULL OR mailbox_key = $2)
  AND ($3::text IS NULL OR reason = $3)
ORDER BY created_at DESC, email_key, mailbox_key LIMIT $4 OFFSET $5;

-- name: count-suppressions
SELECT count(*) FROM suppressions
WHERE ($1::text IS NULL OR email_key = $1)
  AND ($2::uuid IS NULL OR mailbox_key = $2)
  AND ($3::text IS NULL OR reason = $3);

-- name: suppression-exists
SELECT 1 FROM suppressions WHERE email_key = $1 AND mailbox_key = $2
  AND ($3::text IS NULL OR reason = $3) LIMIT 1;

-- name: imap-sync-state
SELECT folder, uidvalidity, last_uid, synced_at, last_error FROM imap_sync_state
WHERE mailbox_id = $1 ORDER BY folder;

-- name: count-inbound-skipped
SELECT count(*) FROM inbound_skipped WHERE mailbox_id = $1;

-- name: list-inbound-skipped
SELECT source, folder, uidvalidity, uid, kind, reason, at FROM inbound_skipped
WHERE mailbox_id = $1 ORDER BY at DESC, source LIMIT $2 OFFSET $3;
