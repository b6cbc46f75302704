//! The donor's report and the ledger's readers: figures derived from the ledger and equal to the
//! budget's, start-ups and bursaries counted, persons counted once however many awards they are
//! in, breakdowns that each sum to the totals (an award shared evenly among its members, the
//! remainder to the first), a past reporting date reproducible byte for byte, the beneficiaries'
//! share, who may read it, and postings read page by page without gaps or duplicates.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use prost::Message;
use tonic::Code;
use uuid::Uuid;
use work4life_proto::{
    grants::{
        Award, CancelAwardRequest, DonorReport, GetBalancesRequest, GetBudgetRequest, GetDonorReportRequest, ListPostingsRequest, Posting,
        ReportRow,
    },
    intake::{Outcome, Window},
};

const PROGRAM: &str = "programs/work4life";
const GENDERS: [&str; 5] = ["female", "male", "female", "other", "male"];
const NATIONALITIES: [&str; 5] = ["SN", "CI", "CM", "GN", "ML"];
const BANDS: [&str; 5] = ["18-24", "25-34", "35-44", "25-34", "45-54"];

async fn report(f: &Fixture, jwt: &str, as_of: Option<prost_types::Timestamp>) -> Result<DonorReport, tonic::Status> {
    f.client()
        .await
        .get_donor_report(bearer(GetDonorReportRequest { program: PROGRAM.into(), as_of }, jwt))
        .await
        .map(|r| r.into_inner().report.expect("report"))
}

async fn report_of(f: &Fixture, jwt: &str, program: &str) -> Result<DonorReport, tonic::Status> {
    f.client()
        .await
        .get_donor_report(bearer(GetDonorReportRequest { program: program.into(), as_of: None }, jwt))
        .await
        .map(|r| r.into_inner().report.expect("report"))
}

async fn budget(f: &Fixture) -> work4life_proto::grants::Budget {
    f.client()
        .await
        .get_budget(bearer(GetBudgetRequest { name: f.budget.clone(), as_of: None }, &f.admin))
        .await
        .expect("budget")
        .into_inner()
        .budget
        .expect("budget")
}

/// Pays `paid` tranches (payable, bank transfers) and sends `sent` ones to the bank without a
/// result, through the maker-checker path; returns the disbursements of `paid` then `sent`.
async fn pay(f: &Fixture, paid: &[&str], sent: &[&str]) -> Vec<String> {
    let (_, maker) = f.maker(&[]);
    let (_, checker) = f.checker(&[]);
    let mut names = Vec::new();
    for t in paid.iter().chain(sent) {
        let d = f.request(&maker, t).await.expect("request");
        f.approve(&checker, &d.name).await.expect("approve");
        names.push(d.name);
    }
    let batch = f.batch(&maker).await.expect("batch");
    f.export(&maker, &batch.name).await.expect("export");
    let results: Vec<(&str, bool, &str)> = names[..paid.len()].iter().map(|d| (d.as_str(), true, "BANK-REF")).collect();
    if !results.is_empty() {
        f.import(&maker, &batch.name, &results).await.expect("import");
    }
    names
}

async fn award(f: &Fixture, line: &str, app: &Accepted, tranches: Vec<work4life_proto::grants::Tranche>) -> Award {
    f.create_award(&f.admin, startup_award(&f.line(line), &app.application, tranches)).await.expect("award")
}

async fn cancel(f: &Fixture, a: &Award) {
    let current = f.get_award(&f.admin, &a.name).await.expect("award");
    f.client()
        .await
        .cancel_award(bearer(
            CancelAwardRequest { name: a.name.clone(), reason: "the start-up dissolved".into(), etag: current.etag, request_id: rid() },
            &f.admin,
        ))
        .await
        .expect("cancel");
}

/// What the report should say of one award: zone, window, committed, disbursed, members.
struct Expected {
    zone: &'static str,
    window: &'static str,
    committed: i64,
    disbursed: i64,
    members: Vec<String>,
}

type Row = (i32, i32, i64, i64);
/// Awards, persons, committed and disbursed of one key, while counting.
type Tally = (BTreeSet<usize>, BTreeSet<String>, i64, i64);

/// The breakdowns as the contract describes them: each member of an award gets an even share of
/// its money (the remainder to the first), awards and persons are counted once per key.
fn expected_breakdowns(awards: &[Expected]) -> BTreeMap<&'static str, BTreeMap<String, Row>> {
    let mut acc: BTreeMap<&'static str, BTreeMap<String, Tally>> = BTreeMap::new();
    for (i, a) in awards.iter().enumerate() {
        let n = a.members.len() as i64;
        for (pos, person) in a.members.iter().enumerate() {
            let share = |total: i64| total / n + if pos == 0 { total % n } else { 0 };
            for (dimension, key) in [
                ("zone", a.zone.to_string()),
                ("window", a.window.to_string()),
                ("gender", GENDERS[pos % 5].to_string()),
                ("nationality", NATIONALITIES[pos % 5].to_string()),
                ("age_band", BANDS[pos % 5].to_string()),
            ] {
                let e = acc.entry(dimension).or_default().entry(key).or_default();
                e.0.insert(i);
                e.1.insert(person.clone());
                e.2 += share(a.committed);
                e.3 += share(a.disbursed);
            }
        }
    }
    acc.into_iter()
        .map(|(d, rows)| {
            (d, rows.into_iter().map(|(k, (awards, persons, c, x))| (k, (awards.len() as i32, persons.len() as i32, c, x))).collect())
        })
        .collect()
}

fn rows(list: &[ReportRow]) -> BTreeMap<String, Row> {
    let map: BTreeMap<String, Row> =
        list.iter().map(|r| (r.key.clone(), (r.awards, r.persons, r.committed_minor, r.disbursed_minor))).collect();
    assert_eq!(map.len(), list.len(), "each key appears once: {list:?}");
    map
}

fn breakdowns(r: &DonorReport) -> BTreeMap<&'static str, BTreeMap<String, Row>> {
    BTreeMap::from([
        ("zone", rows(&r.by_zone)),
        ("window", rows(&r.by_window)),
        ("gender", rows(&r.by_gender)),
        ("nationality", rows(&r.by_nationality)),
        ("age_band", rows(&r.by_age_band)),
    ])
}

#[tokio::test]
async fn the_report_counts_money_from_the_ledger_and_persons_once() {
    let f = fresh().await;
    let today = today(&f.pool).await;
    let a = f.accepted("tanger", 3).await;
    let b = f.accepted("rabat_sale", 5).await;
    let c = f.decide(Window::IndividualStartup, "tanger", 1, Outcome::Accepted).await;
    let d = f.accepted_placement("rabat_sale").await;
    // Two members of A are also in E: one person, two awards.
    let e_members = vec![
        a.applicants[0].clone(),
        a.applicants[1].clone(),
        format!("applicants/{}", Uuid::now_v7()),
        format!("applicants/{}", Uuid::now_v7()),
    ];
    let e = f.accept_members(PROGRAM, Window::CollectiveStartup, "tanger", &e_members).await;

    let award_a =
        award(&f, COLLECTIVE_TANGER, &a, vec![on_date(1_000_000, &today), on_milestone(2_000_000, "business_plan_validated")]).await;
    let award_b =
        award(&f, "collective_rabat_sale", &b, vec![on_date(1_500_001, &today), on_milestone(2_500_000, "business_plan_validated")]).await;
    award(&f, INDIVIDUAL, &c, vec![on_milestone(1_200_000, "legal_registration")]).await;
    f.create_award(&f.admin, bursary_award(&f.line(WORK_BURSARIES), &d, 50_000, 6, "2027-01-01")).await.expect("bursary");
    let award_e = award(&f, COLLECTIVE_TANGER, &e, vec![on_milestone(2_000_003, "first_sale")]).await;
    assert_eq!(award_e.beneficiaries, e_members, "E's beneficiaries are the decision's members");
    // A's first tranche is paid; B's first is with the bank, not confirmed.
    pay(&f, &[&award_a.tranches[0].name], &[&award_b.tranches[0].name]).await;

    let r = report(&f, &f.admin, None).await.expect("report");
    assert_eq!(r.program, PROGRAM);
    assert_eq!(r.currency_code, "EUR");
    assert!(r.as_of.is_some(), "the report names its instant");
    assert_eq!(r.envelope_minor, 200_000_000);
    let committed = 3_000_000 + 4_000_001 + 1_200_000 + 300_000 + 2_000_003;
    assert_eq!(r.committed_minor, committed, "committed counts what is reserved, in payment and paid");
    assert_eq!(r.disbursed_minor, 1_000_000, "disbursed counts only what the bank confirmed");
    assert_eq!(r.startups_funded, 4);
    assert_eq!(r.bursaries_granted, 1);
    assert_eq!(r.persons_funded, 3 + 5 + 1 + 1 + 4 - 2, "the two members of A and E count once");

    // The budget and the ledger say the same.
    let bud = budget(&f).await;
    let figures = bud.figures.expect("figures");
    assert_eq!(figures.committed.expect("committed").amount_minor, r.committed_minor);
    assert_eq!(figures.disbursed.expect("disbursed").amount_minor, r.disbursed_minor);
    assert_eq!(figures.in_payment.expect("in payment").amount_minor, 1_500_001);
    let balances = f
        .client()
        .await
        .get_balances(bearer(GetBalancesRequest { budget: f.budget.clone(), as_of: r.as_of }, &f.admin))
        .await
        .expect("balances")
        .into_inner()
        .balances;
    let sum = |suffixes: &[&str]| -> i64 {
        balances
            .iter()
            .filter(|b| suffixes.iter().any(|s| b.account.ends_with(s)))
            .map(|b| b.balance.as_ref().map_or(0, |m| m.amount_minor))
            .sum()
    };
    assert_eq!(sum(&["/committed", "/in_payment", "/disbursed"]), r.committed_minor, "{balances:?}");
    assert_eq!(sum(&["/disbursed"]), r.disbursed_minor);

    let expected = vec![
        Expected {
            zone: "tanger",
            window: "collective_startup",
            committed: 3_000_000,
            disbursed: 1_000_000,
            members: a.applicants.clone(),
        },
        Expected { zone: "rabat_sale", window: "collective_startup", committed: 4_000_001, disbursed: 0, members: b.applicants.clone() },
        Expected { zone: "tanger", window: "individual_startup", committed: 1_200_000, disbursed: 0, members: c.applicants.clone() },
        Expected { zone: "rabat_sale", window: "job_placement", committed: 300_000, disbursed: 0, members: d.applicants.clone() },
        Expected { zone: "tanger", window: "collective_startup", committed: 2_000_003, disbursed: 0, members: e_members.clone() },
    ];
    let want = expected_breakdowns(&expected);
    let got = breakdowns(&r);
    for (dimension, rows) in &got {
        let c: i64 = rows.values().map(|r| r.2).sum();
        let x: i64 = rows.values().map(|r| r.3).sum();
        assert_eq!(c, r.committed_minor, "{dimension}: the rows' committed sum to the report's");
        assert_eq!(x, r.disbursed_minor, "{dimension}: the rows' disbursed sum to the report's");
        assert_eq!(rows, &want[dimension], "{dimension} rows (awards, persons, committed, disbursed)");
    }
    // A few figures by hand, so the model above is not the only witness.
    assert_eq!(got["zone"]["tanger"], (3, 3 + 1 + 4 - 2, 3_000_000 + 1_200_000 + 2_000_003, 1_000_000));
    assert_eq!(got["zone"]["rabat_sale"], (2, 6, 4_300_001, 0));
    assert_eq!(got["window"]["collective_startup"], (3, 10, 9_000_004, 1_000_000));
    assert_eq!(got["window"]["job_placement"], (1, 1, 300_000, 0));
    // Female: A0 (=E0), A2, B0, B2, C0, D0, E2 → 7 persons, in all five awards.
    assert_eq!(got["gender"]["female"].0, 5);
    assert_eq!(got["gender"]["female"].1, 7);
    // A's 1,000,000 paid is shared 333,334 / 333,333 / 333,333: SN (A0) gets the remainder.
    assert_eq!(got["nationality"]["SN"].3, 333_334);
    assert_eq!(got["nationality"]["CI"].3, 333_333);
    // B's 4,000,001 over five: the first gets 800,001.
    assert_eq!(got["nationality"]["GN"], (2, 2, 800_000 + 500_000, 0), "B3 and E3");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn a_past_reporting_date_gives_the_same_report_whatever_was_written_since() {
    let f = fresh().await;
    let today = today(&f.pool).await;
    let a = f.accepted("tanger", 3).await;
    let b = f.accepted("rabat_sale", 4).await;
    let award_a = award(
        &f,
        COLLECTIVE_TANGER,
        &a,
        vec![on_date(1_000_000, &today), on_date(500_000, &today), on_milestone(1_500_000, "business_plan_validated")],
    )
    .await;
    let award_b = award(&f, "collective_rabat_sale", &b, vec![on_milestone(2_000_000, "business_plan_validated")]).await;
    pay(&f, &[&award_a.tranches[0].name], &[]).await;

    let first = report(&f, &f.admin, None).await.expect("report");
    let t1 = first.as_of.expect("as_of");
    assert_eq!(first.committed_minor, 5_000_000);
    assert_eq!(first.startups_funded, 2);
    assert_eq!(rows(&first.by_zone)["rabat_sale"], (1, 4, 2_000_000, 0));

    // Later: B cancelled, C awarded, A's second tranche paid.
    cancel(&f, &award_b).await;
    let after_cancel = report(&f, &f.admin, None).await.expect("report");
    assert_eq!(after_cancel.committed_minor, 3_000_000, "a cancelled award stops counting");
    assert_eq!(after_cancel.startups_funded, 1);
    assert_eq!(after_cancel.persons_funded, 3);
    assert!(!rows(&after_cancel.by_zone).contains_key("rabat_sale"), "{:?}", after_cancel.by_zone);
    let c = f.accepted("oujda", 3).await;
    award(&f, "collective_oujda", &c, vec![on_milestone(2_400_000, "business_plan_validated")]).await;
    pay(&f, &[&award_a.tranches[1].name], &[]).await;

    let again = report(&f, &f.admin, Some(t1)).await.expect("report");
    assert_eq!(again.encode_to_vec(), first.encode_to_vec(), "the same instant gives the same report, byte for byte");
    let by_auditor = report(&f, &f.auditor().1, Some(t1)).await.expect("report");
    assert_eq!(by_auditor.encode_to_vec(), first.encode_to_vec());
    assert_eq!(
        report(&f, &f.admin, after_cancel.as_of).await.expect("report").encode_to_vec(),
        after_cancel.encode_to_vec(),
        "the instant after the cancellation is reproducible too"
    );

    let now = report(&f, &f.admin, None).await.expect("report");
    assert_ne!(now.encode_to_vec(), first.encode_to_vec());
    assert_eq!(now.committed_minor, 3_000_000 + 2_400_000);
    assert_eq!(now.disbursed_minor, 1_500_000);
    assert_eq!(first.disbursed_minor, 1_000_000);
    assert_eq!(now.startups_funded, 2);
    assert_eq!(now.persons_funded, 6);
    assert_eq!(rows(&now.by_zone).keys().cloned().collect::<Vec<_>>(), vec!["oujda".to_string(), "tanger".to_string()]);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn the_beneficiaries_share_is_planned_from_the_lines_and_grows_with_payments() {
    let f = fresh().await;
    let r = report(&f, &f.admin, None).await.expect("report");
    // 250,000 + 250,000 + 150,000 + 150,000 + 200,000 + 380,000 = 1,380,000 EUR of 2,000,000.
    assert_eq!(r.planned_beneficiary_share_bp, 6900);
    assert_eq!(r.disbursed_beneficiary_share_bp, 0);
    let b = budget(&f).await;
    assert_eq!(b.planned_beneficiary_share_bp, 6900);
    assert_eq!(b.beneficiary_share_target_bp, 6667);
    assert_eq!(b.disbursed_beneficiary_share_bp, 0);

    let today = today(&f.pool).await;
    let a = f.accepted("tanger", 3).await;
    let award_a = award(&f, COLLECTIVE_TANGER, &a, vec![on_date(2_000_000, &today), on_date(4_000_000, &today)]).await;
    let committed_only = report(&f, &f.admin, None).await.expect("report");
    assert_eq!(committed_only.disbursed_beneficiary_share_bp, 0, "a commitment is not a payment");

    pay(&f, &[&award_a.tranches[0].name], &[]).await;
    let r = report(&f, &f.admin, None).await.expect("report");
    assert_eq!(r.disbursed_beneficiary_share_bp, 100, "20,000 EUR of 2,000,000");
    assert_eq!(budget(&f).await.disbursed_beneficiary_share_bp, 100);

    pay(&f, &[&award_a.tranches[1].name], &[]).await;
    let r = report(&f, &f.admin, None).await.expect("report");
    assert_eq!(r.disbursed_beneficiary_share_bp, 300, "60,000 EUR of 2,000,000");
    assert_eq!(r.planned_beneficiary_share_bp, 6900, "the plan does not move with payments");
    let b = budget(&f).await;
    assert_eq!(b.disbursed_beneficiary_share_bp, 300);
    assert_eq!(b.planned_beneficiary_share_bp, 6900);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn the_report_is_for_admins_auditors_and_program_managers() {
    let f = fresh().await;
    let before = f.fingerprint().await;
    for (who, jwt) in [
        ("finance officer", f.maker(&[]).1),
        ("finance checker", f.checker(&[]).1),
        ("beneficiary", f.beneficiary(&format!("accounts/{}", Uuid::now_v7()))),
        ("coach", f.token("coach", None, &[]).1),
    ] {
        let err = report(&f, &jwt, None).await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    for (who, jwt) in [("admin", f.admin.clone()), ("auditor", f.auditor().1), ("program manager", f.manager(&[]).1)] {
        report(&f, &jwt, None).await.unwrap_or_else(|e| panic!("{who}: {e:?}"));
    }
    for bad in ["work4life", "programs/", "", "budgets/work4life"] {
        let err = report_of(&f, &f.admin, bad).await.expect_err(bad);
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
        assert_eq!(fields(&err), vec!["program"], "{bad:?}");
    }
    let err = f
        .client()
        .await
        .get_donor_report(bearer(
            GetDonorReportRequest { program: PROGRAM.into(), as_of: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }) },
            &f.admin,
        ))
        .await
        .expect_err("a bad instant");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(fields(&err), vec!["as_of"]);
    let err = report_of(&f, &f.admin, "programs/no_such_program").await.expect_err("unknown program");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(f.fingerprint().await, before, "reads write nothing");
}

async fn postings_page(f: &Fixture, r: ListPostingsRequest) -> Result<(Vec<Posting>, String), tonic::Status> {
    f.client().await.list_postings(bearer(r, &f.admin)).await.map(|r| {
        let r = r.into_inner();
        (r.postings, r.next_page_token)
    })
}

/// Every posting of a listing, `size` at a time.
async fn all_postings(f: &Fixture, filter: ListPostingsRequest, size: i32) -> Vec<Posting> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..1000 {
        let (page, next) =
            postings_page(f, ListPostingsRequest { page_size: size, page_token: token.clone(), ..filter.clone() }).await.expect("page");
        assert!(page.len() <= size as usize, "a page holds at most {size}");
        if !next.is_empty() {
            assert_eq!(page.len(), size as usize, "only the last page is short");
        }
        out.extend(page);
        if next.is_empty() {
            return out;
        }
        token = next;
    }
    panic!("the listing never ends");
}

#[tokio::test]
async fn postings_page_without_gaps_or_duplicates_and_balances_agree() {
    let f = fresh().await;
    let today = today(&f.pool).await;
    let a = f.accepted("tanger", 3).await;
    let b = f.accepted("rabat_sale", 3).await;
    let award_a = award(&f, COLLECTIVE_TANGER, &a, vec![on_date(1_000_000, &today), on_date(700_000, &today)]).await;
    award(&f, "collective_rabat_sale", &b, vec![on_milestone(2_000_000, "business_plan_validated")]).await;
    let mid: prost_types::Timestamp = {
        let r = f
            .client()
            .await
            .get_balances(bearer(GetBalancesRequest { budget: f.budget.clone(), as_of: None }, &f.admin))
            .await
            .expect("balances")
            .into_inner();
        r.as_of.expect("as_of")
    };
    pay(&f, &[&award_a.tranches[0].name], &[&award_a.tranches[1].name]).await;

    let total = f.count("SELECT count(*) FROM postings").await;
    assert_eq!(total, 9 + 2 + 2 + 1, "seed, two commitments, two sent to the bank, one paid");
    let whole = ListPostingsRequest { budget: f.budget.clone(), ..ListPostingsRequest::default() };
    let listed = all_postings(&f, whole.clone(), 2).await;
    assert_eq!(listed.len() as i64, total, "no gaps");
    let names: BTreeSet<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), listed.len(), "no duplicates");
    let times: Vec<(i64, i32)> = listed.iter().map(|p| p.post_time.map(|t| (t.seconds, t.nanos)).expect("post_time")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    for p in &listed {
        assert!(p.entries.len() >= 2, "{p:?}");
        assert_eq!(p.entries.iter().map(|e| e.amount.as_ref().map_or(0, |m| m.amount_minor)).sum::<i64>(), 0, "{p:?} balances");
    }
    let one_page = all_postings(&f, whole.clone(), 500).await;
    assert_eq!(
        one_page.iter().map(|p| &p.name).collect::<Vec<_>>(),
        listed.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "pages of 2 and a page of 500 list the same postings"
    );

    // Filtered by account and by award, still whole.
    let available = format!("{}/available", f.line(COLLECTIVE_TANGER));
    let on_account = all_postings(&f, ListPostingsRequest { account: available.clone(), ..whole.clone() }, 2).await;
    let want: Vec<&String> = listed.iter().filter(|p| p.entries.iter().any(|e| e.account == available)).map(|p| &p.name).collect();
    assert_eq!(on_account.iter().map(|p| &p.name).collect::<Vec<_>>(), want);
    assert_eq!(want.len(), 2, "the allocation and A's commitment");
    let of_award = all_postings(&f, ListPostingsRequest { award: award_a.name.clone(), ..whole.clone() }, 2).await;
    let want: Vec<&String> = listed.iter().filter(|p| p.award == award_a.name).map(|p| &p.name).collect();
    assert_eq!(of_award.iter().map(|p| &p.name).collect::<Vec<_>>(), want);
    assert_eq!(want.len(), 4, "commitment, two sent to the bank, one paid: {of_award:?}");
    let until_mid = all_postings(&f, ListPostingsRequest { as_of: Some(mid), ..whole.clone() }, 2).await;
    assert_eq!(until_mid.len(), 9 + 2, "the seed's funding and eight allocations, then two commitments");

    // Balances are the sums of the listed entries, now and at a past instant.
    let balances_at = |as_of| {
        let f = &f;
        async move {
            f.client()
                .await
                .get_balances(bearer(GetBalancesRequest { budget: f.budget.clone(), as_of }, &f.admin))
                .await
                .expect("balances")
                .into_inner()
                .balances
                .into_iter()
                .map(|b| (b.account, b.balance.map_or(0, |m| m.amount_minor)))
                .collect::<BTreeMap<String, i64>>()
        }
    };
    let sums = |postings: &[Posting]| {
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        for e in postings.iter().flat_map(|p| &p.entries) {
            *m.entry(e.account.clone()).or_default() += e.amount.as_ref().map_or(0, |m| m.amount_minor);
        }
        m
    };
    assert_eq!(balances_at(None).await, sums(&listed));
    assert_eq!(balances_at(Some(mid)).await, sums(&until_mid));
    assert_eq!(balances_at(None).await[&format!("{}/in_payment", f.line(COLLECTIVE_TANGER))], 700_000);

    // A token belongs to its filter.
    let before = f.fingerprint().await;
    let (_, token) = postings_page(&f, ListPostingsRequest { page_size: 2, ..whole.clone() }).await.expect("page");
    assert!(!token.is_empty());
    for (what, other) in [
        ("another account", ListPostingsRequest { account: available.clone(), page_size: 2, page_token: token.clone(), ..whole.clone() }),
        ("another award", ListPostingsRequest { award: award_a.name.clone(), page_size: 2, page_token: token.clone(), ..whole.clone() }),
        ("another instant", ListPostingsRequest { as_of: Some(mid), page_size: 2, page_token: token.clone(), ..whole.clone() }),
        ("a forged token", ListPostingsRequest { page_size: 2, page_token: format!("{token}x"), ..whole.clone() }),
    ] {
        let err = postings_page(&f, other).await.expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert_eq!(fields(&err), vec!["page_token"], "{what}");
    }
    assert_eq!(f.fingerprint().await, before);
    f.assert_books_balance().await;
}
