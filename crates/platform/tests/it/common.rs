//! Fixtures: a fresh schema per test, Redis, telemetry, and an echo server behind the real stack.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, service::RoutesBuilder};
use work4life_platform::{
    auth::{InMemoryKeySource, TokenVerifier, signing::SigningKey},
    config::{PlatformConfig, TokenConfig},
    server::{Probe, ShutdownTiming},
    stack::{AuthPolicy, ServerStack, StackConfig},
    telemetry::{ClientTracing, TelemetryGuard},
};
use work4life_proto::testing::{
    EchoRequest, EchoResponse,
    echo_service_client::EchoServiceClient,
    echo_service_server::{EchoService, EchoServiceServer},
};

pub const ISSUER: &str = "https://identity.test";
pub const AUDIENCE: &str = "work4life";

pub fn database_url() -> String {
    std::env::var("W4L_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/work4life_test".into())
}

pub fn redis_url() -> String {
    std::env::var("W4L_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A fresh schema with the platform migrations applied; returns the pool and the schema name.
pub async fn fresh_schema() -> (PgPool, String) {
    static CREATED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CREATED.get_or_init(|| async { work4life_platform::db::ensure_database(&database_url()).await.expect("test database") }).await;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = work4life_platform::db::connect(&database_url(), &schema, 8).await.expect("connect");
    static NO_SERVICE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
    work4life_platform::db::migrator(&schema, &NO_SERVICE_MIGRATIONS).expect("migrator").run(&pool).await.expect("migrate");
    (pool, schema)
}

pub async fn redis() -> redis::aio::ConnectionManager {
    work4life_platform::server::connect_redis(&redis_url()).await.expect("redis")
}

/// A unique name for Redis keys of one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}:{}", uuid::Uuid::new_v4().simple())
}

/// Telemetry with a tracer provider (no exporter), installed once per test binary.
pub fn telemetry() {
    static GUARD: OnceLock<TelemetryGuard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let mut config = PlatformConfig::from_source(&std::collections::HashMap::new()).expect("config");
        config.log_filter = "warn".into();
        work4life_platform::telemetry::init("platform-tests", &config).expect("telemetry")
    });
}

pub fn token_config() -> TokenConfig {
    TokenConfig { issuer: ISSUER.into(), audience: AUDIENCE.into(), leeway: Duration::from_secs(5) }
}

/// What the echo server does, chosen by the request's message:
/// `whoami` returns the principal's subject; `trace` the current trace id and the received
/// `traceparent`; `call:<addr>` calls another echo server with `trace` and returns both;
/// `sleep:<ms>` runs `pg_sleep` in a deadline-bounded transaction; `block` waits until released;
/// `panic` panics.
#[derive(Clone)]
pub struct Echo {
    pub pool: PgPool,
    pub entered: mpsc::UnboundedSender<()>,
    pub release: Arc<Notify>,
}

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let received_traceparent = request.metadata().get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let principal = work4life_platform::auth::principal(&request).ok().cloned();
        let message = request.into_inner().message;
        let reply = if message == "whoami" {
            principal.map(|p| p.subject).unwrap_or_else(|| "anonymous".into())
        } else if message == "trace" {
            format!("{}|{}", work4life_platform::telemetry::current_trace_id(), received_traceparent)
        } else if let Some(addr) = message.strip_prefix("call:") {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| Status::internal(e.to_string()))?
                .connect_lazy();
            let mut client = EchoServiceClient::with_interceptor(channel, ClientTracing);
            let downstream = client.echo(EchoRequest { message: "trace".into(), payload: vec![] }).await?.into_inner().message;
            format!("{}#{}", work4life_platform::telemetry::current_trace_id(), downstream)
        } else if let Some(ms) = message.strip_prefix("sleep:") {
            let seconds: f64 = ms.parse::<f64>().unwrap_or(0.0) / 1000.0;
            let mut tx = work4life_platform::db::begin(&self.pool).await.map_err(Status::from)?;
            sqlx::query("SELECT pg_sleep($1)")
                .bind(seconds)
                .execute(&mut *tx)
                .await
                .map_err(|e| Status::from(work4life_platform::ServiceError::from(e)))?;
            "slept".into()
        } else if message == "panic" {
            panic!("the echo handler was told to panic");
        } else if message == "block" {
            let _ = self.entered.send(());
            self.release.notified().await;
            "released".into()
        } else {
            message
        };
        Ok(Response::new(EchoResponse { message: reply, payload: vec![] }))
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub done: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub entered: mpsc::UnboundedReceiver<()>,
    pub release: Arc<Notify>,
    pub signing: Arc<SigningKey>,
}

pub struct ServerOptions {
    pub max_concurrent_calls: usize,
    pub auth: bool,
    pub probe_pool: Option<PgPool>,
    pub redis_url: Option<String>,
    pub timing: ShutdownTiming,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 64,
            auth: true,
            probe_pool: None,
            redis_url: None,
            timing: ShutdownTiming { delay: Duration::from_millis(300), grace: Duration::from_secs(10) },
        }
    }
}

pub async fn start_echo(pool: PgPool, options: ServerOptions) -> TestServer {
    telemetry();
    let signing = Arc::new(SigningKey::generate("k1").expect("key"));
    let keys = InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![signing.public_jwk()] });
    let verifier = options.auth.then(|| Arc::new(TokenVerifier::new(Arc::new(keys.clone()), token_config())));
    let stack = ServerStack::new(StackConfig {
        max_concurrent_calls: options.max_concurrent_calls,
        default_deadline: Duration::from_secs(30),
        verifier,
        auth_policy: AuthPolicy::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let echo = Echo { pool: pool.clone(), entered: tx, release: Arc::clone(&release) };
    let mut routes = RoutesBuilder::default();
    routes.add_service(EchoServiceServer::new(echo));
    let (listener, addr) = work4life_platform::server::bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let shutdown = CancellationToken::new();
    let probes = vec![Probe { name: "echo".into(), pool: options.probe_pool.unwrap_or(pool) }];
    let redis = match &options.redis_url {
        Some(url) => work4life_platform::server::connect_redis(url).await.expect("redis"),
        None => redis().await,
    };
    let done = tokio::spawn(work4life_platform::server::serve(
        listener,
        routes,
        vec!["work4life.testing.v1.EchoService".into()],
        stack,
        probes,
        redis,
        shutdown.clone(),
        options.timing,
    ));
    TestServer { addr, shutdown, done, entered: rx, release, signing }
}

impl TestServer {
    pub fn client(&self) -> EchoServiceClient<tonic::transport::Channel> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr)).expect("endpoint").connect_lazy();
        EchoServiceClient::new(channel)
    }

    pub fn token(&self, subject: &str) -> String {
        self.signing.sign(&claims(subject, 300)).expect("sign")
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

pub fn claims(subject: &str, ttl: i64) -> work4life_platform::auth::Claims {
    let now = now() as i64;
    work4life_platform::auth::Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: subject.into(),
        exp: (now + ttl) as u64,
        nbf: (now - 1) as u64,
        iat: now as u64,
        jti: uuid::Uuid::new_v4().to_string(),
        roles: vec![work4life_platform::auth::RoleBinding {
            role: "officer".into(),
            org: Some("organizations/cefa".into()),
            zones: vec!["oujda".into()],
        }],
    }
}

pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    request
}

pub fn echo(message: &str) -> EchoRequest {
    EchoRequest { message: message.into(), payload: vec![] }
}
