//! The consumer of grants' events: `grants.award.created` opens the award's engagement. The
//! platform's inbox makes a redelivered event a no-op, and the unique award index makes a second
//! engagement impossible even without it.

use futures::future::BoxFuture;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;
use work4life_platform::consumer::EventHandler;
use work4life_proto::{events::Event, grants::AwardCreated};

use crate::engagements::{self, NewEngagement};

/// Opens engagements for new awards.
pub struct AwardEvents;

fn ids(names: &[String], collection: &str) -> Vec<Uuid> {
    names
        .iter()
        .filter_map(|n| n.strip_prefix(collection).and_then(|r| r.strip_prefix('/')).and_then(|id| Uuid::parse_str(id).ok()))
        .collect()
}

impl EventHandler for AwardEvents {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Event) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if event.r#type != "grants.award.created" {
                return Ok(());
            }
            let payload = event.payload.as_ref().map(|p| p.value.as_slice()).unwrap_or_default();
            let award = AwardCreated::decode(payload)?;
            let new = NewEngagement {
                award: Some(award.award.clone()),
                application: award.application.clone(),
                window: award.window.clone(),
                zone: award.zone.clone(),
                beneficiaries: ids(&award.beneficiaries, "applicants"),
                beneficiary_accounts: ids(&award.beneficiary_accounts, "accounts"),
                languages: award.languages.clone(),
                hours_budget: None,
            };
            if new.beneficiaries.is_empty() {
                anyhow::bail!("{}: award event without beneficiaries", award.award);
            }
            if let Some(id) = engagements::open(tx, "system", &new).await.map_err(|e| anyhow::anyhow!("{e}"))? {
                work4life_platform::audit::append(
                    tx,
                    &work4life_platform::audit::AuditEntry {
                        actor: "system".into(),
                        action: "coaching.OpenEngagementForAward".into(),
                        resource: format!("engagements/{id}"),
                        request_id: event.id.clone(),
                        details: serde_json::json!({ "award": award.award }),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        })
    }
}
