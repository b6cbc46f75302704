//! The notifications service (`work4life.notifications.v1`): every event told to the people concerned, in their language, on their channel, once.
//!
//! It owns the `notifications` schema and the `w4l:events:notifications` stream; other services reach it only
//! through its protobuf contract. The domain arrives with its capability issue; until then the
//! service is mounted, migrated and health-checked like the others. Its first rooms are here:
//! [`sms`] (encoding and billed segments of a text), [`consent`] (inbound STOP words),
//! [`templates`] (placeholders checked against each event's variables, locale fallback) and
//! [`retry`] (backoff with jitter before a dead letter).

pub mod consent;
pub mod retry;
pub mod seed_templates;
pub mod sms;
pub mod templates;

use sqlx::migrate::Migrator;
use tonic::service::RoutesBuilder;
use work4life_platform::host::{ServiceContext, ServiceDefinition};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the notifications service.
pub const SERVICE: ServiceDefinition =
    ServiceDefinition { name: "notifications", migrations: &MIGRATIONS, grpc_services: &[], public_methods: &[], register, seed: None };

fn register(_ctx: &ServiceContext, _routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    Ok(())
}
