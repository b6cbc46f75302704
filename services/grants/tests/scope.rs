//! Who sees and does what with the program's money: staff of a zone see its awards and payments
//! only, staff bound to an organisation see the lines of no partner or of their own, auditors read
//! everything and change nothing, beneficiaries see their own awards and payments, out of scope is
//! NOT_FOUND, a role that cannot do something is PERMISSION_DENIED with nothing written, and
//! budgets and lines are made by the program's owners within the envelope.

mod common;

use common::*;
use tonic::Code;
use uuid::Uuid;
use work4life_proto::{
    grants::{
        ApproveDisbursementRequest, Award, Budget, BudgetLine, CancelAwardRequest, CreateBudgetLineRequest, CreateBudgetRequest,
        Disbursement, GetBalancesRequest, GetBudgetRequest, GetDisbursementRequest, GetDonorReportRequest, LineKind, ListAwardsRequest,
        ListBudgetLinesRequest, ListBudgetsRequest, ListDisbursementsRequest, ListPaymentBatchesRequest, ListPostingsRequest,
        RequestDisbursementRequest,
    },
    intake::Window,
};

async fn list_awards(f: &Fixture, jwt: &str, r: ListAwardsRequest) -> Result<Vec<String>, tonic::Status> {
    f.client()
        .await
        .list_awards(bearer(ListAwardsRequest { page_size: 500, ..r }, jwt))
        .await
        .map(|r| r.into_inner().awards.into_iter().map(|a| a.name).collect())
}

async fn list_disbursements(f: &Fixture, jwt: &str) -> Result<Vec<String>, tonic::Status> {
    f.client()
        .await
        .list_disbursements(bearer(ListDisbursementsRequest { page_size: 500, ..ListDisbursementsRequest::default() }, jwt))
        .await
        .map(|r| r.into_inner().disbursements.into_iter().map(|d| d.name).collect())
}

async fn get_disbursement(f: &Fixture, jwt: &str, name: &str) -> Result<Disbursement, tonic::Status> {
    f.client()
        .await
        .get_disbursement(bearer(GetDisbursementRequest { name: name.into() }, jwt))
        .await
        .map(|r| r.into_inner().disbursement.expect("disbursement"))
}

async fn create_budget(f: &Fixture, jwt: &str, program: &str, envelope: i64) -> Result<Budget, tonic::Status> {
    let budget = Budget {
        program: program.into(),
        display_name: format!("{program} — pilot contribution"),
        envelope: Some(eur(envelope)),
        ..Budget::default()
    };
    f.client()
        .await
        .create_budget(bearer(CreateBudgetRequest { budget: Some(budget), request_id: rid() }, jwt))
        .await
        .map(|r| r.into_inner().budget.expect("budget"))
}

async fn create_line(
    f: &Fixture,
    jwt: &str,
    parent: &str,
    code: &str,
    zone: &str,
    partner: Option<Uuid>,
    allocation: i64,
) -> Result<BudgetLine, tonic::Status> {
    let line = BudgetLine {
        display_name: format!("Collective start-ups {code}"),
        kind: LineKind::BeneficiaryFunds as i32,
        heading: "3.1 Start-up launch funds".into(),
        window: "collective_startup".into(),
        zone: zone.into(),
        partner: partner.map(|p| format!("organizations/{p}")).unwrap_or_default(),
        allocation: Some(eur(allocation)),
        ..BudgetLine::default()
    };
    f.client()
        .await
        .create_budget_line(bearer(
            CreateBudgetLineRequest { parent: parent.into(), line_id: code.into(), line: Some(line), request_id: rid() },
            jwt,
        ))
        .await
        .map(|r| r.into_inner().line.expect("line"))
}

/// A collective start-up of 3 in `zone` on `line` with a tranche payable today, and its first
/// tranche's disbursement requested by a finance officer of every zone of `org`.
async fn award_with_request(f: &Fixture, zone: &str, line: &str, org: Uuid) -> (Accepted, Award, Disbursement) {
    let app = f.accepted(zone, 3).await;
    let today = today(&f.pool).await;
    let award = f
        .create_award(
            &f.admin,
            startup_award(line, &app.application, vec![on_date(1_000_000, &today), on_milestone(500_000, "first_sale")]),
        )
        .await
        .expect("award");
    let (_, maker) = f.token("finance_officer", Some(org), &[]);
    let d = f.request(&maker, &award.tranches[0].name).await.expect("request");
    (app, award, d)
}

#[tokio::test]
async fn zone_staff_do_not_see_the_awards_and_payments_of_another_zone() {
    let f = fresh().await;
    let (_, tanger, d_tanger) = award_with_request(&f, "tanger", &f.line(COLLECTIVE_TANGER), f.org).await;
    let (_, rabat, d_rabat) = award_with_request(&f, "rabat_sale", &f.line("collective_rabat_sale"), f.org).await;
    for (who, jwt) in [
        ("finance officer", f.maker(&["tanger"]).1),
        ("finance checker", f.checker(&["tanger"]).1),
        ("program manager", f.manager(&["tanger"]).1),
    ] {
        assert_eq!(f.get_award(&jwt, &tanger.name).await.unwrap_or_else(|e| panic!("{who}: {e:?}")).name, tanger.name);
        let err = f.get_award(&jwt, &rabat.name).await.expect_err(who);
        assert_eq!(err.code(), Code::NotFound, "{who} reading Rabat's award: {err:?}");
        assert_eq!(list_awards(&f, &jwt, ListAwardsRequest::default()).await.expect("list"), vec![tanger.name.clone()], "{who}");
        let rabat_only = ListAwardsRequest { zone: "rabat_sale".into(), ..ListAwardsRequest::default() };
        assert!(list_awards(&f, &jwt, rabat_only).await.expect("list").is_empty(), "{who}: filtering on Rabat shows nothing");
        assert_eq!(get_disbursement(&f, &jwt, &d_tanger.name).await.expect("own zone").name, d_tanger.name);
        let err = get_disbursement(&f, &jwt, &d_rabat.name).await.expect_err(who);
        assert_eq!(err.code(), Code::NotFound, "{who} reading Rabat's disbursement: {err:?}");
        assert_eq!(list_disbursements(&f, &jwt).await.expect("list"), vec![d_tanger.name.clone()], "{who}");
    }
    // Staff of both zones see both.
    let (_, both) = f.maker(&["tanger", "rabat_sale"]);
    assert_eq!(list_awards(&f, &both, ListAwardsRequest::default()).await.expect("list").len(), 2);
    assert_eq!(list_disbursements(&f, &both).await.expect("list").len(), 2);
    // A checker of Tanger cannot approve Rabat's disbursement: for them it does not exist.
    let before = f.fingerprint().await;
    let err = f.approve(&f.checker(&["tanger"]).1, &d_rabat.name).await.expect_err("out of zone");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(f.fingerprint().await, before);
    f.assert_books_balance().await;
}

#[tokio::test]
async fn organisation_bound_staff_do_not_see_the_line_of_another_partner() {
    let f = fresh().await;
    let (other_org, own_org) = (Uuid::now_v7(), f.org);
    // The seeded budget is fully allocated: the partners' lines belong to another program's budget.
    let pilot = create_budget(&f, &f.admin, "programs/pilot", 10_000_000).await.expect("budget");
    let line_other = create_line(&f, &f.admin, &pilot.name, "partner_other", "tanger", Some(other_org), 4_000_000).await.expect("line");
    let line_own = create_line(&f, &f.admin, &pilot.name, "partner_own", "tanger", Some(own_org), 4_000_000).await.expect("line");
    assert_eq!(line_other.partner, format!("organizations/{other_org}"));
    let today = today(&f.pool).await;
    let mut awards = Vec::new();
    for line in [&line_other, &line_own] {
        let members: Vec<String> = (0..3).map(|_| format!("applicants/{}", Uuid::now_v7())).collect();
        let app = f.accept_members("programs/pilot", Window::CollectiveStartup, "tanger", &members).await;
        let award =
            f.create_award(&f.admin, startup_award(&line.name, &app.application, vec![on_date(1_000_000, &today)])).await.expect("award");
        assert_eq!(award.program, "programs/pilot");
        awards.push(award);
    }
    let (award_other, award_own) = (&awards[0], &awards[1]);
    // A disbursement of the other partner's award, requested by that partner's finance officer.
    let (_, other_maker) = f.token("finance_officer", Some(other_org), &["tanger"]);
    let d_other = f.request(&other_maker, &award_other.tranches[0].name).await.expect("the partner's own officer requests");
    // And one on the seeded line of no partner.
    let (_, seeded, d_seeded) = award_with_request(&f, "tanger", &f.line(COLLECTIVE_TANGER), own_org).await;

    for (who, jwt) in [
        ("finance officer", f.maker(&["tanger"]).1),
        ("finance checker", f.checker(&["tanger"]).1),
        ("program manager", f.manager(&["tanger"]).1),
    ] {
        let err = f.get_award(&jwt, &award_other.name).await.expect_err(who);
        assert_eq!(err.code(), Code::NotFound, "{who}: {err:?}");
        f.get_award(&jwt, &award_own.name).await.unwrap_or_else(|e| panic!("{who}: {e:?}"));
        f.get_award(&jwt, &seeded.name).await.unwrap_or_else(|e| panic!("{who}: a line of no partner is seen on zone: {e:?}"));
        let mut listed = list_awards(&f, &jwt, ListAwardsRequest::default()).await.expect("list");
        listed.sort();
        let mut want = vec![award_own.name.clone(), seeded.name.clone()];
        want.sort();
        assert_eq!(listed, want, "{who}");
        let err = get_disbursement(&f, &jwt, &d_other.name).await.expect_err(who);
        assert_eq!(err.code(), Code::NotFound, "{who}: {err:?}");
        assert_eq!(list_disbursements(&f, &jwt).await.expect("list"), vec![d_seeded.name.clone()], "{who}");
    }
    // The other partner's staff see their own line, not ours.
    let (_, other_manager) = f.token("program_manager", Some(other_org), &["tanger"]);
    let mut listed = list_awards(&f, &other_manager, ListAwardsRequest::default()).await.expect("list");
    listed.sort();
    let mut want = vec![award_other.name.clone(), seeded.name.clone()];
    want.sort();
    assert_eq!(listed, want);
    // Our officer cannot award on the other partner's line.
    let members: Vec<String> = (0..3).map(|_| format!("applicants/{}", Uuid::now_v7())).collect();
    let app = f.accept_members("programs/pilot", Window::CollectiveStartup, "tanger", &members).await;
    let before = f.fingerprint().await;
    let err = f
        .create_award(&f.maker(&["tanger"]).1, startup_award(&line_other.name, &app.application, vec![on_date(1_000_000, &today)]))
        .await
        .expect_err("another partner's line");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(f.fingerprint().await, before, "a refused award writes nothing");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn auditors_read_everything_and_change_nothing() {
    let f = fresh().await;
    let (_, tanger, d_tanger) = award_with_request(&f, "tanger", &f.line(COLLECTIVE_TANGER), f.org).await;
    let (_, oujda, d_oujda) = award_with_request(&f, "oujda", &f.line("collective_oujda"), Uuid::now_v7()).await;
    let (_, auditor) = f.auditor();
    let c = f.client().await;
    for a in [&tanger, &oujda] {
        assert_eq!(f.get_award(&auditor, &a.name).await.expect("read").name, a.name);
    }
    let mut listed = list_awards(&f, &auditor, ListAwardsRequest::default()).await.expect("list");
    listed.sort();
    let mut want = vec![tanger.name.clone(), oujda.name.clone()];
    want.sort();
    assert_eq!(listed, want);
    for d in [&d_tanger, &d_oujda] {
        assert_eq!(get_disbursement(&f, &auditor, &d.name).await.expect("read").name, d.name);
    }
    assert_eq!(list_disbursements(&f, &auditor).await.expect("list").len(), 2);
    c.clone().list_payment_batches(bearer(ListPaymentBatchesRequest::default(), &auditor)).await.expect("batches");
    c.clone().get_budget(bearer(GetBudgetRequest { name: f.budget.clone(), as_of: None }, &auditor)).await.expect("budget");
    c.clone()
        .list_postings(bearer(ListPostingsRequest { budget: f.budget.clone(), ..ListPostingsRequest::default() }, &auditor))
        .await
        .expect("postings");
    c.clone().get_balances(bearer(GetBalancesRequest { budget: f.budget.clone(), as_of: None }, &auditor)).await.expect("balances");

    let before = f.fingerprint().await;
    let app = f.accepted("tanger", 3).await;
    let before_award = f.fingerprint().await;
    assert_ne!(before, before_award, "the decision was recorded");
    let err = f
        .create_award(&auditor, startup_award(&f.line(COLLECTIVE_TANGER), &app.application, vec![on_milestone(1_000_000, "first_sale")]))
        .await
        .expect_err("an auditor awards nothing");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = c
        .clone()
        .approve_disbursement(bearer(ApproveDisbursementRequest { name: d_tanger.name.clone(), request_id: rid() }, &auditor))
        .await
        .expect_err("an auditor approves nothing");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = c
        .clone()
        .request_disbursement(bearer(RequestDisbursementRequest { tranche: oujda.tranches[0].name.clone(), request_id: rid() }, &auditor))
        .await
        .expect_err("an auditor requests nothing");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = c
        .clone()
        .cancel_award(bearer(
            CancelAwardRequest { name: tanger.name.clone(), reason: "audit".into(), etag: tanger.etag.clone(), request_id: rid() },
            &auditor,
        ))
        .await
        .expect_err("an auditor cancels nothing");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(f.fingerprint().await, before_award, "refusals write nothing");
    assert_eq!(get_disbursement(&f, &f.admin, &d_tanger.name).await.expect("read").approved_by, "");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn beneficiaries_see_their_own_awards_and_payments_only() {
    let f = fresh().await;
    let (mine_app, mine, d_mine) = award_with_request(&f, "tanger", &f.line(COLLECTIVE_TANGER), f.org).await;
    let (_, theirs, d_theirs) = award_with_request(&f, "tanger", &f.line(COLLECTIVE_TANGER), f.org).await;
    // A member, not the representative.
    let me = f.beneficiary(&mine_app.accounts[1]);
    assert_eq!(f.get_award(&me, &mine.name).await.expect("own award").name, mine.name);
    let err = f.get_award(&me, &theirs.name).await.expect_err("another's award");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(list_awards(&f, &me, ListAwardsRequest::default()).await.expect("list"), vec![mine.name.clone()]);
    assert_eq!(get_disbursement(&f, &me, &d_mine.name).await.expect("own payment").name, d_mine.name);
    let err = get_disbursement(&f, &me, &d_theirs.name).await.expect_err("another's payment");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(list_disbursements(&f, &me).await.expect("list"), vec![d_mine.name.clone()]);
    // Someone in no award sees nothing.
    let stranger = f.beneficiary(&format!("accounts/{}", Uuid::now_v7()));
    assert!(list_awards(&f, &stranger, ListAwardsRequest::default()).await.expect("list").is_empty());
    assert!(list_disbursements(&f, &stranger).await.expect("list").is_empty());

    let c = f.client().await;
    let denied = [
        ("ListPaymentBatches", c.clone().list_payment_batches(bearer(ListPaymentBatchesRequest::default(), &me)).await.err()),
        ("ListBudgets", c.clone().list_budgets(bearer(ListBudgetsRequest::default(), &me)).await.err()),
        ("GetBudget", c.clone().get_budget(bearer(GetBudgetRequest { name: f.budget.clone(), as_of: None }, &me)).await.err()),
        (
            "ListBudgetLines",
            c.clone()
                .list_budget_lines(bearer(ListBudgetLinesRequest { parent: f.budget.clone(), ..ListBudgetLinesRequest::default() }, &me))
                .await
                .err(),
        ),
        (
            "ListPostings",
            c.clone()
                .list_postings(bearer(ListPostingsRequest { budget: f.budget.clone(), ..ListPostingsRequest::default() }, &me))
                .await
                .err(),
        ),
        ("GetBalances", c.clone().get_balances(bearer(GetBalancesRequest { budget: f.budget.clone(), as_of: None }, &me)).await.err()),
        (
            "GetDonorReport",
            c.clone()
                .get_donor_report(bearer(GetDonorReportRequest { program: "programs/work4life".into(), as_of: None }, &me))
                .await
                .err(),
        ),
    ];
    for (rpc, err) in denied {
        let err = err.unwrap_or_else(|| panic!("{rpc} answered a beneficiary"));
        assert_eq!(err.code(), Code::PermissionDenied, "{rpc}: {err:?}");
    }
}

#[tokio::test]
async fn an_officer_of_oujda_cannot_award_a_rabat_application() {
    let f = fresh().await;
    let app = f.accepted("rabat_sale", 3).await;
    let award = || startup_award(&f.line("collective_rabat_sale"), &app.application, vec![on_milestone(1_000_000, "first_sale")]);
    let before = f.fingerprint().await;
    for (who, jwt) in [
        ("finance officer of Oujda", f.maker(&["oujda"]).1),
        ("program manager of Oujda", f.manager(&["oujda"]).1),
        ("field officer of Oujda", f.token("officer", Some(f.org), &["oujda"]).1),
        ("finance checker of Rabat", f.checker(&["rabat_sale"]).1),
    ] {
        let err = f.create_award(&jwt, award()).await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    assert_eq!(f.fingerprint().await, before, "nothing written");
    assert_eq!(f.line_counters("collective_rabat_sale").await, (25_000_000, 0));
    // The application itself was fine: an officer of Rabat awards it.
    let made = f.create_award(&f.maker(&["rabat_sale"]).1, award()).await.expect("Rabat's officer");
    assert_eq!(made.zone, "rabat_sale");
    f.assert_books_balance().await;
}

#[tokio::test]
async fn budgets_and_lines_are_made_by_the_program_owners_within_the_envelope() {
    let f = fresh().await;
    let before = f.fingerprint().await;
    let (_, zoned_manager) = f.manager(&["tanger"]);
    let (_, maker) = f.maker(&[]);
    for (who, jwt) in [("program manager of Tanger", &zoned_manager), ("finance officer", &maker)] {
        let err = create_budget(&f, jwt, "programs/pilot", 5_000_000).await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
        let err = create_line(&f, jwt, &f.budget, "extra_line", "", None, 100).await.expect_err(who);
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    assert_eq!(f.fingerprint().await, before, "refusals write nothing");

    let pilot = create_budget(&f, &f.admin, "programs/pilot", 5_000_000).await.expect("admin makes a budget");
    assert_eq!(pilot.program, "programs/pilot");
    assert_eq!(pilot.envelope.as_ref().map(|m| m.amount_minor), Some(5_000_000));
    let line = create_line(&f, &f.admin, &pilot.name, "pilot_tanger", "tanger", None, 3_000_000).await.expect("admin makes a line");
    assert_eq!(line.name, format!("{}/lines/pilot_tanger", pilot.name));
    // A program manager of the whole program may too.
    let (_, whole_manager) = f.manager(&[]);
    create_line(&f, &whole_manager, &pilot.name, "pilot_oujda", "oujda", None, 1_000_000).await.expect("a manager of every zone");

    let before = f.fingerprint().await;
    let err = create_line(&f, &f.admin, &pilot.name, "pilot_rabat", "rabat_sale", None, 1_000_001).await.expect_err("beyond the envelope");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "ENVELOPE_EXCEEDED");
    let violations = preconditions(&err);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].0, pilot.name);
    assert!(violations[0].1.contains("has 10000.00 EUR unallocated"), "names the unallocated amount: {}", violations[0].1);
    // The seeded budget has nothing left.
    let err = create_line(&f, &f.admin, &f.budget, "extra_line", "", None, 1).await.expect_err("the seed allocated everything");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "ENVELOPE_EXCEEDED");
    assert_eq!(preconditions(&err)[0].0, f.budget);
    assert!(preconditions(&err)[0].1.contains("has 0.00 EUR unallocated"), "{:?}", preconditions(&err));
    assert_eq!(f.fingerprint().await, before, "a refused allocation writes nothing");
    // Exactly what is left still fits.
    create_line(&f, &f.admin, &pilot.name, "pilot_rabat", "rabat_sale", None, 1_000_000).await.expect("the last euro");
    f.assert_books_balance().await;
}
