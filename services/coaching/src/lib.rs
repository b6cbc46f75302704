//! The coaching service (`work4life.coaching.v1`): offices, coaches, engagements, sessions and verified milestones.
//!
//! It owns the `coaching` schema and the `w4l:events:coaching` stream; other services reach it only
//! through its protobuf contract. The domain arrives with its capability issue; until then the
//! service is mounted, migrated and health-checked like the others.

pub mod seed;

use sqlx::migrate::Migrator;
use tonic::service::RoutesBuilder;
use work4life_platform::host::{ServiceContext, ServiceDefinition};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the coaching service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "coaching",
    migrations: &MIGRATIONS,
    grpc_services: &[],
    public_methods: &[],
    register,
    seed: Some(seed::seed),
};

fn register(_ctx: &ServiceContext, _routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    Ok(())
}
