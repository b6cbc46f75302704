//! Progress: the figures of one engagement and of cohorts (by window, zone and coach's office) —
//! engagements, held sessions and their hours, attendance rate, verified milestones — and which
//! active engagements are at risk (an overdue milestone, or no held session in the 30 days
//! before `as_of` for an engagement older than that).

mod common;

use std::collections::BTreeSet;

use common::{Fixture, fresh, milestone_name, timestamp_in};
use work4life_proto::coaching::{Engagement, GetProgressRequest, Progress};

const DAY: i64 = 86_400;

/// Holds a past remote session of `engagements` (started `hours_ago`, lasting `minutes`) with
/// these presences, led by the first engagement's coach.
async fn held(f: &Fixture, engagements: &[&Engagement], hours_ago: i64, minutes: i64, marks: &[(&str, bool)]) {
    let mut session = f.past_session(engagements[0], hours_ago, minutes);
    session.engagements = engagements.iter().map(|e| e.name.clone()).collect();
    let s = f.schedule(&f.admin, session).await.expect("session");
    f.attend(&f.admin, &s.name, marks, "").await.expect("attendance");
}

async fn progress(f: &Fixture, request: GetProgressRequest) -> Progress {
    f.progress(&f.admin, request).await.expect("progress")
}

fn of(e: &Engagement, as_of_days: i64) -> GetProgressRequest {
    GetProgressRequest { engagement: e.name.clone(), as_of: Some(timestamp_in(as_of_days * DAY)), ..Default::default() }
}

fn at_risk(p: &Progress) -> BTreeSet<String> {
    p.at_risk.iter().cloned().collect()
}

fn names(es: &[&Engagement]) -> BTreeSet<String> {
    es.iter().map(|e| e.name.clone()).collect()
}

#[tokio::test]
async fn the_figures_of_one_engagement() {
    let f = fresh().await;
    let coach = f.coach("oujda_cefa", &["fr"], 30).await;
    let e = f.engagement("collective_startup", "oujda", 2).await;
    let (p0, p1) = (e.beneficiaries[0].as_str(), e.beneficiaries[1].as_str());
    held(&f, &[&e], 30, 120, &[(p0, true), (p1, false)]).await;
    held(&f, &[&e], 20, 60, &[(p0, true), (p1, true)]).await;
    // Neither a future session nor a cancelled one counts.
    let future = common::session_message(&[&e], "", timestamp_in(2 * DAY), timestamp_in(2 * DAY + 3600));
    f.schedule(&f.admin, future).await.expect("future");
    let dropped = f.schedule(&f.admin, f.past_session(&e, 10, 60)).await.expect("past");
    f.cancel(&f.admin, &dropped.name, "nobody came").await.expect("cancel");
    let plan = milestone_name(&e, "business_plan_validated");
    f.complete(&coach.jwt, &plan, &["documents/plan.pdf"]).await.expect("complete");
    f.verify(&coach.jwt, &plan).await.expect("verify");
    // A completed, not yet verified milestone is not counted as verified.
    f.complete(&coach.jwt, &milestone_name(&e, "legal_registration"), &["documents/rc.pdf"]).await.expect("complete");

    let now = progress(&f, GetProgressRequest { engagement: e.name.clone(), ..Default::default() }).await;
    assert_eq!(now.engagements, 1);
    assert_eq!(now.sessions_held, 2);
    assert!((now.hours - 3.0).abs() < 1e-9, "2 h + 1 h held: {}", now.hours);
    assert!((now.attendance_rate - 0.75).abs() < 1e-9, "3 present of 4 expected: {}", now.attendance_rate);
    assert_eq!(now.milestones_verified, 1);
    assert_eq!(now.milestones_total, 6);
    assert!(now.at_risk.is_empty(), "new, nothing overdue: {:?}", now.at_risk);
    assert_eq!(f.get_engagement(&f.admin, &e.name).await.expect("e").hours_used, 3.0, "the same hours on the engagement");

    let later = progress(&f, of(&e, 400)).await;
    assert_eq!(at_risk(&later), names(&[&e]), "in 400 days every milestone is overdue");
    assert_eq!((later.sessions_held, later.milestones_verified, later.milestones_total), (2, 1, 6));
}

#[tokio::test]
async fn cohorts_by_window_zone_and_office() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 30).await;
    f.coach("tanger_technopark", &["fr"], 30).await;
    let e1 = f.engagement("collective_startup", "oujda", 1).await;
    let e2 = f.engagement("job_placement", "oujda", 1).await;
    let e3 = f.engagement("collective_startup", "tanger", 2).await;
    let mdj = f.coach("tanger_maison_des_jeunes", &["fr"], 30).await;
    let e4 = f.engagement("job_placement", "tanger", 1).await;
    assert_eq!(e4.coach, mdj.name(), "the new, unloaded coach");

    held(&f, &[&e1], 50, 60, &[(&e1.beneficiaries[0], true)]).await;
    // A workshop of two engagements is one session, however many engagements it serves.
    held(&f, &[&e1, &e2], 40, 60, &[(&e1.beneficiaries[0], true), (&e2.beneficiaries[0], true)]).await;
    held(&f, &[&e3], 30, 120, &[(&e3.beneficiaries[0], true), (&e3.beneficiaries[1], false)]).await;

    let cohort = |window: &str, zone: &str, office: &str| GetProgressRequest {
        window: window.into(),
        zone: zone.into(),
        office: office.into(),
        ..Default::default()
    };
    let everything = progress(&f, cohort("", "", "")).await;
    assert_eq!(everything.engagements, 4);
    assert_eq!(everything.sessions_held, 3, "the workshop once");
    assert!((everything.hours - 4.0).abs() < 1e-9, "{}", everything.hours);
    assert!((everything.attendance_rate - 0.8).abs() < 1e-3, "4 present of 5: {}", everything.attendance_rate);
    assert_eq!(everything.milestones_total, 6 + 4 + 6 + 4);

    let oujda = progress(&f, cohort("", "oujda", "")).await;
    assert_eq!((oujda.engagements, oujda.sessions_held, oujda.milestones_total), (2, 2, 10));
    assert!((oujda.hours - 2.0).abs() < 1e-9, "{}", oujda.hours);
    assert!((oujda.attendance_rate - 1.0).abs() < 1e-9, "{}", oujda.attendance_rate);

    let startups = progress(&f, cohort("collective_startup", "", "")).await;
    assert_eq!((startups.engagements, startups.milestones_total), (2, 12));
    let tanger_startups = progress(&f, cohort("collective_startup", "tanger", "")).await;
    assert_eq!((tanger_startups.engagements, tanger_startups.sessions_held), (1, 1));
    assert!((tanger_startups.attendance_rate - 0.5).abs() < 1e-9);

    let technopark = progress(&f, cohort("", "", "offices/tanger_technopark")).await;
    assert_eq!((technopark.engagements, technopark.milestones_total), (1, 6), "only e3's coach works there");
    let maison = progress(&f, cohort("", "", "offices/tanger_maison_des_jeunes")).await;
    assert_eq!((maison.engagements, maison.sessions_held, maison.milestones_total), (1, 0, 4));
    assert_eq!(maison.attendance_rate, 0.0, "no held session: 0, not NaN");

    let far = progress(&f, GetProgressRequest { as_of: Some(timestamp_in(400 * DAY)), ..cohort("", "", "") }).await;
    assert_eq!(at_risk(&far), names(&[&e1, &e2, &e3, &e4]));
}

#[tokio::test]
async fn an_overdue_milestone_puts_an_engagement_at_risk_until_verified() {
    let f = fresh().await;
    let coach = f.coach("tanger_technopark", &["fr"], 30).await;
    let job = f.engagement("job_placement", "tanger", 1).await;
    let contract = common::milestone(&job, "contract_signed").clone();
    // Due in 15 days: fine in 10 days, overdue in 20 (the engagement is then 20 days old: too
    // young for the no-session rule).
    assert!(progress(&f, of(&job, 10)).await.at_risk.is_empty(), "nothing due yet");
    assert_eq!(at_risk(&progress(&f, of(&job, 20)).await), names(&[&job]), "contract_signed ({}) is overdue", contract.due_date);

    f.complete(&f.beneficiary_of(&job), &contract.name, &["documents/contract.pdf"]).await.expect("complete");
    assert_eq!(at_risk(&progress(&f, of(&job, 20)).await), names(&[&job]), "completed is not enough");
    f.verify(&coach.jwt, &contract.name).await.expect("verify");
    assert!(progress(&f, of(&job, 20)).await.at_risk.is_empty(), "verified: no longer at risk");
    assert_eq!(at_risk(&progress(&f, of(&job, 50)).await), names(&[&job]), "first_month_completed is overdue then");
}

#[tokio::test]
async fn no_held_session_in_thirty_days_puts_an_older_engagement_at_risk() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 30).await;
    let recent = f.engagement("collective_startup", "oujda", 1).await;
    let stale = f.engagement("collective_startup", "oujda", 1).await;
    let silent = f.engagement("collective_startup", "oujda", 1).await;
    let young = f.engagement("collective_startup", "oujda", 1).await;
    // The only way to make an engagement 40 days old without waiting 40 days. Its milestones
    // stay due from today, so none is overdue: only the session rule can apply.
    let old: Vec<uuid::Uuid> = [&recent, &stale, &silent].iter().map(|e| common_id(e)).collect();
    sqlx::query("UPDATE coaching.engagements SET created_at = now() - interval '40 days' WHERE id = ANY($1)")
        .bind(&old)
        .execute(&f.pool)
        .await
        .expect("backdate");
    held(&f, &[&recent], 48, 60, &[(&recent.beneficiaries[0], true)]).await;
    held(&f, &[&stale], 35 * 24, 60, &[(&stale.beneficiaries[0], true)]).await;

    let cohort = progress(&f, GetProgressRequest { zone: "oujda".into(), ..Default::default() }).await;
    assert_eq!(cohort.engagements, 4);
    assert_eq!(
        at_risk(&cohort),
        names(&[&stale, &silent]),
        "40 days old with a session 2 days ago: fine; held 35 days ago or never: at risk; 0 days old: too young to judge"
    );
    assert!(!cohort.at_risk.contains(&young.name));
}

fn common_id(e: &Engagement) -> uuid::Uuid {
    uuid::Uuid::parse_str(e.name.trim_start_matches("engagements/")).expect("engagement id")
}

#[tokio::test]
async fn a_session_held_after_as_of_does_not_count_for_the_thirty_days_before_it() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 30).await;
    let e = f.engagement("collective_startup", "oujda", 1).await;
    sqlx::query("UPDATE coaching.engagements SET created_at = now() - interval '60 days' WHERE id = $1")
        .bind(common_id(&e))
        .execute(&f.pool)
        .await
        .expect("backdate");
    held(&f, &[&e], 48, 60, &[(&e.beneficiaries[0], true)]).await;
    assert!(progress(&f, of(&e, 0)).await.at_risk.is_empty(), "as of now: a session two days ago");
    // As of five days ago the engagement was 55 days old and its only session had not happened yet.
    let back_then = progress(&f, of(&e, -5)).await;
    assert_eq!(at_risk(&back_then), names(&[&e]), "no session in the 30 days before as_of: {back_then:?}");
}
