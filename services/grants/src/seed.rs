//! Demo data: the WORK4LIFE budget (2,000,000 EUR, PRODUCT.md) and its lines, more than two
//! thirds of it for beneficiaries. Idempotent: an existing budget of the program is left as is.

use futures::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ledger::{self, NewPosting, Stage};

/// The program intake's seed creates.
pub const PROGRAM: &str = "work4life";
/// The envelope, in euro cents.
pub const ENVELOPE_MINOR: i64 = 200_000_000;

/// Lines: code, title, kind, donor heading, window, zone, allocation in euro cents.
pub const LINES: &[(&str, &str, &str, &str, &str, &str, i64)] = &[
    (
        "collective_rabat_sale",
        "Collective start-ups, Rabat-Salé",
        "beneficiary_funds",
        "3.1 Start-up launch funds",
        "collective_startup",
        "rabat_sale",
        25_000_000,
    ),
    (
        "collective_tanger",
        "Collective start-ups, Tanger",
        "beneficiary_funds",
        "3.1 Start-up launch funds",
        "collective_startup",
        "tanger",
        25_000_000,
    ),
    (
        "collective_oujda",
        "Collective start-ups, Oujda",
        "beneficiary_funds",
        "3.1 Start-up launch funds",
        "collective_startup",
        "oujda",
        15_000_000,
    ),
    (
        "collective_beni_mellal",
        "Collective start-ups, Beni Mellal",
        "beneficiary_funds",
        "3.1 Start-up launch funds",
        "collective_startup",
        "beni_mellal",
        15_000_000,
    ),
    (
        "individual_startups",
        "Individual auto-entrepreneurs",
        "beneficiary_funds",
        "3.1 Start-up launch funds",
        "individual_startup",
        "",
        20_000_000,
    ),
    ("work_bursaries", "Work bursaries", "beneficiary_funds", "3.2 Work bursaries", "job_placement", "", 38_000_000),
    ("coaching", "Technical coaching at the offices", "coaching", "4.1 Coaching and incubation", "", "", 40_000_000),
    ("operations", "Operations, monitoring and evaluation", "operations", "5.1 Operations", "", "", 22_000_000),
];

/// Loads the budget.
pub fn seed(pool: &PgPool) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
    Box::pin(async move {
        let mut tx = pool.begin().await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM budgets WHERE program = $1").bind(PROGRAM).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Ok(vec![format!("grants: budget of programs/{PROGRAM} already loaded")]);
        }
        let budget = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO budgets (id, program, display_name, currency, envelope_minor, allocated_minor, created_by) \
             VALUES ($1, $2, 'WORK4LIFE — EU contribution', 'EUR', $3, $4, 'system')",
        )
        .bind(budget)
        .bind(PROGRAM)
        .bind(ENVELOPE_MINOR)
        .bind(LINES.iter().map(|l| l.6).sum::<i64>())
        .execute(&mut *tx)
        .await?;
        let posting = |kind: &'static str, memo: String, debit: String, credit: String, amount_minor: i64| NewPosting {
            budget,
            kind,
            memo,
            award: None,
            disbursement: None,
            reverses: None,
            debit,
            credit,
            amount_minor,
        };
        ledger::post(
            &mut tx,
            &posting(
                "funding",
                "WORK4LIFE envelope".into(),
                ledger::unallocated_account(budget),
                ledger::envelope_account(budget),
                ENVELOPE_MINOR,
            ),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (code, title, kind, heading, window, zone, amount) in LINES {
            sqlx::query(
                "INSERT INTO budget_lines (id, budget_id, code, display_name, kind, heading, window_code, zone, allocated_minor) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), $9)",
            )
            .bind(Uuid::now_v7())
            .bind(budget)
            .bind(code)
            .bind(title)
            .bind(kind)
            .bind(heading)
            .bind(window)
            .bind(zone)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
            ledger::post(
                &mut tx,
                &posting(
                    "allocation",
                    format!("allocation of line {code}"),
                    ledger::line_account(budget, code, Stage::Available),
                    ledger::unallocated_account(budget),
                    *amount,
                ),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        tx.commit().await?;
        Ok(vec![format!("grants: budget of programs/{PROGRAM} (2,000,000 EUR) with {} lines", LINES.len())])
    })
}
