//! Reference data: the offices where coaching happens (PRODUCT.md). Idempotent.

use futures::future::BoxFuture;
use sqlx::PgPool;

/// Offices: code, name, zone, operator, address.
pub const OFFICES: &[(&str, &str, &str, &str, &str)] = &[
    ("rabat_ocean", "ES.MAROC Rabat Océan", "rabat_sale", "ES.MAROC", "Quartier de l'Océan, Rabat"),
    ("tanger_maison_des_jeunes", "Maison des Jeunes de Tanger", "tanger", "ES.MAROC", "Maison des Jeunes, Tanger"),
    ("tanger_technopark", "Technopark de Tanger", "tanger", "ES.MAROC", "Technopark, Tanger"),
    ("oujda_cefa", "CEFA Oujda", "oujda", "CEFA", "Oujda"),
    ("beni_mellal_cefa", "CEFA Beni Mellal", "beni_mellal", "CEFA", "Beni Mellal"),
];

/// Loads the offices.
pub fn seed(pool: &PgPool) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
    Box::pin(async move {
        let mut tx = pool.begin().await?;
        for (code, name, zone, operator, address) in OFFICES {
            sqlx::query!(
                "INSERT INTO offices (code, name, zone, operator, address) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
                code,
                name,
                zone,
                operator,
                address
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(vec![format!("coaching: {} offices", OFFICES.len())])
    })
}
