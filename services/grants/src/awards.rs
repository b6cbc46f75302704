//! Awards for accepted applications: start-up grants with a tranche schedule and work bursaries
//! paid monthly. Creating an award reserves its full amount on its line with one guarded UPDATE
//! (the row lock serialises concurrent awards; the table's CHECK is the last word) and posts the
//! commitment in the same transaction. Amendments and cancellations release or reserve the
//! difference the same way. Tranches become payable when their condition is met: a verified
//! coaching milestone, a day, or a bursary month that is over and confirmed.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    auth::Principal,
    pagination::{next_page, page_size},
    wire::{check_etag, etag, format_date, gather, parse_date, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::grants::{
    AmendAwardRequest, Amendment, Award, AwardChanged, AwardCreated, AwardKind, AwardState, Bursary, ListAwardsRequest, Payee,
    PaymentMethod, ReleaseCondition, Tranche, TranchePayable, TrancheState, release_condition::Condition as WireCondition,
};

use crate::{
    Grants,
    budgets::{self, LineRow, parse_line_name},
    emit,
    ledger::{self, NewPosting, Stage},
    money::{self, Rate, money},
    scope::{self, Scope},
};

/// Most tranches an award may have (a bursary has one per month).
const MAX_TRANCHES: usize = 36;
/// Most months of a bursary.
const MAX_MONTHS: i32 = 36;
/// The program's days are counted in Morocco.
pub const PROGRAM_TIME_ZONE: &str = "Africa/Casablanca";

/// What makes a tranche payable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A coaching milestone code.
    Milestone(String),
    /// A day.
    Date(Date),
    /// A bursary month (its first day).
    BursaryMonth(Date),
}

impl Condition {
    fn kind(&self) -> &'static str {
        match self {
            Condition::Milestone(_) => "milestone",
            Condition::Date(_) => "date",
            Condition::BursaryMonth(_) => "bursary_month",
        }
    }

    fn milestone(&self) -> Option<&str> {
        match self {
            Condition::Milestone(m) => Some(m),
            _ => None,
        }
    }

    fn day(&self) -> Option<Date> {
        match self {
            Condition::Date(d) | Condition::BursaryMonth(d) => Some(*d),
            Condition::Milestone(_) => None,
        }
    }

    fn from_row(kind: &str, milestone: Option<&str>, day: Option<Date>) -> Self {
        match (kind, milestone, day) {
            ("milestone", Some(m), _) => Condition::Milestone(m.to_string()),
            ("bursary_month", _, Some(d)) => Condition::BursaryMonth(d),
            (_, _, d) => Condition::Date(d.unwrap_or(Date::MIN)),
        }
    }

    fn wire(&self) -> ReleaseCondition {
        ReleaseCondition {
            condition: Some(match self {
                Condition::Milestone(m) => WireCondition::Milestone(m.clone()),
                Condition::Date(d) => WireCondition::ReleaseDate(format_date(*d)),
                Condition::BursaryMonth(d) => WireCondition::BursaryMonth(format_date(*d)),
            }),
        }
    }

    /// `milestone:<code>`, `date:<day>`, `bursary_month:<day>` (events).
    fn label(&self) -> String {
        match self {
            Condition::Milestone(m) => format!("milestone:{m}"),
            Condition::Date(d) => format!("date:{}", format_date(*d)),
            Condition::BursaryMonth(d) => format!("bursary_month:{}", format_date(*d)),
        }
    }
}

fn is_milestone_code(s: &str) -> bool {
    (2..=60).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn condition(v: &mut Vec<FieldViolation>, field: &str, c: Option<&ReleaseCondition>) -> Option<Condition> {
    let field = format!("{field}.condition");
    match c.and_then(|c| c.condition.as_ref()) {
        None => {
            v.push(FieldViolation::new(&field, "is required: a milestone, a release_date or a bursary_month"));
            None
        }
        Some(WireCondition::Milestone(m)) => {
            if is_milestone_code(m) {
                Some(Condition::Milestone(m.clone()))
            } else {
                v.push(FieldViolation::new(format!("{field}.milestone"), "must be a coaching milestone code (business_plan_validated)"));
                None
            }
        }
        Some(WireCondition::ReleaseDate(d)) => match parse_date(&format!("{field}.release_date"), d) {
            Ok(d) => Some(Condition::Date(d)),
            Err(e) => {
                v.push(e);
                None
            }
        },
        Some(WireCondition::BursaryMonth(d)) => match parse_date(&format!("{field}.bursary_month"), d) {
            Ok(d) if d.day() == 1 => Some(Condition::BursaryMonth(d)),
            Ok(_) => {
                v.push(FieldViolation::new(format!("{field}.bursary_month"), "must be the first day of a month"));
                None
            }
            Err(e) => {
                v.push(e);
                None
            }
        },
    }
}

/// One tranche asked for.
#[derive(Clone, Debug)]
pub struct PlannedTranche {
    /// Existing number (amendments), 0 for a new one.
    pub number: i32,
    /// Amount in the award's currency.
    pub amount: i64,
    /// Its condition.
    pub condition: Condition,
}

fn tranches(v: &mut Vec<FieldViolation>, field: &str, list: &[Tranche], currency: Option<&str>) -> Vec<PlannedTranche> {
    if list.is_empty() {
        v.push(FieldViolation::new(field, "must hold at least one tranche"));
    }
    if list.len() > MAX_TRANCHES {
        v.push(FieldViolation::new(field, format!("must hold at most {MAX_TRANCHES} tranches")));
    }
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if t.number < 0 {
            v.push(FieldViolation::new(format!("{f}.number"), "must be an existing tranche's number, or 0 for a new one"));
        }
        let amount = money::positive(v, &format!("{f}.amount"), t.amount.as_ref(), currency);
        let c = condition(v, &f, t.condition.as_ref());
        if let (Some((_, amount)), Some(condition)) = (amount, c) {
            out.push(PlannedTranche { number: t.number, amount, condition });
        }
    }
    out
}

/// The payee as given.
#[derive(Clone, Debug)]
struct PlannedPayee {
    method: &'static str,
    holder: String,
    account: String,
}

fn payee(v: &mut Vec<FieldViolation>, p: Option<&Payee>) -> Option<PlannedPayee> {
    let Some(p) = p else {
        v.push(FieldViolation::new("award.payee", "is required: how the beneficiaries are paid"));
        return None;
    };
    let method = match PaymentMethod::try_from(p.method) {
        Ok(PaymentMethod::BankTransfer) => Some("bank_transfer"),
        Ok(PaymentMethod::MobileMoney) => Some("mobile_money"),
        _ => {
            v.push(FieldViolation::new("award.payee.method", "is required: BANK_TRANSFER or MOBILE_MONEY"));
            None
        }
    };
    let holder = p.holder_name.trim();
    if holder.is_empty() || holder.chars().count() > 140 || holder.chars().any(char::is_control) {
        v.push(FieldViolation::new(
            "award.payee.holder_name",
            "is required: the holder's name as the bank knows it (at most 140 characters)",
        ));
    }
    let compact: String = p.account.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    let account = match method {
        Some("bank_transfer") => {
            let rib = compact.len() == 24 && compact.bytes().all(|b| b.is_ascii_digit());
            let iban = (15..=34).contains(&compact.len())
                && compact.bytes().take(2).all(|b| b.is_ascii_uppercase())
                && compact.bytes().skip(2).take(2).all(|b| b.is_ascii_digit())
                && compact.bytes().all(|b| b.is_ascii_alphanumeric());
            if !(rib || iban) {
                v.push(FieldViolation::new("award.payee.account", "must be a RIB (24 digits) or an IBAN for a bank transfer"));
            }
            compact
        }
        Some(_) => match work4life_platform::contact::normalize_phone("award.payee.account", &p.account) {
            Ok(Some(phone)) => phone,
            Ok(None) => {
                v.push(FieldViolation::new("award.payee.account", "is required: the wallet's phone number"));
                String::new()
            }
            Err(e) => {
                v.push(e);
                String::new()
            }
        },
        None => compact,
    };
    Some(PlannedPayee { method: method?, holder: holder.to_string(), account })
}

/// A bursary as given.
#[derive(Clone, Debug)]
struct PlannedBursary {
    monthly: i64,
    months: i32,
    employer: Uuid,
    start: Date,
}

/// A validated CreateAward.
#[derive(Debug)]
struct NewAward {
    line: (Uuid, String),
    application: Uuid,
    kind: &'static str,
    currency: String,
    amount: i64,
    tranches: Vec<PlannedTranche>,
    bursary: Option<PlannedBursary>,
    payee: PlannedPayee,
    rate: Option<Rate>,
}

fn add_months(d: Date, months: i32) -> Date {
    let total = d.year() * 12 + (d.month() as i32 - 1) + months;
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).unwrap_or(Month::January);
    Date::from_calendar_date(total.div_euclid(12), month, 1).unwrap_or(d)
}

fn validate(a: &Award) -> Result<NewAward, ServiceError> {
    let mut v = Vec::new();
    let line = gather(&mut v, parse_line_name("award.budget_line", &a.budget_line));
    let application = gather(&mut v, parse_name("award.application", "applications", &a.application));
    let kind = match AwardKind::try_from(a.kind) {
        Ok(AwardKind::StartupGrant) => Some("startup_grant"),
        Ok(AwardKind::WorkBursary) => Some("work_bursary"),
        _ => {
            v.push(FieldViolation::new("award.kind", "is required: STARTUP_GRANT or WORK_BURSARY"));
            None
        }
    };
    let amount = money::positive(&mut v, "award.amount", a.amount.as_ref(), None);
    let currency = amount.as_ref().map(|(c, _)| c.clone());
    let mut planned = Vec::new();
    let mut bursary = None;
    match kind {
        Some("startup_grant") => {
            if a.bursary.is_some() {
                v.push(FieldViolation::new("award.bursary", "must be empty for a start-up grant"));
            }
            planned = tranches(&mut v, "award.tranches", &a.tranches, currency.as_deref());
            if planned.iter().any(|t| matches!(t.condition, Condition::BursaryMonth(_))) {
                v.push(FieldViolation::new("award.tranches", "bursary months belong to work bursaries"));
            }
            if planned.iter().any(|t| t.number != 0) {
                v.push(FieldViolation::new("award.tranches", "numbers are given by the service: leave them 0"));
            }
        }
        Some(_) => {
            if !a.tranches.is_empty() {
                v.push(FieldViolation::new(
                    "award.tranches",
                    "must be empty for a work bursary: one tranche per month is made from `bursary`",
                ));
            }
            match &a.bursary {
                None => v.push(FieldViolation::new("award.bursary", "is required for a work bursary")),
                Some(b) => {
                    let monthly = money::positive(&mut v, "award.bursary.monthly_amount", b.monthly_amount.as_ref(), currency.as_deref());
                    if !(1..=MAX_MONTHS).contains(&b.months) {
                        v.push(FieldViolation::new("award.bursary.months", format!("must be 1 to {MAX_MONTHS}")));
                    }
                    let employer = gather(&mut v, parse_name("award.bursary.employer", "organizations", &b.employer));
                    let start = match parse_date("award.bursary.start_date", &b.start_date) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            v.push(e);
                            None
                        }
                    };
                    if let (Some((_, monthly)), Some(employer), Some(start)) = (monthly, employer, start)
                        && (1..=MAX_MONTHS).contains(&b.months)
                    {
                        let first = Date::from_calendar_date(start.year(), start.month(), 1).unwrap_or(start);
                        planned = (0..b.months)
                            .map(|i| PlannedTranche {
                                number: 0,
                                amount: monthly,
                                condition: Condition::BursaryMonth(add_months(first, i)),
                            })
                            .collect();
                        bursary = Some(PlannedBursary { monthly, months: b.months, employer, start });
                    }
                }
            }
        }
        None => {}
    }
    if let Some((c, total)) = &amount
        && !planned.is_empty()
    {
        let sum: i128 = planned.iter().map(|t| i128::from(t.amount)).sum();
        if sum != i128::from(*total) {
            let field = if bursary.is_some() { "award.amount" } else { "award.tranches" };
            v.push(FieldViolation::new(
                field,
                format!("the tranches sum to {}; the award is {}", money::format(c, sum as i64), money::format(c, *total)),
            ));
        }
    }
    let payee = payee(&mut v, a.payee.as_ref());
    let rate = a.exchange_rate.as_ref().and_then(|r| Rate::parse(&mut v, "award.exchange_rate", r));
    refuse_if_any(v)?;
    let (currency, amount) = amount.unwrap_or_default();
    Ok(NewAward {
        line: line.unwrap_or_default(),
        application: application.unwrap_or_default(),
        kind: kind.unwrap_or_default(),
        currency,
        amount,
        tranches: planned,
        bursary,
        payee: payee.ok_or_else(|| ServiceError::invalid("award.payee", "is required"))?,
        rate,
    })
}

/// Converts each tranche into the line's currency.
fn line_amounts(
    field: &str,
    tranches: &[PlannedTranche],
    currency: &str,
    line_currency: &str,
    rate: Option<&Rate>,
) -> Result<Vec<i64>, ServiceError> {
    let mut v = Vec::new();
    let mut out = Vec::new();
    for (i, t) in tranches.iter().enumerate() {
        let converted = match rate {
            None => Some(t.amount),
            Some(r) => r.convert(currency, t.amount),
        };
        match converted {
            Some(a) if a > 0 => out.push(a),
            _ => v.push(FieldViolation::new(format!("{field}[{i}].amount"), format!("converts to nothing in {line_currency}"))),
        }
    }
    refuse_if_any(v)?;
    Ok(out)
}

/// The sum of `amounts`, or INVALID_ARGUMENT on `field` when it is beyond any amount.
fn total(field: &str, amounts: &[i64]) -> Result<i64, ServiceError> {
    let sum: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
    i64::try_from(sum).map_err(|_| ServiceError::invalid(field, "the tranches sum beyond any amount this service can hold"))
}

/// Reserves `amount` more on a line, or FAILED_PRECONDITION naming the line and what is available.
pub async fn reserve(tx: &mut PgConnection, line: &LineRow, amount: i64) -> Result<(), ServiceError> {
    let reserved: Option<i64> = sqlx::query_scalar(
        "UPDATE budget_lines SET committed_minor = committed_minor + $2 WHERE id = $1 AND $2 <= allocated_minor - committed_minor \
         RETURNING committed_minor",
    )
    .bind(line.id)
    .bind(amount)
    .fetch_optional(&mut *tx)
    .await?;
    if reserved.is_some() {
        return Ok(());
    }
    let available: i64 = sqlx::query_scalar("SELECT allocated_minor - committed_minor FROM budget_lines WHERE id = $1")
        .bind(line.id)
        .fetch_one(&mut *tx)
        .await?;
    Err(ServiceError::precondition(
        "BUDGET_LINE_EXCEEDED",
        "BUDGET",
        line.name(),
        format!(
            "{} has {} available; this needs {}",
            line.name(),
            money::format(&line.currency, available),
            money::format(&line.currency, amount)
        ),
    ))
}

/// Gives `amount` back to a line's available money.
pub async fn release(tx: &mut PgConnection, line: &LineRow, amount: i64) -> Result<(), ServiceError> {
    sqlx::query("UPDATE budget_lines SET committed_minor = committed_minor - $2 WHERE id = $1")
        .bind(line.id)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An award as stored.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct AwardRow {
    pub id: Uuid,
    pub line_id: Uuid,
    pub budget_id: Uuid,
    pub application_id: Uuid,
    pub program: String,
    pub window_code: String,
    pub zone: String,
    pub partner: Option<Uuid>,
    pub kind: String,
    pub currency: String,
    pub amount_minor: i64,
    pub line_amount_minor: i64,
    pub rate: Option<String>,
    pub rate_from: Option<String>,
    pub rate_to: Option<String>,
    pub rate_source: Option<String>,
    pub rate_date: Option<Date>,
    pub bursary_monthly_minor: Option<i64>,
    pub bursary_months: Option<i32>,
    pub employer: Option<Uuid>,
    pub bursary_start: Option<Date>,
    pub payee_method: String,
    pub payee_holder: String,
    pub payee_hint: String,
    pub state: String,
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Accounts of the beneficiaries (for scope).
    pub accounts: Vec<Uuid>,
}

const AWARD_SELECT: &str = "SELECT a.id, a.line_id, a.budget_id, a.application_id, a.program, a.window_code, a.zone, a.partner, a.kind, \
     a.currency, a.amount_minor, a.line_amount_minor, a.rate, a.rate_from, a.rate_to, a.rate_source, a.rate_date, a.bursary_monthly_minor, \
     a.bursary_months, a.employer, a.bursary_start, a.payee_method, a.payee_holder, a.payee_hint, a.state, a.cancel_reason, a.version, \
     a.created_at, a.updated_at, \
     ARRAY(SELECT b.account_id FROM award_beneficiaries b WHERE b.award_id = a.id AND b.account_id IS NOT NULL ORDER BY b.position) AS accounts \
     FROM awards a";

impl AwardRow {
    /// The stored rate, if the award is converted.
    pub fn rate(&self) -> Option<Rate> {
        let wire = work4life_proto::types::ExchangeRate {
            from_currency_code: self.rate_from.clone()?,
            to_currency_code: self.rate_to.clone()?,
            rate: self.rate.clone()?,
            source: self.rate_source.clone()?,
            effective_date: format_date(self.rate_date?),
        };
        Rate::parse(&mut Vec::new(), "rate", &wire)
    }
}

/// An award by id, locked FOR UPDATE when `lock`; NOT_FOUND outside `scope`.
pub async fn fetch(conn: &mut PgConnection, scope: &Scope, id: Uuid, lock: bool) -> Result<AwardRow, ServiceError> {
    let sql = format!("{AWARD_SELECT} WHERE a.id = $1{}", if lock { " FOR UPDATE OF a" } else { "" });
    let row: Option<AwardRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
    row.filter(|r| scope.covers(&r.zone, r.partner, &r.accounts)).ok_or_else(|| ServiceError::NotFound(format!("awards/{id}")))
}

/// A tranche as stored, with its live disbursement.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct TrancheRow {
    pub award_id: Uuid,
    pub number: i32,
    pub amount_minor: i64,
    pub line_amount_minor: i64,
    pub condition_kind: String,
    pub milestone: Option<String>,
    pub release_date: Option<Date>,
    pub state: String,
    pub payable_at: Option<OffsetDateTime>,
    pub confirmed_by: Option<String>,
    pub disbursement: Option<Uuid>,
}

impl TrancheRow {
    fn condition(&self) -> Condition {
        Condition::from_row(&self.condition_kind, self.milestone.as_deref(), self.release_date)
    }

    /// `awards/{a}/tranches/{n}`.
    pub fn name(&self) -> String {
        format!("awards/{}/tranches/{}", self.award_id, self.number)
    }
}

const TRANCHE_SELECT: &str = "SELECT t.award_id, t.number, t.amount_minor, t.line_amount_minor, t.condition_kind, t.milestone, t.release_date, \
     t.state, t.payable_at, t.confirmed_by, \
     (SELECT d.id FROM disbursements d WHERE d.award_id = t.award_id AND d.tranche_number = t.number \
      AND d.state IN ('pending_approval', 'approved', 'batched', 'sent', 'paid')) AS disbursement FROM tranches t";

/// Tranches of awards, by award and number.
pub async fn tranches_of(conn: &mut PgConnection, awards: &[Uuid], lock: bool) -> Result<Vec<TrancheRow>, ServiceError> {
    let sql =
        format!("{TRANCHE_SELECT} WHERE t.award_id = ANY($1) ORDER BY t.award_id, t.number{}", if lock { " FOR UPDATE OF t" } else { "" });
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(awards).fetch_all(conn).await?)
}

/// Parses `awards/{uuid}/tranches/{n}`.
pub fn parse_tranche_name(field: &str, name: &str) -> Result<(Uuid, i32), ServiceError> {
    let bad = || ServiceError::invalid(field, "must be awards/{award}/tranches/{number}");
    let rest = name.strip_prefix("awards/").ok_or_else(bad)?;
    let (award, number) = rest.split_once("/tranches/").ok_or_else(bad)?;
    let award = Uuid::parse_str(award).map_err(|_| bad())?;
    let number = number.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    Ok((award, number))
}

fn tranche_state(s: &str) -> TrancheState {
    match s {
        "scheduled" => TrancheState::Scheduled,
        "payable" => TrancheState::Payable,
        "held" => TrancheState::Held,
        "in_payment" => TrancheState::InPayment,
        "paid" => TrancheState::Paid,
        "cancelled" => TrancheState::Cancelled,
        _ => TrancheState::Unspecified,
    }
}

const AWARD_STATES: [(AwardState, &str); 3] =
    [(AwardState::Active, "active"), (AwardState::Cancelled, "cancelled"), (AwardState::Completed, "completed")];

/// The people an award concerns, for events: applicants, accounts and languages.
#[derive(Debug, Default)]
pub struct Recipients {
    pub applicants: Vec<String>,
    pub accounts: Vec<String>,
    pub languages: Vec<String>,
}

/// The beneficiaries of `award`.
pub async fn recipients(conn: &mut PgConnection, award: Uuid) -> Result<Recipients, ServiceError> {
    let rows: Vec<(Uuid, Option<Uuid>, Vec<String>)> =
        sqlx::query_as("SELECT applicant_id, account_id, languages FROM award_beneficiaries WHERE award_id = $1 ORDER BY position")
            .bind(award)
            .fetch_all(conn)
            .await?;
    let mut r = Recipients::default();
    for (applicant, account, languages) in rows {
        r.applicants.push(format!("applicants/{applicant}"));
        if let Some(a) = account {
            r.accounts.push(format!("accounts/{a}"));
        }
        for l in languages {
            if !r.languages.contains(&l) {
                r.languages.push(l);
            }
        }
    }
    Ok(r)
}

/// Emits `grants.tranche.payable` for tranches that just became payable.
pub async fn announce_payable(tx: &mut PgConnection, award: &AwardRow, tranches: &[TrancheRow]) -> Result<(), ServiceError> {
    if tranches.is_empty() {
        return Ok(());
    }
    let who = recipients(tx, award.id).await?;
    for t in tranches {
        let event = TranchePayable {
            tranche: t.name(),
            award: format!("awards/{}", award.id),
            application: format!("applications/{}", award.application_id),
            amount: Some(money(&award.currency, t.amount_minor)),
            condition: t.condition().label(),
            beneficiaries: who.applicants.clone(),
            beneficiary_accounts: who.accounts.clone(),
            languages: who.languages.clone(),
        };
        emit(tx, "grants.tranche.payable", &t.name(), "TranchePayable", &event).await?;
    }
    Ok(())
}

/// The local date of the program.
pub async fn program_today(conn: &mut PgConnection) -> Result<Date, ServiceError> {
    Ok(sqlx::query_scalar("SELECT (now() AT TIME ZONE $1)::date").bind(PROGRAM_TIME_ZONE).fetch_one(conn).await?)
}

/// Decided application, as intake's event told grants.
#[derive(sqlx::FromRow)]
struct Decided {
    program: String,
    window_code: String,
    zone: String,
    accepted: bool,
    employer: Option<Uuid>,
}

impl Grants {
    /// Awards on the wire.
    pub async fn awards(&self, conn: &mut PgConnection, rows: &[AwardRow]) -> Result<Vec<Award>, ServiceError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let tranches = tranches_of(conn, &ids, false).await?;
        let amendments: Vec<(Uuid, i64, i64, String, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT award_id, previous_minor, new_minor, reason, amended_by, amended_at FROM award_amendments WHERE award_id = ANY($1) \
             ORDER BY award_id, seq",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let people: Vec<(Uuid, Uuid)> =
            sqlx::query_as("SELECT award_id, applicant_id FROM award_beneficiaries WHERE award_id = ANY($1) ORDER BY award_id, position")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        let line_ids: Vec<Uuid> = rows.iter().map(|r| r.line_id).collect();
        let lines: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(
            "SELECT l.id, l.budget_id, l.code, b.currency FROM budget_lines l JOIN budgets b ON b.id = l.budget_id WHERE l.id = ANY($1)",
        )
        .bind(&line_ids)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let line = lines.iter().find(|l| l.0 == r.line_id);
                let line_currency = line.map_or(r.currency.clone(), |l| l.3.clone());
                let own: Vec<&TrancheRow> = tranches.iter().filter(|t| t.award_id == r.id).collect();
                let disbursed: i64 = own.iter().filter(|t| t.state == "paid").map(|t| t.amount_minor).sum();
                Award {
                    name: format!("awards/{}", r.id),
                    budget_line: line.map(|l| format!("budgets/{}/lines/{}", l.1, l.2)).unwrap_or_default(),
                    application: format!("applications/{}", r.application_id),
                    kind: if r.kind == "work_bursary" { AwardKind::WorkBursary } else { AwardKind::StartupGrant } as i32,
                    amount: Some(money(&r.currency, r.amount_minor)),
                    tranches: own
                        .iter()
                        .map(|t| Tranche {
                            name: t.name(),
                            number: t.number,
                            amount: Some(money(&r.currency, t.amount_minor)),
                            condition: Some(t.condition().wire()),
                            state: tranche_state(&t.state) as i32,
                            line_amount: Some(money(&line_currency, t.line_amount_minor)),
                            payable_time: t.payable_at.map(timestamp),
                            confirmed_by: t.confirmed_by.clone().unwrap_or_default(),
                            disbursement: t.disbursement.map(|d| format!("disbursements/{d}")).unwrap_or_default(),
                        })
                        .collect(),
                    bursary: match (r.bursary_monthly_minor, r.bursary_months, r.employer, r.bursary_start) {
                        (Some(m), Some(n), Some(e), Some(s)) => Some(Bursary {
                            monthly_amount: Some(money(&r.currency, m)),
                            months: n,
                            employer: format!("organizations/{e}"),
                            start_date: format_date(s),
                        }),
                        _ => None,
                    },
                    payee: Some(Payee {
                        method: if r.payee_method == "mobile_money" { PaymentMethod::MobileMoney } else { PaymentMethod::BankTransfer }
                            as i32,
                        holder_name: r.payee_holder.clone(),
                        account: String::new(),
                        account_hint: r.payee_hint.clone(),
                    }),
                    exchange_rate: r.rate().map(|x| x.wire()),
                    line_amount: Some(money(&line_currency, r.line_amount_minor)),
                    disbursed: Some(money(&r.currency, disbursed)),
                    state: AWARD_STATES.iter().find(|(_, c)| *c == r.state).map_or(AwardState::Unspecified, |(s, _)| *s) as i32,
                    program: format!("programs/{}", r.program),
                    window: r.window_code.clone(),
                    zone: r.zone.clone(),
                    beneficiaries: people.iter().filter(|(a, _)| *a == r.id).map(|(_, p)| format!("applicants/{p}")).collect(),
                    amendments: amendments
                        .iter()
                        .filter(|a| a.0 == r.id)
                        .map(|a| Amendment {
                            previous_amount: Some(money(&r.currency, a.1)),
                            new_amount: Some(money(&r.currency, a.2)),
                            reason: a.3.clone(),
                            amended_by: a.4.clone(),
                            amend_time: Some(timestamp(a.5)),
                        })
                        .collect(),
                    cancel_reason: r.cancel_reason.clone().unwrap_or_default(),
                    create_time: Some(timestamp(r.created_at)),
                    update_time: Some(timestamp(r.updated_at)),
                    etag: etag(r.version),
                }
            })
            .collect())
    }

    async fn award(&self, conn: &mut PgConnection, id: Uuid) -> Result<Award, ServiceError> {
        let row = fetch(conn, &Scope::everything(), id, false).await?;
        Ok(self.awards(conn, &[row]).await?.remove(0))
    }

    /// CreateAward.
    pub async fn create_award(&self, tx: &mut PgConnection, actor: &Actor<'_>, a: &Award) -> Result<Award, ServiceError> {
        let new = validate(a)?;
        let (budget, code) = &new.line;
        let line = budgets::fetch_line(tx, *budget, code)
            .await?
            .ok_or_else(|| ServiceError::invalid("award.budget_line", format!("{} does not exist", a.budget_line)))?;
        match (&new.rate, new.currency == line.currency) {
            (Some(_), true) => {
                return Err(ServiceError::invalid(
                    "award.exchange_rate",
                    format!("must be empty: the award and the line are both in {}", line.currency),
                ));
            }
            (None, false) => {
                return Err(ServiceError::invalid(
                    "award.exchange_rate",
                    format!("is required: the award is in {}, the line in {}", new.currency, line.currency),
                ));
            }
            (Some(r), false) if !r.links(&new.currency, &line.currency) => {
                return Err(ServiceError::invalid(
                    "award.exchange_rate",
                    format!("must convert between {} and {}", new.currency, line.currency),
                ));
            }
            _ => {}
        }
        let line_amounts = line_amounts("award.tranches", &new.tranches, &new.currency, &line.currency, new.rate.as_ref())?;
        let line_total = total("award.tranches", &line_amounts)?;
        let decided: Option<Decided> =
            sqlx::query_as("SELECT program, window_code, zone, accepted, employer FROM decided_applications WHERE application_id = $1")
                .bind(new.application)
                .fetch_optional(&mut *tx)
                .await?;
        let application = format!("applications/{}", new.application);
        let Some(decided) = decided.filter(|d| d.accepted) else {
            return Err(ServiceError::precondition(
                "APPLICATION_NOT_ACCEPTED",
                "STATE",
                application,
                "intake has not accepted this application (or its decision has not reached grants yet)",
            ));
        };
        if !scope::award_managers(actor.principal).covers(&decided.zone, line.partner) {
            return Err(ServiceError::PermissionDenied(
                "program managers and finance officers of the application's zone and the line's organisation create awards",
            ));
        }
        let bursary_window = decided.window_code == "job_placement";
        if bursary_window != (new.kind == "work_bursary") {
            return Err(ServiceError::invalid(
                "award.kind",
                format!(
                    "a {} application is funded with a {}",
                    decided.window_code,
                    if bursary_window { "WORK_BURSARY" } else { "STARTUP_GRANT" }
                ),
            ));
        }
        if let (Some(b), Some(e)) = (&new.bursary, decided.employer)
            && b.employer != e
        {
            return Err(ServiceError::invalid(
                "award.bursary.employer",
                format!("must be organizations/{e}, the employer of the placement"),
            ));
        }
        let mismatch = if line.program != decided.program {
            Some(format!("its budget funds programs/{}; the application belongs to programs/{}", line.program, decided.program))
        } else if line.window_code.as_ref().is_some_and(|w| *w != decided.window_code) {
            Some(format!(
                "it funds the {} window; the application is in {}",
                line.window_code.clone().unwrap_or_default(),
                decided.window_code
            ))
        } else if line.zone.as_ref().is_some_and(|z| *z != decided.zone) {
            Some(format!("it funds the {} zone; the application is in {}", line.zone.clone().unwrap_or_default(), decided.zone))
        } else if line.kind != "beneficiary_funds" {
            Some("it is not a beneficiary-funds line".to_string())
        } else {
            None
        };
        if let Some(why) = mismatch {
            return Err(ServiceError::precondition(
                "LINE_DOES_NOT_FUND",
                "BUDGET",
                line.name(),
                format!("{} cannot fund {application}: {why}", line.name()),
            ));
        }
        reserve(tx, &line, line_total).await?;
        let id = Uuid::now_v7();
        let sealed = self.vault.seal(id, "payee_account", &new.payee.account)?;
        let hint: String = new.payee.account.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        sqlx::query(
            "INSERT INTO awards (id, line_id, budget_id, application_id, program, window_code, zone, partner, kind, currency, amount_minor, \
             line_amount_minor, rate, rate_from, rate_to, rate_source, rate_date, bursary_monthly_minor, bursary_months, employer, bursary_start, \
             payee_method, payee_holder, payee_account, payee_key_id, payee_hint, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
        )
        .bind(id)
        .bind(line.id)
        .bind(line.budget_id)
        .bind(new.application)
        .bind(&decided.program)
        .bind(&decided.window_code)
        .bind(&decided.zone)
        .bind(line.partner)
        .bind(new.kind)
        .bind(&new.currency)
        .bind(new.amount)
        .bind(line_total)
        .bind(new.rate.as_ref().map(|r| r.text.clone()))
        .bind(new.rate.as_ref().map(|r| r.from.clone()))
        .bind(new.rate.as_ref().map(|r| r.to.clone()))
        .bind(new.rate.as_ref().map(|r| r.source.clone()))
        .bind(new.rate.as_ref().map(|r| r.date))
        .bind(new.bursary.as_ref().map(|b| b.monthly))
        .bind(new.bursary.as_ref().map(|b| b.months))
        .bind(new.bursary.as_ref().map(|b| b.employer))
        .bind(new.bursary.as_ref().map(|b| b.start))
        .bind(new.payee.method)
        .bind(&new.payee.holder)
        .bind(sealed)
        .bind(self.vault.current_key_id())
        .bind(format!("••••{hint}"))
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::conflict(e, "awards_one_live_per_application", "AWARD_EXISTS", format!("a live award for {application}")))?;
        sqlx::query(
            "INSERT INTO award_beneficiaries (award_id, position, applicant_id, account_id, languages, gender, nationality, age_band) \
             SELECT $1, position, applicant_id, account_id, languages, gender, nationality, age_band FROM decided_members WHERE application_id = $2",
        )
        .bind(id)
        .bind(new.application)
        .execute(&mut *tx)
        .await?;
        insert_tranches(tx, id, 1, &new.tranches, &line_amounts).await?;
        ledger::post(
            tx,
            &NewPosting {
                budget: line.budget_id,
                kind: "commitment",
                memo: format!("award awards/{id} for {application}"),
                award: Some(id),
                disbursement: None,
                reverses: None,
                debit: ledger::line_account(line.budget_id, &line.code, Stage::Committed),
                credit: ledger::line_account(line.budget_id, &line.code, Stage::Available),
                amount_minor: line_total,
            },
        )
        .await?;
        let who = recipients(tx, id).await?;
        let event = AwardCreated {
            award: format!("awards/{id}"),
            application: application.clone(),
            program: format!("programs/{}", decided.program),
            window: decided.window_code.clone(),
            zone: decided.zone.clone(),
            beneficiaries: who.applicants,
            amount: Some(money(&new.currency, new.amount)),
            create_time: Some(timestamp(OffsetDateTime::now_utc())),
            beneficiary_accounts: who.accounts,
            languages: who.languages,
        };
        emit(tx, "grants.award.created", &event.award, "AwardCreated", &event).await?;
        actor
            .record(
                tx,
                "grants.CreateAward",
                format!("awards/{id}"),
                serde_json::json!({ "application": application, "line": line.name(), "amount_minor": new.amount, "currency": new.currency }),
            )
            .await?;
        // A date tranche due today is payable at once.
        self.release_due_in(tx, Some(id)).await?;
        self.award(tx, id).await
    }

    /// GetAward.
    pub async fn get_award(&self, p: &Principal, name: &str) -> Result<Award, ServiceError> {
        let id = parse_name("name", "awards", name)?;
        let mut conn = self.pool.acquire().await?;
        let row = fetch(&mut conn, &Scope::read(p), id, false).await?;
        Ok(self.awards(&mut conn, &[row]).await?.remove(0))
    }

    /// ListAwards, newest first.
    pub async fn list_awards(&self, p: &Principal, r: &ListAwardsRequest) -> Result<(Vec<Award>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let line = if r.budget_line.is_empty() { None } else { gather(&mut v, parse_line_name("budget_line", &r.budget_line)) };
        let application =
            if r.application.is_empty() { None } else { gather(&mut v, parse_name("application", "applications", &r.application)) };
        let state = match AwardState::try_from(r.state) {
            Ok(AwardState::Unspecified) => None,
            Ok(s) => AWARD_STATES.iter().find(|(w, _)| *w == s).map(|(_, c)| *c),
            Err(_) => {
                v.push(FieldViolation::new("state", "is not an award state"));
                None
            }
        };
        let filter = format!("awards|{}|{}|{}|{}", r.budget_line, r.zone, r.state, r.application);
        let after: Option<(OffsetDateTime, Uuid)> = gather(&mut v, self.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let scope = Scope::read(p);
        if scope.staff.is_empty() && scope.account.is_none() {
            return Err(ServiceError::PermissionDenied(
                "awards are read by finance staff, program managers, auditors and their beneficiaries",
            ));
        }
        let mut qb = QueryBuilder::<Postgres>::new(format!("{AWARD_SELECT} WHERE TRUE"));
        if let Some((budget, code)) = line {
            qb.push(" AND a.line_id = (SELECT id FROM budget_lines WHERE budget_id = ")
                .push_bind(budget)
                .push(" AND code = ")
                .push_bind(code)
                .push(")");
        }
        if !r.zone.is_empty() {
            qb.push(" AND a.zone = ").push_bind(r.zone.clone());
        }
        if let Some(s) = state {
            qb.push(" AND a.state = ").push_bind(s);
        }
        if let Some(app) = application {
            qb.push(" AND a.application_id = ").push_bind(app);
        }
        scope.push(&mut qb, "id");
        if let Some((t, id)) = after {
            qb.push(" AND (a.created_at, a.id) < (").push_bind(t).push(", ").push_bind(id).push(")");
        }
        qb.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<AwardRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        let (rows, token) = next_page(rows, size, &self.page_tokens, &filter, |a| (a.created_at, a.id));
        Ok((self.awards(&mut conn, &rows).await?, token))
    }

    /// The award `id` locked for a change by the caller: NOT_FOUND outside their reading scope,
    /// PERMISSION_DENIED when they may read but not manage it, FAILED_PRECONDITION unless active.
    async fn award_to_change(&self, tx: &mut PgConnection, p: &Principal, id: Uuid, etag_sent: &str) -> Result<AwardRow, ServiceError> {
        let row = fetch(tx, &Scope::read(p), id, true).await?;
        if !scope::award_managers(p).covers(&row.zone, row.partner) {
            return Err(ServiceError::PermissionDenied(
                "program managers and finance officers of the award's zone and organisation change awards",
            ));
        }
        check_etag(etag_sent, row.version)?;
        if row.state != "active" {
            return Err(ServiceError::precondition(
                "AWARD_NOT_ACTIVE",
                "STATE",
                format!("awards/{id}"),
                format!("the award is {}", row.state),
            ));
        }
        Ok(row)
    }

    /// AmendAward.
    pub async fn amend_award(&self, tx: &mut PgConnection, actor: &Actor<'_>, r: &AmendAwardRequest) -> Result<Award, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "awards", &r.name));
        let planned = tranches(&mut v, "tranches", &r.tranches, None);
        if r.reason.trim().is_empty() || r.reason.chars().count() > 1000 {
            v.push(FieldViolation::new("reason", "is required (at most 1000 characters)"));
        }
        if r.etag.is_empty() {
            v.push(FieldViolation::new("etag", "is required: the award's etag as read"));
        }
        let mut seen = Vec::new();
        for (i, t) in planned.iter().enumerate() {
            if t.number > 0 && seen.contains(&t.number) {
                v.push(FieldViolation::new(format!("tranches[{i}].number"), "appears twice"));
            }
            seen.push(t.number);
        }
        refuse_if_any(v)?;
        let id = id.unwrap_or_default();
        let award = self.award_to_change(tx, actor.principal, id, &r.etag).await?;
        let mut v = Vec::new();
        for (i, t) in r.tranches.iter().enumerate() {
            if let Some(m) = &t.amount
                && m.currency_code != award.currency
            {
                v.push(FieldViolation::new(
                    format!("tranches[{i}].amount.currency_code"),
                    format!("must be {}, the award's currency", award.currency),
                ));
            }
        }
        let existing = tranches_of(tx, &[id], true).await?;
        for (i, t) in planned.iter().enumerate() {
            if t.number > 0 && !existing.iter().any(|e| e.number == t.number && e.state != "cancelled") {
                v.push(FieldViolation::new(format!("tranches[{i}].number"), format!("the award has no live tranche {}", t.number)));
            }
            if award.kind == "startup_grant" && matches!(t.condition, Condition::BursaryMonth(_)) {
                v.push(FieldViolation::new(format!("tranches[{i}].condition"), "bursary months belong to work bursaries"));
            }
        }
        refuse_if_any(v)?;
        for e in existing.iter().filter(|e| e.state == "in_payment" || e.state == "paid") {
            let kept = planned.iter().any(|t| t.number == e.number && t.amount == e.amount_minor && t.condition == e.condition());
            if !kept {
                return Err(ServiceError::precondition(
                    "TRANCHE_IN_PAYMENT",
                    "STATE",
                    e.name(),
                    "a tranche in payment or paid must appear unchanged in the new schedule",
                ));
            }
        }
        let line = budgets::line_by_id(tx, award.line_id).await?;
        let rate = award.rate();
        let new_line = line_amounts("tranches", &planned, &award.currency, &line.currency, rate.as_ref())?;
        let old_total: i64 = existing.iter().filter(|e| e.state != "cancelled").map(|e| e.amount_minor).sum();
        let old_line: i64 = existing.iter().filter(|e| e.state != "cancelled").map(|e| e.line_amount_minor).sum();
        let new_total = total("tranches", &planned.iter().map(|t| t.amount).collect::<Vec<_>>())?;
        let new_line_total = total("tranches", &new_line)?;
        let delta = new_line_total - old_line;
        let (budget, code) = (line.budget_id, line.code.clone());
        if delta > 0 {
            reserve(tx, &line, delta).await?;
        } else if delta < 0 {
            release(tx, &line, -delta).await?;
        }
        if delta != 0 {
            let (kind, debit, credit) = if delta > 0 {
                ("commitment", Stage::Committed, Stage::Available)
            } else {
                ("release", Stage::Available, Stage::Committed)
            };
            ledger::post(
                tx,
                &NewPosting {
                    budget,
                    kind,
                    memo: format!("amendment of awards/{id}: {}", r.reason.trim()),
                    award: Some(id),
                    disbursement: None,
                    reverses: None,
                    debit: ledger::line_account(budget, &code, debit),
                    credit: ledger::line_account(budget, &code, credit),
                    amount_minor: delta.abs(),
                },
            )
            .await?;
        }
        // Tranches left out are removed; those kept take their new amount and condition.
        for e in existing.iter().filter(|e| matches!(e.state.as_str(), "scheduled" | "payable" | "held")) {
            match planned.iter().position(|t| t.number == e.number) {
                None => {
                    sqlx::query("UPDATE tranches SET state = 'cancelled' WHERE award_id = $1 AND number = $2")
                        .bind(id)
                        .bind(e.number)
                        .execute(&mut *tx)
                        .await?;
                }
                Some(i) => {
                    let t = &planned[i];
                    let moved = t.condition != e.condition();
                    sqlx::query(
                        "UPDATE tranches SET amount_minor = $3, line_amount_minor = $4, condition_kind = $5, milestone = $6, release_date = $7, \
                         state = CASE WHEN $8 THEN 'scheduled' ELSE state END, payable_at = CASE WHEN $8 THEN NULL ELSE payable_at END \
                         WHERE award_id = $1 AND number = $2",
                    )
                    .bind(id)
                    .bind(e.number)
                    .bind(t.amount)
                    .bind(new_line[i])
                    .bind(t.condition.kind())
                    .bind(t.condition.milestone())
                    .bind(t.condition.day())
                    .bind(moved)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let next = existing.iter().map(|e| e.number).max().unwrap_or(0) + 1;
        let added: Vec<(PlannedTranche, i64)> =
            planned.iter().zip(&new_line).filter(|(t, _)| t.number == 0).map(|(t, l)| (t.clone(), *l)).collect();
        let (added_tranches, added_line): (Vec<PlannedTranche>, Vec<i64>) = added.into_iter().unzip();
        insert_tranches(tx, id, next, &added_tranches, &added_line).await?;
        sqlx::query("UPDATE awards SET amount_minor = $2, line_amount_minor = $3, version = version + 1, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(new_total)
            .bind(new_line_total)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO award_amendments (award_id, seq, previous_minor, new_minor, reason, amended_by) \
             SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM award_amendments WHERE award_id = $1",
        )
        .bind(id)
        .bind(old_total)
        .bind(new_total)
        .bind(r.reason.trim())
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await?;
        self.announce_change(tx, &award, "grants.award.amended", new_total, r.reason.trim()).await?;
        actor
            .record(
                tx,
                "grants.AmendAward",
                format!("awards/{id}"),
                serde_json::json!({ "previous_minor": old_total, "new_minor": new_total }),
            )
            .await?;
        self.release_due_in(tx, Some(id)).await?;
        self.award(tx, id).await
    }

    async fn announce_change(
        &self,
        tx: &mut PgConnection,
        award: &AwardRow,
        event_type: &str,
        amount: i64,
        reason: &str,
    ) -> Result<(), ServiceError> {
        let paid: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(amount_minor), 0)::bigint FROM tranches WHERE award_id = $1 AND state = 'paid'")
                .bind(award.id)
                .fetch_one(&mut *tx)
                .await?;
        let who = recipients(tx, award.id).await?;
        let event = AwardChanged {
            award: format!("awards/{}", award.id),
            application: format!("applications/{}", award.application_id),
            zone: award.zone.clone(),
            beneficiaries: who.applicants,
            beneficiary_accounts: who.accounts,
            languages: who.languages,
            amount: Some(money(&award.currency, amount)),
            disbursed: Some(money(&award.currency, paid)),
            reason: reason.to_string(),
        };
        emit(tx, event_type, &event.award, "AwardChanged", &event).await
    }

    /// CancelAward.
    pub async fn cancel_award(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        name: &str,
        reason: &str,
        etag_sent: &str,
    ) -> Result<Award, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "awards", name));
        if reason.trim().is_empty() || reason.chars().count() > 1000 {
            v.push(FieldViolation::new("reason", "is required (at most 1000 characters)"));
        }
        if etag_sent.is_empty() {
            v.push(FieldViolation::new("etag", "is required: the award's etag as read"));
        }
        refuse_if_any(v)?;
        let id = id.unwrap_or_default();
        let award = self.award_to_change(tx, actor.principal, id, etag_sent).await?;
        // Locked, so that an approval racing this cancellation either lands first (and is seen
        // here) or finds its disbursement withdrawn.
        let live: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, state FROM disbursements WHERE award_id = $1 AND state IN ('pending_approval', 'approved', 'batched', 'sent') \
             ORDER BY id FOR UPDATE",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let in_flight = live.iter().find(|(_, state)| state != "pending_approval").map(|(d, _)| *d);
        if let Some(d) = in_flight {
            return Err(ServiceError::precondition(
                "PAYMENT_IN_FLIGHT",
                "STATE",
                format!("disbursements/{d}"),
                "an approved or sent payment must be settled (paid or failed) before the award is cancelled",
            ));
        }
        sqlx::query("UPDATE disbursements SET state = 'withdrawn', failure_reason = $2, settled_at = now() WHERE award_id = $1 AND state = 'pending_approval'")
            .bind(id)
            .bind(format!("award cancelled: {}", reason.trim()))
            .execute(&mut *tx)
            .await?;
        let unpaid: i64 = sqlx::query_scalar(
            "WITH c AS (UPDATE tranches SET state = 'cancelled' WHERE award_id = $1 AND state NOT IN ('paid', 'cancelled') RETURNING line_amount_minor) \
             SELECT coalesce(sum(line_amount_minor), 0)::bigint FROM c",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let line = budgets::line_by_id(tx, award.line_id).await?;
        if unpaid > 0 {
            release(tx, &line, unpaid).await?;
            ledger::post(
                tx,
                &NewPosting {
                    budget: line.budget_id,
                    kind: "release",
                    memo: format!("cancellation of awards/{id}: {}", reason.trim()),
                    award: Some(id),
                    disbursement: None,
                    reverses: None,
                    debit: ledger::line_account(line.budget_id, &line.code, Stage::Available),
                    credit: ledger::line_account(line.budget_id, &line.code, Stage::Committed),
                    amount_minor: unpaid,
                },
            )
            .await?;
        }
        sqlx::query(
            "UPDATE awards SET state = 'cancelled', cancel_reason = $2, cancelled_at = now(), version = version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(reason.trim())
        .execute(&mut *tx)
        .await?;
        self.announce_change(tx, &award, "grants.award.cancelled", award.amount_minor, reason.trim()).await?;
        actor.record(tx, "grants.CancelAward", format!("awards/{id}"), serde_json::json!({ "released_minor": unpaid })).await?;
        self.award(tx, id).await
    }

    /// ConfirmBursaryMonth.
    pub async fn confirm_month(&self, tx: &mut PgConnection, actor: &Actor<'_>, name: &str) -> Result<Tranche, ServiceError> {
        let (id, number) = parse_tranche_name("tranche", name)?;
        let p = actor.principal;
        // The employer's partner system confirms for its own placements.
        let award = fetch(tx, &Scope::everything(), id, true).await?;
        let employer_system = p.roles.iter().any(|b| {
            b.role == "partner_system" && award.employer.is_some_and(|e| b.org.as_deref() == Some(format!("organizations/{e}").as_str()))
        });
        let staff = work4life_platform::scope::ZoneScope::of(p, &["admin"], &["officer", "program_manager"]);
        if !employer_system && !staff.covers(&award.zone, award.partner) {
            if Scope::read(p).covers(&award.zone, award.partner, &award.accounts) {
                return Err(ServiceError::PermissionDenied(
                    "bursary months are confirmed by the employer's system or officers of the zone",
                ));
            }
            return Err(ServiceError::NotFound(format!("awards/{id}")));
        }
        let t = tranches_of(tx, &[id], true)
            .await?
            .into_iter()
            .find(|t| t.number == number)
            .ok_or_else(|| ServiceError::NotFound(name.to_string()))?;
        if t.condition_kind != "bursary_month" {
            return Err(ServiceError::precondition("NOT_A_BURSARY_MONTH", "STATE", name.to_string(), "only bursary months are confirmed"));
        }
        if award.state != "active" {
            return Err(ServiceError::precondition(
                "AWARD_NOT_ACTIVE",
                "STATE",
                format!("awards/{id}"),
                format!("the award is {}", award.state),
            ));
        }
        let today = program_today(tx).await?;
        if t.release_date.is_some_and(|d| d > today) {
            return Err(ServiceError::precondition(
                "MONTH_NOT_STARTED",
                "STATE",
                name.to_string(),
                "a month is confirmed once it has begun",
            ));
        }
        if t.confirmed_by.is_none() {
            sqlx::query("UPDATE tranches SET confirmed_by = $3, confirmed_at = now() WHERE award_id = $1 AND number = $2")
                .bind(id)
                .bind(number)
                .bind(&p.subject)
                .execute(&mut *tx)
                .await?;
            actor.record(tx, "grants.ConfirmBursaryMonth", name.to_string(), serde_json::json!({})).await?;
            self.release_due_in(tx, Some(id)).await?;
        }
        let row = fetch(tx, &Scope::everything(), id, false).await?;
        let award = self.awards(tx, &[row]).await?.remove(0);
        award.tranches.into_iter().find(|t| t.number == number).ok_or_else(|| ServiceError::NotFound(name.to_string()))
    }

    /// Makes due tranches payable (and unconfirmed finished bursary months held), for every award
    /// or one; returns (payable, held).
    pub async fn release_due_in(&self, tx: &mut PgConnection, award: Option<Uuid>) -> Result<(i32, i32), ServiceError> {
        let today = program_today(tx).await?;
        // One award's own tranches by its key: a statement shared by both cases (`$2 IS NULL OR
        // award_id = $2`) gets a generic plan that reads every waiting tranche of the program,
        // while the caller holds its line's lock.
        let which = if award.is_some() { "t.award_id = $2" } else { "$2::uuid IS NULL" };
        // Rows another transaction holds are skipped, not waited for: the next run takes them, and
        // no lock order between this job and a request on the same award can deadlock.
        let held = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tranches SET state = 'held' WHERE (award_id, number) IN (SELECT t.award_id, t.number FROM tranches t \
             JOIN awards a ON a.id = t.award_id WHERE a.state = 'active' AND t.state = 'scheduled' AND t.condition_kind = 'bursary_month' \
             AND t.confirmed_at IS NULL AND (t.release_date + interval '1 month')::date <= $1 AND {which} \
             FOR UPDATE OF t SKIP LOCKED)"
        )))
        .bind(today)
        .bind(award)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let released: Vec<(Uuid, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE tranches SET state = 'payable', payable_at = now() WHERE (award_id, number) IN (SELECT t.award_id, t.number \
             FROM tranches t JOIN awards a ON a.id = t.award_id \
             WHERE a.state = 'active' AND {which} AND ( \
               (t.state = 'scheduled' AND t.condition_kind = 'date' AND t.release_date <= $1) OR \
               (t.state IN ('scheduled', 'held') AND t.condition_kind = 'bursary_month' AND t.confirmed_at IS NOT NULL \
                AND (t.release_date + interval '1 month')::date <= $1)) \
             FOR UPDATE OF t SKIP LOCKED) RETURNING award_id, number"
        )))
        .bind(today)
        .bind(award)
        .fetch_all(&mut *tx)
        .await?;
        self.announce_released(tx, &released).await?;
        Ok((released.len() as i32, held as i32))
    }

    /// Emits the payable events of `(award, number)` pairs.
    pub async fn announce_released(&self, tx: &mut PgConnection, released: &[(Uuid, i32)]) -> Result<(), ServiceError> {
        let mut awards: Vec<Uuid> = released.iter().map(|(a, _)| *a).collect();
        awards.sort();
        awards.dedup();
        for a in awards {
            let row = fetch(tx, &Scope::everything(), a, false).await?;
            let numbers: Vec<i32> = released.iter().filter(|(x, _)| *x == a).map(|(_, n)| *n).collect();
            let ts: Vec<TrancheRow> = tranches_of(tx, &[a], false).await?.into_iter().filter(|t| numbers.contains(&t.number)).collect();
            announce_payable(tx, &row, &ts).await?;
        }
        Ok(())
    }

    /// The periodic release across all awards, in its own transaction.
    pub async fn release_due(&self) -> Result<(i32, i32), ServiceError> {
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let counts = self.release_due_in(&mut tx, None).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// A verified coaching milestone makes the award's matching scheduled tranches payable.
    pub async fn milestone_verified(&self, tx: &mut PgConnection, award: Uuid, code: &str) -> Result<usize, ServiceError> {
        let released: Vec<(Uuid, i32)> = sqlx::query_as(
            "UPDATE tranches t SET state = 'payable', payable_at = now() FROM awards a WHERE a.id = t.award_id AND a.state = 'active' \
             AND t.award_id = $1 AND t.condition_kind = 'milestone' AND t.milestone = $2 AND t.state = 'scheduled' RETURNING t.award_id, t.number",
        )
        .bind(award)
        .bind(code)
        .fetch_all(&mut *tx)
        .await?;
        self.announce_released(tx, &released).await?;
        Ok(released.len())
    }
}

async fn insert_tranches(
    tx: &mut PgConnection,
    award: Uuid,
    first: i32,
    planned: &[PlannedTranche],
    line: &[i64],
) -> Result<(), ServiceError> {
    if planned.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i32> = (0..planned.len() as i32).map(|i| first + i).collect();
    let amounts: Vec<i64> = planned.iter().map(|t| t.amount).collect();
    let kinds: Vec<&str> = planned.iter().map(|t| t.condition.kind()).collect();
    let milestones: Vec<Option<&str>> = planned.iter().map(|t| t.condition.milestone()).collect();
    let days: Vec<Option<Date>> = planned.iter().map(|t| t.condition.day()).collect();
    sqlx::query(
        "INSERT INTO tranches (award_id, number, amount_minor, line_amount_minor, condition_kind, milestone, release_date) \
         SELECT $1, * FROM UNNEST($2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::date[])",
    )
    .bind(award)
    .bind(&numbers)
    .bind(&amounts)
    .bind(line)
    .bind(&kinds)
    .bind(&milestones)
    .bind(&days)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
