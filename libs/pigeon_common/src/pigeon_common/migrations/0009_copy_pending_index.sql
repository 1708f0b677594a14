-- The projector's /metrics counts the messages whose Sent copy waits to be filed at every
-- scrape: a partial index keeps that count to the (few) pending rows.
CREATE INDEX IF NOT EXISTS messages_copy_pending ON messages (campaign_id) WHERE copy_pending;
