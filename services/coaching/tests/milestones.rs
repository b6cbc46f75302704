//! Milestones: completed with evidence by a beneficiary or the coach, verified by the coach with
//! `coaching.milestone.verified` written exactly once (also when verification is repeated or
//! concurrent), rejected with a reason and completed again; and who may do which.

mod common;

use common::{Fixture, assert_refused, fresh, milestone, milestone_name, milestone_state, payload};
use futures::future::join_all;
use tonic::Code;
use uuid::Uuid;
use work4life_proto::coaching::{Engagement, MilestoneState, MilestoneVerified};

const VERIFIED: &str = "coaching.milestone.verified";

/// An awarded collective start-up in Oujda with two beneficiaries, and its coach.
async fn awarded(f: &Fixture) -> (Engagement, common::TestCoach) {
    let coach = f.coach("oujda_cefa", &["fr"], 30).await;
    let mut e = common::engagement_message("collective_startup", "oujda", 2);
    e.award = format!("awards/{}", Uuid::now_v7());
    let e = f.create_engagement(&f.admin, e).await.expect("engagement");
    assert_eq!(e.coach, coach.name());
    (e, coach)
}

#[tokio::test]
async fn a_verified_milestone_is_announced_exactly_once() {
    let f = fresh().await;
    let (e, coach) = awarded(&f).await;
    let name = milestone_name(&e, "business_plan_validated");
    let beneficiary = f.beneficiary_of(&e);

    let done = f.complete(&beneficiary, &name, &["documents/business-plan-v3.pdf", "https://drive.example/plan"]).await.expect("completed");
    assert_eq!(milestone_state(&done), MilestoneState::Completed);
    assert_eq!(done.evidence, ["documents/business-plan-v3.pdf", "https://drive.example/plan"]);
    assert_eq!(done.note, "see the attached document");
    assert_eq!(done.completed_by, e.beneficiary_accounts[0]);
    assert!(f.events(VERIFIED).await.is_empty(), "completing announces nothing");

    let verified = f.verify(&coach.jwt, &name).await.expect("verified");
    assert_eq!(milestone_state(&verified), MilestoneState::Verified);
    assert_eq!(verified.reviewed_by, coach.coach.account);
    assert!(verified.verify_time.is_some());
    assert_eq!(verified.evidence, done.evidence, "the evidence stays");
    let events = f.events(VERIFIED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject, name);
    assert_eq!(events[0].source, "coaching");
    let body: MilestoneVerified = payload(&events[0]);
    assert_eq!(body.milestone, name);
    assert_eq!(body.code, "business_plan_validated");
    assert_eq!(body.award, e.award);
    assert_eq!(body.application, e.application);
    assert_eq!(body.beneficiaries, e.beneficiaries);
    assert_eq!(body.verify_time, verified.verify_time);

    // Verifying again answers the verified milestone and writes nothing.
    let before = f.fingerprint().await;
    let again = f.verify(&coach.jwt, &name).await.expect("verifying again is answered");
    assert_eq!(again, verified);
    assert_eq!(f.fingerprint().await, before, "no second event, no audit record, no change");

    // Relayed to coaching's stream once, for grants to release the tranche.
    f.relayed().await;
    let published: Vec<_> = f.stream_events("w4l:events:coaching").await.into_iter().filter(|e| e.r#type == VERIFIED).collect();
    assert_eq!(published.len(), 1, "one event on the stream");
    assert_eq!(published[0].id, events[0].id);

    // The other milestones are untouched; the plan shows this one verified.
    let read = f.get_engagement(&f.admin, &e.name).await.expect("engagement");
    assert_eq!(milestone_state(milestone(&read, "business_plan_validated")), MilestoneState::Verified);
    assert!(read.milestones.iter().filter(|m| m.code != "business_plan_validated").all(|m| milestone_state(m) == MilestoneState::Pending));

    // A verified milestone is final.
    let redo = f.complete(&beneficiary, &name, &["documents/other.pdf"]).await;
    assert_refused(redo, Code::FailedPrecondition, "INVALID_STATE", "completing a verified milestone");
    let reject = f.reject(&coach.jwt, &name, "changed my mind").await;
    assert_refused(reject, Code::FailedPrecondition, "INVALID_STATE", "rejecting a verified milestone");
    assert_eq!(f.events(VERIFIED).await.len(), 1);
}

#[tokio::test]
async fn concurrent_verifications_write_one_event() {
    let f = fresh().await;
    let (e, coach) = awarded(&f).await;
    let name = milestone_name(&e, "legal_registration");
    f.complete(&coach.jwt, &name, &["documents/rc-registration.pdf"]).await.expect("the coach completes");
    let results = join_all((0..12).map(|_| f.verify(&coach.jwt, &name))).await;
    for result in &results {
        let m = result.as_ref().unwrap_or_else(|status| panic!("every verification answers the verified milestone: {status:?}"));
        assert_eq!(milestone_state(m), MilestoneState::Verified);
    }
    let times: std::collections::HashSet<_> = results.iter().map(|r| r.as_ref().map(|m| m.verify_time).ok()).collect();
    assert_eq!(times.len(), 1, "one verification time: {times:?}");
    assert_eq!(f.events(VERIFIED).await.len(), 1, "exactly one event");
    assert_eq!(f.audit("coaching.VerifyMilestone", &name).await.len(), 1, "one audit record");
}

#[tokio::test]
async fn a_pending_milestone_is_not_verified_or_rejected() {
    let f = fresh().await;
    let (e, coach) = awarded(&f).await;
    let name = milestone_name(&e, "first_sale");
    let before = f.fingerprint().await;
    assert_refused(f.verify(&coach.jwt, &name).await, Code::FailedPrecondition, "INVALID_STATE", "verify a pending milestone");
    assert_refused(f.reject(&coach.jwt, &name, "no proof").await, Code::FailedPrecondition, "INVALID_STATE", "reject a pending one");
    assert_eq!(f.fingerprint().await, before, "nothing written");
    let unknown = milestone_name(&e, "moon_landing");
    assert_refused(f.complete(&coach.jwt, &unknown, &["x.pdf"]).await, Code::NotFound, "", "a code not in the plan");
    let job_code = milestone_name(&e, "contract_signed");
    assert_refused(f.verify(&coach.jwt, &job_code).await, Code::NotFound, "", "another window's code");
}

#[tokio::test]
async fn a_rejected_milestone_is_completed_again_then_verified() {
    let f = fresh().await;
    let (e, coach) = awarded(&f).await;
    let name = milestone_name(&e, "bank_account_opened");
    let beneficiary = f.beneficiary_of(&e);
    f.complete(&beneficiary, &name, &["documents/rib-scan.jpg"]).await.expect("completed");

    let rejected = f.reject(&coach.jwt, &name, "the statement is not in the company's name").await.expect("rejected");
    assert_eq!(milestone_state(&rejected), MilestoneState::Rejected);
    assert_eq!(rejected.rejection_reason, "the statement is not in the company's name");
    assert_eq!(rejected.reviewed_by, coach.coach.account);
    assert_eq!(f.audit("coaching.RejectMilestone", &name).await.len(), 1);
    assert!(f.events(VERIFIED).await.is_empty());
    assert_refused(f.verify(&coach.jwt, &name).await, Code::FailedPrecondition, "INVALID_STATE", "a rejected milestone is not verified");

    let second = f.beneficiary(&e.beneficiary_accounts[1]);
    let again = f.complete(&second, &name, &["documents/rib-company.pdf"]).await.expect("completed again");
    assert_eq!(milestone_state(&again), MilestoneState::Completed);
    assert_eq!(again.evidence, ["documents/rib-company.pdf"], "the new evidence");
    assert_eq!(again.completed_by, e.beneficiary_accounts[1]);
    assert!(again.rejection_reason.is_empty(), "the old rejection no longer applies: {:?}", again.rejection_reason);

    let verified = f.verify(&coach.jwt, &name).await.expect("verified");
    assert_eq!(milestone_state(&verified), MilestoneState::Verified);
    assert_eq!(f.events(VERIFIED).await.len(), 1);
}

#[tokio::test]
async fn who_may_complete_verify_and_reject() {
    let f = fresh().await;
    let (e, coach) = awarded(&f).await;
    let other_coach = f.coach("oujda_cefa", &["fr"], 60).await;
    let other = f.engagement("collective_startup", "oujda", 1).await;
    assert_eq!(other.coach, other_coach.name(), "the less loaded coach");
    let name = milestone_name(&e, "business_plan_validated");
    let beneficiary = f.beneficiary_of(&e);
    let (_, officer) = f.officer("oujda");
    let (_, manager) = f.manager("oujda");
    let (_, auditor) = f.auditor();
    let stranger = f.beneficiary_of(&other);
    let evidence = ["documents/plan.pdf"];

    // Completing: the engagement's beneficiaries and coach only.
    for (who, jwt, code) in [
        ("an officer of the zone", &officer, Code::PermissionDenied),
        ("a manager of the zone", &manager, Code::PermissionDenied),
        ("the admin", &f.admin, Code::PermissionDenied),
        ("an auditor", &auditor, Code::PermissionDenied),
        ("another engagement's beneficiary", &stranger, Code::NotFound),
        ("another engagement's coach", &other_coach.jwt, Code::NotFound),
    ] {
        assert_refused(f.complete(jwt, &name, &evidence).await, code, "", &format!("{who} completes"));
    }
    // Someone holding the beneficiary role with the coach's account is not the coach.
    let pretender = f.token_for(&coach.coach.account, &[("beneficiary", None, &[])]);
    assert_refused(f.complete(&pretender, &name, &evidence).await, Code::NotFound, "", "the coach's account without the coach role");
    let read = f.get_engagement(&f.admin, &e.name).await.expect("engagement");
    assert_eq!(milestone_state(milestone(&read, "business_plan_validated")), MilestoneState::Pending, "refusals change nothing");

    f.complete(&beneficiary, &name, &evidence).await.expect("the beneficiary completes");

    // Verifying and rejecting: the engagement's coach only.
    for (who, jwt, code) in [
        ("the beneficiary", &beneficiary, Code::PermissionDenied),
        ("an officer of the zone", &officer, Code::PermissionDenied),
        ("a manager of the zone", &manager, Code::PermissionDenied),
        ("the admin", &f.admin, Code::PermissionDenied),
        ("an auditor", &auditor, Code::PermissionDenied),
        ("another engagement's coach", &other_coach.jwt, Code::NotFound),
    ] {
        assert_refused(f.verify(jwt, &name).await, code, "", &format!("{who} verifies"));
        assert_refused(f.reject(jwt, &name, "no").await, code, "", &format!("{who} rejects"));
    }
    assert!(f.events(VERIFIED).await.is_empty(), "no event from refusals");
    let read = f.get_engagement(&f.admin, &e.name).await.expect("engagement");
    assert_eq!(milestone_state(milestone(&read, "business_plan_validated")), MilestoneState::Completed);

    // After a reassignment the former coach has no say; the new one has.
    let mut c = f.client().await;
    c.reassign_coach(common::bearer(
        work4life_proto::coaching::ReassignCoachRequest { name: e.name.clone(), coach: other_coach.name(), reason: "leave".into() },
        &f.admin,
    ))
    .await
    .expect("reassign");
    assert_refused(f.verify(&coach.jwt, &name).await, Code::NotFound, "", "the former coach");
    f.verify(&other_coach.jwt, &name).await.expect("the new coach verifies");
    assert_eq!(f.events(VERIFIED).await.len(), 1);
}
