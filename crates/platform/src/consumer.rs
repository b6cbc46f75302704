//! Consuming events from Redis Streams with consumer groups, exactly once in effect.
//!
//! Each delivered event is handled inside a database transaction that first records
//! `(consumer, event id)` in the inbox table; a redelivered or duplicated event finds its row
//! and is acknowledged without a second effect. A handler error rolls the transaction back and
//! leaves the entry pending; entries idle longer than `claim_idle` (their consumer died or
//! failed) are re-claimed, and one delivered `max_deliveries` times is moved to the dead-letter
//! stream `w4l:dead:<group>` where operators see it.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use prost::Message;
use redis::{AsyncCommands, aio::ConnectionManager, streams::StreamId};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use work4life_proto::events::Event;

/// Business logic run for each new event, inside the inbox transaction.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles `event`; writes go through `tx` so they commit with the inbox row.
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Event) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Settings of one consumer.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Stream read (`w4l:events:grants`).
    pub stream: String,
    /// Consumer group: one per consuming service (`notifications`).
    pub group: String,
    /// This replica's name inside the group.
    pub consumer: String,
    /// Deliveries after which an entry is dead-lettered.
    pub max_deliveries: u64,
    /// Idle time after which a pending entry is re-claimed from its consumer.
    pub claim_idle: Duration,
    /// How long one read blocks waiting for new entries; zero: it does not block, and the loop
    /// waits `idle` before reading again. Services share one multiplexed Redis connection (the
    /// relay's XADDs, every consumer's reads), and Redis parks a connection during a blocking
    /// read: a blocking consumer would stall everyone else's commands for up to this long.
    pub block: Duration,
    /// The pause after a read that found nothing (when `block` is zero).
    pub idle: Duration,
    /// Entries read per call.
    pub batch: usize,
}

impl ConsumerConfig {
    /// Defaults for `group` reading `stream`.
    pub fn new(stream: impl Into<String>, group: impl Into<String>, consumer: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            group: group.into(),
            consumer: consumer.into(),
            max_deliveries: 5,
            claim_idle: Duration::from_secs(30),
            block: Duration::ZERO,
            idle: Duration::from_millis(50),
            batch: 100,
        }
    }
}

/// Dead-letter stream of a consumer group.
pub fn dead_letter_stream(group: &str) -> String {
    format!("w4l:dead:{group}")
}

/// What happened to one delivered entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled now.
    Handled,
    /// Already handled before (redelivery); acknowledged, no effect.
    Duplicate,
    /// The handler failed; left pending for a later attempt.
    Failed,
    /// Moved to the dead-letter stream.
    DeadLettered,
}

/// A consumer-group reader with an inbox.
#[derive(Clone)]
pub struct Consumer {
    pool: PgPool,
    redis: ConnectionManager,
    config: ConsumerConfig,
    handler: Arc<dyn EventHandler>,
}

impl Consumer {
    /// A consumer writing its inbox through `pool`.
    pub fn new(pool: PgPool, redis: ConnectionManager, config: ConsumerConfig, handler: Arc<dyn EventHandler>) -> Self {
        Self { pool, redis, config, handler }
    }

    /// Creates the group (from the stream's beginning) if it does not exist.
    pub async fn ensure_group(&self) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        let created: redis::RedisResult<()> = redis.xgroup_create_mkstream(&self.config.stream, &self.config.group, "0").await;
        match created {
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Reads and handles new entries once; returns the outcomes.
    pub async fn poll_once(&self) -> anyhow::Result<Vec<Outcome>> {
        let mut redis = self.redis.clone();
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(&self.config.group).arg(&self.config.consumer).arg("COUNT").arg(self.config.batch);
        if !self.config.block.is_zero() {
            read.arg("BLOCK").arg(self.config.block.as_millis() as u64);
        }
        let reply: Option<redis::streams::StreamReadReply> =
            read.arg("STREAMS").arg(&self.config.stream).arg(">").query_async(&mut redis).await?;
        let entries: Vec<(StreamId, u64)> =
            reply.map(|r| r.keys).unwrap_or_default().into_iter().flat_map(|k| k.ids).map(|e| (e, 1)).collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.process_batch(&entries).await
    }

    /// Re-claims entries idle longer than `claim_idle`: dead-letters those delivered too often,
    /// handles the others again.
    pub async fn reclaim_once(&self) -> anyhow::Result<Vec<Outcome>> {
        let mut redis = self.redis.clone();
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg("IDLE")
            .arg(self.config.claim_idle.as_millis() as u64)
            .arg("-")
            .arg("+")
            .arg(self.config.batch)
            .query_async(&mut redis)
            .await?;
        let mut outcomes = Vec::new();
        for (id, _owner, _idle, deliveries) in pending {
            // XCLAIM with the idle condition: if another replica claimed it meanwhile, we get nothing.
            let claimed: redis::streams::StreamClaimReply = redis::cmd("XCLAIM")
                .arg(&self.config.stream)
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg(self.config.claim_idle.as_millis() as u64)
                .arg(&id)
                .query_async(&mut redis)
                .await?;
            let entries: Vec<(StreamId, u64)> = claimed.ids.into_iter().map(|e| (e, deliveries + 1)).collect();
            if !entries.is_empty() {
                outcomes.extend(self.process_batch(&entries).await?);
            }
        }
        Ok(outcomes)
    }

    /// Handles `entries` (each with its delivery count) in ONE transaction, each event inside its
    /// own savepoint: a failing handler rolls back only its event (left pending for a later
    /// attempt), and a batch costs one commit and one XACK instead of one per event.
    async fn process_batch(&self, entries: &[(StreamId, u64)]) -> anyhow::Result<Vec<Outcome>> {
        let mut outcomes = Vec::with_capacity(entries.len());
        let mut handled: Vec<(&str, Outcome)> = Vec::new();
        let mut tx = self.pool.begin().await?;
        for (entry, deliveries) in entries {
            let deliveries = *deliveries;
            let bytes: Option<Vec<u8>> = entry.get("event");
            let event = match bytes.as_deref().map(Event::decode) {
                Some(Ok(event)) => event,
                _ => {
                    outcomes.push(self.dead_letter(entry, deliveries, "undecodable event").await?);
                    continue;
                }
            };
            if deliveries > self.config.max_deliveries {
                outcomes.push(self.dead_letter(entry, deliveries, "too many failed deliveries").await?);
                continue;
            }
            let Ok(event_id) = uuid::Uuid::parse_str(&event.id) else {
                outcomes.push(self.dead_letter(entry, deliveries, "event id is not a uuid").await?);
                continue;
            };
            let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
            let fresh =
                sqlx::query!("INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", self.config.group, event_id)
                    .execute(&mut *savepoint)
                    .await?
                    .rows_affected()
                    == 1;
            if !fresh {
                savepoint.commit().await?;
                handled.push((entry.id.as_str(), Outcome::Duplicate));
                continue;
            }
            let span = tracing::info_span!("event.consume", event_type = %event.r#type, event_id = %event.id, group = %self.config.group);
            if let Some(tc) = &event.trace_context {
                let mut carrier = std::collections::HashMap::new();
                carrier.insert("traceparent".to_string(), tc.traceparent.clone());
                carrier.insert("tracestate".to_string(), tc.tracestate.clone());
                let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
                let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
            }
            let result = tracing::Instrument::instrument(self.handler.handle(&mut savepoint, &event), span).await;
            match result {
                Ok(()) => {
                    savepoint.commit().await?;
                    handled.push((entry.id.as_str(), Outcome::Handled));
                }
                Err(err) => {
                    tracing::warn!(error = format!("{err:#}"), event_id = %event.id, deliveries, "event handler failed; will retry");
                    savepoint.rollback().await?;
                    outcomes.push(Outcome::Failed);
                }
            }
        }
        tx.commit().await?;
        if !handled.is_empty() {
            let ids: Vec<&str> = handled.iter().map(|(id, _)| *id).collect();
            let mut redis = self.redis.clone();
            let _: u64 = redis.xack(&self.config.stream, &self.config.group, &ids).await?;
        }
        outcomes.extend(handled.into_iter().map(|(_, outcome)| outcome));
        Ok(outcomes)
    }

    async fn dead_letter(&self, entry: &StreamId, deliveries: u64, reason: &str) -> anyhow::Result<Outcome> {
        let bytes: Vec<u8> = entry.get("event").unwrap_or_default();
        tracing::error!(stream = %self.config.stream, entry = %entry.id, deliveries, reason, "event dead-lettered");
        let mut redis = self.redis.clone();
        redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(dead_letter_stream(&self.config.group))
            .arg("*")
            .arg("stream")
            .arg(&self.config.stream)
            .arg("entry")
            .arg(&entry.id)
            .arg("reason")
            .arg(reason)
            .arg("deliveries")
            .arg(deliveries)
            .arg("event")
            .arg(bytes)
            .ignore()
            .cmd("XACK")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&entry.id)
            .ignore()
            .query_async::<()>(&mut redis)
            .await?;
        Ok(Outcome::DeadLettered)
    }

    /// Consumes until `shutdown` is cancelled, re-claiming stuck entries every `claim_idle / 2`.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(err) = self.ensure_group().await {
            tracing::warn!(error = %err, "could not create consumer group yet");
        }
        let mut last_reclaim = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if last_reclaim.elapsed() >= self.config.claim_idle / 2 {
                last_reclaim = tokio::time::Instant::now();
                if let Err(err) = self.reclaim_once().await {
                    tracing::warn!(error = format!("{err:#}"), "reclaiming pending events failed");
                }
            }
            let polled = tokio::select! {
                () = shutdown.cancelled() => return,
                polled = self.poll_once() => polled,
            };
            if let Ok(outcomes) = &polled
                && outcomes.is_empty()
                && self.config.block.is_zero()
            {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.config.idle) => {}
                }
            }
            if let Err(err) = polled {
                if err.downcast_ref::<redis::RedisError>().and_then(redis::RedisError::code) == Some("NOGROUP") {
                    let _ = self.ensure_group().await;
                } else {
                    tracing::warn!(error = format!("{err:#}"), "reading events failed; will retry");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}
