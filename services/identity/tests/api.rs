//! identity over real gRPC: the host serving identity on port 0 against a fresh database and
//! its own Redis database, called through the generated client.

mod common;

use std::time::Duration;

use common::{bearer, fresh, login, start};
use tonic::Code;
use tonic_types::StatusExt as _;
use work4life_proto::identity::{GetKeySetRequest, LogoutRequest, RefreshTokenRequest, RotateSigningKeyRequest, WhoAmIRequest};

#[tokio::test]
async fn login_then_whoami_with_the_access_token() {
    let f = fresh(1).await;
    let id = f.account("amina@cefa.example", "correct horse battery", &["officer"]).await;
    let mut client = f.client().await;
    let response = client.login(login("Amina@CEFA.example ", "correct horse battery")).await.expect("login").into_inner();
    assert_eq!(response.account, format!("accounts/{id}"));
    let tokens = response.tokens.expect("tokens");
    let me = client.who_am_i(bearer(WhoAmIRequest {}, &tokens.access_token)).await.expect("whoami").into_inner();
    assert_eq!(me.account, format!("accounts/{id}"));
    assert_eq!(me.role_bindings.len(), 1);
    assert_eq!(me.role_bindings[0].role, "officer");
    assert_eq!(me.role_bindings[0].zones, ["oujda"]);
    let keys = client.get_key_set(GetKeySetRequest {}).await.expect("keys").into_inner();
    let set: serde_json::Value = serde_json::from_str(&keys.jwks_json).expect("json");
    assert_eq!(set["keys"][0]["alg"], "EdDSA");
    assert_eq!(set["keys"][0]["crv"], "Ed25519");
    assert!(set["keys"][0].get("d").is_none(), "no private part is ever published");
    let unauthenticated = client.who_am_i(WhoAmIRequest {}).await.expect_err("no token");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_refusal() {
    let f = fresh(2).await;
    f.account("omar@esmaroc.example", "a good long password", &[]).await;
    let mut client = f.client().await;
    let wrong = client.login(login("omar@esmaroc.example", "nope")).await.expect_err("wrong");
    let unknown = client.login(login("nobody@esmaroc.example", "nope")).await.expect_err("unknown");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!((wrong.code(), wrong.message()), (unknown.code(), unknown.message()));
    let empty = client.login(login("", "")).await.expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        empty.get_error_details().bad_request().expect("bad request").field_violations.iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["email", "password"]);
    let long = client.login(login(&"x".repeat(300), "p")).await.expect_err("long");
    assert_eq!(long.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn failed_logins_are_limited_across_replicas_and_restarts() {
    let f = fresh(3).await;
    f.account("fatou@soleterre.example", "the right password", &[]).await;
    let replica = start(&f.database_url, 3).await;
    let mut first = f.client().await;
    let mut second = replica.client().await;
    for attempt in 0..10 {
        let client = if attempt % 2 == 0 { &mut first } else { &mut second };
        let err = client.login(login("fatou@soleterre.example", "wrong")).await.expect_err("wrong");
        assert_eq!(err.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    // Ten failures spread over two replicas: the right password is now refused too.
    let limited = first.login(login("fatou@soleterre.example", "the right password")).await.expect_err("limited");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    // A restarted service still remembers (the counters live in Redis).
    f.running.shutdown.cancel();
    let _ = f.running.done.await;
    let restarted = start(&f.database_url, 3).await;
    let again = restarted.client().await.login(login("fatou@soleterre.example", "the right password")).await.expect_err("still limited");
    assert_eq!(again.code(), Code::ResourceExhausted);
    // Another account is not affected.
    restarted.account("awa@soleterre.example", "another password", &[]).await;
    restarted.client().await.login(login("awa@soleterre.example", "another password")).await.expect("other account logs in");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let f = fresh(4).await;
    f.account("ibrahim@cefa.example", "pass phrase here", &[]).await;
    let mut client = f.client().await;
    let first = client.login(login("ibrahim@cefa.example", "pass phrase here")).await.expect("login").into_inner().tokens.expect("t");
    let second = client
        .refresh_token(RefreshTokenRequest { refresh_token: first.refresh_token.clone() })
        .await
        .expect("refresh")
        .into_inner()
        .tokens
        .expect("t");
    assert_ne!(second.refresh_token, first.refresh_token);
    client.who_am_i(bearer(WhoAmIRequest {}, &second.access_token)).await.expect("new access token works");
    // The first refresh token is spent: presenting it again revokes the whole family.
    let replay = client.refresh_token(RefreshTokenRequest { refresh_token: first.refresh_token.clone() }).await.expect_err("replay");
    assert_eq!(replay.code(), Code::Unauthenticated);
    let after =
        client.refresh_token(RefreshTokenRequest { refresh_token: second.refresh_token.clone() }).await.expect_err("family revoked");
    assert_eq!(after.code(), Code::Unauthenticated);
    // Logout revokes a fresh session's family.
    let session = client.login(login("ibrahim@cefa.example", "pass phrase here")).await.expect("login").into_inner().tokens.expect("t");
    client.logout(LogoutRequest { refresh_token: session.refresh_token.clone() }).await.expect("logout");
    let gone = client.refresh_token(RefreshTokenRequest { refresh_token: session.refresh_token }).await.expect_err("logged out");
    assert_eq!(gone.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_only_admins_rotate() {
    let f = fresh(5).await;
    f.account("admin@w4l.example", "admin pass phrase", &["admin"]).await;
    f.account("coach@w4l.example", "coach pass phrase", &["coach"]).await;
    let mut client = f.client().await;
    let admin = client.login(login("admin@w4l.example", "admin pass phrase")).await.expect("login").into_inner().tokens.expect("t");
    let coach = client.login(login("coach@w4l.example", "coach pass phrase")).await.expect("login").into_inner().tokens.expect("t");
    let denied = client.rotate_signing_key(bearer(RotateSigningKeyRequest {}, &coach.access_token)).await.expect_err("coach");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let rotation = client.rotate_signing_key(bearer(RotateSigningKeyRequest {}, &admin.access_token)).await.expect("rotate").into_inner();
    assert!(!rotation.previous_kid.is_empty());
    assert_ne!(rotation.kid, rotation.previous_kid);
    let retires = rotation.previous_retires_at.expect("retires").seconds;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!(retires >= now + 15 * 60, "the old key outlives every token it signed");
    // Tokens signed before the rotation still verify; new ones carry the new kid and verify too.
    client.who_am_i(bearer(WhoAmIRequest {}, &coach.access_token)).await.expect("old token");
    let fresh_token = client.login(login("coach@w4l.example", "coach pass phrase")).await.expect("login").into_inner().tokens.expect("t");
    let header = jsonwebtoken::decode_header(&fresh_token.access_token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(rotation.kid.as_str()));
    client.who_am_i(bearer(WhoAmIRequest {}, &fresh_token.access_token)).await.expect("new token");
    let set = client.get_key_set(GetKeySetRequest {}).await.expect("keys").into_inner().jwks_json;
    assert!(set.contains(&rotation.kid) && set.contains(&rotation.previous_kid));
    // Once retired, the old key leaves the published set.
    let pool = work4life_platform::db::connect(&f.database_url, "identity", 1).await.expect("db");
    sqlx::query("UPDATE signing_keys SET retires_at = now() - interval '1 second' WHERE kid = $1")
        .bind(&rotation.previous_kid)
        .execute(&pool)
        .await
        .expect("retire");
    let set = client.get_key_set(GetKeySetRequest {}).await.expect("keys").into_inner().jwks_json;
    assert!(set.contains(&rotation.kid) && !set.contains(&rotation.previous_kid));
    // Private keys are stored encrypted, never as the raw seed.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT private_key_ciphertext FROM signing_keys").fetch_all(&pool).await.expect("keys");
    assert!(stored.iter().all(|c| c.len() == 32 + 16), "AES-GCM ciphertext with its tag");
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn auditors_read_the_audit_log_by_actor_and_resource_in_pages() {
    use work4life_proto::identity::ListAuditRecordsRequest;
    let f = fresh(15).await;
    let auditor = f.account("auditor@eu.example", "auditor pass phrase", &["auditor"]).await;
    f.account("victim@w4l.example", "victim pass phrase", &[]).await;
    let mut client = f.client().await;
    for _ in 0..3 {
        client.login(login("victim@w4l.example", "wrong")).await.expect_err("failure");
    }
    let token = f.token("auditor@eu.example", "auditor pass phrase").await;
    let all = client.list_audit_records(bearer(ListAuditRecordsRequest::default(), &token)).await.expect("list").into_inner().records;
    assert_eq!(all.len(), 4, "three failures and one login: {all:?}");
    assert!(all.windows(2).all(|w| w[0].sequence > w[1].sequence), "newest first");
    assert_eq!(all.iter().filter(|r| r.action == "identity.Login.failed").count(), 3);
    let mine = client
        .list_audit_records(bearer(ListAuditRecordsRequest { actor: format!("accounts/{auditor}"), ..Default::default() }, &token))
        .await
        .expect("by actor")
        .into_inner()
        .records;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].action, "identity.Login");
    let first = client
        .list_audit_records(bearer(ListAuditRecordsRequest { page_size: 3, ..Default::default() }, &token))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(first.records.len(), 3);
    let second = client
        .list_audit_records(bearer(
            ListAuditRecordsRequest { page_size: 3, page_token: first.next_page_token.clone(), ..Default::default() },
            &token,
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.records.len(), 1);
    assert!(second.next_page_token.is_empty());
    let stale = client
        .list_audit_records(bearer(
            ListAuditRecordsRequest { actor: "accounts/x".into(), page_size: 3, page_token: first.next_page_token, ..Default::default() },
            &token,
        ))
        .await
        .expect_err("other filter");
    assert_eq!(stale.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_hash_with_older_parameters_is_upgraded_on_login() {
    use argon2::PasswordHasher as _;
    let f = fresh(2).await;
    let id = f.account("legacy@w4l.example", "legacy pass phrase", &[]).await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(8 * 1024, 1, 1, None).expect("params"),
    )
    .hash_password(b"legacy pass phrase")
    .expect("hash")
    .to_string();
    let pool = f.pool().await;
    sqlx::query("UPDATE identity.accounts SET password_hash = $2 WHERE id = $1").bind(id).bind(&weak).execute(&pool).await.expect("weaken");
    f.client().await.login(login("legacy@w4l.example", "legacy pass phrase")).await.expect("login with the old hash");
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM identity.accounts WHERE id = $1").bind(id).fetch_one(&pool).await.expect("hash");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "upgraded: {stored}");
    f.client().await.login(login("legacy@w4l.example", "legacy pass phrase")).await.expect("login with the new hash");
    let again: String =
        sqlx::query_scalar("SELECT password_hash FROM identity.accounts WHERE id = $1").bind(id).fetch_one(&pool).await.expect("hash");
    assert_eq!(again, stored, "a current hash is not rewritten");
}
