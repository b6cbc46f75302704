//! Hosting one or more services on one gRPC server: the [`ServerStack`] in front, health
//! (grpc.health.v1) and reflection (v1 and v1alpha, for grpcurl and buf curl) beside them, and a
//! graceful shutdown: NOT_SERVING at once, keep answering for the shutdown delay so load
//! balancers notice, then stop accepting and let in-flight calls finish within the grace period.

use std::{net::SocketAddr, time::Duration};

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::stack::ServerStack;

/// The health name that reports the process itself (liveness), not its dependencies.
pub const LIVENESS_SERVICE: &str = "process";

/// How often dependencies are checked for the health status.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// How long one dependency check may take before it counts as down.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// A hosted service's health: its name in grpc.health.v1 and the database it needs.
#[derive(Clone)]
pub struct Probe {
    /// The name a health check asks for (`identity`, `grants`, ...).
    pub name: String,
    /// The service's pool.
    pub pool: PgPool,
}

/// Shutdown timing.
#[derive(Clone, Copy, Debug)]
pub struct ShutdownTiming {
    /// NOT_SERVING time before the listener closes.
    pub delay: Duration,
    /// Longest drain of in-flight calls after the listener closes.
    pub grace: Duration,
}

/// Keeps the health statuses true: SERVING only while the service's database and Redis answer.
#[derive(Clone)]
pub struct HealthMonitor {
    reporter: HealthReporter,
    probes: Vec<Probe>,
    redis: ConnectionManager,
    shutdown: CancellationToken,
}

impl HealthMonitor {
    /// Checks every dependency once and publishes the statuses; returns whether all serve.
    pub async fn check_once(&self) -> bool {
        let redis_ok = {
            let mut redis = self.redis.clone();
            let ping = redis::cmd("PING");
            matches!(tokio::time::timeout(HEALTH_CHECK_TIMEOUT, ping.query_async::<String>(&mut redis)).await, Ok(Ok(_)))
        };
        let mut statuses = Vec::with_capacity(self.probes.len());
        for probe in &self.probes {
            let db = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&probe.pool);
            statuses.push(redis_ok && matches!(tokio::time::timeout(HEALTH_CHECK_TIMEOUT, db).await, Ok(Ok(1))));
        }
        let all = statuses.iter().all(|ok| *ok);
        // A check that was running when shutdown began must not flip a service back to SERVING.
        if self.shutdown.is_cancelled() {
            return false;
        }
        for (probe, ok) in self.probes.iter().zip(statuses) {
            self.reporter.set_service_status(probe.name.as_str(), status(ok)).await;
        }
        self.reporter.set_service_status("", status(all && redis_ok)).await;
        all && redis_ok
    }

    /// Marks everything NOT_SERVING (shutdown has begun).
    pub async fn set_not_serving(&self) {
        for probe in &self.probes {
            self.reporter.set_service_status(probe.name.as_str(), ServingStatus::NotServing).await;
        }
        self.reporter.set_service_status("", ServingStatus::NotServing).await;
    }

    async fn run(self) {
        let shutdown = self.shutdown.clone();
        loop {
            let was_serving = self.check_once().await;
            tracing::debug!(serving = was_serving, "health checked");
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.set_not_serving().await;
                    return;
                }
                () = tokio::time::sleep(HEALTH_INTERVAL) => {}
            }
        }
    }
}

fn status(ok: bool) -> ServingStatus {
    if ok { ServingStatus::Serving } else { ServingStatus::NotServing }
}

/// Binds `addr` (port 0 picks one); the listener is handed to [`serve`].
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `routes` behind `stack` until `shutdown` is cancelled and the drain is over.
/// Reflection advertises the `advertised` services besides health and reflection.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    mut routes: RoutesBuilder,
    advertised: Vec<String>,
    stack: ServerStack,
    probes: Vec<Probe>,
    redis: ConnectionManager,
    shutdown: CancellationToken,
    timing: ShutdownTiming,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::NotServing).await;
    // `process`: alive as long as the process answers, whatever its dependencies say. For
    // liveness probes: a Redis outage must make pods unready, not restart them in a loop.
    reporter.set_service_status(LIVENESS_SERVICE, ServingStatus::Serving).await;
    let monitor = HealthMonitor { reporter, probes, redis, shutdown: shutdown.clone() };
    monitor.check_once().await;
    tokio::spawn(monitor.clone().run());

    routes.add_service(health_service);
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(work4life_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in &advertised {
            builder = builder.with_service_name(name.clone());
        }
        builder
    };
    routes.add_service(reflection().build_v1()?);
    routes.add_service(reflection().build_v1alpha()?);

    let signal = {
        let shutdown = shutdown.clone();
        let monitor = monitor.clone();
        async move {
            shutdown.cancelled().await;
            monitor.set_not_serving().await;
            tracing::info!(delay_ms = timing.delay.as_millis() as u64, "shutdown begun: not serving");
            tokio::time::sleep(timing.delay).await;
            tracing::info!("listener closed; draining in-flight calls");
        }
    };
    // TCP_NODELAY: without it, Nagle's algorithm holds the tail of a small answer until the
    // client's delayed ACK, 40 ms later (measured on every unary call at low concurrency).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server =
        tonic::transport::Server::builder().layer(stack).add_routes(routes.routes()).serve_with_incoming_shutdown(incoming, signal);
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(timing.delay + timing.grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!(grace_s = timing.grace.as_secs(), "drain grace period over; closing remaining calls"),
    }
    Ok(())
}

/// Connects to Redis with bounded connect and response times.
pub async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    Ok(redis::aio::ConnectionManager::new_with_config(client, config).await?)
}
