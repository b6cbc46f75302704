-- Signing keys: Ed25519, the private half encrypted at rest (AES-256-GCM with the configured
-- key), published until `retires_at`. The newest non-retired key signs.
CREATE TABLE signing_keys (
    kid                    text        PRIMARY KEY,
    algorithm              text        NOT NULL CHECK (algorithm = 'EdDSA'),
    public_key             bytea       NOT NULL CHECK (length(public_key) = 32),
    private_key_ciphertext bytea       NOT NULL,
    private_key_nonce      bytea       NOT NULL CHECK (length(private_key_nonce) = 12),
    created_at             timestamptz NOT NULL DEFAULT now(),
    retires_at             timestamptz
);

-- Refresh tokens: only a hash is stored; each use spends the token and issues the next of the
-- same family; presenting a spent token revokes the family.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY,
    family_id   uuid        NOT NULL,
    account_id  uuid        NOT NULL REFERENCES accounts (id),
    token_hash  bytea       NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    spent_at    timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
