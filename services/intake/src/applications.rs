//! Applications: drafts and their members, the eligibility report, and the state machine from
//! draft to decision. Every transition is checked by [`rules::next_state`], audited, and the
//! ones others act on (submitted, decided) emit their event in the same transaction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    error::PreconditionViolation,
    pagination::{next_page, page_size},
    wire::{check_etag, etag, gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::{
    intake::{
        Application, ApplicationDecided, ApplicationState, ApplicationSubmitted, CallState, Decision, EligibilityFinding, JobPlacement,
        ListApplicationsRequest, Member, MemberProfile, MemberRole, Outcome, Recipient,
    },
    types::Money,
};

use crate::{
    Intake,
    calls::{CallRow, Lock, fetch_call},
    emit,
    rules::{self, CallFacts, DraftFacts, MemberFacts, Step, window_of},
    scope::Scope,
};

/// What a job placement names, stored as JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobData {
    pub employer: Option<Uuid>,
    pub job_title: String,
    pub contract_type: String,
    pub start_date: String,
    pub salary_currency: String,
    pub salary_minor: i64,
}

/// An application row with its call's window and program.
#[derive(Debug, Clone, FromRow)]
pub struct ApplicationRow {
    pub id: Uuid,
    pub call_id: Uuid,
    pub zone: String,
    pub organization_id: Option<Uuid>,
    pub title: String,
    pub summary: String,
    pub job_placement: Option<Json<JobData>>,
    pub provided_documents: Vec<String>,
    pub state: String,
    pub outcome: Option<String>,
    pub decision_reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub average_score: Option<f64>,
    pub review_count: Option<i32>,
    pub withdraw_reason: Option<String>,
    pub submitted_at: Option<OffsetDateTime>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub window_code: String,
    pub program_code: String,
}

const SELECT: &str = "SELECT p.id, p.call_id, p.zone, p.organization_id, p.title, p.summary, p.job_placement, p.provided_documents, \
     p.state, p.outcome, p.decision_reason, p.decided_by, p.decided_at, p.average_score, p.review_count, p.withdraw_reason, \
     p.submitted_at, p.version, p.created_at, p.updated_at, c.window_code, pr.code AS program_code \
     FROM applications p JOIN calls c ON c.id = p.call_id JOIN programs pr ON pr.id = c.program_id";

/// A member row with what the eligibility check and events need of the person.
#[derive(Debug, Clone, FromRow)]
struct MemberRow {
    application_id: Uuid,
    applicant_id: Uuid,
    role: String,
    state: String,
    given_name: Option<String>,
    family_name: Option<String>,
    birth_date: Option<time::Date>,
    gender: String,
    nationality: String,
    zone: String,
    document_type: String,
    account_id: Option<Uuid>,
    languages: Vec<String>,
}

impl MemberRow {
    fn display_name(&self) -> String {
        format!("{} {}", self.given_name.as_deref().unwrap_or_default(), self.family_name.as_deref().unwrap_or_default()).trim().to_string()
    }
}

/// The wire state of a stored one.
pub fn state_wire(state: &str) -> ApplicationState {
    match state {
        "draft" => ApplicationState::Draft,
        "submitted" => ApplicationState::Submitted,
        "screening" => ApplicationState::Screening,
        "in_review" => ApplicationState::InReview,
        "decided" => ApplicationState::Decided,
        "withdrawn" => ApplicationState::Withdrawn,
        _ => ApplicationState::Unspecified,
    }
}

/// The wire outcome of a stored one.
pub fn outcome_wire(outcome: Option<&str>) -> Outcome {
    match outcome {
        Some("accepted") => Outcome::Accepted,
        Some("waitlisted") => Outcome::Waitlisted,
        Some("rejected") => Outcome::Rejected,
        _ => Outcome::Unspecified,
    }
}

fn outcome_code(o: Outcome) -> &'static str {
    match o {
        Outcome::Accepted => "accepted",
        Outcome::Waitlisted => "waitlisted",
        _ => "rejected",
    }
}

fn role_code(r: i32) -> Option<&'static str> {
    match MemberRole::try_from(r) {
        Ok(MemberRole::Representative) => Some("representative"),
        Ok(MemberRole::Member) => Some("member"),
        _ => None,
    }
}

fn role_wire(r: &str) -> MemberRole {
    if r == "representative" { MemberRole::Representative } else { MemberRole::Member }
}

async fn members_of(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<MemberRow>, ServiceError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "SELECT m.application_id, m.applicant_id, m.role, a.state, a.given_name, a.family_name, a.birth_date, a.gender, a.nationality, a.zone, \
         a.document_type, a.account_id, a.languages FROM application_members m JOIN applicants a ON a.id = m.applicant_id \
         WHERE m.application_id = ANY($1) ORDER BY m.application_id, m.position",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

fn application(row: &ApplicationRow, members: &[MemberRow]) -> Application {
    let job = row.job_placement.as_ref().map(|j| JobPlacement {
        employer: j.0.employer.map(|e| format!("organizations/{e}")).unwrap_or_default(),
        job_title: j.0.job_title.clone(),
        contract_type: j.0.contract_type.clone(),
        start_date: j.0.start_date.clone(),
        monthly_salary: (!j.0.salary_currency.is_empty())
            .then(|| Money { currency_code: j.0.salary_currency.clone(), amount_minor: j.0.salary_minor }),
    });
    Application {
        name: format!("applications/{}", row.id),
        call: format!("calls/{}", row.call_id),
        window: window_of(&row.window_code) as i32,
        program: format!("programs/{}", row.program_code),
        zone: row.zone.clone(),
        title: row.title.clone(),
        summary: row.summary.clone(),
        members: members
            .iter()
            .filter(|m| m.application_id == row.id)
            .map(|m| Member {
                applicant: format!("applicants/{}", m.applicant_id),
                role: role_wire(&m.role) as i32,
                display_name: m.display_name(),
            })
            .collect(),
        job_placement: job,
        provided_documents: row.provided_documents.clone(),
        state: state_wire(&row.state) as i32,
        decision: row.outcome.as_ref().map(|o| Decision {
            outcome: outcome_wire(Some(o)) as i32,
            reason: row.decision_reason.clone().unwrap_or_default(),
            decided_by: row.decided_by.clone().unwrap_or_default(),
            decide_time: row.decided_at.map(timestamp),
            average_score: row.average_score.unwrap_or_default(),
            review_count: row.review_count.unwrap_or_default(),
        }),
        withdraw_reason: row.withdraw_reason.clone().unwrap_or_default(),
        organization: row.organization_id.map(|o| format!("organizations/{o}")).unwrap_or_default(),
        submit_time: row.submitted_at.map(timestamp),
        etag: etag(row.version),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

/// Reads an application in `scope`; NOT_FOUND when out of it.
pub async fn fetch(conn: &mut PgConnection, scope: &Scope, id: Uuid, lock: bool) -> Result<ApplicationRow, ServiceError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE p.id = "));
    qb.push_bind(id);
    scope.push_applications(&mut qb);
    if lock {
        qb.push(" FOR UPDATE OF p");
    }
    qb.build_query_as::<ApplicationRow>().fetch_optional(conn).await?.ok_or_else(|| ServiceError::NotFound(format!("applications/{id}")))
}

/// Whether the caller is a beneficiary member of the application.
async fn is_member(conn: &mut PgConnection, scope: &Scope, id: Uuid) -> Result<bool, ServiceError> {
    let Some(account) = scope.account else { return Ok(false) };
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM application_members m JOIN applicants a ON a.id = m.applicant_id \
         WHERE m.application_id = $1 AND a.account_id = $2)",
    )
    .bind(id)
    .bind(account)
    .fetch_one(conn)
    .await?)
}

/// A validated member list entry.
struct NewMember {
    id: Uuid,
    role: &'static str,
}

fn validate_member(v: &mut Vec<FieldViolation>, field: &str, m: &Member) -> Option<NewMember> {
    let id = parse_name(&format!("{field}.applicant"), "applicants", &m.applicant)
        .map_err(|e| {
            if let ServiceError::InvalidArgument(mut e) = e {
                v.append(&mut e);
            }
        })
        .ok();
    let role = role_code(m.role);
    if role.is_none() {
        v.push(FieldViolation::new(format!("{field}.role"), "is required (REPRESENTATIVE or MEMBER)"));
    }
    Some(NewMember { id: id?, role: role? })
}

fn validate_job(v: &mut Vec<FieldViolation>, job: &JobPlacement) -> JobData {
    let employer = if job.employer.is_empty() {
        None
    } else {
        parse_name("application.job_placement.employer", "organizations", &job.employer)
            .map_err(|e| {
                if let ServiceError::InvalidArgument(mut e) = e {
                    v.append(&mut e);
                }
            })
            .ok()
    };
    if !job.start_date.is_empty() {
        let _ = work4life_platform::wire::parse_date("application.job_placement.start_date", &job.start_date).map_err(|e| v.push(e));
    }
    let salary = job.monthly_salary.clone().unwrap_or_default();
    if job.monthly_salary.is_some() && (salary.currency_code.len() != 3 || salary.amount_minor <= 0) {
        v.push(FieldViolation::new("application.job_placement.monthly_salary", "needs a currency code and a positive amount"));
    }
    JobData {
        employer,
        job_title: job.job_title.trim().into(),
        contract_type: job.contract_type.trim().into(),
        start_date: job.start_date.trim().into(),
        salary_currency: salary.currency_code,
        salary_minor: salary.amount_minor,
    }
}

fn validate_texts(v: &mut Vec<FieldViolation>, title: &str, summary: &str, documents: &[String]) {
    if title.chars().count() > 200 || title.chars().any(char::is_control) {
        v.push(FieldViolation::new("application.title", "must be at most 200 characters, without control characters"));
    }
    if summary.chars().count() > 5000 || summary.contains('\0') {
        v.push(FieldViolation::new("application.summary", "must be at most 5000 characters, without NUL"));
    }
    for (i, d) in documents.iter().enumerate() {
        if d.trim().is_empty() || d.len() > 60 || d.chars().any(char::is_control) {
            v.push(FieldViolation::new(format!("application.provided_documents[{i}]"), "must be a document kind such as business_plan"));
        }
    }
}

impl Intake {
    async fn respond(&self, conn: &mut PgConnection, id: Uuid) -> Result<Application, ServiceError> {
        let row = fetch(conn, &Scope::everything(), id, false).await?;
        let members = members_of(conn, &[id]).await?;
        Ok(application(&row, &members))
    }

    /// Loads an application the caller may change (staff in scope, or a beneficiary member).
    async fn editable(&self, conn: &mut PgConnection, actor: &Actor<'_>, id: Uuid) -> Result<ApplicationRow, ServiceError> {
        let p = actor.principal;
        let row = fetch(conn, &Scope::read(p), id, true).await?;
        let staff = Scope::staff(p).with_self(p);
        if staff.covers(&row.zone, row.organization_id) || is_member(conn, &staff, id).await? {
            return Ok(row);
        }
        Err(ServiceError::PermissionDenied("only staff in scope and the application's members change it"))
    }

    /// Checks applicants can join an application of `call`: visible, active, in no other
    /// active application of the call.
    async fn check_joiners(
        &self,
        conn: &mut PgConnection,
        actor: &Actor<'_>,
        call: Uuid,
        joiners: &[(String, Uuid)],
    ) -> Result<(), ServiceError> {
        let ids: Vec<Uuid> = joiners.iter().map(|j| j.1).collect();
        let seen = crate::applicants::visible(conn, &Scope::read(actor.principal), &ids).await?;
        let states: HashMap<Uuid, String> = sqlx::query_as::<_, (Uuid, String)>("SELECT id, state FROM applicants WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        let mut v = Vec::new();
        for (field, id) in joiners {
            match states.get(id) {
                Some(_) if !seen.contains(id) => v.push(FieldViolation::new(field.clone(), "no such applicant")),
                None => v.push(FieldViolation::new(field.clone(), "no such applicant")),
                Some(state) if state != "active" => {
                    v.push(FieldViolation::new(field.clone(), format!("the record is {state}, not active")))
                }
                Some(_) => {}
            }
        }
        if !v.is_empty() {
            return Err(ServiceError::InvalidArgument(v));
        }
        let busy: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT applicant_id, application_id FROM application_members WHERE call_id = $1 AND active AND applicant_id = ANY($2)",
        )
        .bind(call)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        if busy.is_empty() {
            return Ok(());
        }
        Err(ServiceError::FailedPrecondition {
            reason: "ACTIVE_APPLICATION_EXISTS",
            violations: joiners
                .iter()
                .filter(|j| busy.iter().any(|b| b.0 == j.1))
                .map(|(field, _)| PreconditionViolation {
                    kind: "ACTIVE_APPLICATION".into(),
                    subject: field.clone(),
                    description: "this applicant is already in an active application to this call".into(),
                })
                .collect(),
        })
    }

    /// CreateApplication, in `tx`.
    pub async fn create_application(&self, tx: &mut PgConnection, actor: &Actor<'_>, a: &Application) -> Result<Application, ServiceError> {
        let p = actor.principal;
        let mut v = Vec::new();
        let call_id = parse_name("application.call", "calls", &a.call)
            .map_err(|e| {
                if let ServiceError::InvalidArgument(mut e) = e {
                    v.append(&mut e)
                }
            })
            .ok();
        let members: Vec<Option<NewMember>> =
            a.members.iter().enumerate().map(|(i, m)| validate_member(&mut v, &format!("application.members[{i}]"), m)).collect();
        for (i, m) in members.iter().enumerate() {
            if let Some(m) = m
                && members[..i].iter().flatten().any(|o| o.id == m.id)
            {
                v.push(FieldViolation::new(format!("application.members[{i}].applicant"), "appears twice"));
            }
        }
        if a.zone.trim().is_empty() {
            v.push(FieldViolation::new("application.zone", "is required: one of the call's zones"));
        }
        let job = a.job_placement.as_ref().map(|j| validate_job(&mut v, j));
        validate_texts(&mut v, &a.title, &a.summary, &a.provided_documents);
        let call = match call_id {
            Some(id) => match fetch_call(tx, id, Lock::None).await {
                Ok(c) => Some(c),
                Err(ServiceError::NotFound(_)) => {
                    v.push(FieldViolation::new("application.call", "no such call"));
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        if let Some(c) = &call
            && !a.zone.trim().is_empty()
            && !c.zones.contains(&a.zone)
        {
            v.push(FieldViolation::new("application.zone", format!("must be one of the call's zones: {}", c.zones.join(", "))));
        }
        let (Some(call), true) = (call, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let members: Vec<NewMember> = members.into_iter().flatten().collect();
        if call.state(OffsetDateTime::now_utc()) == CallState::Closed {
            return Err(ServiceError::precondition("CALL_NOT_OPEN", "CALL", format!("calls/{}", call.id), "the call is closed"));
        }
        let staff = Scope::staff(p);
        let own = Scope::read(p).account;
        let organization = match staff.stamp(&a.zone) {
            Some(org) => org,
            None if own.is_some() => {
                let mine: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM applicants WHERE account_id = $1 AND id = ANY($2)")
                    .bind(own)
                    .bind(members.iter().map(|m| m.id).collect::<Vec<_>>())
                    .fetch_all(&mut *tx)
                    .await?;
                if mine.is_empty() {
                    return Err(ServiceError::PermissionDenied("a beneficiary opens an application they are a member of"));
                }
                None
            }
            None => return Err(ServiceError::PermissionDenied("only officers, program managers, admins and members open applications")),
        };
        let (_, max) = call.eligibility.0.team_size(&call.window_code);
        if members.len() > max {
            return Err(ServiceError::precondition(
                "TEAM_FULL",
                "TEAM_SIZE",
                "application.members",
                format!("this call takes at most {max} members"),
            ));
        }
        if members.iter().filter(|m| m.role == "representative").count() > 1 {
            return Err(ServiceError::precondition(
                "REPRESENTATIVE_EXISTS",
                "REPRESENTATIVE",
                "application.members",
                "only one member is the representative",
            ));
        }
        let joiners: Vec<(String, Uuid)> =
            members.iter().enumerate().map(|(i, m)| (format!("application.members[{i}].applicant"), m.id)).collect();
        self.check_joiners(tx, actor, call.id, &joiners).await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO applications (id, call_id, zone, organization_id, created_by, title, summary, job_placement, provided_documents) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(call.id)
        .bind(&a.zone)
        .bind(organization)
        .bind(&p.subject)
        .bind(a.title.trim())
        .bind(a.summary.trim())
        .bind(job.map(Json))
        .bind(a.provided_documents.iter().map(|d| d.trim().to_string()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        for (i, m) in members.iter().enumerate() {
            insert_member(tx, id, call.id, m.id, m.role, i as i32).await?;
        }
        let name = format!("applications/{id}");
        actor.record(tx, "intake.CreateApplication", name, serde_json::json!({ "call": a.call, "members": members.len() })).await?;
        self.respond(tx, id).await
    }

    /// GetApplication.
    pub async fn get_application(&self, actor: &Actor<'_>, id: Uuid) -> Result<Application, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let row = fetch(&mut conn, &Scope::read(actor.principal), id, false).await?;
        Ok(application(&row, &members_of(&mut conn, &[id]).await?))
    }

    /// ListApplications, newest first.
    pub async fn list_applications(
        &self,
        actor: &Actor<'_>,
        r: &ListApplicationsRequest,
    ) -> Result<(Vec<Application>, String), ServiceError> {
        let scope = Scope::read(actor.principal);
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let call = if r.call.is_empty() { None } else { gather(&mut v, parse_name("call", "calls", &r.call)) };
        let applicant = if r.applicant.is_empty() { None } else { gather(&mut v, parse_name("applicant", "applicants", &r.applicant)) };
        let state = match ApplicationState::try_from(r.state) {
            Ok(ApplicationState::Unspecified) => None,
            Ok(s) => Some(s.as_str_name().trim_start_matches("APPLICATION_STATE_").to_lowercase()),
            Err(_) => {
                v.push(FieldViolation::new("state", "is not an application state"));
                None
            }
        };
        refuse_if_any(v)?;
        let filter = format!("applications|{}|{}|{}|{}", r.call, r.state, r.zone, r.applicant);
        let after: Option<Uuid> = self.page_tokens.decode(&r.page_token, &filter)?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE TRUE"));
        if let Some(call) = call {
            qb.push(" AND p.call_id = ").push_bind(call);
        }
        if let Some(state) = state {
            qb.push(" AND p.state = ").push_bind(state);
        }
        if !r.zone.is_empty() {
            qb.push(" AND p.zone = ").push_bind(r.zone.clone());
        }
        if let Some(applicant) = applicant {
            qb.push(" AND EXISTS (SELECT 1 FROM application_members fm WHERE fm.application_id = p.id AND fm.applicant_id = ")
                .push_bind(applicant)
                .push(")");
        }
        scope.push_applications(&mut qb);
        if let Some(after) = after {
            qb.push(" AND p.id < ").push_bind(after);
        }
        qb.push(" ORDER BY p.id DESC LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows = qb.build_query_as::<ApplicationRow>().fetch_all(&mut *conn).await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| r.id);
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let members = members_of(&mut conn, &ids).await?;
        Ok((rows.iter().map(|r| application(r, &members)).collect(), next))
    }

    /// UpdateApplication: a draft's details.
    pub async fn update_application(&self, actor: &Actor<'_>, a: &Application, mask: &[String]) -> Result<Application, ServiceError> {
        const PATHS: [&str; 5] = ["title", "summary", "zone", "job_placement", "provided_documents"];
        let id = parse_name("application.name", "applications", &a.name)?;
        if mask.is_empty() || mask.iter().any(|m| !PATHS.contains(&m.as_str())) {
            return Err(ServiceError::invalid("update_mask", format!("name fields among {}", PATHS.join(", "))));
        }
        let mut v = Vec::new();
        let job = a.job_placement.as_ref().map(|j| validate_job(&mut v, j));
        validate_texts(&mut v, &a.title, &a.summary, &a.provided_documents);
        if !v.is_empty() {
            return Err(ServiceError::InvalidArgument(v));
        }
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.editable(&mut tx, actor, id).await?;
        rules::next_state(&a.name, &row.state, row.outcome.as_deref(), Step::Edit)?;
        check_etag(&a.etag, row.version)?;
        let call = fetch_call(&mut tx, row.call_id, Lock::None).await?;
        let has = |p: &str| mask.iter().any(|m| m == p);
        let zone = if has("zone") { a.zone.clone() } else { row.zone.clone() };
        if !call.zones.contains(&zone) {
            return Err(ServiceError::invalid("application.zone", format!("must be one of the call's zones: {}", call.zones.join(", "))));
        }
        let p = actor.principal;
        if zone != row.zone && !Scope::staff(p).covers(&zone, row.organization_id) && !is_member(&mut tx, &Scope::read(p), id).await? {
            return Err(ServiceError::PermissionDenied("your bindings do not cover the new zone"));
        }
        sqlx::query(
            "UPDATE applications SET title = $2, summary = $3, zone = $4, job_placement = $5, provided_documents = $6, \
             version = version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(if has("title") { a.title.trim().to_string() } else { row.title.clone() })
        .bind(if has("summary") { a.summary.trim().to_string() } else { row.summary.clone() })
        .bind(&zone)
        .bind(if has("job_placement") { job.map(Json) } else { row.job_placement.clone() })
        .bind(if has("provided_documents") {
            a.provided_documents.iter().map(|d| d.trim().to_string()).collect()
        } else {
            row.provided_documents.clone()
        })
        .execute(&mut *tx)
        .await?;
        actor.record(&mut tx, "intake.UpdateApplication", a.name.clone(), serde_json::json!({ "fields": mask })).await?;
        let out = self.respond(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// AddMember to a draft.
    pub async fn add_member(
        &self,
        actor: &Actor<'_>,
        name: &str,
        member: Option<&Member>,
        etag_sent: &str,
    ) -> Result<Application, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("application", "applications", name));
        let new = match member {
            None => {
                v.push(FieldViolation::new("member", "is required"));
                None
            }
            Some(m) => validate_member(&mut v, "member", m),
        };
        let (Some(id), Some(new), true) = (id, new, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.editable(&mut tx, actor, id).await?;
        rules::next_state(name, &row.state, row.outcome.as_deref(), Step::Edit)?;
        check_etag(etag_sent, row.version)?;
        let call = fetch_call(&mut tx, row.call_id, Lock::None).await?;
        let current = members_of(&mut tx, &[id]).await?;
        if current.iter().any(|m| m.applicant_id == new.id) {
            return Err(ServiceError::invalid("member.applicant", "is already a member"));
        }
        let (_, max) = call.eligibility.0.team_size(&call.window_code);
        if current.len() >= max {
            return Err(ServiceError::precondition("TEAM_FULL", "TEAM_SIZE", name, format!("this call takes at most {max} members")));
        }
        if new.role == "representative" && current.iter().any(|m| m.role == "representative") {
            return Err(ServiceError::precondition(
                "REPRESENTATIVE_EXISTS",
                "REPRESENTATIVE",
                name,
                "the application has a representative already",
            ));
        }
        self.check_joiners(&mut tx, actor, row.call_id, &[("member.applicant".into(), new.id)]).await?;
        let position: i32 = sqlx::query_scalar("SELECT COALESCE(max(position) + 1, 0) FROM application_members WHERE application_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        insert_member(&mut tx, id, row.call_id, new.id, new.role, position).await?;
        bump(&mut tx, id).await?;
        actor
            .record(
                &mut tx,
                "intake.AddMember",
                name.into(),
                serde_json::json!({ "applicant": format!("applicants/{}", new.id), "role": new.role }),
            )
            .await?;
        let out = self.respond(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// RemoveMember from a draft.
    pub async fn remove_member(
        &self,
        actor: &Actor<'_>,
        name: &str,
        applicant: &str,
        etag_sent: &str,
    ) -> Result<Application, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("application", "applications", name));
        let member = gather(&mut v, parse_name("applicant", "applicants", applicant));
        let (Some(id), Some(member)) = (id, member) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.editable(&mut tx, actor, id).await?;
        rules::next_state(name, &row.state, row.outcome.as_deref(), Step::Edit)?;
        check_etag(etag_sent, row.version)?;
        let removed = sqlx::query("DELETE FROM application_members WHERE application_id = $1 AND applicant_id = $2")
            .bind(id)
            .bind(member)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(ServiceError::invalid("applicant", "is not a member of the application"));
        }
        bump(&mut tx, id).await?;
        actor.record(&mut tx, "intake.RemoveMember", name.into(), serde_json::json!({ "applicant": applicant })).await?;
        let out = self.respond(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn findings(&self, conn: &mut PgConnection, row: &ApplicationRow, call: &CallRow) -> Result<Vec<rules::Finding>, ServiceError> {
        let members = members_of(conn, &[row.id]).await?;
        let job = row.job_placement.as_ref().map(|j| j.0.clone()).unwrap_or_default();
        let draft = DraftFacts {
            title: row.title.clone(),
            summary: row.summary.clone(),
            members: members
                .iter()
                .map(|m| MemberFacts {
                    applicant: format!("applicants/{}", m.applicant_id),
                    display_name: m.display_name(),
                    role: m.role.clone(),
                    state: m.state.clone(),
                    birth_date: m.birth_date,
                    nationality: m.nationality.clone(),
                    zone: m.zone.clone(),
                    document_type: m.document_type.clone(),
                })
                .collect(),
            provided_documents: row.provided_documents.clone(),
            employer: job.employer.map(|e| format!("organizations/{e}")).unwrap_or_default(),
            job_title: job.job_title,
        };
        let facts = CallFacts {
            window: call.window_code.clone(),
            zones: call.zones.clone(),
            opens_on: call.opens_at.date(),
            eligibility: call.eligibility.0.clone(),
        };
        Ok(rules::findings(&facts, &draft))
    }

    /// CheckEligibility: what a submission would find.
    pub async fn check_eligibility(&self, actor: &Actor<'_>, name: &str) -> Result<Vec<EligibilityFinding>, ServiceError> {
        let id = parse_name("name", "applications", name)?;
        let mut conn = self.pool.acquire().await?;
        let row = fetch(&mut conn, &Scope::read(actor.principal), id, false).await?;
        let call = fetch_call(&mut conn, row.call_id, Lock::None).await?;
        Ok(self
            .findings(&mut conn, &row, &call)
            .await?
            .into_iter()
            .map(|f| EligibilityFinding { rule: f.rule.into(), field: f.field, description: f.description })
            .collect())
    }

    /// SubmitApplication.
    pub async fn submit(&self, actor: &Actor<'_>, name: &str, etag_sent: &str) -> Result<Application, ServiceError> {
        let id = parse_name("name", "applications", name)?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.editable(&mut tx, actor, id).await?;
        let next = rules::next_state(name, &row.state, row.outcome.as_deref(), Step::Submit)?;
        check_etag(etag_sent, row.version)?;
        let call = fetch_call(&mut tx, row.call_id, Lock::Share).await?;
        let state = call.state(OffsetDateTime::now_utc());
        if state != CallState::Open {
            let why = if state == CallState::Closed { "the call is closed" } else { "the call is not open yet" };
            return Err(ServiceError::precondition("CALL_NOT_OPEN", "CALL", format!("calls/{}", call.id), why));
        }
        let findings = self.findings(&mut tx, &row, &call).await?;
        if !findings.is_empty() {
            return Err(ServiceError::FailedPrecondition {
                reason: "NOT_ELIGIBLE",
                violations: findings
                    .into_iter()
                    .map(|f| PreconditionViolation { kind: f.rule.into(), subject: f.field, description: f.description })
                    .collect(),
            });
        }
        sqlx::query("UPDATE applications SET state = $2, submitted_at = now(), version = version + 1, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(next)
            .execute(&mut *tx)
            .await?;
        let event = ApplicationSubmitted {
            application: name.into(),
            call: format!("calls/{}", call.id),
            program: format!("programs/{}", call.program_code),
            window: window_of(&call.window_code) as i32,
            zone: row.zone.clone(),
            recipients: recipients(&members_of(&mut tx, &[id]).await?),
        };
        emit(&mut tx, "intake.application.submitted", name, "ApplicationSubmitted", &event).await?;
        actor.record(&mut tx, "intake.SubmitApplication", name.into(), serde_json::json!({})).await?;
        let out = self.respond(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// WithdrawApplication: its members are free to apply again to the call.
    pub async fn withdraw(&self, actor: &Actor<'_>, name: &str, reason: &str, etag_sent: &str) -> Result<Application, ServiceError> {
        let id = parse_name("name", "applications", name)?;
        if reason.trim().is_empty() {
            return Err(ServiceError::invalid("reason", "is required"));
        }
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.editable(&mut tx, actor, id).await?;
        let next = rules::next_state(name, &row.state, row.outcome.as_deref(), Step::Withdraw)?;
        check_etag(etag_sent, row.version)?;
        sqlx::query(
            "UPDATE applications SET state = $2, outcome = NULL, withdraw_reason = $3, version = version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(next)
        .bind(reason.trim())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE application_members SET active = false WHERE application_id = $1").bind(id).execute(&mut *tx).await?;
        actor
            .record(&mut tx, "intake.WithdrawApplication", name.into(), serde_json::json!({ "reason": reason.trim(), "from": row.state }))
            .await?;
        let out = self.respond(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// StartScreening and StartReview: desk steps by staff in scope.
    pub async fn advance(&self, actor: &Actor<'_>, name: &str, step: Step) -> Result<Application, ServiceError> {
        let id = parse_name("name", "applications", name)?;
        let p = actor.principal;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &Scope::read(p), id, true).await?;
        if !Scope::staff(p).covers(&row.zone, row.organization_id) {
            return Err(ServiceError::PermissionDenied("officers and program managers in scope move applications along"));
        }
        let next = rules::next_state(name, &row.state, row.outcome.as_deref(), step)?;
        sqlx::query("UPDATE applications SET state = $2, version = version + 1, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(next)
            .execute(&mut *tx)
            .await?;
        let action = if step == Step::StartScreening { "intake.StartScreening" } else { "intake.StartReview" };
        actor.record(&mut tx, action, name.into(), serde_json::json!({ "from": row.state })).await?;
        let out = self.respond(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// DecideApplication: the committee's decision with the reviews' average; quota-checked.
    pub async fn decide(&self, actor: &Actor<'_>, name: &str, outcome: i32, reason: &str) -> Result<Application, ServiceError> {
        let id = parse_name("name", "applications", name)?;
        let mut v = Vec::new();
        let outcome = match Outcome::try_from(outcome) {
            Ok(o @ (Outcome::Accepted | Outcome::Waitlisted | Outcome::Rejected)) => Some(o),
            _ => {
                v.push(FieldViolation::new("outcome", "is required (ACCEPTED, WAITLISTED or REJECTED)"));
                None
            }
        };
        if reason.trim().is_empty() || reason.chars().count() > 2000 {
            v.push(FieldViolation::new("reason", "is required: the decision says why (at most 2000 characters)"));
        }
        let (Some(outcome), true) = (outcome, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let p = actor.principal;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &Scope::read(p), id, true).await?;
        if !Scope::managers(p).covers(&row.zone, row.organization_id) {
            return Err(ServiceError::PermissionDenied("program managers in scope and admins decide"));
        }
        let next = rules::next_state(name, &row.state, row.outcome.as_deref(), Step::Decide(outcome))?;
        // Lock the call: decisions on one call are serialised, so the quota holds under concurrency.
        let call = fetch_call(&mut tx, row.call_id, Lock::Update).await?;
        let (average, scored): (Option<f64>, i64) =
            sqlx::query_as("SELECT avg(total), count(*) FROM reviews WHERE application_id = $1 AND state = 'scored'")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if outcome == Outcome::Accepted {
            if scored == 0 {
                return Err(ServiceError::precondition("NOT_REVIEWED", "REVIEW", name, "no reviewer has scored the application yet"));
            }
            // A statement of its own, after the lock: it sees every decision committed before.
            let accepted: i64 = sqlx::query_scalar("SELECT count(*) FROM applications WHERE call_id = $1 AND outcome = 'accepted'")
                .bind(call.id)
                .fetch_one(&mut *tx)
                .await?;
            if accepted >= i64::from(call.quota) {
                return Err(ServiceError::precondition(
                    "QUOTA_REACHED",
                    "QUOTA",
                    format!("calls/{}", call.id),
                    format!("the call's quota of {} is reached: waitlist instead", call.quota),
                ));
            }
        }
        let code = outcome_code(outcome);
        sqlx::query(
            "UPDATE applications SET state = $2, outcome = $3, decision_reason = $4, decided_by = $5, decided_at = now(), \
             average_score = $6, review_count = $7, version = version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(next)
        .bind(code)
        .bind(reason.trim())
        .bind(&p.subject)
        .bind(average.unwrap_or_default())
        .bind(scored as i32)
        .execute(&mut *tx)
        .await?;
        if outcome == Outcome::Rejected {
            sqlx::query("UPDATE application_members SET active = false WHERE application_id = $1").bind(id).execute(&mut *tx).await?;
        }
        let out = self.respond(&mut tx, id).await?;
        let job = row.job_placement.as_ref().map(|j| j.0.clone()).unwrap_or_default();
        let members = members_of(&mut tx, &[id]).await?;
        let accepted = out.decision.as_ref().is_some_and(|d| d.outcome == Outcome::Accepted as i32);
        let event = ApplicationDecided {
            application: name.into(),
            call: format!("calls/{}", call.id),
            program: format!("programs/{}", call.program_code),
            window: window_of(&call.window_code) as i32,
            zone: row.zone.clone(),
            decision: out.decision.clone(),
            recipients: recipients(&members),
            employer: job.employer.map(|e| format!("organizations/{e}")).unwrap_or_default(),
            monthly_salary: (!job.salary_currency.is_empty())
                .then_some(Money { currency_code: job.salary_currency, amount_minor: job.salary_minor }),
            profiles: if accepted { profiles(&members, OffsetDateTime::now_utc().date()) } else { Vec::new() },
        };
        emit(&mut tx, "intake.application.decided", name, "ApplicationDecided", &event).await?;
        actor
            .record(&mut tx, "intake.DecideApplication", name.into(), serde_json::json!({ "outcome": code, "reason": reason.trim() }))
            .await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// The members' coarse attributes for the donor's reports, ages banded on `today`.
fn profiles(members: &[MemberRow], today: time::Date) -> Vec<MemberProfile> {
    members
        .iter()
        .map(|m| MemberProfile {
            applicant: format!("applicants/{}", m.applicant_id),
            gender: crate::applicants::gender_of(&m.gender) as i32,
            nationality: m.nationality.clone(),
            age_band: m.birth_date.map_or("unknown", |b| rules::age_band(rules::age_on(b, today))).to_string(),
        })
        .collect()
}

fn recipients(members: &[MemberRow]) -> Vec<Recipient> {
    members
        .iter()
        .map(|m| Recipient {
            applicant: format!("applicants/{}", m.applicant_id),
            account: m.account_id.map(|a| format!("accounts/{a}")).unwrap_or_default(),
            languages: m.languages.clone(),
            role: role_wire(&m.role) as i32,
        })
        .collect()
}

async fn insert_member(
    conn: &mut PgConnection,
    application: Uuid,
    call: Uuid,
    applicant: Uuid,
    role: &str,
    position: i32,
) -> Result<(), ServiceError> {
    sqlx::query("INSERT INTO application_members (application_id, applicant_id, call_id, role, position) VALUES ($1, $2, $3, $4, $5)")
        .bind(application)
        .bind(applicant)
        .bind(call)
        .bind(role)
        .bind(position)
        .execute(conn)
        .await
        .map_err(|e| match e.as_database_error().and_then(|d| d.constraint()) {
            Some("application_members_one_active_per_call") => ServiceError::precondition(
                "ACTIVE_APPLICATION_EXISTS",
                "ACTIVE_APPLICATION",
                format!("applicants/{applicant}"),
                "this applicant is already in an active application to this call",
            ),
            Some("application_members_pkey") => ServiceError::invalid("member.applicant", "is already a member"),
            Some("application_members_one_representative") => ServiceError::precondition(
                "REPRESENTATIVE_EXISTS",
                "REPRESENTATIVE",
                format!("applications/{application}"),
                "only one representative",
            ),
            _ => e.into(),
        })?;
    Ok(())
}

async fn bump(conn: &mut PgConnection, id: Uuid) -> Result<(), ServiceError> {
    sqlx::query("UPDATE applications SET version = version + 1, updated_at = now() WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}
