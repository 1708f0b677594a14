-- The projector's upkeep of message_states and campaign_counters (migration 0008).
-- $1, $2: the campaign ids and recipient ids (pairwise) that one batch touched.

-- name: refresh-message-states
-- In one statement: the touched pairs' state rows become what compute_message_states
-- gives now (a pair without recipient loses its row), and each campaign's counters move
-- by what the new rows count minus what the old ones counted; a counter that reaches
-- zero loses its row, as after a rebuild. Every CTE reads the snapshot from before the
-- statement, so `old` is the rows as they were whatever order the writes run in.
WITH pairs AS (
    SELECT DISTINCT * FROM unnest($1::uuid[], $2::uuid[]) AS t(campaign_id, recipient_id)
), old AS (
    SELECT s AS st FROM message_states s
    JOIN pairs p ON s.campaign_id = p.campaign_id AND s.recipient_id = p.recipient_id
), fresh AS (
    SELECT f AS st FROM compute_message_states($1::uuid[], $2::uuid[]) f
), gone AS (
    DELETE FROM message_states s USING old o
    WHERE s.campaign_id = (o.st).campaign_id AND s.recipient_id = (o.st).recipient_id
        AND NOT EXISTS (SELECT 1 FROM fresh f WHERE (f.st).campaign_id = (o.st).campaign_id
            AND (f.st).recipient_id = (o.st).recipient_id)
), stored AS (
    INSERT INTO message_states SELECT (f.st).* FROM fresh f
    ON CONFLICT (campaign_id, recipient_id) DO UPDATE SET
        (email, name, status, message_id, smtp_code, smtp_reply, hard_bounce, appended,
         reason, at, opens, human_opens, clicks, human_clicks, first_opened_at,
         first_human_opened_at, first_clicked_at, first_human_clicked_at, bounce, deferred,
         replied, auto_replied, unsubscribed, states)
      = (excluded.email, excluded.name, excluded.status, excluded.message_id,
         excluded.smtp_code, excluded.smtp_reply, excluded.hard_bounce, excluded.appended,
         excluded.reason, excluded.at, excluded.opens, excluded.human_opens, excluded.clicks,
         excluded.human_clicks, excluded.first_opened_at, excluded.first_human_opened_at,
         excluded.first_clicked_at, excluded.first_human_clicked_at, excluded.bounce,
         excluded.deferred, excluded.replied, excluded.auto_replied, excluded.unsubscribed,
         excluded.states)
    WHERE message_states IS DISTINCT FROM excluded
), moves AS (
    SELECT (o.st).campaign_id, k.counter, -k.n AS n
    FROM old o, LATERAL message_state_counters(o.st) k
    UNION ALL
    SELECT (f.st).campaign_id, k.counter, k.n
    FROM fresh f, LATERAL message_state_counters(f.st) k
), totals AS (
    SELECT m.campaign_id, m.counter, coalesce(min(c.n), 0) + sum(m.n) AS n
    FROM moves m
    LEFT JOIN campaign_counters c ON c.campaign_id = m.campaign_id AND c.counter = m.counter
    GROUP BY m.campaign_id, m.counter
    HAVING sum(m.n) <> 0
), zeroed AS (
    DELETE FROM campaign_counters c USING totals t
    WHERE t.n = 0 AND c.campaign_id = t.campaign_id AND c.counter = t.counter
)
INSERT INTO campaign_counters (campaign_id, counter, n)
SELECT campaign_id, counter, n FROM totals WHERE n <> 0
ON CONFLICT (campaign_id, counter) DO UPDATE SET n = excluded.n;

-- name: delete-campaign-states
DELETE FROM message_states WHERE campaign_id = $1;

-- name: delete-campaign-counters
DELETE FROM campaign_counters WHERE campaign_id = $1;
