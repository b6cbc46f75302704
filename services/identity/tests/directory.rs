//! The directory over real gRPC: organisations, accounts and role bindings, with idempotency,
//! validation that writes nothing, scope, etags, disable/enable, events and the audit chain.

mod common;

use tonic::Code;
use tonic_types::StatusExt as _;
use work4life_proto::identity::{
    Account, CreateAccountRequest, CreateOrganizationRequest, DisableAccountRequest, EnableAccountRequest, GetAccountRequest,
    GrantRoleRequest, ListAccountsRequest, ListOrganizationsRequest, Organization, OrganizationKind, RefreshTokenRequest,
    RevokeRoleRequest, RoleBinding, UpdateAccountRequest,
};

use common::{bearer, fresh, login};

fn org(name: &str, zones: &[&str]) -> Organization {
    Organization {
        display_name: name.into(),
        kind: OrganizationKind::PartnerNgo as i32,
        zones: zones.iter().map(|z| (*z).to_string()).collect(),
        ..Organization::default()
    }
}

fn new_account(email: &str, phone: &str, organization: &str) -> Account {
    Account {
        email: email.into(),
        phone: phone.into(),
        display_name: format!("Staff {email}"),
        organization: organization.into(),
        ..Account::default()
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status.get_error_details().bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn admin_creates_organisations_and_accounts_idempotently_and_bad_input_writes_nothing() {
    let f = fresh(6).await;
    f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    let mut client = f.client().await;
    let admin = f.token("root@w4l.example", "root pass phrase").await;

    let request_id = uuid();
    let create = CreateOrganizationRequest { organization: Some(org("CEFA", &["oujda", "beni_mellal"])), request_id: request_id.clone() };
    let cefa = client.create_organization(bearer(create.clone(), &admin)).await.expect("org").into_inner().organization.expect("org");
    let replay = client.create_organization(bearer(create, &admin)).await.expect("replay").into_inner().organization.expect("org");
    assert_eq!(cefa, replay, "a retry returns the first result");
    let other = CreateOrganizationRequest { organization: Some(org("ES.MAROC", &[])), request_id };
    let mismatch = client.create_organization(bearer(other, &admin)).await.expect_err("same id, other request");
    assert_eq!(fields(&mismatch), ["request_id"]);
    let duplicate = client
        .create_organization(bearer(CreateOrganizationRequest { organization: Some(org("CEFA", &[])), request_id: uuid() }, &admin))
        .await
        .expect_err("dup");
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let listed = client.list_organizations(bearer(ListOrganizationsRequest::default(), &admin)).await.expect("list").into_inner();
    assert_eq!(listed.organizations.len(), 1);

    let created = client
        .create_account(bearer(
            CreateAccountRequest { account: Some(new_account("Officer@CEFA.example", "06 12 34 56 78", &cefa.name)), request_id: uuid() },
            &admin,
        ))
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(created.email, "officer@cefa.example");
    assert_eq!(created.phone, "+212612345678");
    assert_eq!(created.organization, cefa.name);
    assert!(!created.etag.is_empty());

    let accounts_before = f.count("SELECT count(*) FROM identity.accounts").await;
    let audit_before = f.count("SELECT count(*) FROM identity.audit_log").await;
    for (account, expected) in [
        (new_account("officer@cefa.example", "", &cefa.name), Code::AlreadyExists),
        (new_account("other@cefa.example", "+212 612345678", &cefa.name), Code::AlreadyExists),
        (new_account("not-an-email", "12", "organisations/x"), Code::InvalidArgument),
        (Account { display_name: "x".repeat(300), email: "long@cefa.example".into(), ..Account::default() }, Code::InvalidArgument),
    ] {
        let err = client
            .create_account(bearer(CreateAccountRequest { account: Some(account.clone()), request_id: uuid() }, &admin))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), expected, "{account:?}: {err:?}");
    }
    let bad = client
        .create_account(bearer(
            CreateAccountRequest { account: Some(new_account("not-an-email", "12", "organisations/x")), request_id: uuid() },
            &admin,
        ))
        .await
        .expect_err("bad");
    assert_eq!(fields(&bad), ["account.email", "account.phone", "account.organization"], "every bad field is named");
    assert_eq!(f.count("SELECT count(*) FROM identity.accounts").await, accounts_before, "refusals write nothing");
    assert_eq!(f.count("SELECT count(*) FROM identity.audit_log").await, audit_before);
    let events = f.count("SELECT count(*) FROM identity.outbox WHERE event_type = 'identity.account.created'").await;
    assert_eq!(events, 1, "account created event in the outbox");
    f.verify_audit().await;
}

#[tokio::test]
async fn program_managers_and_officers_stay_in_their_scope() {
    let f = fresh(7).await;
    let cefa = f.organization("CEFA").await;
    let esmaroc = f.organization("ES.MAROC").await;
    let manager = f.account("pm@cefa.example", "manager pass phrase", &[]).await;
    f.bind(manager, "program_manager", Some(cefa)).await;
    let officer = f.account("officer@cefa.example", "officer pass phrase", &["officer"]).await;
    let mut client = f.client().await;
    let pm = f.token("pm@cefa.example", "manager pass phrase").await;
    let off = f.token("officer@cefa.example", "officer pass phrase").await;
    let cefa_name = format!("organizations/{cefa}");
    let esmaroc_name = format!("organizations/{esmaroc}");

    let mine = client
        .create_account(bearer(
            CreateAccountRequest { account: Some(new_account("coach@cefa.example", "", &cefa_name)), request_id: uuid() },
            &pm,
        ))
        .await
        .expect("own organisation")
        .into_inner()
        .account
        .expect("a");
    let theirs = client
        .create_account(bearer(
            CreateAccountRequest { account: Some(new_account("coach@esmaroc.example", "", &esmaroc_name)), request_id: uuid() },
            &pm,
        ))
        .await
        .expect_err("other");
    assert_eq!(theirs.code(), Code::PermissionDenied);

    let rabat = f.account("staff@esmaroc.example", "some pass phrase", &[]).await;
    f.set_org(rabat, esmaroc).await;
    let hidden = client.get_account(bearer(GetAccountRequest { name: format!("accounts/{rabat}") }, &pm)).await.expect_err("out of scope");
    assert_eq!(hidden.code(), Code::NotFound, "out of scope looks like absent");
    client.get_account(bearer(GetAccountRequest { name: mine.name.clone() }, &pm)).await.expect("in scope");

    let listed = client.list_accounts(bearer(ListAccountsRequest::default(), &pm)).await.expect("list").into_inner().accounts;
    assert!(listed.iter().all(|a| a.organization == cefa_name), "{listed:?}");
    assert!(listed.iter().any(|a| a.name == mine.name));
    let other_org = client
        .list_accounts(bearer(ListAccountsRequest { organization: esmaroc_name.clone(), ..Default::default() }, &pm))
        .await
        .expect_err("other org");
    assert_eq!(other_org.code(), Code::PermissionDenied);

    let officer_list = client.list_accounts(bearer(ListAccountsRequest::default(), &off)).await.expect_err("officer");
    assert_eq!(officer_list.code(), Code::PermissionDenied);
    client.get_account(bearer(GetAccountRequest { name: format!("accounts/{officer}") }, &off)).await.expect("self");
    let other = client.get_account(bearer(GetAccountRequest { name: mine.name.clone() }, &off)).await.expect_err("not self");
    assert_eq!(other.code(), Code::NotFound);
    let grant = client
        .grant_role(bearer(
            GrantRoleRequest {
                account: mine.name.clone(),
                role_binding: Some(RoleBinding { role: "coach".into(), organization: cefa_name.clone(), zones: vec![] }),
            },
            &pm,
        ))
        .await
        .expect_err("managers do not grant roles");
    assert_eq!(grant.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn updates_need_the_current_etag_and_disabled_accounts_cannot_log_in() {
    let f = fresh(8).await;
    f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    let target = f.account("awa@w4l.example", "awa pass phrase", &["coach"]).await;
    let mut client = f.client().await;
    let admin = f.token("root@w4l.example", "root pass phrase").await;
    let session = client.login(login("awa@w4l.example", "awa pass phrase")).await.expect("login").into_inner().tokens.expect("t");
    let name = format!("accounts/{target}");
    let current =
        client.get_account(bearer(GetAccountRequest { name: name.clone() }, &admin)).await.expect("get").into_inner().account.expect("a");

    let mask = |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() });
    let change = Account {
        name: name.clone(),
        etag: current.etag.clone(),
        display_name: "Awa Diop".into(),
        phone: "0700000001".into(),
        ..Account::default()
    };
    let updated = client
        .update_account(bearer(
            UpdateAccountRequest { account: Some(change.clone()), update_mask: mask(&["display_name", "phone"]) },
            &admin,
        ))
        .await
        .expect("update")
        .into_inner()
        .account
        .expect("a");
    assert_eq!((updated.display_name.as_str(), updated.phone.as_str()), ("Awa Diop", "+212700000001"));
    assert_ne!(updated.etag, current.etag);
    let stale = client
        .update_account(bearer(UpdateAccountRequest { account: Some(change.clone()), update_mask: mask(&["display_name"]) }, &admin))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    let bad_mask = client
        .update_account(bearer(UpdateAccountRequest { account: Some(change), update_mask: mask(&["state"]) }, &admin))
        .await
        .expect_err("mask");
    assert_eq!(fields(&bad_mask), ["update_mask"]);

    let disabled = client
        .disable_account(bearer(DisableAccountRequest { name: name.clone(), etag: updated.etag.clone() }, &admin))
        .await
        .expect("disable")
        .into_inner()
        .account
        .expect("a");
    assert_eq!(disabled.state, work4life_proto::identity::AccountState::Disabled as i32);
    let refused = client.login(login("awa@w4l.example", "awa pass phrase")).await.expect_err("disabled");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refresh = client.refresh_token(RefreshTokenRequest { refresh_token: session.refresh_token }).await.expect_err("sessions end");
    assert_eq!(refresh.code(), Code::Unauthenticated);
    client.enable_account(bearer(EnableAccountRequest { name, etag: String::new() }, &admin)).await.expect("enable");
    client.login(login("awa@w4l.example", "awa pass phrase")).await.expect("enabled again");
    assert_eq!(f.count("SELECT count(*) FROM identity.outbox WHERE event_type = 'identity.account.disabled'").await, 1);
    f.verify_audit().await;
}

#[tokio::test]
async fn roles_are_granted_and_revoked_by_admins_and_reach_the_next_token() {
    let f = fresh(9).await;
    f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    let cefa = f.organization("CEFA").await;
    let target = f.account("moussa@cefa.example", "moussa pass phrase", &[]).await;
    let mut client = f.client().await;
    let admin = f.token("root@w4l.example", "root pass phrase").await;
    let binding = RoleBinding { role: "officer".into(), organization: format!("organizations/{cefa}"), zones: vec!["oujda".into()] };
    let name = format!("accounts/{target}");
    let granted = client
        .grant_role(bearer(GrantRoleRequest { account: name.clone(), role_binding: Some(binding.clone()) }, &admin))
        .await
        .expect("grant")
        .into_inner()
        .account
        .expect("a");
    assert_eq!(granted.role_bindings, vec![binding.clone()]);
    let again = client
        .grant_role(bearer(GrantRoleRequest { account: name.clone(), role_binding: Some(binding.clone()) }, &admin))
        .await
        .expect("grant twice")
        .into_inner()
        .account
        .expect("a");
    assert_eq!(again.role_bindings.len(), 1, "granting twice does not duplicate");

    let token = f.token("moussa@cefa.example", "moussa pass phrase").await;
    let me = client.who_am_i(bearer(work4life_proto::identity::WhoAmIRequest {}, &token)).await.expect("whoami").into_inner();
    assert_eq!(me.role_bindings, vec![binding.clone()]);
    let listed = client
        .list_role_bindings(bearer(work4life_proto::identity::ListRoleBindingsRequest { account: name.clone() }, &admin))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.role_bindings, vec![binding.clone()]);

    let bad = RoleBinding { role: "admin".into(), organization: String::new(), zones: vec!["oujda".into()] };
    let err = client
        .grant_role(bearer(GrantRoleRequest { account: name.clone(), role_binding: Some(bad) }, &admin))
        .await
        .expect_err("scoped admin");
    assert_eq!(err.code(), Code::InvalidArgument);
    client
        .revoke_role(bearer(RevokeRoleRequest { account: name.clone(), role_binding: Some(binding.clone()) }, &admin))
        .await
        .expect("revoke");
    let gone =
        client.revoke_role(bearer(RevokeRoleRequest { account: name, role_binding: Some(binding) }, &admin)).await.expect_err("twice");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(f.count("SELECT count(*) FROM identity.outbox WHERE event_type LIKE 'identity.role.%'").await, 2);
    f.verify_audit().await;
}

#[tokio::test]
async fn account_lists_page_with_filter_bound_tokens() {
    let f = fresh(10).await;
    f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    for i in 0..5 {
        f.account(&format!("officer{i}@w4l.example"), "pass phrase long", &["officer"]).await;
    }
    let mut client = f.client().await;
    let admin = f.token("root@w4l.example", "root pass phrase").await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_accounts(bearer(
                ListAccountsRequest { role: "officer".into(), page_size: 2, page_token: token.clone(), ..Default::default() },
                &admin,
            ))
            .await
            .expect("page")
            .into_inner();
        assert!(page.accounts.len() <= 2);
        seen.extend(page.accounts.into_iter().map(|a| a.email));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, (0..5).map(|i| format!("officer{i}@w4l.example")).collect::<Vec<_>>());
    let first = client
        .list_accounts(bearer(ListAccountsRequest { role: "officer".into(), page_size: 2, ..Default::default() }, &admin))
        .await
        .expect("p")
        .into_inner();
    let other = client
        .list_accounts(bearer(
            ListAccountsRequest { role: "coach".into(), page_size: 2, page_token: first.next_page_token, ..Default::default() },
            &admin,
        ))
        .await
        .expect_err("token of another filter");
    assert_eq!(fields(&other), ["page_token"]);
    let unknown_role =
        client.list_accounts(bearer(ListAccountsRequest { role: "wizard".into(), ..Default::default() }, &admin)).await.expect_err("role");
    assert_eq!(fields(&unknown_role), ["role"]);
}
