//! The refusals journey (issue #9): a collective of six, an ineligible applicant, an Oujda
//! officer reaching for a Rabat file, a self-approved disbursement and an award beyond the
//! budget — each refused with the right gRPC code and details, and nothing half-written (the
//! touched schema's tables fingerprinted before and after). Run all-in-one and split.

use std::time::Duration;

use tonic::{Code, Status, transport::Channel};
use work4life_proto::{
    grants::{
        Award, AwardKind, PaymentMethod, ReleaseCondition, Tranche, TrancheState, grants_service_client::GrantsServiceClient,
        release_condition::Condition,
    },
    intake::{
        Applicant, Application, Call, CheckEligibilityRequest, CreateApplicationRequest, Gender, GetApplicantRequest, Member, MemberRole,
        SubmitApplicationRequest, Window, intake_service_client::IntakeServiceClient,
    },
};
use work4life_testkit::{bearer, preconditions, reason, rid};
use work4life_tests::{
    steps::{
        GRANTS_TABLES, INTAKE_TABLES, Verdict, approve_disbursement, budget_line, consent, create_award, digits, eur, passport, payee,
        refused_writing_nothing, register, request_disbursement, seeded_call, self_approval_is_refused, submit_review_and_accept,
        wait_until_grants_has_the_decision,
    },
    world::{Mode, World},
};

/// How long the journey waits for an event to cross services.
const EVENT_WAIT: Duration = Duration::from_secs(30);

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
        identity_document: Some(passport(format!("P{}", digits(8)), "SN")),
        consent: Some(consent()),
        ..Applicant::default()
    }
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
        payee: Some(payee(PaymentMethod::BankTransfer, "Coopérative Tanger Couture", "011780000012345678901234")),
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
    let refs: Vec<&Applicant> = six.iter().collect();
    let six_apply = create_application(&mut intake, &officer, draft(&collective, "tanger", &refs));
    let err =
        refused_writing_nothing(&intake_db, &INTAKE_TABLES, "a collective of six", "a refused collective writes nothing", six_apply).await;
    let description = assert_precondition(&err, "TEAM_FULL", "application.members");
    assert!(description.contains("at most 5"), "names the maximum: {description}");
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
    let submit = intake.submit_application(bearer(SubmitApplicationRequest { name: mine.name.clone(), etag: String::new() }, &officer));
    let err =
        refused_writing_nothing(&intake_db, &INTAKE_TABLES, "too old for the call", "a refused submission writes nothing", submit).await;
    let description = assert_precondition(&err, "NOT_ELIGIBLE", "members[0].birth_date");
    assert!(description.contains("Ibrahima") && description.contains("18 to 45"), "names the person and the rule: {description}");

    // 3. An Oujda officer reaching for a file a Rabat officer registered: not found (not even
    //    told that it exists).
    let (_, rabat) = world.token("officer", Some(uuid::Uuid::now_v7()), &["rabat_sale"]);
    let (_, oujda) = world.token("officer", Some(uuid::Uuid::now_v7()), &["oujda"]);
    let rabat_file = register(&mut intake, &rabat, migrant("Fatou", "rabat_sale", "1998-09-01")).await;
    registered += 1;
    world.sms.wait_accepted(registered, EVENT_WAIT).await;
    let read = intake.get_applicant(bearer(GetApplicantRequest { name: rabat_file.name.clone(), view: 0 }, &oujda));
    let err = refused_writing_nothing(&intake_db, &INTAKE_TABLES, "another zone's file", "a refused read writes nothing", read).await;
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(reason(&err), "NOT_FOUND", "{err:?}");
    assert!(!err.message().contains("Fatou"), "nothing of the person leaks: {err:?}");
    let own = intake
        .get_applicant(bearer(GetApplicantRequest { name: rabat_file.name.clone(), view: 0 }, &rabat))
        .await
        .expect("the Rabat officer reads it");
    assert_eq!(own.into_inner().applicant.expect("applicant").given_name, "Fatou");

    // The five go through review and are accepted; grants learns of it from intake's event.
    let application = five.name.clone();
    let verdict = Verdict { score: 8, criterion_comment: "convincing", comment: "a solid team", reason: "selected" };
    submit_review_and_accept(&world, &mut intake, &officer, &manager, &application, &verdict).await;
    wait_until_grants_has_the_decision(&grants_db, &application, "grants records the decision", EVENT_WAIT).await;

    // 4. An award beyond the budget: one cent more than the Tanger collective line holds.
    let (_, line) = budget_line(&grants_db, "collective_tanger").await;
    let (allocated, committed): (i64, i64) =
        sqlx::query_as("SELECT allocated_minor, committed_minor FROM budget_lines WHERE code = 'collective_tanger'")
            .fetch_one(&grants_db)
            .await
            .expect("line");
    let available = allocated - committed;
    assert_eq!(available, 25_000_000, "the seeded line is untouched");
    let today: String =
        sqlx::query_scalar("SELECT ((now() AT TIME ZONE 'Africa/Casablanca')::date)::text").fetch_one(&grants_db).await.expect("today");
    let beyond = create_award(&mut grants, &manager, grant(&line, &application, available + 1, &today));
    let err = refused_writing_nothing(&grants_db, &GRANTS_TABLES, "beyond the line", "a refused award writes nothing", beyond).await;
    let description = assert_precondition(&err, "BUDGET_LINE_EXCEEDED", &line);
    assert!(description.contains("250000.00 EUR"), "names what is available: {description}");

    // Within the line, the award is made; its tranche, due today, is payable at once.
    let award = create_award(&mut grants, &manager, grant(&line, &application, 2_000_000, &today)).await.expect("within the line");
    assert_eq!(award.tranches[0].state, TrancheState::Payable as i32);

    // 5. A self-approved disbursement: one person holding both finance roles requests the
    //    payment and may not approve it (maker-checker needs two people).
    let maker_subject = format!("accounts/{}", uuid::Uuid::now_v7());
    let maker = world.signer.token_for(
        &maker_subject,
        &[("finance_officer", Some(tanger_org), &["tanger"]), ("finance_checker", Some(tanger_org), &["tanger"])],
    );
    let (checker_subject, checker) = world.token("finance_checker", Some(tanger_org), &["tanger"]);
    let d = request_disbursement(&mut grants, &award.tranches[0].name, &maker, &maker_subject).await;
    let err = self_approval_is_refused(&mut grants, &grants_db, &GRANTS_TABLES, &d.name, &maker, "a refused approval writes nothing").await;
    assert!(err.message().contains("maker of a disbursement cannot approve"), "refused as a self-approval: {err:?}");
    // A second person approves it.
    approve_disbursement(&mut grants, &d.name, &checker, &checker_subject).await;

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
