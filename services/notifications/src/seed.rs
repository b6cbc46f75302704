//! Demo data: the templates of every message type in French, Arabic and English
//! ([`crate::seed_templates`]), saved as version 1 where no version exists yet.

use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::seed_templates::SEED_TEMPLATES;

/// Loads the demo templates; idempotent (an edited template keeps its newer versions).
pub fn seed(pool: &PgPool) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
    Box::pin(async move {
        let mut tx = pool.begin().await?;
        let mut added = 0u64;
        for t in SEED_TEMPLATES {
            added += sqlx::query(
                "INSERT INTO templates (message_type, channel, locale, version, subject, body, provider_template, created_by) \
                 SELECT $1, $2, $3, 1, $4, $5, $6, 'seed' \
                 WHERE NOT EXISTS (SELECT 1 FROM templates WHERE message_type = $1 AND channel = $2 AND locale = $3)",
            )
            .bind(t.message_type)
            .bind(t.channel)
            .bind(t.locale)
            .bind(t.subject)
            .bind(t.body)
            .bind(t.provider_template)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(vec![format!("notifications: {} demo templates ({added} new) in fr, ar, en", SEED_TEMPLATES.len())])
    })
}
