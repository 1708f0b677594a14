-- Reads and writes of imap-sync.

-- name: mailboxes-to-sync
-- Mailboxes with a bounce folder, with their IMAP password (encrypted).
SELECT m.id, m.name, m.imap_host, m.imap_port, m.imap_security, m.imap_username,
       m.bounce_folder, m.updated_at, s.imap_password, s.updated_at AS secrets_updated_at
FROM mailboxes m
JOIN mailbox_secrets s ON s.mailbox_id = m.id
WHERE m.bounce_folder <> ''
ORDER BY m.created_at, m.id;

-- name: sync-state
SELECT uidvalidity, last_uid FROM imap_sync_state WHERE mailbox_id = $1 AND folder = $2;

-- name: save-sync-state
INSERT INTO imap_sync_state (mailbox_id, folder, uidvalidity, last_uid, synced_at, last_error)
VALUES ($1, $2, $3, $4, now(), '')
ON CONFLICT (mailbox_id, folder) DO UPDATE SET
    uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid,
    synced_at = excluded.synced_at, last_error = '';

-- name: save-sync-error
INSERT INTO imap_sync_state (mailbox_id, folder, uidvalidity, last_uid, synced_at, last_error)
VALUES ($1, $2, 0, 0, now(), $3)
ON CONFLICT (mailbox_id, folder) DO UPDATE SET last_error = excluded.last_error;

-- name: message-of
-- A message MC Pigeon sent (or tried to): its address and the campaign's mailbox.
SELECT r.campaign_id, r.id AS recipient_id, r.email, c.mailbox_id
FROM recipients r
JOIN campaigns c ON c.id = r.campaign_id
WHERE r.campaign_id = $1 AND r.id = $2;

-- name: latest-message-to
-- The last message sent to an address from a mailbox (a bounce that names no message).
SELECT m.campaign_id, m.recipient_id, m.email, c.mailbox_id
FROM messages m
JOIN campaigns c ON c.id = m.campaign_id
WHERE c.mailbox_id = $1 AND lower(m.email) = lower($2) AND m.status = 'sent'
ORDER BY m.at DESC
LIMIT 1;

-- name: repeat-bounced-messages
-- The messages to an address from a mailbox that bounced softly in a way that counts
-- toward the repeat limit, since a time.
SELECT DISTINCT campaign_id, recipient_id FROM delivery_events
WHERE kind = 'bounced' AND repeatable AND mailbox_id = $1 AND lower(email) = lower($2)
  AND at >= $3;

-- name: try-lock-mailbox
-- One sync of a mailbox at a time across replicas (session advisory lock, keyed by the
-- namespace and the mailbox id).
SELECT pg_try_advisory_lock($1, hashtext($2));

-- name: unlock-mailbox
SELECT pg_advisory_unlock($1, hashtext($2));
