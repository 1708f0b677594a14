-- Reads of the sender.

-- name: campaign-for-send
-- The campaign with its mailbox, as the sender needs them.
SELECT c.id, c.name, c.subject, c.template_markdown, c.status, c.run_id, c.run_chunks,
       c.sleep_between_batches_sec, c.updated_at,
       m.updated_at AS mailbox_updated_at, s.updated_at AS secrets_updated_at,
       m.id AS mailbox_id, m.from_name, m.from_address,
       m.smtp_host, m.smtp_port, m.smtp_security, m.smtp_username,
       m.imap_host, m.imap_port, m.imap_security, m.imap_username,
       m.sent_folder, m.append_to_sent,
       m.rate_per_second, m.rate_per_hour, m.rate_per_day,
       s.smtp_password, s.imap_password
FROM campaigns c
LEFT JOIN mailboxes m ON m.id = c.mailbox_id
LEFT JOIN mailbox_secrets s ON s.mailbox_id = c.mailbox_id
WHERE c.id = $1;

-- name: recipients-by-ids
SELECT id, email, name, attributes FROM recipients
WHERE campaign_id = $1 AND id = ANY($2::uuid[]);

-- name: suppressed-keys
-- Addresses (case-folded keys) suppressed from this mailbox or from every mailbox.
SELECT DISTINCT email_key FROM suppressions
WHERE email_key = ANY($1::text[]) AND mailbox_key IN ($2, '00000000-0000-0000-0000-000000000000');

-- name: outcome-counts
-- From the projector's counters (kept in the same transaction as the rows they count).
SELECT coalesce(k.recipients, 0)::bigint AS recipients, coalesce(k.sent, 0)::bigint AS sent,
  coalesce(k.failed, 0)::bigint AS failed, coalesce(k.unknown, 0)::bigint AS unknown,
  coalesce(k.suppressed, 0)::bigint AS suppressed
FROM (SELECT 1) one
LEFT JOIN campaign_numbers k ON k.campaign_id = $1;

-- name: due-scheduled-campaigns
SELECT id, status, batch_size, sleep_between_batches_sec FROM campaigns
WHERE status = 'scheduled' AND send_at <= now() ORDER BY send_at LIMIT 50;

-- name: campaign-status-only
SELECT status FROM campaigns WHERE id = $1;
