-- Accounts get a phone (E.164, unique) and a version that makes their etag.
ALTER TABLE accounts
    ADD COLUMN phone      text UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{7,14}$'),
    ADD COLUMN version    bigint      NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX accounts_organization ON accounts (organization_id);
