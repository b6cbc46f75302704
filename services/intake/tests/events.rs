//! Events in the outbox (`intake.outbox`): registered, submitted, decided and erased, each
//! written with the change that caused it, and none when the change is refused.

mod common;

use common::{Fixture, application_message, assert_refused, bearer, fresh, member, new_applicant, payload};
use prost::Message as _;
use tonic::Code;
use work4life_proto::{
    events::Event,
    intake::{
        AddMemberRequest, Applicant, ApplicantErased, ApplicantRegistered, ApplicationDecided, ApplicationSubmitted,
        CreateApplicantRequest, ErasePersonalDataRequest, MemberRole, Outcome, Window,
    },
    types::Money,
};

/// Checks the envelope of an intake event of `event_type` carrying `message`.
fn assert_envelope(event: &Event, event_type: &str, message: &str) {
    assert_eq!(event.r#type, event_type);
    assert_eq!(event.source, "intake");
    uuid::Uuid::parse_str(&event.id).expect("the event id is a uuid");
    assert!(event.occurred_at.is_some());
    let any = event.payload.as_ref().expect("payload");
    assert_eq!(any.type_url, format!("type.googleapis.com/work4life.intake.v1.{message}"));
}

async fn all_events(f: &Fixture) -> i64 {
    f.count("SELECT count(*) FROM intake.outbox").await
}

#[tokio::test]
async fn registering_writes_one_event_and_a_refusal_none() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let person = new_applicant("oujda");
    let request = CreateApplicantRequest { applicant: Some(person.clone()), request_id: uuid::Uuid::new_v4().to_string() };
    let mut c = f.client().await;
    let created = c.create_applicant(bearer(request.clone(), &officer)).await.expect("create").into_inner().applicant.expect("a");
    // Committed with the record: already there when the call returns, no waiting.
    let events = f.events("intake.applicant.registered").await;
    assert_eq!(events.len(), 1);
    assert_envelope(&events[0], "intake.applicant.registered", "ApplicantRegistered");
    let registered: ApplicantRegistered = payload(&events[0]);
    assert_eq!(registered.applicant, created.name);
    assert_eq!(registered.zone, "oujda");
    assert_eq!(registered.languages, ["fr", "wo"]);
    assert_eq!(registered.organization, format!("organizations/{}", f.org));
    assert_eq!(registered.account, "");
    assert!(registered.possible_duplicates.is_empty());
    let raw = events[0].encode_to_vec();
    let text = String::from_utf8_lossy(&raw);
    for secret in [&person.phone, &person.email, &person.given_name, &person.family_name] {
        assert!(!text.contains(secret.as_str()), "events carry no contact details or names");
    }

    // A replay, a duplicate and bad input add nothing.
    c.create_applicant(bearer(request, &officer)).await.expect("replay");
    let mut duplicate = new_applicant("oujda");
    duplicate.phone = person.phone.clone();
    let refused = c
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(duplicate), request_id: uuid::Uuid::new_v4().to_string() },
            &officer,
        ))
        .await;
    assert_refused(refused, Code::AlreadyExists, "DUPLICATE_PHONE", "duplicate");
    let invalid = c
        .create_applicant(bearer(
            CreateApplicantRequest {
                applicant: Some(Applicant { given_name: String::new(), ..new_applicant("oujda") }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &officer,
        ))
        .await;
    assert_refused(invalid, Code::InvalidArgument, "", "bad input");
    assert_eq!(f.events("intake.applicant.registered").await.len(), 1);
    assert_eq!(all_events(&f).await, 1);

    // A person registering themselves is linked to their login.
    let (subject, jwt) = f.token("beneficiary", None, &[]);
    let own = f.create_applicant(&jwt, new_applicant("oujda")).await;
    let events = f.events("intake.applicant.registered").await;
    let registered: ApplicantRegistered = payload(events.last().expect("event"));
    assert_eq!(
        (registered.applicant.as_str(), registered.account.as_str(), registered.organization.as_str()),
        (own.name.as_str(), subject.as_str(), "")
    );
}

#[tokio::test]
async fn submitting_writes_one_event_naming_every_member_and_a_refusal_none() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let (subject, jwt) = f.token("beneficiary", None, &[]);
    let own = f.create_applicant(&jwt, Applicant { languages: vec!["en".into()], ..new_applicant("oujda") }).await;
    let others = f.applicants_in("oujda", 2).await;
    let draft = f.draft(&officer, &call, "oujda", &[&others[0], &own]).await;
    let before = all_events(&f).await;
    assert_refused(f.submit(&officer, &draft.name).await, Code::FailedPrecondition, "NOT_ELIGIBLE", "two members");
    assert_eq!(all_events(&f).await, before, "no event for a refused submission");

    f.client()
        .await
        .add_member(bearer(
            AddMemberRequest { application: draft.name.clone(), member: Some(member(&others[1], MemberRole::Member)), etag: String::new() },
            &officer,
        ))
        .await
        .expect("add");
    f.submit(&officer, &draft.name).await.expect("submit");
    let events = f.events("intake.application.submitted").await;
    assert_eq!(events.len(), 1);
    assert_envelope(&events[0], "intake.application.submitted", "ApplicationSubmitted");
    let submitted: ApplicationSubmitted = payload(&events[0]);
    assert_eq!(submitted.application, draft.name);
    assert_eq!(submitted.call, call.name);
    assert_eq!(submitted.program, common::PROGRAM);
    assert_eq!(submitted.window, Window::CollectiveStartup as i32);
    assert_eq!(submitted.zone, "oujda");
    let mut recipients: Vec<(String, i32, String, Vec<String>)> =
        submitted.recipients.iter().map(|r| (r.applicant.clone(), r.role, r.account.clone(), r.languages.clone())).collect();
    recipients.sort();
    let mut expected = vec![
        (others[0].name.clone(), MemberRole::Representative as i32, String::new(), vec!["fr".to_string(), "wo".to_string()]),
        (own.name.clone(), MemberRole::Member as i32, subject.clone(), vec!["en".to_string()]),
        (others[1].name.clone(), MemberRole::Member as i32, String::new(), vec!["fr".to_string(), "wo".to_string()]),
    ];
    expected.sort();
    assert_eq!(recipients, expected, "every member, with role, login and languages");

    // Submitting again is refused and adds nothing.
    let before = all_events(&f).await;
    assert_refused(f.submit(&officer, &draft.name).await, Code::FailedPrecondition, "INVALID_STATE", "twice");
    assert_eq!(all_events(&f).await, before);
}

#[tokio::test]
async fn each_decision_writes_a_decided_event_and_a_refusal_none() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.eligible_draft(&call).await;
    f.to_review(&draft.name).await;
    let before = all_events(&f).await;
    assert_refused(f.decide(&f.admin, &draft.name, Outcome::Accepted, "ok").await, Code::FailedPrecondition, "NOT_REVIEWED", "unscored");
    assert_eq!(all_events(&f).await, before, "no event for a refused decision");
    f.scored_by_new_reviewer(&draft.name, 10, 5).await;
    f.decide(&f.admin, &draft.name, Outcome::Waitlisted, "no room yet").await.expect("waitlist");
    f.decide(&f.admin, &draft.name, Outcome::Accepted, "room now").await.expect("accept");
    let events = f.events("intake.application.decided").await;
    let outcomes: Vec<i32> = events.iter().map(|e| payload::<ApplicationDecided>(e).decision.expect("decision").outcome).collect();
    assert_eq!(outcomes, [Outcome::Waitlisted as i32, Outcome::Accepted as i32]);
    assert_envelope(&events[1], "intake.application.decided", "ApplicationDecided");
    let decided: ApplicationDecided = payload(&events[1]);
    assert_eq!(decided.recipients.len(), 1);
    assert_eq!(decided.recipients[0].applicant, draft.members[0].applicant);
    assert_eq!(decided.recipients[0].role, MemberRole::Representative as i32);
    assert!(decided.employer.is_empty() && decided.monthly_salary.is_none(), "not a job placement");
    // The accepted decision carries each member's coarse profile for grants' donor reports.
    assert!(payload::<ApplicationDecided>(&events[0]).profiles.is_empty(), "no profiles on a waitlisting");
    assert_eq!(decided.profiles.len(), 1);
    let profile = &decided.profiles[0];
    assert_eq!(profile.applicant, draft.members[0].applicant);
    assert_eq!((profile.gender, profile.nationality.as_str()), (work4life_proto::intake::Gender::Female as i32, "SN"), "as registered");
    assert!(["18-24", "25-34"].contains(&profile.age_band.as_str()), "born after 1994 and eligible: {}", profile.age_band);
}

#[tokio::test]
async fn a_job_placement_decision_carries_the_employer_and_the_salary() {
    let f = fresh().await;
    let call = f.open_call(Window::JobPlacement, &["tanger"]).await;
    let person = f.applicant_in("tanger").await;
    let message = application_message(&call, "tanger", &[&person]);
    let employer = message.job_placement.as_ref().expect("job").employer.clone();
    let draft = f.create_application(&f.admin, message).await.expect("draft");
    f.to_review(&draft.name).await;
    f.scored_by_new_reviewer(&draft.name, 6, 4).await;
    f.decide(&f.admin, &draft.name, Outcome::Accepted, "the employer confirmed").await.expect("accept");
    let events = f.events("intake.application.decided").await;
    assert_eq!(events.len(), 1);
    let decided: ApplicationDecided = payload(&events[0]);
    assert_eq!(decided.window, Window::JobPlacement as i32);
    assert_eq!(decided.employer, employer);
    assert_eq!(decided.monthly_salary, Some(Money { currency_code: "MAD".into(), amount_minor: 350_000 }));
}

#[tokio::test]
async fn erasure_writes_an_erased_event_and_a_refusal_none() {
    let f = fresh().await;
    let person = f.applicant_in("oujda").await;
    let mut c = f.client().await;
    let before = all_events(&f).await;
    let refused =
        c.erase_personal_data(bearer(ErasePersonalDataRequest { name: person.name.clone(), reason: String::new() }, &f.admin)).await;
    assert_refused(refused, Code::InvalidArgument, "", "no reason");
    assert_eq!(all_events(&f).await, before);
    c.erase_personal_data(bearer(ErasePersonalDataRequest { name: person.name.clone(), reason: "asked on 2026-11-20".into() }, &f.admin))
        .await
        .expect("erase");
    let events = f.events("intake.applicant.erased").await;
    assert_eq!(events.len(), 1);
    assert_envelope(&events[0], "intake.applicant.erased", "ApplicantErased");
    assert_eq!(payload::<ApplicantErased>(&events[0]).applicant, person.name);
    assert_eq!(all_events(&f).await, before + 1);
}
