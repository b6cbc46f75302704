//! Maker-checker disbursements. A finance officer requests the payment of a payable tranche; a
//! finance checker who is not the maker approves it (the database refuses self-approval too);
//! approved payments go out in batches ([`crate::batches`]). A tranche has at most one live
//! disbursement (a partial unique index); a failed payment is retried as a new disbursement
//! pointing at the failed one, never by editing it.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    auth::Principal,
    pagination::{next_page, page_size},
    wire::{gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::grants::{Disbursement, DisbursementChanged, DisbursementState, ListDisbursementsRequest};

use crate::{
    Grants,
    awards::{self, parse_tranche_name, recipients},
    emit,
    money::money,
    scope::{self, Scope},
};

pub(crate) const STATES: [(DisbursementState, &str); 8] = [
    (DisbursementState::PendingApproval, "pending_approval"),
    (DisbursementState::Approved, "approved"),
    (DisbursementState::Batched, "batched"),
    (DisbursementState::Sent, "sent"),
    (DisbursementState::Paid, "paid"),
    (DisbursementState::Failed, "failed"),
    (DisbursementState::Rejected, "rejected"),
    (DisbursementState::Withdrawn, "withdrawn"),
];

/// A disbursement as stored.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct DisbursementRow {
    pub id: Uuid,
    pub award_id: Uuid,
    pub tranche_number: i32,
    pub line_id: Uuid,
    pub budget_id: Uuid,
    pub zone: String,
    pub partner: Option<Uuid>,
    pub currency: String,
    pub amount_minor: i64,
    pub line_amount_minor: i64,
    pub payee_method: String,
    pub state: String,
    pub requested_by: String,
    pub requested_at: OffsetDateTime,
    pub approved_by: Option<String>,
    pub approved_at: Option<OffsetDateTime>,
    pub batch_id: Option<Uuid>,
    pub external_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub retry_of: Option<Uuid>,
    pub settled_at: Option<OffsetDateTime>,
    pub line_name: String,
    pub accounts: Vec<Uuid>,
}

pub(crate) const SELECT: &str = "SELECT a.id, a.award_id, a.tranche_number, a.line_id, a.budget_id, a.zone, a.partner, a.currency, a.amount_minor, \
     a.line_amount_minor, a.payee_method, a.state, a.requested_by, a.requested_at, a.approved_by, a.approved_at, a.batch_id, a.external_reference, \
     a.failure_reason, a.retry_of, a.settled_at, 'budgets/' || l.budget_id || '/lines/' || l.code AS line_name, \
     ARRAY(SELECT b.account_id FROM award_beneficiaries b WHERE b.award_id = a.award_id AND b.account_id IS NOT NULL) AS accounts \
     FROM disbursements a JOIN budget_lines l ON l.id = a.line_id";

impl DisbursementRow {
    /// On the wire.
    pub fn wire(&self) -> Disbursement {
        Disbursement {
            name: format!("disbursements/{}", self.id),
            tranche: format!("awards/{}/tranches/{}", self.award_id, self.tranche_number),
            amount: Some(money(&self.currency, self.amount_minor)),
            state: STATES.iter().find(|(_, c)| *c == self.state).map_or(DisbursementState::Unspecified, |(s, _)| *s) as i32,
            requested_by: self.requested_by.clone(),
            request_time: Some(timestamp(self.requested_at)),
            approved_by: self.approved_by.clone().unwrap_or_default(),
            approve_time: self.approved_at.map(timestamp),
            payment_batch: self.batch_id.map(|b| format!("paymentBatches/{b}")).unwrap_or_default(),
            external_reference: self.external_reference.clone().unwrap_or_default(),
            failure_reason: self.failure_reason.clone().unwrap_or_default(),
            retry_of: self.retry_of.map(|r| format!("disbursements/{r}")).unwrap_or_default(),
            settle_time: self.settled_at.map(timestamp),
            budget_line: self.line_name.clone(),
            zone: self.zone.clone(),
        }
    }
}

/// A disbursement by id, locked when `lock`; NOT_FOUND outside `scope`.
pub async fn fetch(conn: &mut PgConnection, scope: &Scope, id: Uuid, lock: bool) -> Result<DisbursementRow, ServiceError> {
    let sql = format!("{SELECT} WHERE a.id = $1{}", if lock { " FOR UPDATE OF a" } else { "" });
    let row: Option<DisbursementRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.filter(|r| scope.covers(&r.zone, r.partner, &r.accounts)).ok_or_else(|| ServiceError::NotFound(format!("disbursements/{id}")))
}

/// Emits `grants.disbursement.<verb>`.
pub async fn announce(tx: &mut PgConnection, d: &DisbursementRow, verb: &str) -> Result<(), ServiceError> {
    let who = recipients(tx, d.award_id).await?;
    let event = DisbursementChanged {
        disbursement: format!("disbursements/{}", d.id),
        tranche: format!("awards/{}/tranches/{}", d.award_id, d.tranche_number),
        award: format!("awards/{}", d.award_id),
        amount: Some(money(&d.currency, d.amount_minor)),
        beneficiaries: who.applicants,
        beneficiary_accounts: who.accounts,
        languages: who.languages,
        external_reference: d.external_reference.clone().unwrap_or_default(),
        failure_reason: d.failure_reason.clone().unwrap_or_default(),
        event_time: Some(timestamp(OffsetDateTime::now_utc())),
    };
    emit(tx, &format!("grants.disbursement.{verb}"), &event.disbursement, "DisbursementChanged", &event).await
}

fn not_pending(d: &DisbursementRow) -> ServiceError {
    ServiceError::precondition(
        "DISBURSEMENT_NOT_PENDING",
        "STATE",
        format!("disbursements/{}", d.id),
        format!("the disbursement is {}, not pending approval", d.state),
    )
}

/// Maps the database's own refusals (a second live disbursement, self-approval) to answers.
fn refusal(err: sqlx::Error, tranche: &str) -> ServiceError {
    if let Some(db) = err.as_database_error() {
        match db.constraint() {
            Some("disbursements_one_live_per_tranche") => {
                return ServiceError::precondition(
                    "DISBURSEMENT_EXISTS",
                    "STATE",
                    tranche.to_string(),
                    "the tranche already has a live disbursement",
                );
            }
            Some("maker_is_not_checker") => return ServiceError::PermissionDenied("the maker of a disbursement cannot approve it"),
            _ => {}
        }
    }
    err.into()
}

impl Grants {
    /// RequestDisbursement: the maker's request for a payable tranche.
    pub async fn request_disbursement(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        tranche: &str,
        retry_of: Option<Uuid>,
    ) -> Result<Disbursement, ServiceError> {
        let (award_id, number) = parse_tranche_name("tranche", tranche)?;
        let p = actor.principal;
        let award = awards::fetch(tx, &Scope::read(p), award_id, true).await?;
        if !scope::makers(p).covers(&award.zone, award.partner) {
            return Err(ServiceError::PermissionDenied("finance officers of the award's zone and organisation request disbursements"));
        }
        let t = awards::tranches_of(tx, &[award_id], true)
            .await?
            .into_iter()
            .find(|t| t.number == number)
            .ok_or_else(|| ServiceError::NotFound(tranche.to_string()))?;
        if let Some(live) = t.disbursement {
            return Err(ServiceError::precondition(
                "DISBURSEMENT_EXISTS",
                "STATE",
                tranche.to_string(),
                format!("disbursements/{live} is already live for this tranche"),
            ));
        }
        if t.state != "payable" || award.state != "active" {
            return Err(ServiceError::precondition(
                "TRANCHE_NOT_PAYABLE",
                "STATE",
                tranche.to_string(),
                format!("the tranche is {} (award {}); only a payable tranche is paid", t.state, award.state),
            ));
        }
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO disbursements (id, award_id, tranche_number, line_id, budget_id, zone, partner, currency, amount_minor, line_amount_minor, \
             payee_method, requested_by, retry_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(award_id)
        .bind(number)
        .bind(award.line_id)
        .bind(award.budget_id)
        .bind(&award.zone)
        .bind(award.partner)
        .bind(&award.currency)
        .bind(t.amount_minor)
        .bind(t.line_amount_minor)
        .bind(&award.payee_method)
        .bind(&p.subject)
        .bind(retry_of)
        .execute(&mut *tx)
        .await
        .map_err(|e| refusal(e, tranche))?;
        sqlx::query("UPDATE tranches SET state = 'in_payment' WHERE award_id = $1 AND number = $2")
            .bind(award_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        actor
            .record(
                tx,
                "grants.RequestDisbursement",
                format!("disbursements/{id}"),
                serde_json::json!({ "tranche": tranche, "amount_minor": t.amount_minor, "retry_of": retry_of }),
            )
            .await?;
        Ok(fetch(tx, &Scope::everything(), id, false).await?.wire())
    }

    /// RequeueDisbursement: a new request for the tranche of a failed disbursement.
    pub async fn requeue_disbursement(&self, tx: &mut PgConnection, actor: &Actor<'_>, name: &str) -> Result<Disbursement, ServiceError> {
        let id = parse_name("name", "disbursements", name)?;
        let failed = fetch(tx, &Scope::read(actor.principal), id, true).await?;
        if failed.state != "failed" {
            return Err(ServiceError::precondition(
                "DISBURSEMENT_NOT_FAILED",
                "STATE",
                name.to_string(),
                format!("the disbursement is {}; only a failed payment is requeued", failed.state),
            ));
        }
        let tranche = format!("awards/{}/tranches/{}", failed.award_id, failed.tranche_number);
        self.request_disbursement(tx, actor, &tranche, Some(id)).await
    }

    /// The disbursement `name` locked for the checker, with its scope checks.
    async fn for_checker(&self, tx: &mut PgConnection, p: &Principal, name: &str) -> Result<DisbursementRow, ServiceError> {
        let id = parse_name("name", "disbursements", name)?;
        let d = fetch(tx, &Scope::read(p), id, true).await?;
        if !scope::checkers(p).covers(&d.zone, d.partner) {
            return Err(ServiceError::PermissionDenied(
                "finance checkers of the award's zone and organisation approve or refuse disbursements",
            ));
        }
        Ok(d)
    }

    /// ApproveDisbursement: the checker's approval. Approving again what the same checker
    /// approved returns it unchanged.
    pub async fn approve_disbursement(&self, tx: &mut PgConnection, actor: &Actor<'_>, name: &str) -> Result<Disbursement, ServiceError> {
        let p = actor.principal;
        let d = self.for_checker(tx, p, name).await?;
        if d.requested_by == p.subject {
            return Err(ServiceError::PermissionDenied("the maker of a disbursement cannot approve it"));
        }
        if d.state != "pending_approval" {
            // A retried approval: the same checker approved it, and it went on from there.
            let approved = matches!(d.state.as_str(), "approved" | "batched" | "sent" | "paid" | "failed");
            if approved && d.approved_by.as_deref() == Some(p.subject.as_str()) {
                return Ok(d.wire());
            }
            return Err(not_pending(&d));
        }
        sqlx::query("UPDATE disbursements SET state = 'approved', approved_by = $2, approved_at = now() WHERE id = $1")
            .bind(d.id)
            .bind(&p.subject)
            .execute(&mut *tx)
            .await
            .map_err(|e| refusal(e, name))?;
        let d = fetch(tx, &Scope::everything(), d.id, false).await?;
        announce(tx, &d, "approved").await?;
        actor.record(tx, "grants.ApproveDisbursement", name.to_string(), serde_json::json!({ "amount_minor": d.amount_minor })).await?;
        Ok(d.wire())
    }

    /// RejectDisbursement: the checker refuses; the tranche is payable again.
    pub async fn reject_disbursement(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
        reason: &str,
    ) -> Result<Disbursement, ServiceError> {
        let mut v = Vec::new();
        gather(&mut v, parse_name("name", "disbursements", name));
        if reason.trim().is_empty() || reason.chars().count() > 1000 {
            v.push(FieldViolation::new("reason", "is required (at most 1000 characters)"));
        }
        refuse_if_any(v)?;
        let p = actor.principal;
        let d = self.for_checker(tx, p, name).await?;
        if d.requested_by == p.subject {
            return Err(ServiceError::PermissionDenied("the maker of a disbursement cannot decide on it"));
        }
        if d.state != "pending_approval" {
            return Err(not_pending(&d));
        }
        sqlx::query(
            "UPDATE disbursements SET state = 'rejected', approved_by = $2, approved_at = now(), failure_reason = $3 WHERE id = $1",
        )
        .bind(d.id)
        .bind(&p.subject)
        .bind(reason.trim())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE tranches SET state = 'payable' WHERE award_id = $1 AND number = $2")
            .bind(d.award_id)
            .bind(d.tranche_number)
            .execute(&mut *tx)
            .await?;
        actor.record(tx, "grants.RejectDisbursement", name.to_string(), serde_json::json!({ "reason": reason.trim() })).await?;
        Ok(fetch(tx, &Scope::everything(), d.id, false).await?.wire())
    }

    /// GetDisbursement.
    pub async fn get_disbursement(&self, p: &Principal, name: &str) -> Result<Disbursement, ServiceError> {
        let id = parse_name("name", "disbursements", name)?;
        let mut conn = self.pool.acquire().await?;
        Ok(fetch(&mut conn, &Scope::read(p), id, false).await?.wire())
    }

    /// ListDisbursements, newest first.
    pub async fn list_disbursements(
        &self,
        p: &Principal,
        r: &ListDisbursementsRequest,
    ) -> Result<(Vec<Disbursement>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let award = if r.award.is_empty() { None } else { gather(&mut v, parse_name("award", "awards", &r.award)) };
        let batch =
            if r.payment_batch.is_empty() { None } else { gather(&mut v, parse_name("payment_batch", "paymentBatches", &r.payment_batch)) };
        let state = match DisbursementState::try_from(r.state) {
            Ok(DisbursementState::Unspecified) => None,
            Ok(s) => STATES.iter().find(|(w, _)| *w == s).map(|(_, c)| *c),
            Err(_) => {
                v.push(FieldViolation::new("state", "is not a disbursement state"));
                None
            }
        };
        let filter = format!("disbursements|{}|{}|{}", r.award, r.state, r.payment_batch);
        let after: Option<(OffsetDateTime, Uuid)> = gather(&mut v, self.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let scope = Scope::read(p);
        if scope.staff.is_empty() && scope.account.is_none() {
            return Err(ServiceError::PermissionDenied(
                "disbursements are read by finance staff, program managers, auditors and their beneficiaries",
            ));
        }
        let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE TRUE"));
        if let Some(a) = award {
            qb.push(" AND a.award_id = ").push_bind(a);
        }
        if let Some(b) = batch {
            qb.push(" AND a.batch_id = ").push_bind(b);
        }
        if let Some(s) = state {
            qb.push(" AND a.state = ").push_bind(s);
        }
        scope.push(&mut qb, "award_id");
        if let Some((t, id)) = after {
            qb.push(" AND (a.requested_at, a.id) < (").push_bind(t).push(", ").push_bind(id).push(")");
        }
        qb.push(" ORDER BY a.requested_at DESC, a.id DESC LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<DisbursementRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        let (rows, token) = next_page(rows, size, &self.page_tokens, &filter, |d| (d.requested_at, d.id));
        Ok((rows.iter().map(DisbursementRow::wire).collect(), token))
    }
}
