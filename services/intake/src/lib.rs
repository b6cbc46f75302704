//! The intake service (`work4life.intake.v1`): programs, the person registry, calls for applications, applications, review and selection.
//!
//! It owns the `intake` schema and the `w4l:events:intake` stream; other services reach it only
//! through its protobuf contract. Rooms: [`applicants`] (the registry, duplicates, erasure,
//! export), [`calls`] (programs and calls), [`applications`] (drafts, members, the state
//! machine), [`reviews`] (reviewers, conflicts, scores); [`rules`] holds the pure rules,
//! [`scope`] who sees what, [`grpc`] the wire; personal identifiers are sealed by the platform's
//! [`work4life_platform::vault`].

pub mod applicants;
pub mod applications;
pub mod calls;
pub mod grpc;
pub mod reviews;
pub mod rules;
pub mod scope;
pub mod seed;
pub mod text;

use prost::Message;
use sqlx::{PgConnection, PgPool, migrate::Migrator};
use tonic::service::RoutesBuilder;
use work4life_platform::{
    ServiceError,
    host::{ServiceContext, ServiceDefinition},
    outbox,
    pagination::PageTokens,
};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the intake service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "intake",
    migrations: &MIGRATIONS,
    grpc_services: &["work4life.intake.v1.IntakeService"],
    public_methods: &[],
    register,
    seed: Some(seed::seed),
};

/// What every intake handler works with.
#[derive(Clone)]
pub struct Intake {
    /// The `intake` schema's pool.
    pub pool: PgPool,
    /// Sealing and lookup hashes of personal identifiers.
    pub vault: work4life_platform::vault::Vault,
    /// Page-token codec.
    pub page_tokens: PageTokens,
}

fn register(ctx: &ServiceContext, routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    let intake = Intake {
        pool: ctx.pool.clone(),
        vault: work4life_platform::vault::Vault::new("intake", &ctx.config.personal_data_keys, &ctx.config.personal_data_hash_key),
        page_tokens: ctx.page_tokens.clone(),
    };
    routes.add_service(work4life_proto::intake::intake_service_server::IntakeServiceServer::new(grpc::IntakeApi(intake)));
    Ok(())
}

/// Writes an intake event (`intake.<resource>.<verb>`) with its typed payload in `tx`.
pub(crate) async fn emit<M: Message>(
    tx: &mut PgConnection,
    event_type: &str,
    subject: &str,
    message_name: &str,
    payload: &M,
) -> Result<(), ServiceError> {
    outbox::enqueue_message(tx, "intake", event_type, subject, &format!("work4life.intake.v1.{message_name}"), payload).await?;
    Ok(())
}

/// Maps a unique violation on one of `constraints` to ALREADY_EXISTS, anything else through.
pub(crate) fn conflict(err: sqlx::Error, constraints: &[(&str, &'static str, &str)]) -> ServiceError {
    let violated = work4life_platform::error::unique_violated(&err);
    if let Some((_, reason, field)) = constraints.iter().find(|(c, _, _)| violated == Some(*c)) {
        return ServiceError::AlreadyExists {
            resource: format!("a record with this {field}"),
            reason,
            metadata: std::collections::HashMap::from([("field".to_string(), (*field).to_string())]),
        };
    }
    err.into()
}
