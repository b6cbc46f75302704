//! Token verification rules (RFC 8725) against real Ed25519 signatures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::future::BoxFuture;
use jsonwebtoken::jwk::JwkSet;
use work4life_platform::auth::{InMemoryKeySource, KeySource, TokenError, TokenVerifier, signing::SigningKey};

use crate::common::{claims, token_config};

/// Counts fetches, to prove refreshes happen once.
struct Counting {
    inner: InMemoryKeySource,
    fetches: AtomicUsize,
}

impl KeySource for Counting {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<JwkSet>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch()
    }
}

fn setup() -> (SigningKey, Arc<Counting>, TokenVerifier) {
    let key = SigningKey::generate("key-1").expect("key");
    let source =
        Arc::new(Counting { inner: InMemoryKeySource::new(JwkSet { keys: vec![key.public_jwk()] }), fetches: AtomicUsize::new(0) });
    let verifier = TokenVerifier::new(source.clone(), token_config());
    (key, source, verifier)
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).expect("json"))
}

#[tokio::test]
async fn valid_token_gives_the_principal_with_roles() {
    let (key, _, verifier) = setup();
    let principal = verifier.verify(&key.sign(&claims("accounts/1", 60)).expect("sign")).await.expect("valid");
    assert_eq!(principal.subject, "accounts/1");
    assert!(principal.has_role_in_zone("officer", "oujda"));
    assert!(!principal.has_role_in_zone("officer", "rabat_sale"));
}

#[tokio::test]
async fn tampered_payload_or_signature_is_refused() {
    let (key, _, verifier) = setup();
    let token = key.sign(&claims("accounts/1", 60)).expect("sign");
    let parts: Vec<&str> = token.split('.').collect();
    let mut forged_claims = claims("accounts/admin", 60);
    forged_claims.roles[0].role = "admin".into();
    let forged = format!("{}.{}.{}", parts[0], b64(&serde_json::to_value(&forged_claims).expect("v")), parts[2]);
    assert_eq!(verifier.verify(&forged).await, Err(TokenError::BadSignature));
    let mut sig = parts[2].to_string();
    let flipped = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(flipped);
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], sig);
    assert!(verifier.verify(&bad_sig).await.is_err());
}

#[tokio::test]
async fn none_and_hmac_algorithms_are_refused() {
    let (key, _, verifier) = setup();
    let body = b64(&serde_json::to_value(claims("accounts/1", 60)).expect("v"));
    let none = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": "key-1"})), body);
    assert!(verifier.verify(&none).await.is_err());
    // HS256 signed with the public key as secret: the classic key-confusion attack.
    let public = key.public_jwk();
    let jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) = &public.algorithm else { panic!("okp") };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("key-1".into());
    header.typ = Some("at+jwt".into());
    let hs =
        jsonwebtoken::encode(&header, &claims("accounts/1", 60), &jsonwebtoken::EncodingKey::from_secret(okp.x.as_bytes()).expect("key"))
            .expect("hs");
    assert_eq!(verifier.verify(&hs).await, Err(TokenError::AlgorithmNotAllowed));
}

#[tokio::test]
async fn expiry_not_before_issuer_audience_and_type_are_enforced() {
    let (key, _, verifier) = setup();
    assert_eq!(verifier.verify(&key.sign(&claims("a", -60)).expect("s")).await, Err(TokenError::Expired));
    let mut early = claims("a", 600);
    early.nbf = crate::common::now() + 300;
    assert_eq!(verifier.verify(&key.sign(&early).expect("s")).await, Err(TokenError::NotYetValid));
    let mut other_iss = claims("a", 60);
    other_iss.iss = "https://evil.example".into();
    assert_eq!(verifier.verify(&key.sign(&other_iss).expect("s")).await, Err(TokenError::WrongClaims));
    let mut other_aud = claims("a", 60);
    other_aud.aud = "another-system".into();
    assert_eq!(verifier.verify(&key.sign(&other_aud).expect("s")).await, Err(TokenError::WrongClaims));
    // Within the leeway (5 s in tests) an expired token still passes: clocks drift.
    assert!(verifier.verify(&key.sign(&claims("a", -2)).expect("s")).await.is_ok());
    // A JWT that is not an access token (typ JWT, e.g. an ID token) is refused.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("key-1".into());
    let der = {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng).to_pkcs8_der().expect("der")
    };
    let id_token = jsonwebtoken::encode(&header, &claims("a", 60), &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).expect("enc");
    assert_eq!(verifier.verify(&id_token).await, Err(TokenError::WrongType));
}

#[tokio::test]
async fn unknown_kid_refreshes_the_key_set_once_then_rotation_works() {
    let (key, source, verifier) = setup();
    verifier.verify(&key.sign(&claims("a", 60)).expect("s")).await.expect("first");
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1, "first use fetches the set");
    // Rotation: identity publishes key-2 beside key-1; a token signed by key-2 triggers one refresh.
    let next = SigningKey::generate("key-2").expect("key");
    source.inner.publish(JwkSet { keys: vec![key.public_jwk(), next.public_jwk()] });
    let rotated = next.sign(&claims("b", 60)).expect("s");
    // Right after the first fetch: the new kid waits for the refresh window (1 s), not refused.
    let results = futures::future::join_all((0..8).map(|_| verifier.verify(&rotated))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2, "concurrent unknown-kid tokens share one refresh");
    // A burst of forged kids costs one more fetch, not one per token (no amplification).
    let forged: Vec<String> =
        (0..8).map(|i| SigningKey::generate(format!("forged-{i}")).expect("key").sign(&claims("c", 60)).expect("s")).collect();
    let results = futures::future::join_all(forged.iter().map(|t| verifier.verify(t))).await;
    assert!(results.iter().all(|r| *r == Err(TokenError::UnknownKey)), "{results:?}");
    assert!(source.fetches.load(Ordering::SeqCst) <= 3, "{} fetches", source.fetches.load(Ordering::SeqCst));
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn a_removed_key_stops_verifying_after_refresh_even_for_cached_tokens() {
    let (key, source, verifier) = setup();
    let token = key.sign(&claims("a", 60)).expect("s");
    verifier.verify(&token).await.expect("valid");
    let next = SigningKey::generate("key-2").expect("key");
    source.inner.publish(JwkSet { keys: vec![next.public_jwk()] });
    verifier.refresh().await.expect("refresh");
    assert!(verifier.verify(&token).await.is_err(), "cached verification must not outlive its key");
}
