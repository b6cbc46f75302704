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

/// Rooms of every office: code, name, seats.
pub const ROOMS: &[(&str, &str, i32)] = &[("salle_a", "Salle A (coaching)", 4), ("atelier", "Atelier (workshops)", 16)];

/// Public holidays of 2027 in Morocco with fixed dates (the offices close).
pub const HOLIDAYS: &[&str] = &[
    "2027-01-01",
    "2027-01-11",
    "2027-01-14",
    "2027-05-01",
    "2027-07-30",
    "2027-08-14",
    "2027-08-20",
    "2027-08-21",
    "2027-11-06",
    "2027-11-18",
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
        for (code, ..) in OFFICES {
            for (room, name, capacity) in ROOMS {
                sqlx::query("INSERT INTO rooms (office_code, code, name, capacity) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(code)
                    .bind(room)
                    .bind(name)
                    .bind(capacity)
                    .execute(&mut *tx)
                    .await?;
            }
            // Monday to Friday 09:00-17:00, Saturday morning; the offices' local time.
            sqlx::query(
                "INSERT INTO office_hours (office_code, weekday, opens, closes) \
                 SELECT $1, d, '09:00', CASE WHEN d = 6 THEN time '13:00' ELSE time '17:00' END FROM generate_series(1, 6) d \
                 ON CONFLICT DO NOTHING",
            )
            .bind(code)
            .execute(&mut *tx)
            .await?;
            for day in HOLIDAYS {
                sqlx::query("INSERT INTO office_closures (office_code, day) VALUES ($1, $2::date) ON CONFLICT DO NOTHING")
                    .bind(code)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(vec![format!("coaching: {} offices with {} rooms each, opening hours and 2027 holidays", OFFICES.len(), ROOMS.len())])
    })
}
