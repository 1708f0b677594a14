-- Roles, owners and shares (issue: access control between users).

-- Users (API-owned): a role instead of an admin flag.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'member'
    CHECK (role IN ('admin', 'member', 'viewer'));
UPDATE users SET role = 'admin' WHERE is_admin;
ALTER TABLE users DROP COLUMN is_admin;

-- A side's password can be dropped (its server changed) or absent (an SMTP relay).
ALTER TABLE mailbox_secrets ALTER COLUMN smtp_password DROP NOT NULL;
ALTER TABLE mailbox_secrets ALTER COLUMN imap_password DROP NOT NULL;

-- Read models (rebuilt from the stream).
ALTER TABLE mailboxes ADD COLUMN owner_id uuid;
ALTER TABLE campaigns ADD COLUMN owner_id uuid;
ALTER TABLE campaigns ADD COLUMN cloned_from uuid;
CREATE INDEX mailboxes_owner_idx ON mailboxes (owner_id);
CREATE INDEX campaigns_owner_idx ON campaigns (owner_id, created_at DESC);

CREATE TABLE mailbox_shares (
    mailbox_id uuid NOT NULL,
    user_id    uuid NOT NULL,
    PRIMARY KEY (mailbox_id, user_id)
);
CREATE INDEX mailbox_shares_user_idx ON mailbox_shares (user_id);

CREATE TABLE campaign_shares (
    campaign_id uuid NOT NULL,
    user_id     uuid NOT NULL,
    PRIMARY KEY (campaign_id, user_id)
);
CREATE INDEX campaign_shares_user_idx ON campaign_shares (user_id);
