//! The money's path end to end on one award: accepted application → award with a milestone and a
//! date tranche → the milestone verified by coaching → maker's request → checker's approval →
//! batch → bank file → paid; the books balance at every step.

mod common;

use common::*;
use work4life_proto::grants::TrancheState;

#[tokio::test]
async fn an_award_goes_from_commitment_to_payment_with_balanced_books() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let app = f.accepted("tanger", 4).await;
    let award = f
        .create_award(
            &manager,
            startup_award(
                &f.line(COLLECTIVE_TANGER),
                &app.application,
                vec![on_milestone(2_000_000, "business_plan_validated"), on_date(1_000_000, &today(&f.pool).await)],
            ),
        )
        .await
        .expect("award");
    assert_eq!(award.tranches.len(), 2);
    assert_eq!(award.tranches[0].state, TrancheState::Scheduled as i32);
    assert_eq!(award.tranches[1].state, TrancheState::Payable as i32, "a tranche due today is payable at once");
    assert_eq!(f.line_counters(COLLECTIVE_TANGER).await.1, 3_000_000);
    f.assert_books_balance().await;

    f.verify_milestone(&award.name, "business_plan_validated").await;
    let first = award.tranches[0].name.clone();
    eventually("the milestone makes the first tranche payable", EVENT_WAIT, || async {
        let a = f.get_award(&f.admin, &award.name).await.expect("award");
        (a.tranches[0].state == TrancheState::Payable as i32).then_some(())
    })
    .await;

    let (_, maker) = f.maker(&["tanger"]);
    let (_, checker) = f.checker(&["tanger"]);
    let d = f.request(&maker, &first).await.expect("request");
    let self_approval = f.approve(&maker, &d.name).await.expect_err("the maker cannot approve");
    assert_eq!(self_approval.code(), tonic::Code::PermissionDenied);
    f.approve(&checker, &d.name).await.expect("approve");
    let batch = f.batch(&maker).await.expect("batch");
    assert_eq!(batch.count, 1);
    let (_, file) = f.export(&maker, &batch.name).await.expect("export");
    assert!(file.contains("011780000012345678901234"), "the bank file carries the account: {file}");
    assert!(file.contains("20000.00,EUR,2000000"), "{file}");
    f.assert_books_balance().await;
    let (settled, recorded, _) = f.import(&maker, &batch.name, &[(&d.name, true, "BANK-REF-1")]).await.expect("import");
    assert_eq!(recorded, 1);
    assert_eq!(settled.paid_count, 1);
    let a = f.get_award(&f.admin, &award.name).await.expect("award");
    assert_eq!(a.tranches[0].state, TrancheState::Paid as i32);
    assert_eq!(a.disbursed.as_ref().map(|m| m.amount_minor), Some(2_000_000));
    f.assert_books_balance().await;
}
