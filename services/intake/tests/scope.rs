//! Who sees what: zones and organisations of staff bindings, reviewers' assignments,
//! beneficiaries' own records, and roles with no intake data. Out of scope is NOT_FOUND (as if
//! the record did not exist), never PERMISSION_DENIED; lists leave such rows out.

mod common;

use common::{
    Fixture, application_message, assert_refused, bearer, call_message, fresh, id_of, info_metadata, member, new_applicant, state,
};
use tonic::{Code, Status};
use work4life_proto::intake::{
    AddMemberRequest, Applicant, ApplicantState, Application, ApplicationState, CheckEligibilityRequest, CloseCallRequest,
    CreateApplicantRequest, CreateCallRequest, CreateProgramRequest, ErasePersonalDataRequest, ExportApplicantsRequest,
    GetApplicantRequest, GetCallRequest, GetProgramRequest, IdentityDocument, ListApplicantsRequest, ListApplicationsRequest,
    ListCallsRequest, ListProgramsRequest, ListReviewsRequest, MarkDuplicateRequest, MemberRole, Outcome, Program, RemoveMemberRequest,
    UpdateApplicantRequest, UpdateApplicationRequest, Window, WithdrawApplicationRequest,
};

async fn applicant_names(f: &Fixture, jwt: &str, request: ListApplicantsRequest) -> Vec<String> {
    f.client()
        .await
        .list_applicants(bearer(request, jwt))
        .await
        .expect("list applicants")
        .into_inner()
        .applicants
        .into_iter()
        .map(|a| a.name)
        .collect()
}

async fn application_names(f: &Fixture, jwt: &str, request: ListApplicationsRequest) -> Vec<String> {
    f.client()
        .await
        .list_applications(bearer(request, jwt))
        .await
        .expect("list applications")
        .into_inner()
        .applications
        .into_iter()
        .map(|a| a.name)
        .collect()
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() })
}

/// Every way an Oujda officer could touch a Rabat record, each expected NOT_FOUND.
async fn attempts(
    f: &Fixture,
    jwt: &str,
    person: &Applicant,
    draft: &Application,
    submitted: &Application,
    own: &Applicant,
) -> Vec<(&'static str, Result<(), Status>)> {
    let mut c = f.client().await;
    let p = person.name.clone();
    let d = draft.name.clone();
    let s = submitted.name.clone();
    vec![
        ("GetApplicant", f.get_applicant(jwt, &p).await.map(drop)),
        ("GetApplicant FULL", c.get_applicant(bearer(GetApplicantRequest { name: p.clone(), view: 2 }, jwt)).await.map(drop)),
        (
            "UpdateApplicant",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant {
                        name: p.clone(),
                        etag: person.etag.clone(),
                        given_name: "Changed".into(),
                        ..Applicant::default()
                    }),
                    update_mask: mask(&["given_name"]),
                },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "MarkDuplicate",
            c.mark_duplicate(bearer(MarkDuplicateRequest { name: p.clone(), keep: own.name.clone(), reason: "same".into() }, jwt))
                .await
                .map(drop),
        ),
        (
            "MarkDuplicate (keep)",
            c.mark_duplicate(bearer(MarkDuplicateRequest { name: own.name.clone(), keep: p.clone(), reason: "same".into() }, jwt))
                .await
                .map(drop),
        ),
        (
            "ErasePersonalData",
            c.erase_personal_data(bearer(ErasePersonalDataRequest { name: p.clone(), reason: "asked".into() }, jwt)).await.map(drop),
        ),
        ("GetApplication", f.get_application(jwt, &d).await.map(drop)),
        (
            "UpdateApplication",
            c.update_application(bearer(
                UpdateApplicationRequest {
                    application: Some(Application {
                        name: d.clone(),
                        etag: draft.etag.clone(),
                        title: "Changed".into(),
                        ..Application::default()
                    }),
                    update_mask: mask(&["title"]),
                },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "AddMember",
            c.add_member(bearer(
                AddMemberRequest { application: d.clone(), member: Some(member(own, MemberRole::Member)), etag: String::new() },
                jwt,
            ))
            .await
            .map(drop),
        ),
        (
            "RemoveMember",
            c.remove_member(bearer(RemoveMemberRequest { application: d.clone(), applicant: p.clone(), etag: String::new() }, jwt))
                .await
                .map(drop),
        ),
        ("CheckEligibility", c.check_eligibility(bearer(CheckEligibilityRequest { name: d.clone() }, jwt)).await.map(drop)),
        ("SubmitApplication", f.submit(jwt, &d).await.map(drop)),
        (
            "WithdrawApplication",
            c.withdraw_application(bearer(
                WithdrawApplicationRequest { name: d.clone(), reason: "moved".into(), etag: String::new() },
                jwt,
            ))
            .await
            .map(drop),
        ),
        ("StartScreening", f.start_screening(jwt, &s).await.map(drop)),
        ("StartReview", f.start_review(jwt, &s).await.map(drop)),
        ("DecideApplication", f.decide(jwt, &s, Outcome::Rejected, "no").await.map(drop)),
        ("AssignReviewer", f.assign(jwt, &s, &format!("accounts/{}", uuid::Uuid::now_v7())).await.map(drop)),
        ("ListReviews", c.list_reviews(bearer(ListReviewsRequest { parent: s.clone() }, jwt)).await.map(drop)),
    ]
}

#[tokio::test]
async fn an_officer_of_another_zone_cannot_read_change_or_learn_about_a_record() {
    let f = fresh().await;
    let (_, rabat) = f.officer("rabat_sale");
    let (_, oujda) = f.officer("oujda");
    let both = f.open_call(Window::IndividualStartup, &["rabat_sale", "oujda"]).await;
    let person = f.create_applicant(&rabat, new_applicant("rabat_sale")).await;
    let draft = f.draft(&rabat, &both, "rabat_sale", &[&person]).await;
    let other = f.create_applicant(&rabat, new_applicant("rabat_sale")).await;
    let rabat_call = f.open_call(Window::IndividualStartup, &["rabat_sale"]).await;
    let submitted = f.draft(&rabat, &rabat_call, "rabat_sale", &[&other]).await;
    f.submit(&rabat, &submitted.name).await.expect("submit");
    let own = f.create_applicant(&oujda, new_applicant("oujda")).await;
    let before = f.table_counts().await;

    // A record that does not exist, for comparison: the refusals must look the same.
    let ghost = format!("applicants/{}", uuid::Uuid::now_v7());
    let ghost_status = f.get_applicant(&oujda, &ghost).await.expect_err("ghost");
    assert_eq!(ghost_status.code(), Code::NotFound);

    for (what, result) in attempts(&f, &oujda, &person, &draft, &submitted, &own).await {
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
    }
    let hidden = f.get_applicant(&oujda, &person.name).await.expect_err("hidden");
    assert_eq!(
        hidden.message().replace(&person.name, "X").replace(&id_of(&person.name).to_string(), "X"),
        ghost_status.message().replace(&ghost, "X").replace(&id_of(&ghost).to_string(), "X"),
        "an out-of-scope record and a missing one are refused alike"
    );

    // Lists and searches leave the Rabat records out, however they are asked for.
    let document = {
        let full = f
            .client()
            .await
            .get_applicant(bearer(GetApplicantRequest { name: person.name.clone(), view: 2 }, &rabat))
            .await
            .expect("full")
            .into_inner()
            .applicant
            .expect("a");
        full.identity_document.expect("doc")
    };
    let before_reads = f.table_counts().await;
    for request in [
        ListApplicantsRequest::default(),
        ListApplicantsRequest { name_prefix: person.family_name.clone(), ..Default::default() },
        ListApplicantsRequest { phone: person.phone.clone(), ..Default::default() },
        ListApplicantsRequest { zone: "rabat_sale".into(), ..Default::default() },
        ListApplicantsRequest {
            identity_document: Some(IdentityDocument {
                r#type: document.r#type,
                number: document.number.clone(),
                ..IdentityDocument::default()
            }),
            ..Default::default()
        },
    ] {
        let names = applicant_names(&f, &oujda, request.clone()).await;
        assert!(!names.contains(&person.name) && !names.contains(&other.name), "{request:?} shows a Rabat record: {names:?}");
    }
    for request in [
        ListApplicationsRequest::default(),
        ListApplicationsRequest { call: both.name.clone(), ..Default::default() },
        ListApplicationsRequest { applicant: person.name.clone(), ..Default::default() },
        ListApplicationsRequest { zone: "rabat_sale".into(), ..Default::default() },
    ] {
        let names = application_names(&f, &oujda, request.clone()).await;
        assert!(names.is_empty(), "{request:?} shows Rabat applications: {names:?}");
    }
    assert_eq!(f.table_counts().await, before_reads, "searches write nothing");

    // Registering the same phone: refused without naming the Rabat record.
    let mut same_phone = new_applicant("oujda");
    same_phone.phone = person.phone.clone();
    let status = f
        .client()
        .await
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(same_phone), request_id: uuid::Uuid::new_v4().to_string() },
            &oujda,
        ))
        .await
        .expect_err("duplicate phone");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(!info_metadata(&status).contains_key("existing"), "{status:?}");

    // Naming the Rabat person as a member of an Oujda application does not reveal that they
    // are already applying to this call.
    let attempt = f.create_application(&oujda, application_message(&both, "oujda", &[&person])).await;
    let status = attempt.expect_err("an out-of-scope member");
    assert!(matches!(status.code(), Code::NotFound | Code::InvalidArgument), "{status:?}");

    // Nothing changed.
    let mut after = f.table_counts().await;
    // The FULL read by the Rabat officer above is audited; nothing else may have been written.
    let audit = after.iter_mut().find(|(t, _)| *t == "audit_log").expect("audit");
    audit.1 -= 1;
    assert_eq!(after, before, "the refused calls wrote nothing");
    let still = f.get_applicant(&rabat, &person.name).await.expect("the Rabat officer sees it");
    assert_eq!(still.given_name, person.given_name);
    assert_eq!(state(&f.get_application(&rabat, &draft.name).await.expect("get")), ApplicationState::Draft);
    assert_eq!(state(&f.get_application(&rabat, &submitted.name).await.expect("get")), ApplicationState::Submitted);
}

#[tokio::test]
async fn the_organisation_of_a_binding_limits_what_staff_see() {
    let f = fresh().await;
    let org_b = uuid::Uuid::now_v7();
    let (_, officer_a) = f.officer("oujda");
    let (_, officer_b) = f.token("officer", Some(org_b), &["oujda"]);
    let (_, rabat_a) = f.officer("rabat_sale");
    let (_, manager_a_everywhere) = f.token("program_manager", Some(f.org), &[]);
    let x = f.create_applicant(&officer_a, new_applicant("oujda")).await;
    let y = f.create_applicant(&officer_b, new_applicant("oujda")).await;
    let z = f.create_applicant(&rabat_a, new_applicant("rabat_sale")).await;
    assert_eq!(y.organization, format!("organizations/{org_b}"));
    let (self_subject, self_jwt) = f.token("beneficiary", None, &[]);
    let s = f.create_applicant(&self_jwt, new_applicant("oujda")).await;
    assert_eq!((s.organization.as_str(), s.account.as_str()), ("", self_subject.as_str()), "self-registered: no organisation, linked");

    assert_refused(f.get_applicant(&officer_b, &x.name).await, Code::NotFound, "", "another organisation's record");
    assert_refused(f.get_applicant(&officer_a, &y.name).await, Code::NotFound, "", "another organisation's record");
    f.get_applicant(&officer_a, &s.name).await.expect("a self-registered person matches on zone alone");
    f.get_applicant(&officer_b, &s.name).await.expect("a self-registered person matches on zone alone");
    let mut seen_a = applicant_names(&f, &officer_a, ListApplicantsRequest::default()).await;
    seen_a.sort();
    let mut want_a = vec![x.name.clone(), s.name.clone()];
    want_a.sort();
    assert_eq!(seen_a, want_a);
    let mut seen_manager = applicant_names(&f, &manager_a_everywhere, ListApplicantsRequest::default()).await;
    seen_manager.sort();
    let mut want_manager = vec![x.name.clone(), z.name.clone(), s.name.clone()];
    want_manager.sort();
    assert_eq!(seen_manager, want_manager, "a binding without zones covers every zone of its organisation");
    assert_eq!(applicant_names(&f, &f.admin, ListApplicantsRequest::default()).await.len(), 4, "the admin sees everyone");

    // Applications follow the same rule.
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let ax = f.draft(&officer_a, &call, "oujda", &[&x]).await;
    assert_refused(f.get_application(&officer_b, &ax.name).await, Code::NotFound, "", "another organisation's application");
    let own_application = f.draft(&self_jwt, &call, "oujda", &[&s]).await;
    assert_eq!(own_application.organization, "", "opened by the applicant: no organisation");
    f.get_application(&officer_b, &own_application.name).await.expect("matches on zone alone");
    assert_eq!(application_names(&f, &officer_b, ListApplicationsRequest::default()).await, [own_application.name.as_str()]);
}

#[tokio::test]
async fn reviewers_see_only_the_applications_assigned_to_them() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let p1 = f.eligible_draft(&call).await;
    let p2 = f.eligible_draft(&call).await;
    f.to_review(&p1.name).await;
    f.to_review(&p2.name).await;
    let (reviewer, jwt) = f.token("reviewer", None, &[]);
    f.assign(&f.admin, &p1.name, &reviewer).await.expect("assign");
    let member1 = p1.members[0].applicant.clone();
    let member2 = p2.members[0].applicant.clone();
    let mut c = f.client().await;

    f.get_application(&jwt, &p1.name).await.expect("assigned");
    assert_refused(f.get_application(&jwt, &p2.name).await, Code::NotFound, "", "not assigned");
    assert_eq!(application_names(&f, &jwt, ListApplicationsRequest::default()).await, [p1.name.as_str()]);
    let basic = f.get_applicant(&jwt, &member1).await.expect("a member of an assigned application, BASIC");
    assert!(basic.identity_document.unwrap_or_default().number.is_empty());
    assert_refused(
        c.get_applicant(bearer(GetApplicantRequest { name: member1.clone(), view: 2 }, &jwt)).await,
        Code::PermissionDenied,
        "",
        "FULL view by a reviewer",
    );
    assert_refused(f.get_applicant(&jwt, &member2).await, Code::NotFound, "", "a member of another application");
    // The registry, for a reviewer, is at most the members of the assigned applications.
    let browsed = applicant_names(&f, &jwt, ListApplicantsRequest::default()).await;
    assert!(browsed.is_empty() || browsed == [member1.as_str()], "a reviewer lists only members of assigned applications: {browsed:?}");
    let by_phone = ListApplicantsRequest { phone: f.get_applicant(&f.admin, &member2).await.expect("get").phone, ..Default::default() };
    assert!(applicant_names(&f, &jwt, by_phone).await.is_empty(), "nor finds others by phone");
    c.list_reviews(bearer(ListReviewsRequest { parent: p1.name.clone() }, &jwt)).await.expect("own application's reviews");
    assert_refused(c.list_reviews(bearer(ListReviewsRequest { parent: p2.name.clone() }, &jwt)).await, Code::NotFound, "", "other");
    assert_refused(f.decide(&jwt, &p1.name, Outcome::Accepted, "mine").await, Code::PermissionDenied, "", "a reviewer decides");
    assert_refused(f.assign(&jwt, &p1.name, &reviewer).await, Code::PermissionDenied, "", "a reviewer assigns");
    assert_refused(f.decide(&jwt, &p2.name, Outcome::Accepted, "other").await, Code::NotFound, "", "decide on an unseen application");
    let attempt = c
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: uuid::Uuid::new_v4().to_string() },
            &jwt,
        ))
        .await;
    assert_refused(attempt, Code::PermissionDenied, "", "a reviewer registers");
}

#[tokio::test]
async fn beneficiaries_see_only_their_own_record_and_applications() {
    let f = fresh().await;
    let (subject, jwt) = f.token("beneficiary", None, &[]);
    let me = f.create_applicant(&jwt, new_applicant("oujda")).await;
    assert_eq!(me.account, subject, "linked to the caller's login");
    assert_eq!(me.organization, "");
    let second = f
        .client()
        .await
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: uuid::Uuid::new_v4().to_string() },
            &jwt,
        ))
        .await;
    assert!(second.is_err(), "one active record per account: {second:?}");
    assert_eq!(f.count("SELECT count(*) FROM intake.applicants").await, 1);

    let mut c = f.client().await;
    let full = c.get_applicant(bearer(GetApplicantRequest { name: me.name.clone(), view: 2 }, &jwt)).await.expect("own FULL").into_inner();
    assert!(!full.applicant.expect("a").identity_document.expect("doc").number.is_empty(), "a person reads their own number");
    let audited = f.audit("intake.GetApplicant.full", &me.name).await;
    assert_eq!(audited.len(), 1, "their own FULL read is audited too");
    assert_eq!(audited[0].0, subject);
    // Registering a record for someone else's login is not theirs to do.
    let (_, stranger) = f.token("beneficiary", None, &[]);
    let for_other = c
        .create_applicant(bearer(
            CreateApplicantRequest {
                applicant: Some(Applicant { account: format!("accounts/{}", uuid::Uuid::now_v7()), ..new_applicant("oujda") }),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &stranger,
        ))
        .await;
    assert_refused(for_other, Code::PermissionDenied, "", "a beneficiary registers another login");
    let someone = f.applicant_in("oujda").await;
    assert_refused(f.get_applicant(&jwt, &someone.name).await, Code::NotFound, "", "someone else's record");
    assert_eq!(applicant_names(&f, &jwt, ListApplicantsRequest::default()).await, [me.name.as_str()]);

    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let mine = f.draft(&jwt, &call, "oujda", &[&me]).await;
    assert_eq!(mine.organization, "");
    let submitted = f.submit(&jwt, &mine.name).await.expect("a member submits");
    assert_eq!(state(&submitted), ApplicationState::Submitted);
    assert_refused(f.start_screening(&jwt, &mine.name).await, Code::PermissionDenied, "", "a beneficiary screens");
    let theirs = f.draft(&f.admin, &call, "oujda", &[&someone]).await;
    assert_refused(f.get_application(&jwt, &theirs.name).await, Code::NotFound, "", "another person's application");
    let collective = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let others = f.applicants_in("oujda", 2).await;
    let team = f.draft(&f.admin, &collective, "oujda", &[&others[0], &me, &others[1]]).await;
    f.get_application(&jwt, &team.name).await.expect("an application the person is a member of");
    let mut listed = application_names(&f, &jwt, ListApplicationsRequest::default()).await;
    listed.sort();
    let mut want = vec![mine.name.clone(), team.name.clone()];
    want.sort();
    assert_eq!(listed, want);
    let not_mine = f.create_application(&jwt, application_message(&collective, "oujda", &[&someone])).await;
    let status = not_mine.expect_err("an application without the caller");
    assert!(matches!(status.code(), Code::PermissionDenied | Code::NotFound), "{status:?}");

    // Their own record: they may correct it and have it erased.
    let updated = c
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant {
                    name: me.name.clone(),
                    etag: me.etag.clone(),
                    languages: vec!["en".into()],
                    ..Applicant::default()
                }),
                update_mask: mask(&["languages"]),
            },
            &jwt,
        ))
        .await
        .expect("own update")
        .into_inner()
        .applicant
        .expect("a");
    assert_eq!(updated.languages, ["en"]);
    let erased = c
        .erase_personal_data(bearer(ErasePersonalDataRequest { name: me.name.clone(), reason: "my request".into() }, &jwt))
        .await
        .expect("own erasure")
        .into_inner()
        .applicant
        .expect("a");
    assert_eq!(erased.state, ApplicantState::Erased as i32);
}

#[tokio::test]
async fn roles_without_intake_data_see_programs_and_calls_only_and_auditors_only_read() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let person = f.create_applicant(&officer, new_applicant("oujda")).await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let application = f.draft(&officer, &call, "oujda", &[&person]).await;
    let before = f.table_counts().await;
    let mut c = f.client().await;
    for role in ["coach", "finance_officer", "partner_system"] {
        let (_, jwt) = f.token(role, Some(f.org), &["oujda"]);
        assert_refused(f.get_applicant(&jwt, &person.name).await, Code::NotFound, "", role);
        assert!(applicant_names(&f, &jwt, ListApplicantsRequest::default()).await.is_empty(), "{role}");
        assert_refused(f.get_application(&jwt, &application.name).await, Code::NotFound, "", role);
        assert!(application_names(&f, &jwt, ListApplicationsRequest::default()).await.is_empty(), "{role}");
        let create = c
            .create_applicant(bearer(
                CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: uuid::Uuid::new_v4().to_string() },
                &jwt,
            ))
            .await;
        assert_refused(create, Code::PermissionDenied, "", role);
        let draft = f.create_application(&jwt, application_message(&call, "oujda", &[&person])).await;
        assert!(matches!(draft.as_ref().map_err(Status::code), Err(Code::PermissionDenied | Code::NotFound)), "{role}: {draft:?}");
        assert_refused(c.export_applicants(bearer(ExportApplicantsRequest::default(), &jwt)).await, Code::PermissionDenied, "", role);
        c.get_program(bearer(GetProgramRequest { name: common::PROGRAM.into() }, &jwt)).await.expect("any caller reads programs");
        assert!(!c.list_programs(bearer(ListProgramsRequest::default(), &jwt)).await.expect("programs").into_inner().programs.is_empty());
        c.get_call(bearer(GetCallRequest { name: call.name.clone() }, &jwt)).await.expect("any caller reads calls");
        assert!(!c.list_calls(bearer(ListCallsRequest::default(), &jwt)).await.expect("calls").into_inner().calls.is_empty());
    }
    assert_refused(c.get_program(GetProgramRequest { name: common::PROGRAM.into() }).await, Code::Unauthenticated, "", "no token");
    assert_eq!(f.table_counts().await, before, "the refused calls of roles without intake data wrote nothing");

    let (_, auditor) = f.token("auditor", None, &[]);
    f.get_applicant(&auditor, &person.name).await.expect("the auditor reads");
    assert_eq!(applicant_names(&f, &auditor, ListApplicantsRequest::default()).await, [person.name.as_str()]);
    f.get_application(&auditor, &application.name).await.expect("the auditor reads");
    let extra = f.applicant_in("oujda").await;
    let before_writes = f.table_counts().await;
    let writes: Vec<(&str, Result<(), Status>)> = vec![
        (
            "CreateApplicant",
            c.create_applicant(bearer(
                CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: uuid::Uuid::new_v4().to_string() },
                &auditor,
            ))
            .await
            .map(drop),
        ),
        (
            "UpdateApplicant",
            c.update_applicant(bearer(
                UpdateApplicantRequest {
                    applicant: Some(Applicant {
                        name: person.name.clone(),
                        etag: person.etag.clone(),
                        given_name: "X".into(),
                        ..Applicant::default()
                    }),
                    update_mask: mask(&["given_name"]),
                },
                &auditor,
            ))
            .await
            .map(drop),
        ),
        (
            "ErasePersonalData",
            c.erase_personal_data(bearer(ErasePersonalDataRequest { name: person.name.clone(), reason: "x".into() }, &auditor))
                .await
                .map(drop),
        ),
        ("CreateApplication", f.create_application(&auditor, application_message(&call, "oujda", &[&extra])).await.map(drop)),
        ("SubmitApplication", f.submit(&auditor, &application.name).await.map(drop)),
        ("CloseCall", c.close_call(bearer(CloseCallRequest { name: call.name.clone() }, &auditor)).await.map(drop)),
        (
            "CreateCall",
            c.create_call(bearer(
                CreateCallRequest {
                    call: Some(call_message(Window::JobPlacement, &["oujda"])),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &auditor,
            ))
            .await
            .map(drop),
        ),
        (
            "CreateProgram",
            c.create_program(bearer(
                CreateProgramRequest {
                    program: Some(Program::default()),
                    program_id: "audit_program".into(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &auditor,
            ))
            .await
            .map(drop),
        ),
    ];
    for (what, result) in writes {
        let status = result.expect_err(what);
        // CreateProgram with an empty program may be refused as bad input first; any other
        // write must be refused as not allowed.
        if what == "CreateProgram" {
            assert!(matches!(status.code(), Code::PermissionDenied | Code::InvalidArgument), "{what}: {status:?}");
        } else {
            assert_eq!(status.code(), Code::PermissionDenied, "auditor {what}: {status:?}");
        }
    }
    assert_eq!(f.table_counts().await, before_writes, "the auditor's refused writes left nothing");
}

#[tokio::test]
async fn staff_work_only_in_their_zones() {
    let f = fresh().await;
    let (_, oujda) = f.officer("oujda");
    let (_, oujda_manager) = f.manager("oujda");
    let attempt = f
        .client()
        .await
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(new_applicant("tanger")), request_id: uuid::Uuid::new_v4().to_string() },
            &oujda,
        ))
        .await;
    assert_refused(attempt, Code::PermissionDenied, "", "registering outside the officer's zones");
    assert_eq!(f.count("SELECT count(*) FROM intake.applicants").await, 0);
    let tanger_call = f.open_call(Window::IndividualStartup, &["tanger"]).await;
    let tanger_person = f.applicant_in("tanger").await;
    let attempt = f.create_application(&oujda, application_message(&tanger_call, "tanger", &[&tanger_person])).await;
    assert!(matches!(attempt.as_ref().map_err(Status::code), Err(Code::PermissionDenied | Code::NotFound)), "{attempt:?}");
    assert_eq!(f.count("SELECT count(*) FROM intake.applications").await, 0);

    let outside = f
        .client()
        .await
        .create_call(bearer(
            CreateCallRequest {
                call: Some(call_message(Window::IndividualStartup, &["tanger"])),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &oujda_manager,
        ))
        .await;
    assert_refused(outside, Code::PermissionDenied, "", "a call outside the manager's zones");
    let straddling = f
        .client()
        .await
        .create_call(bearer(
            CreateCallRequest {
                call: Some(call_message(Window::IndividualStartup, &["oujda", "tanger"])),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &oujda_manager,
        ))
        .await;
    assert_refused(straddling, Code::PermissionDenied, "", "a call partly outside the manager's zones");
    f.client()
        .await
        .create_call(bearer(
            CreateCallRequest {
                call: Some(call_message(Window::IndividualStartup, &["oujda"])),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &oujda_manager,
        ))
        .await
        .expect("a call in the manager's zone");
    let by_officer = f
        .client()
        .await
        .create_call(bearer(
            CreateCallRequest {
                call: Some(call_message(Window::IndividualStartup, &["oujda"])),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &oujda,
        ))
        .await;
    assert_refused(by_officer, Code::PermissionDenied, "", "an officer creates a call");
}

#[tokio::test]
async fn an_officer_cannot_move_a_desk_record_to_a_zone_they_do_not_cover() {
    let f = fresh().await;
    let (_, oujda) = f.officer("oujda");
    let person = f.create_applicant(&oujda, new_applicant("oujda")).await;
    assert_eq!((person.account.as_str(), person.zone.as_str()), ("", "oujda"), "registered at the desk: no account");
    let before = f.table_counts().await;
    let moved = f
        .client()
        .await
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant {
                    name: person.name.clone(),
                    etag: person.etag.clone(),
                    zone: "tanger".into(),
                    ..Applicant::default()
                }),
                update_mask: mask(&["zone"]),
            },
            &oujda,
        ))
        .await;
    assert_refused(moved, Code::PermissionDenied, "", "an Oujda officer moves a desk record to Tanger");
    assert_eq!(f.table_counts().await, before, "the refusal wrote nothing");
    let kept = f.get_applicant(&oujda, &person.name).await.expect("still in the officer's zone");
    assert_eq!((kept.zone.as_str(), kept.etag.as_str()), ("oujda", person.etag.as_str()), "the record keeps its zone");
}

#[tokio::test]
async fn an_officer_cannot_move_a_beneficiarys_draft_to_a_zone_they_do_not_cover() {
    let f = fresh().await;
    let (_, oujda) = f.officer("oujda");
    let (_, jwt) = f.token("beneficiary", None, &[]);
    let me = f.create_applicant(&jwt, new_applicant("oujda")).await;
    let call = f.open_call(Window::IndividualStartup, &["oujda", "tanger"]).await;
    let draft = f.draft(&jwt, &call, "oujda", &[&me]).await;
    assert_eq!(draft.organization, "", "opened by the beneficiary: no organisation");
    let to_tanger = || UpdateApplicationRequest {
        application: Some(Application {
            name: draft.name.clone(),
            etag: draft.etag.clone(),
            zone: "tanger".into(),
            ..Application::default()
        }),
        update_mask: mask(&["zone"]),
    };
    let mut c = f.client().await;

    let before = f.table_counts().await;
    assert_refused(
        c.update_application(bearer(to_tanger(), &oujda)).await,
        Code::PermissionDenied,
        "",
        "an Oujda officer moves the draft to Tanger",
    );
    assert_eq!(f.table_counts().await, before, "the refusal wrote nothing");
    let unchanged = f.get_application(&oujda, &draft.name).await.expect("still in the officer's zone");
    assert_eq!((unchanged.zone.as_str(), unchanged.etag.as_str()), ("oujda", draft.etag.as_str()));

    let moved = c
        .update_application(bearer(to_tanger(), &jwt))
        .await
        .expect("the member moves their own draft")
        .into_inner()
        .application
        .expect("a");
    assert_eq!(moved.zone, "tanger");
    assert_refused(f.get_application(&oujda, &draft.name).await, Code::NotFound, "", "now outside the Oujda officer's zones");
}

#[tokio::test]
async fn reviewers_do_not_search_the_registry_but_read_their_applications_members() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let assigned = f.eligible_draft(&call).await;
    f.to_review(&assigned.name).await;
    let (reviewer, jwt) = f.token("reviewer", None, &[]);
    f.assign(&f.admin, &assigned.name, &reviewer).await.expect("assign");
    let member = f.get_applicant(&f.admin, &assigned.members[0].applicant).await.expect("the member");

    for request in [
        ListApplicantsRequest::default(),
        ListApplicantsRequest { name_prefix: member.family_name.clone(), ..Default::default() },
        ListApplicantsRequest { phone: member.phone.clone(), ..Default::default() },
        ListApplicantsRequest { zone: "oujda".into(), ..Default::default() },
    ] {
        let names = applicant_names(&f, &jwt, request.clone()).await;
        assert!(names.is_empty(), "{request:?} lists {names:?} to a reviewer");
    }
    let basic = f.get_applicant(&jwt, &member.name).await.expect("a member of an assigned application, BASIC");
    assert_eq!((basic.name.as_str(), basic.given_name.as_str()), (member.name.as_str(), member.given_name.as_str()));
}
