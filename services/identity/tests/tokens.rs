//! identity's tokens as another service sees them: a second host (an echo service standing in
//! for grants or intake) verifies them with the key set it fetches from identity over gRPC.
//! Rotation, retirement and the RFC 8725 negative suite, against running services.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::{Code, Request, Response, Status, service::RoutesBuilder, transport::Channel};
use work4life_platform::{
    auth::{Claims, signing::SigningKey},
    config::PlatformConfig,
    host::{self, HostOptions, Running, ServiceContext, ServiceDefinition},
};
use work4life_proto::{
    identity::{RotateSigningKeyRequest, WhoAmIRequest},
    testing::{
        EchoRequest, EchoResponse,
        echo_service_client::EchoServiceClient,
        echo_service_server::{EchoService, EchoServiceServer},
    },
};

use common::{bearer, fresh, login};

struct WhoEcho;

#[tonic::async_trait]
impl EchoService for WhoEcho {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let who = work4life_platform::auth::principal(&request)?.subject.clone();
        Ok(Response::new(EchoResponse { message: who, payload: vec![] }))
    }
}

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

fn register_echo(_ctx: &ServiceContext, routes: &mut RoutesBuilder) -> anyhow::Result<()> {
    routes.add_service(EchoServiceServer::new(WhoEcho));
    Ok(())
}

/// Another service: it knows identity only by URL.
const OTHER_SERVICE: ServiceDefinition = ServiceDefinition {
    name: "echo",
    migrations: &NO_MIGRATIONS,
    grpc_services: &["work4life.testing.v1.EchoService"],
    public_methods: &[],
    register: register_echo,
    seed: None,
};

async fn other_service(database_url: &str, identity: &Running) -> Running {
    let source: HashMap<String, String> = HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.to_string()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_IDENTITY_URL".to_string(), format!("http://{}", identity.addr)),
        ("W4L_KEY_SET_REFRESH_SECS".to_string(), "1".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
    ]);
    let config = PlatformConfig::from_source(&source).expect("config");
    host::start(HostOptions { config, services: vec![OTHER_SERVICE], key_source: None, migrate: true }).await.expect("start")
}

async fn echo_as(service: &Running, token: &str) -> Result<String, Status> {
    let channel = Channel::from_shared(format!("http://{}", service.addr)).expect("url").connect().await.expect("connect");
    let mut request = Request::new(EchoRequest { message: String::new(), payload: vec![] });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    EchoServiceClient::new(channel).echo(request).await.map(|r| r.into_inner().message)
}

#[tokio::test]
async fn another_service_follows_rotation_and_retirement() {
    let f = fresh(1).await;
    let admin_id = f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    let other = other_service(&f.database_url, &f.running).await;
    let mut identity = f.client().await;
    let before =
        identity.login(login("root@w4l.example", "root pass phrase")).await.expect("login").into_inner().tokens.expect("t").access_token;
    assert_eq!(echo_as(&other, &before).await.expect("verified by the other service"), format!("accounts/{admin_id}"));

    let rotation = identity.rotate_signing_key(bearer(RotateSigningKeyRequest {}, &before)).await.expect("rotate").into_inner();
    let after =
        identity.login(login("root@w4l.example", "root pass phrase")).await.expect("login").into_inner().tokens.expect("t").access_token;
    assert_eq!(jsonwebtoken::decode_header(&after).expect("header").kid.as_deref(), Some(rotation.kid.as_str()));
    echo_as(&other, &after).await.expect("a token of the new key verifies at once (unknown kid refresh)");
    echo_as(&other, &before).await.expect("a token of the previous key still verifies");

    // Withdraw the previous key: within the refresh period the other service refuses its tokens.
    sqlx::query("UPDATE identity.signing_keys SET retires_at = now() - interval '1 second' WHERE kid = $1")
        .bind(&rotation.previous_kid)
        .execute(&f.pool().await)
        .await
        .expect("retire");
    let mut refused = None;
    for _ in 0..100 {
        if let Err(status) = echo_as(&other, &before).await {
            refused = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused.expect("the retired key stops verifying").code(), Code::Unauthenticated);
    echo_as(&other, &after).await.expect("the current key still verifies");
    identity.who_am_i(bearer(WhoAmIRequest {}, &after)).await.expect("identity agrees");
}

#[tokio::test]
async fn forged_and_misissued_tokens_are_refused_by_a_running_service() {
    let f = fresh(1).await;
    f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    let other = other_service(&f.database_url, &f.running).await;
    let good = f.token("root@w4l.example", "root pass phrase").await;
    echo_as(&other, &good).await.expect("the genuine token verifies");

    // identity's real signing key (the development encryption key): forgeries with it test the
    // claim checks, not just the signature.
    let pool = work4life_platform::db::connect(&f.database_url, "identity", 1).await.expect("db");
    let config = PlatformConfig::from_source(&HashMap::<String, String>::new()).expect("config");
    let real: Arc<SigningKey> =
        work4life_identity::keys::KeyRing::new(pool, &config.signing_key_encryption_key).active().await.expect("key");
    let claims: Claims = jsonwebtoken::dangerous::insecure_decode(&good).expect("claims").claims;
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut c = claims.clone();
        change(&mut c);
        real.sign(&c).expect("sign")
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let mut tampered_sig = parts[2].to_string();
    tampered_sig.replace_range(0..1, if tampered_sig.starts_with('A') { "B" } else { "A" });
    let public_x = {
        let jwk = real.public_jwk();
        let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = jwk.algorithm else { panic!("okp") };
        okp.x
    };
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(real.kid.clone());
    hs_header.typ = Some("at+jwt".into());
    let mut plain_jwt = Header::new(Algorithm::EdDSA);
    plain_jwt.kid = Some(real.kid.clone());
    let cases: Vec<(&str, String)> = vec![
        ("wrong issuer", with(&|c| c.iss = "https://evil.example".into())),
        ("wrong audience", with(&|c| c.aud = "someone-else".into())),
        ("expired beyond the skew", with(&|c| c.exp = now - 3600)),
        ("not yet valid", with(&|c| c.nbf = now + 3600)),
        ("unknown kid", SigningKey::generate("k-unknown").expect("key").sign(&claims).expect("sign")),
        ("bad signature", format!("{}.{}.{}", parts[0], parts[1], tampered_sig)),
        (
            "forged payload",
            format!("{}.{}.{}", parts[0], b64(serde_json::json!({"sub": "accounts/other", "roles": [{"role": "admin"}]})), parts[2]),
        ),
        ("alg none", format!("{}.{}.", b64(serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": real.kid})), parts[1])),
        (
            "HS256 with the public key",
            jsonwebtoken::encode(&hs_header, &claims, &EncodingKey::from_secret(public_x.as_bytes()).expect("secret")).expect("hs"),
        ),
        ("typ JWT instead of at+jwt", {
            let der = {
                use ed25519_dalek::pkcs8::EncodePrivateKey as _;
                ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng).to_pkcs8_der().expect("der")
            };
            jsonwebtoken::encode(&plain_jwt, &claims, &EncodingKey::from_ed_der(der.as_bytes())).expect("jwt")
        }),
    ];
    for (case, token) in cases {
        let err = echo_as(&other, &token).await.expect_err(case);
        assert_eq!(err.code(), Code::Unauthenticated, "{case}: {err:?}");
    }
}
