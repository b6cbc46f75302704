//! Bad input on every RPC of GrantsService: INVALID_ARGUMENT naming exactly the fields at fault,
//! and nothing written (the tables' fingerprint is unchanged). Then the database's own guards of
//! the ledger: an unbalanced posting fails at COMMIT; postings and entries are never updated,
//! deleted or truncated.

mod common;

use common::*;
use prost_types::Timestamp;
use tonic::{Code, Status};
use uuid::Uuid;
use work4life_proto::{
    grants::{
        AmendAwardRequest, ApproveDisbursementRequest, Award, AwardKind, Bursary, CancelAwardRequest, ConfirmBursaryMonthRequest,
        CreateAwardRequest, CreateBudgetLineRequest, CreateBudgetRequest, CreatePaymentBatchRequest, ExportPaymentBatchRequest,
        GetAwardRequest, GetBalancesRequest, GetBudgetLineRequest, GetBudgetRequest, GetDisbursementRequest, GetDonorReportRequest,
        GetPaymentBatchRequest, ImportPaymentResultsRequest, LineKind, ListAwardsRequest, ListBudgetLinesRequest, ListBudgetsRequest,
        ListDisbursementsRequest, ListPaymentBatchesRequest, ListPostingsRequest, Payee, PaymentMethod, PaymentResult,
        RejectDisbursementRequest, ReleaseCondition, RequestDisbursementRequest, RequeueDisbursementRequest, Tranche,
        release_condition::Condition,
    },
    types::{ExchangeRate, Money},
};

// ---------------------------------------------------------------------------------------------
// Helpers of this file.

fn money(currency: &str, amount_minor: i64) -> Money {
    Money { currency_code: currency.into(), amount_minor }
}

fn tranche(amount: Money, condition: Option<Condition>) -> Tranche {
    Tranche { amount: Some(amount), condition: condition.map(|c| ReleaseCondition { condition: Some(c) }), ..Tranche::default() }
}

fn milestone(code: &str) -> Option<Condition> {
    Some(Condition::Milestone(code.into()))
}

/// The sorted field paths of `status`, after checking it is INVALID_ARGUMENT.
fn invalid_fields<T: std::fmt::Debug>(case: &str, result: Result<T, Status>) -> Vec<String> {
    let status = match result {
        Ok(v) => panic!("{case}: accepted: {v:?}"),
        Err(s) => s,
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    let mut got = fields(&status);
    got.sort();
    got
}

fn sorted(want: &[&str]) -> Vec<String> {
    let mut w: Vec<String> = want.iter().map(|s| (*s).to_string()).collect();
    w.sort();
    w
}

/// Asserts INVALID_ARGUMENT with exactly `want` (in any order).
fn assert_fields<T: std::fmt::Debug>(case: &str, result: Result<T, Status>, want: &[&str]) {
    assert_eq!(invalid_fields(case, result), sorted(want), "{case}");
}

/// Timestamps no reading accepts: negative nanos, and the year 10000.
fn bad_instants() -> [Timestamp; 2] {
    [Timestamp { seconds: 0, nanos: -1 }, Timestamp { seconds: 253_402_300_800, nanos: 0 }]
}

const GARBAGE_TOKEN: &str = "bm90IGEgdG9rZW4.AAAA";

fn long_text() -> String {
    "x".repeat(1001)
}

// ---------------------------------------------------------------------------------------------
// CreateAward, table-driven.

#[tokio::test]
async fn create_award_names_every_bad_field_and_writes_nothing() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    let placement = f.accepted_placement("tanger").await;
    let line = f.line(COLLECTIVE_TANGER);
    let bursaries = f.line(WORK_BURSARIES);
    let base = || {
        startup_award(&line, &app.application, vec![on_milestone(2_000_000, "business_plan_validated"), on_date(1_000_000, "2099-01-01")])
    };
    let bursary =
        |months: i32| Award { amount: Some(eur(1_800_000)), ..bursary_award(&bursaries, &placement, 300_000, months, "2099-01-01") };
    let with_payee = |edit: &dyn Fn(&mut Payee)| {
        let mut a = base();
        if let Some(p) = a.payee.as_mut() {
            edit(p);
        }
        a
    };
    let with_bursary = |edit: &dyn Fn(&mut Bursary)| {
        let mut a = bursary(6);
        if let Some(b) = a.bursary.as_mut() {
            edit(b);
        }
        a
    };
    let req = |award: Award| CreateAwardRequest { award: Some(award), request_id: rid() };
    let one = |amount: Money| vec![tranche(amount, milestone("business_plan_validated"))];

    let cases: Vec<(&str, CreateAwardRequest, Vec<&str>)> = vec![
        (
            "zero amounts",
            req(Award { amount: Some(eur(0)), tranches: one(eur(0)), ..base() }),
            vec!["award.amount.amount_minor", "award.tranches[0].amount.amount_minor"],
        ),
        (
            "negative amounts",
            req(Award { amount: Some(eur(-3_000_000)), tranches: one(eur(-3_000_000)), ..base() }),
            vec!["award.amount.amount_minor", "award.tranches[0].amount.amount_minor"],
        ),
        (
            "a zero tranche beside a full one",
            req(Award {
                amount: Some(eur(3_000_000)),
                tranches: vec![on_milestone(0, "first_sale"), on_date(3_000_000, "2099-01-01")],
                ..base()
            }),
            vec!["award.tranches[0].amount.amount_minor"],
        ),
        (
            "unknown currency",
            req(Award { amount: Some(money("XYZ", 3_000_000)), tranches: one(money("XYZ", 3_000_000)), ..base() }),
            vec!["award.amount.currency_code", "award.tranches[0].amount.currency_code"],
        ),
        (
            "lower-case currency",
            req(Award { amount: Some(money("eur", 3_000_000)), tranches: one(money("eur", 3_000_000)), ..base() }),
            vec!["award.amount.currency_code", "award.tranches[0].amount.currency_code"],
        ),
        (
            "a tranche in another currency than the award",
            req(Award { amount: Some(eur(3_000_000)), tranches: one(money("MAD", 3_000_000)), ..base() }),
            vec!["award.tranches[0].amount.currency_code"],
        ),
        (
            "tranches not summing to the award",
            req(Award {
                amount: Some(eur(3_000_000)),
                ..startup_award(&line, &app.application, vec![on_milestone(1_000_000, "a1"), on_date(1_000_000, "2099-01-01")])
            }),
            vec!["award.tranches"],
        ),
        ("no tranche", req(Award { tranches: vec![], ..base() }), vec!["award.tranches"]),
        ("unknown budget line", req(Award { budget_line: f.line("no_such_line"), ..base() }), vec!["award.budget_line"]),
        (
            "a line of an unknown budget",
            req(Award { budget_line: format!("budgets/{}/lines/{COLLECTIVE_TANGER}", Uuid::now_v7()), ..base() }),
            vec!["award.budget_line"],
        ),
        ("malformed budget line", req(Award { budget_line: format!("lines/{COLLECTIVE_TANGER}"), ..base() }), vec!["award.budget_line"]),
        ("budget line with a bad code", req(Award { budget_line: f.line("Collective-Tanger"), ..base() }), vec!["award.budget_line"]),
        ("malformed application", req(Award { application: "applications/42".into(), ..base() }), vec!["award.application"]),
        ("no kind", req(Award { kind: AwardKind::Unspecified as i32, ..base() }), vec!["award.kind"]),
        ("unknown kind", req(Award { kind: 7, ..base() }), vec!["award.kind"]),
        ("missing payee", req(Award { payee: None, ..base() }), vec!["award.payee"]),
        ("bad RIB", req(with_payee(&|p| p.account = "01178000001234".into())), vec!["award.payee.account"]),
        ("RIB with letters", req(with_payee(&|p| p.account = "01178000001234567890123X".into())), vec!["award.payee.account"]),
        ("no bank account", req(with_payee(&|p| p.account = String::new())), vec!["award.payee.account"]),
        (
            "bad phone",
            req(with_payee(&|p| {
                p.method = PaymentMethod::MobileMoney as i32;
                p.account = "12ab".into();
            })),
            vec!["award.payee.account"],
        ),
        (
            "no phone",
            req(with_payee(&|p| {
                p.method = PaymentMethod::MobileMoney as i32;
                p.account = String::new();
            })),
            vec!["award.payee.account"],
        ),
        ("no holder", req(with_payee(&|p| p.holder_name = "  ".into())), vec!["award.payee.holder_name"]),
        ("no payment method", req(with_payee(&|p| p.method = PaymentMethod::Unspecified as i32)), vec!["award.payee.method"]),
        (
            "a tranche without condition",
            req(Award { amount: Some(eur(3_000_000)), tranches: vec![tranche(eur(3_000_000), None)], ..base() }),
            vec!["award.tranches[0].condition"],
        ),
        (
            "an impossible release date",
            req(Award { amount: Some(eur(3_000_000)), tranches: vec![on_date(3_000_000, "2027-02-30")], ..base() }),
            vec!["award.tranches[0].condition.release_date"],
        ),
        (
            "a milestone that is not a code",
            req(Award { amount: Some(eur(3_000_000)), tranches: vec![on_milestone(3_000_000, "Business plan!")], ..base() }),
            vec!["award.tranches[0].condition.milestone"],
        ),
        (
            "a bursary month in a start-up grant",
            req(Award {
                amount: Some(eur(3_000_000)),
                tranches: vec![tranche(eur(3_000_000), Some(Condition::BursaryMonth("2099-01-01".into())))],
                ..base()
            }),
            vec!["award.tranches"],
        ),
        (
            "tranche numbers chosen by the caller",
            req(Award {
                amount: Some(eur(3_000_000)),
                tranches: vec![Tranche { number: 3, ..on_milestone(3_000_000, "business_plan_validated") }],
                ..base()
            }),
            vec!["award.tranches"],
        ),
        ("a bursary on a start-up grant", req(Award { bursary: bursary(6).bursary, ..base() }), vec!["award.bursary"]),
        ("a bursary of 0 months", req(bursary(0)), vec!["award.bursary.months"]),
        ("a bursary of 37 months", req(Award { amount: Some(eur(300_000 * 37)), ..bursary(37) }), vec!["award.bursary.months"]),
        ("a negative number of months", req(bursary(-1)), vec!["award.bursary.months"]),
        ("a bursary with tranches", req(Award { tranches: one(eur(1_800_000)), ..bursary(6) }), vec!["award.tranches"]),
        ("a work bursary without its bursary", req(Award { bursary: None, ..bursary(6) }), vec!["award.bursary"]),
        ("a bursary not summing to the award", req(Award { amount: Some(eur(1_000_000)), ..bursary(6) }), vec!["award.amount"]),
        (
            "a bursary paid in another currency",
            req(with_bursary(&|b| b.monthly_amount = Some(money("MAD", 300_000)))),
            vec!["award.bursary.monthly_amount.currency_code"],
        ),
        (
            "a zero monthly amount",
            req(with_bursary(&|b| b.monthly_amount = Some(eur(0)))),
            vec!["award.bursary.monthly_amount.amount_minor"],
        ),
        ("a malformed employer", req(with_bursary(&|b| b.employer = "employers/acme".into())), vec!["award.bursary.employer"]),
        ("a bad start date", req(with_bursary(&|b| b.start_date = "01/09/2026".into())), vec!["award.bursary.start_date"]),
        (
            "another employer than the placement's",
            req(with_bursary(&|b| b.employer = format!("organizations/{}", Uuid::now_v7()))),
            vec!["award.bursary.employer"],
        ),
        (
            "a malformed exchange rate",
            req(Award {
                exchange_rate: Some(ExchangeRate {
                    rate: "ten".into(),
                    source: " ".into(),
                    effective_date: "tomorrow".into(),
                    ..eur_mad("10.8425")
                }),
                ..base()
            }),
            vec!["award.exchange_rate.rate", "award.exchange_rate.source", "award.exchange_rate.effective_date"],
        ),
        (
            "a rate from a currency to itself",
            req(Award { exchange_rate: Some(ExchangeRate { to_currency_code: "EUR".into(), ..eur_mad("10.8425") }), ..base() }),
            vec!["award.exchange_rate.to_currency_code"],
        ),
        (
            "a rate between other currencies",
            req(Award {
                amount: Some(money("MAD", 3_000_000)),
                tranches: one(money("MAD", 3_000_000)),
                exchange_rate: Some(ExchangeRate { to_currency_code: "USD".into(), ..eur_mad("1.05") }),
                ..base()
            }),
            vec!["award.exchange_rate"],
        ),
        (
            "a rate on an award in the line's currency",
            req(Award { exchange_rate: Some(eur_mad("10.8425")), ..base() }),
            vec!["award.exchange_rate"],
        ),
        (
            "a tranche converting to nothing in the line's currency",
            req(Award {
                amount: Some(money("MAD", 10_842_501)),
                tranches: vec![
                    tranche(money("MAD", 1), milestone("first_sale")),
                    tranche(money("MAD", 10_842_500), milestone("business_plan_validated")),
                ],
                exchange_rate: Some(eur_mad("10.8425")),
                ..base()
            }),
            vec!["award.tranches[0].amount"],
        ),
        (
            "tranches whose sum overflows 64 bits",
            req(Award {
                amount: Some(eur(i64::MAX)),
                tranches: vec![on_milestone(i64::MAX, "first_sale"), on_milestone(i64::MAX, "second_sale")],
                ..base()
            }),
            vec!["award.tranches"],
        ),
        ("request_id missing", CreateAwardRequest { award: Some(base()), request_id: String::new() }, vec!["request_id"]),
        ("request_id not a UUID", CreateAwardRequest { award: Some(base()), request_id: "retry-1".into() }, vec!["request_id"]),
        (
            "no award at all",
            CreateAwardRequest { award: None, request_id: rid() },
            vec!["award.budget_line", "award.application", "award.kind", "award.amount", "award.payee"],
        ),
        (
            "everything wrong at once",
            req(Award {
                budget_line: "nope".into(),
                application: "nope".into(),
                amount: Some(money("XYZ", -1)),
                tranches: vec![tranche(eur(0), Some(Condition::ReleaseDate("someday".into())))],
                payee: Some(Payee { method: 0, holder_name: String::new(), account: String::new(), account_hint: String::new() }),
                ..base()
            }),
            vec![
                "award.budget_line",
                "award.application",
                "award.amount.currency_code",
                "award.amount.amount_minor",
                "award.tranches[0].amount.amount_minor",
                "award.tranches[0].condition.release_date",
                "award.payee.method",
                "award.payee.holder_name",
            ],
        ),
    ];

    let before = f.fingerprint().await;
    let mut failures = Vec::new();
    for (case, request, want) in cases {
        let result = f.client().await.create_award(bearer(request, &manager)).await;
        match result {
            Ok(r) => failures.push(format!("{case}: accepted: {:?}", r.into_inner().award.map(|a| a.name))),
            Err(status) => {
                let mut got = fields(&status);
                got.sort();
                if status.code() != Code::InvalidArgument || got != sorted(&want) {
                    failures.push(format!("{case}: {:?} {got:?}, wanted {want:?} ({})", status.code(), status.message()));
                }
            }
        }
        assert_eq!(f.fingerprint().await, before, "{case}: nothing written");
    }
    assert!(failures.is_empty(), "{} case(s) answered otherwise:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 0);
    // The base request is valid: the cases fail for the reason they name.
    f.create_award(&manager, base()).await.expect("the base award");
    f.create_award(&manager, bursary(6)).await.expect("the base bursary");
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Budgets and lines.

#[tokio::test]
async fn budgets_and_lines_refuse_bad_input() {
    let f = fresh().await;
    let client = || async { f.client().await };
    let before = f.fingerprint().await;

    let budget = |program: &str, title: &str, envelope: Option<Money>| work4life_proto::grants::Budget {
        program: program.into(),
        display_name: title.into(),
        envelope,
        ..Default::default()
    };
    let create_budget = |b: Option<work4life_proto::grants::Budget>, request_id: &str| {
        bearer(CreateBudgetRequest { budget: b, request_id: request_id.into() }, &f.admin)
    };
    assert_fields(
        "no budget",
        client().await.create_budget(create_budget(None, "")).await,
        &["budget.program", "budget.display_name", "budget.envelope"],
    );
    assert_fields(
        "bad program, no title, negative envelope",
        client().await.create_budget(create_budget(Some(budget("work4life", " ", Some(eur(-5)))), "")).await,
        &["budget.program", "budget.display_name", "budget.envelope.amount_minor"],
    );
    assert_fields(
        "unknown currency",
        client().await.create_budget(create_budget(Some(budget("programs/other", "Other", Some(money("ZZZ", 100)))), "")).await,
        &["budget.envelope.currency_code"],
    );
    assert_fields(
        "zero envelope",
        client().await.create_budget(create_budget(Some(budget("programs/other", "Other", Some(eur(0)))), "")).await,
        &["budget.envelope.amount_minor"],
    );
    assert_fields(
        "request_id not a UUID",
        client().await.create_budget(create_budget(Some(budget("programs/other", "Other", Some(eur(100)))), "abc")).await,
        &["request_id"],
    );

    let line = |allocation: Option<Money>| work4life_proto::grants::BudgetLine {
        display_name: "Start-ups, Agadir".into(),
        kind: LineKind::BeneficiaryFunds as i32,
        heading: "3.1 Start-up launch funds".into(),
        window: "collective_startup".into(),
        zone: "agadir".into(),
        allocation,
        ..Default::default()
    };
    let create_line = |parent: &str, code: &str, l: work4life_proto::grants::BudgetLine, request_id: &str| {
        bearer(
            CreateBudgetLineRequest { parent: parent.into(), line_id: code.into(), line: Some(l), request_id: request_id.into() },
            &f.admin,
        )
    };
    let everything_wrong = work4life_proto::grants::BudgetLine {
        display_name: String::new(),
        kind: 0,
        heading: String::new(),
        window: "Collective Startup".into(),
        zone: "Agadir!".into(),
        partner: "partners/acme".into(),
        allocation: Some(eur(0)),
        ..Default::default()
    };
    assert_fields(
        "every field of a line wrong",
        client().await.create_budget_line(create_line("budgets/work4life", "Agadir-1", everything_wrong, "")).await,
        &[
            "parent",
            "line_id",
            "line.display_name",
            "line.heading",
            "line.kind",
            "line.window",
            "line.zone",
            "line.partner",
            "line.allocation.amount_minor",
        ],
    );
    assert_fields(
        "no line",
        client()
            .await
            .create_budget_line(bearer(
                CreateBudgetLineRequest { parent: f.budget.clone(), line_id: "agadir".into(), line: None, request_id: String::new() },
                &f.admin,
            ))
            .await,
        &["line.display_name", "line.heading", "line.kind", "line.allocation"],
    );
    assert_fields(
        "a one-letter code",
        client().await.create_budget_line(create_line(&f.budget, "a", line(Some(eur(100))), "")).await,
        &["line_id"],
    );
    assert_fields(
        "a negative allocation",
        client().await.create_budget_line(create_line(&f.budget, "agadir", line(Some(eur(-100))), "")).await,
        &["line.allocation.amount_minor"],
    );
    assert_fields(
        "an allocation in another currency than the budget's",
        client().await.create_budget_line(create_line(&f.budget, "agadir", line(Some(money("MAD", 100))), "")).await,
        &["line.allocation.currency_code"],
    );
    assert_fields(
        "request_id not a UUID",
        client().await.create_budget_line(create_line(&f.budget, "agadir", line(Some(eur(100))), "42")).await,
        &["request_id"],
    );
    assert_eq!(f.fingerprint().await, before, "nothing written");
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Amendments, cancellations, bursary months.

#[tokio::test]
async fn amend_cancel_and_confirm_refuse_bad_input() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    let award = f
        .create_award(
            &manager,
            startup_award(
                &f.line(COLLECTIVE_TANGER),
                &app.application,
                vec![on_milestone(2_000_000, "business_plan_validated"), on_milestone(1_000_000, "first_sale")],
            ),
        )
        .await
        .expect("award");
    let keep = |t: &Tranche| Tranche { number: t.number, amount: t.amount.clone(), condition: t.condition.clone(), ..Tranche::default() };
    let (t1, t2) = (keep(&award.tranches[0]), keep(&award.tranches[1]));
    let before = f.fingerprint().await;

    let amend = |name: &str, tranches: Vec<Tranche>, reason: &str, etag: &str, request_id: &str| {
        let request =
            AmendAwardRequest { name: name.into(), tranches, reason: reason.into(), etag: etag.into(), request_id: request_id.into() };
        let manager = manager.clone();
        let f = &f;
        async move { f.client().await.amend_award(bearer(request, &manager)).await }
    };
    let name = award.name.as_str();
    let etag = award.etag.as_str();
    assert_fields("everything missing", amend("awards/42", vec![], "", "", &rid()).await, &["name", "tranches", "reason", "etag"]);
    assert_fields("a reason too long", amend(name, vec![t1.clone(), t2.clone()], &long_text(), etag, &rid()).await, &["reason"]);
    assert_fields(
        "a negative number",
        amend(name, vec![Tranche { number: -1, ..t1.clone() }, t2.clone()], "r", etag, &rid()).await,
        &["tranches[0].number"],
    );
    assert_fields("a number twice", amend(name, vec![t1.clone(), t1.clone()], "r", etag, &rid()).await, &["tranches[1].number"]);
    assert_fields(
        "a number the award does not have",
        amend(name, vec![Tranche { number: 9, ..t1.clone() }, t2.clone()], "r", etag, &rid()).await,
        &["tranches[0].number"],
    );
    assert_fields(
        "a zero amount",
        amend(name, vec![Tranche { amount: Some(eur(0)), ..t1.clone() }, t2.clone()], "r", etag, &rid()).await,
        &["tranches[0].amount.amount_minor"],
    );
    assert_fields(
        "another currency than the award's",
        amend(name, vec![Tranche { amount: Some(money("MAD", 2_000_000)), ..t1.clone() }, t2.clone()], "r", etag, &rid()).await,
        &["tranches[0].amount.currency_code"],
    );
    assert_fields(
        "an unknown currency",
        amend(name, vec![Tranche { amount: Some(money("ABC", 2_000_000)), ..t1.clone() }, t2.clone()], "r", etag, &rid()).await,
        &["tranches[0].amount.currency_code"],
    );
    assert_fields(
        "a bursary month in a start-up grant",
        amend(name, vec![t1.clone(), tranche(eur(1_000_000), Some(Condition::BursaryMonth("2099-01-01".into())))], "r", etag, &rid()).await,
        &["tranches[1].condition"],
    );
    assert_fields(
        "a bad release date",
        amend(name, vec![t1.clone(), tranche(eur(1_000_000), Some(Condition::ReleaseDate("2099-1-1".into())))], "r", etag, &rid()).await,
        &["tranches[1].condition.release_date"],
    );
    assert_fields("request_id missing", amend(name, vec![t1.clone(), t2.clone()], "r", etag, "").await, &["request_id"]);
    assert_fields("request_id not a UUID", amend(name, vec![t1.clone(), t2.clone()], "r", etag, "x").await, &["request_id"]);

    let cancel = |name: &str, reason: &str, etag: &str, request_id: &str| {
        let request = CancelAwardRequest { name: name.into(), reason: reason.into(), etag: etag.into(), request_id: request_id.into() };
        let manager = manager.clone();
        let f = &f;
        async move { f.client().await.cancel_award(bearer(request, &manager)).await }
    };
    assert_fields("everything missing", cancel("award/1", " ", "", &rid()).await, &["name", "reason", "etag"]);
    assert_fields("a reason too long", cancel(name, &long_text(), etag, &rid()).await, &["reason"]);
    assert_fields("request_id missing", cancel(name, "r", etag, "").await, &["request_id"]);
    assert_fields("request_id not a UUID", cancel(name, "r", etag, "1234").await, &["request_id"]);

    let (_, officer) = f.token("officer", Some(f.org), &["tanger"]);
    let confirm = |tranche: String, request_id: &str| {
        let request = ConfirmBursaryMonthRequest { tranche, request_id: request_id.into() };
        let officer = officer.clone();
        let f = &f;
        async move { f.client().await.confirm_bursary_month(bearer(request, &officer)).await }
    };
    for bad in ["", "awards/x/tranches/1", "awards/1/tranches/one", "tranches/1"] {
        assert_fields(bad, confirm(bad.into(), "").await, &["tranche"]);
    }
    assert_fields("tranche 0", confirm(format!("{name}/tranches/0"), "").await, &["tranche"]);
    assert_fields("tranche -1", confirm(format!("{name}/tranches/-1"), "").await, &["tranche"]);
    assert_fields("no tranche number", confirm(name.to_string(), "").await, &["tranche"]);
    assert_fields("request_id not a UUID", confirm(format!("{name}/tranches/1"), "nope").await, &["request_id"]);

    assert_eq!(f.fingerprint().await, before, "nothing written");
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Disbursements and batches.

#[tokio::test]
async fn disbursement_and_batch_rpcs_refuse_bad_input() {
    let f = fresh().await;
    let (_, maker) = f.maker(&["tanger"]);
    let (_, checker) = f.checker(&["tanger"]);
    let before = f.fingerprint().await;
    let c = || async { f.client().await };
    let some_tranche = format!("awards/{}/tranches/1", Uuid::now_v7());
    let some_disbursement = format!("disbursements/{}", Uuid::now_v7());

    for bad in ["", "awards/1/tranches/1", "tranches/1", "awards/00000000-0000-0000-0000-000000000000/tranches/0"] {
        let r = c().await.request_disbursement(bearer(RequestDisbursementRequest { tranche: bad.into(), request_id: rid() }, &maker)).await;
        assert_fields(&format!("request {bad:?}"), r, &["tranche"]);
    }
    let r = c()
        .await
        .request_disbursement(bearer(RequestDisbursementRequest { tranche: some_tranche.clone(), request_id: String::new() }, &maker))
        .await;
    assert_fields("request without request_id", r, &["request_id"]);
    let r = c()
        .await
        .request_disbursement(bearer(RequestDisbursementRequest { tranche: some_tranche.clone(), request_id: "r-1".into() }, &maker))
        .await;
    assert_fields("request with a request_id not a UUID", r, &["request_id"]);

    for bad in ["", "disbursements/42", "payments/0192f3a0-0000-7000-8000-000000000000"] {
        let r = c()
            .await
            .approve_disbursement(bearer(ApproveDisbursementRequest { name: bad.into(), request_id: String::new() }, &checker))
            .await;
        assert_fields(&format!("approve {bad:?}"), r, &["name"]);
        let r = c()
            .await
            .reject_disbursement(bearer(
                RejectDisbursementRequest { name: bad.into(), reason: "wrong RIB".into(), request_id: String::new() },
                &checker,
            ))
            .await;
        assert_fields(&format!("reject {bad:?}"), r, &["name"]);
        let r = c().await.requeue_disbursement(bearer(RequeueDisbursementRequest { name: bad.into(), request_id: rid() }, &maker)).await;
        assert_fields(&format!("requeue {bad:?}"), r, &["name"]);
    }
    let r = c()
        .await
        .approve_disbursement(bearer(ApproveDisbursementRequest { name: some_disbursement.clone(), request_id: "x".into() }, &checker))
        .await;
    assert_fields("approve with a request_id not a UUID", r, &["request_id"]);
    let r = c()
        .await
        .reject_disbursement(bearer(
            RejectDisbursementRequest { name: "nope".into(), reason: " ".into(), request_id: String::new() },
            &checker,
        ))
        .await;
    assert_fields("reject: bad name, no reason", r, &["name", "reason"]);
    let r = c()
        .await
        .reject_disbursement(bearer(
            RejectDisbursementRequest { name: some_disbursement.clone(), reason: long_text(), request_id: String::new() },
            &checker,
        ))
        .await;
    assert_fields("reject: a reason too long", r, &["reason"]);
    let r = c()
        .await
        .requeue_disbursement(bearer(RequeueDisbursementRequest { name: some_disbursement.clone(), request_id: String::new() }, &maker))
        .await;
    assert_fields("requeue without request_id", r, &["request_id"]);

    let batch = |budget: &str, currency: &str, method: i32, max_count: i32, request_id: &str| {
        bearer(
            CreatePaymentBatchRequest {
                budget: budget.into(),
                currency_code: currency.into(),
                method,
                max_count,
                request_id: request_id.into(),
            },
            &maker,
        )
    };
    let bank = PaymentMethod::BankTransfer as i32;
    assert_fields(
        "batch: everything wrong",
        c().await.create_payment_batch(batch("budget/1", "eur", 0, -1, &rid())).await,
        &["budget", "currency_code", "method", "max_count"],
    );
    assert_fields("batch: too many", c().await.create_payment_batch(batch(&f.budget, "EUR", bank, 100_001, &rid())).await, &["max_count"]);
    assert_fields("batch: unknown method", c().await.create_payment_batch(batch(&f.budget, "EUR", 9, 0, &rid())).await, &["method"]);
    assert_fields(
        "batch: unknown currency",
        c().await.create_payment_batch(batch(&f.budget, "EURO", bank, 0, &rid())).await,
        &["currency_code"],
    );
    assert_fields("batch without request_id", c().await.create_payment_batch(batch(&f.budget, "EUR", bank, 0, "")).await, &["request_id"]);
    assert_fields(
        "batch with a request_id not a UUID",
        c().await.create_payment_batch(batch(&f.budget, "EUR", bank, 0, "b")).await,
        &["request_id"],
    );

    for bad in ["", "paymentBatches/7", "batches/0192f3a0-0000-7000-8000-000000000000"] {
        let r = c().await.export_payment_batch(bearer(ExportPaymentBatchRequest { name: bad.into() }, &maker)).await;
        assert_fields(&format!("export {bad:?}"), r, &["name"]);
    }
    let import = |name: &str, results: Vec<PaymentResult>, request_id: &str| {
        bearer(ImportPaymentResultsRequest { name: name.into(), results, request_id: request_id.into() }, &maker)
    };
    assert_fields(
        "import: bad name, no results",
        c().await.import_payment_results(import("batch", vec![], "")).await,
        &["name", "results"],
    );
    let result = |d: &str, paid: bool, reference: &str, reason: &str| PaymentResult {
        disbursement: d.into(),
        paid,
        external_reference: reference.into(),
        failure_reason: reason.into(),
    };
    let some_batch = format!("paymentBatches/{}", Uuid::now_v7());
    let results = vec![
        result("disbursements/1", true, "REF-1", ""),
        result(&some_disbursement, true, " ", ""),
        result(&some_disbursement, false, "", ""),
        result(&format!("disbursements/{}", Uuid::now_v7()), false, "", &"x".repeat(201)),
    ];
    assert_fields(
        "import: bad results",
        c().await.import_payment_results(import(&some_batch, results, "")).await,
        &[
            "results[0].disbursement",
            "results[1].external_reference",
            "results[2].disbursement",
            "results[2].failure_reason",
            "results[3].failure_reason",
        ],
    );
    let ok = vec![result(&some_disbursement, true, "REF-1", "")];
    assert_fields(
        "import with a request_id not a UUID",
        c().await.import_payment_results(import(&some_batch, ok, "i-1")).await,
        &["request_id"],
    );

    assert_eq!(f.fingerprint().await, before, "nothing written");
    f.assert_books_balance().await;
}

// ---------------------------------------------------------------------------------------------
// Reads.

#[tokio::test]
async fn reads_refuse_malformed_names_tokens_sizes_and_instants() {
    let f = fresh().await;
    let before = f.fingerprint().await;
    let c = || async { f.client().await };
    let admin = f.admin.as_str();

    for (i, as_of) in bad_instants().into_iter().enumerate() {
        let case = format!("instant {i}");
        let r = c().await.get_budget(bearer(GetBudgetRequest { name: f.budget.clone(), as_of: Some(as_of) }, admin)).await;
        assert_fields(&format!("GetBudget {case}"), r, &["as_of"]);
        let r =
            c().await.get_budget_line(bearer(GetBudgetLineRequest { name: f.line(COLLECTIVE_TANGER), as_of: Some(as_of) }, admin)).await;
        assert_fields(&format!("GetBudgetLine {case}"), r, &["as_of"]);
        let r = c().await.get_balances(bearer(GetBalancesRequest { budget: f.budget.clone(), as_of: Some(as_of) }, admin)).await;
        assert_fields(&format!("GetBalances {case}"), r, &["as_of"]);
        let r = c()
            .await
            .get_donor_report(bearer(GetDonorReportRequest { program: "programs/work4life".into(), as_of: Some(as_of) }, admin))
            .await;
        assert_fields(&format!("GetDonorReport {case}"), r, &["as_of"]);
        let r = c()
            .await
            .list_postings(bearer(ListPostingsRequest { budget: f.budget.clone(), as_of: Some(as_of), ..Default::default() }, admin))
            .await;
        assert_fields(&format!("ListPostings {case}"), r, &["as_of"]);
    }

    let bad_as_of = Some(bad_instants()[0]);
    for bad in ["", "budgets/x", "programs/work4life", "budgets"] {
        let r = c().await.get_budget(bearer(GetBudgetRequest { name: bad.into(), as_of: bad_as_of }, admin)).await;
        assert_fields(&format!("GetBudget {bad:?}"), r, &["name", "as_of"]);
        let r = c().await.get_balances(bearer(GetBalancesRequest { budget: bad.into(), as_of: None }, admin)).await;
        assert_fields(&format!("GetBalances {bad:?}"), r, &["budget"]);
    }
    let bad_lines = [
        String::new(),
        f.budget.clone(),
        "budgets/x/lines/collective_tanger".into(),
        format!("{}/lines/Collective", f.budget),
        format!("{}/lines/", f.budget),
    ];
    for bad in bad_lines {
        let r = c().await.get_budget_line(bearer(GetBudgetLineRequest { name: bad.clone(), as_of: bad_as_of }, admin)).await;
        assert_fields(&format!("GetBudgetLine {bad:?}"), r, &["name", "as_of"]);
    }
    for bad in ["", "awards/1", "applications/0192f3a0-0000-7000-8000-000000000000"] {
        let r = c().await.get_award(bearer(GetAwardRequest { name: bad.into() }, admin)).await;
        assert_fields(&format!("GetAward {bad:?}"), r, &["name"]);
        let r = c().await.get_disbursement(bearer(GetDisbursementRequest { name: bad.into() }, admin)).await;
        assert_fields(&format!("GetDisbursement {bad:?}"), r, &["name"]);
        let r = c().await.get_payment_batch(bearer(GetPaymentBatchRequest { name: bad.into() }, admin)).await;
        assert_fields(&format!("GetPaymentBatch {bad:?}"), r, &["name"]);
    }
    for bad in ["", "work4life", "programs/"] {
        let r = c().await.get_donor_report(bearer(GetDonorReportRequest { program: bad.into(), as_of: bad_as_of }, admin)).await;
        assert_fields(&format!("GetDonorReport {bad:?}"), r, &["program", "as_of"]);
    }

    // Lists: every filter, size and token wrong at once.
    let r = c()
        .await
        .list_budgets(bearer(ListBudgetsRequest { program: String::new(), page_size: -1, page_token: GARBAGE_TOKEN.into() }, admin))
        .await;
    assert_fields("ListBudgets", r, &["page_size", "page_token"]);
    let r = c()
        .await
        .list_budget_lines(bearer(
            ListBudgetLinesRequest { parent: "budget".into(), page_size: -1, page_token: GARBAGE_TOKEN.into() },
            admin,
        ))
        .await;
    assert_fields("ListBudgetLines", r, &["parent", "page_size", "page_token"]);
    let r = c()
        .await
        .list_awards(bearer(
            ListAwardsRequest {
                budget_line: "lines/tanger".into(),
                zone: String::new(),
                state: 99,
                application: "applications/x".into(),
                page_size: -5,
                page_token: GARBAGE_TOKEN.into(),
            },
            admin,
        ))
        .await;
    assert_fields("ListAwards", r, &["budget_line", "application", "state", "page_size", "page_token"]);
    let r = c()
        .await
        .list_disbursements(bearer(
            ListDisbursementsRequest {
                award: "awards/x".into(),
                state: 42,
                payment_batch: "batches/x".into(),
                page_size: -1,
                page_token: GARBAGE_TOKEN.into(),
            },
            admin,
        ))
        .await;
    assert_fields("ListDisbursements", r, &["award", "state", "payment_batch", "page_size", "page_token"]);
    let r = c()
        .await
        .list_payment_batches(bearer(
            ListPaymentBatchesRequest { budget: "budgets/x".into(), state: 17, page_size: -1, page_token: GARBAGE_TOKEN.into() },
            admin,
        ))
        .await;
    assert_fields("ListPaymentBatches", r, &["budget", "state", "page_size", "page_token"]);
    let r = c()
        .await
        .list_postings(bearer(
            ListPostingsRequest {
                budget: "budgets/x".into(),
                account: String::new(),
                award: "awards/x".into(),
                as_of: bad_as_of,
                page_size: -1,
                page_token: GARBAGE_TOKEN.into(),
            },
            admin,
        ))
        .await;
    assert_fields("ListPostings", r, &["budget", "award", "as_of", "page_size", "page_token"]);

    // A genuine token of one list is refused by another list, and by the same list with other filters.
    let page = c()
        .await
        .list_budget_lines(bearer(ListBudgetLinesRequest { parent: f.budget.clone(), page_size: 1, page_token: String::new() }, admin))
        .await
        .expect("a page of lines")
        .into_inner();
    assert_eq!(page.lines.len(), 1);
    let token = page.next_page_token;
    assert!(!token.is_empty(), "8 lines make more than one page");
    let r = c()
        .await
        .list_postings(bearer(ListPostingsRequest { budget: f.budget.clone(), page_token: token.clone(), ..Default::default() }, admin))
        .await;
    assert_fields("a lines token on postings", r, &["page_token"]);
    let r = c().await.list_awards(bearer(ListAwardsRequest { page_token: token.clone(), ..Default::default() }, admin)).await;
    assert_fields("a lines token on awards", r, &["page_token"]);
    let other_parent = format!("budgets/{}", Uuid::now_v7());
    let r = c()
        .await
        .list_budget_lines(bearer(ListBudgetLinesRequest { parent: other_parent, page_size: 1, page_token: token.clone() }, admin))
        .await;
    assert_fields("a lines token with another parent", r, &["page_token"]);
    let mut tampered = token.clone();
    tampered.insert(1, 'A');
    let r = c()
        .await
        .list_budget_lines(bearer(ListBudgetLinesRequest { parent: f.budget.clone(), page_size: 1, page_token: tampered }, admin))
        .await;
    assert_fields("a tampered token", r, &["page_token"]);
    // The genuine token still works where it belongs.
    c().await
        .list_budget_lines(bearer(ListBudgetLinesRequest { parent: f.budget.clone(), page_size: 1, page_token: token }, admin))
        .await
        .expect("the next page");

    assert_eq!(f.fingerprint().await, before, "reads write nothing");
}

// ---------------------------------------------------------------------------------------------
// The database's own guards.

fn db_code(err: &sqlx::Error) -> String {
    err.as_database_error().and_then(|d| d.code()).map(|c| c.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn the_database_refuses_an_unbalanced_posting_at_commit() {
    let f = fresh().await;
    let budget: Uuid = f.budget.trim_start_matches("budgets/").parse().expect("budget id");
    let available = format!("{}/available", f.line(COLLECTIVE_TANGER));
    let committed = format!("{}/committed", f.line(COLLECTIVE_TANGER));
    let before = f.fingerprint().await;

    // (case, entries)
    let cases: Vec<(&str, Vec<(&str, i64)>)> = vec![
        ("entries off by one cent", vec![(committed.as_str(), 100), (available.as_str(), -99)]),
        ("a single entry", vec![(committed.as_str(), 100)]),
        ("no entry at all", vec![]),
        ("three entries not summing to zero", vec![(committed.as_str(), 100), (available.as_str(), -50), (available.as_str(), -49)]),
    ];
    for (case, entries) in cases {
        let mut tx = f.pool.begin().await.expect("begin");
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO postings (id, budget_id, kind, memo) VALUES ($1, $2, 'commitment', 'forged')")
            .bind(id)
            .bind(budget)
            .execute(&mut *tx)
            .await
            .expect("the posting row is accepted until COMMIT");
        for (i, (account, amount)) in entries.iter().enumerate() {
            sqlx::query(
                "INSERT INTO entries (posting_id, line_no, budget_id, account, amount_minor, posted_at) VALUES ($1, $2, $3, $4, $5, now())",
            )
            .bind(id)
            .bind(i as i16 + 1)
            .bind(budget)
            .bind(*account)
            .bind(*amount)
            .execute(&mut *tx)
            .await
            .expect("entries are accepted until COMMIT");
        }
        let err = tx.commit().await.expect_err(case);
        assert_eq!(db_code(&err), "23514", "{case}: a check violation: {err}");
        assert!(err.to_string().contains("unbalanced"), "{case}: {err}");
        assert_eq!(f.fingerprint().await, before, "{case}: nothing kept");
    }
    // An entry added later to a balanced posting unbalances it: refused too.
    let seeded: Uuid = sqlx::query_scalar("SELECT id FROM postings ORDER BY seq LIMIT 1").fetch_one(&f.pool).await.expect("a posting");
    let mut tx = f.pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO entries (posting_id, line_no, budget_id, account, amount_minor, posted_at) VALUES ($1, 9, $2, $3, 1, now())")
        .bind(seeded)
        .bind(budget)
        .bind(&committed)
        .execute(&mut *tx)
        .await
        .expect("accepted until COMMIT");
    let err = tx.commit().await.expect_err("an extra entry");
    assert_eq!(db_code(&err), "23514", "{err}");
    assert_eq!(f.fingerprint().await, before);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn the_database_refuses_any_change_to_postings_and_entries() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    f.create_award(
        &manager,
        startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![on_milestone(1_000_000, "business_plan_validated")]),
    )
    .await
    .expect("award");
    let before = f.fingerprint().await;
    assert!(f.count("SELECT count(*) FROM postings").await > 0);

    for statement in [
        "UPDATE postings SET memo = 'edited'",
        "UPDATE postings SET kind = 'release' WHERE kind = 'commitment'",
        "UPDATE entries SET amount_minor = amount_minor * 2",
        "UPDATE entries SET account = account || '_x' WHERE award_id IS NOT NULL",
        "DELETE FROM entries",
        "DELETE FROM postings WHERE kind = 'commitment'",
        "TRUNCATE entries",
        "TRUNCATE postings CASCADE",
        "TRUNCATE entries, postings",
    ] {
        let err = sqlx::query(statement).execute(&f.pool).await.expect_err(statement);
        assert_eq!(db_code(&err), "42501", "{statement}: {err}");
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
    assert_eq!(f.fingerprint().await, before, "the ledger is unchanged");
    // The line's counter is guarded too: never beyond its allocation, never negative.
    for statement in ["UPDATE budget_lines SET committed_minor = allocated_minor + 1", "UPDATE budget_lines SET committed_minor = -1"] {
        let err = sqlx::query(statement).execute(&f.pool).await.expect_err(statement);
        assert_eq!(db_code(&err), "23514", "{statement}: {err}");
    }
    assert_eq!(f.fingerprint().await, before);
    f.assert_books_balance().await;
}
