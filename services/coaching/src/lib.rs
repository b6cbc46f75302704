//! The coaching service (`work4life.coaching.v1`): offices, coaches, engagements, sessions and verified milestones.
//!
//! It owns the `coaching` schema and the `w4l:events:coaching` stream, and consumes grants'
//! events (`w4l:events:grants`, group `coaching`). Rooms: [`offices`] (hours, closures, rooms,
//! coach profiles), [`engagements`] (plans, coaches, milestones, progress), [`sessions`]
//! (scheduling without double booking, attendance), [`awards`] (the award consumer);
//! [`plans`] holds the milestone templates and [`scope`] who sees what.

pub mod awards;
pub mod engagements;
pub mod grpc;
pub mod offices;
pub mod plans;
pub mod scope;
pub mod seed;
pub mod sessions;

use std::sync::Arc;

use sqlx::{PgPool, migrate::Migrator};
use tonic::service::RoutesBuilder;
use work4life_platform::{
    consumer::{Consumer, ConsumerConfig},
    host::{ServiceContext, ServiceDefinition},
    outbox,
    pagination::PageTokens,
};

/// The service's own migrations (the platform's tables are applied before them).
pub static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How the host mounts the coaching service.
pub const SERVICE: ServiceDefinition = ServiceDefinition {
    name: "coaching",
    migrations: &MIGRATIONS,
    grpc_services: &["work4life.coaching.v1.CoachingService"],
    public_methods: &[],
    register,
    seed: Some(seed::seed),
};

/// What every coaching handler works with.
#[derive(Clone)]
pub struct Coaching {
    /// The `coaching` schema's pool.
    pub pool: PgPool,
    /// Page-token codec.
    pub page_tokens: PageTokens,
}

fn register(ctx: &ServiceContext, routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    let coaching = Coaching { pool: ctx.pool.clone(), page_tokens: ctx.page_tokens.clone() };
    routes.add_service(work4life_proto::coaching::coaching_service_server::CoachingServiceServer::new(grpc::CoachingApi(coaching)));
    // Each replica reads grants' events as its own consumer of the `coaching` group.
    let consumer = Consumer::new(
        ctx.pool.clone(),
        ctx.redis.clone(),
        ConsumerConfig::new(outbox::stream_name("grants"), "coaching", format!("coaching-{}", uuid::Uuid::new_v4().simple())),
        Arc::new(awards::AwardEvents),
    );
    tokio::spawn(consumer.run(ctx.shutdown.clone()));
    Ok(())
}
