//! Fixtures shared by grants' API tests: grants alone on port 0 against a fresh database with the
//! WORK4LIFE budget seeded, its own Redis, access tokens signed by a key the test publishes,
//! intake decisions and coaching milestones published to their streams as the real services'
//! relays do, builders for awards, and readers for what the service left in its database (rows,
//! ledger, outbox events, audit records).
#![allow(dead_code)]

use std::time::Duration;

use sqlx::PgPool;
use tonic::{Status, transport::Channel};
use uuid::Uuid;
use work4life_platform::host::Running;
use work4life_proto::{
    coaching::MilestoneVerified,
    events::Event,
    grants::{
        ApproveDisbursementRequest, Award, AwardKind, Bursary, CreateAwardRequest, CreatePaymentBatchRequest, Disbursement,
        ExportPaymentBatchRequest, GetAwardRequest, ImportPaymentResultsRequest, Payee, PaymentBatch, PaymentMethod, PaymentResult,
        ReleaseCondition, RequestDisbursementRequest, Tranche, grants_service_client::GrantsServiceClient, release_condition::Condition,
    },
    intake::{ApplicationDecided, Decision, Gender, MemberProfile, MemberRole, Outcome, Recipient, Window},
    types::{ExchangeRate, Money},
};
#[allow(unused_imports)] // each test binary uses its own part of these
pub use work4life_testkit::{TestRedis, TestSigner, bearer, eventually, fields, info_metadata, payload, preconditions, reason, rid};

/// How long a test waits for a consumer or the relay.
pub const EVENT_WAIT: Duration = Duration::from_secs(15);
/// The streams grants reads.
pub const INTAKE_STREAM: &str = "w4l:events:intake";
pub const COACHING_STREAM: &str = "w4l:events:coaching";
/// The seeded lines (code, zone or "", window or "", allocation in cents).
pub const COLLECTIVE_TANGER: &str = "collective_tanger";
pub const WORK_BURSARIES: &str = "work_bursaries";
pub const INDIVIDUAL: &str = "individual_startups";
/// Every table of the grants schema a call could write to (service and platform tables).
pub const TABLES: [&str; 16] = [
    "budgets",
    "budget_lines",
    "decided_applications",
    "decided_members",
    "awards",
    "award_beneficiaries",
    "award_amendments",
    "tranches",
    "payment_batches",
    "disbursements",
    "postings",
    "entries",
    "outbox",
    "audit_log",
    "audit_head",
    "idempotency_keys",
];

pub struct Fixture {
    pub running: Running,
    pub database_url: String,
    /// A pool on the test database, `search_path` = grants.
    pub pool: PgPool,
    pub signer: TestSigner,
    /// A global admin's token.
    pub admin: String,
    /// The partner organisation the tests' staff belong to unless they say otherwise.
    pub org: Uuid,
    /// `budgets/{id}` of the seeded WORK4LIFE budget.
    pub budget: String,
    /// The Redis the service uses (dropped last: the service is stopped first).
    pub redis: TestRedis,
}

/// Starts grants alone against a fresh database (`w4l_grants_<uuid>`), seeded, with its own Redis.
pub async fn fresh() -> Fixture {
    let redis = TestRedis::start().await;
    let work4life_testkit::Hosted { running, database_url, pool, signer } =
        work4life_testkit::host_alone(work4life_grants::SERVICE, &redis.url).await;
    let budget: Uuid = sqlx::query_scalar("SELECT id FROM budgets WHERE program = 'work4life'").fetch_one(&pool).await.expect("budget");
    let admin = signer.token_for(&format!("accounts/{}", Uuid::now_v7()), &[("admin", None, &[])]);
    Fixture { running, database_url, pool, signer, admin, org: Uuid::now_v7(), budget: format!("budgets/{budget}"), redis }
}

/// An application intake accepted, as grants learnt it.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// `applications/{id}`.
    pub application: String,
    /// `applicants/{id}` of the members, the representative first.
    pub applicants: Vec<String>,
    /// `accounts/{id}` of their logins.
    pub accounts: Vec<String>,
    pub zone: String,
    pub window: String,
    /// `organizations/{id}` for a job placement.
    pub employer: String,
}

impl Fixture {
    pub async fn client(&self) -> GrantsServiceClient<Channel> {
        GrantsServiceClient::new(
            Channel::from_shared(format!("http://{}", self.running.addr)).expect("url").connect().await.expect("connect"),
        )
    }

    /// A new account holding `role` (scoped to `org` and `zones`): its subject and a token.
    pub fn token(&self, role: &str, org: Option<Uuid>, zones: &[&str]) -> (String, String) {
        self.signer.token(role, org, zones)
    }

    /// A finance officer (the maker) of the fixture's organisation in `zones` (all when empty).
    pub fn maker(&self, zones: &[&str]) -> (String, String) {
        self.token("finance_officer", Some(self.org), zones)
    }

    /// A finance checker of the fixture's organisation in `zones` (all when empty).
    pub fn checker(&self, zones: &[&str]) -> (String, String) {
        self.token("finance_checker", Some(self.org), zones)
    }

    /// A program manager of the fixture's organisation in `zones` (all when empty).
    pub fn manager(&self, zones: &[&str]) -> (String, String) {
        self.token("program_manager", Some(self.org), zones)
    }

    /// An auditor.
    pub fn auditor(&self) -> (String, String) {
        self.token("auditor", None, &[])
    }

    /// A beneficiary's token for `account` (`accounts/{uuid}`).
    pub fn beneficiary(&self, account: &str) -> String {
        self.signer.token_for(account, &[("beneficiary", None, &[])])
    }

    /// `budgets/{b}/lines/{code}` of the seeded budget.
    pub fn line(&self, code: &str) -> String {
        format!("{}/lines/{code}", self.budget)
    }

    /// Publishes intake's decision on a new application of `window` (`collective_startup`) in
    /// `zone` with `people` members (each with an account), and waits until grants recorded it.
    pub async fn decide(&self, window: Window, zone: &str, people: usize, outcome: Outcome) -> Accepted {
        let applicants: Vec<String> = (0..people).map(|_| format!("applicants/{}", Uuid::now_v7())).collect();
        self.publish_decision("programs/work4life", window, zone, &applicants, outcome).await
    }

    /// An accepted collective start-up of `people` in `zone`.
    pub async fn accepted(&self, zone: &str, people: usize) -> Accepted {
        self.decide(Window::CollectiveStartup, zone, people, Outcome::Accepted).await
    }

    /// An accepted job placement in `zone`.
    pub async fn accepted_placement(&self, zone: &str) -> Accepted {
        self.decide(Window::JobPlacement, zone, 1, Outcome::Accepted).await
    }

    /// Publishes coaching's `coaching.milestone.verified` for `award` and `code`.
    pub async fn verify_milestone(&self, award: &str, code: &str) {
        let m = MilestoneVerified {
            milestone: format!("engagements/{}/milestones/{code}", Uuid::now_v7()),
            code: code.into(),
            award: award.into(),
            ..MilestoneVerified::default()
        };
        let event = work4life_testkit::event(
            "coaching",
            "coaching.milestone.verified",
            &m.milestone,
            "work4life.coaching.v1.MilestoneVerified",
            &m,
        );
        self.redis.publish(COACHING_STREAM, &event).await;
    }

    pub async fn create_award(&self, jwt: &str, award: Award) -> Result<Award, Status> {
        self.create_award_with(jwt, award, &rid()).await
    }

    pub async fn create_award_with(&self, jwt: &str, award: Award, request_id: &str) -> Result<Award, Status> {
        self.client()
            .await
            .create_award(bearer(CreateAwardRequest { award: Some(award), request_id: request_id.into() }, jwt))
            .await
            .map(|r| r.into_inner().award.expect("award"))
    }

    pub async fn get_award(&self, jwt: &str, name: &str) -> Result<Award, Status> {
        self.client()
            .await
            .get_award(bearer(GetAwardRequest { name: name.into() }, jwt))
            .await
            .map(|r| r.into_inner().award.expect("award"))
    }

    /// Requests the payment of `tranche` as `maker`.
    pub async fn request(&self, maker: &str, tranche: &str) -> Result<Disbursement, Status> {
        self.client()
            .await
            .request_disbursement(bearer(RequestDisbursementRequest { tranche: tranche.into(), request_id: rid() }, maker))
            .await
            .map(|r| r.into_inner().disbursement.expect("disbursement"))
    }

    /// Approves `disbursement` as `checker`.
    pub async fn approve(&self, checker: &str, disbursement: &str) -> Result<Disbursement, Status> {
        self.client()
            .await
            .approve_disbursement(bearer(ApproveDisbursementRequest { name: disbursement.into(), request_id: String::new() }, checker))
            .await
            .map(|r| r.into_inner().disbursement.expect("disbursement"))
    }

    /// A batch of approved bank transfers in EUR, made by `maker`.
    pub async fn batch(&self, maker: &str) -> Result<PaymentBatch, Status> {
        self.client()
            .await
            .create_payment_batch(bearer(
                CreatePaymentBatchRequest {
                    budget: self.budget.clone(),
                    currency_code: "EUR".into(),
                    method: PaymentMethod::BankTransfer as i32,
                    max_count: 0,
                    request_id: rid(),
                },
                maker,
            ))
            .await
            .map(|r| r.into_inner().payment_batch.expect("batch"))
    }

    /// Exports `batch`: the batch and the file.
    pub async fn export(&self, maker: &str, batch: &str) -> Result<(PaymentBatch, String), Status> {
        self.client().await.export_payment_batch(bearer(ExportPaymentBatchRequest { name: batch.into() }, maker)).await.map(|r| {
            let r = r.into_inner();
            (r.payment_batch.expect("batch"), String::from_utf8(r.content).expect("utf-8"))
        })
    }

    /// Imports results: (disbursement, paid, reference or reason).
    pub async fn import(&self, maker: &str, batch: &str, results: &[(&str, bool, &str)]) -> Result<(PaymentBatch, i32, i32), Status> {
        let results = results
            .iter()
            .map(|(d, paid, text)| PaymentResult {
                disbursement: (*d).into(),
                paid: *paid,
                external_reference: if *paid { (*text).into() } else { String::new() },
                failure_reason: if *paid { String::new() } else { (*text).into() },
            })
            .collect();
        self.client()
            .await
            .import_payment_results(bearer(ImportPaymentResultsRequest { name: batch.into(), results, request_id: String::new() }, maker))
            .await
            .map(|r| {
                let r = r.into_inner();
                (r.payment_batch.expect("batch"), r.recorded_count, r.unchanged_count)
            })
    }

    pub async fn count(&self, sql: &str) -> i64 {
        work4life_testkit::count(&self.pool, sql).await
    }

    /// A line's (allocated, committed) counters.
    pub async fn line_counters(&self, code: &str) -> (i64, i64) {
        sqlx::query_as("SELECT allocated_minor, committed_minor FROM budget_lines WHERE code = $1")
            .bind(code)
            .fetch_one(&self.pool)
            .await
            .expect("line")
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

    /// Checks the books: every posting balances with at least two entries; each line's
    /// committed counter equals its committed + in_payment + disbursed ledger balances, its
    /// allocation the sum of its four stages; no stage is negative; the budget's allocation is
    /// the sum of its lines' and the envelope's balance is minus the envelope.
    pub async fn assert_books_balance(&self) {
        let unbalanced: i64 = self
            .count("SELECT count(*) FROM (SELECT p.id FROM postings p LEFT JOIN entries e ON e.posting_id = p.id GROUP BY p.id HAVING count(e.*) < 2 OR coalesce(sum(e.amount_minor), 0) <> 0) x")
            .await;
        assert_eq!(unbalanced, 0, "every posting balances");
        let lines: Vec<(Uuid, String, i64, i64)> =
            sqlx::query_as("SELECT budget_id, code, allocated_minor, committed_minor FROM budget_lines")
                .fetch_all(&self.pool)
                .await
                .expect("lines");
        for (budget, code, allocated, committed) in lines {
            let stage = |s: &str| format!("budgets/{budget}/lines/{code}/{s}");
            let mut balances = Vec::new();
            for s in ["available", "committed", "in_payment", "disbursed"] {
                let b: i64 = sqlx::query_scalar("SELECT coalesce(sum(amount_minor), 0)::bigint FROM entries WHERE account = $1")
                    .bind(stage(s))
                    .fetch_one(&self.pool)
                    .await
                    .expect("balance");
                assert!(b >= 0, "{} is negative: {b}", stage(s));
                balances.push(b);
            }
            assert_eq!(balances.iter().sum::<i64>(), allocated, "line {code}: the stages sum to the allocation");
            assert_eq!(balances[1] + balances[2] + balances[3], committed, "line {code}: the committed counter matches the ledger");
            assert!(committed <= allocated, "line {code}: committed {committed} beyond {allocated}");
        }
        let off: i64 = self
            .count("SELECT count(*) FROM budgets b WHERE b.allocated_minor <> (SELECT coalesce(sum(allocated_minor), 0) FROM budget_lines WHERE budget_id = b.id) \
                    OR (SELECT coalesce(sum(amount_minor), 0) FROM entries WHERE account = 'budgets/' || b.id || '/envelope') <> -b.envelope_minor")
            .await;
        assert_eq!(off, 0, "budgets agree with their lines and the ledger");
    }
}

impl Drop for Fixture {
    /// Stops the service and drops the test's database, unless the test failed.
    fn drop(&mut self) {
        self.running.shutdown.cancel();
        if std::thread::panicking() {
            eprintln!("test database kept for inspection: {}", self.database_url);
            return;
        }
        work4life_testkit::drop_database(&self.database_url);
    }
}

/// `amount` euro cents.
pub fn eur(amount_minor: i64) -> Money {
    Money { currency_code: "EUR".into(), amount_minor }
}

/// A tranche released by a milestone.
pub fn on_milestone(amount_minor: i64, code: &str) -> Tranche {
    Tranche {
        amount: Some(eur(amount_minor)),
        condition: Some(ReleaseCondition { condition: Some(Condition::Milestone(code.into())) }),
        ..Tranche::default()
    }
}

/// A tranche released on a day (`2027-03-01`).
pub fn on_date(amount_minor: i64, day: &str) -> Tranche {
    Tranche {
        amount: Some(eur(amount_minor)),
        condition: Some(ReleaseCondition { condition: Some(Condition::ReleaseDate(day.into())) }),
        ..Tranche::default()
    }
}

/// A bank transfer payee.
pub fn bank_payee() -> Payee {
    Payee {
        method: PaymentMethod::BankTransfer as i32,
        holder_name: "Coopérative Tanger Couture".into(),
        account: "011780000012345678901234".into(),
        account_hint: String::new(),
    }
}

/// A start-up grant on `line` for `application` with these tranches (EUR).
pub fn startup_award(line: &str, application: &str, tranches: Vec<Tranche>) -> Award {
    let total = tranches.iter().map(|t| t.amount.as_ref().map_or(0, |m| m.amount_minor)).sum();
    Award {
        budget_line: line.into(),
        application: application.into(),
        kind: AwardKind::StartupGrant as i32,
        amount: Some(eur(total)),
        tranches,
        payee: Some(bank_payee()),
        ..Award::default()
    }
}

/// A work bursary on `line` for a placement: `monthly` cents for `months` from `start` (`2026-09-01`).
pub fn bursary_award(line: &str, placement: &Accepted, monthly: i64, months: i32, start: &str) -> Award {
    Award {
        budget_line: line.into(),
        application: placement.application.clone(),
        kind: AwardKind::WorkBursary as i32,
        amount: Some(eur(monthly * i64::from(months))),
        bursary: Some(Bursary {
            monthly_amount: Some(eur(monthly)),
            months,
            employer: placement.employer.clone(),
            start_date: start.into(),
        }),
        payee: Some(Payee {
            method: PaymentMethod::MobileMoney as i32,
            holder_name: "Awa Diop".into(),
            account: "+212612345678".into(),
            account_hint: String::new(),
        }),
        ..Award::default()
    }
}

/// An exchange rate from EUR to MAD.
pub fn eur_mad(rate: &str) -> ExchangeRate {
    ExchangeRate {
        from_currency_code: "EUR".into(),
        to_currency_code: "MAD".into(),
        rate: rate.into(),
        source: "Bank Al-Maghrib reference rate".into(),
        effective_date: "2026-11-27".into(),
    }
}

/// Today in the program's time zone, ISO 8601, as PostgreSQL sees it.
pub async fn today(pool: &PgPool) -> String {
    sqlx::query_scalar("SELECT ((now() AT TIME ZONE 'Africa/Casablanca')::date)::text").fetch_one(pool).await.expect("today")
}

impl Fixture {
    /// Publishes intake's decision accepting an application of `program` (`programs/{code}`), in
    /// `window` and `zone`, whose members are `applicants` (ids may be reused from another
    /// application: one person in several awards), each with a new account and the profile of
    /// its position as in `decide`; waits until grants recorded it.
    pub async fn accept_members(&self, program: &str, window: Window, zone: &str, applicants: &[String]) -> Accepted {
        self.publish_decision(program, window, zone, applicants, Outcome::Accepted).await
    }

    /// Publishes intake's decision (`outcome`) on a new application of `program`, `window` and
    /// `zone` whose members are `applicants`, each with a new account, French or Arabic then
    /// French by position, and the profile of its position; waits until grants recorded it.
    async fn publish_decision(&self, program: &str, window: Window, zone: &str, applicants: &[String], outcome: Outcome) -> Accepted {
        let application = format!("applications/{}", Uuid::now_v7());
        let accounts: Vec<String> = applicants.iter().map(|_| format!("accounts/{}", Uuid::now_v7())).collect();
        let employer = if window == Window::JobPlacement { format!("organizations/{}", Uuid::now_v7()) } else { String::new() };
        let genders = [Gender::Female, Gender::Male, Gender::Female, Gender::Other, Gender::Male];
        let nationalities = ["SN", "CI", "CM", "GN", "ML"];
        let bands = ["18-24", "25-34", "35-44", "25-34", "45-54"];
        let decided = ApplicationDecided {
            application: application.clone(),
            call: format!("calls/{}", Uuid::now_v7()),
            program: program.into(),
            window: window as i32,
            zone: zone.into(),
            decision: Some(Decision { outcome: outcome as i32, reason: "selected by the committee".into(), ..Decision::default() }),
            recipients: applicants
                .iter()
                .zip(&accounts)
                .enumerate()
                .map(|(i, (a, acc))| Recipient {
                    applicant: a.clone(),
                    account: acc.clone(),
                    languages: if i % 2 == 0 { vec!["fr".into()] } else { vec!["ar".into(), "fr".into()] },
                    role: if i == 0 { MemberRole::Representative } else { MemberRole::Member } as i32,
                })
                .collect(),
            employer: employer.clone(),
            monthly_salary: None,
            profiles: applicants
                .iter()
                .enumerate()
                .map(|(i, a)| MemberProfile {
                    applicant: a.clone(),
                    gender: genders[i % 5] as i32,
                    nationality: nationalities[i % 5].into(),
                    age_band: bands[i % 5].into(),
                })
                .collect(),
        };
        let event = work4life_testkit::event(
            "intake",
            "intake.application.decided",
            &application,
            "work4life.intake.v1.ApplicationDecided",
            &decided,
        );
        self.redis.publish(INTAKE_STREAM, &event).await;
        let id = application.trim_start_matches("applications/").to_string();
        eventually(&format!("grants records {application}"), EVENT_WAIT, || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decided_applications WHERE application_id = $1::uuid")
                .bind(&id)
                .fetch_one(&self.pool)
                .await
                .expect("read");
            (n == 1).then_some(())
        })
        .await;
        Accepted {
            application,
            applicants: applicants.to_vec(),
            accounts,
            zone: zone.into(),
            window: window.as_str_name().trim_start_matches("WINDOW_").to_lowercase(),
            employer,
        }
    }
}
