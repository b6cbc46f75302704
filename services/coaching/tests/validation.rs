//! Bad input on every CoachingService RPC: INVALID_ARGUMENT with one BadRequest violation per
//! bad field, named by its path, and nothing written (no row, no event, no audit record, no
//! request id). The method list comes from the service descriptor, so a new RPC without a case
//! here fails this test.

mod common;

use std::collections::BTreeSet;

use common::{Fixture, bearer, coach_message, engagement_message, fields, fresh, milestone_name, new_account, rid};
use prost::Message as _;
use tonic::{Code, Status};
use uuid::Uuid;
use work4life_proto::coaching::{
    Attendance, CancelSessionRequest, Coach, CompleteMilestoneRequest, CreateCoachRequest, CreateEngagementRequest, Engagement,
    GetCoachRequest, GetEngagementRequest, GetOfficeRequest, GetProgressRequest, GetSessionRequest, ListCoachesRequest,
    ListEngagementsRequest, ListOfficesRequest, ListSessionsRequest, OpeningHours, ReassignCoachRequest, RecordAttendanceRequest,
    RejectMilestoneRequest, RescheduleSessionRequest, ScheduleSessionRequest, Session, UpdateOfficeHoursRequest, VerifyMilestoneRequest,
};

fn methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(work4life_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == "work4life.coaching.v1")
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == "CoachingService")
        .flat_map(|s| &s.method)
        .map(|m| m.name().to_string())
        .collect()
}

/// Whether the reported `actual` path is the `expected` one. `a|b` accepts either spelling; a
/// repeated field may be reported with or without its index (`engagement.beneficiaries[0]`).
fn path_matches(expected: &str, actual: &str) -> bool {
    expected.split('|').any(|want| {
        actual == want
            || actual.strip_prefix(want).is_some_and(|rest| {
                rest.starts_with('[') && rest.ends_with(']') && rest[1..rest.len() - 1].bytes().all(|b| b.is_ascii_digit())
            })
    })
}

/// `None` when `actual` names exactly the `expected` fields (in any order), else what differs.
fn compare(expected: &[&str], actual: &[String]) -> Option<String> {
    let mut left: Vec<&String> = actual.iter().collect();
    let mut missing = Vec::new();
    for want in expected {
        match left.iter().position(|a| path_matches(want, a)) {
            Some(i) => drop(left.remove(i)),
            None => missing.push(*want),
        }
    }
    (!missing.is_empty() || !left.is_empty()).then(|| format!("missing {missing:?}, unexpected {left:?} (reported {actual:?})"))
}

/// (method, what is wrong, the call's result, the field paths expected).
type Case = (&'static str, &'static str, Result<(), Status>, &'static [&'static str]);

/// What the cases work on: an Oujda engagement with its coach, a future room session and a past
/// remote one.
struct Setup {
    engagement: Engagement,
    coach: common::TestCoach,
    session: Session,
    past: Session,
}

async fn setup(f: &Fixture) -> Setup {
    let coach = f.coach("oujda_cefa", &["fr"], 30).await;
    let engagement = f.engagement("collective_startup", "oujda", 2).await;
    let session = f
        .schedule(&f.admin, f.session_at(&[&engagement], "offices/oujda_cefa/rooms/salle_a", "2027-04-07 10:00", "2027-04-07 11:00").await)
        .await
        .expect("session");
    let past = f.schedule(&f.admin, f.past_session(&engagement, 5, 60)).await.expect("past session");
    f.complete(&coach.jwt, &milestone_name(&engagement, "business_plan_validated"), &["documents/plan.pdf"]).await.expect("completed");
    Setup { engagement, coach, session, past }
}

/// Runs the cases' checks: INVALID_ARGUMENT with exactly the expected paths; every method of the
/// service covered when `all_methods`; nothing written.
async fn check(f: &Fixture, before: Vec<(&'static str, i64, String)>, cases: Vec<Case>, all_methods: bool) {
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for (method, case, result, expected) in &cases {
        covered.insert(method.to_string());
        match result {
            Ok(()) => failures.push(format!("{method} {case}: ACCEPTED")),
            Err(status) if status.code() != Code::InvalidArgument => {
                failures.push(format!("{method} {case}: {:?} {} instead of INVALID_ARGUMENT", status.code(), status.message()))
            }
            Err(status) => {
                if let Some(diff) = compare(expected, &fields(status)) {
                    failures.push(format!("{method} {case}: {diff}"));
                }
            }
        }
    }
    let all: BTreeSet<String> = methods().into_iter().collect();
    assert!(all.len() >= 20, "{all:?}");
    let unknown: Vec<&String> = covered.difference(&all).collect();
    assert!(unknown.is_empty(), "cases for methods that do not exist: {unknown:?}");
    if all_methods {
        let uncovered: Vec<&String> = all.difference(&covered).collect();
        assert!(uncovered.is_empty(), "no bad-input case for {uncovered:?}: add one to this test");
    }
    let after = f.fingerprint().await;
    if after != before {
        let changed: Vec<&str> = before.iter().zip(&after).filter(|(b, a)| b != a).map(|(b, _)| b.0).collect();
        failures.push(format!("refused requests wrote to {changed:?}"));
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

fn hours(weekday: i32, open: &str, close: &str) -> OpeningHours {
    OpeningHours { weekday, open: open.into(), close: close.into() }
}

#[tokio::test]
async fn every_rpc_refuses_bad_input_by_field_and_writes_nothing() {
    let f = fresh().await;
    let s = setup(&f).await;
    let admin = f.admin.clone();
    let before = f.fingerprint().await;
    let mut c = f.client().await;
    let e = s.engagement.clone();
    let start = f.local("2027-04-14 10:00").await;
    let at = |seconds: i64| Some(common::plus(&start, seconds));
    let session = |change: &dyn Fn(&mut Session)| {
        let mut session = common::session_message(&[&e], "", start, common::plus(&start, 3600));
        change(&mut session);
        ScheduleSessionRequest { session: Some(session), request_id: rid() }
    };
    let engagement = |change: &dyn Fn(&mut Engagement)| {
        let mut e = engagement_message("individual_startup", "oujda", 1);
        change(&mut e);
        CreateEngagementRequest { engagement: Some(e), request_id: rid() }
    };
    let coach = |change: &dyn Fn(&mut Coach)| {
        let mut profile = coach_message("oujda_cefa", &["fr"], 20);
        change(&mut profile);
        CreateCoachRequest { coach: Some(profile), account: new_account() }
    };
    let reschedule = |change: &dyn Fn(&mut RescheduleSessionRequest)| {
        let mut r = RescheduleSessionRequest {
            name: s.session.name.clone(),
            start_time: at(0),
            end_time: at(3600),
            room: String::new(),
            reason: "the coach is ill".into(),
            etag: String::new(),
        };
        change(&mut r);
        r
    };
    let milestone = milestone_name(&e, "business_plan_validated");
    let ghost_engagement = format!("engagements/{}", Uuid::now_v7());
    let long = "x".repeat(201);

    let cases: Vec<Case> = vec![
        (
            "GetOffice",
            "malformed name",
            c.get_office(bearer(GetOfficeRequest { name: "oujda_cefa".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        ("GetOffice", "empty name", c.get_office(bearer(GetOfficeRequest { name: String::new() }, &admin)).await.map(drop), &["name"]),
        (
            "ListOffices",
            "negative page size",
            c.list_offices(bearer(ListOfficesRequest { page_size: -1, ..Default::default() }, &admin)).await.map(drop),
            &["page_size"],
        ),
        (
            "ListOffices",
            "garbage page token",
            c.list_offices(bearer(ListOfficesRequest { page_token: "garbage".into(), ..Default::default() }, &admin)).await.map(drop),
            &["page_token"],
        ),
        (
            "UpdateOfficeHours",
            "malformed name",
            c.update_office_hours(bearer(
                UpdateOfficeHoursRequest { name: "oujda_cefa".into(), opening_hours: vec![hours(1, "09:00", "17:00")], closures: vec![] },
                &admin,
            ))
            .await
            .map(drop),
            &["name"],
        ),
        (
            "UpdateOfficeHours",
            "bad weekday, closing before opening, a weekday twice, bad dates",
            c.update_office_hours(bearer(
                UpdateOfficeHoursRequest {
                    name: "offices/oujda_cefa".into(),
                    opening_hours: vec![
                        hours(8, "09:00", "17:00"),
                        hours(1, "17:00", "09:00"),
                        hours(1, "08:00", "12:00"),
                        hours(2, "9h", "17:00"),
                    ],
                    closures: vec!["2027-02-30".into(), "soon".into()],
                },
                &admin,
            ))
            .await
            .map(drop),
            &[
                "opening_hours[0].weekday",
                "opening_hours[1].close",
                "opening_hours[2].weekday",
                "opening_hours[3].open",
                "closures[0]",
                "closures[1]",
            ],
        ),
        (
            "CreateCoach",
            "without coach",
            c.create_coach(bearer(CreateCoachRequest { coach: None, account: new_account() }, &admin)).await.map(drop),
            &["coach"],
        ),
        (
            "CreateCoach",
            "with every field wrong",
            c.create_coach(bearer(
                CreateCoachRequest {
                    coach: Some(Coach {
                        display_name: String::new(),
                        office: "oujda_cefa".into(),
                        languages: vec![],
                        expertise: vec![99],
                        weekly_hours: 0,
                        ..Coach::default()
                    }),
                    account: "bob".into(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["account", "coach.display_name", "coach.office", "coach.languages", "coach.expertise[0]", "coach.weekly_hours"],
        ),
        (
            "CreateCoach",
            "bad language codes and too many hours",
            c.create_coach(bearer(
                coach(&|p| {
                    p.languages = vec!["FRA".into(), "f".into()];
                    p.weekly_hours = 61;
                }),
                &admin,
            ))
            .await
            .map(drop),
            &["coach.languages[0]", "coach.languages[1]", "coach.weekly_hours"],
        ),
        (
            "CreateCoach",
            "an office that does not exist",
            c.create_coach(bearer(coach(&|p| p.office = "offices/casablanca_port".into()), &admin)).await.map(drop),
            &["coach.office"],
        ),
        (
            "GetCoach",
            "an account name instead of a coach name",
            c.get_coach(bearer(GetCoachRequest { name: s.coach.coach.account.clone() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ListCoaches",
            "negative page size and a malformed office",
            c.list_coaches(bearer(ListCoachesRequest { page_size: -1, office: "oujda_cefa".into(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_size", "office"],
        ),
        (
            "ListCoaches",
            "garbage page token",
            c.list_coaches(bearer(ListCoachesRequest { page_token: "garbage".into(), ..Default::default() }, &admin)).await.map(drop),
            &["page_token"],
        ),
        (
            "CreateEngagement",
            "without engagement",
            c.create_engagement(bearer(CreateEngagementRequest { engagement: None, request_id: rid() }, &admin)).await.map(drop),
            &["engagement"],
        ),
        (
            "CreateEngagement",
            "with every field wrong",
            c.create_engagement(bearer(
                CreateEngagementRequest {
                    engagement: Some(Engagement {
                        award: "awards/42".into(),
                        application: "x".into(),
                        window: "gardening".into(),
                        zone: String::new(),
                        beneficiaries: vec![],
                        beneficiary_accounts: vec!["bob".into()],
                        hours_budget: -1,
                        ..Engagement::default()
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &[
                "engagement.award",
                "engagement.application",
                "engagement.window",
                "engagement.zone",
                "engagement.beneficiaries",
                "engagement.beneficiary_accounts[0]",
                "engagement.hours_budget",
            ],
        ),
        (
            "CreateEngagement",
            "malformed beneficiaries and too many hours",
            c.create_engagement(bearer(
                engagement(&|e| {
                    e.beneficiaries = vec!["applicants/x".into(), format!("accounts/{}", Uuid::now_v7())];
                    e.hours_budget = 501;
                }),
                &admin,
            ))
            .await
            .map(drop),
            &["engagement.beneficiaries[0]", "engagement.beneficiaries[1]", "engagement.hours_budget"],
        ),
        (
            "CreateEngagement",
            "a zone that does not exist",
            c.create_engagement(bearer(engagement(&|e| e.zone = "atlantis".into()), &admin)).await.map(drop),
            &["engagement.zone"],
        ),
        (
            "CreateEngagement",
            "a bad request id",
            c.create_engagement(bearer(CreateEngagementRequest { request_id: "nope".into(), ..engagement(&|_| {}) }, &admin))
                .await
                .map(drop),
            &["request_id"],
        ),
        (
            "GetEngagement",
            "malformed name",
            c.get_engagement(bearer(GetEngagementRequest { name: "engagements/42".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ListEngagements",
            "negative page size and a malformed coach",
            c.list_engagements(bearer(ListEngagementsRequest { page_size: -1, coach: "bob".into(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_size", "coach"],
        ),
        (
            "ListEngagements",
            "garbage page token",
            c.list_engagements(bearer(ListEngagementsRequest { page_token: "garbage".into(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_token"],
        ),
        (
            "ReassignCoach",
            "with every field wrong",
            c.reassign_coach(bearer(ReassignCoachRequest { name: "x".into(), coach: String::new(), reason: " ".into() }, &admin))
                .await
                .map(drop),
            &["name", "coach", "reason"],
        ),
        (
            "ReassignCoach",
            "a coach who does not exist",
            c.reassign_coach(bearer(
                ReassignCoachRequest { name: e.name.clone(), coach: format!("coaches/{}", Uuid::now_v7()), reason: "leave".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["coach"],
        ),
        (
            "ScheduleSession",
            "without session",
            c.schedule_session(bearer(ScheduleSessionRequest { session: None, request_id: rid() }, &admin)).await.map(drop),
            &["session"],
        ),
        (
            "ScheduleSession",
            "with every field wrong",
            c.schedule_session(bearer(
                ScheduleSessionRequest {
                    session: Some(Session {
                        engagements: vec![],
                        coach: "bob".into(),
                        room: "salle_a".into(),
                        start_time: None,
                        end_time: None,
                        topic: long.clone(),
                        ..Session::default()
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["session.engagements", "session.coach", "session.room", "session.start_time", "session.end_time", "session.topic"],
        ),
        (
            "ScheduleSession",
            "a malformed engagement among good ones",
            c.schedule_session(bearer(session(&|s| s.engagements.insert(0, "engagements/x".into())), &admin)).await.map(drop),
            &["session.engagements[0]"],
        ),
        (
            "ScheduleSession",
            "ending before it starts",
            c.schedule_session(bearer(session(&|s| s.end_time = at(-60)), &admin)).await.map(drop),
            &["session.end_time"],
        ),
        (
            "ScheduleSession",
            "lasting nine hours",
            c.schedule_session(bearer(session(&|s| s.end_time = at(9 * 3600)), &admin)).await.map(drop),
            &["session.end_time"],
        ),
        (
            "ScheduleSession",
            "an invalid timestamp",
            c.schedule_session(bearer(
                session(&|s| s.start_time = Some(prost_types::Timestamp { seconds: start.seconds, nanos: -1 })),
                &admin,
            ))
            .await
            .map(drop),
            &["session.start_time"],
        ),
        (
            "ScheduleSession",
            "a room that does not exist",
            c.schedule_session(bearer(session(&|s| s.room = "offices/oujda_cefa/rooms/cave".into()), &admin)).await.map(drop),
            &["session.room"],
        ),
        (
            "ScheduleSession",
            "a coach who does not exist",
            c.schedule_session(bearer(session(&|s| s.coach = format!("coaches/{}", Uuid::now_v7())), &admin)).await.map(drop),
            &["session.coach"],
        ),
        (
            "ScheduleSession",
            "a bad request id",
            c.schedule_session(bearer(ScheduleSessionRequest { request_id: "nope".into(), ..session(&|_| {}) }, &admin)).await.map(drop),
            &["request_id"],
        ),
        (
            "GetSession",
            "malformed name",
            c.get_session(bearer(GetSessionRequest { name: "sessions/".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ListSessions",
            "with every filter wrong",
            c.list_sessions(bearer(
                ListSessionsRequest {
                    coach: "bob".into(),
                    engagement: "x".into(),
                    room: "atelier".into(),
                    start_after: Some(prost_types::Timestamp { seconds: 0, nanos: -5 }),
                    start_before: Some(prost_types::Timestamp { seconds: 0, nanos: 2_000_000_000 }),
                    page_size: -1,
                    page_token: String::new(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["coach", "engagement", "room", "start_after", "start_before", "page_size"],
        ),
        (
            "ListSessions",
            "garbage page token",
            c.list_sessions(bearer(ListSessionsRequest { page_token: "garbage".into(), ..Default::default() }, &admin)).await.map(drop),
            &["page_token"],
        ),
        (
            "RescheduleSession",
            "with every field wrong",
            c.reschedule_session(bearer(
                RescheduleSessionRequest {
                    name: "x".into(),
                    start_time: None,
                    end_time: None,
                    room: "atelier".into(),
                    reason: String::new(),
                    etag: String::new(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["name", "start_time", "end_time", "room", "reason"],
        ),
        (
            "RescheduleSession",
            "ending before it starts, without a reason",
            c.reschedule_session(bearer(
                reschedule(&|r| {
                    r.end_time = at(-1);
                    r.reason = "  ".into();
                }),
                &admin,
            ))
            .await
            .map(drop),
            &["end_time", "reason"],
        ),
        (
            "RescheduleSession",
            "lasting nine hours",
            c.reschedule_session(bearer(reschedule(&|r| r.end_time = at(9 * 3600)), &admin)).await.map(drop),
            &["end_time"],
        ),
        (
            "RescheduleSession",
            "a room that does not exist",
            c.reschedule_session(bearer(reschedule(&|r| r.room = "offices/oujda_cefa/rooms/cave".into()), &admin)).await.map(drop),
            &["room"],
        ),
        (
            "CancelSession",
            "malformed name, no reason",
            c.cancel_session(bearer(CancelSessionRequest { name: "x".into(), reason: String::new() }, &admin)).await.map(drop),
            &["name", "reason"],
        ),
        (
            "RecordAttendance",
            "malformed name, no attendance",
            c.record_attendance(bearer(RecordAttendanceRequest { name: "x".into(), attendance: vec![], notes: String::new() }, &admin))
                .await
                .map(drop),
            &["name", "attendance"],
        ),
        (
            "RecordAttendance",
            "a malformed applicant and a NUL in the notes",
            c.record_attendance(bearer(
                RecordAttendanceRequest {
                    name: s.past.name.clone(),
                    attendance: vec![Attendance { applicant: "bob".into(), present: true }],
                    notes: "fine\0".into(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["attendance[0].applicant", "notes"],
        ),
        (
            "RecordAttendance",
            "someone who is not a participant",
            c.record_attendance(bearer(
                RecordAttendanceRequest {
                    name: s.past.name.clone(),
                    attendance: vec![
                        Attendance { applicant: e.beneficiaries[0].clone(), present: true },
                        Attendance { applicant: common::new_applicant(), present: true },
                    ],
                    notes: String::new(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["attendance[1].applicant"],
        ),
        (
            "CompleteMilestone",
            "malformed name, no evidence",
            c.complete_milestone(bearer(
                CompleteMilestoneRequest { name: format!("{}/business_plan_validated", e.name), evidence: vec![], note: String::new() },
                &s.coach.jwt,
            ))
            .await
            .map(drop),
            &["name", "evidence"],
        ),
        (
            "CompleteMilestone",
            "a bad reference and too long a note",
            c.complete_milestone(bearer(
                CompleteMilestoneRequest {
                    name: milestone_name(&e, "legal_registration"),
                    evidence: vec!["documents/rc.pdf".into(), "rc\nscan".into()],
                    note: "n".repeat(2001),
                },
                &s.coach.jwt,
            ))
            .await
            .map(drop),
            &["evidence[1]", "note"],
        ),
        (
            "VerifyMilestone",
            "a name without a code",
            c.verify_milestone(bearer(VerifyMilestoneRequest { name: format!("{}/milestones/", e.name) }, &s.coach.jwt)).await.map(drop),
            &["name"],
        ),
        (
            "RejectMilestone",
            "malformed name, no reason",
            c.reject_milestone(bearer(RejectMilestoneRequest { name: "milestones/x".into(), reason: " ".into() }, &s.coach.jwt))
                .await
                .map(drop),
            &["name", "reason"],
        ),
        (
            "RejectMilestone",
            "no reason",
            c.reject_milestone(bearer(RejectMilestoneRequest { name: milestone.clone(), reason: String::new() }, &s.coach.jwt))
                .await
                .map(drop),
            &["reason"],
        ),
        (
            "GetProgress",
            "a malformed engagement and office",
            c.get_progress(bearer(
                GetProgressRequest { engagement: "x".into(), office: "oujda_cefa".into(), ..Default::default() },
                &admin,
            ))
            .await
            .map(drop),
            &["engagement", "office"],
        ),
        (
            "GetProgress",
            "an invalid as_of",
            c.get_progress(bearer(
                GetProgressRequest { as_of: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }), ..Default::default() },
                &admin,
            ))
            .await
            .map(drop),
            &["as_of"],
        ),
        (
            "GetProgress",
            "an engagement name from another collection",
            c.get_progress(bearer(
                GetProgressRequest { engagement: ghost_engagement.replace("engagements", "sessions"), ..Default::default() },
                &admin,
            ))
            .await
            .map(drop),
            &["engagement"],
        ),
    ];
    check(&f, before, cases, true).await;
    // The milestone completed in the setup is still only completed.
    let read = f.get_engagement(&admin, &e.name).await.expect("engagement");
    assert_eq!(
        common::milestone_state(common::milestone(&read, "business_plan_validated")),
        work4life_proto::coaching::MilestoneState::Completed
    );
}

#[tokio::test]
async fn every_wrong_field_is_reported_at_once() {
    let f = fresh().await;
    let s = setup(&f).await;
    let admin = f.admin.clone();
    let before = f.fingerprint().await;
    let mut c = f.client().await;
    let bad_token = "garbage".to_string();
    let cases: Vec<Case> = vec![
        (
            "UpdateOfficeHours",
            "opening and closing both malformed",
            c.update_office_hours(bearer(
                UpdateOfficeHoursRequest {
                    name: "offices/oujda_cefa".into(),
                    opening_hours: vec![hours(1, "9h", "25:00")],
                    closures: vec![],
                },
                &admin,
            ))
            .await
            .map(drop),
            &["opening_hours[0].open", "opening_hours[0].close"],
        ),
        (
            "CreateCoach",
            "no coach and a malformed account",
            c.create_coach(bearer(CreateCoachRequest { coach: None, account: "bob".into() }, &admin)).await.map(drop),
            &["coach", "account"],
        ),
        (
            "CreateEngagement",
            "a bad request id and a bad window",
            c.create_engagement(bearer(
                CreateEngagementRequest {
                    engagement: Some(Engagement { window: "gardening".into(), ..engagement_message("job_placement", "oujda", 1) }),
                    request_id: "nope".into(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id", "engagement.window"],
        ),
        (
            "ScheduleSession",
            "a bad request id and no engagement",
            c.schedule_session(bearer(
                ScheduleSessionRequest { session: Some(Session { engagements: vec![], ..s.session.clone() }), request_id: "nope".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id", "session.engagements"],
        ),
        (
            "ListOffices",
            "negative page size and a garbage token",
            c.list_offices(bearer(ListOfficesRequest { page_size: -1, page_token: bad_token.clone(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_size", "page_token"],
        ),
        (
            "ListCoaches",
            "negative page size and a garbage token",
            c.list_coaches(bearer(ListCoachesRequest { page_size: -1, page_token: bad_token.clone(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_size", "page_token"],
        ),
        (
            "ListEngagements",
            "negative page size and a garbage token",
            c.list_engagements(bearer(
                ListEngagementsRequest { page_size: -1, page_token: bad_token.clone(), ..Default::default() },
                &admin,
            ))
            .await
            .map(drop),
            &["page_size", "page_token"],
        ),
        (
            "ListSessions",
            "negative page size and a garbage token",
            c.list_sessions(bearer(ListSessionsRequest { page_size: -1, page_token: bad_token.clone(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_size", "page_token"],
        ),
        (
            "GetProgress",
            "every field wrong",
            c.get_progress(bearer(
                GetProgressRequest {
                    engagement: "x".into(),
                    office: "oujda_cefa".into(),
                    as_of: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .map(drop),
            &["engagement", "office", "as_of"],
        ),
    ];
    check(&f, before, cases, false).await;
}

#[tokio::test]
async fn nul_characters_and_timestamps_outside_postgres_range_are_bad_input() {
    let f = fresh().await;
    let s = setup(&f).await;
    let admin = f.admin.clone();
    let before = f.fingerprint().await;
    let mut c = f.client().await;
    // -9999-01-01: a valid protobuf timestamp, far outside what PostgreSQL stores.
    let ancient = prost_types::Timestamp { seconds: -377_705_116_800, nanos: 0 };
    let start = f.local("2027-04-14 10:00").await;
    let cases: Vec<Case> = vec![
        (
            "CreateEngagement",
            "a NUL in a language",
            c.create_engagement(bearer(
                CreateEngagementRequest {
                    engagement: Some(Engagement { languages: vec!["f\0r".into()], ..engagement_message("job_placement", "oujda", 1) }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["engagement.languages[0]|engagement.languages"],
        ),
        (
            "CreateCoach",
            "a NUL in the display name",
            c.create_coach(bearer(
                CreateCoachRequest {
                    coach: Some(Coach { display_name: "Am\0ina".into(), ..coach_message("oujda_cefa", &["fr"], 10) }),
                    account: new_account(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["coach.display_name"],
        ),
        (
            "ScheduleSession",
            "a NUL in the topic",
            c.schedule_session(bearer(
                ScheduleSessionRequest {
                    session: Some(Session {
                        topic: "plan\0".into(),
                        ..common::session_message(&[&s.engagement], "", start, common::plus(&start, 3600))
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["session.topic"],
        ),
        (
            "ScheduleSession",
            "a start in the year -9999",
            c.schedule_session(bearer(
                ScheduleSessionRequest {
                    session: Some(common::session_message(&[&s.engagement], "", ancient, common::plus(&ancient, 3600))),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["session.start_time", "session.end_time"],
        ),
        (
            "CancelSession",
            "a NUL in the reason",
            c.cancel_session(bearer(CancelSessionRequest { name: s.session.name.clone(), reason: "ill\0".into() }, &admin)).await.map(drop),
            &["reason"],
        ),
        (
            "ReassignCoach",
            "a NUL in the reason",
            c.reassign_coach(bearer(
                ReassignCoachRequest { name: s.engagement.name.clone(), coach: s.coach.name(), reason: "leave\0".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["reason"],
        ),
        (
            "CompleteMilestone",
            "a NUL in the note",
            c.complete_milestone(bearer(
                CompleteMilestoneRequest {
                    name: milestone_name(&s.engagement, "legal_registration"),
                    evidence: vec!["documents/rc.pdf".into()],
                    note: "done\0".into(),
                },
                &s.coach.jwt,
            ))
            .await
            .map(drop),
            &["note"],
        ),
        (
            "ListSessions",
            "a period in the year -9999",
            c.list_sessions(bearer(ListSessionsRequest { start_after: Some(ancient), ..Default::default() }, &admin)).await.map(drop),
            &["start_after"],
        ),
        (
            "GetProgress",
            "as of the year -9999",
            c.get_progress(bearer(GetProgressRequest { as_of: Some(ancient), ..Default::default() }, &admin)).await.map(drop),
            &["as_of"],
        ),
    ];
    check(&f, before, cases, false).await;
}

#[test]
fn paths_match_with_or_without_an_index() {
    assert!(path_matches("engagement.beneficiaries", "engagement.beneficiaries[0]"));
    assert!(path_matches("engagement.beneficiaries", "engagement.beneficiaries"));
    assert!(!path_matches("engagement.beneficiaries", "engagement.beneficiaries_extra"));
    assert!(path_matches("room|session.room", "room"));
    assert!(compare(&["a", "b"], &["b".to_string(), "a".to_string()]).is_none());
    assert!(compare(&["a"], &["a".to_string(), "a".to_string()]).is_some());
}
