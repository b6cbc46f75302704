//! Duplicates in the registry: the same document or phone is refused (naming the existing record
//! only to a caller who may see it), a close match is registered and flagged on both records,
//! and an officer marks a duplicate explicitly.

mod common;

use common::{assert_refused, bearer, fresh, id_of, info_metadata, letters, new_applicant, payload};
use tonic::Code;
use work4life_proto::intake::{
    Applicant, ApplicantRegistered, ApplicantState, CreateApplicantRequest, ListApplicantsRequest, MarkDuplicateRequest,
    UpdateApplicantRequest,
};

async fn try_create(f: &common::Fixture, jwt: &str, applicant: Applicant) -> Result<Applicant, tonic::Status> {
    f.client()
        .await
        .create_applicant(bearer(CreateApplicantRequest { applicant: Some(applicant), request_id: uuid::Uuid::new_v4().to_string() }, jwt))
        .await
        .map(|r| r.into_inner().applicant.expect("applicant"))
}

/// The number of `applicant` as someone would type it again: lower case, with spaces and dashes.
fn retyped(number: &str) -> String {
    let lower = number.to_lowercase();
    format!("{} - {}", &lower[..3], &lower[3..])
}

#[tokio::test]
async fn the_same_document_is_refused_naming_the_record_only_to_who_may_see_it() {
    let f = fresh().await;
    let (_, oujda) = f.officer("oujda");
    let (_, rabat) = f.officer("rabat_sale");
    let (_, other_org) = f.token("officer", Some(uuid::Uuid::now_v7()), &["oujda"]);
    let first = new_applicant("oujda");
    let number = first.identity_document.as_ref().expect("doc").number.clone();
    let existing = f.create_applicant(&oujda, first.clone()).await;
    let before = f.table_counts().await;

    let same_document = |zone: &str| {
        let mut again = new_applicant(zone);
        again.identity_document.as_mut().expect("doc").number = retyped(&number);
        again
    };

    // The officer who can see the record is told which one it is.
    for (who, jwt) in [("the same officer", &oujda), ("an admin", &f.admin)] {
        let status = assert_refused(
            try_create(&f, jwt, same_document("oujda")).await,
            Code::AlreadyExists,
            "DUPLICATE_DOCUMENT",
            &format!("{who}: same document"),
        );
        let metadata = info_metadata(&status);
        assert_eq!(metadata.get("field").map(String::as_str), Some("identity_document"), "{who}: {metadata:?}");
        assert_eq!(metadata.get("existing"), Some(&existing.name), "{who}: {metadata:?}");
        assert_eq!(
            metadata.get("existing_display_name").map(String::as_str),
            Some(format!("{} {}", first.given_name, first.family_name).as_str()),
            "{who}: {metadata:?}"
        );
    }

    // Officers who cannot see it learn only that the document is taken.
    for (who, jwt, zone) in
        [("an officer of another zone", &rabat, "rabat_sale"), ("an officer of another organisation", &other_org, "oujda")]
    {
        let status = assert_refused(
            try_create(&f, jwt, same_document(zone)).await,
            Code::AlreadyExists,
            "DUPLICATE_DOCUMENT",
            &format!("{who}: same document"),
        );
        let metadata = info_metadata(&status);
        assert_eq!(metadata.get("field").map(String::as_str), Some("identity_document"), "{who}: {metadata:?}");
        assert!(!metadata.contains_key("existing") && !metadata.contains_key("existing_display_name"), "{who}: {metadata:?}");
        let everything = format!("{status:?}");
        let id = id_of(&existing.name).to_string();
        for secret in [id.as_str(), first.given_name.as_str(), first.family_name.as_str()] {
            assert!(!everything.contains(secret), "{who}: the refusal reveals {secret:?}: {everything}");
        }
    }
    assert_eq!(f.table_counts().await, before, "refused registrations write nothing");
}

#[tokio::test]
async fn the_same_phone_is_refused_in_any_format() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let first = f.create_applicant(&officer, new_applicant("oujda")).await;
    let mut again = new_applicant("oujda");
    again.phone = format!("0{}", &first.phone[4..]);
    let status = assert_refused(try_create(&f, &officer, again).await, Code::AlreadyExists, "DUPLICATE_PHONE", "same phone");
    let metadata = info_metadata(&status);
    assert_eq!(metadata.get("field").map(String::as_str), Some("phone"));
    assert_eq!(metadata.get("existing"), Some(&first.name));
    assert_eq!(f.count("SELECT count(*) FROM intake.applicants").await, 1);

    // Updating another record to that phone is refused too, and changes nothing.
    let second = f.create_applicant(&officer, new_applicant("oujda")).await;
    let update = f
        .client()
        .await
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant {
                    name: second.name.clone(),
                    etag: second.etag.clone(),
                    phone: first.phone.clone(),
                    ..Applicant::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["phone".into()] }),
            },
            &officer,
        ))
        .await;
    let status = assert_refused(update, Code::AlreadyExists, "DUPLICATE_PHONE", "update to a taken phone");
    assert_eq!(info_metadata(&status).get("existing"), Some(&first.name));
    assert_eq!(f.get_applicant(&officer, &second.name).await.expect("get").phone, second.phone, "unchanged");

    // And to a taken document.
    let full = f
        .client()
        .await
        .get_applicant(bearer(work4life_proto::intake::GetApplicantRequest { name: first.name.clone(), view: 2 }, &officer))
        .await
        .expect("full")
        .into_inner()
        .applicant
        .expect("a");
    let update = f
        .client()
        .await
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant {
                    name: second.name.clone(),
                    etag: second.etag.clone(),
                    identity_document: full.identity_document.clone(),
                    ..Applicant::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["identity_document".into()] }),
            },
            &officer,
        ))
        .await;
    assert_refused(update, Code::AlreadyExists, "DUPLICATE_DOCUMENT", "update to a taken document");
}

#[tokio::test]
async fn close_matches_are_registered_and_flagged_on_both_records() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let family = format!("Traoré{}", letters(3));
    let plain = family.replace('é', "e");
    let born = "1999-03-02";
    let person = |given: &str, family: &str, birth: &str| Applicant {
        given_name: given.into(),
        family_name: family.into(),
        birth_date: birth.into(),
        ..new_applicant("oujda")
    };
    let original = f.create_applicant(&officer, person("Aminata", &family, born)).await;
    assert!(original.possible_duplicates.is_empty(), "nothing to match yet");

    let folded = f.create_applicant(&officer, person("aminata", &plain.to_uppercase(), born)).await;
    let swapped = f.create_applicant(&officer, person(&plain, "Aminata", born)).await;
    let typo = f.create_applicant(&officer, person("Aminatta", &plain, born)).await;
    let other_birthday = f.create_applicant(&officer, person("Aminata", &family, "1999-03-03")).await;
    let other_person = f.create_applicant(&officer, person("Moussa", &family, born)).await;

    for (case, record) in [("case and accents", &folded), ("given and family swapped", &swapped), ("one letter off", &typo)] {
        let flagged: Vec<&str> = record.possible_duplicates.iter().map(|d| d.applicant.as_str()).collect();
        assert!(flagged.contains(&original.name.as_str()), "{case}: the new record names the original: {flagged:?}");
        assert!(record.possible_duplicates.iter().all(|d| !d.reason.is_empty()), "{case}: each pair says why");
        assert_eq!(record.state, ApplicantState::Active as i32, "{case}: registered anyway");
    }
    assert!(
        other_birthday.possible_duplicates.is_empty(),
        "another birth date is another person: {:?}",
        other_birthday.possible_duplicates
    );
    assert!(other_person.possible_duplicates.is_empty(), "another given name is another person: {:?}", other_person.possible_duplicates);

    // Both records show the pair.
    let original_now = f.get_applicant(&officer, &original.name).await.expect("get");
    let pairs: Vec<&str> = original_now.possible_duplicates.iter().map(|d| d.applicant.as_str()).collect();
    for record in [&folded, &swapped, &typo] {
        assert!(pairs.contains(&record.name.as_str()), "the original names {}: {pairs:?}", record.name);
    }
    assert!(!pairs.contains(&other_birthday.name.as_str()) && !pairs.contains(&other_person.name.as_str()), "{pairs:?}");

    // The flagged records can be listed for review.
    let listed: Vec<String> = f
        .client()
        .await
        .list_applicants(bearer(ListApplicantsRequest { possible_duplicates_only: true, ..Default::default() }, &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants
        .into_iter()
        .map(|a| a.name)
        .collect();
    for record in [&original, &folded, &swapped, &typo] {
        assert!(listed.contains(&record.name), "{} is listed: {listed:?}", record.name);
    }
    assert!(!listed.contains(&other_birthday.name) && !listed.contains(&other_person.name), "{listed:?}");

    // The registration event names the records it looks like.
    let events = f.events("intake.applicant.registered").await;
    let folded_event = events.iter().map(payload::<ApplicantRegistered>).find(|e| e.applicant == folded.name).expect("event");
    assert!(folded_event.possible_duplicates.contains(&original.name), "{folded_event:?}");
}

#[tokio::test]
async fn mark_duplicate_keeps_one_record_and_hides_the_other_from_searches() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let (_, rabat) = f.officer("rabat_sale");
    let kept = f.create_applicant(&officer, new_applicant("oujda")).await;
    let duplicate = f
        .create_applicant(
            &officer,
            Applicant {
                given_name: kept.given_name.clone(),
                family_name: kept.family_name.clone(),
                birth_date: kept.birth_date.clone(),
                ..new_applicant("oujda")
            },
        )
        .await;
    let elsewhere = f.applicant_in("rabat_sale").await;
    let mut c = f.client().await;
    let mark =
        |name: &str, keep: &str| MarkDuplicateRequest { name: name.into(), keep: keep.into(), reason: "same person, two visits".into() };

    // Out of scope: NOT_FOUND, whichever side is out of scope.
    assert_refused(c.mark_duplicate(bearer(mark(&duplicate.name, &kept.name), &rabat)).await, Code::NotFound, "", "another zone");
    assert_refused(
        c.mark_duplicate(bearer(mark(&duplicate.name, &elsewhere.name), &officer)).await,
        Code::NotFound,
        "",
        "keep out of scope",
    );
    // Not a role that may mark.
    let (_, reviewer) = f.token("reviewer", None, &[]);
    assert!(c.mark_duplicate(bearer(mark(&duplicate.name, &kept.name), &reviewer)).await.is_err(), "a reviewer may not mark");
    assert_eq!(
        f.get_applicant(&officer, &duplicate.name).await.expect("get").state,
        ApplicantState::Active as i32,
        "refusals change nothing"
    );

    let marked =
        c.mark_duplicate(bearer(mark(&duplicate.name, &kept.name), &officer)).await.expect("mark").into_inner().applicant.expect("a");
    assert_eq!(marked.state, ApplicantState::Duplicate as i32);
    assert_eq!(marked.duplicate_of, kept.name);
    let got = f.get_applicant(&officer, &duplicate.name).await.expect("still readable");
    assert_eq!((got.state, got.duplicate_of.as_str()), (ApplicantState::Duplicate as i32, kept.name.as_str()));
    assert_eq!(f.get_applicant(&officer, &kept.name).await.expect("kept").state, ApplicantState::Active as i32);

    let list = |state: ApplicantState| ListApplicantsRequest { state: state as i32, ..Default::default() };
    let active: Vec<String> = c
        .list_applicants(bearer(ListApplicantsRequest::default(), &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(active, [kept.name.as_str()], "the duplicate leaves the registry's searches");
    let name_search: Vec<String> = c
        .list_applicants(bearer(ListApplicantsRequest { name_prefix: kept.family_name.clone(), ..Default::default() }, &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(name_search, [kept.name.as_str()]);
    let duplicates: Vec<String> = c
        .list_applicants(bearer(list(ApplicantState::Duplicate), &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(duplicates, [duplicate.name.as_str()]);
    assert_eq!(f.count("SELECT count(*) FROM intake.audit_log WHERE action LIKE '%MarkDuplicate%'").await, 1, "marking is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_phone_keep_exactly_one() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let phone = common::unique_phone();
    let attempts = (0..6).map(|_| {
        let f = &f;
        let officer = officer.clone();
        let person = Applicant { phone: phone.clone(), ..new_applicant("oujda") };
        async move { try_create(f, &officer, person).await }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "exactly one record per phone: {results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(status.code(), Code::AlreadyExists, "a lost race is a duplicate, not an internal error: {status:?}");
        assert_eq!(common::reason(status), "DUPLICATE_PHONE");
    }
    assert_eq!(f.count("SELECT count(*) FROM intake.applicants").await, 1);
    assert_eq!(f.events("intake.applicant.registered").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossed_mark_duplicate_calls_leave_exactly_one_record_active() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let mark = |name: &str, keep: &str| MarkDuplicateRequest { name: name.into(), keep: keep.into(), reason: "same person".into() };
    for round in 0..10 {
        let a = f.create_applicant(&officer, new_applicant("oujda")).await;
        let b = f.create_applicant(&officer, new_applicant("oujda")).await;
        let (mut c1, mut c2) = (f.client().await, f.client().await);
        // A keeps B and B keeps A, at once.
        let (a_keeps_b, b_keeps_a) = tokio::join!(
            c1.mark_duplicate(bearer(mark(&a.name, &b.name), &officer)),
            c2.mark_duplicate(bearer(mark(&b.name, &a.name), &officer)),
        );
        let outcomes = [(&a, &b, a_keeps_b), (&b, &a, b_keeps_a)];
        assert_eq!(outcomes.iter().filter(|(_, _, r)| r.is_ok()).count(), 1, "round {round}: exactly one call wins: {outcomes:?}");
        for (marked, kept, result) in &outcomes {
            match result {
                Ok(response) => {
                    let applicant = response.get_ref().applicant.as_ref().expect("applicant");
                    assert_eq!(
                        (applicant.name.as_str(), applicant.state, applicant.duplicate_of.as_str()),
                        (marked.name.as_str(), ApplicantState::Duplicate as i32, kept.name.as_str())
                    );
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::FailedPrecondition, "round {round}: the loser is refused, not an error: {status:?}");
                    assert!(
                        common::preconditions(status).iter().any(|(_, subject)| subject == &kept.name),
                        "round {round}: refused because `keep` ({}) is no longer active: {status:?}",
                        kept.name
                    );
                }
            }
        }
        let states =
            [f.get_applicant(&officer, &a.name).await.expect("a").state, f.get_applicant(&officer, &b.name).await.expect("b").state];
        let mut sorted = states;
        sorted.sort_unstable();
        let mut want = [ApplicantState::Active as i32, ApplicantState::Duplicate as i32];
        want.sort_unstable();
        assert_eq!(sorted, want, "round {round}: one DUPLICATE, one ACTIVE: {states:?}");
    }
}
