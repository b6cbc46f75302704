//! Bad input on every IntakeService RPC: INVALID_ARGUMENT with one BadRequest violation per bad
//! field (all at once), and nothing written (no row, no event, no audit record). The method list
//! comes from the service descriptor, so a new RPC without a case here fails this test.

mod common;

use std::collections::BTreeSet;

use common::{application_message, bearer, call_message, fields, fresh, member, new_applicant};
use prost::Message as _;
use tonic::{Code, Status};
use work4life_proto::{
    intake::{
        AddMemberRequest, Applicant, Application, BatchGetApplicantContactsRequest, Call, CheckEligibilityRequest, CloseCallRequest,
        Consent, CreateApplicantRequest, CreateApplicationRequest, CreateCallRequest, CreateProgramRequest, Criterion, CriterionScore,
        DecideApplicationRequest, DeclareConflictRequest, ErasePersonalDataRequest, ExportApplicantsRequest, GetApplicantRequest,
        GetApplicationRequest, GetCallRequest, GetProgramRequest, JobPlacement, ListApplicantsRequest, ListApplicationsRequest,
        ListCallsRequest, ListProgramsRequest, ListReviewsRequest, MarkDuplicateRequest, Member, MemberRole, Program, RemoveMemberRequest,
        ScoreApplicationRequest, StartReviewRequest, StartScreeningRequest, SubmitApplicationRequest, UpdateApplicantRequest,
        UpdateApplicationRequest, Window, WithdrawApplicationRequest,
    },
    types::Money,
};

fn methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(work4life_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == "work4life.intake.v1")
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == "IntakeService")
        .flat_map(|s| &s.method)
        .map(|m| m.name().to_string())
        .collect()
}

/// Whether the reported `actual` path is the `expected` one. `a|b` accepts either spelling; a
/// repeated scalar may be reported with or without its index (`call.zones` or `call.zones[0]`).
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

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() })
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn every_rpc_refuses_bad_input_by_field_and_writes_nothing() {
    let f = fresh().await;
    let admin = f.admin.clone();
    let person = f.applicant_in("oujda").await;
    let collective = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let draft = f.eligible_draft(&collective).await;
    let job_call = f.open_call(Window::JobPlacement, &["oujda"]).await;
    let individual = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let reviewed = f.eligible_draft(&individual).await;
    f.to_review(&reviewed.name).await;
    let (reviewer, reviewer_jwt) = f.token("reviewer", None, &[]);
    let review = f.assign(&admin, &reviewed.name, &reviewer).await.expect("assign");
    let others = f.applicants_in("oujda", 2).await;
    let before = f.table_counts().await;
    let mut c = f.client().await;
    let long = "x".repeat(300);

    let good_program = || Program {
        display_name: "Fund".into(),
        donor: "Donor".into(),
        envelope: Some(Money { currency_code: "EUR".into(), amount_minor: 1000 }),
        start_date: "2027-01-01".into(),
        end_date: "2027-12-31".into(),
        zones: vec!["oujda".into()],
        windows: vec![Window::JobPlacement as i32],
        ..Program::default()
    };
    let bad_applicant = |change: &dyn Fn(&mut Applicant)| {
        let mut a = new_applicant("oujda");
        change(&mut a);
        CreateApplicantRequest { applicant: Some(a), request_id: rid() }
    };
    let scores = |pairs: &[(&str, i32)]| -> Vec<CriterionScore> {
        pairs.iter().map(|(c, s)| CriterionScore { criterion: (*c).into(), score: *s, comment: String::new() }).collect()
    };

    let cases: Vec<Case> = vec![
        (
            "CreateProgram",
            "without program",
            c.create_program(bearer(CreateProgramRequest { program: None, program_id: "fund_a".into(), request_id: rid() }, &admin))
                .await
                .map(drop),
            &["program"],
        ),
        (
            "CreateProgram",
            "with every field wrong",
            c.create_program(bearer(
                CreateProgramRequest {
                    program: Some(Program {
                        display_name: String::new(),
                        donor: String::new(),
                        envelope: None,
                        start_date: "2026-02-30".into(),
                        end_date: "soon".into(),
                        zones: vec!["atlantis".into()],
                        windows: vec![],
                        ..Program::default()
                    }),
                    program_id: "Bad Code".into(),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &[
                "program_id",
                "program.display_name",
                "program.donor",
                "program.envelope",
                "program.start_date",
                "program.end_date",
                "program.zones",
                "program.windows",
            ],
        ),
        (
            "CreateProgram",
            "ending before it starts",
            c.create_program(bearer(
                CreateProgramRequest {
                    program: Some(Program { start_date: "2028-01-01".into(), end_date: "2027-01-01".into(), ..good_program() }),
                    program_id: "fund_b".into(),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["program.end_date"],
        ),
        (
            "CreateProgram",
            "with a bad request id",
            c.create_program(bearer(
                CreateProgramRequest { program: Some(good_program()), program_id: "fund_c".into(), request_id: "nope".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id"],
        ),
        (
            "GetProgram",
            "malformed name",
            c.get_program(bearer(GetProgramRequest { name: "work4life".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ListPrograms",
            "negative page size",
            c.list_programs(bearer(ListProgramsRequest { page_size: -1, page_token: String::new() }, &admin)).await.map(drop),
            &["page_size"],
        ),
        (
            "ListPrograms",
            "garbage page token",
            c.list_programs(bearer(ListProgramsRequest { page_size: 0, page_token: "garbage".into() }, &admin)).await.map(drop),
            &["page_token"],
        ),
        (
            "CreateApplicant",
            "without applicant",
            c.create_applicant(bearer(CreateApplicantRequest { applicant: None, request_id: rid() }, &admin)).await.map(drop),
            &["applicant"],
        ),
        (
            "CreateApplicant",
            "names, birth date, phone, email and number wrong",
            c.create_applicant(bearer(
                bad_applicant(&|a| {
                    a.given_name = String::new();
                    a.family_name = String::new();
                    a.birth_date = "1999-02-30".into();
                    a.phone = "12".into();
                    a.email = "nope".into();
                    a.identity_document.as_mut().expect("doc").number = String::new();
                }),
                &admin,
            ))
            .await
            .map(drop),
            &[
                "applicant.given_name",
                "applicant.family_name",
                "applicant.birth_date",
                "applicant.phone",
                "applicant.email",
                "applicant.identity_document.number",
            ],
        ),
        (
            "CreateApplicant",
            "gender, nationality, languages, zone and consent wrong",
            c.create_applicant(bearer(
                bad_applicant(&|a| {
                    a.gender = 0;
                    a.nationality = "Senegal".into();
                    a.languages = vec![];
                    a.zone = "atlantis".into();
                    a.consent = None;
                }),
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.gender", "applicant.nationality", "applicant.languages", "applicant.zone", "applicant.consent"],
        ),
        (
            "CreateApplicant",
            "born in the future, oversize name",
            c.create_applicant(bearer(
                bad_applicant(&|a| {
                    a.birth_date = "2090-01-01".into();
                    a.given_name = long.clone();
                }),
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.birth_date", "applicant.given_name"],
        ),
        (
            "CreateApplicant",
            "without document or consent purpose",
            c.create_applicant(bearer(
                bad_applicant(&|a| {
                    a.identity_document = None;
                    a.consent = Some(Consent { purpose: String::new(), text_version: "2026-01".into(), ..Consent::default() });
                }),
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.identity_document", "applicant.consent.purpose"],
        ),
        (
            "CreateApplicant",
            "with a bad request id",
            c.create_applicant(bearer(
                CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: "nope".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id"],
        ),
        (
            "GetApplicant",
            "malformed name",
            c.get_applicant(bearer(GetApplicantRequest { name: "applicants/123".into(), view: 0 }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "BatchGetApplicantContacts",
            "no names",
            c.batch_get_applicant_contacts(bearer(BatchGetApplicantContactsRequest { names: vec![] }, &admin)).await.map(drop),
            &["names"],
        ),
        (
            "BatchGetApplicantContacts",
            "101 names",
            c.batch_get_applicant_contacts(bearer(
                BatchGetApplicantContactsRequest { names: (0..101).map(|_| format!("applicants/{}", uuid::Uuid::now_v7())).collect() },
                &admin,
            ))
            .await
            .map(drop),
            &["names"],
        ),
        (
            "BatchGetApplicantContacts",
            "a malformed name",
            c.batch_get_applicant_contacts(bearer(
                BatchGetApplicantContactsRequest { names: vec![format!("applicants/{}", uuid::Uuid::now_v7()), "people/1".into()] },
                &admin,
            ))
            .await
            .map(drop),
            &["names[1]"],
        ),
        (
            "ListApplicants",
            "bad phone and negative page size",
            c.list_applicants(bearer(ListApplicantsRequest { phone: "call me".into(), page_size: -1, ..Default::default() }, &admin))
                .await
                .map(drop),
            &["phone", "page_size"],
        ),
        (
            "ListApplicants",
            "garbage page token",
            c.list_applicants(bearer(ListApplicantsRequest { page_token: "garbage".into(), ..Default::default() }, &admin)).await.map(drop),
            &["page_token"],
        ),
        (
            "UpdateApplicant",
            "without applicant",
            c.update_applicant(bearer(UpdateApplicantRequest { applicant: None, update_mask: mask(&["given_name"]) }, &admin))
                .await
                .map(drop),
            &["applicant"],
        ),
        (
            "UpdateApplicant",
            "without mask",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant { name: person.name.clone(), given_name: "Ok".into(), ..Applicant::default() }),
                    update_mask: None,
                },
                &admin,
            ))
            .await
            .map(drop),
            &["update_mask"],
        ),
        (
            "UpdateApplicant",
            "bad masked values",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant {
                        name: person.name.clone(),
                        etag: person.etag.clone(),
                        given_name: String::new(),
                        phone: "1".into(),
                        birth_date: "yesterday".into(),
                        ..Applicant::default()
                    }),
                    update_mask: mask(&["given_name", "phone", "birth_date"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.given_name", "applicant.phone", "applicant.birth_date"],
        ),
        (
            "UpdateApplicant",
            "an output-only field in the mask",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant { name: person.name.clone(), etag: person.etag.clone(), ..Applicant::default() }),
                    update_mask: mask(&["state"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["update_mask"],
        ),
        (
            "UpdateApplicant",
            "malformed name",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant { name: "applicants/x".into(), given_name: "Ok".into(), ..Applicant::default() }),
                    update_mask: mask(&["given_name"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.name|name"],
        ),
        (
            "MarkDuplicate",
            "malformed names, no reason",
            c.mark_duplicate(bearer(MarkDuplicateRequest { name: "x".into(), keep: "y".into(), reason: String::new() }, &admin))
                .await
                .map(drop),
            &["name", "keep", "reason"],
        ),
        (
            "ErasePersonalData",
            "no reason",
            c.erase_personal_data(bearer(ErasePersonalDataRequest { name: person.name.clone(), reason: String::new() }, &admin))
                .await
                .map(drop),
            &["reason"],
        ),
        (
            "ErasePersonalData",
            "malformed name",
            c.erase_personal_data(bearer(ErasePersonalDataRequest { name: "x".into(), reason: "asked".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ExportApplicants",
            "negative page size",
            c.export_applicants(bearer(ExportApplicantsRequest { page_size: -1, ..Default::default() }, &admin)).await.map(drop),
            &["page_size"],
        ),
        (
            "CreateCall",
            "without call",
            c.create_call(bearer(CreateCallRequest { call: None, request_id: rid() }, &admin)).await.map(drop),
            &["call"],
        ),
        (
            "CreateCall",
            "empty call",
            c.create_call(bearer(CreateCallRequest { call: Some(Call::default()), request_id: rid() }, &admin)).await.map(drop),
            &[
                "call.program",
                "call.display_name",
                "call.window",
                "call.zones",
                "call.open_time",
                "call.close_time",
                "call.quota",
                "call.rubric",
            ],
        ),
        (
            "CreateCall",
            "bad rubric, closing before opening",
            c.create_call(bearer(
                CreateCallRequest {
                    call: Some(Call {
                        rubric: vec![
                            Criterion { id: "viability".into(), title: "Viable?".into(), weight: 0, max_score: 10 },
                            Criterion { id: "team".into(), title: "Team?".into(), weight: 40, max_score: 101 },
                        ],
                        open_time: Some(common::timestamp_in(86_400)),
                        close_time: Some(common::timestamp_in(-86_400)),
                        ..call_message(Window::IndividualStartup, &["oujda"])
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["call.rubric[0].weight", "call.rubric[1].max_score", "call.close_time"],
        ),
        (
            "CreateCall",
            "with a bad request id",
            c.create_call(bearer(
                CreateCallRequest { call: Some(call_message(Window::IndividualStartup, &["oujda"])), request_id: "nope".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id"],
        ),
        ("GetCall", "malformed name", c.get_call(bearer(GetCallRequest { name: "calls/abc".into() }, &admin)).await.map(drop), &["name"]),
        (
            "ListCalls",
            "malformed program, negative page size",
            c.list_calls(bearer(ListCallsRequest { program: "work4life".into(), page_size: -1, ..Default::default() }, &admin))
                .await
                .map(drop),
            &["program", "page_size"],
        ),
        ("CloseCall", "malformed name", c.close_call(bearer(CloseCallRequest { name: "x".into() }, &admin)).await.map(drop), &["name"]),
        (
            "CreateApplication",
            "without application",
            c.create_application(bearer(CreateApplicationRequest { application: None, request_id: rid() }, &admin)).await.map(drop),
            &["application"],
        ),
        (
            "CreateApplication",
            "malformed call, no zone",
            c.create_application(bearer(
                CreateApplicationRequest {
                    application: Some(Application { call: "calls/x".into(), zone: String::new(), ..Application::default() }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.call", "application.zone"],
        ),
        (
            "CreateApplication",
            "bad members",
            c.create_application(bearer(
                CreateApplicationRequest {
                    application: Some(Application {
                        members: vec![
                            member(&others[0], MemberRole::Representative),
                            Member { applicant: "people/1".into(), role: MemberRole::Member as i32, display_name: String::new() },
                            Member { applicant: others[1].name.clone(), role: 0, display_name: String::new() },
                        ],
                        ..application_message(&collective, "oujda", &[])
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.members[1].applicant", "application.members[2].role"],
        ),
        (
            "CreateApplication",
            "a zone outside the call, a member twice",
            c.create_application(bearer(
                CreateApplicationRequest {
                    application: Some(Application {
                        members: vec![member(&others[0], MemberRole::Representative), member(&others[0], MemberRole::Member)],
                        ..application_message(&collective, "tanger", &[])
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.zone", "application.members[1].applicant"],
        ),
        (
            "CreateApplication",
            "malformed employer",
            c.create_application(bearer(
                CreateApplicationRequest {
                    application: Some(Application {
                        job_placement: Some(JobPlacement { employer: "acme".into(), job_title: "Cook".into(), ..JobPlacement::default() }),
                        ..application_message(&job_call, "oujda", &[&others[0]])
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.job_placement.employer"],
        ),
        (
            "CreateApplication",
            "with a bad request id",
            c.create_application(bearer(
                CreateApplicationRequest {
                    application: Some(application_message(&individual, "oujda", &[&others[0]])),
                    request_id: "nope".into(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id"],
        ),
        (
            "GetApplication",
            "malformed name",
            c.get_application(bearer(GetApplicationRequest { name: "applications/1".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ListApplications",
            "malformed call and applicant, negative page size",
            c.list_applications(bearer(
                ListApplicationsRequest { call: "x".into(), applicant: "y".into(), page_size: -1, ..Default::default() },
                &admin,
            ))
            .await
            .map(drop),
            &["call", "applicant", "page_size"],
        ),
        (
            "UpdateApplication",
            "without application",
            c.update_application(bearer(UpdateApplicationRequest { application: None, update_mask: mask(&["title"]) }, &admin))
                .await
                .map(drop),
            &["application"],
        ),
        (
            "UpdateApplication",
            "without mask",
            c.update_application(bearer(
                UpdateApplicationRequest {
                    application: Some(Application { name: draft.name.clone(), title: "T".into(), ..Application::default() }),
                    update_mask: None,
                },
                &admin,
            ))
            .await
            .map(drop),
            &["update_mask"],
        ),
        (
            "UpdateApplication",
            "a field that may not change in the mask",
            c.update_application(bearer(
                UpdateApplicationRequest {
                    application: Some(Application { name: draft.name.clone(), etag: draft.etag.clone(), ..Application::default() }),
                    update_mask: mask(&["call", "state"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["update_mask"],
        ),
        (
            "UpdateApplication",
            "malformed name",
            c.update_application(bearer(
                UpdateApplicationRequest {
                    application: Some(Application { name: "applications/x".into(), title: "T".into(), ..Application::default() }),
                    update_mask: mask(&["title"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.name|name"],
        ),
        (
            "AddMember",
            "malformed application, no member",
            c.add_member(bearer(AddMemberRequest { application: "x".into(), member: None, etag: String::new() }, &admin)).await.map(drop),
            &["application", "member"],
        ),
        (
            "AddMember",
            "malformed applicant, no role",
            c.add_member(bearer(
                AddMemberRequest {
                    application: draft.name.clone(),
                    member: Some(Member { applicant: "x".into(), role: 0, display_name: String::new() }),
                    etag: String::new(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["member.applicant", "member.role"],
        ),
        (
            "RemoveMember",
            "malformed names",
            c.remove_member(bearer(RemoveMemberRequest { application: "x".into(), applicant: "y".into(), etag: String::new() }, &admin))
                .await
                .map(drop),
            &["application", "applicant"],
        ),
        (
            "CheckEligibility",
            "malformed name",
            c.check_eligibility(bearer(CheckEligibilityRequest { name: "x".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "SubmitApplication",
            "malformed name",
            c.submit_application(bearer(SubmitApplicationRequest { name: "x".into(), etag: String::new() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "WithdrawApplication",
            "no reason",
            c.withdraw_application(bearer(
                WithdrawApplicationRequest { name: draft.name.clone(), reason: String::new(), etag: String::new() },
                &admin,
            ))
            .await
            .map(drop),
            &["reason"],
        ),
        (
            "WithdrawApplication",
            "malformed name",
            c.withdraw_application(bearer(
                WithdrawApplicationRequest { name: "x".into(), reason: "moved".into(), etag: String::new() },
                &admin,
            ))
            .await
            .map(drop),
            &["name"],
        ),
        (
            "StartScreening",
            "malformed name",
            c.start_screening(bearer(StartScreeningRequest { name: "x".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "StartReview",
            "malformed name",
            c.start_review(bearer(StartReviewRequest { name: "x".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "DecideApplication",
            "no outcome, no reason",
            c.decide_application(bearer(
                DecideApplicationRequest { name: reviewed.name.clone(), outcome: 0, reason: String::new() },
                &admin,
            ))
            .await
            .map(drop),
            &["outcome", "reason"],
        ),
        (
            "DecideApplication",
            "malformed name",
            c.decide_application(bearer(DecideApplicationRequest { name: "x".into(), outcome: 1, reason: "ok".into() }, &admin))
                .await
                .map(drop),
            &["name"],
        ),
        (
            "AssignReviewer",
            "malformed names",
            c.assign_reviewer(bearer(
                work4life_proto::intake::AssignReviewerRequest { application: "x".into(), reviewer: "bob".into() },
                &admin,
            ))
            .await
            .map(drop),
            &["application", "reviewer"],
        ),
        (
            "DeclareConflict",
            "malformed name, no reason",
            c.declare_conflict(bearer(
                DeclareConflictRequest { name: "applications/x/reviews/y".into(), reason: String::new() },
                &reviewer_jwt,
            ))
            .await
            .map(drop),
            &["name", "reason"],
        ),
        (
            "ScoreApplication",
            "malformed name",
            c.score_application(bearer(
                ScoreApplicationRequest {
                    name: "reviews/1".into(),
                    scores: scores(&[("viability", 1), ("team", 1)]),
                    comment: String::new(),
                },
                &reviewer_jwt,
            ))
            .await
            .map(drop),
            &["name"],
        ),
        (
            "ScoreApplication",
            "scores out of range",
            c.score_application(bearer(
                ScoreApplicationRequest {
                    name: review.name.clone(),
                    scores: scores(&[("viability", 11), ("team", -1)]),
                    comment: String::new(),
                },
                &reviewer_jwt,
            ))
            .await
            .map(drop),
            &["scores[0].score", "scores[1].score"],
        ),
        (
            "ListReviews",
            "malformed parent",
            c.list_reviews(bearer(ListReviewsRequest { parent: "x".into() }, &admin)).await.map(drop),
            &["parent"],
        ),
    ];

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
    assert!(all.len() >= 30, "{all:?}");
    let uncovered: Vec<&String> = all.difference(&covered).collect();
    assert!(uncovered.is_empty(), "no bad-input case for {uncovered:?}: add one to this test");
    let unknown: Vec<&String> = covered.difference(&all).collect();
    assert!(unknown.is_empty(), "cases for methods that do not exist: {unknown:?}");
    let after = f.table_counts().await;
    if after != before {
        failures.push(format!("refused requests wrote something: before {before:?}, after {after:?}"));
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn paths_match_with_or_without_an_index() {
    assert!(path_matches("call.zones", "call.zones[0]"));
    assert!(path_matches("call.zones", "call.zones"));
    assert!(!path_matches("call.zones", "call.zones_extra"));
    assert!(path_matches("applicant.name|name", "name"));
    assert!(compare(&["a", "b"], &["b".to_string(), "a".to_string()]).is_none());
    assert!(compare(&["a"], &["a".to_string(), "a".to_string()]).is_some());
}

#[tokio::test]
async fn nul_characters_and_timestamps_before_1900_are_bad_input_and_write_nothing() {
    let f = fresh().await;
    let admin = f.admin.clone();
    let person = f.applicant_in("oujda").await;
    let collective = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let draft = f.eligible_draft(&collective).await;
    let other = f.applicant_in("oujda").await;
    let before = f.table_counts().await;
    let mut c = f.client().await;
    // -9999-01-01: a valid protobuf timestamp, far outside what PostgreSQL stores.
    let ancient = prost_types::Timestamp { seconds: -377_705_116_800, nanos: 0 };

    let cases: Vec<Case> = vec![
        (
            "CreateApplicant",
            "a NUL in the given name",
            c.create_applicant(bearer(
                CreateApplicantRequest {
                    applicant: Some(Applicant { given_name: "Awa\u{0}".into(), ..new_applicant("oujda") }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.given_name"],
        ),
        (
            "CreateApplicant",
            "consent given in the year -9999",
            c.create_applicant(bearer(
                CreateApplicantRequest {
                    applicant: Some(Applicant {
                        consent: Some(Consent {
                            purpose: "program_participation".into(),
                            text_version: "2026-01".into(),
                            give_time: Some(ancient),
                            recorded_by: String::new(),
                        }),
                        ..new_applicant("oujda")
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.consent.give_time"],
        ),
        (
            "UpdateApplicant",
            "a NUL in the given name",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant {
                        name: person.name.clone(),
                        etag: person.etag.clone(),
                        given_name: "Awa\u{0}".into(),
                        ..Applicant::default()
                    }),
                    update_mask: mask(&["given_name"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["applicant.given_name"],
        ),
        (
            "CreateCall",
            "opening in the year -9999",
            c.create_call(bearer(
                CreateCallRequest {
                    call: Some(Call { open_time: Some(ancient), ..call_message(Window::IndividualStartup, &["oujda"]) }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["call.open_time"],
        ),
        // The title may be reported by name or, from the database's refusal, without one.
        (
            "CreateApplication",
            "a NUL in the title",
            c.create_application(bearer(
                CreateApplicationRequest {
                    application: Some(Application {
                        title: "Atelier\u{0}couture".into(),
                        ..application_message(&collective, "oujda", &[&other])
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.title|"],
        ),
        (
            "UpdateApplication",
            "a NUL in the title",
            c.update_application(bearer(
                UpdateApplicationRequest {
                    application: Some(Application {
                        name: draft.name.clone(),
                        etag: draft.etag.clone(),
                        title: "Atelier\u{0}couture".into(),
                        ..Application::default()
                    }),
                    update_mask: mask(&["title"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["application.title|"],
        ),
    ];

    let mut failures = Vec::new();
    for (method, case, result, expected) in &cases {
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
    let after = f.table_counts().await;
    if after != before {
        failures.push(format!("refused requests wrote something: before {before:?}, after {after:?}"));
    }
    assert!(failures.is_empty(), "{} of {} cases wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
