//! The person registry: registration with duplicate detection, reads in scope (the FULL view
//! audited), search, updates, marking duplicates, erasure of personal data, and the donor's
//! pseudonymous export.

use std::collections::HashMap;

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    contact::{normalize_email, normalize_phone},
    pagination::{next_page, page_size},
    wire::{check_etag, etag, format_date, from_timestamp, gather, parse_date, parse_name, timestamp},
};
use work4life_proto::intake::{
    Applicant, ApplicantContact, ApplicantErased, ApplicantRegistered, ApplicantState, Consent, DocumentType, Gender, IdentityDocument,
    ListApplicantsRequest, PossibleDuplicate, PseudonymousApplicant, PseudonymousApplication,
};

use work4life_platform::vault::Lookup;

use crate::{
    Intake, conflict, emit, rules,
    scope::{Scope, account_of},
    text,
};

const MAX_NAME_LEN: usize = 100;

/// The columns every read selects, aliased `a`.
const COLUMNS: &str = "a.id, a.state, a.given_name, a.family_name, a.name_key, a.birth_date, a.gender, a.nationality, a.languages, a.zone, \
     a.organization_id, a.account_id, a.key_id, a.phone_cipher, a.email_cipher, a.document_type, a.document_country, \
     a.document_cipher, a.document_hint, a.consent_purpose, a.consent_text_version, a.consent_given_at, a.consent_recorded_by, \
     a.duplicate_of, a.version, a.created_at, a.updated_at";

/// A registry row.
#[derive(Debug, Clone, FromRow)]
pub struct ApplicantRow {
    pub id: Uuid,
    pub state: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name_key: String,
    pub birth_date: Option<Date>,
    pub gender: String,
    pub nationality: String,
    pub languages: Vec<String>,
    pub zone: String,
    pub organization_id: Option<Uuid>,
    pub account_id: Option<Uuid>,
    pub key_id: Option<String>,
    pub phone_cipher: Option<Vec<u8>>,
    pub email_cipher: Option<Vec<u8>>,
    pub document_type: String,
    pub document_country: String,
    pub document_cipher: Option<Vec<u8>>,
    pub document_hint: String,
    pub consent_purpose: String,
    pub consent_text_version: String,
    pub consent_given_at: OffsetDateTime,
    pub consent_recorded_by: String,
    pub duplicate_of: Option<Uuid>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl ApplicantRow {
    /// "Given Family".
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name.as_deref().unwrap_or_default(), self.family_name.as_deref().unwrap_or_default()).trim().to_string()
    }
}

const GENDERS: [(Gender, &str); 4] =
    [(Gender::Female, "female"), (Gender::Male, "male"), (Gender::Other, "other"), (Gender::Undisclosed, "undisclosed")];
const DOCUMENT_TYPES: [(DocumentType, &str); 5] = [
    (DocumentType::Passport, "passport"),
    (DocumentType::ResidenceCard, "residence_card"),
    (DocumentType::RefugeeCard, "refugee_card"),
    (DocumentType::AsylumReceipt, "asylum_receipt"),
    (DocumentType::None, "none"),
];

pub(crate) fn gender_of(code: &str) -> Gender {
    GENDERS.iter().find(|(_, c)| *c == code).map_or(Gender::Unspecified, |(g, _)| *g)
}

/// The stored code of a wire document type.
pub fn document_code(t: i32) -> Option<&'static str> {
    DOCUMENT_TYPES.iter().find(|(d, _)| *d as i32 == t).map(|(_, c)| *c)
}

fn document_of(code: &str) -> DocumentType {
    DOCUMENT_TYPES.iter().find(|(_, c)| *c == code).map_or(DocumentType::Unspecified, |(d, _)| *d)
}

fn state_of(code: &str) -> ApplicantState {
    match code {
        "active" => ApplicantState::Active,
        "duplicate" => ApplicantState::Duplicate,
        "erased" => ApplicantState::Erased,
        _ => ApplicantState::Unspecified,
    }
}

/// A document number as compared: upper case, without spaces, dashes, dots or slashes.
pub fn normalize_document_number(raw: &str) -> String {
    raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '/')).flat_map(char::to_uppercase).collect()
}

/// What a document lookup hashes: its type and number, so two kinds of document may share a number.
fn document_key(doc_type: &str, number: &str) -> String {
    format!("{doc_type}:{number}")
}

/// A validated registration or update.
#[derive(Debug, Clone)]
pub struct ApplicantInput {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Date,
    pub gender: &'static str,
    pub nationality: String,
    pub languages: Vec<String>,
    pub zone: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub document_type: &'static str,
    pub document_number: Option<String>,
    pub document_country: String,
    pub consent_purpose: String,
    pub consent_text_version: String,
    pub consent_given_at: Option<OffsetDateTime>,
    pub account: Option<Uuid>,
}

fn required_text(violations: &mut Vec<FieldViolation>, field: &str, raw: &str, max: usize) -> String {
    let value = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if value.is_empty() {
        violations.push(FieldViolation::new(field, "is required"));
    } else if value.chars().any(char::is_control) {
        violations.push(FieldViolation::new(field, "contains control characters"));
    } else if value.chars().count() > max {
        violations.push(FieldViolation::new(field, format!("is longer than {max} characters")));
    }
    value
}

fn country(violations: &mut Vec<FieldViolation>, field: &str, raw: &str, required: bool) -> String {
    let code = raw.trim().to_uppercase();
    if code.is_empty() {
        if required {
            violations.push(FieldViolation::new(field, "is required (ISO 3166-1 alpha-2, such as SN)"));
        }
    } else if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        violations.push(FieldViolation::new(field, "must be an ISO 3166-1 alpha-2 code such as SN, CI or MA"));
    }
    code
}

fn language_tag_ok(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Validates every field of `a` at once (paths under `prefix`); `zones` are the known zones.
pub fn validate(prefix: &str, a: &Applicant, zones: &[String], today: Date) -> Result<ApplicantInput, ServiceError> {
    let mut v = Vec::new();
    let f = |name: &str| format!("{prefix}.{name}");
    let given_name = required_text(&mut v, &f("given_name"), &a.given_name, MAX_NAME_LEN);
    let family_name = required_text(&mut v, &f("family_name"), &a.family_name, MAX_NAME_LEN);
    let birth_date = match parse_date(&f("birth_date"), &a.birth_date) {
        Ok(d) if d > today => {
            v.push(FieldViolation::new(f("birth_date"), "is in the future"));
            None
        }
        Ok(d) if d.year() < 1900 => {
            v.push(FieldViolation::new(f("birth_date"), "is before 1900"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            v.push(e);
            None
        }
    };
    let gender = match GENDERS.iter().find(|(g, _)| *g as i32 == a.gender) {
        Some((_, code)) => code,
        None => {
            v.push(FieldViolation::new(f("gender"), "is required (FEMALE, MALE, OTHER or UNDISCLOSED)"));
            ""
        }
    };
    let nationality = country(&mut v, &f("nationality"), &a.nationality, true);
    let mut languages = Vec::new();
    if a.languages.is_empty() {
        v.push(FieldViolation::new(f("languages"), "needs at least one language (fr, ar, en, ...)"));
    }
    for (i, tag) in a.languages.iter().enumerate() {
        let tag = tag.trim().to_string();
        if !language_tag_ok(&tag) {
            v.push(FieldViolation::new(format!("{prefix}.languages[{i}]"), "must be a BCP 47 language tag such as fr, ar or en"));
        } else if !languages.contains(&tag) {
            languages.push(tag);
        }
    }
    let zone = a.zone.trim().to_string();
    if !zones.contains(&zone) {
        v.push(FieldViolation::new(f("zone"), format!("must be one of {}", zones.join(", "))));
    }
    let phone = normalize_phone(&f("phone"), &a.phone).map_err(|e| v.push(e)).ok().flatten();
    let email = if a.email.trim().is_empty() { None } else { normalize_email(&f("email"), &a.email).map_err(|e| v.push(e)).ok() };
    let (mut document_type, mut document_number, mut document_country) = ("", None, String::new());
    match &a.identity_document {
        None => v.push(FieldViolation::new(f("identity_document"), "is required (type NONE for a person without one)")),
        Some(doc) => {
            let number = normalize_document_number(&doc.number);
            document_country = country(&mut v, &f("identity_document.issuing_country"), &doc.issuing_country, false);
            match document_code(doc.r#type) {
                None => v.push(FieldViolation::new(f("identity_document.type"), "is required")),
                Some("none") if !number.is_empty() => {
                    v.push(FieldViolation::new(f("identity_document.number"), "must be empty when the type is NONE"));
                }
                Some("none") => document_type = "none",
                Some(code) => {
                    document_type = code;
                    if number.len() < 4 || number.len() > 30 || !number.chars().all(|c| c.is_ascii_alphanumeric()) {
                        v.push(FieldViolation::new(f("identity_document.number"), "must be 4 to 30 letters and digits"));
                    } else {
                        document_number = Some(number);
                    }
                }
            }
        }
    }
    let (mut consent_purpose, mut consent_text_version, mut consent_given_at) = (String::new(), String::new(), None);
    match &a.consent {
        None => v.push(FieldViolation::new(f("consent"), "is required: record the person's consent before registering them")),
        Some(c) => {
            consent_purpose = required_text(&mut v, &f("consent.purpose"), &c.purpose, 100);
            consent_text_version = required_text(&mut v, &f("consent.text_version"), &c.text_version, 50);
            if let Some(t) = &c.give_time {
                match from_timestamp(&f("consent.give_time"), t) {
                    Ok(t) if t > OffsetDateTime::now_utc() + time::Duration::minutes(5) => {
                        v.push(FieldViolation::new(f("consent.give_time"), "is in the future"));
                    }
                    Ok(t) => consent_given_at = Some(t),
                    Err(ServiceError::InvalidArgument(mut e)) => v.append(&mut e),
                    Err(_) => {}
                }
            }
        }
    }
    let account = if a.account.is_empty() {
        None
    } else {
        parse_name(&f("account"), "accounts", &a.account)
            .map_err(|e| {
                if let ServiceError::InvalidArgument(mut e) = e {
                    v.append(&mut e)
                }
            })
            .ok()
    };
    match birth_date {
        Some(birth_date) if v.is_empty() => Ok(ApplicantInput {
            given_name,
            family_name,
            birth_date,
            gender,
            nationality,
            languages,
            zone,
            phone,
            email,
            document_type,
            document_number,
            document_country,
            consent_purpose,
            consent_text_version,
            consent_given_at,
            account,
        }),
        _ => Err(ServiceError::InvalidArgument(v)),
    }
}

/// The zones records may be in.
pub async fn zones(conn: &mut PgConnection) -> Result<Vec<String>, ServiceError> {
    Ok(sqlx::query_scalar::<_, String>("SELECT code FROM zones ORDER BY code").fetch_all(conn).await?)
}

/// Ids among `ids` that `scope` may read.
pub async fn visible(conn: &mut PgConnection, scope: &Scope, ids: &[Uuid]) -> Result<Vec<Uuid>, ServiceError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Postgres>::new("SELECT a.id FROM applicants a WHERE a.id = ANY(");
    qb.push_bind(ids.to_vec()).push(")");
    scope.push_applicants(&mut qb);
    Ok(qb.build_query_scalar::<Uuid>().fetch_all(conn).await?)
}

/// Reads one record in `scope`, optionally locking it; NOT_FOUND when out of scope.
pub async fn fetch(conn: &mut PgConnection, scope: &Scope, id: Uuid, lock: bool) -> Result<ApplicantRow, ServiceError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM applicants a WHERE a.id = "));
    qb.push_bind(id);
    scope.push_applicants(&mut qb);
    if lock {
        qb.push(" FOR UPDATE");
    }
    qb.build_query_as::<ApplicantRow>().fetch_optional(conn).await?.ok_or_else(|| ServiceError::NotFound(format!("applicants/{id}")))
}

impl Intake {
    /// The wire form of `row`: contact details opened, the document number only when `full`.
    pub fn applicant(&self, row: &ApplicantRow, full: bool, duplicates: Vec<PossibleDuplicate>) -> Result<Applicant, ServiceError> {
        let key = row.key_id.as_deref().unwrap_or_default();
        let open = |field: &str, sealed: &Option<Vec<u8>>| -> Result<String, ServiceError> {
            sealed.as_ref().map_or(Ok(String::new()), |s| self.vault.open(key, row.id, field, s))
        };
        let number = if full { open("document", &row.document_cipher)? } else { String::new() };
        Ok(Applicant {
            name: format!("applicants/{}", row.id),
            given_name: row.given_name.clone().unwrap_or_default(),
            family_name: row.family_name.clone().unwrap_or_default(),
            birth_date: row.birth_date.map(format_date).unwrap_or_default(),
            gender: gender_of(&row.gender) as i32,
            nationality: row.nationality.clone(),
            languages: row.languages.clone(),
            zone: row.zone.clone(),
            phone: open("phone", &row.phone_cipher)?,
            email: open("email", &row.email_cipher)?,
            identity_document: Some(IdentityDocument {
                r#type: document_of(&row.document_type) as i32,
                number,
                number_hint: row.document_hint.clone(),
                issuing_country: row.document_country.clone(),
            }),
            consent: Some(Consent {
                purpose: row.consent_purpose.clone(),
                text_version: row.consent_text_version.clone(),
                give_time: Some(timestamp(row.consent_given_at)),
                recorded_by: row.consent_recorded_by.clone(),
            }),
            state: state_of(&row.state) as i32,
            organization: row.organization_id.map(|o| format!("organizations/{o}")).unwrap_or_default(),
            account: row.account_id.map(|a| format!("accounts/{a}")).unwrap_or_default(),
            duplicate_of: row.duplicate_of.map(|d| format!("applicants/{d}")).unwrap_or_default(),
            possible_duplicates: duplicates,
            etag: etag(row.version),
            create_time: Some(timestamp(row.created_at)),
            update_time: Some(timestamp(row.updated_at)),
        })
    }

    /// The flagged look-alikes of `ids` that `scope` may see, per record.
    pub async fn possible_duplicates(
        &self,
        conn: &mut PgConnection,
        scope: &Scope,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<PossibleDuplicate>>, ServiceError> {
        let pairs: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT applicant_id, other_id, reason FROM possible_duplicates WHERE applicant_id = ANY($1) \
             UNION ALL SELECT other_id, applicant_id, reason FROM possible_duplicates WHERE other_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let others: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();
        let seen = visible(conn, scope, &others).await?;
        let mut out: HashMap<Uuid, Vec<PossibleDuplicate>> = HashMap::new();
        for (id, other, reason) in pairs.into_iter().filter(|p| seen.contains(&p.1)) {
            out.entry(id).or_default().push(PossibleDuplicate { applicant: format!("applicants/{other}"), reason });
        }
        Ok(out)
    }

    async fn with_duplicates(
        &self,
        conn: &mut PgConnection,
        scope: &Scope,
        row: &ApplicantRow,
        full: bool,
    ) -> Result<Applicant, ServiceError> {
        let mut dups = self.possible_duplicates(conn, scope, &[row.id]).await?;
        self.applicant(row, full, dups.remove(&row.id).unwrap_or_default())
    }

    /// Refuses a document or phone already on an active record other than `except`, naming that
    /// record when the caller may see it.
    async fn refuse_exact_duplicates(
        &self,
        conn: &mut PgConnection,
        caller: &Scope,
        input: &ApplicantInput,
        except: Option<Uuid>,
    ) -> Result<(), ServiceError> {
        let document_hash =
            input.document_number.as_ref().map(|n| self.vault.lookup(Lookup::Document, &document_key(input.document_type, n)));
        let phone_hash = input.phone.as_ref().map(|p| self.vault.lookup(Lookup::Phone, p));
        let hit: Option<(Uuid, Option<String>, Option<String>, bool)> = sqlx::query_as(
            "SELECT id, given_name, family_name, COALESCE(document_hash = $1, false) AS same_document FROM applicants \
             WHERE state = 'active' AND (document_hash = $1 OR phone_hash = $2) AND id IS DISTINCT FROM $3 \
             ORDER BY same_document DESC LIMIT 1",
        )
        .bind(document_hash)
        .bind(phone_hash)
        .bind(except)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((id, given, family, same_document)) = hit else { return Ok(()) };
        let (reason, field) = if same_document { ("DUPLICATE_DOCUMENT", "identity_document") } else { ("DUPLICATE_PHONE", "phone") };
        let mut metadata = HashMap::from([("field".to_string(), field.to_string())]);
        if !visible(conn, caller, &[id]).await?.is_empty() {
            metadata.insert("existing".into(), format!("applicants/{id}"));
            metadata.insert("existing_display_name".into(), format!("{} {}", given.unwrap_or_default(), family.unwrap_or_default()));
        }
        let resource = if same_document { "a person with this identity document" } else { "a person with this phone" };
        Err(ServiceError::AlreadyExists { resource: resource.into(), reason, metadata })
    }

    /// Flags active records with the same date of birth and resembling names.
    async fn flag_lookalikes(&self, conn: &mut PgConnection, id: Uuid, input: &ApplicantInput) -> Result<Vec<Uuid>, ServiceError> {
        let candidates: Vec<(Uuid, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, given_name, family_name FROM applicants WHERE state = 'active' AND birth_date = $1 AND id <> $2")
                .bind(input.birth_date)
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
        let mut flagged = Vec::new();
        for (other, given, family) in candidates {
            let (given, family) = (given.unwrap_or_default(), family.unwrap_or_default());
            if let Some(reason) = text::resemblance(&input.given_name, &input.family_name, &given, &family) {
                sqlx::query(
                    "INSERT INTO possible_duplicates (applicant_id, other_id, reason) \
                     SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM possible_duplicates WHERE applicant_id = $2 AND other_id = $1) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(other)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
                flagged.push(other);
            }
        }
        Ok(flagged)
    }

    /// Writes every personal column of `id` from `input` (sealed with the current key).
    async fn write_personal(&self, conn: &mut PgConnection, id: Uuid, input: &ApplicantInput) -> Result<(), ServiceError> {
        let seal = |field: &str, value: &Option<String>| value.as_ref().map(|v| self.vault.seal(id, field, v)).transpose();
        let document_hint = input.document_number.as_ref().map(|n| format!("•••{}", &n[n.len().saturating_sub(3)..])).unwrap_or_default();
        sqlx::query(
            "UPDATE applicants SET given_name = $2, family_name = $3, name_key = $4, birth_date = $5, gender = $6, nationality = $7, \
             languages = $8, zone = $9, key_id = $10, phone_cipher = $11, phone_hash = $12, email_cipher = $13, document_type = $14, \
             document_country = $15, document_cipher = $16, document_hash = $17, document_hint = $18 WHERE id = $1",
        )
        .bind(id)
        .bind(&input.given_name)
        .bind(&input.family_name)
        .bind(text::name_key(&input.given_name, &input.family_name))
        .bind(input.birth_date)
        .bind(input.gender)
        .bind(&input.nationality)
        .bind(&input.languages)
        .bind(&input.zone)
        .bind(self.vault.current_key_id())
        .bind(seal("phone", &input.phone)?)
        .bind(input.phone.as_ref().map(|p| self.vault.lookup(Lookup::Phone, p)))
        .bind(seal("email", &input.email)?)
        .bind(input.document_type)
        .bind(&input.document_country)
        .bind(seal("document", &input.document_number)?)
        .bind(input.document_number.as_ref().map(|n| self.vault.lookup(Lookup::Document, &document_key(input.document_type, n))))
        .bind(document_hint)
        .execute(&mut *conn)
        .await
        .map_err(unique_conflict)?;
        Ok(())
    }

    /// Registers a person in `tx` (CreateApplicant).
    pub async fn create_applicant(&self, tx: &mut PgConnection, actor: &Actor<'_>, wire: &Applicant) -> Result<Applicant, ServiceError> {
        let p = actor.principal;
        let known_zones = zones(tx).await?;
        let today = OffsetDateTime::now_utc().date();
        let mut input = validate("applicant", wire, &known_zones, today)?;
        let staff = Scope::staff(p);
        let organization = match staff.stamp(&input.zone) {
            Some(org) => org,
            None if p.has_role("beneficiary") => {
                let me = account_of(p);
                if input.account.is_some_and(|a| Some(a) != me) {
                    return Err(ServiceError::PermissionDenied("a beneficiary registers only themselves"));
                }
                input.account = me;
                None
            }
            None if staff.is_empty() => {
                return Err(ServiceError::PermissionDenied("only officers, program managers and admins register people"));
            }
            None => return Err(ServiceError::PermissionDenied("your bindings do not cover this zone")),
        };
        self.refuse_exact_duplicates(tx, &Scope::read(p), &input, None).await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO applicants (id, gender, nationality, zone, document_type, organization_id, account_id, consent_purpose, \
             consent_text_version, consent_given_at, consent_recorded_by, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(id)
        .bind(input.gender)
        .bind(&input.nationality)
        .bind(&input.zone)
        .bind(input.document_type)
        .bind(organization)
        .bind(input.account)
        .bind(&input.consent_purpose)
        .bind(&input.consent_text_version)
        .bind(input.consent_given_at.unwrap_or_else(OffsetDateTime::now_utc))
        .bind(&p.subject)
        .execute(&mut *tx)
        .await
        .map_err(unique_conflict)?;
        self.write_personal(tx, id, &input).await?;
        let flagged = self.flag_lookalikes(tx, id, &input).await?;
        let name = format!("applicants/{id}");
        let event = ApplicantRegistered {
            applicant: name.clone(),
            zone: input.zone.clone(),
            languages: input.languages.clone(),
            account: input.account.map(|a| format!("accounts/{a}")).unwrap_or_default(),
            organization: organization.map(|o| format!("organizations/{o}")).unwrap_or_default(),
            possible_duplicates: flagged.iter().map(|o| format!("applicants/{o}")).collect(),
        };
        emit(tx, "intake.applicant.registered", &name, "ApplicantRegistered", &event).await?;
        actor
            .record(tx, "intake.CreateApplicant", name, serde_json::json!({ "zone": input.zone, "possible_duplicates": flagged.len() }))
            .await?;
        let row = fetch(tx, &Scope::everything(), id, false).await?;
        self.with_duplicates(tx, &Scope::read(p), &row, false).await
    }

    /// GetApplicant: BASIC for anyone in scope; FULL for staff in scope and the person, audited.
    pub async fn get_applicant(&self, actor: &Actor<'_>, id: Uuid, full: bool) -> Result<Applicant, ServiceError> {
        let p = actor.principal;
        let scope = Scope::read(p);
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &scope, id, false).await?;
        if full {
            let allowed = Scope::of(p, &["admin", "auditor"], &["program_manager", "officer"]).covers(&row.zone, row.organization_id)
                || (row.account_id.is_some() && row.account_id == scope.account);
            if !allowed {
                return Err(ServiceError::PermissionDenied("the FULL view is for staff in scope and the person themselves"));
            }
            actor.record(&mut tx, "intake.GetApplicant.full", format!("applicants/{id}"), serde_json::json!({})).await?;
        }
        let applicant = self.with_duplicates(&mut tx, &scope, &row, full).await?;
        tx.commit().await?;
        Ok(applicant)
    }

    /// BatchGetApplicantContacts: how to reach each of `ids` (notifications' service account and
    /// admins), one audit record for the batch.
    pub async fn contacts(&self, actor: &Actor<'_>, ids: &[Uuid]) -> Result<Vec<ApplicantContact>, ServiceError> {
        let p = actor.principal;
        if !(p.has_role("notifier") || p.has_role("admin")) {
            return Err(ServiceError::PermissionDenied("contact details are for the notifications service and admins"));
        }
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM applicants a WHERE a.id = ANY("));
        qb.push_bind(ids.to_vec()).push(")");
        let rows = qb.build_query_as::<ApplicantRow>().fetch_all(&mut *tx).await?;
        let by_id: HashMap<Uuid, &ApplicantRow> = rows.iter().map(|r| (r.id, r)).collect();
        let mut contacts = Vec::with_capacity(ids.len());
        for id in ids {
            let name = format!("applicants/{id}");
            let Some(row) = by_id.get(id) else {
                contacts.push(ApplicantContact { applicant: name, found: false, ..Default::default() });
                continue;
            };
            let key = row.key_id.as_deref().unwrap_or_default();
            let open = |field: &str, sealed: &Option<Vec<u8>>| -> Result<String, ServiceError> {
                sealed.as_ref().map_or(Ok(String::new()), |s| self.vault.open(key, row.id, field, s))
            };
            contacts.push(ApplicantContact {
                applicant: name,
                found: true,
                given_name: row.given_name.clone().unwrap_or_default(),
                phone: open("phone", &row.phone_cipher)?,
                email: open("email", &row.email_cipher)?,
                languages: row.languages.clone(),
                account: row.account_id.map(|a| format!("accounts/{a}")).unwrap_or_default(),
                zone: row.zone.clone(),
                state: state_of(&row.state) as i32,
            });
        }
        let names: Vec<&str> = contacts.iter().filter(|c| c.found).map(|c| c.applicant.as_str()).collect();
        actor
            .record(&mut tx, "intake.BatchGetApplicantContacts", "applicants".to_string(), serde_json::json!({ "applicants": names }))
            .await?;
        tx.commit().await?;
        Ok(contacts)
    }

    /// ListApplicants.
    pub async fn list_applicants(&self, actor: &Actor<'_>, r: &ListApplicantsRequest) -> Result<(Vec<Applicant>, String), ServiceError> {
        // Reviewers read the members of their applications one by one; they do not search the registry.
        let scope = Scope { reviewer: None, ..Scope::read(actor.principal) };
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let state = match ApplicantState::try_from(r.state) {
            Ok(ApplicantState::Unspecified) | Ok(ApplicantState::Active) => "active",
            Ok(ApplicantState::Duplicate) => "duplicate",
            Ok(ApplicantState::Erased) => "erased",
            Err(_) => {
                v.push(FieldViolation::new("state", "is not an applicant state"));
                ""
            }
        };
        let prefix = text::fold(&r.name_prefix);
        let phone = normalize_phone("phone", &r.phone).map_err(|e| v.push(e)).ok().flatten();
        let nationality = r.nationality.trim().to_uppercase();
        let document = match &r.identity_document {
            Some(d) if !d.number.is_empty() => match document_code(d.r#type) {
                Some(code) if code != "none" => Some(document_key(code, &normalize_document_number(&d.number))),
                _ => {
                    v.push(FieldViolation::new("identity_document.type", "is required with a document number"));
                    None
                }
            },
            _ => None,
        };
        if !v.is_empty() {
            return Err(ServiceError::InvalidArgument(v));
        }
        let by_name = !prefix.is_empty();
        let document_hash = document.as_ref().map(|d| hex::encode(self.vault.lookup(Lookup::Document, d))).unwrap_or_default();
        let filter =
            format!("applicants|{state}|{prefix}|{}|{}|{}|{document_hash}|{}", r.phone, r.zone, nationality, r.possible_duplicates_only);
        let after: Option<(String, Uuid)> = self.page_tokens.decode(&r.page_token, &filter)?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM applicants a WHERE a.state = "));
        qb.push_bind(state);
        if by_name {
            qb.push(" AND a.name_key >= ").push_bind(prefix.clone()).push(" AND a.name_key < ").push_bind(format!("{prefix}\u{10FFFF}"));
        }
        if let Some(phone) = &phone {
            qb.push(" AND a.phone_hash = ").push_bind(self.vault.lookup(Lookup::Phone, phone));
        }
        if let Some(doc) = &document {
            qb.push(" AND a.document_hash = ").push_bind(self.vault.lookup(Lookup::Document, doc));
        }
        if !r.zone.is_empty() {
            qb.push(" AND a.zone = ").push_bind(r.zone.trim().to_string());
        }
        if !nationality.is_empty() {
            qb.push(" AND a.nationality = ").push_bind(nationality);
        }
        if r.possible_duplicates_only {
            qb.push(" AND a.id = ANY(ARRAY(SELECT applicant_id FROM possible_duplicates UNION SELECT other_id FROM possible_duplicates))");
        }
        scope.push_applicants(&mut qb);
        match (&after, by_name) {
            (Some((key, id)), true) => {
                qb.push(" AND (a.name_key, a.id) > (").push_bind(key.clone()).push(", ").push_bind(*id).push(")");
            }
            (Some((_, id)), false) => {
                qb.push(" AND a.id < ").push_bind(*id);
            }
            (None, _) => {}
        }
        qb.push(if by_name { " ORDER BY a.name_key, a.id" } else { " ORDER BY a.id DESC" });
        qb.push(" LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows = qb.build_query_as::<ApplicantRow>().fetch_all(&mut *conn).await?;
        // Ordered by id alone, the token carries only the id (no name in it).
        let (rows, next) =
            next_page(rows, size, &self.page_tokens, &filter, |row| (if by_name { row.name_key.clone() } else { String::new() }, row.id));
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut dups = self.possible_duplicates(&mut conn, &scope, &ids).await?;
        let page = rows.iter().map(|row| self.applicant(row, false, dups.remove(&row.id).unwrap_or_default())).collect::<Result<_, _>>()?;
        Ok((page, next))
    }

    /// UpdateApplicant: staff in scope or the person; every field re-validated, duplicates rechecked.
    pub async fn update_applicant(&self, actor: &Actor<'_>, wire: &Applicant, mask: &[String]) -> Result<Applicant, ServiceError> {
        const PATHS: [&str; 10] = [
            "given_name",
            "family_name",
            "birth_date",
            "gender",
            "nationality",
            "languages",
            "zone",
            "phone",
            "email",
            "identity_document",
        ];
        let id = parse_name("applicant.name", "applicants", &wire.name)?;
        if mask.is_empty() {
            return Err(ServiceError::invalid("update_mask", format!("name the fields to change: {}", PATHS.join(", "))));
        }
        let unknown: Vec<FieldViolation> = mask
            .iter()
            .filter(|p| !PATHS.contains(&p.as_str()))
            .map(|p| FieldViolation::new("update_mask", format!("{p:?} cannot be changed; changeable: {}", PATHS.join(", "))))
            .collect();
        if !unknown.is_empty() {
            return Err(ServiceError::InvalidArgument(unknown));
        }
        let p = actor.principal;
        let scope = Scope::staff(p).with_self(p);
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &Scope::read(p), id, true).await?;
        if !(scope.covers(&row.zone, row.organization_id) || (row.account_id.is_some() && row.account_id == scope.account)) {
            return Err(ServiceError::PermissionDenied("only staff in scope and the person themselves change a record"));
        }
        if row.state != "active" {
            return Err(ServiceError::precondition("INVALID_STATE", "STATE", wire.name.clone(), format!("the record is {}", row.state)));
        }
        check_etag(&wire.etag, row.version)?;
        let mut merged = self.applicant(&row, true, Vec::new())?;
        for path in mask {
            match path.as_str() {
                "given_name" => merged.given_name.clone_from(&wire.given_name),
                "family_name" => merged.family_name.clone_from(&wire.family_name),
                "birth_date" => merged.birth_date.clone_from(&wire.birth_date),
                "gender" => merged.gender = wire.gender,
                "nationality" => merged.nationality.clone_from(&wire.nationality),
                "languages" => merged.languages.clone_from(&wire.languages),
                "zone" => merged.zone.clone_from(&wire.zone),
                "phone" => merged.phone.clone_from(&wire.phone),
                "email" => merged.email.clone_from(&wire.email),
                _ => merged.identity_document.clone_from(&wire.identity_document),
            }
        }
        let known_zones = zones(&mut tx).await?;
        let input = validate("applicant", &merged, &known_zones, OffsetDateTime::now_utc().date())?;
        let own = row.account_id.is_some() && row.account_id == scope.account;
        if input.zone != row.zone && !own && !scope.covers(&input.zone, row.organization_id) {
            return Err(ServiceError::PermissionDenied("your bindings do not cover the new zone"));
        }
        self.refuse_exact_duplicates(&mut tx, &Scope::read(p), &input, Some(id)).await?;
        self.write_personal(&mut tx, id, &input).await?;
        sqlx::query("UPDATE applicants SET version = version + 1, updated_at = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if mask.iter().any(|m| matches!(m.as_str(), "given_name" | "family_name" | "birth_date")) {
            self.flag_lookalikes(&mut tx, id, &input).await?;
        }
        actor.record(&mut tx, "intake.UpdateApplicant", wire.name.clone(), serde_json::json!({ "fields": mask })).await?;
        let row = fetch(&mut tx, &Scope::everything(), id, false).await?;
        let applicant = self.with_duplicates(&mut tx, &Scope::read(p), &row, false).await?;
        tx.commit().await?;
        Ok(applicant)
    }

    /// MarkDuplicate: `id` becomes a duplicate of `keep`; their look-alike flag is resolved.
    pub async fn mark_duplicate(&self, actor: &Actor<'_>, id: Uuid, keep: Uuid, reason: &str) -> Result<Applicant, ServiceError> {
        if id == keep {
            return Err(ServiceError::invalid("keep", "must name another record than `name`"));
        }
        let p = actor.principal;
        let staff = Scope::staff(p);
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let read = Scope::read(p);
        // Lock both in id order, so crossed requests (A keeps B, B keeps A) queue instead of deadlocking.
        let (first, second) = if id < keep { (id, keep) } else { (keep, id) };
        let first = fetch(&mut tx, &read, first, true).await?;
        let second = fetch(&mut tx, &read, second, true).await?;
        let (duplicate, kept) = if first.id == id { (first, second) } else { (second, first) };
        if !staff.covers(&duplicate.zone, duplicate.organization_id) || !staff.covers(&kept.zone, kept.organization_id) {
            return Err(ServiceError::PermissionDenied("officers and program managers in scope of both records mark duplicates"));
        }
        for (row, field) in [(&duplicate, "name"), (&kept, "keep")] {
            if row.state != "active" {
                return Err(ServiceError::precondition(
                    "INVALID_STATE",
                    "STATE",
                    format!("applicants/{}", row.id),
                    format!("{field}: the record is {}, not active", row.state),
                ));
            }
        }
        sqlx::query(
            "UPDATE applicants SET state = 'duplicate', duplicate_of = $2, version = version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM possible_duplicates WHERE (applicant_id = $1 AND other_id = $2) OR (applicant_id = $2 AND other_id = $1)")
            .bind(id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        let name = format!("applicants/{id}");
        actor
            .record(&mut tx, "intake.MarkDuplicate", name, serde_json::json!({ "keep": format!("applicants/{keep}"), "reason": reason }))
            .await?;
        let row = fetch(&mut tx, &Scope::everything(), id, false).await?;
        let applicant = self.with_duplicates(&mut tx, &read, &row, false).await?;
        tx.commit().await?;
        Ok(applicant)
    }

    /// ErasePersonalData: the personal fields wiped, the pseudonymous id and aggregates kept.
    pub async fn erase(&self, actor: &Actor<'_>, id: Uuid, reason: &str) -> Result<Applicant, ServiceError> {
        let p = actor.principal;
        let managers = Scope::managers(p).with_self(p);
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &Scope::read(p), id, true).await?;
        if !(managers.covers(&row.zone, row.organization_id) || (row.account_id.is_some() && row.account_id == managers.account)) {
            return Err(ServiceError::PermissionDenied("program managers in scope, admins and the person themselves erase personal data"));
        }
        let name = format!("applicants/{id}");
        if row.state != "erased" {
            sqlx::query(
                "UPDATE applicants SET state = 'erased', given_name = NULL, family_name = NULL, name_key = '', birth_date = NULL, \
                 languages = '{}', phone_cipher = NULL, phone_hash = NULL, email_cipher = NULL, document_cipher = NULL, \
                 document_hash = NULL, document_hint = '', document_country = '', version = version + 1, updated_at = now() WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM possible_duplicates WHERE applicant_id = $1 OR other_id = $1").bind(id).execute(&mut *tx).await?;
            emit(&mut tx, "intake.applicant.erased", &name, "ApplicantErased", &ApplicantErased { applicant: name.clone() }).await?;
            actor.record(&mut tx, "intake.ErasePersonalData", name, serde_json::json!({ "reason": reason })).await?;
        }
        let row = fetch(&mut tx, &Scope::everything(), id, false).await?;
        let applicant = self.applicant(&row, false, Vec::new())?;
        tx.commit().await?;
        Ok(applicant)
    }

    /// ExportApplicants: keyed pseudonyms, age bands and outcomes; audited.
    pub async fn export(
        &self,
        actor: &Actor<'_>,
        zone: &str,
        requested: i32,
        token: &str,
    ) -> Result<(Vec<PseudonymousApplicant>, String), ServiceError> {
        let scope = Scope::of(actor.principal, &["admin", "auditor"], &["program_manager"])
            .require("admins, auditors and program managers export the registry")?;
        let size = page_size(requested)?;
        let filter = format!("export|{zone}");
        let after: Option<Uuid> = self.page_tokens.decode(token, &filter)?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM applicants a WHERE a.state <> 'duplicate'"));
        if !zone.is_empty() {
            qb.push(" AND a.zone = ").push_bind(zone.to_string());
        }
        if let Some(after) = after {
            qb.push(" AND a.id > ").push_bind(after);
        }
        scope.push_applicants(&mut qb);
        qb.push(" ORDER BY a.id LIMIT ").push_bind(i64::from(size) + 1);
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let rows = qb.build_query_as::<ApplicantRow>().fetch_all(&mut *tx).await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| r.id);
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let apps: Vec<(Uuid, String, String, Option<String>)> = sqlx::query_as(
            "SELECT m.applicant_id, c.window_code, p.state, p.outcome FROM application_members m \
             JOIN applications p ON p.id = m.application_id JOIN calls c ON c.id = p.call_id WHERE m.applicant_id = ANY($1) ORDER BY p.id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let today = OffsetDateTime::now_utc().date();
        let page = rows
            .iter()
            .map(|r| PseudonymousApplicant {
                pseudonym: self.vault.pseudonym(r.id),
                gender: gender_of(&r.gender) as i32,
                nationality: r.nationality.clone(),
                zone: r.zone.clone(),
                age_band: r.birth_date.map(|b| age_band(rules::age_on(b, today)).to_string()).unwrap_or_default(),
                state: state_of(&r.state) as i32,
                applications: apps
                    .iter()
                    .filter(|a| a.0 == r.id)
                    .map(|(_, window, state, outcome)| PseudonymousApplication {
                        window: rules::window_of(window) as i32,
                        state: crate::applications::state_wire(state) as i32,
                        outcome: crate::applications::outcome_wire(outcome.as_deref()) as i32,
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        actor
            .record(&mut tx, "intake.ExportApplicants", "applicants".into(), serde_json::json!({ "zone": zone, "rows": page.len() }))
            .await?;
        tx.commit().await?;
        Ok((page, next))
    }
}

fn unique_conflict(err: sqlx::Error) -> ServiceError {
    conflict(
        err,
        &[
            ("applicants_document_active", "DUPLICATE_DOCUMENT", "identity_document"),
            ("applicants_phone_active", "DUPLICATE_PHONE", "phone"),
            ("applicants_account_active", "DUPLICATE_ACCOUNT", "account"),
        ],
    )
}

/// The donor's age bands.
pub fn age_band(age: i32) -> &'static str {
    match age {
        ..=17 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        _ => "55+",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Applicant {
        Applicant {
            given_name: "Awa".into(),
            family_name: "Diallo".into(),
            birth_date: "1998-04-17".into(),
            gender: Gender::Female as i32,
            nationality: "sn".into(),
            languages: vec!["fr".into(), "wo".into()],
            zone: "oujda".into(),
            phone: "06 12 34 56 78".into(),
            identity_document: Some(IdentityDocument {
                r#type: DocumentType::Passport as i32,
                number: "ab-123 456".into(),
                ..Default::default()
            }),
            consent: Some(Consent { purpose: "program_participation".into(), text_version: "2026-01".into(), ..Default::default() }),
            ..Default::default()
        }
    }

    fn today() -> Date {
        OffsetDateTime::now_utc().date()
    }

    #[test]
    fn valid_input_is_normalised() {
        let input = validate("applicant", &valid(), &["oujda".into()], today()).expect("valid");
        assert_eq!(input.nationality, "SN");
        assert_eq!(input.phone.as_deref(), Some("+212612345678"));
        assert_eq!(input.document_number.as_deref(), Some("AB123456"));
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let bad = Applicant {
            given_name: " ".into(),
            birth_date: "2999-01-01".into(),
            gender: 0,
            nationality: "Senegal".into(),
            languages: vec!["French".into()],
            zone: "paris".into(),
            phone: "12".into(),
            email: "nope".into(),
            identity_document: Some(IdentityDocument { r#type: DocumentType::Passport as i32, number: "x".into(), ..Default::default() }),
            consent: None,
            ..valid()
        };
        let Err(ServiceError::InvalidArgument(v)) = validate("applicant", &bad, &["oujda".into()], today()) else { panic!("must fail") };
        let fields: Vec<&str> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "applicant.given_name",
                "applicant.birth_date",
                "applicant.gender",
                "applicant.nationality",
                "applicant.languages[0]",
                "applicant.zone",
                "applicant.phone",
                "applicant.email",
                "applicant.identity_document.number",
                "applicant.consent"
            ]
        );
    }

    #[test]
    fn bands_cover_every_age() {
        assert_eq!(age_band(17), "under 18");
        assert_eq!(age_band(24), "18-24");
        assert_eq!(age_band(60), "55+");
    }
}
