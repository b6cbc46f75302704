//! When messages go out: quiet hours hold announcements (not codes, not email) until they end,
//! and a coaching session brings its confirmation now and its reminder a day before, written in
//! the office's local time; a cancelled session takes its reminder back.

mod common;

use std::time::Duration;

use common::*;
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_proto::notifications::{Channel, GetMessageRequest, MessageState};

const REGISTERED: &str = "intake.applicant.registered";
const ZONE: &str = "Africa/Casablanca";

/// `instant` written in `zone` as `YYYY-MM-DD HH:MM`, by PostgreSQL's time zone database.
async fn local(pool: &sqlx::PgPool, instant: OffsetDateTime, zone: &str) -> String {
    sqlx::query_scalar("SELECT to_char(to_timestamp($1::double precision) AT TIME ZONE $2, 'YYYY-MM-DD HH24:MI')")
        .bind(instant.unix_timestamp() as f64)
        .bind(zone)
        .fetch_one(pool)
        .await
        .expect("local time")
}

#[tokio::test]
async fn quiet_hours_hold_announcements_but_not_codes_or_email() {
    // Quiet hours from an hour ago to an hour from now in Casablanca (the clock of people whose
    // events name no zone), read from PostgreSQL: Morocco is UTC+1 except during Ramadan.
    let server = sqlx::PgPool::connect(&format!("{}/postgres", work4life_testkit::server_url())).await.expect("server");
    let (from, to, end): (String, String, OffsetDateTime) = sqlx::query_as(
        "SELECT to_char(now() AT TIME ZONE $1 - interval '1 hour', 'HH24:MI'), \
                to_char(now() AT TIME ZONE $1 + interval '1 hour', 'HH24:MI'), \
                date_trunc('minute', now()) + interval '1 hour'",
    )
    .bind(ZONE)
    .fetch_one(&server)
    .await
    .expect("the clock in Casablanca");
    server.close().await;
    let window = format!("{from}-{to}"); // wraps over midnight when `from` > `to`
    let mut settings: Vec<(&str, &str)> = FAST_RETRIES.iter().copied().filter(|(k, _)| *k != "W4L_NOTIFY_QUIET_HOURS").collect();
    settings.push(("W4L_NOTIFY_QUIET_HOURS", &window));
    let f = Fixture::with(&settings).await;

    // An announcement by SMS waits for the end of the window.
    let mut night = person(&["fr"]);
    night.given_name = "Houda".into();
    let a = f.register(night).await;
    let held = f.wait_stored("the registration held", |m| m.recipient == a && m.last_error == "held by quiet hours").await;
    assert_eq!(held.state, "queued");
    assert_eq!(held.channel.as_deref(), Some("sms"));
    assert_eq!(held.attempts, 0, "a hold is not an attempt");
    assert_eq!(held.due_at, end, "due when the window {window} ends");
    let api = f
        .client()
        .get_message(bearer(GetMessageRequest { name: format!("messages/{}", held.id) }, &f.token("admin")))
        .await
        .expect("message")
        .into_inner()
        .message
        .expect("message");
    assert_eq!(api.state, MessageState::Queued as i32);
    assert_eq!(api.due_time.expect("due_time").seconds, end.unix_timestamp());
    assert_eq!(api.last_error, "held by quiet hours");
    assert_eq!(f.inbox_copies(held.id).await, 1, "the inbox copy does not wait");

    // A one-time code goes at once.
    let account = format!("accounts/{}", Uuid::now_v7());
    let code_phone = person(&["fr"]).phone;
    let otp = otp_event(&account, &code_phone, "730152", 5);
    f.publish("identity", &otp).await;
    f.wait_event(&otp, &account, "sent").await;
    let requests = f.sms.requests();
    assert_eq!(requests.len(), 1, "the code only, not the held announcement: {requests:#?}");
    assert_eq!(requests[0].body["to"], code_phone.as_str());

    // Email is not held: a person who reads email first gets the announcement now.
    let mut reader = person(&["en"]);
    let email = reader.email.clone();
    reader.given_name = "Imane".into();
    let b = f.register(reader).await;
    f.wait_stored("the second registration held", |m| m.recipient == b && m.last_error == "held by quiet hours").await;
    f.set_preferences(&b, &[Channel::Email], "", &[]).await;
    let (submitted, _) = submitted_event(&[&b]);
    f.publish("intake", &submitted).await;
    let mailed = f.wait_event(&submitted, &b, "sent").await;
    assert_eq!(mailed.channel.as_deref(), Some("email"));
    let mails = f.smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, [email.as_str()]);

    assert_eq!(f.sms.requests().len(), 1, "still the code only");
    let waiting: Vec<Stored> = f.stored().await.into_iter().filter(|m| m.message_type == REGISTERED).collect();
    assert_eq!(waiting.len(), 2);
    assert!(waiting.iter().all(|m| m.state == "queued" && m.due_at == end && m.last_error == "held by quiet hours"), "{waiting:#?}");
}

#[tokio::test]
async fn a_session_is_confirmed_now_reminded_a_day_before_and_cancelled_with_its_reminder() {
    let f = Fixture::start().await;
    let mut participant = person(&["fr"]);
    participant.given_name = "Nadia".into();
    let phone = participant.phone.clone();
    let p = f.register(participant).await;
    f.wait_type(&p, REGISTERED, "sent").await;
    let text_of = |id: Uuid| -> String {
        let accepted = f.sms.accepted();
        let r = accepted.iter().find(|r| r.headers["idempotency-key"] == id.to_string()).expect("sent to the provider");
        assert_eq!(r.body["to"], phone.as_str());
        r.body["text"].as_str().expect("text").to_string()
    };

    let start = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns").replace_second(0).expect("s") + time::Duration::days(3);
    let start_local = local(f.pool(), start, ZONE).await;
    let session = format!("sessions/{}", Uuid::now_v7());
    let scheduled = session_event("coaching.session.scheduled", &session, &[&p], "offices/tanger/rooms/b", start, ZONE, "");
    f.publish("coaching", &scheduled).await;
    let confirmation = f.wait_event(&scheduled, &p, "sent").await;
    assert_eq!((confirmation.message_type.as_str(), confirmation.kind.as_str()), ("coaching.session.scheduled", "reminder"));
    assert_eq!(
        text_of(confirmation.id),
        format!("Bonjour Nadia, séance de coaching WORK4LIFE le {start_local}. Lieu : tanger / b. Absent(e) ? Prévenez votre coach.")
    );
    let reminder = f
        .stored()
        .await
        .into_iter()
        .find(|m| m.message_type == "coaching.session.reminder" && m.about == session)
        .expect("a reminder is stored with the confirmation");
    assert_eq!(reminder.state, "queued");
    assert_eq!(reminder.due_at, start - time::Duration::hours(24));
    assert_eq!(reminder.event_id, confirmation.event_id);

    let cancelled = session_event("coaching.session.cancelled", &session, &[&p], "offices/tanger/rooms/b", start, ZONE, "coach unwell");
    f.publish("coaching", &cancelled).await;
    let cancellation = f.wait_event(&cancelled, &p, "sent").await;
    assert_eq!(cancellation.message_type, "coaching.session.cancelled");
    let text = text_of(cancellation.id);
    assert!(
        text.starts_with(&format!("Bonjour Nadia, votre séance de coaching WORK4LIFE du {start_local} est annulée. Motif : coach unwell.")),
        "{text}"
    );
    let taken_back = f.wait_stored("the reminder skipped", |m| m.id == reminder.id && m.state == "skipped").await;
    assert!(taken_back.last_error.contains("moved or cancelled"), "{}", taken_back.last_error);

    // A second, remote session; its reminder is made due now. Setting `due_at` in the database
    // stands for the two days that would pass before it.
    let start2 = start + time::Duration::days(1) + time::Duration::minutes(30);
    let start2_local = local(f.pool(), start2, ZONE).await;
    let session2 = format!("sessions/{}", Uuid::now_v7());
    let scheduled2 = session_event("coaching.session.scheduled", &session2, &[&p], "", start2, ZONE, "");
    f.publish("coaching", &scheduled2).await;
    f.wait_event(&scheduled2, &p, "sent").await;
    let reminder2 = f.wait_stored("the second reminder", |m| m.message_type == "coaching.session.reminder" && m.about == session2).await;
    assert_eq!((reminder2.state.as_str(), reminder2.due_at), ("queued", start2 - time::Duration::hours(24)));
    sqlx::query("UPDATE messages SET due_at = now() WHERE id = $1").bind(reminder2.id).execute(f.pool()).await.expect("due now");
    let reminded = f.wait_stored("the second reminder sent", |m| m.id == reminder2.id && m.state == "sent").await;
    assert_eq!(reminded.channel.as_deref(), Some("sms"));
    assert_eq!(
        text_of(reminded.id),
        format!("Rappel Nadia : séance de coaching WORK4LIFE le {start2_local}. Lieu : à distance. Absent(e) ? Prévenez votre coach.")
    );

    // Registration, two confirmations, the cancellation, the second reminder: never the first reminder.
    let sent: Vec<String> = f.sms.accepted().iter().map(|r| r.headers["idempotency-key"].clone()).collect();
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert!(!sent.contains(&reminder.id.to_string()));
}

#[tokio::test]
async fn a_redelivered_reschedule_keeps_the_reminder_it_made() {
    let f = Fixture::start().await;
    let p = f.register(person(&["fr"])).await;
    f.wait_type(&p, REGISTERED, "sent").await;
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns").replace_second(0).expect("s") + time::Duration::days(3);
    let session = format!("sessions/{}", Uuid::now_v7());
    let scheduled = session_event("coaching.session.scheduled", &session, &[&p], "offices/tanger/rooms/b", start, ZONE, "");
    f.publish("coaching", &scheduled).await;
    f.wait_event(&scheduled, &p, "sent").await;

    let moved = start + time::Duration::days(1);
    let rescheduled = session_event("coaching.session.rescheduled", &session, &[&p], "offices/tanger/rooms/b", moved, ZONE, "room taken");
    f.publish("coaching", &rescheduled).await;
    let notice = f.wait_event(&rescheduled, &p, "sent").await;
    assert_eq!(notice.message_type, "coaching.session.rescheduled");
    let reminders: Vec<Stored> = f.stored().await.into_iter().filter(|m| m.message_type == "coaching.session.reminder").collect();
    assert_eq!(reminders.len(), 2, "{reminders:#?}");
    let (old, new) = (&reminders[0], &reminders[1]);
    assert_eq!((old.state.as_str(), old.last_error.as_str()), ("skipped", "the session was moved or cancelled"));
    assert_eq!(new.event_id.to_string(), rescheduled.id);
    assert_eq!((new.state.as_str(), new.due_at), ("queued", moved - time::Duration::hours(24)));

    // The same reschedule delivered again past the platform's inbox (a consumer that lost its
    // inbox rows, a stream replayed by an operator): it must change nothing, as every other
    // redelivered event; the reminder it made is still the session's reminder.
    sqlx::query("DELETE FROM inbox").execute(f.pool()).await.expect("inbox emptied");
    f.publish("coaching", &rescheduled).await;
    f.wait_consumed("coaching").await;
    let after: Vec<Stored> = f.stored().await.into_iter().filter(|m| m.message_type == "coaching.session.reminder").collect();
    assert_eq!(after.len(), 2);
    assert_eq!(
        (after[1].id, after[1].state.as_str(), after[1].last_error.as_str()),
        (new.id, "queued", ""),
        "the redelivered reschedule cancelled its own reminder"
    );
}
