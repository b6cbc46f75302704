//! Programs and calls for applications: a call is a window, zones, open and close times, a
//! quota, eligibility rules and a scoring rubric, all stored as data on the call.

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    pagination::{next_page, page_size},
    wire::{format_date, from_timestamp, gather, parse_date, parse_name, timestamp},
};
use work4life_proto::{
    intake::{Call, CallState, CloseCallRequest, Criterion as WireCriterion, EligibilityRules, ListCallsRequest, Program},
    types::Money,
};

use crate::{
    Intake, conflict,
    rules::{Criterion, Eligibility, window_code, window_of},
    scope::Scope,
};

/// A program row.
#[derive(Debug, Clone, FromRow)]
pub struct ProgramRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub donor: String,
    pub currency_code: String,
    pub envelope_minor: i64,
    pub starts_on: time::Date,
    pub ends_on: time::Date,
    pub zones: Vec<String>,
    pub windows: Vec<String>,
    pub partner_org_names: Vec<String>,
    pub created_at: OffsetDateTime,
}

const PROGRAM_COLUMNS: &str =
    "id, code, name, donor, currency_code, envelope_minor, starts_on, ends_on, zones, windows, partner_org_names, created_at";

fn program(row: ProgramRow) -> Program {
    Program {
        name: format!("programs/{}", row.code),
        display_name: row.name,
        donor: row.donor,
        envelope: Some(Money { currency_code: row.currency_code, amount_minor: row.envelope_minor }),
        start_date: format_date(row.starts_on),
        end_date: format_date(row.ends_on),
        zones: row.zones,
        windows: row.windows.iter().map(|w| window_of(w) as i32).collect(),
        partner_organizations: row.partner_org_names,
        create_time: Some(timestamp(row.created_at)),
    }
}

/// The code in `programs/{code}`, or INVALID_ARGUMENT on `field`.
pub fn program_code(field: &str, name: &str) -> Result<String, ServiceError> {
    name.strip_prefix("programs/")
        .filter(|c| is_code(c))
        .map(str::to_string)
        .ok_or_else(|| ServiceError::invalid(field, "must be programs/<code>"))
}

fn is_code(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 40
        && c.starts_with(|ch: char| ch.is_ascii_lowercase())
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A call row, with its program's code and how many applications it accepted.
#[derive(Debug, Clone, FromRow)]
pub struct CallRow {
    pub id: Uuid,
    pub program_code: String,
    pub display_name: String,
    pub window_code: String,
    pub zones: Vec<String>,
    pub opens_at: OffsetDateTime,
    pub closes_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    pub quota: i32,
    pub eligibility: Json<Eligibility>,
    pub rubric: Json<Vec<Criterion>>,
    pub created_at: OffsetDateTime,
    pub accepted_count: i64,
}

impl CallRow {
    /// Whether it takes submissions at `now`.
    pub fn state(&self, now: OffsetDateTime) -> CallState {
        if self.closed_at.is_some() || now >= self.closes_at {
            CallState::Closed
        } else if now < self.opens_at {
            CallState::Scheduled
        } else {
            CallState::Open
        }
    }
}

const CALL_SELECT: &str = "SELECT c.id, pr.code AS program_code, c.display_name, c.window_code, c.zones, c.opens_at, c.closes_at, \
     c.closed_at, c.quota, c.eligibility, c.rubric, c.created_at, \
     (SELECT count(*) FROM applications x WHERE x.call_id = c.id AND x.outcome = 'accepted') AS accepted_count \
     FROM calls c JOIN programs pr ON pr.id = c.program_id";

fn call(row: CallRow) -> Call {
    let state = row.state(OffsetDateTime::now_utc());
    let e = &row.eligibility.0;
    Call {
        name: format!("calls/{}", row.id),
        program: format!("programs/{}", row.program_code),
        display_name: row.display_name,
        window: window_of(&row.window_code) as i32,
        zones: row.zones,
        open_time: Some(timestamp(row.opens_at)),
        close_time: Some(timestamp(row.closed_at.map_or(row.closes_at, |c| c.min(row.closes_at)))),
        quota: row.quota,
        eligibility: Some(EligibilityRules {
            min_age: e.min_age,
            max_age: e.max_age,
            excluded_nationalities: e.excluded_nationalities.clone(),
            min_team_size: e.min_team_size,
            max_team_size: e.max_team_size,
            required_documents: e.required_documents.clone(),
            identity_document_required: e.identity_document_required,
        }),
        rubric: row
            .rubric
            .0
            .iter()
            .map(|c| WireCriterion { id: c.id.clone(), title: c.title.clone(), weight: c.weight, max_score: c.max_score })
            .collect(),
        state: state as i32,
        accepted_count: row.accepted_count as i32,
        create_time: Some(timestamp(row.created_at)),
    }
}

/// How a read locks a call row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// No lock.
    None,
    /// Shared: submissions, which must not cross a CloseCall.
    Share,
    /// Exclusive: closing it, deciding on it (the quota).
    Update,
}

/// Reads a call (any authenticated caller may), optionally locking it.
pub async fn fetch_call(conn: &mut PgConnection, id: Uuid, lock: Lock) -> Result<CallRow, ServiceError> {
    let lock = match lock {
        Lock::None => "",
        Lock::Share => " FOR SHARE OF c",
        Lock::Update => " FOR UPDATE OF c",
    };
    let sql = format!("{CALL_SELECT} WHERE c.id = $1{lock}");
    sqlx::query_as::<_, CallRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("calls/{id}")))
}

fn validate_program(p: &Program, id: &str, v: &mut Vec<FieldViolation>, zones: &[String]) -> Option<(time::Date, time::Date)> {
    if !is_code(id) {
        v.push(FieldViolation::new("program_id", "must be lower snake case, 1 to 40 characters, starting with a letter"));
    }
    for (field, value) in [("program.display_name", &p.display_name), ("program.donor", &p.donor)] {
        if value.trim().is_empty() {
            v.push(FieldViolation::new(field, "is required"));
        }
    }
    match &p.envelope {
        Some(m) if m.currency_code.len() == 3 && m.currency_code.bytes().all(|b| b.is_ascii_uppercase()) && m.amount_minor > 0 => {}
        _ => v.push(FieldViolation::new("program.envelope", "needs an ISO 4217 currency code and a positive amount in minor units")),
    }
    let start = parse_date("program.start_date", &p.start_date).map_err(|e| v.push(e)).ok();
    let end = parse_date("program.end_date", &p.end_date).map_err(|e| v.push(e)).ok();
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.push(FieldViolation::new("program.end_date", "must be after start_date"));
    }
    if p.zones.is_empty() {
        v.push(FieldViolation::new("program.zones", "needs at least one zone"));
    }
    for (i, z) in p.zones.iter().enumerate() {
        if !zones.contains(z) {
            v.push(FieldViolation::new(format!("program.zones[{i}]"), format!("must be one of {}", zones.join(", "))));
        }
    }
    if p.windows.is_empty() {
        v.push(FieldViolation::new("program.windows", "needs at least one window"));
    }
    for (i, w) in p.windows.iter().enumerate() {
        if window_code(*w).is_none() {
            v.push(FieldViolation::new(format!("program.windows[{i}]"), "is not a window"));
        }
    }
    start.zip(end)
}

impl Intake {
    /// CreateProgram (admin), in `tx`.
    pub async fn create_program(&self, tx: &mut PgConnection, actor: &Actor<'_>, p: &Program, id: &str) -> Result<Program, ServiceError> {
        if !actor.principal.has_role("admin") {
            return Err(ServiceError::PermissionDenied("only admins create programs"));
        }
        let zones = crate::applicants::zones(tx).await?;
        let mut v = Vec::new();
        let period = validate_program(p, id, &mut v, &zones);
        let (Some((start, end)), true) = (period, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let money = p.envelope.clone().unwrap_or_default();
        let windows: Vec<&str> = p.windows.iter().filter_map(|w| window_code(*w)).collect();
        let row = sqlx::query_as::<_, ProgramRow>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO programs (id, code, name, donor, currency_code, envelope_minor, starts_on, ends_on, zones, windows, partner_org_names) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {PROGRAM_COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(p.display_name.trim())
        .bind(p.donor.trim())
        .bind(&money.currency_code)
        .bind(money.amount_minor)
        .bind(start)
        .bind(end)
        .bind(&p.zones)
        .bind(&windows)
        .bind(&p.partner_organizations)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, &[("programs_code_key", "DUPLICATE_PROGRAM", "program_id")]))?;
        actor.record(tx, "intake.CreateProgram", format!("programs/{id}"), serde_json::json!({})).await?;
        Ok(program(row))
    }

    /// GetProgram.
    pub async fn get_program(&self, name: &str) -> Result<Program, ServiceError> {
        let code = program_code("name", name)?;
        let row = sqlx::query_as::<_, ProgramRow>(sqlx::AssertSqlSafe(format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE code = $1")))
            .bind(&code)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ServiceError::NotFound(name.to_string()))?;
        Ok(program(row))
    }

    /// ListPrograms, by code.
    pub async fn list_programs(&self, requested: i32, token: &str) -> Result<(Vec<Program>, String), ServiceError> {
        let size = page_size(requested)?;
        let after: Option<String> = self.page_tokens.decode(token, "programs")?;
        let rows = sqlx::query_as::<_, ProgramRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {PROGRAM_COLUMNS} FROM programs WHERE code > $1 ORDER BY code LIMIT $2"
        )))
        .bind(after.unwrap_or_default())
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, "programs", |r| r.code.clone());
        Ok((rows.into_iter().map(program).collect(), next))
    }

    /// CreateCall (admins; program managers covering every zone of the call), in `tx`.
    pub async fn create_call(&self, tx: &mut PgConnection, actor: &Actor<'_>, c: &Call) -> Result<Call, ServiceError> {
        let managers = Scope::managers(actor.principal).require("only admins and program managers create calls")?;
        let mut v = Vec::new();
        let program = match program_code("call.program", &c.program) {
            Ok(code) => {
                let found =
                    sqlx::query_as::<_, ProgramRow>(sqlx::AssertSqlSafe(format!("SELECT {PROGRAM_COLUMNS} FROM programs WHERE code = $1")))
                        .bind(&code)
                        .fetch_optional(&mut *tx)
                        .await?;
                if found.is_none() {
                    v.push(FieldViolation::new("call.program", format!("programs/{code} does not exist")));
                }
                found
            }
            Err(ServiceError::InvalidArgument(mut e)) => {
                v.append(&mut e);
                None
            }
            Err(e) => return Err(e),
        };
        if c.display_name.trim().is_empty() || c.display_name.chars().count() > 200 {
            v.push(FieldViolation::new("call.display_name", "is required, at most 200 characters"));
        }
        let window = window_code(c.window);
        match (window, &program) {
            (None, _) => v.push(FieldViolation::new("call.window", "is required")),
            (Some(w), Some(p)) if !p.windows.iter().any(|pw| pw == w) => {
                v.push(FieldViolation::new("call.window", format!("is not a window of programs/{}", p.code)));
            }
            _ => {}
        }
        if c.zones.is_empty() {
            v.push(FieldViolation::new("call.zones", "needs at least one zone"));
        }
        for (i, z) in c.zones.iter().enumerate() {
            if program.as_ref().is_some_and(|p| !p.zones.contains(z)) {
                v.push(FieldViolation::new(format!("call.zones[{i}]"), "is not a zone of the program"));
            }
        }
        let mut time_of = |field: &str, t: &Option<prost_types::Timestamp>| match t {
            None => {
                v.push(FieldViolation::new(field, "is required"));
                None
            }
            Some(t) => from_timestamp(field, t)
                .map_err(|e| {
                    if let ServiceError::InvalidArgument(mut e) = e {
                        v.append(&mut e)
                    }
                })
                .ok(),
        };
        let opens = time_of("call.open_time", &c.open_time);
        let closes = time_of("call.close_time", &c.close_time);
        if let (Some(o), Some(cl)) = (opens, closes)
            && cl <= o
        {
            v.push(FieldViolation::new("call.close_time", "must be after open_time"));
        }
        if c.quota <= 0 {
            v.push(FieldViolation::new("call.quota", "must be positive"));
        }
        let e = c.eligibility.clone().unwrap_or_default();
        if e.min_age < 0 || e.max_age < 0 || (e.max_age > 0 && e.max_age < e.min_age) {
            v.push(FieldViolation::new("call.eligibility.max_age", "ages must be positive, max_age at least min_age"));
        }
        if e.min_team_size < 0 || e.max_team_size < 0 || (e.max_team_size > 0 && e.max_team_size < e.min_team_size) {
            v.push(FieldViolation::new("call.eligibility.max_team_size", "team sizes must be positive, max at least min"));
        }
        for (i, n) in e.excluded_nationalities.iter().enumerate() {
            if n.len() != 2 || !n.bytes().all(|b| b.is_ascii_uppercase()) {
                v.push(FieldViolation::new(format!("call.eligibility.excluded_nationalities[{i}]"), "must be an ISO 3166-1 alpha-2 code"));
            }
        }
        if c.rubric.is_empty() {
            v.push(FieldViolation::new("call.rubric", "needs at least one criterion"));
        }
        for (i, k) in c.rubric.iter().enumerate() {
            if !is_code(&k.id) || c.rubric[..i].iter().any(|o| o.id == k.id) {
                v.push(FieldViolation::new(format!("call.rubric[{i}].id"), "must be a unique lower snake case id"));
            }
            if k.title.trim().is_empty() {
                v.push(FieldViolation::new(format!("call.rubric[{i}].title"), "is required"));
            }
            if !(1..=100).contains(&k.weight) {
                v.push(FieldViolation::new(format!("call.rubric[{i}].weight"), "must be 1 to 100"));
            }
            if !(1..=100).contains(&k.max_score) {
                v.push(FieldViolation::new(format!("call.rubric[{i}].max_score"), "must be 1 to 100"));
            }
        }
        let (Some(program), Some(window), Some(opens), Some(closes), true) = (program, window, opens, closes, v.is_empty()) else {
            return Err(ServiceError::InvalidArgument(v));
        };
        if !c.zones.iter().all(|z| managers.covers(z, None)) {
            return Err(ServiceError::PermissionDenied("your bindings do not cover every zone of the call"));
        }
        let eligibility = Eligibility {
            min_age: e.min_age,
            max_age: e.max_age,
            excluded_nationalities: e.excluded_nationalities,
            min_team_size: e.min_team_size,
            max_team_size: e.max_team_size,
            required_documents: e.required_documents.iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect(),
            identity_document_required: e.identity_document_required,
        };
        let rubric: Vec<Criterion> = c
            .rubric
            .iter()
            .map(|k| Criterion { id: k.id.clone(), title: k.title.trim().into(), weight: k.weight, max_score: k.max_score })
            .collect();
        let id = Uuid::now_v7();
        let mut zones = c.zones.clone();
        zones.dedup();
        sqlx::query(
            "INSERT INTO calls (id, program_id, display_name, window_code, zones, opens_at, closes_at, quota, eligibility, rubric, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(program.id)
        .bind(c.display_name.trim())
        .bind(window)
        .bind(&zones)
        .bind(opens)
        .bind(closes)
        .bind(c.quota)
        .bind(Json(&eligibility))
        .bind(Json(&rubric))
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await?;
        actor.record(tx, "intake.CreateCall", format!("calls/{id}"), serde_json::json!({ "window": window, "zones": zones })).await?;
        Ok(call(fetch_call(tx, id, Lock::None).await?))
    }

    /// GetCall.
    pub async fn get_call(&self, name: &str) -> Result<Call, ServiceError> {
        let id = parse_name("name", "calls", name)?;
        Ok(call(fetch_call(&mut *self.pool.acquire().await?, id, Lock::None).await?))
    }

    /// ListCalls, newest first.
    pub async fn list_calls(&self, r: &ListCallsRequest) -> Result<(Vec<Call>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let program = if r.program.is_empty() {
            None
        } else {
            let code = program_code("program", &r.program).ok();
            if code.is_none() {
                v.push(FieldViolation::new("program", "must be programs/<code>"));
            }
            code
        };
        let window = match r.window {
            0 => None,
            w => {
                let code = window_code(w);
                if code.is_none() {
                    v.push(FieldViolation::new("window", "is not a window"));
                }
                code
            }
        };
        let state = CallState::try_from(r.state).unwrap_or_else(|_| {
            v.push(FieldViolation::new("state", "is not a call state"));
            CallState::Unspecified
        });
        if !v.is_empty() {
            return Err(ServiceError::InvalidArgument(v));
        }
        let filter = format!("calls|{}|{}|{}|{}", r.program, r.window, r.zone, r.state);
        let after: Option<Uuid> = self.page_tokens.decode(&r.page_token, &filter)?;
        let mut qb = QueryBuilder::<Postgres>::new(CALL_SELECT);
        qb.push(" WHERE TRUE");
        if let Some(code) = program {
            qb.push(" AND pr.code = ").push_bind(code);
        }
        if let Some(w) = window {
            qb.push(" AND c.window_code = ").push_bind(w);
        }
        if !r.zone.is_empty() {
            qb.push(" AND ").push_bind(r.zone.clone()).push(" = ANY(c.zones)");
        }
        match state {
            CallState::Open => qb.push(" AND c.closed_at IS NULL AND now() >= c.opens_at AND now() < c.closes_at"),
            CallState::Scheduled => qb.push(" AND c.closed_at IS NULL AND now() < c.opens_at"),
            CallState::Closed => qb.push(" AND (c.closed_at IS NOT NULL OR now() >= c.closes_at)"),
            CallState::Unspecified => &mut qb,
        };
        if let Some(after) = after {
            qb.push(" AND c.id < ").push_bind(after);
        }
        qb.push(" ORDER BY c.id DESC LIMIT ").push_bind(i64::from(size) + 1);
        let rows = qb.build_query_as::<CallRow>().fetch_all(&self.pool).await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| r.id);
        Ok((rows.into_iter().map(call).collect(), next))
    }

    /// CloseCall: no more submissions from now.
    pub async fn close_call(&self, actor: &Actor<'_>, r: &CloseCallRequest) -> Result<Call, ServiceError> {
        let id = parse_name("name", "calls", &r.name)?;
        let managers = Scope::managers(actor.principal).require("only admins and program managers close calls")?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch_call(&mut tx, id, Lock::Update).await?;
        if !row.zones.iter().all(|z| managers.covers(z, None)) {
            return Err(ServiceError::PermissionDenied("your bindings do not cover every zone of the call"));
        }
        if row.state(OffsetDateTime::now_utc()) != CallState::Closed {
            // clock_timestamp(), not now(): the close time is when the lock was won, after every
            // submission that held the call was committed.
            sqlx::query("UPDATE calls SET closed_at = clock_timestamp() WHERE id = $1").bind(id).execute(&mut *tx).await?;
            actor.record(&mut tx, "intake.CloseCall", r.name.clone(), serde_json::json!({})).await?;
        }
        let closed = call(fetch_call(&mut tx, id, Lock::None).await?);
        tx.commit().await?;
        Ok(closed)
    }
}
