//! Programs and calls for applications: who creates them, that anyone signed in reads them, a
//! call's state from its dates, CloseCall, and listing calls by program, window, zone and state.

mod common;

use common::{PROGRAM, assert_refused, bearer, call_message, fields, fresh, timestamp_in};
use tonic::Code;
use work4life_proto::{
    intake::{
        CallState, CloseCallRequest, CreateCallRequest, CreateProgramRequest, GetCallRequest, GetProgramRequest, ListCallsRequest,
        ListProgramsRequest, Program, Window,
    },
    types::Money,
};

fn program(zones: &[&str], windows: &[Window]) -> Program {
    Program {
        display_name: "Migration and work fund".into(),
        donor: "Agence Française de Développement".into(),
        envelope: Some(Money { currency_code: "MAD".into(), amount_minor: 10_000_000 }),
        start_date: "2026-06-01".into(),
        end_date: "2027-12-31".into(),
        zones: zones.iter().map(|z| (*z).to_string()).collect(),
        windows: windows.iter().map(|w| *w as i32).collect(),
        partner_organizations: vec!["CEFA".into()],
        ..Program::default()
    }
}

#[tokio::test]
async fn programs_are_created_by_admins_and_read_by_anyone() {
    let f = fresh().await;
    let (_, coach) = f.token("coach", Some(f.org), &["oujda"]);
    let (_, manager) = f.manager("oujda");
    let mut c = f.client().await;
    let seeded =
        c.get_program(bearer(GetProgramRequest { name: PROGRAM.into() }, &coach)).await.expect("get").into_inner().program.expect("p");
    assert_eq!(seeded.name, PROGRAM);
    assert_eq!((seeded.display_name.as_str(), seeded.donor.as_str()), ("WORK4LIFE", "European Union"));
    assert_eq!(seeded.envelope, Some(Money { currency_code: "EUR".into(), amount_minor: 200_000_000 }));
    assert_eq!((seeded.start_date.as_str(), seeded.end_date.as_str()), ("2026-01-01", "2028-12-31"));
    assert_eq!(seeded.zones.len(), 4);
    assert_eq!(seeded.windows.len(), 6);
    assert_eq!(seeded.partner_organizations.len(), 4);

    let request_id = uuid::Uuid::new_v4().to_string();
    let request = CreateProgramRequest {
        program: Some(program(&["oujda"], &[Window::JobPlacement])),
        program_id: "migration_fund".into(),
        request_id: request_id.clone(),
    };
    assert_refused(c.create_program(bearer(request.clone(), &manager)).await, Code::PermissionDenied, "", "a manager creates a program");
    let created = c.create_program(bearer(request.clone(), &f.admin)).await.expect("create").into_inner().program.expect("p");
    assert_eq!(created.name, "programs/migration_fund");
    assert!(created.create_time.is_some());
    let replay = c.create_program(bearer(request.clone(), &f.admin)).await.expect("replay").into_inner().program.expect("p");
    assert_eq!(replay, created, "a retry returns the first answer");
    let again = CreateProgramRequest { request_id: uuid::Uuid::new_v4().to_string(), ..request };
    assert_refused(c.create_program(bearer(again, &f.admin)).await, Code::AlreadyExists, "", "the same code twice");
    assert_eq!(f.count("SELECT count(*) FROM intake.programs").await, 2);

    let got = c.get_program(bearer(GetProgramRequest { name: created.name.clone() }, &coach)).await.expect("get").into_inner().program;
    assert_eq!(got.as_ref(), Some(&created));
    let listed = c.list_programs(bearer(ListProgramsRequest::default(), &coach)).await.expect("list").into_inner();
    let names: Vec<&str> = listed.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["programs/migration_fund", PROGRAM], "by code");
    assert!(listed.next_page_token.is_empty());
    assert_refused(
        c.get_program(bearer(GetProgramRequest { name: "programs/nothing_here".into() }, &coach)).await,
        Code::NotFound,
        "",
        "a missing program",
    );

    // A call must stay within its program's zones.
    let mut outside = call_message(Window::JobPlacement, &["tanger"]);
    outside.program = created.name.clone();
    let status = assert_refused(
        c.create_call(bearer(CreateCallRequest { call: Some(outside), request_id: uuid::Uuid::new_v4().to_string() }, &f.admin)).await,
        Code::InvalidArgument,
        "",
        "a zone outside the program",
    );
    assert!(fields(&status).iter().any(|x| x.starts_with("call.zones")), "{:?}", fields(&status));
}

#[tokio::test]
async fn a_call_is_open_between_its_dates_until_closed() {
    let f = fresh().await;
    let (_, coach) = f.token("coach", Some(f.org), &["oujda"]);
    let (_, manager) = f.manager("oujda");
    let mut c = f.client().await;
    let open = f.open_call(Window::CollectiveStartup, &["oujda"]).await;
    let id = open.name.strip_prefix("calls/").expect("calls/{id}");
    uuid::Uuid::parse_str(id).expect("uuid");
    assert_eq!(open.state, CallState::Open as i32);
    assert_eq!(open.accepted_count, 0);
    assert_eq!(open.program, PROGRAM);
    assert_eq!(open.rubric, common::rubric());
    assert_eq!(open.eligibility.as_ref().expect("rules").excluded_nationalities, ["MA"]);
    let mut message = call_message(Window::IndividualStartup, &["oujda", "tanger"]);
    message.open_time = Some(timestamp_in(7 * 86_400));
    message.close_time = Some(timestamp_in(30 * 86_400));
    let scheduled = f.create_call(message).await;
    assert_eq!(scheduled.state, CallState::Scheduled as i32);
    let mut message = call_message(Window::JobPlacement, &["tanger"]);
    message.open_time = Some(timestamp_in(-30 * 86_400));
    message.close_time = Some(timestamp_in(-86_400));
    let past = f.create_call(message).await;
    assert_eq!(past.state, CallState::Closed as i32);

    // The seed's demo calls are in the lists too: look only at this test's calls.
    let mine = [open.name.clone(), scheduled.name.clone(), past.name.clone()];
    let lister = c.clone();
    let names = |request: ListCallsRequest| {
        let mut c = lister.clone();
        let coach = coach.clone();
        let mine = mine.clone();
        async move {
            c.list_calls(bearer(request, &coach))
                .await
                .expect("list")
                .into_inner()
                .calls
                .into_iter()
                .map(|x| x.name)
                .filter(|n| mine.contains(n))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(ListCallsRequest::default()).await, [past.name.clone(), scheduled.name.clone(), open.name.clone()], "newest first");
    assert_eq!(names(ListCallsRequest { state: CallState::Open as i32, ..Default::default() }).await, [open.name.as_str()]);
    assert_eq!(names(ListCallsRequest { state: CallState::Scheduled as i32, ..Default::default() }).await, [scheduled.name.as_str()]);
    assert_eq!(names(ListCallsRequest { state: CallState::Closed as i32, ..Default::default() }).await, [past.name.as_str()]);
    assert_eq!(names(ListCallsRequest { window: Window::JobPlacement as i32, ..Default::default() }).await, [past.name.as_str()]);
    assert_eq!(names(ListCallsRequest { zone: "tanger".into(), ..Default::default() }).await, [past.name.clone(), scheduled.name.clone()]);
    assert_eq!(names(ListCallsRequest { program: PROGRAM.into(), ..Default::default() }).await.len(), 3);
    let other_program = c
        .list_calls(bearer(ListCallsRequest { program: "programs/other".into(), ..Default::default() }, &coach))
        .await
        .expect("list")
        .into_inner();
    assert!(other_program.calls.is_empty(), "no call of a program that does not exist");

    let closed =
        c.close_call(bearer(CloseCallRequest { name: open.name.clone() }, &manager)).await.expect("close").into_inner().call.expect("c");
    assert_eq!(closed.state, CallState::Closed as i32);
    let got = c.get_call(bearer(GetCallRequest { name: open.name.clone() }, &coach)).await.expect("get").into_inner().call.expect("c");
    assert_eq!(got.state, CallState::Closed as i32, "closed for good");
    assert!(names(ListCallsRequest { state: CallState::Open as i32, ..Default::default() }).await.is_empty());
}

#[tokio::test]
async fn create_call_is_idempotent_on_request_id() {
    let f = fresh().await;
    let mut c = f.client().await;
    let seeded = f.count("SELECT count(*) FROM intake.calls").await;
    let request =
        CreateCallRequest { call: Some(call_message(Window::IndividualStartup, &["oujda"])), request_id: uuid::Uuid::new_v4().to_string() };
    let first = c.create_call(bearer(request.clone(), &f.admin)).await.expect("first").into_inner().call.expect("c");
    let again = c.create_call(bearer(request.clone(), &f.admin)).await.expect("replay").into_inner().call.expect("c");
    assert_eq!(first.name, again.name);
    assert_eq!(f.count("SELECT count(*) FROM intake.calls").await, seeded + 1);
    let other = CreateCallRequest { call: Some(call_message(Window::JobPlacement, &["oujda"])), request_id: request.request_id.clone() };
    let status = assert_refused(c.create_call(bearer(other, &f.admin)).await, Code::InvalidArgument, "", "reused request id");
    assert_eq!(fields(&status), ["request_id"]);
    assert_eq!(f.count("SELECT count(*) FROM intake.calls").await, seeded + 1);
}
