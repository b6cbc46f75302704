//! Paging (AIP-158) over data that changes between pages: keyset tokens never repeat a row nor
//! skip one that existed when paging started; tokens are bound to the filters they were made
//! for; page sizes default to 50 and are capped at 500.

mod common;

use std::collections::HashSet;

use common::{Fixture, assert_refused, bearer, fields, fresh, new_applicant};
use futures::StreamExt as _;
use tonic::Code;
use work4life_proto::{
    intake::{
        Applicant, CreateProgramRequest, ListApplicantsRequest, ListApplicationsRequest, ListCallsRequest, ListProgramsRequest, Program,
        Window,
    },
    types::Money,
};

/// Pages through a list with `fetch`, calling `between` after every page; returns every name
/// seen, in order. Gives up after 50 pages.
async fn page_all<F, Fut, B, BFut>(mut fetch: F, mut between: B) -> Vec<String>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = (Vec<String>, String)>,
    B: FnMut(usize) -> BFut,
    BFut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut token = String::new();
    for page in 0..50 {
        let (names, next) = fetch(token).await;
        seen.extend(names);
        if next.is_empty() {
            return seen;
        }
        token = next;
        between(page).await;
    }
    panic!("more than 50 pages: the token never ends");
}

fn assert_complete(seen: &[String], originals: &[String], what: &str) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "{what}: a row came twice: {seen:?}");
    for name in originals {
        assert!(unique.contains(name), "{what}: {name} existed before paging and was skipped");
    }
}

async fn applicants_page(f: &Fixture, request: ListApplicantsRequest) -> (Vec<String>, String) {
    let response = f.client().await.list_applicants(bearer(request, &f.admin)).await.expect("page").into_inner();
    (response.applicants.into_iter().map(|a| a.name).collect(), response.next_page_token)
}

#[tokio::test]
async fn applicants_newest_first_with_rows_arriving_between_pages() {
    let f = fresh().await;
    let originals: Vec<String> = f.applicants_in("oujda", 7).await.into_iter().map(|a| a.name).collect();
    let fr = &f;
    let seen = page_all(
        move |token| applicants_page(fr, ListApplicantsRequest { page_size: 3, page_token: token, ..Default::default() }),
        move |_| async move {
            fr.applicant_in("oujda").await;
            fr.applicant_in("oujda").await;
        },
    )
    .await;
    assert_complete(&seen, &originals, "newest first");
    let first_page: Vec<&String> = seen.iter().take(3).collect();
    assert_eq!(first_page, originals.iter().rev().take(3).collect::<Vec<_>>(), "the first page is the newest three");
}

#[tokio::test]
async fn applicants_by_name_with_rows_arriving_on_both_sides_of_the_cursor() {
    let f = fresh().await;
    let named = |family: &str| Applicant { family_name: family.into(), ..new_applicant("tanger") };
    let mut originals = Vec::new();
    for letter in ["b", "d", "f", "h", "j", "l", "n"] {
        originals.push(f.create_applicant(&f.admin, named(&format!("Zpage{letter}"))).await.name);
    }
    let inserted = ["a", "c", "e", "g", "i", "k", "m", "o", "p", "q"];
    let mut next = 0;
    let fr = &f;
    let seen = page_all(
        move |token| {
            applicants_page(
                fr,
                ListApplicantsRequest { name_prefix: "zpage".into(), page_size: 2, page_token: token, ..Default::default() },
            )
        },
        move |_| {
            // One name before the cursor, one after: both sides of it change.
            let before = inserted[next % inserted.len()];
            let after = inserted[(next + 5) % inserted.len()];
            next += 1;
            async move {
                fr.create_applicant(&fr.admin, named(&format!("Zpage{before}{}", common::letters(3)))).await;
                fr.create_applicant(&fr.admin, named(&format!("Zpage{after}{}", common::letters(3)))).await;
            }
        },
    )
    .await;
    assert_complete(&seen, &originals, "by name");
    let keys = {
        let mut out = Vec::new();
        for name in &seen {
            let a = f.get_applicant(&f.admin, name).await.expect("get");
            out.push((a.family_name.to_lowercase(), a.given_name.to_lowercase(), name.clone()));
        }
        out
    };
    let mut ordered = keys.clone();
    ordered.sort();
    assert_eq!(keys, ordered, "pages come in name order");
}

#[tokio::test]
async fn applications_and_calls_page_without_repeats_or_skips() {
    let f = fresh().await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let mut originals = Vec::new();
    for _ in 0..5 {
        originals.push(f.eligible_draft(&call).await.name);
    }
    let fr = &f;
    let call_ref = &call;
    let seen = page_all(
        move |token| async move {
            let r = fr
                .client()
                .await
                .list_applications(bearer(ListApplicationsRequest { page_size: 2, page_token: token, ..Default::default() }, &fr.admin))
                .await
                .expect("page")
                .into_inner();
            (r.applications.into_iter().map(|a| a.name).collect(), r.next_page_token)
        },
        move |_| async move {
            fr.eligible_draft(call_ref).await;
        },
    )
    .await;
    assert_complete(&seen, &originals, "applications");

    let mut calls = vec![call.name.clone()];
    for _ in 0..4 {
        calls.push(f.open_call(Window::JobPlacement, &["tanger"]).await.name);
    }
    let seen = page_all(
        move |token| async move {
            let r = fr
                .client()
                .await
                .list_calls(bearer(ListCallsRequest { page_size: 2, page_token: token, ..Default::default() }, &fr.admin))
                .await
                .expect("page")
                .into_inner();
            (r.calls.into_iter().map(|c| c.name).collect(), r.next_page_token)
        },
        move |_| async move {
            fr.open_call(Window::CollectiveStartup, &["oujda"]).await;
        },
    )
    .await;
    assert_complete(&seen, &calls, "calls");
}

#[tokio::test]
async fn a_page_token_only_works_with_the_filters_it_was_made_for() {
    let f = fresh().await;
    f.applicants_in("oujda", 3).await;
    let mut c = f.client().await;
    let oujda = ListApplicantsRequest { zone: "oujda".into(), page_size: 1, ..Default::default() };
    let first = c.list_applicants(bearer(oujda.clone(), &f.admin)).await.expect("page").into_inner();
    assert_eq!(first.applicants.len(), 1);
    let token = first.next_page_token.clone();
    assert!(!token.is_empty());

    for (case, request) in [
        ("another zone", ListApplicantsRequest { zone: "tanger".into(), page_token: token.clone(), ..oujda.clone() }),
        ("a name filter added", ListApplicantsRequest { name_prefix: "diallo".into(), page_token: token.clone(), ..oujda.clone() }),
        ("a nationality filter added", ListApplicantsRequest { nationality: "SN".into(), page_token: token.clone(), ..oujda.clone() }),
        ("a tampered token", ListApplicantsRequest { page_token: format!("{token}x"), ..oujda.clone() }),
        ("garbage", ListApplicantsRequest { page_token: "not-a-token".into(), ..oujda.clone() }),
    ] {
        let status = assert_refused(c.list_applicants(bearer(request, &f.admin)).await, Code::InvalidArgument, "", case);
        assert_eq!(fields(&status), ["page_token"], "{case}");
    }
    let other_list = c
        .list_applications(bearer(
            ListApplicationsRequest { zone: "oujda".into(), page_size: 1, page_token: token.clone(), ..Default::default() },
            &f.admin,
        ))
        .await;
    let status = assert_refused(other_list, Code::InvalidArgument, "", "a ListApplicants token in ListApplications");
    assert_eq!(fields(&status), ["page_token"]);

    // The same filters with another page size continue where the first page stopped.
    let rest = c
        .list_applicants(bearer(ListApplicantsRequest { page_size: 10, page_token: token, ..oujda }, &f.admin))
        .await
        .expect("a different page size is fine")
        .into_inner();
    assert_eq!(rest.applicants.len(), 2);
    assert!(rest.applicants.iter().all(|a| a.name != first.applicants[0].name));
    assert!(rest.next_page_token.is_empty());
}

#[tokio::test]
async fn page_size_defaults_to_50_and_is_capped_at_500() {
    let f = fresh().await;
    let fr = &f;
    let created = futures::stream::iter(0..505)
        .map(move |i| {
            let f = fr;
            async move {
                let program = Program {
                    display_name: format!("Fund {i}"),
                    donor: "Donor".into(),
                    envelope: Some(Money { currency_code: "EUR".into(), amount_minor: 1000 }),
                    start_date: "2027-01-01".into(),
                    end_date: "2027-12-31".into(),
                    zones: vec!["oujda".into()],
                    windows: vec![Window::JobPlacement as i32],
                    ..Program::default()
                };
                f.client()
                    .await
                    .create_program(bearer(
                        CreateProgramRequest {
                            program: Some(program),
                            program_id: format!("fund_{i:03}"),
                            request_id: uuid::Uuid::new_v4().to_string(),
                        },
                        &f.admin,
                    ))
                    .await
                    .expect("create program");
            }
        })
        .buffer_unordered(8)
        .count()
        .await;
    assert_eq!(created, 505);
    let mut c = f.client().await;
    let list = |page_size: i32, page_token: String| ListProgramsRequest { page_size, page_token };
    let default = c.list_programs(bearer(list(0, String::new()), &f.admin)).await.expect("default").into_inner();
    assert_eq!(default.programs.len(), 50, "default page size");
    assert!(!default.next_page_token.is_empty());
    let capped = c.list_programs(bearer(list(1000, String::new()), &f.admin)).await.expect("over the maximum is served").into_inner();
    assert_eq!(capped.programs.len(), 500, "capped at 500");
    let rest = c.list_programs(bearer(list(1000, capped.next_page_token), &f.admin)).await.expect("rest").into_inner();
    assert_eq!(rest.programs.len(), 6, "505 created + the seeded one");
    assert!(rest.next_page_token.is_empty());
    let status = assert_refused(c.list_programs(bearer(list(-1, String::new()), &f.admin)).await, Code::InvalidArgument, "", "negative");
    assert_eq!(fields(&status), ["page_size"]);
}

#[tokio::test]
async fn the_export_pages_without_repeats() {
    let f = fresh().await;
    f.applicants_in("oujda", 5).await;
    let fr = &f;
    let seen = page_all(
        move |token| async move {
            let r = fr
                .client()
                .await
                .export_applicants(bearer(
                    work4life_proto::intake::ExportApplicantsRequest { zone: String::new(), page_size: 2, page_token: token },
                    &fr.admin,
                ))
                .await
                .expect("page")
                .into_inner();
            (r.applicants.into_iter().map(|a| a.pseudonym).collect(), r.next_page_token)
        },
        move |_| async move {
            fr.applicant_in("tanger").await;
        },
    )
    .await;
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice: {seen:?}");
    assert!(seen.len() >= 5, "every person who existed before paging: {seen:?}");
}
