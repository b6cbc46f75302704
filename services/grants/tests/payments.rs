//! Payment batches and the bank's results: the transfer file (one row per disbursement, the
//! account opened, quoting and formula neutralisation, its SHA-256, a second export identical and
//! moving no money), results paid and failed (postings, events, tranche and award states),
//! repeated and conflicting results, results of another batch, results before export, the
//! requeue of a failed payment paid exactly once, batches scoped to the maker's zones and never
//! sharing a disbursement under concurrency, and figures read at a past instant.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use tonic::Code;
use work4life_proto::grants::{
    Award, AwardState, CreatePaymentBatchRequest, Disbursement, DisbursementChanged, DisbursementState, GetBalancesRequest,
    GetBudgetLineRequest, GetBudgetRequest, GetDisbursementRequest, ListPostingsRequest, PaymentBatchState, PaymentMethod, Posting,
    RequeueDisbursementRequest, TrancheState,
};

const HEADER: &str = "batch,line,disbursement,award,tranche,payee_name,payment_method,account,amount,currency,amount_minor,reference,zone";

/// An accepted collective start-up in `zone` awarded one tranche of `amount` due today (payable
/// at once), paid to `holder` on `account`: the award and its tranche's name.
async fn payable_to(f: &Fixture, zone: &str, amount: i64, holder: &str, account: &str) -> (Award, String) {
    let app = f.accepted(zone, 1).await;
    let (_, manager) = f.manager(&[zone]);
    let mut award = startup_award(&f.line(&format!("collective_{zone}")), &app.application, vec![on_date(amount, &today(&f.pool).await)]);
    let payee = award.payee.as_mut().expect("payee");
    payee.holder_name = holder.into();
    payee.account = account.into();
    let award = f.create_award(&manager, award).await.expect("award");
    assert_eq!(award.tranches[0].state, TrancheState::Payable as i32, "a tranche due today is payable");
    let tranche = award.tranches[0].name.clone();
    (award, tranche)
}

async fn payable(f: &Fixture, zone: &str, amount: i64) -> (Award, String) {
    payable_to(f, zone, amount, "Coopérative Tanger Couture", "011780000012345678901234").await
}

/// A payable tranche of `zone` requested by `maker` and approved by a checker.
async fn approved(f: &Fixture, maker: &str, zone: &str, amount: i64) -> (Award, Disbursement) {
    let (award, tranche) = payable(f, zone, amount).await;
    let d = f.request(maker, &tranche).await.expect("request");
    let (_, checker) = f.checker(&[]);
    let d = f.approve(&checker, &d.name).await.expect("approve");
    assert_eq!(d.state, DisbursementState::Approved as i32);
    (award, d)
}

async fn disbursement(f: &Fixture, name: &str) -> Disbursement {
    f.client()
        .await
        .get_disbursement(bearer(GetDisbursementRequest { name: name.into() }, &f.admin))
        .await
        .expect("get disbursement")
        .into_inner()
        .disbursement
        .expect("disbursement")
}

/// Every posting of the budget (oldest first) concerning `award`.
async fn postings_of(f: &Fixture, award: &str) -> Vec<Posting> {
    f.client()
        .await
        .list_postings(bearer(
            ListPostingsRequest { budget: f.budget.clone(), award: award.into(), page_size: 500, ..ListPostingsRequest::default() },
            &f.admin,
        ))
        .await
        .expect("list postings")
        .into_inner()
        .postings
}

async fn postings_count(f: &Fixture) -> i64 {
    f.count("SELECT count(*) FROM postings").await
}

async fn balance(f: &Fixture, account: &str) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(amount_minor), 0)::bigint FROM entries WHERE account = $1")
        .bind(account)
        .fetch_one(&f.pool)
        .await
        .expect("balance")
}

fn stage(f: &Fixture, line: &str, stage: &str) -> String {
    format!("{}/{stage}", f.line(line))
}

/// Parses RFC 4180 CSV (`"`-quoted fields, `""` inside quotes).
fn parse_csv(content: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                '\r' => {}
                _ => field.push(c),
            }
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn changed(f_events: &[work4life_proto::events::Event], disbursement: &str) -> Vec<DisbursementChanged> {
    f_events.iter().map(payload::<DisbursementChanged>).filter(|e| e.disbursement == disbursement).collect()
}

#[tokio::test]
async fn the_bank_file_has_one_row_per_disbursement_and_a_second_export_moves_nothing() {
    let f = fresh().await;
    let (_, maker) = f.maker(&["tanger"]);
    let (_, checker) = f.checker(&["tanger"]);
    let quoted_holder = "Coopérative \"Al Amal\", Tanger";
    let formula_holder = "=HYPERLINK(1) Couture";
    let (a1, t1) = payable_to(&f, "tanger", 123_456, quoted_holder, "011780000012345678901234").await;
    let (a2, t2) = payable_to(&f, "tanger", 700_001, formula_holder, "MA64 0117 8000 0012 3456 7890 1234").await;
    let d1 = f.request(&maker, &t1).await.expect("request 1");
    let d2 = f.request(&maker, &t2).await.expect("request 2");
    f.approve(&checker, &d1.name).await.expect("approve 1");
    f.approve(&checker, &d2.name).await.expect("approve 2");
    let batch = f.batch(&maker).await.expect("batch");
    assert_eq!(batch.state, PaymentBatchState::Open as i32);
    assert_eq!(batch.count, 2);
    assert_eq!(batch.total.as_ref().map(|m| m.amount_minor), Some(823_457));
    assert!(batch.file_sha256.is_empty(), "an open batch has no file yet");
    let before = postings_count(&f).await;
    let committed_before = balance(&f, &stage(&f, COLLECTIVE_TANGER, "committed")).await;

    let (exported, file) = f.export(&maker, &batch.name).await.expect("export");
    assert_eq!(exported.state, PaymentBatchState::Exported as i32);
    assert!(exported.export_time.is_some());
    assert_eq!(exported.file_sha256, hex::encode(Sha256::digest(file.as_bytes())), "file_sha256 is the SHA-256 of the content");
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines[0], HEADER, "{file}");
    let rows = parse_csv(&file);
    assert_eq!(rows.len(), 3, "a header and one row per disbursement: {file}");
    assert_eq!(rows[0].join(","), HEADER);
    let batch_id = batch.name.trim_start_matches("paymentBatches/");
    assert!(!batch_id.is_empty());
    for (award, d, holder, account, amount, minor) in [
        (&a1, &d1, quoted_holder, "011780000012345678901234", "1234.56", "123456"),
        (&a2, &d2, formula_holder, "MA64011780000012345678901234", "7000.01", "700001"),
    ] {
        let row = rows.iter().find(|r| r.get(2) == Some(&d.name)).unwrap_or_else(|| panic!("a row for {}: {file}", d.name));
        assert_eq!(row.len(), 13, "13 columns: {row:?}");
        assert_eq!(row[0], batch.name);
        assert_eq!(row[1], f.line(COLLECTIVE_TANGER));
        assert_eq!(row[3], award.name);
        assert_eq!(row[4], "1");
        let expected_holder = if holder.starts_with('=') { format!("'{holder}") } else { holder.to_string() };
        assert_eq!(row[5], expected_holder, "the payee's name, neutralised when it starts like a formula");
        assert_eq!(row[6], "bank_transfer");
        assert_eq!(row[7], account, "the bank file shows the account whole");
        assert_eq!(row[8], amount);
        assert_eq!(row[9], "EUR");
        assert_eq!(row[10], minor);
        assert_eq!(row[11], d.name.trim_start_matches("disbursements/").replace('-', ""));
        assert_eq!(row[12], "tanger");
    }
    assert!(file.contains("\"Coopérative \"\"Al Amal\"\", Tanger\""), "a name with a comma and quotes is quoted: {file}");
    assert!(file.contains(",'=HYPERLINK(1) Couture,"), "a formula is neutralised: {file}");
    assert!(!file.contains(",=HYPERLINK"), "{file}");

    // The money moved once per row: committed → in_payment.
    assert_eq!(postings_count(&f).await, before + 2);
    for (award, d) in [(&a1, &d1), (&a2, &d2)] {
        let sent: Vec<Posting> = postings_of(&f, &award.name).await.into_iter().filter(|p| p.kind == "disbursement").collect();
        assert_eq!(sent.len(), 1, "one disbursement posting for {}", d.name);
        assert_eq!(sent[0].disbursement, d.name);
        let amount = d.amount.as_ref().map(|m| m.amount_minor).unwrap_or_default();
        let debit = sent[0].entries.iter().find(|e| e.amount.as_ref().is_some_and(|m| m.amount_minor > 0)).expect("debit");
        assert_eq!(debit.account, stage(&f, COLLECTIVE_TANGER, "in_payment"));
        assert_eq!(debit.amount.as_ref().map(|m| m.amount_minor), Some(amount));
        assert_eq!(disbursement(&f, &d.name).await.state, DisbursementState::Sent as i32);
    }
    assert_eq!(balance(&f, &stage(&f, COLLECTIVE_TANGER, "in_payment")).await, 823_457);
    assert_eq!(balance(&f, &stage(&f, COLLECTIVE_TANGER, "committed")).await, committed_before - 823_457);
    f.assert_books_balance().await;

    // Exporting again: the same bytes, no money moved, nothing written.
    let fingerprint = f.fingerprint().await;
    let (again, file_again) = f.export(&maker, &batch.name).await.expect("export again");
    assert_eq!(file_again.as_bytes(), file.as_bytes(), "a second export returns the same file");
    assert_eq!(again.file_sha256, exported.file_sha256);
    assert_eq!(again.state, PaymentBatchState::Exported as i32);
    assert_eq!(postings_count(&f).await, before + 2, "a second export moves no money");
    assert_eq!(f.fingerprint().await, fingerprint, "a second export writes nothing");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn results_are_recorded_once_and_conflicts_are_refused() {
    let f = fresh().await;
    let (_, maker) = f.maker(&["tanger"]);
    let (a, da) = approved(&f, &maker, "tanger", 400_000).await;
    let (b, db) = approved(&f, &maker, "tanger", 300_000).await;
    let batch = f.batch(&maker).await.expect("batch");
    assert_eq!(batch.count, 2);

    // Before the export there is nothing to import.
    let fingerprint = f.fingerprint().await;
    let err = f.import(&maker, &batch.name, &[(&da.name, true, "BANK-A")]).await.expect_err("not exported");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "BATCH_NOT_EXPORTED");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(batch.name.clone()));
    assert_eq!(f.fingerprint().await, fingerprint, "a refused import writes nothing");

    f.export(&maker, &batch.name).await.expect("export");

    // A disbursement of another batch.
    let (_, dc) = approved(&f, &maker, "tanger", 200_000).await;
    let other = f.batch(&maker).await.expect("second batch");
    assert_eq!(other.count, 1);
    let fingerprint = f.fingerprint().await;
    let err = f.import(&maker, &batch.name, &[(&da.name, true, "BANK-A"), (&dc.name, true, "BANK-C")]).await.expect_err("another batch");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(fields(&err), vec!["results[1].disbursement".to_string()]);
    assert_eq!(f.fingerprint().await, fingerprint, "nothing written, not even the valid result");
    let err = f.import(&maker, &other.name, &[(&dc.name, true, "BANK-C")]).await.expect_err("the other batch is open");
    assert_eq!(reason(&err), "BATCH_NOT_EXPORTED");

    // Paid.
    let postings = postings_count(&f).await;
    let (after, recorded, unchanged) = f.import(&maker, &batch.name, &[(&da.name, true, "BANK-A")]).await.expect("paid");
    assert_eq!((recorded, unchanged), (1, 0));
    assert_eq!(after.state, PaymentBatchState::Exported as i32, "one result is still missing");
    assert_eq!((after.paid_count, after.failed_count), (1, 0));
    let paid = disbursement(&f, &da.name).await;
    assert_eq!(paid.state, DisbursementState::Paid as i32);
    assert_eq!(paid.external_reference, "BANK-A");
    assert!(paid.settle_time.is_some());
    let award = f.get_award(&f.admin, &a.name).await.expect("award");
    assert_eq!(award.tranches[0].state, TrancheState::Paid as i32);
    assert_eq!(award.state, AwardState::Completed as i32, "its only tranche is paid");
    assert_eq!(award.disbursed.as_ref().map(|m| m.amount_minor), Some(400_000));
    assert_eq!(postings_count(&f).await, postings + 1);
    let payments: Vec<Posting> = postings_of(&f, &a.name).await.into_iter().filter(|p| p.kind == "payment").collect();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].disbursement, da.name);
    let events = changed(&f.events("grants.disbursement.paid").await, &da.name);
    assert_eq!(events.len(), 1, "one paid event");
    assert_eq!(events[0].external_reference, "BANK-A");
    assert_eq!(events[0].award, a.name);

    // A result that contradicts a settled one is refused, with the rest of the import.
    let fingerprint = f.fingerprint().await;
    let err = f
        .import(&maker, &batch.name, &[(&db.name, false, "account closed"), (&da.name, false, "changed our mind")])
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "RESULT_CONFLICTS");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(da.name.clone()));
    assert_eq!(f.fingerprint().await, fingerprint, "a conflicting import writes nothing, not even its valid results");
    let err = f.import(&maker, &batch.name, &[(&da.name, true, "BANK-OTHER")]).await.expect_err("another reference");
    assert_eq!(reason(&err), "RESULT_CONFLICTS");
    assert_eq!(f.fingerprint().await, fingerprint);
    assert_eq!(disbursement(&f, &db.name).await.state, DisbursementState::Sent as i32);

    // Failed.
    let postings = postings_count(&f).await;
    let (after, recorded, unchanged) = f.import(&maker, &batch.name, &[(&db.name, false, "account closed")]).await.expect("failed");
    assert_eq!((recorded, unchanged), (1, 0));
    assert_eq!(after.state, PaymentBatchState::Settled as i32, "every disbursement has its result");
    assert_eq!((after.paid_count, after.failed_count), (1, 1));
    let failed = disbursement(&f, &db.name).await;
    assert_eq!(failed.state, DisbursementState::Failed as i32);
    assert_eq!(failed.failure_reason, "account closed");
    assert!(failed.settle_time.is_some());
    let award_b = f.get_award(&f.admin, &b.name).await.expect("award b");
    assert_eq!(award_b.tranches[0].state, TrancheState::Payable as i32, "the tranche is payable again");
    assert_eq!(award_b.state, AwardState::Active as i32);
    assert_eq!(postings_count(&f).await, postings + 1);
    let of_b = postings_of(&f, &b.name).await;
    let sent = of_b.iter().find(|p| p.kind == "disbursement").expect("disbursement posting");
    let reversals: Vec<&Posting> = of_b.iter().filter(|p| p.kind == "reversal").collect();
    assert_eq!(reversals.len(), 1);
    assert_eq!(reversals[0].reverses, sent.name, "the reversal names the posting it reverses");
    assert_eq!(reversals[0].disbursement, db.name);
    let debit = reversals[0].entries.iter().find(|e| e.amount.as_ref().is_some_and(|m| m.amount_minor > 0)).expect("debit");
    assert_eq!(debit.account, stage(&f, COLLECTIVE_TANGER, "committed"), "the money returns to the commitment");
    assert_eq!(debit.amount.as_ref().map(|m| m.amount_minor), Some(300_000));
    let events = changed(&f.events("grants.disbursement.failed").await, &db.name);
    assert_eq!(events.len(), 1, "one failed event");
    assert_eq!(events[0].failure_reason, "account closed");

    // The same results again: unchanged, nothing written.
    let fingerprint = f.fingerprint().await;
    let (again, recorded, unchanged) =
        f.import(&maker, &batch.name, &[(&da.name, true, "BANK-A"), (&db.name, false, "account closed")]).await.expect("again");
    assert_eq!((recorded, unchanged), (0, 2));
    assert_eq!(again.state, PaymentBatchState::Settled as i32);
    assert_eq!(f.fingerprint().await, fingerprint, "identical results write nothing");
    assert_eq!(changed(&f.events("grants.disbursement.paid").await, &da.name).len(), 1);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn a_failed_payment_requeued_is_paid_exactly_once() {
    let f = fresh().await;
    let (_, maker) = f.maker(&["oujda"]);
    let (_, checker) = f.checker(&["oujda"]);
    let line = "collective_oujda";
    let (award, first) = approved(&f, &maker, "oujda", 555_555).await;
    let batch = f.batch(&maker).await.expect("batch");
    f.export(&maker, &batch.name).await.expect("export");
    f.import(&maker, &batch.name, &[(&first.name, false, "beneficiary unknown")]).await.expect("failed");

    let requeue = |name: String| {
        let maker = maker.clone();
        let f = &f;
        async move {
            f.client()
                .await
                .requeue_disbursement(bearer(RequeueDisbursementRequest { name, request_id: rid() }, &maker))
                .await
                .map(|r| r.into_inner().disbursement.expect("disbursement"))
        }
    };
    let retry = requeue(first.name.clone()).await.expect("requeue");
    assert_ne!(retry.name, first.name, "a new disbursement, the failed one untouched");
    assert_eq!(retry.state, DisbursementState::PendingApproval as i32);
    assert_eq!(retry.retry_of, first.name);
    assert_eq!(retry.tranche, first.tranche);
    assert_eq!(retry.amount, first.amount);
    assert_eq!(disbursement(&f, &first.name).await.state, DisbursementState::Failed as i32);
    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(a.tranches[0].state, TrancheState::InPayment as i32);

    // Only a failed disbursement is requeued.
    let fingerprint = f.fingerprint().await;
    let err = requeue(retry.name.clone()).await.expect_err("pending is not failed");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_FAILED");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(retry.name.clone()));
    assert_eq!(f.fingerprint().await, fingerprint);
    // The failed one again, while its retry is live: the tranche is not paid twice.
    let err = requeue(first.name.clone()).await.expect_err("a live retry exists");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "DISBURSEMENT_EXISTS");
    assert_eq!(f.fingerprint().await, fingerprint);

    f.approve(&checker, &retry.name).await.expect("approve the retry");
    let second = f.batch(&maker).await.expect("second batch");
    assert_eq!(second.count, 1);
    let (_, file) = f.export(&maker, &second.name).await.expect("export the retry");
    assert!(file.contains(&retry.name) && !file.contains(&first.name), "only the retry goes out again: {file}");
    let (settled, recorded, _) = f.import(&maker, &second.name, &[(&retry.name, true, "BANK-RETRY")]).await.expect("paid");
    assert_eq!(recorded, 1);
    assert_eq!(settled.state, PaymentBatchState::Settled as i32);

    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(a.tranches[0].state, TrancheState::Paid as i32);
    assert_eq!(a.state, AwardState::Completed as i32);
    assert_eq!(a.disbursed.as_ref().map(|m| m.amount_minor), Some(555_555));
    let kinds: Vec<String> = postings_of(&f, &award.name).await.into_iter().map(|p| p.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "payment").count(), 1, "the tranche is paid once: {kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "disbursement").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "reversal").count(), 1, "{kinds:?}");
    assert_eq!(balance(&f, &stage(&f, line, "disbursed")).await, 555_555, "the line disbursed the tranche's amount once");
    assert_eq!(balance(&f, &stage(&f, line, "in_payment")).await, 0);
    let read = f
        .client()
        .await
        .get_budget_line(bearer(GetBudgetLineRequest { name: f.line(line), as_of: None }, &f.admin))
        .await
        .expect("line")
        .into_inner()
        .line
        .expect("line");
    assert_eq!(read.figures.and_then(|x| x.disbursed).map(|m| m.amount_minor), Some(555_555));
    // Requeueing a paid disbursement is refused too.
    let err = requeue(retry.name.clone()).await.expect_err("paid is not failed");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_FAILED");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn a_batch_takes_only_approved_disbursements_of_the_makers_zones() {
    let f = fresh().await;
    let (_, tanger_maker) = f.maker(&["tanger"]);
    let (_, oujda_maker) = f.maker(&["oujda"]);

    // Nothing approved yet.
    let fingerprint = f.fingerprint().await;
    let err = f.batch(&tanger_maker).await.expect_err("nothing to pay");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "NOTHING_TO_PAY");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(f.budget.clone()));
    assert_eq!(f.fingerprint().await, fingerprint, "no empty batch is left behind");

    let (_, tanger) = approved(&f, &tanger_maker, "tanger", 100_000).await;
    let (_, oujda) = approved(&f, &oujda_maker, "oujda", 200_000).await;
    let (_, pending_tranche) = payable(&f, "oujda", 300_000).await;
    let pending = f.request(&oujda_maker, &pending_tranche).await.expect("pending");

    let batch = f.batch(&oujda_maker).await.expect("oujda batch");
    assert_eq!(batch.count, 1, "only the approved disbursement of Oujda");
    assert_eq!(batch.total.as_ref().map(|m| m.amount_minor), Some(200_000));
    assert_eq!(disbursement(&f, &oujda.name).await.payment_batch, batch.name);
    assert_eq!(disbursement(&f, &oujda.name).await.state, DisbursementState::Batched as i32);
    assert_eq!(disbursement(&f, &tanger.name).await.state, DisbursementState::Approved as i32, "Tanger's is not Oujda's maker's");
    assert_eq!(disbursement(&f, &pending.name).await.state, DisbursementState::PendingApproval as i32, "pending is not batched");
    let err = f.batch(&oujda_maker).await.expect_err("Oujda has nothing left");
    assert_eq!(reason(&err), "NOTHING_TO_PAY");

    let batch = f.batch(&tanger_maker).await.expect("tanger batch");
    assert_eq!(batch.count, 1);
    assert_eq!(disbursement(&f, &tanger.name).await.payment_batch, batch.name);
    let mobile = f
        .client()
        .await
        .create_payment_batch(bearer(
            CreatePaymentBatchRequest {
                budget: f.budget.clone(),
                currency_code: "EUR".into(),
                method: PaymentMethod::MobileMoney as i32,
                max_count: 0,
                request_id: rid(),
            },
            &f.admin,
        ))
        .await
        .expect_err("an admin is no finance officer");
    assert_eq!(mobile.code(), Code::PermissionDenied, "{mobile:?}");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn concurrent_batches_never_share_a_disbursement() {
    let f = fresh().await;
    let (_, maker) = f.maker(&[]);
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(approved(&f, &maker, "tanger", 10_000).await.1.name);
    }
    let calls = (0..6).map(|_| {
        let maker = maker.clone();
        let f = &f;
        async move {
            f.client()
                .await
                .create_payment_batch(bearer(
                    CreatePaymentBatchRequest {
                        budget: f.budget.clone(),
                        currency_code: "EUR".into(),
                        method: PaymentMethod::BankTransfer as i32,
                        max_count: 3,
                        request_id: rid(),
                    },
                    &maker,
                ))
                .await
                .map(|r| r.into_inner().payment_batch.expect("batch"))
        }
    });
    let results = futures::future::join_all(calls).await;
    let mut total = 0;
    let mut batches = Vec::new();
    for r in results {
        match r {
            Ok(b) => {
                assert!((1..=3).contains(&b.count), "{b:?}");
                total += b.count;
                batches.push(b);
            }
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "only NOTHING_TO_PAY may refuse a batch: {e:?}");
                assert_eq!(reason(&e), "NOTHING_TO_PAY");
            }
        }
    }
    assert!(batches.len() >= 2, "concurrent batches of three each take their share: {batches:?}");
    // Whatever the race left behind goes in one more batch.
    if total < 10 {
        let last = f.batch(&maker).await.expect("the rest");
        total += last.count;
        batches.push(last);
    }
    assert_eq!(total, 10, "every disbursement in exactly one batch");
    for b in &batches {
        let id = b.name.trim_start_matches("paymentBatches/");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM disbursements WHERE batch_id = $1::uuid")
            .bind(id)
            .fetch_one(&f.pool)
            .await
            .expect("count");
        assert_eq!(n, i64::from(b.count), "{} holds what it announced", b.name);
    }
    let batched = f.count("SELECT count(*) FROM disbursements WHERE state = 'batched' AND batch_id IS NOT NULL").await;
    assert_eq!(batched, 10);
    assert_eq!(f.count("SELECT count(*) FROM payment_batches").await, batches.len() as i64, "no empty batch");
    for name in &names {
        let batch = disbursement(&f, name).await.payment_batch;
        assert!(batches.iter().any(|b| b.name == batch), "{name} is in one of the batches");
    }
    f.assert_books_balance().await;
}

#[tokio::test]
async fn figures_as_of_an_earlier_instant_show_the_earlier_money() {
    let f = fresh().await;
    let (_, maker) = f.maker(&["beni_mellal"]);
    let line = "collective_beni_mellal";
    let (award, d) = approved(&f, &maker, "beni_mellal", 1_000_000).await;
    let batch = f.batch(&maker).await.expect("batch");
    f.export(&maker, &batch.name).await.expect("export");
    f.import(&maker, &batch.name, &[(&d.name, true, "BANK-BM")]).await.expect("paid");
    let postings = postings_of(&f, &award.name).await;
    let at = |kind: &str| postings.iter().find(|p| p.kind == kind).and_then(|p| p.post_time).unwrap_or_else(|| panic!("{kind}"));
    let (committed_at, sent_at) = (at("commitment"), at("disbursement"));
    let client = f.client().await;

    let line_at = |as_of| {
        let mut client = client.clone();
        let name = f.line(line);
        let admin = f.admin.clone();
        async move {
            client
                .get_budget_line(bearer(GetBudgetLineRequest { name, as_of }, &admin))
                .await
                .expect("line")
                .into_inner()
                .line
                .and_then(|l| l.figures)
                .expect("figures")
        }
    };
    let minor = |m: Option<work4life_proto::types::Money>| m.map(|m| m.amount_minor).unwrap_or_default();
    let now = line_at(None).await;
    assert_eq!((minor(now.disbursed), minor(now.in_payment)), (1_000_000, 0));
    let sent = line_at(Some(sent_at)).await;
    assert_eq!((minor(sent.disbursed), minor(sent.in_payment)), (0, 1_000_000), "before the payment it was in payment");
    assert_eq!(minor(sent.committed), 1_000_000);
    let committed = line_at(Some(committed_at)).await;
    assert_eq!((minor(committed.disbursed), minor(committed.in_payment), minor(committed.committed)), (0, 0, 1_000_000));
    assert_eq!(minor(committed.available), 15_000_000 - 1_000_000);

    let budget_at = |as_of| {
        let mut client = client.clone();
        let name = f.budget.clone();
        let admin = f.admin.clone();
        async move {
            client.get_budget(bearer(GetBudgetRequest { name, as_of }, &admin)).await.expect("budget").into_inner().budget.expect("budget")
        }
    };
    let b_now = budget_at(None).await;
    let b_sent = budget_at(Some(sent_at)).await;
    assert_eq!(minor(b_now.figures.clone().and_then(|x| x.disbursed)), 1_000_000);
    assert_eq!(minor(b_sent.figures.clone().and_then(|x| x.disbursed)), 0);
    assert_eq!(minor(b_sent.figures.and_then(|x| x.in_payment)), 1_000_000);
    assert_eq!(b_sent.as_of, Some(sent_at), "the figures say which instant they are of");
    assert_eq!(b_now.disbursed_beneficiary_share_bp, 50, "1,000,000 of 200,000,000 cents");
    assert_eq!(b_sent.disbursed_beneficiary_share_bp, 0);

    let balances = |as_of| {
        let mut client = client.clone();
        let budget = f.budget.clone();
        let admin = f.admin.clone();
        async move {
            let r = client.get_balances(bearer(GetBalancesRequest { budget, as_of }, &admin)).await.expect("balances").into_inner();
            let map: std::collections::HashMap<String, i64> =
                r.balances.into_iter().map(|b| (b.account, b.balance.map(|m| m.amount_minor).unwrap_or_default())).collect();
            (map, r.as_of)
        }
    };
    let (then, then_at) = balances(Some(sent_at)).await;
    assert_eq!(then_at, Some(sent_at));
    assert_eq!(then.get(&stage(&f, line, "in_payment")).copied(), Some(1_000_000));
    assert_eq!(then.get(&stage(&f, line, "disbursed")).copied().unwrap_or_default(), 0, "not yet paid at that instant");
    let (now, _) = balances(None).await;
    assert_eq!(now.get(&stage(&f, line, "in_payment")).copied().unwrap_or_default(), 0);
    assert_eq!(now.get(&stage(&f, line, "disbursed")).copied(), Some(1_000_000));
    f.assert_books_balance().await;
}
