//! Access-token verification, done by every service itself from identity's published key set,
//! so that no call to identity sits on the hot path.
//!
//! RFC 8725 (JWT best current practice) rules applied: an explicit algorithm allow-list
//! (EdDSA, ES256; never `none` or HMAC), the key's own algorithm must match the header's,
//! `typ` must be `at+jwt` (RFC 9068), `iss`, `aud`, `exp`, `nbf` and `sub` are required and
//! checked with a small skew. A token signed by an unknown `kid` makes the verifier refresh the
//! key set once (rate-limited, single-flight), which is how a key rotation reaches every service.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};

use crate::{config::TokenConfig, error::ServiceError};

/// The `typ` header every access token carries (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Algorithms accepted; anything else is refused before a key is even looked up.
pub const ALLOWED_ALGORITHMS: [Algorithm; 2] = [Algorithm::EdDSA, Algorithm::ES256];
/// Verified tokens kept so that a token's signature is checked once, not on every call.
const VERIFIED_CACHE_CAPACITY: usize = 10_000;
/// Unknown `kid`s trigger at most one key-set fetch per this interval; a caller arriving sooner
/// waits for the window rather than being refused, so a freshly rotated key is accepted within
/// a second while a flood of forged `kid`s costs identity one fetch per second at most.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// One role held by the caller, scoped to an organisation and/or zones. An admin binding may be
/// global (no organisation, no zones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    /// `admin`, `program_manager`, `officer`, `reviewer`, `coach`, `finance_officer`,
    /// `finance_checker`, `auditor`, `beneficiary` or `partner_system`.
    pub role: String,
    /// Resource name of the organisation the binding is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Zones the binding is limited to; empty means every zone of the organisation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
}

/// The claims of a work4life access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: identity's URL.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the account's resource name (`accounts/…`).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Token id.
    pub jti: String,
    /// Roles and their scopes.
    #[serde(default)]
    pub roles: Vec<RoleBinding>,
}

/// Who is calling, as established by a verified token; handlers find it in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account's resource name.
    pub subject: String,
    /// The token id, for audit and revocation.
    pub token_id: String,
    /// Role bindings.
    pub roles: Vec<RoleBinding>,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

impl Principal {
    /// Whether the caller holds `role` in any scope.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|b| b.role == role)
    }

    /// Whether the caller holds `role` for `zone` (a binding without zones covers every zone).
    pub fn has_role_in_zone(&self, role: &str, zone: &str) -> bool {
        self.roles.iter().any(|b| b.role == role && (b.zones.is_empty() || b.zones.iter().any(|z| z == zone)))
    }
}

/// Finds the caller of a tonic request, or refuses with UNAUTHENTICATED.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, ServiceError> {
    request.extensions().get::<Arc<Principal>>().map(|p| p.as_ref()).ok_or(ServiceError::Unauthenticated("missing credentials"))
}

/// Where the published public keys come from (identity's key set).
pub trait KeySource: Send + Sync + 'static {
    /// Fetches the current key set.
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<JwkSet>>;
}

/// A key set held in memory and replaceable: used where the keys are handed over in process
/// (tests, benchmarks, the all-in-one binary before identity publishes).
#[derive(Clone, Default)]
pub struct InMemoryKeySource {
    keys: Arc<RwLock<JwkSet>>,
}

impl InMemoryKeySource {
    /// A source serving `keys`.
    pub fn new(keys: JwkSet) -> Self {
        Self { keys: Arc::new(RwLock::new(keys)) }
    }

    /// Replaces the published keys (a rotation).
    pub fn publish(&self, keys: JwkSet) {
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
    }
}

impl KeySource for InMemoryKeySource {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<JwkSet>> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Box::pin(async move { Ok(keys) })
    }
}

/// identity's published key set, fetched over gRPC (`IdentityService/GetKeySet`): how every
/// service learns the keys, in both deployment modes.
#[derive(Clone)]
pub struct GrpcKeySource {
    channel: crate::host::PeerChannel,
}

impl GrpcKeySource {
    /// A source calling identity over `channel`.
    pub fn new(channel: crate::host::PeerChannel) -> Self {
        Self { channel }
    }
}

impl KeySource for GrpcKeySource {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<JwkSet>> {
        Box::pin(async move {
            let mut client = work4life_proto::identity::identity_service_client::IdentityServiceClient::new(self.channel.clone());
            let response = client.get_key_set(work4life_proto::identity::GetKeySetRequest {}).await?.into_inner();
            Ok(serde_json::from_str(&response.jwks_json)?)
        })
    }
}

/// Why a token was refused; the reason goes into `ErrorInfo.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `authorization: Bearer` metadata.
    #[error("missing credentials")]
    Missing,
    /// Not a JWT, or a header/claim that cannot be parsed.
    #[error("malformed token")]
    Malformed,
    /// The algorithm is not on the allow-list or does not match the key.
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    /// `typ` is not `at+jwt`.
    #[error("not an access token")]
    WrongType,
    /// No `kid`, or a `kid` absent from the key set even after a refresh.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("invalid token signature")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// Wrong `iss` or `aud`, or a required claim missing.
    #[error("token not issued for this service")]
    WrongClaims,
}

impl From<TokenError> for ServiceError {
    fn from(err: TokenError) -> Self {
        ServiceError::Unauthenticated(match err {
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::UnknownKey => "unknown signing key",
            TokenError::Missing => "missing credentials: send authorization: Bearer <access token>",
            _ => "invalid token",
        })
    }
}

struct Key {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies access tokens against a cached key set.
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    config: TokenConfig,
    keys: RwLock<Arc<HashMap<String, Arc<Key>>>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    verified: RwLock<HashMap<String, Arc<Principal>>>,
}

impl TokenVerifier {
    /// A verifier with an empty cache; the first token triggers the first fetch.
    pub fn new(source: Arc<dyn KeySource>, config: TokenConfig) -> Self {
        Self {
            source,
            config,
            keys: RwLock::new(Arc::new(HashMap::new())),
            last_refresh: tokio::sync::Mutex::new(None),
            verified: RwLock::new(HashMap::new()),
        }
    }

    /// Verifies `token` and returns the caller it names (shared: a cached token costs no copy).
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let now = unix_now();
        if let Some(principal) = self.verified.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(token)
            && principal.expires_at + self.config.leeway.as_secs() > now
        {
            return Ok(Arc::clone(principal));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        if header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh_for(&kid).await;
                self.key(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
        if key.algorithm != header.alg {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidIssuer | K::InvalidAudience | K::MissingRequiredClaim(_) | K::InvalidSubject => TokenError::WrongClaims,
                K::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
                _ => TokenError::Malformed,
            }
        })?;
        let claims = data.claims;
        let principal = Arc::new(Principal { subject: claims.sub, token_id: claims.jti, roles: claims.roles, expires_at: claims.exp });
        let mut verified = self.verified.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE_CAPACITY {
            // Dropping everything is crude but bounded and rare: a full cache means 10,000
            // distinct live tokens, and each costs one signature check to re-enter.
            verified.clear();
        }
        verified.insert(token.to_string(), Arc::clone(&principal));
        Ok(principal)
    }

    fn key(&self, kid: &str) -> Option<Arc<Key>> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(kid).cloned()
    }

    /// Fetches the key set once for an unknown `kid`: concurrent callers queue on one lock and
    /// share a fetch; fetches are spaced by `MIN_REFRESH_INTERVAL`.
    async fn refresh_for(&self, kid: &str) {
        let requested = Instant::now();
        let mut last = self.last_refresh.lock().await;
        if self.key(kid).is_some() {
            return; // another caller's refresh brought it
        }
        if let Some(at) = *last {
            if at >= requested {
                return; // a fetch that started after we asked already ran: the kid is unknown
            }
            let next_allowed = at + MIN_REFRESH_INTERVAL;
            tokio::time::sleep_until(next_allowed.into()).await;
        }
        *last = Some(Instant::now());
        if let Err(err) = self.refresh().await {
            tracing::warn!(error = %err, "key set refresh failed");
        }
    }

    /// Refreshes the key set every `interval` until `shutdown`, so that a key withdrawn by
    /// identity (retired, or removed after a compromise) stops verifying without waiting for
    /// an unknown `kid` to trigger a fetch.
    pub async fn refresh_periodically(self: Arc<Self>, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            if let Err(err) = self.refresh().await {
                tracing::warn!(error = %err, "periodic key set refresh failed; keeping the previous keys");
            }
        }
    }

    /// Fetches and installs the current key set; tokens of removed keys stop verifying at once.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let set = self.source.fetch().await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk.common.key_algorithm) else {
                tracing::warn!("ignoring a published key without kid or alg");
                continue;
            };
            let Ok(algorithm) = alg.to_string().parse::<Algorithm>() else { continue };
            if !ALLOWED_ALGORITHMS.contains(&algorithm) {
                tracing::warn!(kid, "ignoring a published key with a disallowed algorithm");
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid, Arc::new(Key { algorithm, key }));
                }
                Err(err) => tracing::warn!(kid, error = %err, "ignoring an unreadable published key"),
            }
        }
        let removed = {
            let current = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            current.keys().any(|k| !keys.contains_key(k))
        };
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        if removed {
            self.verified.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        }
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Signing helpers for tests, benchmarks and (later) the identity service: an Ed25519 key pair
/// with its public JWK.
pub mod signing {
    use base64::Engine as _;
    use jsonwebtoken::{
        Algorithm, EncodingKey, Header,
        jwk::{
            AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
        },
    };

    use super::{ACCESS_TOKEN_TYPE, Claims};

    /// The JWK of an Ed25519 public key (`kty` OKP, `crv` Ed25519, `alg` EdDSA, `use` sig).
    pub fn ed25519_public_jwk(kid: String, public_key: &[u8]) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_id: Some(kid),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key),
            }),
        }
    }

    /// An Ed25519 signing key with its `kid`.
    pub struct SigningKey {
        /// Key id published in the JWK set.
        pub kid: String,
        encoding: EncodingKey,
        public_key: [u8; 32],
    }

    impl SigningKey {
        /// A fresh random Ed25519 key.
        pub fn generate(kid: impl Into<String>) -> anyhow::Result<Self> {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
            let der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("pkcs8 encoding: {e}"))?;
            Ok(Self::from_ed25519_der(kid, der.as_bytes(), key.verifying_key().to_bytes()))
        }

        /// Rebuilds a key from its 32-byte Ed25519 secret seed (as identity stores it, encrypted).
        pub fn from_ed25519_seed(kid: impl Into<String>, seed: &[u8; 32]) -> anyhow::Result<Self> {
            use ed25519_dalek::pkcs8::EncodePrivateKey as _;
            let key = ed25519_dalek::SigningKey::from_bytes(seed);
            let der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("pkcs8 encoding: {e}"))?;
            Ok(Self::from_ed25519_der(kid, der.as_bytes(), key.verifying_key().to_bytes()))
        }

        /// The raw 32-byte public key.
        pub fn public_key(&self) -> [u8; 32] {
            self.public_key
        }

        /// Builds a key from a PKCS#8 DER private key and its raw 32-byte public key.
        pub fn from_ed25519_der(kid: impl Into<String>, pkcs8_der: &[u8], public_key: [u8; 32]) -> Self {
            Self { kid: kid.into(), encoding: EncodingKey::from_ed_der(pkcs8_der), public_key }
        }

        /// The public half as a JWK (`kty` OKP, `crv` Ed25519, `alg` EdDSA, `use` sig).
        pub fn public_jwk(&self) -> Jwk {
            ed25519_public_jwk(self.kid.clone(), &self.public_key)
        }

        /// Signs `claims` as an access token.
        pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(self.kid.clone());
            header.typ = Some(ACCESS_TOKEN_TYPE.into());
            Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
        }
    }
}
