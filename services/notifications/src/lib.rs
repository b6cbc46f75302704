//! The notifications service (`work4life.notifications.v1`): every event told to the people concerned, in their language, on their channel, once.
//!
//! It owns the `notifications` schema and consumes the `identity`, `intake`, `grants` and
//! `coaching` streams (group `notifications`). Rooms: [`plan`] (which messages an event makes),
//! [`events`] (the consumer that stores them), [`dispatch`] (routing, rendering, quiet hours,
//! pacing, sending, retries and dead letters), [`channels`] (the SMS, WhatsApp and SMTP
//! adapters), [`grpc`] (templates, preferences, messages, inbox, provider callbacks); and the
//! pure rooms [`sms`] (encoding and segments), [`consent`] (STOP words), [`templates`]
//! (placeholders, locale fallback), [`retry`] (backoff), [`ratelimit`], [`settings`].

pub mod channels;
pub mod consent;
pub mod dispatch;
pub mod events;
pub mod grpc;
pub mod plan;
pub mod ratelimit;
pub mod retry;
pub mod seed;
pub mod seed_templates;
pub mod settings;
pub mod sms;
pub mod templates;

use std::sync::Arc;

use sqlx::{PgPool, migrate::Migrator};
use tonic::service::RoutesBuilder;
use work4life_platform::{
    consumer::{Consumer, ConsumerConfig},
    host::{Peers, ServiceContext, ServiceDefinition},
    outbox,
    pagination::PageTokens,
    peer_auth::PeerAuth,
    vault::Vault,
};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the notifications service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "notifications",
    migrations: &MIGRATIONS,
    grpc_services: &["work4life.notifications.v1.NotificationsService"],
    public_methods: &[],
    register,
    seed: Some(seed::seed),
};

/// What every part of the service works with.
#[derive(Clone)]
pub struct Notifications {
    /// The `notifications` schema's pool.
    pub pool: PgPool,
    /// Page-token codec.
    pub page_tokens: PageTokens,
    /// Seals the personal values an event carries; hashes numbers.
    pub vault: Arc<Vault>,
    /// Providers, quiet hours, retries.
    pub settings: Arc<settings::Settings>,
    /// The configured channels.
    pub adapters: channels::Adapters,
    /// Intake, for contact details.
    pub peers: Peers,
    /// The service account's token.
    pub peer_auth: PeerAuth,
    /// Wakes the dispatcher when the consumer stored messages.
    pub wake: Arc<tokio::sync::Notify>,
}

fn register(ctx: &ServiceContext, routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    let settings = settings::Settings::from_source(ctx.config.vars.as_ref()).map_err(|e| anyhow::anyhow!("notifications settings: {e}"))?;
    let adapters = channels::Adapters::from_settings(&settings)?;
    for (channel, configured) in
        [("sms", settings.sms.is_some()), ("whatsapp", settings.whatsapp.is_some()), ("email", settings.smtp.is_some())]
    {
        if !configured {
            tracing::warn!(channel, "no provider configured: this channel is not used (only the inbox and other channels)");
        }
    }
    if !ctx.peer_auth.is_configured() {
        tracing::warn!("no service credentials (W4L_SERVICE_CLIENT_ID/SECRET): contact details cannot be read, messages wait");
    }
    let n = Notifications {
        pool: ctx.pool.clone(),
        page_tokens: ctx.page_tokens.clone(),
        vault: Arc::new(Vault::new("notifications", &ctx.config.personal_data_keys, &ctx.config.personal_data_hash_key)),
        settings: Arc::new(settings),
        adapters,
        peers: ctx.peers.clone(),
        peer_auth: ctx.peer_auth.clone(),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    routes.add_service(work4life_proto::notifications::notifications_service_server::NotificationsServiceServer::new(
        grpc::NotificationsApi(n.clone()),
    ));
    let replica = uuid::Uuid::new_v4().simple().to_string();
    for source in plan::SOURCES {
        let consumer = Consumer::new(
            ctx.pool.clone(),
            ctx.redis.clone(),
            ConsumerConfig::new(outbox::stream_name(source), "notifications", format!("notifications-{replica}")),
            Arc::new(events::Upstream(n.clone())),
        );
        tokio::spawn(consumer.run(ctx.shutdown.clone()));
    }
    tokio::spawn(dispatch::run(n, ctx.shutdown.clone()));
    Ok(())
}
