//! The grants service (`work4life.grants.v1`): budgets, awards in tranches, work bursaries, maker-checker disbursements and the ledger.
//!
//! It owns the `grants` schema and the `w4l:events:grants` stream; other services reach it only
//! through its protobuf contract. The domain arrives with its capability issue; until then the
//! service is mounted, migrated and health-checked like the others.

use sqlx::migrate::Migrator;
use tonic::service::RoutesBuilder;
use work4life_platform::host::{ServiceContext, ServiceDefinition};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the grants service.
pub const SERVICE: ServiceDefinition =
    ServiceDefinition { name: "grants", migrations: &MIGRATIONS, grpc_services: &[], public_methods: &[], register, seed: None };

fn register(_ctx: &ServiceContext, _routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    Ok(())
}
