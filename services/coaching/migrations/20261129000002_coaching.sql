-- Rooms, hours, coaches, engagements with their plans, sessions and attendance. Double booking
-- of a coach, a room or a participant is refused by exclusion constraints over time ranges, so
-- no interleaving of concurrent requests can get past it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE office_hours (
    office_code text    NOT NULL REFERENCES offices (code),
    weekday     integer NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens       time    NOT NULL,
    closes      time    NOT NULL CHECK (closes > opens),
    PRIMARY KEY (office_code, weekday)
);

CREATE TABLE office_closures (
    office_code text NOT NULL REFERENCES offices (code),
    day         date NOT NULL,
    PRIMARY KEY (office_code, day)
);

CREATE TABLE rooms (
    office_code text    NOT NULL REFERENCES offices (code),
    code        text    NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    name        text    NOT NULL,
    capacity    integer NOT NULL CHECK (capacity > 0),
    PRIMARY KEY (office_code, code)
);

CREATE TABLE coaches (
    account_id   uuid        PRIMARY KEY,
    display_name text        NOT NULL,
    office_code  text        NOT NULL REFERENCES offices (code),
    languages    text[]      NOT NULL,
    expertise    text[]      NOT NULL DEFAULT '{}',
    weekly_hours integer     NOT NULL CHECK (weekly_hours BETWEEN 1 AND 60),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE engagements (
    id                   uuid        PRIMARY KEY,
    award                text,
    application          text        NOT NULL,
    window_code          text        NOT NULL,
    zone                 text        NOT NULL,
    beneficiaries        uuid[]      NOT NULL CHECK (cardinality(beneficiaries) > 0),
    beneficiary_accounts uuid[]      NOT NULL DEFAULT '{}',
    languages            text[]      NOT NULL DEFAULT '{}',
    coach_id             uuid        REFERENCES coaches (account_id),
    hours_budget         integer     NOT NULL CHECK (hours_budget >= 0),
    state                text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'closed')),
    version              bigint      NOT NULL DEFAULT 1,
    created_by           text        NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
-- One engagement per award, however often the award event is delivered.
CREATE UNIQUE INDEX engagements_one_per_award ON engagements (award) WHERE award IS NOT NULL;
CREATE INDEX engagements_by_coach ON engagements (coach_id, id);
CREATE INDEX engagements_by_zone ON engagements (zone, id);
CREATE INDEX engagements_by_account ON engagements USING gin (beneficiary_accounts);

CREATE TABLE coach_assignments (
    engagement_id uuid        NOT NULL REFERENCES engagements (id),
    position      integer     NOT NULL,
    coach_id      uuid        NOT NULL REFERENCES coaches (account_id),
    reason        text        NOT NULL,
    assigned_by   text        NOT NULL,
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (engagement_id, position)
);

CREATE TABLE milestones (
    engagement_id    uuid        NOT NULL REFERENCES engagements (id),
    code             text        NOT NULL,
    title            text        NOT NULL,
    position         integer     NOT NULL,
    due_on           date        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'completed', 'verified', 'rejected')),
    evidence         text[]      NOT NULL DEFAULT '{}',
    note             text        NOT NULL DEFAULT '',
    completed_by     text,
    reviewed_by      text,
    rejection_reason text,
    verified_at      timestamptz,
    PRIMARY KEY (engagement_id, code)
);

CREATE TABLE sessions (
    id          uuid        PRIMARY KEY,
    coach_id    uuid        NOT NULL REFERENCES coaches (account_id),
    office_code text,
    room_code   text,
    during      tstzrange   NOT NULL CHECK (NOT isempty(during) AND upper(during) - lower(during) <= interval '8 hours'),
    topic       text        NOT NULL DEFAULT '',
    state       text        NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'held', 'cancelled')),
    notes       text        NOT NULL DEFAULT '',
    reason      text        NOT NULL DEFAULT '',
    version     bigint      NOT NULL DEFAULT 1,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (office_code, room_code) REFERENCES rooms (office_code, code),
    CONSTRAINT sessions_coach_free EXCLUDE USING gist (coach_id WITH =, during WITH &&) WHERE (state <> 'cancelled'),
    CONSTRAINT sessions_room_free EXCLUDE USING gist (office_code WITH =, room_code WITH =, during WITH &&)
        WHERE (state <> 'cancelled' AND room_code IS NOT NULL)
);
CREATE INDEX sessions_by_start ON sessions (lower(during), id);

CREATE TABLE session_engagements (
    session_id    uuid NOT NULL REFERENCES sessions (id),
    engagement_id uuid NOT NULL REFERENCES engagements (id),
    PRIMARY KEY (session_id, engagement_id)
);
CREATE INDEX session_engagements_by_engagement ON session_engagements (engagement_id, session_id);

-- Participants carry the session's time range so that a person is never in two sessions at once.
CREATE TABLE session_participants (
    session_id   uuid      NOT NULL REFERENCES sessions (id),
    applicant_id uuid      NOT NULL,
    during       tstzrange NOT NULL,
    active       boolean   NOT NULL DEFAULT true,
    present      boolean,
    PRIMARY KEY (session_id, applicant_id),
    CONSTRAINT session_participants_free EXCLUDE USING gist (applicant_id WITH =, during WITH &&) WHERE (active)
);
