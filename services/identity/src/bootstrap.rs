//! Creating administrators without a default password: a generated password, stored as an
//! argon2id hash at OWASP's minimum parameters, shown once to whoever ran the command.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use sqlx::PgConnection;

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
pub fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Whether a stored hash uses today's algorithm and parameters (else it is upgraded on login).
pub fn is_current(hash: &argon2::PasswordHash) -> bool {
    let Ok(current) = hasher() else { return false };
    let want = current.params();
    hash.algorithm.as_str() == "argon2id"
        && argon2::Params::try_from(hash)
            .is_ok_and(|p| (p.m_cost(), p.t_cost(), p.p_cost()) == (want.m_cost(), want.t_cost(), want.p_cost()))
}

/// A PHC string for `password` with today's parameters.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(hasher()?.hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("hashing: {e}"))?.to_string())
}

/// A random 24-character password (144 bits).
pub fn random_password() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates a staff account with a global admin binding; returns its generated password.
pub async fn create_admin(tx: &mut PgConnection, email: &str, display_name: &str) -> anyhow::Result<String> {
    let email = email.trim().to_lowercase();
    anyhow::ensure!(email.contains('@') && email.len() <= 254, "{email:?} is not an email address");
    let password = random_password();
    let hash = hash_password(&password)?;
    let account_id = uuid::Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO accounts (id, kind, email, display_name, password_hash) VALUES ($1, 'staff', $2, $3, $4)",
        account_id,
        email,
        display_name,
        hash
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("INSERT INTO role_bindings (id, account_id, role) VALUES ($1, $2, 'admin')", uuid::Uuid::now_v7(), account_id)
        .execute(&mut *tx)
        .await?;
    Ok(password)
}

/// The production bootstrap: creates the first administrator, and refuses once any admin
/// exists (later admins are granted through the API, audited).
pub async fn bootstrap_admin(pool: &sqlx::PgPool, email: &str) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    // Serialise concurrent bootstraps: the check and the insert happen under one lock.
    sqlx::query("LOCK TABLE role_bindings IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
    let any_admin =
        sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM role_bindings WHERE role = 'admin')").fetch_one(&mut *tx).await?.unwrap_or(false);
    anyhow::ensure!(!any_admin, "an administrator exists already; grant more through the API");
    let password = create_admin(&mut tx, email, "Administrator").await?;
    tx.commit().await?;
    Ok(password)
}

/// Roles of the platform's service account (see `W4L_SERVICE_CLIENT_ID`).
pub const SERVICE_ACCOUNT_ROLES: &[&str] = &["notifier"];

/// Keeps the platform's service account as configured: the account `id` exists, is an active
/// service account holding [`SERVICE_ACCOUNT_ROLES`], and its secret is `secret`. Idempotent:
/// every replica runs it at start; changing the configured secret rotates it.
pub async fn ensure_service_account(pool: &sqlx::PgPool, id: uuid::Uuid, secret: &str) -> anyhow::Result<()> {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(secret.as_bytes()).to_vec();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO accounts (id, kind, display_name, client_secret_hash) VALUES ($1, 'service', 'work4life services', $2) \
         ON CONFLICT (id) DO UPDATE SET client_secret_hash = EXCLUDED.client_secret_hash, status = 'active', \
         version = accounts.version + (accounts.client_secret_hash IS DISTINCT FROM EXCLUDED.client_secret_hash)::int \
         WHERE accounts.kind = 'service'",
    )
    .bind(id)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    for role in SERVICE_ACCOUNT_ROLES {
        sqlx::query(
            "INSERT INTO role_bindings (id, account_id, role) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM role_bindings WHERE account_id = $2 AND role = $3)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(id)
        .bind(*role)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
