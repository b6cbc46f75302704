//! `work4life-bench`: the load generator every figure in docs/benchmarks.md comes from, and the
//! bare echo server those figures are compared with.
//!
//! ```text
//! work4life-bench serve --mode bare|stack         an echo server; prints {"addr","token"} on stdout
//! work4life-bench load --addr URL [--rate R] ...  closed loop (default) or fixed rate
//! work4life-bench compare [--duration 10] ...     bare vs full stack, each in its own process, one run
//! work4life-bench intake --scenario register|submit|list|load ...   the intake service next to pgbench (intake.rs)
//! work4life-bench coaching --scenario schedule-hot|schedule-spread|progress|load ...   the coaching service (coaching.rs)
//! work4life-bench grants --scenario award-hot|award-spread|disburse|report ...   the grants service (grants.rs)
//! work4life-bench notifications [--events 10000] ...   a burst of events to the SMS provider (notifications.rs)
//! ```
//! Closed loop: `concurrency` callers each send the next call when the previous answers
//! (throughput). Fixed rate: calls start on a schedule whatever the answers do, and latency is
//! measured from the scheduled start (no coordinated omission).

mod coaching;
mod grants;
mod intake;
mod notifications;
mod private_redis;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command as Process, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tonic::{
    Request, Response, Status,
    transport::{Channel, Endpoint},
};
use work4life_platform::{
    auth::{Claims, InMemoryKeySource, RoleBinding, TokenVerifier, signing::SigningKey},
    config::{PlatformConfig, TokenConfig},
    stack::{AuthPolicy, ServerStack, StackConfig},
};
use work4life_proto::identity::identity_service_client::IdentityServiceClient;
use work4life_proto::testing::{
    EchoRequest, EchoResponse,
    echo_service_client::EchoServiceClient,
    echo_service_server::{EchoService, EchoServiceServer},
};

#[derive(Parser)]
#[command(name = "work4life-bench", about = "gRPC load generator and baseline echo server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Mode {
    /// tonic with no middleware at all: the baseline.
    Bare,
    /// the full work4life stack (request id, trace span, admission, token check, deadline, metrics).
    Stack,
}

/// The call a load run makes.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Rpc {
    /// `work4life.testing.v1.EchoService/Echo`.
    Echo,
    /// `work4life.identity.v1.IdentityService/WhoAmI` (needs `--token`).
    WhoAmI,
    /// `work4life.identity.v1.IdentityService/GetKeySet`.
    GetKeySet,
}

#[derive(clap::Args, Clone)]
struct LoadArgs {
    /// Which RPC to call.
    #[arg(long, value_enum, default_value = "echo")]
    rpc: Rpc,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Callers in flight (closed loop) or the cap on in-flight calls (fixed rate).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of measurement (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Calls per second for a fixed-rate run; absent means closed loop.
    #[arg(long)]
    rate: Option<u64>,
    /// Payload bytes per call.
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Serve EchoService on 127.0.0.1 (port 0), bare or behind the stack.
    Serve {
        #[arg(long, value_enum)]
        mode: Mode,
        /// Tokio worker threads of the server.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Stack mode without telemetry installed (to see what tracing costs).
        #[arg(long)]
        no_telemetry: bool,
    },
    /// Drive an echo server.
    Load {
        /// Server URL, `http://127.0.0.1:50051`.
        #[arg(long)]
        addr: String,
        /// Bearer token to send.
        #[arg(long, default_value = "")]
        token: String,
        #[command(flatten)]
        args: LoadArgs,
    },
    /// What verifying an access token costs a service: signature checks and cache hits.
    Verify {
        /// Tokens verified per measurement.
        #[arg(long, default_value_t = 20_000)]
        count: usize,
    },
    /// Password checks per second on one core, at identity's argon2id parameters.
    Argon2 {
        /// Hashes verified.
        #[arg(long, default_value_t = 50)]
        count: usize,
    },
    /// The intake service over real gRPC, next to pgbench running the same SQL (docs/benchmarks.md, "Intake").
    Intake(intake::IntakeArgs),
    /// The coaching service over real gRPC: scheduling under contention and progress reports (docs/benchmarks.md, "Coaching (#6)").
    Coaching(coaching::CoachingArgs),
    /// The grants service over real gRPC: awards on one line and on many, disbursements, the donor's report (docs/benchmarks.md, "Grants (#5)").
    Grants(grants::GrantsArgs),
    /// The notifications service end to end: a burst of events from the outbox to the SMS provider (docs/benchmarks.md, "Notifications (#7)").
    Notifications(notifications::NotificationsArgs),
    /// Run the same load against the bare server and the full stack, each in its own process.
    Compare {
        /// Tokio worker threads of each server (the machine has 2 cores; the client gets the rest).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Alternating rounds of bare and stack; the figure is the median of the rounds' ratios.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Run the stack server without telemetry installed (what tracing and logging cost).
        #[arg(long)]
        no_telemetry: bool,
        #[command(flatten)]
        args: LoadArgs,
    },
}

struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let r = request.into_inner();
        Ok(Response::new(EchoResponse { message: r.message, payload: r.payload }))
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { mode, threads, no_telemetry } => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?.block_on(serve(mode, !no_telemetry))
        }
        Command::Load { addr, token, args } => {
            let report = client_runtime()?.block_on(load(&addr, &token, &args, None))?;
            println!("{}", report.summary("load"));
            Ok(())
        }
        Command::Compare { threads, rounds, no_telemetry, args } => compare(threads, rounds, no_telemetry, &args),
        Command::Verify { count } => client_runtime()?.block_on(verify_cost(count)),
        Command::Argon2 { count } => argon2_rate(count),
        Command::Intake(args) => intake::run(&args),
        Command::Coaching(args) => coaching::run(&args),
        Command::Grants(args) => grants::run(&args),
        Command::Notifications(args) => notifications::run(&args),
    }
}

fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

const ISSUER: &str = "https://identity.bench";

async fn serve(mode: Mode, telemetry: bool) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tokio_stream_from(listener);
    let key = SigningKey::generate("bench-1")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let token = key.sign(&Claims {
        iss: ISSUER.into(),
        aud: "work4life".into(),
        sub: "accounts/bench".into(),
        exp: now + 3600,
        nbf: now - 1,
        iat: now,
        jti: "bench".into(),
        roles: vec![RoleBinding { role: "officer".into(), org: Some("organizations/cefa".into()), zones: vec!["oujda".into()] }],
    })?;
    println!("{}", serde_json::json!({ "addr": format!("http://{addr}"), "token": token }));
    match mode {
        Mode::Bare => {
            tonic::transport::Server::builder().add_service(EchoServiceServer::new(Echo)).serve_with_incoming(incoming).await?;
        }
        Mode::Stack => {
            // As in production: telemetry installed (spans recorded, JSON logs at info).
            let config = PlatformConfig::from_env()?;
            let _telemetry = if telemetry { Some(work4life_platform::telemetry::init("bench-stack", &config)?) } else { None };
            let keys = InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk()] });
            let verifier = TokenVerifier::new(
                Arc::new(keys),
                TokenConfig { issuer: ISSUER.into(), audience: "work4life".into(), leeway: Duration::from_secs(30) },
            );
            let stack = ServerStack::new(StackConfig {
                max_concurrent_calls: config.max_concurrent_calls,
                default_deadline: config.default_deadline,
                verifier: Some(Arc::new(verifier)),
                auth_policy: AuthPolicy::default(),
            });
            tonic::transport::Server::builder()
                .layer(stack)
                .add_service(EchoServiceServer::new(Echo))
                .serve_with_incoming(incoming)
                .await?;
        }
    }
    Ok(())
}

fn tokio_stream_from(listener: tokio::net::TcpListener) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((accepted, listener))
    })
}

/// What one run measured.
struct Report {
    /// Server CPU time per measured call, when the server's pid was known (Linux /proc).
    cpu_us_per_call: Option<f64>,
    calls: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Report {
    fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn summary(&self, label: &str) -> String {
        let us = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let cpu = self.cpu_us_per_call.map(|c| format!(", server CPU {c:.1} us/call")).unwrap_or_default();
        format!(
            "{label}: {:.0} calls/s, {} calls, {} errors, latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}{cpu}",
            self.throughput(),
            self.calls,
            self.errors,
            us(0.50),
            us(0.90),
            us(0.99),
            self.latency.max() as f64 / 1000.0
        )
    }
}

/// `message` with the bearer token, if any.
fn authorized<T>(message: T, auth: &Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(a) = auth {
        request.metadata_mut().insert("authorization", a.clone());
    }
    request
}

/// CPU time (user + system) a process has used, in microseconds, from /proc/<pid>/stat.
fn cpu_micros(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15, in clock ticks.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1_000_000.0 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn load(addr: &str, token: &str, args: &LoadArgs, server_pid: Option<u32>) -> anyhow::Result<Report> {
    let channels = connect(addr, args.connections).await?;
    let request = EchoRequest { message: "bench".into(), payload: vec![7u8; args.payload] };
    let auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        if token.is_empty() { None } else { Some(format!("Bearer {token}").parse()?) };
    let rpc = args.rpc;
    let call = move |channel: Channel| -> futures::future::BoxFuture<'static, bool> {
        match rpc {
            Rpc::Echo => {
                let r = authorized(request.clone(), &auth);
                Box::pin(async move { EchoServiceClient::new(channel).echo(r).await.is_ok() })
            }
            Rpc::WhoAmI => {
                let r = authorized(work4life_proto::identity::WhoAmIRequest {}, &auth);
                Box::pin(async move { IdentityServiceClient::new(channel).who_am_i(r).await.is_ok() })
            }
            Rpc::GetKeySet => {
                let r = authorized(work4life_proto::identity::GetKeySetRequest {}, &auth);
                Box::pin(async move { IdentityServiceClient::new(channel).get_key_set(r).await.is_ok() })
            }
        }
    };
    let shape = Shape { concurrency: args.concurrency, duration: Duration::from_secs(args.duration), rate: args.rate };
    drive(&channels, &shape, server_pid, call).await
}

/// `connections` HTTP/2 connections to `addr` (at least one).
async fn connect(addr: &str, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..connections.max(1) {
        let channel =
            Endpoint::from_shared(addr.to_string())?.tcp_nodelay(true).connect().await.with_context(|| format!("connecting to {addr}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// How a run loads the server.
struct Shape {
    /// Callers in flight (closed loop) or the cap on in-flight calls (fixed rate).
    concurrency: usize,
    /// Measured time, after one second of warm-up.
    duration: Duration,
    /// Calls per second for a fixed-rate run; `None`: closed loop.
    rate: Option<u64>,
}

/// Runs `call` (one RPC on the given channel; true when it succeeded) in a closed loop or at a
/// fixed rate, spreading callers over `channels`, and measures it after one second of warm-up.
async fn drive<F>(channels: &[Channel], shape: &Shape, server_pid: Option<u32>, call: F) -> anyhow::Result<Report>
where
    F: Fn(Channel) -> futures::future::BoxFuture<'static, bool> + Clone + Send + 'static,
{
    anyhow::ensure!(!channels.is_empty(), "no channel to call on");
    let warmup = Duration::from_secs(1);
    let measure = shape.duration;
    let started = Instant::now();
    let measure_from = started + warmup;
    let stop_at = measure_from + measure;
    let totals = Arc::new(Mutex::new((0u64, 0u64, Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)));
    let cpu_window = server_pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let start = cpu_micros(pid);
            tokio::time::sleep_until(stop_at.into()).await;
            Some(cpu_micros(pid)? - start?)
        })
    });

    let mut tasks = Vec::new();
    match shape.rate {
        None => {
            for i in 0..shape.concurrency.max(1) {
                let channel = channels[i % channels.len()].clone();
                let totals = Arc::clone(&totals);
                let call = call.clone();
                tasks.push(tokio::spawn(async move {
                    let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"));
                    let (mut calls, mut errors) = (0u64, 0u64);
                    loop {
                        let t0 = Instant::now();
                        if t0 >= stop_at {
                            break;
                        }
                        let ok = call(channel.clone()).await;
                        if t0 >= measure_from {
                            calls += 1;
                            errors += u64::from(!ok);
                            let _ = local.record(t0.elapsed().as_micros() as u64);
                        }
                    }
                    let mut t = totals.lock().await;
                    t.0 += calls;
                    t.1 += errors;
                    let _ = t.2.add(&local);
                }));
            }
        }
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
            let permits = Arc::new(tokio::sync::Semaphore::new(shape.concurrency.max(1)));
            let mut next = started;
            let mut i = 0usize;
            while next < stop_at {
                tokio::time::sleep_until(next.into()).await;
                let scheduled = next;
                next += interval;
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    // Over the in-flight cap: the call is counted as an error (the server is not keeping up).
                    if scheduled >= measure_from {
                        let mut t = totals.lock().await;
                        t.0 += 1;
                        t.1 += 1;
                    }
                    continue;
                };
                let channel = channels[i % channels.len()].clone();
                i += 1;
                let totals = Arc::clone(&totals);
                let call = call.clone();
                tasks.push(tokio::spawn(async move {
                    let ok = call(channel).await;
                    drop(permit);
                    if scheduled >= measure_from {
                        let mut t = totals.lock().await;
                        t.0 += 1;
                        t.1 += u64::from(!ok);
                        let _ = t.2.record(scheduled.elapsed().as_micros() as u64);
                    }
                }));
            }
        }
    }
    for task in tasks {
        task.await?;
    }
    let (calls, errors, latency) = Arc::try_unwrap(totals).map_err(|_| anyhow::anyhow!("tasks still hold totals"))?.into_inner();
    let cpu = match cpu_window {
        Some(task) => task.await?,
        None => None,
    };
    let cpu_us_per_call = cpu.filter(|_| calls > 0).map(|c| c / calls as f64);
    Ok(Report { cpu_us_per_call, calls, errors, elapsed: measure, latency })
}

struct ServerProcess {
    child: Child,
    addr: String,
    token: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(mode: Mode, threads: usize, no_telemetry: bool) -> anyhow::Result<ServerProcess> {
    let exe = std::env::current_exe()?;
    let mode = match mode {
        Mode::Bare => "bare",
        Mode::Stack => "stack",
    };
    let mut command = Process::new(exe);
    command.args(["serve", "--mode", mode, "--threads", &threads.to_string()]);
    if no_telemetry && mode == "stack" {
        command.arg("--no-telemetry");
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let info: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("server said {line:?}"))?;
    Ok(ServerProcess {
        child,
        addr: info["addr"].as_str().context("addr")?.to_string(),
        token: info["token"].as_str().context("token")?.to_string(),
    })
}

fn compare(threads: usize, rounds: usize, no_telemetry: bool, args: &LoadArgs) -> anyhow::Result<()> {
    let runtime = client_runtime()?;
    // Neighbours on a shared machine move absolute figures between runs; each round measures both
    // back to back, and the median of the per-round ratios is the figure.
    let mut ratios = Vec::new();
    for round in 1..=rounds.max(1) {
        let mut throughput = [0f64; 2];
        for (i, mode) in [Mode::Bare, Mode::Stack].into_iter().enumerate() {
            let server = spawn_server(mode, threads, no_telemetry)?;
            let token = if mode == Mode::Stack { server.token.clone() } else { String::new() };
            let report = runtime.block_on(load(&server.addr, &token, args, Some(server.child.id())))?;
            println!("round {round} {}", report.summary(&format!("{mode:?}").to_lowercase()));
            throughput[i] = (report.calls - report.errors) as f64 / report.elapsed.as_secs_f64();
        }
        ratios.push(throughput[1] / throughput[0]);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "stack/bare throughput, median of rounds: {:.1}% (rounds {}; {} connections, {} {}, {} s each, {} B payload, server threads {threads})",
        median * 100.0,
        ratios.iter().map(|r| format!("{:.1}%", r * 100.0)).collect::<Vec<_>>().join(" "),
        args.connections,
        args.concurrency,
        if args.rate.is_some() { "max in flight" } else { "callers" },
        args.duration,
        args.payload
    );
    Ok(())
}

/// Per-token cost of `TokenVerifier::verify`: distinct tokens (each a signature check) and the
/// same token again (a cache hit), on one thread.
async fn verify_cost(count: usize) -> anyhow::Result<()> {
    let key = SigningKey::generate("bench-1")?;
    let keys = InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk()] });
    let verifier = TokenVerifier::new(
        Arc::new(keys),
        TokenConfig { issuer: ISSUER.into(), audience: "work4life".into(), leeway: Duration::from_secs(30) },
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let tokens: Vec<String> = (0..count)
        .map(|i| {
            key.sign(&Claims {
                iss: ISSUER.into(),
                aud: "work4life".into(),
                sub: format!("accounts/{i}"),
                exp: now + 3600,
                nbf: now - 1,
                iat: now,
                jti: format!("j{i}"),
                roles: vec![RoleBinding { role: "officer".into(), org: Some("organizations/cefa".into()), zones: vec!["oujda".into()] }],
            })
        })
        .collect::<anyhow::Result<_>>()?;
    verifier.verify(&tokens[0]).await.map_err(|e| anyhow::anyhow!("{e}"))?; // fetch the key set once
    let started = Instant::now();
    for token in &tokens {
        verifier.verify(token).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let fresh = started.elapsed().as_secs_f64() * 1e6 / count as f64;
    let started = Instant::now();
    for _ in 0..count {
        verifier.verify(&tokens[count / 2]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let cached = started.elapsed().as_secs_f64() * 1e6 / count as f64;
    println!(
        "token verification: {fresh:.1} us per new token (EdDSA signature + claims), {cached:.2} us per cached token ({count} each, one thread)"
    );
    Ok(())
}

/// Password verifications per second on one core with identity's argon2id parameters.
fn argon2_rate(count: usize) -> anyhow::Result<()> {
    use argon2::{PasswordHash, PasswordHasher as _, PasswordVerifier as _};
    let params = argon2::Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let stored = hasher.hash_password(b"a pass phrase").map_err(|e| anyhow::anyhow!("{e}"))?.to_string();
    let hash = PasswordHash::new(&stored).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    for _ in 0..count {
        hasher.verify_password(b"a pass phrase", &hash).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let per = started.elapsed().as_secs_f64() / count as f64;
    println!(
        "argon2id m=19456 KiB t=2 p=1: {:.1} ms per password check, {:.0} logins/s per core ({count} checks)",
        per * 1000.0,
        1.0 / per
    );
    Ok(())
}
