//! Typed configuration read from `W4L_*` environment variables, validated completely before any
//! port binds. Every variable is declared once below; docs/configuration.md describes each.
//! The standard `OTEL_*` variables are read by the OpenTelemetry SDK itself (see `telemetry`).

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    time::Duration,
};

/// Every environment variable the platform reads, declared once.
pub mod vars {
    /// PostgreSQL URL; each service uses its own schema in it unless given its own URL.
    pub const DATABASE_URL: &str = "W4L_DATABASE_URL";
    /// Per-service database URL override, `W4L_<SERVICE>_DATABASE_URL` (e.g. `W4L_GRANTS_DATABASE_URL`).
    pub const SERVICE_DATABASE_URL_SUFFIX: &str = "_DATABASE_URL";
    /// Address of a peer service, `W4L_<SERVICE>_URL` (`http://grants:50051`); unset means the
    /// service is hosted by this same process (all-in-one) and is called over loopback.
    pub const SERVICE_URL_SUFFIX: &str = "_URL";
    /// Redis URL (`redis://127.0.0.1:6379/0`).
    pub const REDIS_URL: &str = "W4L_REDIS_URL";
    /// Address the gRPC server listens on (`0.0.0.0:50051`); port 0 picks a free port.
    pub const LISTEN_ADDR: &str = "W4L_LISTEN_ADDR";
    /// Size of each service's database connection pool.
    pub const DATABASE_MAX_CONNECTIONS: &str = "W4L_DATABASE_MAX_CONNECTIONS";
    /// Calls handled at once per server; beyond it calls are shed with RESOURCE_EXHAUSTED.
    pub const MAX_CONCURRENT_CALLS: &str = "W4L_MAX_CONCURRENT_CALLS";
    /// Deadline applied to a call that carries no `grpc-timeout`, in milliseconds.
    pub const DEFAULT_DEADLINE_MS: &str = "W4L_DEFAULT_DEADLINE_MS";
    /// How long in-flight calls may drain after shutdown begins, in seconds.
    pub const SHUTDOWN_GRACE_SECS: &str = "W4L_SHUTDOWN_GRACE_SECS";
    /// How long a server keeps answering (as NOT_SERVING) after shutdown begins, before it stops
    /// accepting calls, so load balancers see it leave; in milliseconds.
    pub const SHUTDOWN_DELAY_MS: &str = "W4L_SHUTDOWN_DELAY_MS";
    /// Expected `iss` of access tokens.
    pub const TOKEN_ISSUER: &str = "W4L_TOKEN_ISSUER";
    /// Expected `aud` of access tokens.
    pub const TOKEN_AUDIENCE: &str = "W4L_TOKEN_AUDIENCE";
    /// How often every service refetches identity's key set, in seconds.
    pub const KEY_SET_REFRESH_SECS: &str = "W4L_KEY_SET_REFRESH_SECS";
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 300).
    pub const TOKEN_LEEWAY_SECS: &str = "W4L_TOKEN_LEEWAY_SECS";
    /// Secret (at least 32 bytes, base64) that signs page tokens so clients cannot forge them.
    pub const PAGE_TOKEN_KEY: &str = "W4L_PAGE_TOKEN_KEY";
    /// Key (32 bytes, base64) that encrypts identity's private signing keys at rest.
    pub const SIGNING_KEY_ENCRYPTION_KEY: &str = "W4L_SIGNING_KEY_ENCRYPTION_KEY";
    /// Keys that encrypt personal identifiers at rest (phone, email, document numbers), as
    /// `id:base64` pairs separated by commas (`2026a:...,2025b:...`); each key is 32 bytes. The
    /// first encrypts; every listed key decrypts, so a key is rotated by putting a new one first.
    pub const PERSONAL_DATA_KEYS: &str = "W4L_PERSONAL_DATA_KEYS";
    /// Secret (at least 32 bytes, base64) for the keyed lookup hashes and pseudonyms of personal
    /// identifiers. Changing it orphans every lookup hash: it is not rotated like the keys above.
    pub const PERSONAL_DATA_HASH_KEY: &str = "W4L_PERSONAL_DATA_HASH_KEY";
    /// A JWK set (JSON) to verify access tokens with, instead of identity's published keys:
    /// for a service run without identity (tests, an isolated verification host). Unset: identity.
    pub const TRUSTED_JWKS: &str = "W4L_TRUSTED_JWKS";
    /// The service account this process's services call their peers as (a UUID, identity's
    /// `accounts/{id}`), with [`SERVICE_CLIENT_SECRET`]: notifications reads contact details from
    /// intake with it. Identity, when it is given both, keeps that account in existence with the
    /// roles services need (`notifier`), so one secret configures both ends.
    pub const SERVICE_CLIENT_ID: &str = "W4L_SERVICE_CLIENT_ID";
    /// See [`SERVICE_CLIENT_ID`]; at least 32 characters.
    pub const SERVICE_CLIENT_SECRET: &str = "W4L_SERVICE_CLIENT_SECRET";
    /// An access token used as is for peer calls, instead of client credentials: for tests and
    /// hosts run without identity (as `W4L_TRUSTED_JWKS`); never in a deployment.
    pub const SERVICE_TOKEN: &str = "W4L_SERVICE_TOKEN";
    /// Crash points armed for fault-injection tests (`grants.before_commit=0.01,...`), read by
    /// `platform::fault` itself; never set in a deployment.
    pub const CRASH_POINTS: &str = "W4L_CRASH_POINTS";
    /// Log filter in `tracing` syntax (`info`, `work4life=debug,sqlx=warn`).
    pub const LOG: &str = "W4L_LOG";
    /// Log format: `json` (default) or `text`.
    pub const LOG_FORMAT: &str = "W4L_LOG_FORMAT";
    /// Address of the Prometheus scrape endpoint (`0.0.0.0:9464`, path `/metrics`); unset: none.
    pub const METRICS_ADDR: &str = "W4L_METRICS_ADDR";
    /// Standard OpenTelemetry variable: export traces and metrics over OTLP/gRPC when set.
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// Standard OpenTelemetry variable: the service name resource attribute.
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
}

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable that is missing or wrong.
    pub variable: String,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigError {
    fn new(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { variable: variable.into(), reason: reason.into() }
    }
}

/// Where configuration values come from: the process environment in production, a map in tests.
pub trait Source {
    /// The value of `name`, if set and not empty.
    fn get(&self, name: &str) -> Option<String>;
    /// Every set, non-empty variable whose name starts with `prefix`.
    fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Environment;

impl Source for Environment {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
    fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        std::env::vars().filter(|(k, v)| k.starts_with(prefix) && !v.trim().is_empty()).collect()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned().filter(|v| !v.trim().is_empty())
    }
    fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.iter().filter(|(k, v)| k.starts_with(prefix) && !v.trim().is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Source for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned().filter(|v| !v.trim().is_empty())
    }
    fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Settings shared by every service of one process.
#[derive(Clone)]
pub struct PlatformConfig {
    /// Default PostgreSQL URL.
    pub database_url: String,
    /// Per-service overrides of the database URL, keyed by service name.
    pub service_database_urls: HashMap<String, String>,
    /// Peer service URLs by service name.
    pub peer_urls: HashMap<String, String>,
    /// Redis URL.
    pub redis_url: String,
    /// gRPC listen address.
    pub listen_addr: SocketAddr,
    /// Connections per service pool.
    pub database_max_connections: u32,
    /// Calls in flight per server before shedding.
    pub max_concurrent_calls: usize,
    /// Deadline for calls without `grpc-timeout`.
    pub default_deadline: Duration,
    /// Drain time after shutdown begins.
    pub shutdown_grace: Duration,
    /// NOT_SERVING time before the listener closes.
    pub shutdown_delay: Duration,
    /// Access-token validation settings.
    pub token: TokenConfig,
    /// Period of the key-set refresh.
    pub key_set_refresh: Duration,
    /// Key for page-token MACs.
    pub page_token_key: Vec<u8>,
    /// AES-256-GCM key for signing keys at rest (identity).
    pub signing_key_encryption_key: [u8; 32],
    /// Keys for personal identifiers at rest: (key id, AES-256 key), the first encrypts.
    pub personal_data_keys: Vec<(String, [u8; 32])>,
    /// Key of the lookup hashes and pseudonyms of personal identifiers.
    pub personal_data_hash_key: Vec<u8>,
    /// A fixed key set to verify tokens with, instead of identity's.
    pub trusted_jwks: Option<jsonwebtoken::jwk::JwkSet>,
    /// How services here authenticate to their peers; `None`: they cannot call peers that need a token.
    pub service_credentials: Option<ServiceCredentials>,
    /// Every `W4L_*` variable as read, for settings a single service owns (notifications'
    /// providers): it parses them itself, from the same source as the rest.
    pub vars: std::sync::Arc<BTreeMap<String, String>>,
    /// Log filter.
    pub log_filter: String,
    /// Whether logs are JSON.
    pub log_json: bool,
    /// OTLP endpoint, when telemetry export is on.
    pub otlp_endpoint: Option<String>,
    /// Prometheus scrape address, when on.
    pub metrics_addr: Option<SocketAddr>,
}

/// How this process's services prove who they are to their peers.
#[derive(Clone)]
pub enum ServiceCredentials {
    /// A service account's client id and secret, exchanged with identity for short-lived tokens.
    Client {
        /// The account's id.
        id: uuid::Uuid,
        /// Its secret.
        secret: String,
    },
    /// A token used as is.
    Token(String),
}

impl std::fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client { id, .. } => write!(f, "Client {{ id: {id}, secret: <redacted> }}"),
            Self::Token(_) => write!(f, "Token(<redacted>)"),
        }
    }
}

fn service_credentials(src: &impl Source) -> Result<Option<ServiceCredentials>, ConfigError> {
    match (src.get(vars::SERVICE_CLIENT_ID), src.get(vars::SERVICE_CLIENT_SECRET), src.get(vars::SERVICE_TOKEN)) {
        (None, None, None) => Ok(None),
        (None, None, Some(token)) => Ok(Some(ServiceCredentials::Token(token.trim().to_string()))),
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            Err(ConfigError::new(vars::SERVICE_TOKEN, "set either a token or client credentials, not both"))
        }
        (Some(id), Some(secret), None) => {
            let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| ConfigError::new(vars::SERVICE_CLIENT_ID, "must be a UUID"))?;
            if secret.trim().len() < 32 {
                return Err(ConfigError::new(vars::SERVICE_CLIENT_SECRET, "must be at least 32 characters"));
            }
            Ok(Some(ServiceCredentials::Client { id, secret: secret.trim().to_string() }))
        }
        (Some(_), None, None) => Err(ConfigError::new(vars::SERVICE_CLIENT_SECRET, "is required with W4L_SERVICE_CLIENT_ID")),
        (None, Some(_), None) => Err(ConfigError::new(vars::SERVICE_CLIENT_ID, "is required with W4L_SERVICE_CLIENT_SECRET")),
    }
}

/// What an access token must say to be accepted.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Tolerated skew on `exp`/`nbf`.
    pub leeway: Duration,
}

impl std::fmt::Debug for PlatformConfig {
    // Hand-written so that secrets (URLs with passwords, the page-token key) never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("peer_urls", &self.peer_urls)
            .field("listen_addr", &self.listen_addr)
            .field("database_max_connections", &self.database_max_connections)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("default_deadline", &self.default_deadline)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("shutdown_delay", &self.shutdown_delay)
            .field("token", &self.token)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

/// Replaces the password of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Local defaults: the PostgreSQL and Redis of a developer machine (README's first command).
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/work4life";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// sqlx reports every PostgreSQL NOTICE at info ("schema already exists, skipping"): too chatty.
const DEFAULT_LOG_FILTER: &str = "info,sqlx::postgres::notice=warn";
const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:50051";
/// Only for local runs: production must set `W4L_PAGE_TOKEN_KEY` (the chart always does).
const DEV_PAGE_TOKEN_KEY: &[u8] = b"work4life-dev-page-token-key-not-for-production";

/// Only for local runs: production must set `W4L_SIGNING_KEY_ENCRYPTION_KEY` (the chart does).
const DEV_PERSONAL_DATA_KEY: (&str, [u8; 32]) = ("dev", *b"work4life-dev-personal-data-key!");
const DEV_PERSONAL_DATA_HASH_KEY: &[u8] = b"work4life-dev-personal-data-hash-key-not-for-production";
const DEV_SIGNING_KEY_ENCRYPTION_KEY: [u8; 32] = *b"work4life-dev-signing-key-32byte";

/// The service names a database URL may be overridden for.
pub const SERVICES: [&str; 5] = ["identity", "intake", "grants", "coaching", "notifications"];

impl PlatformConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Environment)
    }

    /// Reads and validates every variable; the first problem is returned with its variable name.
    pub fn from_source(src: &impl Source) -> Result<Self, ConfigError> {
        let database_url = src.get(vars::DATABASE_URL).unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        check_url(vars::DATABASE_URL, &database_url, &["postgres", "postgresql"])?;
        let mut service_database_urls = HashMap::new();
        for service in SERVICES {
            let var = format!("W4L_{}{}", service.to_uppercase(), vars::SERVICE_DATABASE_URL_SUFFIX);
            if let Some(url) = src.get(&var) {
                check_url(&var, &url, &["postgres", "postgresql"])?;
                service_database_urls.insert(service.to_string(), url);
            }
        }
        let mut peer_urls = HashMap::new();
        for service in SERVICES {
            let var = format!("W4L_{}{}", service.to_uppercase(), vars::SERVICE_URL_SUFFIX);
            if let Some(url) = src.get(&var) {
                check_url(&var, &url, &["http"])?;
                peer_urls.insert(service.to_string(), url);
            }
        }
        let redis_url = src.get(vars::REDIS_URL).unwrap_or_else(|| DEFAULT_REDIS_URL.into());
        // TLS clients are not built in yet: refuse what could not connect rather than fail later.
        check_url(vars::REDIS_URL, &redis_url, &["redis"])?;
        let listen_addr = parse(src, vars::LISTEN_ADDR, DEFAULT_LISTEN_ADDR.parse().ok(), "a socket address such as 0.0.0.0:50051")?;
        let database_max_connections = bounded(src, vars::DATABASE_MAX_CONNECTIONS, 10, 1, 1000)?;
        let max_concurrent_calls = bounded(src, vars::MAX_CONCURRENT_CALLS, 1024, 1, 1_000_000)?;
        let default_deadline = Duration::from_millis(bounded(src, vars::DEFAULT_DEADLINE_MS, 30_000, 1, 3_600_000)?);
        let shutdown_grace = Duration::from_secs(bounded(src, vars::SHUTDOWN_GRACE_SECS, 20, 0, 600)?);
        let shutdown_delay = Duration::from_millis(bounded(src, vars::SHUTDOWN_DELAY_MS, 2_000, 0, 60_000)?);
        let token = TokenConfig {
            issuer: src.get(vars::TOKEN_ISSUER).unwrap_or_else(|| "https://identity.work4life.local".into()),
            audience: src.get(vars::TOKEN_AUDIENCE).unwrap_or_else(|| "work4life".into()),
            leeway: Duration::from_secs(bounded(src, vars::TOKEN_LEEWAY_SECS, 30, 0, 300)?),
        };
        let key_set_refresh = Duration::from_secs(bounded(src, vars::KEY_SET_REFRESH_SECS, 300, 1, 86_400)?);
        let page_token_key = match src.get(vars::PAGE_TOKEN_KEY) {
            None => DEV_PAGE_TOKEN_KEY.to_vec(),
            Some(b64) => {
                use base64::Engine as _;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| ConfigError::new(vars::PAGE_TOKEN_KEY, "not valid base64"))?;
                if key.len() < 32 {
                    return Err(ConfigError::new(vars::PAGE_TOKEN_KEY, "must decode to at least 32 bytes"));
                }
                key
            }
        };
        let signing_key_encryption_key = match src.get(vars::SIGNING_KEY_ENCRYPTION_KEY) {
            None => DEV_SIGNING_KEY_ENCRYPTION_KEY,
            Some(b64) => {
                use base64::Engine as _;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| ConfigError::new(vars::SIGNING_KEY_ENCRYPTION_KEY, "not valid base64"))?;
                key.try_into().map_err(|_| ConfigError::new(vars::SIGNING_KEY_ENCRYPTION_KEY, "must decode to exactly 32 bytes"))?
            }
        };
        let personal_data_keys = match src.get(vars::PERSONAL_DATA_KEYS) {
            None => vec![(DEV_PERSONAL_DATA_KEY.0.to_string(), DEV_PERSONAL_DATA_KEY.1)],
            Some(list) => parse_key_list(vars::PERSONAL_DATA_KEYS, &list)?,
        };
        let personal_data_hash_key = match src.get(vars::PERSONAL_DATA_HASH_KEY) {
            None => DEV_PERSONAL_DATA_HASH_KEY.to_vec(),
            Some(b64) => {
                let key = decode_base64(vars::PERSONAL_DATA_HASH_KEY, &b64)?;
                if key.len() < 32 {
                    return Err(ConfigError::new(vars::PERSONAL_DATA_HASH_KEY, "must decode to at least 32 bytes"));
                }
                key
            }
        };
        let log_json = match src.get(vars::LOG_FORMAT).as_deref() {
            None | Some("json") => true,
            Some("text") => false,
            Some(other) => return Err(ConfigError::new(vars::LOG_FORMAT, format!("must be json or text, not {other:?}"))),
        };
        let metrics_addr = match src.get(vars::METRICS_ADDR) {
            None => None,
            Some(_) => Some(parse(src, vars::METRICS_ADDR, None, "a socket address such as 0.0.0.0:9464")?),
        };
        let otlp_endpoint = src.get(vars::OTEL_EXPORTER_OTLP_ENDPOINT);
        if let Some(endpoint) = &otlp_endpoint {
            check_url(vars::OTEL_EXPORTER_OTLP_ENDPOINT, endpoint, &["http"])?;
        }
        Ok(Self {
            database_url,
            service_database_urls,
            peer_urls,
            redis_url,
            listen_addr,
            database_max_connections,
            max_concurrent_calls,
            default_deadline,
            shutdown_grace,
            shutdown_delay,
            token,
            key_set_refresh,
            page_token_key,
            signing_key_encryption_key,
            personal_data_keys,
            personal_data_hash_key,
            trusted_jwks: match src.get(vars::TRUSTED_JWKS) {
                None => None,
                Some(json) => {
                    Some(serde_json::from_str(&json).map_err(|e| ConfigError::new(vars::TRUSTED_JWKS, format!("not a JWK set: {e}")))?)
                }
            },
            service_credentials: service_credentials(src)?,
            vars: std::sync::Arc::new(src.with_prefix("W4L_")),
            log_filter: src.get(vars::LOG).unwrap_or_else(|| DEFAULT_LOG_FILTER.into()),
            log_json,
            otlp_endpoint,
            metrics_addr,
        })
    }

    /// The database URL a service uses: its own override, or the shared one.
    pub fn database_url_for(&self, service: &str) -> &str {
        self.service_database_urls.get(service).map_or(&self.database_url, String::as_str)
    }
}

fn decode_base64(variable: &str, value: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| ConfigError::new(variable, "not valid base64"))
}

/// `id:base64,id:base64`: ids unique, lower-case letters, digits, `-` and `_`; keys 32 bytes.
fn parse_key_list(variable: &str, value: &str) -> Result<Vec<(String, [u8; 32])>, ConfigError> {
    let mut keys: Vec<(String, [u8; 32])> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, b64) = item.split_once(':').ok_or_else(|| ConfigError::new(variable, "each key must be written id:base64"))?;
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_') {
            return Err(ConfigError::new(variable, format!("key id {id:?} must be 1 to 32 of a-z, 0-9, - and _")));
        }
        if keys.iter().any(|(known, _)| known == id) {
            return Err(ConfigError::new(variable, format!("key id {id:?} appears twice")));
        }
        let key = decode_base64(variable, b64)?
            .try_into()
            .map_err(|_| ConfigError::new(variable, format!("key {id:?} must decode to exactly 32 bytes")))?;
        keys.push((id.to_string(), key));
    }
    if keys.is_empty() {
        return Err(ConfigError::new(variable, "must list at least one key"));
    }
    Ok(keys)
}

fn check_url(variable: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let scheme = value.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if schemes.contains(&s) => Ok(()),
        _ => Err(ConfigError::new(variable, format!("must be a URL starting with {}://", schemes.join(":// or ")))),
    }
}

fn parse<T: std::str::FromStr>(src: &impl Source, variable: &str, default: Option<T>, expected: &str) -> Result<T, ConfigError> {
    match src.get(variable) {
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError::new(variable, format!("expected {expected}, got {raw:?}"))),
        None => default.ok_or_else(|| ConfigError::new(variable, "is required")),
    }
}

fn bounded<T>(src: &impl Source, variable: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let value: T = parse(src, variable, Some(default), "an integer")?;
    if value < min || value > max {
        return Err(ConfigError::new(variable, format!("must be between {min} and {max}, got {value}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn defaults_are_local_and_valid() {
        let cfg = PlatformConfig::from_source(&source(&[])).expect("defaults");
        assert_eq!(cfg.redis_url, DEFAULT_REDIS_URL);
        assert_eq!(cfg.max_concurrent_calls, 1024);
        assert!(cfg.log_json);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            (vars::DATABASE_URL, "mysql://x"),
            (vars::REDIS_URL, "127.0.0.1:6379"),
            (vars::LISTEN_ADDR, "localhost"),
            (vars::MAX_CONCURRENT_CALLS, "0"),
            (vars::DEFAULT_DEADLINE_MS, "soon"),
            (vars::TOKEN_LEEWAY_SECS, "3600"),
            (vars::PAGE_TOKEN_KEY, "c2hvcnQ="),
            (vars::LOG_FORMAT, "xml"),
            ("W4L_GRANTS_DATABASE_URL", "http://x"),
            ("W4L_INTAKE_URL", "intake:50051"),
            ("W4L_COACHING_URL", "https://coaching:50051"),
            (vars::REDIS_URL, "rediss://cache:6380"),
            (vars::METRICS_ADDR, "localhost:9464"),
            (vars::SIGNING_KEY_ENCRYPTION_KEY, "c2hvcnQ="),
            (vars::OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4317"),
            (vars::PERSONAL_DATA_KEYS, "k1:c2hvcnQ="),
            (vars::PERSONAL_DATA_KEYS, "no-colon"),
            (vars::PERSONAL_DATA_KEYS, "K1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            (vars::PERSONAL_DATA_KEYS, "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            (vars::PERSONAL_DATA_KEYS, " , "),
            (vars::PERSONAL_DATA_HASH_KEY, "c2hvcnQ="),
        ];
        for (variable, value) in cases {
            let err = PlatformConfig::from_source(&source(&[(variable, value)])).expect_err(variable);
            assert_eq!(err.variable, variable, "{err}");
            assert!(err.to_string().contains(variable));
        }
    }

    #[test]
    fn personal_data_keys_keep_their_order() {
        let list = "k2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=, k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let cfg = PlatformConfig::from_source(&source(&[(vars::PERSONAL_DATA_KEYS, list)])).expect("cfg");
        let ids: Vec<&str> = cfg.personal_data_keys.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["k2", "k1"], "the first key listed is the one that encrypts");
        assert_eq!(cfg.personal_data_keys[0].1, [1u8; 32]);
        assert!(!format!("{cfg:?}").contains("AQEB"));
    }

    #[test]
    fn service_database_url_overrides_the_shared_one() {
        let cfg = PlatformConfig::from_source(&source(&[("W4L_GRANTS_DATABASE_URL", "postgres://u:secret@db/grants")])).expect("cfg");
        assert_eq!(cfg.database_url_for("grants"), "postgres://u:secret@db/grants");
        assert_eq!(cfg.database_url_for("intake"), DEFAULT_DATABASE_URL);
    }

    #[test]
    fn debug_output_hides_passwords() {
        let cfg = PlatformConfig::from_source(&source(&[(vars::DATABASE_URL, "postgres://app:hunter2@db:5432/w4l")])).expect("cfg");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:***@db"));
    }
}
