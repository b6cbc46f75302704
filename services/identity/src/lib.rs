//! The identity service (`work4life.identity.v1`): accounts, organisations, scoped roles, login and tokens; publishes the key set every service verifies tokens with.
//!
//! It owns the `identity` schema and the `w4l:events:identity` stream; other services reach it only
//! through its protobuf contract. The domain arrives with its capability issue; until then the
//! service is mounted, migrated and health-checked like the others.

pub mod seed;

use sqlx::migrate::Migrator;
use tonic::service::RoutesBuilder;
use work4life_platform::host::{ServiceContext, ServiceDefinition};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the identity service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "identity",
    migrations: &MIGRATIONS,
    grpc_services: &[],
    public_methods: &[],
    register,
    seed: Some(seed::seed),
};

fn register(_ctx: &ServiceContext, _routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    Ok(())
}
