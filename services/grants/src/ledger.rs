//! The double-entry ledger: every movement of money is a posting of balanced entries (debits
//! positive, credits negative) in minor units of the budget's currency. The database refuses an
//! unbalanced posting at COMMIT and any UPDATE or DELETE; balances at any instant are sums of
//! entries up to it.
//!
//! Accounts of a budget `b` and its line `l`:
//! - `budgets/b/envelope` (credited by the donor's funding), `budgets/b/unallocated`;
//! - `budgets/b/lines/l/available` → `committed` (awards) → `in_payment` (sent to the bank)
//!   → `disbursed` (confirmed paid).

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    ServiceError,
    pagination::{next_page, page_size},
    wire::{from_timestamp, gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::grants::{AccountBalance, BudgetFigures, LedgerEntry, ListPostingsRequest, Posting};

use crate::{Grants, money::money};

/// The stages of a line's money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Allocated, not committed.
    Available,
    /// Reserved by awards.
    Committed,
    /// Sent to the bank.
    InPayment,
    /// Paid.
    Disbursed,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Available, Stage::Committed, Stage::InPayment, Stage::Disbursed];

    fn suffix(self) -> &'static str {
        match self {
            Stage::Available => "available",
            Stage::Committed => "committed",
            Stage::InPayment => "in_payment",
            Stage::Disbursed => "disbursed",
        }
    }
}

/// `budgets/{b}/envelope`.
pub fn envelope_account(budget: Uuid) -> String {
    format!("budgets/{budget}/envelope")
}

/// `budgets/{b}/unallocated`.
pub fn unallocated_account(budget: Uuid) -> String {
    format!("budgets/{budget}/unallocated")
}

/// `budgets/{b}/lines/{l}/{stage}`.
pub fn line_account(budget: Uuid, line: &str, stage: Stage) -> String {
    format!("budgets/{budget}/lines/{line}/{}", stage.suffix())
}

/// One posting to write.
#[derive(Debug)]
pub struct NewPosting {
    /// The budget.
    pub budget: Uuid,
    /// `funding`, `allocation`, `commitment`, `release`, `disbursement`, `payment`, `reversal`.
    pub kind: &'static str,
    /// For a person.
    pub memo: String,
    /// The award concerned.
    pub award: Option<Uuid>,
    /// The disbursement concerned.
    pub disbursement: Option<Uuid>,
    /// The posting reversed.
    pub reverses: Option<Uuid>,
    /// Debit this account…
    pub debit: String,
    /// …credit that one…
    pub credit: String,
    /// …by this amount (positive).
    pub amount_minor: i64,
}

/// Writes a two-entry posting in `tx`; returns its id.
pub async fn post(tx: &mut PgConnection, p: &NewPosting) -> Result<Uuid, ServiceError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "WITH p AS (INSERT INTO postings (id, budget_id, kind, award_id, disbursement_id, reverses, memo) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, posted_at) \
         INSERT INTO entries (posting_id, line_no, budget_id, account, amount_minor, posted_at, award_id) \
         SELECT p.id, e.line_no, $2, e.account, e.amount, p.posted_at, $4 FROM p, \
         UNNEST($8::smallint[], $9::text[], $10::bigint[]) AS e (line_no, account, amount)",
    )
    .bind(id)
    .bind(p.budget)
    .bind(p.kind)
    .bind(p.award)
    .bind(p.disbursement)
    .bind(p.reverses)
    .bind(&p.memo)
    .bind([1i16, 2])
    .bind([p.debit.as_str(), p.credit.as_str()])
    .bind([p.amount_minor, -p.amount_minor])
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// Balances of `accounts` of `budget` at `as_of` (now when `None`), in the given order.
pub async fn balances_of(
    conn: &mut PgConnection,
    budget: Uuid,
    accounts: &[String],
    as_of: Option<OffsetDateTime>,
) -> Result<Vec<i64>, ServiceError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT account, sum(amount_minor)::bigint FROM entries WHERE budget_id = $1 AND account = ANY($2) \
         AND ($3::timestamptz IS NULL OR posted_at <= $3) GROUP BY account",
    )
    .bind(budget)
    .bind(accounts)
    .bind(as_of)
    .fetch_all(&mut *conn)
    .await?;
    Ok(accounts.iter().map(|a| rows.iter().find(|(n, _)| n == a).map_or(0, |(_, b)| *b)).collect())
}

/// Every account of `budget` with its balance at `as_of`.
pub async fn all_balances(
    conn: &mut PgConnection,
    budget: Uuid,
    as_of: Option<OffsetDateTime>,
) -> Result<Vec<(String, i64)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT account, sum(amount_minor)::bigint FROM entries WHERE budget_id = $1 \
         AND ($2::timestamptz IS NULL OR posted_at <= $2) GROUP BY account ORDER BY account",
    )
    .bind(budget)
    .bind(as_of)
    .fetch_all(&mut *conn)
    .await?)
}

/// A line's stages at an instant, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineMoney {
    /// Allocated, not committed.
    pub available: i64,
    /// Reserved, not sent.
    pub committed: i64,
    /// Sent, not confirmed.
    pub in_payment: i64,
    /// Paid.
    pub disbursed: i64,
}

impl LineMoney {
    /// The line's allocation.
    pub fn allocated(&self) -> i64 {
        self.available + self.committed + self.in_payment + self.disbursed
    }

    /// Adds another line's figures.
    pub fn add(&mut self, o: &LineMoney) {
        self.available += o.available;
        self.committed += o.committed;
        self.in_payment += o.in_payment;
        self.disbursed += o.disbursed;
    }

    /// On the wire: `committed` counts what awards reserved, paid and in payment included.
    pub fn figures(&self, currency: &str) -> BudgetFigures {
        BudgetFigures {
            allocated: Some(money(currency, self.allocated())),
            committed: Some(money(currency, self.committed + self.in_payment + self.disbursed)),
            disbursed: Some(money(currency, self.disbursed)),
            available: Some(money(currency, self.available)),
            in_payment: Some(money(currency, self.in_payment)),
        }
    }
}

/// The stages of `line` at `as_of`.
pub async fn line_money(
    conn: &mut PgConnection,
    budget: Uuid,
    line: &str,
    as_of: Option<OffsetDateTime>,
) -> Result<LineMoney, ServiceError> {
    let accounts: Vec<String> = Stage::ALL.iter().map(|s| line_account(budget, line, *s)).collect();
    let b = balances_of(conn, budget, &accounts, as_of).await?;
    Ok(LineMoney { available: b[0], committed: b[1], in_payment: b[2], disbursed: b[3] })
}

/// The stages of every line of `budget` at `as_of`, by line code.
pub async fn lines_money(
    conn: &mut PgConnection,
    budget: Uuid,
    as_of: Option<OffsetDateTime>,
) -> Result<Vec<(String, LineMoney)>, ServiceError> {
    let prefix = format!("budgets/{budget}/lines/");
    let mut out: Vec<(String, LineMoney)> = Vec::new();
    for (account, balance) in all_balances(conn, budget, as_of).await? {
        let Some((line, stage)) = account.strip_prefix(&prefix).and_then(|rest| rest.rsplit_once('/')) else { continue };
        let i = match out.iter().position(|(l, _)| l == line) {
            Some(i) => i,
            None => {
                out.push((line.to_string(), LineMoney::default()));
                out.len() - 1
            }
        };
        let m = &mut out[i].1;
        match stage {
            "available" => m.available = balance,
            "committed" => m.committed = balance,
            "in_payment" => m.in_payment = balance,
            "disbursed" => m.disbursed = balance,
            _ => {}
        }
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct PostingRow {
    id: Uuid,
    seq: i64,
    kind: String,
    posted_at: OffsetDateTime,
    award_id: Option<Uuid>,
    disbursement_id: Option<Uuid>,
    reverses: Option<Uuid>,
    memo: String,
}

impl Grants {
    /// ListPostings, oldest first.
    pub async fn list_postings(&self, r: &ListPostingsRequest) -> Result<(Vec<Posting>, String), ServiceError> {
        let mut v = Vec::new();
        let budget = gather(&mut v, parse_name("budget", "budgets", &r.budget));
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let award = if r.award.is_empty() { None } else { gather(&mut v, parse_name("award", "awards", &r.award)) };
        let as_of = r.as_of.as_ref().and_then(|t| gather(&mut v, from_timestamp("as_of", t)));
        let filter = format!("postings|{}|{}|{}|{:?}", r.budget, r.account, r.award, r.as_of);
        let after: Option<i64> = gather(&mut v, self.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let budget = budget.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let currency = crate::budgets::currency_of(&mut conn, budget).await?;
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT id, seq, kind, posted_at, award_id, disbursement_id, reverses, memo FROM postings p WHERE budget_id = ",
        );
        qb.push_bind(budget);
        if let Some(a) = award {
            qb.push(" AND award_id = ").push_bind(a);
        }
        if !r.account.is_empty() {
            qb.push(" AND EXISTS (SELECT 1 FROM entries e WHERE e.posting_id = p.id AND e.account = ")
                .push_bind(r.account.clone())
                .push(")");
        }
        if let Some(t) = as_of {
            qb.push(" AND posted_at <= ").push_bind(t);
        }
        if let Some(seq) = after {
            qb.push(" AND seq > ").push_bind(seq);
        }
        qb.push(" ORDER BY seq LIMIT ").push_bind(i64::from(size) + 1);
        let rows: Vec<PostingRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        let (rows, token) = next_page(rows, size, &self.page_tokens, &filter, |p| p.seq);
        let ids: Vec<Uuid> = rows.iter().map(|p| p.id).collect();
        let entries: Vec<(Uuid, String, i64)> =
            sqlx::query_as("SELECT posting_id, account, amount_minor FROM entries WHERE posting_id = ANY($1) ORDER BY posting_id, line_no")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        let postings = rows
            .into_iter()
            .map(|p| Posting {
                name: format!("postings/{}", p.id),
                kind: p.kind,
                post_time: Some(timestamp(p.posted_at)),
                award: p.award_id.map(|a| format!("awards/{a}")).unwrap_or_default(),
                disbursement: p.disbursement_id.map(|d| format!("disbursements/{d}")).unwrap_or_default(),
                reverses: p.reverses.map(|r| format!("postings/{r}")).unwrap_or_default(),
                memo: p.memo,
                entries: entries
                    .iter()
                    .filter(|(id, _, _)| *id == p.id)
                    .map(|(_, account, amount)| LedgerEntry { account: account.clone(), amount: Some(money(&currency, *amount)) })
                    .collect(),
            })
            .collect();
        Ok((postings, token))
    }

    /// GetBalances.
    pub async fn get_balances(
        &self,
        budget: &str,
        as_of: Option<&prost_types::Timestamp>,
    ) -> Result<(Vec<AccountBalance>, OffsetDateTime), ServiceError> {
        let mut v = Vec::new();
        let budget = gather(&mut v, parse_name("budget", "budgets", budget));
        let as_of = as_of.and_then(|t| gather(&mut v, from_timestamp("as_of", t)));
        refuse_if_any(v)?;
        let budget = budget.unwrap_or_default();
        let mut conn = self.pool.acquire().await?;
        let currency = crate::budgets::currency_of(&mut conn, budget).await?;
        let at = as_of.unwrap_or_else(OffsetDateTime::now_utc);
        let balances = all_balances(&mut conn, budget, Some(at))
            .await?
            .into_iter()
            .map(|(account, b)| AccountBalance { account, balance: Some(money(&currency, b)) })
            .collect();
        Ok((balances, at))
    }
}
