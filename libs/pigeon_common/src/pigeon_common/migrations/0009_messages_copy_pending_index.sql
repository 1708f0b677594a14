-- The copies still waiting for Sent, per campaign, without reading every message of a
-- campaign (GET .../status counts them at a million recipients): few rows, small index.
CREATE INDEX messages_copy_pending_idx ON messages (campaign_id) WHERE copy_pending;
