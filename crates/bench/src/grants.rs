//! `work4life-bench grants`: the grants service's figures (docs/benchmarks.md, "Grants (#5)").
//!
//! The real grants service runs in this process (`host::start`: migrations, outbox relay, the
//! intake and coaching consumers, the release job, the full stack with token verification and
//! telemetry installed) on a scratch database, with a private `redis-server`, and is called over
//! loopback gRPC with access tokens signed by a key the host trusts (program manager, finance
//! officer, finance checker, admin):
//! - `award-hot`: CreateAward by `--concurrency` callers, all on ONE budget line of a bench
//!   budget with its own program (`bench_hot`), each award for another accepted application;
//! - `award-spread`: the same over 50 lines (10 zones x 5 windows) of `bench_spread`;
//! - `disburse`: awards whose two tranches are dated today (payable at once), then per tranche
//!   RequestDisbursement (maker) then ApproveDisbursement (checker), driven concurrently; then
//!   CreatePaymentBatch (1,000) → ExportPaymentBatch → ImportPaymentResults (all paid) per batch;
//! - `report`: GetDonorReport (now and as of a past instant), GetBudget and GetBalances on a
//!   program of `--awards` awards and about 10 postings per award, written by bulk SQL and kept
//!   for `--reuse`.
//!
//! Accepted applications are written straight into grants' copy of intake's decisions
//! (`decided_applications`, `decided_members`), as grants' concurrency tests do: publishing
//! 100,000 decisions through the consumer would measure the consumer, not awards.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::private_redis::PrivateRedis;
use anyhow::Context as _;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use sqlx::{Connection as _, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status, transport::Channel};
use tonic_types::StatusExt as _;
use uuid::Uuid;
use work4life_platform::{
    auth::{Claims, InMemoryKeySource, RoleBinding, signing::SigningKey},
    config::PlatformConfig,
    host::{self, HostOptions},
};
use work4life_proto::{
    grants::{
        ApproveDisbursementRequest, Award, AwardKind, Budget, BudgetLine, CreateAwardRequest, CreateBudgetLineRequest, CreateBudgetRequest,
        CreatePaymentBatchRequest, ExportPaymentBatchRequest, GetBalancesRequest, GetBudgetRequest, GetDonorReportRequest,
        ImportPaymentResultsRequest, LineKind, Payee, PaymentMethod, PaymentResult, ReleaseCondition, RequestDisbursementRequest, Tranche,
        grants_service_client::GrantsServiceClient, release_condition::Condition,
    },
    types::Money,
};

use crate::{Report, Shape, connect, drive};

/// What to measure.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Scenario {
    /// CreateAward, every caller on one budget line.
    AwardHot,
    /// CreateAward spread over 50 lines (one per zone and window).
    AwardSpread,
    /// RequestDisbursement + ApproveDisbursement per tranche, then payment batches of 1,000.
    Disburse,
    /// GetDonorReport (now, as of a past instant), GetBudget, GetBalances on the large fixture.
    Report,
}

/// Options of `work4life-bench grants`.
#[derive(clap::Args, Clone)]
pub struct GrantsArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Callers in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds measured per round (award scenarios), after one second of warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Rounds (award scenarios); the figures are the medians of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Accepted applications written beforehand for the award scenarios (one award each).
    #[arg(long, default_value_t = 150_000)]
    applications: u64,
    /// `disburse`: awards made beforehand (two tranches each, payable today).
    #[arg(long, default_value_t = 3_000)]
    payable_awards: usize,
    /// `report`: awards of the fixture (about 10 postings each).
    #[arg(long, default_value_t = 100_000)]
    awards: u64,
    /// `report`: calls measured per RPC (one caller).
    #[arg(long, default_value_t = 20)]
    calls: usize,
    /// `report`: print EXPLAIN ANALYZE of the report's breakdown query.
    #[arg(long)]
    explain: bool,
    /// PostgreSQL server (no database).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Database name prefix: `<prefix>_award_hot`, `<prefix>_award_spread`, `<prefix>_disburse`,
    /// `<prefix>_report_<awards>`.
    #[arg(long, default_value = "w4l_bench_grants")]
    database: String,
    /// `report`: keep a fixture of the same size that is already loaded, instead of rebuilding it.
    #[arg(long)]
    reuse: bool,
    /// Redis for the outbox relay and the consumers; default: a private `redis-server` on a free
    /// loopback port (grants' consumer group must not meet anyone else's streams).
    #[arg(long)]
    redis: Option<String>,
}

/// The issuer and audience grants expects (`PlatformConfig`'s defaults).
const ISSUER: &str = "https://identity.work4life.local";
const AUDIENCE: &str = "work4life";
/// The program's time zone (tranche days).
const TIME_ZONE: &str = "Africa/Casablanca";
/// Zones and windows of `award-spread`'s 50 lines.
const SPREAD_ZONES: [&str; 10] =
    ["rabat_sale", "tanger", "oujda", "beni_mellal", "casablanca", "fes", "marrakech", "agadir", "nador", "laayoune"];
const SPREAD_WINDOWS: [&str; 5] =
    ["individual_startup", "collective_startup", "association_professionalisation", "enterprise_marketing", "labour_law_advice"];
/// One award: 10,000.00 EUR in two tranches.
const AWARD_MINOR: i64 = 1_000_000;

/// Access tokens the host accepts: all bound to one organisation and to no zone (every zone).
struct Tokens {
    admin: String,
    manager: String,
    maker: String,
    checker: String,
}

impl Tokens {
    fn new(key: &SigningKey) -> anyhow::Result<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let org = Uuid::now_v7();
        let sign = |role: &str, org: Option<Uuid>| {
            key.sign(&Claims {
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                sub: format!("accounts/{}", Uuid::now_v7()),
                exp: now + 24 * 3600,
                nbf: now - 5,
                iat: now,
                jti: Uuid::new_v4().to_string(),
                roles: vec![RoleBinding { role: role.into(), org: org.map(|o| format!("organizations/{o}")), zones: Vec::new() }],
            })
        };
        Ok(Self {
            admin: sign("admin", None)?,
            manager: sign("program_manager", Some(org))?,
            maker: sign("finance_officer", Some(org))?,
            checker: sign("finance_checker", Some(org))?,
        })
    }
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn rid() -> String {
    Uuid::new_v4().to_string()
}

fn eur(amount_minor: i64) -> Money {
    Money { currency_code: "EUR".into(), amount_minor }
}

/// The reason of a refusal (`ErrorInfo`), or its code.
fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_else(|| format!("{:?}", status.code()))
}

/// A host running grants on one database, and what calling it needs.
struct Target {
    shutdown: CancellationToken,
    pool: PgPool,
    channels: Vec<Channel>,
    tokens: Arc<Tokens>,
}

impl Target {
    fn client(&self) -> GrantsServiceClient<Channel> {
        GrantsServiceClient::new(self.channels[0].clone())
    }
}

/// Starts grants (migrations, seed) on database `name`, dropped first unless `keep`.
async fn start(args: &GrantsArgs, key: &SigningKey, redis: &str, name: &str, keep: bool) -> anyhow::Result<Target> {
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
    let pool_size = config.database_max_connections;
    let keys = Arc::new(InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk()] }));
    let running =
        host::start(HostOptions { config, services: vec![work4life_grants::SERVICE], key_source: Some(keys), migrate: true }).await?;
    let pool = work4life_platform::db::connect(&database_url, "grants", 4).await?;
    let seed = work4life_grants::SERVICE.seed.context("grants has a seed")?;
    seed(&pool).await?;
    let channels = connect(&format!("http://{}", running.addr), args.connections).await?;
    println!(
        "grants on {} (database {name}, service pool {pool_size} connections), {} callers on {} connections",
        running.addr, args.concurrency, args.connections
    );
    Ok(Target { shutdown: running.shutdown, pool, channels, tokens: Arc::new(Tokens::new(key)?) })
}

/// A budget of `program` (EUR) with these lines (code, window, zone, allocation), made over gRPC
/// by the admin; returns `budgets/{id}`.
async fn make_budget(t: &Target, program: &str, envelope: i64, lines: &[(String, String, String, i64)]) -> anyhow::Result<String> {
    let mut client = t.client();
    let budget = client
        .create_budget(bearer(
            CreateBudgetRequest {
                budget: Some(Budget {
                    program: format!("programs/{program}"),
                    display_name: format!("Bench {program}"),
                    envelope: Some(eur(envelope)),
                    ..Budget::default()
                }),
                request_id: rid(),
            },
            &t.tokens.admin,
        ))
        .await?
        .into_inner()
        .budget
        .context("budget")?
        .name;
    for (code, window, zone, allocation) in lines {
        client
            .create_budget_line(bearer(
                CreateBudgetLineRequest {
                    parent: budget.clone(),
                    line_id: code.clone(),
                    line: Some(BudgetLine {
                        display_name: format!("Bench line {code}"),
                        kind: LineKind::BeneficiaryFunds as i32,
                        heading: "Bench grants".into(),
                        window: window.clone(),
                        zone: zone.clone(),
                        allocation: Some(eur(*allocation)),
                        ..BudgetLine::default()
                    }),
                    request_id: rid(),
                },
                &t.tokens.admin,
            ))
            .await?;
    }
    Ok(budget)
}

/// Writes `n` applications intake accepted, of `program`: application `i` is in
/// `windows[i % k]`/`zones[i % k]` (k = the lists' length), with 1 to 3 members.
async fn accept_in_bulk(pool: &PgPool, program: &str, windows: &[String], zones: &[String], n: u64) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO decided_applications (application_id, program, window_code, zone, accepted, decided_at) \
         SELECT md5($1 || '.' || i)::uuid, $1, ($2::text[])[(i % cardinality($2::text[]))::int + 1], \
                ($3::text[])[(i % cardinality($3::text[]))::int + 1], true, now() - interval '1 day' \
         FROM generate_series(0::bigint, $4 - 1) i ORDER BY i",
    )
    .bind(program)
    .bind(windows)
    .bind(zones)
    .bind(n as i64)
    .execute(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT md5($1 || '.' || i)::uuid FROM generate_series(0::bigint, $2 - 1) i ORDER BY i")
        .bind(program)
        .bind(n as i64)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO decided_members (application_id, position, applicant_id, account_id, languages, gender, nationality, age_band) \
         SELECT md5($1 || '.' || i)::uuid, m, md5($1 || '.p.' || i || '.' || m)::uuid, md5($1 || '.c.' || i || '.' || m)::uuid, '{fr}', \
                (ARRAY['female', 'male', 'female', 'other', 'male'])[((i + m) % 5)::int + 1], (ARRAY['SN', 'CI', 'CM', 'GN', 'ML'])[((i * 7 + m) % 5)::int + 1], \
                (ARRAY['18-24', '25-34', '35-44', '45-54'])[((i + 3 * m) % 4)::int + 1] \
         FROM generate_series(0::bigint, $2 - 1) i CROSS JOIN LATERAL generate_series(0, (i % 3)::int) m",
    )
    .bind(program)
    .bind(n as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE decided_applications").execute(pool).await?;
    sqlx::query("ANALYZE decided_members").execute(pool).await?;
    println!("{n} accepted applications of programs/{program} written in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ids.iter().map(|id| format!("applications/{id}")).collect())
}

/// A start-up grant of [`AWARD_MINOR`] on `line` for `application`: two tranches on `day`.
fn award(line: &str, application: &str, day: &str) -> Award {
    let tranche = |amount: i64| Tranche {
        amount: Some(eur(amount)),
        condition: Some(ReleaseCondition { condition: Some(Condition::ReleaseDate(day.into())) }),
        ..Tranche::default()
    };
    Award {
        budget_line: line.into(),
        application: application.into(),
        kind: AwardKind::StartupGrant as i32,
        amount: Some(eur(AWARD_MINOR)),
        tranches: vec![tranche(AWARD_MINOR / 2), tranche(AWARD_MINOR - AWARD_MINOR / 2)],
        payee: Some(Payee {
            method: PaymentMethod::BankTransfer as i32,
            holder_name: "Coopérative Bench".into(),
            account: "011780000012345678901234".into(),
            account_hint: String::new(),
        }),
        ..Award::default()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Refusals by reason.
type Refusals = Arc<Mutex<BTreeMap<String, u64>>>;

fn refused(refusals: &Refusals, status: &Status) {
    if let Ok(mut r) = refusals.lock() {
        *r.entry(reason(status)).or_default() += 1;
    }
}

fn take(refusals: &Refusals) -> BTreeMap<String, u64> {
    refusals.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
}

/// CreateAward rounds: application `i` goes to `lines[i % lines.len()]`.
async fn award_rounds(args: &GrantsArgs, t: &Target, label: &str, lines: Vec<String>, applications: Vec<String>) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let applications = Arc::new(applications);
    let lines = Arc::new(lines);
    let refusals: Refusals = Arc::default();
    let token = t.tokens.manager.clone();
    let day = "2030-01-01".to_string();
    let call = {
        let (next, applications, lines, refusals) = (next.clone(), applications.clone(), lines.clone(), refusals.clone());
        move |channel: Channel| -> futures::future::BoxFuture<'static, bool> {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(application) = applications.get(i).cloned() else {
                return Box::pin(async { false });
            };
            let request =
                bearer(CreateAwardRequest { award: Some(award(&lines[i % lines.len()], &application, &day)), request_id: rid() }, &token);
            let refusals = refusals.clone();
            Box::pin(async move {
                match GrantsServiceClient::new(channel).create_award(request).await {
                    Ok(_) => true,
                    Err(status) => {
                        refused(&refusals, &status);
                        false
                    }
                }
            })
        }
    };
    let shape = Shape { concurrency: args.concurrency, duration: Duration::from_secs(args.duration), rate: None };
    let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds.max(1) {
        let before = next.load(Ordering::Relaxed);
        let report: Report = drive(&t.channels, &shape, None, call.clone()).await?;
        let made = next.load(Ordering::Relaxed) - before;
        let ok = (report.calls - report.errors) as f64 / report.elapsed.as_secs_f64();
        println!(
            "round {round} {}; {ok:.0} awards/s; {made} CreateAward calls in the round (warm-up included); refusals {:?}",
            report.summary(label),
            take(&refusals)
        );
        rates.push(ok);
        p50s.push(ms(&report.latency, 0.5));
        p99s.push(ms(&report.latency, 0.99));
    }
    let lines_state: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT l.code, l.allocated_minor, l.committed_minor FROM budget_lines l JOIN budgets b ON b.id = l.budget_id \
         WHERE b.program LIKE 'bench%' ORDER BY code",
    )
    .fetch_all(&t.pool)
    .await?;
    let awards: i64 = sqlx::query_scalar("SELECT count(*) FROM awards").fetch_one(&t.pool).await?;
    let committed: i64 = lines_state.iter().map(|l| l.2).sum();
    anyhow::ensure!(committed == awards * AWARD_MINOR, "committed {committed} != {awards} awards x {AWARD_MINOR}");
    println!(
        "{label}: median of {} rounds {:.0} awards/s, latency ms p50 {:.2} p99 {:.2} ({} lines; {awards} awards, committed = awards x amount)",
        rates.len(),
        median(rates),
        median(p50s),
        median(p99s),
        lines_state.len()
    );
    Ok(())
}

async fn award_hot(args: &GrantsArgs, key: &SigningKey, redis: &str) -> anyhow::Result<()> {
    let t = start(args, key, redis, &format!("{}_award_hot", args.database), false).await?;
    let allocation = (args.applications as i64 + 1) * AWARD_MINOR;
    let budget =
        make_budget(&t, "bench_hot", allocation, &[("hot".into(), "collective_startup".into(), "oujda".into(), allocation)]).await?;
    let apps = accept_in_bulk(&t.pool, "bench_hot", &["collective_startup".into()], &["oujda".into()], args.applications).await?;
    let result = award_rounds(args, &t, "award-hot CreateAward", vec![format!("{budget}/lines/hot")], apps).await;
    t.shutdown.cancel();
    result
}

async fn award_spread(args: &GrantsArgs, key: &SigningKey, redis: &str) -> anyhow::Result<()> {
    let t = start(args, key, redis, &format!("{}_award_spread", args.database), false).await?;
    let (mut windows, mut zones, mut specs) = (Vec::new(), Vec::new(), Vec::new());
    let per_line = (args.applications as i64 / 50 + 1) * AWARD_MINOR;
    for zone in SPREAD_ZONES {
        for (w, window) in SPREAD_WINDOWS.iter().enumerate() {
            windows.push(window.to_string());
            zones.push(zone.to_string());
            specs.push((format!("w{w}_{zone}"), window.to_string(), zone.to_string(), per_line));
        }
    }
    let budget = make_budget(&t, "bench_spread", per_line * 50, &specs).await?;
    let apps = accept_in_bulk(&t.pool, "bench_spread", &windows, &zones, args.applications).await?;
    let lines = specs.iter().map(|s| format!("{budget}/lines/{}", s.0)).collect();
    let result = award_rounds(args, &t, "award-spread CreateAward", lines, apps).await;
    t.shutdown.cancel();
    result
}

/// What a fixed amount of work took.
struct Fixed {
    elapsed: Duration,
    latency: Histogram<u64>,
    done: usize,
    refusals: BTreeMap<String, u64>,
}

impl Fixed {
    fn summary(&self, what: &str) -> String {
        format!(
            "{what}: {} in {:.2} s = {:.0}/s, latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}, refusals {:?}",
            self.done,
            self.elapsed.as_secs_f64(),
            self.done as f64 / self.elapsed.as_secs_f64(),
            ms(&self.latency, 0.5),
            ms(&self.latency, 0.9),
            ms(&self.latency, 0.99),
            self.latency.max() as f64 / 1000.0,
            self.refusals
        )
    }
}

/// Runs `work(i, channel)` for i in 0..n from `concurrency` callers; latency per item.
async fn run_fixed<F>(n: usize, concurrency: usize, channels: &[Channel], work: F) -> anyhow::Result<Fixed>
where
    F: Fn(usize, Channel) -> futures::future::BoxFuture<'static, Result<(), Status>> + Clone + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency.max(1) {
        let (next, work, channel) = (next.clone(), work.clone(), channels[c % channels.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut h = new_histogram();
            let mut refusals = BTreeMap::<String, u64>::new();
            let mut done = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return (h, refusals, done);
                }
                let t0 = Instant::now();
                match work(i, channel.clone()).await {
                    Ok(()) => {
                        done += 1;
                        let _ = h.record(t0.elapsed().as_micros() as u64);
                    }
                    Err(status) => *refusals.entry(reason(&status)).or_default() += 1,
                }
            }
        }));
    }
    let mut latency = new_histogram();
    let mut refusals = BTreeMap::new();
    let mut done = 0;
    for task in tasks {
        let (h, r, d) = task.await?;
        latency.add(&h)?;
        for (k, v) in r {
            *refusals.entry(k).or_default() += v;
        }
        done += d;
    }
    Ok(Fixed { elapsed: started.elapsed(), latency, done, refusals })
}

async fn disburse(args: &GrantsArgs, key: &SigningKey, redis: &str) -> anyhow::Result<()> {
    let t = start(args, key, redis, &format!("{}_disburse", args.database), false).await?;
    let n = args.payable_awards;
    let allocation = (n as i64 + 1) * AWARD_MINOR;
    let budget = make_budget(&t, "bench_pay", allocation, &[("pay".into(), String::new(), String::new(), allocation)]).await?;
    let line = format!("{budget}/lines/pay");
    let apps = Arc::new(accept_in_bulk(&t.pool, "bench_pay", &["individual_startup".into()], &["tanger".into()], n as u64).await?);
    let today: String = sqlx::query_scalar("SELECT ((now() AT TIME ZONE $1)::date)::text").bind(TIME_ZONE).fetch_one(&t.pool).await?;
    // Awards whose tranches are due today: payable at creation.
    let names = Arc::new(Mutex::new(vec![String::new(); n]));
    let made = {
        let (apps, names, token, line, today) = (apps.clone(), names.clone(), t.tokens.manager.clone(), line.clone(), today.clone());
        run_fixed(n, args.concurrency, &t.channels, move |i, channel| {
            let request = bearer(CreateAwardRequest { award: Some(award(&line, &apps[i], &today)), request_id: rid() }, &token);
            let names = names.clone();
            Box::pin(async move {
                let a = GrantsServiceClient::new(channel).create_award(request).await?.into_inner().award.unwrap_or_default();
                if let Ok(mut names) = names.lock() {
                    names[i] = a.name;
                }
                Ok(())
            })
        })
        .await?
    };
    println!("{}", made.summary("CreateAward (two tranches due today)"));
    let payable: i64 = sqlx::query_scalar("SELECT count(*) FROM tranches WHERE state = 'payable'").fetch_one(&t.pool).await?;
    let tranches: Arc<Vec<String>> = Arc::new(
        names
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .iter()
            .filter(|a| !a.is_empty())
            .flat_map(|a| [format!("{a}/tranches/1"), format!("{a}/tranches/2")])
            .collect(),
    );
    println!("{} tranches payable at once ({payable} in the database)", tranches.len());
    let pairs = {
        let (tranches, maker, checker) = (tranches.clone(), t.tokens.maker.clone(), t.tokens.checker.clone());
        run_fixed(tranches.len(), args.concurrency, &t.channels, move |i, channel| {
            let request = bearer(RequestDisbursementRequest { tranche: tranches[i].clone(), request_id: rid() }, &maker);
            let checker = checker.clone();
            Box::pin(async move {
                let mut client = GrantsServiceClient::new(channel);
                let d = client.request_disbursement(request).await?.into_inner().disbursement.unwrap_or_default();
                client
                    .approve_disbursement(bearer(ApproveDisbursementRequest { name: d.name, request_id: String::new() }, &checker))
                    .await?;
                Ok(())
            })
        })
        .await?
    };
    println!("{}", pairs.summary("RequestDisbursement + ApproveDisbursement (one disbursement each)"));
    // Payment batches of 1,000, one after the other (a finance officer's day).
    let mut client = t.client();
    let (mut create, mut export, mut import, mut paid) = (Vec::new(), Vec::new(), Vec::new(), 0usize);
    let mut bytes = 0usize;
    loop {
        let t0 = Instant::now();
        let batch = match client
            .create_payment_batch(bearer(
                CreatePaymentBatchRequest {
                    budget: budget.clone(),
                    currency_code: "EUR".into(),
                    method: PaymentMethod::BankTransfer as i32,
                    max_count: 1000,
                    request_id: rid(),
                },
                &t.tokens.maker,
            ))
            .await
        {
            Ok(r) => r.into_inner().payment_batch.context("batch")?,
            Err(status) if reason(&status) == "NOTHING_TO_PAY" => break,
            Err(status) => return Err(status.into()),
        };
        let t1 = Instant::now();
        let file = client
            .export_payment_batch(bearer(ExportPaymentBatchRequest { name: batch.name.clone() }, &t.tokens.maker))
            .await?
            .into_inner()
            .content;
        let t2 = Instant::now();
        bytes += file.len();
        let text = String::from_utf8(file)?;
        let results: Vec<PaymentResult> = text
            .lines()
            .skip(1)
            .filter_map(|row| row.split(',').nth(2))
            .map(|d| PaymentResult {
                disbursement: d.to_string(),
                paid: true,
                external_reference: format!("BANK-{}", Uuid::new_v4().simple()),
                failure_reason: String::new(),
            })
            .collect();
        let count = results.len();
        client
            .import_payment_results(bearer(
                ImportPaymentResultsRequest { name: batch.name.clone(), results, request_id: String::new() },
                &t.tokens.maker,
            ))
            .await?;
        let t3 = Instant::now();
        paid += count;
        if count >= 1000 {
            let per_k = |d: Duration| d.as_secs_f64() * 1000.0 * 1000.0 / count as f64;
            create.push(per_k(t1 - t0));
            export.push(per_k(t2 - t1));
            import.push(per_k(t3 - t2));
        }
        println!(
            "batch of {count}: create {:.0} ms, export {:.0} ms, import {:.0} ms",
            (t1 - t0).as_secs_f64() * 1000.0,
            (t2 - t1).as_secs_f64() * 1000.0,
            (t3 - t2).as_secs_f64() * 1000.0
        );
    }
    let (total, batches) = (median(create.clone()) + median(export.clone()) + median(import.clone()), create.len());
    println!(
        "payment batches: {paid} payments, {batches} full batches of 1,000; per 1,000 payments (median of the full batches) create {:.0} ms, export {:.0} ms, import results {:.0} ms, total {total:.0} ms; {:.0} bytes of bank file per payment",
        median(create),
        median(export),
        median(import),
        bytes as f64 / paid.max(1) as f64
    );
    let (paid_db, completed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM disbursements WHERE state = 'paid'), (SELECT count(*) FROM awards WHERE state = 'completed')",
    )
    .fetch_one(&t.pool)
    .await?;
    println!("paid disbursements {paid_db}, completed awards {completed}");
    t.shutdown.cancel();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The report fixture.

/// Zones (weight), windows (weight) of the report's program.
const REPORT_ZONES: [&str; 4] = ["rabat_sale", "tanger", "oujda", "beni_mellal"];
const REPORT_WINDOWS: [&str; 4] = ["individual_startup", "collective_startup", "job_placement", "enterprise_marketing"];
const REPORT_PROGRAM: &str = "bench_donor";
/// Awards written per transaction.
const REPORT_BATCH: u64 = 25_000;

/// A line of the report's budget: code, window, zone, kind, allocation.
type LineSpec = (String, Option<&'static str>, Option<&'static str>, &'static str, i64);

/// A time-ordered (v7-shaped) uuid from a timestamptz expression and a salt expression, in SQL.
fn uuid7_sql(ts: &str, salt: &str) -> String {
    format!(
        "(lpad(to_hex((extract(epoch FROM {ts}) * 1000)::bigint), 12, '0') || '7' || substr(md5({salt}), 1, 3) || '8' || substr(md5({salt}), 4, 15))::uuid"
    )
}

/// The budget (funded and allocated three years and two days ago), its 16 beneficiary lines
/// (zone x window) and a coaching and an operations line, in SQL.
async fn report_budget(pool: &PgPool, now: OffsetDateTime) -> anyhow::Result<Uuid> {
    let mut tx = pool.begin().await?;
    let budget = Uuid::now_v7();
    let at = now - time::Duration::days(3 * 365 + 2);
    let envelope: i64 = 200_000_000_000; // 2,000,000,000.00 EUR
    // (code, window, zone, kind, allocation)
    let mut lines: Vec<LineSpec> = Vec::new();
    for window in REPORT_WINDOWS {
        for zone in REPORT_ZONES {
            lines.push((format!("{window}_{zone}"), Some(window), Some(zone), "beneficiary_funds", 8_000_000_000));
        }
    }
    lines.push(("coaching".into(), None, None, "coaching", 10_000_000_000));
    lines.push(("operations".into(), None, None, "operations", 5_000_000_000));
    let allocated: i64 = lines.iter().map(|l| l.4).sum();
    sqlx::query(
        "INSERT INTO budgets (id, program, display_name, currency, envelope_minor, allocated_minor, created_by, created_at) \
         VALUES ($1, $2, 'Bench donor program', 'EUR', $3, $4, 'accounts/bench', $5)",
    )
    .bind(budget)
    .bind(REPORT_PROGRAM)
    .bind(envelope)
    .bind(allocated)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let post = |kind: &'static str, debit: String, credit: String, amount: i64, seconds: i64| {
        let id = Uuid::now_v7();
        (id, kind, debit, credit, amount, at + time::Duration::seconds(seconds))
    };
    let mut postings = vec![post("funding", format!("budgets/{budget}/unallocated"), format!("budgets/{budget}/envelope"), envelope, 0)];
    for (i, (code, window, zone, kind, amount)) in lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO budget_lines (id, budget_id, code, display_name, kind, heading, window_code, zone, allocated_minor, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'Bench', $6, $7, $8, $9)",
        )
        .bind(Uuid::now_v7())
        .bind(budget)
        .bind(code)
        .bind(format!("Bench {code}"))
        .bind(kind)
        .bind(window)
        .bind(zone)
        .bind(amount)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        postings.push(post(
            "allocation",
            format!("budgets/{budget}/lines/{code}/available"),
            format!("budgets/{budget}/unallocated"),
            *amount,
            1 + i as i64,
        ));
    }
    for (id, kind, debit, credit, amount, at) in postings {
        sqlx::query(
            "WITH p AS (INSERT INTO postings (id, budget_id, kind, posted_at, memo) VALUES ($1, $2, $3, $4, $3) RETURNING id) \
             INSERT INTO entries (posting_id, line_no, budget_id, account, amount_minor, posted_at) \
             SELECT p.id, e.n, $2, e.account, e.amount, $4 FROM p, UNNEST(ARRAY[1, 2]::smallint[], ARRAY[$5, $6]::text[], ARRAY[$7, -$7]::bigint[]) \
             AS e (n, account, amount)",
        )
        .bind(id)
        .bind(budget)
        .bind(kind)
        .bind(at)
        .bind(debit)
        .bind(credit)
        .bind(amount)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(budget)
}

/// Writes awards `lo..hi` of `n` (created evenly over the last three years, oldest first) with
/// their decided applications and members, beneficiaries, tranches and postings with entries, in
/// one transaction (the balance triggers run at its COMMIT).
///
/// Award `i` (hash `h`): zone 35/25/20/20%, window 40/25/20/15% (job placements are work
/// bursaries), 2 to 4 tranches (bursary months) of 300 to 2,250 EUR; 1 to 5 beneficiaries
/// (collective start-ups; 1 to 2 otherwise) drawn from 260,000 people, so some people are in
/// two awards. Postings: the commitment; 0 to 4 amendment pairs (commitment + release of half
/// a tranche, an hour apart); tranche `t` disbursed 90(t-1)+7 days after the award and paid 3
/// days later when that is past; 5% have the next tranche in payment; 4% are cancelled 10 days
/// after creation (a release of the whole amount, nothing paid).
async fn report_awards(conn: &mut sqlx::PgConnection, budget: Uuid, now: OffsetDateTime, lo: u64, hi: u64, n: u64) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query("DROP TABLE IF EXISTS bench_a").execute(&mut *tx).await?;
    let award_id = uuid7_sql("created", "'award' || i");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE bench_a ON COMMIT DROP AS \
         WITH g AS (SELECT i, abs(hashtext('award' || i)::bigint) AS h, \
                           $3::timestamptz - interval '1 day' - make_interval(secs => (3 * 365 - 2) * 86400.0 * ($4 - i)::float8 / $4) AS created \
                    FROM generate_series($1::bigint, $2 - 1) i), \
              w AS (SELECT g.*, CASE WHEN h % 100 < 35 THEN 'rabat_sale' WHEN h % 100 < 60 THEN 'tanger' WHEN h % 100 < 80 THEN 'oujda' ELSE 'beni_mellal' END AS zone, \
                           CASE WHEN (h / 100) % 100 < 40 THEN 'individual_startup' WHEN (h / 100) % 100 < 65 THEN 'collective_startup' \
                                WHEN (h / 100) % 100 < 85 THEN 'job_placement' ELSE 'enterprise_marketing' END AS window_code, \
                           2 + ((h / 10000) % 3)::int AS n_tr, 30000 + ((h / 30000) % 40) * 5000 AS monthly, \
                           abs(hashtext('c' || i)::bigint) % 100 < 4 AND created < $3::timestamptz - interval '11 days' AS cancelled, \
                           (abs(hashtext('k' || i)::bigint) % 5)::int AS k, abs(hashtext('q' || i)::bigint) % 20 = 0 AS in_pay_draw, \
                           abs(hashtext('m' || i)::bigint) AS hm \
                    FROM g) \
         SELECT w.*, {award_id} AS id, md5('app' || i)::uuid AS app, w.monthly * w.n_tr AS amount, \
                CASE WHEN w.window_code = 'collective_startup' THEN 1 + (hm % 5)::int ELSE 1 + (hm % 2)::int END AS people, \
                CASE WHEN w.cancelled THEN 0 \
                     ELSE greatest(0, least(w.n_tr, floor((extract(epoch FROM $3::timestamptz - w.created) / 86400 - 10) / 90)::int + 1)) END AS paid \
         FROM w"
    )))
    .bind(lo as i64)
    .bind(hi as i64)
    .bind(now)
    .bind(n as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO decided_applications (application_id, program, window_code, zone, accepted, employer, decided_at) \
         SELECT app, $1, window_code, zone, true, CASE WHEN window_code = 'job_placement' THEN md5('employer' || (i % 3000))::uuid END, \
                created - interval '1 day' FROM bench_a ORDER BY i",
    )
    .bind(REPORT_PROGRAM)
    .execute(&mut *tx)
    .await?;
    // People: person p's profile depends on p only.
    let people = "SELECT a.app, a.id, m AS position, (((a.i * 5 + m) * 7919) % 260000) AS p FROM bench_a a CROSS JOIN LATERAL generate_series(0, a.people - 1) m";
    let profile = "md5('person' || x.p)::uuid, md5('account' || x.p)::uuid, \
         CASE WHEN x.p % 3 = 0 THEN ARRAY['fr'] WHEN x.p % 3 = 1 THEN ARRAY['fr', 'wo'] ELSE ARRAY['ar'] END, \
         CASE WHEN abs(hashtext('g' || x.p)::bigint) % 100 < 45 THEN 'female' WHEN abs(hashtext('g' || x.p)::bigint) % 100 < 95 THEN 'male' \
              WHEN abs(hashtext('g' || x.p)::bigint) % 100 < 97 THEN 'other' ELSE 'undisclosed' END, \
         (ARRAY['CI', 'SN', 'GN', 'ML', 'CM', 'CD', 'NG', 'SY', 'SD', 'BF', 'NE', 'CG', 'TD', 'MR', 'YE', 'GA', 'GM', 'GH', 'LR', 'SL'])[(abs(hashtext('n' || x.p)::bigint) % 20)::int + 1], \
         (ARRAY['18-24', '25-34', '25-34', '35-44', '35-44', '45-54', '55+'])[(abs(hashtext('b' || x.p)::bigint) % 7)::int + 1]";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO decided_members (application_id, position, applicant_id, account_id, languages, gender, nationality, age_band) \
         SELECT x.app, x.position, {profile} FROM ({people}) x"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO awards (id, line_id, budget_id, application_id, program, window_code, zone, kind, currency, amount_minor, line_amount_minor, \
                             bursary_monthly_minor, bursary_months, employer, bursary_start, payee_method, payee_holder, payee_account, payee_key_id, \
                             payee_hint, state, cancel_reason, cancelled_at, version, created_by, created_at, updated_at) \
         SELECT a.id, l.id, $1, a.app, $2, a.window_code, a.zone, CASE WHEN a.window_code = 'job_placement' THEN 'work_bursary' ELSE 'startup_grant' END, \
                'EUR', a.amount, a.amount, \
                CASE WHEN a.window_code = 'job_placement' THEN a.monthly END, CASE WHEN a.window_code = 'job_placement' THEN a.n_tr END, \
                CASE WHEN a.window_code = 'job_placement' THEN md5('employer' || (a.i % 3000))::uuid END, \
                CASE WHEN a.window_code = 'job_placement' THEN date_trunc('month', a.created)::date END, \
                'bank_transfer', 'Bench payee', '\\x00'::bytea, 'bench', '••••1234', \
                CASE WHEN a.cancelled THEN 'cancelled' WHEN a.paid = a.n_tr THEN 'completed' ELSE 'active' END, \
                CASE WHEN a.cancelled THEN 'bench' END, CASE WHEN a.cancelled THEN a.created + interval '10 days' END, \
                1 + a.k * 2, 'accounts/bench', a.created, a.created \
         FROM bench_a a JOIN budget_lines l ON l.budget_id = $1 AND l.code = a.window_code || '_' || a.zone ORDER BY a.i",
    )
    .bind(budget)
    .bind(REPORT_PROGRAM)
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO award_beneficiaries (award_id, position, applicant_id, account_id, languages, gender, nationality, age_band) \
         SELECT x.id, x.position, {profile} FROM ({people}) x"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO tranches (award_id, number, amount_minor, line_amount_minor, condition_kind, release_date, state, payable_at) \
         SELECT a.id, t, a.monthly, a.monthly, CASE WHEN a.window_code = 'job_placement' THEN 'bursary_month' ELSE 'date' END, \
                CASE WHEN a.window_code = 'job_placement' THEN (date_trunc('month', a.created) + make_interval(months => t - 1))::date \
                     ELSE (a.created + make_interval(days => 90 * (t - 1)))::date END, \
                CASE WHEN t <= a.paid THEN 'paid' WHEN a.cancelled THEN 'cancelled' WHEN t = a.paid + 1 AND a.in_pay_draw THEN 'in_payment' \
                     WHEN a.created + make_interval(days => 90 * (t - 1)) <= $1 THEN 'payable' ELSE 'scheduled' END, \
                CASE WHEN a.created + make_interval(days => 90 * (t - 1)) <= $1 THEN a.created + make_interval(days => 90 * (t - 1)) END \
         FROM bench_a a CROSS JOIN LATERAL generate_series(1, a.n_tr) t ORDER BY a.i, t",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // Postings: (award, kind, seq within the award, amount, posted_at, debit stage, credit stage).
    let posting_id = uuid7_sql("p.at", "p.award::text || p.kind || p.n");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TEMP TABLE bench_p ON COMMIT DROP AS \
         WITH p AS ( \
             SELECT a.id AS award, a.window_code || '_' || a.zone AS code, 'commitment' AS kind, 0 AS n, a.amount, a.created AS at, \
                    'committed' AS debit, 'available' AS credit FROM bench_a a \
             UNION ALL \
             SELECT a.id, a.window_code || '_' || a.zone, x.kind, j, a.monthly / 2, a.created + make_interval(hours => j, mins => x.mins), x.debit, x.credit \
             FROM bench_a a CROSS JOIN LATERAL generate_series(1, a.k) j \
             CROSS JOIN (VALUES ('commitment', 0, 'committed', 'available'), ('release', 30, 'available', 'committed')) AS x (kind, mins, debit, credit) \
             UNION ALL \
             SELECT a.id, a.window_code || '_' || a.zone, x.kind, t, a.monthly, a.created + make_interval(days => 90 * (t - 1) + x.days), x.debit, x.credit \
             FROM bench_a a CROSS JOIN LATERAL generate_series(1, a.paid) t \
             CROSS JOIN (VALUES ('disbursement', 7, 'in_payment', 'committed'), ('payment', 10, 'disbursed', 'in_payment')) AS x (kind, days, debit, credit) \
             UNION ALL \
             SELECT a.id, a.window_code || '_' || a.zone, 'disbursement', a.paid + 1, a.monthly, \
                    least(a.created + make_interval(days => 90 * a.paid + 7), $2::timestamptz - interval '1 hour'), 'in_payment', 'committed' \
             FROM bench_a a WHERE a.in_pay_draw AND NOT a.cancelled AND a.paid < a.n_tr \
             UNION ALL \
             SELECT a.id, a.window_code || '_' || a.zone, 'release', 99, a.amount, a.created + interval '10 days', 'available', 'committed' \
             FROM bench_a a WHERE a.cancelled) \
         SELECT {posting_id} AS id, p.* FROM p"
    )))
    .bind(budget)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO postings (id, budget_id, kind, posted_at, award_id, memo) \
         SELECT id, $1, kind, at, award, kind || ' of awards/' || award FROM bench_p ORDER BY at, id",
    )
    .bind(budget)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO entries (posting_id, line_no, budget_id, account, amount_minor, posted_at, award_id) \
         SELECT id, 1::smallint, $1, 'budgets/' || $1::text || '/lines/' || code || '/' || debit, amount, at, award FROM bench_p \
         UNION ALL \
         SELECT id, 2::smallint, $1, 'budgets/' || $1::text || '/lines/' || code || '/' || credit, -amount, at, award FROM bench_p \
         ORDER BY 1, 2",
    )
    .bind(budget)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What a previous run loaded into `url` (awards, postings), if its schema is the one the
/// migrations make today.
async fn loaded(url: &str) -> Option<(u64, u64)> {
    let pool = work4life_platform::db::connect(url, "grants", 1).await.ok()?;
    let sizes: Option<(i64, i64)> =
        sqlx::query_as("SELECT awards, postings FROM bench_meta ORDER BY loaded_at DESC LIMIT 1").fetch_optional(&pool).await.ok()?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.ok()?;
    pool.close().await;
    let mut wanted: Vec<(i64, Vec<u8>)> = work4life_platform::db::PLATFORM_MIGRATIONS
        .iter()
        .chain(work4life_grants::MIGRATIONS.iter())
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    wanted.sort();
    if applied != wanted {
        println!("grants fixture: its migrations changed since it was loaded; loading it again");
        return None;
    }
    sizes.map(|(a, p)| (a as u64, p as u64))
}

/// `calls` sequential calls of `call`; latency histogram.
async fn timed<F, Fut>(calls: usize, mut call: F) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Status>>,
{
    call().await?; // warm-up: the statement caches and the buffer cache
    let mut h = new_histogram();
    for _ in 0..calls {
        let t0 = Instant::now();
        call().await?;
        h.record(t0.elapsed().as_micros() as u64)?;
    }
    Ok(h)
}

fn latency_line(label: &str, h: &Histogram<u64>) -> String {
    format!(
        "{label}: {} calls, latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        h.len(),
        ms(h, 0.5),
        ms(h, 0.9),
        ms(h, 0.99),
        h.max() as f64 / 1000.0
    )
}

async fn report(args: &GrantsArgs, key: &SigningKey, redis: &str) -> anyhow::Result<()> {
    let name = format!("{}_report_{}", args.database, args.awards);
    let url = format!("{}/{name}", args.server);
    let previous = if args.reuse { loaded(&url).await.filter(|(a, _)| *a == args.awards) } else { None };
    let t = start(args, key, redis, &name, previous.is_some()).await?;
    let postings = match previous {
        Some((_, postings)) => {
            println!("report fixture of {} awards and {postings} postings: reusing database {name}", args.awards);
            postings
        }
        None => {
            let started = Instant::now();
            let now = OffsetDateTime::now_utc();
            let budget = report_budget(&t.pool, now).await?;
            let mut conn = t.pool.acquire().await?;
            let mut lo = 0;
            while lo < args.awards {
                let hi = (lo + REPORT_BATCH).min(args.awards);
                report_awards(&mut conn, budget, now, lo, hi, args.awards).await?;
                lo = hi;
                eprintln!("  {lo} of {} awards written ({:.0} s)", args.awards, started.elapsed().as_secs_f64());
            }
            sqlx::query(
                "UPDATE budget_lines l SET committed_minor = x.c FROM \
                 (SELECT line_id, sum(line_amount_minor)::bigint AS c FROM awards WHERE state <> 'cancelled' GROUP BY line_id) x \
                 WHERE x.line_id = l.id",
            )
            .execute(&mut *conn)
            .await?;
            sqlx::query("VACUUM (ANALYZE)").execute(&mut *conn).await?;
            let postings: i64 = sqlx::query_scalar("SELECT count(*) FROM postings").fetch_one(&mut *conn).await?;
            sqlx::query("CREATE TABLE IF NOT EXISTS bench_meta (awards bigint NOT NULL, postings bigint NOT NULL, load_secs double precision NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now())")
                .execute(&mut *conn)
                .await?;
            sqlx::query("INSERT INTO bench_meta (awards, postings, load_secs) VALUES ($1, $2, $3)")
                .bind(args.awards as i64)
                .bind(postings)
                .bind(started.elapsed().as_secs_f64())
                .execute(&mut *conn)
                .await?;
            println!("report fixture: {} awards, {postings} postings loaded in {:.1} s", args.awards, started.elapsed().as_secs_f64());
            postings as u64
        }
    };
    // The books agree: every line's counter is its committed + in_payment + disbursed balances.
    let (off, negative, entries, beneficiaries, persons, size): (i64, i64, i64, i64, i64, String) = sqlx::query_as(
        "WITH s AS (SELECT split_part(account, '/', 4) AS code, split_part(account, '/', 5) AS stage, sum(amount_minor) AS b \
                    FROM entries WHERE account LIKE '%/lines/%' GROUP BY 1, 2) \
         SELECT (SELECT count(*) FROM budget_lines l WHERE l.committed_minor <> \
                    (SELECT coalesce(sum(b), 0) FROM s WHERE s.code = l.code AND s.stage IN ('committed', 'in_payment', 'disbursed')) \
                    AND l.budget_id = (SELECT id FROM budgets WHERE program = $1)), \
                (SELECT count(*) FROM s WHERE b < 0), (SELECT count(*) FROM entries), (SELECT count(*) FROM award_beneficiaries), \
                (SELECT count(DISTINCT applicant_id) FROM award_beneficiaries), pg_size_pretty(pg_database_size(current_database()))",
    )
    .bind(REPORT_PROGRAM)
    .fetch_one(&t.pool)
    .await?;
    println!(
        "fixture: {postings} postings, {entries} entries, {beneficiaries} beneficiaries ({persons} people), database {size}; \
         lines whose counter disagrees with the ledger: {off}; negative stage balances: {negative}"
    );
    let budget: Uuid = sqlx::query_scalar("SELECT id FROM budgets WHERE program = $1").bind(REPORT_PROGRAM).fetch_one(&t.pool).await?;
    let now = OffsetDateTime::now_utc();
    let past = now - time::Duration::days(540);
    let stamp = |t: OffsetDateTime| prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: 0 };
    let client = t.client();
    let tokens = t.tokens.clone();
    let program = format!("programs/{REPORT_PROGRAM}");
    for (label, as_of) in [("GetDonorReport now", None), ("GetDonorReport as of 540 days ago", Some(stamp(past)))] {
        let first = client
            .clone()
            .get_donor_report(bearer(GetDonorReportRequest { program: program.clone(), as_of }, &tokens.manager))
            .await?
            .into_inner()
            .report
            .unwrap_or_default();
        println!(
            "{label}: committed {} disbursed {} EUR cents, {} start-ups, {} bursaries, {} persons, {} nationality rows",
            first.committed_minor,
            first.disbursed_minor,
            first.startups_funded,
            first.bursaries_granted,
            first.persons_funded,
            first.by_nationality.len()
        );
        let h = timed(args.calls, || {
            let mut c = client.clone();
            let r = bearer(GetDonorReportRequest { program: program.clone(), as_of }, &tokens.manager);
            async move { c.get_donor_report(r).await.map(|_| ()) }
        })
        .await?;
        println!("{}", latency_line(label, &h));
    }
    let budget_name = format!("budgets/{budget}");
    for (label, as_of) in [("GetBudget now", None), ("GetBudget as of 540 days ago", Some(stamp(past)))] {
        let h = timed(args.calls, || {
            let mut c = client.clone();
            let r = bearer(GetBudgetRequest { name: budget_name.clone(), as_of }, &tokens.manager);
            async move { c.get_budget(r).await.map(|_| ()) }
        })
        .await?;
        println!("{}", latency_line(label, &h));
    }
    for (label, as_of) in [("GetBalances now", None), ("GetBalances as of 540 days ago", Some(stamp(past)))] {
        let h = timed(args.calls, || {
            let mut c = client.clone();
            let r = bearer(GetBalancesRequest { budget: budget_name.clone(), as_of }, &tokens.manager);
            async move { c.get_balances(r).await.map(|_| ()) }
        })
        .await?;
        println!("{}", latency_line(label, &h));
    }
    if args.explain {
        for (label, at) in [("now", now), ("540 days ago", past)] {
            let plan: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (ANALYZE, BUFFERS) {}", work4life_grants::reports::BREAKDOWNS)))
                    .bind(REPORT_PROGRAM)
                    .bind(at)
                    .fetch_all(&t.pool)
                    .await?;
            println!("EXPLAIN ANALYZE of the breakdowns as of {label}:\n{}", plan.join("\n"));
        }
        for (label, sql) in [(
            "the ledger's lines as of now (GetBudget, GetBalances, the report)",
            "EXPLAIN (ANALYZE, BUFFERS) SELECT account, sum(amount_minor)::bigint FROM entries WHERE budget_id = $1 \
                 AND ($2::timestamptz IS NULL OR posted_at <= $2) GROUP BY account ORDER BY account",
        )] {
            let plan: Vec<String> = sqlx::query_scalar(sql).bind(budget).bind(Some(now)).fetch_all(&t.pool).await?;
            println!("EXPLAIN ANALYZE of {label}:\n{}", plan.join("\n"));
        }
    }
    t.shutdown.cancel();
    Ok(())
}

/// `work4life-bench grants`.
pub fn run(args: &GrantsArgs) -> anyhow::Result<()> {
    let redis = PrivateRedis::start(&args.redis, 10);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let key = SigningKey::generate("bench-grants")?;
    let result = runtime.block_on(async {
        match args.scenario {
            Scenario::AwardHot => award_hot(args, &key, &redis.url).await,
            Scenario::AwardSpread => award_spread(args, &key, &redis.url).await,
            Scenario::Disburse => disburse(args, &key, &redis.url).await,
            Scenario::Report => report(args, &key, &redis.url).await,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(redis);
    result
}
