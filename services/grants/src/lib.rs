//! The grants service (`work4life.grants.v1`): budgets, awards in tranches, work bursaries, maker-checker disbursements and the ledger.
//!
//! It owns the `grants` schema and the `w4l:events:grants` stream, and reads intake's decisions
//! and coaching's verified milestones (group `grants`). Rooms: [`budgets`] (envelopes and lines),
//! [`awards`] (awards, tranches, bursary months), [`disbursements`] (maker-checker),
//! [`batches`] (bank files and results), [`ledger`] (double-entry postings and balances),
//! [`reports`] (the donor's report), [`events`] (what grants consumes); [`money`] holds amounts
//! and conversions, [`scope`] who sees what, [`grpc`] the wire.

pub mod awards;
pub mod batches;
pub mod budgets;
pub mod disbursements;
pub mod events;
pub mod grpc;
pub mod ledger;
pub mod money;
pub mod reports;
pub mod scope;
pub mod seed;

use std::{sync::Arc, time::Duration};

use prost::Message;
use sqlx::{PgConnection, PgPool, migrate::Migrator};
use tonic::service::RoutesBuilder;
use work4life_platform::{
    ServiceError,
    consumer::{Consumer, ConsumerConfig},
    fault::crash_point,
    host::{ServiceContext, ServiceDefinition},
    idempotency::Fresh,
    outbox,
    pagination::PageTokens,
    vault::Vault,
};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the grants service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "grants",
    migrations: &MIGRATIONS,
    grpc_services: &["work4life.grants.v1.GrantsService"],
    public_methods: &[],
    register,
    seed: Some(seed::seed),
};

/// How often each replica makes due date tranches and bursary months payable.
const RELEASE_EVERY: Duration = Duration::from_secs(60);

/// What every grants handler works with.
#[derive(Clone)]
pub struct Grants {
    /// The `grants` schema's pool.
    pub pool: PgPool,
    /// Page-token codec.
    pub page_tokens: PageTokens,
    /// Seals payees' account numbers.
    pub vault: Vault,
}

fn register(ctx: &ServiceContext, routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    let grants = Grants {
        pool: ctx.pool.clone(),
        page_tokens: ctx.page_tokens.clone(),
        vault: Vault::new("grants", &ctx.config.personal_data_keys, &ctx.config.personal_data_hash_key),
    };
    routes.add_service(work4life_proto::grants::grants_service_server::GrantsServiceServer::new(grpc::GrantsApi(grants.clone())));
    // Each replica reads intake's decisions and coaching's milestones as its own consumer of group `grants`.
    for source in ["intake", "coaching"] {
        let consumer = Consumer::new(
            ctx.pool.clone(),
            ctx.redis.clone(),
            ConsumerConfig::new(outbox::stream_name(source), "grants", format!("grants-{}", uuid::Uuid::new_v4().simple())),
            Arc::new(events::Upstream(grants.clone())),
        );
        tokio::spawn(consumer.run(ctx.shutdown.clone()));
    }
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELEASE_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(err) = grants.release_due().await {
                        tracing::warn!(error = %err, "releasing due tranches failed; next tick retries");
                    }
                }
            }
        }
    });
    Ok(())
}

/// Writes a grants event (`grants.<resource>.<verb>`) with its typed payload in `tx`.
pub(crate) async fn emit<M: Message>(
    tx: &mut PgConnection,
    event_type: &str,
    subject: &str,
    message_name: &str,
    payload: &M,
) -> Result<(), ServiceError> {
    outbox::enqueue_message(tx, "grants", event_type, subject, &format!("work4life.grants.v1.{message_name}"), payload).await?;
    Ok(())
}

/// Commits an idempotent request with its response, passing the crash points that the
/// fault-injection tests aim at: just before the commit and just after it (before the reply).
pub(crate) async fn commit<R: Message>(fresh: Fresh, response: &R) -> Result<(), ServiceError> {
    crash_point("grants.before_commit");
    fresh.commit(response).await?;
    crash_point("grants.after_commit");
    Ok(())
}

/// Maps a unique violation of `constraint` to ALREADY_EXISTS on `resource`, anything else through.
pub(crate) fn conflict(err: sqlx::Error, constraint: &str, reason: &'static str, resource: String) -> ServiceError {
    if work4life_platform::error::unique_violated(&err) == Some(constraint) {
        return ServiceError::AlreadyExists { resource, reason, metadata: Default::default() };
    }
    err.into()
}
