//! Budgets (a program's envelope) and their lines. Allocating a line moves money from the
//! envelope's unallocated account to the line in one posting; the database refuses allocations
//! beyond the envelope. Figures are read from the ledger, now or at any past instant.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    pagination::{next_page, page_size},
    wire::{from_timestamp, gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::grants::{Budget, BudgetLine, LineKind};

use crate::{
    Grants,
    ledger::{self, LineMoney, NewPosting, Stage},
    money::{self, money},
};

/// The program's target share of the money paid to beneficiaries (two thirds), basis points.
pub const BENEFICIARY_SHARE_TARGET_BP: i32 = 6667;

const LINE_KINDS: [(LineKind, &str); 3] =
    [(LineKind::BeneficiaryFunds, "beneficiary_funds"), (LineKind::Coaching, "coaching"), (LineKind::Operations, "operations")];

fn kind_code(k: i32) -> Option<&'static str> {
    LINE_KINDS.iter().find(|(w, _)| *w as i32 == k).map(|(_, c)| *c)
}

fn kind_wire(code: &str) -> LineKind {
    LINE_KINDS.iter().find(|(_, c)| *c == code).map_or(LineKind::Unspecified, |(w, _)| *w)
}

fn is_code(s: &str, max: usize) -> bool {
    (2..=max).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_text(v: &mut Vec<FieldViolation>, field: &str, s: &str, max: usize) {
    if s.trim().is_empty() {
        v.push(FieldViolation::new(field, "is required"));
    } else if s.chars().count() > max {
        v.push(FieldViolation::new(field, format!("must be at most {max} characters")));
    }
}

/// A line as stored.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct LineRow {
    /// Id.
    pub id: Uuid,
    /// Its budget.
    pub budget_id: Uuid,
    /// Code.
    pub code: String,
    /// Title.
    pub display_name: String,
    /// Kind code.
    pub kind: String,
    /// Donor heading.
    pub heading: String,
    /// Window restriction.
    pub window_code: Option<String>,
    /// Zone restriction.
    pub zone: Option<String>,
    /// Partner organisation.
    pub partner: Option<Uuid>,
    /// Allocation.
    pub allocated_minor: i64,
    /// Reserved by awards.
    pub committed_minor: i64,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// The budget's currency.
    pub currency: String,
    /// The budget's program.
    pub program: String,
}

impl LineRow {
    /// `budgets/{b}/lines/{code}`.
    pub fn name(&self) -> String {
        format!("budgets/{}/lines/{}", self.budget_id, self.code)
    }
}

const LINE_SELECT: &str = "SELECT l.id, l.budget_id, l.code, l.display_name, l.kind, l.heading, l.window_code, l.zone, l.partner, \
     l.allocated_minor, l.committed_minor, l.created_at, b.currency, b.program FROM budget_lines l JOIN budgets b ON b.id = l.budget_id";

/// Parses `budgets/{uuid}/lines/{code}`.
pub fn parse_line_name(field: &str, name: &str) -> Result<(Uuid, String), ServiceError> {
    let bad = || ServiceError::invalid(field, "must be budgets/{budget}/lines/{line}");
    let rest = name.strip_prefix("budgets/").ok_or_else(bad)?;
    let (budget, code) = rest.split_once("/lines/").ok_or_else(bad)?;
    let budget = Uuid::parse_str(budget).map_err(|_| bad())?;
    if !is_code(code, 40) {
        return Err(bad());
    }
    Ok((budget, code.to_string()))
}

/// The line named `budget`/`code`, locked when `lock`.
pub async fn fetch_line(conn: &mut PgConnection, budget: Uuid, code: &str) -> Result<Option<LineRow>, ServiceError> {
    Ok(sqlx::query_as::<_, LineRow>(sqlx::AssertSqlSafe(format!("{LINE_SELECT} WHERE l.budget_id = $1 AND l.code = $2")))
        .bind(budget)
        .bind(code)
        .fetch_optional(conn)
        .await?)
}

/// The line with this id.
pub async fn line_by_id(conn: &mut PgConnection, id: Uuid) -> Result<LineRow, ServiceError> {
    Ok(sqlx::query_as::<_, LineRow>(sqlx::AssertSqlSafe(format!("{LINE_SELECT} WHERE l.id = $1"))).bind(id).fetch_one(conn).await?)
}

/// The currency of a budget, or NOT_FOUND.
pub async fn currency_of(conn: &mut PgConnection, budget: Uuid) -> Result<String, ServiceError> {
    sqlx::query_scalar("SELECT currency FROM budgets WHERE id = $1")
        .bind(budget)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("budgets/{budget}")))
}

#[derive(sqlx::FromRow)]
struct BudgetRow {
    id: Uuid,
    program: String,
    display_name: String,
    currency: String,
    envelope_minor: i64,
    created_at: OffsetDateTime,
}

fn share_bp(part: i64, whole: i64) -> i32 {
    if whole <= 0 { 0 } else { (i128::from(part) * 10_000 / i128::from(whole)) as i32 }
}

impl Grants {
    /// CreateBudget: the envelope, funded by one posting.
    pub async fn create_budget(&self, tx: &mut PgConnection, actor: &Actor<'_>, b: &Budget) -> Result<Budget, ServiceError> {
        let mut v = Vec::new();
        let program = b.program.strip_prefix("programs/").unwrap_or_default();
        if !is_code(program, 40) {
            v.push(FieldViolation::new("budget.program", "must be programs/{program}, the program's code in intake (programs/work4life)"));
        }
        check_text(&mut v, "budget.display_name", &b.display_name, 200);
        let envelope = money::positive(&mut v, "budget.envelope", b.envelope.as_ref(), None);
        refuse_if_any(v)?;
        let (currency, amount) = envelope.unwrap_or_default();
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO budgets (id, program, display_name, currency, envelope_minor, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(program)
        .bind(b.display_name.trim())
        .bind(&currency)
        .bind(amount)
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::conflict(e, "budgets_program_key", "BUDGET_EXISTS", format!("a budget of programs/{program}")))?;
        ledger::post(
            tx,
            &NewPosting {
                budget: id,
                kind: "funding",
                memo: format!("envelope of programs/{program}: {}", money::format(&currency, amount)),
                award: None,
                disbursement: None,
                reverses: None,
                debit: ledger::unallocated_account(id),
                credit: ledger::envelope_account(id),
                amount_minor: amount,
            },
        )
        .await?;
        actor
            .record(tx, "grants.CreateBudget", format!("budgets/{id}"), serde_json::json!({ "program": program, "envelope_minor": amount }))
            .await?;
        self.budget(tx, id, None).await
    }

    /// A budget with its figures at `as_of`.
    pub async fn budget(&self, conn: &mut PgConnection, id: Uuid, as_of: Option<OffsetDateTime>) -> Result<Budget, ServiceError> {
        let row: BudgetRow =
            sqlx::query_as("SELECT id, program, display_name, currency, envelope_minor, created_at FROM budgets WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("budgets/{id}")))?;
        let at = as_of.unwrap_or_else(OffsetDateTime::now_utc);
        let kinds: Vec<(String, String)> =
            sqlx::query_as("SELECT code, kind FROM budget_lines WHERE budget_id = $1").bind(id).fetch_all(&mut *conn).await?;
        let mut total = LineMoney::default();
        let mut beneficiary = LineMoney::default();
        for (code, m) in ledger::lines_money(conn, id, Some(at)).await? {
            total.add(&m);
            if kinds.iter().any(|(c, k)| *c == code && k == "beneficiary_funds") {
                beneficiary.add(&m);
            }
        }
        Ok(Budget {
            name: format!("budgets/{}", row.id),
            program: format!("programs/{}", row.program),
            display_name: row.display_name,
            envelope: Some(money(&row.currency, row.envelope_minor)),
            figures: Some(total.figures(&row.currency)),
            planned_beneficiary_share_bp: share_bp(beneficiary.allocated(), row.envelope_minor),
            disbursed_beneficiary_share_bp: share_bp(beneficiary.disbursed, row.envelope_minor),
            beneficiary_share_target_bp: BENEFICIARY_SHARE_TARGET_BP,
            create_time: Some(timestamp(row.created_at)),
            as_of: Some(timestamp(at)),
        })
    }

    /// GetBudget.
    pub async fn get_budget(&self, name: &str, as_of: Option<&prost_types::Timestamp>) -> Result<Budget, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "budgets", name));
        let as_of = as_of.and_then(|t| gather(&mut v, from_timestamp("as_of", t)));
        refuse_if_any(v)?;
        let mut conn = self.pool.acquire().await?;
        self.budget(&mut conn, id.unwrap_or_default(), as_of).await
    }

    /// ListBudgets, by creation.
    pub async fn list_budgets(
        &self,
        program: &str,
        page_size_wanted: i32,
        page_token: &str,
    ) -> Result<(Vec<Budget>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(page_size_wanted)).unwrap_or_default();
        let filter = format!("budgets|{program}");
        let after: Option<Uuid> = gather(&mut v, self.page_tokens.decode(page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM budgets WHERE ($1 = '' OR 'programs/' || program = $1) AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(program)
        .bind(after)
        .bind(i64::from(size) + 1)
        .fetch_all(&mut *conn)
        .await?;
        let (ids, token) = next_page(ids, size, &self.page_tokens, &filter, |id| *id);
        let mut budgets = Vec::new();
        for id in ids {
            budgets.push(self.budget(&mut conn, id, None).await?);
        }
        Ok((budgets, token))
    }

    /// CreateBudgetLine: allocates the line from the envelope.
    pub async fn create_line(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        parent: &str,
        code: &str,
        l: &BudgetLine,
    ) -> Result<BudgetLine, ServiceError> {
        let mut v = Vec::new();
        let budget = gather(&mut v, parse_name("parent", "budgets", parent));
        if !is_code(code, 40) {
            v.push(FieldViolation::new("line_id", "must be 2 to 40 lower-case letters, digits or _, starting with a letter"));
        }
        check_text(&mut v, "line.display_name", &l.display_name, 200);
        check_text(&mut v, "line.heading", &l.heading, 200);
        let kind = kind_code(l.kind);
        if kind.is_none() {
            v.push(FieldViolation::new("line.kind", "is required: BENEFICIARY_FUNDS, COACHING or OPERATIONS"));
        }
        for (field, value) in [("line.window", &l.window), ("line.zone", &l.zone)] {
            if !value.is_empty() && !is_code(value, 60) {
                v.push(FieldViolation::new(field, "must be a code (lower-case letters, digits, _) or empty"));
            }
        }
        let partner = if l.partner.is_empty() { None } else { gather(&mut v, parse_name("line.partner", "organizations", &l.partner)) };
        let allocation = money::positive(&mut v, "line.allocation", l.allocation.as_ref(), None);
        refuse_if_any(v)?;
        let budget = budget.unwrap_or_default();
        let (currency, amount) = allocation.unwrap_or_default();
        let budget_currency = currency_of(tx, budget).await?;
        if currency != budget_currency {
            return Err(ServiceError::invalid(
                "line.allocation.currency_code",
                format!("must be {budget_currency}, the budget's currency"),
            ));
        }
        let reserved: Option<i64> = sqlx::query_scalar(
            "UPDATE budgets SET allocated_minor = allocated_minor + $2 WHERE id = $1 AND $2 <= envelope_minor - allocated_minor \
             RETURNING allocated_minor",
        )
        .bind(budget)
        .bind(amount)
        .fetch_optional(&mut *tx)
        .await?;
        if reserved.is_none() {
            let (envelope, allocated): (i64, i64) = sqlx::query_as("SELECT envelope_minor, allocated_minor FROM budgets WHERE id = $1")
                .bind(budget)
                .fetch_one(&mut *tx)
                .await?;
            return Err(ServiceError::precondition(
                "ENVELOPE_EXCEEDED",
                "BUDGET",
                format!("budgets/{budget}"),
                format!(
                    "the envelope has {} unallocated; the line asks for {}",
                    money::format(&currency, envelope - allocated),
                    money::format(&currency, amount)
                ),
            ));
        }
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO budget_lines (id, budget_id, code, display_name, kind, heading, window_code, zone, partner, allocated_minor) \
             VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), $9, $10)",
        )
        .bind(id)
        .bind(budget)
        .bind(code)
        .bind(l.display_name.trim())
        .bind(kind)
        .bind(l.heading.trim())
        .bind(&l.window)
        .bind(&l.zone)
        .bind(partner)
        .bind(amount)
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::conflict(e, "budget_lines_budget_id_code_key", "LINE_EXISTS", format!("budgets/{budget}/lines/{code}")))?;
        ledger::post(
            tx,
            &NewPosting {
                budget,
                kind: "allocation",
                memo: format!("allocation of line {code}: {}", money::format(&currency, amount)),
                award: None,
                disbursement: None,
                reverses: None,
                debit: ledger::line_account(budget, code, Stage::Available),
                credit: ledger::unallocated_account(budget),
                amount_minor: amount,
            },
        )
        .await?;
        actor
            .record(
                tx,
                "grants.CreateBudgetLine",
                format!("budgets/{budget}/lines/{code}"),
                serde_json::json!({ "allocation_minor": amount }),
            )
            .await?;
        let row = line_by_id(tx, id).await?;
        self.line(tx, &row, None).await
    }

    /// A line with its figures at `as_of`.
    pub async fn line(&self, conn: &mut PgConnection, row: &LineRow, as_of: Option<OffsetDateTime>) -> Result<BudgetLine, ServiceError> {
        let m = ledger::line_money(conn, row.budget_id, &row.code, as_of).await?;
        Ok(BudgetLine {
            name: row.name(),
            display_name: row.display_name.clone(),
            kind: kind_wire(&row.kind) as i32,
            heading: row.heading.clone(),
            window: row.window_code.clone().unwrap_or_default(),
            zone: row.zone.clone().unwrap_or_default(),
            partner: row.partner.map(|p| format!("organizations/{p}")).unwrap_or_default(),
            allocation: Some(money(&row.currency, row.allocated_minor)),
            figures: Some(m.figures(&row.currency)),
            create_time: Some(timestamp(row.created_at)),
        })
    }

    /// GetBudgetLine.
    pub async fn get_line(&self, name: &str, as_of: Option<&prost_types::Timestamp>) -> Result<BudgetLine, ServiceError> {
        let mut v = Vec::new();
        let parsed = gather(&mut v, parse_line_name("name", name));
        let as_of = as_of.and_then(|t| gather(&mut v, from_timestamp("as_of", t)));
        refuse_if_any(v)?;
        let (budget, code) = parsed.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let row = fetch_line(&mut conn, budget, &code).await?.ok_or_else(|| ServiceError::NotFound(name.to_string()))?;
        self.line(&mut conn, &row, as_of).await
    }

    /// ListBudgetLines, by code.
    pub async fn list_lines(
        &self,
        parent: &str,
        page_size_wanted: i32,
        page_token: &str,
    ) -> Result<(Vec<BudgetLine>, String), ServiceError> {
        let mut v = Vec::new();
        let budget = gather(&mut v, parse_name("parent", "budgets", parent));
        let size = gather(&mut v, page_size(page_size_wanted)).unwrap_or_default();
        let filter = format!("lines|{parent}");
        let after: Option<String> = gather(&mut v, self.page_tokens.decode(page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let budget = budget.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        currency_of(&mut conn, budget).await?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("{LINE_SELECT} WHERE l.budget_id = "));
        qb.push_bind(budget);
        if let Some(after) = after {
            qb.push(" AND l.code > ").push_bind(after);
        }
        qb.push(" ORDER BY l.code LIMIT ").push_bind(i64::from(size) + 1);
        let rows: Vec<LineRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        let (rows, token) = next_page(rows, size, &self.page_tokens, &filter, |l| l.code.clone());
        let mut lines = Vec::new();
        for row in &rows {
            lines.push(self.line(&mut conn, row, None).await?);
        }
        Ok((lines, token))
    }
}
