-- One-time login codes for beneficiaries: hashed, 10 minutes, 5 tries, single use.
CREATE TABLE one_time_codes (
    id          uuid        PRIMARY KEY,
    account_id  uuid        NOT NULL REFERENCES accounts (id),
    code_hash   bytea       NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX one_time_codes_account ON one_time_codes (account_id, created_at DESC);

-- Partner systems' client secrets: only a hash, one current secret per service account.
ALTER TABLE accounts ADD COLUMN client_secret_hash bytea;
