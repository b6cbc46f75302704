//! The application state machine as a table: every state × every action. A legal action moves
//! the application where the spec says; an illegal one is FAILED_PRECONDITION `INVALID_STATE`
//! (PreconditionFailure type `STATE`) and leaves the application, the outbox and the audit log
//! exactly as they were.

mod common;

use common::{Fixture, bearer, call_message, fresh, member, preconditions, reason, state};
use tonic::{Code, Status};
use work4life_proto::intake::{
    AddMemberRequest, Application, ApplicationState, Call, MemberRole, Outcome, RemoveMemberRequest, UpdateApplicationRequest, Window,
    WithdrawApplicationRequest,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Draft,
    Submitted,
    Screening,
    InReview,
    Waitlisted,
    Accepted,
    Rejected,
    Withdrawn,
}

const STATES: [At; 8] = [At::Draft, At::Submitted, At::Screening, At::InReview, At::Waitlisted, At::Accepted, At::Rejected, At::Withdrawn];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Submit,
    StartScreening,
    StartReview,
    Accept,
    Waitlist,
    Reject,
    Withdraw,
    Update,
    AddMember,
    RemoveMember,
    AssignReviewer,
}

const ACTIONS: [Action; 11] = [
    Action::Submit,
    Action::StartScreening,
    Action::StartReview,
    Action::Accept,
    Action::Waitlist,
    Action::Reject,
    Action::Withdraw,
    Action::Update,
    Action::AddMember,
    Action::RemoveMember,
    Action::AssignReviewer,
];

/// Where `action` takes an application that is `at`, or `None` when it is illegal there.
fn legal(at: At, action: Action) -> Option<At> {
    use Action::*;
    match (at, action) {
        (At::Draft, Submit) => Some(At::Submitted),
        (At::Draft, Update | AddMember | RemoveMember) => Some(At::Draft),
        (At::Submitted, StartScreening) => Some(At::Screening),
        (At::Screening, StartReview) => Some(At::InReview),
        (At::Screening, Reject) => Some(At::Rejected),
        (At::InReview, Accept) => Some(At::Accepted),
        (At::InReview, Waitlist) => Some(At::Waitlisted),
        (At::InReview, Reject) => Some(At::Rejected),
        (At::Waitlisted, Accept) => Some(At::Accepted),
        (At::Waitlisted, Reject) => Some(At::Rejected),
        (At::Draft | At::Submitted | At::Screening | At::InReview | At::Waitlisted, Withdraw) => Some(At::Withdrawn),
        (At::Submitted | At::Screening | At::InReview, AssignReviewer) => Some(at),
        _ => None,
    }
}

fn observed(application: &Application) -> At {
    match (state(application), Outcome::try_from(application.decision.as_ref().map_or(0, |d| d.outcome)).unwrap_or(Outcome::Unspecified)) {
        (ApplicationState::Draft, _) => At::Draft,
        (ApplicationState::Submitted, _) => At::Submitted,
        (ApplicationState::Screening, _) => At::Screening,
        (ApplicationState::InReview, _) => At::InReview,
        (ApplicationState::Decided, Outcome::Waitlisted) => At::Waitlisted,
        (ApplicationState::Decided, Outcome::Accepted) => At::Accepted,
        (ApplicationState::Decided, Outcome::Rejected) => At::Rejected,
        (ApplicationState::Withdrawn, _) => At::Withdrawn,
        other => panic!("unexpected state {other:?}"),
    }
}

/// A fresh application of `call` brought to `at` (with a scored review once in review, so that
/// accepting is possible).
async fn prepare(f: &Fixture, call: &Call, at: At) -> Application {
    let draft = f.eligible_draft(call).await;
    let name = draft.name.clone();
    if at == At::Draft {
        return draft;
    }
    f.submit(&f.admin, &name).await.expect("submit");
    match at {
        At::Submitted => {}
        At::Withdrawn => {
            f.client()
                .await
                .withdraw_application(bearer(
                    WithdrawApplicationRequest { name: name.clone(), reason: "setup".into(), etag: String::new() },
                    &f.admin,
                ))
                .await
                .expect("withdraw");
        }
        _ => {
            f.start_screening(&f.admin, &name).await.expect("screening");
            if at == At::Rejected {
                f.decide(&f.admin, &name, Outcome::Rejected, "setup").await.expect("reject");
            } else if at != At::Screening {
                f.start_review(&f.admin, &name).await.expect("review");
                f.scored_by_new_reviewer(&name, 7, 4).await;
                match at {
                    At::Waitlisted => drop(f.decide(&f.admin, &name, Outcome::Waitlisted, "setup").await.expect("waitlist")),
                    At::Accepted => drop(f.decide(&f.admin, &name, Outcome::Accepted, "setup").await.expect("accept")),
                    _ => {}
                }
            }
        }
    }
    let application = f.get_application(&f.admin, &name).await.expect("get");
    assert_eq!(observed(&application), at, "setup reached {at:?}");
    application
}

async fn perform(f: &Fixture, application: &Application, action: Action, extra: &work4life_proto::intake::Applicant) -> Result<(), Status> {
    let name = application.name.clone();
    let mut c = f.client().await;
    let admin = &f.admin;
    match action {
        Action::Submit => f.submit(admin, &name).await.map(drop),
        Action::StartScreening => f.start_screening(admin, &name).await.map(drop),
        Action::StartReview => f.start_review(admin, &name).await.map(drop),
        Action::Accept => f.decide(admin, &name, Outcome::Accepted, "strong plan").await.map(drop),
        Action::Waitlist => f.decide(admin, &name, Outcome::Waitlisted, "good, no room yet").await.map(drop),
        Action::Reject => f.decide(admin, &name, Outcome::Rejected, "not viable").await.map(drop),
        Action::Withdraw => c
            .withdraw_application(bearer(WithdrawApplicationRequest { name, reason: "found a job".into(), etag: String::new() }, admin))
            .await
            .map(drop),
        Action::Update => c
            .update_application(bearer(
                UpdateApplicationRequest {
                    application: Some(Application {
                        name,
                        etag: application.etag.clone(),
                        title: "A new title".into(),
                        ..Application::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["title".into()] }),
                },
                admin,
            ))
            .await
            .map(drop),
        Action::AddMember => c
            .add_member(bearer(
                AddMemberRequest { application: name, member: Some(member(extra, MemberRole::Member)), etag: String::new() },
                admin,
            ))
            .await
            .map(drop),
        Action::RemoveMember => c
            .remove_member(bearer(
                RemoveMemberRequest { application: name, applicant: application.members[0].applicant.clone(), etag: String::new() },
                admin,
            ))
            .await
            .map(drop),
        Action::AssignReviewer => {
            let (reviewer, _) = f.token("reviewer", None, &[]);
            f.assign(admin, &name, &reviewer).await.map(drop)
        }
    }
}

#[tokio::test]
async fn every_action_in_every_state_is_legal_or_refused_as_invalid_state() {
    let f = fresh().await;
    // A one- or two-person collective call, so that AddMember has room in a draft.
    let mut message = call_message(Window::CollectiveStartup, &["oujda"]);
    message.quota = 1000;
    let rules = message.eligibility.as_mut().expect("rules");
    rules.min_team_size = 1;
    rules.max_team_size = 2;
    let call = f.create_call(message).await;

    let mut failures = Vec::new();
    let mut checked = 0;
    for at in STATES {
        for action in ACTIONS {
            let application = prepare(&f, &call, at).await;
            // Registered before counting: AddMember's newcomer.
            let extra = f.applicant_in(&application.zone).await;
            let outbox_before = f.count("SELECT count(*) FROM intake.outbox").await;
            let audit_before = f.count("SELECT count(*) FROM intake.audit_log").await;
            let result = perform(&f, &application, action, &extra).await;
            let after = f.get_application(&f.admin, &application.name).await.expect("get");
            checked += 1;
            match (legal(at, action), result) {
                (Some(next), Ok(())) => {
                    if observed(&after) != next {
                        failures.push(format!("{action:?} from {at:?}: went to {:?}, expected {next:?}", observed(&after)));
                    }
                }
                (Some(next), Err(status)) => failures.push(format!(
                    "{action:?} from {at:?} is legal (to {next:?}) but was refused: {:?} {}",
                    status.code(),
                    status.message()
                )),
                (None, Ok(())) => failures.push(format!("{action:?} from {at:?} is illegal but was ALLOWED (now {:?})", observed(&after))),
                (None, Err(status)) => {
                    let types: Vec<String> = preconditions(&status).into_iter().map(|(t, _)| t).collect();
                    if status.code() != Code::FailedPrecondition
                        || reason(&status) != "INVALID_STATE"
                        || !types.iter().any(|t| t == "STATE")
                    {
                        failures.push(format!(
                            "{action:?} from {at:?}: expected FAILED_PRECONDITION INVALID_STATE/STATE, got {:?} {:?} {types:?} {}",
                            status.code(),
                            reason(&status),
                            status.message()
                        ));
                    }
                    if after != application {
                        failures.push(format!("{action:?} from {at:?}: refused but the application changed"));
                    }
                    if f.count("SELECT count(*) FROM intake.outbox").await != outbox_before
                        || f.count("SELECT count(*) FROM intake.audit_log").await != audit_before
                    {
                        failures.push(format!("{action:?} from {at:?}: refused but wrote an event or an audit record"));
                    }
                }
            }
        }
    }
    assert_eq!(checked, STATES.len() * ACTIONS.len(), "every state x action was tried");
    assert!(failures.is_empty(), "{} of {checked} state x action cases wrong:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_decision_is_recorded_with_who_why_and_the_scores() {
    let f = fresh().await;
    let (manager_subject, manager) = f.manager("oujda");
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.eligible_draft(&call).await;
    f.to_review(&draft.name).await;
    f.scored_by_new_reviewer(&draft.name, 8, 3).await; // 72
    f.scored_by_new_reviewer(&draft.name, 10, 5).await; // 100
    let waitlisted = f.decide(&manager, &draft.name, Outcome::Waitlisted, "good, no room yet").await.expect("waitlist");
    assert_eq!(state(&waitlisted), ApplicationState::Decided);
    let accepted = f.decide(&manager, &draft.name, Outcome::Accepted, "a place freed up").await.expect("accept from the waiting list");
    let decision = accepted.decision.expect("decision");
    assert_eq!(decision.outcome, Outcome::Accepted as i32);
    assert_eq!(decision.reason, "a place freed up");
    assert_eq!(decision.decided_by, manager_subject);
    assert!(decision.decide_time.is_some());
    assert!((decision.average_score - 86.0).abs() < 1e-6, "average of 72 and 100: {}", decision.average_score);
    assert_eq!(decision.review_count, 2);
}
