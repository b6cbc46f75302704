//! BatchGetApplicantContacts: how notifications reaches people. Only the notifications service's
//! account (role `notifier`) and admins read it; answers come in the order asked, unknown people
//! as not found, erased people without contact details; every call leaves one audit record.

mod common;

use common::{bearer, fresh, new_applicant};
use tonic::Code;
use work4life_proto::intake::{ApplicantState, BatchGetApplicantContactsRequest, ErasePersonalDataRequest};

#[tokio::test]
async fn the_notifier_reads_contacts_in_order_and_each_read_is_audited() {
    let f = fresh().await;
    let mut c = f.client().await;
    let mut first = new_applicant("tanger");
    first.languages = vec!["ar".into(), "fr".into()];
    let first = f.create_applicant(&f.admin, first).await;
    let second = f.applicant_in("oujda").await;
    let unknown = format!("applicants/{}", uuid::Uuid::now_v7());
    let (notifier, notifier_jwt) = f.token("notifier", None, &[]);
    let names = vec![second.name.clone(), unknown.clone(), first.name.clone()];
    let contacts = c
        .batch_get_applicant_contacts(bearer(BatchGetApplicantContactsRequest { names: names.clone() }, &notifier_jwt))
        .await
        .expect("contacts")
        .into_inner()
        .contacts;
    assert_eq!(contacts.iter().map(|c| c.applicant.clone()).collect::<Vec<_>>(), names, "in the order asked");
    assert!(!contacts[1].found && contacts[1].phone.is_empty(), "unknown: not found");
    let a = &contacts[2];
    assert!(a.found);
    assert_eq!(
        (a.given_name.as_str(), a.phone.as_str(), a.email.as_str()),
        (first.given_name.as_str(), first.phone.as_str(), first.email.as_str())
    );
    assert_eq!(a.languages, ["ar", "fr"]);
    assert_eq!((a.zone.as_str(), a.state), ("tanger", ApplicantState::Active as i32));
    assert_eq!(contacts[0].phone, second.phone, "opened from its sealed column");

    let records = work4life_testkit::audit_records(&f.pool, "intake.BatchGetApplicantContacts", "applicants").await;
    assert_eq!(records.len(), 1, "one record per call");
    assert_eq!(records[0].0, notifier);
    let listed = records[0].1["applicants"].as_array().expect("applicants").len();
    assert_eq!(listed, 2, "the people found, not the unknown one");

    c.erase_personal_data(bearer(ErasePersonalDataRequest { name: first.name.clone(), reason: "the person's request".into() }, &f.admin))
        .await
        .expect("erase");
    let erased = c
        .batch_get_applicant_contacts(bearer(BatchGetApplicantContactsRequest { names: vec![first.name.clone()] }, &notifier_jwt))
        .await
        .expect("contacts")
        .into_inner()
        .contacts;
    assert_eq!(erased[0].state, ApplicantState::Erased as i32);
    assert!(erased[0].phone.is_empty() && erased[0].email.is_empty() && erased[0].given_name.is_empty(), "{:?}", erased[0]);
}

#[tokio::test]
async fn staff_and_people_cannot_read_contacts_in_bulk() {
    let f = fresh().await;
    let person = f.applicant_in("tanger").await;
    let mut c = f.client().await;
    for role in ["officer", "program_manager", "reviewer", "auditor", "beneficiary", "coach", "gateway"] {
        let (_, jwt) = f.token(role, Some(f.org), &["tanger"]);
        let refused = c
            .batch_get_applicant_contacts(bearer(BatchGetApplicantContactsRequest { names: vec![person.name.clone()] }, &jwt))
            .await
            .expect_err(role);
        assert_eq!(refused.code(), Code::PermissionDenied, "{role}");
    }
    assert!(
        work4life_testkit::audit_records(&f.pool, "intake.BatchGetApplicantContacts", "applicants").await.is_empty(),
        "nothing read, nothing audited"
    );
    let admin = c
        .batch_get_applicant_contacts(bearer(BatchGetApplicantContactsRequest { names: vec![person.name.clone()] }, &f.admin))
        .await
        .expect("admins may");
    assert!(admin.into_inner().contacts[0].found);
}
