//! The real service-account path, with no test token anywhere: identity, intake and notifications
//! in one host whose tokens are verified against identity's own key set; notifications is given
//! only a client id and secret (`W4L_SERVICE_CLIENT_ID` / `W4L_SERVICE_CLIENT_SECRET`), which
//! identity provisions at start; an admin logs in with a password. A person registered in intake
//! hears of it by SMS: notifications exchanged its credentials with identity and intake accepted
//! the token it got.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{FAST_RETRIES, person};
use rand::Rng as _;
use tonic::{Code, transport::Channel};
use uuid::Uuid;
use work4life_platform::{
    config::PlatformConfig,
    host::{self, HostOptions, Running},
};
use work4life_proto::{
    identity::{ExchangeClientCredentialsRequest, LoginRequest, WhoAmIRequest, identity_service_client::IdentityServiceClient},
    intake::{CreateApplicantRequest, intake_service_client::IntakeServiceClient},
    notifications::{
        Channel as Wire, ListMessagesRequest, ListTemplatesRequest, MessageState, notifications_service_client::NotificationsServiceClient,
    },
};
use work4life_testkit::{HttpProvider, TestRedis, audit_records, bearer, eventually, rid};

struct Platform {
    running: Running,
    _redis: TestRedis,
    sms: HttpProvider,
    identity_pool: sqlx::PgPool,
    intake_pool: sqlx::PgPool,
    notifications_pool: sqlx::PgPool,
}

impl Platform {
    fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.running.addr)).expect("url").connect_lazy()
    }
}

/// identity + intake + notifications in one host, as `--target=identity,intake,notifications`
/// runs them, with the service account's credentials and nothing else to authenticate with.
async fn start(client_id: Uuid, secret: &str) -> Platform {
    let redis = TestRedis::start().await;
    let sms = HttpProvider::start().await;
    let database_url = work4life_testkit::fresh_database_url("notifications_sa");
    let mut source: HashMap<String, String> = HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.clone()),
        ("W4L_REDIS_URL".to_string(), redis.url.clone()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
        ("W4L_SERVICE_CLIENT_ID".to_string(), client_id.to_string()),
        ("W4L_SERVICE_CLIENT_SECRET".to_string(), secret.to_string()),
        ("W4L_SMS_URL".to_string(), sms.url()),
        ("W4L_SMS_RATE".to_string(), "10000".to_string()),
    ]);
    source.extend(FAST_RETRIES.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
    assert!(!source.contains_key("W4L_SERVICE_TOKEN"));
    let config = PlatformConfig::from_source(&source).expect("config");
    let services = vec![work4life_identity::SERVICE, work4life_intake::SERVICE, work4life_notifications::SERVICE];
    let running =
        host::start(HostOptions { config, services: services.clone(), key_source: None, migrate: true }).await.expect("the host starts");
    let mut pools = Vec::new();
    for service in &services {
        let pool = work4life_platform::db::connect(&database_url, service.name, 4).await.expect("test pool");
        if let Some(seed) = service.seed {
            seed(&pool).await.expect("seed");
        }
        pools.push(pool);
    }
    let notifications_pool = pools.pop().expect("notifications");
    let intake_pool = pools.pop().expect("intake");
    let identity_pool = pools.pop().expect("identity");
    Platform { running, _redis: redis, sms, identity_pool, intake_pool, notifications_pool }
}

#[tokio::test]
async fn notifications_reads_contacts_from_intake_with_the_service_account_identity_provisions() {
    let client_id = Uuid::new_v4();
    let secret: String = rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(48).map(char::from).collect();
    let p = start(client_id, &secret).await;
    let mut identity = IdentityServiceClient::new(p.channel());

    // Identity provisions the configured account at start (in the background): once it can be
    // exchanged, the right secret gives a token holding the notifier role, and nothing more.
    let exchange = |id: &str, secret: &str| ExchangeClientCredentialsRequest { client_id: id.into(), client_secret: secret.into() };
    let token = eventually("the service account to be provisioned", Duration::from_secs(20), || {
        let mut identity = identity.clone();
        let request = exchange(&client_id.to_string(), &secret);
        async move { identity.exchange_client_credentials(request).await.ok() }
    })
    .await
    .into_inner();
    assert!(token.access_token_expires_at.is_some());
    let me = identity.who_am_i(bearer(WhoAmIRequest {}, &token.access_token)).await.expect("who am I").into_inner();
    assert_eq!(me.account, format!("accounts/{client_id}"));
    let roles: Vec<&str> = me.role_bindings.iter().map(|b| b.role.as_str()).collect();
    assert_eq!(roles, vec!["notifier"]);
    assert!(me.role_bindings[0].organization.is_empty() && me.role_bindings[0].zones.is_empty());
    // A wrong secret, or a client id identity does not know, is UNAUTHENTICATED.
    let mut wrong_secret = secret.clone();
    wrong_secret.replace_range(0..1, if secret.starts_with('x') { "y" } else { "x" });
    for (id, bad) in [
        (client_id.to_string(), wrong_secret.as_str()),
        (client_id.to_string(), &secret[..47]),
        (Uuid::new_v4().to_string(), secret.as_str()),
    ] {
        let status = identity.exchange_client_credentials(exchange(&id, bad)).await.expect_err("bad credentials");
        assert_eq!(status.code(), Code::Unauthenticated, "{id}: {status:?}");
    }
    // The service token opens only what a notifier may: not templates.
    let mut notifications = NotificationsServiceClient::new(p.channel());
    let status = notifications
        .list_templates(bearer(ListTemplatesRequest::default(), &token.access_token))
        .await
        .expect_err("a notifier does not manage templates");
    assert_eq!(status.code(), Code::PermissionDenied);

    // An admin with a password logs in for real.
    let password = {
        let mut conn = p.identity_pool.acquire().await.expect("identity connection");
        work4life_identity::bootstrap::create_admin(&mut conn, "ops@work4life.example", "Ops").await.expect("admin")
    };
    let login = identity.login(LoginRequest { email: "ops@work4life.example".into(), password }).await.expect("login").into_inner();
    let admin = login.tokens.expect("tokens").access_token;

    // A person registered in intake hears of it by SMS, with their name read from intake.
    let mut someone = person(&["fr"]);
    someone.given_name = "Mariama".into();
    let phone = someone.phone.clone();
    let applicant = IntakeServiceClient::new(p.channel())
        .create_applicant(bearer(CreateApplicantRequest { applicant: Some(someone), request_id: rid() }, &admin))
        .await
        .expect("registered")
        .into_inner()
        .applicant
        .expect("applicant")
        .name;
    let requests = p.sms.wait_accepted(1, Duration::from_secs(30)).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body["to"], phone.as_str());
    let text = requests[0].body["text"].as_str().expect("text");
    assert!(text.contains("Mariama"), "the name came from intake at send time: {text}");

    // The message is SENT, read with the admin's identity-issued token (verified against
    // identity's key set by notifications).
    let list = ListMessagesRequest { recipient: applicant.clone(), ..Default::default() };
    let messages = eventually("the message SENT", Duration::from_secs(20), || {
        let mut notifications = notifications.clone();
        let request = bearer(list.clone(), &admin);
        async move {
            let messages = notifications.list_messages(request).await.expect("messages").into_inner().messages;
            messages.iter().all(|m| m.state == MessageState::Sent as i32).then_some(messages)
        }
    })
    .await;
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].state, messages[0].channel), (MessageState::Sent as i32, Wire::Sms as i32));
    assert_eq!(requests[0].headers["idempotency-key"], messages[0].name.trim_start_matches("messages/"));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE recipient = $1 AND state = 'sent'")
        .bind(&applicant)
        .fetch_one(&p.notifications_pool)
        .await
        .expect("count");
    assert_eq!(stored, 1);

    // Intake saw the service account read the contact details: its audit names that account.
    let reads = audit_records(&p.intake_pool, "intake.BatchGetApplicantContacts", "applicants").await;
    assert!(!reads.is_empty(), "intake audited the contact reads");
    assert!(reads.iter().all(|(actor, _)| *actor == format!("accounts/{client_id}")), "{reads:?}");
    assert!(reads.iter().any(|(_, details)| details["applicants"] == serde_json::json!([applicant])), "{reads:?}");

    p.running.shutdown.cancel();
}
