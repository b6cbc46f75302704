//! What the services' API tests share, so that each service's fixture holds only its own domain:
//! a private `redis-server` per test ([`TestRedis`]), access tokens signed by a key the test
//! publishes ([`TestSigner`]), the PostgreSQL server to make test databases on, events
//! published and read as the outbox relay writes them, and readers for `google.rpc` details.

use std::{
    collections::HashMap,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prost::Message;
use tonic::{Request, Status};
use tonic_types::StatusExt as _;
use uuid::Uuid;
use work4life_platform::auth::{Claims, InMemoryKeySource, RoleBinding, signing::SigningKey};
use work4life_proto::events::Event;

pub mod fakes;
pub use fakes::{HttpProvider, ReceivedMail, ReceivedRequest, SmtpServer};

/// The issuer and audience services expect by default (`PlatformConfig` defaults).
pub const ISSUER: &str = "https://identity.work4life.local";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "work4life";

/// The PostgreSQL server tests create their databases on (`W4L_TEST_DATABASE_URL` without its database).
pub fn server_url() -> String {
    std::env::var("W4L_TEST_DATABASE_URL")
        .ok()
        .and_then(|u| u.rsplit_once('/').map(|(s, _)| s.to_string()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh database URL `w4l_<prefix>_<uuid>` on [`server_url`] (the service creates it).
pub fn fresh_database_url(prefix: &str) -> String {
    format!("{}/w4l_{prefix}_{}", server_url(), Uuid::new_v4().simple())
}

/// Drops a test database, ending its connections (PostgreSQL 13+).
pub fn drop_database(database_url: &str) {
    let Some((server, name)) = database_url.rsplit_once('/') else { return };
    let _ = std::process::Command::new("psql")
        .arg(format!("--dbname={server}/postgres"))
        .arg("--quiet")
        .arg("--command")
        .arg(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .output();
}

/// A Redis server for one test: its own process when `redis-server` is installed, so that a
/// consumer group of one test's service never takes another test's events. Without the binary
/// it falls back to `W4L_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/0`).
///
/// The private server writes an append-only file (fsynced on every write) into its own temporary
/// directory, so a test can [`stop`](Self::stop) it and [`restart`](Self::restart) it on the same
/// port with its data, as a Redis outage looks to the services.
pub struct TestRedis {
    /// `redis://127.0.0.1:<port>/0`.
    pub url: String,
    /// The private server: `None` on the shared fallback.
    private: Option<PrivateRedis>,
}

struct PrivateRedis {
    port: u16,
    dir: std::path::PathBuf,
    /// `None` while stopped.
    child: std::sync::Mutex<Option<std::process::Child>>,
}

impl TestRedis {
    /// Starts one on a free loopback port.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("w4l-test-redis-{}", Uuid::new_v4().simple()));
        if std::fs::create_dir_all(&dir).is_ok() {
            for _ in 0..5 {
                let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                    Ok(addr) => addr.port(),
                    Err(_) => break,
                };
                let Ok(mut child) = spawn_redis(port, &dir) else { break };
                let url = format!("redis://127.0.0.1:{port}/0");
                if wait_ready(&mut child, &url).await {
                    return Self { url, private: Some(PrivateRedis { port, dir, child: std::sync::Mutex::new(Some(child)) }) };
                }
                let _ = child.kill(); // the port was taken meanwhile: try another
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        let url = std::env::var("W4L_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        eprintln!("no private redis-server; using the shared {url}");
        Self { url, private: None }
    }

    /// Stops the server the way an operator would (`SHUTDOWN`, which completes the append-only
    /// file) and returns once its port refuses connections. Panics on the shared fallback.
    pub async fn stop(&self) {
        let private = self.private("stop");
        let child = private.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = child {
            if let Ok(Ok(mut conn)) = tokio::time::timeout(
                Duration::from_secs(1),
                redis::Client::open(self.url.as_str()).expect("redis url").get_multiplexed_async_connection(),
            )
            .await
            {
                let _ = redis::cmd("SHUTDOWN").query_async::<()>(&mut conn).await; // the server closes the connection
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if tokio::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        eventually("the stopped redis-server's port to refuse connections", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", private.port)).await.is_err().then_some(())
        })
        .await;
    }

    /// Starts the server again on the same port and directory (so with the data it had) and
    /// returns once it answers PING. Stops it first if it runs. Panics on the shared fallback.
    pub async fn restart(&self) {
        let private = self.private("restart");
        self.stop().await;
        let mut child = spawn_redis(private.port, &private.dir).expect("redis-server starts again");
        if !wait_ready(&mut child, &self.url).await {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server did not come back on port {} within 10 s", private.port);
        }
        *private.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }

    fn private(&self, what: &str) -> &PrivateRedis {
        self.private.as_ref().unwrap_or_else(|| {
            panic!(
                "TestRedis::{what} needs a private redis-server (install redis-server); the shared {} is not the test's to {what}",
                self.url
            )
        })
    }

    /// A connection to it.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str()).expect("redis url").get_multiplexed_async_connection().await.expect("redis connection")
    }

    /// Publishes `event` (encoded) to `stream`, as an outbox relay does.
    pub async fn publish(&self, stream: &str, event: &Event) {
        let mut conn = self.connection().await;
        let _: String =
            redis::cmd("XADD").arg(stream).arg("*").arg("event").arg(event.encode_to_vec()).query_async(&mut conn).await.expect("XADD");
    }

    /// The events on `stream`, oldest first.
    pub async fn stream_events(&self, stream: &str) -> Vec<Event> {
        let mut conn = self.connection().await;
        let reply: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg(stream).arg("-").arg("+").query_async(&mut conn).await.expect("XRANGE");
        reply
            .ids
            .iter()
            .filter_map(|entry| entry.get::<Vec<u8>>("event"))
            .map(|bytes| Event::decode(bytes.as_slice()).expect("an encoded Event"))
            .collect()
    }
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await else {
        return false;
    };
    matches!(redis::cmd("PING").query_async::<String>(&mut conn).await, Ok(p) if p == "PONG")
}

/// `redis-server` on `port`, persisting to an fsynced append-only file in `dir`.
fn spawn_redis(port: u16, dir: &std::path::Path) -> std::io::Result<std::process::Child> {
    std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

/// Whether `child` answers PING at `url` within 10 s (false at once if it exited).
async fn wait_ready(child: &mut std::process::Child, url: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if ping(url).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.get_mut().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Signs access tokens with a key whose public half the service under test trusts.
#[derive(Clone)]
pub struct TestSigner {
    key: Arc<SigningKey>,
}

impl Default for TestSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigner {
    /// A new Ed25519 key `k1`.
    pub fn new() -> Self {
        Self { key: Arc::new(SigningKey::generate("k1").expect("signing key")) }
    }

    /// The key source to give the service (`HostOptions::key_source`).
    pub fn key_source(&self) -> Arc<InMemoryKeySource> {
        Arc::new(InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![self.key.public_jwk()] }))
    }

    /// The public key as a base64url JWK set, for a service process (`W4L_TRUSTED_JWKS`-style use).
    pub fn public_jwk(&self) -> jsonwebtoken::jwk::Jwk {
        self.key.public_jwk()
    }

    /// A token for `subject` with these bindings (role, organisation, zones), valid an hour.
    pub fn token_for(&self, subject: &str, bindings: &[(&str, Option<Uuid>, &[&str])]) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: subject.into(),
            exp: now + 3600,
            nbf: now - 5,
            iat: now,
            jti: Uuid::new_v4().to_string(),
            roles: bindings
                .iter()
                .map(|(role, org, zones)| RoleBinding {
                    role: (*role).to_string(),
                    org: org.map(|o| format!("organizations/{o}")),
                    zones: zones.iter().map(|z| (*z).to_string()).collect(),
                })
                .collect(),
        };
        self.key.sign(&claims).expect("sign")
    }

    /// A new account (`accounts/{uuid}`) holding `role`, scoped to `org` and `zones`: its subject and a token.
    pub fn token(&self, role: &str, org: Option<Uuid>, zones: &[&str]) -> (String, String) {
        let subject = format!("accounts/{}", Uuid::now_v7());
        let jwt = self.token_for(&subject, &[(role, org, zones)]);
        (subject, jwt)
    }
}

/// `message` with `authorization: Bearer <jwt>`.
pub fn bearer<T>(message: T, jwt: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {jwt}").parse().expect("header"));
    request
}

/// A fresh UUID as a request id.
pub fn rid() -> String {
    Uuid::new_v4().to_string()
}

/// Polls `check` until it answers `Some`, for at most `timeout`; panics naming `what` after that.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An event envelope as the outbox writes it.
pub fn event<M: Message>(source: &str, event_type: &str, subject: &str, full_type_name: &str, payload: &M) -> Event {
    Event {
        id: Uuid::now_v7().to_string(),
        source: source.into(),
        r#type: event_type.into(),
        subject: subject.into(),
        occurred_at: Some(prost_types_now()),
        payload: Some(prost_types::Any { type_url: format!("type.googleapis.com/{full_type_name}"), value: payload.encode_to_vec() }),
        ..Event::default()
    }
}

fn prost_types_now() -> prost_types::Timestamp {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    prost_types::Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

/// The decoded payload of `event`.
pub fn payload<M: Message + Default>(event: &Event) -> M {
    M::decode(event.payload.as_ref().expect("payload").value.as_slice()).expect("payload decodes")
}

/// Field paths of the BadRequest violations in `status`.
pub fn fields(status: &Status) -> Vec<String> {
    status.get_error_details().bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default()
}

/// `ErrorInfo.reason` of `status` ("" when absent).
pub fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

/// `ErrorInfo.metadata` of `status`.
pub fn info_metadata(status: &Status) -> HashMap<String, String> {
    status.get_error_details().error_info().map(|i| i.metadata.clone()).unwrap_or_default()
}

/// (subject, description) of the PreconditionFailure violations in `status`.
pub fn preconditions(status: &Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .precondition_failure()
        .map(|p| p.violations.iter().map(|v| (v.subject.clone(), v.description.clone())).collect())
        .unwrap_or_default()
}

/// A service running alone for an API test: its host on port 0, its fresh database (migrated and
/// seeded) and a pool whose `search_path` is the service's schema, and the signer its tokens
/// are verified with.
pub struct Hosted {
    pub running: work4life_platform::host::Running,
    pub database_url: String,
    pub pool: sqlx::PgPool,
    pub signer: TestSigner,
}

/// Starts `service` alone on a fresh database `w4l_<service>_<uuid>`, with Redis at `redis_url`.
pub async fn host_alone(service: work4life_platform::host::ServiceDefinition, redis_url: &str) -> Hosted {
    let suite = host_services(&[service], redis_url, &[]).await;
    let pool = suite.pools.into_iter().next().expect("one pool");
    Hosted { running: suite.running, database_url: suite.database_url, pool, signer: suite.signer }
}

/// Several services in one host, as `--target=a,b`: one fresh database (a schema each).
pub struct HostedSuite {
    pub running: work4life_platform::host::Running,
    pub database_url: String,
    /// One per service, in the order given, each on its schema.
    pub pools: Vec<sqlx::PgPool>,
    pub signer: TestSigner,
    /// The account the services call their peers as (`W4L_SERVICE_TOKEN`, roles `notifier`).
    pub service_account: String,
}

/// Starts `services` in one host on a fresh database, with Redis at `redis_url`, `extra`
/// variables (`W4L_SMS_URL`, ...), and a service token signed by the suite's signer.
pub async fn host_services(
    services: &[work4life_platform::host::ServiceDefinition],
    redis_url: &str,
    extra: &[(&str, &str)],
) -> HostedSuite {
    let database_url = fresh_database_url(services[0].name);
    let signer = TestSigner::new();
    let service_account = format!("accounts/{}", Uuid::now_v7());
    let service_token = signer.token_for(&service_account, &[("notifier", None, &[])]);
    let mut source = HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.clone()),
        ("W4L_REDIS_URL".to_string(), redis_url.to_string()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
        ("W4L_SERVICE_TOKEN".to_string(), service_token),
    ]);
    source.extend(extra.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
    let config = work4life_platform::config::PlatformConfig::from_source(&source).expect("config");
    let running = work4life_platform::host::start(work4life_platform::host::HostOptions {
        config,
        services: services.to_vec(),
        key_source: Some(signer.key_source()),
        migrate: true,
    })
    .await
    .unwrap_or_else(|e| panic!("{:?} start: {e:#}", services.iter().map(|s| s.name).collect::<Vec<_>>()));
    let mut pools = Vec::new();
    for service in services {
        let pool = work4life_platform::db::connect(&database_url, service.name, 8).await.expect("test pool");
        if let Some(seed) = service.seed {
            seed(&pool).await.expect("seed");
        }
        pools.push(pool);
    }
    HostedSuite { running, database_url, pools, signer, service_account }
}

/// The single number `sql` answers.
pub async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(pool).await.expect(sql)
}

/// Each table's row count and a digest of its rows, to tell whether a call wrote anything. The
/// relay stamps the outbox's `published_at` on its own schedule: the outbox is compared without it.
pub async fn fingerprint(pool: &sqlx::PgPool, tables: &[&'static str]) -> Vec<(&'static str, i64, String)> {
    let mut out = Vec::new();
    for table in tables {
        let row = if *table == "outbox" { "(t.seq, t.event_id, t.stream, t.event_type, t.event, t.created_at)" } else { "t" };
        let (n, digest): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), md5(string_agg({row}::text, '|' ORDER BY {row}::text)) FROM {table} t"
        )))
        .fetch_one(pool)
        .await
        .expect(table);
        out.push((*table, n, digest.unwrap_or_default()));
    }
    out
}

/// The service's outbox events of `event_type`, oldest first.
pub async fn outbox_events(pool: &sqlx::PgPool, event_type: &str) -> Vec<Event> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT event FROM outbox WHERE event_type = $1 ORDER BY seq")
        .bind(event_type)
        .fetch_all(pool)
        .await
        .expect("outbox");
    rows.iter().map(|bytes| Event::decode(bytes.as_slice()).expect("an encoded Event")).collect()
}

/// The service's audit records of `action` on `resource`: (actor, details).
pub async fn audit_records(pool: &sqlx::PgPool, action: &str, resource: &str) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, details::text FROM audit_log WHERE action = $1 AND resource = $2 ORDER BY seq")
            .bind(action)
            .bind(resource)
            .fetch_all(pool)
            .await
            .expect("audit");
    rows.into_iter().map(|(actor, details)| (actor, serde_json::from_str(&details).unwrap_or_default())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redis_stops_and_comes_back_with_its_data() {
        let redis = TestRedis::start().await;
        if redis.private.is_none() {
            eprintln!("no redis-server installed: nothing to stop");
            return;
        }
        let mut conn = redis.connection().await;
        let id: String = redis::cmd("XADD").arg("s").arg("*").arg("k").arg("v").query_async(&mut conn).await.expect("XADD");

        redis.stop().await;
        let client = redis::Client::open(redis.url.as_str()).expect("redis url");
        assert!(client.get_multiplexed_async_connection().await.is_err(), "a stopped Redis takes no connection");
        assert!(redis::cmd("PING").query_async::<String>(&mut conn).await.is_err(), "nor answers on an old one");

        redis.restart().await;
        let mut conn = redis.connection().await;
        let reply: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg("s").arg("-").arg("+").query_async(&mut conn).await.expect("XRANGE");
        assert_eq!(reply.ids.len(), 1);
        assert_eq!(reply.ids[0].id, id);
        assert_eq!(reply.ids[0].get::<String>("k").as_deref(), Some("v"));
    }
}
