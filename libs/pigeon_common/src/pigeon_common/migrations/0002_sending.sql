-- Sending: campaign run state, registered links, per-recipient outcomes, suppressions.

-- auto: APPEND unless the provider files SMTP submissions in Sent itself (checked once).
ALTER TABLE mailboxes ADD COLUMN append_to_sent text NOT NULL DEFAULT 'auto';

ALTER TABLE campaigns
    ADD COLUMN send_at timestamptz,
    ADD COLUMN run_id uuid,
    ADD COLUMN run_chunks integer,
    ADD COLUMN batch_size integer,
    ADD COLUMN sleep_between_batches_sec double precision,
    ADD COLUMN status_reason text NOT NULL DEFAULT '',
    ADD COLUMN started_at timestamptz,
    ADD COLUMN finished_at timestamptz;

CREATE TABLE campaign_links (
    campaign_id  uuid NOT NULL,
    link_index   integer NOT NULL,
    url          text NOT NULL,
    PRIMARY KEY (campaign_id, link_index)
);

-- One row per recipient that has an outcome; recipients of a sending campaign without a
-- row are queued. `rank` orders outcomes so a late "unknown" never hides a "sent".
CREATE TABLE messages (
    campaign_id   uuid NOT NULL,
    recipient_id  uuid NOT NULL,
    email         text NOT NULL,
    status        text NOT NULL,
    rank          smallint NOT NULL,
    message_id    text,
    smtp_code     integer,
    smtp_reply    text NOT NULL DEFAULT '',
    hard_bounce   boolean NOT NULL DEFAULT false,
    appended      boolean NOT NULL DEFAULT false,
    reason        text NOT NULL DEFAULT '',
    at            timestamptz NOT NULL,
    last_seq      bigint NOT NULL,
    PRIMARY KEY (campaign_id, recipient_id)
);
CREATE INDEX messages_status_idx ON messages (campaign_id, status);

-- mailbox_key is the mailbox id, or the nil UUID for a suppression from every mailbox.
CREATE TABLE suppressions (
    email_key    text NOT NULL,
    mailbox_key  uuid NOT NULL,
    email        text NOT NULL,
    reason       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (email_key, mailbox_key)
);
