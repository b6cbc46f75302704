//! The whole path once: a person registered in intake hears of it by SMS, in their language,
//! with their name read from intake at send time; the inbox holds a copy.

mod common;

use std::time::Duration;

use common::*;
use work4life_proto::notifications::{Channel, ListInboxItemsRequest, MessageState};

#[tokio::test]
async fn a_registration_becomes_one_sms_in_the_persons_language() {
    let f = Fixture::start().await;
    let mut someone = person(&["ar", "fr"]);
    someone.given_name = "Fatou".into();
    let phone = someone.phone.clone();
    let applicant = f.register(someone).await;

    let sent = f.wait_state(&applicant, "intake.applicant.registered", "sent").await;
    assert_eq!(sent.channel, Channel::Sms as i32);
    assert_eq!(sent.locale, "ar", "the first of the person's languages with a template");
    assert_eq!(sent.state, MessageState::Sent as i32);
    assert!(sent.segments >= 1);
    let requests = f.sms.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(requests[0].body["to"], phone.as_str());
    let text = requests[0].body["text"].as_str().expect("text");
    assert!(text.contains("Fatou"), "the name is read from intake at send time: {text}");
    assert!(text.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)), "Arabic: {text}");
    assert_eq!(requests[0].headers["idempotency-key"], sent.name.trim_start_matches("messages/"));
    assert_eq!(sent.provider_reference, requests[0].body.get("reference").map_or(String::new(), |_| sent.provider_reference.clone()));

    let admin = f.token("admin");
    let inbox = f
        .client()
        .list_inbox_items(bearer(ListInboxItemsRequest { parent: applicant.clone(), ..Default::default() }, &admin))
        .await
        .expect("inbox")
        .into_inner();
    assert_eq!(inbox.inbox_items.len(), 1);
    assert_eq!(inbox.unread_count, 1);
    assert!(inbox.inbox_items[0].body.contains("Fatou"));
}
