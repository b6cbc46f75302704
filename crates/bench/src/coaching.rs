//! `work4life-bench coaching`: the coaching service's figures (docs/benchmarks.md, "Coaching (#6)").
//!
//! The real coaching service runs in this process (`host::start`: migrations, seed, outbox relay,
//! the award consumer, the full stack with token verification and telemetry installed) on a
//! scratch database, and is called over loopback gRPC with access tokens signed by a key the
//! host trusts (the way coaching's own tests do):
//! - `schedule-hot`: ScheduleSession by officers of the zone, every caller booking the same coach
//!   in the same room; `--contention` consecutive attempts go for the same hour, each at a
//!   slightly different time (the whole hour, a quarter later, a quarter earlier, both), so
//!   exactly one of them may win, while the callers' other attempts aim at other hours;
//! - `schedule-spread`: the same calls spread over `--coaches` coaches (four engagements each) in
//!   the rooms of their offices, every attempt at an hour no other attempt uses: no conflict;
//! - `schedule`: both, each on its own database and host, in alternating rounds, and their ratios;
//! - `progress`: GetProgress of one engagement and of a cohort (window, zone, office) on a
//!   fixture of `--engagements` engagements and `--sessions` sessions, kept for `--reuse`;
//! - `load`: builds that fixture only.
//!
//! Fixtures are written straight into the coaching schema with `generate_series` (coaches,
//! engagements with their plans and coach assignments, weekly sessions with their engagements
//! and participants), consistent with every constraint, including the exclusion constraints
//! that refuse double booking. Scheduled hours are whole opening hours of the offices in their
//! time zone (Monday to Friday 09:00-17:00, Saturday 09:00-13:00, no closure day), computed by
//! PostgreSQL, from 3 January 2028 on; the scheduling fixtures already hold a year of weekly
//! sessions before that, analysed, as a running service's tables would be.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::private_redis::PrivateRedis;
use anyhow::Context as _;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use prost::Message as _;
use sqlx::{Connection as _, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, transport::Channel};
use tonic_types::StatusExt as _;
use uuid::Uuid;
use work4life_platform::{
    auth::{Claims, InMemoryKeySource, RoleBinding, signing::SigningKey},
    config::PlatformConfig,
    host::{self, HostOptions},
};
use work4life_proto::coaching::{GetProgressRequest, ScheduleSessionRequest, Session, coaching_service_client::CoachingServiceClient};

use crate::{Report, Shape, connect, drive};

/// What to measure.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Scenario {
    /// ScheduleSession: every caller books the same coach and room, several attempts per hour.
    ScheduleHot,
    /// ScheduleSession spread over many coaches and rooms, no two attempts at the same hour.
    ScheduleSpread,
    /// Both, each on its own database and host, in alternating rounds, and their ratios.
    Schedule,
    /// GetProgress per engagement and per cohort (window, zone, office) on the large fixture.
    Progress,
    /// Only build the progress fixture (for a later `--reuse`).
    Load,
}

/// Options of `work4life-bench coaching`.
#[derive(clap::Args, Clone)]
pub struct CoachingArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Callers in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds measured per round (and per cohort for `progress`), after one second of warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Rounds; the figures are the medians of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `schedule-hot`: attempts aimed at each hour of the coach's calendar.
    #[arg(long, default_value_t = 4)]
    contention: usize,
    /// Coaches: `schedule-spread` spreads its calls over them; `progress` assigns the
    /// engagements to them (at most 70 engagements per coach when there are sessions).
    #[arg(long, default_value_t = 200)]
    coaches: u64,
    /// Engagements of the progress fixture.
    #[arg(long, default_value_t = 10_000)]
    engagements: u64,
    /// Sessions of the progress fixture (spread evenly over the engagements, weekly).
    #[arg(long, default_value_t = 500_000)]
    sessions: u64,
    /// PostgreSQL server (no database).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Database name prefix: `<prefix>_schedule_hot` and `<prefix>_schedule_spread` for the scheduling scenarios,
    /// `<prefix>_<engagements>_<sessions>` for the progress fixture.
    #[arg(long, default_value = "w4l_bench_coaching")]
    database: String,
    /// Keep a progress fixture of the same sizes that is already loaded, instead of rebuilding it.
    #[arg(long)]
    reuse: bool,
    /// `progress`: which GetProgress calls to measure.
    #[arg(long, value_enum, num_args = 1.., default_values_t = [Cohort::Engagement, Cohort::Window, Cohort::Zone, Cohort::Office])]
    cohorts: Vec<Cohort>,
    /// Redis for the outbox relay and the award consumer; default: a private `redis-server` on
    /// a free loopback port (coaching's consumer group must not meet anyone else's streams),
    /// or `redis://127.0.0.1:6379/9` when none can be started.
    #[arg(long)]
    redis: Option<String>,
}

/// The issuer and audience coaching expects (`PlatformConfig`'s defaults).
const ISSUER: &str = "https://identity.work4life.local";
const AUDIENCE: &str = "work4life";
/// The offices' time zone (the seed's).
const TIME_ZONE: &str = "Africa/Casablanca";
/// The first day scheduled sessions are booked on (a Monday, after the fixtures' sessions).
const FIRST_DAY: &str = "2028-01-03";
/// One-hour opening slots generated for the scheduling scenarios (about 45 years).
const SLOTS: i64 = 100_000;
/// Engagements of the hot coach (every attempt for the same hour uses a different one).
const HOT_ENGAGEMENTS: u64 = 64;
/// Engagements of each coach in `schedule-spread`.
const SPREAD_ENGAGEMENTS_PER_COACH: u64 = 4;
/// Weekly sessions each engagement of a scheduling fixture already has, and the days over which
/// those engagements were opened: their last sessions end before [`FIRST_DAY`].
const SCHEDULE_HISTORY_SESSIONS: u64 = 50;
const SCHEDULE_HISTORY_DAYS: f64 = 380.0;
/// Days over which the progress fixture's engagements were opened.
const HISTORY_DAYS: f64 = 3.0 * 365.0;
/// The cohorts GetProgress is measured on.
const COHORT_WINDOW: &str = "individual_startup";
const COHORT_ZONE: &str = "oujda";
const COHORT_OFFICE: &str = "tanger_technopark";

/// Offices (code, zone), in the seed's order: coach `k` works at `OFFICES[k % 5]`.
fn offices() -> Vec<(&'static str, &'static str)> {
    work4life_coaching::seed::OFFICES.iter().map(|o| (o.0, o.2)).collect()
}

/// Access tokens the host accepts.
struct Tokens {
    admin: String,
    /// An officer of each zone (with a partner organisation), by zone.
    officers: HashMap<String, String>,
    /// A program manager of each zone, by zone.
    managers: HashMap<String, String>,
}

impl Tokens {
    fn new(key: &SigningKey) -> anyhow::Result<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let sign = |role: &str, org: Option<Uuid>, zones: Vec<String>| {
            key.sign(&Claims {
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                sub: format!("accounts/{}", Uuid::now_v7()),
                exp: now + 24 * 3600,
                nbf: now - 5,
                iat: now,
                jti: Uuid::new_v4().to_string(),
                roles: vec![RoleBinding { role: role.into(), org: org.map(|o| format!("organizations/{o}")), zones }],
            })
        };
        let org = Uuid::now_v7();
        let mut officers = HashMap::new();
        let mut managers = HashMap::new();
        for (_, zone) in offices() {
            officers.insert(zone.to_string(), sign("officer", Some(org), vec![zone.to_string()])?);
            managers.insert(zone.to_string(), sign("program_manager", Some(org), vec![zone.to_string()])?);
        }
        Ok(Self { admin: sign("admin", None, Vec::new())?, officers, managers })
    }
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// A host running coaching on one database, and what calling it needs.
struct Target {
    shutdown: CancellationToken,
    pool: PgPool,
    channels: Vec<Channel>,
    tokens: Arc<Tokens>,
    name: String,
}

/// Starts coaching (migrations, seed) on database `name`, dropped first unless `keep`.
async fn start(args: &CoachingArgs, key: &SigningKey, redis: &str, name: &str, keep: bool) -> anyhow::Result<Target> {
    let database_url = format!("{}/{name}", args.server);
    if !keep {
        let options: sqlx::postgres::PgConnectOptions = format!("{}/postgres", args.server).parse()?;
        let mut admin = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(&mut admin).await?;
    }
    let source = HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.clone()),
        ("W4L_REDIS_URL".to_string(), redis.to_string()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
    ]);
    let config = PlatformConfig::from_source(&source)?;
    let keys = Arc::new(InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk()] }));
    let running =
        host::start(HostOptions { config, services: vec![work4life_coaching::SERVICE], key_source: Some(keys), migrate: true }).await?;
    let pool = work4life_platform::db::connect(&database_url, "coaching", 4).await?;
    let seed = work4life_coaching::SERVICE.seed.context("coaching has a seed")?;
    seed(&pool).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_meta (coaches bigint NOT NULL, engagements bigint NOT NULL, sessions bigint NOT NULL, \
         load_secs double precision NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await?;
    let channels = connect(&format!("http://{}", running.addr), args.connections).await?;
    Ok(Target { shutdown: running.shutdown, pool, channels, tokens: Arc::new(Tokens::new(key)?), name: name.to_string() })
}

/// Writes `coaches` coaches and `engagements` engagements (engagement `i` coached by coach
/// `i % coaches`, opened evenly over the last `history_days` days, the window's plan, its coach
/// assignment) and `sessions` weekly sessions with their engagements and participants.
///
/// Engagement `m` of a coach meets every week on weekday `m % 5` at `9 + m / 5` o'clock local
/// time, from the week after it opened: a coach's sessions never overlap, and each
/// beneficiary belongs to one engagement. At each hour one coach of an office has its
/// `salle_a` and another its `atelier` (only before 17:00), the rest are remote: no room is
/// double-booked either. Past sessions are held (92%, 85% of participants present), cancelled
/// (4%) or left scheduled (4%); future ones are scheduled. Engagements opened more than 400
/// days ago are closed. Milestones due before today are verified (80%), completed (8%) or
/// pending (overdue); later ones pending or completed (10%).
async fn load_fixture(pool: &PgPool, coaches: u64, engagements: u64, sessions: u64, history_days: f64) -> anyhow::Result<()> {
    anyhow::ensure!(coaches > 0 && engagements > 0, "the fixture needs coaches and engagements");
    anyhow::ensure!(
        sessions == 0 || engagements.div_ceil(coaches) <= 70,
        "at most 70 engagements per coach: their weekly hours must not overlap"
    );
    let (codes, zones): (Vec<&str>, Vec<&str>) = offices().into_iter().unzip();
    let now = OffsetDateTime::now_utc();
    let per_office = coaches.div_ceil(codes.len() as u64) as i64;
    let (coaches, engagements, sessions) = (coaches as i64, engagements as i64, sessions as i64);
    // Plans: (window, code, title, position, days), and each window's hours budget.
    let (mut p_window, mut p_code, mut p_title, mut p_position, mut p_days) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut b_window, mut b_hours) = (Vec::new(), Vec::new());
    for window in work4life_coaching::plans::WINDOWS {
        let (steps, hours) = work4life_coaching::plans::plan(window).context("a window's plan")?;
        b_window.push(window.to_string());
        b_hours.push(hours);
        for (i, step) in steps.iter().enumerate() {
            p_window.push(window.to_string());
            p_code.push(step.code.to_string());
            p_title.push(step.title.to_string());
            p_position.push(i as i32);
            p_days.push(step.due_after_days as i32);
        }
    }
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO coaches (account_id, display_name, office_code, languages, expertise, weekly_hours, created_at) \
         SELECT md5('coach' || k)::uuid, 'Bench coach ' || lpad(k::text, 4, '0'), ($2::text[])[(k % 5 + 1)::int], \
                CASE k % 3 WHEN 0 THEN ARRAY['fr', 'ar'] WHEN 1 THEN ARRAY['fr', 'en'] ELSE ARRAY['ar', 'fr', 'ary'] END, \
                ARRAY['business_plan', 'accounting'], 20 + k % 20, $3::timestamptz - interval '4 years' \
         FROM generate_series(0::bigint, $1 - 1) k",
    )
    .bind(coaches)
    .bind(&codes)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DROP TABLE IF EXISTS bench_e").execute(&mut *tx).await?;
    sqlx::query(
        "CREATE TEMP TABLE bench_e AS \
         WITH g AS (SELECT i, i % $1 AS k, $3::timestamptz - make_interval(secs => $4 * ($2 - i)::float8 / $2) AS created, \
                           (i * 7919) % 100 AS hw FROM generate_series(0::bigint, $2 - 1) i), \
              w AS (SELECT g.*, CASE WHEN hw < 40 THEN 'individual_startup' WHEN hw < 60 THEN 'collective_startup' \
                                     WHEN hw < 85 THEN 'job_placement' WHEN hw < 90 THEN 'association_professionalisation' \
                                     WHEN hw < 95 THEN 'enterprise_marketing' ELSE 'labour_law_advice' END AS window_code, \
                                CASE WHEN hw BETWEEN 40 AND 59 THEN 2 + i % 2 ELSE 1 END AS people FROM g) \
         SELECT i, k, i / $1 AS m, created, window_code, \
                (lpad(to_hex((extract(epoch FROM created) * 1000)::bigint), 12, '0') || '7' || substr(md5('e' || i), 1, 3) || '8' \
                 || substr(md5('e' || i), 4, 15))::uuid AS id, \
                md5('coach' || k)::uuid AS coach, ($5::text[])[(k % 5 + 1)::int] AS office, ($6::text[])[(k % 5 + 1)::int] AS zone, \
                ARRAY(SELECT md5('ben' || i || '.' || n)::uuid FROM generate_series(1, people) n) AS bens, \
                ARRAY(SELECT md5('acct' || i || '.' || n)::uuid FROM generate_series(1, people) n) AS accts \
         FROM w",
    )
    .bind(coaches)
    .bind(engagements)
    .bind(now)
    .bind(history_days * 86_400.0)
    .bind(&codes)
    .bind(&zones)
    .execute(&mut *tx)
    .await?;
    sqlx::query("CREATE UNIQUE INDEX ON bench_e (i)").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO engagements (id, award, application, window_code, zone, beneficiaries, beneficiary_accounts, languages, coach_id, \
                                  hours_budget, state, created_by, created_at) \
         SELECT e.id, \
                CASE WHEN e.window_code IN ('individual_startup', 'collective_startup', 'job_placement') \
                     THEN 'awards/' || md5('award' || e.i)::uuid END, \
                'applications/' || md5('app' || e.i)::uuid, e.window_code, e.zone, e.bens, e.accts, \
                CASE e.i % 3 WHEN 0 THEN ARRAY['fr'] WHEN 1 THEN ARRAY['fr', 'wo'] ELSE ARRAY['ar'] END, e.coach, b.hours, \
                CASE WHEN e.created < $3::timestamptz - interval '400 days' THEN 'closed' ELSE 'active' END, 'accounts/bench', e.created \
         FROM bench_e e JOIN UNNEST($1::text[], $2::int[]) AS b(window_code, hours) ON b.window_code = e.window_code ORDER BY e.i",
    )
    .bind(&b_window)
    .bind(&b_hours)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO milestones (engagement_id, code, title, position, due_on, state, evidence, completed_by, reviewed_by, verified_at) \
         SELECT e.id, p.code, p.title, p.position, d.due, st.state, \
                CASE WHEN st.state <> 'pending' THEN ARRAY['documents/' || md5(e.id::text || p.code)] ELSE '{}' END, \
                CASE WHEN st.state <> 'pending' THEN 'accounts/' || e.accts[1] END, \
                CASE WHEN st.state = 'verified' THEN 'accounts/' || e.coach END, \
                CASE WHEN st.state = 'verified' THEN (d.due - 3)::timestamp AT TIME ZONE 'UTC' END \
         FROM bench_e e \
         JOIN UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::int[]) AS p(window_code, code, title, position, days) \
              ON p.window_code = e.window_code \
         CROSS JOIN LATERAL (SELECT (e.created AT TIME ZONE 'UTC')::date + p.days AS due, \
                                    abs(hashtext(e.id::text || p.code)) % 100 AS h) d \
         CROSS JOIN LATERAL (SELECT CASE WHEN d.due < $6::date \
                                         THEN CASE WHEN d.h < 80 THEN 'verified' WHEN d.h < 88 THEN 'completed' ELSE 'pending' END \
                                         WHEN d.h < 10 THEN 'completed' ELSE 'pending' END AS state) st \
         ORDER BY e.i, p.position",
    )
    .bind(&p_window)
    .bind(&p_code)
    .bind(&p_title)
    .bind(&p_position)
    .bind(&p_days)
    .bind(now.date())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO coach_assignments (engagement_id, position, coach_id, reason, assigned_by, assigned_at) \
         SELECT id, 0, coach, 'suggested by zone, language and load', 'accounts/bench', created FROM bench_e ORDER BY i",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Sessions in batches of 50,000: `q` is session `q / engagements` of engagement `q % engagements`.
    let batch = 50_000i64;
    let mut lo = 0i64;
    while lo < sessions {
        let hi = (lo + batch).min(sessions);
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, coach_id, office_code, room_code, during, topic, state, notes, version, created_by, created_at) \
             WITH q AS (SELECT q, e.*, q / $3 AS s, \
                               date_trunc('week', e.created AT TIME ZONE $4) AS week0 \
                        FROM generate_series($1::bigint, $2 - 1) q JOIN bench_e e ON e.i = q % $3), \
                  t AS (SELECT q.*, (week0 + make_interval(weeks => (1 + s)::int, days => (m % 5)::int, hours => (9 + m / 5)::int)) \
                                    AT TIME ZONE $4 AS starts, \
                               9 + m / 5 AS hour, \
                               (((floor(extract(epoch FROM week0) / 604800)::bigint + 1 + s) * 5 + m % 5) * 24 + 9 + m / 5) % $5 AS slot_key, \
                               abs(hashtext('s' || q)) % 100 AS h \
                        FROM q) \
             SELECT md5('session' || t.q)::uuid, t.coach, CASE WHEN x.room IS NOT NULL THEN t.office END, x.room, \
                    tstzrange(t.starts, t.starts + interval '1 hour'), 'Weekly follow-up', x.state, \
                    CASE WHEN x.state = 'held' THEN 'Went through the week''s figures' ELSE '' END, \
                    CASE WHEN x.state = 'scheduled' THEN 1 ELSE 2 END, 'accounts/bench', t.starts - interval '7 days' \
             FROM t CROSS JOIN LATERAL ( \
                 SELECT CASE WHEN t.hour < 17 AND t.slot_key = t.k / 5 THEN 'salle_a' \
                             WHEN t.hour < 17 AND $5 > 1 AND (t.slot_key + $5 / 2) % $5 = t.k / 5 THEN 'atelier' END AS room, \
                        CASE WHEN t.starts + interval '1 hour' > $6::timestamptz THEN 'scheduled' WHEN t.h < 92 THEN 'held' \
                             WHEN t.h < 96 THEN 'cancelled' ELSE 'scheduled' END AS state) x \
             ORDER BY t.starts",
        )
        .bind(lo)
        .bind(hi)
        .bind(engagements)
        .bind(TIME_ZONE)
        .bind(per_office)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO session_engagements (session_id, engagement_id) \
             SELECT md5('session' || q)::uuid, e.id FROM generate_series($1::bigint, $2 - 1) q JOIN bench_e e ON e.i = q % $3",
        )
        .bind(lo)
        .bind(hi)
        .bind(engagements)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO session_participants (session_id, applicant_id, during, active, present) \
             SELECT s.id, b.applicant, s.during, s.state <> 'cancelled', \
                    CASE WHEN s.state = 'held' THEN abs(hashtext(s.id::text || b.applicant::text)) % 100 < 85 END \
             FROM generate_series($1::bigint, $2 - 1) q JOIN bench_e e ON e.i = q % $3 \
             JOIN sessions s ON s.id = md5('session' || q)::uuid CROSS JOIN LATERAL unnest(e.bens) AS b(applicant)",
        )
        .bind(lo)
        .bind(hi)
        .bind(engagements)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        lo = hi;
        if lo % 100_000 == 0 || lo == sessions {
            eprintln!("  {lo} of {sessions} sessions written");
        }
    }
    sqlx::query("DROP TABLE bench_e").execute(&mut *conn).await?;
    // As autovacuum would leave them: statistics, and visibility maps for index-only scans.
    sqlx::query("VACUUM (ANALYZE)").execute(&mut *conn).await?;
    Ok(())
}

/// What a previous run loaded into `url` (coaches, engagements, sessions), if its schema is the
/// one the migrations make today.
async fn loaded(url: &str) -> Option<(u64, u64, u64)> {
    let pool = work4life_platform::db::connect(url, "coaching", 1).await.ok()?;
    let sizes: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT coaches, engagements, sessions FROM bench_meta ORDER BY loaded_at DESC LIMIT 1")
            .fetch_optional(&pool)
            .await
            .ok()?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.ok()?;
    pool.close().await;
    let mut wanted: Vec<(i64, Vec<u8>)> = work4life_platform::db::PLATFORM_MIGRATIONS
        .iter()
        .chain(work4life_coaching::MIGRATIONS.iter())
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    wanted.sort();
    if applied != wanted {
        println!(
            "coaching fixture in {}: its migrations changed since it was loaded; loading it again",
            url.rsplit('/').next().unwrap_or(url)
        );
        return None;
    }
    sizes.map(|(c, e, s)| (c as u64, e as u64, s as u64))
}

/// The progress fixture's database, loaded (or reused), with coaching serving it.
async fn progress_target(args: &CoachingArgs, key: &SigningKey, redis: &str) -> anyhow::Result<Target> {
    let name = format!("{}_{}_{}", args.database, args.engagements, args.sessions);
    let url = format!("{}/{name}", args.server);
    let reused = args.reuse && loaded(&url).await == Some((args.coaches, args.engagements, args.sessions));
    let t = start(args, key, redis, &name, reused).await?;
    if reused {
        println!("coaching fixture of {} engagements and {} sessions: reusing database {name}", args.engagements, args.sessions);
        return Ok(t);
    }
    let started = Instant::now();
    load_fixture(&t.pool, args.coaches, args.engagements, args.sessions, HISTORY_DAYS).await?;
    let secs = started.elapsed().as_secs_f64();
    sqlx::query("INSERT INTO bench_meta (coaches, engagements, sessions, load_secs) VALUES ($1, $2, $3, $4)")
        .bind(args.coaches as i64)
        .bind(args.engagements as i64)
        .bind(args.sessions as i64)
        .bind(secs)
        .execute(&t.pool)
        .await?;
    let size: String = sqlx::query_scalar("SELECT pg_size_pretty(pg_database_size(current_database()))").fetch_one(&t.pool).await?;
    println!(
        "coaching fixture of {} coaches, {} engagements, {} sessions: loaded and vacuumed in {secs:.1} s (database {name}: {size})",
        args.coaches, args.engagements, args.sessions
    );
    Ok(t)
}

/// A coach of a scheduling fixture and its engagements.
struct BenchCoach {
    id: Uuid,
    office: String,
    zone: String,
    engagements: Vec<Uuid>,
}

/// The coaches and engagements `load_fixture` wrote, coach by coach.
async fn fixture_coaches(pool: &PgPool) -> anyhow::Result<Vec<BenchCoach>> {
    let rows: Vec<(Uuid, String, String, Uuid)> = sqlx::query_as(
        "SELECT c.account_id, c.office_code, o.zone, e.id FROM coaches c JOIN offices o ON o.code = c.office_code \
         JOIN engagements e ON e.coach_id = c.account_id ORDER BY c.display_name, e.id",
    )
    .fetch_all(pool)
    .await?;
    let mut coaches: Vec<BenchCoach> = Vec::new();
    for (id, office, zone, engagement) in rows {
        match coaches.last_mut() {
            Some(c) if c.id == id => c.engagements.push(engagement),
            _ => coaches.push(BenchCoach { id, office, zone, engagements: vec![engagement] }),
        }
    }
    Ok(coaches)
}

/// One-hour slots within every office's opening hours (local time), from [`FIRST_DAY`], in order.
async fn opening_slots(pool: &PgPool, count: i64) -> anyhow::Result<Vec<OffsetDateTime>> {
    Ok(sqlx::query_scalar(
        "SELECT (d + make_interval(hours => h)) AT TIME ZONE $2 AS starts \
         FROM generate_series($1::timestamp, $1::timestamp + interval '60 years', interval '1 day') d, generate_series(9, 16) h \
         WHERE (extract(isodow FROM d) <= 5 OR (extract(isodow FROM d) = 6 AND h < 13)) \
           AND NOT EXISTS (SELECT 1 FROM office_closures c WHERE c.day = d::date) \
         ORDER BY 1 LIMIT $3",
    )
    .bind(FIRST_DAY)
    .bind(TIME_ZONE)
    .bind(count)
    .fetch_all(pool)
    .await?)
}

fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: t.nanosecond() as i32 }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

/// What a scheduling round's attempts came to, counted from the end of the warm-up.
struct Tally {
    measure_from: Instant,
    won: AtomicU64,
    /// Refused with ALREADY_EXISTS `DOUBLE_BOOKED`, by the field named: coach, room, participants.
    coach: AtomicU64,
    room: AtomicU64,
    participants: AtomicU64,
    /// Anything else (including running out of slots).
    other: AtomicU64,
    won_latency: Mutex<Histogram<u64>>,
    refused_latency: Mutex<Histogram<u64>>,
    /// The first unexpected errors, for the report.
    samples: Mutex<Vec<String>>,
}

impl Tally {
    fn new(measure_from: Instant) -> Self {
        Self {
            measure_from,
            won: AtomicU64::new(0),
            coach: AtomicU64::new(0),
            room: AtomicU64::new(0),
            participants: AtomicU64::new(0),
            other: AtomicU64::new(0),
            won_latency: Mutex::new(new_histogram()),
            refused_latency: Mutex::new(new_histogram()),
            samples: Mutex::new(Vec::new()),
        }
    }

    fn refused(&self) -> u64 {
        self.coach.load(Ordering::Relaxed) + self.room.load(Ordering::Relaxed) + self.participants.load(Ordering::Relaxed)
    }
}

/// Everything the scheduling calls share across rounds.
struct Calendar {
    tokens: Arc<Tokens>,
    coaches: Vec<BenchCoach>,
    slots: Vec<OffsetDateTime>,
    hot: bool,
    contention: u64,
    /// The next attempt's number.
    next: AtomicU64,
    /// Attempts and sessions won per slot, over the whole run (warm-ups included).
    attempts: Vec<AtomicU32>,
    wins: Vec<AtomicU32>,
}

impl Calendar {
    /// Attempt `n`: (slot, coach, engagement, room, start, end).
    fn attempt(&self, n: u64) -> Option<(usize, &BenchCoach, Uuid, String, OffsetDateTime, OffsetDateTime)> {
        let quarter = time::Duration::minutes(15);
        if self.hot {
            let slot = (n / self.contention) as usize;
            let starts = *self.slots.get(slot)?;
            let coach = &self.coaches[0];
            let engagement = coach.engagements[(n % coach.engagements.len() as u64) as usize];
            // Every attempt at the hour overlaps every other: the whole hour, a quarter later, a
            // quarter earlier, the middle half.
            let (from, to) = match n % self.contention % 4 {
                0 => (starts, starts + time::Duration::hours(1)),
                1 => (starts + quarter, starts + time::Duration::hours(1)),
                2 => (starts, starts + 3 * quarter),
                _ => (starts + quarter, starts + 3 * quarter),
            };
            Some((slot, coach, engagement, format!("offices/{}/rooms/salle_a", coach.office), from, to))
        } else {
            let slot = n as usize;
            let starts = *self.slots.get(slot)?;
            let c = self.coaches.len() as u64;
            let coach = &self.coaches[(n % c) as usize];
            let round = n / c;
            let engagement = coach.engagements[(round % coach.engagements.len() as u64) as usize];
            let room = if round.is_multiple_of(2) { "salle_a" } else { "atelier" };
            Some((slot, coach, engagement, format!("offices/{}/rooms/{room}", coach.office), starts, starts + time::Duration::hours(1)))
        }
    }
}

fn schedule_call(
    calendar: Arc<Calendar>,
    tally: Arc<Tally>,
) -> impl Fn(Channel) -> futures::future::BoxFuture<'static, bool> + Clone + Send + 'static {
    move |channel: Channel| {
        let (calendar, tally) = (Arc::clone(&calendar), Arc::clone(&tally));
        Box::pin(async move {
            let t0 = Instant::now();
            let counted = t0 >= tally.measure_from;
            let n = calendar.next.fetch_add(1, Ordering::Relaxed);
            let Some((slot, coach, engagement, room, from, to)) = calendar.attempt(n) else {
                // Out of slots: counted as an error (the run needs more SLOTS).
                tokio::time::sleep(Duration::from_millis(10)).await;
                if counted {
                    tally.other.fetch_add(1, Ordering::Relaxed);
                }
                return false;
            };
            calendar.attempts[slot].fetch_add(1, Ordering::Relaxed);
            let session = Session {
                engagements: vec![format!("engagements/{engagement}")],
                room,
                start_time: Some(timestamp(from)),
                end_time: Some(timestamp(to)),
                topic: "Business plan review".into(),
                ..Session::default()
            };
            let request = ScheduleSessionRequest { session: Some(session), request_id: Uuid::new_v4().to_string() };
            let token = calendar.tokens.officers.get(&coach.zone).map(String::as_str).unwrap_or_default();
            let answer = CoachingServiceClient::new(channel).schedule_session(bearer(request, token)).await;
            let micros = t0.elapsed().as_micros() as u64;
            match answer {
                Ok(_) => {
                    calendar.wins[slot].fetch_add(1, Ordering::Relaxed);
                    if counted {
                        tally.won.fetch_add(1, Ordering::Relaxed);
                        let _ = tally.won_latency.lock().map(|mut h| h.record(micros.max(1)));
                    }
                    true
                }
                Err(status) => {
                    if !counted {
                        return false;
                    }
                    let details = status.get_error_details();
                    let info = details.error_info();
                    let field = match info {
                        Some(i) if status.code() == Code::AlreadyExists && i.reason == "DOUBLE_BOOKED" => {
                            i.metadata.get("field").cloned().unwrap_or_default()
                        }
                        _ => String::new(),
                    };
                    let counter = match field.as_str() {
                        "coach" => &tally.coach,
                        "room" => &tally.room,
                        "participants" => &tally.participants,
                        _ => {
                            tally.other.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut samples) = tally.samples.lock()
                                && samples.len() < 5
                            {
                                samples.push(format!("{:?} {}", status.code(), status.message()));
                            }
                            return false;
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    let _ = tally.refused_latency.lock().map(|mut h| h.record(micros.max(1)));
                    false
                }
            }
        })
    }
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1000.0 }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// One scheduling scenario's host, calendar and figures.
struct Scheduling {
    t: Target,
    calendar: Arc<Calendar>,
    label: String,
    /// Each round's (attempts/s, sessions/s, share refused, p50, p99, won p50, refused p50).
    rounds: Vec<[f64; 7]>,
}

/// Starts coaching on the scenario's own database and writes its fixture.
async fn prepare_schedule(args: &CoachingArgs, key: &SigningKey, redis: &str, hot: bool) -> anyhow::Result<Scheduling> {
    let contention = args.contention.clamp(1, HOT_ENGAGEMENTS as usize) as u64;
    let name = format!("{}_schedule_{}", args.database, if hot { "hot" } else { "spread" });
    let t = start(args, key, redis, &name, false).await?;
    let (coaches, engagements) = if hot { (1, HOT_ENGAGEMENTS) } else { (args.coaches, args.coaches * SPREAD_ENGAGEMENTS_PER_COACH) };
    // A year of weekly sessions already in the calendar (analysed, as a running service's tables
    // are), all before the first day booked.
    load_fixture(&t.pool, coaches, engagements, engagements * SCHEDULE_HISTORY_SESSIONS, SCHEDULE_HISTORY_DAYS).await?;
    let coaches = fixture_coaches(&t.pool).await?;
    let slots = opening_slots(&t.pool, SLOTS).await?;
    let calendar = Arc::new(Calendar {
        tokens: Arc::clone(&t.tokens),
        attempts: (0..slots.len()).map(|_| AtomicU32::new(0)).collect(),
        wins: (0..slots.len()).map(|_| AtomicU32::new(0)).collect(),
        coaches,
        slots,
        hot,
        contention,
        next: AtomicU64::new(0),
    });
    let label = if hot {
        format!("hot (1 coach, 1 room, {} engagements, {contention} overlapping attempts per hour)", calendar.coaches[0].engagements.len())
    } else {
        format!("spread ({} coaches in 5 offices, 10 rooms, one attempt per hour)", calendar.coaches.len())
    };
    Ok(Scheduling { t, calendar, label, rounds: Vec::new() })
}

/// One measured round of a scheduling scenario.
async fn schedule_round(args: &CoachingArgs, s: &mut Scheduling, round: usize) -> anyhow::Result<()> {
    // This machine's PostgreSQL runs without autovacuum (CI settings): every round starts from
    // vacuumed and analysed tables, as autovacuum keeps them in production, instead of
    // inheriting the previous rounds' dead tuples (three in four hot attempts are rolled back)
    // and statistics of an emptier calendar.
    sqlx::query("VACUUM (ANALYZE)").execute(&s.t.pool).await?;
    let shape = Shape { concurrency: args.concurrency, duration: Duration::from_secs(args.duration), rate: None };
    let tally = Arc::new(Tally::new(Instant::now() + Duration::from_secs(1)));
    let report: Report = drive(&s.t.channels, &shape, None, schedule_call(Arc::clone(&s.calendar), Arc::clone(&tally))).await?;
    let secs = report.elapsed.as_secs_f64();
    let won = tally.won.load(Ordering::Relaxed);
    let refused = tally.refused();
    let other = tally.other.load(Ordering::Relaxed);
    let won_latency = tally.won_latency.lock().map(|h| h.clone()).unwrap_or_else(|_| new_histogram());
    let refused_latency = tally.refused_latency.lock().map(|h| h.clone()).unwrap_or_else(|_| new_histogram());
    println!(
        "round {round} ScheduleSession {}: {:.0} attempts/s, {:.0} sessions/s, {won} won, {refused} refused DOUBLE_BOOKED \
         (coach {}, room {}, participants {}), {other} other errors; latency ms p50 {:.3} p99 {:.3} max {:.3} (won p50 {:.3} p99 {:.3}; \
         refused p50 {:.3} p99 {:.3})",
        s.label,
        report.calls as f64 / secs,
        won as f64 / secs,
        tally.coach.load(Ordering::Relaxed),
        tally.room.load(Ordering::Relaxed),
        tally.participants.load(Ordering::Relaxed),
        quantile_ms(&report.latency, 0.5),
        quantile_ms(&report.latency, 0.99),
        report.latency.max() as f64 / 1000.0,
        quantile_ms(&won_latency, 0.5),
        quantile_ms(&won_latency, 0.99),
        quantile_ms(&refused_latency, 0.5),
        quantile_ms(&refused_latency, 0.99),
    );
    if let Ok(samples) = tally.samples.lock()
        && !samples.is_empty()
    {
        println!("round {round} unexpected errors, first ones: {}", samples.join("; "));
    }
    s.rounds.push([
        report.calls as f64 / secs,
        won as f64 / secs,
        refused as f64 / report.calls.max(1) as f64,
        quantile_ms(&report.latency, 0.5),
        quantile_ms(&report.latency, 0.99),
        quantile_ms(&won_latency, 0.5),
        quantile_ms(&refused_latency, 0.5),
    ]);
    Ok(())
}

/// Checks the calendar a scheduling scenario left (no hour booked twice, no overlap in the
/// database) and prints the medians of its rounds.
async fn finish_schedule(args: &CoachingArgs, s: &Scheduling) -> anyhow::Result<()> {
    let calendar = &s.calendar;
    let (mut tried, mut once, mut twice, mut never) = (0u64, 0u64, 0u64, 0u64);
    let mut total_wins = 0u64;
    for (a, w) in calendar.attempts.iter().zip(&calendar.wins) {
        let (a, w) = (a.load(Ordering::Relaxed), w.load(Ordering::Relaxed));
        if a == 0 {
            continue;
        }
        tried += 1;
        total_wins += u64::from(w);
        match w {
            0 => never += 1,
            1 => once += 1,
            _ => twice += 1,
        }
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE lower(during) >= $1::timestamp AT TIME ZONE $2")
        .bind(FIRST_DAY)
        .bind(TIME_ZONE)
        .fetch_one(&s.t.pool)
        .await?;
    // A session overlaps an earlier one of its coach (or room) when it starts before the latest
    // end among those that start before it.
    let overlapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE coach_end > lower(during)) + count(*) FILTER (WHERE room_end > lower(during)) FROM ( \
           SELECT during, \
                  max(upper(during)) OVER (PARTITION BY coach_id ORDER BY lower(during), id \
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS coach_end, \
                  CASE WHEN room_code IS NOT NULL THEN max(upper(during)) OVER (PARTITION BY office_code, room_code \
                       ORDER BY lower(during), id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) END AS room_end \
           FROM sessions WHERE state <> 'cancelled') x",
    )
    .fetch_one(&s.t.pool)
    .await?;
    println!(
        "calendar {}: {} attempts, {tried} hours tried, {once} booked once, {twice} booked more than once, {never} never booked; \
         {total_wins} sessions won, {stored} stored, {overlapping} overlapping a session of the same coach or room",
        if calendar.hot { "hot" } else { "spread" },
        calendar.next.load(Ordering::Relaxed)
    );
    anyhow::ensure!(twice == 0 && overlapping == 0, "a coach or a room was double-booked");
    let column = |k: usize| median(s.rounds.iter().map(|r| r[k]).collect());
    println!(
        "ScheduleSession {}: {:.0} attempts/s, {:.0} sessions/s, {:.1}% refused DOUBLE_BOOKED, latency ms p50 {:.3} p99 {:.3} \
         (won p50 {:.3}, refused p50 {:.3}) (medians of {} rounds of {} s, {} callers on {} connections)",
        s.label,
        column(0),
        column(1),
        column(2) * 100.0,
        column(3),
        column(4),
        column(5),
        column(6),
        s.rounds.len(),
        args.duration,
        args.concurrency,
        args.connections
    );
    Ok(())
}

/// `schedule-hot`, `schedule-spread`, or both in alternating rounds (`schedule`), each on its
/// own database and host, so that both see the same neighbours.
async fn schedule(args: &CoachingArgs, key: &SigningKey, redis: &str) -> anyhow::Result<()> {
    let kinds: &[bool] = match args.scenario {
        Scenario::ScheduleHot => &[true],
        Scenario::ScheduleSpread => &[false],
        _ => &[true, false],
    };
    let mut runs = Vec::new();
    for hot in kinds {
        runs.push(prepare_schedule(args, key, redis, *hot).await?);
    }
    for round in 1..=args.rounds.max(1) {
        // Odd rounds in order, even rounds reversed: neither always goes first.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        if round.is_multiple_of(2) {
            order.reverse();
        }
        for i in order {
            schedule_round(args, &mut runs[i], round).await?;
        }
    }
    // Let calls still in flight at the end of the last round finish before checking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for run in &runs {
        finish_schedule(args, run).await?;
    }
    if let [hot, spread] = runs.as_slice() {
        let ratios =
            |k: usize| -> Vec<f64> { hot.rounds.iter().zip(&spread.rounds).map(|(h, s)| h[k] / s[k].max(f64::MIN_POSITIVE)).collect() };
        let show = |v: &[f64]| v.iter().map(|r| format!("{:.1}%", r * 100.0)).collect::<Vec<_>>().join(" ");
        let (attempts, sessions) = (ratios(0), ratios(1));
        println!(
            "hot/spread, medians of the rounds' ratios: attempts/s {:.1}% (rounds {}), sessions/s {:.1}% (rounds {})",
            median(attempts.clone()) * 100.0,
            show(&attempts),
            median(sessions.clone()) * 100.0,
            show(&sessions)
        );
    }
    for run in runs {
        run.t.shutdown.cancel();
    }
    Ok(())
}

/// The GetProgress calls measured.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Cohort {
    /// One engagement, by an officer of its zone (a different engagement each call).
    Engagement,
    /// Every engagement of a window, by an admin.
    Window,
    /// Every engagement of a zone, by a program manager of the zone.
    Zone,
    /// Every engagement whose coach works at an office, by an admin.
    Office,
}

impl Cohort {
    fn label(self) -> String {
        match self {
            Cohort::Engagement => "one engagement (officer of its zone)".into(),
            Cohort::Window => format!("window {COHORT_WINDOW} (admin)"),
            Cohort::Zone => format!("zone {COHORT_ZONE} (program manager)"),
            Cohort::Office => format!("office {COHORT_OFFICE} (admin)"),
        }
    }

    fn request(self, tokens: &Tokens, engagements: &[(Uuid, String)], n: usize) -> (GetProgressRequest, String) {
        match self {
            Cohort::Engagement => {
                let (id, zone) = &engagements[(n.wrapping_mul(7919)) % engagements.len().max(1)];
                let token = tokens.officers.get(zone).cloned().unwrap_or_default();
                (GetProgressRequest { engagement: format!("engagements/{id}"), ..Default::default() }, token)
            }
            Cohort::Window => (GetProgressRequest { window: COHORT_WINDOW.into(), ..Default::default() }, tokens.admin.clone()),
            Cohort::Zone => (
                GetProgressRequest { zone: COHORT_ZONE.into(), ..Default::default() },
                tokens.managers.get(COHORT_ZONE).cloned().unwrap_or_default(),
            ),
            Cohort::Office => {
                (GetProgressRequest { office: format!("offices/{COHORT_OFFICE}"), ..Default::default() }, tokens.admin.clone())
            }
        }
    }
}

fn progress_call(
    cohort: Cohort,
    tokens: Arc<Tokens>,
    engagements: Arc<Vec<(Uuid, String)>>,
    next: Arc<AtomicU64>,
) -> impl Fn(Channel) -> futures::future::BoxFuture<'static, bool> + Clone + Send + 'static {
    move |channel: Channel| {
        let (tokens, engagements, next) = (Arc::clone(&tokens), Arc::clone(&engagements), Arc::clone(&next));
        Box::pin(async move {
            let n = next.fetch_add(1, Ordering::Relaxed) as usize;
            let (request, token) = cohort.request(&tokens, &engagements, n);
            CoachingServiceClient::new(channel).get_progress(bearer(request, &token)).await.is_ok()
        })
    }
}

/// `progress`: each cohort in turn, every round; then each cohort's medians.
async fn progress(args: &CoachingArgs, key: &SigningKey, redis: &str) -> anyhow::Result<()> {
    let t = progress_target(args, key, redis).await?;
    let engagements: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, zone FROM engagements WHERE state = 'active' ORDER BY id").fetch_all(&t.pool).await?;
    let engagements = Arc::new(engagements);
    let cohorts = args.cohorts.clone();
    // What each cohort's answer holds, once, to show what is being computed.
    let mut client = CoachingServiceClient::new(t.channels[0].clone());
    for cohort in cohorts.iter().copied() {
        let (request, token) = cohort.request(&t.tokens, &engagements, 0);
        let started = Instant::now();
        let answer = client.get_progress(bearer(request, &token)).await.with_context(|| format!("GetProgress {}", cohort.label()))?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let bytes = answer.get_ref().encoded_len();
        let p = answer.into_inner().progress.unwrap_or_default();
        println!(
            "GetProgress {}: {} engagements, {} sessions held, {:.0} hours, attendance {:.3}, milestones {}/{}, {} at risk; \
             answer {bytes} bytes, first call {took:.1} ms",
            cohort.label(),
            p.engagements,
            p.sessions_held,
            p.hours,
            p.attendance_rate,
            p.milestones_verified,
            p.milestones_total,
            p.at_risk.len()
        );
    }
    let shape = Shape { concurrency: args.concurrency, duration: Duration::from_secs(args.duration), rate: None };
    // Each round's (calls/s, p50, p99) per cohort.
    let mut figures: Vec<Vec<(f64, f64, f64)>> = cohorts.iter().map(|_| Vec::new()).collect();
    for round in 1..=args.rounds.max(1) {
        for (c, cohort) in cohorts.iter().enumerate() {
            let next = Arc::new(AtomicU64::new(round as u64 * 1_000_003));
            let report =
                drive(&t.channels, &shape, None, progress_call(*cohort, Arc::clone(&t.tokens), Arc::clone(&engagements), next)).await?;
            println!("round {round} GetProgress {}: {}", cohort.label(), report.summary("").trim_start_matches(": "));
            figures[c].push((
                (report.calls - report.errors) as f64 / report.elapsed.as_secs_f64(),
                quantile_ms(&report.latency, 0.5),
                quantile_ms(&report.latency, 0.99),
            ));
        }
    }
    for (c, cohort) in cohorts.iter().enumerate() {
        let rounds = &figures[c];
        println!(
            "GetProgress {}: {:.1} calls/s, p50 {:.3} p99 {:.3} ms (medians of {} rounds of {} s, {} callers, {} engagements, {} sessions)",
            cohort.label(),
            median(rounds.iter().map(|r| r.0).collect()),
            median(rounds.iter().map(|r| r.1).collect()),
            median(rounds.iter().map(|r| r.2).collect()),
            args.rounds.max(1),
            args.duration,
            args.concurrency,
            args.engagements,
            args.sessions
        );
    }
    println!("database kept for --reuse: {}", t.name);
    t.shutdown.cancel();
    Ok(())
}

/// Runs a scenario.
pub fn run(args: &CoachingArgs) -> anyhow::Result<()> {
    let redis = PrivateRedis::start(&args.redis, 9);
    // The service, its callers and the loader share the machine's cores, as a host would.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        // As in production: telemetry installed (spans recorded); logs at warn keep the output
        // readable (W4L_LOG overrides).
        let filter = std::env::var("W4L_LOG").unwrap_or_else(|_| "warn,sqlx=error".to_string());
        let config = PlatformConfig::from_source(&HashMap::from([("W4L_LOG".to_string(), filter)]))?;
        let _telemetry = work4life_platform::telemetry::init("coaching", &config)?;
        let key = SigningKey::generate("bench-coaching")?;
        match args.scenario {
            Scenario::ScheduleHot | Scenario::ScheduleSpread | Scenario::Schedule => schedule(args, &key, &redis.url).await,
            Scenario::Progress => progress(args, &key, &redis.url).await,
            Scenario::Load => {
                let t = progress_target(args, &key, &redis.url).await?;
                t.shutdown.cancel();
                Ok(())
            }
        }
    });
    // The host's tasks stop with the runtime, before the private Redis does.
    drop(runtime);
    drop(redis);
    result
}
