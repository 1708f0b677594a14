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
  coalesce(o.unknown, 0) AS unknown, coalesce(o.suppressed, 0) AS suppressed
FROM campaigns c
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE status = 'sent') AS sent,
         count(*) FILTER (WHERE status = 'failed') AS failed,
         count(*) FILTER (WHERE status = 'unknown') AS unknown,
         count(*) FILTER (WHERE status = 'suppressed') AS suppressed
  FROM messages m WHERE m.campaign_id = c.id
) o ON true
WHERE c.id = $1;

-- name: list-messages
-- Every recipient with its outcome; `queued` when it has none yet. $2 filters by status.
SELECT r.campaign_id, r.id AS recipient_id, r.email,
       coalesce(m.status, 'queued') AS status, m.message_id, m.smtp_code,
       coalesce(m.smtp_reply, '') AS smtp_reply, coalesce(m.hard_bounce, false) AS hard_bounce,
       coalesce(m.appended, false) AS appended, coalesce(m.reason, '') AS reason, m.at
FROM recipients r
LEFT JOIN messages m ON m.campaign_id = r.campaign_id AND m.recipient_id = r.id
WHERE r.campaign_id = $1 AND ($2::text IS NULL OR coalesce(m.status, 'queued') = $2)
ORDER BY lower(r.email), r.id LIMIT $3 OFFSET $4;

-- name: count-messages
SELECT count(*) FROM recipients r
LEFT JOIN messages m ON m.campaign_id = r.campaign_id AND m.recipient_id = r.id
WHERE r.campaign_id = $1 AND ($2::text IS NULL OR coalesce(m.status, 'queued') = $2);

-- name: first-recipients
SELECT id, email, name, attributes FROM recipients WHERE campaign_id = $1
ORDER BY lower(email), id LIMIT $2;

-- name: recipients-by-ids
SELECT id, email, name, attributes FROM recipients
WHERE campaign_id = $1 AND id = ANY($2::uuid[]) ORDER BY lower(email), id;

-- name: mailbox-for-send
SELECT m.*, s.smtp_password, s.imap_password FROM mailboxes m
JOIN mailbox_secrets s ON s.mailbox_id = m.id WHERE m.id = $1;
