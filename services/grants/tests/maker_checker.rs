//! Maker-checker: the maker never approves their own request (not even holding both roles, and
//! the database refuses it too), only finance checkers of the award's zone approve, one live
//! request per tranche (also under 20 concurrent makers), only payable tranches are requested,
//! rejection with a reason frees the tranche, decisions are taken once and announced once.

mod common;

use common::*;
use tonic::Code;
use work4life_proto::grants::{
    ApproveDisbursementRequest, Award, Disbursement, DisbursementChanged, DisbursementState, RejectDisbursementRequest, TrancheState,
};

/// An accepted collective start-up in `zone` with one tranche of `amount` due today (payable).
async fn payable(f: &Fixture, zone: &str, amount: i64) -> (Award, String) {
    let app = f.accepted(zone, 2).await;
    let (_, manager) = f.manager(&[zone]);
    let award = f
        .create_award(
            &manager,
            startup_award(&f.line(&format!("collective_{zone}")), &app.application, vec![on_date(amount, &today(&f.pool).await)]),
        )
        .await
        .expect("award");
    assert_eq!(award.tranches[0].state, TrancheState::Payable as i32);
    let tranche = award.tranches[0].name.clone();
    (award, tranche)
}

async fn reject(f: &Fixture, checker: &str, name: &str, why: &str) -> Result<Disbursement, tonic::Status> {
    f.client()
        .await
        .reject_disbursement(bearer(
            RejectDisbursementRequest { name: name.into(), reason: why.into(), request_id: String::new() },
            checker,
        ))
        .await
        .map(|r| r.into_inner().disbursement.expect("disbursement"))
}

async fn tranche_state(f: &Fixture, award: &str) -> i32 {
    f.get_award(&f.admin, award).await.expect("award").tranches[0].state
}

fn approvals_of(events: &[work4life_proto::events::Event], disbursement: &str) -> usize {
    events.iter().map(payload::<DisbursementChanged>).filter(|e| e.disbursement == disbursement).count()
}

#[tokio::test]
async fn the_maker_cannot_approve_their_own_request_even_holding_both_roles() {
    let f = fresh().await;
    let (_, t1) = payable(&f, "tanger", 500_000).await;
    let (_, t2) = payable(&f, "tanger", 600_000).await;

    let (_, maker) = f.maker(&["tanger"]);
    let d = f.request(&maker, &t1).await.expect("request");
    assert_eq!(d.state, DisbursementState::PendingApproval as i32);
    let fingerprint = f.fingerprint().await;
    let err = f.approve(&maker, &d.name).await.expect_err("self-approval");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(f.fingerprint().await, fingerprint, "a refused approval writes nothing");

    // One person holding the maker's and the checker's roles.
    let subject = format!("accounts/{}", uuid::Uuid::now_v7());
    let both = f.signer.token_for(&subject, &[("finance_officer", Some(f.org), &[]), ("finance_checker", Some(f.org), &[])]);
    let mine = f.request(&both, &t2).await.expect("the dual-role officer requests");
    assert_eq!(mine.requested_by, subject);
    let fingerprint = f.fingerprint().await;
    let err = f.approve(&both, &mine.name).await.expect_err("self-approval with both roles");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = reject(&f, &both, &mine.name, "changed my mind").await.expect_err("nor decides on it otherwise");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(f.fingerprint().await, fingerprint, "nothing written");
    assert!(f.events("grants.disbursement.approved").await.is_empty());

    // The dual-role officer may check someone else's request, and someone else theirs.
    let approved = f.approve(&both, &d.name).await.expect("checks another maker's request");
    assert_eq!(approved.approved_by, subject);
    let (_, checker) = f.checker(&["tanger"]);
    let theirs = f.approve(&checker, &mine.name).await.expect("another checker approves");
    assert_eq!(theirs.state, DisbursementState::Approved as i32);
    assert_ne!(theirs.approved_by, theirs.requested_by);
}

#[tokio::test]
async fn the_database_refuses_self_approval_written_straight_in_sql() {
    let f = fresh().await;
    let (_, tranche) = payable(&f, "oujda", 250_000).await;
    let (_, maker) = f.maker(&["oujda"]);
    let d = f.request(&maker, &tranche).await.expect("request");
    let id = d.name.trim_start_matches("disbursements/");
    let err =
        sqlx::query("UPDATE disbursements SET state = 'approved', approved_by = requested_by, approved_at = now() WHERE id = $1::uuid")
            .bind(id)
            .execute(&f.pool)
            .await
            .expect_err("the database refuses a maker approving");
    let db = err.as_database_error().expect("a database error");
    assert_eq!(db.constraint(), Some("maker_is_not_checker"), "{db:?}");
    let state: String =
        sqlx::query_scalar("SELECT state FROM disbursements WHERE id = $1::uuid").bind(id).fetch_one(&f.pool).await.expect("state");
    assert_eq!(state, "pending_approval");
}

#[tokio::test]
async fn only_finance_checkers_of_the_zone_approve() {
    let f = fresh().await;
    let (_, tranche) = payable(&f, "tanger", 300_000).await;
    let (_, maker) = f.maker(&["tanger"]);
    let d = f.request(&maker, &tranche).await.expect("request");
    let fingerprint = f.fingerprint().await;
    let (_, officer) = f.maker(&["tanger"]);
    let (_, manager) = f.manager(&["tanger"]);
    let (_, auditor) = f.auditor();
    for (who, jwt) in
        [("another finance officer", &officer), ("a program manager", &manager), ("an admin", &f.admin), ("an auditor", &auditor)]
    {
        let err = f.approve(jwt, &d.name).await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
        let err = reject(&f, jwt, &d.name, "no").await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who} rejecting: {err:?}");
    }
    // A checker of another zone does not see the disbursement at all (src/disbursements.rs:
    // fetch with the reader's scope answers NOT_FOUND before the checker's scope is looked at).
    let (_, oujda_checker) = f.checker(&["oujda"]);
    let err = f.approve(&oujda_checker, &d.name).await.expect_err("checker of another zone");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(f.fingerprint().await, fingerprint, "no refused decision writes anything");

    let (_, checker) = f.checker(&["tanger"]);
    let ok = f.approve(&checker, &d.name).await.expect("the zone's checker approves");
    assert_eq!(ok.state, DisbursementState::Approved as i32);
}

#[tokio::test]
async fn a_tranche_has_one_live_request() {
    let f = fresh().await;
    let (award, tranche) = payable(&f, "rabat_sale", 400_000).await;
    let (_, maker) = f.maker(&["rabat_sale"]);
    let (_, other_maker) = f.maker(&["rabat_sale"]);
    let first = f.request(&maker, &tranche).await.expect("request");
    assert_eq!(tranche_state(&f, &award.name).await, TrancheState::InPayment as i32);
    let fingerprint = f.fingerprint().await;
    for jwt in [&maker, &other_maker] {
        let err = f.request(jwt, &tranche).await.expect_err("a second request");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(reason(&err), "DISBURSEMENT_EXISTS");
        assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(tranche.clone()));
    }
    assert_eq!(f.fingerprint().await, fingerprint);
    let (_, checker) = f.checker(&[]);
    f.approve(&checker, &first.name).await.expect("approve");
    let err = f.request(&other_maker, &tranche).await.expect_err("approved is still live");
    assert_eq!(reason(&err), "DISBURSEMENT_EXISTS");
}

#[tokio::test]
async fn twenty_concurrent_makers_one_request() {
    let f = fresh().await;
    let (award, tranche) = payable(&f, "tanger", 800_000).await;
    let makers: Vec<String> = (0..20).map(|_| f.maker(&["tanger"]).1).collect();
    let calls = makers.iter().map(|jwt| f.request(jwt, &tranche));
    let results = futures::future::join_all(calls).await;
    let won: Vec<&Disbursement> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one request wins: {results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(reason(err), "DISBURSEMENT_EXISTS");
    }
    let id = award.name.trim_start_matches("awards/");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM disbursements WHERE award_id = $1::uuid")
        .bind(id)
        .fetch_one(&f.pool)
        .await
        .expect("count");
    assert_eq!(rows, 1);
    assert_eq!(f.count("SELECT count(*) FROM audit_log WHERE action = 'grants.RequestDisbursement'").await, 1);
    assert_eq!(tranche_state(&f, &award.name).await, TrancheState::InPayment as i32);
}

#[tokio::test]
async fn a_scheduled_tranche_cannot_be_requested() {
    let f = fresh().await;
    let app = f.accepted("tanger", 3).await;
    let (_, manager) = f.manager(&["tanger"]);
    let award = f
        .create_award(
            &manager,
            startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![on_milestone(900_000, "business_plan_validated")]),
        )
        .await
        .expect("award");
    assert_eq!(award.tranches[0].state, TrancheState::Scheduled as i32);
    let (_, maker) = f.maker(&["tanger"]);
    let fingerprint = f.fingerprint().await;
    let err = f.request(&maker, &award.tranches[0].name).await.expect_err("not payable");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "TRANCHE_NOT_PAYABLE");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(award.tranches[0].name.clone()));
    assert_eq!(f.fingerprint().await, fingerprint);
}

#[tokio::test]
async fn a_rejection_needs_a_reason_and_makes_the_tranche_payable_again() {
    let f = fresh().await;
    let (award, tranche) = payable(&f, "tanger", 350_000).await;
    let (_, maker) = f.maker(&["tanger"]);
    let (checker_subject, checker) = f.checker(&["tanger"]);
    let (_, other_checker) = f.checker(&["tanger"]);
    let d = f.request(&maker, &tranche).await.expect("request");

    let fingerprint = f.fingerprint().await;
    for blank in ["", "   "] {
        let err = reject(&f, &checker, &d.name, blank).await.expect_err("a reason is required");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(fields(&err), vec!["reason".to_string()]);
    }
    assert_eq!(f.fingerprint().await, fingerprint);

    let rejected = reject(&f, &checker, &d.name, "  the RIB belongs to someone else ").await.expect("reject");
    assert_eq!(rejected.state, DisbursementState::Rejected as i32);
    assert_eq!(rejected.failure_reason, "the RIB belongs to someone else");
    assert_eq!(rejected.approved_by, checker_subject, "the checker who decided");
    assert_eq!(tranche_state(&f, &award.name).await, TrancheState::Payable as i32);
    assert!(f.events("grants.disbursement.approved").await.is_empty());

    let fingerprint = f.fingerprint().await;
    let err = reject(&f, &checker, &d.name, "again").await.expect_err("already rejected");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_PENDING");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(d.name.clone()));
    let err = f.approve(&other_checker, &d.name).await.expect_err("a rejected one is not approved");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_PENDING");
    assert_eq!(f.fingerprint().await, fingerprint);

    // The tranche may be requested again, and an approved request is no longer rejected.
    let second = f.request(&maker, &tranche).await.expect("request again");
    assert_ne!(second.name, d.name);
    f.approve(&checker, &second.name).await.expect("approve");
    let err = reject(&f, &other_checker, &second.name, "too late").await.expect_err("approved");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_PENDING");
    assert_eq!(f.get_award(&f.admin, &award.name).await.expect("award").tranches[0].disbursement, second.name);
}

#[tokio::test]
async fn the_checker_who_rejected_cannot_approve_it_afterwards() {
    let f = fresh().await;
    let (award, tranche) = payable(&f, "tanger", 120_000).await;
    let (_, maker) = f.maker(&["tanger"]);
    let (_, checker) = f.checker(&["tanger"]);
    let d = f.request(&maker, &tranche).await.expect("request");
    reject(&f, &checker, &d.name, "wrong account").await.expect("reject");
    let fingerprint = f.fingerprint().await;
    // "Approving again what the same checker approved returns it unchanged" must not turn a
    // rejection into a success: the answer to an approval is never a REJECTED disbursement.
    let answer = f.approve(&checker, &d.name).await;
    assert_eq!(f.fingerprint().await, fingerprint);
    assert_eq!(tranche_state(&f, &award.name).await, TrancheState::Payable as i32);
    let err = answer.expect_err("a rejected disbursement is not approved, whoever rejected it");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_PENDING");
}

#[tokio::test]
async fn an_approval_is_taken_once_and_announced_once() {
    let f = fresh().await;
    let (award, tranche) = payable(&f, "oujda", 450_000).await;
    let (_, maker) = f.maker(&["oujda"]);
    let (checker_subject, checker) = f.checker(&["oujda"]);
    let (_, other_checker) = f.checker(&["oujda"]);
    let d = f.request(&maker, &tranche).await.expect("request");

    let approved = f.approve(&checker, &d.name).await.expect("approve");
    assert_eq!(approved.state, DisbursementState::Approved as i32);
    assert_eq!(approved.approved_by, checker_subject);
    assert!(approved.approve_time.is_some());
    let events = f.events("grants.disbursement.approved").await;
    assert_eq!(approvals_of(&events, &d.name), 1);
    let event: DisbursementChanged = payload(&events[0]);
    assert_eq!(event.tranche, tranche);
    assert_eq!(event.award, award.name);
    assert_eq!(event.amount.as_ref().map(|m| m.amount_minor), Some(450_000));
    assert_eq!(event.beneficiary_accounts.len(), 2);

    let fingerprint = f.fingerprint().await;
    let again = f.approve(&checker, &d.name).await.expect("the same checker again");
    assert_eq!(again, approved, "returned unchanged");
    let err = f.approve(&other_checker, &d.name).await.expect_err("another checker");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "DISBURSEMENT_NOT_PENDING");
    assert_eq!(f.fingerprint().await, fingerprint, "nothing written after the first approval");
    assert_eq!(approvals_of(&f.events("grants.disbursement.approved").await, &d.name), 1, "announced exactly once");

    // Concurrent checkers on a new request: one approval, one event.
    let (_, t2) = payable(&f, "oujda", 10_000).await;
    let d2 = f.request(&maker, &t2).await.expect("request 2");
    let checkers: Vec<String> = (0..6).map(|_| f.checker(&["oujda"]).1).collect();
    let results = futures::future::join_all(checkers.iter().map(|c| {
        let name = d2.name.clone();
        let f = &f;
        async move {
            f.client()
                .await
                .approve_disbursement(bearer(ApproveDisbursementRequest { name, request_id: rid() }, c))
                .await
                .map(|r| r.into_inner().disbursement.expect("disbursement"))
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(reason(err), "DISBURSEMENT_NOT_PENDING", "{err:?}");
    }
    assert_eq!(approvals_of(&f.events("grants.disbursement.approved").await, &d2.name), 1);
}
