//! Reference and demo data: the program's real organisations (PRODUCT.md) and a demo admin whose
//! password is generated, stored as an argon2id hash, and shown once, when it is created.

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use futures::future::BoxFuture;
use sqlx::PgPool;

/// The organisations of the WORK4LIFE program: name, kind, zones.
pub const ORGANIZATIONS: &[(&str, &str, &[&str])] = &[
    ("ES.MAROC", "incubator", &["rabat_sale", "tanger"]),
    ("CEFA", "partner_ngo", &["oujda", "beni_mellal"]),
    ("Fondation Soleterre", "partner_ngo", &["rabat_sale", "tanger", "oujda", "beni_mellal"]),
    ("ASTICUDE", "partner_ngo", &["rabat_sale", "tanger", "oujda", "beni_mellal"]),
    ("European Union", "donor", &[]),
];

/// The demo administrator's login.
pub const DEMO_ADMIN_EMAIL: &str = "admin@work4life.local";

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Loads the organisations and the demo admin; idempotent.
pub fn seed(pool: &PgPool) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
    Box::pin(async move {
        let mut tx = pool.begin().await?;
        for (name, kind, zones) in ORGANIZATIONS {
            let zones: Vec<String> = zones.iter().map(|z| (*z).to_string()).collect();
            sqlx::query!(
                "INSERT INTO organizations (id, name, kind, zones) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                uuid::Uuid::now_v7(),
                name,
                kind,
                &zones
            )
            .execute(&mut *tx)
            .await?;
        }
        let mut lines = vec![format!("identity: {} organisations", ORGANIZATIONS.len())];
        let exists = sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM accounts WHERE email = $1)", DEMO_ADMIN_EMAIL)
            .fetch_one(&mut *tx)
            .await?
            .unwrap_or(false);
        if exists {
            lines.push(format!("identity: demo admin {DEMO_ADMIN_EMAIL} exists (its password was shown when it was created)"));
        } else {
            let password = random_password();
            let hash = hasher()?.hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("hashing: {e}"))?.to_string();
            let account_id = uuid::Uuid::now_v7();
            sqlx::query!(
                "INSERT INTO accounts (id, kind, email, display_name, password_hash) VALUES ($1, 'staff', $2, 'Demo administrator', $3)",
                account_id,
                DEMO_ADMIN_EMAIL,
                hash
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!("INSERT INTO role_bindings (id, account_id, role) VALUES ($1, $2, 'admin')", uuid::Uuid::now_v7(), account_id)
                .execute(&mut *tx)
                .await?;
            lines.push(format!("identity: demo admin created: {DEMO_ADMIN_EMAIL} / {password}  (shown once; keep it)"));
        }
        tx.commit().await?;
        Ok(lines)
    })
}

fn random_password() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
