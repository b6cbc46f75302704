//! Running a set of services in one process: what the `work4life` binary does for `--target`.
//! Each service is described by a [`ServiceDefinition`]; the host gives each its own pool (on
//! its own schema), the shared Redis connection, peers to call, an outbox relay, and mounts them
//! all on one server behind one stack. Whether one process hosts all five services or each runs
//! alone, services reach each other through [`Peers`], over gRPC, so both modes run the same code.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use redis::aio::ConnectionManager;
use sqlx::{PgPool, migrate::Migrator};
use tokio_util::sync::CancellationToken;
use tonic::{
    service::{RoutesBuilder, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::{
    auth::{KeySource, TokenVerifier},
    config::PlatformConfig,
    outbox::{Relay, RelayConfig},
    pagination::PageTokens,
    server::{Probe, ShutdownTiming},
    stack::{AuthPolicy, ServerStack, StackConfig},
    telemetry::ClientTracing,
};

/// What a service contributes to a host.
#[derive(Clone, Copy)]
pub struct ServiceDefinition {
    /// Short name: the schema, the health name, the `--target` value.
    pub name: &'static str,
    /// The service's own migrations (the platform's run first).
    pub migrations: &'static Migrator,
    /// Fully qualified gRPC services it mounts (`work4life.grants.v1.GrantsService`), advertised
    /// by reflection.
    pub grpc_services: &'static [&'static str],
    /// Methods callable without a token (`/work4life.identity.v1.IdentityService/Login`).
    pub public_methods: &'static [&'static str],
    /// Mounts the service's gRPC services and starts its background work.
    pub register: fn(&ServiceContext, &mut RoutesBuilder) -> anyhow::Result<()>,
    /// Loads reference and demo data (idempotent); returns lines to show the operator once.
    pub seed: Option<SeedFn>,
}

impl std::fmt::Debug for ServiceDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDefinition").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A service's seed step.
pub type SeedFn = fn(&PgPool) -> futures::future::BoxFuture<'_, anyhow::Result<Vec<String>>>;

/// What a service receives from the host.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service's name.
    pub name: &'static str,
    /// Its pool, pinned to its schema.
    pub pool: PgPool,
    /// Shared Redis connection.
    pub redis: ConnectionManager,
    /// Process configuration.
    pub config: Arc<PlatformConfig>,
    /// Clients to the other services.
    pub peers: Peers,
    /// Page-token codec.
    pub page_tokens: PageTokens,
    /// This process's service-account token for calls to peers.
    pub peer_auth: crate::peer_auth::PeerAuth,
    /// Cancelled when shutdown begins; background tasks stop on it.
    pub shutdown: CancellationToken,
}

/// A client channel to another service, carrying trace context and request id.
pub type PeerChannel = InterceptedService<Channel, ClientTracing>;

/// Channels to the other services, by name, created lazily.
#[derive(Clone)]
pub struct Peers {
    urls: Arc<HashMap<String, String>>,
}

impl Peers {
    /// Peers at the given URLs.
    pub fn new(urls: HashMap<String, String>) -> Self {
        Self { urls: Arc::new(urls) }
    }

    /// A channel to `service` with connect and per-call timeouts.
    pub fn channel(&self, service: &str) -> anyhow::Result<PeerChannel> {
        let url = self.urls.get(service).ok_or_else(|| {
            anyhow::anyhow!("no address for peer {service}: it is not hosted here; set W4L_{}_URL", service.to_uppercase())
        })?;
        let channel = Endpoint::from_shared(url.clone())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(InterceptedService::new(channel, ClientTracing))
    }
}

/// Connects each service's pool; when `migrate` is set, creates the database if needed and
/// applies the platform's and the service's migrations first.
pub async fn connect_pools(config: &PlatformConfig, services: &[ServiceDefinition], migrate: bool) -> anyhow::Result<Vec<PgPool>> {
    let mut pools = Vec::with_capacity(services.len());
    for service in services {
        let url = config.database_url_for(service.name);
        if migrate {
            crate::db::ensure_database(url).await.map_err(|e| anyhow::anyhow!("database for {}: {e:#}", service.name))?;
        }
        let pool = crate::db::connect(url, service.name, config.database_max_connections)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect {} to PostgreSQL at {}: {e:#}", service.name, crate::config::redact_url(url)))?;
        if migrate {
            let migrator = crate::db::migrator(service.name, service.migrations)?;
            migrator.run(&pool).await.map_err(|e| anyhow::anyhow!("migrating {}: {e}", service.name))?;
            tracing::info!(service = service.name, "migrations applied");
        }
        pools.push(pool);
    }
    Ok(pools)
}

/// A running host: its address and a handle to stop it.
pub struct Running {
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// Cancel to begin a graceful shutdown.
    pub shutdown: CancellationToken,
    /// Resolves when the server has drained.
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Everything [`start`] needs.
pub struct HostOptions {
    /// Process configuration.
    pub config: PlatformConfig,
    /// Services to host.
    pub services: Vec<ServiceDefinition>,
    /// Where access-token keys come from; `None`: identity's `GetKeySet`, over gRPC.
    pub key_source: Option<Arc<dyn KeySource>>,
    /// Apply migrations before serving.
    pub migrate: bool,
}

/// Binds, connects, mounts and starts serving; returns once the server accepts calls.
pub async fn start(options: HostOptions) -> anyhow::Result<Running> {
    let HostOptions { config, services, key_source, migrate } = options;
    let mut peer_urls = config.peer_urls.clone();
    let (listener, addr) = crate::server::bind(config.listen_addr).await?;
    let redis = crate::server::connect_redis(&config.redis_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {}: {e}", crate::config::redact_url(&config.redis_url)))?;
    let pools = connect_pools(&config, &services, migrate).await?;

    // Services hosted here are called over loopback unless configured otherwise; a peer hosted
    // elsewhere must be configured (W4L_<SERVICE>_URL), or calling it fails with a clear error.
    let own_url = format!("http://{}", loopback_for(addr));
    for service in &services {
        peer_urls.entry(service.name.to_string()).or_insert_with(|| own_url.clone());
    }
    let shutdown = CancellationToken::new();
    let config = Arc::new(config);
    let peers = Peers::new(peer_urls);
    let page_tokens = PageTokens::new(config.page_token_key.clone());
    let peer_auth = crate::peer_auth::PeerAuth::new(config.service_credentials.clone(), peers.clone());

    let mut policy = AuthPolicy::default();
    let mut routes = RoutesBuilder::default();
    let mut probes = Vec::new();
    let mut advertised = Vec::new();
    for (service, pool) in services.iter().zip(pools) {
        for method in service.public_methods {
            policy = policy.allow_anonymous(method);
        }
        let ctx = ServiceContext {
            name: service.name,
            pool: pool.clone(),
            redis: redis.clone(),
            config: Arc::clone(&config),
            peers: peers.clone(),
            page_tokens: page_tokens.clone(),
            peer_auth: peer_auth.clone(),
            shutdown: shutdown.clone(),
        };
        (service.register)(&ctx, &mut routes)?;
        let relay = RelayConfig { service: service.name.to_string(), ..RelayConfig::default() };
        tokio::spawn(Relay::new(pool.clone(), redis.clone(), relay).run(shutdown.clone()));
        tokio::spawn(maintain(service.name, pool.clone(), shutdown.clone()));
        probes.push(Probe { name: service.name.to_string(), pool });
        advertised.extend(service.grpc_services.iter().map(|s| (*s).to_string()));
    }

    let key_source: Arc<dyn KeySource> = match (key_source, &config.trusted_jwks) {
        (Some(source), _) => source,
        (None, Some(keys)) => Arc::new(crate::auth::InMemoryKeySource::new(keys.clone())),
        (None, None) => Arc::new(crate::auth::GrpcKeySource::new(peers.channel("identity")?)),
    };
    let verifier = Arc::new(TokenVerifier::new(key_source, config.token.clone()));
    tokio::spawn(Arc::clone(&verifier).refresh_periodically(config.key_set_refresh, shutdown.clone()));
    let stack = ServerStack::new(StackConfig {
        max_concurrent_calls: config.max_concurrent_calls,
        default_deadline: config.default_deadline,
        verifier: Some(verifier),
        auth_policy: policy,
    });
    let timing = ShutdownTiming { delay: config.shutdown_delay, grace: config.shutdown_grace };
    let done = tokio::spawn(crate::server::serve(listener, routes, advertised, stack, probes, redis, shutdown.clone(), timing));
    tracing::info!(%addr, services = ?services.iter().map(|s| s.name).collect::<Vec<_>>(), "serving");
    Ok(Running { addr, shutdown, done })
}

/// The address peers in this process should dial: a wildcard listen address becomes loopback.
fn loopback_for(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr }
}

/// Hourly housekeeping of a service's platform tables: request ids past their retention.
async fn maintain(service: &'static str, pool: PgPool, shutdown: CancellationToken) {
    loop {
        match crate::idempotency::prune(&pool, crate::idempotency::RETENTION).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(service, removed = n, "expired request ids pruned"),
            Err(err) => tracing::warn!(service, error = %err, "pruning request ids failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
