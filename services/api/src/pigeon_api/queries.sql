-- Reads and API-owned writes of the REST API.

-- name: user-by-id
SELECT id, email, password_hash, token_epoch, role, created_at FROM users WHERE id = $1;

-- name: user-by-email
SELECT id, email, password_hash, token_epoch, role, created_at FROM users WHERE lower(email) = lower($1);

-- name: insert-user
INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
ON CONFLICT (email) DO NOTHING
RETURNING id, email, password_hash, token_epoch, role, created_at;

-- name: list-users
SELECT id, email, password_hash, token_epoch, role, created_at FROM users
ORDER BY created_at, email LIMIT $1 OFFSET $2;

-- name: count-users
SELECT count(*) FROM users;

-- name: set-role
UPDATE users SET role = $2, updated_at = now() WHERE id = $1
RETURNING id, email, password_hash, token_epoch, role, created_at;

-- name: first-admin
-- The administrator that adopts mailboxes and campaigns from before owners existed.
SELECT id FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1;

-- name: orphan-mailboxes
SELECT id FROM mailboxes WHERE owner_id IS NULL;

-- name: orphan-campaigns
SELECT id FROM campaigns WHERE owner_id IS NULL;

-- name: set-password
UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1
RETURNING id, email, password_hash, token_epoch, role, created_at;

-- name: bump-token-epoch
UPDATE users SET token_epoch = token_epoch + 1, updated_at = now() WHERE id = $1
RETURNING id, email, password_hash, token_epoch, role, created_at;

-- name: upsert-mailbox-secrets
-- A null password: none (an SMTP relay without login).
INSERT INTO mailbox_secrets (mailbox_id, smtp_password, imap_password) VALUES ($1, $2, $3)
ON CONFLICT (mailbox_id) DO UPDATE SET smtp_password = excluded.smtp_password,
    imap_password = excluded.imap_password, updated_at = now();

-- name: update-mailbox-secrets
-- Per side: $2/$4 true replaces the stored password with $3/$5 (null drops it).
UPDATE mailbox_secrets
SET smtp_password = CASE WHEN $2 THEN $3 ELSE smtp_password END,
    imap_password = CASE WHEN $4 THEN $5 ELSE imap_password END, updated_at = now()
WHERE mailbox_id = $1;

-- name: delete-mailbox-secrets
DELETE FROM mailbox_secrets WHERE mailbox_id = $1;

-- name: mailbox-secrets-page
-- The stored passwords after mailbox $1, in id order, $2 at a time (re-encryption).
SELECT x.mailbox_id, m.name, x.smtp_password, x.imap_password
FROM mailbox_secrets x LEFT JOIN mailboxes m ON m.id = x.mailbox_id
WHERE x.mailbox_id > $1 ORDER BY x.mailbox_id LIMIT $2;

-- name: reencrypt-mailbox-secrets
-- Store $4/$5, the same passwords under the current key, only if the row still holds
-- $2/$3 (a password set meanwhile wins); updated_at stays: the passwords did not change.
UPDATE mailbox_secrets SET smtp_password = $4, imap_password = $5
WHERE mailbox_id = $1 AND smtp_password IS NOT DISTINCT FROM $2
  AND imap_password IS NOT DISTINCT FROM $3;

-- name: mailbox-by-id
-- With who it is shared with and whether each side has a stored password.
SELECT m.*,
  ARRAY(SELECT user_id FROM mailbox_shares s WHERE s.mailbox_id = m.id ORDER BY user_id)
    AS shared_with,
  (x.smtp_password IS NOT NULL) AS smtp_password_set,
  (x.imap_password IS NOT NULL) AS imap_password_set
FROM mailboxes m LEFT JOIN mailbox_secrets x ON x.mailbox_id = m.id WHERE m.id = $1;

-- name: list-mailboxes
-- The mailboxes whose settings the caller sees: $3 true = all; else owned by $4 (plus
-- those shared with $4 when $5).
SELECT m.*,
  ARRAY(SELECT user_id FROM mailbox_shares s WHERE s.mailbox_id = m.id ORDER BY user_id)
    AS shared_with,
  (x.smtp_password IS NOT NULL) AS smtp_password_set,
  (x.imap_password IS NOT NULL) AS imap_password_set
FROM mailboxes m LEFT JOIN mailbox_secrets x ON x.mailbox_id = m.id
WHERE $3 OR m.owner_id = $4
   OR ($5 AND EXISTS (SELECT 1 FROM mailbox_shares s WHERE s.mailbox_id = m.id AND s.user_id = $4))
ORDER BY m.created_at, m.id LIMIT $1 OFFSET $2;

-- name: count-mailboxes
SELECT count(*) FROM mailboxes m
WHERE $1 OR m.owner_id = $2
   OR ($3 AND EXISTS (SELECT 1 FROM mailbox_shares s WHERE s.mailbox_id = m.id AND s.user_id = $2));

-- name: mailbox-shares
SELECT s.user_id, u.email FROM mailbox_shares s LEFT JOIN users u ON u.id = s.user_id
WHERE s.mailbox_id = $1 ORDER BY u.email, s.user_id;

-- name: campaigns-using-mailbox
SELECT count(*) FROM campaigns WHERE mailbox_id = $1;

-- name: campaign-by-id
-- recipient_count from the projector's counter (kept in the same transaction as the rows:
-- counting a million rows would take every campaign request 100 ms).
SELECT c.*, (SELECT coalesce(sum(k.n), 0) FROM campaign_counters k
    WHERE k.campaign_id = c.id AND k.counter = 'recipients') AS recipient_count,
  ARRAY(SELECT user_id FROM campaign_shares s WHERE s.campaign_id = c.id ORDER BY user_id)
    AS shared_with
FROM campaigns c WHERE c.id = $1;

-- name: list-campaigns
-- Newest first; $3 filters by status when not null; $4 true = every campaign, else the
-- ones owned by $5 (plus those shared with $5 when $6).
SELECT c.*, (SELECT coalesce(sum(k.n), 0) FROM campaign_counters k
    WHERE k.campaign_id = c.id AND k.counter = 'recipients') AS recipient_count,
  ARRAY(SELECT user_id FROM campaign_shares s WHERE s.campaign_id = c.id ORDER BY user_id)
    AS shared_with
FROM campaigns c WHERE ($3::text IS NULL OR c.status = $3)
  AND ($4 OR c.owner_id = $5
       OR ($6 AND EXISTS (SELECT 1 FROM campaign_shares s WHERE s.campaign_id = c.id AND s.user_id = $5)))
ORDER BY c.created_at DESC, c.id LIMIT $1 OFFSET $2;

-- name: count-campaigns
SELECT count(*) FROM campaigns c WHERE ($1::text IS NULL OR c.status = $1)
  AND ($2 OR c.owner_id = $3
       OR ($4 AND EXISTS (SELECT 1 FROM campaign_shares s WHERE s.campaign_id = c.id AND s.user_id = $3)));

-- name: campaign-shares
SELECT s.user_id, u.email FROM campaign_shares s LEFT JOIN users u ON u.id = s.user_id
WHERE s.campaign_id = $1 ORDER BY u.email, s.user_id;

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
-- Without a filter, the projector's counter (kept in the same transaction as the rows).
SELECT CASE
  WHEN $2::text IS NULL AND $3::text IS NULL AND $4::jsonb IS NULL THEN
    (SELECT coalesce(sum(n), 0) FROM campaign_counters
     WHERE campaign_id = $1 AND counter = 'recipients')
  ELSE
    (SELECT count(*) FROM recipients
     WHERE campaign_id = $1
       AND ($2::text IS NULL OR email ILIKE '%' || $2 || '%' OR name ILIKE '%' || $2 || '%')
       AND ($3::text IS NULL OR lower(email) = lower($3))
       AND ($4::jsonb IS NULL OR attributes @> $4))
END;

-- name: recipient-attribute-keys
SELECT DISTINCT jsonb_object_keys(attributes) AS key FROM recipients WHERE campaign_id = $1 ORDER BY 1;

-- name: export-recipients
SELECT email, name, attributes FROM recipients WHERE campaign_id = $1 ORDER BY lower(email), id;

-- name: campaign-status
-- The numbers from the projector's counters (never counted per request); the copies
-- waiting for Sent through a partial index, so as cheap as there are few.
SELECT c.id, c.status, c.status_reason, c.send_at, c.started_at, c.finished_at,
  coalesce(k.recipients, 0) AS recipients, coalesce(k.sent, 0) AS sent,
  coalesce(k.failed, 0) AS failed, coalesce(k.unknown, 0) AS unknown,
  coalesce(k.suppressed, 0) AS suppressed,
  (SELECT count(*) FROM messages m WHERE m.campaign_id = c.id AND m.copy_pending)
    AS copies_pending
FROM campaigns c
LEFT JOIN LATERAL (SELECT * FROM campaign_numbers n WHERE n.campaign_id = c.id) k ON true
WHERE c.id = $1;

-- name: list-messages
-- Every recipient with its outcome and what followed (message_states, which the projector
-- keeps equal to the message_results view). $2 filters by outcome, $3 by a later state
-- (opened, opened_human, clicked, clicked_human, bounced, bounced_hard, bounced_soft,
-- deferred, replied, auto_replied, unsubscribed). In the order of message_states_email_idx.
SELECT * FROM message_states
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR states @> ARRAY[$3::text])
ORDER BY lower(email), recipient_id LIMIT $4 OFFSET $5;

-- name: count-messages
-- From the counters when one filter or none is given (every outcome and state is one).
SELECT CASE
  WHEN $2::text IS NULL OR $3::text IS NULL THEN
    (SELECT coalesce(sum(n), 0) FROM campaign_counters
     WHERE campaign_id = $1 AND counter = coalesce($2::text, $3::text, 'recipients'))
  ELSE
    (SELECT count(*) FROM message_states
     WHERE campaign_id = $1 AND status = $2 AND states @> ARRAY[$3::text])
END;

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
-- the *_seen views: a machine's fetch is counted apart), from the projector's counters.
SELECT coalesce(k.recipients, 0) AS recipients, coalesce(k.sent, 0) AS sent,
  coalesce(k.failed, 0) AS failed, coalesce(k.unknown, 0) AS unknown,
  coalesce(k.suppressed, 0) AS suppressed, coalesce(k.opens, 0) AS opens,
  coalesce(k.opened, 0) AS opened, coalesce(k.opened_human, 0) AS opened_human,
  coalesce(k.opened_machine, 0) AS opened_machine, coalesce(k.clicks, 0) AS clicks,
  coalesce(k.clicked, 0) AS clicked, coalesce(k.clicked_human, 0) AS clicked_human,
  coalesce(k.bounced_hard, 0) AS bounced_hard, coalesce(k.bounced_soft, 0) AS bounced_soft,
  coalesce(k.deferred, 0) AS deferred, coalesce(k.replied, 0) AS replied,
  coalesce(k.auto_replied, 0) AS auto_replied, coalesce(k.unsubscribed, 0) AS unsubscribed
FROM (SELECT 1) one
LEFT JOIN campaign_numbers k ON k.campaign_id = $1;

-- name: campaign-bounce-reasons
-- Unique bounced recipients per bounce reason ('' from version 1 events reads as unknown).
SELECT coalesce(nullif(reason, ''), 'unknown') AS reason,
  count(DISTINCT recipient_id) AS recipients
FROM delivery_events
WHERE campaign_id = $1 AND kind = 'bounced'
GROUP BY 1 ORDER BY 1;

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
SELECT id, recipient_id, email, kind, hard, status, action, diagnostic, reason, from_address,
       subject, source, at
FROM delivery_events
WHERE campaign_id = $1 AND ($2::uuid IS NULL OR recipient_id = $2)
  AND ($3::text IS NULL OR kind = $3)
ORDER BY at DESC, id LIMIT $4 OFFSET $5;

-- name: count-delivery-events
SELECT count(*) FROM delivery_events
WHERE campaign_id = $1 AND ($2::uuid IS NULL OR recipient_id = $2)
  AND ($3::text IS NULL OR kind = $3);

-- name: list-suppressions
-- $4 true = every row; else only those of mailboxes owned by $5.
SELECT email, nullif(mailbox_key, '00000000-0000-0000-0000-000000000000') AS mailbox_id,
       reason, detail, created_at
FROM suppressions
WHERE ($1::text IS NULL OR email_key = $1)
  AND ($2::uuid IS NULL OR mailbox_key = $2)
  AND ($3::text IS NULL OR reason = $3)
  AND ($4 OR mailbox_key IN (SELECT id FROM mailboxes WHERE owner_id = $5))
ORDER BY created_at DESC, email_key, mailbox_key LIMIT $6 OFFSET $7;

-- name: count-suppressions
SELECT count(*) FROM suppressions
WHERE ($1::text IS NULL OR email_key = $1)
  AND ($2::uuid IS NULL OR mailbox_key = $2)
  AND ($3::text IS NULL OR reason = $3)
  AND ($4 OR mailbox_key IN (SELECT id FROM mailboxes WHERE owner_id = $5));

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

-- Admin pages (services/api/src/pigeon_api/admin): lists and numbers from the counters
-- and message states of migration 0008, never counted per request.

-- name: admin-campaigns
-- $1: substring of the name or subject; $2: status; newest first. The access scope of
-- list-campaigns: $5 true = every campaign, else those owned by $6 (plus those shared
-- with $6 when $7).
SELECT c.id, c.name, c.subject, c.status, c.status_reason, c.created_at, c.started_at,
    c.finished_at, c.send_at, k.*
FROM campaigns c
LEFT JOIN LATERAL (SELECT * FROM campaign_numbers n WHERE n.campaign_id = c.id) k ON true
WHERE ($1::text IS NULL OR c.name ILIKE '%' || $1 || '%' OR c.subject ILIKE '%' || $1 || '%')
  AND ($2::text IS NULL OR c.status = $2)
  AND ($5 OR c.owner_id = $6
       OR ($7 AND EXISTS (SELECT 1 FROM campaign_shares s WHERE s.campaign_id = c.id AND s.user_id = $6)))
ORDER BY c.created_at DESC, c.id LIMIT $3 OFFSET $4;

-- name: admin-count-campaigns
SELECT count(*) FROM campaigns c
WHERE ($1::text IS NULL OR c.name ILIKE '%' || $1 || '%' OR c.subject ILIKE '%' || $1 || '%')
  AND ($2::text IS NULL OR c.status = $2)
  AND ($3 OR c.owner_id = $4
       OR ($5 AND EXISTS (SELECT 1 FROM campaign_shares s WHERE s.campaign_id = c.id AND s.user_id = $4)));

-- name: admin-campaign
SELECT c.*, m.name AS mailbox_name, k.*
FROM campaigns c
LEFT JOIN mailboxes m ON m.id = c.mailbox_id
LEFT JOIN LATERAL (SELECT * FROM campaign_numbers n WHERE n.campaign_id = c.id) k ON true
WHERE c.id = $1;

-- name: admin-engagement-hours
-- Unique recipients whose first open / first click (any, and a person's) fell in each hour.
SELECT h.hour, sum(h.opened) AS opened, sum(h.opened_human) AS opened_human,
    sum(h.clicked) AS clicked, sum(h.clicked_human) AS clicked_human
FROM (
    SELECT date_trunc('hour', first_opened_at) AS hour, 1 AS opened, 0 AS opened_human,
        0 AS clicked, 0 AS clicked_human
    FROM message_states WHERE campaign_id = $1 AND first_opened_at IS NOT NULL
    UNION ALL
    SELECT date_trunc('hour', first_human_opened_at), 0, 1, 0, 0
    FROM message_states WHERE campaign_id = $1 AND first_human_opened_at IS NOT NULL
    UNION ALL
    SELECT date_trunc('hour', first_clicked_at), 0, 0, 1, 0
    FROM message_states WHERE campaign_id = $1 AND first_clicked_at IS NOT NULL
    UNION ALL
    SELECT date_trunc('hour', first_human_clicked_at), 0, 0, 0, 1
    FROM message_states WHERE campaign_id = $1 AND first_human_clicked_at IS NOT NULL
) h GROUP BY h.hour ORDER BY h.hour;

-- name: admin-messages
-- One page of a campaign's recipients with their state. $2: outcome; $3: a later state;
-- $4: substring of the email or name.
SELECT * FROM message_states
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR states @> ARRAY[$3::text])
  AND ($4::text IS NULL OR email ILIKE '%' || $4 || '%' OR name ILIKE '%' || $4 || '%')
ORDER BY lower(email), recipient_id LIMIT $5 OFFSET $6;

-- name: admin-count-messages
SELECT count(*) FROM message_states
WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR states @> ARRAY[$3::text])
  AND ($4::text IS NULL OR email ILIKE '%' || $4 || '%' OR name ILIKE '%' || $4 || '%');

-- name: admin-insert-session
INSERT INTO admin_sessions (id, user_id, password_fingerprint, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4));

-- name: admin-session
-- A live session with its user (the caller compares the password fingerprint).
SELECT s.id, s.password_fingerprint, u.id AS user_id, u.email, u.role, u.password_hash,
    u.token_epoch
FROM admin_sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = $1 AND s.expires_at > now();

-- name: admin-delete-session
DELETE FROM admin_sessions WHERE id = $1;

-- name: admin-delete-user-sessions
DELETE FROM admin_sessions WHERE user_id = $1;

-- name: admin-dashboard-sending
-- Campaigns sending or paused, in the access scope of list-campaigns ($1, $2, $3).
SELECT c.id, c.name, c.status, k.recipients, k.sent, k.failed, k.unknown, k.suppressed
FROM campaigns c
LEFT JOIN LATERAL (SELECT * FROM campaign_numbers n WHERE n.campaign_id = c.id) k ON true
WHERE c.status IN ('sending', 'paused')
  AND ($1 OR c.owner_id = $2
       OR ($3 AND EXISTS (SELECT 1 FROM campaign_shares s WHERE s.campaign_id = c.id AND s.user_id = $2)))
ORDER BY c.started_at DESC NULLS LAST, c.id LIMIT 20;

-- name: admin-mailbox-health
-- Each mailbox with its last sync, last error, skipped mail and copies not yet in Sent
-- (the ones a sender keeps to file later: a partial index, so cheap at any size),
-- in the access scope of list-mailboxes ($1 every one, else owned by $2, plus those
-- shared with $2 when $3).
SELECT m.id, m.name, m.from_address, m.sent_folder, m.bounce_folder,
    (SELECT max(synced_at) FROM imap_sync_state s WHERE s.mailbox_id = m.id) AS last_sync,
    (SELECT string_agg(nullif(last_error, ''), '; ') FROM imap_sync_state s
       WHERE s.mailbox_id = m.id) AS last_error,
    (SELECT count(*) FROM inbound_skipped i WHERE i.mailbox_id = m.id) AS skipped,
    (SELECT count(*) FROM messages g JOIN campaigns c ON c.id = g.campaign_id
       WHERE c.mailbox_id = m.id AND g.copy_pending) AS pending_copies
FROM mailboxes m
WHERE $1 OR m.owner_id = $2
   OR ($3 AND EXISTS (SELECT 1 FROM mailbox_shares s WHERE s.mailbox_id = m.id AND s.user_id = $2))
ORDER BY m.name, m.id;

-- name: admin-message
SELECT s.*, r.attributes FROM message_states s
JOIN recipients r ON r.campaign_id = s.campaign_id AND r.id = s.recipient_id
WHERE s.campaign_id = $1 AND s.recipient_id = $2;

-- name: admin-story
-- Everything the read models know of one recipient of one campaign, oldest first.
SELECT * FROM (
    SELECT created_at AS at, 'added' AS kind, email AS detail, '' AS extra
    FROM recipients WHERE campaign_id = $1 AND id = $2
    UNION ALL
    SELECT at, status, smtp_reply, coalesce(message_id, '') || CASE WHEN appended
        THEN ' (copied to Sent)' ELSE '' END
    FROM messages WHERE campaign_id = $1 AND recipient_id = $2
    UNION ALL
    SELECT at, CASE WHEN machine THEN 'opened (machine)' ELSE 'opened' END, machine_reason,
        user_agent
    FROM opens_seen WHERE campaign_id = $1 AND recipient_id = $2
    UNION ALL
    SELECT at, CASE WHEN machine THEN 'clicked (machine)' ELSE 'clicked' END, url, user_agent
    FROM clicks_seen WHERE campaign_id = $1 AND recipient_id = $2
    UNION ALL
    SELECT at, kind || CASE WHEN kind = 'bounced' AND hard THEN ' (hard)' WHEN kind = 'bounced'
        THEN ' (soft)' ELSE '' END, trim(status || ' ' || diagnostic),
        trim(from_address || ' ' || subject)
    FROM delivery_events WHERE campaign_id = $1 AND recipient_id = $2
    UNION ALL
    SELECT unsubscribed_at, 'unsubscribed', method, '' FROM unsubscribes
    WHERE campaign_id = $1 AND recipient_id = $2
    UNION ALL
    SELECT resubscribed_at, 'resubscribed', '', '' FROM unsubscribes
    WHERE campaign_id = $1 AND recipient_id = $2 AND resubscribed_at IS NOT NULL
) story ORDER BY at, kind;

-- name: admin-replies
-- The human replies to a campaign (auto-replies apart), newest first.
SELECT d.recipient_id, d.from_address, d.subject, d.at, d.kind, r.email, r.name
FROM delivery_events d
LEFT JOIN recipients r ON r.campaign_id = d.campaign_id AND r.id = d.recipient_id
WHERE d.campaign_id = $1 AND d.kind = $2
ORDER BY d.at DESC, d.id LIMIT $3 OFFSET $4;

-- name: send-count
-- What a send would do: the recipients and how many of them are suppressed from the
-- campaign's mailbox or from every mailbox (the sender checks again at send time).
SELECT count(*) AS recipients,
  count(*) FILTER (WHERE EXISTS (
    SELECT 1 FROM suppressions s WHERE s.email_key = lower(r.email)
      AND s.mailbox_key IN ($2, '00000000-0000-0000-0000-000000000000'))) AS suppressed
FROM recipients r WHERE r.campaign_id = $1;

-- name: admin-preview-recipients
-- Recipients to pick for the preview (the first ones, by address).
SELECT id, email, name FROM recipients WHERE campaign_id = $1
ORDER BY lower(email), id LIMIT $2;
