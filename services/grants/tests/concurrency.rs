//! Over-commitment under concurrency: 1,000 award requests whose sum is about three times what
//! one line holds, sent at once by 64 clients, in one process and spread over two service
//! processes; and a hot line where awards, amendments and cancellations race. Committed never
//! exceeds the line, every accepted award has its commitment posting, none is duplicated, the
//! refused ones get FAILED_PRECONDITION `BUDGET_LINE_EXCEEDED` naming the line and what is
//! available, and the counters agree with the ledger.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use common::*;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;
use work4life_proto::grants::{
    AmendAwardRequest, Award, CancelAwardRequest, CreateAwardRequest, Tranche, grants_service_client::GrantsServiceClient,
};

const OUJDA: &str = "collective_oujda";
/// How many award requests.
const N: usize = 1000;
/// Concurrent client tasks.
const TASKS: usize = 64;
/// Channels they share.
const CHANNELS: usize = 4;

/// `n` applications intake accepted in `zone`, written straight into grants' copy of intake's
/// decisions (one member each). Bulk setup only: publishing 1,000 decisions and waiting for the
/// consumer would dominate the test, and the consumer path is tested elsewhere (`Fixture::decide`).
async fn accept_in_bulk(f: &Fixture, zone: &str, n: usize) -> Vec<String> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let applicants: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let accounts: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
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
         SELECT a, 0, p, c, '{fr}', 'female', 'SN', '25-34' FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS m (a, p, c)",
    )
    .bind(&ids)
    .bind(&applicants)
    .bind(&accounts)
    .execute(&f.pool)
    .await
    .expect("decided members");
    ids.iter().map(|id| format!("applications/{id}")).collect()
}

/// One award of `amount` on `line` for `application`: one or two milestone tranches.
fn award_of(line: &str, application: &str, amount: i64, split: bool) -> Award {
    let tranches = if split {
        vec![on_milestone(amount / 2, "business_plan_validated"), on_milestone(amount - amount / 2, "company_registered")]
    } else {
        vec![on_milestone(amount, "business_plan_validated")]
    };
    startup_award(line, application, tranches)
}

/// `CHANNELS` channels to each URL, interleaved: request `i` goes to `urls[i % urls.len()]`.
async fn channels(urls: &[String]) -> Vec<GrantsServiceClient<Channel>> {
    let mut out = Vec::new();
    for c in 0..CHANNELS * urls.len() {
        let url = &urls[c % urls.len()];
        let channel = Channel::from_shared(url.clone()).expect("url").connect().await.expect("connect");
        out.push(GrantsServiceClient::new(channel));
    }
    out
}

/// What a client may send.
#[derive(Clone, Debug)]
enum Op {
    Create(Box<Award>),
    Amend(AmendAwardRequest),
    Cancel(CancelAwardRequest),
}

/// What came back.
#[derive(Debug)]
enum Answer {
    Award(Box<Award>),
    Refused(Status),
}

/// Sends `ops` from `TASKS` tasks over the clients (op `i` on client `i % clients.len()`), as `jwt`;
/// answers in the order of `ops`.
async fn run(clients: Vec<GrantsServiceClient<Channel>>, jwt: &str, ops: Vec<Op>) -> Vec<Answer> {
    let ops = Arc::new(ops);
    let next = Arc::new(AtomicUsize::new(0));
    let clients = Arc::new(clients);
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (ops, next, clients, jwt) = (ops.clone(), next.clone(), clients.clone(), jwt.to_string());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= ops.len() {
                    return out;
                }
                let mut client = clients[i % clients.len()].clone();
                // One request id per operation: a retry after UNAVAILABLE (the pool shed the call
                // under load) or ABORTED (a duplicate in flight, a deadlock victim) is the same
                // request, and idempotency makes its effect happen once.
                let request_id = rid();
                let mut attempt = 0u32;
                let answer = loop {
                    let answer = match &ops[i] {
                        Op::Create(a) => client
                            .create_award(bearer(CreateAwardRequest { award: Some((**a).clone()), request_id: request_id.clone() }, &jwt))
                            .await
                            .map(|r| r.into_inner().award),
                        Op::Amend(r) => client.amend_award(bearer(r.clone(), &jwt)).await.map(|r| r.into_inner().award),
                        Op::Cancel(r) => client.cancel_award(bearer(r.clone(), &jwt)).await.map(|r| r.into_inner().award),
                    };
                    match &answer {
                        Err(status) if matches!(status.code(), Code::Unavailable | Code::Aborted) && attempt < 20 => {
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt))).await;
                        }
                        _ => break answer,
                    }
                };
                out.push((i, answer.map(|a| a.expect("an award in the answer"))));
            }
        }));
    }
    let mut answers: Vec<Option<Answer>> = (0..ops.len()).map(|_| None).collect();
    for t in tasks {
        for (i, a) in t.await.expect("client task") {
            answers[i] = Some(match a {
                Ok(award) => Answer::Award(Box::new(award)),
                Err(status) => Answer::Refused(status),
            });
        }
    }
    answers.into_iter().map(|a| a.expect("every op answered")).collect()
}

/// `1234.56 EUR` → 123456.
fn cents(text: &str) -> i64 {
    let number = text.trim().trim_end_matches("EUR").trim();
    let (units, fraction) = number.split_once('.').unwrap_or((number, "00"));
    units.parse::<i64>().expect(text) * 100 + fraction.parse::<i64>().expect(text)
}

/// Checks a BUDGET_LINE_EXCEEDED refusal on `line`; returns the available amount it names.
fn exceeded(status: &Status, line: &str) -> i64 {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), "BUDGET_LINE_EXCEEDED", "{status:?}");
    let p = preconditions(status);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, line, "the refusal names the line: {p:?}");
    // "<line> has 123.45 EUR available; this needs 456.78 EUR"
    let available = p[0]
        .1
        .split_once(" has ")
        .and_then(|(_, rest)| rest.split_once(" available"))
        .map(|(amount, _)| cents(amount))
        .unwrap_or_else(|| panic!("the description names the amount available: {:?}", p[0].1));
    assert!(available >= 0, "{p:?}");
    available
}

/// The balance of a line's `stage` account in the ledger.
async fn stage_balance(f: &Fixture, code: &str, stage: &str) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(amount_minor), 0)::bigint FROM entries WHERE account = $1")
        .bind(format!("{}/{stage}", f.line(code)))
        .fetch_one(&f.pool)
        .await
        .expect("balance")
}

/// The 1,000-award storm's assertions: answers, counters, ledger, postings, uniqueness, fullness.
async fn check_storm(f: &Fixture, amounts: &[i64], applications: &[String], answers: &[Answer]) {
    let line = f.line(OUJDA);
    let (allocated, committed) = f.line_counters(OUJDA).await;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match a {
            Answer::Award(award) => {
                assert_eq!(award.application, applications[i]);
                assert_eq!(award.line_amount.as_ref().map(|m| m.amount_minor), Some(amounts[i]));
                accepted.push((award.name.clone(), amounts[i]));
            }
            Answer::Refused(status) => {
                let available = exceeded(status, &line);
                // Only awards run here: the line only fills, so what was available when it was
                // refused was already too little.
                assert!(available < amounts[i], "refused {} while {available} was available", amounts[i]);
                refused.push(amounts[i]);
            }
        }
    }
    let asked: i64 = amounts.iter().sum();
    assert!(asked > 2 * allocated, "the storm asks for far more than the line: {asked} vs {allocated}");
    assert!(!refused.is_empty() && !accepted.is_empty(), "{} accepted, {} refused", accepted.len(), refused.len());
    let accepted_sum: i64 = accepted.iter().map(|(_, a)| a).sum();
    assert!(committed <= allocated, "committed {committed} beyond the line's {allocated}");
    assert_eq!(accepted_sum, committed, "the counter is the sum of the accepted awards");
    let in_db: i64 = f
        .count(&format!(
            "SELECT coalesce(sum(a.line_amount_minor), 0)::bigint FROM awards a JOIN budget_lines l ON l.id = a.line_id \
             WHERE l.code = '{OUJDA}' AND a.state <> 'cancelled'"
        ))
        .await;
    assert_eq!(in_db, committed, "the awards stored sum to the counter");
    assert_eq!(stage_balance(f, OUJDA, "committed").await, committed, "the ledger's committed balance is the counter");
    // Every accepted award, and only those, is stored, with exactly one commitment posting of its amount.
    let names: HashSet<String> = accepted.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), accepted.len(), "no award answered twice");
    let stored: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT a.id, a.line_amount_minor, \
         (SELECT count(*) FROM postings p WHERE p.award_id = a.id AND p.kind = 'commitment'), \
         (SELECT coalesce(sum(e.amount_minor), 0)::bigint FROM entries e JOIN postings p ON p.id = e.posting_id \
          WHERE p.award_id = a.id AND p.kind = 'commitment' AND e.account LIKE '%/committed') \
         FROM awards a JOIN budget_lines l ON l.id = a.line_id WHERE l.code = $1",
    )
    .bind(OUJDA)
    .fetch_all(&f.pool)
    .await
    .expect("awards");
    assert_eq!(stored.len(), accepted.len(), "as many awards stored as accepted");
    for (id, amount, postings, posted) in &stored {
        assert!(names.contains(&format!("awards/{id}")), "awards/{id} stored but never answered");
        assert_eq!(*postings, 1, "awards/{id} has exactly one commitment posting");
        assert_eq!(posted, amount, "awards/{id}'s commitment posting is its amount");
    }
    let commitments = f.count("SELECT count(*) FROM postings WHERE kind = 'commitment'").await;
    assert_eq!(commitments, accepted.len() as i64, "no commitment posting without an award");
    let twice = f.count("SELECT count(*) FROM (SELECT application_id FROM awards GROUP BY 1 HAVING count(*) > 1) x").await;
    assert_eq!(twice, 0, "no application has two awards");
    assert_eq!(f.events("grants.award.created").await.len(), accepted.len(), "one award.created event per award");
    // Each refusal saw less than it needed and the line only fills: what is left now is less
    // than the smallest refused request.
    let smallest_refused = refused.iter().min().copied().unwrap_or(i64::MAX);
    assert!(allocated - committed < smallest_refused, "{} left, yet {smallest_refused} was refused", allocated - committed);
    f.assert_books_balance().await;
}

/// The storm's requests: `N` awards of 300 to 600 EUR (about three times the line) on new applications.
async fn storm(f: &Fixture, seed: u64) -> (Vec<i64>, Vec<String>, Vec<Op>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let applications = accept_in_bulk(f, "oujda", N).await;
    let amounts: Vec<i64> = (0..N).map(|_| rng.gen_range(30_000..=60_000)).collect();
    let ops = applications
        .iter()
        .zip(&amounts)
        .enumerate()
        .map(|(i, (app, amount))| Op::Create(Box::new(award_of(&f.line(OUJDA), app, *amount, i % 3 == 0))))
        .collect();
    (amounts, applications, ops)
}

fn seed() -> u64 {
    let seed = rand::random::<u64>();
    eprintln!("seed {seed}");
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_awards_never_overcommit_the_line() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["oujda"]);
    let (amounts, applications, ops) = storm(&f, seed()).await;
    let clients = channels(&[format!("http://{}", f.running.addr)]).await;
    let answers = run(clients, &manager, ops).await;
    check_storm(&f, &amounts, &applications, &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_awards_over_two_service_processes_never_overcommit_the_line() {
    let binary = work4life_tests::binary();
    assert!(binary.is_ok(), "{:#}", binary.err().map(|e| e.to_string()).unwrap_or_default());
    // The fixture's database is fresh, migrated and seeded; its in-process grants stays idle:
    // every request goes to the two `work4life --target=grants` processes started on it.
    let f = fresh().await;
    let mut env = work4life_tests::base_env(&f.database_url);
    env.insert("W4L_REDIS_URL".into(), f.redis.url.clone());
    env.insert("W4L_TRUSTED_JWKS".into(), serde_json::json!({ "keys": [f.signer.public_jwk()] }).to_string());
    env.insert("W4L_DATABASE_MAX_CONNECTIONS".into(), "8".into());
    let mut processes = Vec::new();
    for _ in 0..2 {
        let p = work4life_tests::start_with("grants", "127.0.0.1:0", &env, &[])
            .await
            .unwrap_or_else(|e| panic!("a grants process starts (is `cargo build -p work4life` done?): {e:#}"));
        processes.push(p);
    }
    let urls: Vec<String> = processes.iter().map(|p| p.url.clone()).collect();
    let (_, manager) = f.manager(&["oujda"]);
    let (amounts, applications, ops) = storm(&f, seed()).await;
    let answers = run(channels(&urls).await, &manager, ops).await;
    check_storm(&f, &amounts, &applications, &answers).await;
    for p in processes {
        let status = p.stop().await.expect("stop");
        assert!(status.success(), "a grants process exited with {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awards_amendments_and_cancellations_racing_on_a_hot_line_keep_the_books() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let f = fresh().await;
    let (_, manager) = f.manager(&["oujda"]);
    let line = f.line(OUJDA);
    let clients = channels(&[format!("http://{}", f.running.addr)]).await;
    // The line nine-tenths full: 200 awards of 675 EUR.
    let first = accept_in_bulk(&f, "oujda", 200).await;
    let setup: Vec<Op> = first.iter().map(|app| Op::Create(Box::new(award_of(&line, app, 67_500, false)))).collect();
    let existing: Vec<Award> = run(clients.clone(), &manager, setup)
        .await
        .into_iter()
        .map(|a| match a {
            Answer::Award(a) => *a,
            Answer::Refused(s) => panic!("the setup fits the line: {s:?}"),
        })
        .collect();
    assert_eq!(f.line_counters(OUJDA).await.1, 13_500_000);
    // Then at once: 300 new awards of 300 to 600 EUR (about ten times what is left), and for each
    // existing award one change: up by 200 EUR, down by 200 EUR, or cancelled.
    let fresh_apps = accept_in_bulk(&f, "oujda", 300).await;
    let mut ops: Vec<(Op, &'static str, i64)> = Vec::new();
    for app in &fresh_apps {
        let amount = rng.gen_range(30_000..=60_000);
        ops.push((Op::Create(Box::new(award_of(&line, app, amount, rng.gen_bool(0.5)))), "create", amount));
    }
    for a in &existing {
        let t = &a.tranches[0];
        let (kind, delta) = [("up", 20_000), ("down", -20_000), ("cancel", 0)][rng.gen_range(0..3)];
        let op = if kind == "cancel" {
            Op::Cancel(CancelAwardRequest {
                name: a.name.clone(),
                reason: "the cooperative dissolved".into(),
                etag: a.etag.clone(),
                request_id: rid(),
            })
        } else {
            Op::Amend(AmendAwardRequest {
                name: a.name.clone(),
                tranches: vec![Tranche {
                    number: t.number,
                    amount: Some(eur(67_500 + delta)),
                    condition: t.condition.clone(),
                    ..Tranche::default()
                }],
                reason: "revised business plan".into(),
                etag: a.etag.clone(),
                request_id: rid(),
            })
        };
        ops.push((op, kind, delta));
    }
    ops.shuffle(&mut rng);
    let answers = run(clients, &manager, ops.iter().map(|(op, _, _)| op.clone()).collect()).await;
    // What each award should be worth on the line now, from the answers.
    let mut expected: HashMap<String, i64> = existing.iter().map(|a| (a.name.clone(), 67_500)).collect();
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for ((op, kind, delta), answer) in ops.iter().zip(&answers) {
        let c = counts.entry(kind).or_default();
        match (op, answer) {
            (Op::Create(asked), Answer::Award(a)) => {
                assert_eq!(a.application, asked.application);
                expected.insert(a.name.clone(), asked.amount.as_ref().map_or(0, |m| m.amount_minor));
                c.0 += 1;
            }
            (Op::Amend(r), Answer::Award(a)) => {
                assert_eq!(a.amount.as_ref().map(|m| m.amount_minor), Some(67_500 + delta));
                expected.insert(r.name.clone(), 67_500 + delta);
                c.0 += 1;
            }
            (Op::Cancel(r), Answer::Award(a)) => {
                assert_eq!(a.state, work4life_proto::grants::AwardState::Cancelled as i32);
                expected.insert(r.name.clone(), 0);
                c.0 += 1;
            }
            (Op::Create(_), Answer::Refused(s)) => {
                exceeded(s, &line);
                c.1 += 1;
            }
            (Op::Amend(_), Answer::Refused(s)) if *delta > 0 => {
                exceeded(s, &line);
                c.1 += 1;
            }
            (_, Answer::Refused(s)) => panic!("a {kind} was refused: {s:?} (seed {seed})"),
        }
    }
    eprintln!("(accepted, refused) by kind: {counts:?}");
    assert!(counts.get("create").is_some_and(|c| c.1 > 0), "the line ran out for some new awards: {counts:?}");
    let (allocated, committed) = f.line_counters(OUJDA).await;
    assert!(committed <= allocated);
    assert_eq!(expected.values().sum::<i64>(), committed, "the counter is what the answers add up to (seed {seed})");
    assert_eq!(stage_balance(&f, OUJDA, "committed").await, committed, "the ledger agrees with the counter");
    // Per award: live tranches sum to the award's amount (nothing for a cancelled one), and its
    // commitments less its releases in the ledger are exactly that.
    let rows: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT a.id, a.state, a.line_amount_minor, \
         (SELECT coalesce(sum(t.line_amount_minor), 0)::bigint FROM tranches t WHERE t.award_id = a.id AND t.state <> 'cancelled'), \
         (SELECT coalesce(sum(e.amount_minor), 0)::bigint FROM entries e WHERE e.award_id = a.id AND e.account LIKE '%/committed') \
         FROM awards a",
    )
    .fetch_all(&f.pool)
    .await
    .expect("awards");
    assert_eq!(rows.len(), expected.len(), "one stored award per accepted create");
    for (id, state, amount, live, net) in rows {
        let name = format!("awards/{id}");
        let want = expected.get(&name).copied().unwrap_or_else(|| panic!("{name} stored but never answered"));
        assert_eq!(live, want, "{name}'s live tranches (seed {seed})");
        assert_eq!(net, want, "{name}'s net commitment in the ledger (seed {seed})");
        if state == "cancelled" {
            assert_eq!(want, 0);
        } else {
            assert_eq!(amount, want, "{name}'s amount");
        }
    }
    let twice = f.count("SELECT count(*) FROM (SELECT application_id FROM awards GROUP BY 1 HAVING count(*) > 1) x").await;
    assert_eq!(twice, 0, "no application has two awards");
    f.assert_books_balance().await;
}
