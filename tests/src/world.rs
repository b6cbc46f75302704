//! The world a journey runs in: the real `work4life` binary (all-in-one or split into five
//! processes) on a fresh, seeded database, with its own redis-server (so no other suite's
//! consumers take its events), an SMS provider and an SMTP server that the test starts (real
//! servers on loopback), access tokens from a signer the processes trust (`W4L_TRUSTED_JWKS`:
//! staff accounts have no password yet), and the notifications service's own token.

use tonic::transport::Channel;
use work4life_testkit::{HttpProvider, SmtpServer, TestRedis, TestSigner};

use crate::Suite;

/// How the binary is deployed for a journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--target=all`.
    AllInOne,
    /// One process per service, each on its own port.
    Split,
}

/// A running suite and what a journey needs around it.
pub struct World {
    /// The processes.
    pub suite: Suite,
    /// Its private Redis.
    pub redis: TestRedis,
    /// Signs the journey's tokens (the processes trust its key).
    pub signer: TestSigner,
    /// The SMS provider.
    pub sms: HttpProvider,
    /// The mail relay.
    pub smtp: SmtpServer,
    /// What the seed printed.
    pub seeded: String,
}

impl World {
    /// Seeds a fresh database and starts the suite in `mode`.
    pub async fn start(mode: Mode) -> anyhow::Result<Self> {
        Self::start_with(mode, &[]).await
    }

    /// [`World::start`] with more environment variables for every process.
    pub async fn start_with(mode: Mode, more: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_on(mode, &crate::server_url(), more).await
    }

    /// [`World::start_with`] on the PostgreSQL server at `server` (`postgres://user@host:port`).
    pub async fn start_on(mode: Mode, server: &str, more: &[(&str, &str)]) -> anyhow::Result<Self> {
        let redis = TestRedis::start().await;
        let signer = TestSigner::new();
        let (sms, smtp) = (HttpProvider::start().await, SmtpServer::start().await);
        let notifier = signer.token_for(&format!("accounts/{}", uuid::Uuid::now_v7()), &[("notifier", None, &[])]);
        let jwks = serde_json::json!({ "keys": [signer.public_jwk()] }).to_string();
        let extra: Vec<(&str, String)> = vec![
            ("W4L_REDIS_URL", redis.url.clone()),
            ("W4L_TRUSTED_JWKS", jwks),
            ("W4L_SERVICE_TOKEN", notifier),
            ("W4L_SMS_URL", sms.url()),
            ("W4L_SMTP_URL", smtp.url()),
            ("W4L_NOTIFY_QUIET_HOURS", "off".into()),
            ("W4L_NOTIFY_RETRY_BASE_MS", "100".into()),
            ("W4L_NOTIFY_RETRY_CAP_MS", "1000".into()),
        ];
        let mut extra = extra;
        extra.extend(more.iter().map(|(k, v)| (*k, (*v).to_string())));
        let database_url = format!("{server}/w4l_suite_{}", uuid::Uuid::new_v4().simple());
        let seeded = crate::seed(&database_url, &extra).await?;
        let suite = match mode {
            Mode::AllInOne => Suite::all_in_one_on(database_url, &extra).await?,
            Mode::Split => Suite::split_on(database_url, &extra).await?,
        };
        Ok(Self { suite, redis, signer, sms, smtp, seeded })
    }

    /// A channel to the process serving `service`.
    pub fn channel(&self, service: &str) -> Channel {
        Channel::from_shared(self.suite.url_of(service).to_string()).expect("url").connect_lazy()
    }

    /// A new account holding `role` in `org` and `zones`: its subject and a token.
    pub fn token(&self, role: &str, org: Option<uuid::Uuid>, zones: &[&str]) -> (String, String) {
        self.signer.token(role, org, zones)
    }

    /// A pool on `service`'s schema, to check what the journey left behind.
    pub async fn pool(&self, service: &str) -> anyhow::Result<sqlx::PgPool> {
        use sqlx::ConnectOptions as _;
        let options: sqlx::postgres::PgConnectOptions = self.suite.database_url.parse()?;
        let options = options.options([("search_path", service)]).disable_statement_logging();
        Ok(sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(options).await?)
    }

    /// Stops every process gracefully.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.suite.stop().await
    }
}
