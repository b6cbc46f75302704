-- CreateApplicant as intake runs it (services/intake/src/applicants.rs `create_applicant`, with
-- the idempotency key, outbox event and audit record of crates/platform), one transaction, the
-- same statements in the same order. Driven by `work4life-bench intake --scenario register`,
--   PGOPTIONS='-c search_path=intake' pgbench -n -M prepared -c 32 -j 2 -T <secs> \
--     -D run=<unix ms> -D k=0 -f scripts/bench/register.sql <database>
-- Each client numbers its transactions (`k` persists between a client's transactions), so every
-- row gets its own time-ordered id (like UUIDv7), phone, document and request id. Where intake
-- computes a value in Rust (AES-GCM ciphertexts, HMAC lookup hashes, the audit hash, the
-- encoded event), the script has PostgreSQL compute a stand-in of the same size.
\set k :k + 1
\set bd random(0, 13500)
\set zone random(0, 3)
BEGIN;
-- db begin (the call's deadline), with this transaction's ids.
SELECT set_config('statement_timeout', '29990', true),
       (lpad(to_hex(:run::bigint), 12, '0') || '7' || lpad(to_hex(:k::int), 7, '0') || '8' || lpad(to_hex(:client_id::int), 11, '0'))::uuid AS id,
       (lpad(to_hex(:run::bigint), 12, '0') || '7' || lpad(to_hex(:k::int), 7, '0') || '9' || lpad(to_hex(:client_id::int), 11, '0'))::uuid AS eid,
       (ARRAY['rabat_sale', 'tanger', 'oujda', 'beni_mellal'])[:zone::int + 1] AS z,
       ('1970-01-01'::date + :bd::int)::text AS birth \gset
-- idempotency begin
SELECT set_config('lock_timeout', '5000', true);
INSERT INTO idempotency_keys (scope, request_id, request_hash, response)
VALUES ('intake.CreateApplicant' || chr(58) || 'accounts/pgbench-' || :client_id::text, :id::text, sha256(('r' || :id::text)::bytea), '')
ON CONFLICT (scope, request_id) DO NOTHING;
-- applicants zones
SELECT code FROM zones ORDER BY code;
-- refuse_exact_duplicates
SELECT id, given_name, family_name, COALESCE(document_hash = sha256(('d' || :id::text)::bytea), false) AS same_document FROM applicants
WHERE state = 'active' AND (document_hash = sha256(('d' || :id::text)::bytea) OR phone_hash = sha256(('p' || :id::text)::bytea)) AND id IS DISTINCT FROM NULL::uuid
ORDER BY same_document DESC LIMIT 1;
-- the row, then write_personal
INSERT INTO applicants (id, gender, nationality, zone, document_type, organization_id, account_id, consent_purpose,
    consent_text_version, consent_given_at, consent_recorded_by, created_by)
VALUES (:id::uuid, 'female', 'SN', :z, 'passport', NULL, NULL, 'program_participation', '2026-01', now(),
    'accounts/pgbench-' || :client_id::text, 'accounts/pgbench-' || :client_id::text);
UPDATE applicants SET given_name = 'Aminata', family_name = 'Traore' || :k::text, name_key = 'traore' || :k::text || ' aminata',
    birth_date = :birth::date, gender = 'female', nationality = 'SN', languages = ARRAY['fr', 'wo'], zone = :z, key_id = 'dev',
    phone_cipher = substr(sha512(('pc' || :id::text)::bytea), 1, 41), phone_hash = sha256(('p' || :id::text)::bytea),
    email_cipher = substr(sha512(('ec' || :id::text)::bytea), 1, 54), document_type = 'passport', document_country = 'SN',
    document_cipher = substr(sha512(('dc' || :id::text)::bytea), 1, 38), document_hash = sha256(('d' || :id::text)::bytea),
    document_hint = '•••123'
WHERE id = :id::uuid;
-- flag_lookalikes
SELECT id, given_name, family_name FROM applicants WHERE state = 'active' AND birth_date = :birth::date AND id <> :id::uuid;
-- outbox enqueue
INSERT INTO outbox (event_id, stream, event_type, event)
VALUES (:eid::uuid, 'w4l' || chr(58) || 'events' || chr(58) || 'intake', 'intake.applicant.registered', convert_to(repeat('e', 330), 'UTF8'));
-- audit append (the head locked until COMMIT serialises every audited write)
SELECT seq + 1 AS aseq, hash AS prev, sha256(hash || convert_to(:id::text, 'UTF8')) AS next FROM audit_head WHERE singleton FOR UPDATE \gset
INSERT INTO audit_log (seq, occurred_at, actor, action, resource, source_addr, request_id, details, prev_hash, hash)
VALUES (:aseq::bigint, now(), 'accounts/pgbench-' || :client_id::text, 'intake.CreateApplicant', 'applicants/' || :id::text, '127.0.0.1' || chr(58) || '40000',
    :eid::text, '{"zone":"' || :z::text || '","possible_duplicates":0}', :prev::bytea, :next::bytea);
UPDATE audit_head SET seq = :aseq::bigint, hash = :next::bytea WHERE singleton;
-- fetch (the answer), then possible_duplicates
SELECT a.id, a.state, a.given_name, a.family_name, a.name_key, a.birth_date, a.gender, a.nationality, a.languages, a.zone,
     a.organization_id, a.account_id, a.key_id, a.phone_cipher, a.email_cipher, a.document_type, a.document_country,
     a.document_cipher, a.document_hint, a.consent_purpose, a.consent_text_version, a.consent_given_at, a.consent_recorded_by,
     a.duplicate_of, a.version, a.created_at, a.updated_at FROM applicants a WHERE a.id = :id::uuid;
SELECT applicant_id, other_id, reason FROM possible_duplicates WHERE applicant_id = ANY(ARRAY[:id::uuid])
UNION ALL SELECT other_id, applicant_id, reason FROM possible_duplicates WHERE other_id = ANY(ARRAY[:id::uuid]);
-- idempotency Fresh commit (only the new record's name rests with the request id)
UPDATE idempotency_keys SET response = convert_to('applicants/' || :id::text, 'UTF8')
WHERE scope = 'intake.CreateApplicant' || chr(58) || 'accounts/pgbench-' || :client_id::text AND request_id = :id::text;
COMMIT;
