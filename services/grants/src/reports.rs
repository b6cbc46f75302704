//! The donor's report of a program at an instant: envelope, committed and disbursed from the
//! ledger; awards, start-ups and bursaries live at that instant; breakdowns by zone, window,
//! gender, nationality and age band counted on unique persons. An award's amounts are shared
//! evenly among its beneficiaries (the remainder to the first) for the breakdowns, so that each
//! breakdown sums to the total. Everything is read as of the instant, so the same instant gives
//! the same report whatever was written since.

use time::OffsetDateTime;
use work4life_platform::{
    ServiceError,
    wire::{from_timestamp, gather, refuse_if_any, timestamp},
};
use work4life_proto::grants::{DonorReport, ReportRow};

use crate::{
    Grants,
    ledger::{self, LineMoney},
};

/// Per-person breakdowns in one pass: GROUPING SETS over the awards' beneficiaries as of `$2`
/// (public for the benchmark's EXPLAIN).
pub const BREAKDOWNS: &str = "\
WITH live AS (
    SELECT a.id, a.zone, a.window_code FROM awards a
    WHERE a.program = $1 AND a.created_at <= $2 AND (a.cancelled_at IS NULL OR a.cancelled_at > $2)
), money AS (
    SELECT e.award_id,
           coalesce(sum(e.amount_minor) FILTER (WHERE e.account LIKE '%/committed' OR e.account LIKE '%/in_payment' OR e.account LIKE '%/disbursed'), 0)::bigint AS committed,
           coalesce(sum(e.amount_minor) FILTER (WHERE e.account LIKE '%/disbursed'), 0)::bigint AS disbursed
    FROM entries e JOIN live ON live.id = e.award_id WHERE e.posted_at <= $2 GROUP BY e.award_id
), people AS (
    SELECT live.id AS award_id, live.zone, live.window_code, b.applicant_id, b.gender, b.nationality, b.age_band,
           coalesce(m.committed, 0) AS committed, coalesce(m.disbursed, 0) AS disbursed,
           count(*) OVER (PARTITION BY live.id) AS n, row_number() OVER (PARTITION BY live.id ORDER BY b.position) AS rn
    FROM live JOIN award_beneficiaries b ON b.award_id = live.id LEFT JOIN money m ON m.award_id = live.id
), shares AS (
    SELECT *, committed / n + CASE WHEN rn = 1 THEN committed % n ELSE 0 END AS c_share,
              disbursed / n + CASE WHEN rn = 1 THEN disbursed % n ELSE 0 END AS d_share
    FROM people
)
SELECT CASE WHEN GROUPING(zone) = 0 THEN 'zone' WHEN GROUPING(window_code) = 0 THEN 'window' WHEN GROUPING(gender) = 0 THEN 'gender'
            WHEN GROUPING(nationality) = 0 THEN 'nationality' ELSE 'age_band' END AS dimension,
       coalesce(zone, window_code, gender, nationality, age_band) AS key,
       count(DISTINCT award_id)::int AS awards, count(DISTINCT applicant_id)::int AS persons,
       sum(c_share)::bigint AS committed, sum(d_share)::bigint AS disbursed
FROM shares GROUP BY GROUPING SETS ((zone), (window_code), (gender), (nationality), (age_band)) ORDER BY 1, 2";

impl Grants {
    /// GetDonorReport.
    pub async fn donor_report(&self, program: &str, as_of: Option<&prost_types::Timestamp>) -> Result<DonorReport, ServiceError> {
        let mut v = Vec::new();
        let code = program.strip_prefix("programs/").filter(|c| !c.is_empty());
        if code.is_none() {
            v.push(work4life_platform::FieldViolation::new("program", "must be programs/{program}"));
        }
        let as_of = as_of.and_then(|t| gather(&mut v, from_timestamp("as_of", t)));
        refuse_if_any(v)?;
        let code = code.unwrap_or_default();
        let at = as_of.unwrap_or_else(OffsetDateTime::now_utc);
        // One snapshot for every figure of the report.
        let mut tx = work4life_platform::db::begin_snapshot(&self.pool).await?;
        let (budget, currency, envelope): (uuid::Uuid, String, i64) =
            sqlx::query_as("SELECT id, currency, envelope_minor FROM budgets WHERE program = $1")
                .bind(code)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("a budget of {program}")))?;
        let kinds: Vec<(String, String)> =
            sqlx::query_as("SELECT code, kind FROM budget_lines WHERE budget_id = $1").bind(budget).fetch_all(&mut *tx).await?;
        let (mut total, mut beneficiary) = (LineMoney::default(), LineMoney::default());
        for (line, m) in ledger::lines_money(&mut tx, budget, Some(at)).await? {
            total.add(&m);
            if kinds.iter().any(|(c, k)| *c == line && k == "beneficiary_funds") {
                beneficiary.add(&m);
            }
        }
        let (startups, bursaries, persons): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE a.kind = 'startup_grant'), count(*) FILTER (WHERE a.kind = 'work_bursary'), \
             (SELECT count(DISTINCT b.applicant_id) FROM award_beneficiaries b JOIN awards x ON x.id = b.award_id \
              WHERE x.program = $1 AND x.created_at <= $2 AND (x.cancelled_at IS NULL OR x.cancelled_at > $2)) \
             FROM awards a WHERE a.program = $1 AND a.created_at <= $2 AND (a.cancelled_at IS NULL OR a.cancelled_at > $2)",
        )
        .bind(code)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        let rows: Vec<(String, String, i32, i32, i64, i64)> = sqlx::query_as(BREAKDOWNS).bind(code).bind(at).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let pick = |dimension: &str| -> Vec<ReportRow> {
            rows.iter()
                .filter(|r| r.0 == dimension)
                .map(|r| ReportRow { key: r.1.clone(), awards: r.2, persons: r.3, committed_minor: r.4, disbursed_minor: r.5 })
                .collect()
        };
        let bp = |part: i64| if envelope > 0 { (i128::from(part) * 10_000 / i128::from(envelope)) as i32 } else { 0 };
        Ok(DonorReport {
            program: program.to_string(),
            as_of: Some(timestamp(at)),
            currency_code: currency,
            envelope_minor: envelope,
            committed_minor: total.committed + total.in_payment + total.disbursed,
            disbursed_minor: total.disbursed,
            disbursed_beneficiary_share_bp: bp(beneficiary.disbursed),
            planned_beneficiary_share_bp: bp(beneficiary.allocated()),
            startups_funded: startups as i32,
            bursaries_granted: bursaries as i32,
            persons_funded: persons as i32,
            by_zone: pick("zone"),
            by_window: pick("window"),
            by_gender: pick("gender"),
            by_nationality: pick("nationality"),
            by_age_band: pick("age_band"),
        })
    }
}
