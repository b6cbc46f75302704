//! Personal data: identifiers never stored in clear, the FULL view audited, erasure on request,
//! and the donor's pseudonymous export.

mod common;

use std::collections::HashMap;

use common::{Fixture, assert_refused, bearer, birth_date_turning, fresh, hex, id_of, letters, new_applicant, payload, state};
use tonic::Code;
use work4life_proto::intake::{
    Applicant, ApplicantErased, ApplicantState, ApplicationState, ErasePersonalDataRequest, ExportApplicantsRequest,
    ExportApplicantsResponse, Gender, GetApplicantRequest, ListApplicantsRequest, Outcome, Window,
};

/// A person with identifiers that are easy to find in a dump: their phone, email and number.
fn traceable(zone: &str) -> (Applicant, [String; 3]) {
    let mut person = new_applicant(zone);
    person.phone = format!("+2126{}", common::digits(8));
    person.email = format!("zq{}@traceable.example", letters(8));
    let number = format!("ZQ{}", common::digits(8));
    person.identity_document.as_mut().expect("doc").number = number.clone();
    let phone = person.phone.clone();
    let email = person.email.clone();
    (person, [phone, email, number])
}

/// The forms a phone can take in a dump: E.164, without `+`, national, the 9 significant digits.
fn phone_forms(phone: &str) -> Vec<String> {
    let significant = &phone[4..];
    vec![phone.to_string(), phone[1..].to_string(), format!("0{significant}"), significant.to_string()]
}

/// A person with identifiers, in a submitted application, read in the FULL view: every place
/// the identifiers could leak to (rows, events, audit, idempotency responses) has been written.
async fn exercised(f: &Fixture) -> (Applicant, [String; 3]) {
    let (_, officer) = f.officer("oujda");
    let (person, secrets) = traceable("oujda");
    let created = f.create_applicant(&officer, person).await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.draft(&officer, &call, "oujda", &[&created]).await;
    f.submit(&officer, &draft.name).await.expect("submit");
    f.client().await.get_applicant(bearer(GetApplicantRequest { name: created.name.clone(), view: 2 }, &officer)).await.expect("full view");
    (created, secrets)
}

#[tokio::test]
async fn a_database_dump_holds_no_phone_email_or_document_number_in_clear() {
    let f = fresh().await;
    let (created, [phone, email, number]) = exercised(&f).await;
    let dump = f.pg_dump().await;
    assert!(dump.contains(&created.family_name), "the dump holds the registry (sanity check of the dump itself)");
    for form in phone_forms(&phone) {
        assert!(!dump.contains(&form), "the phone is in the dump in clear ({form})");
    }
    assert!(!dump.contains(&email), "the email is in the dump in clear");
    assert!(!dump.contains(&number), "the document number is in the dump in clear");
}

#[tokio::test]
async fn no_table_keeps_an_identifier_in_a_readable_encoding() {
    // bytea columns (outbox events, stored idempotent responses, audit details) are dumped in
    // hex: a phone inside a stored protobuf response is as readable as in a text column.
    let f = fresh().await;
    let (_, [phone, email, number]) = exercised(&f).await;
    let dump = f.pg_dump().await;
    let mut leaks = Vec::new();
    for (what, value) in [("phone", phone.clone()), ("phone digits", phone[4..].to_string()), ("email", email), ("document number", number)]
    {
        for (table, body) in common::copy_sections(&dump) {
            if body.contains(&hex(&value)) {
                leaks.push(format!("{what} hex-encoded in {table}"));
            }
        }
    }
    assert!(leaks.is_empty(), "identifiers stored unencrypted inside bytea: {leaks:?}");
}

#[tokio::test]
async fn the_full_view_shows_the_number_and_is_audited_the_basic_view_only_a_hint() {
    let f = fresh().await;
    let (officer_subject, officer) = f.officer("oujda");
    let mut person = new_applicant("oujda");
    person.identity_document.as_mut().expect("doc").number = "ab-12 34-567".into();
    let created = f.create_applicant(&officer, person).await;
    let mut c = f.client().await;
    let get = |view: i32| GetApplicantRequest { name: created.name.clone(), view };

    let audited_before = f.audit("intake.GetApplicant.full", &created.name).await.len();
    assert_eq!(audited_before, 0);
    for view in [0, 1] {
        let basic = c.get_applicant(bearer(get(view), &officer)).await.expect("basic").into_inner().applicant.expect("a");
        let doc = basic.identity_document.expect("doc");
        assert!(doc.number.is_empty(), "view {view}: no number");
        assert!(doc.number_hint.ends_with("567") && !doc.number_hint.contains("AB1234"), "view {view}: hint {:?}", doc.number_hint);
    }
    assert!(f.audit("intake.GetApplicant.full", &created.name).await.is_empty(), "BASIC reads are not audited as FULL");

    let full = c.get_applicant(bearer(get(2), &officer)).await.expect("full").into_inner().applicant.expect("a");
    assert_eq!(full.identity_document.expect("doc").number, "AB1234567", "normalised: upper case, no spaces or dashes");
    let records = f.audit("intake.GetApplicant.full", &created.name).await;
    assert_eq!(records.len(), 1, "one audit record per FULL read");
    assert_eq!(records[0].0, officer_subject, "the reader is the actor");
    assert!(!records[0].1.contains("AB1234567"), "the audit record holds no number: {}", records[0].1);
    c.get_applicant(bearer(get(2), &f.admin)).await.expect("full by admin");
    assert_eq!(f.audit("intake.GetApplicant.full", &created.name).await.len(), 2, "every FULL read is audited");

    // Lists never carry the number.
    let listed = c.list_applicants(bearer(ListApplicantsRequest::default(), &officer)).await.expect("list").into_inner().applicants;
    assert!(listed.iter().all(|a| a.identity_document.as_ref().is_none_or(|d| d.number.is_empty())));
}

#[tokio::test]
async fn erasure_wipes_the_person_but_keeps_the_record_and_its_decisions() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let (_, manager) = f.manager("oujda");
    let (_, rabat_manager) = f.manager("rabat_sale");
    let given = format!("Zainab{}", letters(6));
    let family = format!("Quatorze{}", letters(6));
    let (person, [phone, email, number]) = traceable("oujda");
    let person = Applicant { given_name: given.clone(), family_name: family.clone(), gender: Gender::Female as i32, ..person };
    let created = f.create_applicant(&officer, person).await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.draft(&officer, &call, "oujda", &[&created]).await;
    f.submit(&officer, &draft.name).await.expect("submit");
    f.start_screening(&officer, &draft.name).await.expect("screening");
    f.decide(&manager, &draft.name, Outcome::Rejected, "incomplete business plan").await.expect("reject");
    let mut c = f.client().await;
    let erase = |name: &str| ErasePersonalDataRequest { name: name.into(), reason: "the person's written request of 2026-11-20".into() };

    assert_refused(c.erase_personal_data(bearer(erase(&created.name), &rabat_manager)).await, Code::NotFound, "", "out of scope");
    assert_refused(
        c.erase_personal_data(bearer(erase(&created.name), &officer)).await,
        Code::PermissionDenied,
        "",
        "an officer may not erase",
    );
    assert_eq!(f.get_applicant(&officer, &created.name).await.expect("get").given_name, given, "refusals erase nothing");

    let erased = c.erase_personal_data(bearer(erase(&created.name), &manager)).await.expect("erase").into_inner().applicant.expect("a");
    for record in [erased.clone(), f.get_applicant(&officer, &created.name).await.expect("still readable by staff")] {
        assert_eq!(record.name, created.name);
        assert_eq!(record.state, ApplicantState::Erased as i32);
        assert!(record.given_name.is_empty() && record.family_name.is_empty(), "names wiped: {record:?}");
        assert!(record.birth_date.is_empty(), "birth date wiped");
        assert!(record.phone.is_empty() && record.email.is_empty(), "contact wiped");
        assert!(record.languages.is_empty(), "languages wiped");
        let doc = record.identity_document.clone().unwrap_or_default();
        assert!(doc.number.is_empty() && doc.number_hint.is_empty(), "document number wiped: {doc:?}");
        assert_eq!(
            (record.gender, record.nationality.as_str(), record.zone.as_str()),
            (Gender::Female as i32, "SN", "oujda"),
            "aggregates kept"
        );
    }
    let full = c
        .get_applicant(bearer(GetApplicantRequest { name: created.name.clone(), view: 2 }, &f.admin))
        .await
        .expect("full")
        .into_inner()
        .applicant
        .expect("a");
    assert!(full.identity_document.unwrap_or_default().number.is_empty(), "no number left even in the FULL view");

    // The application and its decision still point at the record.
    let application = f.get_application(&officer, &draft.name).await.expect("application");
    assert_eq!(state(&application), ApplicationState::Decided);
    assert_eq!(application.decision.as_ref().expect("decision").outcome, Outcome::Rejected as i32);
    assert!(application.members.iter().any(|m| m.applicant == created.name), "still a member");

    // Consumers are told to forget.
    let events = f.events("intake.applicant.erased").await;
    assert_eq!(events.len(), 1);
    assert_eq!(payload::<ApplicantErased>(&events[0]).applicant, created.name);
    assert_eq!(f.count("SELECT count(*) FROM intake.audit_log WHERE action LIKE '%ErasePersonalData%'").await, 1, "erasure is audited");

    // Nothing of the person is left in the database in clear.
    let dump = f.pg_dump().await;
    assert!(dump.contains(&id_of(&created.name).to_string()), "the record itself stays");
    for (what, value) in [("given name", &given), ("family name", &family), ("email", &email), ("number", &number), ("phone", &phone)] {
        assert!(!dump.contains(value.as_str()), "the erased {what} is still in the dump");
    }
    // The erased record is no longer among the active ones.
    let active = c.list_applicants(bearer(ListApplicantsRequest::default(), &officer)).await.expect("list").into_inner().applicants;
    assert!(active.iter().all(|a| a.name != created.name));
    let erased_list = c
        .list_applicants(bearer(ListApplicantsRequest { state: ApplicantState::Erased as i32, ..Default::default() }, &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants;
    assert_eq!(erased_list.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), [created.name.as_str()]);
    // Searches by the old name or phone find nothing, in any state.
    for state in [0, ApplicantState::Erased as i32] {
        for request in [
            ListApplicantsRequest { name_prefix: family.clone(), state, ..Default::default() },
            ListApplicantsRequest { phone: phone.clone(), state, ..Default::default() },
        ] {
            let found = c.list_applicants(bearer(request.clone(), &f.admin)).await.expect("search").into_inner().applicants;
            assert!(found.is_empty(), "an erased person is found by {request:?}");
        }
    }
    // An erased record cannot be filled in again.
    let refill = c
        .update_applicant(bearer(
            work4life_proto::intake::UpdateApplicantRequest {
                applicant: Some(Applicant { name: created.name.clone(), given_name: given.clone(), ..Applicant::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["given_name".into()] }),
            },
            &f.admin,
        ))
        .await;
    assert_refused(refill, Code::FailedPrecondition, "INVALID_STATE", "updating an erased record");
}

#[tokio::test]
async fn erased_names_leave_no_readable_trace_in_bytea_columns_either() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let given = format!("Zainab{}", letters(6));
    let family = format!("Quatorze{}", letters(6));
    let created =
        f.create_applicant(&officer, Applicant { given_name: given.clone(), family_name: family.clone(), ..new_applicant("oujda") }).await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.draft(&officer, &call, "oujda", &[&created]).await;
    f.submit(&officer, &draft.name).await.expect("submit");
    f.client()
        .await
        .erase_personal_data(bearer(ErasePersonalDataRequest { name: created.name.clone(), reason: "request".into() }, &f.admin))
        .await
        .expect("erase");
    let dump = f.pg_dump().await;
    assert!(!dump.contains(&given) && !dump.contains(&family), "names in clear after erasure");
    let mut leaks = Vec::new();
    for (table, body) in common::copy_sections(&dump) {
        for (what, value) in [("given name", &given), ("family name", &family)] {
            if body.contains(&hex(value)) {
                leaks.push(format!("{what} hex-encoded in {table}"));
            }
        }
    }
    assert!(leaks.is_empty(), "erased names still stored inside bytea: {leaks:?}");
}

fn rows(response: &ExportApplicantsResponse) -> HashMap<(String, String), (String, work4life_proto::intake::PseudonymousApplicant)> {
    response.applicants.iter().map(|r| ((r.zone.clone(), r.age_band.clone()), (r.pseudonym.clone(), r.clone()))).collect()
}

#[tokio::test]
async fn the_export_is_pseudonymous_and_stable() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let (_, manager) = f.manager("oujda");
    let (_, auditor) = f.token("auditor", None, &[]);
    let (a_person, a_secrets) = traceable("oujda");
    let a = f.create_applicant(&officer, Applicant { birth_date: "2000-06-15".into(), ..a_person }).await;
    let (b_person, b_secrets) = traceable("oujda");
    let b = f.create_applicant(&officer, Applicant { birth_date: "1980-01-01".into(), gender: Gender::Male as i32, ..b_person }).await;
    let (d_person, d_secrets) = traceable("oujda");
    let d = f.create_applicant(&officer, Applicant { birth_date: birth_date_turning(25, 1), ..d_person }).await;
    let (c_person, c_secrets) = traceable("rabat_sale");
    let c_rec = f
        .create_applicant(
            &f.admin,
            Applicant { birth_date: "1970-01-01".into(), nationality: "CI".into(), gender: Gender::Other as i32, ..c_person },
        )
        .await;
    let call = f.open_call(Window::IndividualStartup, &["oujda"]).await;
    let draft = f.draft(&officer, &call, "oujda", &[&a]).await;
    f.submit(&officer, &draft.name).await.expect("submit");
    f.start_screening(&officer, &draft.name).await.expect("screening");
    f.decide(&manager, &draft.name, Outcome::Rejected, "not viable").await.expect("reject");

    let mut c = f.client().await;
    let export = |zone: &str| ExportApplicantsRequest { zone: zone.into(), page_size: 0, page_token: String::new() };
    let first = c.export_applicants(bearer(export(""), &f.admin)).await.expect("export").into_inner();
    assert_eq!(first.applicants.len(), 4, "{first:?}");
    let by_key = rows(&first);
    let row = |zone: &str, band: &str| {
        by_key.get(&(zone.to_string(), band.to_string())).unwrap_or_else(|| panic!("a row {zone} {band}: {first:?}")).1.clone()
    };
    let a_row = row("oujda", "25-34");
    assert_eq!((a_row.gender, a_row.nationality.as_str(), a_row.state), (Gender::Female as i32, "SN", ApplicantState::Active as i32));
    assert_eq!(a_row.applications.len(), 1);
    let app = &a_row.applications[0];
    assert_eq!(
        (app.window, app.state, app.outcome),
        (Window::IndividualStartup as i32, ApplicationState::Decided as i32, Outcome::Rejected as i32)
    );
    assert_eq!(row("oujda", "45-54").gender, Gender::Male as i32);
    assert!(row("oujda", "45-54").applications.is_empty());
    assert_eq!(row("oujda", "18-24").state, ApplicantState::Active as i32, "24 until tomorrow: the band is on the day of the export");
    let c_row = row("rabat_sale", "55+");
    assert_eq!((c_row.gender, c_row.nationality.as_str()), (Gender::Other as i32, "CI"));

    // Pseudonyms: present, distinct, not the record ids, nothing identifying anywhere.
    let pseudonyms: Vec<&String> = first.applicants.iter().map(|r| &r.pseudonym).collect();
    assert!(pseudonyms.iter().all(|p| !p.is_empty()));
    let mut distinct = pseudonyms.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "one pseudonym per person");
    let text = format!("{first:?}");
    for record in [&a, &b, &d, &c_rec] {
        let id = id_of(&record.name);
        for form in [id.to_string(), id.simple().to_string()] {
            assert!(!text.contains(&form), "the export carries a record id");
        }
        assert!(!text.contains(&record.given_name) && !text.contains(&record.family_name), "the export carries names");
        assert!(!text.contains(&record.birth_date), "the export carries birth dates");
    }
    for secret in a_secrets.iter().chain(&b_secrets).chain(&d_secrets).chain(&c_secrets) {
        assert!(!text.contains(secret.as_str()), "the export carries an identifier");
    }

    // Stable: the same pseudonyms in the next export, whoever asks.
    let second = c.export_applicants(bearer(export(""), &auditor)).await.expect("auditor export").into_inner();
    let again = rows(&second);
    for (key, (pseudonym, _)) in &by_key {
        assert_eq!(&again.get(key).expect("same rows").0, pseudonym, "pseudonym of {key:?} is stable");
    }

    // Scoped: a program manager exports their zone; a zone filter narrows; an officer may not.
    let scoped = c.export_applicants(bearer(export(""), &manager)).await.expect("manager export").into_inner();
    assert_eq!(scoped.applicants.len(), 3);
    assert!(scoped.applicants.iter().all(|r| r.zone == "oujda"));
    let rabat = c.export_applicants(bearer(export("rabat_sale"), &f.admin)).await.expect("zone export").into_inner();
    assert_eq!(rabat.applicants.len(), 1);
    assert_eq!(rabat.applicants[0].pseudonym, by_key[&("rabat_sale".to_string(), "55+".to_string())].0);
    assert_refused(c.export_applicants(bearer(export(""), &officer)).await, Code::PermissionDenied, "", "officer export");

    // An erased person stays in the export, without an age band.
    c.erase_personal_data(bearer(ErasePersonalDataRequest { name: b.name.clone(), reason: "request".into() }, &f.admin))
        .await
        .expect("erase");
    let after = c.export_applicants(bearer(export("oujda"), &f.admin)).await.expect("export").into_inner();
    let erased: Vec<_> = after.applicants.iter().filter(|r| r.state == ApplicantState::Erased as i32).collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].age_band, "");
    assert_eq!(erased[0].pseudonym, by_key[&("oujda".to_string(), "45-54".to_string())].0, "the same pseudonym after erasure");
}
