//! Fixtures shared by identity's API tests: identity alone on port 0, a fresh database, its own
//! Redis database, accounts with known passwords.
#![allow(dead_code)]

use std::collections::HashMap;

use argon2::PasswordHasher as _;
use tonic::{Request, transport::Channel};
use work4life_platform::{
    config::PlatformConfig,
    host::{self, HostOptions, Running},
};
use work4life_proto::identity::{LoginRequest, identity_service_client::IdentityServiceClient};

pub struct Fixture {
    pub running: Running,
    pub database_url: String,
    pub redis_url: String,
}

pub fn server_url() -> String {
    std::env::var("W4L_TEST_DATABASE_URL")
        .ok()
        .and_then(|u| u.rsplit_once('/').map(|(s, _)| s.to_string()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
}

/// Starts identity alone. `redis_db` gives each test its own Redis database (login counters).
pub async fn start(database_url: &str, redis_db: u8) -> Fixture {
    let redis_url = format!("redis://127.0.0.1:6379/{redis_db}");
    let source: HashMap<String, String> = HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.to_string()),
        ("W4L_REDIS_URL".to_string(), redis_url.clone()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
    ]);
    let config = PlatformConfig::from_source(&source).expect("config");
    let running = host::start(HostOptions { config, services: vec![work4life_identity::SERVICE], key_source: None, migrate: true })
        .await
        .expect("start");
    Fixture { running, database_url: database_url.to_string(), redis_url }
}

pub async fn fresh(redis_db: u8) -> Fixture {
    let database_url = format!("{}/w4l_identity_{}", server_url(), uuid::Uuid::new_v4().simple());
    let fixture = start(&database_url, redis_db).await;
    let mut redis =
        redis::Client::open(fixture.redis_url.as_str()).expect("redis").get_multiplexed_async_connection().await.expect("redis");
    let _: () = redis::cmd("FLUSHDB").query_async(&mut redis).await.expect("flush");
    fixture
}

impl Fixture {
    pub async fn client(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(
            Channel::from_shared(format!("http://{}", self.running.addr)).expect("url").connect().await.expect("connect"),
        )
    }

    /// A staff account with `password` and `roles` (role, zones).
    pub async fn account(&self, email: &str, password: &str, roles: &[&str]) -> uuid::Uuid {
        let pool = work4life_platform::db::connect(&self.database_url, "identity", 2).await.expect("db");
        let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("params");
        let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(password.as_bytes())
            .expect("hash")
            .to_string();
        let id = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO accounts (id, kind, email, display_name, password_hash) VALUES ($1, 'staff', $2, 'Test', $3)")
            .bind(id)
            .bind(email)
            .bind(hash)
            .execute(&pool)
            .await
            .expect("account");
        for role in roles {
            sqlx::query("INSERT INTO role_bindings (id, account_id, role, zones) VALUES ($1, $2, $3, '{oujda}')")
                .bind(uuid::Uuid::now_v7())
                .bind(id)
                .bind(role)
                .execute(&pool)
                .await
                .expect("role");
        }
        id
    }
}

pub fn login(email: &str, password: &str) -> LoginRequest {
    LoginRequest { email: email.into(), password: password.into() }
}

pub fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    request
}

impl Fixture {
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database_url).await.expect("db")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&self.pool().await).await.expect(sql)
    }

    pub async fn organization(&self, name: &str) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO identity.organizations (id, name, kind) VALUES ($1, $2, 'partner_ngo')")
            .bind(id)
            .bind(name)
            .execute(&self.pool().await)
            .await
            .expect("org");
        id
    }

    pub async fn bind(&self, account: uuid::Uuid, role: &str, organization: Option<uuid::Uuid>) {
        sqlx::query("INSERT INTO identity.role_bindings (id, account_id, role, organization_id) VALUES ($1, $2, $3, $4)")
            .bind(uuid::Uuid::now_v7())
            .bind(account)
            .bind(role)
            .bind(organization)
            .execute(&self.pool().await)
            .await
            .expect("bind");
    }

    pub async fn set_org(&self, account: uuid::Uuid, organization: uuid::Uuid) {
        sqlx::query("UPDATE identity.accounts SET organization_id = $2 WHERE id = $1")
            .bind(account)
            .bind(organization)
            .execute(&self.pool().await)
            .await
            .expect("org");
    }

    /// Logs in and returns the access token.
    pub async fn token(&self, email: &str, password: &str) -> String {
        self.client().await.login(login(email, password)).await.expect("login").into_inner().tokens.expect("tokens").access_token
    }

    pub async fn enable(&self, account: uuid::Uuid) {
        sqlx::query("UPDATE identity.accounts SET status = 'active' WHERE id = $1")
            .bind(account)
            .execute(&self.pool().await)
            .await
            .expect("enable");
    }

    pub async fn service_account(&self, organization: uuid::Uuid) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        sqlx::query("INSERT INTO identity.accounts (id, kind, display_name, organization_id) VALUES ($1, 'service', 'Partner system', $2)")
            .bind(id)
            .bind(organization)
            .execute(&self.pool().await)
            .await
            .expect("service account");
        id
    }

    pub async fn verify_audit(&self) {
        let pool = work4life_platform::db::connect(&self.database_url, "identity", 1).await.expect("db");
        let result = work4life_platform::audit::verify(&pool).await.expect("verify");
        assert!(matches!(result, work4life_platform::audit::Verification::Intact { .. }), "{result:?}");
    }
}
