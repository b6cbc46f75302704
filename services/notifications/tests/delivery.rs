//! How messages are delivered: once per event however often it arrives, retried through a
//! provider's outage and dead-lettered after it, refused for good on a 4xx, routed to the
//! person's channel in their language, kept from numbers that answered STOP and from people
//! who opted out or were erased, and followed by the providers' delivery reports. Everything
//! runs for real: intake and notifications in one host, PostgreSQL, Redis, and fake SMS,
//! WhatsApp and SMTP servers on loopback.

mod common;

use std::time::Duration;

use common::*;
use work4life_notifications::sms::{self, Encoding};
use work4life_proto::{
    intake::Outcome,
    notifications::{
        Channel, CreateTemplateRequest, DeliveryOutcome, GetMessageRequest, ListInboxItemsRequest, ListMessagesRequest, MessageKind,
        MessageState, ReceiveInboundMessageRequest, RecordDeliveryReportRequest, ReplayMessageRequest, Template,
    },
};

const REGISTERED: &str = "intake.applicant.registered";

/// The text of the one accepted SMS sent to `phone`.
fn sms_text_to(provider: &HttpProvider, phone: &str) -> String {
    let to_phone: Vec<work4life_testkit::ReceivedRequest> = provider.accepted().into_iter().filter(|r| r.body["to"] == phone).collect();
    assert_eq!(to_phone.len(), 1, "one accepted request to {phone}: {to_phone:#?}");
    to_phone[0].body["text"].as_str().expect("text").to_string()
}

/// Saves a new version of a template (as an admin) and returns its version.
async fn save_template(f: &Fixture, message_type: &str, channel: Channel, locale: &str, body: &str) -> i32 {
    let template = Template {
        message_type: message_type.into(),
        channel: channel as i32,
        locale: locale.into(),
        body: body.into(),
        ..Default::default()
    };
    let request = CreateTemplateRequest { template: Some(template), request_id: rid() };
    let saved = f.client().create_template(bearer(request, &f.token("admin"))).await.expect("template saved").into_inner();
    saved.template.expect("template").version
}

#[tokio::test]
async fn a_redelivered_event_makes_one_message_and_one_sms() {
    let f = Fixture::start().await;
    let applicant = f.register(person(&["fr"])).await;
    let first = f.wait_type(&applicant, REGISTERED, "sent").await;

    // The very event intake's relay published, as its outbox holds it, delivered three more times.
    let events = work4life_testkit::outbox_events(f.intake_pool(), REGISTERED).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(first.event_id.to_string(), event.id);
    for _ in 0..3 {
        f.publish("intake", event).await;
    }
    f.wait_consumed("intake").await;

    // Past the platform's inbox: the consumer forgets it saw the event, so the handler runs
    // again; the messages' unique (event, recipient, message type) still holds.
    let forgotten = sqlx::query("DELETE FROM inbox").execute(f.pool()).await.expect("inbox emptied").rows_affected();
    assert!(forgotten >= 1, "the registration was recorded in the inbox");
    f.publish("intake", event).await;
    f.wait_consumed("intake").await;
    let handled_again: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1").bind(first.event_id).fetch_one(f.pool()).await.expect("inbox");
    assert_eq!(handled_again, 1, "the republished event went through the handler again");

    let stored = f.stored().await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!((stored[0].id, stored[0].state.as_str(), stored[0].attempts), (first.id, "sent", 1));
    assert_eq!(f.sms.distinct_accepted_keys(), 1);
    assert_eq!(f.sms.requests().len(), 1);

    // A later event's message goes out after them; the first still went out once.
    let later = award_event(&[&applicant], 2_500_000);
    f.publish("grants", &later).await;
    let second = f.wait_event(&later, &applicant, "sent").await;
    let keys: Vec<String> = f.sms.requests().iter().map(|r| r.headers["idempotency-key"].clone()).collect();
    assert_eq!(keys, [first.id.to_string(), second.id.to_string()]);
    assert_eq!(f.stored().await.len(), 2);
}

#[tokio::test]
async fn a_provider_failing_then_recovering_gets_the_message_once_with_one_key() {
    let f = Fixture::start().await;
    f.sms.fail_next(2, 503);
    let applicant = f.register(person(&["fr"])).await;

    let m = f.wait_type(&applicant, REGISTERED, "sent").await;
    assert_eq!(m.attempts, 3);
    assert_eq!(m.last_error, "");
    assert_eq!(m.channel.as_deref(), Some("sms"));
    let requests = f.sms.requests();
    assert_eq!(requests.iter().map(|r| r.answered).collect::<Vec<_>>(), [503, 503, 200]);
    for r in &requests {
        assert_eq!(r.headers["idempotency-key"], m.id.to_string(), "every attempt carries the message's id");
        assert_eq!(r.body["reference"], m.id.to_string());
    }
    assert_eq!(m.provider_reference, "prov-1");
    assert_eq!(f.sms.distinct_accepted_keys(), 1);

    let api = f
        .client()
        .get_message(bearer(GetMessageRequest { name: format!("messages/{}", m.id) }, &f.token("admin")))
        .await
        .expect("message")
        .into_inner()
        .message
        .expect("message");
    assert_eq!((api.state, api.attempts, api.last_error.as_str()), (MessageState::Sent as i32, 3, ""));
    assert!(api.send_time.is_some());
}

#[tokio::test]
async fn a_provider_answering_too_late_still_sends_once() {
    let f = Fixture::with(&[
        ("W4L_NOTIFY_RETRY_BASE_MS", "50"),
        ("W4L_NOTIFY_RETRY_CAP_MS", "200"),
        // Room for a slow test machine between seeing the second attempt and lifting the delay.
        ("W4L_NOTIFY_MAX_ATTEMPTS", "8"),
        ("W4L_NOTIFY_QUIET_HOURS", "off"),
        ("W4L_NOTIFY_PROVIDER_TIMEOUT_MS", "100"),
    ])
    .await;
    // The provider takes the message but answers after the client gave up: the client tries
    // again with the same key, and the provider recognises it.
    f.sms.set_delay(Duration::from_millis(400));
    let applicant = f.register(person(&["fr"])).await;
    eventually("two attempts at the slow provider", Duration::from_secs(20), || async { (f.sms.requests().len() >= 2).then_some(()) })
        .await;
    f.sms.set_delay(Duration::ZERO);

    let m = f.wait_type(&applicant, REGISTERED, "sent").await;
    assert!(m.attempts >= 3, "{} attempts", m.attempts);
    let requests = f.sms.requests();
    assert_eq!(requests.len() as i32, m.attempts);
    assert!(requests.iter().all(|r| r.answered == 200 && r.headers["idempotency-key"] == m.id.to_string()));
    assert_eq!(f.sms.distinct_accepted_keys(), 1, "one message reached the person");
    assert_eq!(m.provider_reference, "prov-1", "the reference of the first, late, acceptance");
}

#[tokio::test]
async fn a_provider_down_for_good_makes_a_dead_letter_that_is_replayed() {
    let f = Fixture::start().await;
    f.sms.set_down(Some(503));
    let applicant = f.register(person(&["fr"])).await;

    let dead = f.wait_type(&applicant, REGISTERED, "dead").await;
    assert_eq!(dead.attempts, 4, "W4L_NOTIFY_MAX_ATTEMPTS");
    assert!(dead.last_error.contains("503"), "{}", dead.last_error);
    let requests = f.sms.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r.answered == 503 && r.headers["idempotency-key"] == dead.id.to_string()));

    let admin = f.token("admin");
    let name = format!("messages/{}", dead.id);
    let listed = f
        .client()
        .list_messages(bearer(ListMessagesRequest { state: MessageState::Dead as i32, ..Default::default() }, &admin))
        .await
        .expect("dead letters")
        .into_inner();
    assert_eq!(listed.messages.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), [name.as_str()]);
    assert_eq!(listed.messages[0].state, MessageState::Dead as i32);
    assert!(listed.messages[0].last_error.contains("503"));

    f.sms.set_down(None);
    let replayed =
        f.client().replay_message(bearer(ReplayMessageRequest { name: name.clone() }, &admin)).await.expect("replayed").into_inner();
    let replayed = replayed.message.expect("message");
    assert_eq!(replayed.name, name);
    // The dispatcher may already have taken it by the time the answer is read.
    match MessageState::try_from(replayed.state) {
        Ok(MessageState::Queued) => assert!(replayed.last_error.starts_with("replayed: "), "{}", replayed.last_error),
        Ok(MessageState::Sent) => {}
        other => panic!("a replayed message is queued again, not {other:?}"),
    }

    let sent = f.wait_type(&applicant, REGISTERED, "sent").await;
    assert_eq!(sent.id, dead.id);
    assert_eq!(sent.attempts, 1, "a replay starts the count again");
    assert_eq!(sent.last_error, "");
    let requests = f.sms.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[4].answered, 200);
    assert_eq!(f.sms.distinct_accepted_keys(), 1);

    let refused = f.client().replay_message(bearer(ReplayMessageRequest { name: name.clone() }, &admin)).await.expect_err("sent");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&refused), "NOT_REPLAYABLE");
    assert_eq!(f.sms.requests().len(), 5, "a refused replay sends nothing");
}

#[tokio::test]
async fn a_provider_refusal_fails_the_message_at_once() {
    let f = Fixture::start().await;
    f.sms.fail_next(1, 400);
    let applicant = f.register(person(&["fr"])).await;

    let failed = f.wait_type(&applicant, REGISTERED, "failed").await;
    assert_eq!(failed.attempts, 1, "a 4xx is not retried");
    assert!(failed.last_error.contains("400"), "{}", failed.last_error);
    assert_eq!(failed.provider_reference, "");
    // FAILED is final: nothing claims it again.
    assert_eq!(f.sms.requests().len(), 1);
    assert_eq!(f.sms.requests()[0].answered, 400);
}

#[tokio::test]
async fn stop_keeps_announcements_from_the_number_but_not_service_messages() {
    let f = Fixture::start().await;
    let mut with_email = person(&["en"]);
    with_email.given_name = "Salma".into();
    let (phone1, email1) = (with_email.phone.clone(), with_email.email.clone());
    let p1 = f.register(with_email).await;
    let mut phone_only = person(&["en"]);
    phone_only.email = String::new();
    let phone2 = phone_only.phone.clone();
    let p2 = f.register(phone_only).await;
    f.wait_type(&p1, REGISTERED, "sent").await;
    f.wait_type(&p2, REGISTERED, "sent").await;
    assert_eq!(f.sms.accepted().len(), 2);

    let gateway = f.token("gateway");
    let inbound =
        |sender: &str, text: &str| ReceiveInboundMessageRequest { channel: Channel::Sms as i32, sender: sender.into(), text: text.into() };
    let stop1 = f.client().receive_inbound_message(bearer(inbound(&phone1, "ARRÊT"), &gateway)).await.expect("inbound").into_inner();
    assert!(stop1.opted_out);
    let stop2 = f.client().receive_inbound_message(bearer(inbound(&phone2, " توقف "), &gateway)).await.expect("inbound").into_inner();
    assert!(stop2.opted_out);
    assert_eq!(count(f.pool(), "SELECT count(*) FROM opted_out_numbers").await, 2);
    assert_eq!(count(f.pool(), "SELECT count(*) FROM opted_out_numbers WHERE channel = 'sms'").await, 2);
    let thanks = f.client().receive_inbound_message(bearer(inbound(&phone1, "merci"), &gateway)).await.expect("inbound").into_inner();
    assert!(!thanks.opted_out, "a thank-you is not a STOP");
    assert_eq!(count(f.pool(), "SELECT count(*) FROM opted_out_numbers").await, 2);

    // An announcement: SMS and WhatsApp are that number; the person with an email gets it there.
    let again1 = registered_event(&p1);
    let again2 = registered_event(&p2);
    f.publish("intake", &again1).await;
    f.publish("intake", &again2).await;
    let by_email = f.wait_event(&again1, &p1, "sent").await;
    assert_eq!(by_email.channel.as_deref(), Some("email"));
    let mails = f.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, [email1.as_str()]);
    assert!(mails[0].data.contains("Hello Salma"), "{}", mails[0].data);
    let skipped = f.wait_event(&again2, &p2, "skipped").await;
    assert!(skipped.last_error.starts_with("no usable channel ("), "{}", skipped.last_error);
    assert!(skipped.last_error.contains("sms: the number answered STOP"), "{}", skipped.last_error);
    assert!(skipped.last_error.contains("email: no email"), "{}", skipped.last_error);
    assert_eq!(skipped.channel, None);

    // A payment is a service message: it still goes to the number, for both.
    let paid = paid_event(&[&p1, &p2], 1_000_000, "BMCE-2026-0042");
    f.publish("grants", &paid).await;
    let paid1 = f.wait_event(&paid, &p1, "sent").await;
    let paid2 = f.wait_event(&paid, &p2, "sent").await;
    assert_eq!((paid1.channel.as_deref(), paid2.channel.as_deref()), (Some("sms"), Some("sms")));
    let accepted = f.sms.accepted();
    assert_eq!(accepted.len(), 4, "two registrations before STOP, two payments after: {accepted:#?}");
    let keys: Vec<String> = accepted[2..].iter().map(|r| r.headers["idempotency-key"].clone()).collect();
    assert!(keys.contains(&paid1.id.to_string()) && keys.contains(&paid2.id.to_string()));
    assert_eq!(f.smtp.messages().len(), 1);
}

#[tokio::test]
async fn the_locale_follows_the_languages_then_the_default_and_the_newest_version_is_used() {
    let f = Fixture::start().await;
    let wolof_english = person(&["wo", "en"]);
    let wolof = person(&["wo"]);
    let moroccan_arabic = person(&["ar-MA"]);
    let phones = [wolof_english.phone.clone(), wolof.phone.clone(), moroccan_arabic.phone.clone()];
    let a = f.register(wolof_english).await;
    let b = f.register(wolof).await;
    let c = f.register(moroccan_arabic).await;
    let (ma, mb, mc) =
        (f.wait_type(&a, REGISTERED, "sent").await, f.wait_type(&b, REGISTERED, "sent").await, f.wait_type(&c, REGISTERED, "sent").await);
    assert_eq!((ma.locale.as_str(), mb.locale.as_str(), mc.locale.as_str()), ("en", "fr", "ar"));
    assert_eq!((ma.template_version, mb.template_version, mc.template_version), (1, 1, 1));
    assert!(sms_text_to(&f.sms, &phones[0]).starts_with("Hello Awa, you are now registered with WORK4LIFE."));
    assert!(sms_text_to(&f.sms, &phones[1]).starts_with("Bonjour Awa, votre inscription à WORK4LIFE est enregistrée."));
    assert!(sms_text_to(&f.sms, &phones[2]).starts_with("مرحبا Awa، تم تسجيلكم في برنامج WORK4LIFE."));

    let version = save_template(&f, REGISTERED, Channel::Sms, "en", "WORK4LIFE: welcome {{given_name}}, this is version two.").await;
    assert_eq!(version, 2);
    let mut next = person(&["wo", "en"]);
    next.given_name = "Zeynab".into();
    let next_phone = next.phone.clone();
    let d = f.register(next).await;
    let md = f.wait_type(&d, REGISTERED, "sent").await;
    assert_eq!((md.locale.as_str(), md.template_version), ("en", 2));
    assert_eq!(sms_text_to(&f.sms, &next_phone), "WORK4LIFE: welcome Zeynab, this is version two.");
}

#[tokio::test]
async fn segments_are_counted_on_the_text_sent() {
    let f = Fixture::start().await;
    let mut arabic = person(&["ar"]);
    arabic.given_name = "Fatima".into();
    let arabic_phone = arabic.phone.clone();
    let mut french = person(&["fr"]);
    french.given_name = "Fatou".into();
    let ar = f.register(arabic).await;
    let fr = f.register(french).await;

    let registered = f.wait_type(&ar, REGISTERED, "sent").await;
    let text = sms_text_to(&f.sms, &arabic_phone);
    assert_eq!(sms::size(&text).encoding, Encoding::Ucs2);
    assert_eq!(registered.segments as usize, sms::size(&text).segments, "{text}");
    f.wait_type(&fr, REGISTERED, "sent").await;

    // A long Arabic text (UCS-2: 67 units a part) and a French one of exactly 100 GSM characters.
    let long_arabic = format!("مرحبا {{{{given_name}}}}، {} {{{{amount}}}}", "سلام".repeat(25));
    assert_eq!(save_template(&f, "grants.award.created", Channel::Sms, "ar", &long_arabic).await, 2);
    let hundred = format!("{:.<100}", "WORK4LIFE : votre aide est accordée. Votre bureau vous appellera");
    assert_eq!(hundred.chars().count(), 100);
    assert_eq!(save_template(&f, "grants.award.created", Channel::Sms, "fr", &hundred).await, 2);

    let award = award_event(&[&ar, &fr], 1_250_050);
    f.publish("grants", &award).await;
    let ar_award = f.wait_event(&award, &ar, "sent").await;
    let fr_award = f.wait_event(&award, &fr, "sent").await;
    let accepted = f.sms.accepted();
    let text_of = |id: uuid::Uuid| -> String {
        let r = accepted.iter().find(|r| r.headers["idempotency-key"] == id.to_string()).expect("sent");
        r.body["text"].as_str().expect("text").to_string()
    };
    let ar_text = text_of(ar_award.id);
    assert!(ar_text.contains("Fatima") && ar_text.contains("12500.50 MAD") && ar_text.contains(&"سلام".repeat(25)), "{ar_text}");
    assert_eq!(ar_award.template_version, 2);
    assert_eq!(ar_award.segments as usize, sms::size(&ar_text).segments);
    assert!(ar_award.segments >= 2, "{} UTF-16 units", sms::size(&ar_text).units);
    let fr_text = text_of(fr_award.id);
    assert_eq!(fr_text, hundred);
    assert_eq!(sms::size(&fr_text).encoding, Encoding::Gsm7);
    assert_eq!(fr_award.segments, 1);
}

#[tokio::test]
async fn email_and_whatsapp_carry_what_their_protocols_need() {
    let f = Fixture::start().await;
    let mut by_email = person(&["en"]);
    by_email.given_name = "Mariam".into();
    let email = by_email.email.clone();
    let p = f.register(by_email).await;
    let mut by_whatsapp = person(&["en"]);
    by_whatsapp.given_name = "Khadija".into();
    let whatsapp_phone = by_whatsapp.phone.clone();
    let q = f.register(by_whatsapp).await;
    f.wait_type(&p, REGISTERED, "sent").await;
    f.wait_type(&q, REGISTERED, "sent").await;
    f.set_preferences(&p, &[Channel::Email], "", &[]).await;
    f.set_preferences(&q, &[Channel::Whatsapp], "", &[]).await;

    // The relay says "try again later" once (451): the mail goes at the second attempt.
    f.smtp.fail_next(1);
    let (submitted, application) = submitted_event(&[&p]);
    f.publish("intake", &submitted).await;
    let m = f.wait_event(&submitted, &p, "sent").await;
    assert_eq!((m.channel.as_deref(), m.locale.as_str()), (Some("email"), "en"));
    assert_eq!(m.attempts, 2);
    let mails = f.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, [email.as_str()]);
    let reference = short_reference(&application);
    let header = |name: &str| -> String {
        let prefix = format!("{name}: ");
        mail.data.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name} header in {}", mail.data)).to_string()
    };
    assert_eq!(header("Subject"), format!("Application {reference} submitted"));
    assert!(header("To").contains(&email), "{}", header("To"));
    assert!(header("Message-ID").contains(&m.id.to_string()), "{}", header("Message-ID"));
    let (_, body) = mail.data.split_once("\r\n\r\n").expect("headers, then the body");
    assert!(body.starts_with("Hello Mariam,"), "{body}");
    assert!(body.contains(&format!("Reference: {reference}")), "{body}");
    assert_eq!(f.sms.accepted().len(), 2, "the registrations only");

    let (decided, accepted_application) = decided_event(&[&q], Outcome::Accepted, "A clear, costed plan");
    f.publish("intake", &decided).await;
    let w = f.wait_event(&decided, &q, "sent").await;
    assert_eq!((w.message_type.as_str(), w.channel.as_deref(), w.locale.as_str()), ("intake.application.accepted", Some("whatsapp"), "en"));
    let requests = f.whatsapp.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(body["to"], whatsapp_phone.as_str());
    assert_eq!(body["template"]["name"], "w4l_application_accepted_v1");
    assert_eq!(body["template"]["language"], "en");
    assert_eq!(
        body["template"]["parameters"],
        serde_json::json!(["Khadija", short_reference(&accepted_application), "A clear, costed plan"]),
        "the values in the order the template uses them"
    );
    assert_eq!(body["reference"], w.id.to_string());
    assert_eq!(requests[0].headers["idempotency-key"], w.id.to_string());
    assert_eq!(w.provider_reference, "prov-1");
    assert_eq!(f.sms.accepted().len(), 2);
}

#[tokio::test]
async fn a_person_without_phone_or_email_is_reported_and_keeps_the_inbox_copy() {
    let f = Fixture::start().await;
    let mut unreachable = person(&["fr"]);
    unreachable.given_name = "Aminata".into();
    unreachable.phone = String::new();
    unreachable.email = String::new();
    let applicant = f.register(unreachable).await;

    let m = f.wait_type(&applicant, REGISTERED, "skipped").await;
    assert_eq!(m.last_error, "no usable channel (sms: no phone; whatsapp: no phone; email: no email)");
    assert_eq!(m.channel, None);
    assert_eq!(m.attempts, 0);
    assert_eq!(f.inbox_copies(m.id).await, 1);
    let inbox = f
        .client()
        .list_inbox_items(bearer(ListInboxItemsRequest { parent: applicant.clone(), ..Default::default() }, &f.token("admin")))
        .await
        .expect("inbox")
        .into_inner();
    assert_eq!(inbox.inbox_items.len(), 1);
    assert_eq!(inbox.inbox_items[0].message, format!("messages/{}", m.id));
    assert_eq!(inbox.inbox_items[0].locale, "fr");
    assert!(inbox.inbox_items[0].body.contains("Aminata"), "{}", inbox.inbox_items[0].body);
    assert!(f.sms.requests().is_empty() && f.whatsapp.requests().is_empty() && f.smtp.messages().is_empty());
}

#[tokio::test]
async fn opted_out_kinds_are_skipped_but_service_messages_are_sent() {
    let f = Fixture::start().await;
    let applicant = f.register(person(&["fr"])).await;
    f.wait_type(&applicant, REGISTERED, "sent").await;
    f.set_preferences(&applicant, &[], "", &[MessageKind::Update]).await;

    let update = award_event(&[&applicant], 2_000_000);
    f.publish("grants", &update).await;
    let skipped = f.wait_event(&update, &applicant, "skipped").await;
    assert_eq!(skipped.kind, "update");
    assert!(skipped.last_error.contains("opted out"), "{}", skipped.last_error);
    // The in-app inbox is not a push: it keeps the copy.
    assert_eq!(f.inbox_copies(skipped.id).await, 1);

    let paid = paid_event(&[&applicant], 2_000_000, "CIH-77");
    f.publish("grants", &paid).await;
    let sent = f.wait_event(&paid, &applicant, "sent").await;
    assert_eq!((sent.kind.as_str(), sent.channel.as_deref()), ("service", Some("sms")));
    let keys: Vec<String> = f.sms.accepted().iter().map(|r| r.headers["idempotency-key"].clone()).collect();
    assert_eq!(keys.len(), 2, "the registration and the payment");
    assert_eq!(keys[1], sent.id.to_string());
}

#[tokio::test]
async fn a_one_time_code_reaches_the_phone_and_is_not_kept() {
    let f = Fixture::start().await;
    let account = format!("accounts/{}", uuid::Uuid::now_v7());
    let phone = person(&["fr"]).phone;
    let code = "482913";
    let event = otp_event(&account, &phone, code, 10);
    f.publish("identity", &event).await;

    let m = f.wait_event(&event, &account, "sent").await;
    assert_eq!((m.kind.as_str(), m.channel.as_deref(), m.locale.as_str()), ("service", Some("sms"), "fr"));
    let requests = f.sms.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(requests[0].body["to"], phone.as_str());
    assert_eq!(
        requests[0].body["text"],
        format!("Votre code WORK4LIFE : {code}. Il est valable 10 minutes. Ne le partagez avec personne.")
    );
    assert_eq!(m.sealed, None, "the sealed code and phone are erased once sent");
    assert_eq!(m.sealed_key, None);
    assert!(!m.variables.contains(code) && !m.variables.contains(&phone), "{}", m.variables);
    let anywhere: i64 = sqlx::query_scalar("SELECT count(*) FROM messages m WHERE m::text LIKE '%' || $1 || '%'")
        .bind(code)
        .fetch_one(f.pool())
        .await
        .expect("messages");
    assert_eq!(anywhere, 0, "the code is in no column of the message");
    assert_eq!(count(f.pool(), "SELECT count(*) FROM inbox_items").await, 0, "a login's code has no inbox copy");
}

#[tokio::test]
async fn delivery_reports_move_messages_forward_only() {
    let f = Fixture::start().await;
    let p1 = f.register(person(&["fr"])).await;
    let p2 = f.register(person(&["fr"])).await;
    let m1 = f.wait_type(&p1, REGISTERED, "sent").await;
    let m2 = f.wait_type(&p2, REGISTERED, "sent").await;
    assert!(!m1.provider_reference.is_empty() && m1.provider_reference != m2.provider_reference);

    let gateway = f.token("gateway");
    let report = |reference: &str, outcome: DeliveryOutcome, error: &str| RecordDeliveryReportRequest {
        channel: Channel::Sms as i32,
        provider_reference: reference.into(),
        outcome: outcome as i32,
        error: error.into(),
    };
    let delivered = f
        .client()
        .record_delivery_report(bearer(report(&m1.provider_reference, DeliveryOutcome::Delivered, ""), &gateway))
        .await
        .expect("report")
        .into_inner()
        .message
        .expect("message");
    assert_eq!(delivered.name, format!("messages/{}", m1.id));
    assert_eq!(delivered.state, MessageState::Delivered as i32);
    let deliver_time = delivered.deliver_time.expect("deliver_time");

    let again = f
        .client()
        .record_delivery_report(bearer(report(&m1.provider_reference, DeliveryOutcome::Delivered, ""), &gateway))
        .await
        .expect("report")
        .into_inner()
        .message
        .expect("message");
    assert_eq!(again.state, MessageState::Delivered as i32);
    assert_eq!(again.deliver_time, Some(deliver_time), "the first report's time stays");
    let late = f
        .client()
        .record_delivery_report(bearer(report(&m1.provider_reference, DeliveryOutcome::Undeliverable, "expired"), &gateway))
        .await
        .expect("report")
        .into_inner()
        .message
        .expect("message");
    assert_eq!(late.state, MessageState::Delivered as i32, "a late failure does not undo a delivery");
    assert_eq!(late.last_error, "");

    let undeliverable = f
        .client()
        .record_delivery_report(bearer(
            report(&m2.provider_reference, DeliveryOutcome::Undeliverable, "absent subscriber (EC 27)"),
            &gateway,
        ))
        .await
        .expect("report")
        .into_inner()
        .message
        .expect("message");
    assert_eq!(undeliverable.name, format!("messages/{}", m2.id));
    assert_eq!(undeliverable.state, MessageState::Failed as i32);
    assert_eq!(undeliverable.last_error, "absent subscriber (EC 27)");
    assert_eq!(undeliverable.deliver_time, None);
    let stored = f.stored().await;
    let state_of = |id| stored.iter().find(|m| m.id == id).map(|m| m.state.clone()).expect("stored");
    assert_eq!((state_of(m1.id), state_of(m2.id)), ("delivered".to_string(), "failed".to_string()));
}

#[tokio::test]
async fn a_person_erased_before_the_send_gets_nothing() {
    let f = Fixture::start().await;
    let applicant = f.register(person(&["fr"])).await;
    f.wait_type(&applicant, REGISTERED, "sent").await;
    f.erase(&applicant).await;

    let award = award_event(&[&applicant], 3_000_000);
    f.publish("grants", &award).await;
    let skipped = f.wait_event(&award, &applicant, "skipped").await;
    assert!(skipped.last_error.contains("erased"), "{}", skipped.last_error);
    assert_eq!(skipped.channel, None);
    assert_eq!(f.inbox_copies(skipped.id).await, 0, "nothing is rendered for an erased person");
    assert_eq!(f.sms.requests().len(), 1, "the registration only");
    assert!(f.smtp.messages().is_empty() && f.whatsapp.requests().is_empty());
}

#[tokio::test]
async fn an_erased_person_s_message_bodies_are_forgotten() {
    let f = Fixture::start().await;
    let mut someone = person(&["fr"]);
    someone.given_name = "Zainab".into();
    let applicant = f.register(someone).await;
    let m = f.wait_type(&applicant, REGISTERED, "sent").await;
    let bodies_naming = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM inbox_items WHERE applicant_id = $1 AND (body LIKE '%Zainab%' OR title LIKE '%Zainab%')",
        )
        .bind(id_of(&applicant))
        .fetch_one(f.pool())
        .await
        .expect("inbox")
    };
    assert_eq!(f.inbox_copies(m.id).await, 1);
    assert_eq!(bodies_naming().await, 1, "the inbox copy is rendered with the name");

    // intake.applicant.erased: "consumers forget what they hold of it (contact details, message bodies)".
    f.erase(&applicant).await;
    eventually("intake.applicant.erased on the stream", Duration::from_secs(20), || async {
        f.redis.stream_events("w4l:events:intake").await.iter().any(|e| e.r#type == "intake.applicant.erased").then_some(())
    })
    .await;
    f.wait_consumed("intake").await;
    assert_eq!(bodies_naming().await, 0, "the inbox still holds the erased person's name");
}
