//! Faults (issue #9): Redis stopped for 10 s in the middle of a stream of submissions — every
//! notification is delivered once afterwards. Submissions go through the real binary, split into
//! five processes; Redis is the world's own redis-server, stopped (SHUTDOWN, with its append-only
//! file) and started again on the same port. `W4L_FAULT_SUBMISSIONS` sets how many (default 120;
//! docs/reliability.md quotes a run of 1,000).

use std::{collections::HashMap, time::Duration};

use work4life_proto::intake::{
    Applicant, Application, CreateApplicantRequest, CreateApplicationRequest, Gender, ListCallsRequest, Member, MemberRole,
    SubmitApplicationRequest, Window, intake_service_client::IntakeServiceClient,
};
use work4life_testkit::bearer;
use work4life_tests::{
    steps::{consent, passport},
    world::{Mode, World},
};

fn person(i: usize, phone: &str) -> Applicant {
    Applicant {
        given_name: "Awa".into(),
        family_name: format!("Fault{i:05}"),
        birth_date: format!("199{}-0{}-1{}", i % 10, 1 + i % 9, i % 10),
        gender: Gender::Female as i32,
        nationality: "CI".into(),
        languages: vec![["fr", "ar", "en"][i % 3].into()],
        zone: "rabat_sale".into(),
        phone: phone.into(),
        identity_document: Some(passport(format!("F{}", &phone[4..]), "CI")),
        consent: Some(consent()),
        ..Applicant::default()
    }
}

#[tokio::test]
async fn redis_stopped_for_ten_seconds_during_submissions_loses_and_repeats_no_message() {
    let n: usize = std::env::var("W4L_FAULT_SUBMISSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let world = World::start(Mode::Split).await.expect("world");
    let (_, officer) = world.token("officer", Some(uuid::Uuid::now_v7()), &["rabat_sale"]);
    let mut intake = IntakeServiceClient::new(world.channel("intake"));
    let call = intake
        .list_calls(bearer(
            ListCallsRequest { window: Window::IndividualStartup as i32, zone: "rabat_sale".into(), ..Default::default() },
            &officer,
        ))
        .await
        .expect("calls")
        .into_inner()
        .calls
        .into_iter()
        .next()
        .expect("an open individual start-up call");
    let base = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes")) % 90_000_000;
    let mut phones = HashMap::new();
    let started = std::time::Instant::now();
    let mut outage: Option<tokio::task::JoinHandle<()>> = None;
    for i in 0..n {
        if i == n / 5 {
            // Redis goes away for 10 s while the submissions keep coming.
            world.redis.stop().await;
            let started = tokio::time::Instant::now();
            outage = Some(tokio::spawn(async move { tokio::time::sleep_until(started + Duration::from_secs(10)).await }));
        }
        if let Some(o) = &outage
            && o.is_finished()
        {
            world.redis.restart().await;
            outage = None;
        }
        let phone = format!("+2126{:08}", base + i as u64);
        let applicant = intake
            .create_applicant(bearer(
                CreateApplicantRequest { applicant: Some(person(i, &phone)), request_id: uuid::Uuid::new_v4().to_string() },
                &officer,
            ))
            .await
            .unwrap_or_else(|e| panic!("submission {i}: registration refused: {e:?}"))
            .into_inner()
            .applicant
            .expect("applicant")
            .name;
        let draft = intake
            .create_application(bearer(
                CreateApplicationRequest {
                    application: Some(Application {
                        call: call.name.clone(),
                        zone: "rabat_sale".into(),
                        title: format!("Épicerie {i}"),
                        summary: "A neighbourhood grocery".into(),
                        members: vec![Member {
                            applicant: applicant.clone(),
                            role: MemberRole::Representative as i32,
                            display_name: String::new(),
                        }],
                        provided_documents: vec!["business_plan".into()],
                        ..Application::default()
                    }),
                    request_id: uuid::Uuid::new_v4().to_string(),
                },
                &officer,
            ))
            .await
            .unwrap_or_else(|e| panic!("submission {i}: draft refused: {e:?}"))
            .into_inner()
            .application
            .expect("draft");
        intake
            .submit_application(bearer(SubmitApplicationRequest { name: draft.name, etag: String::new() }, &officer))
            .await
            .unwrap_or_else(|e| panic!("submission {i}: submit refused: {e:?}"));
        phones.insert(phone, applicant);
    }
    if outage.take().is_some() {
        // Fewer submissions than the outage lasted: wait it out, then bring Redis back.
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
        world.redis.restart().await;
    }
    let submitting = started.elapsed();
    // Each person: a welcome and a submission receipt, each exactly once.
    let sent = world.sms.wait_accepted(2 * n, Duration::from_secs(300)).await;
    let caught_up = started.elapsed();
    let mut per_phone: HashMap<&str, usize> = HashMap::new();
    for request in &sent {
        *per_phone.entry(request.body["to"].as_str().unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(per_phone.len(), n, "every person heard");
    assert!(per_phone.values().all(|&count| count == 2), "two messages each, once: {:?}", per_phone.values().filter(|&&c| c != 2).count());
    assert_eq!(world.sms.distinct_accepted_keys(), 2 * n, "no message sent twice");
    let notifications = world.pool("notifications").await.expect("pool");
    let (submitted, not_sent): (i64, i64) =
        sqlx::query_as("SELECT count(*) FILTER (WHERE message_type = 'intake.application.submitted'), count(*) FILTER (WHERE state <> 'sent') FROM messages")
            .fetch_one(&notifications)
            .await
            .expect("messages");
    assert_eq!((submitted, not_sent), (n as i64, 0));
    println!(
        "faults: {n} submissions in {:.1} s with Redis down 10 s; all {} messages delivered once {:.1} s after the start",
        submitting.as_secs_f64(),
        2 * n,
        caught_up.as_secs_f64()
    );
    world.stop().await.expect("clean stop");
}

/// Registers `person` with `request_id`, retrying while the process is down or restarting (the
/// same request id each time, so a registration that committed before the crash is answered
/// again, not made twice).
async fn register_retrying(channel: tonic::transport::Channel, token: String, person: Applicant, request_id: String) -> (String, usize) {
    let mut intake = IntakeServiceClient::new(channel);
    for attempt in 1..=200 {
        let request = CreateApplicantRequest { applicant: Some(person.clone()), request_id: request_id.clone() };
        match intake.create_applicant(bearer(request, &token)).await {
            Ok(answer) => return (answer.into_inner().applicant.expect("applicant").name, attempt),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Aborted
                ) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("registration refused: {status:?}"),
        }
    }
    panic!("intake did not come back within 20 s");
}

#[tokio::test]
async fn a_service_killed_mid_stream_and_restarted_duplicates_nothing() {
    let mut world = World::start(Mode::Split).await.expect("world");
    let (_, officer) = world.token("officer", Some(uuid::Uuid::now_v7()), &["rabat_sale"]);
    let n = 40;
    let base = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes")) % 90_000_000;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let phone = format!("+2126{:08}", base + i as u64);
        let (channel, token) = (world.channel("intake"), officer.clone());
        tasks.spawn(async move {
            // A steady stream: one registration every 25 ms.
            tokio::time::sleep(Duration::from_millis(25 * i as u64)).await;
            let (name, attempts) = register_retrying(channel, token, person(i, &phone), uuid::Uuid::new_v4().to_string()).await;
            (phone, name, attempts)
        });
    }
    // Mid-stream, intake's process is killed (no drain) and started again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let intake = world.suite.processes.iter_mut().find(|p| p.target == "intake").expect("intake's process");
    intake.crash_and_restart().await.expect("intake restarts");
    let mut done = Vec::new();
    while let Some(result) = tasks.join_next().await {
        done.push(result.expect("task"));
    }
    let retried = done.iter().filter(|(_, _, attempts)| *attempts > 1).count();
    assert!(retried > 0, "the crash happened while registrations were in flight");
    let pool = world.pool("intake").await.expect("pool");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM applicants WHERE family_name LIKE 'Fault%'").fetch_one(&pool).await.expect("count");
    assert_eq!(stored, n as i64, "each person registered once, however often the client retried");
    let sent = world.sms.wait_accepted(n, Duration::from_secs(60)).await;
    let phones: std::collections::HashSet<&str> = sent.iter().map(|r| r.body["to"].as_str().unwrap_or_default()).collect();
    assert_eq!(phones.len(), n, "every person welcomed");
    assert_eq!(world.sms.distinct_accepted_keys(), n, "once each");
    println!("faults: intake killed mid-stream; {retried} of {n} registrations retried by their clients; {n} stored, {n} welcomed once");
    world.stop().await.expect("clean stop");
}

/// Callers in a closed loop on WhoAmI-like cheap reads for `secs`: (latencies of admitted calls
/// in µs, latencies of shed calls in µs, other codes seen).
async fn closed_loop(world: &World, token: &str, callers: usize, secs: u64) -> (Vec<u64>, Vec<u64>, Vec<tonic::Code>) {
    let stop = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (channel, token) = (world.channel("intake"), token.to_string());
        tasks.spawn(async move {
            let mut intake = IntakeServiceClient::new(channel);
            let (mut ok, mut shed, mut other) = (Vec::new(), Vec::new(), Vec::new());
            while tokio::time::Instant::now() < stop {
                let started = std::time::Instant::now();
                let request = ListCallsRequest { zone: "rabat_sale".into(), ..Default::default() };
                let answer = intake.list_calls(bearer(request, &token)).await;
                let micros = started.elapsed().as_micros() as u64;
                match answer {
                    Ok(_) => ok.push(micros),
                    Err(s) if s.code() == tonic::Code::ResourceExhausted => shed.push(micros),
                    Err(s) => other.push(s.code()),
                }
            }
            (ok, shed, other)
        });
    }
    let (mut ok, mut shed, mut other) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (o, s, x) = done.expect("caller");
        ok.extend(o);
        shed.extend(s);
        other.extend(x);
    }
    ok.sort_unstable();
    shed.sort_unstable();
    (ok, shed, other)
}

fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() { 0.0 } else { sorted[((sorted.len() - 1) as f64 * q) as usize] as f64 / 1000.0 }
}

#[tokio::test]
async fn three_times_capacity_is_shed_with_resource_exhausted() {
    // Capacity: 4 calls in flight per process (W4L_MAX_CONCURRENT_CALLS).
    let world = World::start_with(Mode::AllInOne, &[("W4L_MAX_CONCURRENT_CALLS", "4")]).await.expect("world");
    let (_, officer) = world.token("officer", Some(uuid::Uuid::now_v7()), &["rabat_sale"]);
    let (base_ok, base_shed, base_other) = closed_loop(&world, &officer, 4, 3).await;
    let (ok, shed, other) = closed_loop(&world, &officer, 12, 3).await;
    println!(
        "overload: at capacity (4 callers) {} calls, p50 {:.1} ms, p99 {:.1} ms, {} shed; at 3x (12 callers) {} admitted p50 {:.1} ms, p99 {:.1} ms, {} shed p50 {:.2} ms, p99 {:.2} ms",
        base_ok.len(),
        quantile_ms(&base_ok, 0.5),
        quantile_ms(&base_ok, 0.99),
        base_shed.len(),
        ok.len(),
        quantile_ms(&ok, 0.5),
        quantile_ms(&ok, 0.99),
        shed.len(),
        quantile_ms(&shed, 0.5),
        quantile_ms(&shed, 0.99),
    );
    assert!(base_other.is_empty() && other.is_empty(), "only OK or RESOURCE_EXHAUSTED: {base_other:?} {other:?}");
    assert!(!shed.is_empty(), "three times the capacity is shed in part");
    assert!(!ok.is_empty(), "and the rest is served");
    world.stop().await.expect("clean stop");
}

#[tokio::test]
async fn postgresql_restarted_under_load_loses_no_acknowledged_write_and_answers_unavailable() {
    let pg = match work4life_tests::private_postgres::PrivatePostgres::start() {
        Ok(pg) => pg,
        Err(e) => panic!("a private PostgreSQL server (initdb as the postgres user): {e:#}"),
    };
    let world = World::start_on(Mode::Split, &pg.server_url(), &[]).await.expect("world");
    let (_, officer) = world.token("officer", Some(uuid::Uuid::now_v7()), &["rabat_sale"]);
    let base = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes")) % 90_000_000;
    // Four callers register people without pause for 6 s; PostgreSQL restarts 1.5 s in.
    let stop = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..4u64 {
        let (channel, token) = (world.channel("intake"), officer.clone());
        tasks.spawn(async move {
            let mut intake = IntakeServiceClient::new(channel);
            let mut answers = Vec::new();
            let mut i = 0u64;
            while tokio::time::Instant::now() < stop {
                let phone = format!("+2126{:08}", base + caller * 100_000 + i);
                let request =
                    CreateApplicantRequest { applicant: Some(person(i as usize, &phone)), request_id: uuid::Uuid::new_v4().to_string() };
                let mut request = bearer(request, &token);
                request.set_timeout(Duration::from_secs(5));
                let answer = intake.create_applicant(request).await;
                answers.push(
                    answer.map(|a| a.into_inner().applicant.expect("applicant").name).map_err(|s| (s.code(), s.message().to_string())),
                );
                i += 1;
            }
            answers
        });
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let down = tokio::task::spawn_blocking(move || {
        let took = pg.restart().expect("pg_ctl restart");
        (pg, took)
    });
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.extend(done.expect("caller"));
    }
    let (pg, restart_took) = down.await.expect("restart");
    let acknowledged: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let refused: Vec<&(tonic::Code, String)> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    let wrong: Vec<_> =
        refused.iter().filter(|(code, _)| !matches!(code, tonic::Code::Unavailable | tonic::Code::DeadlineExceeded)).collect();
    println!(
        "faults: PostgreSQL restarted in {:.1} s under load: {} registrations acknowledged, {} refused ({:?})",
        restart_took.as_secs_f64(),
        acknowledged.len(),
        refused.len(),
        refused.iter().map(|(c, _)| format!("{c:?}")).collect::<std::collections::BTreeSet<_>>()
    );
    assert!(wrong.is_empty(), "callers must see UNAVAILABLE (or their deadline), not: {wrong:?}");
    // No acknowledged write lost.
    let pool = world.pool("intake").await.expect("pool");
    let ids: Vec<uuid::Uuid> = acknowledged.iter().map(|n| n.trim_start_matches("applicants/").parse().expect("uuid")).collect();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM applicants WHERE id = ANY($1)").bind(&ids).fetch_one(&pool).await.expect("count");
    assert_eq!(stored, ids.len() as i64, "every acknowledged registration is there");
    // The services recover by themselves: a registration now succeeds.
    let mut intake = IntakeServiceClient::new(world.channel("intake"));
    let phone = format!("+2126{:08}", base + 900_000);
    let after = intake
        .create_applicant(bearer(
            CreateApplicantRequest { applicant: Some(person(9, &phone)), request_id: uuid::Uuid::new_v4().to_string() },
            &officer,
        ))
        .await;
    assert!(after.is_ok(), "after the restart: {after:?}");
    world.stop().await.expect("clean stop");
    drop(pg);
}
