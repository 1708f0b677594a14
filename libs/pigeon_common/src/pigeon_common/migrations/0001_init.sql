-- Tables owned by the API (configuration, not part of the event history) ------------

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    token_epoch   integer NOT NULL DEFAULT 0,   -- bumped to revoke every token at once
    is_admin      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- SMTP and IMAP passwords, encrypted with a key derived from PIGEON_SECRET_KEY.
CREATE TABLE mailbox_secrets (
    mailbox_id     uuid PRIMARY KEY,
    smtp_password  text NOT NULL,
    imap_password  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Projection bookkeeping ------------------------------------------------------------

CREATE TABLE projection_checkpoints (
    projection text PRIMARY KEY,
    last_seq   bigint NOT NULL
);

-- Read models: rebuilt from the EVENTS stream by `pigeon projector rebuild` ----------

CREATE TABLE mailboxes (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    from_name        text NOT NULL,
    from_address     text NOT NULL,
    smtp_host        text NOT NULL,
    smtp_port        integer NOT NULL,
    smtp_security    text NOT NULL,
    smtp_username    text NOT NULL,
    imap_host        text NOT NULL,
    imap_port        integer NOT NULL,
    imap_security    text NOT NULL,
    imap_username    text NOT NULL,
    sent_folder      text NOT NULL,
    bounce_folder    text NOT NULL,
    rate_per_second  integer,
    rate_per_hour    integer,
    rate_per_day     integer,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_seq         bigint NOT NULL
);

CREATE TABLE campaigns (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    subject           text NOT NULL,
    template_markdown text NOT NULL,
    mailbox_id        uuid,
    status            text NOT NULL DEFAULT 'draft',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_seq          bigint NOT NULL
);
CREATE INDEX campaigns_created_idx ON campaigns (created_at DESC, id);

CREATE TABLE recipients (
    campaign_id  uuid NOT NULL,
    id           uuid NOT NULL,
    email        text NOT NULL,
    name         text NOT NULL,
    attributes   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, id)
);
CREATE INDEX recipients_email_idx ON recipients (campaign_id, lower(email));

-- Events the projector could not apply (unknown type, invalid payload): kept, not lost.
CREATE TABLE projection_skipped (
    seq        bigint PRIMARY KEY,
    event_type text NOT NULL,
    error      text NOT NULL
);
