-- Reads of the tracker (all on read models the projector keeps).

-- name: campaign-links
-- The click destinations registered when the campaign started sending.
SELECT link_index, url FROM campaign_links WHERE campaign_id = $1;

-- name: unsubscribe-subject
-- The recipient of one message, and its campaign's mailbox and sender name.
SELECT r.email, c.mailbox_id, coalesce(nullif(m.from_name, ''), m.from_address, '') AS sender
FROM recipients r
JOIN campaigns c ON c.id = r.campaign_id
LEFT JOIN mailboxes m ON m.id = c.mailbox_id
WHERE r.campaign_id = $1 AND r.id = $2;

-- name: suppressions-of
-- The suppressions that keep an address from a mailbox: its own and the global one.
SELECT mailbox_key, reason, created_at FROM suppressions
WHERE email_key = $1 AND mailbox_key IN ($2, '00000000-0000-0000-0000-000000000000');
