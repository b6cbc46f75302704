//! Payment batches: approved disbursements of one budget, currency and payment method go to the
//! bank together. Exporting a batch writes the transfer file (kept, so a second export returns
//! the same bytes), closes the batch and moves the money to `in_payment`; the bank's results
//! come back as paid (with its reference: the money is disbursed) or failed (a reversal posting
//! returns it to the line's commitment and the tranche is payable again).
//!
//! File: UTF-8 CSV, `,`-separated, `"`-quoted, header line, one row per disbursement, columns
//! `batch,line,disbursement,award,tranche,payee_name,payment_method,account,amount,currency,amount_minor,reference,zone`.

use sha2::{Digest, Sha256};
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
use work4life_proto::grants::{
    CreatePaymentBatchRequest, ListPaymentBatchesRequest, PaymentBatch, PaymentBatchState, PaymentMethod, PaymentResult,
};

use crate::{
    Grants,
    disbursements::{self, DisbursementRow},
    ledger::{self, NewPosting, Stage},
    money::{self, money},
    scope::{self, Scope},
};

/// Most disbursements in one batch (and results in one import).
pub const MAX_BATCH: i32 = 100_000;
const DEFAULT_BATCH: i32 = 1000;
/// The header of the bank file.
pub const CSV_HEADER: &str =
    "batch,line,disbursement,award,tranche,payee_name,payment_method,account,amount,currency,amount_minor,reference,zone";

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: Uuid,
    budget_id: Uuid,
    currency: String,
    method: String,
    state: String,
    created_by: String,
    created_at: OffsetDateTime,
    exported_at: Option<OffsetDateTime>,
    file_sha256: Option<String>,
    count: i64,
    total: i64,
    paid: i64,
    failed: i64,
}

/// One row of the bank file, with what its posting needs.
#[derive(sqlx::FromRow)]
struct BankRow {
    id: Uuid,
    award_id: Uuid,
    tranche_number: i32,
    line_name: String,
    amount_minor: i64,
    line_amount_minor: i64,
    payee_holder: String,
    payee_method: String,
    payee_account: Vec<u8>,
    payee_key_id: String,
    zone: String,
    code: String,
}

const SELECT: &str = "SELECT b.id, b.budget_id, b.currency, b.method, b.state, b.created_by, b.created_at, b.exported_at, b.file_sha256, \
     (SELECT count(*) FROM disbursements d WHERE d.batch_id = b.id) AS count, \
     (SELECT coalesce(sum(amount_minor), 0)::bigint FROM disbursements d WHERE d.batch_id = b.id) AS total, \
     (SELECT count(*) FROM disbursements d WHERE d.batch_id = b.id AND d.state = 'paid') AS paid, \
     (SELECT count(*) FROM disbursements d WHERE d.batch_id = b.id AND d.state = 'failed') AS failed FROM payment_batches b";

fn method_code(m: i32) -> Option<&'static str> {
    match PaymentMethod::try_from(m) {
        Ok(PaymentMethod::BankTransfer) => Some("bank_transfer"),
        Ok(PaymentMethod::MobileMoney) => Some("mobile_money"),
        _ => None,
    }
}

impl BatchRow {
    fn wire(&self) -> PaymentBatch {
        PaymentBatch {
            name: format!("paymentBatches/{}", self.id),
            budget: format!("budgets/{}", self.budget_id),
            currency_code: self.currency.clone(),
            method: if self.method == "mobile_money" { PaymentMethod::MobileMoney } else { PaymentMethod::BankTransfer } as i32,
            state: match self.state.as_str() {
                "open" => PaymentBatchState::Open,
                "exported" => PaymentBatchState::Exported,
                _ => PaymentBatchState::Settled,
            } as i32,
            count: self.count as i32,
            total: Some(money(&self.currency, self.total)),
            paid_count: self.paid as i32,
            failed_count: self.failed as i32,
            created_by: self.created_by.clone(),
            create_time: Some(timestamp(self.created_at)),
            export_time: self.exported_at.map(timestamp),
            file_sha256: self.file_sha256.clone().unwrap_or_default(),
        }
    }
}

async fn fetch(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<BatchRow, ServiceError> {
    if lock {
        sqlx::query("SELECT 1 FROM payment_batches WHERE id = $1 FOR UPDATE").bind(id).execute(&mut *conn).await?;
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE b.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("paymentBatches/{id}")))
}

fn csv_field(s: &str) -> String {
    // Formula-leading characters are neutralised: the file is opened in spreadsheets.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn require_batch_staff(p: &Principal) -> Result<(), ServiceError> {
    if scope::makers(p).is_empty() {
        return Err(ServiceError::PermissionDenied("finance officers make and export payment batches"));
    }
    Ok(())
}

impl Grants {
    /// CreatePaymentBatch.
    pub async fn create_batch(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        r: &CreatePaymentBatchRequest,
    ) -> Result<PaymentBatch, ServiceError> {
        let mut v = Vec::new();
        let budget = gather(&mut v, parse_name("budget", "budgets", &r.budget));
        money::check_currency(&mut v, "currency_code", &r.currency_code);
        let method = method_code(r.method);
        if method.is_none() {
            v.push(FieldViolation::new("method", "is required: BANK_TRANSFER or MOBILE_MONEY"));
        }
        if !(0..=MAX_BATCH).contains(&r.max_count) {
            v.push(FieldViolation::new("max_count", format!("must be 1 to {MAX_BATCH} (0: {DEFAULT_BATCH})")));
        }
        refuse_if_any(v)?;
        let p = actor.principal;
        require_batch_staff(p)?;
        let budget = budget.unwrap_or_default();
        crate::budgets::currency_of(tx, budget).await?;
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO payment_batches (id, budget_id, currency, method, created_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(budget)
            .bind(&r.currency_code)
            .bind(method)
            .bind(&p.subject)
            .execute(&mut *tx)
            .await?;
        // Oldest approvals first; rows another batch is taking right now are skipped, not waited for.
        let mut qb = QueryBuilder::<Postgres>::new("UPDATE disbursements SET state = 'batched', batch_id = ");
        qb.push_bind(id).push(" WHERE id IN (SELECT a.id FROM disbursements a WHERE a.state = 'approved' AND a.budget_id = ");
        qb.push_bind(budget).push(" AND a.currency = ").push_bind(r.currency_code.clone()).push(" AND a.payee_method = ").push_bind(method);
        let makers = Scope { staff: scope::makers(p), account: None };
        makers.push(&mut qb, "award_id");
        qb.push(" ORDER BY a.approved_at, a.id LIMIT ")
            .push_bind(i64::from(if r.max_count == 0 { DEFAULT_BATCH } else { r.max_count }))
            .push(" FOR UPDATE SKIP LOCKED)");
        let taken = qb.build().execute(&mut *tx).await?.rows_affected();
        if taken == 0 {
            return Err(ServiceError::precondition(
                "NOTHING_TO_PAY",
                "STATE",
                format!("budgets/{budget}"),
                format!("no approved {} disbursement in {} waits for a batch", method.unwrap_or_default(), r.currency_code),
            ));
        }
        actor.record(tx, "grants.CreatePaymentBatch", format!("paymentBatches/{id}"), serde_json::json!({ "count": taken })).await?;
        Ok(fetch(tx, id, false).await?.wire())
    }

    /// GetPaymentBatch.
    pub async fn get_batch(&self, p: &Principal, name: &str) -> Result<PaymentBatch, ServiceError> {
        crate::scope::require_budget_reader(p)?;
        let id = parse_name("name", "paymentBatches", name)?;
        let mut conn = self.pool.acquire().await?;
        Ok(fetch(&mut conn, id, false).await?.wire())
    }

    /// ListPaymentBatches, newest first.
    pub async fn list_batches(&self, p: &Principal, r: &ListPaymentBatchesRequest) -> Result<(Vec<PaymentBatch>, String), ServiceError> {
        crate::scope::require_budget_reader(p)?;
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let budget = if r.budget.is_empty() { None } else { gather(&mut v, parse_name("budget", "budgets", &r.budget)) };
        let state = match PaymentBatchState::try_from(r.state) {
            Ok(PaymentBatchState::Unspecified) => None,
            Ok(PaymentBatchState::Open) => Some("open"),
            Ok(PaymentBatchState::Exported) => Some("exported"),
            Ok(PaymentBatchState::Settled) => Some("settled"),
            Err(_) => {
                v.push(FieldViolation::new("state", "is not a batch state"));
                None
            }
        };
        let filter = format!("batches|{}|{}", r.budget, r.state);
        let after: Option<(OffsetDateTime, Uuid)> = gather(&mut v, self.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE TRUE"));
        if let Some(b) = budget {
            qb.push(" AND b.budget_id = ").push_bind(b);
        }
        if let Some(s) = state {
            qb.push(" AND b.state = ").push_bind(s);
        }
        if let Some((t, id)) = after {
            qb.push(" AND (b.created_at, b.id) < (").push_bind(t).push(", ").push_bind(id).push(")");
        }
        qb.push(" ORDER BY b.created_at DESC, b.id DESC LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<BatchRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        let (rows, token) = next_page(rows, size, &self.page_tokens, &filter, |b| (b.created_at, b.id));
        Ok((rows.iter().map(BatchRow::wire).collect(), token))
    }

    /// ExportPaymentBatch: the bank file; the first export closes the batch and moves the money.
    pub async fn export_batch(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
    ) -> Result<(PaymentBatch, Vec<u8>), ServiceError> {
        let id = parse_name("name", "paymentBatches", name)?;
        require_batch_staff(actor.principal)?;
        let batch = fetch(tx, id, true).await?;
        if batch.state != "open" {
            let file: Vec<u8> = sqlx::query_scalar("SELECT file FROM payment_batches WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
            return Ok((batch.wire(), file));
        }
        let rows: Vec<BankRow> = sqlx::query_as(
            "SELECT d.id, d.award_id, d.tranche_number, 'budgets/' || l.budget_id || '/lines/' || l.code AS line_name, d.amount_minor, \
             d.line_amount_minor, a.payee_holder, a.payee_method, a.payee_account, a.payee_key_id, d.zone, l.code \
             FROM disbursements d JOIN awards a ON a.id = d.award_id JOIN budget_lines l ON l.id = d.line_id \
             WHERE d.batch_id = $1 AND d.state = 'batched' ORDER BY d.approved_at, d.id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut csv = String::from(CSV_HEADER);
        csv.push('\n');
        for r in &rows {
            let account = self.vault.open(&r.payee_key_id, r.award_id, "payee_account", &r.payee_account)?;
            let fields = [
                format!("paymentBatches/{id}"),
                r.line_name.clone(),
                format!("disbursements/{}", r.id),
                format!("awards/{}", r.award_id),
                r.tranche_number.to_string(),
                r.payee_holder.clone(),
                r.payee_method.clone(),
                account,
                money::decimal(&batch.currency, r.amount_minor),
                batch.currency.clone(),
                r.amount_minor.to_string(),
                r.id.simple().to_string(),
                r.zone.clone(),
            ];
            csv.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            csv.push('\n');
            ledger::post(
                tx,
                &NewPosting {
                    budget: batch.budget_id,
                    kind: "disbursement",
                    memo: format!("disbursements/{} sent to the bank in paymentBatches/{id}", r.id),
                    award: Some(r.award_id),
                    disbursement: Some(r.id),
                    reverses: None,
                    debit: ledger::line_account(batch.budget_id, &r.code, Stage::InPayment),
                    credit: ledger::line_account(batch.budget_id, &r.code, Stage::Committed),
                    amount_minor: r.line_amount_minor,
                },
            )
            .await?;
        }
        let file = csv.into_bytes();
        let sha = hex::encode(Sha256::digest(&file));
        sqlx::query("UPDATE disbursements SET state = 'sent' WHERE batch_id = $1 AND state = 'batched'").bind(id).execute(&mut *tx).await?;
        sqlx::query("UPDATE payment_batches SET state = 'exported', exported_at = now(), file = $2, file_sha256 = $3 WHERE id = $1")
            .bind(id)
            .bind(&file)
            .bind(&sha)
            .execute(&mut *tx)
            .await?;
        actor.record(tx, "grants.ExportPaymentBatch", name.to_string(), serde_json::json!({ "count": rows.len(), "sha256": sha })).await?;
        Ok((fetch(tx, id, false).await?.wire(), file))
    }

    /// ImportPaymentResults: all or nothing; identical repeats count as unchanged.
    pub async fn import_results(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
        results: &[PaymentResult],
    ) -> Result<(PaymentBatch, i32, i32), ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "paymentBatches", name));
        if results.is_empty() || results.len() > MAX_BATCH as usize {
            v.push(FieldViolation::new("results", format!("must hold 1 to {MAX_BATCH} results")));
        }
        let mut ids = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let f = format!("results[{i}]");
            match parse_name(&format!("{f}.disbursement"), "disbursements", &r.disbursement) {
                Ok(d) if ids.contains(&d) => v.push(FieldViolation::new(format!("{f}.disbursement"), "appears twice")),
                Ok(d) => ids.push(d),
                Err(ServiceError::InvalidArgument(mut e)) => v.append(&mut e),
                Err(e) => return Err(e),
            }
            let text_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control);
            if r.paid && !text_ok(&r.external_reference) {
                v.push(FieldViolation::new(format!("{f}.external_reference"), "is required for a paid result (at most 200 characters)"));
            }
            if !r.paid && !text_ok(&r.failure_reason) {
                v.push(FieldViolation::new(format!("{f}.failure_reason"), "is required for a failed result (at most 200 characters)"));
            }
        }
        refuse_if_any(v)?;
        let p = actor.principal;
        if scope::makers(p).is_empty() && !p.has_role("partner_system") {
            return Err(ServiceError::PermissionDenied("finance officers and the bank's partner system import payment results"));
        }
        let id = id.unwrap_or_default();
        let batch = fetch(tx, id, true).await?;
        if batch.state == "open" {
            return Err(ServiceError::precondition(
                "BATCH_NOT_EXPORTED",
                "STATE",
                name.to_string(),
                "export the batch before importing its results",
            ));
        }
        let rows: Vec<DisbursementRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{} WHERE a.id = ANY($1) ORDER BY a.id FOR UPDATE OF a", disbursements::SELECT)))
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        let mut v = Vec::new();
        for (i, r) in results.iter().enumerate() {
            if !rows.iter().any(|d| d.id == ids[i] && d.batch_id == Some(id)) {
                v.push(FieldViolation::new(format!("results[{i}].disbursement"), format!("{} is not in this batch", r.disbursement)));
            }
        }
        refuse_if_any(v)?;
        // Awards before their tranches, in one order: the order a disbursement request takes too.
        let mut awards: Vec<Uuid> = rows.iter().map(|d| d.award_id).collect();
        awards.sort();
        awards.dedup();
        sqlx::query("SELECT id FROM awards WHERE id = ANY($1) ORDER BY id FOR UPDATE").bind(&awards).execute(&mut *tx).await?;
        let (mut recorded, mut unchanged) = (0, 0);
        for (i, r) in results.iter().enumerate() {
            let d = rows.iter().find(|d| d.id == ids[i]).ok_or_else(|| ServiceError::NotFound(r.disbursement.clone()))?;
            let code = d.line_name.rsplit('/').next().unwrap_or_default().to_string();
            match (d.state.as_str(), r.paid) {
                ("sent", true) => {
                    sqlx::query("UPDATE disbursements SET state = 'paid', external_reference = $2, settled_at = now() WHERE id = $1")
                        .bind(d.id)
                        .bind(r.external_reference.trim())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE tranches SET state = 'paid' WHERE award_id = $1 AND number = $2")
                        .bind(d.award_id)
                        .bind(d.tranche_number)
                        .execute(&mut *tx)
                        .await?;
                    ledger::post(
                        tx,
                        &NewPosting {
                            budget: d.budget_id,
                            kind: "payment",
                            memo: format!("disbursements/{} paid, bank reference {}", d.id, r.external_reference.trim()),
                            award: Some(d.award_id),
                            disbursement: Some(d.id),
                            reverses: None,
                            debit: ledger::line_account(d.budget_id, &code, Stage::Disbursed),
                            credit: ledger::line_account(d.budget_id, &code, Stage::InPayment),
                            amount_minor: d.line_amount_minor,
                        },
                    )
                    .await?;
                    sqlx::query(
                        "UPDATE awards SET state = 'completed', version = version + 1, updated_at = now() WHERE id = $1 AND state = 'active' \
                         AND NOT EXISTS (SELECT 1 FROM tranches WHERE award_id = $1 AND state NOT IN ('paid', 'cancelled'))",
                    )
                    .bind(d.award_id)
                    .execute(&mut *tx)
                    .await?;
                    let d = disbursements::fetch(tx, &Scope::everything(), d.id, false).await?;
                    disbursements::announce(tx, &d, "paid").await?;
                    recorded += 1;
                }
                ("sent", false) => {
                    sqlx::query("UPDATE disbursements SET state = 'failed', failure_reason = $2, settled_at = now() WHERE id = $1")
                        .bind(d.id)
                        .bind(r.failure_reason.trim())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE tranches SET state = 'payable' WHERE award_id = $1 AND number = $2")
                        .bind(d.award_id)
                        .bind(d.tranche_number)
                        .execute(&mut *tx)
                        .await?;
                    let sent: Uuid = sqlx::query_scalar("SELECT id FROM postings WHERE disbursement_id = $1 AND kind = 'disbursement'")
                        .bind(d.id)
                        .fetch_one(&mut *tx)
                        .await?;
                    ledger::post(
                        tx,
                        &NewPosting {
                            budget: d.budget_id,
                            kind: "reversal",
                            memo: format!("disbursements/{} failed: {}", d.id, r.failure_reason.trim()),
                            award: Some(d.award_id),
                            disbursement: Some(d.id),
                            reverses: Some(sent),
                            debit: ledger::line_account(d.budget_id, &code, Stage::Committed),
                            credit: ledger::line_account(d.budget_id, &code, Stage::InPayment),
                            amount_minor: d.line_amount_minor,
                        },
                    )
                    .await?;
                    let d = disbursements::fetch(tx, &Scope::everything(), d.id, false).await?;
                    disbursements::announce(tx, &d, "failed").await?;
                    recorded += 1;
                }
                ("paid", true) if d.external_reference.as_deref() == Some(r.external_reference.trim()) => unchanged += 1,
                ("failed", false) if d.failure_reason.as_deref() == Some(r.failure_reason.trim()) => unchanged += 1,
                _ => {
                    return Err(ServiceError::precondition(
                        "RESULT_CONFLICTS",
                        "STATE",
                        r.disbursement.clone(),
                        format!("the disbursement is already {} with another result; corrections are reversals, not edits", d.state),
                    ));
                }
            }
        }
        sqlx::query(
            "UPDATE payment_batches SET state = 'settled' WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM disbursements WHERE batch_id = $1 AND state = 'sent')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if recorded > 0 {
            actor
                .record(
                    tx,
                    "grants.ImportPaymentResults",
                    name.to_string(),
                    serde_json::json!({ "recorded": recorded, "unchanged": unchanged }),
                )
                .await?;
        }
        Ok((fetch(tx, id, false).await?.wire(), recorded, unchanged))
    }
}
