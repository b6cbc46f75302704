//! A grants process killed at the worst moments — just before a commit, and just after it before
//! the reply (`W4L_CRASH_POINTS`, crates/platform/src/fault.rs) — while 1,000 tranches go from
//! award to payment: after the restarts and the clients' retries (same request ids) each tranche
//! is paid exactly once, and the books balance.
//!
//! Needs the `work4life` binary built from the current sources: `cargo build -p work4life`.

mod common;

use std::{
    collections::HashSet,
    future::Future,
    os::unix::process::ExitStatusExt,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;
use work4life_proto::grants::{
    ApproveDisbursementRequest, CreateAwardRequest, CreatePaymentBatchRequest, ExportPaymentBatchRequest, ImportPaymentResultsRequest,
    PaymentMethod, PaymentResult, RequestDisbursementRequest, grants_service_client::GrantsServiceClient,
};

/// Tranches paid.
const N: usize = 1000;
/// Concurrent clients.
const TASKS: usize = 32;
/// The probability of each crash point, each time a mutation passes it.
const CRASH_POINTS: &str = "grants.before_commit=0.01,grants.after_commit=0.01";
const LINE: &str = "collective_tanger";
/// How long one call may keep failing (the process restarting) before the test gives up.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// `n` applications intake accepted in `zone`, written straight into grants' copy of intake's
/// decisions. Bulk setup only: the consumer path is tested elsewhere (`Fixture::decide`), and
/// it is not what this test is about.
async fn accept_in_bulk(f: &Fixture, zone: &str, n: usize) -> Vec<String> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let people: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO decided_applications (application_id, program, window_code, zone, accepted) \
         SELECT id, 'work4life', 'collective_startup', $2, true FROM UNNEST($1::uuid[]) AS id",
    )
    .bind(&ids)
    .bind(zone)
    .execute(&f.pool)
    .await
    .expect("decided applications");
    sqlx::query(
        "INSERT INTO decided_members (application_id, position, applicant_id, account_id, languages, gender, nationality, age_band) \
         SELECT a, 0, p, p, '{fr}', 'male', 'CI', '35-44' FROM UNNEST($1::uuid[], $2::uuid[]) AS m (a, p)",
    )
    .bind(&ids)
    .bind(&people)
    .execute(&f.pool)
    .await
    .expect("decided members");
    ids.iter().map(|id| format!("applications/{id}")).collect()
}

/// Whether an answer means "the process went away; call again with the same request id".
fn retriable(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal)
        // A retry racing the first attempt's transaction (see platform idempotency): also "again".
        || (s.code() == Code::Aborted && reason(s) == "REQUEST_IN_PROGRESS")
}

/// Calls until the answer is not a crash's, counting the retries.
async fn until_answered<T, F, Fut>(what: &str, retries: &AtomicUsize, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        match call().await {
            Err(s) if retriable(&s) => {
                assert!(Instant::now() < deadline, "{what}: still failing after {RETRY_FOR:?}: {s:?}");
                if retries.fetch_add(1, Ordering::Relaxed).is_multiple_of(100) {
                    eprintln!("{what} retried: {:?} {}", s.code(), s.message());
                }
                // Backoff while the supervisor restarts the process.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// Restarts the grants process whenever it exits, on the same address and environment, until
/// told to stop; counts the crashes (SIGABRT from a crash point).
struct Supervisor {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<(usize, usize)>,
}

impl Supervisor {
    async fn start(addr: String, env: std::collections::HashMap<String, String>) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let first = work4life_tests::start_with("grants", &addr, &env, &[("W4L_CRASH_POINTS", CRASH_POINTS.to_string())])
            .await
            .unwrap_or_else(|e| panic!("the grants process starts (is `cargo build -p work4life` done?): {e:#}"));
        let task = tokio::spawn(async move {
            let (mut crashes, mut other_exits) = (0, 0);
            let mut process = Some(first);
            loop {
                // Alive while it accepts connections on its address.
                let died = loop {
                    tokio::select! {
                        _ = stopped.changed() => break false,
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {
                            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                                break true;
                            }
                        }
                    }
                };
                let p = process.take().expect("a process");
                if !died {
                    let status = p.stop().await.expect("stop");
                    assert!(status.success(), "the last grants process exits cleanly: {status}");
                    return (crashes, other_exits);
                }
                // Reaps the dead process (SIGTERM to a zombie is harmless) and reads how it ended.
                let status = p.stop().await.expect("reap");
                if status.signal() == Some(6) {
                    crashes += 1;
                } else {
                    other_exits += 1;
                }
                let started = Instant::now();
                process = loop {
                    match work4life_tests::start_with("grants", &addr, &env, &[("W4L_CRASH_POINTS", CRASH_POINTS.to_string())]).await {
                        Ok(p) => {
                            break Some(p);
                        }
                        // The port may linger a moment after the abort.
                        Err(e) => {
                            assert!(started.elapsed() < Duration::from_secs(30), "grants does not restart: {e:#}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                };
            }
        });
        Self { stop, task }
    }

    /// Stops the live process; (crashes, other exits).
    async fn finish(self) -> (usize, usize) {
        self.stop.send(true).expect("supervisor alive");
        self.task.await.expect("supervisor")
    }
}

/// Runs `work(i)` for `0..n` from `TASKS` tasks.
async fn fan_out<F, Fut, T>(n: usize, work: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (work, next) = (work.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return out;
                }
                out.push((i, work(i).await));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_disbursements_through_crashes_are_each_paid_exactly_once() {
    let binary = work4life_tests::binary();
    assert!(binary.is_ok(), "{}", binary.err().map(|e| format!("{e:#}")).unwrap_or_default());
    let seed = rand::random::<u64>();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let began = Instant::now();
    // The fixture's database is fresh, migrated and seeded; its in-process grants stays idle:
    // every request goes to the crashing `work4life --target=grants` process.
    let f = fresh().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let addr = format!("127.0.0.1:{port}");
    let mut env = work4life_tests::base_env(&f.database_url);
    env.insert("W4L_REDIS_URL".into(), f.redis.url.clone());
    env.insert("W4L_TRUSTED_JWKS".into(), serde_json::json!({ "keys": [f.signer.public_jwk()] }).to_string());
    env.insert("W4L_DATABASE_MAX_CONNECTIONS".into(), "8".into());
    env.insert("W4L_SHUTDOWN_DELAY_MS".into(), "0".into());
    let supervisor = Supervisor::start(addr.clone(), env).await;
    let channel = Channel::from_shared(format!("http://{addr}")).expect("url").connect_lazy();
    let client = GrantsServiceClient::new(channel);
    let retries = Arc::new(AtomicUsize::new(0));
    let (_, manager) = f.manager(&["tanger"]);
    let (_, maker) = f.maker(&["tanger"]);
    let (_, checker) = f.checker(&["tanger"]);
    let today = today(&f.pool).await;
    let line = f.line(LINE);

    // 1,000 awards of 50 to 200 EUR, each one tranche due today: payable at once.
    let applications = accept_in_bulk(&f, "tanger", N).await;
    let amounts: Arc<Vec<i64>> = Arc::new((0..N).map(|_| rng.gen_range(5_000..=20_000)).collect());
    let tranches: Vec<String> = {
        let (client, retries, manager, applications, amounts) =
            (client.clone(), retries.clone(), manager.clone(), Arc::new(applications), amounts.clone());
        fan_out(N, move |i| {
            let (client, retries, manager) = (client.clone(), retries.clone(), manager.clone());
            let award = startup_award(&line, &applications[i], vec![on_date(amounts[i], &today)]);
            let request_id = rid();
            async move {
                let award = until_answered("CreateAward", &retries, || {
                    let mut c = client.clone();
                    let r = bearer(CreateAwardRequest { award: Some(award.clone()), request_id: request_id.clone() }, &manager);
                    async move { c.create_award(r).await }
                })
                .await
                .unwrap_or_else(|s| panic!("award {i}: {s:?}"))
                .into_inner()
                .award
                .expect("award");
                award.tranches[0].name.clone()
            }
        })
        .await
    };
    let awarded = began.elapsed();

    // Each tranche: the maker's request, then the checker's approval, each with its own fixed id.
    let disbursements: Vec<String> = {
        let (client, retries, maker, checker) = (client.clone(), retries.clone(), maker.clone(), checker.clone());
        let tranches = Arc::new(tranches.clone());
        fan_out(N, move |i| {
            let (client, retries, maker, checker, tranche) =
                (client.clone(), retries.clone(), maker.clone(), checker.clone(), tranches[i].clone());
            let (request_id, approval_id) = (rid(), rid());
            async move {
                let d = until_answered("RequestDisbursement", &retries, || {
                    let mut c = client.clone();
                    let r = bearer(RequestDisbursementRequest { tranche: tranche.clone(), request_id: request_id.clone() }, &maker);
                    async move { c.request_disbursement(r).await }
                })
                .await
                .unwrap_or_else(|s| panic!("request {tranche}: {s:?}"))
                .into_inner()
                .disbursement
                .expect("disbursement");
                assert_eq!(d.tranche, tranche);
                let approved = until_answered("ApproveDisbursement", &retries, || {
                    let mut c = client.clone();
                    let r = bearer(ApproveDisbursementRequest { name: d.name.clone(), request_id: approval_id.clone() }, &checker);
                    async move { c.approve_disbursement(r).await }
                })
                .await
                .unwrap_or_else(|s| panic!("approve {}: {s:?}", d.name))
                .into_inner()
                .disbursement
                .expect("disbursement");
                assert_eq!(approved.name, d.name);
                d.name
            }
        })
        .await
    };
    let approved = began.elapsed();

    // Batches of at most 250, each exported and imported all paid, until nothing is left.
    let mut in_files: Vec<(String, String)> = Vec::new();
    let client_b = client.clone();
    for round in 0.. {
        assert!(round <= 2 * N / 250, "too many rounds");
        let request_id = rid();
        let created = until_answered("CreatePaymentBatch", &retries, || {
            let mut c = client_b.clone();
            let r = bearer(
                CreatePaymentBatchRequest {
                    budget: f.budget.clone(),
                    currency_code: "EUR".into(),
                    method: PaymentMethod::BankTransfer as i32,
                    max_count: 250,
                    request_id: request_id.clone(),
                },
                &maker,
            );
            async move { c.create_payment_batch(r).await }
        })
        .await;
        let batch = match created {
            Ok(r) => r.into_inner().payment_batch.expect("batch"),
            Err(s) if s.code() == Code::FailedPrecondition && reason(&s) == "NOTHING_TO_PAY" => break,
            Err(s) => panic!("batch round {round}: {s:?}"),
        };
        assert!(batch.count > 0 && batch.count <= 250, "{batch:?}");
        let export = until_answered("ExportPaymentBatch", &retries, || {
            let mut c = client_b.clone();
            let r = bearer(ExportPaymentBatchRequest { name: batch.name.clone() }, &maker);
            async move { c.export_payment_batch(r).await }
        })
        .await
        .unwrap_or_else(|s| panic!("export {}: {s:?}", batch.name))
        .into_inner();
        let file = String::from_utf8(export.content).expect("utf-8");
        let rows: Vec<String> = file.lines().skip(1).map(|l| l.split(',').nth(2).expect("disbursement column").to_string()).collect();
        assert_eq!(rows.len() as i32, batch.count, "the file has a row per disbursement of {}", batch.name);
        in_files.extend(rows.iter().map(|d| (d.clone(), batch.name.clone())));
        let results: Vec<PaymentResult> = rows
            .iter()
            .map(|d| PaymentResult {
                disbursement: d.clone(),
                paid: true,
                external_reference: format!("REF-{}", d.trim_start_matches("disbursements/")),
                failure_reason: String::new(),
            })
            .collect();
        let import_id = rid();
        let imported = until_answered("ImportPaymentResults", &retries, || {
            let mut c = client_b.clone();
            let r = bearer(
                ImportPaymentResultsRequest { name: batch.name.clone(), results: results.clone(), request_id: import_id.clone() },
                &maker,
            );
            async move { c.import_payment_results(r).await }
        })
        .await
        .unwrap_or_else(|s| panic!("import {}: {s:?}", batch.name))
        .into_inner();
        assert_eq!(imported.recorded_count + imported.unchanged_count, batch.count, "{imported:?}");
        assert_eq!(imported.payment_batch.as_ref().map(|b| b.paid_count), Some(batch.count));
    }
    let paid = began.elapsed();
    let (crashes, other_exits) = supervisor.finish().await;
    eprintln!(
        "{N} tranches: awarded at {awarded:?}, approved at {approved:?}, paid at {paid:?}; {crashes} crashes, {other_exits} other exits, {} retries",
        retries.load(Ordering::Relaxed)
    );
    assert_eq!(other_exits, 0, "the process only ever died at a crash point");
    assert!(crashes >= 3, "the process crashed only {crashes} times: raise the probabilities");

    // No disbursement in two files; each file row is a disbursement of that batch.
    let distinct: HashSet<&String> = in_files.iter().map(|(d, _)| d).collect();
    assert_eq!(distinct.len(), in_files.len(), "a disbursement went to the bank twice");
    assert_eq!(in_files.len(), N, "every disbursement went to the bank once");
    let wanted: HashSet<&String> = disbursements.iter().collect();
    assert_eq!(distinct, wanted, "the files carry exactly the approved disbursements");
    for (d, batch) in &in_files {
        let in_batch: Option<Uuid> = sqlx::query_scalar("SELECT batch_id FROM disbursements WHERE id = $1::uuid")
            .bind(d.trim_start_matches("disbursements/"))
            .fetch_one(&f.pool)
            .await
            .expect("disbursement");
        assert_eq!(in_batch.map(|b| format!("paymentBatches/{b}")).as_deref(), Some(batch.as_str()));
    }
    // Each award, tranche and disbursement exactly once, each paid once.
    assert_eq!(f.count("SELECT count(*) FROM awards").await, N as i64, "one award per application");
    assert_eq!(f.count("SELECT count(*) FROM awards WHERE state = 'completed'").await, N as i64, "every award completed");
    assert_eq!(f.count("SELECT count(*) FROM tranches").await, N as i64);
    assert_eq!(f.count("SELECT count(*) FROM tranches WHERE state = 'paid'").await, N as i64, "every tranche paid");
    assert_eq!(f.count("SELECT count(*) FROM disbursements").await, N as i64, "one disbursement per tranche, none duplicated");
    let not_once = f
        .count(
            "SELECT count(*) FROM tranches t WHERE \
             (SELECT count(*) FROM disbursements d WHERE d.award_id = t.award_id AND d.tranche_number = t.number AND d.state = 'paid') <> 1 \
             OR (SELECT count(*) FROM postings p JOIN disbursements d ON d.id = p.disbursement_id \
                 WHERE d.award_id = t.award_id AND d.tranche_number = t.number AND p.kind = 'payment') <> 1 \
             OR (SELECT count(*) FROM postings p JOIN disbursements d ON d.id = p.disbursement_id \
                 WHERE d.award_id = t.award_id AND d.tranche_number = t.number AND p.kind = 'disbursement') <> 1",
        )
        .await;
    assert_eq!(not_once, 0, "each tranche has exactly one paid disbursement, sent once and paid once in the ledger");
    let wrong_reference = f.count("SELECT count(*) FROM disbursements WHERE external_reference <> 'REF-' || id::text").await;
    assert_eq!(wrong_reference, 0, "each payment carries its own bank reference");
    assert_eq!(f.count("SELECT count(*) FROM postings WHERE kind = 'commitment'").await, N as i64, "one commitment per award");
    assert_eq!(f.count("SELECT count(*) FROM postings WHERE kind = 'payment'").await, N as i64);
    assert_eq!(f.count("SELECT count(*) FROM postings WHERE kind IN ('reversal', 'release')").await, 0);
    let total: i64 = amounts.iter().sum();
    let balance = |stage: &'static str| {
        let account = format!("{}/{stage}", f.line(LINE));
        let pool = f.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT coalesce(sum(amount_minor), 0)::bigint FROM entries WHERE account = $1")
                .bind(account)
                .fetch_one(&pool)
                .await
                .expect("balance")
        }
    };
    assert_eq!(balance("disbursed").await, total, "the line disbursed the sum of the tranches");
    assert_eq!(balance("in_payment").await, 0);
    assert_eq!(balance("committed").await, 0);
    assert_eq!(f.line_counters(LINE).await.1, total);
    assert_eq!(f.events("grants.disbursement.paid").await.len(), N, "one paid event per tranche");
    assert_eq!(f.events("grants.award.created").await.len(), N, "one created event per award");
    f.assert_books_balance().await;
    eprintln!("done in {:?}", began.elapsed());
}
