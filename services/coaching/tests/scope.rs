//! Who sees and changes what: officers and program managers the engagements of their zones
//! (their organisation does not matter), coaches their own engagements and the sessions they
//! lead, beneficiaries their own engagements and sessions, auditors everything read-only. Out of
//! scope is NOT_FOUND (as if the record did not exist); lists and cohorts leave it out.

mod common;

use common::{Fixture, TestCoach, assert_refused, bearer, engagement_message, fresh, milestone_name, plus};
use tonic::{Code, Status};
use work4life_proto::coaching::{
    Attendance, CancelSessionRequest, CompleteMilestoneRequest, CreateCoachRequest, CreateEngagementRequest, Engagement,
    GetEngagementRequest, GetProgressRequest, GetSessionRequest, ListEngagementsRequest, ListSessionsRequest, OpeningHours,
    ReassignCoachRequest, RecordAttendanceRequest, RejectMilestoneRequest, RescheduleSessionRequest, ScheduleSessionRequest, Session,
    UpdateOfficeHoursRequest, VerifyMilestoneRequest,
};

/// A Rabat engagement and an Oujda one, each with its coach and sessions.
struct World {
    rabat_coach: TestCoach,
    oujda_coach: TestCoach,
    rabat: Engagement,
    oujda: Engagement,
    /// A future session of the Rabat engagement.
    rabat_session: Session,
    /// A past, not yet held session of the Rabat engagement.
    rabat_past: Session,
    /// A future session of the Oujda engagement.
    oujda_session: Session,
}

async fn world(f: &Fixture) -> World {
    let rabat_coach = f.coach("rabat_ocean", &["fr"], 30).await;
    let oujda_coach = f.coach("oujda_cefa", &["fr"], 30).await;
    let rabat = f.engagement("collective_startup", "rabat_sale", 2).await;
    let oujda = f.engagement("collective_startup", "oujda", 2).await;
    assert_eq!((rabat.coach.as_str(), oujda.coach.as_str()), (rabat_coach.name().as_str(), oujda_coach.name().as_str()));
    let rabat_session = f
        .schedule(&f.admin, f.session_at(&[&rabat], "offices/rabat_ocean/rooms/salle_a", "2027-04-07 10:00", "2027-04-07 11:00").await)
        .await
        .expect("rabat session");
    let rabat_past = f.schedule(&f.admin, f.past_session(&rabat, 5, 60)).await.expect("past rabat session");
    let oujda_session =
        f.schedule(&f.admin, f.session_at(&[&oujda], "", "2027-04-07 10:00", "2027-04-07 11:00").await).await.expect("oujda session");
    f.complete(&rabat_coach.jwt, &milestone_name(&rabat, "legal_registration"), &["documents/rc.pdf"]).await.expect("completed");
    World { rabat_coach, oujda_coach, rabat, oujda, rabat_session, rabat_past, oujda_session }
}

/// Every read of a Rabat record.
async fn reads(f: &Fixture, jwt: &str, w: &World) -> Vec<(&'static str, Result<(), Status>)> {
    let mut c = f.client().await;
    vec![
        ("GetEngagement", c.get_engagement(bearer(GetEngagementRequest { name: w.rabat.name.clone() }, jwt)).await.map(drop)),
        ("GetSession", c.get_session(bearer(GetSessionRequest { name: w.rabat_session.name.clone() }, jwt)).await.map(drop)),
        (
            "GetProgress",
            c.get_progress(bearer(GetProgressRequest { engagement: w.rabat.name.clone(), ..Default::default() }, jwt)).await.map(drop),
        ),
    ]
}

/// Every change of a Rabat record (but completing a milestone, which beneficiaries may do).
async fn writes(f: &Fixture, jwt: &str, w: &World) -> Vec<(&'static str, Result<(), Status>)> {
    let mut c = f.client().await;
    let start = f.local("2027-04-14 10:00").await;
    let registration = milestone_name(&w.rabat, "legal_registration");
    vec![
        (
            "ReassignCoach",
            c.reassign_coach(bearer(
                ReassignCoachRequest { name: w.rabat.name.clone(), coach: w.oujda_coach.name(), reason: "mine now".into() },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "ScheduleSession",
            c.schedule_session(bearer(
                ScheduleSessionRequest {
                    session: Some(common::session_message(&[&w.rabat], "", start, plus(&start, 3600))),
                    request_id: common::rid(),
                },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "ScheduleSession (workshop with an engagement in scope)",
            c.schedule_session(bearer(
                ScheduleSessionRequest {
                    session: Some(common::session_message(&[&w.oujda, &w.rabat], "", plus(&start, 7200), plus(&start, 10800))),
                    request_id: common::rid(),
                },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "RescheduleSession",
            c.reschedule_session(bearer(
                RescheduleSessionRequest {
                    name: w.rabat_session.name.clone(),
                    start_time: Some(start),
                    end_time: Some(plus(&start, 3600)),
                    room: String::new(),
                    reason: "moved".into(),
                    etag: String::new(),
                },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "CancelSession",
            c.cancel_session(bearer(CancelSessionRequest { name: w.rabat_session.name.clone(), reason: "no".into() }, jwt)).await.map(drop),
        ),
        (
            "RecordAttendance",
            c.record_attendance(bearer(
                RecordAttendanceRequest {
                    name: w.rabat_past.name.clone(),
                    attendance: vec![Attendance { applicant: w.rabat.beneficiaries[0].clone(), present: true }],
                    notes: String::new(),
                },
                jwt,
            ))
            .await
            .map(drop),
        ),
        ("VerifyMilestone", c.verify_milestone(bearer(VerifyMilestoneRequest { name: registration.clone() }, jwt)).await.map(drop)),
        (
            "RejectMilestone",
            c.reject_milestone(bearer(RejectMilestoneRequest { name: registration, reason: "no".into() }, jwt)).await.map(drop),
        ),
    ]
}

async fn complete_rabat(f: &Fixture, jwt: &str, w: &World) -> Result<(), Status> {
    f.client()
        .await
        .complete_milestone(bearer(
            CompleteMilestoneRequest {
                name: milestone_name(&w.rabat, "business_plan_validated"),
                evidence: vec!["documents/plan.pdf".into()],
                note: String::new(),
            },
            jwt,
        ))
        .await
        .map(drop)
}

async fn create_in(f: &Fixture, jwt: &str, zone: &str) -> Result<Engagement, Status> {
    f.client()
        .await
        .create_engagement(bearer(
            CreateEngagementRequest { engagement: Some(engagement_message("job_placement", zone, 1)), request_id: common::rid() },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().engagement.expect("engagement"))
}

async fn engagement_names(f: &Fixture, jwt: &str, request: ListEngagementsRequest) -> Vec<String> {
    let list = f.client().await.list_engagements(bearer(request, jwt)).await.expect("list engagements").into_inner();
    list.engagements.into_iter().map(|e| e.name).collect()
}

async fn session_names(f: &Fixture, jwt: &str, request: ListSessionsRequest) -> Vec<String> {
    let list = f.client().await.list_sessions(bearer(request, jwt)).await.expect("list sessions").into_inner();
    list.sessions.into_iter().map(|s| s.name).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[track_caller]
fn expect_all(results: Vec<(&'static str, Result<(), Status>)>, code: Code, who: &str) {
    expect_codes(results, code, &[], who);
}

/// Every result refused with `code`, but those named in `except` (a prefix of the attempt's name).
#[track_caller]
fn expect_codes(results: Vec<(&'static str, Result<(), Status>)>, code: Code, except: &[(&str, Code)], who: &str) {
    for (what, result) in results {
        let expected = except.iter().find(|(name, _)| what.starts_with(name)).map_or(code, |(_, c)| *c);
        assert_refused(result, expected, "", &format!("{who}: {what}"));
    }
}

#[tokio::test]
async fn an_oujda_officer_cannot_see_or_change_rabat_records() {
    let f = fresh().await;
    let w = world(&f).await;
    // Another organisation's officer: the organisation does not matter in coaching.
    let (_, officer) = f.token("officer", Some(uuid::Uuid::now_v7()), &["oujda"]);
    let before = f.fingerprint().await;

    expect_all(reads(&f, &officer, &w).await, Code::NotFound, "an Oujda officer reads");
    expect_all(writes(&f, &officer, &w).await, Code::NotFound, "an Oujda officer changes");
    assert_refused(complete_rabat(&f, &officer, &w).await, Code::NotFound, "", "an Oujda officer completes");
    assert_refused(create_in(&f, &officer, "rabat_sale").await, Code::PermissionDenied, "", "an Oujda officer opens in Rabat");
    assert_eq!(f.fingerprint().await, before, "nothing written by the attempts");

    assert_eq!(engagement_names(&f, &officer, ListEngagementsRequest::default()).await, [w.oujda.name.as_str()]);
    assert!(engagement_names(&f, &officer, ListEngagementsRequest { zone: "rabat_sale".into(), ..Default::default() }).await.is_empty());
    assert_eq!(session_names(&f, &officer, ListSessionsRequest::default()).await, [w.oujda_session.name.as_str()]);
    assert!(session_names(&f, &officer, ListSessionsRequest { engagement: w.rabat.name.clone(), ..Default::default() }).await.is_empty());
    let cohort = f.progress(&officer, GetProgressRequest::default()).await.expect("cohort");
    assert_eq!((cohort.engagements, cohort.milestones_total), (1, 6), "only Oujda counted");
    let rabat_cohort = f.progress(&officer, GetProgressRequest { zone: "rabat_sale".into(), ..Default::default() }).await.expect("rabat");
    assert_eq!(rabat_cohort.engagements, 0);

    // Their own zone works.
    f.get_engagement(&officer, &w.oujda.name).await.expect("an Oujda engagement");
    f.get_session(&officer, &w.oujda_session.name).await.expect("an Oujda session");
    f.cancel(&officer, &w.oujda_session.name, "rescheduling the week").await.expect("an officer cancels in their zone");
    create_in(&f, &officer, "oujda").await.expect("opens in their zone");
    // A program manager of Rabat does what the officer could not.
    let (_, rabat_manager) = f.manager("rabat_sale");
    f.get_engagement(&rabat_manager, &w.rabat.name).await.expect("a Rabat manager");
}

#[tokio::test]
async fn coaches_see_their_engagements_and_the_sessions_they_lead() {
    let f = fresh().await;
    let w = world(&f).await;
    let coach = &w.oujda_coach;
    let before = f.fingerprint().await;
    expect_all(reads(&f, &coach.jwt, &w).await, Code::NotFound, "the Oujda coach reads");
    expect_all(writes(&f, &coach.jwt, &w).await, Code::NotFound, "the Oujda coach changes");
    assert_refused(complete_rabat(&f, &coach.jwt, &w).await, Code::NotFound, "", "the Oujda coach completes");
    assert_eq!(f.fingerprint().await, before, "nothing written by the attempts");

    assert_eq!(engagement_names(&f, &coach.jwt, ListEngagementsRequest::default()).await, [w.oujda.name.as_str()]);
    assert_eq!(session_names(&f, &coach.jwt, ListSessionsRequest::default()).await, [w.oujda_session.name.as_str()]);
    f.get_engagement(&coach.jwt, &w.oujda.name).await.expect("their own engagement");
    // Desk work is not a coach's.
    let mut c = f.client().await;
    let reassign = c
        .reassign_coach(bearer(
            ReassignCoachRequest { name: w.oujda.name.clone(), coach: w.rabat_coach.name(), reason: "too busy".into() },
            &coach.jwt,
        ))
        .await;
    assert_refused(reassign, Code::PermissionDenied, "", "a coach reassigns their own engagement");
    assert_refused(create_in(&f, &coach.jwt, "oujda").await, Code::PermissionDenied, "", "a coach opens an engagement");

    // A coach schedules, moves and holds their own engagement's sessions.
    let own = f
        .schedule(&coach.jwt, f.session_at(&[&w.oujda], "", "2027-04-08 10:00", "2027-04-08 11:00").await)
        .await
        .expect("the coach schedules for their engagement");
    let start = f.local("2027-04-08 14:00").await;
    f.reschedule(&coach.jwt, &own.name, start, plus(&start, 3600), "", "afternoon", "").await.expect("the coach moves it");

    // A session they lead for someone else's engagement: they see and run the session, not the engagement.
    let mut led = f.session_at(&[&w.rabat], "", "2027-04-09 10:00", "2027-04-09 11:00").await;
    led.coach = coach.name();
    let led = f.schedule(&f.admin, led).await.expect("the Oujda coach stands in");
    f.get_session(&coach.jwt, &led.name).await.expect("the coach sees the session they lead");
    assert_refused(f.get_engagement(&coach.jwt, &w.rabat.name).await, Code::NotFound, "", "but not the engagement");
    assert!(session_names(&f, &coach.jwt, ListSessionsRequest::default()).await.contains(&led.name));
    f.cancel(&coach.jwt, &led.name, "the regular coach is back").await.expect("the leading coach cancels");

    let cohort = f.progress(&coach.jwt, GetProgressRequest::default()).await.expect("cohort");
    assert_eq!(cohort.engagements, 1, "a coach's cohort is their own engagements");
}

#[tokio::test]
async fn beneficiaries_see_their_own_engagement_and_sessions() {
    let f = fresh().await;
    let w = world(&f).await;
    let mine = f.beneficiary_of(&w.rabat);
    for (what, result) in reads(&f, &mine, &w).await {
        result.unwrap_or_else(|status| panic!("a Rabat beneficiary reads their {what}: {status:?}"));
    }
    let before = f.fingerprint().await;
    // The workshop also names the Oujda engagement, which they cannot see.
    let workshop = [("ScheduleSession (workshop", Code::NotFound)];
    expect_codes(writes(&f, &mine, &w).await, Code::PermissionDenied, &workshop, "a beneficiary changes their own");
    assert_refused(create_in(&f, &mine, "rabat_sale").await, Code::PermissionDenied, "", "a beneficiary opens an engagement");
    assert_eq!(f.fingerprint().await, before, "nothing written by the attempts");
    complete_rabat(&f, &mine, &w).await.expect("a beneficiary completes their milestone");

    assert_eq!(engagement_names(&f, &mine, ListEngagementsRequest::default()).await, [w.rabat.name.as_str()]);
    assert_eq!(
        sorted(session_names(&f, &mine, ListSessionsRequest::default()).await),
        sorted(vec![w.rabat_session.name.clone(), w.rabat_past.name.clone()])
    );
    assert_refused(f.get_engagement(&mine, &w.oujda.name).await, Code::NotFound, "", "another engagement");
    assert_refused(f.get_session(&mine, &w.oujda_session.name).await, Code::NotFound, "", "another engagement's session");
    let cohort = f.progress(&mine, GetProgressRequest::default()).await.expect("cohort");
    assert_eq!(cohort.engagements, 1);

    // Another engagement's beneficiary, and a beneficiary of none, see nothing of it.
    let theirs = f.beneficiary_of(&w.oujda);
    expect_all(reads(&f, &theirs, &w).await, Code::NotFound, "an Oujda beneficiary reads");
    expect_all(writes(&f, &theirs, &w).await, Code::NotFound, "an Oujda beneficiary changes");
    let nobody = f.beneficiary(&common::new_account());
    assert!(engagement_names(&f, &nobody, ListEngagementsRequest::default()).await.is_empty());
    assert!(session_names(&f, &nobody, ListSessionsRequest::default()).await.is_empty());
    // The role matters, not only the account: the same account as an officer of nowhere sees nothing.
    let wrong_role = f.token_for(&w.rabat.beneficiary_accounts[0], &[("reviewer", None, &[])]);
    assert_refused(f.get_engagement(&wrong_role, &w.rabat.name).await, Code::NotFound, "", "the account without the beneficiary role");
}

#[tokio::test]
async fn auditors_read_everything_and_change_nothing() {
    let f = fresh().await;
    let w = world(&f).await;
    let (_, auditor) = f.auditor();
    for (what, result) in reads(&f, &auditor, &w).await {
        result.unwrap_or_else(|status| panic!("an auditor reads {what}: {status:?}"));
    }
    assert_eq!(
        sorted(engagement_names(&f, &auditor, ListEngagementsRequest::default()).await),
        sorted(vec![w.rabat.name.clone(), w.oujda.name.clone()])
    );
    assert_eq!(session_names(&f, &auditor, ListSessionsRequest::default()).await.len(), 3);
    assert_eq!(f.progress(&auditor, GetProgressRequest::default()).await.expect("cohort").engagements, 2);

    let before = f.fingerprint().await;
    expect_all(writes(&f, &auditor, &w).await, Code::PermissionDenied, "an auditor changes");
    assert_refused(complete_rabat(&f, &auditor, &w).await, Code::PermissionDenied, "", "an auditor completes");
    assert_refused(create_in(&f, &auditor, "rabat_sale").await, Code::PermissionDenied, "", "an auditor opens");
    let mut c = f.client().await;
    let hours = c
        .update_office_hours(bearer(
            UpdateOfficeHoursRequest {
                name: "offices/rabat_ocean".into(),
                opening_hours: vec![OpeningHours { weekday: 1, open: "08:00".into(), close: "12:00".into() }],
                closures: vec![],
            },
            &auditor,
        ))
        .await;
    assert_refused(hours, Code::PermissionDenied, "", "an auditor sets hours");
    let coach = c
        .create_coach(bearer(
            CreateCoachRequest { coach: Some(common::coach_message("rabat_ocean", &["fr"], 10)), account: common::new_account() },
            &auditor,
        ))
        .await;
    assert_refused(coach, Code::PermissionDenied, "", "an auditor records a coach");
    assert_eq!(f.fingerprint().await, before, "nothing written");
}

#[tokio::test]
async fn a_workshop_across_zones_is_changed_by_staff_of_every_zone() {
    let f = fresh().await;
    let w = world(&f).await;
    let mut workshop = f.session_at(&[&w.oujda, &w.rabat], "", "2027-04-12 10:00", "2027-04-12 12:00").await;
    workshop.coach = w.oujda_coach.name();
    let workshop = f.schedule(&f.admin, workshop).await.expect("a workshop of both zones");

    let (_, oujda_officer) = f.officer("oujda");
    let before = f.fingerprint().await;
    let refused = f.cancel(&oujda_officer, &workshop.name, "mine").await;
    let status = refused.expect_err("an Oujda officer does not cancel a workshop with a Rabat engagement");
    assert!(matches!(status.code(), Code::PermissionDenied | Code::NotFound), "{status:?}");
    let start = f.local("2027-04-12 14:00").await;
    let moved = f.reschedule(&oujda_officer, &workshop.name, start, plus(&start, 3600), "", "afternoon", "").await;
    let status = moved.expect_err("nor move it");
    assert!(matches!(status.code(), Code::PermissionDenied | Code::NotFound), "{status:?}");
    assert_eq!(f.fingerprint().await, before, "nothing written");

    let both = f.token_for(&common::new_account(), &[("officer", Some(f.org), &["oujda"]), ("program_manager", None, &["rabat_sale"])]);
    let mut joint = f.session_at(&[&w.oujda, &w.rabat], "", "2027-04-13 10:00", "2027-04-13 12:00").await;
    joint.coach = w.rabat_coach.name();
    f.schedule(&both, joint).await.expect("staff of both zones schedule a joint workshop");
    f.cancel(&both, &workshop.name, "merged into the next one").await.expect("and cancel one");
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let f = fresh().await;
    let w = world(&f).await;
    let mut c = f.client().await;
    let anonymous = c.get_engagement(GetEngagementRequest { name: w.rabat.name.clone() }).await;
    assert_refused(anonymous, Code::Unauthenticated, "", "no token");
    let forged = bearer(GetEngagementRequest { name: w.rabat.name.clone() }, "eyJhbGciOiJFZERTQSJ9.e30.c2lnbmF0dXJl");
    assert_refused(c.get_engagement(forged).await, Code::Unauthenticated, "", "a forged token");
}
