-- Reference data every program refers to: the zones, the incubator's windows, and programs.
-- Extended by the intake capability (applicants, calls, applications).
CREATE TABLE zones (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    name text NOT NULL
);

CREATE TABLE windows (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    name        text NOT NULL,
    description text NOT NULL
);

CREATE TABLE programs (
    id                  uuid        PRIMARY KEY,
    code                text        NOT NULL UNIQUE,
    name                text        NOT NULL,
    donor               text        NOT NULL,
    currency_code       text        NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    envelope_minor      bigint      NOT NULL CHECK (envelope_minor >= 0),
    starts_on           date        NOT NULL,
    ends_on             date        NOT NULL CHECK (ends_on > starts_on),
    zones               text[]      NOT NULL,
    windows             text[]      NOT NULL,
    partner_org_names   text[]      NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
