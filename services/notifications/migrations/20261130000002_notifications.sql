-- Templates, preferences, opted-out numbers, messages and the in-app inbox.

-- A template is never changed: saving one adds a version; the newest is used.
CREATE TABLE templates (
    message_type      text        NOT NULL,
    channel           text        NOT NULL CHECK (channel IN ('sms', 'email', 'whatsapp')),
    locale            text        NOT NULL CHECK (locale ~ '^[a-z]{2,3}(-[A-Z]{2})?$'),
    version           integer     NOT NULL CHECK (version > 0),
    subject           text        NOT NULL DEFAULT '',
    body              text        NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    provider_template text        NOT NULL DEFAULT '',
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_type, channel, locale, version),
    CHECK (channel <> 'whatsapp' OR provider_template <> '')
);

CREATE TABLE preferences (
    applicant_id    uuid        PRIMARY KEY,
    channels        text[]      NOT NULL DEFAULT '{}',
    language        text        NOT NULL DEFAULT '',
    opted_out_kinds text[]      NOT NULL DEFAULT '{}' CHECK (NOT ('service' = ANY (opted_out_kinds))),
    version         bigint      NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Numbers that answered STOP, by keyed hash (the number itself is not kept here).
CREATE TABLE opted_out_numbers (
    address_hash bytea       PRIMARY KEY,
    channel      text        NOT NULL,
    opted_out_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, recipient, message type): the unique key is what makes a redelivered
-- event a no-op. The channel is chosen when the message is first routed, at send time, from the
-- person's contact details and preferences; the details themselves are not kept.
CREATE TABLE messages (
    id                 uuid        PRIMARY KEY,
    event_id           uuid        NOT NULL,
    event_type         text        NOT NULL,
    message_type       text        NOT NULL,
    recipient          text        NOT NULL CHECK (recipient ~ '^(applicants|accounts)/[0-9a-f-]{36}$'),
    kind               text        NOT NULL CHECK (kind IN ('service', 'update', 'reminder')),
    state              text        NOT NULL DEFAULT 'queued'
                                   CHECK (state IN ('queued', 'sent', 'delivered', 'failed', 'dead', 'skipped')),
    channel            text        CHECK (channel IN ('sms', 'email', 'whatsapp')),
    -- Values from the event that are not personal data (amounts, references, times).
    variables          jsonb       NOT NULL DEFAULT '{}',
    -- Personal values an event carries (a one-time code and its phone), sealed; erased once sent.
    sealed             bytea,
    sealed_key         text,
    -- What the message is about, for cancelling it (`sessions/{id}` for a reminder).
    about              text        NOT NULL DEFAULT '',
    time_zone          text        NOT NULL DEFAULT 'Africa/Casablanca',
    account            text        NOT NULL DEFAULT '',
    locale             text        NOT NULL DEFAULT '',
    template_version   integer     NOT NULL DEFAULT 0,
    attempts           integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    provider_reference text        NOT NULL DEFAULT '',
    last_error         text        NOT NULL DEFAULT '',
    segments           integer     NOT NULL DEFAULT 0,
    address_hash       bytea,
    event_time         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    due_at             timestamptz NOT NULL DEFAULT now(),
    lease_until        timestamptz,
    sent_at            timestamptz,
    delivered_at       timestamptz,
    UNIQUE (event_id, recipient, message_type)
);
CREATE INDEX messages_due ON messages (due_at) WHERE state = 'queued';
CREATE INDEX messages_recipient ON messages (recipient, created_at DESC);
CREATE INDEX messages_state ON messages (state, created_at DESC) WHERE state IN ('dead', 'failed', 'skipped');
CREATE INDEX messages_about ON messages (about) WHERE about <> '' AND state = 'queued';
CREATE UNIQUE INDEX messages_provider_reference ON messages (channel, provider_reference) WHERE provider_reference <> '';

-- The in-app inbox: a copy of every message routed to a person (whatever the channel).
CREATE TABLE inbox_items (
    id           uuid        PRIMARY KEY,
    message_id   uuid        NOT NULL UNIQUE REFERENCES messages (id),
    applicant_id uuid        NOT NULL,
    account      text        NOT NULL DEFAULT '',
    message_type text        NOT NULL,
    locale       text        NOT NULL,
    title        text        NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz
);
CREATE INDEX inbox_items_applicant ON inbox_items (applicant_id, created_at DESC, id DESC);
