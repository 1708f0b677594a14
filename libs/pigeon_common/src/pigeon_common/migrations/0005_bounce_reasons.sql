-- Why a message bounced (message.bounced v2 `reason`: user_unknown, mailbox_full, spam...).
-- Rows projected from version 1 events, and every row that is not a bounce, have ''.
ALTER TABLE delivery_events ADD COLUMN reason text NOT NULL DEFAULT '';
CREATE INDEX delivery_events_reason_idx ON delivery_events (campaign_id, reason)
    WHERE kind = 'bounced';
