-- The person registry, calls for applications, applications, review and selection.
-- Personal identifiers (phone, email, document number) are stored only as AES-256-GCM
-- ciphertexts (with the id of the key that sealed them) and, where searched, as keyed
-- HMAC-SHA-256 lookup hashes; never in clear.

CREATE TABLE applicants (
    id                   uuid        PRIMARY KEY,
    state                text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'duplicate', 'erased')),
    given_name           text,
    family_name          text,
    -- "family given", lower case, accents folded: the search and sort key.
    name_key             text        COLLATE "C" NOT NULL DEFAULT '',
    birth_date           date,
    gender               text        NOT NULL CHECK (gender IN ('female', 'male', 'other', 'undisclosed')),
    nationality          text        NOT NULL CHECK (nationality ~ '^[A-Z]{2}$'),
    languages            text[]      NOT NULL DEFAULT '{}',
    zone                 text        NOT NULL REFERENCES zones (code),
    organization_id      uuid,
    account_id           uuid,
    key_id               text,
    phone_cipher         bytea,
    phone_hash           bytea,
    email_cipher         bytea,
    document_type        text        NOT NULL CHECK (document_type IN ('passport', 'residence_card', 'refugee_card', 'asylum_receipt', 'none')),
    document_country     text        NOT NULL DEFAULT '',
    document_cipher      bytea,
    document_hash        bytea,
    document_hint        text        NOT NULL DEFAULT '',
    consent_purpose      text        NOT NULL,
    consent_text_version text        NOT NULL,
    consent_given_at     timestamptz NOT NULL,
    consent_recorded_by  text        NOT NULL,
    duplicate_of         uuid        REFERENCES applicants (id),
    created_by           text        NOT NULL,
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'duplicate' OR duplicate_of IS NOT NULL)
);

-- One active record per document, per phone and per login.
CREATE UNIQUE INDEX applicants_document_active ON applicants (document_hash) WHERE state = 'active' AND document_hash IS NOT NULL;
CREATE UNIQUE INDEX applicants_phone_active ON applicants (phone_hash) WHERE state = 'active' AND phone_hash IS NOT NULL;
CREATE UNIQUE INDEX applicants_account_active ON applicants (account_id) WHERE state = 'active' AND account_id IS NOT NULL;
-- Search paths: each serves its filter in page order, so a page costs the same at any size.
CREATE INDEX applicants_by_name ON applicants (name_key, id);
CREATE INDEX applicants_by_zone ON applicants (zone, id);
CREATE INDEX applicants_by_nationality ON applicants (nationality, id);
CREATE INDEX applicants_by_birth_date ON applicants (birth_date);
CREATE INDEX applicants_by_state ON applicants (state, id);
CREATE INDEX applicants_by_account ON applicants (account_id) WHERE account_id IS NOT NULL;

-- Pairs that look like the same person (names and date of birth), for an officer to review.
CREATE TABLE possible_duplicates (
    applicant_id uuid        NOT NULL REFERENCES applicants (id),
    other_id     uuid        NOT NULL REFERENCES applicants (id),
    reason       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (applicant_id, other_id),
    CHECK (applicant_id <> other_id)
);
CREATE INDEX possible_duplicates_other ON possible_duplicates (other_id);

CREATE TABLE calls (
    id            uuid        PRIMARY KEY,
    program_id    uuid        NOT NULL REFERENCES programs (id),
    display_name  text        NOT NULL,
    window_code   text        NOT NULL REFERENCES windows (code),
    zones         text[]      NOT NULL,
    opens_at      timestamptz NOT NULL,
    closes_at     timestamptz NOT NULL CHECK (closes_at > opens_at),
    closed_at     timestamptz,
    quota         integer     NOT NULL CHECK (quota > 0),
    eligibility   jsonb       NOT NULL,
    rubric        jsonb       NOT NULL,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_by_program ON calls (program_id, id);

CREATE TABLE applications (
    id                 uuid        PRIMARY KEY,
    call_id            uuid        NOT NULL REFERENCES calls (id),
    zone               text        NOT NULL REFERENCES zones (code),
    organization_id    uuid,
    created_by         text        NOT NULL,
    title              text        NOT NULL DEFAULT '',
    summary            text        NOT NULL DEFAULT '',
    job_placement      jsonb,
    provided_documents text[]      NOT NULL DEFAULT '{}',
    state              text        NOT NULL DEFAULT 'draft'
                                   CHECK (state IN ('draft', 'submitted', 'screening', 'in_review', 'decided', 'withdrawn')),
    outcome            text        CHECK (outcome IN ('accepted', 'waitlisted', 'rejected')),
    decision_reason    text,
    decided_by         text,
    decided_at         timestamptz,
    average_score      double precision,
    review_count       integer,
    withdraw_reason    text,
    submitted_at       timestamptz,
    version            bigint      NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'decided') = (outcome IS NOT NULL))
);
CREATE INDEX applications_by_call ON applications (call_id, id);
CREATE INDEX applications_by_zone ON applications (zone, id);
CREATE INDEX applications_by_state ON applications (state, id);
-- Counting a call's acceptances (its quota) reads only the accepted ones.
CREATE INDEX applications_accepted ON applications (call_id) WHERE outcome = 'accepted';

-- Members. `active` is false once the application is withdrawn or rejected: an applicant is
-- in at most one active application per call.
CREATE TABLE application_members (
    application_id uuid    NOT NULL REFERENCES applications (id),
    applicant_id   uuid    NOT NULL REFERENCES applicants (id),
    call_id        uuid    NOT NULL REFERENCES calls (id),
    role           text    NOT NULL CHECK (role IN ('representative', 'member')),
    position       integer NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    PRIMARY KEY (application_id, applicant_id)
);
CREATE UNIQUE INDEX application_members_one_active_per_call ON application_members (call_id, applicant_id) WHERE active;
CREATE UNIQUE INDEX application_members_one_representative ON application_members (application_id) WHERE role = 'representative';
CREATE INDEX application_members_by_applicant ON application_members (applicant_id);

CREATE TABLE reviews (
    application_id  uuid             NOT NULL REFERENCES applications (id),
    reviewer_id     uuid             NOT NULL,
    state           text             NOT NULL DEFAULT 'assigned' CHECK (state IN ('assigned', 'conflict_declared', 'scored')),
    scores          jsonb,
    comment         text             NOT NULL DEFAULT '',
    total           double precision,
    conflict_reason text,
    assigned_by     text             NOT NULL,
    assigned_at     timestamptz      NOT NULL DEFAULT now(),
    scored_at       timestamptz,
    PRIMARY KEY (application_id, reviewer_id),
    CHECK ((state = 'scored') = (total IS NOT NULL))
);
CREATE INDEX reviews_by_reviewer ON reviews (reviewer_id, application_id);
