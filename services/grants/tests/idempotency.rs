//! Every mutating RPC replayed with the same `request_id`: in sequence (the same answer, one
//! effect), ten copies at once (the same answer, one effect), after a lost response (a call
//! dropped after a few milliseconds and one with a deadline too short, then retried: one
//! effect), and the same id with another payload (INVALID_ARGUMENT on `request_id`, nothing
//! written). Effects are counted on the ledger (postings), the events (outbox), the audit log
//! and the idempotency keys.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use futures::future::BoxFuture;
use prost::Message;
use tonic::{Code, Status};
use work4life_proto::grants::{
    AmendAwardRequest, ApproveDisbursementRequest, Award, Budget, BudgetLine, CancelAwardRequest, ConfirmBursaryMonthRequest,
    CreateBudgetLineRequest, CreateBudgetRequest, CreatePaymentBatchRequest, Disbursement, ImportPaymentResultsRequest, LineKind,
    PaymentMethod, PaymentResult, RejectDisbursementRequest, RequestDisbursementRequest, RequeueDisbursementRequest, TrancheState,
};

/// One prepared call: (request_id, with another payload, client deadline) → the encoded answer.
type Call = Arc<dyn Fn(String, bool, Option<Duration>) -> BoxFuture<'static, Result<Vec<u8>, Status>> + Send + Sync>;

/// A [`Call`] of `method` with `request` as `jwt`; `|r| alt` changes the payload.
macro_rules! call {
    ($f:expr, $jwt:expr, $method:ident, $request:expr, |$r:ident| $alt:expr) => {{
        let client = $f.client().await;
        let jwt: String = $jwt.to_string();
        let base = $request;
        let call: Call = Arc::new(move |id: String, alt: bool, deadline: Option<Duration>| {
            let mut client = client.clone();
            #[allow(unused_mut)]
            let mut $r = base.clone();
            $r.request_id = id;
            if alt {
                $alt;
            }
            let mut request = bearer($r, &jwt);
            if let Some(d) = deadline {
                request.set_timeout(d);
            }
            Box::pin(async move { client.$method(request).await.map(|r| r.into_inner().encode_to_vec()) })
        });
        call
    }};
}

/// What one effective call adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Effects {
    postings: i64,
    outbox: i64,
    audit: i64,
}

const fn effects(postings: i64, outbox: i64, audit: i64) -> Effects {
    Effects { postings, outbox, audit }
}

/// (postings, outbox, audit records, idempotency keys).
async fn counts(f: &Fixture) -> [i64; 4] {
    [
        f.count("SELECT count(*) FROM postings").await,
        f.count("SELECT count(*) FROM outbox").await,
        f.count("SELECT count(*) FROM audit_log").await,
        f.count("SELECT count(*) FROM idempotency_keys").await,
    ]
}

async fn assert_one_effect(f: &Fixture, before: [i64; 4], expected: Effects, what: &str) {
    let after = counts(f).await;
    let got = Effects { postings: after[0] - before[0], outbox: after[1] - before[1], audit: after[2] - before[2] };
    assert_eq!(got, expected, "{what}: exactly one effect (postings, events, audit)");
    assert_eq!(after[3] - before[3], 1, "{what}: one idempotency key");
}

/// Calls until an answer: a copy may be told to come back (ABORTED `REQUEST_IN_PROGRESS`).
async fn answer(call: &Call, id: &str) -> Vec<u8> {
    for _ in 0..10 {
        match call(id.to_string(), false, None).await {
            Ok(bytes) => return bytes,
            Err(e) if e.code() == Code::Aborted && reason(&e) == "REQUEST_IN_PROGRESS" => continue,
            Err(e) => panic!("a replay answers or asks to retry: {e:?}"),
        }
    }
    panic!("still in progress after ten tries");
}

/// (a) and (d): the same id twice in a row, then with another payload.
async fn in_sequence(f: &Fixture, call: &Call, expected: Effects) {
    let id = rid();
    let before = counts(f).await;
    let first = call(id.clone(), false, None).await.expect("the first call");
    let written = f.fingerprint().await;
    assert_one_effect(f, before, expected, "first call").await;
    let second = call(id.clone(), false, None).await.expect("the replay");
    assert_eq!(second, first, "a replay returns the first answer");
    assert_eq!(f.fingerprint().await, written, "a replay writes nothing");

    let err = call(id.clone(), true, None).await.expect_err("the same id with another payload");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(fields(&err), vec!["request_id".to_string()]);
    assert_eq!(f.fingerprint().await, written, "a reused id with another payload writes nothing");
    assert_eq!(call(id, false, None).await.expect("the first payload again"), first);
}

/// (b): ten copies at once.
async fn concurrently(f: &Fixture, call: &Call, expected: Effects) {
    let id = rid();
    let before = counts(f).await;
    let answers = futures::future::join_all((0..10).map(|_| answer(call, &id))).await;
    assert!(answers.iter().all(|a| *a == answers[0]), "every copy gets the same answer");
    assert_one_effect(f, before, expected, "ten concurrent copies").await;
    let written = f.fingerprint().await;
    assert_eq!(answer(call, &id).await, answers[0]);
    assert_eq!(f.fingerprint().await, written);
}

/// (c): the answer is lost: the client gives up after 1, 2, 4, ... milliseconds (the call is
/// dropped at a different point of the server's work each time, until one would have answered),
/// then once more with a deadline too short; then the retry.
async fn after_lost_responses(f: &Fixture, call: &Call, expected: Effects) {
    let id = rid();
    let before = counts(f).await;
    let mut delivered = None;
    for ms in [1, 2, 4, 8, 16, 32, 64, 128] {
        match tokio::time::timeout(Duration::from_millis(ms), call(id.clone(), false, None)).await {
            Ok(Ok(answer)) => {
                delivered = Some(answer);
                break;
            }
            Ok(Err(e)) => assert_eq!(e.code(), Code::Aborted, "{e:?}"),
            Err(_) => {} // lost: the server may or may not have committed
        }
    }
    let short = call(id.clone(), false, Some(Duration::from_millis(5))).await;
    let retry = answer(call, &id).await;
    if let Some(lost) = delivered {
        assert_eq!(lost, retry, "the answer that was not lost is the one replayed");
    }
    match short {
        Ok(lost) => assert_eq!(lost, retry),
        Err(e) => assert!(matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled | Code::Aborted), "{e:?}"),
    }
    assert_one_effect(f, before, expected, "lost responses then a retry").await;
    let written = f.fingerprint().await;
    assert_eq!(answer(call, &id).await, retry);
    assert_eq!(f.fingerprint().await, written);
}

/// Runs the three scenarios, each on a call prepared afresh by `prepare`.
async fn replays<P, Fut>(f: &Fixture, expected: Effects, prepare: P)
where
    P: Fn() -> Fut,
    Fut: std::future::Future<Output = Call>,
{
    in_sequence(f, &prepare().await, expected).await;
    concurrently(f, &prepare().await, expected).await;
    after_lost_responses(f, &prepare().await, expected).await;
    f.assert_books_balance().await;
}

// Builders of the state each call needs.

async fn payable(f: &Fixture) -> (Award, String) {
    let app = f.accepted("tanger", 2).await;
    let manager = &f.manager(&["tanger"]).1;
    let award = f
        .create_award(manager, startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![on_date(150_000, &today(&f.pool).await)]))
        .await
        .expect("award");
    assert_eq!(award.tranches[0].state, TrancheState::Payable as i32);
    let tranche = award.tranches[0].name.clone();
    (award, tranche)
}

async fn pending(f: &Fixture, maker: &str) -> Disbursement {
    let (_, tranche) = payable(f).await;
    f.request(maker, &tranche).await.expect("request")
}

async fn approved(f: &Fixture, maker: &str) -> Disbursement {
    let d = pending(f, maker).await;
    let checker = &f.checker(&[]).1;
    f.approve(checker, &d.name).await.expect("approve")
}

/// An approved disbursement sent to the bank: (it, its batch's name).
async fn sent(f: &Fixture, maker: &str) -> (Disbursement, String) {
    let d = approved(f, maker).await;
    let batch = f.batch(maker).await.expect("batch");
    assert_eq!(batch.count, 1);
    f.export(maker, &batch.name).await.expect("export");
    (d, batch.name)
}

async fn new_budget(f: &Fixture) -> Budget {
    f.client()
        .await
        .create_budget(bearer(CreateBudgetRequest { budget: Some(budget_of(&program_code())), request_id: rid() }, &f.admin))
        .await
        .map(|r| r.into_inner().budget.expect("budget"))
        .expect("budget")
}

fn program_code() -> String {
    format!("p{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn budget_of(program: &str) -> Budget {
    Budget {
        program: format!("programs/{program}"),
        display_name: format!("{program} — a second donor"),
        envelope: Some(eur(5_000_000)),
        ..Budget::default()
    }
}

fn not_a_disbursement() -> String {
    format!("disbursements/{}", uuid::Uuid::now_v7())
}

#[tokio::test]
async fn create_budget_is_idempotent() {
    let f = &fresh().await;
    replays(f, effects(1, 0, 1), || async move {
        call!(f, f.admin, create_budget, CreateBudgetRequest { budget: Some(budget_of(&program_code())), request_id: String::new() }, |r| {
            r.budget.as_mut().expect("budget").display_name = "another title".into()
        })
    })
    .await;
    // The replay's answer is the budget made once.
    let budgets = f.count("SELECT count(*) FROM budgets").await;
    assert_eq!(budgets, 4, "the seeded budget and one per scenario");
}

#[tokio::test]
async fn create_budget_line_is_idempotent() {
    let f = &fresh().await;
    replays(f, effects(1, 0, 1), || async move {
        let budget = new_budget(f).await;
        call!(
            f,
            f.admin,
            create_budget_line,
            CreateBudgetLineRequest {
                parent: budget.name.clone(),
                line_id: "startup_fes".into(),
                line: Some(BudgetLine {
                    display_name: "Start-ups, Fès".into(),
                    kind: LineKind::BeneficiaryFunds as i32,
                    heading: "3.1 Start-up launch funds".into(),
                    allocation: Some(eur(1_000_000)),
                    ..BudgetLine::default()
                }),
                request_id: String::new(),
            },
            |r| r.line.as_mut().expect("line").allocation = Some(eur(2_000_000))
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM budget_lines WHERE code = 'startup_fes'").await, 3, "one line per scenario");
}

#[tokio::test]
async fn create_award_is_idempotent() {
    let f = &fresh().await;
    let manager = &f.manager(&["tanger"]).1;
    replays(f, effects(1, 1, 1), || async move {
        let app = f.accepted("tanger", 3).await;
        let award = startup_award(
            &f.line(COLLECTIVE_TANGER),
            &app.application,
            vec![on_milestone(200_000, "business_plan_validated"), on_milestone(100_000, "first_sales")],
        );
        call!(
            f,
            manager,
            create_award,
            work4life_proto::grants::CreateAwardRequest { award: Some(award), request_id: String::new() },
            |r| r.award.as_mut().expect("award").payee.as_mut().expect("payee").holder_name = "Someone else".into()
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM awards").await, 3, "one award per scenario");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 3 * 300_000, "each award reserved once");
}

/// An award of two milestone tranches (scheduled): the award as read.
async fn scheduled_award(f: &Fixture, manager: &str) -> Award {
    let app = f.accepted("tanger", 1).await;
    f.create_award(
        manager,
        startup_award(
            &f.line(COLLECTIVE_TANGER),
            &app.application,
            vec![on_milestone(300_000, "business_plan_validated"), on_milestone(200_000, "first_sales")],
        ),
    )
    .await
    .expect("award")
}

#[tokio::test]
async fn amend_award_is_idempotent() {
    let f = &fresh().await;
    let manager = &f.manager(&["tanger"]).1;
    replays(f, effects(1, 1, 1), || async move {
        let award = scheduled_award(f, manager).await;
        let mut tranches = award.tranches.clone();
        tranches[1].amount = Some(eur(250_000));
        call!(
            f,
            manager,
            amend_award,
            AmendAwardRequest {
                name: award.name.clone(),
                tranches,
                reason: "the market stall costs more".into(),
                etag: award.etag.clone(),
                request_id: String::new(),
            },
            |r| r.reason = "another reason".into()
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM award_amendments").await, 3, "one amendment per scenario");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 3 * 550_000);
}

#[tokio::test]
async fn cancel_award_is_idempotent() {
    let f = &fresh().await;
    let manager = &f.manager(&["tanger"]).1;
    replays(f, effects(1, 1, 1), || async move {
        let award = scheduled_award(f, manager).await;
        call!(
            f,
            manager,
            cancel_award,
            CancelAwardRequest {
                name: award.name.clone(),
                reason: "the group dissolved".into(),
                etag: award.etag.clone(),
                request_id: String::new(),
            },
            |r| r.reason = "another reason".into()
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM postings WHERE kind = 'release'").await, 3, "one release per cancellation");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 0, "everything went back to the line once");
}

/// The first day of the month `back` months before `today` (`2026-11-29`).
fn month_start(today: &str, back: i32) -> String {
    let year: i32 = today[..4].parse().expect("year");
    let month: i32 = today[5..7].parse().expect("month");
    let total = year * 12 + month - 1 - back;
    format!("{}-{:02}-01", total.div_euclid(12), total.rem_euclid(12) + 1)
}

#[tokio::test]
async fn confirm_bursary_month_is_idempotent() {
    let f = &fresh().await;
    let manager = &f.manager(&["tanger"]).1;
    let start = &month_start(&today(&f.pool).await, 2);
    replays(f, effects(0, 1, 1), || async move {
        let placement = f.accepted_placement("tanger").await;
        let award = f.create_award(manager, bursary_award(&f.line(WORK_BURSARIES), &placement, 60_000, 3, start)).await.expect("bursary");
        assert_eq!(award.tranches[0].state, TrancheState::Held as i32, "a month over without confirmation is held");
        let other = award.tranches[1].name.clone();
        call!(
            f,
            manager,
            confirm_bursary_month,
            ConfirmBursaryMonthRequest { tranche: award.tranches[0].name.clone(), request_id: String::new() },
            |r| r.tranche = other.clone()
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM tranches WHERE confirmed_by IS NOT NULL").await, 3);
    assert_eq!(f.events("grants.tranche.payable").await.len(), 3, "each confirmed month announced once");
}

#[tokio::test]
async fn request_disbursement_is_idempotent() {
    let f = &fresh().await;
    let maker = &f.maker(&[]).1;
    replays(f, effects(0, 0, 1), || async move {
        let (_, tranche) = payable(f).await;
        call!(f, maker, request_disbursement, RequestDisbursementRequest { tranche, request_id: String::new() }, |r| r.tranche =
            format!("{}0", r.tranche))
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM disbursements").await, 3, "one disbursement per scenario");
}

#[tokio::test]
async fn approve_disbursement_is_idempotent() {
    let f = &fresh().await;
    let maker = &f.maker(&[]).1;
    let checker = &f.checker(&[]).1;
    replays(f, effects(0, 1, 1), || async move {
        let d = pending(f, maker).await;
        call!(f, checker, approve_disbursement, ApproveDisbursementRequest { name: d.name, request_id: String::new() }, |r| r.name =
            not_a_disbursement())
    })
    .await;
    assert_eq!(f.events("grants.disbursement.approved").await.len(), 3, "one approval event per scenario");
}

#[tokio::test]
async fn reject_disbursement_is_idempotent() {
    let f = &fresh().await;
    let maker = &f.maker(&[]).1;
    let checker = &f.checker(&[]).1;
    replays(f, effects(0, 0, 1), || async move {
        let d = pending(f, maker).await;
        call!(
            f,
            checker,
            reject_disbursement,
            RejectDisbursementRequest { name: d.name, reason: "the RIB is not the cooperative's".into(), request_id: String::new() },
            |r| r.reason = "another reason".into()
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM disbursements WHERE state = 'rejected'").await, 3);
}

#[tokio::test]
async fn requeue_disbursement_is_idempotent() {
    let f = &fresh().await;
    let maker = &f.maker(&[]).1;
    replays(f, effects(0, 0, 1), || async move {
        let (d, batch) = sent(f, maker).await;
        f.import(maker, &batch, &[(&d.name, false, "account closed")]).await.expect("failed");
        call!(f, maker, requeue_disbursement, RequeueDisbursementRequest { name: d.name, request_id: String::new() }, |r| r.name =
            not_a_disbursement())
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM disbursements WHERE retry_of IS NOT NULL").await, 3, "one retry per failed payment");
}

#[tokio::test]
async fn create_payment_batch_is_idempotent() {
    let f = &fresh().await;
    let maker = &f.maker(&[]).1;
    replays(f, effects(0, 0, 1), || async move {
        approved(f, maker).await;
        call!(
            f,
            maker,
            create_payment_batch,
            CreatePaymentBatchRequest {
                budget: f.budget.clone(),
                currency_code: "EUR".into(),
                method: PaymentMethod::BankTransfer as i32,
                max_count: 0,
                request_id: String::new(),
            },
            |r| r.max_count = 7
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM payment_batches").await, 3, "one batch per scenario");
}

#[tokio::test]
async fn import_payment_results_is_idempotent() {
    let f = &fresh().await;
    let maker = &f.maker(&[]).1;
    replays(f, effects(1, 1, 1), || async move {
        let (d, batch) = sent(f, maker).await;
        call!(
            f,
            maker,
            import_payment_results,
            ImportPaymentResultsRequest {
                name: batch,
                results: vec![PaymentResult {
                    disbursement: d.name,
                    paid: true,
                    external_reference: "BANK-77".into(),
                    failure_reason: String::new(),
                }],
                request_id: String::new(),
            },
            |r| r.results[0].external_reference = "BANK-78".into()
        )
    })
    .await;
    assert_eq!(f.count("SELECT count(*) FROM postings WHERE kind = 'payment'").await, 3, "each payment posted once");
    assert_eq!(f.events("grants.disbursement.paid").await.len(), 3);
}
