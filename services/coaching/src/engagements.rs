//! Engagements: opened from an award (the `grants.award.created` event) or by hand, with the
//! window's plan of milestones, a suggested coach (zone, language, load) and an hours budget;
//! milestones completed with evidence and verified by the coach, which emits the event grants
//! releases money on — once.

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    outbox,
    pagination::{next_page, page_size},
    scope::account_of,
    wire::{etag, format_date, gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::coaching::{
    CoachAssignment, Engagement, EngagementState, ListEngagementsRequest, Milestone, MilestoneState, MilestoneVerified, Progress,
};

use crate::{Coaching, plans, scope::Scope};

/// A validated engagement to open.
#[derive(Debug, Clone)]
pub struct NewEngagement {
    pub award: Option<String>,
    pub application: String,
    pub window: String,
    pub zone: String,
    pub beneficiaries: Vec<Uuid>,
    pub beneficiary_accounts: Vec<Uuid>,
    pub languages: Vec<String>,
    pub hours_budget: Option<i32>,
}

#[derive(Debug, Clone, FromRow)]
pub struct EngagementRow {
    pub id: Uuid,
    pub award: Option<String>,
    pub application: String,
    pub window_code: String,
    pub zone: String,
    pub beneficiaries: Vec<Uuid>,
    pub beneficiary_accounts: Vec<Uuid>,
    pub languages: Vec<String>,
    pub coach_id: Option<Uuid>,
    pub hours_budget: i32,
    pub state: String,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub hours_used: f64,
}

const SELECT: &str = "SELECT e.id, e.award, e.application, e.window_code, e.zone, e.beneficiaries, e.beneficiary_accounts, e.languages, \
     e.coach_id, e.hours_budget, e.state, e.version, e.created_at, \
     COALESCE((SELECT sum(extract(epoch FROM upper(s.during) - lower(s.during))) / 3600 FROM session_engagements se \
               JOIN sessions s ON s.id = se.session_id WHERE se.engagement_id = e.id AND s.state = 'held'), 0)::float8 AS hours_used \
     FROM engagements e";

#[derive(Debug, Clone, FromRow)]
struct MilestoneRow {
    engagement_id: Uuid,
    code: String,
    title: String,
    due_on: time::Date,
    state: String,
    evidence: Vec<String>,
    note: String,
    completed_by: Option<String>,
    reviewed_by: Option<String>,
    rejection_reason: Option<String>,
    verified_at: Option<OffsetDateTime>,
}

const MILESTONES: &str = "SELECT engagement_id, code, title, due_on, state, evidence, note, completed_by, reviewed_by, rejection_reason, \
     verified_at FROM milestones";

fn milestone(m: &MilestoneRow) -> Milestone {
    Milestone {
        name: format!("engagements/{}/milestones/{}", m.engagement_id, m.code),
        code: m.code.clone(),
        title: m.title.clone(),
        due_date: format_date(m.due_on),
        state: match m.state.as_str() {
            "pending" => MilestoneState::Pending,
            "completed" => MilestoneState::Completed,
            "verified" => MilestoneState::Verified,
            _ => MilestoneState::Rejected,
        } as i32,
        evidence: m.evidence.clone(),
        note: m.note.clone(),
        completed_by: m.completed_by.clone().unwrap_or_default(),
        reviewed_by: m.reviewed_by.clone().unwrap_or_default(),
        rejection_reason: m.rejection_reason.clone().unwrap_or_default(),
        verify_time: m.verified_at.map(timestamp),
    }
}

/// Reads an engagement in `scope`, optionally locked; NOT_FOUND when out of it.
pub async fn fetch(conn: &mut PgConnection, scope: &Scope, id: Uuid, lock: bool) -> Result<EngagementRow, ServiceError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE e.id = "));
    qb.push_bind(id);
    scope.push_engagements(&mut qb);
    if lock {
        qb.push(" FOR UPDATE OF e");
    }
    qb.build_query_as::<EngagementRow>().fetch_optional(conn).await?.ok_or_else(|| ServiceError::NotFound(format!("engagements/{id}")))
}

/// `(engagement, code)` of `engagements/{id}/milestones/{code}`.
fn milestone_name(name: &str) -> Result<(Uuid, String), ServiceError> {
    let bad = || ServiceError::invalid("name", "must be engagements/<id>/milestones/<code>");
    let rest = name.strip_prefix("engagements/").ok_or_else(bad)?;
    let (id, code) = rest.split_once("/milestones/").ok_or_else(bad)?;
    if code.is_empty() || code.contains('/') {
        return Err(bad());
    }
    Ok((Uuid::parse_str(id).map_err(|_| bad())?, code.to_string()))
}

/// Validates a hand-made engagement (paths under `engagement.`).
pub fn validate(e: &Engagement) -> Result<NewEngagement, ServiceError> {
    let mut v = Vec::new();
    let award = if e.award.is_empty() {
        None
    } else {
        gather(&mut v, parse_name("engagement.award", "awards", &e.award)).map(|a| format!("awards/{a}"))
    };
    gather(&mut v, parse_name("engagement.application", "applications", &e.application));
    if plans::plan(&e.window).is_none() {
        v.push(FieldViolation::new("engagement.window", format!("must be one of {}", plans::WINDOWS.join(", "))));
    }
    if e.zone.is_empty() || !e.zone.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        v.push(FieldViolation::new("engagement.zone", "is required (rabat_sale, tanger, oujda, beni_mellal)"));
    }
    if e.beneficiaries.is_empty() {
        v.push(FieldViolation::new("engagement.beneficiaries", "needs at least one applicant"));
    }
    let beneficiaries: Vec<Uuid> = e
        .beneficiaries
        .iter()
        .enumerate()
        .filter_map(|(i, b)| gather(&mut v, parse_name(&format!("engagement.beneficiaries[{i}]"), "applicants", b)))
        .collect();
    let beneficiary_accounts: Vec<Uuid> = e
        .beneficiary_accounts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| gather(&mut v, parse_name(&format!("engagement.beneficiary_accounts[{i}]"), "accounts", a)))
        .collect();
    for (i, l) in e.languages.iter().enumerate() {
        if !(2..=3).contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_lowercase()) {
            v.push(FieldViolation::new(format!("engagement.languages[{i}]"), "must be a language code such as fr, ar or en"));
        }
    }
    if !(0..=500).contains(&e.hours_budget) {
        v.push(FieldViolation::new("engagement.hours_budget", "must be 0 (the window's default) to 500"));
    }
    refuse_if_any(v)?;
    Ok(NewEngagement {
        award,
        application: e.application.clone(),
        window: e.window.clone(),
        zone: e.zone.clone(),
        beneficiaries,
        beneficiary_accounts,
        languages: e.languages.clone(),
        hours_budget: (e.hours_budget > 0).then_some(e.hours_budget),
    })
}

/// The coach suggested for an engagement: of an office in its zone, speaking one of its
/// languages if any does, with the least load per weekly hour.
async fn suggest_coach(conn: &mut PgConnection, zone: &str, languages: &[String]) -> Result<Option<Uuid>, ServiceError> {
    Ok(sqlx::query_scalar(
        "SELECT c.account_id FROM coaches c JOIN offices o ON o.code = c.office_code WHERE o.zone = $1 \
         ORDER BY (c.languages && $2) DESC, \
                  (SELECT count(*) FROM engagements e WHERE e.coach_id = c.account_id AND e.state = 'active')::float8 / c.weekly_hours, \
                  c.account_id LIMIT 1",
    )
    .bind(zone)
    .bind(languages)
    .fetch_optional(conn)
    .await?)
}

/// Opens an engagement in `tx`: plan, suggested coach, history. Returns `None` when the award
/// already has one (a redelivered event).
pub async fn open(conn: &mut PgConnection, by: &str, new: &NewEngagement) -> Result<Option<Uuid>, ServiceError> {
    let (steps, default_hours) = plans::plan(&new.window).ok_or_else(|| ServiceError::invalid("engagement.window", "unknown window"))?;
    let id = Uuid::now_v7();
    let coach = suggest_coach(conn, &new.zone, &new.languages).await?;
    let inserted = sqlx::query(
        "INSERT INTO engagements (id, award, application, window_code, zone, beneficiaries, beneficiary_accounts, languages, coach_id, \
         hours_budget, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (award) WHERE award IS NOT NULL DO NOTHING",
    )
    .bind(id)
    .bind(&new.award)
    .bind(&new.application)
    .bind(&new.window)
    .bind(&new.zone)
    .bind(&new.beneficiaries)
    .bind(&new.beneficiary_accounts)
    .bind(&new.languages)
    .bind(coach)
    .bind(new.hours_budget.unwrap_or(default_hours))
    .bind(by)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    let today = OffsetDateTime::now_utc().date();
    for (i, step) in steps.iter().enumerate() {
        sqlx::query("INSERT INTO milestones (engagement_id, code, title, position, due_on) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(step.code)
            .bind(step.title)
            .bind(i as i32)
            .bind(today + Duration::days(step.due_after_days))
            .execute(&mut *conn)
            .await?;
    }
    if let Some(coach) = coach {
        sqlx::query("INSERT INTO coach_assignments (engagement_id, position, coach_id, reason, assigned_by) VALUES ($1, 0, $2, $3, $4)")
            .bind(id)
            .bind(coach)
            .bind("suggested by zone, language and load")
            .bind(by)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(id))
}

impl Coaching {
    /// The wire form of engagements, with their plans and coach histories.
    pub async fn engagements(&self, conn: &mut PgConnection, rows: &[EngagementRow]) -> Result<Vec<Engagement>, ServiceError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let milestones = sqlx::query_as::<_, MilestoneRow>(sqlx::AssertSqlSafe(format!(
            "{MILESTONES} WHERE engagement_id = ANY($1) ORDER BY engagement_id, position"
        )))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let history: Vec<(Uuid, Uuid, String, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT engagement_id, coach_id, reason, assigned_by, assigned_at FROM coach_assignments WHERE engagement_id = ANY($1) \
             ORDER BY engagement_id, position",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Engagement {
                name: format!("engagements/{}", r.id),
                award: r.award.clone().unwrap_or_default(),
                application: r.application.clone(),
                window: r.window_code.clone(),
                zone: r.zone.clone(),
                beneficiaries: r.beneficiaries.iter().map(|b| format!("applicants/{b}")).collect(),
                languages: r.languages.clone(),
                coach: r.coach_id.map(|c| format!("coaches/{c}")).unwrap_or_default(),
                coach_history: history
                    .iter()
                    .filter(|h| h.0 == r.id)
                    .map(|h| CoachAssignment {
                        coach: format!("coaches/{}", h.1),
                        reason: h.2.clone(),
                        assigned_by: h.3.clone(),
                        assign_time: Some(timestamp(h.4)),
                    })
                    .collect(),
                hours_budget: r.hours_budget,
                hours_used: (r.hours_used * 100.0).round() / 100.0,
                milestones: milestones.iter().filter(|m| m.engagement_id == r.id).map(milestone).collect(),
                state: if r.state == "active" { EngagementState::Active } else { EngagementState::Closed } as i32,
                etag: etag(r.version),
                create_time: Some(timestamp(r.created_at)),
                beneficiary_accounts: r.beneficiary_accounts.iter().map(|a| format!("accounts/{a}")).collect(),
            })
            .collect())
    }

    async fn one(&self, conn: &mut PgConnection, id: Uuid) -> Result<Engagement, ServiceError> {
        let row = fetch(conn, &Scope::everything(), id, false).await?;
        Ok(self.engagements(conn, &[row]).await?.remove(0))
    }

    /// CreateEngagement (by hand), in `tx`.
    pub async fn create_engagement(&self, tx: &mut PgConnection, actor: &Actor<'_>, e: &Engagement) -> Result<Engagement, ServiceError> {
        let new = validate(e)?;
        let zones: Vec<String> = sqlx::query_scalar("SELECT DISTINCT zone FROM offices ORDER BY zone").fetch_all(&mut *tx).await?;
        if !zones.contains(&new.zone) {
            return Err(ServiceError::invalid("engagement.zone", format!("must be a zone with an office: {}", zones.join(", "))));
        }
        if !Scope::staff(actor.principal).covers(&new.zone, None) {
            return Err(ServiceError::PermissionDenied("officers and program managers of the zone and admins open engagements"));
        }
        let Some(id) = open(tx, &actor.principal.subject, &new).await? else {
            return Err(ServiceError::AlreadyExists {
                resource: format!("an engagement for {}", new.award.clone().unwrap_or_default()),
                reason: "ENGAGEMENT_EXISTS",
                metadata: Default::default(),
            });
        };
        actor.record(tx, "coaching.CreateEngagement", format!("engagements/{id}"), serde_json::json!({ "window": new.window })).await?;
        self.one(tx, id).await
    }

    /// GetEngagement.
    pub async fn get_engagement(&self, actor: &Actor<'_>, name: &str) -> Result<Engagement, ServiceError> {
        let id = parse_name("name", "engagements", name)?;
        let mut conn = self.pool.acquire().await?;
        let row = fetch(&mut conn, &Scope::read(actor.principal), id, false).await?;
        Ok(self.engagements(&mut conn, &[row]).await?.remove(0))
    }

    /// ListEngagements, newest first.
    pub async fn list_engagements(&self, actor: &Actor<'_>, r: &ListEngagementsRequest) -> Result<(Vec<Engagement>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let coach = if r.coach.is_empty() { None } else { gather(&mut v, parse_name("coach", "coaches", &r.coach)) };
        let filter = format!("engagements|{}|{}|{}", r.coach, r.zone, r.window);
        let after: Option<Uuid> = gather(&mut v, self.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE TRUE"));
        if let Some(coach) = coach {
            qb.push(" AND e.coach_id = ").push_bind(coach);
        }
        if !r.zone.is_empty() {
            qb.push(" AND e.zone = ").push_bind(r.zone.clone());
        }
        if !r.window.is_empty() {
            qb.push(" AND e.window_code = ").push_bind(r.window.clone());
        }
        Scope::read(actor.principal).push_engagements(&mut qb);
        if let Some(after) = after {
            qb.push(" AND e.id < ").push_bind(after);
        }
        qb.push(" ORDER BY e.id DESC LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows = qb.build_query_as::<EngagementRow>().fetch_all(&mut *conn).await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| r.id);
        Ok((self.engagements(&mut conn, &rows).await?, next))
    }

    /// ReassignCoach, with the reason kept in the history.
    pub async fn reassign(&self, actor: &Actor<'_>, name: &str, coach: &str, reason: &str) -> Result<Engagement, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "engagements", name));
        let coach = gather(&mut v, parse_name("coach", "coaches", coach));
        if reason.trim().is_empty() || reason.chars().any(char::is_control) {
            v.push(FieldViolation::new("reason", "is required"));
        }
        let (Some(id), Some(coach), true) = (id, coach, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &Scope::read(actor.principal), id, true).await?;
        if !Scope::staff(actor.principal).covers(&row.zone, None) {
            return Err(ServiceError::PermissionDenied("officers and program managers of the zone and admins assign coaches"));
        }
        if crate::offices::fetch_coach(&mut tx, coach).await.is_err() {
            return Err(ServiceError::invalid("coach", "no such coach"));
        }
        sqlx::query("UPDATE engagements SET coach_id = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(coach)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO coach_assignments (engagement_id, position, coach_id, reason, assigned_by) \
             SELECT $1, COALESCE(max(position) + 1, 0), $2, $3, $4 FROM coach_assignments WHERE engagement_id = $1",
        )
        .bind(id)
        .bind(coach)
        .bind(reason.trim())
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await?;
        actor
            .record(
                &mut tx,
                "coaching.ReassignCoach",
                name.into(),
                serde_json::json!({ "coach": format!("coaches/{coach}"), "reason": reason.trim() }),
            )
            .await?;
        let out = self.one(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn milestone_for_change(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
    ) -> Result<(EngagementRow, MilestoneRow), ServiceError> {
        let (id, code) = milestone_name(name)?;
        let engagement = fetch(tx, &Scope::read(actor.principal), id, true).await?;
        let row = sqlx::query_as::<_, MilestoneRow>(sqlx::AssertSqlSafe(format!(
            "{MILESTONES} WHERE engagement_id = $1 AND code = $2 FOR UPDATE"
        )))
        .bind(id)
        .bind(&code)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ServiceError::NotFound(name.to_string()))?;
        Ok((engagement, row))
    }

    fn is_coach_of(actor: &Actor<'_>, e: &EngagementRow) -> bool {
        e.coach_id.is_some() && account_of(actor.principal) == e.coach_id && actor.principal.has_role("coach")
    }

    /// CompleteMilestone: the beneficiary or the coach, with evidence.
    pub async fn complete_milestone(
        &self,
        actor: &Actor<'_>,
        name: &str,
        evidence: &[String],
        note: &str,
    ) -> Result<Milestone, ServiceError> {
        let mut v = Vec::new();
        gather(&mut v, milestone_name(name));
        if evidence.iter().all(|e| e.trim().is_empty()) {
            v.push(FieldViolation::new("evidence", "needs at least one document reference"));
        }
        for (i, e) in evidence.iter().enumerate() {
            if e.chars().count() > 500 || e.chars().any(char::is_control) {
                v.push(FieldViolation::new(format!("evidence[{i}]"), "must be a reference of at most 500 characters"));
            }
        }
        if note.chars().count() > 2000 || note.contains('\0') {
            v.push(FieldViolation::new("note", "must be at most 2000 characters"));
        }
        refuse_if_any(v)?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (engagement, row) = self.milestone_for_change(&mut tx, actor, name).await?;
        let me = account_of(actor.principal);
        let beneficiary = me.is_some_and(|m| engagement.beneficiary_accounts.contains(&m)) && actor.principal.has_role("beneficiary");
        if !(beneficiary || Self::is_coach_of(actor, &engagement)) {
            return Err(ServiceError::PermissionDenied("the beneficiaries and the coach mark milestones complete"));
        }
        if !matches!(row.state.as_str(), "pending" | "rejected") {
            return Err(ServiceError::precondition("INVALID_STATE", "STATE", name, format!("the milestone is {}", row.state)));
        }
        let evidence: Vec<String> = evidence.iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
        sqlx::query(
            "UPDATE milestones SET state = 'completed', evidence = $3, note = $4, completed_by = $5, reviewed_by = NULL, \
             rejection_reason = NULL WHERE engagement_id = $1 AND code = $2",
        )
        .bind(row.engagement_id)
        .bind(&row.code)
        .bind(&evidence)
        .bind(note.trim())
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await?;
        actor.record(&mut tx, "coaching.CompleteMilestone", name.into(), serde_json::json!({ "evidence": evidence.len() })).await?;
        let out = self.reload_milestone(&mut tx, row.engagement_id, &row.code).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn reload_milestone(&self, conn: &mut PgConnection, id: Uuid, code: &str) -> Result<Milestone, ServiceError> {
        let row = sqlx::query_as::<_, MilestoneRow>(sqlx::AssertSqlSafe(format!("{MILESTONES} WHERE engagement_id = $1 AND code = $2")))
            .bind(id)
            .bind(code)
            .fetch_one(conn)
            .await?;
        Ok(milestone(&row))
    }

    /// VerifyMilestone: the engagement's coach; the event is written once, with the state change.
    pub async fn verify_milestone(&self, actor: &Actor<'_>, name: &str) -> Result<Milestone, ServiceError> {
        milestone_name(name)?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (engagement, row) = self.milestone_for_change(&mut tx, actor, name).await?;
        if !Self::is_coach_of(actor, &engagement) {
            return Err(ServiceError::PermissionDenied("only the engagement's coach verifies milestones"));
        }
        match row.state.as_str() {
            // A retried verification answers what was done, and emits nothing more.
            "verified" => return Ok(milestone(&row)),
            "completed" => {}
            other => {
                return Err(ServiceError::precondition(
                    "INVALID_STATE",
                    "STATE",
                    name,
                    format!("the milestone is {other}; it must be completed first"),
                ));
            }
        }
        sqlx::query(
            "UPDATE milestones SET state = 'verified', reviewed_by = $3, verified_at = now() WHERE engagement_id = $1 AND code = $2",
        )
        .bind(row.engagement_id)
        .bind(&row.code)
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await?;
        let out = self.reload_milestone(&mut tx, row.engagement_id, &row.code).await?;
        let event = MilestoneVerified {
            milestone: name.into(),
            code: row.code.clone(),
            award: engagement.award.clone().unwrap_or_default(),
            application: engagement.application.clone(),
            beneficiaries: engagement.beneficiaries.iter().map(|b| format!("applicants/{b}")).collect(),
            verify_time: out.verify_time,
        };
        outbox::enqueue_message(
            &mut tx,
            "coaching",
            "coaching.milestone.verified",
            name,
            "work4life.coaching.v1.MilestoneVerified",
            &event,
        )
        .await?;
        actor.record(&mut tx, "coaching.VerifyMilestone", name.into(), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// RejectMilestone: the engagement's coach, with a reason.
    pub async fn reject_milestone(&self, actor: &Actor<'_>, name: &str, reason: &str) -> Result<Milestone, ServiceError> {
        let mut v = Vec::new();
        gather(&mut v, milestone_name(name));
        if reason.trim().is_empty() || reason.chars().any(char::is_control) {
            v.push(FieldViolation::new("reason", "is required: tell the beneficiary what is missing"));
        }
        refuse_if_any(v)?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (engagement, row) = self.milestone_for_change(&mut tx, actor, name).await?;
        if !Self::is_coach_of(actor, &engagement) {
            return Err(ServiceError::PermissionDenied("only the engagement's coach rejects milestones"));
        }
        if row.state != "completed" {
            return Err(ServiceError::precondition(
                "INVALID_STATE",
                "STATE",
                name,
                format!("the milestone is {}; only a completed one is rejected", row.state),
            ));
        }
        sqlx::query(
            "UPDATE milestones SET state = 'rejected', reviewed_by = $3, rejection_reason = $4 WHERE engagement_id = $1 AND code = $2",
        )
        .bind(row.engagement_id)
        .bind(&row.code)
        .bind(&actor.principal.subject)
        .bind(reason.trim())
        .execute(&mut *tx)
        .await?;
        actor.record(&mut tx, "coaching.RejectMilestone", name.into(), serde_json::json!({ "reason": reason.trim() })).await?;
        let out = self.reload_milestone(&mut tx, row.engagement_id, &row.code).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// GetProgress of one engagement or a cohort, as of a day.
    pub async fn progress(
        &self,
        actor: &Actor<'_>,
        engagement: &str,
        window: &str,
        zone: &str,
        office: &str,
        as_of: &Option<prost_types::Timestamp>,
    ) -> Result<Progress, ServiceError> {
        let mut v = Vec::new();
        let as_of = match as_of {
            Some(t) => gather(&mut v, work4life_platform::wire::from_timestamp("as_of", t)),
            None => Some(OffsetDateTime::now_utc()),
        };
        let one = if engagement.is_empty() { None } else { gather(&mut v, parse_name("engagement", "engagements", engagement)) };
        let office = if office.is_empty() { None } else { gather(&mut v, crate::offices::office_code("office", office)) };
        let (Some(as_of), true) = (as_of, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let scope = Scope::read(actor.principal);
        let mut conn = self.pool.acquire().await?;
        if let Some(id) = one {
            fetch(&mut conn, &scope, id, false).await?;
        }
        // The engagements counted, as a CTE every figure reads.
        let mut qb = QueryBuilder::<Postgres>::new("WITH cohort AS (SELECT e.id, e.state, e.created_at FROM engagements e WHERE TRUE");
        if let Some(id) = one {
            qb.push(" AND e.id = ").push_bind(id);
        }
        if !window.is_empty() {
            qb.push(" AND e.window_code = ").push_bind(window.to_string());
        }
        if !zone.is_empty() {
            qb.push(" AND e.zone = ").push_bind(zone.to_string());
        }
        if let Some(office) = office {
            qb.push(" AND e.coach_id IN (SELECT account_id FROM coaches WHERE office_code = ").push_bind(office).push(")");
        }
        scope.push_engagements(&mut qb);
        qb.push(
            "), held AS (SELECT DISTINCT s.id, s.during FROM sessions s JOIN session_engagements se ON se.session_id = s.id \
                 JOIN cohort c ON c.id = se.engagement_id WHERE s.state = 'held' AND lower(s.during) <= ",
        );
        qb.push_bind(as_of);
        // Attendance in one pass over the participants of the held sessions.
        qb.push(
            "), attendance AS (SELECT count(*) FILTER (WHERE p.present) AS present, count(*) AS expected \
                 FROM session_participants p JOIN held h ON h.id = p.session_id) \
             SELECT (SELECT count(*) FROM cohort), (SELECT count(*) FROM held), \
                 COALESCE((SELECT sum(extract(epoch FROM upper(during) - lower(during))) / 3600 FROM held), 0)::float8, \
                 (SELECT present FROM attendance), (SELECT expected FROM attendance), \
                 (SELECT count(*) FROM milestones m JOIN cohort c ON c.id = m.engagement_id WHERE m.state = 'verified'), \
                 (SELECT count(*) FROM milestones m JOIN cohort c ON c.id = m.engagement_id), \
                 ARRAY(SELECT c.id FROM cohort c WHERE c.state = 'active' AND ( \
                     (c.created_at < ",
        );
        qb.push_bind(as_of - Duration::days(30));
        qb.push(
            " AND NOT EXISTS (SELECT 1 FROM session_engagements se JOIN sessions s ON s.id = se.session_id \
                 WHERE se.engagement_id = c.id AND s.state = 'held' AND lower(s.during) > ",
        );
        qb.push_bind(as_of - Duration::days(30));
        qb.push(" AND lower(s.during) <= ");
        qb.push_bind(as_of);
        qb.push(")) OR EXISTS (SELECT 1 FROM milestones m WHERE m.engagement_id = c.id AND m.state <> 'verified' AND m.due_on < ");
        qb.push_bind(as_of.date());
        qb.push(")) ORDER BY c.id)");
        let (engagements, held, hours, present, expected, verified, total, at_risk): (i64, i64, f64, i64, i64, i64, i64, Vec<Uuid>) =
            qb.build_query_as().fetch_one(&mut *conn).await?;
        Ok(Progress {
            engagements: engagements as i32,
            sessions_held: held as i32,
            hours: (hours * 100.0).round() / 100.0,
            attendance_rate: if expected == 0 { 0.0 } else { ((present as f64 / expected as f64) * 1000.0).round() / 1000.0 },
            milestones_verified: verified as i32,
            milestones_total: total as i32,
            at_risk: at_risk.into_iter().map(|id| format!("engagements/{id}")).collect(),
        })
    }
}
