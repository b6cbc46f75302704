-- SubmitApplication as intake runs it (services/intake/src/applications.rs `submit`, with the
-- outbox event and audit record of crates/platform), one transaction, the same statements in
-- the same order, by an officer scoped to the draft's zone and organisation. Driven by
-- `work4life-bench intake --scenario submit`:
--   PGOPTIONS='-c search_path=intake' pgbench -n -M prepared -c 32 -j 2 -T <secs> \
--     -D run=<unix ms> -D base=<first draft> -D per=<drafts per client> -D k=0 -f scripts/bench/submit.sql <database>
-- Drafts (individual start-up call, one member each) are made beforehand by the bench and
-- numbered in `bench_drafts`; client c submits drafts base + c * per + 1, + 2, ... in turn. The
-- lookup rides on the first statement, which intake sends anyway (the call's deadline).
\set k :k + 1
\set n :base + :client_id * :per + :k
BEGIN;
SELECT set_config('statement_timeout', '29990', true), d.id AS app, d.zone AS z, d.org AS org FROM bench_drafts d WHERE d.n = :n \gset
-- editable: fetch in the officer's read scope, locked
SELECT p.id, p.call_id, p.zone, p.organization_id, p.title, p.summary, p.job_placement, p.provided_documents,
     p.state, p.outcome, p.decision_reason, p.decided_by, p.decided_at, p.average_score, p.review_count, p.withdraw_reason,
     p.submitted_at, p.version, p.created_at, p.updated_at, c.window_code, pr.code AS program_code
     FROM applications p JOIN calls c ON c.id = p.call_id JOIN programs pr ON pr.id = c.program_id
WHERE p.id = :app::uuid AND (FALSE OR (TRUE AND p.zone = ANY(ARRAY[:z::text]) AND (p.organization_id IS NULL OR p.organization_id = :org::uuid)))
FOR UPDATE OF p \gset
-- fetch_call, share-locked (a submission must not cross a CloseCall)
SELECT c.id, pr.code AS program_code, c.display_name, c.window_code, c.zones, c.opens_at, c.closes_at,
     c.closed_at, c.quota, c.eligibility, c.rubric, c.created_at,
     (SELECT count(*) FROM applications x WHERE x.call_id = c.id AND x.outcome = 'accepted') AS accepted_count
     FROM calls c JOIN programs pr ON pr.id = c.program_id WHERE c.id = :call_id::uuid FOR SHARE OF c;
-- findings: members_of
SELECT m.application_id, m.applicant_id, m.role, a.state, a.given_name, a.family_name, a.birth_date, a.nationality, a.zone,
     a.document_type, a.account_id, a.languages FROM application_members m JOIN applicants a ON a.id = m.applicant_id
     WHERE m.application_id = ANY(ARRAY[:app::uuid]) ORDER BY m.application_id, m.position;
UPDATE applications SET state = 'submitted', submitted_at = now(), version = version + 1, updated_at = now() WHERE id = :app::uuid;
-- recipients: members_of
SELECT m.application_id, m.applicant_id, m.role, a.state, a.given_name, a.family_name, a.birth_date, a.nationality, a.zone,
     a.document_type, a.account_id, a.languages FROM application_members m JOIN applicants a ON a.id = m.applicant_id
     WHERE m.application_id = ANY(ARRAY[:app::uuid]) ORDER BY m.application_id, m.position;
-- outbox enqueue (a time-ordered event id, like UUIDv7)
INSERT INTO outbox (event_id, stream, event_type, event)
VALUES ((lpad(to_hex(:run::bigint), 12, '0') || '7' || lpad(to_hex(:k::int), 7, '0') || 'a' || lpad(to_hex(:client_id::int), 11, '0'))::uuid,
    'w4l' || chr(58) || 'events' || chr(58) || 'intake', 'intake.application.submitted', convert_to(repeat('e', 420), 'UTF8'));
-- audit append (the head locked until COMMIT serialises every audited write)
SELECT seq + 1 AS aseq, hash AS prev, sha256(hash || convert_to(:app::text, 'UTF8')) AS next FROM audit_head WHERE singleton FOR UPDATE \gset
INSERT INTO audit_log (seq, occurred_at, actor, action, resource, source_addr, request_id, details, prev_hash, hash)
VALUES (:aseq::bigint, now(), 'accounts/pgbench-' || :client_id::text, 'intake.SubmitApplication', 'applications/' || :app::text,
    '127.0.0.1' || chr(58) || '40000', md5(:app::text), '{}', :prev::bytea, :next::bytea);
UPDATE audit_head SET seq = :aseq::bigint, hash = :next::bytea WHERE singleton;
-- respond: fetch, members_of
SELECT p.id, p.call_id, p.zone, p.organization_id, p.title, p.summary, p.job_placement, p.provided_documents,
     p.state, p.outcome, p.decision_reason, p.decided_by, p.decided_at, p.average_score, p.review_count, p.withdraw_reason,
     p.submitted_at, p.version, p.created_at, p.updated_at, c.window_code, pr.code AS program_code
     FROM applications p JOIN calls c ON c.id = p.call_id JOIN programs pr ON pr.id = c.program_id WHERE p.id = :app::uuid;
SELECT m.application_id, m.applicant_id, m.role, a.state, a.given_name, a.family_name, a.birth_date, a.nationality, a.zone,
     a.document_type, a.account_id, a.languages FROM application_members m JOIN applicants a ON a.id = m.applicant_id
     WHERE m.application_id = ANY(ARRAY[:app::uuid]) ORDER BY m.application_id, m.position;
COMMIT;
