//! Fixtures shared by coaching's API tests: coaching alone on port 0 against a fresh database
//! with its reference data (five offices with rooms, hours and 2027 closures), access tokens
//! signed by a key the test publishes, builders for coaches, engagements and sessions, award
//! events published to grants' stream, and readers for what the service left in its database
//! (rows, outbox events, audit records) and in its errors (`google.rpc` details).
//!
//! Redis: each fixture gets its own `redis-server` (testkit's `TestRedis`). Coaching reads
//! `w4l:events:grants` as consumer group `coaching`, and a group hands each entry to one of its
//! consumers only: on a shared Redis database an award published by one test could be consumed
//! by another test's service.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use prost::Message;
use sqlx::PgPool;
use tonic::{Status, transport::Channel};
use uuid::Uuid;
use work4life_platform::host::Running;
use work4life_proto::{
    coaching::{
        Attendance, CancelSessionRequest, Coach, CompleteMilestoneRequest, CreateCoachRequest, CreateEngagementRequest, Engagement,
        Expertise, GetEngagementRequest, GetOfficeRequest, GetProgressRequest, GetSessionRequest, Milestone, MilestoneState, Office,
        Progress, RecordAttendanceRequest, RejectMilestoneRequest, RescheduleSessionRequest, ScheduleSessionRequest, Session, SessionState,
        VerifyMilestoneRequest, coaching_service_client::CoachingServiceClient,
    },
    events::Event,
    grants::AwardCreated,
};

#[allow(unused_imports)] // each test binary uses its own part of these
pub use work4life_testkit::{TestRedis, TestSigner, bearer, eventually, fields, info_metadata, payload, reason, rid};

/// The offices the seed loads, by code, with their zones.
pub const OFFICES: [(&str, &str); 5] = [
    ("beni_mellal_cefa", "beni_mellal"),
    ("oujda_cefa", "oujda"),
    ("rabat_ocean", "rabat_sale"),
    ("tanger_maison_des_jeunes", "tanger"),
    ("tanger_technopark", "tanger"),
];
/// The offices' time zone.
pub const TIME_ZONE: &str = "Africa/Casablanca";
/// The stream coaching reads grants' events from.
pub const GRANTS_STREAM: &str = "w4l:events:grants";
/// How long a test waits for the award consumer.
pub const EVENT_WAIT: Duration = Duration::from_secs(15);
/// Every table of the coaching schema a call could write to (service and platform tables).
pub const TABLES: [&str; 16] = [
    "offices",
    "office_hours",
    "office_closures",
    "rooms",
    "coaches",
    "engagements",
    "coach_assignments",
    "milestones",
    "sessions",
    "session_engagements",
    "session_participants",
    "outbox",
    "inbox",
    "audit_log",
    "audit_head",
    "idempotency_keys",
];
/// Milestone codes of the start-up windows' plan.
pub const STARTUP_PLAN: [&str; 6] =
    ["business_plan_validated", "legal_registration", "bank_account_opened", "first_sale", "three_months_active", "six_months_active"];
/// Milestone codes of the job placement plan.
pub const JOB_PLAN: [&str; 4] = ["contract_signed", "first_month_completed", "three_months_completed", "six_months_completed"];

pub struct Fixture {
    pub running: Running,
    pub database_url: String,
    /// A pool on the test database, `search_path` = coaching.
    pub pool: PgPool,
    pub signer: TestSigner,
    /// A global admin's token.
    pub admin: String,
    /// The admin's subject.
    pub admin_subject: String,
    /// The partner organisation the tests' staff belong to unless they say otherwise.
    pub org: Uuid,
    /// The Redis the service uses (dropped last: the service is stopped first).
    pub redis: TestRedis,
}

/// Starts coaching alone against a fresh database (`w4l_coaching_<uuid>`), seeded, with its own Redis.
pub async fn fresh() -> Fixture {
    let redis = TestRedis::start().await;
    let work4life_testkit::Hosted { running, database_url, pool, signer } =
        work4life_testkit::host_alone(work4life_coaching::SERVICE, &redis.url).await;
    let admin_subject = format!("accounts/{}", Uuid::now_v7());
    let mut fixture = Fixture {
        running,
        database_url,
        pool,
        signer,
        admin: String::new(),
        admin_subject: admin_subject.clone(),
        org: Uuid::now_v7(),
        redis,
    };
    fixture.admin = fixture.token_for(&admin_subject, &[("admin", None, &[])]);
    fixture
}

/// A coach recorded by a test, with the token of their account.
#[derive(Clone, Debug)]
pub struct TestCoach {
    pub coach: Coach,
    pub jwt: String,
}

impl TestCoach {
    /// `coaches/{account}`.
    pub fn name(&self) -> String {
        self.coach.name.clone()
    }
}

impl Fixture {
    pub async fn client(&self) -> CoachingServiceClient<Channel> {
        CoachingServiceClient::new(
            Channel::from_shared(format!("http://{}", self.running.addr)).expect("url").connect().await.expect("connect"),
        )
    }

    /// A new account holding `role` (scoped to `org` and `zones`): its subject and a token.
    pub fn token(&self, role: &str, org: Option<Uuid>, zones: &[&str]) -> (String, String) {
        let subject = format!("accounts/{}", Uuid::now_v7());
        let jwt = self.token_for(&subject, &[(role, org, zones)]);
        (subject, jwt)
    }

    /// A token for `subject` with these bindings (role, organisation, zones).
    pub fn token_for(&self, subject: &str, bindings: &[(&str, Option<Uuid>, &[&str])]) -> String {
        self.signer.token_for(subject, bindings)
    }

    /// An officer of the fixture's organisation in `zone`.
    pub fn officer(&self, zone: &str) -> (String, String) {
        self.token("officer", Some(self.org), &[zone])
    }

    /// A program manager of the fixture's organisation in `zone`.
    pub fn manager(&self, zone: &str) -> (String, String) {
        self.token("program_manager", Some(self.org), &[zone])
    }

    /// An auditor (reads everything).
    pub fn auditor(&self) -> (String, String) {
        self.token("auditor", None, &[])
    }

    /// A beneficiary's token for `account` (`accounts/{uuid}`).
    pub fn beneficiary(&self, account: &str) -> String {
        self.token_for(account, &[("beneficiary", None, &[])])
    }

    /// The token of the first beneficiary account of `engagement`.
    pub fn beneficiary_of(&self, engagement: &Engagement) -> String {
        self.beneficiary(engagement.beneficiary_accounts.first().expect("the engagement has a beneficiary account"))
    }

    /// A coach's token: role `coach`, subject `accounts/{the coach's account}`.
    pub fn coach_token(&self, coach: &Coach) -> String {
        self.token_for(&coach.account, &[("coach", None, &[])])
    }

    pub async fn create_coach(&self, jwt: &str, account: &str, coach: Coach) -> Result<Coach, Status> {
        self.client()
            .await
            .create_coach(bearer(CreateCoachRequest { coach: Some(coach), account: account.into() }, jwt))
            .await
            .map(|r| r.into_inner().coach.expect("coach"))
    }

    /// A new coach of `office` (`oujda_cefa`) speaking `languages`, recorded by the admin.
    pub async fn coach(&self, office: &str, languages: &[&str], weekly_hours: i32) -> TestCoach {
        let account = format!("accounts/{}", Uuid::now_v7());
        let coach = self.create_coach(&self.admin, &account, coach_message(office, languages, weekly_hours)).await.expect("create coach");
        let jwt = self.coach_token(&coach);
        TestCoach { coach, jwt }
    }

    pub async fn create_engagement(&self, jwt: &str, engagement: Engagement) -> Result<Engagement, Status> {
        self.client()
            .await
            .create_engagement(bearer(
                CreateEngagementRequest { engagement: Some(engagement), request_id: Uuid::new_v4().to_string() },
                jwt,
            ))
            .await
            .map(|r| r.into_inner().engagement.expect("engagement"))
    }

    /// A new engagement of `window` in `zone` with `people` fresh beneficiaries (each with an
    /// account), French-speaking, opened by the admin.
    pub async fn engagement(&self, window: &str, zone: &str, people: usize) -> Engagement {
        self.create_engagement(&self.admin, engagement_message(window, zone, people)).await.expect("create engagement")
    }

    pub async fn get_engagement(&self, jwt: &str, name: &str) -> Result<Engagement, Status> {
        self.client()
            .await
            .get_engagement(bearer(GetEngagementRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().engagement.expect("engagement"))
    }

    pub async fn get_office(&self, jwt: &str, name: &str) -> Result<Office, Status> {
        self.client()
            .await
            .get_office(bearer(GetOfficeRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().office.expect("office"))
    }

    pub async fn schedule(&self, jwt: &str, session: Session) -> Result<Session, Status> {
        self.client()
            .await
            .schedule_session(bearer(ScheduleSessionRequest { session: Some(session), request_id: Uuid::new_v4().to_string() }, jwt))
            .await
            .map(|r| r.into_inner().session.expect("session"))
    }

    pub async fn get_session(&self, jwt: &str, name: &str) -> Result<Session, Status> {
        self.client()
            .await
            .get_session(bearer(GetSessionRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().session.expect("session"))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn reschedule(
        &self,
        jwt: &str,
        name: &str,
        start: prost_types::Timestamp,
        end: prost_types::Timestamp,
        room: &str,
        reason: &str,
        etag: &str,
    ) -> Result<Session, Status> {
        self.client()
            .await
            .reschedule_session(bearer(
                RescheduleSessionRequest {
                    name: name.into(),
                    start_time: Some(start),
                    end_time: Some(end),
                    room: room.into(),
                    reason: reason.into(),
                    etag: etag.into(),
                },
                jwt,
            ))
            .await
            .map(|r| r.into_inner().session.expect("session"))
    }

    pub async fn cancel(&self, jwt: &str, name: &str, reason: &str) -> Result<Session, Status> {
        self.client()
            .await
            .cancel_session(bearer(CancelSessionRequest { name: name.into(), reason: reason.into() }, jwt))
            .await
            .map(|r| r.into_inner().session.expect("session"))
    }

    /// Records attendance: (applicant, present) pairs.
    pub async fn attend(&self, jwt: &str, name: &str, marks: &[(&str, bool)], notes: &str) -> Result<Session, Status> {
        let attendance = marks.iter().map(|(a, p)| Attendance { applicant: (*a).into(), present: *p }).collect();
        self.client()
            .await
            .record_attendance(bearer(RecordAttendanceRequest { name: name.into(), attendance, notes: notes.into() }, jwt))
            .await
            .map(|r| r.into_inner().session.expect("session"))
    }

    pub async fn complete(&self, jwt: &str, milestone: &str, evidence: &[&str]) -> Result<Milestone, Status> {
        self.client()
            .await
            .complete_milestone(bearer(
                CompleteMilestoneRequest {
                    name: milestone.into(),
                    evidence: evidence.iter().map(|e| (*e).to_string()).collect(),
                    note: "see the attached document".into(),
                },
                jwt,
            ))
            .await
            .map(|r| r.into_inner().milestone.expect("milestone"))
    }

    pub async fn verify(&self, jwt: &str, milestone: &str) -> Result<Milestone, Status> {
        self.client()
            .await
            .verify_milestone(bearer(VerifyMilestoneRequest { name: milestone.into() }, jwt))
            .await
            .map(|r| r.into_inner().milestone.expect("milestone"))
    }

    pub async fn reject(&self, jwt: &str, milestone: &str, reason: &str) -> Result<Milestone, Status> {
        self.client()
            .await
            .reject_milestone(bearer(RejectMilestoneRequest { name: milestone.into(), reason: reason.into() }, jwt))
            .await
            .map(|r| r.into_inner().milestone.expect("milestone"))
    }

    pub async fn progress(&self, jwt: &str, request: GetProgressRequest) -> Result<Progress, Status> {
        self.client().await.get_progress(bearer(request, jwt)).await.map(|r| r.into_inner().progress.expect("progress"))
    }

    /// The instant of `local` (`2027-04-07 10:00`) on the offices' clock, as PostgreSQL's time
    /// zone database knows it.
    pub async fn local(&self, local: &str) -> prost_types::Timestamp {
        let seconds: i64 = sqlx::query_scalar("SELECT extract(epoch FROM ($1::timestamp AT TIME ZONE $2))::bigint")
            .bind(local)
            .bind(TIME_ZONE)
            .fetch_one(&self.pool)
            .await
            .expect("local time");
        prost_types::Timestamp { seconds, nanos: 0 }
    }

    /// The offices' UTC offset in hours on `day` (`2027-02-10`) at noon.
    pub async fn utc_offset_hours(&self, day: &str) -> i64 {
        let noon = self.local(&format!("{day} 12:00")).await;
        let midday_utc: i64 = sqlx::query_scalar("SELECT extract(epoch FROM ($1::date + time '12:00') AT TIME ZONE 'UTC')::bigint")
            .bind(day)
            .fetch_one(&self.pool)
            .await
            .expect("utc noon");
        (midday_utc - noon.seconds) / 3600
    }

    /// A session of `engagements` in `room` ("" for remote) from `start` to `end`, both local (`2027-04-07 10:00`).
    pub async fn session_at(&self, engagements: &[&Engagement], room: &str, start: &str, end: &str) -> Session {
        session_message(engagements, room, self.local(start).await, self.local(end).await)
    }

    /// A remote session of `engagement` that started `hours_ago` hours ago and lasted `minutes`.
    pub fn past_session(&self, engagement: &Engagement, hours_ago: i64, minutes: i64) -> Session {
        let start = timestamp_in(-hours_ago * 3600);
        let end = prost_types::Timestamp { seconds: start.seconds + minutes * 60, nanos: start.nanos };
        session_message(&[engagement], "", start, end)
    }

    /// Publishes `event` (encoded) to grants' stream, as grants' outbox relay does.
    pub async fn publish(&self, event: &Event) {
        self.redis.publish(GRANTS_STREAM, event).await;
    }

    /// The events on the Redis stream `stream`, oldest first.
    pub async fn stream_events(&self, stream: &str) -> Vec<Event> {
        self.redis.stream_events(stream).await
    }

    /// Waits until the outbox relay has published every event of the outbox.
    pub async fn relayed(&self) {
        eventually("the outbox relayed", EVENT_WAIT, || async {
            let left = self.count("SELECT count(*) FROM coaching.outbox WHERE published_at IS NULL").await;
            (left == 0).then_some(())
        })
        .await;
    }

    /// Entries of grants' stream the `coaching` group has been handed but not acknowledged.
    pub async fn pending_award_events(&self) -> i64 {
        let mut conn = self.redis.connection().await;
        let summary: redis::Value =
            redis::cmd("XPENDING").arg(GRANTS_STREAM).arg("coaching").query_async(&mut conn).await.expect("XPENDING");
        match summary {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// The engagement opened for `award`, once the consumer has handled its event.
    pub async fn engagement_for_award(&self, award: &str) -> Engagement {
        let id: Uuid = eventually(&format!("an engagement for {award}"), EVENT_WAIT, || async {
            sqlx::query_scalar("SELECT id FROM coaching.engagements WHERE award = $1")
                .bind(award)
                .fetch_optional(&self.pool)
                .await
                .expect("read")
        })
        .await;
        self.get_engagement(&self.admin, &format!("engagements/{id}")).await.expect("the award's engagement")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        work4life_testkit::count(&self.pool, sql).await
    }

    /// Each table's row count and a digest of its rows, to tell whether a call wrote anything.
    pub async fn fingerprint(&self) -> Vec<(&'static str, i64, String)> {
        work4life_testkit::fingerprint(&self.pool, &TABLES).await
    }

    /// The outbox events of `event_type`, oldest first.
    pub async fn events(&self, event_type: &str) -> Vec<Event> {
        work4life_testkit::outbox_events(&self.pool, event_type).await
    }

    /// The audit records of `action` on `resource`: (actor, details).
    pub async fn audit(&self, action: &str, resource: &str) -> Vec<(String, serde_json::Value)> {
        work4life_testkit::audit_records(&self.pool, action, resource).await
    }
}

impl Drop for Fixture {
    /// Stops the service and drops the test's database, unless the test failed: then the
    /// database stays for a look (its name is in `database_url`).
    fn drop(&mut self) {
        self.running.shutdown.cancel();
        if std::thread::panicking() {
            eprintln!("test database kept for inspection: {}", self.database_url);
            return;
        }
        work4life_testkit::drop_database(&self.database_url);
    }
}

/// A coach profile of `office` (`oujda_cefa`).
pub fn coach_message(office: &str, languages: &[&str], weekly_hours: i32) -> Coach {
    Coach {
        display_name: format!("Coach {}", &Uuid::new_v4().simple().to_string()[..6]),
        office: format!("offices/{office}"),
        languages: languages.iter().map(|l| (*l).to_string()).collect(),
        expertise: vec![Expertise::BusinessPlan as i32, Expertise::Accounting as i32],
        weekly_hours,
        ..Coach::default()
    }
}

/// `applicants/{new uuid}`.
pub fn new_applicant() -> String {
    format!("applicants/{}", Uuid::now_v7())
}

/// `accounts/{new uuid}`.
pub fn new_account() -> String {
    format!("accounts/{}", Uuid::now_v7())
}

/// An engagement of `window` in `zone` for a new application, with `people` new beneficiaries
/// each with an account, French-speaking, the window's default budget.
pub fn engagement_message(window: &str, zone: &str, people: usize) -> Engagement {
    Engagement {
        application: format!("applications/{}", Uuid::now_v7()),
        window: window.into(),
        zone: zone.into(),
        beneficiaries: (0..people).map(|_| new_applicant()).collect(),
        beneficiary_accounts: (0..people).map(|_| new_account()).collect(),
        languages: vec!["fr".into()],
        ..Engagement::default()
    }
}

/// A session of `engagements` in `room` ("" for remote), led by the first engagement's coach.
pub fn session_message(engagements: &[&Engagement], room: &str, start: prost_types::Timestamp, end: prost_types::Timestamp) -> Session {
    Session {
        engagements: engagements.iter().map(|e| e.name.clone()).collect(),
        room: room.into(),
        start_time: Some(start),
        end_time: Some(end),
        topic: "Business plan review".into(),
        ..Session::default()
    }
}

/// An award of `window` in `zone` for `people` new beneficiaries.
pub fn award_message(window: &str, zone: &str, people: usize, languages: &[&str]) -> AwardCreated {
    AwardCreated {
        award: format!("awards/{}", Uuid::now_v7()),
        application: format!("applications/{}", Uuid::now_v7()),
        program: "programs/work4life".into(),
        window: window.into(),
        zone: zone.into(),
        beneficiaries: (0..people).map(|_| new_applicant()).collect(),
        amount: Some(work4life_proto::types::Money { currency_code: "MAD".into(), amount_minor: 5_000_000 }),
        create_time: Some(timestamp_in(0)),
        beneficiary_accounts: (0..people).map(|_| new_account()).collect(),
        languages: languages.iter().map(|l| (*l).to_string()).collect(),
    }
}

/// The `grants.award.created` event of `award`, with id `id`.
pub fn award_event(id: Uuid, award: &AwardCreated) -> Event {
    Event {
        id: id.to_string(),
        r#type: "grants.award.created".into(),
        source: "grants".into(),
        occurred_at: Some(timestamp_in(0)),
        subject: award.award.clone(),
        trace_context: None,
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/work4life.grants.v1.AwardCreated".into(),
            value: award.encode_to_vec(),
        }),
    }
}

/// `engagements/{id}/milestones/{code}`.
pub fn milestone_name(engagement: &Engagement, code: &str) -> String {
    format!("{}/milestones/{code}", engagement.name)
}

/// The milestone `code` of `engagement`.
pub fn milestone<'a>(engagement: &'a Engagement, code: &str) -> &'a Milestone {
    engagement.milestones.iter().find(|m| m.code == code).unwrap_or_else(|| panic!("{} has no milestone {code}", engagement.name))
}

pub fn milestone_state(m: &Milestone) -> MilestoneState {
    MilestoneState::try_from(m.state).unwrap_or(MilestoneState::Unspecified)
}

pub fn session_state(s: &Session) -> SessionState {
    SessionState::try_from(s.state).unwrap_or(SessionState::Unspecified)
}

pub fn timestamp_in(seconds: i64) -> prost_types::Timestamp {
    let now = SystemTime::now();
    let at = if seconds >= 0 { now + Duration::from_secs(seconds as u64) } else { now - Duration::from_secs((-seconds) as u64) };
    prost_types::Timestamp::from(at)
}

/// `t` plus `seconds`.
pub fn plus(t: &prost_types::Timestamp, seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.seconds + seconds, nanos: t.nanos }
}

/// Asserts `result` failed with `code` and (when not empty) ErrorInfo reason `why`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, code: tonic::Code, why: &str, context: &str) -> Status {
    let status = match result {
        Ok(value) => panic!("{context}: expected {code:?} {why}, got success: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{context}: {status:?}");
    if !why.is_empty() {
        assert_eq!(reason(&status), why, "{context}: ErrorInfo reason of {status:?}");
    }
    status
}

/// Asserts `result` is ALREADY_EXISTS `DOUBLE_BOOKED` naming `field` (coach, room, participants).
#[track_caller]
pub fn assert_double_booked<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, context: &str) {
    let status = assert_refused(result, tonic::Code::AlreadyExists, "DOUBLE_BOOKED", context);
    assert_eq!(info_metadata(&status).get("field").map(String::as_str), Some(field), "{context}: metadata of {status:?}");
}
