//! Review and selection: assignment, conflicts of interest, scoring against the rubric, who sees
//! which scores, the weighted total and average, quota, and the decision.

mod common;

use common::{Fixture, assert_refused, bearer, call_message, fields, fresh, id_of, payload, state};
use tonic::{Code, Status};
use work4life_proto::intake::{
    ApplicationDecided, ApplicationState, CriterionScore, DeclareConflictRequest, GetCallRequest, ListReviewsRequest, ListReviewsResponse,
    MemberRole, Outcome, Review, ReviewState, ScoreApplicationRequest, Window,
};

async fn reviews(f: &Fixture, jwt: &str, application: &str) -> Result<ListReviewsResponse, Status> {
    f.client().await.list_reviews(bearer(ListReviewsRequest { parent: application.into() }, jwt)).await.map(|r| r.into_inner())
}

async fn declare(f: &Fixture, jwt: &str, review: &str) -> Result<Review, Status> {
    f.client()
        .await
        .declare_conflict(bearer(
            DeclareConflictRequest { name: review.into(), reason: "I know the representative personally".into() },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().review.expect("review"))
}

async fn score_with(f: &Fixture, jwt: &str, review: &str, scores: &[(&str, i32)]) -> Result<Review, Status> {
    f.client()
        .await
        .score_application(bearer(
            ScoreApplicationRequest {
                name: review.into(),
                scores: scores.iter().map(|(c, s)| CriterionScore { criterion: (*c).into(), score: *s, comment: String::new() }).collect(),
                comment: String::new(),
            },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().review.expect("review"))
}

/// An individual start-up application of oujda, in review.
async fn in_review(f: &Fixture) -> String {
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.eligible_draft(&call).await;
    f.to_review(&draft.name).await;
    draft.name
}

#[tokio::test]
async fn conflicted_reviewers_cannot_score_and_are_left_out_of_the_average() {
    let f = fresh().await;
    let (_, manager) = f.manager("oujda");
    let (_, officer) = f.officer("oujda");
    let application = in_review(&f).await;
    let (r1, r1_jwt) = f.token("reviewer", None, &[]);
    let (r2, r2_jwt) = f.token("reviewer", None, &[]);
    let (r3, r3_jwt) = f.token("reviewer", None, &[]);

    assert_refused(f.assign(&officer, &application, &r1).await, Code::PermissionDenied, "", "an officer may not assign");
    let review1 = f.assign(&manager, &application, &r1).await.expect("assign r1");
    assert_eq!(review1.name, format!("{application}/reviews/{}", id_of(&r1)));
    assert_eq!(review1.reviewer, r1);
    assert_eq!(review1.state, ReviewState::Assigned as i32);
    assert!(review1.assign_time.is_some());
    let review2 = f.assign(&manager, &application, &r2).await.expect("assign r2");
    let review3 = f.assign(&manager, &application, &r3).await.expect("assign r3");

    let conflicted = declare(&f, &r3_jwt, &review3.name).await.expect("declare");
    assert_eq!(conflicted.state, ReviewState::ConflictDeclared as i32);
    assert_eq!(conflicted.conflict_reason, "I know the representative personally");
    assert_refused(f.score(&r3_jwt, &review3.name, 10, 5).await, Code::FailedPrecondition, "INVALID_STATE", "conflicted reviewer scores");

    let scored = f.score(&r1_jwt, &review1.name, 8, 3).await.expect("r1 scores");
    assert_eq!(scored.state, ReviewState::Scored as i32);
    assert!((scored.total - 72.0).abs() < 1e-6, "(60*8/10 + 40*3/5) / 100 * 100 = 72, got {}", scored.total);
    assert_eq!(scored.scores.len(), 2);
    assert!(scored.score_time.is_some());
    assert_refused(f.score(&r1_jwt, &review1.name, 1, 1).await, Code::FailedPrecondition, "INVALID_STATE", "scoring twice");
    let second = f.score(&r2_jwt, &review2.name, 10, 5).await.expect("r2 scores");
    assert!((second.total - 100.0).abs() < 1e-6);

    let all = reviews(&f, &manager, &application).await.expect("manager lists");
    assert_eq!(all.reviews.len(), 3);
    assert!((all.average_score - 86.0).abs() < 1e-6, "average of SCORED reviews only: {}", all.average_score);
    assert_eq!(all.scored_count, 2);
    let first = all.reviews.iter().find(|r| r.reviewer == r1).expect("r1's review");
    assert!((first.total - 72.0).abs() < 1e-6, "the first score stands");

    // The decision records the same average.
    let decided = f.decide(&manager, &application, Outcome::Accepted, "strong plan").await.expect("accept");
    let decision = decided.decision.expect("decision");
    assert!((decision.average_score - 86.0).abs() < 1e-6);
    assert_eq!(decision.review_count, 2);
}

#[tokio::test]
async fn a_reviewer_sees_the_others_scores_only_after_scoring() {
    let f = fresh().await;
    let (_, manager) = f.manager("oujda");
    let (_, auditor) = f.token("auditor", None, &[]);
    let application = in_review(&f).await;
    let (_r1, r1_jwt) = f.token("reviewer", None, &[]);
    let (r2, r2_jwt) = f.token("reviewer", None, &[]);
    let (_, outsider) = f.token("reviewer", None, &[]);
    let review1 = f.assign(&manager, &application, &_r1).await.expect("assign");
    let review2 = f.assign(&manager, &application, &r2).await.expect("assign");
    f.score(&r1_jwt, &review1.name, 8, 3).await.expect("score");

    let before = reviews(&f, &r2_jwt, &application).await.expect("r2 lists");
    assert_eq!(before.reviews.len(), 1, "only their own review before scoring: {before:?}");
    assert_eq!(before.reviews[0].name, review2.name);
    assert_eq!(before.average_score, 0.0, "no average before scoring");
    assert!(!format!("{before:?}").contains("solid plan"), "no one else's comments either");

    f.score(&r2_jwt, &review2.name, 10, 5).await.expect("score");
    let after = reviews(&f, &r2_jwt, &application).await.expect("r2 lists");
    assert_eq!(after.reviews.len(), 2);
    assert!((after.average_score - 86.0).abs() < 1e-6);
    let other = after.reviews.iter().find(|r| r.name == review1.name).expect("r1's review");
    assert_eq!(other.scores.len(), 2, "the others' scores are visible now");

    let audit = reviews(&f, &auditor, &application).await.expect("auditor lists");
    assert_eq!(audit.reviews.len(), 2);
    assert_refused(reviews(&f, &outsider, &application).await, Code::NotFound, "", "a reviewer not assigned");
}

#[tokio::test]
async fn only_the_assigned_reviewer_scores_every_criterion_once_while_in_review() {
    let f = fresh().await;
    let (_, manager) = f.manager("oujda");
    let application = in_review(&f).await;
    let (r1, r1_jwt) = f.token("reviewer", None, &[]);
    let (r2, r2_jwt) = f.token("reviewer", None, &[]);
    let (_, outsider) = f.token("reviewer", None, &[]);
    let review1 = f.assign(&manager, &application, &r1).await.expect("assign");
    f.assign(&manager, &application, &r2).await.expect("assign");

    // Someone else's review.
    assert_refused(f.score(&r2_jwt, &review1.name, 5, 5).await, Code::PermissionDenied, "", "another assigned reviewer");
    assert_refused(f.score(&manager, &review1.name, 5, 5).await, Code::PermissionDenied, "", "the manager");
    assert_refused(declare(&f, &r2_jwt, &review1.name).await, Code::PermissionDenied, "", "declaring on another's review");
    assert_refused(f.score(&outsider, &review1.name, 5, 5).await, Code::NotFound, "", "a reviewer who cannot see the application");

    // The rubric: every criterion once, 0 to its maximum.
    let out_of_range = score_with(&f, &r1_jwt, &review1.name, &[("viability", 11), ("team", -1)]).await;
    let status = assert_refused(out_of_range, Code::InvalidArgument, "", "out of range");
    assert_eq!(fields(&status), ["scores[0].score", "scores[1].score"]);
    for (case, scores) in [
        ("a criterion missing", vec![("viability", 5)]),
        ("a criterion twice", vec![("viability", 5), ("viability", 6), ("team", 1)]),
        ("an unknown criterion", vec![("viability", 5), ("team", 1), ("charm", 3)]),
    ] {
        let status = assert_refused(score_with(&f, &r1_jwt, &review1.name, &scores).await, Code::InvalidArgument, "", case);
        assert!(fields(&status).iter().all(|x| x.starts_with("scores")) && !fields(&status).is_empty(), "{case}: {:?}", fields(&status));
    }
    let listed = reviews(&f, &manager, &application).await.expect("list");
    assert!(listed.reviews.iter().all(|r| r.state == ReviewState::Assigned as i32), "refused scores change nothing");
    let edges = score_with(&f, &r1_jwt, &review1.name, &[("team", 5), ("viability", 0)]).await.expect("0 and the maximum are valid");
    assert!((edges.total - 40.0).abs() < 1e-6, "order does not matter: {}", edges.total);

    // Not in review: assigned during screening, cannot score yet.
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let early = f.eligible_draft(&call).await;
    f.submit(&f.admin, &early.name).await.expect("submit");
    f.start_screening(&f.admin, &early.name).await.expect("screening");
    let (r3, r3_jwt) = f.token("reviewer", None, &[]);
    let review3 = f.assign(&manager, &early.name, &r3).await.expect("assign during screening");
    assert_refused(f.score(&r3_jwt, &review3.name, 5, 3).await, Code::FailedPrecondition, "INVALID_STATE", "scoring in screening");
}

#[tokio::test]
async fn accepting_needs_a_scored_review_and_room_in_the_quota() {
    let f = fresh().await;
    let (_, manager) = f.manager("oujda");
    let mut message = call_message(Window::IndividualStartup, &["oujda"]);
    message.quota = 1;
    let call = f.create_call(message).await;
    let a = f.eligible_draft(&call).await.name;
    let b = f.eligible_draft(&call).await.name;
    f.to_review(&a).await;
    f.to_review(&b).await;
    let (r1, r1_jwt) = f.token("reviewer", None, &[]);
    let (r2, r2_jwt) = f.token("reviewer", None, &[]);
    let review1 = f.assign(&manager, &a, &r1).await.expect("assign");
    let review2 = f.assign(&manager, &a, &r2).await.expect("assign");

    assert_refused(f.decide(&manager, &a, Outcome::Accepted, "ok").await, Code::FailedPrecondition, "NOT_REVIEWED", "assigned only");
    declare(&f, &r2_jwt, &review2.name).await.expect("conflict");
    assert_refused(f.decide(&manager, &a, Outcome::Accepted, "ok").await, Code::FailedPrecondition, "NOT_REVIEWED", "conflict only");
    assert_eq!(state(&f.get_application(&manager, &a).await.expect("get")), ApplicationState::InReview, "refusals change nothing");
    f.score(&r1_jwt, &review1.name, 6, 3).await.expect("score");
    f.decide(&manager, &a, Outcome::Accepted, "ok").await.expect("accept");
    let got = f.client().await.get_call(bearer(GetCallRequest { name: call.name.clone() }, &manager)).await.expect("call").into_inner();
    assert_eq!(got.call.expect("call").accepted_count, 1);

    f.scored_by_new_reviewer(&b, 9, 5).await;
    assert_refused(f.decide(&manager, &b, Outcome::Accepted, "also good").await, Code::FailedPrecondition, "QUOTA_REACHED", "over quota");
    f.decide(&manager, &b, Outcome::Waitlisted, "good, no room").await.expect("waitlist");
    assert_refused(
        f.decide(&manager, &b, Outcome::Accepted, "still no room").await,
        Code::FailedPrecondition,
        "QUOTA_REACHED",
        "from the list",
    );
    let rejected = f.decide(&manager, &b, Outcome::Rejected, "the list is closed").await.expect("reject from the waiting list");
    assert_eq!(rejected.decision.expect("decision").outcome, Outcome::Rejected as i32);
}

#[tokio::test]
async fn a_decision_needs_a_reason_and_a_manager() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let (_, manager) = f.manager("oujda");
    let (_, rabat_manager) = f.manager("rabat_sale");
    let application = in_review(&f).await;
    f.scored_by_new_reviewer(&application, 5, 5).await;
    let before = f.table_counts().await;
    let status = assert_refused(f.decide(&manager, &application, Outcome::Accepted, "").await, Code::InvalidArgument, "", "no reason");
    assert_eq!(fields(&status), ["reason"]);
    assert_refused(f.decide(&officer, &application, Outcome::Accepted, "ok").await, Code::PermissionDenied, "", "an officer");
    assert_refused(f.decide(&rabat_manager, &application, Outcome::Accepted, "ok").await, Code::NotFound, "", "another zone");
    assert_eq!(f.table_counts().await, before, "refusals write nothing");
    assert_eq!(state(&f.get_application(&manager, &application).await.expect("get")), ApplicationState::InReview);
}

#[tokio::test]
async fn the_decision_is_announced_to_every_member() {
    let f = fresh().await;
    let (manager_subject, manager) = f.manager("oujda");
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    // One member registered themselves and has a login.
    let (beneficiary, beneficiary_jwt) = f.token("beneficiary", None, &[]);
    let own = f
        .create_applicant(
            &beneficiary_jwt,
            work4life_proto::intake::Applicant { account: beneficiary.clone(), ..common::new_applicant("oujda") },
        )
        .await;
    let others = f.applicants_in("oujda", 2).await;
    let draft = f.draft(&f.admin, &call, "oujda", &[&others[0], &own, &others[1]]).await;
    f.to_review(&draft.name).await;
    f.scored_by_new_reviewer(&draft.name, 8, 3).await;
    let before = f.events("intake.application.decided").await.len();
    f.decide(&manager, &draft.name, Outcome::Accepted, "strong plan").await.expect("accept");
    let events = f.events("intake.application.decided").await;
    assert_eq!(events.len(), before + 1, "one decided event");
    let event = events.last().expect("event");
    assert_eq!(event.r#type, "intake.application.decided");
    assert_eq!(event.source, "intake");
    let decided: ApplicationDecided = payload(event);
    assert_eq!(decided.application, draft.name);
    assert_eq!(decided.call, call.name);
    assert_eq!(decided.program, common::PROGRAM);
    assert_eq!(decided.window, Window::CollectiveStartup as i32);
    assert_eq!(decided.zone, "oujda");
    let decision = decided.decision.clone().expect("decision");
    assert_eq!(decision.outcome, Outcome::Accepted as i32);
    assert_eq!(decision.reason, "strong plan");
    assert_eq!(decision.decided_by, manager_subject);
    assert!((decision.average_score - 72.0).abs() < 1e-6);
    assert_eq!(decision.review_count, 1);
    let mut recipients: Vec<(String, i32, String)> =
        decided.recipients.iter().map(|r| (r.applicant.clone(), r.role, r.account.clone())).collect();
    recipients.sort();
    let mut expected = vec![
        (others[0].name.clone(), MemberRole::Representative as i32, String::new()),
        (own.name.clone(), MemberRole::Member as i32, beneficiary.clone()),
        (others[1].name.clone(), MemberRole::Member as i32, String::new()),
    ];
    expected.sort();
    assert_eq!(recipients, expected, "every member, with role and login");
    assert!(decided.recipients.iter().all(|r| r.languages == ["fr", "wo"]), "languages for the message");
    let text = format!("{decided:?}");
    assert!(!text.contains(&others[0].phone) && !text.contains(&others[0].family_name), "no contact details or names in events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acceptances_never_exceed_the_quota() {
    let f = fresh().await;
    let mut message = call_message(Window::IndividualStartup, &["oujda"]);
    message.quota = 2;
    let call = f.create_call(message).await;
    let mut names = Vec::new();
    for _ in 0..6 {
        let name = f.eligible_draft(&call).await.name;
        f.to_review(&name).await;
        f.scored_by_new_reviewer(&name, 7, 3).await;
        names.push(name);
    }
    let attempts = names.iter().map(|name| {
        let f = &f;
        async move { f.decide(&f.admin, name, Outcome::Accepted, "good").await }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "exactly the quota is accepted: {results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(common::reason(status), "QUOTA_REACHED");
    }
    let got = f.client().await.get_call(bearer(GetCallRequest { name: call.name.clone() }, &f.admin)).await.expect("call").into_inner();
    assert_eq!(got.call.expect("call").accepted_count, 2);
    assert_eq!(f.events("intake.application.decided").await.len(), 2, "one event per acceptance");
}

#[tokio::test]
async fn officers_do_not_see_reviews_program_managers_in_scope_see_them_all() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let (_, manager) = f.manager("oujda");
    let application = in_review(&f).await;
    f.scored_by_new_reviewer(&application, 8, 3).await;
    f.scored_by_new_reviewer(&application, 10, 5).await;

    f.get_application(&officer, &application).await.expect("the application is in the officer's scope");
    assert_refused(reviews(&f, &officer, &application).await, Code::PermissionDenied, "", "an officer in scope lists the reviews");
    let all = reviews(&f, &manager, &application).await.expect("the manager lists");
    assert_eq!(all.reviews.len(), 2);
    assert!(all.reviews.iter().all(|r| r.scores.len() == 2), "every score is visible to the manager: {all:?}");
    assert!((all.average_score - 86.0).abs() < 1e-6, "(72 + 100) / 2: {}", all.average_score);
    assert_eq!(all.scored_count, 2);
}
