//! The identity service (`work4life.identity.v1`): accounts, organisations, scoped roles, login and tokens; publishes the key set every service verifies tokens with.
//!
//! It owns the `identity` schema and the `w4l:events:identity` stream; other services reach it only
//! through its protobuf contract. Today it serves the published key set, password login,
//! refresh-token rotation, logout, key rotation and WhoAmI; accounts, organisations and role
//! administration, OTP and client-credential logins come next (identity issue).

pub mod bootstrap;
pub mod directory;
pub mod grpc;
pub mod keys;
pub mod seed;
pub mod sessions;

use sqlx::migrate::Migrator;
use tonic::service::RoutesBuilder;
use work4life_platform::host::{ServiceContext, ServiceDefinition};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the identity service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "identity",
    migrations: &MIGRATIONS,
    grpc_services: &["work4life.identity.v1.IdentityService"],
    public_methods: &[
        "/work4life.identity.v1.IdentityService/GetKeySet",
        "/work4life.identity.v1.IdentityService/Login",
        "/work4life.identity.v1.IdentityService/RefreshToken",
        "/work4life.identity.v1.IdentityService/Logout",
        "/work4life.identity.v1.IdentityService/RequestOneTimeCode",
        "/work4life.identity.v1.IdentityService/VerifyOneTimeCode",
        "/work4life.identity.v1.IdentityService/ExchangeClientCredentials",
    ],
    register,
    seed: Some(seed::seed),
};

fn register(ctx: &ServiceContext, routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    let keys = keys::KeyRing::new(ctx.pool.clone(), &ctx.config.signing_key_encryption_key);
    let sessions = sessions::Sessions::new(ctx.pool.clone(), ctx.redis.clone(), keys.clone(), ctx.config.token.clone());
    let identity = grpc::Identity {
        keys,
        sessions,
        leeway: ctx.config.token.leeway,
        directory: directory::Directory::new(ctx.pool.clone()),
        page_tokens: ctx.page_tokens.clone(),
    };
    routes.add_service(work4life_proto::identity::identity_service_server::IdentityServiceServer::new(identity));
    if let Some(work4life_platform::config::ServiceCredentials::Client { id, secret }) = ctx.config.service_credentials.clone() {
        let pool = ctx.pool.clone();
        tokio::spawn(async move {
            // At start, before peers ask for tokens; retried while the database is unreachable.
            for attempt in 1..=30 {
                match bootstrap::ensure_service_account(&pool, id, &secret).await {
                    Ok(()) => return tracing::info!(account = %id, "service account ready"),
                    Err(err) => tracing::warn!(error = format!("{err:#}"), attempt, "service account not ready yet"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
    Ok(())
}
