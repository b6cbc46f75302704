//! Applications: team sizes per window, job placements, one active application per call, the
//! eligibility report (every failing rule of every member at once), closed calls.

mod common;

use common::{
    Fixture, application_message, assert_refused, bearer, birth_date_turning, call_message, fields, fresh, id_of, member, new_applicant,
    preconditions, reason, state, timestamp_in,
};
use tonic::{Code, Status};
use work4life_proto::intake::{
    AddMemberRequest, Applicant, Application, ApplicationState, CallState, CheckEligibilityRequest, CloseCallRequest,
    CreateApplicationRequest, DocumentType, GetCallRequest, IdentityDocument, JobPlacement, MemberRole, Outcome, RemoveMemberRequest,
    SubmitApplicationRequest, UpdateApplicationRequest, Window, WithdrawApplicationRequest,
};

async fn check(f: &Fixture, jwt: &str, name: &str) -> (bool, Vec<(String, String)>) {
    let report =
        f.client().await.check_eligibility(bearer(CheckEligibilityRequest { name: name.into() }, jwt)).await.expect("check").into_inner();
    assert!(report.findings.iter().all(|x| !x.description.is_empty()), "every finding says what is wrong: {report:?}");
    (report.eligible, report.findings.into_iter().map(|x| (x.rule, x.field)).collect())
}

async fn add(f: &Fixture, jwt: &str, application: &str, who: &Applicant, role: MemberRole) -> Result<Application, Status> {
    f.client()
        .await
        .add_member(bearer(AddMemberRequest { application: application.into(), member: Some(member(who, role)), etag: String::new() }, jwt))
        .await
        .map(|r| r.into_inner().application.expect("application"))
}

async fn remove(f: &Fixture, jwt: &str, application: &str, who: &Applicant) -> Result<Application, Status> {
    f.client()
        .await
        .remove_member(bearer(
            RemoveMemberRequest { application: application.into(), applicant: who.name.clone(), etag: String::new() },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().application.expect("application"))
}

async fn update(f: &Fixture, jwt: &str, changes: Application, paths: &[&str]) -> Result<Application, Status> {
    f.client()
        .await
        .update_application(bearer(
            UpdateApplicationRequest {
                application: Some(changes),
                update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() }),
            },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().application.expect("application"))
}

async fn withdraw(f: &Fixture, jwt: &str, name: &str) -> Result<Application, Status> {
    f.client()
        .await
        .withdraw_application(bearer(
            WithdrawApplicationRequest { name: name.into(), reason: "moved away".into(), etag: String::new() },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().application.expect("application"))
}

fn has(findings: &[(String, String)], rule: &str, field: &str) -> bool {
    findings.iter().any(|(r, x)| r == rule && x == field)
}

#[tokio::test]
async fn collective_startups_take_three_to_five_members() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let people = f.applicants_in("oujda", 6).await;
    let draft = f.draft(&officer, &call, "oujda", &[&people[0], &people[1]]).await;
    assert_eq!(state(&draft), ApplicationState::Draft);
    assert_eq!(draft.window, Window::CollectiveStartup as i32, "the call's window");
    assert_eq!(draft.program, common::PROGRAM);
    assert_eq!(draft.organization, format!("organizations/{}", f.org));
    assert_eq!(draft.members.len(), 2);
    assert_eq!(draft.members[0].display_name, format!("{} {}", people[0].given_name, people[0].family_name), "members are shown by name");

    let (eligible, findings) = check(&f, &officer, &draft.name).await;
    assert!(!eligible);
    assert_eq!(findings, [("TEAM_SIZE".to_string(), "members".to_string())], "two members are too few, and nothing else is wrong");
    let refused = assert_refused(f.submit(&officer, &draft.name).await, Code::FailedPrecondition, "NOT_ELIGIBLE", "two members");
    assert_eq!(preconditions(&refused), findings, "the submission names the same findings");
    assert_eq!(state(&f.get_application(&officer, &draft.name).await.expect("get")), ApplicationState::Draft);

    let three = add(&f, &officer, &draft.name, &people[2], MemberRole::Member).await.expect("third");
    assert_eq!(three.members.len(), 3);
    assert_eq!(check(&f, &officer, &draft.name).await, (true, vec![]), "three members are enough");
    add(&f, &officer, &draft.name, &people[3], MemberRole::Member).await.expect("fourth");
    let five = add(&f, &officer, &draft.name, &people[4], MemberRole::Member).await.expect("fifth");
    assert_eq!(five.members.len(), 5);
    assert_refused(add(&f, &officer, &draft.name, &people[5], MemberRole::Member).await, Code::FailedPrecondition, "TEAM_FULL", "sixth");
    assert_eq!(f.get_application(&officer, &draft.name).await.expect("get").members.len(), 5, "the sixth was not added");

    let submitted = f.submit(&officer, &draft.name).await.expect("five members submit");
    assert_eq!(state(&submitted), ApplicationState::Submitted);
    assert!(submitted.submit_time.is_some());
}

#[tokio::test]
async fn a_call_may_set_its_own_team_sizes() {
    let f = fresh().await;
    let mut message = call_message(Window::CollectiveStartup, &["oujda"]);
    let rules = message.eligibility.as_mut().expect("rules");
    rules.min_team_size = 2;
    rules.max_team_size = 2;
    let call = f.create_call(message).await;
    let people = f.applicants_in("oujda", 3).await;
    let draft = f.draft(&f.admin, &call, "oujda", &[&people[0], &people[1]]).await;
    assert_eq!(check(&f, &f.admin, &draft.name).await, (true, vec![]), "two members fit this call");
    assert_refused(add(&f, &f.admin, &draft.name, &people[2], MemberRole::Member).await, Code::FailedPrecondition, "TEAM_FULL", "third");
}

#[tokio::test]
async fn an_individual_startup_has_exactly_one_member() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let people = f.applicants_in("oujda", 2).await;
    let draft = f.draft(&f.admin, &call, "oujda", &[&people[0]]).await;
    assert_eq!(check(&f, &f.admin, &draft.name).await, (true, vec![]));
    assert_refused(add(&f, &f.admin, &draft.name, &people[1], MemberRole::Member).await, Code::FailedPrecondition, "TEAM_FULL", "second");

    let empty = f.draft(&f.admin, &call, "oujda", &[]).await;
    let (eligible, findings) = check(&f, &f.admin, &empty.name).await;
    assert!(!eligible);
    assert!(has(&findings, "TEAM_SIZE", "members"), "no member: {findings:?}");
}

#[tokio::test]
async fn a_job_placement_needs_an_employer_and_a_job_title() {
    let f = fresh().await;
    let (_, officer) = f.officer("tanger");
    let call = f.open_call(Window::JobPlacement, &["tanger"]).await;
    let person = f.applicant_in("tanger").await;
    let mut message = application_message(&call, "tanger", &[&person]);
    message.job_placement = None;
    message.title = String::new();
    let draft = f.create_application(&officer, message).await.expect("draft");
    let (eligible, mut findings) = check(&f, &officer, &draft.name).await;
    findings.sort();
    assert!(!eligible);
    assert_eq!(
        findings,
        [
            ("JOB_PLACEMENT".to_string(), "job_placement.employer".to_string()),
            ("JOB_PLACEMENT".to_string(), "job_placement.job_title".to_string())
        ],
        "employer and job title missing; a job placement needs no project title"
    );
    let refused = assert_refused(f.submit(&officer, &draft.name).await, Code::FailedPrecondition, "NOT_ELIGIBLE", "no job");
    let mut violations = preconditions(&refused);
    violations.sort();
    assert_eq!(violations, findings);

    let employer = format!("organizations/{}", uuid::Uuid::now_v7());
    let only_employer = Application {
        name: draft.name.clone(),
        etag: draft.etag.clone(),
        job_placement: Some(JobPlacement { employer: employer.clone(), ..JobPlacement::default() }),
        ..Application::default()
    };
    let updated = update(&f, &officer, only_employer, &["job_placement"]).await.expect("employer");
    let (_, findings) = check(&f, &officer, &draft.name).await;
    assert_eq!(findings, [("JOB_PLACEMENT".to_string(), "job_placement.job_title".to_string())]);
    let complete = Application {
        name: draft.name.clone(),
        etag: updated.etag.clone(),
        job_placement: Some(JobPlacement { employer: employer.clone(), job_title: "Baker".into(), ..JobPlacement::default() }),
        ..Application::default()
    };
    update(&f, &officer, complete, &["job_placement"]).await.expect("job title");
    let submitted = f.submit(&officer, &draft.name).await.expect("submit");
    assert_eq!(submitted.job_placement.expect("job").employer, employer);
}

#[tokio::test]
async fn an_applicant_is_in_one_active_application_per_call() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let other_call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let p = f.applicants_in("oujda", 7).await;
    let first = f.draft(&officer, &call, "oujda", &[&p[0], &p[1], &p[2]]).await;
    let applications = || f.count("SELECT count(*) FROM intake.applications");
    let before = applications().await;

    // On create: p[0] is already in a draft of this call.
    let second = application_message(&call, "oujda", &[&p[3], &p[0], &p[4]]);
    assert_refused(f.create_application(&officer, second.clone()).await, Code::FailedPrecondition, "ACTIVE_APPLICATION_EXISTS", "create");
    assert_eq!(applications().await, before, "nothing created");
    // On AddMember.
    let third = f.draft(&officer, &call, "oujda", &[&p[5], &p[6]]).await;
    assert_refused(
        add(&f, &officer, &third.name, &p[0], MemberRole::Member).await,
        Code::FailedPrecondition,
        "ACTIVE_APPLICATION_EXISTS",
        "add",
    );
    // Another call is another matter.
    f.draft(&officer, &other_call, "oujda", &[&p[0]]).await;

    // A submitted application still holds its members.
    f.submit(&officer, &first.name).await.expect("submit");
    assert_refused(
        add(&f, &officer, &third.name, &p[1], MemberRole::Member).await,
        Code::FailedPrecondition,
        "ACTIVE_APPLICATION_EXISTS",
        "submitted",
    );

    // Withdrawn frees them.
    withdraw(&f, &officer, &first.name).await.expect("withdraw");
    let second = f.create_application(&officer, second).await.expect("p[0] is free after the withdrawal");
    assert!(second.members.iter().any(|m| m.applicant == p[0].name));

    // Rejected frees them too.
    f.submit(&officer, &second.name).await.expect("submit");
    f.start_screening(&officer, &second.name).await.expect("screening");
    assert_refused(
        add(&f, &officer, &third.name, &p[3], MemberRole::Member).await,
        Code::FailedPrecondition,
        "ACTIVE_APPLICATION_EXISTS",
        "screening",
    );
    f.decide(&f.admin, &second.name, Outcome::Rejected, "not viable").await.expect("reject");
    add(&f, &officer, &third.name, &p[3], MemberRole::Member).await.expect("p[3] is free after the rejection");
}

#[tokio::test]
async fn the_eligibility_report_lists_every_failing_rule_of_every_member() {
    let f = fresh().await;
    let mut message = call_message(Window::CollectiveStartup, &["oujda"]);
    message.open_time = Some(timestamp_in(-10 * 86_400));
    let rules = message.eligibility.as_mut().expect("rules");
    rules.min_age = 18;
    rules.max_age = 35;
    rules.excluded_nationalities = vec!["MA".into()];
    rules.required_documents = vec!["business_plan".into(), "cv".into()];
    rules.identity_document_required = true;
    let call = f.create_call(message).await;

    let fine = f.create_applicant(&f.admin, Applicant { birth_date: "2000-03-01".into(), ..new_applicant("oujda") }).await;
    // 18 five days ago: still 17 on the call's opening day, ten days ago.
    let too_young = f.create_applicant(&f.admin, Applicant { birth_date: birth_date_turning(18, -5), ..new_applicant("oujda") }).await;
    let moroccan = f.create_applicant(&f.admin, Applicant { nationality: "MA".into(), ..new_applicant("oujda") }).await;
    let elsewhere = f.create_applicant(&f.admin, new_applicant("rabat_sale")).await;
    let mut old_without_document = new_applicant("oujda");
    old_without_document.birth_date = "1986-01-01".into();
    old_without_document.identity_document = Some(IdentityDocument { r#type: DocumentType::None as i32, ..IdentityDocument::default() });
    let old_without_document = f.create_applicant(&f.admin, old_without_document).await;

    let mut draft = application_message(&call, "oujda", &[&fine, &too_young, &moroccan, &elsewhere, &old_without_document]);
    draft.title = String::new();
    draft.provided_documents = vec!["business_plan".into()];
    let draft = f.create_application(&f.admin, draft).await.expect("a draft may be incomplete");

    // (rule, field, whether the field must match exactly or only name the member)
    let expected: [(&str, &str, bool); 7] = [
        ("AGE", "members[1].birth_date", true),
        ("NATIONALITY", "members[2].nationality", true),
        ("ZONE", "members[3]", false),
        ("AGE", "members[4].birth_date", true),
        ("IDENTITY_DOCUMENT", "members[4]", false),
        ("REQUIRED_DOCUMENT", "provided_documents", true),
        ("COMPLETENESS", "title", true),
    ];
    let matches = |(rule, field): &(String, String), (want_rule, want_field, exact): &(&str, &str, bool)| {
        rule == want_rule && if *exact { field == want_field } else { field.starts_with(want_field) }
    };
    let (eligible, findings) = check(&f, &f.admin, &draft.name).await;
    assert!(!eligible);
    for want in &expected {
        assert!(findings.iter().any(|found| matches(found, want)), "missing finding {want:?} in {findings:?}");
    }
    for found in &findings {
        assert!(expected.iter().any(|want| matches(found, want)), "unexpected finding {found:?} (all: {findings:?})");
    }

    let before = f.events("intake.application.submitted").await.len();
    let refused = assert_refused(f.submit(&f.admin, &draft.name).await, Code::FailedPrecondition, "NOT_ELIGIBLE", "ineligible");
    let mut violations = preconditions(&refused);
    let mut sorted = findings.clone();
    violations.sort();
    sorted.sort();
    assert_eq!(violations, sorted, "the submission reports the same findings as CheckEligibility, as (type, subject)");
    assert_eq!(state(&f.get_application(&f.admin, &draft.name).await.expect("get")), ApplicationState::Draft);
    assert_eq!(f.events("intake.application.submitted").await.len(), before, "no event for a refused submission");

    // Fix everything: the report empties and the submission passes.
    for who in [&too_young, &moroccan, &elsewhere, &old_without_document] {
        remove(&f, &f.admin, &draft.name, who).await.expect("remove");
    }
    for _ in 0..2 {
        let more = f.applicant_in("oujda").await;
        add(&f, &f.admin, &draft.name, &more, MemberRole::Member).await.expect("add");
    }
    let current = f.get_application(&f.admin, &draft.name).await.expect("get");
    let fixed = Application {
        name: draft.name.clone(),
        etag: current.etag.clone(),
        title: "Coopérative de transformation".into(),
        provided_documents: vec!["business_plan".into(), "cv".into()],
        ..Application::default()
    };
    update(&f, &f.admin, fixed, &["title", "provided_documents"]).await.expect("update");
    assert_eq!(check(&f, &f.admin, &draft.name).await, (true, vec![]));
    f.submit(&f.admin, &draft.name).await.expect("submit");
}

#[tokio::test]
async fn a_missing_or_second_representative_is_refused() {
    let f = fresh().await;
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let p = f.applicants_in("oujda", 5).await;
    let draft = f.draft(&f.admin, &call, "oujda", &[&p[0], &p[1], &p[2]]).await;
    let second_rep = add(&f, &f.admin, &draft.name, &p[3], MemberRole::Representative).await;
    let status = second_rep.expect_err("a second representative is refused");
    assert!(
        status.code() == Code::InvalidArgument || (status.code() == Code::FailedPrecondition && reason(&status) == "REPRESENTATIVE_EXISTS"),
        "{status:?}"
    );
    assert_eq!(f.get_application(&f.admin, &draft.name).await.expect("get").members.len(), 3);

    remove(&f, &f.admin, &draft.name, &p[0]).await.expect("remove the representative");
    let (eligible, findings) = check(&f, &f.admin, &draft.name).await;
    assert!(!eligible);
    assert!(findings.iter().any(|(rule, field)| rule == "REPRESENTATIVE" && field.starts_with("members")), "{findings:?}");
    assert!(has(&findings, "TEAM_SIZE", "members"), "{findings:?}");
    add(&f, &f.admin, &draft.name, &p[4], MemberRole::Representative).await.expect("a new representative");
    assert_eq!(check(&f, &f.admin, &draft.name).await, (true, vec![]));
}

#[tokio::test]
async fn a_closed_or_scheduled_call_takes_no_submission() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let (_, manager) = f.manager("oujda");
    let (_, rabat_manager) = f.manager("rabat_sale");
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    assert_eq!(call.state, CallState::Open as i32);
    let draft = f.eligible_draft(&call).await;
    let mut c = f.client().await;

    assert_refused(
        c.close_call(bearer(CloseCallRequest { name: call.name.clone() }, &officer)).await,
        Code::PermissionDenied,
        "",
        "officer",
    );
    assert_refused(
        c.close_call(bearer(CloseCallRequest { name: call.name.clone() }, &rabat_manager)).await,
        Code::PermissionDenied,
        "",
        "a manager of another zone",
    );
    let closed =
        c.close_call(bearer(CloseCallRequest { name: call.name.clone() }, &manager)).await.expect("close").into_inner().call.expect("c");
    assert_eq!(closed.state, CallState::Closed as i32);
    let got = c.get_call(bearer(GetCallRequest { name: call.name.clone() }, &officer)).await.expect("get").into_inner().call.expect("c");
    assert_eq!(got.state, CallState::Closed as i32);

    assert_eq!(check(&f, &officer, &draft.name).await, (true, vec![]), "eligibility leaves the call's state aside");
    let before = f.table_counts().await;
    assert_refused(f.submit(&officer, &draft.name).await, Code::FailedPrecondition, "CALL_NOT_OPEN", "closed call");
    assert_eq!(state(&f.get_application(&officer, &draft.name).await.expect("get")), ApplicationState::Draft);
    assert_eq!(f.table_counts().await, before, "a refused submission writes nothing");

    let mut scheduled = call_message(Window::IndividualStartup, &["oujda"]);
    scheduled.open_time = Some(timestamp_in(86_400));
    let scheduled = f.create_call(scheduled).await;
    assert_eq!(scheduled.state, CallState::Scheduled as i32);
    let early = f.eligible_draft(&scheduled).await;
    assert_refused(f.submit(&officer, &early.name).await, Code::FailedPrecondition, "CALL_NOT_OPEN", "scheduled call");
}

#[tokio::test]
async fn drafts_change_by_mask_and_etag_only() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let draft = f.eligible_draft(&call).await;
    let changes = Application {
        name: draft.name.clone(),
        etag: draft.etag.clone(),
        title: "Boulangerie du quartier".into(),
        summary: "not in the mask".into(),
        ..Application::default()
    };
    let updated = update(&f, &officer, changes.clone(), &["title"]).await.expect("update");
    assert_eq!(updated.title, "Boulangerie du quartier");
    assert_eq!(updated.summary, draft.summary, "summary is not in the mask");
    assert_eq!(updated.members.len(), 3, "members untouched");
    assert_ne!(updated.etag, draft.etag);
    let stale = update(&f, &officer, Application { title: "Other".into(), ..changes }, &["title"]).await;
    assert_refused(stale, Code::Aborted, "ETAG_MISMATCH", "stale etag");
    let extra = f.applicant_in("oujda").await;
    let stale_add = f
        .client()
        .await
        .add_member(bearer(
            AddMemberRequest {
                application: draft.name.clone(),
                member: Some(member(&extra, MemberRole::Member)),
                etag: draft.etag.clone(),
            },
            &officer,
        ))
        .await;
    assert_refused(stale_add, Code::Aborted, "ETAG_MISMATCH", "AddMember with a stale etag");
    let got = f.get_application(&officer, &draft.name).await.expect("get");
    assert_eq!((got.title.as_str(), got.members.len()), ("Boulangerie du quartier", 3));

    // Every etag-guarded call refuses the old etag.
    let mut c = f.client().await;
    let stale_remove = c
        .remove_member(bearer(
            RemoveMemberRequest {
                application: draft.name.clone(),
                applicant: draft.members[2].applicant.clone(),
                etag: draft.etag.clone(),
            },
            &officer,
        ))
        .await;
    assert_refused(stale_remove, Code::Aborted, "ETAG_MISMATCH", "RemoveMember with a stale etag");
    let stale_submit = c
        .submit_application(bearer(
            work4life_proto::intake::SubmitApplicationRequest { name: draft.name.clone(), etag: draft.etag.clone() },
            &officer,
        ))
        .await;
    assert_refused(stale_submit, Code::Aborted, "ETAG_MISMATCH", "SubmitApplication with a stale etag");
    let stale_withdraw = c
        .withdraw_application(bearer(
            WithdrawApplicationRequest { name: draft.name.clone(), reason: "r".into(), etag: draft.etag.clone() },
            &officer,
        ))
        .await;
    assert_refused(stale_withdraw, Code::Aborted, "ETAG_MISMATCH", "WithdrawApplication with a stale etag");
    let unchanged = f.get_application(&officer, &draft.name).await.expect("get");
    assert_eq!((state(&unchanged), unchanged.members.len()), (ApplicationState::Draft, 3));
    let submitted = c
        .submit_application(bearer(
            work4life_proto::intake::SubmitApplicationRequest { name: draft.name.clone(), etag: unchanged.etag.clone() },
            &officer,
        ))
        .await
        .expect("the current etag passes");
    assert_eq!(state(&submitted.into_inner().application.expect("a")), ApplicationState::Submitted);
}

#[tokio::test]
async fn a_member_marked_duplicate_or_erased_is_a_finding() {
    let f = fresh().await;
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let people = f.applicants_in("oujda", 4).await;
    let draft = f.draft(&f.admin, &call, "oujda", &[&people[0], &people[1], &people[2]]).await;
    let mut c = f.client().await;
    c.mark_duplicate(bearer(
        work4life_proto::intake::MarkDuplicateRequest { name: people[1].name.clone(), keep: people[3].name.clone(), reason: "same".into() },
        &f.admin,
    ))
    .await
    .expect("mark");
    c.erase_personal_data(bearer(
        work4life_proto::intake::ErasePersonalDataRequest { name: people[2].name.clone(), reason: "asked".into() },
        &f.admin,
    ))
    .await
    .expect("erase");
    let (eligible, findings) = check(&f, &f.admin, &draft.name).await;
    assert!(!eligible);
    assert!(findings.iter().any(|(r, x)| r == "APPLICANT" && x.starts_with("members[1]")), "a duplicate record: {findings:?}");
    assert!(findings.iter().any(|(r, x)| r == "APPLICANT" && x.starts_with("members[2]")), "an erased record: {findings:?}");
    assert!(findings.iter().all(|(r, _)| r == "APPLICANT"), "{findings:?}");
    assert_refused(f.submit(&f.admin, &draft.name).await, Code::FailedPrecondition, "NOT_ELIGIBLE", "inactive members");
}

#[tokio::test]
async fn applications_are_listed_newest_first_by_call_state_zone_and_member() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda", "tanger"]).await;
    let other_call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let a = f.eligible_draft(&call).await;
    let tanger_person = f.applicant_in("tanger").await;
    let b = f.draft(&f.admin, &call, "tanger", &[&tanger_person]).await;
    let c_app = f.eligible_draft(&other_call).await;
    f.submit(&f.admin, &b.name).await.expect("submit");
    let list = |request: work4life_proto::intake::ListApplicationsRequest| {
        let f = &f;
        async move {
            f.client()
                .await
                .list_applications(bearer(request, &f.admin))
                .await
                .expect("list")
                .into_inner()
                .applications
                .into_iter()
                .map(|x| x.name)
                .collect::<Vec<_>>()
        }
    };
    use work4life_proto::intake::ListApplicationsRequest as L;
    assert_eq!(list(L::default()).await, [c_app.name.clone(), b.name.clone(), a.name.clone()], "newest first");
    assert_eq!(list(L { call: call.name.clone(), ..Default::default() }).await, [b.name.clone(), a.name.clone()]);
    assert_eq!(list(L { state: ApplicationState::Submitted as i32, ..Default::default() }).await, [b.name.as_str()]);
    assert_eq!(list(L { zone: "tanger".into(), ..Default::default() }).await, [b.name.as_str()]);
    assert_eq!(list(L { applicant: tanger_person.name.clone(), ..Default::default() }).await, [b.name.as_str()]);
    assert_eq!(list(L { applicant: a.members[0].applicant.clone(), ..Default::default() }).await, [a.name.as_str()]);
}

#[tokio::test]
async fn create_application_is_idempotent_on_request_id() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let p = f.applicants_in("oujda", 2).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let request =
        CreateApplicationRequest { application: Some(application_message(&call, "oujda", &[&p[0]])), request_id: request_id.clone() };
    let mut c = f.client().await;
    let first = c.create_application(bearer(request.clone(), &officer)).await.expect("first").into_inner().application.expect("a");
    let again = c.create_application(bearer(request, &officer)).await.expect("replay").into_inner().application.expect("a");
    assert_eq!(first.name, again.name);
    assert_eq!(f.count("SELECT count(*) FROM intake.applications").await, 1);
    let other =
        CreateApplicationRequest { application: Some(application_message(&call, "oujda", &[&p[1]])), request_id: request_id.clone() };
    let status = assert_refused(c.create_application(bearer(other, &officer)).await, Code::InvalidArgument, "", "reused id");
    assert_eq!(common::fields(&status), ["request_id"]);
    assert_eq!(f.count("SELECT count(*) FROM intake.applications").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_applications_with_one_person_keep_exactly_one() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let person = f.applicant_in("oujda").await;
    let attempts = (0..6).map(|_| {
        let f = &f;
        let message = application_message(&call, "oujda", &[&person]);
        async move { f.create_application(&f.admin, message).await }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one active application per call: {results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::FailedPrecondition, "a lost race is refused as such, not an internal error: {status:?}");
        assert_eq!(reason(status), "ACTIVE_APPLICATION_EXISTS");
    }
    assert_eq!(f.count("SELECT count(*) FROM intake.applications").await, 1);
}

#[tokio::test]
async fn one_person_listed_twice_in_two_spellings_is_bad_input_and_writes_nothing() {
    let f = fresh().await;
    let call = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let people = f.applicants_in("oujda", 2).await;
    let id = id_of(&people[0].name);
    let lower = format!("applicants/{}", id.hyphenated());
    let upper = format!("applicants/{}", id.hyphenated().to_string().to_uppercase());
    assert_ne!(lower, upper);
    let mut message = application_message(&call, "oujda", &[&people[0], &people[0], &people[1]]);
    message.members[0].applicant = lower;
    message.members[1].applicant = upper;
    let before = f.table_counts().await;
    let status = assert_refused(f.create_application(&f.admin, message).await, Code::InvalidArgument, "", "one person twice");
    assert_eq!(fields(&status), ["application.members[1].applicant"], "{status:?}");
    assert_eq!(f.table_counts().await, before, "the refusal wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_racing_close_call_lands_before_the_close_or_is_refused() {
    let f = fresh().await;
    let (_, manager) = f.manager("oujda");
    let mut submitted = 0;
    for round in 0..10 {
        let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
        let draft = f.eligible_draft(&call).await;
        let (mut closer, mut submitter) = (f.client().await, f.client().await);
        let (closed, submit) = tokio::join!(
            closer.close_call(bearer(CloseCallRequest { name: call.name.clone() }, &manager)),
            submitter.submit_application(bearer(SubmitApplicationRequest { name: draft.name.clone(), etag: String::new() }, &f.admin)),
        );
        let closed = closed.unwrap_or_else(|s| panic!("round {round}: CloseCall failed: {s:?}")).into_inner().call.expect("call");
        assert_eq!(closed.state, CallState::Closed as i32);
        let close_time = closed.close_time.expect("close time");
        match submit {
            Ok(response) => {
                submitted += 1;
                let application = response.into_inner().application.expect("application");
                let submit_time = application.submit_time.expect("submit time");
                assert!(
                    (submit_time.seconds, submit_time.nanos) < (close_time.seconds, close_time.nanos),
                    "round {round}: submitted at {submit_time:?}, not before the close at {close_time:?}"
                );
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "round {round}: a lost race is refused as such: {status:?}");
                assert_eq!(reason(&status), "CALL_NOT_OPEN", "round {round}");
                let unchanged = f.get_application(&f.admin, &draft.name).await.expect("get");
                assert_eq!(state(&unchanged), ApplicationState::Draft, "round {round}");
            }
        }
    }
    eprintln!("{submitted} of 10 submissions landed before the close");
}
