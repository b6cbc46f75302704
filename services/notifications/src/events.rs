//! The consumer of the other services' events: each event's [`plan`](crate::plan) becomes rows in
//! `messages`, inside the platform's inbox transaction; the unique (event, recipient, message
//! type) makes a redelivered event a no-op even past the inbox. A session moved or cancelled
//! first cancels the reminders still queued for it.

use futures::future::BoxFuture;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::consumer::EventHandler;
use work4life_proto::events::Event;

use crate::{Notifications, plan};

/// Handles every stream notifications reads.
pub struct Upstream(pub Notifications);

impl EventHandler for Upstream {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Event) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Some(plan) = plan::plan(event, OffsetDateTime::now_utc())? else { return Ok(()) };
            let event_id = Uuid::parse_str(&event.id)?;
            let event_time = event
                .occurred_at
                .as_ref()
                .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)).ok())
                .unwrap_or_else(OffsetDateTime::now_utc);
            if let Some(about) = &plan.cancel_about {
                // Only reminders made by earlier events: a redelivered (or late) change must not
                // cancel the reminder it made itself, or one a newer change made.
                sqlx::query(
                    "UPDATE messages SET state = 'skipped', last_error = 'the session was moved or cancelled', sealed = NULL \
                     WHERE about = $1 AND state = 'queued' AND message_type = 'coaching.session.reminder' \
                     AND event_id <> $2 AND event_time < $3",
                )
                .bind(about)
                .bind(event_id)
                .bind(event_time)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(applicant) = &plan.forget {
                forget(tx, applicant).await?;
            }
            for m in plan.messages {
                let id = Uuid::now_v7();
                let time_zone = match m.time_zone {
                    Some(tz) if known_time_zone(tx, &tz).await? => tz,
                    _ => self.0.settings.default_time_zone.clone(),
                };
                let sealed = match &m.secret {
                    Some(secret) => Some(self.0.vault.seal(id, "secret", &secret.to_string())?),
                    None => None,
                };
                sqlx::query(
                    "INSERT INTO messages (id, event_id, event_type, message_type, recipient, kind, variables, sealed, sealed_key, about, \
                     time_zone, event_time, due_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, now())) \
                     ON CONFLICT (event_id, recipient, message_type) DO NOTHING",
                )
                .bind(id)
                .bind(event_id)
                .bind(&event.r#type)
                .bind(m.message_type)
                .bind(&m.recipient)
                .bind(m.kind.code())
                .bind(sqlx::types::Json(&m.variables))
                .bind(sealed)
                .bind(m.secret.as_ref().map(|_| self.0.vault.current_key_id().to_string()))
                .bind(&m.about)
                .bind(&time_zone)
                .bind(event_time)
                .bind(m.due_at)
                .execute(&mut *tx)
                .await?;
            }
            self.0.wake.notify_one();
            Ok(())
        })
    }
}

/// After an erasure: the person's inbox bodies are blanked and nothing queued goes out.
async fn forget(tx: &mut PgConnection, applicant: &str) -> anyhow::Result<()> {
    let Some(id) = applicant.strip_prefix("applicants/").and_then(|id| Uuid::parse_str(id).ok()) else {
        anyhow::bail!("intake.applicant.erased names {applicant:?}, not applicants/{{uuid}}");
    };
    sqlx::query("UPDATE inbox_items SET title = '', body = '', account = '' WHERE applicant_id = $1").bind(id).execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE messages SET state = 'skipped', last_error = 'the person''s personal data was erased', sealed = NULL, sealed_key = NULL \
         WHERE recipient = $1 AND state = 'queued'",
    )
    .bind(applicant)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn known_time_zone(tx: &mut PgConnection, tz: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)").bind(tz).fetch_one(tx).await?)
}
