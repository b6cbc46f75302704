//! Steps the journeys share: builders for the people they register, the intake review that
//! accepts an application, waiting for grants to learn of a decision, the seeded budget, the
//! maker-checker payment (request, approve, batch, export, import) and what each member's phone
//! was told. Each step asserts what its doc comment says and panics (naming the step) otherwise.

use std::{collections::BTreeSet, fmt::Debug, future::Future, time::Duration};

use tonic::{Code, Status, transport::Channel};
use work4life_proto::{
    grants::{
        ApproveDisbursementRequest, Award, CreateAwardRequest, CreatePaymentBatchRequest, Disbursement, DisbursementState,
        ExportPaymentBatchRequest, ImportPaymentResultsRequest, ImportPaymentResultsResponse, Payee, PaymentBatch, PaymentMethod,
        PaymentResult, RequestDisbursementRequest, grants_service_client::GrantsServiceClient,
    },
    intake::{
        Applicant, ApplicationState, AssignReviewerRequest, Call, Consent, CreateApplicantRequest, CriterionScore,
        DecideApplicationRequest, DocumentType, IdentityDocument, ListCallsRequest, Outcome, ScoreApplicationRequest, StartReviewRequest,
        StartScreeningRequest, SubmitApplicationRequest, Window, intake_service_client::IntakeServiceClient,
    },
    types::Money,
};
use work4life_testkit::{bearer, eventually, fingerprint, reason, rid};

use crate::world::World;

/// Every table of intake's schema a call could write to.
pub const INTAKE_TABLES: [&str; 10] = [
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

/// Every table of grants' schema a call could write to.
pub const GRANTS_TABLES: [&str; 16] = [
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

/// Fingerprints `tables` of `db`, runs `call` and asserts that it is refused (`refusal` says why
/// it must be) and that none of the tables changed (`what` says so). The refusal, for its checks.
pub async fn refused_writing_nothing<T: Debug>(
    db: &sqlx::PgPool,
    tables: &[&'static str],
    refusal: &str,
    what: &str,
    call: impl Future<Output = Result<T, Status>>,
) -> Status {
    let before = fingerprint(db, tables).await;
    let err = call.await.expect_err(refusal);
    assert_eq!(fingerprint(db, tables).await, before, "{what}");
    err
}

// People.

/// `n` random decimal digits (for phones, document numbers and family names no other run uses).
pub fn digits(n: usize) -> String {
    let mut out = String::new();
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < n {
                out.push((b'0' + b % 10) as char);
            }
        }
    }
    out
}

/// `amount_minor` euro cents.
pub fn eur(amount_minor: i64) -> Money {
    Money { currency_code: "EUR".into(), amount_minor }
}

/// The consent every journey's applicant gives: program participation, text version 2026-01.
pub fn consent() -> Consent {
    Consent { purpose: "program_participation".into(), text_version: "2026-01".into(), give_time: None, recorded_by: String::new() }
}

/// A passport numbered `number`, issued by `country`.
pub fn passport(number: String, country: &str) -> IdentityDocument {
    IdentityDocument { r#type: DocumentType::Passport as i32, number, number_hint: String::new(), issuing_country: country.into() }
}

/// Registers `applicant` as `jwt`; asserts intake accepts it and returns the stored applicant.
pub async fn register(intake: &mut IntakeServiceClient<Channel>, jwt: &str, applicant: Applicant) -> Applicant {
    intake
        .create_applicant(bearer(CreateApplicantRequest { applicant: Some(applicant), request_id: rid() }, jwt))
        .await
        .expect("registered")
        .into_inner()
        .applicant
        .expect("applicant")
}

// Intake: calls, review and decision.

/// The seeded open call of `window`; asserts there is exactly one.
pub async fn seeded_call(intake: &mut IntakeServiceClient<Channel>, jwt: &str, window: Window) -> Call {
    let calls = intake
        .list_calls(bearer(
            ListCallsRequest { program: "programs/work4life".into(), window: window as i32, ..ListCallsRequest::default() },
            jwt,
        ))
        .await
        .expect("list calls")
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 1, "one seeded call of {window:?}: {calls:?}");
    calls.into_iter().next().expect("call")
}

/// What the one reviewer of [`submit_review_and_accept`] writes and why the manager accepts.
pub struct Verdict<'a> {
    /// The score given on each of the three criteria (viability, team, impact).
    pub score: i32,
    /// The comment on each criterion.
    pub criterion_comment: &'a str,
    /// The review's overall comment.
    pub comment: &'a str,
    /// The manager's reason for accepting.
    pub reason: &'a str,
}

/// The officer submits the drafted `application`; the manager screens it, starts the review and
/// assigns a new reviewer, who scores it as `verdict` says; the manager accepts it. Asserts each
/// call succeeds and that the application ends decided.
pub async fn submit_review_and_accept(
    world: &World,
    intake: &mut IntakeServiceClient<Channel>,
    officer: &str,
    manager: &str,
    application: &str,
    verdict: &Verdict<'_>,
) {
    intake
        .submit_application(bearer(SubmitApplicationRequest { name: application.into(), etag: String::new() }, officer))
        .await
        .expect("submitted");
    intake.start_screening(bearer(StartScreeningRequest { name: application.into() }, manager)).await.expect("screening");
    intake.start_review(bearer(StartReviewRequest { name: application.into() }, manager)).await.expect("review");
    let (reviewer_subject, reviewer) = world.token("reviewer", None, &[]);
    let review = intake
        .assign_reviewer(bearer(AssignReviewerRequest { application: application.into(), reviewer: reviewer_subject }, manager))
        .await
        .expect("assigned")
        .into_inner()
        .review
        .expect("review");
    let scores = ["viability", "team", "impact"]
        .iter()
        .map(|c| CriterionScore { criterion: (*c).into(), score: verdict.score, comment: verdict.criterion_comment.into() })
        .collect();
    intake
        .score_application(bearer(ScoreApplicationRequest { name: review.name, scores, comment: verdict.comment.into() }, &reviewer))
        .await
        .expect("scored");
    let decided = intake
        .decide_application(bearer(
            DecideApplicationRequest { name: application.into(), outcome: Outcome::Accepted as i32, reason: verdict.reason.into() },
            manager,
        ))
        .await
        .expect("accepted")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(decided.state, ApplicationState::Decided as i32);
}

/// Waits, at most `wait`, until grants has recorded the decision on `application` (one row of
/// `decided_applications`); panics naming `what` after that.
pub async fn wait_until_grants_has_the_decision(grants_db: &sqlx::PgPool, application: &str, what: &str, wait: Duration) {
    let id = application.trim_start_matches("applications/").to_string();
    eventually(what, wait, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decided_applications WHERE application_id = $1::uuid")
            .bind(&id)
            .fetch_one(grants_db)
            .await
            .expect("read");
        (n == 1).then_some(())
    })
    .await;
}

// Grants: budget and maker-checker payments.

/// The seeded WORK4LIFE budget's id and the name of its line `code` (`budgets/<id>/lines/<code>`).
pub async fn budget_line(grants_db: &sqlx::PgPool, code: &str) -> (uuid::Uuid, String) {
    let budget: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM budgets WHERE program = 'work4life'").fetch_one(grants_db).await.expect("budget");
    (budget, format!("budgets/{budget}/lines/{code}"))
}

/// A payee paid by `method` to `account`, held by `holder`.
pub fn payee(method: PaymentMethod, holder: &str, account: &str) -> Payee {
    Payee { method: method as i32, holder_name: holder.into(), account: account.into(), account_hint: String::new() }
}

/// The manager's request for `award` (its budget line, application, amount, tranches and payee).
pub async fn create_award(grants: &mut GrantsServiceClient<Channel>, manager: &str, award: Award) -> Result<Award, Status> {
    grants
        .create_award(bearer(CreateAwardRequest { award: Some(award), request_id: rid() }, manager))
        .await
        .map(|r| r.into_inner().award.expect("award"))
}

/// The maker requests the payment of `tranche`; asserts it is pending approval, requested by `maker_subject`.
pub async fn request_disbursement(
    grants: &mut GrantsServiceClient<Channel>,
    tranche: &str,
    maker: &str,
    maker_subject: &str,
) -> Disbursement {
    let d = grants
        .request_disbursement(bearer(RequestDisbursementRequest { tranche: tranche.into(), request_id: rid() }, maker))
        .await
        .expect("requested")
        .into_inner()
        .disbursement
        .expect("disbursement");
    assert_eq!(d.state, DisbursementState::PendingApproval as i32);
    assert_eq!(d.requested_by, maker_subject);
    d
}

/// The maker tries to approve their own `disbursement`; asserts PERMISSION_DENIED and that
/// none of grants' `tables` changed (`what` says so). The refusal, for more checks.
pub async fn self_approval_is_refused(
    grants: &mut GrantsServiceClient<Channel>,
    grants_db: &sqlx::PgPool,
    tables: &[&'static str],
    disbursement: &str,
    maker: &str,
    what: &str,
) -> Status {
    let approval = ApproveDisbursementRequest { name: disbursement.into(), request_id: String::new() };
    let err =
        refused_writing_nothing(grants_db, tables, "the maker cannot approve", what, grants.approve_disbursement(bearer(approval, maker)))
            .await;
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(reason(&err), "PERMISSION_DENIED", "{err:?}");
    err
}

/// A second person approves `disbursement`; asserts it is approved, by `checker_subject`.
pub async fn approve_disbursement(
    grants: &mut GrantsServiceClient<Channel>,
    disbursement: &str,
    checker: &str,
    checker_subject: &str,
) -> Disbursement {
    let approved = grants
        .approve_disbursement(bearer(ApproveDisbursementRequest { name: disbursement.into(), request_id: String::new() }, checker))
        .await
        .expect("approved by the checker")
        .into_inner()
        .disbursement
        .expect("disbursement");
    assert_eq!(approved.state, DisbursementState::Approved as i32);
    assert_eq!(approved.approved_by, checker_subject);
    approved
}

/// The maker batches every approved EUR disbursement of `budget` paid by `method`.
pub async fn payment_batch(grants: &mut GrantsServiceClient<Channel>, budget: &str, method: PaymentMethod, maker: &str) -> PaymentBatch {
    grants
        .create_payment_batch(bearer(
            CreatePaymentBatchRequest {
                budget: budget.into(),
                currency_code: "EUR".into(),
                method: method as i32,
                max_count: 0,
                request_id: rid(),
            },
            maker,
        ))
        .await
        .expect("batch")
        .into_inner()
        .payment_batch
        .expect("batch")
}

/// The maker exports `batch`; asserts the file is UTF-8 and returns it.
pub async fn export_batch(grants: &mut GrantsServiceClient<Channel>, batch: &str, maker: &str) -> String {
    let exported = grants.export_payment_batch(bearer(ExportPaymentBatchRequest { name: batch.into() }, maker)).await.expect("export");
    String::from_utf8(exported.into_inner().content).expect("utf-8 file")
}

/// The maker imports the bank's `results` for `batch`.
pub async fn import_results(
    grants: &mut GrantsServiceClient<Channel>,
    batch: &str,
    results: Vec<PaymentResult>,
    maker: &str,
) -> ImportPaymentResultsResponse {
    grants
        .import_payment_results(bearer(ImportPaymentResultsRequest { name: batch.into(), results, request_id: String::new() }, maker))
        .await
        .expect("results imported")
        .into_inner()
}

// What each member is told.

/// Every message a member of the collective start-up hears of, one per step of the journey.
pub const STEPS: [&str; 8] = [
    "intake.applicant.registered",
    "intake.application.submitted",
    "intake.application.accepted",
    "grants.award.created",
    "coaching.session.scheduled",
    "coaching.milestone.verified",
    "grants.tranche.payable",
    "grants.disbursement.paid",
];

/// Per step, a phrase found in that step's seed SMS template (services/notifications/src/
/// seed_templates.rs) and in no other step's, in French, English and Arabic.
pub const PHRASES: [[&str; 3]; 8] = [
    ["inscription", "registered", "تسجيلكم"],
    ["déposée", "submitted", "إيداع"],
    ["Bonne nouvelle", "Good news", "تهانينا"],
    ["accorde", "awarded", "منحكم"],
    ["séance", "coaching session", "جلسة"],
    ["Bravo", "Well done", "أحسنتم"],
    ["la tranche", "of your WORK4LIFE grant", "الدفعة"],
    ["vous a versé", "has paid", "حولنا"],
];

/// The step an SMS in `locale` tells of, by its template's phrase; asserts exactly one matches.
pub fn step_of(text: &str, locale: &str) -> &'static str {
    let column = match locale {
        "fr" => 0,
        "en" => 1,
        "ar" => 2,
        other => panic!("no phrases for {other}"),
    };
    let matched: Vec<&str> = STEPS.iter().zip(PHRASES).filter(|(_, p)| text.contains(p[column])).map(|(s, _)| *s).collect();
    assert_eq!(matched.len(), 1, "one step's words in a {locale} SMS: {text}");
    matched[0]
}

/// The SMS the provider accepted for `phone`, one per message (idempotency key), oldest first.
pub fn sms_to(world: &World, phone: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    world
        .sms
        .accepted()
        .into_iter()
        .filter(|r| r.body["to"] == phone)
        .filter(|r| seen.insert(r.headers.get("idempotency-key").cloned().unwrap_or_default()))
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether `text` has a letter of the Arabic script.
pub fn has_arabic(text: &str) -> bool {
    text.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c))
}

/// A row of notifications' `messages`: recipient, message type, state, locale, channel.
pub type MessageRow = (String, String, String, String, String);

/// Waits, at most `wait`, until notifications has sent (or delivered) every step's message to
/// each of `recipients`; their rows, oldest first.
pub async fn wait_until_every_step_is_sent(notifications_db: &sqlx::PgPool, recipients: &[String], wait: Duration) -> Vec<MessageRow> {
    eventually("every member's eight messages are sent", wait, || async {
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT recipient, message_type, state, locale, coalesce(channel, '') FROM messages WHERE recipient = ANY($1) ORDER BY created_at",
        )
        .bind(recipients)
        .fetch_all(notifications_db)
        .await
        .expect("messages");
        (rows.len() >= recipients.len() * STEPS.len() && rows.iter().all(|r| r.2 == "sent" || r.2 == "delivered")).then_some(rows)
    })
    .await
}

/// Asserts `recipient` (called `given`) has each step's message exactly once among `rows`, each
/// in `language` and by SMS.
#[track_caller]
pub fn assert_each_step_told_once(rows: &[MessageRow], recipient: &str, given: &str, language: &str) {
    let mut got: Vec<&str> = rows.iter().filter(|r| r.0 == recipient).map(|r| r.1.as_str()).collect();
    got.sort_unstable();
    let mut want = STEPS.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{given}: each step's message exactly once");
    for r in rows.iter().filter(|r| r.0 == recipient) {
        assert_eq!(r.3, language, "{given}: {} in their language", r.1);
        assert_eq!(r.4, "sms", "{given}: {} by SMS", r.1);
    }
}

/// Asserts the SMS `texts` a phone got tell the eight steps in order, each once, in `language`'s
/// script and words, naming `given`. "Milestone verified" (coaching → notifications) and "tranche
/// payable" (coaching → grants → notifications) are two consequences of one verification, told
/// concurrently: either may arrive first.
#[track_caller]
pub fn assert_steps_told_in_order(texts: &[String], given: &str, language: &str) {
    let mut steps: Vec<&str> = texts.iter().map(|t| step_of(t, language)).collect();
    if steps.len() == STEPS.len() {
        steps[5..7].sort_unstable_by_key(|s| STEPS.iter().position(|x| x == s));
    }
    assert_eq!(steps, STEPS, "{given}: the steps in order, each once: {texts:#?}");
    for text in texts {
        assert_eq!(has_arabic(text), language == "ar", "{given} ({language}): {text}");
        assert!(text.contains(given), "{given} is named: {text}");
    }
}
