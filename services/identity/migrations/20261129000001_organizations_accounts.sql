-- Organisations (partners, incubator, employers, donor, payment providers) and the staff,
-- beneficiary and service accounts that act for them. Extended by the identity capability.
CREATE TABLE organizations (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    kind       text        NOT NULL CHECK (kind IN ('partner_ngo', 'incubator', 'employer', 'donor', 'payment_provider')),
    zones      text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id              uuid        PRIMARY KEY,
    kind            text        NOT NULL CHECK (kind IN ('staff', 'beneficiary', 'service')),
    email           text        UNIQUE,
    display_name    text        NOT NULL,
    password_hash   text,
    organization_id uuid        REFERENCES organizations (id),
    status          text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_bindings (
    id              uuid   PRIMARY KEY,
    account_id      uuid   NOT NULL REFERENCES accounts (id),
    role            text   NOT NULL CHECK (role IN ('admin', 'program_manager', 'officer', 'reviewer', 'coach',
                                                    'finance_officer', 'auditor', 'beneficiary', 'partner_system')),
    organization_id uuid   REFERENCES organizations (id),
    zones           text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX role_bindings_account ON role_bindings (account_id);
