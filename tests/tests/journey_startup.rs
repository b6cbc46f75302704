//! The collective start-up journey (issue #9, first bullet), run twice: all services in one
//! process, and split into five processes talking over gRPC. An officer registers four migrants
//! in Tanger (one identified only by an asylum receipt), they apply as a collective to the open
//! call, the application is reviewed (one reviewer declares a conflict) and accepted; an award
//! with three tranches is committed on the Tanger collective line; coaching opens the engagement,
//! a session is held, the business-plan milestone is verified; the first tranche becomes payable,
//! is requested, approved by a second person, exported and confirmed paid; and each member hears
//! of every step once, in their language, by SMS.

use std::time::Duration;

use tonic::{Code, transport::Channel};
use uuid::Uuid;
use work4life_proto::{
    coaching::{
        self as co, Attendance, Coach, CompleteMilestoneRequest, CreateCoachRequest, Expertise, ListEngagementsRequest, MilestoneState,
        RecordAttendanceRequest, ScheduleSessionRequest, Session, SessionState, VerifyMilestoneRequest,
        coaching_service_client::CoachingServiceClient,
    },
    grants::{
        self as gr, Award, AwardKind, DisbursementState, GetAwardRequest, GetDisbursementRequest, ListBudgetLinesRequest,
        ListBudgetsRequest, PaymentMethod, PaymentResult, ReleaseCondition, Tranche, TrancheState,
        grants_service_client::GrantsServiceClient, release_condition::Condition,
    },
    intake::{
        Applicant, Application, ApplicationState, AssignReviewerRequest, CallState, CheckEligibilityRequest, CreateApplicantRequest,
        CreateApplicationRequest, CriterionScore, DecideApplicationRequest, DeclareConflictRequest, DocumentType, Gender, IdentityDocument,
        ListCallsRequest, Member, MemberRole, Outcome, ReviewState, ScoreApplicationRequest, StartReviewRequest, StartScreeningRequest,
        SubmitApplicationRequest, Window, intake_service_client::IntakeServiceClient,
    },
};
use work4life_testkit::{bearer, eventually, reason, rid};
use work4life_tests::{
    steps::{
        STEPS, approve_disbursement, assert_each_step_told_once, assert_steps_told_in_order, consent, create_award, digits, eur,
        export_batch, import_results, payee, payment_batch, refused_writing_nothing, request_disbursement, self_approval_is_refused,
        sms_to, step_of, wait_until_every_step_is_sent,
    },
    world::{Mode, World},
};

/// How long a step waits for events to cross services.
const CROSSING: Duration = Duration::from_secs(60);
/// How far ahead the coaching session is scheduled, in seconds.
const SESSION_LEAD: i64 = 8;
/// The milestone that releases the first tranche (services/coaching/src/plans.rs).
const BUSINESS_PLAN: &str = "business_plan_validated";
const INTAKE_TABLES: [&str; 6] = ["applicants", "applications", "application_members", "reviews", "outbox", "audit_log"];
const GRANTS_TABLES: [&str; 8] = ["awards", "tranches", "payment_batches", "disbursements", "postings", "entries", "outbox", "audit_log"];

/// A member of the collective: given name, languages (the first is the one they read), nationality, document.
struct Person {
    given: &'static str,
    languages: &'static [&'static str],
    nationality: &'static str,
    document: DocumentType,
    birth_date: &'static str,
}

const MEMBERS: [Person; 4] = [
    Person { given: "Fatima", languages: &["ar", "fr"], nationality: "SD", document: DocumentType::Passport, birth_date: "1995-02-11" },
    Person { given: "Aminata", languages: &["fr", "wo"], nationality: "SN", document: DocumentType::Passport, birth_date: "1997-07-23" },
    Person { given: "Grace", languages: &["en"], nationality: "NG", document: DocumentType::Passport, birth_date: "1993-11-05" },
    // Identified only by the asylum seeker's receipt (UNHCR, Rabat).
    Person { given: "Christelle", languages: &["fr"], nationality: "CM", document: DocumentType::AsylumReceipt, birth_date: "1999-04-30" },
];

fn applicant(p: &Person, phone: &str, family: &str) -> Applicant {
    let asylum = p.document == DocumentType::AsylumReceipt;
    Applicant {
        given_name: p.given.into(),
        family_name: family.into(),
        birth_date: p.birth_date.into(),
        gender: Gender::Female as i32,
        nationality: p.nationality.into(),
        languages: p.languages.iter().map(|l| (*l).to_string()).collect(),
        zone: "tanger".into(),
        phone: phone.into(),
        identity_document: Some(IdentityDocument {
            r#type: p.document as i32,
            number: if asylum { format!("RAB-{}", digits(8)) } else { format!("P{}", digits(8)) },
            number_hint: String::new(),
            issuing_country: if asylum { "MA".into() } else { p.nationality.into() },
        }),
        consent: Some(consent()),
        ..Applicant::default()
    }
}

fn tranche(amount_minor: i64, condition: Condition) -> Tranche {
    Tranche { amount: Some(eur(amount_minor)), condition: Some(ReleaseCondition { condition: Some(condition) }), ..Tranche::default() }
}

/// A remote session of `engagement` starting `in_seconds` from now, lasting `minutes`.
fn session_in(engagement: &str, in_seconds: i64, minutes: i64, topic: &str) -> Session {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let mut start = Session::default().start_time.unwrap_or_default();
    start.seconds = now + in_seconds;
    let mut end = start;
    end.seconds += minutes * 60;
    Session {
        engagements: vec![engagement.into()],
        room: String::new(),
        start_time: Some(start),
        end_time: Some(end),
        topic: topic.into(),
        ..Session::default()
    }
}

/// Waits until every member's phone got the SMS of `step`, in the member's first language.
async fn told(world: &World, phones: &[String], step: &str) {
    eventually(&format!("every member told of {step}"), CROSSING, || async {
        phones.iter().zip(&MEMBERS).all(|(phone, p)| sms_to(world, phone).iter().any(|t| step_of(t, p.languages[0]) == step)).then_some(())
    })
    .await;
}

async fn the_collective_startup(mode: Mode) {
    let started = std::time::Instant::now();
    let world = World::start(mode).await.expect("world");
    let org = Uuid::now_v7();
    let (_, officer) = world.token("officer", Some(org), &["tanger"]);
    let (_, manager) = world.token("program_manager", Some(org), &["tanger"]);
    let (_, admin) = world.token("admin", None, &[]);
    let intake_db = world.pool("intake").await.expect("intake pool");
    let grants_db = world.pool("grants").await.expect("grants pool");
    let notifications_db = world.pool("notifications").await.expect("notifications pool");
    let mut intake = IntakeServiceClient::new(world.channel("intake"));
    let mut grants = GrantsServiceClient::new(world.channel("grants"));
    let mut coaching: CoachingServiceClient<Channel> = CoachingServiceClient::new(world.channel("coaching"));

    // 1. The officer registers the four members in Tanger.
    let family = format!("Tanger{}", digits(5));
    let mut people: Vec<Applicant> = Vec::new();
    let mut phones = Vec::new();
    for p in &MEMBERS {
        let phone = format!("+2126{}", digits(8));
        let registered = intake
            .create_applicant(bearer(
                CreateApplicantRequest { applicant: Some(applicant(p, &phone, &family)), request_id: rid() },
                &officer,
            ))
            .await
            .unwrap_or_else(|e| panic!("{} registered: {e:?}", p.given))
            .into_inner()
            .applicant
            .expect("applicant");
        assert!(registered.name.starts_with("applicants/"), "{}", registered.name);
        assert_eq!(registered.given_name, p.given);
        assert_eq!(registered.zone, "tanger");
        assert_eq!(registered.languages, p.languages.iter().map(|l| (*l).to_string()).collect::<Vec<_>>());
        let document = registered.identity_document.as_ref().expect("identity document");
        assert_eq!(document.r#type, p.document as i32, "{}: the document type is kept", p.given);
        phones.push(phone);
        people.push(registered);
    }
    let distinct: std::collections::BTreeSet<_> = phones.iter().collect();
    assert_eq!(distinct.len(), 4, "four distinct phones");
    told(&world, &phones, STEPS[0]).await;

    // 2. They apply as a collective to the open collective start-up call.
    let calls = intake
        .list_calls(bearer(
            ListCallsRequest {
                window: Window::CollectiveStartup as i32,
                zone: "tanger".into(),
                state: CallState::Open as i32,
                ..ListCallsRequest::default()
            },
            &officer,
        ))
        .await
        .expect("list calls")
        .into_inner()
        .calls;
    assert_eq!(calls.len(), 1, "one open collective start-up call in Tanger: {calls:?}");
    let call = &calls[0];
    assert_eq!(call.window, Window::CollectiveStartup as i32);
    assert!(call.zones.iter().any(|z| z == "tanger"));
    let draft = intake
        .create_application(bearer(
            CreateApplicationRequest {
                application: Some(Application {
                    call: call.name.clone(),
                    zone: "tanger".into(),
                    title: "Atelier de couture solidaire de Tanger".into(),
                    summary: "Four women sewing school uniforms and work clothes for the neighbourhood".into(),
                    members: people
                        .iter()
                        .enumerate()
                        .map(|(i, a)| Member {
                            applicant: a.name.clone(),
                            role: if i == 0 { MemberRole::Representative as i32 } else { MemberRole::Member as i32 },
                            display_name: String::new(),
                        })
                        .collect(),
                    provided_documents: vec!["business_plan".into()],
                    ..Application::default()
                }),
                request_id: rid(),
            },
            &officer,
        ))
        .await
        .expect("the collective's application")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(draft.state, ApplicationState::Draft as i32);
    assert_eq!(draft.members.len(), 4);
    assert_eq!(draft.members.iter().filter(|m| m.role == MemberRole::Representative as i32).count(), 1, "one representative");
    assert_eq!(draft.members[0].applicant, people[0].name);
    let application = draft.name.clone();
    let report = intake
        .check_eligibility(bearer(CheckEligibilityRequest { name: application.clone() }, &officer))
        .await
        .expect("eligibility")
        .into_inner();
    assert!(report.eligible && report.findings.is_empty(), "the asylum receipt is an identity document for this call: {report:?}");
    let submitted = intake
        .submit_application(bearer(SubmitApplicationRequest { name: application.clone(), etag: String::new() }, &officer))
        .await
        .expect("submitted")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(submitted.state, ApplicationState::Submitted as i32);
    assert!(submitted.submit_time.is_some());
    told(&world, &phones, STEPS[1]).await;

    // 3. Review: the manager screens, starts the review, assigns two reviewers; one declares a
    // conflict (and then may not score), the other scores; the manager accepts.
    let screening = intake
        .start_screening(bearer(StartScreeningRequest { name: application.clone() }, &manager))
        .await
        .expect("screening")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(screening.state, ApplicationState::Screening as i32);
    let in_review = intake
        .start_review(bearer(StartReviewRequest { name: application.clone() }, &manager))
        .await
        .expect("review")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(in_review.state, ApplicationState::InReview as i32);
    let (conflicted, conflicted_jwt) = world.token("reviewer", None, &[]);
    let (scorer, scorer_jwt) = world.token("reviewer", None, &[]);
    let mut reviews = Vec::new();
    for reviewer in [&conflicted, &scorer] {
        let review = intake
            .assign_reviewer(bearer(AssignReviewerRequest { application: application.clone(), reviewer: reviewer.clone() }, &manager))
            .await
            .expect("assigned")
            .into_inner()
            .review
            .expect("review");
        assert_eq!(&review.reviewer, reviewer);
        assert_eq!(review.state, ReviewState::Assigned as i32);
        reviews.push(review.name);
    }
    let declared = intake
        .declare_conflict(bearer(
            DeclareConflictRequest { name: reviews[0].clone(), reason: "The representative is my neighbour".into() },
            &conflicted_jwt,
        ))
        .await
        .expect("conflict declared")
        .into_inner()
        .review
        .expect("review");
    assert_eq!(declared.state, ReviewState::ConflictDeclared as i32);
    assert_eq!(declared.conflict_reason, "The representative is my neighbour");
    let scores = |name: &str| ScoreApplicationRequest {
        name: name.into(),
        scores: vec![
            CriterionScore { criterion: "viability".into(), score: 8, comment: "orders already promised".into() },
            CriterionScore { criterion: "team".into(), score: 9, comment: String::new() },
            CriterionScore { criterion: "impact".into(), score: 7, comment: String::new() },
        ],
        comment: "a sound plan".into(),
    };
    let conflicted_score = intake.score_application(bearer(scores(&reviews[0]), &conflicted_jwt));
    let refused = refused_writing_nothing(
        &intake_db,
        &INTAKE_TABLES,
        "a conflicted reviewer may not score",
        "the refused score wrote nothing",
        conflicted_score,
    )
    .await;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "INVALID_STATE");
    let scored =
        intake.score_application(bearer(scores(&reviews[1]), &scorer_jwt)).await.expect("scored").into_inner().review.expect("review");
    assert_eq!(scored.state, ReviewState::Scored as i32);
    // (40*8 + 30*9 + 30*7) / 10 = 80
    assert!((scored.total - 80.0).abs() < 1e-6, "weighted total: {}", scored.total);
    let accepted = intake
        .decide_application(bearer(
            DecideApplicationRequest {
                name: application.clone(),
                outcome: Outcome::Accepted as i32,
                reason: "viable, committed team".into(),
            },
            &manager,
        ))
        .await
        .expect("accepted")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(accepted.state, ApplicationState::Decided as i32);
    let decision = accepted.decision.expect("decision");
    assert_eq!(decision.outcome, Outcome::Accepted as i32);
    assert_eq!(decision.review_count, 1, "the conflicted review is left out");
    assert!((decision.average_score - 80.0).abs() < 1e-6, "{}", decision.average_score);
    told(&world, &phones, STEPS[2]).await;

    // A coach of a Tanger office, recorded before the award so that coaching suggests them.
    let (coach_subject, coach_jwt) = world.token("coach", None, &[]);
    let coach = coaching
        .create_coach(bearer(
            CreateCoachRequest {
                coach: Some(Coach {
                    display_name: "Nadia Coach".into(),
                    office: "offices/tanger_maison_des_jeunes".into(),
                    languages: vec!["fr".into(), "ar".into(), "en".into()],
                    expertise: vec![Expertise::BusinessPlan as i32],
                    weekly_hours: 30,
                    ..Coach::default()
                }),
                account: coach_subject.clone(),
            },
            &admin,
        ))
        .await
        .expect("coach recorded")
        .into_inner()
        .coach
        .expect("coach");
    assert_eq!(coach.account, coach_subject);
    assert_eq!(coach.zone, "tanger");

    // 4. Grants learns of the decision, then the manager commits an award with three tranches on
    // the seed budget's collective start-up line of Tanger.
    let application_id = Uuid::parse_str(application.rsplit('/').next().expect("id")).expect("uuid");
    eventually("grants records the decision", CROSSING, || async {
        let accepted: Option<bool> = sqlx::query_scalar("SELECT accepted FROM decided_applications WHERE application_id = $1")
            .bind(application_id)
            .fetch_optional(&grants_db)
            .await
            .expect("read");
        accepted.filter(|a| *a)
    })
    .await;
    let budgets = grants.list_budgets(bearer(ListBudgetsRequest::default(), &manager)).await.expect("budgets").into_inner().budgets;
    let budget = budgets.iter().find(|b| b.program == "programs/work4life").expect("the WORK4LIFE budget").name.clone();
    let lines = grants
        .list_budget_lines(bearer(ListBudgetLinesRequest { parent: budget.clone(), ..ListBudgetLinesRequest::default() }, &manager))
        .await
        .expect("lines")
        .into_inner()
        .lines;
    let line = lines.iter().find(|l| l.window == "collective_startup" && l.zone == "tanger").expect("the Tanger collective line").clone();
    let committed_before = line.figures.as_ref().map(|f| f.committed.as_ref().map_or(0, |m| m.amount_minor)).unwrap_or(0);
    let amounts = [2_000_000_i64, 1_500_000, 1_000_000];
    let grant = Award {
        budget_line: line.name.clone(),
        application: application.clone(),
        kind: AwardKind::StartupGrant as i32,
        amount: Some(eur(amounts.iter().sum())),
        tranches: vec![
            tranche(amounts[0], Condition::Milestone(BUSINESS_PLAN.into())),
            tranche(amounts[1], Condition::ReleaseDate("2027-09-01".into())),
            tranche(amounts[2], Condition::ReleaseDate("2028-03-01".into())),
        ],
        payee: Some(payee(PaymentMethod::BankTransfer, "Cooperative Couture Solidaire Tanger", "011640000012345678905432")),
        ..Award::default()
    };
    let award = create_award(&mut grants, &manager, grant).await.expect("award committed");
    assert_eq!(award.tranches.len(), 3);
    assert!(award.tranches.iter().all(|t| t.state == TrancheState::Scheduled as i32), "all wait for their condition: {:?}", award.tranches);
    assert_eq!(award.zone, "tanger");
    let mut beneficiaries = award.beneficiaries.clone();
    beneficiaries.sort();
    let mut members: Vec<String> = people.iter().map(|p| p.name.clone()).collect();
    members.sort();
    assert_eq!(beneficiaries, members, "the four members are the award's beneficiaries");
    let line_after = grants
        .get_budget_line(bearer(gr::GetBudgetLineRequest { name: line.name.clone(), as_of: None }, &manager))
        .await
        .expect("line")
        .into_inner();
    let committed_after = line_after.line.and_then(|l| l.figures).and_then(|f| f.committed).map_or(0, |m| m.amount_minor);
    assert_eq!(committed_after - committed_before, 4_500_000, "the line commits the award's amount");
    told(&world, &phones, STEPS[3]).await;

    // 5. Coaching opens the engagement from grants.award.created; the coach runs a session (held:
    // scheduled shortly ahead, attendance recorded once it started) and completes and verifies the
    // milestone.
    let engagement = eventually("coaching opens the award's engagement", CROSSING, || {
        let mut coaching = coaching.clone();
        let (admin, award) = (admin.clone(), award.name.clone());
        async move {
            let listed = coaching
                .list_engagements(bearer(
                    ListEngagementsRequest {
                        zone: "tanger".into(),
                        window: "collective_startup".into(),
                        ..ListEngagementsRequest::default()
                    },
                    &admin,
                ))
                .await
                .expect("list engagements")
                .into_inner()
                .engagements;
            listed.into_iter().find(|e| e.award == award)
        }
    })
    .await;
    assert_eq!(engagement.application, application);
    assert_eq!(engagement.coach, coach.name, "the Tanger coach is suggested");
    assert_eq!(engagement.beneficiaries.len(), 4);
    for language in ["ar", "fr", "en"] {
        assert!(engagement.languages.iter().any(|l| l == language), "the team's languages reach coaching: {:?}", engagement.languages);
    }
    assert!(engagement.milestones.iter().any(|m| m.code == BUSINESS_PLAN && m.state == MilestoneState::Pending as i32));
    let mine = coaching
        .list_engagements(bearer(ListEngagementsRequest::default(), &coach_jwt))
        .await
        .expect("the coach's engagements")
        .into_inner()
        .engagements;
    assert_eq!(mine.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), [engagement.name.as_str()]);

    // Attendance is recorded once a session has started: this one starts in a few seconds (remote,
    // an hour long), so the members are told before it and it is held within the journey.
    let session = coaching
        .schedule_session(bearer(
            ScheduleSessionRequest {
                session: Some(session_in(&engagement.name, SESSION_LEAD, 60, "Business plan: costs and first orders")),
                request_id: rid(),
            },
            &coach_jwt,
        ))
        .await
        .expect("session scheduled")
        .into_inner()
        .session
        .expect("session");
    assert_eq!(session.state, SessionState::Scheduled as i32);
    assert_eq!(session.coach, coach.name);
    let attend = || {
        let mut coaching = coaching.clone();
        let (session, jwt) = (session.name.clone(), coach_jwt.clone());
        let attendance = engagement.beneficiaries.iter().map(|b| Attendance { applicant: b.clone(), present: true }).collect();
        async move {
            coaching
                .record_attendance(bearer(
                    RecordAttendanceRequest { name: session, attendance, notes: "Costed the first order of school uniforms".into() },
                    &jwt,
                ))
                .await
                .map(|r| r.into_inner().session.expect("session"))
        }
    };
    let early = attend().await.expect_err("not started yet");
    assert_eq!((early.code(), reason(&early)), (Code::FailedPrecondition, "NOT_STARTED".to_string()), "{early:?}");
    told(&world, &phones, STEPS[4]).await;
    let held = eventually("the session starts and its attendance is recorded", CROSSING, || async {
        match attend().await {
            Ok(held) => Some(held),
            Err(e) if reason(&e) == "NOT_STARTED" => None,
            Err(e) => panic!("attendance refused: {e:?}"),
        }
    })
    .await;
    assert_eq!(held.state, SessionState::Held as i32);
    assert_eq!(held.attendance.len(), 4);
    let milestone = format!("{}/milestones/{BUSINESS_PLAN}", engagement.name);
    let completed = coaching
        .complete_milestone(bearer(
            CompleteMilestoneRequest {
                name: milestone.clone(),
                evidence: vec!["documents/business-plan-couture-tanger-v2.pdf".into()],
                note: "Validated with the team".into(),
            },
            &coach_jwt,
        ))
        .await
        .expect("completed")
        .into_inner()
        .milestone
        .expect("milestone");
    assert_eq!(completed.state, MilestoneState::Completed as i32);
    let verified = coaching
        .verify_milestone(bearer(VerifyMilestoneRequest { name: milestone.clone() }, &coach_jwt))
        .await
        .expect("verified")
        .into_inner()
        .milestone
        .expect("milestone");
    assert_eq!(verified.state, MilestoneState::Verified as i32);
    assert!(verified.verify_time.is_some());
    told(&world, &phones, STEPS[5]).await;
    let hours = coaching
        .get_engagement(bearer(co::GetEngagementRequest { name: engagement.name.clone() }, &admin))
        .await
        .expect("engagement")
        .into_inner()
        .engagement
        .expect("engagement")
        .hours_used;
    assert!((hours - 1.0).abs() < 1e-6, "the held session counts: {hours}");

    // 6. The first tranche becomes payable; maker requests, checker approves, batch, export, paid.
    let reader = grants.clone();
    let get_award = || {
        let mut grants = reader.clone();
        let (manager, name) = (manager.clone(), award.name.clone());
        async move { grants.get_award(bearer(GetAwardRequest { name }, &manager)).await.expect("award").into_inner().award.expect("award") }
    };
    let first = eventually("the verified milestone makes the first tranche payable", CROSSING, || async {
        let a = get_award().await;
        (a.tranches[0].state == TrancheState::Payable as i32).then(|| a.tranches[0].clone())
    })
    .await;
    assert!(first.payable_time.is_some());
    told(&world, &phones, STEPS[6]).await;
    let now = get_award().await;
    assert_eq!(now.tranches[1].state, TrancheState::Scheduled as i32, "the dated tranches wait");
    assert_eq!(now.tranches[2].state, TrancheState::Scheduled as i32);
    let (maker_subject, maker) = world.token("finance_officer", Some(org), &["tanger"]);
    let (checker_subject, checker) = world.token("finance_checker", Some(org), &["tanger"]);
    let requested = request_disbursement(&mut grants, &first.name, &maker, &maker_subject).await;
    assert_eq!(requested.amount.as_ref().map(|m| m.amount_minor), Some(amounts[0]));
    self_approval_is_refused(&mut grants, &grants_db, &GRANTS_TABLES, &requested.name, &maker, "the refused approval wrote nothing").await;
    approve_disbursement(&mut grants, &requested.name, &checker, &checker_subject).await;
    let batch = payment_batch(&mut grants, &budget, PaymentMethod::BankTransfer, &maker).await;
    assert_eq!(batch.count, 1);
    let file = export_batch(&mut grants, &batch.name, &maker).await;
    assert!(file.contains("011640000012345678905432"), "the bank file carries the account: {file}");
    assert!(file.contains("20000.00,EUR,2000000"), "and the amount: {file}");
    assert_eq!(file.lines().filter(|l| l.contains(&requested.name) || l.contains("011640000012345678905432")).count(), 1, "{file}");
    let results = vec![PaymentResult {
        disbursement: requested.name.clone(),
        paid: true,
        external_reference: "BMCE-2026-77812".into(),
        failure_reason: String::new(),
    }];
    let imported = import_results(&mut grants, &batch.name, results, &maker).await;
    assert_eq!(imported.recorded_count, 1);
    assert_eq!(imported.payment_batch.expect("batch").paid_count, 1);
    let paid = grants
        .get_disbursement(bearer(GetDisbursementRequest { name: requested.name.clone() }, &maker))
        .await
        .expect("disbursement")
        .into_inner()
        .disbursement
        .expect("disbursement");
    assert_eq!(paid.state, DisbursementState::Paid as i32);
    assert_eq!(paid.external_reference, "BMCE-2026-77812");
    let settled = get_award().await;
    assert_eq!(settled.tranches[0].state, TrancheState::Paid as i32);
    assert_eq!(settled.disbursed.as_ref().map(|m| m.amount_minor), Some(amounts[0]));
    let figures = |line: Option<gr::BudgetLine>| line.and_then(|l| l.figures).expect("figures");
    let after = figures(
        grants
            .get_budget_line(bearer(gr::GetBudgetLineRequest { name: line.name.clone(), as_of: None }, &manager))
            .await
            .expect("line")
            .into_inner()
            .line,
    );
    let disbursed = |f: &gr::BudgetFigures| f.disbursed.as_ref().map_or(0, |m| m.amount_minor);
    assert_eq!(disbursed(&after) - disbursed(line.figures.as_ref().expect("figures")), amounts[0], "the line shows the payment");
    told(&world, &phones, STEPS[7]).await;

    // 7. Each member heard of each step once, in the first language they read.
    let recipients: Vec<String> = people.iter().map(|p| p.name.clone()).collect();
    let rows = wait_until_every_step_is_sent(&notifications_db, &recipients, CROSSING).await;
    for (person, p) in people.iter().zip(&MEMBERS) {
        assert_each_step_told_once(&rows, &person.name, p.given, p.languages[0]);
    }
    // And each phone got the eight steps' SMS once each, in order, in the member's script and words, by name.
    for (phone, p) in phones.iter().zip(&MEMBERS) {
        assert_steps_told_in_order(&sms_to(&world, phone), p.given, p.languages[0]);
    }
    eprintln!("collective start-up journey ({mode:?}) took {:?}", started.elapsed());
    world.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_collective_startup_all_in_one() {
    the_collective_startup(Mode::AllInOne).await;
}

#[tokio::test]
async fn the_collective_startup_split() {
    the_collective_startup(Mode::Split).await;
}
