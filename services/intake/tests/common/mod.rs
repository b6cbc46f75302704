//! Fixtures shared by intake's API tests: intake alone on port 0 against a fresh database with
//! its reference data, access tokens signed by a key the test publishes, builders for valid
//! records (unique phone and document on every call), and readers for what the service left in
//! its database (rows, outbox events, a `pg_dump`) and in its errors (`google.rpc` details).
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use sqlx::PgPool;
use tonic::{Status, transport::Channel};
use tonic_types::StatusExt as _;
use uuid::Uuid;
use work4life_platform::host::Running;
use work4life_proto::{
    events::Event,
    intake::{
        Applicant, Application, ApplicationState, AssignReviewerRequest, Call, Consent, CreateApplicantRequest, CreateApplicationRequest,
        CreateCallRequest, Criterion, CriterionScore, DecideApplicationRequest, DocumentType, EligibilityRules, Gender,
        GetApplicantRequest, GetApplicationRequest, IdentityDocument, JobPlacement, Member, MemberRole, Outcome, Review,
        ScoreApplicationRequest, StartReviewRequest, StartScreeningRequest, SubmitApplicationRequest, Window,
        intake_service_client::IntakeServiceClient,
    },
};

#[allow(unused_imports)] // each test binary uses its own part of these
pub use work4life_testkit::{TestSigner, bearer, fields, info_metadata, payload, reason};

/// The issuer and audience intake expects by default (`PlatformConfig` defaults).
/// The program the seed loads.
pub const PROGRAM: &str = "programs/work4life";
/// The four zones the seed loads.
pub const ZONES: [&str; 4] = ["rabat_sale", "tanger", "oujda", "beni_mellal"];
/// Every table of the intake schema a call could write to.
pub const TABLES: [&str; 10] = [
    "programs",
    "applicants",
    "possible_duplicates",
    "calls",
    "applications",
    "application_members",
    "reviews",
    "outbox",
    "audit_log",
    "idempotency_keys",
];

pub struct Fixture {
    pub running: Running,
    pub database_url: String,
    /// A pool on the test database, `search_path` = intake.
    pub pool: PgPool,
    pub signer: TestSigner,
    /// A global admin's token.
    pub admin: String,
    /// The admin's subject.
    pub admin_subject: String,
    /// The partner organisation the tests' staff belong to unless they say otherwise.
    pub org: Uuid,
}

pub fn redis_url() -> String {
    std::env::var("W4L_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Starts intake alone against a fresh database (`w4l_intake_<uuid>`), seeded.
pub async fn fresh() -> Fixture {
    let work4life_testkit::Hosted { running, database_url, pool, signer } =
        work4life_testkit::host_alone(work4life_intake::SERVICE, &redis_url()).await;
    let admin_subject = format!("accounts/{}", Uuid::now_v7());
    let mut fixture =
        Fixture { running, database_url, pool, signer, admin: String::new(), admin_subject: admin_subject.clone(), org: Uuid::now_v7() };
    fixture.admin = fixture.token_for(&admin_subject, &[("admin", None, &[])]);
    fixture
}

impl Fixture {
    pub async fn client(&self) -> IntakeServiceClient<Channel> {
        IntakeServiceClient::new(
            Channel::from_shared(format!("http://{}", self.running.addr)).expect("url").connect().await.expect("connect"),
        )
    }

    /// A new account holding `role` (scoped to `org` and `zones`): its subject and a token.
    pub fn token(&self, role: &str, org: Option<Uuid>, zones: &[&str]) -> (String, String) {
        self.signer.token(role, org, zones)
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

    /// Registers `applicant` with `jwt`.
    pub async fn create_applicant(&self, jwt: &str, applicant: Applicant) -> Applicant {
        self.client()
            .await
            .create_applicant(bearer(CreateApplicantRequest { applicant: Some(applicant), request_id: Uuid::new_v4().to_string() }, jwt))
            .await
            .expect("create applicant")
            .into_inner()
            .applicant
            .expect("applicant")
    }

    /// A valid person of `zone`, registered by the admin.
    pub async fn applicant_in(&self, zone: &str) -> Applicant {
        self.create_applicant(&self.admin, new_applicant(zone)).await
    }

    /// `n` valid people of `zone`, registered by the admin.
    pub async fn applicants_in(&self, zone: &str, n: usize) -> Vec<Applicant> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.applicant_in(zone).await);
        }
        out
    }

    pub async fn get_applicant(&self, jwt: &str, name: &str) -> Result<Applicant, Status> {
        self.client()
            .await
            .get_applicant(bearer(GetApplicantRequest { name: name.into(), view: 0 }, jwt))
            .await
            .map(|r| r.into_inner().applicant.expect("applicant"))
    }

    /// Creates `call` as the admin.
    pub async fn create_call(&self, call: Call) -> Call {
        self.client()
            .await
            .create_call(bearer(CreateCallRequest { call: Some(call), request_id: Uuid::new_v4().to_string() }, &self.admin))
            .await
            .expect("create call")
            .into_inner()
            .call
            .expect("call")
    }

    /// An open call (opened yesterday, closing in 30 days) of `window` in `zones`.
    pub async fn open_call(&self, window: Window, zones: &[&str]) -> Call {
        self.create_call(call_message(window, zones)).await
    }

    /// Opens a draft of `call` in `zone` with `members` (the first is the representative) and a
    /// title; job placements get an employer and a job title.
    pub async fn draft(&self, jwt: &str, call: &Call, zone: &str, members: &[&Applicant]) -> Application {
        self.create_application(jwt, application_message(call, zone, members)).await.expect("create application")
    }

    pub async fn create_application(&self, jwt: &str, application: Application) -> Result<Application, Status> {
        self.client()
            .await
            .create_application(bearer(
                CreateApplicationRequest { application: Some(application), request_id: Uuid::new_v4().to_string() },
                jwt,
            ))
            .await
            .map(|r| r.into_inner().application.expect("application"))
    }

    pub async fn get_application(&self, jwt: &str, name: &str) -> Result<Application, Status> {
        self.client()
            .await
            .get_application(bearer(GetApplicationRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().application.expect("application"))
    }

    /// A complete, eligible draft of `call` in its first zone, opened by the admin with fresh
    /// members (as many as the call's smallest team).
    pub async fn eligible_draft(&self, call: &Call) -> Application {
        let zone = call.zones[0].clone();
        let min = call.eligibility.as_ref().map_or(0, |e| e.min_team_size);
        let size = match min {
            0 if call.window == Window::CollectiveStartup as i32 => 3,
            0 => 1,
            n => n as usize,
        };
        let people = self.applicants_in(&zone, size).await;
        let refs: Vec<&Applicant> = people.iter().collect();
        self.draft(&self.admin, call, &zone, &refs).await
    }

    pub async fn submit(&self, jwt: &str, name: &str) -> Result<Application, Status> {
        self.client()
            .await
            .submit_application(bearer(SubmitApplicationRequest { name: name.into(), etag: String::new() }, jwt))
            .await
            .map(|r| r.into_inner().application.expect("application"))
    }

    pub async fn start_screening(&self, jwt: &str, name: &str) -> Result<Application, Status> {
        self.client()
            .await
            .start_screening(bearer(StartScreeningRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().application.expect("application"))
    }

    pub async fn start_review(&self, jwt: &str, name: &str) -> Result<Application, Status> {
        self.client()
            .await
            .start_review(bearer(StartReviewRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().application.expect("application"))
    }

    pub async fn decide(&self, jwt: &str, name: &str, outcome: Outcome, reason: &str) -> Result<Application, Status> {
        self.client()
            .await
            .decide_application(bearer(DecideApplicationRequest { name: name.into(), outcome: outcome as i32, reason: reason.into() }, jwt))
            .await
            .map(|r| r.into_inner().application.expect("application"))
    }

    pub async fn assign(&self, jwt: &str, application: &str, reviewer: &str) -> Result<Review, Status> {
        self.client()
            .await
            .assign_reviewer(bearer(AssignReviewerRequest { application: application.into(), reviewer: reviewer.into() }, jwt))
            .await
            .map(|r| r.into_inner().review.expect("review"))
    }

    /// Scores every criterion of the default rubric (`viability` out of 10, `team` out of 5).
    pub async fn score(&self, jwt: &str, review: &str, viability: i32, team: i32) -> Result<Review, Status> {
        self.client()
            .await
            .score_application(bearer(
                ScoreApplicationRequest {
                    name: review.into(),
                    scores: vec![
                        CriterionScore { criterion: "viability".into(), score: viability, comment: "solid plan".into() },
                        CriterionScore { criterion: "team".into(), score: team, comment: String::new() },
                    ],
                    comment: "overall fine".into(),
                },
                jwt,
            ))
            .await
            .map(|r| r.into_inner().review.expect("review"))
    }

    /// Submits, screens and starts the review of `application` as the admin.
    pub async fn to_review(&self, application: &str) -> Application {
        self.submit(&self.admin, application).await.expect("submit");
        self.start_screening(&self.admin, application).await.expect("screening");
        self.start_review(&self.admin, application).await.expect("review")
    }

    /// Assigns a new reviewer to `application` (in review) and has them score it; returns the
    /// reviewer's subject and token.
    pub async fn scored_by_new_reviewer(&self, application: &str, viability: i32, team: i32) -> (String, String) {
        let (subject, jwt) = self.token("reviewer", None, &[]);
        let review = self.assign(&self.admin, application, &subject).await.expect("assign");
        self.score(&jwt, &review.name, viability, team).await.expect("score");
        (subject, jwt)
    }

    pub async fn count(&self, sql: &str) -> i64 {
        work4life_testkit::count(&self.pool, sql).await
    }

    /// Row counts of every table a call could write to.
    pub async fn table_counts(&self) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        for table in TABLES {
            out.push((table, self.count(&format!("SELECT count(*) FROM intake.{table}")).await));
        }
        out
    }

    /// The outbox events of `event_type`, oldest first.
    pub async fn events(&self, event_type: &str) -> Vec<Event> {
        work4life_testkit::outbox_events(&self.pool, event_type).await
    }

    /// The audit records of `action` on `resource`: (actor, details).
    pub async fn audit(&self, action: &str, resource: &str) -> Vec<(String, String)> {
        sqlx::query_as("SELECT actor, details FROM intake.audit_log WHERE action = $1 AND resource = $2 ORDER BY seq")
            .bind(action)
            .bind(resource)
            .fetch_all(&self.pool)
            .await
            .expect("audit")
    }

    /// `pg_dump` of the whole test database, as text.
    pub async fn pg_dump(&self) -> String {
        let output = tokio::process::Command::new("pg_dump")
            .arg("--no-owner")
            .arg(format!("--dbname={}", self.database_url))
            .output()
            .await
            .expect("pg_dump runs");
        assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8 dump")
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
        let Some((server, name)) = self.database_url.rsplit_once('/') else { return };
        // WITH (FORCE) ends the service's and the test's own connections (PostgreSQL 13+).
        let _ = std::process::Command::new("psql")
            .arg(format!("--dbname={server}/postgres"))
            .arg("--quiet")
            .arg("--command")
            .arg(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .output();
    }
}

/// `n` random lowercase letters.
pub fn letters(n: usize) -> String {
    let mut out = String::new();
    while out.len() < n {
        for b in Uuid::new_v4().as_bytes() {
            if out.len() < n {
                out.push((b'a' + b % 26) as char);
            }
        }
    }
    out
}

/// `n` random digits.
pub fn digits(n: usize) -> String {
    let mut out = String::new();
    while out.len() < n {
        for b in Uuid::new_v4().as_bytes() {
            if out.len() < n {
                out.push((b'0' + b % 10) as char);
            }
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A unique Moroccan mobile number in E.164.
pub fn unique_phone() -> String {
    format!("+2126{}", digits(8))
}

/// A unique passport number.
pub fn unique_document() -> String {
    format!("P{}{}", letters(2).to_uppercase(), digits(7))
}

/// A date `days` after 1994-01-01, ISO 8601.
pub fn date_after_1994(days: i64) -> String {
    let base = time::Date::from_calendar_date(1994, time::Month::January, 1).expect("date");
    (base + time::Duration::days(days)).to_string()
}

/// Today minus `years` years plus `days` days, ISO 8601 (a birth date of someone who turns
/// `years` in `days` days).
pub fn birth_date_turning(years: i32, days: i64) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let shifted = today + time::Duration::days(days);
    let birthday = shifted.replace_year(shifted.year() - years).unwrap_or_else(|_| {
        // 29 February in a year without one
        (shifted - time::Duration::days(1)).replace_year(shifted.year() - years).expect("date")
    });
    birthday.to_string()
}

/// A valid person of `zone`: unique names, phone, email and passport, born 1994–2003 (22 to 32
/// years old), Senegalese, French-speaking.
pub fn new_applicant(zone: &str) -> Applicant {
    let random = u64::from_le_bytes(Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"));
    Applicant {
        given_name: format!("Awa{}", letters(5)),
        family_name: capitalised(&format!("diallo{}", letters(5))),
        birth_date: date_after_1994((random % 3600) as i64),
        gender: Gender::Female as i32,
        nationality: "SN".into(),
        languages: vec!["fr".into(), "wo".into()],
        zone: zone.into(),
        phone: unique_phone(),
        email: format!("{}@example.org", letters(10)),
        identity_document: Some(IdentityDocument {
            r#type: DocumentType::Passport as i32,
            number: unique_document(),
            number_hint: String::new(),
            issuing_country: "SN".into(),
        }),
        consent: Some(Consent {
            purpose: "program_participation".into(),
            text_version: "2026-01".into(),
            give_time: None,
            recorded_by: String::new(),
        }),
        ..Applicant::default()
    }
}

pub fn timestamp_in(seconds: i64) -> prost_types::Timestamp {
    let now = SystemTime::now();
    let at = if seconds >= 0 { now + Duration::from_secs(seconds as u64) } else { now - Duration::from_secs((-seconds) as u64) };
    prost_types::Timestamp::from(at)
}

/// The rubric of every test call: viability (weight 60, out of 10) and team (weight 40, out of 5).
pub fn rubric() -> Vec<Criterion> {
    vec![
        Criterion { id: "viability".into(), title: "Is the business viable?".into(), weight: 60, max_score: 10 },
        Criterion { id: "team".into(), title: "Can the team run it?".into(), weight: 40, max_score: 5 },
    ]
}

/// A call of `window` in `zones`, opened yesterday, closing in 30 days, quota 10, ages 18 to
/// 40, no Moroccan nationals, window-default team sizes, no required documents.
pub fn call_message(window: Window, zones: &[&str]) -> Call {
    Call {
        program: PROGRAM.into(),
        display_name: format!("Test call {}", letters(6)),
        window: window as i32,
        zones: zones.iter().map(|z| (*z).to_string()).collect(),
        open_time: Some(timestamp_in(-86_400)),
        close_time: Some(timestamp_in(30 * 86_400)),
        quota: 10,
        eligibility: Some(EligibilityRules {
            min_age: 18,
            max_age: 40,
            excluded_nationalities: vec!["MA".into()],
            min_team_size: 0,
            max_team_size: 0,
            required_documents: vec![],
            identity_document_required: false,
        }),
        rubric: rubric(),
        ..Call::default()
    }
}

/// A draft of `call` in `zone` with `members` (the first is the representative), a title, and
/// for a job placement an employer and a job title.
pub fn application_message(call: &Call, zone: &str, members: &[&Applicant]) -> Application {
    let job = call.window == Window::JobPlacement as i32;
    Application {
        call: call.name.clone(),
        zone: zone.into(),
        title: "Atelier de couture solidaire".into(),
        summary: "Tailoring for the neighbourhood".into(),
        members: members
            .iter()
            .enumerate()
            .map(|(i, a)| Member {
                applicant: a.name.clone(),
                role: if i == 0 { MemberRole::Representative as i32 } else { MemberRole::Member as i32 },
                display_name: String::new(),
            })
            .collect(),
        job_placement: job.then(|| JobPlacement {
            employer: format!("organizations/{}", Uuid::now_v7()),
            job_title: "Assistant cook".into(),
            contract_type: "CDD".into(),
            start_date: String::new(),
            monthly_salary: Some(work4life_proto::types::Money { currency_code: "MAD".into(), amount_minor: 350_000 }),
        }),
        ..Application::default()
    }
}

pub fn member(applicant: &Applicant, role: MemberRole) -> Member {
    Member { applicant: applicant.name.clone(), role: role as i32, display_name: String::new() }
}

/// The PreconditionFailure violations of `status`: (type, subject).
pub fn preconditions(status: &Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .precondition_failure()
        .map(|p| p.violations.iter().map(|v| (v.r#type.clone(), v.subject.clone())).collect())
        .unwrap_or_default()
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

/// The uuid part of a resource name (`applicants/{uuid}`).
pub fn id_of(name: &str) -> Uuid {
    Uuid::parse_str(name.rsplit('/').next().expect("name")).expect("uuid in name")
}

/// Lowercase hex of `s`'s bytes, as `pg_dump` writes `bytea`.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The state of an application, as the enum.
pub fn state(application: &Application) -> ApplicationState {
    ApplicationState::try_from(application.state).unwrap_or(ApplicationState::Unspecified)
}

/// The data sections of a `pg_dump`: (the `COPY table (...)` line, the rows).
pub fn copy_sections(dump: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in dump.lines() {
        if let Some((_, body)) = current.as_mut() {
            if line == "\\." {
                out.extend(current.take());
            } else {
                body.push_str(line);
                body.push('\n');
            }
        } else if line.starts_with("COPY ") {
            let table = line.split_whitespace().nth(1).unwrap_or("?").to_string();
            current = Some((table, String::new()));
        }
    }
    out
}
