//! A Redis outage while events keep coming: intake keeps registering people (their events wait in
//! intake's outbox), and once Redis is back every person gets their message exactly once.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::*;
use tokio::time::Instant;

const REGISTERED: &str = "intake.applicant.registered";

/// Registers a French-speaking person; returns (applicant, phone).
async fn register_one(f: &Fixture) -> (String, String) {
    let someone = person(&["fr"]);
    let phone = someone.phone.clone();
    (f.register(someone).await, phone)
}

async fn sent_registrations(f: &Fixture) -> i64 {
    count(f.pool(), &format!("SELECT count(*) FROM messages WHERE message_type = '{REGISTERED}' AND state = 'sent'")).await
}

#[tokio::test]
async fn redis_stopped_for_ten_seconds_while_events_keep_coming_then_every_message_is_delivered_once() {
    let f = Fixture::start().await;
    let mut people = Vec::new();
    for _ in 0..5 {
        people.push(register_one(&f).await);
    }
    f.sms.wait_accepted(5, Duration::from_secs(30)).await;
    assert_eq!(f.sms.distinct_accepted_keys(), 5);

    f.redis.stop().await;
    let down_at = Instant::now();
    // Twenty more people over the next ten seconds, through intake's API as usual.
    for i in 0..20u32 {
        tokio::time::sleep_until(down_at + Duration::from_millis(500) * i).await;
        people.push(register_one(&f).await);
    }
    tokio::time::sleep_until(down_at + Duration::from_secs(10)).await;
    // While Redis is down the events wait in intake's outbox and nothing new is sent.
    let waiting =
        count(f.intake_pool(), &format!("SELECT count(*) FROM outbox WHERE event_type = '{REGISTERED}' AND published_at IS NULL")).await;
    assert_eq!(waiting, 20, "the 20 registrations made during the outage wait in intake's outbox");
    assert_eq!(f.sms.accepted().len(), 5, "nothing reached the provider during the outage");
    assert_eq!(count(f.pool(), &format!("SELECT count(*) FROM messages WHERE message_type = '{REGISTERED}'")).await, 5);

    f.redis.restart().await;
    let back_at = Instant::now();
    eventually("25 registration messages SENT after Redis came back", Duration::from_secs(60), || async {
        (sent_registrations(&f).await == 25).then_some(())
    })
    .await;
    eprintln!("all 25 SENT {:?} after Redis came back", back_at.elapsed());

    // A later marker: one more registration goes through end to end, so anything the outage left
    // in flight (a redelivery, a retry) had its chance to happen before the counts below.
    let marker = register_one(&f).await;
    f.wait_state(&marker.0, REGISTERED, "sent").await;

    for (applicant, _) in &people {
        let rows = f.messages_to(applicant).await;
        let registered: Vec<_> = rows.iter().filter(|(t, ..)| t == REGISTERED).collect();
        assert_eq!(registered.len(), 1, "{applicant}: exactly one registration message: {rows:?}");
        assert_eq!((registered[0].1.as_str(), registered[0].2.as_deref()), ("sent", Some("sms")), "{applicant}: {rows:?}");
    }
    let bad = count(f.pool(), "SELECT count(*) FROM messages WHERE state IN ('dead', 'failed', 'skipped', 'queued')").await;
    assert_eq!(bad, 0, "no message dead, failed, skipped or still queued");
    assert_eq!(count(f.pool(), "SELECT count(*) FROM messages").await, 26);

    let accepted = f.sms.accepted();
    assert_eq!(f.sms.distinct_accepted_keys(), 26, "25 people and the marker, each once");
    let to: BTreeSet<String> = accepted.iter().map(|r| r.body["to"].as_str().expect("to").to_string()).collect();
    let phones: BTreeSet<String> = people.iter().chain([&marker]).map(|(_, phone)| phone.clone()).collect();
    assert_eq!(to, phones, "exactly the 26 people's numbers");
    let keys: BTreeSet<String> = accepted.iter().map(|r| r.headers["idempotency-key"].clone()).collect();
    let ids: BTreeSet<String> = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM messages")
        .fetch_all(f.pool())
        .await
        .expect("ids")
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(keys, ids, "each message handed over under its own id");
    // Every event was published once more at most, and consumed once: one inbox row per event.
    let consumed = count(f.pool(), "SELECT count(*) FROM inbox WHERE consumer = 'notifications'").await;
    assert_eq!(consumed, 26);
    let unpublished = count(f.intake_pool(), "SELECT count(*) FROM outbox WHERE published_at IS NULL").await;
    assert_eq!(unpublished, 0, "the relay caught up");
}

/// (registration messages stored, intake stream entries not yet acknowledged by notifications).
async fn progress(f: &Fixture) -> (i64, i64) {
    let stored = count(f.pool(), &format!("SELECT count(*) FROM messages WHERE message_type = '{REGISTERED}'")).await;
    let mut conn = f.redis.connection().await;
    let pending: (i64, redis::Value, redis::Value, redis::Value) =
        redis::cmd("XPENDING").arg("w4l:events:intake").arg("notifications").query_async(&mut conn).await.expect("XPENDING");
    (stored, pending.0)
}

/// The backlog an outage leaves is a burst of events: it must be drained at the speed of the
/// database, not one event per blocking read of every other consumer. Twenty events published at
/// once (as the relay does when Redis comes back) are stored and acknowledged within 5 s.
#[tokio::test]
async fn a_burst_of_events_is_consumed_within_seconds() {
    let f = Fixture::start().await;
    let applicants: Vec<String> = (0..20).map(|_| format!("applicants/{}", uuid::Uuid::now_v7())).collect();
    for applicant in &applicants {
        let payload = work4life_proto::intake::ApplicantRegistered {
            applicant: applicant.clone(),
            zone: "tanger".into(),
            languages: vec!["fr".into()],
            ..Default::default()
        };
        let e = work4life_testkit::event("intake", REGISTERED, applicant, "work4life.intake.v1.ApplicantRegistered", &payload);
        f.publish("intake", &e).await;
    }
    let published = Instant::now();
    let deadline = published + Duration::from_secs(60);
    while progress(&f).await != (20, 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = published.elapsed();
    assert_eq!(progress(&f).await, (20, 0), "every event became its message and was acknowledged (within 60 s)");
    assert!(
        took <= Duration::from_secs(5),
        "20 events took {took:?} to be stored: the consumers' blocking XREADGROUP share the host's one Redis connection, \
         so each XACK waits behind the other consumers' BLOCK 500 ms reads"
    );
}
