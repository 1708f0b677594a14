-- Engagement (tracker) and mailbox sync (imap-sync): opens, clicks, unsubscribes,
-- bounces, delays, replies. One row per event, so unique counts are DISTINCT queries and
-- a message's history is a plain list.

-- Every pixel fetch, as the tracker judged it (see the *_seen views for the final call).
CREATE TABLE open_events (
    id              uuid PRIMARY KEY,          -- the event's id
    campaign_id     uuid NOT NULL,
    recipient_id    uuid NOT NULL,
    at              timestamptz NOT NULL,
    machine         boolean NOT NULL,
    machine_reason  text NOT NULL,
    user_agent      text NOT NULL
);
CREATE INDEX open_events_message_idx ON open_events (campaign_id, recipient_id);

CREATE TABLE link_clicks (
    id              uuid PRIMARY KEY,
    campaign_id     uuid NOT NULL,
    recipient_id    uuid NOT NULL,
    link_index      integer NOT NULL,
    url             text NOT NULL,
    at              timestamptz NOT NULL,
    machine         boolean NOT NULL,
    machine_reason  text NOT NULL,
    user_agent      text NOT NULL
);
CREATE INDEX link_clicks_message_idx ON link_clicks (campaign_id, recipient_id);

-- One row per recipient that unsubscribed from a campaign's message.
CREATE TABLE unsubscribes (
    campaign_id      uuid NOT NULL,
    recipient_id     uuid NOT NULL,
    email            text NOT NULL,
    method           text NOT NULL,
    unsubscribed_at  timestamptz NOT NULL,
    resubscribed_at  timestamptz,
    PRIMARY KEY (campaign_id, recipient_id)
);

-- Bounces, delays, replies and auto-replies read from a mailbox's bounce folder. The id is
-- "<kind>:<source>:<recipient>", so re-reading the same mail adds nothing.
CREATE TABLE delivery_events (
    id              text PRIMARY KEY,
    campaign_id     uuid NOT NULL,
    recipient_id    uuid NOT NULL,
    email           text NOT NULL,
    mailbox_id      uuid,
    kind            text NOT NULL,        -- bounced | deferred | replied | auto_replied
    hard            boolean NOT NULL DEFAULT false,
    repeatable      boolean NOT NULL DEFAULT false,  -- a soft bounce that counts to the limit
    status          text NOT NULL DEFAULT '',
    action          text NOT NULL DEFAULT '',
    diagnostic      text NOT NULL DEFAULT '',
    from_address    text NOT NULL DEFAULT '',
    subject         text NOT NULL DEFAULT '',
    source          text NOT NULL,
    at              timestamptz NOT NULL
);
CREATE INDEX delivery_events_message_idx ON delivery_events (campaign_id, recipient_id);
CREATE INDEX delivery_events_repeat_idx ON delivery_events (mailbox_id, lower(email), at)
    WHERE kind = 'bounced' AND repeatable;

-- Mail in a bounce folder that yielded nothing (unparsed, or matching no message).
CREATE TABLE inbound_skipped (
    source       text PRIMARY KEY,
    mailbox_id   uuid NOT NULL,
    folder       text NOT NULL,
    uidvalidity  bigint NOT NULL,
    uid          bigint NOT NULL,
    kind         text NOT NULL,
    reason       text NOT NULL,
    at           timestamptz NOT NULL
);

-- One suppression per reason: an unsubscribe is kept even when the address was already
-- suppressed by hand or by a bounce, so lifting one reason never lifts another.
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
ALTER TABLE suppressions ADD PRIMARY KEY (email_key, mailbox_key, reason);

-- The last message sent to an address (a bounce or auto-reply that quotes no Message-ID).
CREATE INDEX messages_sent_email_idx ON messages (lower(email), at DESC) WHERE status = 'sent';

-- Owned by imap-sync (not a read model): how far each mailbox's bounce folder was read.
CREATE TABLE imap_sync_state (
    mailbox_id   uuid NOT NULL,
    folder       text NOT NULL,
    uidvalidity  bigint NOT NULL,
    last_uid     bigint NOT NULL,
    synced_at    timestamptz NOT NULL,
    last_error   text NOT NULL DEFAULT '',
    PRIMARY KEY (mailbox_id, folder)
);

-- Opens and clicks with the final human/machine call: besides the tracker's own judgement
-- (proxies, Apple MPP, scanners, HEAD), a fetch within 10 seconds of the message being
-- sent is a machine's: security gateways and mail servers fetch on delivery, people
-- do not. Computed when read, so the projection stays a pure function of each event.
CREATE VIEW opens_seen AS
SELECT o.id, o.campaign_id, o.recipient_id, o.at, o.user_agent,
    o.machine OR coalesce(o.at < m.at + interval '10 seconds', false) AS machine,
    CASE WHEN o.machine THEN o.machine_reason
         WHEN o.at < m.at + interval '10 seconds' THEN 'prefetch' ELSE '' END AS machine_reason
FROM open_events o
LEFT JOIN messages m ON m.campaign_id = o.campaign_id AND m.recipient_id = o.recipient_id
    AND m.status = 'sent';

CREATE VIEW clicks_seen AS
SELECT c.id, c.campaign_id, c.recipient_id, c.link_index, c.url, c.at, c.user_agent,
    c.machine OR coalesce(c.at < m.at + interval '10 seconds', false) AS machine,
    CASE WHEN c.machine THEN c.machine_reason
         WHEN c.at < m.at + interval '10 seconds' THEN 'prefetch' ELSE '' END AS machine_reason
FROM link_clicks c
LEFT JOIN messages m ON m.campaign_id = c.campaign_id AND m.recipient_id = c.recipient_id
    AND m.status = 'sent';

-- Every recipient of a campaign with its sending outcome (`queued` while it has none) and
-- what followed; `states` lists the later states that apply, for filtering by one.
CREATE VIEW message_results AS
SELECT x.*, array_remove(ARRAY[
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
  ], NULL) AS states
FROM (
  SELECT r.campaign_id, r.id AS recipient_id, r.email, r.name,
       coalesce(m.status, 'queued') AS status, m.message_id, m.smtp_code,
       coalesce(m.smtp_reply, '') AS smtp_reply, coalesce(m.hard_bounce, false) AS hard_bounce,
       coalesce(m.appended, false) AS appended, coalesce(m.reason, '') AS reason, m.at,
       (SELECT count(*) FROM opens_seen o
          WHERE o.campaign_id = r.campaign_id AND o.recipient_id = r.id) AS opens,
       (SELECT count(*) FROM opens_seen o WHERE o.campaign_id = r.campaign_id
          AND o.recipient_id = r.id AND NOT o.machine) AS human_opens,
       (SELECT count(*) FROM clicks_seen c
          WHERE c.campaign_id = r.campaign_id AND c.recipient_id = r.id) AS clicks,
       (SELECT count(*) FROM clicks_seen c WHERE c.campaign_id = r.campaign_id
          AND c.recipient_id = r.id AND NOT c.machine) AS human_clicks,
       (SELECT CASE WHEN bool_or(d.hard) THEN 'hard' WHEN count(*) > 0 THEN 'soft' END
          FROM delivery_events d WHERE d.campaign_id = r.campaign_id
          AND d.recipient_id = r.id AND d.kind = 'bounced') AS bounce,
       EXISTS (SELECT 1 FROM delivery_events d WHERE d.campaign_id = r.campaign_id
          AND d.recipient_id = r.id AND d.kind = 'deferred') AS deferred,
       EXISTS (SELECT 1 FROM delivery_events d WHERE d.campaign_id = r.campaign_id
          AND d.recipient_id = r.id AND d.kind = 'replied') AS replied,
       EXISTS (SELECT 1 FROM delivery_events d WHERE d.campaign_id = r.campaign_id
          AND d.recipient_id = r.id AND d.kind = 'auto_replied') AS auto_replied,
       EXISTS (SELECT 1 FROM unsubscribes u WHERE u.campaign_id = r.campaign_id
          AND u.recipient_id = r.id AND u.resubscribed_at IS NULL) AS unsubscribed
  FROM recipients r
  LEFT JOIN messages m ON m.campaign_id = r.campaign_id AND m.recipient_id = r.id
) x;
