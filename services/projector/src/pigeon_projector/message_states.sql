-- The projector's upkeep of message_states and campaign_counters (migration 0008).
-- $1, $2: the campaign ids and recipient ids (pairwise) that one batch touched.

-- name: retract-message-states
-- Remove the touched pairs' state rows and take what they counted off their campaigns.
WITH old AS (
    DELETE FROM message_states s
    USING (SELECT DISTINCT * FROM unnest($1::uuid[], $2::uuid[])) AS t(campaign_id, recipient_id)
    WHERE s.campaign_id = t.campaign_id AND s.recipient_id = t.recipient_id
    RETURNING s AS st
)
INSERT INTO campaign_counters (campaign_id, counter, n)
SELECT (o.st).campaign_id, k.counter, -sum(k.n) FROM old o,
    LATERAL message_state_counters(o.st) k
GROUP BY 1, 2
ON CONFLICT (campaign_id, counter) DO UPDATE SET n = campaign_counters.n + excluded.n;

-- name: insert-message-states
-- Store the touched pairs' state rows as they are now and add them to the counters.
WITH fresh AS (
    INSERT INTO message_states SELECT * FROM compute_message_states($1::uuid[], $2::uuid[])
    RETURNING message_states AS st
)
INSERT INTO campaign_counters (campaign_id, counter, n)
SELECT (f.st).campaign_id, k.counter, sum(k.n) FROM fresh f,
    LATERAL message_state_counters(f.st) k
GROUP BY 1, 2
ON CONFLICT (campaign_id, counter) DO UPDATE SET n = campaign_counters.n + excluded.n;

-- name: drop-zero-counters
-- A counter back at zero has no row, as after a rebuild.
DELETE FROM campaign_counters WHERE campaign_id = ANY($1::uuid[]) AND n = 0;

-- name: delete-campaign-states
DELETE FROM message_states WHERE campaign_id = $1;

-- name: delete-campaign-counters
DELETE FROM campaign_counters WHERE campaign_id = $1;
