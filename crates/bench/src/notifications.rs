//! `work4life-bench notifications`: the notifications service's figures (docs/benchmarks.md,
//! "Notifications (#7)").
//!
//! Intake and notifications run in this process (`host::start`: migrations, seed, the outbox
//! relays, notifications' consumers and dispatcher, the full stack with token checks) on a
//! scratch database with a private `redis-server`; the SMS provider is the testkit's real HTTP
//! server on loopback, answering at once. `--people` people are registered through intake's API
//! (their welcome SMS are the warm-up); then each burst writes `--events` events
//! (`intake.application.submitted`, one member each, spread over the people) into intake's
//! outbox in ONE transaction, and the run waits until the provider has accepted every message.
//! Per message, the lag is the provider's receive time minus the event's outbox time (the
//! `occurred_at` stamped when the row was written); the throughput is the messages of the burst
//! over the time from its commit to the last message handed over. The provider's pace is set
//! high (`W4L_SMS_RATE`) so the figure is the service's, not a provider's contract.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use sqlx::Connection as _;
use tonic::Request;
use uuid::Uuid;
use work4life_platform::{
    auth::{Claims, InMemoryKeySource, RoleBinding, signing::SigningKey},
    config::PlatformConfig,
    host::{self, HostOptions},
};
use work4life_proto::intake::{
    Applicant, ApplicationSubmitted, Consent, CreateApplicantRequest, DocumentType, Gender, IdentityDocument, MemberRole, Recipient,
    intake_service_client::IntakeServiceClient,
};
use work4life_testkit::HttpProvider;

use crate::{connect, private_redis::PrivateRedis};

/// Options of `work4life-bench notifications`.
#[derive(clap::Args, Clone)]
pub struct NotificationsArgs {
    /// Events per burst.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Bursts; the figures are the medians.
    #[arg(long, default_value_t = 3)]
    bursts: usize,
    /// People registered beforehand (each event tells one of them).
    #[arg(long, default_value_t = 1_000)]
    people: usize,
    /// PostgreSQL server (no database).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Scratch database (dropped first).
    #[arg(long, default_value = "w4l_bench_notifications")]
    database: String,
    /// Redis; default: a private `redis-server` on a free loopback port.
    #[arg(long)]
    redis: Option<String>,
}

const ISSUER: &str = "https://identity.work4life.local";

fn token(key: &SigningKey, subject: &str, role: &str) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    key.sign(&Claims {
        iss: ISSUER.into(),
        aud: "work4life".into(),
        sub: subject.into(),
        exp: now + 6 * 3600,
        nbf: now - 5,
        iat: now,
        jti: Uuid::new_v4().to_string(),
        roles: vec![RoleBinding { role: role.into(), org: None, zones: vec![] }],
    })
}

fn person(i: usize) -> Applicant {
    let languages = match i % 3 {
        0 => vec!["fr".to_string()],
        1 => vec!["ar".to_string(), "fr".to_string()],
        _ => vec!["en".to_string()],
    };
    Applicant {
        given_name: "Awa".into(),
        family_name: format!("Bench{i:06}"),
        birth_date: format!("19{:02}-0{}-1{}", 70 + i % 30, 1 + i % 9, i % 10),
        gender: Gender::Female as i32,
        nationality: "SN".into(),
        languages,
        zone: "tanger".into(),
        phone: format!("+2126{:08}", 10_000_000 + i),
        email: String::new(),
        identity_document: Some(IdentityDocument {
            r#type: DocumentType::Passport as i32,
            number: format!("PB{:08}", i),
            number_hint: String::new(),
            issuing_country: "SN".into(),
        }),
        consent: Some(Consent {
            purpose: "program_participation".into(),
            text_version: "2026-01".into(),
            give_time: None,
            recorded_by: String::new(),
        }),
        ..Applicant::default()
    }
}

/// Runs the scenario.
pub fn run(args: &NotificationsArgs) -> anyhow::Result<()> {
    // The services get the runtime's two workers, as in a pod of two cores.
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(run_async(args))
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1000.0 }
}

async fn run_async(args: &NotificationsArgs) -> anyhow::Result<()> {
    let redis = PrivateRedis::start(&args.redis, 14);
    let database_url = format!("{}/{}", args.server, args.database);
    {
        let options: sqlx::postgres::PgConnectOptions = format!("{}/postgres", args.server).parse()?;
        let mut admin = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", args.database))).execute(&mut admin).await?;
    }
    let sms = HttpProvider::start().await;
    let key = SigningKey::generate("bench-notifications")?;
    let service_token = token(&key, &format!("accounts/{}", Uuid::now_v7()), "notifier")?;
    let admin = token(&key, &format!("accounts/{}", Uuid::now_v7()), "admin")?;
    let source = HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.clone()),
        ("W4L_REDIS_URL".to_string(), redis.url.clone()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
        ("W4L_SERVICE_TOKEN".to_string(), service_token),
        ("W4L_SMS_URL".to_string(), sms.url()),
        ("W4L_SMS_RATE".to_string(), "100000".to_string()),
        ("W4L_NOTIFY_QUIET_HOURS".to_string(), "off".to_string()),
        ("W4L_LOG".to_string(), "warn".to_string()),
    ]);
    let config = PlatformConfig::from_source(&source)?;
    let keys = Arc::new(InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk()] }));
    let services = vec![work4life_notifications::SERVICE, work4life_intake::SERVICE];
    let running = host::start(HostOptions { config, services: services.clone(), key_source: Some(keys), migrate: true }).await?;
    let notifications = work4life_platform::db::connect(&database_url, "notifications", 4).await?;
    let intake = work4life_platform::db::connect(&database_url, "intake", 4).await?;
    for (service, pool) in services.iter().zip([&notifications, &intake]) {
        if let Some(seed) = service.seed {
            seed(pool).await?;
        }
    }
    let channels = connect(&format!("http://{}", running.addr), 4).await?;
    println!("intake + notifications on {} (database {}), SMS provider {}", running.addr, args.database, sms.url());

    // The people, through intake's API; their welcome messages are the warm-up.
    let started = Instant::now();
    let mut people = Vec::with_capacity(args.people);
    let mut pending = futures::stream::FuturesUnordered::new();
    for i in 0..args.people {
        let mut client = IntakeServiceClient::new(channels[i % channels.len()].clone());
        let mut request = Request::new(CreateApplicantRequest { applicant: Some(person(i)), request_id: Uuid::new_v4().to_string() });
        request.metadata_mut().insert("authorization", format!("Bearer {admin}").parse()?);
        pending.push(async move { client.create_applicant(request).await });
        if pending.len() >= 16 || i + 1 == args.people {
            while let Some(done) = futures::StreamExt::next(&mut pending).await {
                people.push(done?.into_inner().applicant.context("applicant")?.name);
            }
        }
    }
    sms.wait_accepted(args.people, Duration::from_secs(600)).await;
    println!("{} people registered and welcomed in {:.1} s", people.len(), started.elapsed().as_secs_f64());

    let mut rates = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for burst in 1..=args.bursts {
        // This machine's PostgreSQL runs with autovacuum off: stand in for it between bursts, or
        // every burst scans the dead rows of the ones before.
        for table in ["messages", "inbox_items", "inbox"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&notifications).await?;
        }
        for table in ["outbox", "inbox", "audit_log"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&intake).await?;
        }
        let before = sms.accepted().len();
        let mut tx = intake.begin().await?;
        let written = Instant::now();
        for i in 0..args.events {
            let member =
                Recipient { applicant: people[i % people.len()].clone(), role: MemberRole::Representative as i32, ..Default::default() };
            let application = format!("applications/{}", Uuid::now_v7());
            let submitted = ApplicationSubmitted {
                application: application.clone(),
                zone: "tanger".into(),
                recipients: vec![member],
                ..Default::default()
            };
            work4life_platform::outbox::enqueue_message(
                &mut tx,
                "intake",
                "intake.application.submitted",
                &application,
                "work4life.intake.v1.ApplicationSubmitted",
                &submitted,
            )
            .await?;
        }
        tx.commit().await?;
        let committed = Instant::now();
        let all = sms.wait_accepted(before + args.events, Duration::from_secs(1800)).await;
        let burst_messages = &all[before..];
        let last = burst_messages.iter().map(|r| r.at).max().context("messages")?;
        let first_commit = SystemTime::now() - committed.elapsed();
        let seconds = last.duration_since(first_commit).unwrap_or_default().as_secs_f64();
        // Lag per message: provider receive time minus the event's outbox time.
        let ids: Vec<Uuid> =
            burst_messages.iter().filter_map(|r| r.headers.get("idempotency-key").and_then(|k| Uuid::parse_str(k).ok())).collect();
        let times: Vec<(Uuid, time::OffsetDateTime)> =
            sqlx::query_as("SELECT id, event_time FROM messages WHERE id = ANY($1)").bind(&ids).fetch_all(&notifications).await?;
        let event_time: HashMap<Uuid, time::OffsetDateTime> = times.into_iter().collect();
        let mut lag = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
        let mut distinct = HashSet::new();
        for r in burst_messages {
            let Some(id) = r.headers.get("idempotency-key").and_then(|k| Uuid::parse_str(k).ok()) else { continue };
            distinct.insert(id);
            let Some(at) = event_time.get(&id) else { continue };
            let received = time::OffsetDateTime::from(r.at);
            let micros = (received - *at).whole_microseconds().max(1) as u64;
            lag.record(micros.min(3_600_000_000))?;
        }
        anyhow::ensure!(distinct.len() == args.events, "burst {burst}: {} distinct messages for {} events", distinct.len(), args.events);
        let rate = args.events as f64 / seconds;
        println!(
            "burst {burst}: {} events written in {:.2} s; all {} messages handed over {:.2} s after the commit: {:.0} events/s end to end; \
             lag from the outbox row p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            args.events,
            (committed - written).as_secs_f64(),
            distinct.len(),
            seconds,
            rate,
            ms(&lag, 0.5),
            ms(&lag, 0.99),
            ms(&lag, 1.0),
        );
        rates.push(rate);
        p50s.push(ms(&lag, 0.5));
        p99s.push(ms(&lag, 0.99));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let duplicates: i64 = sqlx::query_scalar("SELECT count(*) - count(DISTINCT (event_id, recipient, message_type)) FROM messages")
        .fetch_one(&notifications)
        .await?;
    println!(
        "notifications burst of {} events (median of {}): {:.0} events/s end to end, lag p50 {:.0} ms, p99 {:.0} ms; provider requests {} for {} messages; duplicate messages {}",
        args.events,
        args.bursts,
        median(&mut rates),
        median(&mut p50s),
        median(&mut p99s),
        sms.requests().len(),
        sms.distinct_accepted_keys(),
        duplicates
    );
    running.shutdown.cancel();
    let _ = running.done.await;
    Ok(())
}
