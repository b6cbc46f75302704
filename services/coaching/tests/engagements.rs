//! Engagements: the plan each window gets, the coach suggested by zone, language and load, the
//! coach history kept by ReassignCoach, idempotent creation, one engagement per award, and the
//! award event (`grants.award.created`) opening the engagement exactly once however often it is
//! delivered.

mod common;

use std::collections::HashSet;

use common::{
    JOB_PLAN, STARTUP_PLAN, assert_refused, award_event, award_message, bearer, engagement_message, eventually, fresh, milestone_state,
};
use tonic::Code;
use uuid::Uuid;
use work4life_proto::coaching::{
    CreateEngagementRequest, Engagement, EngagementState, ListEngagementsRequest, MilestoneState, ReassignCoachRequest,
};

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

#[tokio::test]
async fn every_window_gets_its_plan_and_default_budget() {
    let f = fresh().await;
    let (_, officer) = f.officer("tanger");
    let windows: [(&str, Option<&[&str]>, i32); 6] = [
        ("collective_startup", Some(&STARTUP_PLAN), 40),
        ("individual_startup", Some(&STARTUP_PLAN), 30),
        ("job_placement", Some(&JOB_PLAN), 10),
        ("association_professionalisation", None, 16),
        ("enterprise_marketing", None, 8),
        ("labour_law_advice", None, 4),
    ];
    for (window, plan, hours) in windows {
        let e = f.create_engagement(&officer, engagement_message(window, "tanger", 2)).await.expect(window);
        let codes: Vec<&str> = e.milestones.iter().map(|m| m.code.as_str()).collect();
        match plan {
            Some(plan) => assert_eq!(codes, plan, "{window}: the plan's milestones, in order"),
            None => {
                assert!(!codes.is_empty(), "{window}: a plan");
                assert_eq!(codes.iter().collect::<HashSet<_>>().len(), codes.len(), "{window}: distinct codes {codes:?}");
            }
        }
        assert_eq!(e.hours_budget, hours, "{window}: the window's default budget");
        assert_eq!(e.window, window);
        assert_eq!(EngagementState::try_from(e.state), Ok(EngagementState::Active));
        assert_eq!(e.hours_used, 0.0);
        assert!(e.milestones.iter().all(|m| milestone_state(m) == MilestoneState::Pending), "{window}: all pending");
        let dues: Vec<&str> = e.milestones.iter().map(|m| m.due_date.as_str()).collect();
        assert!(dues.windows(2).all(|w| w[0] < w[1]), "{window}: due dates in order {dues:?}");
        assert!(dues[0] > today().as_str(), "{window}: first milestone due after today: {dues:?}");
        for m in &e.milestones {
            assert_eq!(m.name, format!("{}/milestones/{}", e.name, m.code));
            assert!(!m.title.is_empty());
        }
        assert_eq!(f.get_engagement(&f.admin, &e.name).await.expect("read back"), e, "{window}: read back the same");
    }

    let mut budgeted = engagement_message("collective_startup", "tanger", 3);
    budgeted.hours_budget = 25;
    assert_eq!(f.create_engagement(&officer, budgeted).await.expect("budgeted").hours_budget, 25, "an explicit budget is kept");
}

#[tokio::test]
async fn the_suggested_coach_works_in_the_zone_speaks_a_language_and_has_the_least_load() {
    let f = fresh().await;
    // A: French, 10 h a week. B: Arabic, 40 h a week. C: in Rabat, speaks everything.
    let a = f.coach("oujda_cefa", &["fr"], 10).await;
    let b = f.coach("oujda_cefa", &["ar"], 40).await;
    let c = f.coach("rabat_ocean", &["ar", "fr", "en"], 60).await;
    let (officer, officer_jwt) = f.officer("oujda");
    let open = |languages: &[&str]| {
        let mut e = engagement_message("individual_startup", "oujda", 1);
        e.languages = languages.iter().map(|l| (*l).to_string()).collect();
        e
    };
    // Arabic: only B speaks it in the zone (C does, but works in Rabat).
    let e1 = f.create_engagement(&officer_jwt, open(&["ar"])).await.expect("e1");
    assert_eq!(e1.coach, b.name(), "the zone's Arabic speaker");
    // English: nobody speaks it; least load per weekly hour: A 0/10 < B 1/40.
    let e2 = f.create_engagement(&officer_jwt, open(&["en"])).await.expect("e2");
    assert_eq!(e2.coach, a.name(), "least loaded");
    // English again: A 1/10 = 0.1 > B 1/40 = 0.025.
    let e3 = f.create_engagement(&officer_jwt, open(&["en"])).await.expect("e3");
    assert_eq!(e3.coach, b.name(), "load per weekly hour, not absolute load");
    // French: A speaks it, though A is now more loaded (0.1) than B (2/40 = 0.05).
    let e4 = f.create_engagement(&officer_jwt, open(&["fr"])).await.expect("e4");
    assert_eq!(e4.coach, a.name(), "language before load");
    // Any listed language counts: Berber first, then Arabic.
    let e5 = f.create_engagement(&officer_jwt, open(&["zgh", "ar"])).await.expect("e5");
    assert_eq!(e5.coach, b.name(), "a later-listed language still counts");

    for e in [&e1, &e2, &e3, &e4, &e5] {
        assert_eq!(e.coach_history.len(), 1, "one assignment: {:?}", e.coach_history);
        let first = &e.coach_history[0];
        assert_eq!(first.coach, e.coach);
        assert_eq!(first.assigned_by, officer, "who opened it");
        assert!(!first.reason.is_empty());
        assert!(first.assign_time.is_some());
    }
    let mut client = f.client().await;
    for (coach, expected) in [(&a, 2), (&b, 3), (&c, 0)] {
        // C works in Rabat: never suggested for Oujda, though they speak every language.
        let read = client
            .get_coach(bearer(work4life_proto::coaching::GetCoachRequest { name: coach.name() }, &f.admin))
            .await
            .expect("coach")
            .into_inner()
            .coach
            .expect("coach");
        assert_eq!(read.active_engagements, expected, "{}", coach.name());
    }
}

#[tokio::test]
async fn reassigning_a_coach_keeps_the_history() {
    let f = fresh().await;
    let a = f.coach("oujda_cefa", &["fr"], 20).await;
    let e = f.engagement("collective_startup", "oujda", 2).await;
    assert_eq!(e.coach, a.name());
    let b = f.coach("oujda_cefa", &["ar"], 20).await;
    let (officer, officer_jwt) = f.officer("oujda");
    let mut c = f.client().await;
    let reassign =
        |name: &str, coach: &str, reason: &str| ReassignCoachRequest { name: name.into(), coach: coach.into(), reason: reason.into() };

    let moved = c
        .reassign_coach(bearer(reassign(&e.name, &b.name(), "the team prefers Arabic"), &officer_jwt))
        .await
        .expect("an officer of the zone reassigns")
        .into_inner()
        .engagement
        .expect("engagement");
    assert_eq!(moved.coach, b.name());
    let history: Vec<(&str, &str)> = moved.coach_history.iter().map(|h| (h.coach.as_str(), h.assigned_by.as_str())).collect();
    assert_eq!(history, [(a.name().as_str(), f.admin_subject.as_str()), (b.name().as_str(), officer.as_str())], "oldest first");
    assert_eq!(moved.coach_history[1].reason, "the team prefers Arabic");
    assert_ne!(moved.etag, e.etag, "a new version");
    assert_eq!(f.get_engagement(&f.admin, &e.name).await.expect("read back"), moved);
    assert_eq!(f.audit("coaching.ReassignCoach", &e.name).await.len(), 1);

    // The engagement is now in B's list, not in A's.
    let listed = |jwt: String| {
        let mut c = c.clone();
        async move {
            c.list_engagements(bearer(ListEngagementsRequest::default(), &jwt))
                .await
                .expect("list")
                .into_inner()
                .engagements
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(b.jwt.clone()).await, [e.name.as_str()]);
    assert!(listed(a.jwt.clone()).await.is_empty(), "the former coach no longer sees it");

    // Back to A, by the admin: three entries.
    let back = c.reassign_coach(bearer(reassign(&e.name, &a.name(), "B is on leave"), &f.admin)).await.expect("admin").into_inner();
    let history = back.engagement.expect("engagement").coach_history;
    assert_eq!(history.iter().map(|h| h.coach.as_str()).collect::<Vec<_>>(), [a.name(), b.name(), a.name()]);

    // Who may not.
    let refusals = [("a coach", a.jwt.clone(), Code::PermissionDenied), ("an auditor", f.auditor().1, Code::PermissionDenied)];
    for (who, jwt, code) in refusals {
        assert_refused(c.reassign_coach(bearer(reassign(&e.name, &b.name(), "mine"), &jwt)).await, code, "", who);
    }
    let (_, rabat) = f.officer("rabat_sale");
    assert_refused(c.reassign_coach(bearer(reassign(&e.name, &b.name(), "mine"), &rabat)).await, Code::NotFound, "", "another zone");
    assert_eq!(f.get_engagement(&f.admin, &e.name).await.expect("unchanged").coach_history.len(), 3, "refusals change nothing");
}

#[tokio::test]
async fn create_engagement_is_idempotent_and_one_per_award() {
    let f = fresh().await;
    f.coach("tanger_technopark", &["fr"], 20).await;
    let (_, officer) = f.officer("tanger");
    let mut c = f.client().await;
    let mut awarded = engagement_message("collective_startup", "tanger", 3);
    awarded.award = format!("awards/{}", Uuid::now_v7());
    let request = CreateEngagementRequest { engagement: Some(awarded.clone()), request_id: Uuid::new_v4().to_string() };

    let first = c.create_engagement(bearer(request.clone(), &officer)).await.expect("first").into_inner();
    let replay = c.create_engagement(bearer(request.clone(), &officer)).await.expect("a retry is answered").into_inner();
    assert_eq!(replay, first, "the retry answers the first response");
    assert_eq!(f.count("SELECT count(*) FROM coaching.engagements").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM coaching.audit_log WHERE action = 'coaching.CreateEngagement'").await, 1);

    // The same request id for another request.
    let other = CreateEngagementRequest { engagement: Some(engagement_message("job_placement", "tanger", 1)), ..request.clone() };
    let status = assert_refused(c.create_engagement(bearer(other, &officer)).await, Code::InvalidArgument, "", "request id reused");
    assert_eq!(common::fields(&status), ["request_id"]);

    // The same award again, with a new request id.
    let again = CreateEngagementRequest { engagement: Some(awarded), request_id: Uuid::new_v4().to_string() };
    assert_refused(c.create_engagement(bearer(again, &officer)).await, Code::AlreadyExists, "ENGAGEMENT_EXISTS", "the award has one");
    assert_eq!(f.count("SELECT count(*) FROM coaching.engagements").await, 1, "still one");
    assert_eq!(f.count("SELECT count(*) FROM coaching.milestones").await, 6, "one plan");

    // Advice engagements have no award: two for the same application are two engagements.
    let advice = engagement_message("labour_law_advice", "tanger", 1);
    f.create_engagement(&officer, advice.clone()).await.expect("advice");
    f.create_engagement(&officer, advice).await.expect("advice again");
    assert_eq!(f.count("SELECT count(*) FROM coaching.engagements").await, 3);
}

#[tokio::test]
async fn an_award_event_opens_the_award_engagement() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 10).await;
    let arabic = f.coach("oujda_cefa", &["ar"], 10).await;
    let award = award_message("collective_startup", "oujda", 3, &["ar"]);
    f.publish(&award_event(Uuid::now_v7(), &award)).await;

    let e = f.engagement_for_award(&award.award).await;
    assert_eq!(e.award, award.award);
    assert_eq!(e.application, award.application);
    assert_eq!(e.window, "collective_startup");
    assert_eq!(e.zone, "oujda");
    assert_eq!(e.beneficiaries, award.beneficiaries, "the representative first");
    assert_eq!(e.beneficiary_accounts, award.beneficiary_accounts);
    assert_eq!(e.languages, award.languages);
    assert_eq!(e.hours_budget, 40, "the window's default");
    assert_eq!(e.milestones.iter().map(|m| m.code.as_str()).collect::<Vec<_>>(), STARTUP_PLAN);
    assert_eq!(e.coach, arabic.name(), "suggested by language");
    assert_eq!(e.coach_history.len(), 1);
    let audit = f.audit("coaching.OpenEngagementForAward", &e.name).await;
    assert_eq!(audit.len(), 1, "audited");
    assert_eq!(audit[0].0, "system");

    // The beneficiaries' accounts see it.
    let mine = f.get_engagement(&f.beneficiary(&award.beneficiary_accounts[2]), &e.name).await.expect("a beneficiary sees theirs");
    assert_eq!(mine.name, e.name);
    // A hand-made engagement for the same award is refused.
    let mut by_hand = engagement_message("collective_startup", "oujda", 1);
    by_hand.award = award.award.clone();
    assert_refused(f.create_engagement(&f.admin, by_hand).await, Code::AlreadyExists, "ENGAGEMENT_EXISTS", "opened by the event");
}

#[tokio::test]
async fn an_award_delivered_twice_opens_one_engagement() {
    let f = fresh().await;
    f.coach("tanger_technopark", &["fr"], 10).await;
    let award = award_message("job_placement", "tanger", 1, &["fr"]);
    let event = award_event(Uuid::now_v7(), &award);
    // The same event twice (a relay that published and died before marking), then the same
    // award under another event id (grants retried its own transaction).
    f.publish(&event).await;
    f.publish(&event).await;
    let second_id = Uuid::now_v7();
    f.publish(&award_event(second_id, &award)).await;
    // Another kind of grants event is not an award.
    let mut other = award_event(Uuid::now_v7(), &award_message("job_placement", "tanger", 1, &["fr"]));
    other.r#type = "grants.tranche.released".into();
    f.publish(&other).await;
    // A later award: once it is open, every earlier entry has been handled (the stream is read in order).
    let sentinel = award_message("job_placement", "tanger", 1, &["fr"]);
    f.publish(&award_event(Uuid::now_v7(), &sentinel)).await;
    f.engagement_for_award(&sentinel.award).await;

    let e = f.engagement_for_award(&award.award).await;
    assert_eq!(f.count(&format!("SELECT count(*) FROM coaching.engagements WHERE award = '{}'", award.award)).await, 1, "one engagement");
    assert_eq!(f.count("SELECT count(*) FROM coaching.engagements").await, 2, "the award's and the sentinel's");
    assert_eq!(
        f.count(&format!("SELECT count(*) FROM coaching.milestones WHERE engagement_id = '{}'", e.name.trim_start_matches("engagements/")))
            .await,
        4
    );
    assert_eq!(f.count("SELECT count(*) FROM coaching.audit_log WHERE action = 'coaching.OpenEngagementForAward'").await, 2);
    for id in [event.id.clone(), second_id.to_string()] {
        assert_eq!(
            f.count(&format!("SELECT count(*) FROM coaching.inbox WHERE consumer = 'coaching' AND event_id = '{id}'")).await,
            1,
            "event {id} recorded once in the inbox"
        );
    }
    let pending = eventually("every entry acknowledged", common::EVENT_WAIT, || async {
        let n = f.pending_award_events().await;
        (n == 0).then_some(n)
    })
    .await;
    assert_eq!(pending, 0, "no entry left pending (no failed handling)");
}

#[tokio::test]
async fn engagements_are_listed_newest_first_with_filters_and_pages() {
    let f = fresh().await;
    let oujda_coach = f.coach("oujda_cefa", &["fr"], 30).await;
    f.coach("tanger_technopark", &["fr"], 30).await;
    let mut made: Vec<Engagement> = Vec::new();
    for (window, zone) in [
        ("collective_startup", "oujda"),
        ("job_placement", "oujda"),
        ("collective_startup", "tanger"),
        ("collective_startup", "oujda"),
        ("labour_law_advice", "oujda"),
    ] {
        made.push(f.engagement(window, zone, 1).await);
    }
    let mut c = f.client().await;
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_engagements(bearer(
                ListEngagementsRequest { zone: "oujda".into(), page_size: 2, page_token: token.clone(), ..Default::default() },
                &f.admin,
            ))
            .await
            .expect("list")
            .into_inner();
        pages.extend(page.engagements.into_iter().map(|e| e.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = made.iter().rev().filter(|e| e.zone == "oujda").map(|e| e.name.clone()).collect();
    assert_eq!(pages, expected, "newest first, oujda only, across pages");

    let startups = c
        .list_engagements(bearer(
            ListEngagementsRequest { window: "collective_startup".into(), coach: oujda_coach.name(), ..Default::default() },
            &f.admin,
        ))
        .await
        .expect("by window and coach")
        .into_inner()
        .engagements;
    assert_eq!(startups.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), [made[3].name.as_str(), made[0].name.as_str()]);

    // A page token is bound to its filter.
    let first = c
        .list_engagements(bearer(ListEngagementsRequest { zone: "oujda".into(), page_size: 1, ..Default::default() }, &f.admin))
        .await
        .expect("page")
        .into_inner();
    let switched = c
        .list_engagements(bearer(
            ListEngagementsRequest { zone: "tanger".into(), page_size: 1, page_token: first.next_page_token, ..Default::default() },
            &f.admin,
        ))
        .await;
    let status = assert_refused(switched, Code::InvalidArgument, "", "a token of another filter");
    assert_eq!(common::fields(&status), ["page_token"]);
}

#[tokio::test]
async fn racing_creations_of_one_award_open_one_engagement() {
    let f = fresh().await;
    f.coach("rabat_ocean", &["fr"], 20).await;
    let (_, manager) = f.manager("rabat_sale");
    let mut awarded = engagement_message("individual_startup", "rabat_sale", 1);
    awarded.award = format!("awards/{}", Uuid::now_v7());
    let client = f.client().await;
    let results = futures::future::join_all((0..8).map(|_| {
        let mut c = client.clone();
        let request = CreateEngagementRequest { engagement: Some(awarded.clone()), request_id: Uuid::new_v4().to_string() };
        let jwt = manager.clone();
        async move { c.create_engagement(bearer(request, &jwt)).await.map(|r| r.into_inner()) }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one opens it: {results:?}");
    for result in results.into_iter().filter(Result::is_err) {
        assert_refused(result, Code::AlreadyExists, "ENGAGEMENT_EXISTS", "a loser of the race");
    }
    assert_eq!(f.count("SELECT count(*) FROM coaching.engagements").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM coaching.milestones").await, 6);
    assert_eq!(f.count("SELECT count(*) FROM coaching.coach_assignments").await, 1);
}
