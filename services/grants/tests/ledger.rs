//! The ledger: a property test drives random sequences of every money operation through the API
//! and checks after each sequence that the books balance and agree with awards, tranches and
//! disbursements; and the database itself refuses unbalanced postings, any change to the
//! ledger, the deletion of awards and disbursements, and a change to what a disbursement pays.

mod common;

use common::*;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use tonic::{Code, Status, transport::Channel};
use uuid::Uuid;
use work4life_proto::grants::{
    AmendAwardRequest, ApproveDisbursementRequest, Award, AwardState, CancelAwardRequest, CreateAwardRequest, CreatePaymentBatchRequest,
    ExportPaymentBatchRequest, GetAwardRequest, GetBudgetLineRequest, ImportPaymentResultsRequest, PaymentMethod, PaymentResult,
    RejectDisbursementRequest, ReleaseDueTranchesRequest, RequestDisbursementRequest, RequeueDisbursementRequest, Tranche, TrancheState,
    grants_service_client::GrantsServiceClient,
};

const SEQUENCES: usize = 40;
const OPS: usize = 15;
const ZONES: [&str; 2] = ["tanger", "oujda"];

/// One application intake accepted in `zone`, written straight into grants' copy of intake's
/// decisions: hundreds of them would make the test wait on the consumer, which is tested elsewhere.
async fn accept_one(f: &Fixture, zone: &str) -> String {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO decided_applications (application_id, program, window_code, zone, accepted) VALUES ($1, 'work4life', 'collective_startup', $2, true)",
    )
    .bind(id)
    .bind(zone)
    .execute(&f.pool)
    .await
    .expect("decided application");
    sqlx::query(
        "INSERT INTO decided_members (application_id, position, applicant_id, account_id, gender, nationality, age_band) \
         VALUES ($1, 0, $2, $3, 'female', 'GN', '25-34')",
    )
    .bind(id)
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .execute(&f.pool)
    .await
    .expect("decided member");
    format!("applications/{id}")
}

/// The random operations and what they must answer.
struct Driver<'a> {
    f: &'a Fixture,
    client: GrantsServiceClient<Channel>,
    rng: StdRng,
    seed: u64,
    manager: String,
    maker: String,
    checker: String,
    /// today, ten days ago, in a month.
    days: (String, String, String),
    /// What ran in the current sequence, for the failure message.
    log: Vec<String>,
    /// How many operations of each kind ran (had a target).
    ran: std::collections::BTreeMap<&'static str, usize>,
}

fn amount_of(t: &Tranche) -> i64 {
    t.amount.as_ref().map_or(0, |m| m.amount_minor)
}

impl Driver<'_> {
    fn fail(&self, what: &str) -> ! {
        panic!("{what}\nseed {}; operations of this sequence:\n  {}", self.seed, self.log.join("\n  "));
    }

    fn expect_ok<T>(&self, op: &str, r: Result<T, Status>) -> T {
        r.unwrap_or_else(|s| self.fail(&format!("{op} refused: {:?} {} {:?}", s.code(), s.message(), preconditions(&s))))
    }

    fn expect_refused<T: std::fmt::Debug>(&self, op: &str, r: Result<T, Status>, code: Code, why: &str) -> Status {
        match r {
            Ok(v) => self.fail(&format!("{op} should be refused with {why}, got {v:?}")),
            Err(s) if s.code() == code && reason(&s) == why => s,
            Err(s) => self.fail(&format!("{op} should be refused with {why}, got {:?} {} {}", s.code(), reason(&s), s.message())),
        }
    }

    /// Allocated minus committed on a line (the database's counters).
    async fn available(&self, code: &str) -> i64 {
        let (allocated, committed) = self.f.line_counters(code).await;
        allocated - committed
    }

    /// The amount a BUDGET_LINE_EXCEEDED refusal names as available.
    fn named_available(&self, s: &Status, line: &str) -> i64 {
        let p = preconditions(s);
        if p.len() != 1 || p[0].0 != line {
            self.fail(&format!("the refusal names {line}: {p:?}"));
        }
        let amount = p[0].1.split_once(" has ").and_then(|(_, r)| r.split_once(" EUR available")).map(|(a, _)| a.replace('.', ""));
        amount.and_then(|a| a.parse().ok()).unwrap_or_else(|| self.fail(&format!("no available amount in {:?}", p[0].1)))
    }

    fn condition(&mut self) -> Tranche {
        let amount = self.rng.gen_range(10_000..=600_000);
        match self.rng.gen_range(0..4) {
            0 => on_date(amount, &self.days.0.clone()),
            1 => on_date(amount, &self.days.1.clone()),
            2 => on_date(amount, &self.days.2.clone()),
            _ => on_milestone(amount, "business_plan_validated"),
        }
    }

    /// Ids of rows a query lists (in a stable order), one picked at random.
    async fn pick(&mut self, sql: &str) -> Option<Uuid> {
        let ids: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&self.f.pool).await.expect(sql);
        ids.choose(&mut self.rng).copied()
    }

    async fn get_award(&mut self, id: Uuid) -> Award {
        let r = self.client.get_award(bearer(GetAwardRequest { name: format!("awards/{id}") }, &self.f.admin)).await;
        self.expect_ok("GetAward", r).into_inner().award.expect("award")
    }

    async fn create(&mut self) {
        let zone = *ZONES.choose(&mut self.rng).expect("zone");
        let code = format!("collective_{zone}");
        let line = self.f.line(&code);
        let application = accept_one(self.f, zone).await;
        let mut tranches: Vec<Tranche> = (0..self.rng.gen_range(1..=3)).map(|_| self.condition()).collect();
        let available = self.available(&code).await;
        if self.rng.gen_bool(0.15) {
            // Beyond what the line has left.
            tranches[0].amount = Some(eur(available + self.rng.gen_range(1..=1_000_000)));
        }
        let total: i64 = tranches.iter().map(amount_of).sum();
        self.log.push(format!("create {total} on {code} ({available} available)"));
        let award = startup_award(&line, &application, tranches);
        let r = self.client.create_award(bearer(CreateAwardRequest { award: Some(award), request_id: rid() }, &self.manager)).await;
        if total <= available {
            let a = self.expect_ok("CreateAward", r).into_inner().award.expect("award");
            assert_eq!(a.line_amount.as_ref().map(|m| m.amount_minor), Some(total));
        } else {
            let s = self.expect_refused("CreateAward", r, Code::FailedPrecondition, "BUDGET_LINE_EXCEEDED");
            assert_eq!(self.named_available(&s, &line), available, "the refusal names what is available");
        }
    }

    async fn amend(&mut self) {
        let Some(id) = self.pick("SELECT id FROM awards WHERE state = 'active' ORDER BY id").await else { return };
        let award = self.get_award(id).await;
        let code = award.budget_line.rsplit('/').next().expect("code").to_string();
        let live: Vec<&Tranche> = award.tranches.iter().filter(|t| t.state != TrancheState::Cancelled as i32).collect();
        let old: i64 = live.iter().map(|t| amount_of(t)).sum();
        let mut schedule = Vec::new();
        for t in &live {
            let unchanged = Tranche { number: t.number, amount: t.amount.clone(), condition: t.condition.clone(), ..Tranche::default() };
            if t.state == TrancheState::InPayment as i32 || t.state == TrancheState::Paid as i32 {
                schedule.push(unchanged);
                continue;
            }
            match self.rng.gen_range(0..4) {
                0 => {}
                1 => schedule.push(unchanged),
                2 => {
                    let scaled = (amount_of(t) * self.rng.gen_range(50..=150) / 100).max(100);
                    schedule.push(Tranche { amount: Some(eur(scaled)), ..unchanged });
                }
                _ => {
                    let other = self.condition();
                    schedule.push(Tranche { condition: other.condition, ..unchanged });
                }
            }
        }
        let available = self.available(&code).await;
        if schedule.is_empty() || self.rng.gen_bool(0.3) {
            let mut added = self.condition();
            if self.rng.gen_bool(0.15) {
                added.amount = Some(eur(available + 1 + self.rng.gen_range(0..=500_000)));
            }
            schedule.push(added);
        }
        let new: i64 = schedule.iter().map(amount_of).sum();
        self.log.push(format!("amend {} from {old} to {new} ({available} available)", award.name));
        let r = self
            .client
            .amend_award(bearer(
                AmendAwardRequest {
                    name: award.name.clone(),
                    tranches: schedule,
                    reason: "revised plan".into(),
                    etag: award.etag.clone(),
                    request_id: rid(),
                },
                &self.manager,
            ))
            .await;
        if new - old <= available {
            let a = self.expect_ok("AmendAward", r).into_inner().award.expect("award");
            assert_eq!(a.amount.as_ref().map(|m| m.amount_minor), Some(new));
        } else {
            let s = self.expect_refused("AmendAward", r, Code::FailedPrecondition, "BUDGET_LINE_EXCEEDED");
            assert_eq!(self.named_available(&s, &award.budget_line), available);
        }
    }

    async fn cancel(&mut self) {
        let Some(id) = self.pick("SELECT id FROM awards WHERE state = 'active' ORDER BY id").await else { return };
        let award = self.get_award(id).await;
        let in_flight = self
            .f
            .count(&format!("SELECT count(*) FROM disbursements WHERE award_id = '{id}' AND state IN ('approved', 'batched', 'sent')"))
            .await;
        self.log.push(format!("cancel {} ({in_flight} in flight)", award.name));
        let r = self
            .client
            .cancel_award(bearer(
                CancelAwardRequest { name: award.name.clone(), reason: "dissolved".into(), etag: award.etag, request_id: rid() },
                &self.manager,
            ))
            .await;
        if in_flight == 0 {
            let a = self.expect_ok("CancelAward", r).into_inner().award.expect("award");
            assert_eq!(a.state, AwardState::Cancelled as i32);
        } else {
            self.expect_refused("CancelAward", r, Code::FailedPrecondition, "PAYMENT_IN_FLIGHT");
        }
    }

    async fn release(&mut self) {
        self.log.push("release due".into());
        let r = self.client.release_due_tranches(bearer(ReleaseDueTranchesRequest {}, &self.f.admin)).await;
        self.expect_ok("ReleaseDueTranches", r);
    }

    async fn request(&mut self) {
        let tranches: Vec<(Uuid, i32)> = sqlx::query_as(
            "SELECT t.award_id, t.number FROM tranches t JOIN awards a ON a.id = t.award_id WHERE a.state = 'active' AND t.state = 'payable' \
             ORDER BY t.award_id, t.number",
        )
        .fetch_all(&self.f.pool)
        .await
        .expect("payable");
        let Some((award, number)) = tranches.choose(&mut self.rng).copied() else { return };
        let tranche = format!("awards/{award}/tranches/{number}");
        self.log.push(format!("request {tranche}"));
        let r = self.client.request_disbursement(bearer(RequestDisbursementRequest { tranche, request_id: rid() }, &self.maker)).await;
        self.expect_ok("RequestDisbursement", r);
    }

    async fn approve(&mut self) {
        let Some(id) = self.pick("SELECT id FROM disbursements WHERE state = 'pending_approval' ORDER BY id").await else { return };
        self.log.push(format!("approve disbursements/{id}"));
        let r = self
            .client
            .approve_disbursement(bearer(
                ApproveDisbursementRequest { name: format!("disbursements/{id}"), request_id: rid() },
                &self.checker,
            ))
            .await;
        self.expect_ok("ApproveDisbursement", r);
    }

    async fn reject(&mut self) {
        let Some(id) = self.pick("SELECT id FROM disbursements WHERE state = 'pending_approval' ORDER BY id").await else { return };
        self.log.push(format!("reject disbursements/{id}"));
        let r = self
            .client
            .reject_disbursement(bearer(
                RejectDisbursementRequest { name: format!("disbursements/{id}"), reason: "documents missing".into(), request_id: rid() },
                &self.checker,
            ))
            .await;
        self.expect_ok("RejectDisbursement", r);
    }

    async fn batch(&mut self) {
        let approved = self.f.count("SELECT count(*) FROM disbursements WHERE state = 'approved'").await;
        let max_count = self.rng.gen_range(1..=4);
        self.log.push(format!("batch of at most {max_count} ({approved} approved)"));
        let r = self
            .client
            .create_payment_batch(bearer(
                CreatePaymentBatchRequest {
                    budget: self.f.budget.clone(),
                    currency_code: "EUR".into(),
                    method: PaymentMethod::BankTransfer as i32,
                    max_count,
                    request_id: rid(),
                },
                &self.maker,
            ))
            .await;
        if approved > 0 {
            let b = self.expect_ok("CreatePaymentBatch", r).into_inner().payment_batch.expect("batch");
            assert_eq!(i64::from(b.count), approved.min(i64::from(max_count)));
        } else {
            self.expect_refused("CreatePaymentBatch", r, Code::FailedPrecondition, "NOTHING_TO_PAY");
        }
    }

    async fn export(&mut self) {
        let Some(id) = self.pick("SELECT id FROM payment_batches WHERE state = 'open' ORDER BY id").await else { return };
        self.log.push(format!("export paymentBatches/{id}"));
        let r =
            self.client.export_payment_batch(bearer(ExportPaymentBatchRequest { name: format!("paymentBatches/{id}") }, &self.maker)).await;
        self.expect_ok("ExportPaymentBatch", r);
    }

    async fn import(&mut self) {
        let Some(batch) = self.pick("SELECT id FROM payment_batches WHERE state = 'exported' ORDER BY id").await else { return };
        let sent: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM disbursements WHERE batch_id = $1 AND state = 'sent' ORDER BY id")
            .bind(batch)
            .fetch_all(&self.f.pool)
            .await
            .expect("sent");
        let n = self.rng.gen_range(1..=sent.len().max(1));
        let chosen: Vec<Uuid> = sent.choose_multiple(&mut self.rng, n).copied().collect();
        let results: Vec<PaymentResult> = chosen
            .iter()
            .map(|d| {
                let paid = self.rng.gen_bool(0.6);
                PaymentResult {
                    disbursement: format!("disbursements/{d}"),
                    paid,
                    external_reference: if paid { format!("BANK-{}", d.simple()) } else { String::new() },
                    failure_reason: if paid { String::new() } else { "account closed".into() },
                }
            })
            .collect();
        self.log.push(format!(
            "import paymentBatches/{batch}: {}",
            results.iter().map(|r| format!("{} {}", r.disbursement, if r.paid { "paid" } else { "failed" })).collect::<Vec<_>>().join(", ")
        ));
        if results.is_empty() {
            return;
        }
        let r = self
            .client
            .import_payment_results(bearer(
                ImportPaymentResultsRequest { name: format!("paymentBatches/{batch}"), results: results.clone(), request_id: rid() },
                &self.maker,
            ))
            .await;
        let r = self.expect_ok("ImportPaymentResults", r).into_inner();
        assert_eq!(r.recorded_count as usize, results.len());
    }

    async fn requeue(&mut self) {
        let Some(id) = self
            .pick(
                "SELECT d.id FROM disbursements d JOIN tranches t ON t.award_id = d.award_id AND t.number = d.tranche_number \
                 JOIN awards a ON a.id = d.award_id WHERE d.state = 'failed' AND t.state = 'payable' AND a.state = 'active' ORDER BY d.id",
            )
            .await
        else {
            return;
        };
        self.log.push(format!("requeue disbursements/{id}"));
        let r = self
            .client
            .requeue_disbursement(bearer(
                RequeueDisbursementRequest { name: format!("disbursements/{id}"), request_id: rid() },
                &self.maker,
            ))
            .await;
        let d = self.expect_ok("RequeueDisbursement", r).into_inner().disbursement.expect("disbursement");
        assert_eq!(d.retry_of, format!("disbursements/{id}"));
    }

    async fn step(&mut self) {
        const WEIGHTS: [(&str, u32); 11] = [
            ("create", 3),
            ("amend", 2),
            ("cancel", 1),
            ("release", 1),
            ("request", 3),
            ("approve", 3),
            ("reject", 1),
            ("batch", 2),
            ("export", 2),
            ("import", 2),
            ("requeue", 1),
        ];
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.gen_range(0..total);
        let op = WEIGHTS
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map(|(o, _)| *o)
            .expect("op");
        let logged = self.log.len();
        match op {
            "create" => self.create().await,
            "amend" => self.amend().await,
            "cancel" => self.cancel().await,
            "release" => self.release().await,
            "request" => self.request().await,
            "approve" => self.approve().await,
            "reject" => self.reject().await,
            "batch" => self.batch().await,
            "export" => self.export().await,
            "import" => self.import().await,
            _ => self.requeue().await,
        }
        if self.log.len() > logged {
            *self.ran.entry(op).or_default() += 1;
        }
    }

    /// What must hold between awards, tranches, disbursements and the ledger, whatever ran.
    async fn check(&self) {
        let f = self.f;
        let count = |what: &'static str, sql: &'static str| async move { (what, f.count(sql).await) };
        let checks = [
            // Per line: the counter is what the live tranches of its awards are worth; the
            // ledger's stages are where that money is.
            count(
                "a line's counter is the sum of its awards' live tranches",
                "SELECT count(*) FROM budget_lines l WHERE l.committed_minor <> (SELECT coalesce(sum(t.line_amount_minor), 0) FROM tranches t \
                 JOIN awards a ON a.id = t.award_id WHERE a.line_id = l.id AND t.state <> 'cancelled')",
            )
            .await,
            count(
                "a line's disbursed balance is the sum of its paid disbursements",
                "SELECT count(*) FROM budget_lines l WHERE (SELECT coalesce(sum(e.amount_minor), 0) FROM entries e \
                 WHERE e.account = 'budgets/' || l.budget_id || '/lines/' || l.code || '/disbursed') \
                 <> (SELECT coalesce(sum(d.line_amount_minor), 0) FROM disbursements d WHERE d.line_id = l.id AND d.state = 'paid')",
            )
            .await,
            count(
                "a line's disbursed balance is the sum of its paid tranches",
                "SELECT count(*) FROM budget_lines l WHERE (SELECT coalesce(sum(e.amount_minor), 0) FROM entries e \
                 WHERE e.account = 'budgets/' || l.budget_id || '/lines/' || l.code || '/disbursed') \
                 <> (SELECT coalesce(sum(t.line_amount_minor), 0) FROM tranches t JOIN awards a ON a.id = t.award_id \
                     WHERE a.line_id = l.id AND t.state = 'paid')",
            )
            .await,
            count(
                "a line's in_payment balance is the sum of its disbursements at the bank",
                "SELECT count(*) FROM budget_lines l WHERE (SELECT coalesce(sum(e.amount_minor), 0) FROM entries e \
                 WHERE e.account = 'budgets/' || l.budget_id || '/lines/' || l.code || '/in_payment') \
                 <> (SELECT coalesce(sum(d.line_amount_minor), 0) FROM disbursements d WHERE d.line_id = l.id AND d.state = 'sent')",
            )
            .await,
            // Per award.
            count(
                "a live award's amounts are the sums of its live tranches",
                "SELECT count(*) FROM awards a WHERE a.state <> 'cancelled' AND (a.amount_minor IS DISTINCT FROM \
                 (SELECT sum(t.amount_minor) FROM tranches t WHERE t.award_id = a.id AND t.state <> 'cancelled') \
                 OR a.line_amount_minor IS DISTINCT FROM \
                 (SELECT sum(t.line_amount_minor) FROM tranches t WHERE t.award_id = a.id AND t.state <> 'cancelled'))",
            )
            .await,
            count(
                "an award's money in the ledger (committed, in payment, disbursed) is its live tranches",
                "SELECT count(*) FROM awards a WHERE (SELECT coalesce(sum(e.amount_minor), 0) FROM entries e WHERE e.award_id = a.id \
                 AND (e.account LIKE '%/committed' OR e.account LIKE '%/in_payment' OR e.account LIKE '%/disbursed')) \
                 <> (SELECT coalesce(sum(t.line_amount_minor), 0) FROM tranches t WHERE t.award_id = a.id AND t.state <> 'cancelled')",
            )
            .await,
            count(
                "a completed award has nothing left to pay, a cancelled one no live tranche left",
                "SELECT count(*) FROM awards a WHERE (a.state = 'completed' AND EXISTS (SELECT 1 FROM tranches t WHERE t.award_id = a.id \
                 AND t.state NOT IN ('paid', 'cancelled'))) OR (a.state = 'cancelled' AND EXISTS (SELECT 1 FROM tranches t \
                 WHERE t.award_id = a.id AND t.state NOT IN ('paid', 'cancelled')))",
            )
            .await,
            // Tranches and their disbursements.
            count(
                "a tranche in payment has exactly one disbursement on its way, any other none",
                "SELECT count(*) FROM tranches t WHERE (t.state = 'in_payment') <> ((SELECT count(*) FROM disbursements d \
                 WHERE d.award_id = t.award_id AND d.tranche_number = t.number AND d.state IN ('pending_approval', 'approved', 'batched', 'sent')) = 1) \
                 OR (SELECT count(*) FROM disbursements d WHERE d.award_id = t.award_id AND d.tranche_number = t.number \
                     AND d.state IN ('pending_approval', 'approved', 'batched', 'sent')) > 1",
            )
            .await,
            count(
                "a paid tranche has exactly one paid disbursement, any other none",
                "SELECT count(*) FROM tranches t WHERE (SELECT count(*) FROM disbursements d WHERE d.award_id = t.award_id \
                 AND d.tranche_number = t.number AND d.state = 'paid') <> (CASE WHEN t.state = 'paid' THEN 1 ELSE 0 END)",
            )
            .await,
            count(
                "a disbursement's amounts are its tranche's",
                "SELECT count(*) FROM disbursements d JOIN tranches t ON t.award_id = d.award_id AND t.number = d.tranche_number \
                 WHERE d.state IN ('pending_approval', 'approved', 'batched', 'sent', 'paid') \
                 AND (d.amount_minor, d.line_amount_minor) <> (t.amount_minor, t.line_amount_minor)",
            )
            .await,
            // Disbursements and their postings.
            count(
                "a disbursement is sent once in the ledger if it reached the bank, paid once if paid, reversed once if failed",
                "SELECT count(*) FROM disbursements d WHERE \
                 (SELECT count(*) FROM postings p WHERE p.disbursement_id = d.id AND p.kind = 'disbursement') \
                   <> (CASE WHEN d.state IN ('sent', 'paid', 'failed') THEN 1 ELSE 0 END) \
                 OR (SELECT count(*) FROM postings p WHERE p.disbursement_id = d.id AND p.kind = 'payment') \
                   <> (CASE WHEN d.state = 'paid' THEN 1 ELSE 0 END) \
                 OR (SELECT count(*) FROM postings p WHERE p.disbursement_id = d.id AND p.kind = 'reversal') \
                   <> (CASE WHEN d.state = 'failed' THEN 1 ELSE 0 END)",
            )
            .await,
            count(
                "a batched or sent disbursement is in a batch, a pending or approved one in none",
                "SELECT count(*) FROM disbursements d WHERE (d.state IN ('batched', 'sent', 'paid') AND d.batch_id IS NULL) \
                 OR (d.state IN ('pending_approval', 'approved') AND d.batch_id IS NOT NULL)",
            )
            .await,
        ];
        for (what, bad) in checks {
            if bad != 0 {
                self.fail(&format!("{what}: {bad} rows break it"));
            }
        }
    }

    /// The line figures the API shows agree with the counters and the ledger.
    async fn check_figures(&mut self) {
        for zone in ZONES {
            let code = format!("collective_{zone}");
            let line = self.f.line(&code);
            let r = self.client.get_budget_line(bearer(GetBudgetLineRequest { name: line.clone(), as_of: None }, &self.f.admin)).await;
            let figures = self.expect_ok("GetBudgetLine", r).into_inner().line.expect("line").figures.expect("figures");
            let m = |x: Option<work4life_proto::types::Money>| x.map_or(0, |m| m.amount_minor);
            let (allocated, committed) = self.f.line_counters(&code).await;
            let stage = |s: &str| format!("{line}/{s}");
            let f = self.f;
            let balance = |account: String| async move {
                f.count(&format!("SELECT coalesce(sum(amount_minor), 0)::bigint FROM entries WHERE account = '{account}'")).await
            };
            let (disbursed, in_payment) = (balance(stage("disbursed")).await, balance(stage("in_payment")).await);
            let shown = (m(figures.allocated), m(figures.committed), m(figures.available), m(figures.disbursed), m(figures.in_payment));
            if shown != (allocated, committed, allocated - committed, disbursed, in_payment) {
                self.fail(&format!(
                    "{line} shows {shown:?}; counters and ledger say {:?}",
                    (allocated, committed, allocated - committed, disbursed, in_payment)
                ));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operation_sequences_keep_the_books_balanced() {
    let seed: u64 = std::env::var("LEDGER_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("seed {seed} (rerun with LEDGER_SEED={seed})");
    let f = fresh().await;
    let days: (String, String, String) = sqlx::query_as(
        "SELECT d::text, (d - 10)::text, (d + 30)::text FROM (SELECT (now() AT TIME ZONE 'Africa/Casablanca')::date AS d) x",
    )
    .fetch_one(&f.pool)
    .await
    .expect("days");
    let mut driver = Driver {
        client: f.client().await,
        rng: StdRng::seed_from_u64(seed),
        seed,
        manager: f.manager(&ZONES).1,
        maker: f.maker(&ZONES).1,
        checker: f.checker(&ZONES).1,
        days,
        log: Vec::new(),
        ran: Default::default(),
        f: &f,
    };
    for sequence in 0..SEQUENCES {
        driver.log = vec![format!("sequence {sequence}")];
        for _ in 0..OPS {
            driver.step().await;
        }
        f.assert_books_balance().await;
        driver.check().await;
        driver.check_figures().await;
    }
    // The sequences went through the whole path, or the property says little.
    let kinds = f
        .count("SELECT count(DISTINCT kind) FROM postings WHERE kind IN ('commitment', 'release', 'disbursement', 'payment', 'reversal')")
        .await;
    eprintln!(
        "{} awards ({} cancelled), {} disbursements, {} postings; operations run: {:?}",
        f.count("SELECT count(*) FROM awards").await,
        f.count("SELECT count(*) FROM awards WHERE state = 'cancelled'").await,
        f.count("SELECT count(*) FROM disbursements").await,
        f.count("SELECT count(*) FROM postings").await,
        driver.ran
    );
    let missing: Vec<&str> = ["create", "amend", "cancel", "request", "approve", "batch", "export", "import"]
        .into_iter()
        .filter(|op| !driver.ran.contains_key(op))
        .collect();
    assert!(kinds == 5 && missing.is_empty(), "the sequences were too tame: {kinds} posting kinds, never {missing:?} (seed {seed})");
}

/// The SQLSTATE of a refused statement.
fn sqlstate(r: Result<impl std::fmt::Debug, sqlx::Error>) -> String {
    match r {
        Ok(v) => panic!("the database accepted it: {v:?}"),
        Err(e) => {
            e.as_database_error().and_then(|d| d.code()).map(|c| c.to_string()).unwrap_or_else(|| panic!("not a database error: {e}"))
        }
    }
}

/// Writes a posting with these entries in one transaction; the COMMIT's result.
async fn post_raw(f: &Fixture, amounts: &[i64]) -> Result<(), sqlx::Error> {
    let budget = Uuid::parse_str(f.budget.trim_start_matches("budgets/")).expect("budget id");
    let mut tx = f.pool.begin().await.expect("begin");
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO postings (id, budget_id, kind, memo) VALUES ($1, $2, 'funding', 'by hand')")
        .bind(id)
        .bind(budget)
        .execute(&mut *tx)
        .await
        .expect("the posting row is written; the check waits for COMMIT");
    for (i, amount) in amounts.iter().enumerate() {
        sqlx::query(
            "INSERT INTO entries (posting_id, line_no, budget_id, account, amount_minor, posted_at) VALUES ($1, $2, $3, $4, $5, now())",
        )
        .bind(id)
        .bind(i as i16 + 1)
        .bind(budget)
        .bind(format!("{}/by_hand/{i}", f.budget))
        .bind(amount)
        .execute(&mut *tx)
        .await
        .expect("each entry is written; the check waits for COMMIT");
    }
    tx.commit().await
}

#[tokio::test]
async fn the_database_refuses_an_unbalanced_posting_at_commit() {
    let f = fresh().await;
    let before = f.fingerprint().await;
    for amounts in [&[][..], &[100_000][..], &[100_000, -99_999][..], &[100_000, -50_000, -50_001][..]] {
        let err = post_raw(&f, amounts).await.expect_err("an unbalanced posting commits");
        assert_eq!(sqlstate(Err::<(), _>(err)), "23514", "check_violation for {amounts:?}");
    }
    assert_eq!(f.fingerprint().await, before, "nothing of the refused postings is left");
    // A balanced one of three entries commits: the check is about balance, nothing else.
    post_raw(&f, &[100_000, -60_000, -40_000]).await.expect("a balanced posting commits");
    assert_eq!(f.count("SELECT count(*) FROM entries WHERE account LIKE '%/by_hand/%'").await, 3);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn the_ledger_is_append_only_and_awards_and_disbursements_are_kept() {
    let f = fresh().await;
    let (_, manager) = f.manager(&["tanger"]);
    let (_, maker) = f.maker(&["tanger"]);
    let app = f.accepted("tanger", 3).await;
    let award = f
        .create_award(
            &manager,
            startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![on_date(1_500_000, &today(&f.pool).await)]),
        )
        .await
        .expect("award");
    let d = f.request(&maker, &award.tranches[0].name).await.expect("request");
    let award_id = Uuid::parse_str(award.name.trim_start_matches("awards/")).expect("id");
    let d_id = Uuid::parse_str(d.name.trim_start_matches("disbursements/")).expect("id");
    let before = f.fingerprint().await;
    let refused = [
        ("UPDATE postings SET memo = 'edited'", "42501"),
        ("DELETE FROM postings WHERE kind = 'commitment'", "42501"),
        ("UPDATE entries SET amount_minor = amount_minor * 2", "42501"),
        ("UPDATE entries SET account = account || '_x' WHERE amount_minor > 0", "42501"),
        ("DELETE FROM entries", "42501"),
        ("TRUNCATE entries", "42501"),
        ("TRUNCATE postings CASCADE", "42501"),
    ];
    for (sql, code) in refused {
        assert_eq!(sqlstate(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&f.pool).await), code, "{sql}");
    }
    let award_delete = sqlx::query("DELETE FROM awards WHERE id = $1").bind(award_id).execute(&f.pool).await;
    assert_eq!(sqlstate(award_delete), "42501", "an award is never deleted");
    let d_delete = sqlx::query("DELETE FROM disbursements WHERE id = $1").bind(d_id).execute(&f.pool).await;
    assert_eq!(sqlstate(d_delete), "42501", "a disbursement is never deleted");
    for set in [
        "amount_minor = amount_minor + 1",
        "amount_minor = 1",
        "line_amount_minor = line_amount_minor - 1",
        "currency = 'MAD'",
        "requested_by = 'accounts/someone-else'",
    ] {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE disbursements SET {set} WHERE id = $1"))).bind(d_id).execute(&f.pool).await;
        assert_eq!(sqlstate(r), "23000", "a disbursement's {set} never changes");
    }
    let overcommit = sqlx::query("UPDATE budget_lines SET committed_minor = allocated_minor + 1 WHERE code = $1")
        .bind(COLLECTIVE_TANGER)
        .execute(&f.pool)
        .await;
    assert_eq!(sqlstate(overcommit), "23514", "a line is never committed beyond its allocation");
    assert_eq!(f.fingerprint().await, before, "every refused statement left everything as it was");
    // Its progress may change (the trigger refuses only what it pays): here, in a transaction rolled back.
    let mut tx = f.pool.begin().await.expect("begin");
    sqlx::query("UPDATE disbursements SET failure_reason = 'note' WHERE id = $1").bind(d_id).execute(&mut *tx).await.expect("progress");
    tx.rollback().await.expect("rollback");
    f.assert_books_balance().await;
}
