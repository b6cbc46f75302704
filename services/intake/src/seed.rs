//! Reference and demo data: the four zones, the incubator's windows, and the WORK4LIFE program
//! (PRODUCT.md). Idempotent.

use futures::future::BoxFuture;
use sqlx::PgPool;

/// Zones: code and name.
pub const ZONES: &[(&str, &str)] =
    &[("rabat_sale", "Rabat-Salé"), ("tanger", "Tanger"), ("oujda", "Oujda"), ("beni_mellal", "Beni Mellal")];

/// Windows (guichets) and the job-placement way in: code, name, description.
pub const WINDOWS: &[(&str, &str, &str)] = &[
    ("collective_startup", "Collective start-up", "A start-up of 3 to 5 migrants, funded with a start-up grant in tranches"),
    ("individual_startup", "Individual auto-entrepreneur", "One migrant's own business, funded with a start-up grant"),
    ("job_placement", "Individual recruitment", "A migrant recruited by an employer, paid with a monthly work bursary"),
    ("association_professionalisation", "Professionalisation of associations", "Coaching for migrants' associations"),
    ("enterprise_marketing", "Marketing of enterprises", "Marketing advice for funded enterprises"),
    ("labour_law_advice", "Work contracts and labour law", "Advice on work contracts and labour law"),
];

/// Demo calls: display name, window, quota, eligibility and rubric as stored (JSON).
const CALLS: &[(&str, &str, i32, &str)] = &[
    (
        "Collective start-ups 2027",
        "collective_startup",
        40,
        r#"{"min_age":18,"max_age":45,"excluded_nationalities":["MA"],"min_team_size":0,"max_team_size":0,"required_documents":["business_plan"],"identity_document_required":true}"#,
    ),
    (
        "Individual start-ups 2027",
        "individual_startup",
        60,
        r#"{"min_age":18,"max_age":45,"excluded_nationalities":["MA"],"min_team_size":0,"max_team_size":0,"required_documents":["business_plan"],"identity_document_required":false}"#,
    ),
    (
        "Job placements 2027",
        "job_placement",
        120,
        r#"{"min_age":18,"max_age":0,"excluded_nationalities":["MA"],"min_team_size":0,"max_team_size":0,"required_documents":["cv"],"identity_document_required":false}"#,
    ),
];

const RUBRIC: &str = r#"[{"id":"viability","title":"Economic viability of the project","weight":40,"max_score":10},
{"id":"team","title":"Skills and commitment of the team","weight":30,"max_score":10},
{"id":"impact","title":"Integration and local impact","weight":30,"max_score":10}]"#;

/// Opens the demo calls (all zones, open now until the end of next March) once.
async fn seed_calls(tx: &mut sqlx::PgConnection) -> anyhow::Result<usize> {
    for (name, window, quota, eligibility) in CALLS {
        sqlx::query(
            "INSERT INTO calls (id, program_id, display_name, window_code, zones, opens_at, closes_at, quota, eligibility, rubric, created_by) \
             SELECT $1, p.id, $2, $3, p.zones, now() - interval '1 day', date_trunc('year', now()) + interval '1 year 3 months', $4, \
                    $5::jsonb, $6::jsonb, 'system' \
             FROM programs p WHERE p.code = 'work4life' AND NOT EXISTS (SELECT 1 FROM calls WHERE display_name = $2)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(name)
        .bind(window)
        .bind(quota)
        .bind(eligibility)
        .bind(RUBRIC)
        .execute(&mut *tx)
        .await?;
    }
    Ok(CALLS.len())
}

/// Loads zones, windows and the WORK4LIFE program.
pub fn seed(pool: &PgPool) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
    Box::pin(async move {
        let mut tx = pool.begin().await?;
        for (code, name) in ZONES {
            sqlx::query!("INSERT INTO zones (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING", code, name)
                .execute(&mut *tx)
                .await?;
        }
        for (code, name, description) in WINDOWS {
            sqlx::query!(
                "INSERT INTO windows (code, name, description) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
                code,
                name,
                description
            )
            .execute(&mut *tx)
            .await?;
        }
        let zones: Vec<String> = ZONES.iter().map(|z| z.0.to_string()).collect();
        let windows: Vec<String> = WINDOWS.iter().map(|w| w.0.to_string()).collect();
        let partners: Vec<String> = ["ES.MAROC", "CEFA", "Fondation Soleterre", "ASTICUDE"].iter().map(|p| (*p).to_string()).collect();
        sqlx::query!(
            "INSERT INTO programs (id, code, name, donor, currency_code, envelope_minor, starts_on, ends_on, zones, windows, partner_org_names) \
             VALUES ($1, 'work4life', 'WORK4LIFE', 'European Union', 'EUR', 200000000, '2026-01-01', '2028-12-31', $2, $3, $4) \
             ON CONFLICT (code) DO NOTHING",
            uuid::Uuid::now_v7(),
            &zones,
            &windows,
            &partners
        )
        .execute(&mut *tx)
        .await?;
        let calls = seed_calls(&mut tx).await?;
        tx.commit().await?;
        Ok(vec![format!("intake: {} zones, {} windows, program WORK4LIFE (2,000,000 EUR), {calls} open calls", ZONES.len(), WINDOWS.len())])
    })
}
