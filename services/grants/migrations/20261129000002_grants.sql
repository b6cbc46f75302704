-- Budgets, the decided applications grants may fund, awards with their tranches, disbursements in
-- payment batches, and the double-entry ledger. Money is bigint minor units everywhere. The
-- database itself refuses over-commitment (a CHECK on the line's committed total), a second live
-- disbursement of a tranche (a partial unique index), self-approval (a CHECK), unbalanced postings
-- (a deferred constraint trigger) and any change to the ledger (triggers).

CREATE TABLE budgets (
    id             uuid        PRIMARY KEY,
    program        text        NOT NULL UNIQUE CHECK (program ~ '^[a-z0-9_]{2,40}$'),
    display_name   text        NOT NULL,
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    envelope_minor bigint      NOT NULL CHECK (envelope_minor > 0),
    -- Given to lines; never beyond the envelope.
    allocated_minor bigint     NOT NULL DEFAULT 0,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT budget_within_envelope CHECK (allocated_minor BETWEEN 0 AND envelope_minor)
);

CREATE TABLE budget_lines (
    id              uuid        PRIMARY KEY,
    budget_id       uuid        NOT NULL REFERENCES budgets (id),
    code            text        NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    display_name    text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('beneficiary_funds', 'coaching', 'operations')),
    heading         text        NOT NULL,
    window_code     text,
    zone            text,
    partner         uuid,
    allocated_minor bigint      NOT NULL CHECK (allocated_minor > 0),
    -- Reserved by live awards (what they disbursed included). The row lock taken by the
    -- reserving UPDATE serialises awards on one line; the CHECK is the last word.
    committed_minor bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (budget_id, code),
    CONSTRAINT line_not_overcommitted CHECK (committed_minor BETWEEN 0 AND allocated_minor)
);

-- intake's decisions, from `intake.application.decided`: what CreateAward checks and copies.
CREATE TABLE decided_applications (
    application_id uuid        PRIMARY KEY,
    program        text        NOT NULL,
    window_code    text        NOT NULL,
    zone           text        NOT NULL,
    accepted       boolean     NOT NULL,
    employer       uuid,
    decided_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE decided_members (
    application_id uuid    NOT NULL REFERENCES decided_applications (application_id) ON DELETE CASCADE,
    position       integer NOT NULL,
    applicant_id   uuid    NOT NULL,
    account_id     uuid,
    languages      text[]  NOT NULL DEFAULT '{}',
    gender         text    NOT NULL DEFAULT 'undisclosed',
    nationality    text    NOT NULL DEFAULT '',
    age_band       text    NOT NULL DEFAULT 'unknown',
    PRIMARY KEY (application_id, position)
);

CREATE TABLE awards (
    id                  uuid        PRIMARY KEY,
    line_id             uuid        NOT NULL REFERENCES budget_lines (id),
    budget_id           uuid        NOT NULL REFERENCES budgets (id),
    application_id      uuid        NOT NULL REFERENCES decided_applications (application_id),
    program             text        NOT NULL,
    window_code         text        NOT NULL,
    zone                text        NOT NULL,
    partner             uuid,
    kind                text        NOT NULL CHECK (kind IN ('startup_grant', 'work_bursary')),
    currency            text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
    line_amount_minor   bigint      NOT NULL CHECK (line_amount_minor > 0),
    rate                text,
    rate_from           text,
    rate_to             text,
    rate_source         text,
    rate_date           date,
    bursary_monthly_minor bigint,
    bursary_months      integer,
    employer            uuid,
    bursary_start       date,
    payee_method        text        NOT NULL CHECK (payee_method IN ('bank_transfer', 'mobile_money')),
    payee_holder        text        NOT NULL,
    payee_account       bytea       NOT NULL,
    payee_key_id        text        NOT NULL,
    payee_hint          text        NOT NULL,
    state               text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled', 'completed')),
    cancel_reason       text,
    cancelled_at        timestamptz,
    version             bigint      NOT NULL DEFAULT 1,
    created_by          text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- One live award per application, whatever request ids the callers use.
CREATE UNIQUE INDEX awards_one_live_per_application ON awards (application_id) WHERE state <> 'cancelled';
CREATE INDEX awards_by_line ON awards (line_id, created_at DESC, id DESC);
CREATE INDEX awards_newest ON awards (created_at DESC, id DESC);
CREATE INDEX awards_by_program ON awards (program, created_at);

-- The beneficiaries of an award as decided, with the coarse attributes the donor's reports count.
CREATE TABLE award_beneficiaries (
    award_id     uuid    NOT NULL REFERENCES awards (id),
    position     integer NOT NULL,
    applicant_id uuid    NOT NULL,
    account_id   uuid,
    languages    text[]  NOT NULL DEFAULT '{}',
    gender       text    NOT NULL,
    nationality  text    NOT NULL,
    age_band     text    NOT NULL,
    PRIMARY KEY (award_id, position)
);
CREATE INDEX award_beneficiaries_by_account ON award_beneficiaries (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE award_amendments (
    award_id       uuid        NOT NULL REFERENCES awards (id),
    seq            integer     NOT NULL,
    previous_minor bigint      NOT NULL,
    new_minor      bigint      NOT NULL,
    reason         text        NOT NULL,
    amended_by     text        NOT NULL,
    amended_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (award_id, seq)
);

CREATE TABLE tranches (
    award_id          uuid        NOT NULL REFERENCES awards (id),
    number            integer     NOT NULL CHECK (number > 0),
    amount_minor      bigint      NOT NULL CHECK (amount_minor > 0),
    line_amount_minor bigint      NOT NULL CHECK (line_amount_minor > 0),
    condition_kind    text        NOT NULL CHECK (condition_kind IN ('milestone', 'date', 'bursary_month')),
    milestone         text,
    release_date      date,
    state             text        NOT NULL DEFAULT 'scheduled'
                      CHECK (state IN ('scheduled', 'payable', 'held', 'in_payment', 'paid', 'cancelled')),
    payable_at        timestamptz,
    confirmed_by      text,
    confirmed_at      timestamptz,
    PRIMARY KEY (award_id, number),
    CHECK ((condition_kind = 'milestone') = (milestone IS NOT NULL)),
    CHECK ((condition_kind = 'milestone') <> (release_date IS NOT NULL))
);
CREATE INDEX tranches_waiting_for_a_day ON tranches (release_date) WHERE state IN ('scheduled', 'held') AND condition_kind <> 'milestone';
CREATE INDEX tranches_waiting_for_a_milestone ON tranches (award_id, milestone) WHERE state = 'scheduled' AND condition_kind = 'milestone';

CREATE TABLE payment_batches (
    id           uuid        PRIMARY KEY,
    budget_id    uuid        NOT NULL REFERENCES budgets (id),
    currency     text        NOT NULL,
    method       text        NOT NULL CHECK (method IN ('bank_transfer', 'mobile_money')),
    state        text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'exported', 'settled')),
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    exported_at  timestamptz,
    -- The exported file is kept: exporting again returns it byte for byte.
    file         bytea,
    file_sha256  text
);
CREATE INDEX payment_batches_newest ON payment_batches (created_at DESC, id DESC);

CREATE TABLE disbursements (
    id                uuid        PRIMARY KEY,
    award_id          uuid        NOT NULL,
    tranche_number    integer     NOT NULL,
    line_id           uuid        NOT NULL REFERENCES budget_lines (id),
    budget_id         uuid        NOT NULL REFERENCES budgets (id),
    zone              text        NOT NULL,
    partner           uuid,
    currency          text        NOT NULL,
    amount_minor      bigint      NOT NULL CHECK (amount_minor > 0),
    line_amount_minor bigint      NOT NULL CHECK (line_amount_minor > 0),
    payee_method      text        NOT NULL,
    state             text        NOT NULL DEFAULT 'pending_approval'
                      CHECK (state IN ('pending_approval', 'approved', 'batched', 'sent', 'paid', 'failed', 'rejected', 'withdrawn')),
    requested_by      text        NOT NULL,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    approved_by       text,
    approved_at       timestamptz,
    batch_id          uuid        REFERENCES payment_batches (id),
    external_reference text,
    failure_reason    text,
    retry_of          uuid        REFERENCES disbursements (id),
    settled_at        timestamptz,
    FOREIGN KEY (award_id, tranche_number) REFERENCES tranches (award_id, number),
    CONSTRAINT maker_is_not_checker CHECK (approved_by IS NULL OR approved_by <> requested_by),
    CHECK (state NOT IN ('paid') OR external_reference IS NOT NULL)
);
-- At most one live payment of a tranche: a tranche is never paid twice.
CREATE UNIQUE INDEX disbursements_one_live_per_tranche ON disbursements (award_id, tranche_number)
    WHERE state IN ('pending_approval', 'approved', 'batched', 'sent', 'paid');
CREATE INDEX disbursements_newest ON disbursements (requested_at DESC, id DESC);
CREATE INDEX disbursements_approved ON disbursements (budget_id, currency, payee_method, approved_at) WHERE state = 'approved';
CREATE INDEX disbursements_by_batch ON disbursements (batch_id) WHERE batch_id IS NOT NULL;

-- What a disbursement is never changes; only its progress does.
CREATE FUNCTION disbursement_identity_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.award_id <> OLD.award_id OR NEW.tranche_number <> OLD.tranche_number OR NEW.amount_minor <> OLD.amount_minor
       OR NEW.line_amount_minor <> OLD.line_amount_minor OR NEW.currency <> OLD.currency OR NEW.requested_by <> OLD.requested_by THEN
        RAISE EXCEPTION 'a disbursement''s tranche, amount and maker never change' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER disbursements_identity_is_fixed BEFORE UPDATE ON disbursements
    FOR EACH ROW EXECUTE FUNCTION disbursement_identity_is_fixed();
CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are kept forever: DELETE refused', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER disbursements_are_kept BEFORE DELETE ON disbursements FOR EACH ROW EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER awards_are_kept BEFORE DELETE ON awards FOR EACH ROW EXECUTE FUNCTION refuse_delete();

-- The ledger. A posting groups balanced entries (debits positive, credits negative).
CREATE TABLE postings (
    id              uuid        PRIMARY KEY,
    seq             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    budget_id       uuid        NOT NULL REFERENCES budgets (id),
    kind            text        NOT NULL
                    CHECK (kind IN ('funding', 'allocation', 'commitment', 'release', 'disbursement', 'payment', 'reversal')),
    posted_at       timestamptz NOT NULL DEFAULT now(),
    award_id        uuid,
    disbursement_id uuid,
    reverses        uuid        REFERENCES postings (id),
    memo            text        NOT NULL
);
CREATE INDEX postings_by_award ON postings (award_id, seq) WHERE award_id IS NOT NULL;
CREATE INDEX postings_by_budget ON postings (budget_id, seq);

CREATE TABLE entries (
    posting_id   uuid        NOT NULL REFERENCES postings (id),
    line_no      smallint    NOT NULL,
    budget_id    uuid        NOT NULL,
    account      text        NOT NULL,
    amount_minor bigint      NOT NULL CHECK (amount_minor <> 0),
    posted_at    timestamptz NOT NULL,
    award_id     uuid,
    PRIMARY KEY (posting_id, line_no)
);
CREATE INDEX entries_by_account ON entries (budget_id, account, posted_at) INCLUDE (amount_minor);
CREATE INDEX entries_by_award ON entries (award_id, account, posted_at) INCLUDE (amount_minor) WHERE award_id IS NOT NULL;

-- Checked at COMMIT, once the posting's entries are all written.
CREATE FUNCTION check_posting_balanced(posting uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
    n integer;
BEGIN
    SELECT coalesce(sum(amount_minor), 0), count(*) INTO total, n FROM entries WHERE posting_id = posting;
    IF n < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'posting % is unbalanced: % entries summing to %', posting, n, total USING ERRCODE = 'check_violation';
    END IF;
END $$;
CREATE FUNCTION posting_is_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM check_posting_balanced(NEW.id);
    RETURN NULL;
END $$;
CREATE FUNCTION entry_posting_is_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM check_posting_balanced(NEW.posting_id);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION posting_is_balanced();
CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION entry_posting_is_balanced();

CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused (post a reversal instead)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only();
