//! Awards: a start-up grant reserves its amount on its line with a commitment posting and tells
//! everyone; conversions at a recorded rate; the line's limit; who may be funded from which line;
//! work bursaries month by month (held, confirmed, payable); date and milestone tranches;
//! amendments and cancellations with their postings and events. The books balance after each.

mod common;

use common::*;
use tonic::{Code, Status};
use work4life_proto::{
    coaching::MilestoneVerified,
    grants::{
        AmendAwardRequest, Award, AwardChanged, AwardCreated, AwardState, CancelAwardRequest, ConfirmBursaryMonthRequest,
        DisbursementState, GetDisbursementRequest, ListPostingsRequest, PaymentMethod, Posting, ReleaseCondition,
        ReleaseDueTranchesRequest, ReleaseDueTranchesResponse, Tranche, TranchePayable, TrancheState, release_condition::Condition,
    },
    intake::{Outcome, Window},
    types::Money,
};

// ---------------------------------------------------------------------------------------------
// Helpers of this file.

/// `offset` days from today in the program's time zone, ISO 8601.
async fn day(f: &Fixture, offset: i32) -> String {
    sqlx::query_scalar("SELECT (((now() AT TIME ZONE 'Africa/Casablanca')::date) + $1::int)::text")
        .bind(offset)
        .fetch_one(&f.pool)
        .await
        .expect("day")
}

/// The first day of the month `offset` months from this one (program time zone), ISO 8601.
async fn month_start(f: &Fixture, offset: i32) -> String {
    sqlx::query_scalar(
        "SELECT (date_trunc('month', (now() AT TIME ZONE 'Africa/Casablanca')::date) + make_interval(months => $1::int))::date::text",
    )
    .bind(offset)
    .fetch_one(&f.pool)
    .await
    .expect("month")
}

fn money(currency: &str, amount_minor: i64) -> Money {
    Money { currency_code: currency.into(), amount_minor }
}

fn minor(m: &Option<Money>) -> i64 {
    m.as_ref().map_or(0, |m| m.amount_minor)
}

/// A tranche of an award as it is sent back in an amendment: number, amount and condition.
fn keep(t: &Tranche) -> Tranche {
    Tranche { number: t.number, amount: t.amount.clone(), condition: t.condition.clone(), ..Tranche::default() }
}

/// `keep` with another amount.
fn with_amount(t: &Tranche, amount_minor: i64) -> Tranche {
    Tranche { amount: Some(eur(amount_minor)), ..keep(t) }
}

/// The postings of `award`, oldest first, read by an admin.
async fn postings_of(f: &Fixture, award: &str) -> Vec<Posting> {
    f.client()
        .await
        .list_postings(bearer(
            ListPostingsRequest { budget: f.budget.clone(), award: award.into(), page_size: 500, ..ListPostingsRequest::default() },
            &f.admin,
        ))
        .await
        .expect("postings")
        .into_inner()
        .postings
}

/// Checks that `p` moves `amount` from one stage of `line` to another: (kind, debited stage, credited stage).
fn assert_posting(f: &Fixture, p: &Posting, kind: &str, line: &str, debit: &str, credit: &str, amount: i64) {
    assert_eq!(p.kind, kind, "{p:?}");
    let mut entries: Vec<(String, i64)> = p.entries.iter().map(|e| (e.account.clone(), minor(&e.amount))).collect();
    entries.sort();
    let mut want = vec![(format!("{}/{debit}", f.line(line)), amount), (format!("{}/{credit}", f.line(line)), -amount)];
    want.sort();
    assert_eq!(entries, want, "{kind} posting {p:?}");
}

async fn amend(f: &Fixture, jwt: &str, name: &str, tranches: Vec<Tranche>, reason: &str, etag: &str) -> Result<Award, Status> {
    f.client()
        .await
        .amend_award(bearer(
            AmendAwardRequest { name: name.into(), tranches, reason: reason.into(), etag: etag.into(), request_id: rid() },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().award.expect("award"))
}

async fn cancel(f: &Fixture, jwt: &str, name: &str, reason: &str, etag: &str) -> Result<Award, Status> {
    f.client()
        .await
        .cancel_award(bearer(CancelAwardRequest { name: name.into(), reason: reason.into(), etag: etag.into(), request_id: rid() }, jwt))
        .await
        .map(|r| r.into_inner().award.expect("award"))
}

async fn confirm(f: &Fixture, jwt: &str, tranche: &str) -> Result<Tranche, Status> {
    f.client()
        .await
        .confirm_bursary_month(bearer(ConfirmBursaryMonthRequest { tranche: tranche.into(), request_id: rid() }, jwt))
        .await
        .map(|r| r.into_inner().tranche.expect("tranche"))
}

async fn release_due(f: &Fixture, jwt: &str) -> Result<ReleaseDueTranchesResponse, Status> {
    f.client().await.release_due_tranches(bearer(ReleaseDueTranchesRequest {}, jwt)).await.map(|r| r.into_inner())
}

/// Asserts FAILED_PRECONDITION with this ErrorInfo reason and PreconditionFailure subject; returns the description.
fn assert_precondition(status: &Status, want_reason: &str, subject: &str) -> String {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), want_reason, "{status:?}");
    let p = preconditions(status);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, subject, "{p:?}");
    p[0].1.clone()
}

/// Asserts INVALID_ARGUMENT naming exactly these fields.
fn assert_invalid(status: &Status, want: &[&str]) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut got = fields(status);
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{status:?}");
}

fn states(a: &Award) -> Vec<TrancheState> {
    a.tranches.iter().map(|t| TrancheState::try_from(t.state).expect("state")).collect()
}

/// The `grants.tranche.payable` events of one tranche.
async fn payable_events(f: &Fixture, tranche: &str) -> Vec<TranchePayable> {
    f.events("grants.tranche.payable").await.iter().map(payload::<TranchePayable>).filter(|e| e.tranche == tranche).collect()
}

/// The milestone code of a milestone tranche.
fn milestone_of(t: &Tranche) -> String {
    match t.condition.as_ref().and_then(|c| c.condition.clone()) {
        Some(Condition::Milestone(m)) => m,
        other => panic!("not a milestone tranche: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Creation.

#[tokio::test]
async fn a_startup_grant_reserves_its_amount_on_the_line_and_is_announced() {
    let f = fresh().await;
    let (manager_subject, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    let (allocated, before) = f.line_counters(COLLECTIVE_TANGER).await;
    assert_eq!((allocated, before), (25_000_000, 0));

    let award = f
        .create_award(
            &manager,
            startup_award(
                &f.line(COLLECTIVE_TANGER),
                &app.application,
                vec![on_milestone(1_500_000, "business_plan_validated"), on_date(500_000, "2099-03-01")],
            ),
        )
        .await
        .expect("award");

    // The line's counter and the ledger agree on the reservation.
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 2_000_000);
    let postings = postings_of(&f, &award.name).await;
    assert_eq!(postings.len(), 1, "{postings:?}");
    assert_posting(&f, &postings[0], "commitment", COLLECTIVE_TANGER, "committed", "available", 2_000_000);
    assert_eq!(postings[0].award, award.name);

    // What the award says comes from intake's decision.
    assert_eq!(award.state, AwardState::Active as i32);
    assert_eq!(award.budget_line, f.line(COLLECTIVE_TANGER));
    assert_eq!(award.application, app.application);
    assert_eq!(award.beneficiaries, app.applicants, "the representative first");
    assert_eq!(award.program, "programs/work4life");
    assert_eq!(award.window, "collective_startup");
    assert_eq!(award.zone, "tanger");
    assert_eq!(award.amount, Some(eur(2_000_000)));
    assert_eq!(award.line_amount, Some(eur(2_000_000)));
    assert_eq!(award.exchange_rate, None);
    assert_eq!(award.tranches.len(), 2);
    assert_eq!(award.tranches[0].name, format!("{}/tranches/1", award.name));
    assert_eq!(award.tranches[1].name, format!("{}/tranches/2", award.name));
    assert_eq!(states(&award), vec![TrancheState::Scheduled, TrancheState::Scheduled]);
    let payee = award.payee.clone().expect("payee");
    assert_eq!(payee.account, "", "the account is never read back");
    assert_eq!(payee.account_hint, "••••1234");
    assert_eq!(payee.method, PaymentMethod::BankTransfer as i32);
    assert_eq!(f.get_award(&f.admin, &award.name).await.expect("get"), award, "a read gives what the creation answered");

    // The event tells coaching and notifications who and in which languages.
    let events = f.events("grants.award.created").await;
    assert_eq!(events.len(), 1);
    let e: AwardCreated = payload(&events[0]);
    assert_eq!(e.award, award.name);
    assert_eq!(e.application, app.application);
    assert_eq!(e.program, "programs/work4life");
    assert_eq!(e.window, "collective_startup");
    assert_eq!(e.zone, "tanger");
    assert_eq!(e.beneficiaries, app.applicants);
    assert_eq!(e.beneficiary_accounts, app.accounts);
    assert_eq!(e.languages, vec!["fr".to_string(), "ar".to_string()], "each language once, in the members' order");
    assert_eq!(e.amount, Some(eur(2_000_000)));

    // And the audit trail names who did it.
    let audit = f.audit("grants.CreateAward", &award.name).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, manager_subject);
    assert_eq!(audit[0].1["amount_minor"], 2_000_000);
    assert_eq!(audit[0].1["application"], app.application.as_str());
    f.assert_books_balance().await;
}

#[tokio::test]
async fn an_award_in_another_currency_is_converted_tranche_by_tranche_at_its_rate() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 2).await;
    let mad = |amount: i64, condition: Condition| Tranche {
        amount: Some(money("MAD", amount)),
        condition: Some(ReleaseCondition { condition: Some(condition) }),
        ..Tranche::default()
    };
    let tranches = vec![
        // 108,425.00 MAD at 10.8425 is exactly 10,000.00 EUR.
        mad(10_842_500, Condition::Milestone("business_plan_validated".into())),
        // 10,000.00 MAD is 922.2965 EUR: rounded up to 922.30.
        mad(1_000_000, Condition::Milestone("first_sale".into())),
        // 20,000.00 MAD is 1,844.5930 EUR: rounded down to 1,844.59.
        mad(2_000_000, Condition::ReleaseDate("2099-01-01".into())),
    ];
    let in_mad =
        Award { amount: Some(money("MAD", 13_842_500)), tranches, ..startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![]) };

    // Without a rate the line's currency cannot be reached; a rate where none is needed is refused too.
    let before = f.fingerprint().await;
    let missing = f.create_award(&manager, in_mad.clone()).await.expect_err("no rate");
    assert_invalid(&missing, &["award.exchange_rate"]);
    let same_currency = Award {
        exchange_rate: Some(eur_mad("10.8425")),
        ..startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![on_milestone(1_000_000, "business_plan_validated")])
    };
    let needless = f.create_award(&manager, same_currency).await.expect_err("a rate on a EUR award");
    assert_invalid(&needless, &["award.exchange_rate"]);
    assert_eq!(f.fingerprint().await, before, "refused awards write nothing");

    let award = f.create_award(&manager, Award { exchange_rate: Some(eur_mad("10.8425")), ..in_mad }).await.expect("converted award");
    assert_eq!(award.amount, Some(money("MAD", 13_842_500)));
    let line_amounts: Vec<Option<Money>> = award.tranches.iter().map(|t| t.line_amount.clone()).collect();
    assert_eq!(line_amounts, vec![Some(eur(1_000_000)), Some(eur(92_230)), Some(eur(184_459))]);
    let amounts: Vec<Option<Money>> = award.tranches.iter().map(|t| t.amount.clone()).collect();
    assert_eq!(amounts, vec![Some(money("MAD", 10_842_500)), Some(money("MAD", 1_000_000)), Some(money("MAD", 2_000_000))]);
    assert_eq!(award.line_amount, Some(eur(1_276_689)), "the sum of the converted tranches");
    assert_eq!(award.exchange_rate, Some(eur_mad("10.8425")), "the rate is kept with the award");
    assert_eq!(f.get_award(&f.admin, &award.name).await.expect("get").exchange_rate, Some(eur_mad("10.8425")));
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 1_276_689, "the line reserves euros");
    let postings = postings_of(&f, &award.name).await;
    assert_eq!(postings.len(), 1);
    assert_posting(&f, &postings[0], "commitment", COLLECTIVE_TANGER, "committed", "available", 1_276_689);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn an_award_beyond_what_the_line_has_left_is_refused_naming_the_line_and_what_is_available() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["oujda"]);
    let line = f.line("collective_oujda");
    let (allocated, _) = f.line_counters("collective_oujda").await;
    assert_eq!(allocated, 15_000_000);
    let first = f.accepted("oujda", 3).await;
    f.create_award(&manager, startup_award(&line, &first.application, vec![on_milestone(10_000_000, "business_plan_validated")]))
        .await
        .expect("first award");

    let second = f.accepted("oujda", 3).await;
    let before = f.fingerprint().await;
    let err = f
        .create_award(&manager, startup_award(&line, &second.application, vec![on_milestone(5_000_001, "business_plan_validated")]))
        .await
        .expect_err("one cent beyond the line");
    let description = assert_precondition(&err, "BUDGET_LINE_EXCEEDED", &line);
    assert!(description.contains("50000.00 EUR"), "the description names the amount available: {description}");
    assert_eq!(f.fingerprint().await, before, "nothing written");
    assert_eq!(f.line_counters("collective_oujda").await.1, 10_000_000);

    // Exactly what is left is still possible.
    f.create_award(&manager, startup_award(&line, &second.application, vec![on_milestone(5_000_000, "business_plan_validated")]))
        .await
        .expect("the rest of the line");
    assert_eq!(f.line_counters("collective_oujda").await.1, 15_000_000);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn only_accepted_applications_are_funded_once_from_a_line_that_funds_them() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let tanger = f.line(COLLECTIVE_TANGER);
    let rejected = f.decide(Window::CollectiveStartup, "tanger", 3, Outcome::Rejected).await;
    let accepted = f.accepted("tanger", 3).await;
    let placement = f.accepted_placement("tanger").await;
    let grant = |application: &str, line: &str| startup_award(line, application, vec![on_milestone(1_000_000, "business_plan_validated")]);

    let before = f.fingerprint().await;
    let err = f.create_award(&manager, grant(&rejected.application, &tanger)).await.expect_err("rejected");
    assert_precondition(&err, "APPLICATION_NOT_ACCEPTED", &rejected.application);
    let unknown = format!("applications/{}", uuid::Uuid::now_v7());
    let err = f.create_award(&manager, grant(&unknown, &tanger)).await.expect_err("unknown");
    assert_precondition(&err, "APPLICATION_NOT_ACCEPTED", &unknown);

    // A Tanger application on Oujda's line, and on the individual start-ups' line (another window).
    let oujda = f.line("collective_oujda");
    let err = f.create_award(&manager, grant(&accepted.application, &oujda)).await.expect_err("another zone's line");
    assert_precondition(&err, "LINE_DOES_NOT_FUND", &oujda);
    let individual = f.line(INDIVIDUAL);
    let err = f.create_award(&manager, grant(&accepted.application, &individual)).await.expect_err("another window's line");
    assert_precondition(&err, "LINE_DOES_NOT_FUND", &individual);

    // A job placement is funded with a work bursary.
    let err = f.create_award(&manager, grant(&placement.application, &f.line(WORK_BURSARIES))).await.expect_err("a grant for a placement");
    assert_invalid(&err, &["award.kind"]);
    assert_eq!(f.fingerprint().await, before, "refusals write nothing");

    // One live award per application, whatever the request id.
    let award = f.create_award(&manager, grant(&accepted.application, &tanger)).await.expect("award");
    let after_first = f.fingerprint().await;
    let err = f.create_award(&manager, grant(&accepted.application, &tanger)).await.expect_err("a second live award");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert_eq!(reason(&err), "AWARD_EXISTS");
    assert_eq!(f.fingerprint().await, after_first, "the second award wrote nothing");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 1_000_000);
    assert_eq!(f.get_award(&f.admin, &award.name).await.expect("get").state, AwardState::Active as i32);
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Tranches becoming payable.

#[tokio::test]
async fn bursary_months_are_held_until_confirmed_then_payable() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let placement = f.accepted_placement("tanger").await;
    let today = today(&f.pool).await;
    let start = month_start(&f, -3).await;
    assert!(start < today);
    let award = f.create_award(&manager, bursary_award(&f.line(WORK_BURSARIES), &placement, 300_000, 6, &start)).await.expect("bursary");
    assert_eq!(award.amount, Some(eur(1_800_000)));
    assert_eq!(f.line_counters(WORK_BURSARIES).await.1, 1_800_000);
    assert_eq!(award.tranches.len(), 6);
    let mut months = Vec::new();
    for offset in -3..3 {
        months.push(month_start(&f, offset).await);
    }
    for (t, month) in award.tranches.iter().zip(&months) {
        assert_eq!(t.amount, Some(eur(300_000)));
        assert_eq!(t.condition.as_ref().and_then(|c| c.condition.clone()), Some(Condition::BursaryMonth(month.clone())), "{t:?}");
    }

    // The finished months without a confirmation are held; the current and future ones wait.
    let released = release_due(&f, &f.admin).await.expect("release");
    assert_eq!(released.payable_count, 0, "nothing was confirmed");
    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    use TrancheState::{Held, Payable, Scheduled};
    assert_eq!(states(&a), vec![Held, Held, Held, Scheduled, Scheduled, Scheduled]);
    let tranche = |n: usize| a.tranches[n - 1].name.clone();

    // Who may not confirm: a coach sees nothing of the award; a checker of the zone reads it but may not confirm.
    let before = f.fingerprint().await;
    let (_, coach) = f.token("coach", Some(f.org), &["tanger"]);
    let err = confirm(&f, &coach, &tranche(1)).await.expect_err("a coach");
    assert_eq!(err.code(), Code::NotFound, "out of scope is NOT_FOUND: {err:?}");
    let (_, checker) = f.checker(&["tanger"]);
    let err = confirm(&f, &checker, &tranche(1)).await.expect_err("a checker");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let (_, other_zone) = f.token("officer", Some(f.org), &["oujda"]);
    let err = confirm(&f, &other_zone, &tranche(1)).await.expect_err("an officer of another zone");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let other_employer = format!("{}", uuid::Uuid::now_v7());
    let (_, stranger) = f.token("partner_system", Some(other_employer.parse().expect("uuid")), &[]);
    let err = confirm(&f, &stranger, &tranche(1)).await.expect_err("another employer's system");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // A month that has not begun cannot be confirmed.
    let (officer_subject, officer) = f.token("officer", Some(f.org), &["tanger"]);
    let err = confirm(&f, &officer, &tranche(6)).await.expect_err("a future month");
    assert_precondition(&err, "MONTH_NOT_STARTED", &tranche(6));
    assert_eq!(f.fingerprint().await, before, "refused confirmations write nothing");

    // An officer of the zone confirms a held month: it is payable.
    let t1 = confirm(&f, &officer, &tranche(1)).await.expect("officer confirms");
    assert_eq!(t1.state, Payable as i32);
    assert_eq!(t1.confirmed_by, officer_subject);
    // The employer's partner system confirms another.
    let employer: uuid::Uuid = placement.employer.trim_start_matches("organizations/").parse().expect("employer id");
    let (system_subject, system) = f.token("partner_system", Some(employer), &[]);
    let t2 = confirm(&f, &system, &tranche(2)).await.expect("employer confirms");
    assert_eq!(t2.state, Payable as i32);
    assert_eq!(t2.confirmed_by, system_subject);
    // The current month may be confirmed (it has begun) but is paid once it is over.
    let t4 = confirm(&f, &officer, &tranche(4)).await.expect("the current month");
    assert_eq!(t4.state, Scheduled as i32);
    assert_eq!(t4.confirmed_by, officer_subject);

    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(states(&a), vec![Payable, Payable, Held, Scheduled, Scheduled, Scheduled]);
    let released = release_due(&f, &f.admin).await.expect("release again");
    assert_eq!((released.payable_count, released.held_count), (0, 0), "nothing more is due");
    for (n, month) in [(1, &months[0]), (2, &months[1])] {
        let events = payable_events(&f, &tranche(n)).await;
        assert_eq!(events.len(), 1, "month {n} announced once");
        assert_eq!(events[0].condition, format!("bursary_month:{month}"));
        assert_eq!(events[0].beneficiary_accounts, placement.accounts);
    }
    assert!(payable_events(&f, &tranche(3)).await.is_empty());
    assert_eq!(f.audit("grants.ConfirmBursaryMonth", &tranche(1)).await.len(), 1);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn date_tranches_are_payable_from_their_day() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 2).await;
    let (yesterday, today, tomorrow) = (day(&f, -1).await, day(&f, 0).await, day(&f, 1).await);
    let award = f
        .create_award(
            &manager,
            startup_award(
                &f.line(COLLECTIVE_TANGER),
                &app.application,
                vec![on_date(100_000, &yesterday), on_date(200_000, &today), on_date(300_000, &tomorrow)],
            ),
        )
        .await
        .expect("award");
    use TrancheState::{Payable, Scheduled};
    assert_eq!(states(&award), vec![Payable, Payable, Scheduled], "due tranches are payable at creation");
    assert!(award.tranches[1].payable_time.is_some());
    assert!(award.tranches[2].payable_time.is_none());

    // A finance officer may run the release; a program manager may not.
    let err = release_due(&f, &manager).await.expect_err("a manager");
    assert_eq!(err.code(), Code::PermissionDenied);
    let (_, maker) = f.maker(&["tanger"]);
    let released = release_due(&f, &maker).await.expect("release");
    assert_eq!(released.payable_count, 0, "tomorrow's tranche is not due");
    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(states(&a), vec![Payable, Payable, Scheduled]);

    let today_events = payable_events(&f, &award.tranches[1].name).await;
    assert_eq!(today_events.len(), 1);
    assert_eq!(today_events[0].condition, format!("date:{today}"));
    assert_eq!(today_events[0].amount, Some(eur(200_000)));
    assert!(payable_events(&f, &award.tranches[2].name).await.is_empty());
    f.assert_books_balance().await;
}

/// Publishes one `coaching.milestone.verified` event (one id) `times` times.
async fn publish_milestone(f: &Fixture, award: &str, code: &str, times: usize) {
    let m = MilestoneVerified {
        milestone: format!("engagements/{}/milestones/{code}", uuid::Uuid::now_v7()),
        code: code.into(),
        award: award.into(),
        ..MilestoneVerified::default()
    };
    let event =
        work4life_testkit::event("coaching", "coaching.milestone.verified", &m.milestone, "work4life.coaching.v1.MilestoneVerified", &m);
    for _ in 0..times {
        f.redis.publish(COACHING_STREAM, &event).await;
    }
}

#[tokio::test]
async fn a_verified_milestone_makes_only_its_tranche_payable_once() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    let award = f
        .create_award(
            &manager,
            startup_award(
                &f.line(COLLECTIVE_TANGER),
                &app.application,
                vec![
                    on_milestone(1_000_000, "business_plan_validated"),
                    on_milestone(1_000_000, "first_sale"),
                    on_date(500_000, "2099-06-01"),
                ],
            ),
        )
        .await
        .expect("award");
    let other_app = f.accepted("tanger", 3).await;
    let sentinel = f
        .create_award(&manager, startup_award(&f.line(COLLECTIVE_TANGER), &other_app.application, vec![on_milestone(100_000, "launch")]))
        .await
        .expect("sentinel award");

    // The same event delivered twice, and the milestone verified again under another event.
    publish_milestone(&f, &award.name, "business_plan_validated", 2).await;
    f.verify_milestone(&award.name, "business_plan_validated").await;
    // Events are handled in order: once the sentinel's is, the three before it are too.
    f.verify_milestone(&sentinel.name, &milestone_of(&sentinel.tranches[0])).await;
    eventually("the sentinel's tranche is payable", EVENT_WAIT, || async {
        let s = f.get_award(&f.admin, &sentinel.name).await.expect("sentinel");
        (s.tranches[0].state == TrancheState::Payable as i32).then_some(())
    })
    .await;

    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    use TrancheState::{Payable, Scheduled};
    assert_eq!(states(&a), vec![Payable, Scheduled, Scheduled], "only the matching tranche");
    let events = payable_events(&f, &award.tranches[0].name).await;
    assert_eq!(events.len(), 1, "announced exactly once: {events:?}");
    assert_eq!(events[0].condition, "milestone:business_plan_validated");
    assert_eq!(events[0].award, award.name);
    assert_eq!(events[0].beneficiaries, app.applicants);
    let award_events =
        f.events("grants.tranche.payable").await.iter().map(payload::<TranchePayable>).filter(|e| e.award == award.name).count();
    assert_eq!(award_events, 1);
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Amendments.

#[tokio::test]
async fn amendments_reserve_or_release_the_difference_and_keep_tranches_in_payment() {
    let f = fresh().await;
    let (manager_subject, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    let today = today(&f.pool).await;
    let award = f
        .create_award(
            &manager,
            startup_award(
                &f.line(COLLECTIVE_TANGER),
                &app.application,
                vec![on_date(1_000_000, &today), on_milestone(2_000_000, "business_plan_validated"), on_milestone(1_000_000, "first_sale")],
            ),
        )
        .await
        .expect("award");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 4_000_000);
    let t = award.tranches.clone();

    // An increase within what the line has: the difference is reserved and posted.
    let up = amend(
        &f,
        &manager,
        &award.name,
        vec![keep(&t[0]), with_amount(&t[1], 2_500_000), keep(&t[2]), on_milestone(500_000, "second_sale")],
        "a second machine is needed",
        &award.etag,
    )
    .await
    .expect("increase");
    assert_eq!(up.amount, Some(eur(5_000_000)));
    assert_eq!(up.line_amount, Some(eur(5_000_000)));
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 5_000_000);
    assert_eq!(up.tranches.len(), 4);
    assert_eq!(up.tranches[3].number, 4, "a new tranche takes the next number");
    assert_eq!(up.tranches[1].amount, Some(eur(2_500_000)));
    assert_eq!(up.amendments.len(), 1);
    let first = &up.amendments[0];
    assert_eq!((minor(&first.previous_amount), minor(&first.new_amount)), (4_000_000, 5_000_000));
    assert_eq!(first.reason, "a second machine is needed");
    assert_eq!(first.amended_by, manager_subject);
    assert_ne!(up.etag, award.etag);
    let postings = postings_of(&f, &award.name).await;
    assert_eq!(postings.len(), 2);
    assert_posting(&f, &postings[1], "commitment", COLLECTIVE_TANGER, "committed", "available", 1_000_000);
    let amended = f.events("grants.award.amended").await;
    assert_eq!(amended.len(), 1);
    let e: AwardChanged = payload(&amended[0]);
    assert_eq!((e.award.as_str(), minor(&e.amount), e.reason.as_str()), (award.name.as_str(), 5_000_000, "a second machine is needed"));
    assert_eq!(e.beneficiary_accounts, app.accounts);
    assert_eq!(f.audit("grants.AmendAward", &award.name).await.len(), 1);
    f.assert_books_balance().await;

    // A decrease: a tranche left out is cancelled, another lowered; the difference is released.
    let t = up.tranches.clone();
    let down = amend(&f, &manager, &award.name, vec![keep(&t[0]), keep(&t[1]), with_amount(&t[2], 500_000)], "smaller stock", &up.etag)
        .await
        .expect("decrease");
    assert_eq!(down.amount, Some(eur(4_000_000)));
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 4_000_000);
    assert_eq!(down.tranches[3].state, TrancheState::Cancelled as i32);
    assert_eq!(down.amendments.len(), 2);
    assert_eq!(down.amendments[1].reason, "smaller stock");
    let postings = postings_of(&f, &award.name).await;
    assert_eq!(postings.len(), 3);
    assert_posting(&f, &postings[2], "release", COLLECTIVE_TANGER, "available", "committed", 1_000_000);
    assert_eq!(f.events("grants.award.amended").await.len(), 2);
    f.assert_books_balance().await;

    // A stale etag is refused.
    let before = f.fingerprint().await;
    let err = amend(&f, &manager, &award.name, vec![keep(&t[0]), keep(&t[1])], "stale", &award.etag).await.expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    // An increase beyond the line is refused with nothing written.
    let t = down.tranches.clone();
    let err = amend(&f, &manager, &award.name, vec![keep(&t[0]), with_amount(&t[1], 25_000_000), keep(&t[2])], "too much", &down.etag)
        .await
        .expect_err("beyond the line");
    let description = assert_precondition(&err, "BUDGET_LINE_EXCEEDED", &f.line(COLLECTIVE_TANGER));
    assert!(description.contains("210000.00 EUR"), "names what is available: {description}");
    assert_eq!(f.fingerprint().await, before, "refused amendments write nothing");

    // The first tranche (payable today) goes into payment: it may no longer change or go.
    let (_, maker) = f.maker(&["tanger"]);
    f.request(&maker, &t[0].name).await.expect("request");
    let current = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(current.tranches[0].state, TrancheState::InPayment as i32);
    let before = f.fingerprint().await;
    let changed = vec![with_amount(&t[0], 900_000), keep(&t[1]), with_amount(&t[2], 600_000)];
    let err = amend(&f, &manager, &award.name, changed, "lower the first", &current.etag).await.expect_err("a tranche in payment changed");
    assert_precondition(&err, "TRANCHE_IN_PAYMENT", &t[0].name);
    let err = amend(&f, &manager, &award.name, vec![keep(&t[1]), with_amount(&t[2], 1_500_000)], "drop the first", &current.etag)
        .await
        .expect_err("a tranche in payment left out");
    assert_precondition(&err, "TRANCHE_IN_PAYMENT", &t[0].name);
    assert_eq!(f.fingerprint().await, before, "nothing written");
    // Kept unchanged, the others may still change.
    let last = amend(&f, &manager, &award.name, vec![keep(&t[0]), keep(&t[1]), with_amount(&t[2], 700_000)], "adjust", &current.etag)
        .await
        .expect("the others change");
    assert_eq!(last.amount, Some(eur(4_200_000)));
    assert_eq!(last.tranches[0].state, TrancheState::InPayment as i32);
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 4_200_000);
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Cancellations.

#[tokio::test]
async fn cancelling_releases_what_is_not_disbursed_and_withdraws_pending_payments() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let (_, maker) = f.maker(&["tanger"]);
    let (_, checker) = f.checker(&["tanger"]);
    let today = today(&f.pool).await;
    let schedule = || vec![on_date(1_000_000, &today), on_milestone(2_000_000, "business_plan_validated")];
    let line = f.line(COLLECTIVE_TANGER);

    // A: one tranche paid, then cancelled: only the rest goes back to the line.
    let app_a = f.accepted("tanger", 3).await;
    let a = f.create_award(&manager, startup_award(&line, &app_a.application, schedule())).await.expect("award A");
    let d = f.request(&maker, &a.tranches[0].name).await.expect("request");
    f.approve(&checker, &d.name).await.expect("approve");
    let batch = f.batch(&maker).await.expect("batch");
    f.export(&maker, &batch.name).await.expect("export");
    f.import(&maker, &batch.name, &[(&d.name, true, "BANK-A-1")]).await.expect("paid");
    let a = f.get_award(&f.admin, &a.name).await.expect("award A");
    let cancelled = cancel(&f, &manager, &a.name, "the cooperative dissolved", &a.etag).await.expect("cancel A");
    assert_eq!(cancelled.state, AwardState::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "the cooperative dissolved");
    assert_eq!(states(&cancelled), vec![TrancheState::Paid, TrancheState::Cancelled]);
    assert_eq!(cancelled.disbursed, Some(eur(1_000_000)));
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 1_000_000, "what was disbursed stays committed");
    let postings = postings_of(&f, &a.name).await;
    let last = postings.last().expect("a posting");
    assert_posting(&f, last, "release", COLLECTIVE_TANGER, "available", "committed", 2_000_000);
    let events = f.events("grants.award.cancelled").await;
    assert_eq!(events.len(), 1);
    let e: AwardChanged = payload(&events[0]);
    assert_eq!(e.award, a.name);
    assert_eq!(e.reason, "the cooperative dissolved");
    assert_eq!(e.disbursed, Some(eur(1_000_000)));
    assert_eq!(e.beneficiary_accounts, app_a.accounts);
    let audit = f.audit("grants.CancelAward", &a.name).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].1["released_minor"], 2_000_000);
    f.assert_books_balance().await;

    // B: a payment waiting for approval is withdrawn with the award.
    let app_b = f.accepted("tanger", 3).await;
    let b = f.create_award(&manager, startup_award(&line, &app_b.application, schedule())).await.expect("award B");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 4_000_000);
    let pending = f.request(&maker, &b.tranches[0].name).await.expect("request B");
    let b = f.get_award(&f.admin, &b.name).await.expect("award B");
    let cancelled = cancel(&f, &manager, &b.name, "duplicate funding found", &b.etag).await.expect("cancel B");
    assert_eq!(states(&cancelled), vec![TrancheState::Cancelled, TrancheState::Cancelled]);
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 1_000_000, "all of B went back");
    let withdrawn = f
        .client()
        .await
        .get_disbursement(bearer(GetDisbursementRequest { name: pending.name.clone() }, &f.admin))
        .await
        .expect("disbursement")
        .into_inner()
        .disbursement
        .expect("disbursement");
    assert_eq!(withdrawn.state, DisbursementState::Withdrawn as i32);
    let postings = postings_of(&f, &b.name).await;
    assert_eq!(postings.len(), 2);
    assert_posting(&f, &postings[1], "release", COLLECTIVE_TANGER, "available", "committed", 3_000_000);
    assert_eq!(f.events("grants.award.cancelled").await.len(), 2);
    // A cancelled award cannot be cancelled again, and the application may be funded anew.
    let again = cancel(&f, &manager, &b.name, "again", &cancelled.etag).await.expect_err("already cancelled");
    assert_precondition(&again, "AWARD_NOT_ACTIVE", &b.name);
    f.create_award(&manager, startup_award(&line, &app_b.application, vec![on_milestone(500_000, "business_plan_validated")]))
        .await
        .expect("funded anew");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 1_500_000);
    f.assert_books_balance().await;

    // C: an approved payment is in flight: the award cannot be cancelled.
    let app_c = f.accepted("tanger", 3).await;
    let c = f.create_award(&manager, startup_award(&line, &app_c.application, schedule())).await.expect("award C");
    let approved = f.request(&maker, &c.tranches[0].name).await.expect("request C");
    f.approve(&checker, &approved.name).await.expect("approve C");
    let c = f.get_award(&f.admin, &c.name).await.expect("award C");
    let before = f.fingerprint().await;
    let err = cancel(&f, &manager, &c.name, "changed our minds", &c.etag).await.expect_err("payment in flight");
    assert_precondition(&err, "PAYMENT_IN_FLIGHT", &approved.name);
    assert_eq!(f.fingerprint().await, before, "nothing written");
    assert_eq!(f.get_award(&f.admin, &c.name).await.expect("C").state, AwardState::Active as i32);
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Amounts at the edge of what a bigint holds.

#[tokio::test]
async fn an_award_of_the_largest_amount_is_refused_as_beyond_the_line() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["oujda"]);
    let line = f.line("collective_oujda");
    let first = f.accepted("oujda", 3).await;
    f.create_award(&manager, startup_award(&line, &first.application, vec![on_milestone(10_000_000, "business_plan_validated")]))
        .await
        .expect("first award");
    let second = f.accepted("oujda", 3).await;
    let before = f.fingerprint().await;
    // A valid award (one tranche, summing to the award) of i64::MAX cents on a line that has 50,000 EUR left.
    let err = f
        .create_award(&manager, startup_award(&line, &second.application, vec![on_milestone(i64::MAX, "business_plan_validated")]))
        .await
        .expect_err("far beyond the line");
    let description = assert_precondition(&err, "BUDGET_LINE_EXCEEDED", &line);
    assert!(description.contains("50000.00 EUR"), "{description}");
    assert_eq!(f.fingerprint().await, before, "nothing written");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn an_amendment_whose_tranches_sum_beyond_any_amount_is_refused_without_writing() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["oujda"]);
    let line = f.line("collective_oujda");
    let app = f.accepted("oujda", 3).await;
    let award = f
        .create_award(&manager, startup_award(&line, &app.application, vec![on_milestone(10_000_000, "business_plan_validated")]))
        .await
        .expect("award");
    let before = f.fingerprint().await;
    // Each tranche is a valid amount; together they exceed what 64 bits hold (and any line).
    let huge = i64::MAX - 1_000;
    let result = amend(
        &f,
        &manager,
        &award.name,
        vec![keep(&award.tranches[0]), on_milestone(huge, "first_sale"), on_milestone(huge, "second_sale")],
        "expansion",
        &award.etag,
    )
    .await;
    let err = result.expect_err("beyond any line");
    let refused_properly = (err.code() == Code::FailedPrecondition && reason(&err) == "BUDGET_LINE_EXCEEDED")
        || (err.code() == Code::InvalidArgument && fields(&err).iter().any(|f| f.starts_with("tranches")));
    assert!(refused_properly, "BUDGET_LINE_EXCEEDED or INVALID_ARGUMENT on the tranches, not {:?}: {}", err.code(), err.message());
    assert_eq!(f.fingerprint().await, before, "nothing written");
    // The service still answers, and the award is as it was.
    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(a.amount, Some(eur(10_000_000)));
    f.assert_books_balance().await;
}
