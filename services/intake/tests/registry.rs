//! The person registry over real gRPC: create, get, list, search, update with `update_mask` and
//! `etag`, and idempotent creation by `request_id`.

mod common;

use common::{assert_refused, bearer, fields, fresh, letters, new_applicant, unique_document, unique_phone};
use tonic::Code;
use work4life_proto::intake::{
    Applicant, ApplicantState, CreateApplicantRequest, DocumentType, GetApplicantRequest, IdentityDocument, ListApplicantsRequest,
    UpdateApplicantRequest,
};

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() })
}

async fn list(f: &common::Fixture, jwt: &str, request: ListApplicantsRequest) -> Vec<String> {
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

#[tokio::test]
async fn an_officer_registers_a_person_and_reads_the_record_back() {
    let f = fresh().await;
    let (officer_subject, officer) = f.officer("oujda");
    let mut person = new_applicant("oujda");
    let local = format!("06{}", common::digits(8));
    person.phone = format!("{} {} {} {} {}", &local[0..2], &local[2..4], &local[4..6], &local[6..8], &local[8..10]);
    person.email = format!("  {}@CEFA.Example ", letters(6).to_uppercase());
    let number = format!("ab-{} {}", common::digits(3), common::digits(4));
    person.identity_document.as_mut().expect("doc").number = number.clone();
    let created = f.create_applicant(&officer, person.clone()).await;

    let id = created.name.strip_prefix("applicants/").expect("applicants/{id}");
    uuid::Uuid::parse_str(id).expect("the id is a uuid");
    assert_eq!(created.state, ApplicantState::Active as i32);
    assert_eq!(created.organization, format!("organizations/{}", f.org), "registered for the officer's organisation");
    assert!(created.account.is_empty(), "not linked to a login");
    assert!(!created.etag.is_empty(), "an etag for updates");
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert_eq!(created.consent.as_ref().expect("consent").recorded_by, officer_subject, "consent recorded by the caller");

    let got = f.get_applicant(&officer, &created.name).await.expect("get");
    assert_eq!((got.given_name.as_str(), got.family_name.as_str()), (person.given_name.as_str(), person.family_name.as_str()));
    assert_eq!(got.birth_date, person.birth_date);
    assert_eq!(got.nationality, "SN");
    assert_eq!(got.languages, ["fr", "wo"]);
    assert_eq!(got.zone, "oujda");
    assert_eq!(got.phone, format!("+212{}", &local[1..]), "a national number is normalised to E.164");
    assert_eq!(got.email, person.email.trim().to_lowercase(), "email trimmed and lower-cased");
    let document = got.identity_document.expect("document");
    assert_eq!(document.r#type, DocumentType::Passport as i32);
    assert!(document.number.is_empty(), "BASIC view: no number");
    let normalised: String = number.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_uppercase();
    assert!(document.number_hint.ends_with(&normalised[normalised.len() - 3..]), "hint shows the last 3: {}", document.number_hint);
    assert!(!document.number_hint.contains(&normalised[..normalised.len() - 3]), "hint shows no more than the last 3");
    assert_eq!(got.etag, created.etag);

    let listed = list(&f, &officer, ListApplicantsRequest::default()).await;
    assert_eq!(listed, [created.name.as_str()]);
}

#[tokio::test]
async fn search_by_name_prefix_phone_and_document() {
    let f = fresh().await;
    let suffix = letters(4);
    let mut elodie = new_applicant("tanger");
    elodie.given_name = "Élodie".into();
    elodie.family_name = format!("Ndiayé{suffix}");
    let elodie = f.create_applicant(&f.admin, elodie).await;
    let mut other = new_applicant("tanger");
    other.given_name = "Moussa".into();
    other.family_name = format!("Ndiaye{suffix}");
    other.birth_date = "1990-05-05".into();
    let moussa = f.create_applicant(&f.admin, other).await;
    let unrelated = f.applicant_in("tanger").await;

    let by_name = |prefix: String| ListApplicantsRequest { name_prefix: prefix, ..Default::default() };
    // "family given", accents and case folded.
    let both = list(&f, &f.admin, by_name(format!("ndiaye{suffix}"))).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&elodie.name) && both.contains(&moussa.name));
    assert_eq!(list(&f, &f.admin, by_name(format!("NDIAYÉ{} él", suffix.to_uppercase()))).await, [elodie.name.as_str()]);
    assert_eq!(list(&f, &f.admin, by_name(format!("ndiaye{suffix} elodie"))).await, [elodie.name.as_str()]);
    assert_eq!(list(&f, &f.admin, by_name(format!("Ndiaye{suffix} Mou"))).await, [moussa.name.as_str()]);
    // With a name, results come by name: "ndiaye… elodie" before "ndiaye… moussa".
    assert_eq!(both, [elodie.name.clone(), moussa.name.clone()], "ordered by family then given name");
    assert!(list(&f, &f.admin, by_name("elodie".into())).await.is_empty(), "the given name alone is not a prefix of the key");

    // Phone: exact, in any accepted format.
    let national = format!("0{}", &unrelated.phone[4..]);
    let by_phone = list(&f, &f.admin, ListApplicantsRequest { phone: national, ..Default::default() }).await;
    assert_eq!(by_phone, [unrelated.name.as_str()]);
    let nobody = list(&f, &f.admin, ListApplicantsRequest { phone: unique_phone(), ..Default::default() }).await;
    assert!(nobody.is_empty());

    // Document: exact type and number; spaces, dashes and case ignored.
    let created_number = {
        let full = f
            .client()
            .await
            .get_applicant(bearer(GetApplicantRequest { name: moussa.name.clone(), view: 2 }, &f.admin))
            .await
            .expect("full")
            .into_inner()
            .applicant
            .expect("applicant");
        full.identity_document.expect("doc").number
    };
    let spaced: String = created_number.chars().flat_map(|c| [c.to_ascii_lowercase(), ' ']).collect();
    let by_document = list(
        &f,
        &f.admin,
        ListApplicantsRequest {
            identity_document: Some(IdentityDocument {
                r#type: DocumentType::Passport as i32,
                number: spaced,
                number_hint: String::new(),
                issuing_country: String::new(),
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_document, [moussa.name.as_str()]);
    let wrong_number = list(
        &f,
        &f.admin,
        ListApplicantsRequest {
            identity_document: Some(IdentityDocument {
                r#type: DocumentType::Passport as i32,
                number: unique_document(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert!(wrong_number.is_empty());

    // Filters: zone, nationality.
    let in_tanger = list(&f, &f.admin, ListApplicantsRequest { zone: "tanger".into(), ..Default::default() }).await;
    assert_eq!(in_tanger.len(), 3);
    assert!(list(&f, &f.admin, ListApplicantsRequest { zone: "oujda".into(), ..Default::default() }).await.is_empty());
    assert!(list(&f, &f.admin, ListApplicantsRequest { nationality: "CI".into(), ..Default::default() }).await.is_empty());
    assert_eq!(list(&f, &f.admin, ListApplicantsRequest { nationality: "SN".into(), ..Default::default() }).await.len(), 3);
    // Without a name: newest first.
    let all = list(&f, &f.admin, ListApplicantsRequest::default()).await;
    assert_eq!(all, [unrelated.name.clone(), moussa.name.clone(), elodie.name.clone()], "newest first");
}

#[tokio::test]
async fn update_changes_only_the_masked_fields_and_checks_the_etag() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let created = f.create_applicant(&officer, new_applicant("oujda")).await;
    let mut c = f.client().await;
    let new_phone = unique_phone();
    let changes = Applicant {
        name: created.name.clone(),
        etag: created.etag.clone(),
        given_name: "Fatoumata".into(),
        family_name: "Ignored".into(),
        phone: new_phone.clone(),
        zone: "tanger".into(),
        ..Applicant::default()
    };
    let updated = c
        .update_applicant(bearer(
            UpdateApplicantRequest { applicant: Some(changes.clone()), update_mask: mask(&["given_name", "phone"]) },
            &officer,
        ))
        .await
        .expect("update")
        .into_inner()
        .applicant
        .expect("applicant");
    assert_eq!(updated.given_name, "Fatoumata");
    assert_eq!(updated.phone, new_phone);
    assert_eq!(updated.family_name, created.family_name, "family_name is not in the mask");
    assert_eq!(updated.zone, "oujda", "zone is not in the mask");
    assert_eq!(updated.birth_date, created.birth_date);
    assert_ne!(updated.etag, created.etag, "a change makes a new etag");
    let got = f.get_applicant(&officer, &created.name).await.expect("get");
    assert_eq!((got.given_name.as_str(), got.phone.as_str(), got.etag.as_str()), ("Fatoumata", new_phone.as_str(), updated.etag.as_str()));

    // The first etag is stale now.
    let stale = c
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant { given_name: "Mariam".into(), ..changes.clone() }),
                update_mask: mask(&["given_name"]),
            },
            &officer,
        ))
        .await;
    assert_refused(stale, Code::Aborted, "ETAG_MISMATCH", "stale etag");
    assert_eq!(f.get_applicant(&officer, &created.name).await.expect("get").given_name, "Fatoumata", "a stale update changes nothing");

    // Searches follow the change: the old phone finds nobody, the new one the record.
    let by_old = f
        .client()
        .await
        .list_applicants(bearer(ListApplicantsRequest { phone: created.phone.clone(), ..Default::default() }, &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants;
    assert!(by_old.is_empty(), "the old phone no longer finds the record");
    let by_new = f
        .client()
        .await
        .list_applicants(bearer(ListApplicantsRequest { phone: new_phone.clone(), ..Default::default() }, &officer))
        .await
        .expect("list")
        .into_inner()
        .applicants;
    assert_eq!(by_new.len(), 1);

    // The document can be replaced; the new hint follows.
    let new_number = unique_document();
    let with_doc = c
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant {
                    name: created.name.clone(),
                    etag: updated.etag.clone(),
                    identity_document: Some(IdentityDocument {
                        r#type: DocumentType::ResidenceCard as i32,
                        number: new_number.clone(),
                        number_hint: String::new(),
                        issuing_country: "MA".into(),
                    }),
                    ..Applicant::default()
                }),
                update_mask: mask(&["identity_document"]),
            },
            &officer,
        ))
        .await
        .expect("update document")
        .into_inner()
        .applicant
        .expect("applicant");
    let doc = with_doc.identity_document.expect("doc");
    assert_eq!(doc.r#type, DocumentType::ResidenceCard as i32);
    assert!(doc.number_hint.ends_with(&new_number[new_number.len() - 3..]));
    assert!(doc.number.is_empty());

    // A mask naming a field that may not change is refused.
    let bad = c
        .update_applicant(bearer(
            UpdateApplicantRequest {
                applicant: Some(Applicant { name: created.name.clone(), ..Applicant::default() }),
                update_mask: mask(&["account"]),
            },
            &officer,
        ))
        .await;
    let status = assert_refused(bad, Code::InvalidArgument, "", "mask with an immutable field");
    assert_eq!(fields(&status), ["update_mask"]);
}

#[tokio::test]
async fn create_is_idempotent_on_request_id() {
    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let mut c = f.client().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let person = new_applicant("oujda");
    let request = CreateApplicantRequest { applicant: Some(person.clone()), request_id: request_id.clone() };
    let first = c.create_applicant(bearer(request.clone(), &officer)).await.expect("first").into_inner().applicant.expect("a");
    let again = c.create_applicant(bearer(request.clone(), &officer)).await.expect("replay").into_inner().applicant.expect("a");
    assert_eq!(first.name, again.name, "a retry returns the same record");
    assert_eq!(first.etag, again.etag);
    assert_eq!(f.count("SELECT count(*) FROM intake.applicants").await, 1, "one record");
    assert_eq!(f.events("intake.applicant.registered").await.len(), 1, "one event");

    // The same id for another person is a client bug: refused, nothing written.
    let before = f.table_counts().await;
    let other = CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: request_id.clone() };
    let status = assert_refused(c.create_applicant(bearer(other, &officer)).await, Code::InvalidArgument, "", "reused request id");
    assert_eq!(fields(&status), ["request_id"]);
    assert_eq!(f.table_counts().await, before);
}

#[tokio::test]
async fn the_idempotency_record_holds_a_keyed_digest_not_a_plain_hash_of_the_request() {
    use sha2::Digest as _;

    let f = fresh().await;
    let (_, officer) = f.officer("oujda");
    let mut c = f.client().await;
    let request = CreateApplicantRequest { applicant: Some(new_applicant("oujda")), request_id: uuid::Uuid::new_v4().to_string() };
    let first = c.create_applicant(bearer(request.clone(), &officer)).await.expect("create").into_inner().applicant.expect("a");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT request_hash FROM intake.idempotency_keys WHERE request_id = $1")
        .bind(&request.request_id)
        .fetch_one(&f.pool)
        .await
        .expect("the request's idempotency record");
    let plain = sha2::Sha256::digest(prost::Message::encode_to_vec(&request)).to_vec();
    assert!(!stored.is_empty());
    assert_ne!(stored, plain, "a plain SHA-256 of a request holding a phone and a document number can be confirmed by guessing");

    let again = c.create_applicant(bearer(request, &officer)).await.expect("replay").into_inner().applicant.expect("a");
    assert_eq!((again.name.as_str(), again.etag.as_str()), (first.name.as_str(), first.etag.as_str()), "the replay returns the record");
    assert_eq!(f.count("SELECT count(*) FROM intake.applicants").await, 1);
}
