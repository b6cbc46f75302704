//! Outbox, relay and consumer against PostgreSQL and Redis: several relays, a relay killed
//! mid-batch, redelivery, stuck entries and poison events.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use prost::Message;
use redis::AsyncCommands;
use sqlx::PgConnection;
use work4life_platform::{
    consumer::{Consumer, ConsumerConfig, EventHandler, Outcome, dead_letter_stream},
    outbox::{Relay, RelayConfig, enqueue},
};
use work4life_proto::events::Event;

use crate::common::{fresh_schema, redis, unique};

/// Records each handled event in `handled`; fails for subjects starting with `poison`.
struct Recorder;

impl EventHandler for Recorder {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Event) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            anyhow::ensure!(!event.subject.starts_with("poison"), "cannot handle {}", event.subject);
            sqlx::query("INSERT INTO handled (event_id) VALUES ($1)").bind(&event.id).execute(&mut *tx).await?;
            Ok(())
        })
    }
}

async fn enqueue_many(pool: &sqlx::PgPool, source: &str, n: usize, subject: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut tx = pool.begin().await.expect("tx");
        let payload = prost_types::Any { type_url: "type.googleapis.com/test.Thing".into(), value: vec![i as u8] };
        ids.push(enqueue(&mut tx, source, "test.thing.created", &format!("{subject}/{i}"), payload).await.expect("enqueue").to_string());
        tx.commit().await.expect("commit");
    }
    ids
}

async fn stream_ids(stream: &str) -> Vec<String> {
    let mut r = redis().await;
    let reply: redis::streams::StreamRangeReply = r.xrange_all(stream).await.expect("xrange");
    reply
        .ids
        .iter()
        .map(|e| {
            let bytes: Vec<u8> = e.get("event").expect("event field");
            Event::decode(bytes.as_slice()).expect("decode").id
        })
        .collect()
}

fn source() -> String {
    unique("t").replace(':', "_")
}

#[tokio::test]
async fn a_rolled_back_change_publishes_nothing() {
    let (pool, _) = fresh_schema().await;
    let src = source();
    let mut tx = pool.begin().await.expect("tx");
    enqueue(&mut tx, &src, "test.x", "things/1", prost_types::Any::default()).await.expect("enqueue");
    tx.rollback().await.expect("rollback");
    let relay = Relay::new(pool, redis().await, RelayConfig::default());
    assert_eq!(relay.relay_once().await.expect("relay"), 0);
}

#[tokio::test]
async fn several_relays_publish_every_event_with_its_trace_context() {
    let (pool, _) = fresh_schema().await;
    let src = source();
    let ids = enqueue_many(&pool, &src, 120, "things").await;
    let config = RelayConfig { batch_size: 7, ..RelayConfig::default() };
    let mut relays = Vec::new();
    for _ in 0..3 {
        relays.push(Relay::new(pool.clone(), redis().await, config.clone()));
    }
    let tasks = relays.iter().cloned().map(|relay| {
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                let n = relay.relay_once().await.expect("relay");
                if n == 0 {
                    return total;
                }
                total += n;
            }
        })
    });
    let published: usize = futures::future::join_all(tasks).await.into_iter().map(|r| r.expect("join")).sum();
    assert_eq!(published, 120, "each row published by exactly one relay");
    assert_eq!(relays[0].backlog().await.expect("backlog"), 0);
    let in_stream: HashSet<String> = stream_ids(&work4life_platform::outbox::stream_name(&src)).await.into_iter().collect();
    assert_eq!(in_stream, ids.into_iter().collect::<HashSet<_>>());
}

#[tokio::test]
async fn a_relay_killed_mid_batch_loses_nothing_and_consumers_dedupe_the_republish() {
    let (pool, _) = fresh_schema().await;
    sqlx::query("CREATE TABLE handled (event_id text PRIMARY KEY)").execute(&pool).await.expect("table");
    let src = source();
    let ids = enqueue_many(&pool, &src, 10, "things").await;
    let stream = work4life_platform::outbox::stream_name(&src);
    // Relay A claims and publishes, then dies before marking: its transaction is gone.
    let relay_a = Relay::new(pool.clone(), redis().await, RelayConfig { batch_size: 4, ..RelayConfig::default() });
    let batch = relay_a.claim().await.expect("claim");
    assert_eq!(batch.len(), 4);
    relay_a.publish(&batch).await.expect("publish");
    drop(batch); // the process dies: connection closed, transaction rolled back
    // Relay B finds all ten unpublished and publishes them.
    let relay_b = Relay::new(pool.clone(), redis().await, RelayConfig::default());
    assert_eq!(relay_b.relay_once().await.expect("relay"), 10);
    let published = stream_ids(&stream).await;
    assert_eq!(published.len(), 14, "four duplicates on the stream");
    assert_eq!(published.iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>());

    let consumer = Consumer::new(pool.clone(), redis().await, ConsumerConfig::new(&stream, unique("g"), "c1"), Arc::new(Recorder));
    consumer.ensure_group().await.expect("group");
    let mut outcomes = Vec::new();
    while outcomes.len() < 14 {
        outcomes.extend(consumer.poll_once().await.expect("poll"));
    }
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Handled).count(), 10);
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Duplicate).count(), 4);
    let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM handled").fetch_one(&pool).await.expect("count");
    assert_eq!(handled, 10, "each event had its effect once");
}

#[tokio::test]
async fn stuck_entries_are_reclaimed_and_poison_is_dead_lettered() {
    let (pool, _) = fresh_schema().await;
    sqlx::query("CREATE TABLE handled (event_id text PRIMARY KEY)").execute(&pool).await.expect("table");
    let src = source();
    let good = enqueue_many(&pool, &src, 3, "things").await;
    let poison = enqueue_many(&pool, &src, 1, "poison").await;
    Relay::new(pool.clone(), redis().await, RelayConfig::default()).relay_once().await.expect("relay");
    let stream = work4life_platform::outbox::stream_name(&src);
    let mut r = redis().await;
    let _: String = r.xadd(&stream, "*", &[("event", b"\xff\xfenot protobuf".to_vec())]).await.expect("garbage");
    let group = unique("g");

    // Consumer A reads everything and dies without acknowledging (the entries stay pending).
    let mut config = ConsumerConfig::new(&stream, &group, "a");
    config.claim_idle = Duration::from_millis(1);
    config.max_deliveries = 3;
    let a = Consumer::new(pool.clone(), redis().await, config.clone(), Arc::new(Recorder));
    a.ensure_group().await.expect("group");
    let _: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&group)
        .arg("a")
        .arg("COUNT")
        .arg(100)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut r)
        .await
        .expect("read as a");

    // Consumer B re-claims the stuck entries: good ones handled, garbage dead-lettered at once,
    // the poison one fails until its deliveries run out, then is dead-lettered.
    config.consumer = "b".into();
    let b = Consumer::new(pool.clone(), redis().await, config, Arc::new(Recorder));
    let mut all = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(5)).await; // let the idle time pass (1 ms)
        all.extend(b.reclaim_once().await.expect("reclaim"));
        if all.iter().filter(|o| **o == Outcome::DeadLettered).count() == 2 {
            break;
        }
    }
    assert_eq!(all.iter().filter(|o| **o == Outcome::Handled).count(), 3, "{all:?}");
    assert!(all.iter().filter(|o| **o == Outcome::Failed).count() >= 1, "{all:?}");
    assert_eq!(all.iter().filter(|o| **o == Outcome::DeadLettered).count(), 2, "{all:?}");
    let dead: redis::streams::StreamRangeReply = r.xrange_all(dead_letter_stream(&group)).await.expect("dead letters");
    let reasons: Vec<String> = dead.ids.iter().map(|e| e.get::<String>("reason").expect("reason")).collect();
    assert!(reasons.contains(&"undecodable event".to_string()), "{reasons:?}");
    assert!(reasons.contains(&"too many failed deliveries".to_string()), "{reasons:?}");
    let poisoned: Vec<u8> = dead
        .ids
        .iter()
        .find(|e| e.get::<String>("reason").as_deref() == Some("too many failed deliveries"))
        .expect("poison")
        .get("event")
        .expect("bytes");
    assert_eq!(Event::decode(poisoned.as_slice()).expect("event").id, poison[0]);
    let pending: redis::streams::StreamPendingReply = r.xpending(&stream, &group).await.expect("pending");
    assert_eq!(pending.count(), 0, "nothing left pending");
    let handled: Vec<String> = sqlx::query_scalar("SELECT event_id FROM handled").fetch_all(&pool).await.expect("handled");
    assert_eq!(handled.into_iter().collect::<HashSet<_>>(), good.into_iter().collect::<HashSet<_>>());
}
