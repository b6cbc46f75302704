//! Sessions: password login with brute-force limits counted in Redis (so they hold across
//! replicas and restarts), access tokens signed with the active key, and single-use refresh
//! tokens in families (a spent token presented again revokes its whole family).

use std::{net::IpAddr, time::Duration};

use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
use rand::RngCore as _;
use redis::aio::ConnectionManager;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    ServiceError,
    audit::{self, AuditEntry},
    auth::{Claims, RoleBinding},
    config::TokenConfig,
};

use crate::keys::KeyRing;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed logins allowed per account in [`FAILURE_WINDOW`].
pub const MAX_FAILURES_PER_ACCOUNT: u64 = 10;
/// Failed logins allowed per source address in [`FAILURE_WINDOW`].
pub const MAX_FAILURES_PER_SOURCE: u64 = 50;
/// The window failures are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a one-time code works.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Tries per one-time code.
pub const CODE_TRIES: i32 = 5;
/// Codes sent per phone in [`FAILURE_WINDOW`].
pub const CODES_PER_PHONE: u64 = 3;

/// Issued tokens.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Signed access token.
    pub access_token: String,
    /// Its expiry.
    pub access_expires_at: OffsetDateTime,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// Its expiry.
    pub refresh_expires_at: OffsetDateTime,
    /// The account.
    pub account_id: Uuid,
}

/// Login, refresh and logout.
#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    redis: ConnectionManager,
    keys: KeyRing,
    token: TokenConfig,
}

const UNAUTHENTICATED: ServiceError = ServiceError::Unauthenticated("wrong email or password");

impl Sessions {
    /// Sessions signing with `keys` for the issuer and audience in `token`.
    pub fn new(pool: PgPool, redis: ConnectionManager, keys: KeyRing, token: TokenConfig) -> Self {
        Self { pool, redis, keys, token }
    }

    /// Checks a password; the same refusal for an unknown email and a wrong password.
    pub async fn login(&self, email: &str, password: &str, source: Option<IpAddr>, request_id: &str) -> Result<Issued, ServiceError> {
        let email = email.trim().to_lowercase();
        let account_key = format!("w4l:identity:login-failures:account:{}", hex::encode(Sha256::digest(email.as_bytes())));
        let source_key = source.map(|ip| format!("w4l:identity:login-failures:source:{ip}"));
        self.check_limits(&account_key, source_key.as_deref()).await?;

        let account =
            sqlx::query!("SELECT id, password_hash FROM accounts WHERE lower(email) = $1 AND status = 'active' AND kind = 'staff'", email)
                .fetch_optional(&self.pool)
                .await?;
        // Verify against a fixed hash when the account is unknown, so timing does not tell.
        let stored = account.as_ref().and_then(|a| a.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.to_string());
        let password = password.to_string();
        // Verify, and when the stored hash predates the current parameters, compute the
        // replacement while the password is at hand (the upgrade happens on login).
        let (verified, upgraded) = tokio::task::spawn_blocking(move || -> Result<(bool, Option<String>), ServiceError> {
            let Ok(hash) = PasswordHash::new(&stored) else { return Ok((false, None)) };
            if Argon2::default().verify_password(password.as_bytes(), &hash).is_err() {
                return Ok((false, None));
            }
            if crate::bootstrap::is_current(&hash) {
                return Ok((true, None));
            }
            let fresh = crate::bootstrap::hash_password(&password).map_err(ServiceError::Internal)?;
            Ok((true, Some(fresh)))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.into()))??;

        let mut tx = self.pool.begin().await?;
        let source_addr = source.map(|ip| ip.to_string()).unwrap_or_default();
        let Some(account) = account.filter(|_| verified) else {
            self.count_failure(&account_key, source_key.as_deref()).await?;
            let entry = AuditEntry {
                actor: "anonymous".into(),
                action: "identity.Login.failed".into(),
                resource: format!("emails/{}", hex::encode(&Sha256::digest(email.as_bytes())[..8])),
                source_addr,
                request_id: request_id.to_string(),
                details: serde_json::json!({}),
            };
            audit::append(&mut tx, &entry).await?;
            tx.commit().await?;
            return Err(UNAUTHENTICATED);
        };
        if let Some(hash) = upgraded {
            sqlx::query!("UPDATE accounts SET password_hash = $2 WHERE id = $1", account.id, hash).execute(&mut *tx).await?;
        }
        let issued = self.issue(&mut tx, account.id, Uuid::now_v7()).await?;
        let entry = AuditEntry {
            actor: format!("accounts/{}", account.id),
            action: "identity.Login".into(),
            resource: format!("accounts/{}", account.id),
            source_addr,
            request_id: request_id.to_string(),
            details: serde_json::json!({}),
        };
        audit::append(&mut tx, &entry).await?;
        tx.commit().await?;
        let mut redis = self.redis.clone();
        let _: () = redis::cmd("DEL").arg(&account_key).query_async(&mut redis).await?;
        Ok(issued)
    }

    async fn check_limits(&self, account_key: &str, source_key: Option<&str>) -> Result<(), ServiceError> {
        let mut redis = self.redis.clone();
        let keys: Vec<&str> = std::iter::once(account_key).chain(source_key).collect();
        let counts: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query_async(&mut redis).await?;
        let account_failures = counts.first().copied().flatten().unwrap_or(0);
        let source_failures = counts.get(1).copied().flatten().unwrap_or(0);
        if account_failures >= MAX_FAILURES_PER_ACCOUNT || source_failures >= MAX_FAILURES_PER_SOURCE {
            return Err(ServiceError::ResourceExhausted("too many failed logins; try again in 15 minutes"));
        }
        Ok(())
    }

    async fn count_failure(&self, account_key: &str, source_key: Option<&str>) -> Result<(), ServiceError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in std::iter::once(account_key).chain(source_key) {
            // The window starts at the first failure: EXPIRE NX keeps it from sliding.
            pipe.cmd("INCR").arg(key).ignore().cmd("EXPIRE").arg(key).arg(FAILURE_WINDOW.as_secs()).arg("NX").ignore();
        }
        pipe.query_async::<()>(&mut redis).await?;
        Ok(())
    }

    /// Spends `refresh_token` and issues the next tokens of its family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued, ServiceError> {
        let hash = Sha256::digest(refresh_token.as_bytes()).to_vec();
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query!(
            "SELECT t.id, t.family_id, t.account_id, t.expires_at, t.spent_at, t.revoked_at, a.status \
             FROM refresh_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.token_hash = $1 FOR UPDATE OF t",
            hash
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(ServiceError::Unauthenticated("unknown refresh token"));
        };
        if row.spent_at.is_some() {
            // Replay of a spent token: someone else holds the family. Revoke all of it.
            sqlx::query!("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", row.family_id)
                .execute(&mut *tx)
                .await?;
            let entry = AuditEntry {
                actor: format!("accounts/{}", row.account_id),
                action: "identity.RefreshToken.reused".into(),
                resource: format!("accounts/{}", row.account_id),
                details: serde_json::json!({ "family": row.family_id }),
                ..AuditEntry::default()
            };
            audit::append(&mut tx, &entry).await?;
            tx.commit().await?;
            return Err(ServiceError::Unauthenticated("refresh token already used; the session is revoked"));
        }
        if row.revoked_at.is_some() || row.expires_at <= OffsetDateTime::now_utc() || row.status != "active" {
            return Err(ServiceError::Unauthenticated("refresh token expired or revoked"));
        }
        sqlx::query!("UPDATE refresh_tokens SET spent_at = now() WHERE id = $1", row.id).execute(&mut *tx).await?;
        let issued = self.issue(&mut tx, row.account_id, row.family_id).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// Revokes the family of `refresh_token` (logout); unknown tokens are refused.
    pub async fn logout(&self, refresh_token: &str, request_id: &str) -> Result<(), ServiceError> {
        let hash = Sha256::digest(refresh_token.as_bytes()).to_vec();
        let mut tx = self.pool.begin().await?;
        let Some(row) =
            sqlx::query!("SELECT family_id, account_id FROM refresh_tokens WHERE token_hash = $1", hash).fetch_optional(&mut *tx).await?
        else {
            return Err(ServiceError::Unauthenticated("unknown refresh token"));
        };
        sqlx::query!("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", row.family_id)
            .execute(&mut *tx)
            .await?;
        let entry = AuditEntry {
            actor: format!("accounts/{}", row.account_id),
            action: "identity.Logout".into(),
            resource: format!("accounts/{}", row.account_id),
            request_id: request_id.to_string(),
            details: serde_json::json!({ "family": row.family_id }),
            ..AuditEntry::default()
        };
        audit::append(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn issue(&self, tx: &mut sqlx::PgConnection, account_id: Uuid, family_id: Uuid) -> Result<Issued, ServiceError> {
        let (access_token, access_expires_at) = self.access_token(tx, account_id).await?;
        let now = OffsetDateTime::now_utc();
        let refresh_token = random_secret();
        let refresh_expires_at = now + REFRESH_TOKEN_TTL;
        sqlx::query!(
            "INSERT INTO refresh_tokens (id, family_id, account_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
            Uuid::now_v7(),
            family_id,
            account_id,
            Sha256::digest(refresh_token.as_bytes()).to_vec(),
            refresh_expires_at
        )
        .execute(&mut *tx)
        .await?;
        Ok(Issued { access_token, access_expires_at, refresh_token, refresh_expires_at, account_id })
    }

    /// A signed access token carrying the account's current role bindings.
    async fn access_token(&self, tx: &mut sqlx::PgConnection, account_id: Uuid) -> Result<(String, OffsetDateTime), ServiceError> {
        let roles = sqlx::query!("SELECT role, organization_id, zones FROM role_bindings WHERE account_id = $1 ORDER BY role", account_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| RoleBinding { role: r.role, org: r.organization_id.map(|o| format!("organizations/{o}")), zones: r.zones })
            .collect();
        let now = OffsetDateTime::now_utc();
        let access_expires_at = now + ACCESS_TOKEN_TTL;
        let claims = Claims {
            iss: self.token.issuer.clone(),
            aud: self.token.audience.clone(),
            sub: format!("accounts/{account_id}"),
            exp: access_expires_at.unix_timestamp() as u64,
            nbf: now.unix_timestamp() as u64,
            iat: now.unix_timestamp() as u64,
            jti: Uuid::now_v7().to_string(),
            roles,
        };
        let key = self.keys.active().await?;
        let access_token = key.sign(&claims).map_err(ServiceError::Internal)?;
        Ok((access_token, access_expires_at))
    }
}

impl Sessions {
    /// Sends a code to the beneficiary with `phone`, if there is one (the answer never says).
    /// The code travels to notifications in the `identity.otp.requested` event.
    pub async fn request_code(&self, phone: &str) -> Result<OffsetDateTime, ServiceError> {
        let expires_at = OffsetDateTime::now_utc() + CODE_TTL;
        let limit_key = format!("w4l:identity:otp-requests:{}", hex::encode(Sha256::digest(phone.as_bytes())));
        let mut redis = self.redis.clone();
        let (sent,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&limit_key)
            .cmd("EXPIRE")
            .arg(&limit_key)
            .arg(FAILURE_WINDOW.as_secs())
            .arg("NX")
            .ignore()
            .query_async(&mut redis)
            .await?;
        if sent > CODES_PER_PHONE {
            return Err(ServiceError::ResourceExhausted("too many codes requested for this phone; try again in 15 minutes"));
        }
        let mut tx = self.pool.begin().await?;
        let account = sqlx::query_scalar!("SELECT id FROM accounts WHERE phone = $1 AND kind = 'beneficiary' AND status = 'active'", phone)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(account_id) = account else {
            return Ok(expires_at); // same answer: no way to probe which phones have accounts
        };
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let id = Uuid::now_v7();
        // Older codes stop working when a new one is sent.
        sqlx::query!("UPDATE one_time_codes SET used_at = now() WHERE account_id = $1 AND used_at IS NULL", account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query!(
            "INSERT INTO one_time_codes (id, account_id, code_hash, expires_at) VALUES ($1, $2, $3, $4)",
            id,
            account_id,
            code_hash(id, &code),
            expires_at
        )
        .execute(&mut *tx)
        .await?;
        let payload = serde_json::json!({ "account": format!("accounts/{account_id}"), "phone": phone, "code": code, "expire_time": expires_at.unix_timestamp() });
        let any = prost_types::Any {
            type_url: "application/json;work4life.identity.OtpRequested".into(),
            value: payload.to_string().into_bytes(),
        };
        work4life_platform::outbox::enqueue(&mut tx, "identity", "identity.otp.requested", &format!("accounts/{account_id}"), any).await?;
        tx.commit().await?;
        Ok(expires_at)
    }

    /// Logs a beneficiary in with a code sent to `phone`.
    pub async fn verify_code(&self, phone: &str, code: &str, request_id: &str) -> Result<Issued, ServiceError> {
        const REFUSED: ServiceError = ServiceError::Unauthenticated("wrong or expired code");
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query!(
            "SELECT c.id, c.account_id, c.code_hash, c.expires_at, c.attempts FROM one_time_codes c JOIN accounts a ON a.id = c.account_id \
             WHERE a.phone = $1 AND a.kind = 'beneficiary' AND a.status = 'active' AND c.used_at IS NULL \
             ORDER BY c.created_at DESC LIMIT 1 FOR UPDATE OF c",
            phone
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Err(REFUSED) };
        if row.expires_at <= OffsetDateTime::now_utc() || row.attempts >= CODE_TRIES {
            return Err(REFUSED);
        }
        if row.code_hash != code_hash(row.id, code.trim()) {
            // A wrong try counts, committed even though the call fails.
            sqlx::query!("UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = $1", row.id).execute(&mut *tx).await?;
            tx.commit().await?;
            return Err(REFUSED);
        }
        sqlx::query!("UPDATE one_time_codes SET used_at = now() WHERE id = $1", row.id).execute(&mut *tx).await?;
        let issued = self.issue(&mut tx, row.account_id, Uuid::now_v7()).await?;
        let entry = AuditEntry {
            actor: format!("accounts/{}", row.account_id),
            action: "identity.VerifyOneTimeCode".into(),
            resource: format!("accounts/{}", row.account_id),
            request_id: request_id.to_string(),
            details: serde_json::json!({}),
            ..AuditEntry::default()
        };
        audit::append(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// A new client secret for a service account, replacing the previous one; shown once.
    pub async fn create_client_secret(&self, account_id: Uuid, actor: &str, request_id: &str) -> Result<String, ServiceError> {
        let secret = random_secret();
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query!(
            "UPDATE accounts SET client_secret_hash = $2, version = version + 1 WHERE id = $1 AND kind = 'service'",
            account_id,
            Sha256::digest(secret.as_bytes()).to_vec()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(ServiceError::precondition(
                "NOT_A_SERVICE_ACCOUNT",
                "KIND",
                format!("accounts/{account_id}"),
                "client secrets are for service accounts",
            ));
        }
        let entry = AuditEntry {
            actor: actor.to_string(),
            action: "identity.CreateClientSecret".into(),
            resource: format!("accounts/{account_id}"),
            request_id: request_id.to_string(),
            details: serde_json::json!({}),
            ..AuditEntry::default()
        };
        audit::append(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// A partner system's access token for its client id and secret.
    pub async fn exchange_client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        source: Option<IpAddr>,
    ) -> Result<(String, OffsetDateTime), ServiceError> {
        const REFUSED: ServiceError = ServiceError::Unauthenticated("wrong client credentials");
        let limit_key = format!("w4l:identity:login-failures:client:{}", hex::encode(Sha256::digest(client_id.as_bytes())));
        let source_key = source.map(|ip| format!("w4l:identity:login-failures:source:{ip}"));
        self.check_limits(&limit_key, source_key.as_deref()).await?;
        let id = Uuid::parse_str(client_id).ok();
        let stored = match id {
            Some(id) => {
                sqlx::query_scalar!("SELECT client_secret_hash FROM accounts WHERE id = $1 AND kind = 'service' AND status = 'active'", id)
                    .fetch_optional(&self.pool)
                    .await?
                    .flatten()
            }
            None => None,
        };
        let presented = Sha256::digest(secret.as_bytes()).to_vec();
        let (Some(id), Some(stored)) = (id, stored) else {
            self.count_failure(&limit_key, source_key.as_deref()).await?;
            return Err(REFUSED);
        };
        if !constant_time_eq(&stored, &presented) {
            self.count_failure(&limit_key, source_key.as_deref()).await?;
            return Err(REFUSED);
        }
        let mut tx = self.pool.begin().await?;
        let (token, expires_at) = self.access_token(&mut tx, id).await?;
        tx.commit().await?;
        Ok((token, expires_at))
    }
}

/// 256 random bits, base64url: refresh tokens and client secrets (only their hash is stored).
fn random_secret() -> String {
    use base64::Engine as _;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
}

fn code_hash(id: Uuid, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(code.as_bytes());
    h.finalize().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An argon2id hash of a random password nobody knows, verified when the email is unknown so
/// that both refusals take the same time.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Xr1Jx3vT0fqMqg4iS+3j0Gm1Pj2qK8bWx0r8cB8c1ZQ";
