//! The refusals journey (issue #9): a collective of six, an ineligible applicant, an Oujda
//! officer reaching for a Rabat file, a self-approved disbursement and an award beyond the
//! budget — each refused with the right gRPC code and details, and nothing half-written (the
//! touched schema's tables fingerprinted before and after). Run all-in-one and split.

use std::time::Duration;

use tonic::{Code, Status, transport::Channel};
use work4life_proto::{
    grants::{
        ApproveDisbursementRequest, Award, AwardKind, CreateAwardRequest, DisbursementState, Payee, PaymentMethod, ReleaseCondition,
        RequestDisbursementRequest, Tranche, TrancheState, grants_service_client::GrantsServiceClient, release_condition::Condition,
    },
    intake::{
        Applicant, Application, ApplicationState, AssignReviewerRequest, Call, CheckEligibilityRequest, Consent, CreateApplicantRequest,
        CreateApplicationRequest, CriterionScore, DecideApplicationRequest, DocumentType, Gender, GetApplicantRequest, IdentityDocument,
        ListCallsRequest, Member, MemberRole, Outcome, ScoreApplicationRequest, StartReviewRequest, StartScreeningRequest,
        SubmitApplicationRequest, Window, intake_service_client::IntakeServiceClient,
    },
    types::Money,
};
use work4life_testkit::{bearer, eventually, fingerprint, preconditions, reason, rid};
use work4life_tests::world::{Mode, World};

/// How long the journey waits for an event to cross services.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Every table of intake's schema a call could write to.
const INTAKE_TABLES: [&str; 10] = [
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
const GRANTS_TABLES: [&str; 16] = [
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

fn digits(n: usize) -> String {
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

/// A Senegalese migrant of `zone`, born on `birth_date`, with a passport and consent.
fn migrant(given: &str, zone: &str, birth_date: &str) -> Applicant {
    Applicant {
        given_name: given.into(),
        family_name: format!("Refus{}", digits(6)),
        birth_date: birth_date.into(),
        gender: Gender::Male as i32,
        nationality: "SN".into(),
        languages: vec!["fr".into()],
        zone: zone.into(),
        phone: format!("+2126{}", digits(8)),
        identity_document: Some(IdentityDocument {
            r#type: DocumentType::Passport as i32,
            number: format!("P{}", digits(8)),
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

async fn register(intake: &mut IntakeServiceClient<Channel>, jwt: &str, applicant: Applicant) -> Applicant {
    intake
        .create_applicant(bearer(CreateApplicantRequest { applicant: Some(applicant), request_id: rid() }, jwt))
        .await
        .expect("registered")
        .into_inner()
        .applicant
        .expect("applicant")
}

/// The seeded open call of `window`.
async fn seeded_call(intake: &mut IntakeServiceClient<Channel>, jwt: &str, window: Window) -> Call {
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

fn draft(call: &Call, zone: &str, members: &[&Applicant]) -> Application {
    Application {
        call: call.name.clone(),
        zone: zone.into(),
        title: "Atelier de couture solidaire".into(),
        summary: "Tailoring for the neighbourhood".into(),
        provided_documents: vec!["business_plan".into()],
        members: members
            .iter()
            .enumerate()
            .map(|(i, a)| Member {
                applicant: a.name.clone(),
                role: if i == 0 { MemberRole::Representative } else { MemberRole::Member } as i32,
                display_name: String::new(),
            })
            .collect(),
        ..Application::default()
    }
}

async fn create_application(intake: &mut IntakeServiceClient<Channel>, jwt: &str, application: Application) -> Result<Application, Status> {
    intake
        .create_application(bearer(CreateApplicationRequest { application: Some(application), request_id: rid() }, jwt))
        .await
        .map(|r| r.into_inner().application.expect("application"))
}

fn eur(amount_minor: i64) -> Money {
    Money { currency_code: "EUR".into(), amount_minor }
}

/// A start-up grant on `line` for `application`: one tranche released on `day`.
fn grant(line: &str, application: &str, amount_minor: i64, day: &str) -> Award {
    Award {
        budget_line: line.into(),
        application: application.into(),
        kind: AwardKind::StartupGrant as i32,
        amount: Some(eur(amount_minor)),
        tranches: vec![Tranche {
            amount: Some(eur(amount_minor)),
            condition: Some(ReleaseCondition { condition: Some(Condition::ReleaseDate(day.into())) }),
            ..Tranche::default()
        }],
        payee: Some(Payee {
            method: PaymentMethod::BankTransfer as i32,
            holder_name: "Coopérative Tanger Couture".into(),
            account: "011780000012345678901234".into(),
            account_hint: String::new(),
        }),
        ..Award::default()
    }
}

/// Asserts `status` is FAILED_PRECONDITION `why` with exactly one violation on `subject`; its description.
#[track_caller]
fn assert_precondition(status: &Status, why: &str, subject: &str) -> String {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), why, "{status:?}");
    let p = preconditions(status);
    assert_eq!(p.len(), 1, "one violation: {p:?}");
    assert_eq!(p[0].0, subject, "{p:?}");
    p[0].1.clone()
}

async fn refusals(mode: Mode) {
    let started = std::time::Instant::now();
    let world = World::start(mode).await.expect("world");
    let intake_db = world.pool("intake").await.expect("intake pool");
    let grants_db = world.pool("grants").await.expect("grants pool");
    let mut intake = IntakeServiceClient::new(world.channel("intake"));
    let mut grants = GrantsServiceClient::new(world.channel("grants"));
    let tanger_org = uuid::Uuid::now_v7();
    let (_, officer) = world.token("officer", Some(tanger_org), &["tanger"]);
    let (_, manager) = world.token("program_manager", Some(tanger_org), &["tanger"]);
    let collective = seeded_call(&mut intake, &manager, Window::CollectiveStartup).await;
    let individual = seeded_call(&mut intake, &manager, Window::IndividualStartup).await;
    let mut registered = 0;

    // 1. A collective of six: the collective call takes 3 to 5 (the window's default, the seeded
    //    call sets no maximum). The draft is refused at creation, naming the members.
    let mut six = Vec::new();
    for given in ["Moussa", "Aminata", "Cheikh", "Khadija", "Oumar", "Binta"] {
        six.push(register(&mut intake, &officer, migrant(given, "tanger", "1995-05-20")).await);
    }
    registered += 6;
    // Notifications reads the people back from intake (an audited call): let it finish first.
    world.sms.wait_accepted(registered, EVENT_WAIT).await;
    let before = fingerprint(&intake_db, &INTAKE_TABLES).await;
    let refs: Vec<&Applicant> = six.iter().collect();
    let err = create_application(&mut intake, &officer, draft(&collective, "tanger", &refs)).await.expect_err("a collective of six");
    let description = assert_precondition(&err, "TEAM_FULL", "application.members");
    assert!(description.contains("at most 5"), "names the maximum: {description}");
    assert_eq!(fingerprint(&intake_db, &INTAKE_TABLES).await, before, "a refused collective writes nothing");
    // Five of them are a valid team (the refusal is about the sixth).
    let five = create_application(&mut intake, &officer, draft(&collective, "tanger", &refs[..5])).await.expect("five are a team");
    assert_eq!(five.members.len(), 5);

    // 2. An ineligible applicant: 50 years old for a call that takes 18 to 45. The draft is
    //    kept; the submission is refused with the rule, the field and the person named.
    let old = register(&mut intake, &officer, migrant("Ibrahima", "tanger", "1975-02-11")).await;
    registered += 1;
    let mine = create_application(&mut intake, &officer, draft(&individual, "tanger", &[&old])).await.expect("a draft may be opened");
    let check =
        intake.check_eligibility(bearer(CheckEligibilityRequest { name: mine.name.clone() }, &officer)).await.expect("check").into_inner();
    assert!(!check.eligible);
    assert_eq!(
        check.findings.iter().map(|f| (f.rule.as_str(), f.field.as_str())).collect::<Vec<_>>(),
        vec![("AGE", "members[0].birth_date")],
        "{check:?}"
    );
    world.sms.wait_accepted(registered, EVENT_WAIT).await;
    let before = fingerprint(&intake_db, &INTAKE_TABLES).await;
    let err = intake
        .submit_application(bearer(SubmitApplicationRequest { name: mine.name.clone(), etag: String::new() }, &officer))
        .await
        .expect_err("too old for the call");
    let description = assert_precondition(&err, "NOT_ELIGIBLE", "members[0].birth_date");
    assert!(description.contains("Ibrahima") && description.contains("18 to 45"), "names the person and the rule: {description}");
    assert_eq!(fingerprint(&intake_db, &INTAKE_TABLES).await, before, "a refused submission writes nothing");

    // 3. An Oujda officer reaching for a file a Rabat officer registered: not found (not even
    //    told that it exists).
    let (_, rabat) = world.token("officer", Some(uuid::Uuid::now_v7()), &["rabat_sale"]);
    let (_, oujda) = world.token("officer", Some(uuid::Uuid::now_v7()), &["oujda"]);
    let rabat_file = register(&mut intake, &rabat, migrant("Fatou", "rabat_sale", "1998-09-01")).await;
    registered += 1;
    world.sms.wait_accepted(registered, EVENT_WAIT).await;
    let before = fingerprint(&intake_db, &INTAKE_TABLES).await;
    let err = intake
        .get_applicant(bearer(GetApplicantRequest { name: rabat_file.name.clone(), view: 0 }, &oujda))
        .await
        .expect_err("another zone's file");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(reason(&err), "NOT_FOUND", "{err:?}");
    assert!(!err.message().contains("Fatou"), "nothing of the person leaks: {err:?}");
    assert_eq!(fingerprint(&intake_db, &INTAKE_TABLES).await, before, "a refused read writes nothing");
    let own = intake
        .get_applicant(bearer(GetApplicantRequest { name: rabat_file.name.clone(), view: 0 }, &rabat))
        .await
        .expect("the Rabat officer reads it");
    assert_eq!(own.into_inner().applicant.expect("applicant").given_name, "Fatou");

    // The five go through review and are accepted; grants learns of it from intake's event.
    let application = five.name.clone();
    intake
        .submit_application(bearer(SubmitApplicationRequest { name: application.clone(), etag: String::new() }, &officer))
        .await
        .expect("submitted");
    intake.start_screening(bearer(StartScreeningRequest { name: application.clone() }, &manager)).await.expect("screening");
    intake.start_review(bearer(StartReviewRequest { name: application.clone() }, &manager)).await.expect("review");
    let (reviewer_subject, reviewer) = world.token("reviewer", None, &[]);
    let review = intake
        .assign_reviewer(bearer(AssignReviewerRequest { application: application.clone(), reviewer: reviewer_subject }, &manager))
        .await
        .expect("assigned")
        .into_inner()
        .review
        .expect("review");
    let scores = ["viability", "team", "impact"]
        .iter()
        .map(|c| CriterionScore { criterion: (*c).into(), score: 8, comment: "convincing".into() })
        .collect();
    intake
        .score_application(bearer(ScoreApplicationRequest { name: review.name, scores, comment: "a solid team".into() }, &reviewer))
        .await
        .expect("scored");
    let decided = intake
        .decide_application(bearer(
            DecideApplicationRequest { name: application.clone(), outcome: Outcome::Accepted as i32, reason: "selected".into() },
            &manager,
        ))
        .await
        .expect("accepted")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(decided.state, ApplicationState::Decided as i32);
    let id = application.trim_start_matches("applications/").to_string();
    eventually("grants records the decision", EVENT_WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM decided_applications WHERE application_id = $1::uuid")
            .bind(&id)
            .fetch_one(&grants_db)
            .await
            .expect("read");
        (n == 1).then_some(())
    })
    .await;

    // 4. An award beyond the budget: one cent more than the Tanger collective line holds.
    let budget: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM budgets WHERE program = 'work4life'").fetch_one(&grants_db).await.expect("budget");
    let line = format!("budgets/{budget}/lines/collective_tanger");
    let (allocated, committed): (i64, i64) =
        sqlx::query_as("SELECT allocated_minor, committed_minor FROM budget_lines WHERE code = 'collective_tanger'")
            .fetch_one(&grants_db)
            .await
            .expect("line");
    let available = allocated - committed;
    assert_eq!(available, 25_000_000, "the seeded line is untouched");
    let today: String =
        sqlx::query_scalar("SELECT ((now() AT TIME ZONE 'Africa/Casablanca')::date)::text").fetch_one(&grants_db).await.expect("today");
    let before = fingerprint(&grants_db, &GRANTS_TABLES).await;
    let err = grants
        .create_award(bearer(
            CreateAwardRequest { award: Some(grant(&line, &application, available + 1, &today)), request_id: rid() },
            &manager,
        ))
        .await
        .expect_err("beyond the line");
    let description = assert_precondition(&err, "BUDGET_LINE_EXCEEDED", &line);
    assert!(description.contains("250000.00 EUR"), "names what is available: {description}");
    assert_eq!(fingerprint(&grants_db, &GRANTS_TABLES).await, before, "a refused award writes nothing");

    // Within the line, the award is made; its tranche, due today, is payable at once.
    let award = grants
        .create_award(bearer(
            CreateAwardRequest { award: Some(grant(&line, &application, 2_000_000, &today)), request_id: rid() },
            &manager,
        ))
        .await
        .expect("within the line")
        .into_inner()
        .award
        .expect("award");
    assert_eq!(award.tranches[0].state, TrancheState::Payable as i32);

    // 5. A self-approved disbursement: one person holding both finance roles requests the
    //    payment and may not approve it (maker-checker needs two people).
    let maker_subject = format!("accounts/{}", uuid::Uuid::now_v7());
    let maker = world.signer.token_for(
        &maker_subject,
        &[("finance_officer", Some(tanger_org), &["tanger"]), ("finance_checker", Some(tanger_org), &["tanger"])],
    );
    let (checker_subject, checker) = world.token("finance_checker", Some(tanger_org), &["tanger"]);
    let d = grants
        .request_disbursement(bearer(RequestDisbursementRequest { tranche: award.tranches[0].name.clone(), request_id: rid() }, &maker))
        .await
        .expect("requested")
        .into_inner()
        .disbursement
        .expect("disbursement");
    assert_eq!(d.state, DisbursementState::PendingApproval as i32);
    assert_eq!(d.requested_by, maker_subject);
    let before = fingerprint(&grants_db, &GRANTS_TABLES).await;
    let err = grants
        .approve_disbursement(bearer(ApproveDisbursementRequest { name: d.name.clone(), request_id: String::new() }, &maker))
        .await
        .expect_err("self-approval");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(reason(&err), "PERMISSION_DENIED", "{err:?}");
    assert!(err.message().contains("maker of a disbursement cannot approve"), "refused as a self-approval: {err:?}");
    assert_eq!(fingerprint(&grants_db, &GRANTS_TABLES).await, before, "a refused approval writes nothing");
    // A second person approves it.
    let approved = grants
        .approve_disbursement(bearer(ApproveDisbursementRequest { name: d.name.clone(), request_id: String::new() }, &checker))
        .await
        .expect("the checker approves")
        .into_inner()
        .disbursement
        .expect("disbursement");
    assert_eq!(approved.state, DisbursementState::Approved as i32);
    assert_eq!(approved.approved_by, checker_subject);

    world.stop().await.expect("clean stop");
    eprintln!("refusals journey ({mode:?}): {:?}", started.elapsed());
}

#[tokio::test]
async fn refusals_all_in_one() {
    refusals(Mode::AllInOne).await;
}

#[tokio::test]
async fn refusals_split() {
    refusals(Mode::Split).await;
}
