//! The binary as operators run it: both modes serve all five services with health and reflection,
//! `seed` is idempotent, bad configuration is refused before anything binds, and SIGTERM drains.

use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use work4life_tests::{SERVICES, Suite, binary};

async fn health(url: &str) -> HealthClient<Channel> {
    HealthClient::new(Channel::from_shared(url.to_string()).expect("url").connect().await.expect("connect"))
}

async fn wait_serving(url: &str, service: &str) {
    let mut client = health(url).await;
    for _ in 0..100 {
        if let Ok(r) = client.check(HealthCheckRequest { service: service.into() }).await
            && r.into_inner().status == ServingStatus::Serving as i32
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{service} at {url} never served");
}

#[tokio::test]
async fn all_in_one_serves_every_service_then_drains_on_sigterm() {
    let suite = Suite::all_in_one().await.expect("start");
    let url = suite.url_of("grants").to_string();
    for service in SERVICES {
        wait_serving(&url, service).await;
    }
    wait_serving(&url, "").await;
    let unknown = health(&url).await.check(HealthCheckRequest { service: "billing".into() }).await.expect_err("unknown");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    // Every migration landed in its own schema.
    let pool = sqlx::PgPool::connect(&suite.database_url).await.expect("db");
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = ANY($1) ORDER BY 1")
            .bind(SERVICES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .fetch_all(&pool)
            .await
            .expect("schemas");
    assert_eq!(schemas, ["coaching", "grants", "identity", "intake", "notifications"]);
    suite.stop().await.expect("clean exit");
}

#[tokio::test]
async fn split_mode_runs_one_process_per_service() {
    let suite = Suite::split().await.expect("start");
    assert_eq!(suite.processes.len(), 5);
    for service in SERVICES {
        let url = suite.url_of(service).to_string();
        wait_serving(&url, service).await;
        // A process answers for its own service only.
        let other = SERVICES.iter().find(|s| **s != service).expect("other");
        let err = health(&url).await.check(HealthCheckRequest { service: (*other).into() }).await.expect_err("not hosted");
        assert_eq!(err.code(), tonic::Code::NotFound, "{service} must not claim {other}");
    }
    suite.stop().await.expect("clean exit");
}

#[tokio::test]
async fn seed_loads_reference_data_once_and_shows_the_admin_password_once() {
    let database_url = format!("{}/w4l_suite_{}", work4life_tests::server_url(), uuid::Uuid::new_v4().simple());
    let run = || {
        std::process::Command::new(binary().expect("bin"))
            .args(["--target=all", "seed"])
            .env("W4L_DATABASE_URL", &database_url)
            .env("W4L_LOG", "warn")
            .output()
            .expect("run seed")
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let first = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(first.contains("demo admin created: admin@work4life.local / "), "{first}");
    let second = run();
    assert!(second.status.success());
    let second = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(second.contains("demo admin admin@work4life.local exists"), "{second}");
    assert!(!second.contains(" / "), "the password is shown once: {second}");
    let pool = sqlx::PgPool::connect(&database_url).await.expect("db");
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.expect(sql) }
    };
    assert_eq!(count("SELECT count(*) FROM intake.zones").await, 4);
    assert_eq!(count("SELECT count(*) FROM intake.calls").await, 3, "demo calls once, however often seeded");
    assert_eq!(count("SELECT count(*) FROM coaching.offices").await, 5);
    assert_eq!(count("SELECT count(*) FROM coaching.rooms").await, 10, "two rooms per office, once");
    assert_eq!(count("SELECT count(*) FROM coaching.office_hours").await, 30, "Monday to Saturday per office, once");
    assert_eq!(count("SELECT count(*) FROM grants.budgets").await, 1, "the WORK4LIFE budget once");
    assert_eq!(count("SELECT count(*) FROM grants.budget_lines").await, 8);
    assert_eq!(count("SELECT sum(allocated_minor)::bigint FROM grants.budget_lines").await, 200_000_000, "2,000,000 EUR allocated");
    assert_eq!(count("SELECT count(*) FROM grants.postings").await, 9, "the funding and eight allocations, once");
    assert_eq!(
        count("SELECT count(*) FROM notifications.templates").await,
        105,
        "every message type in fr, ar, en (SMS, email; WhatsApp for five), once"
    );
    assert_eq!(
        count("SELECT count(DISTINCT message_type) FROM notifications.templates WHERE channel = 'sms' AND locale IN ('fr', 'ar', 'en')")
            .await,
        15
    );
    assert_eq!(count("SELECT count(*) FROM identity.organizations").await, 5);
    assert_eq!(count("SELECT count(*) FROM identity.accounts").await, 1);
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM identity.accounts").fetch_one(&pool).await.expect("hash");
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
}

#[tokio::test]
async fn bad_configuration_is_refused_before_binding_and_names_the_variable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    for (variable, value) in [
        ("W4L_MAX_CONCURRENT_CALLS", "0"),
        ("W4L_REDIS_URL", "localhost:6379"),
        ("W4L_PAGE_TOKEN_KEY", "short"),
        ("W4L_SERVICE_CLIENT_SECRET", "too-short"),
        ("W4L_SMS_URL", "sms.example.org"),
    ] {
        let out = std::process::Command::new(binary().expect("bin"))
            .args(["--target=all", "serve"])
            .env("W4L_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env(variable, value)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("serving"));
    }
    let unknown = std::process::Command::new(binary().expect("bin")).args(["--target=billing", "serve"]).output().expect("run");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown target \"billing\""));
}

#[tokio::test]
async fn bootstrap_creates_the_first_admin_once_and_that_admin_can_log_in() {
    let database_url = format!("{}/w4l_suite_{}", work4life_tests::server_url(), uuid::Uuid::new_v4().simple());
    let run = || {
        std::process::Command::new(binary().expect("bin"))
            .args(["bootstrap-admin", "--email", "Head.Of.Program@Example.org"])
            .env("W4L_DATABASE_URL", &database_url)
            .env("W4L_LOG", "warn")
            .output()
            .expect("run")
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    let password = stdout.split(" / ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("password in output").to_string();
    assert!(password.len() >= 20, "{stdout}");
    let second = run();
    assert!(!second.status.success(), "a second bootstrap must be refused");
    assert!(String::from_utf8_lossy(&second.stderr).contains("an administrator exists already"));

    let env = work4life_tests::base_env(&database_url);
    let process = work4life_tests::start("identity", "127.0.0.1:0", &env).await.expect("start");
    let channel = Channel::from_shared(process.url.clone()).expect("url").connect().await.expect("connect");
    let mut identity = work4life_proto::identity::identity_service_client::IdentityServiceClient::new(channel);
    let login = identity
        .login(work4life_proto::identity::LoginRequest { email: "head.of.program@example.org".into(), password })
        .await
        .expect("the bootstrapped admin logs in")
        .into_inner();
    let mut whoami = tonic::Request::new(work4life_proto::identity::WhoAmIRequest {});
    whoami
        .metadata_mut()
        .insert("authorization", format!("Bearer {}", login.tokens.expect("tokens").access_token).parse().expect("header"));
    let me = identity.who_am_i(whoami).await.expect("whoami").into_inner();
    assert!(me.role_bindings.iter().any(|b| b.role == "admin" && b.organization.is_empty()), "{me:?}");
    process.stop().await.expect("stop");
}
