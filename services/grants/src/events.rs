//! What grants consumes: intake's decisions (`intake.application.decided`: an accepted
//! application becomes fundable, with its members' coarse profiles for the donor's reports) and
//! coaching's verified milestones (`coaching.milestone.verified`: the matching tranches become
//! payable). The platform's inbox makes a redelivered event a no-op; the tranche state guard
//! would make it one anyway.

use futures::future::BoxFuture;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;
use work4life_platform::consumer::EventHandler;
use work4life_proto::{
    coaching::MilestoneVerified,
    events::Event,
    intake::{ApplicationDecided, Gender, Outcome, Window},
};

use crate::Grants;

/// Handles intake's and coaching's events.
pub struct Upstream(pub Grants);

fn id_of(name: &str, collection: &str) -> Option<Uuid> {
    name.strip_prefix(collection).and_then(|r| r.strip_prefix('/')).and_then(|id| Uuid::parse_str(id).ok())
}

fn window_code(w: i32) -> String {
    Window::try_from(w).map(|w| w.as_str_name().trim_start_matches("WINDOW_").to_lowercase()).unwrap_or_default()
}

fn gender_code(g: i32) -> &'static str {
    match Gender::try_from(g) {
        Ok(Gender::Female) => "female",
        Ok(Gender::Male) => "male",
        Ok(Gender::Other) => "other",
        _ => "undisclosed",
    }
}

/// Records a decision, replacing an earlier one of the same application.
pub async fn record_decision(tx: &mut PgConnection, d: &ApplicationDecided) -> anyhow::Result<()> {
    let application = id_of(&d.application, "applications").ok_or_else(|| anyhow::anyhow!("bad application name {}", d.application))?;
    let accepted = d.decision.as_ref().is_some_and(|x| x.outcome == Outcome::Accepted as i32);
    let program = d.program.strip_prefix("programs/").unwrap_or(&d.program);
    sqlx::query(
        "INSERT INTO decided_applications (application_id, program, window_code, zone, accepted, employer) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (application_id) DO UPDATE SET program = EXCLUDED.program, window_code = EXCLUDED.window_code, zone = EXCLUDED.zone, \
         accepted = EXCLUDED.accepted, employer = EXCLUDED.employer, decided_at = now()",
    )
    .bind(application)
    .bind(program)
    .bind(window_code(d.window))
    .bind(&d.zone)
    .bind(accepted)
    .bind(id_of(&d.employer, "organizations"))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM decided_members WHERE application_id = $1").bind(application).execute(&mut *tx).await?;
    for (position, r) in d.recipients.iter().enumerate() {
        let Some(applicant) = id_of(&r.applicant, "applicants") else { continue };
        let profile = d.profiles.iter().find(|p| p.applicant == r.applicant);
        sqlx::query(
            "INSERT INTO decided_members (application_id, position, applicant_id, account_id, languages, gender, nationality, age_band) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(application)
        .bind(position as i32)
        .bind(applicant)
        .bind(id_of(&r.account, "accounts"))
        .bind(&r.languages)
        .bind(profile.map_or("undisclosed", |p| gender_code(p.gender)))
        .bind(profile.map_or("", |p| p.nationality.as_str()))
        .bind(profile.map_or("unknown", |p| if p.age_band.is_empty() { "unknown" } else { p.age_band.as_str() }))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl EventHandler for Upstream {
    fn handle<'a>(&'a self, tx: &'a mut PgConnection, event: &'a Event) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let payload = event.payload.as_ref().map(|p| p.value.as_slice()).unwrap_or_default();
            match event.r#type.as_str() {
                "intake.application.decided" => record_decision(tx, &ApplicationDecided::decode(payload)?).await,
                "coaching.milestone.verified" => {
                    let m = MilestoneVerified::decode(payload)?;
                    // Advice engagements follow no award.
                    let Some(award) = id_of(&m.award, "awards") else { return Ok(()) };
                    let released = self.0.milestone_verified(tx, award, &m.code).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    tracing::info!(award = %m.award, milestone = %m.code, released, "milestone verified");
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }
}
