//! Journeys across the five services, each run twice: all services in one process, and split
//! into five processes talking over gRPC (issue #9). Every call goes over real sockets to the
//! real binary; the SMS provider and the mail relay are real servers the test starts.

use std::time::Duration;

use work4life_proto::intake::{Applicant, CreateApplicantRequest, Gender, intake_service_client::IntakeServiceClient};
use work4life_testkit::bearer;
use work4life_tests::{
    steps::{consent, digits, has_arabic, passport},
    world::{Mode, World},
};

fn migrant(given: &str, languages: &[&str], phone: &str) -> Applicant {
    Applicant {
        given_name: given.into(),
        family_name: format!("Journey{}", &phone[phone.len() - 6..]),
        birth_date: "1996-03-14".into(),
        gender: Gender::Female as i32,
        nationality: "SN".into(),
        languages: languages.iter().map(|l| (*l).to_string()).collect(),
        zone: "tanger".into(),
        phone: phone.into(),
        identity_document: Some(passport(format!("P{}", &phone[phone.len() - 8..]), "SN")),
        consent: Some(consent()),
        ..Applicant::default()
    }
}

/// A person registered in Tanger hears of it by SMS in their language, once: intake's event
/// crosses Redis to notifications, which reads the person back from intake with its own token.
async fn a_registration_is_told_once(mode: Mode) {
    let world = World::start(mode).await.expect("world");
    let (_, officer) = world.token("officer", Some(uuid::Uuid::now_v7()), &["tanger"]);
    let phone = format!("+2126{}", digits(8));
    let mut intake = IntakeServiceClient::new(world.channel("intake"));
    intake
        .create_applicant(bearer(
            CreateApplicantRequest {
                applicant: Some(migrant("Mariam", &["ar", "fr"], &phone)),
                request_id: uuid::Uuid::new_v4().to_string(),
            },
            &officer,
        ))
        .await
        .expect("registered");
    let sent = world.sms.wait_accepted(1, Duration::from_secs(30)).await;
    assert_eq!(sent[0].body["to"], phone.as_str());
    let text = sent[0].body["text"].as_str().unwrap_or_default();
    assert!(text.contains("Mariam") && has_arabic(text), "in Arabic, with her name: {text}");
    // A second registration is the marker: once its SMS is in, nothing more came for the first.
    let marker = format!("+2126{}", digits(8));
    intake
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(migrant("Awa", &["fr"], &marker)), request_id: uuid::Uuid::new_v4().to_string() },
            &officer,
        ))
        .await
        .expect("registered");
    let sent = world.sms.wait_accepted(2, Duration::from_secs(30)).await;
    assert_eq!(sent.iter().filter(|r| r.body["to"] == phone.as_str()).count(), 1, "told once");
    assert_eq!(world.sms.requests().len(), 2);
    world.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_registration_is_told_once_all_in_one() {
    a_registration_is_told_once(Mode::AllInOne).await;
}

#[tokio::test]
async fn a_registration_is_told_once_split() {
    a_registration_is_told_once(Mode::Split).await;
}
