//! Beneficiary one-time codes and partner-system client credentials, over real gRPC.

mod common;

use prost::Message as _;
use tonic::Code;
use work4life_proto::{
    events::Event,
    identity::{
        Account, AccountKind, CreateAccountRequest, CreateClientSecretRequest, ExchangeClientCredentialsRequest, RequestOneTimeCodeRequest,
        VerifyOneTimeCodeRequest, WhoAmIRequest,
    },
};

use common::{Fixture, bearer, fresh};

async fn admin_token(f: &Fixture) -> String {
    f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    f.token("root@w4l.example", "root pass phrase").await
}

async fn create(f: &Fixture, admin: &str, account: Account) -> Account {
    let request = CreateAccountRequest { account: Some(account), request_id: uuid::Uuid::new_v4().to_string() };
    f.client().await.create_account(bearer(request, admin)).await.expect("create").into_inner().account.expect("account")
}

/// The code as notifications receives it: from the `identity.otp.requested` event.
async fn last_code(f: &Fixture) -> Option<String> {
    let bytes: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT event FROM identity.outbox WHERE event_type = 'identity.otp.requested' ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&f.pool().await)
            .await
            .expect("outbox");
    let event = Event::decode(bytes?.as_slice()).expect("event");
    let payload: serde_json::Value = serde_json::from_slice(&event.payload.expect("payload").value).expect("json");
    Some(payload["code"].as_str().expect("code").to_string())
}

fn verify(phone: &str, code: &str) -> VerifyOneTimeCodeRequest {
    VerifyOneTimeCodeRequest { phone: phone.into(), code: code.into() }
}

#[tokio::test]
async fn beneficiaries_log_in_with_a_code_sent_to_their_phone() {
    let f = fresh(11).await;
    let admin = admin_token(&f).await;
    let beneficiary = create(
        &f,
        &admin,
        Account { kind: AccountKind::Beneficiary as i32, phone: "0661000001".into(), display_name: "Mariam".into(), ..Account::default() },
    )
    .await;
    assert_eq!(beneficiary.phone, "+212661000001");
    let mut client = f.client().await;

    client.request_one_time_code(RequestOneTimeCodeRequest { phone: "06 61 00 00 01".into() }).await.expect("request");
    let code = last_code(&f).await.expect("code sent through the event");
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = client.verify_one_time_code(verify("+212661000001", wrong)).await.expect_err("wrong code");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let session = client.verify_one_time_code(verify("+212661000001", &code)).await.expect("right code").into_inner();
    assert_eq!(session.account, beneficiary.name);
    let me = client.who_am_i(bearer(WhoAmIRequest {}, &session.tokens.expect("t").access_token)).await.expect("whoami").into_inner();
    assert_eq!(me.account, beneficiary.name);
    let reused = client.verify_one_time_code(verify("+212661000001", &code)).await.expect_err("single use");
    assert_eq!(reused.code(), Code::Unauthenticated);

    // Five wrong tries burn a code, even the right one after them.
    client.request_one_time_code(RequestOneTimeCodeRequest { phone: "+212661000001".into() }).await.expect("request");
    let code = last_code(&f).await.expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        client.verify_one_time_code(verify("+212661000001", wrong)).await.expect_err("wrong");
    }
    let burnt = client.verify_one_time_code(verify("+212661000001", &code)).await.expect_err("burnt");
    assert_eq!(burnt.code(), Code::Unauthenticated);

    // An expired code does not work.
    client.request_one_time_code(RequestOneTimeCodeRequest { phone: "+212661000001".into() }).await.expect("request");
    let code = last_code(&f).await.expect("code");
    sqlx::query("UPDATE identity.one_time_codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&f.pool().await)
        .await
        .expect("expire");
    let expired = client.verify_one_time_code(verify("+212661000001", &code)).await.expect_err("expired");
    assert_eq!(expired.code(), Code::Unauthenticated);
    // A fourth request within 15 minutes is refused.
    let limited = client.request_one_time_code(RequestOneTimeCodeRequest { phone: "+212661000001".into() }).await.expect_err("limited");
    assert_eq!(limited.code(), Code::ResourceExhausted);
    f.verify_audit().await;
}

#[tokio::test]
async fn an_unknown_phone_gets_the_same_answer_and_no_code() {
    let f = fresh(12).await;
    let mut client = f.client().await;
    let events_before = f.count("SELECT count(*) FROM identity.outbox").await;
    client.request_one_time_code(RequestOneTimeCodeRequest { phone: "+212699999999".into() }).await.expect("same answer");
    assert_eq!(f.count("SELECT count(*) FROM identity.outbox").await, events_before, "nothing is sent");
    let bad = client.request_one_time_code(RequestOneTimeCodeRequest { phone: "not a phone".into() }).await.expect_err("bad phone");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = client.verify_one_time_code(verify("+212699999999", "12ab")).await.expect_err("bad code");
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn partner_systems_use_client_credentials_shown_once_and_rotatable() {
    let f = fresh(13).await;
    let admin = admin_token(&f).await;
    let bank =
        create(&f, &admin, Account { kind: AccountKind::Service as i32, display_name: "Bank connector".into(), ..Account::default() })
            .await;
    let mut client = f.client().await;
    let first = client
        .create_client_secret(bearer(CreateClientSecretRequest { account: bank.name.clone() }, &admin))
        .await
        .expect("secret")
        .into_inner();
    let exchange = |id: &str, secret: &str| ExchangeClientCredentialsRequest { client_id: id.into(), client_secret: secret.into() };
    let token = client
        .exchange_client_credentials(exchange(&first.client_id, &first.client_secret))
        .await
        .expect("exchange")
        .into_inner()
        .access_token;
    let me = client.who_am_i(bearer(WhoAmIRequest {}, &token)).await.expect("whoami").into_inner();
    assert_eq!(me.account, bank.name);
    let wrong = client.exchange_client_credentials(exchange(&first.client_id, "not-the-secret")).await.expect_err("wrong");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let rotated = client
        .create_client_secret(bearer(CreateClientSecretRequest { account: bank.name.clone() }, &admin))
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.client_secret, first.client_secret);
    let old = client.exchange_client_credentials(exchange(&first.client_id, &first.client_secret)).await.expect_err("old secret");
    assert_eq!(old.code(), Code::Unauthenticated);
    client.exchange_client_credentials(exchange(&rotated.client_id, &rotated.client_secret)).await.expect("new secret");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT client_secret_hash FROM identity.accounts WHERE kind = 'service'")
        .fetch_one(&f.pool().await)
        .await
        .expect("hash");
    assert_ne!(stored, rotated.client_secret.as_bytes(), "only a hash is stored");

    let staff = create(&f, &admin, Account { email: "clerk@w4l.example".into(), display_name: "Clerk".into(), ..Account::default() }).await;
    let not_service =
        client.create_client_secret(bearer(CreateClientSecretRequest { account: staff.name }, &admin)).await.expect_err("staff");
    assert_eq!(not_service.code(), Code::FailedPrecondition);
    let as_service =
        client.create_client_secret(bearer(CreateClientSecretRequest { account: bank.name }, &token)).await.expect_err("not admin");
    assert_eq!(as_service.code(), Code::PermissionDenied);
}
