-- Per-message states and per-campaign counters, so the admin's lists and numbers never
-- count rows per request. Both are read models kept by the projector (pigeon_common
-- .message_states): after each batch it recomputes the state row of every (campaign,
-- recipient) the batch touched from the tables above, and moves the campaign's counters
-- by the difference between the old row and the new one. Counters are therefore the sum
-- over the state rows, whatever the batch sizes, and a rebuild gives the same tables.

-- One row per recipient: what message_results computes, stored. `states` lists the later
-- states that apply (opened, opened_human, clicked, ..., unsubscribed), as in that view.
CREATE TABLE message_states (
    campaign_id           uuid NOT NULL,
    recipient_id          uuid NOT NULL,
    email                 text NOT NULL,
    name                  text NOT NULL,
    status                text NOT NULL,          -- queued | sent | failed | unknown | suppressed
    message_id            text,
    smtp_code             integer,
    smtp_reply            text NOT NULL,
    hard_bounce           boolean NOT NULL,
    appended              boolean NOT NULL,
    reason                text NOT NULL,
    at                    timestamptz,
    opens                 integer NOT NULL,
    human_opens           integer NOT NULL,
    clicks                integer NOT NULL,
    human_clicks          integer NOT NULL,
    first_opened_at       timestamptz,
    first_human_opened_at timestamptz,
    first_clicked_at      timestamptz,
    first_human_clicked_at timestamptz,
    bounce                text,                   -- hard | soft | null
    deferred              boolean NOT NULL,
    replied               boolean NOT NULL,
    auto_replied          boolean NOT NULL,
    unsubscribed          boolean NOT NULL,
    states                text[] NOT NULL,
    PRIMARY KEY (campaign_id, recipient_id)
);
CREATE INDEX message_states_email_idx ON message_states (campaign_id, lower(email), recipient_id);
CREATE INDEX message_states_states_idx ON message_states USING gin (states);

-- The counters of one campaign, one row per counter (zero counters have no row).
CREATE TABLE campaign_counters (
    campaign_id  uuid NOT NULL,
    counter      text NOT NULL,
    n            bigint NOT NULL,
    PRIMARY KEY (campaign_id, counter)
);

-- What one state row adds to its campaign's counters: the one definition of every
-- counter (recipients, each outcome, unique opened/clicked/bounced/... recipients, and
-- the opens and clicks themselves).
CREATE FUNCTION message_state_counters(s message_states)
RETURNS TABLE (counter text, n bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT k.counter, k.n FROM (VALUES
        ('recipients', 1),
        ('queued', (s.status = 'queued')::int),
        ('sent', (s.status = 'sent')::int),
        ('failed', (s.status = 'failed')::int),
        ('unknown', (s.status = 'unknown')::int),
        ('suppressed', (s.status = 'suppressed')::int),
        ('opens', s.opens),
        ('human_opens', s.human_opens),
        ('opened', (s.opens > 0)::int),
        ('opened_human', (s.human_opens > 0)::int),
        ('opened_machine', (s.opens > s.human_opens)::int),
        ('clicks', s.clicks),
        ('human_clicks', s.human_clicks),
        ('clicked', (s.clicks > 0)::int),
        ('clicked_human', (s.human_clicks > 0)::int),
        ('bounced', (s.bounce IS NOT NULL)::int),
        ('bounced_hard', (s.bounce = 'hard')::int),
        ('bounced_soft', (s.bounce = 'soft')::int),
        ('deferred', s.deferred::int),
        ('replied', s.replied::int),
        ('auto_replied', s.auto_replied::int),
        ('unsubscribed', s.unsubscribed::int)
    ) AS k(counter, n)
    WHERE k.n <> 0
$$;

-- The state rows a set of (campaign, recipient) pairs has now, computed from the read
-- models (opens and clicks as finally judged in the *_seen views).
CREATE FUNCTION compute_message_states(campaign_ids uuid[], recipient_ids uuid[])
RETURNS SETOF message_states
LANGUAGE sql STABLE AS $$
    SELECT x.campaign_id, x.recipient_id, x.email, x.name, x.status, x.message_id,
        x.smtp_code, x.smtp_reply, x.hard_bounce, x.appended, x.reason, x.at,
        x.opens, x.human_opens, x.clicks, x.human_clicks, x.first_opened_at,
        x.first_human_opened_at, x.first_clicked_at, x.first_human_clicked_at,
        x.bounce, x.deferred, x.replied, x.auto_replied, x.unsubscribed,
        array_remove(ARRAY[
            CASE WHEN x.opens > 0 THEN 'opened' END,
            CASE WHEN x.human_opens > 0 THEN 'opened_human' END,
            CASE WHEN x.clicks > 0 THEN 'clicked' END,
            CASE WHEN x.human_clicks > 0 THEN 'clicked_human' END,
            CASE WHEN x.bounce IS NOT NULL THEN 'bounced' END,
            CASE WHEN x.bounce = 'hard' THEN 'bounced_hard' END,
            CASE WHEN x.bounce = 'soft' THEN 'bounced_soft' END,
            CASE WHEN x.deferred THEN 'deferred' END,
            CASE WHEN x.replied THEN 'replied' END,
            CASE WHEN x.auto_replied THEN 'auto_replied' END,
            CASE WHEN x.unsubscribed THEN 'unsubscribed' END
        ], NULL)
    FROM (
        SELECT r.campaign_id, r.id AS recipient_id, r.email, r.name,
            coalesce(m.status, 'queued') AS status, m.message_id, m.smtp_code,
            coalesce(m.smtp_reply, '') AS smtp_reply,
            coalesce(m.hard_bounce, false) AS hard_bounce,
            coalesce(m.appended, false) AS appended, coalesce(m.reason, '') AS reason, m.at,
            o.opens::int, o.human_opens::int, c.clicks::int, c.human_clicks::int,
            o.first_at AS first_opened_at, o.first_human_at AS first_human_opened_at,
            c.first_at AS first_clicked_at, c.first_human_at AS first_human_clicked_at,
            d.bounce, d.deferred, d.replied, d.auto_replied,
            EXISTS (SELECT 1 FROM unsubscribes u WHERE u.campaign_id = r.campaign_id
                AND u.recipient_id = r.id AND u.resubscribed_at IS NULL) AS unsubscribed
        FROM (SELECT DISTINCT t.campaign_id, t.recipient_id
              FROM unnest(campaign_ids, recipient_ids) AS t(campaign_id, recipient_id)) t
        JOIN recipients r ON r.campaign_id = t.campaign_id AND r.id = t.recipient_id
        LEFT JOIN messages m ON m.campaign_id = r.campaign_id AND m.recipient_id = r.id
        CROSS JOIN LATERAL (
            SELECT count(*) AS opens, count(*) FILTER (WHERE NOT v.machine) AS human_opens,
                min(v.at) AS first_at, min(v.at) FILTER (WHERE NOT v.machine) AS first_human_at
            FROM opens_seen v WHERE v.campaign_id = r.campaign_id AND v.recipient_id = r.id
        ) o
        CROSS JOIN LATERAL (
            SELECT count(*) AS clicks, count(*) FILTER (WHERE NOT v.machine) AS human_clicks,
                min(v.at) AS first_at, min(v.at) FILTER (WHERE NOT v.machine) AS first_human_at
            FROM clicks_seen v WHERE v.campaign_id = r.campaign_id AND v.recipient_id = r.id
        ) c
        CROSS JOIN LATERAL (
            SELECT CASE WHEN bool_or(e.hard) FILTER (WHERE e.kind = 'bounced') THEN 'hard'
                        WHEN count(*) FILTER (WHERE e.kind = 'bounced') > 0 THEN 'soft'
                   END AS bounce,
                coalesce(bool_or(e.kind = 'deferred'), false) AS deferred,
                coalesce(bool_or(e.kind = 'replied'), false) AS replied,
                coalesce(bool_or(e.kind = 'auto_replied'), false) AS auto_replied
            FROM delivery_events e WHERE e.campaign_id = r.campaign_id AND e.recipient_id = r.id
        ) d
    ) x
$$;

-- The read models that exist already get their states and counters now.
INSERT INTO message_states
SELECT s.* FROM compute_message_states(
    ARRAY(SELECT campaign_id FROM recipients ORDER BY campaign_id, id),
    ARRAY(SELECT id FROM recipients ORDER BY campaign_id, id)) s;
INSERT INTO campaign_counters (campaign_id, counter, n)
SELECT s.campaign_id, k.counter, sum(k.n) FROM message_states s,
    LATERAL message_state_counters(s) k
GROUP BY s.campaign_id, k.counter;

-- The counters of each campaign as columns (a missing counter is 0).
CREATE VIEW campaign_numbers AS
SELECT campaign_id,
    coalesce(sum(n) FILTER (WHERE counter = 'recipients'), 0) AS recipients,
    coalesce(sum(n) FILTER (WHERE counter = 'queued'), 0) AS queued,
    coalesce(sum(n) FILTER (WHERE counter = 'sent'), 0) AS sent,
    coalesce(sum(n) FILTER (WHERE counter = 'failed'), 0) AS failed,
    coalesce(sum(n) FILTER (WHERE counter = 'unknown'), 0) AS unknown,
    coalesce(sum(n) FILTER (WHERE counter = 'suppressed'), 0) AS suppressed,
    coalesce(sum(n) FILTER (WHERE counter = 'opens'), 0) AS opens,
    coalesce(sum(n) FILTER (WHERE counter = 'human_opens'), 0) AS human_opens,
    coalesce(sum(n) FILTER (WHERE counter = 'opened'), 0) AS opened,
    coalesce(sum(n) FILTER (WHERE counter = 'opened_human'), 0) AS opened_human,
    coalesce(sum(n) FILTER (WHERE counter = 'opened_machine'), 0) AS opened_machine,
    coalesce(sum(n) FILTER (WHERE counter = 'clicks'), 0) AS clicks,
    coalesce(sum(n) FILTER (WHERE counter = 'human_clicks'), 0) AS human_clicks,
    coalesce(sum(n) FILTER (WHERE counter = 'clicked'), 0) AS clicked,
    coalesce(sum(n) FILTER (WHERE counter = 'clicked_human'), 0) AS clicked_human,
    coalesce(sum(n) FILTER (WHERE counter = 'bounced'), 0) AS bounced,
    coalesce(sum(n) FILTER (WHERE counter = 'bounced_hard'), 0) AS bounced_hard,
    coalesce(sum(n) FILTER (WHERE counter = 'bounced_soft'), 0) AS bounced_soft,
    coalesce(sum(n) FILTER (WHERE counter = 'deferred'), 0) AS deferred,
    coalesce(sum(n) FILTER (WHERE counter = 'replied'), 0) AS replied,
    coalesce(sum(n) FILTER (WHERE counter = 'auto_replied'), 0) AS auto_replied,
    coalesce(sum(n) FILTER (WHERE counter = 'unsubscribed'), 0) AS unsubscribed
FROM campaign_counters GROUP BY campaign_id;

-- Owned by the API (not a read model): the admin's sign-in sessions. `id` is the SHA-256
-- of the cookie's value (a stolen table gives no usable cookie); `password_fingerprint`
-- ties the session to the password it was opened with, so a password change, from any
-- surface, ends every session of that user.
CREATE TABLE admin_sessions (
    id                    text PRIMARY KEY,
    user_id               uuid NOT NULL,
    password_fingerprint  text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL
);
CREATE INDEX admin_sessions_user_idx ON admin_sessions (user_id);
