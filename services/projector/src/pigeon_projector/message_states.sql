-- The projector's upkeep of message_states and campaign_counters (migration 0008).
-- $1, $2: the campaign ids and recipient ids (pairwise) that one batch touched.

-- name: refresh-message-states
-- In one statement: the touched pairs' state rows become what compute_message_states
-- gives now (a pair without recipient loses its row), and each campaign's counters move
-- by what the new rows count minus what the old ones counted; a counter that reaches
-- zero loses its row, as after a rebuild. Every CTE reads the snapshot from before the
-- statement, so `old` is the rows as they were whatever order the writes run in. The
-- counters are summed per campaign first and only then turned into (counter, n) rows:
-- one aggregate pass instead of a row per counter per state row. Their names are the
-- columns of the campaign_numbers view.
WITH pairs AS (
    SELECT DISTINCT * FROM unnest($1::uuid[], $2::uuid[]) AS t(campaign_id, recipient_id)
), old AS (
    SELECT s.* FROM message_states s
    JOIN pairs p ON s.campaign_id = p.campaign_id AND s.recipient_id = p.recipient_id
), fresh AS (
    SELECT f.* FROM compute_message_states($1::uuid[], $2::uuid[]) f
), gone AS (
    DELETE FROM message_states s USING old o
    WHERE s.campaign_id = o.campaign_id AND s.recipient_id = o.recipient_id
        AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.campaign_id = o.campaign_id
            AND f.recipient_id = o.recipient_id)
), stored AS (
    INSERT INTO message_states SELECT f.* FROM fresh f
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
    SELECT -1 AS sign, o.* FROM old o
    UNION ALL
    SELECT 1, f.* FROM fresh f
), sums AS (
    SELECT campaign_id,
        sum(sign) AS recipients,
        sum(sign) FILTER (WHERE status = 'queued') AS queued,
        sum(sign) FILTER (WHERE status = 'sent') AS sent,
        sum(sign) FILTER (WHERE status = 'failed') AS failed,
        sum(sign) FILTER (WHERE status = 'unknown') AS unknown,
        sum(sign) FILTER (WHERE status = 'suppressed') AS suppressed,
        sum(sign * opens) AS opens,
        sum(sign * human_opens) AS human_opens,
        sum(sign) FILTER (WHERE opens > 0) AS opened,
        sum(sign) FILTER (WHERE human_opens > 0) AS opened_human,
        sum(sign) FILTER (WHERE opens > human_opens) AS opened_machine,
        sum(sign * clicks) AS clicks,
        sum(sign * human_clicks) AS human_clicks,
        sum(sign) FILTER (WHERE clicks > 0) AS clicked,
        sum(sign) FILTER (WHERE human_clicks > 0) AS clicked_human,
        sum(sign) FILTER (WHERE bounce IS NOT NULL) AS bounced,
        sum(sign) FILTER (WHERE bounce = 'hard') AS bounced_hard,
        sum(sign) FILTER (WHERE bounce = 'soft') AS bounced_soft,
        sum(sign) FILTER (WHERE deferred) AS deferred,
        sum(sign) FILTER (WHERE replied) AS replied,
        sum(sign) FILTER (WHERE auto_replied) AS auto_replied,
        sum(sign) FILTER (WHERE unsubscribed) AS unsubscribed
    FROM moves GROUP BY campaign_id
), deltas AS (
    SELECT s.campaign_id, k.counter, k.n FROM sums s, LATERAL (VALUES
        ('recipients', s.recipients), ('queued', s.queued), ('sent', s.sent),
        ('failed', s.failed), ('unknown', s.unknown), ('suppressed', s.suppressed),
        ('opens', s.opens), ('human_opens', s.human_opens), ('opened', s.opened),
        ('opened_human', s.opened_human), ('opened_machine', s.opened_machine),
        ('clicks', s.clicks), ('human_clicks', s.human_clicks), ('clicked', s.clicked),
        ('clicked_human', s.clicked_human), ('bounced', s.bounced),
        ('bounced_hard', s.bounced_hard), ('bounced_soft', s.bounced_soft),
        ('deferred', s.deferred), ('replied', s.replied), ('auto_replied', s.auto_replied),
        ('unsubscribed', s.unsubscribed)) AS k(counter, n)
    WHERE k.n IS NOT NULL AND k.n <> 0
), totals AS (
    SELECT d.campaign_id, d.counter, coalesce(c.n, 0) + d.n AS n
    FROM deltas d
    LEFT JOIN campaign_counters c ON c.campaign_id = d.campaign_id AND c.counter = d.counter
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
