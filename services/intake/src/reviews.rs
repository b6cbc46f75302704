//! Review and selection: reviewers are assigned, declare conflicts of interest (then cannot
//! score and are left out of averages), score every rubric criterion once, and see the others'
//! scores only after giving their own.

use sqlx::{FromRow, PgConnection, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    wire::{gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::intake::{CriterionScore, Review, ReviewState};

use crate::{
    Intake,
    applications::fetch,
    calls::{Lock, fetch_call},
    rules::{self, Step},
    scope::{Scope, account_of},
};

/// A score as stored.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StoredScore {
    pub criterion: String,
    pub score: i32,
    pub comment: String,
}

#[derive(Debug, Clone, FromRow)]
struct ReviewRow {
    application_id: Uuid,
    reviewer_id: Uuid,
    state: String,
    scores: Option<Json<Vec<StoredScore>>>,
    comment: String,
    total: Option<f64>,
    conflict_reason: Option<String>,
    assigned_at: OffsetDateTime,
    scored_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "application_id, reviewer_id, state, scores, comment, total, conflict_reason, assigned_at, scored_at";

fn review(r: &ReviewRow) -> Review {
    Review {
        name: format!("applications/{}/reviews/{}", r.application_id, r.reviewer_id),
        reviewer: format!("accounts/{}", r.reviewer_id),
        state: match r.state.as_str() {
            "assigned" => ReviewState::Assigned,
            "conflict_declared" => ReviewState::ConflictDeclared,
            _ => ReviewState::Scored,
        } as i32,
        scores: r
            .scores
            .as_ref()
            .map(|s| {
                s.0.iter().map(|s| CriterionScore { criterion: s.criterion.clone(), score: s.score, comment: s.comment.clone() }).collect()
            })
            .unwrap_or_default(),
        comment: r.comment.clone(),
        total: r.total.unwrap_or_default(),
        conflict_reason: r.conflict_reason.clone().unwrap_or_default(),
        assign_time: Some(timestamp(r.assigned_at)),
        score_time: r.scored_at.map(timestamp),
    }
}

/// `applications/{a}/reviews/{account}` as its two ids, or INVALID_ARGUMENT on `name`.
fn parse_review(name: &str) -> Result<(Uuid, Uuid), ServiceError> {
    let bad = || ServiceError::invalid("name", "must be applications/<id>/reviews/<account id>");
    let rest = name.strip_prefix("applications/").ok_or_else(bad)?;
    let (app, reviewer) = rest.split_once("/reviews/").ok_or_else(bad)?;
    Ok((Uuid::parse_str(app).map_err(|_| bad())?, Uuid::parse_str(reviewer).map_err(|_| bad())?))
}

async fn fetch_review(conn: &mut PgConnection, app: Uuid, reviewer: Uuid) -> Result<ReviewRow, ServiceError> {
    sqlx::query_as::<_, ReviewRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE application_id = $1 AND reviewer_id = $2 FOR UPDATE"
    )))
    .bind(app)
    .bind(reviewer)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ServiceError::NotFound(format!("applications/{app}/reviews/{reviewer}")))
}

impl Intake {
    /// AssignReviewer.
    pub async fn assign_reviewer(&self, actor: &Actor<'_>, application: &str, reviewer: &str) -> Result<Review, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("application", "applications", application));
        let reviewer = gather(&mut v, parse_name("reviewer", "accounts", reviewer));
        let (Some(id), Some(reviewer)) = (id, reviewer) else { return Err(ServiceError::InvalidArgument(v)) };
        let p = actor.principal;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = fetch(&mut tx, &Scope::read(p), id, true).await?;
        if !Scope::managers(p).covers(&row.zone, row.organization_id) {
            return Err(ServiceError::PermissionDenied("program managers in scope and admins assign reviewers"));
        }
        rules::next_state(application, &row.state, row.outcome.as_deref(), Step::AssignReviewer)?;
        let inserted =
            sqlx::query("INSERT INTO reviews (application_id, reviewer_id, assigned_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(reviewer)
                .bind(&p.subject)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if inserted == 0 {
            return Err(ServiceError::AlreadyExists {
                resource: format!("applications/{id}/reviews/{reviewer}"),
                reason: "REVIEWER_ASSIGNED",
                metadata: Default::default(),
            });
        }
        let name = format!("applications/{id}/reviews/{reviewer}");
        actor.record(&mut tx, "intake.AssignReviewer", name, serde_json::json!({})).await?;
        let out = review(&fetch_review(&mut tx, id, reviewer).await?);
        tx.commit().await?;
        Ok(out)
    }

    /// Loads the caller's own review of an application they can see.
    async fn own_review(
        &self,
        conn: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
    ) -> Result<(crate::applications::ApplicationRow, ReviewRow), ServiceError> {
        let (app, reviewer) = parse_review(name)?;
        let row = fetch(conn, &Scope::read(actor.principal), app, true).await?;
        let found = fetch_review(conn, app, reviewer).await?;
        if account_of(actor.principal) != Some(reviewer) {
            return Err(ServiceError::PermissionDenied("only the reviewer gives their review"));
        }
        Ok((row, found))
    }

    /// DeclareConflict.
    pub async fn declare_conflict(&self, actor: &Actor<'_>, name: &str, reason: &str) -> Result<Review, ServiceError> {
        let mut v = Vec::new();
        gather(&mut v, parse_review(name));
        if reason.trim().is_empty() {
            v.push(FieldViolation::new("reason", "is required: say what the conflict is"));
        }
        refuse_if_any(v)?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (row, found) = self.own_review(&mut tx, actor, name).await?;
        rules::next_state(name, &row.state, row.outcome.as_deref(), Step::AssignReviewer)?;
        if found.state != "assigned" {
            return Err(ServiceError::precondition(
                "INVALID_STATE",
                "STATE",
                name,
                format!("the review is {}", found.state.replace('_', " ")),
            ));
        }
        sqlx::query("UPDATE reviews SET state = 'conflict_declared', conflict_reason = $3 WHERE application_id = $1 AND reviewer_id = $2")
            .bind(found.application_id)
            .bind(found.reviewer_id)
            .bind(reason.trim())
            .execute(&mut *tx)
            .await?;
        actor.record(&mut tx, "intake.DeclareConflict", name.into(), serde_json::json!({ "reason": reason.trim() })).await?;
        let out = review(&fetch_review(&mut tx, found.application_id, found.reviewer_id).await?);
        tx.commit().await?;
        Ok(out)
    }

    /// ScoreApplication: every rubric criterion exactly once.
    pub async fn score(&self, actor: &Actor<'_>, name: &str, scores: &[CriterionScore], comment: &str) -> Result<Review, ServiceError> {
        parse_review(name)?;
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (row, found) = self.own_review(&mut tx, actor, name).await?;
        let call = fetch_call(&mut tx, row.call_id, Lock::None).await?;
        let rubric = &call.rubric.0;
        let mut v = Vec::new();
        for (i, s) in scores.iter().enumerate() {
            match rubric.iter().find(|c| c.id == s.criterion) {
                None => v.push(FieldViolation::new(format!("scores[{i}].criterion"), "is not a criterion of the call's rubric")),
                Some(_) if scores[..i].iter().any(|o| o.criterion == s.criterion) => {
                    v.push(FieldViolation::new(format!("scores[{i}].criterion"), "is scored twice"));
                }
                Some(c) if !(0..=c.max_score).contains(&s.score) => {
                    v.push(FieldViolation::new(format!("scores[{i}].score"), format!("must be 0 to {}", c.max_score)));
                }
                Some(_) => {}
            }
        }
        for c in rubric {
            if !scores.iter().any(|s| s.criterion == c.id) {
                v.push(FieldViolation::new("scores", format!("criterion {:?} is not scored", c.id)));
            }
        }
        if !v.is_empty() {
            return Err(ServiceError::InvalidArgument(v));
        }
        rules::next_state(name, &row.state, row.outcome.as_deref(), Step::Score)?;
        if found.state != "assigned" {
            return Err(ServiceError::precondition(
                "INVALID_STATE",
                "STATE",
                name,
                format!("the review is {}", found.state.replace('_', " ")),
            ));
        }
        let pairs: Vec<(String, i32)> = scores.iter().map(|s| (s.criterion.clone(), s.score)).collect();
        let total = rules::weighted_total(rubric, &pairs);
        let stored: Vec<StoredScore> = scores
            .iter()
            .map(|s| StoredScore { criterion: s.criterion.clone(), score: s.score, comment: s.comment.trim().into() })
            .collect();
        sqlx::query(
            "UPDATE reviews SET state = 'scored', scores = $3, comment = $4, total = $5, scored_at = now() \
             WHERE application_id = $1 AND reviewer_id = $2",
        )
        .bind(found.application_id)
        .bind(found.reviewer_id)
        .bind(Json(&stored))
        .bind(comment.trim())
        .bind(total)
        .execute(&mut *tx)
        .await?;
        actor.record(&mut tx, "intake.ScoreApplication", name.into(), serde_json::json!({ "total": total })).await?;
        let out = review(&fetch_review(&mut tx, found.application_id, found.reviewer_id).await?);
        tx.commit().await?;
        Ok(out)
    }

    /// ListReviews: staff see all; a reviewer sees their own until they have scored, then all.
    pub async fn list_reviews(&self, actor: &Actor<'_>, parent: &str) -> Result<(Vec<Review>, f64, i32), ServiceError> {
        let id = parse_name("parent", "applications", parent)?;
        let p = actor.principal;
        let mut conn = self.pool.acquire().await?;
        let row = fetch(&mut conn, &Scope::read(p), id, false).await?;
        let rows = sqlx::query_as::<_, ReviewRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reviews WHERE application_id = $1 ORDER BY assigned_at, reviewer_id"
        )))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        // The committee's side: program managers, admins, auditors (officers run the desk, not the selection).
        let staff = Scope::of(p, &["admin", "auditor"], &["program_manager"]).covers(&row.zone, row.organization_id);
        let me = account_of(p);
        let own_scored = rows.iter().any(|r| Some(r.reviewer_id) == me && r.state == "scored");
        let visible: Vec<&ReviewRow> = if staff || own_scored {
            rows.iter().collect()
        } else if rows.iter().any(|r| Some(r.reviewer_id) == me) {
            rows.iter().filter(|r| Some(r.reviewer_id) == me).collect()
        } else {
            return Err(ServiceError::PermissionDenied("reviews are for staff in scope and the assigned reviewers"));
        };
        let scored: Vec<f64> = if staff || own_scored { rows.iter().filter_map(|r| r.total).collect() } else { Vec::new() };
        let average = if scored.is_empty() { 0.0 } else { scored.iter().sum::<f64>() / scored.len() as f64 };
        Ok((visible.into_iter().map(review).collect(), (average * 100.0).round() / 100.0, scored.len() as i32))
    }
}
