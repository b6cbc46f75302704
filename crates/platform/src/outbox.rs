//! Transactional outbox and its relay to Redis Streams.
//!
//! A service writes an event with [`enqueue`] inside the transaction that makes the change, so
//! the change and its event commit or vanish together. The [`Relay`] moves committed events to
//! the stream `w4l:events:<source>`: it claims a batch with `FOR UPDATE SKIP LOCKED` (so any
//! number of relay replicas share the work without blocking each other), publishes it, and marks
//! it published in the same transaction. A relay that dies after publishing and before marking
//! leaves the rows unmarked; another relay publishes them again. Delivery is therefore at least
//! once, and consumers deduplicate by event id (see [`crate::consumer`]).

use std::time::Duration;

use prost::Message;
use redis::aio::ConnectionManager;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use work4life_proto::events::Event;

use crate::error::ServiceError;

/// How often the relay measures the outbox backlog.
const BACKLOG_GAUGE_INTERVAL: Duration = Duration::from_secs(10);

/// Stream of the events produced by `source`.
pub fn stream_name(source: &str) -> String {
    format!("w4l:events:{source}")
}

/// Writes an event to the outbox in the caller's transaction and returns its id.
pub async fn enqueue(
    tx: &mut PgConnection,
    source: &str,
    event_type: &str,
    subject: &str,
    payload: prost_types::Any,
) -> Result<Uuid, ServiceError> {
    let id = Uuid::now_v7();
    let now = std::time::SystemTime::now();
    let event = Event {
        id: id.to_string(),
        r#type: event_type.to_string(),
        source: source.to_string(),
        occurred_at: Some(prost_types::Timestamp::from(now)),
        subject: subject.to_string(),
        trace_context: Some(crate::telemetry::current_trace_context()),
        payload: Some(payload),
    };
    sqlx::query!(
        "INSERT INTO outbox (event_id, stream, event_type, event) VALUES ($1, $2, $3, $4)",
        id,
        stream_name(source),
        event_type,
        event.encode_to_vec()
    )
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// Writes an event whose payload is the protobuf message `payload` of full type name
/// `type_name` (`work4life.intake.v1.ApplicantRegistered`), in the caller's transaction.
pub async fn enqueue_message<M: Message>(
    tx: &mut PgConnection,
    source: &str,
    event_type: &str,
    subject: &str,
    type_name: &str,
    payload: &M,
) -> Result<Uuid, ServiceError> {
    let any = prost_types::Any { type_url: format!("type.googleapis.com/{type_name}"), value: payload.encode_to_vec() };
    enqueue(tx, source, event_type, subject, any).await
}

/// Settings of a relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Events claimed per transaction.
    pub batch_size: i64,
    /// Pause when the outbox is empty.
    pub idle_wait: Duration,
    /// Approximate cap on stream length (`XADD MAXLEN ~`).
    pub stream_max_len: usize,
    /// The service whose outbox this is, for the backlog gauge.
    pub service: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { batch_size: 200, idle_wait: Duration::from_millis(50), stream_max_len: 1_000_000, service: String::new() }
    }
}

/// A claimed, not yet published batch.
pub struct ClaimedBatch {
    tx: Transaction<'static, Postgres>,
    rows: Vec<(i64, String, Vec<u8>)>,
}

impl ClaimedBatch {
    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Moves committed outbox rows to Redis Streams.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    redis: ConnectionManager,
    config: RelayConfig,
}

impl Relay {
    /// A relay over a service's pool.
    pub fn new(pool: PgPool, redis: ConnectionManager, config: RelayConfig) -> Self {
        Self { pool, redis, config }
    }

    /// Step 1: claims up to a batch of unpublished events, locking them for this relay only.
    pub async fn claim(&self) -> Result<ClaimedBatch, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query!(
            "SELECT seq, stream, event FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
            self.config.batch_size
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.seq, r.stream, r.event))
        .collect();
        Ok(ClaimedBatch { tx, rows })
    }

    /// Step 2: publishes a claimed batch to its streams, in order, in one round trip.
    pub async fn publish(&self, batch: &ClaimedBatch) -> Result<(), ServiceError> {
        let mut pipe = redis::pipe();
        for (_, stream, event) in &batch.rows {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.stream_max_len)
                .arg("*")
                .arg("event")
                .arg(event.as_slice())
                .ignore();
        }
        let mut redis = self.redis.clone();
        pipe.query_async::<()>(&mut redis).await?;
        Ok(())
    }

    /// Step 3: marks the batch published and releases it.
    pub async fn mark_published(&self, mut batch: ClaimedBatch) -> Result<usize, ServiceError> {
        let seqs: Vec<i64> = batch.rows.iter().map(|r| r.0).collect();
        sqlx::query!("UPDATE outbox SET published_at = now() WHERE seq = ANY($1)", &seqs).execute(&mut *batch.tx).await?;
        batch.tx.commit().await?;
        Ok(seqs.len())
    }

    /// Relays one batch; returns how many events went out.
    pub async fn relay_once(&self) -> Result<usize, ServiceError> {
        let batch = self.claim().await?;
        if batch.is_empty() {
            return Ok(0);
        }
        self.publish(&batch).await?;
        self.mark_published(batch).await
    }

    /// Relays until `shutdown` is cancelled; a full batch loops at once, an empty one waits.
    /// Every few seconds it records the backlog in the `outbox.backlog` gauge (the outbox lag).
    pub async fn run(self, shutdown: CancellationToken) {
        let gauge =
            opentelemetry::global::meter("work4life").i64_gauge("outbox.backlog").with_description("events not yet published").build();
        let attributes = [opentelemetry::KeyValue::new("service", self.config.service.clone())];
        let mut last_gauge: Option<std::time::Instant> = None;
        let mut failures = 0u32;
        loop {
            if last_gauge.is_none_or(|at| at.elapsed() >= BACKLOG_GAUGE_INTERVAL) {
                last_gauge = Some(std::time::Instant::now());
                if let Ok(backlog) = self.backlog().await {
                    gauge.record(backlog, &attributes);
                }
            }
            let wait = match self.relay_once().await {
                Ok(n) if n as i64 >= self.config.batch_size => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    self.config.idle_wait
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %err, failures, "outbox relay failed; will retry");
                    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Events not yet published (the outbox lag, exported as a metric and watched by operators).
    pub async fn backlog(&self) -> Result<i64, ServiceError> {
        Ok(sqlx::query_scalar!("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(&self.pool).await?.unwrap_or(0))
    }
}
