//! The work bursary journey (issue #9): a migrant in Oujda is placed with an employer of
//! identity's directory through the seeded job-placement call, reviewed and accepted; grants
//! makes a work bursary (one tranche per month) that started three months ago; the employer's
//! system and an officer confirm two of the finished months, which are requested, approved by a
//! second person, batched, exported and confirmed paid; the month nobody confirmed stays held
//! and cannot be paid. Run all-in-one and split.

use std::time::Duration;

use tonic::{Code, transport::Channel};
use work4life_proto::{
    grants::{
        Award, AwardKind, Bursary, ConfirmBursaryMonthRequest, GetAwardRequest, PaymentMethod, PaymentResult, ReleaseDueTranchesRequest,
        RequestDisbursementRequest, Tranche, TrancheState, grants_service_client::GrantsServiceClient, release_condition::Condition,
    },
    identity::{CreateOrganizationRequest, Organization, OrganizationKind, identity_service_client::IdentityServiceClient},
    intake::{
        Applicant, Application, CreateApplicantRequest, CreateApplicationRequest, DocumentType, Gender, IdentityDocument, JobPlacement,
        Member, MemberRole, Window, intake_service_client::IntakeServiceClient,
    },
    types::Money,
};
use work4life_testkit::{bearer, eventually, preconditions, reason, rid};
use work4life_tests::{
    steps::{
        GRANTS_TABLES, Verdict, approve_disbursement, budget_line, consent, create_award, digits, eur, export_batch, import_results, payee,
        payment_batch, refused_writing_nothing, register, request_disbursement, seeded_call, submit_review_and_accept,
        wait_until_grants_has_the_decision,
    },
    world::{Mode, World},
};

/// How long the journey waits for an event to cross services.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// The monthly bursary, in euro cents.
const MONTHLY: i64 = 30_000;

/// The first day of the month `offset` months from now (Africa/Casablanca), as grants counts.
async fn month_start(pool: &sqlx::PgPool, offset: i32) -> String {
    sqlx::query_scalar(
        "SELECT (date_trunc('month', (now() AT TIME ZONE 'Africa/Casablanca')::date) + make_interval(months => $1::int))::date::text",
    )
    .bind(offset)
    .fetch_one(pool)
    .await
    .expect("month")
}

fn states(award: &Award) -> Vec<TrancheState> {
    award.tranches.iter().map(|t| TrancheState::try_from(t.state).expect("state")).collect()
}

async fn award_now(grants: &mut GrantsServiceClient<Channel>, jwt: &str, name: &str) -> Award {
    grants.get_award(bearer(GetAwardRequest { name: name.into() }, jwt)).await.expect("award").into_inner().award.expect("award")
}

async fn confirm(grants: &mut GrantsServiceClient<Channel>, jwt: &str, tranche: &Tranche) -> Tranche {
    grants
        .confirm_bursary_month(bearer(ConfirmBursaryMonthRequest { tranche: tranche.name.clone(), request_id: rid() }, jwt))
        .await
        .expect("month confirmed")
        .into_inner()
        .tranche
        .expect("tranche")
}

async fn bursary(mode: Mode) {
    let started = std::time::Instant::now();
    let world = World::start(mode).await.expect("world");
    let grants_db = world.pool("grants").await.expect("grants pool");
    let mut identity = IdentityServiceClient::new(world.channel("identity"));
    let mut intake = IntakeServiceClient::new(world.channel("intake"));
    let mut grants = GrantsServiceClient::new(world.channel("grants"));
    let (_, admin) = world.token("admin", None, &[]);
    let partner = uuid::Uuid::now_v7();
    let (officer_subject, officer) = world.token("officer", Some(partner), &["oujda"]);
    let (_, manager) = world.token("program_manager", Some(partner), &["oujda"]);

    // The employer is in identity's directory.
    let employer = identity
        .create_organization(bearer(
            CreateOrganizationRequest {
                organization: Some(Organization {
                    display_name: format!("Boulangerie Al Amal {}", digits(4)),
                    kind: OrganizationKind::Employer as i32,
                    zones: vec!["oujda".into()],
                    ..Organization::default()
                }),
                request_id: rid(),
            },
            &admin,
        ))
        .await
        .expect("employer created")
        .into_inner()
        .organization
        .expect("organization");
    assert!(employer.name.starts_with("organizations/"), "{employer:?}");
    let employer_id: uuid::Uuid = employer.name.trim_start_matches("organizations/").parse().expect("employer id");

    // An officer registers the migrant in Oujda; she applies to the seeded job-placement call.
    let migrant = register(
        &mut intake,
        &officer,
        Applicant {
            given_name: "Grace".into(),
            family_name: format!("Bursary{}", digits(6)),
            birth_date: "1997-07-02".into(),
            gender: Gender::Female as i32,
            nationality: "CM".into(),
            languages: vec!["fr".into()],
            zone: "oujda".into(),
            phone: format!("+2126{}", digits(8)),
            identity_document: Some(IdentityDocument {
                r#type: DocumentType::AsylumReceipt as i32,
                number: format!("R{}", digits(8)),
                number_hint: String::new(),
                issuing_country: "MA".into(),
            }),
            consent: Some(consent()),
            ..Applicant::default()
        },
    )
    .await;
    let call = seeded_call(&mut intake, &manager, Window::JobPlacement).await;
    let placement = intake
        .create_application(bearer(
            CreateApplicationRequest {
                application: Some(Application {
                    call: call.name.clone(),
                    zone: "oujda".into(),
                    title: "Aide-boulangère".into(),
                    provided_documents: vec!["cv".into()],
                    members: vec![Member {
                        applicant: migrant.name.clone(),
                        role: MemberRole::Representative as i32,
                        display_name: String::new(),
                    }],
                    job_placement: Some(JobPlacement {
                        employer: employer.name.clone(),
                        job_title: "Baker's assistant".into(),
                        contract_type: "CDD".into(),
                        start_date: month_start(&grants_db, -3).await,
                        monthly_salary: Some(Money { currency_code: "MAD".into(), amount_minor: 350_000 }),
                    }),
                    ..Application::default()
                }),
                request_id: rid(),
            },
            &officer,
        ))
        .await
        .expect("placement drafted")
        .into_inner()
        .application
        .expect("application");
    let application = placement.name.clone();
    let verdict = Verdict { score: 7, criterion_comment: "motivated", comment: "a good match", reason: "placed" };
    submit_review_and_accept(&world, &mut intake, &officer, &manager, &application, &verdict).await;
    wait_until_grants_has_the_decision(&grants_db, &application, "grants records the placement", EVENT_WAIT).await;

    // A bursary of four months that began three months ago: the three finished months are held
    // at once (nobody confirmed them yet), the current one waits for its end.
    let (budget, line) = budget_line(&grants_db, "work_bursaries").await;
    let mut months = Vec::new();
    for offset in -3..1 {
        months.push(month_start(&grants_db, offset).await);
    }
    let bursary = Award {
        budget_line: line.clone(),
        application: application.clone(),
        kind: AwardKind::WorkBursary as i32,
        amount: Some(eur(MONTHLY * 4)),
        bursary: Some(Bursary {
            monthly_amount: Some(eur(MONTHLY)),
            months: 4,
            employer: employer.name.clone(),
            start_date: months[0].clone(),
        }),
        payee: Some(payee(PaymentMethod::MobileMoney, "Grace", "+212612345678")),
        ..Award::default()
    };
    let award = create_award(&mut grants, &manager, bursary).await.expect("bursary awarded");
    assert_eq!(award.zone, "oujda");
    assert_eq!(award.tranches.len(), 4);
    for (t, month) in award.tranches.iter().zip(&months) {
        assert_eq!(t.amount, Some(eur(MONTHLY)));
        assert_eq!(t.condition.as_ref().and_then(|c| c.condition.clone()), Some(Condition::BursaryMonth(month.clone())), "{t:?}");
    }
    use TrancheState::{Held, InPayment, Paid, Payable, Scheduled};
    assert_eq!(states(&award), vec![Held, Held, Held, Scheduled], "finished months unconfirmed are held");

    // The employer's HR system confirms the first month, an Oujda officer the second; the third
    // stays unconfirmed.
    let (system_subject, system) = world.token("partner_system", Some(employer_id), &[]);
    let first = confirm(&mut grants, &system, &award.tranches[0]).await;
    assert_eq!((first.state, first.confirmed_by.as_str()), (Payable as i32, system_subject.as_str()));
    let second = confirm(&mut grants, &officer, &award.tranches[1]).await;
    assert_eq!((second.state, second.confirmed_by.as_str()), (Payable as i32, officer_subject.as_str()));

    // The release job finds nothing more: the third month is held for its missing confirmation.
    let (maker_subject, maker) = world.token("finance_officer", Some(partner), &["oujda"]);
    let (checker_subject, checker) = world.token("finance_checker", Some(partner), &["oujda"]);
    let released = grants.release_due_tranches(bearer(ReleaseDueTranchesRequest {}, &maker)).await.expect("release").into_inner();
    assert_eq!(released.payable_count, 0, "{released:?}");
    assert_eq!(states(&award_now(&mut grants, &admin, &award.name).await), vec![Payable, Payable, Held, Scheduled]);
    let unconfirmed = grants
        .request_disbursement(bearer(RequestDisbursementRequest { tranche: award.tranches[2].name.clone(), request_id: rid() }, &maker));
    let err = refused_writing_nothing(
        &grants_db,
        &GRANTS_TABLES,
        "an unconfirmed month is not paid",
        "a refused request writes nothing",
        unconfirmed,
    )
    .await;
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "TRANCHE_NOT_PAYABLE", "{err:?}");
    assert_eq!(preconditions(&err).first().map(|p| p.0.clone()), Some(award.tranches[2].name.clone()), "{err:?}");

    // The two confirmed months are paid: requested, approved by a second person, batched,
    // exported and confirmed paid by the bank connector's results.
    let mut disbursements = Vec::new();
    for t in &award.tranches[..2] {
        let d = request_disbursement(&mut grants, &t.name, &maker, &maker_subject).await;
        let approved = approve_disbursement(&mut grants, &d.name, &checker, &checker_subject).await;
        disbursements.push(approved.name);
    }
    assert_eq!(states(&award_now(&mut grants, &admin, &award.name).await), vec![InPayment, InPayment, Held, Scheduled]);
    let batch = payment_batch(&mut grants, &format!("budgets/{budget}"), PaymentMethod::MobileMoney, &maker).await;
    assert_eq!(batch.count, 2);
    assert_eq!(batch.total, Some(eur(2 * MONTHLY)));
    let file = export_batch(&mut grants, &batch.name, &maker).await;
    assert!(file.contains("+212612345678"), "the file carries the wallet: {file}");
    let results = disbursements
        .iter()
        .enumerate()
        .map(|(i, d)| PaymentResult {
            disbursement: d.clone(),
            paid: true,
            external_reference: format!("MM-REF-{i}"),
            failure_reason: String::new(),
        })
        .collect();
    let imported = import_results(&mut grants, &batch.name, results, &maker).await;
    assert_eq!(imported.recorded_count, 2);
    assert_eq!(imported.payment_batch.expect("batch").paid_count, 2);

    // Two months paid; the unconfirmed month is still held, the current one scheduled.
    let a = award_now(&mut grants, &admin, &award.name).await;
    assert_eq!(states(&a), vec![Paid, Paid, Held, Scheduled]);
    assert_eq!(a.disbursed, Some(eur(2 * MONTHLY)));

    // Grace hears of each step once, by SMS: registered, applied, accepted, the bursary, two
    // payable months and two payments — nothing for the held month.
    let phone = migrant.phone.clone();
    let to_her = |world: &World| -> Vec<String> {
        world
            .sms
            .accepted()
            .iter()
            .filter(|r| r.body["to"] == phone.as_str())
            .map(|r| r.body["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    eventually("Grace's eight messages", EVENT_WAIT, || async { (to_her(&world).len() >= 8).then_some(()) }).await;
    // A later registration is the marker: once its message is in, nothing more came for Grace.
    let marker = format!("+2126{}", digits(8));
    intake
        .create_applicant(bearer(
            CreateApplicantRequest {
                applicant: Some(Applicant {
                    given_name: "Marker".into(),
                    family_name: format!("Bursary{}", digits(6)),
                    birth_date: "1990-01-01".into(),
                    gender: Gender::Male as i32,
                    nationality: "SN".into(),
                    languages: vec!["fr".into()],
                    zone: "oujda".into(),
                    phone: marker.clone(),
                    identity_document: Some(IdentityDocument { r#type: DocumentType::None as i32, ..IdentityDocument::default() }),
                    consent: Some(consent()),
                    ..Applicant::default()
                }),
                request_id: rid(),
            },
            &officer,
        ))
        .await
        .expect("marker registered");
    eventually("the marker's message", EVENT_WAIT, || async {
        world.sms.accepted().iter().any(|r| r.body["to"] == marker.as_str()).then_some(())
    })
    .await;
    let texts = to_her(&world);
    assert_eq!(texts.len(), 8, "each step once: {texts:#?}");
    assert!(texts.iter().all(|t| t.contains("Grace") && t.contains("WORK4LIFE")), "addressed to her: {texts:#?}");
    let once = |needle: &str| texts.iter().filter(|t| t.contains(needle)).count() == 1;
    for needle in ["inscription", "déposée", "acceptée", "1200.00 EUR", "tranche 1 ", "tranche 2 ", "MM-REF-0", "MM-REF-1"] {
        assert!(once(needle), "one message with {needle:?}, in French: {texts:#?}");
    }
    assert!(!texts.iter().any(|t| t.contains("tranche 3")), "nothing for the held month: {texts:#?}");

    world.stop().await.expect("clean stop");
    eprintln!("bursary journey ({mode:?}): {:?}", started.elapsed());
}

#[tokio::test]
async fn a_work_bursary_all_in_one() {
    bursary(Mode::AllInOne).await;
}

#[tokio::test]
async fn a_work_bursary_split() {
    bursary(Mode::Split).await;
}
