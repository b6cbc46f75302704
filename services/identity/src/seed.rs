//! Reference and demo data: the program's real organisations (PRODUCT.md) and a demo admin whose
//! password is generated, stored as an argon2id hash, and shown once, when it is created.

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
            let password = crate::bootstrap::create_admin(&mut tx, DEMO_ADMIN_EMAIL, "Demo administrator").await?;
            lines.push(format!("identity: demo admin created: {DEMO_ADMIN_EMAIL} / {password}  (shown once; keep it)"));
        }
        tx.commit().await?;
        Ok(lines)
    })
}
