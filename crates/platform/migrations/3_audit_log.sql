-- Append-only, hash-chained audit log: who did what, when, from where. Each row's hash covers
-- its fields and the previous row's hash; the database refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    seq          bigint      PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    actor        text        NOT NULL,
    action       text        NOT NULL,
    resource     text        NOT NULL,
    source_addr  text        NOT NULL,
    request_id   text        NOT NULL,
    details      text        NOT NULL,
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL
);

-- The chain's head, locked by each append so that appends are serialised and the chain has no fork.
CREATE TABLE audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint  NOT NULL,
    hash      bytea   NOT NULL
);
INSERT INTO audit_head (singleton, seq, hash) VALUES (true, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
