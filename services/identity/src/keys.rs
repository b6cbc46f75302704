//! Signing keys: Ed25519, generated here, stored with the private half encrypted (AES-256-GCM,
//! key from `W4L_SIGNING_KEY_ENCRYPTION_KEY`), published as a JWK set until they retire.
//! Rotation adds a key that signs from then on; the previous key stays published until every
//! access token it signed has expired, so verification never breaks mid-rotation.

use std::{sync::Arc, time::Duration};

use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce, aead::Aead as _};
use jsonwebtoken::jwk::JwkSet;
use rand::RngCore as _;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::RwLock;
use work4life_platform::{
    ServiceError,
    auth::signing::{SigningKey, ed25519_public_jwk},
};

/// Encrypts and decrypts private keys at rest.
#[derive(Clone)]
struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    fn seal(&self, seed: &[u8; 32]) -> Result<(Vec<u8>, [u8; 12]), ServiceError> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self.cipher.encrypt(Nonce::from_slice(&nonce), seed.as_slice()).map_err(|_| internal("sealing a signing key"))?;
        Ok((ciphertext, nonce))
    }

    fn open(&self, ciphertext: &[u8], nonce: &[u8]) -> Result<[u8; 32], ServiceError> {
        if nonce.len() != 12 {
            return Err(internal("a signing key has a bad nonce"));
        }
        let seed = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| internal("a signing key does not decrypt: wrong W4L_SIGNING_KEY_ENCRYPTION_KEY?"))?;
        seed.try_into().map_err(|_| internal("a signing key has the wrong length"))
    }
}

fn internal(what: &str) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("{what}"))
}

/// The signing keys of identity, with the active one cached.
#[derive(Clone)]
pub struct KeyRing {
    pool: PgPool,
    sealer: Sealer,
    active: Arc<RwLock<Option<Arc<SigningKey>>>>,
}

/// The outcome of a rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new signing key.
    pub kid: String,
    /// The key it replaces, if any, and when that one leaves the key set.
    pub previous: Option<(String, OffsetDateTime)>,
}

impl KeyRing {
    /// A key ring over identity's pool, sealing private keys with `encryption_key`.
    pub fn new(pool: PgPool, encryption_key: &[u8; 32]) -> Self {
        Self { pool, sealer: Sealer { cipher: Aes256Gcm::new(encryption_key.into()) }, active: Arc::new(RwLock::new(None)) }
    }

    /// The key to sign with now; creates the first key on first use.
    pub async fn active(&self) -> Result<Arc<SigningKey>, ServiceError> {
        if let Some(key) = self.active.read().await.as_ref() {
            return Ok(Arc::clone(key));
        }
        let mut slot = self.active.write().await;
        if let Some(key) = slot.as_ref() {
            return Ok(Arc::clone(key));
        }
        let key = match self.load_active().await? {
            Some(key) => Arc::new(key),
            None => self.create(Duration::ZERO).await?.1,
        };
        *slot = Some(Arc::clone(&key));
        Ok(key)
    }

    async fn load_active(&self) -> Result<Option<SigningKey>, ServiceError> {
        let row = sqlx::query!(
            "SELECT kid, private_key_ciphertext, private_key_nonce FROM signing_keys WHERE retires_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let seed = self.sealer.open(&row.private_key_ciphertext, &row.private_key_nonce)?;
        Ok(Some(SigningKey::from_ed25519_seed(row.kid, &seed).map_err(ServiceError::Internal)?))
    }

    /// Creates a new signing key and signs with it from now on; the current one retires after
    /// `overlap` (the longest lifetime of a token it signed).
    pub async fn rotate(&self, overlap: Duration) -> Result<Rotation, ServiceError> {
        let (rotation, key) = self.create(overlap).await?;
        *self.active.write().await = Some(key);
        Ok(rotation)
    }

    /// Stores a new key, retiring the current one after `overlap`. Concurrent rotations (other
    /// replicas) are serialised by a table lock. Leaves the cache alone: callers set it.
    async fn create(&self, overlap: Duration) -> Result<(Rotation, Arc<SigningKey>), ServiceError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let kid = format!("k-{}", uuid::Uuid::now_v7().simple());
        let key = SigningKey::from_ed25519_seed(kid.clone(), &seed).map_err(ServiceError::Internal)?;
        let (ciphertext, nonce) = self.sealer.seal(&seed)?;
        let retires_at = OffsetDateTime::now_utc() + overlap;
        let public_key = key.public_key();
        let mut tx = self.pool.begin().await?;
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let previous = sqlx::query_scalar!("UPDATE signing_keys SET retires_at = $1 WHERE retires_at IS NULL RETURNING kid", retires_at)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query!(
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key_ciphertext, private_key_nonce) VALUES ($1, 'EdDSA', $2, $3, $4)",
            kid,
            public_key.as_slice(),
            ciphertext,
            nonce.as_slice()
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((Rotation { kid, previous: previous.into_iter().next().map(|k| (k, retires_at)) }, Arc::new(key)))
    }

    /// The published key set: every key not yet retired.
    pub async fn key_set(&self) -> Result<JwkSet, ServiceError> {
        let rows =
            sqlx::query!("SELECT kid, public_key FROM signing_keys WHERE retires_at IS NULL OR retires_at > now() ORDER BY created_at")
                .fetch_all(&self.pool)
                .await?;
        Ok(JwkSet { keys: rows.into_iter().map(|r| ed25519_public_jwk(r.kid, &r.public_key)).collect() })
    }
}
