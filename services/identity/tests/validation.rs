//! Bad input on every identity RPC: INVALID_ARGUMENT naming the fields, and nothing written.

mod common;

use tonic::Code;
use tonic_types::StatusExt as _;
use work4life_proto::identity::{
    Account, CreateAccountRequest, CreateClientSecretRequest, CreateOrganizationRequest, DisableAccountRequest, EnableAccountRequest,
    ExchangeClientCredentialsRequest, GetAccountRequest, GetOrganizationRequest, GrantRoleRequest, ListAccountsRequest,
    ListAuditRecordsRequest, ListOrganizationsRequest, LogoutRequest, Organization, OrganizationKind, RefreshTokenRequest,
    RequestOneTimeCodeRequest, RevokeRoleRequest, RoleBinding, UpdateAccountRequest, VerifyOneTimeCodeRequest,
};

use common::{bearer, fresh, login};

const TABLES: [&str; 7] = ["accounts", "organizations", "role_bindings", "audit_log", "outbox", "idempotency_keys", "refresh_tokens"];

#[tokio::test]
async fn every_rpc_refuses_bad_input_by_field_and_writes_nothing() {
    let f = fresh(4).await;
    let target = f.account("root@w4l.example", "root pass phrase", &["admin"]).await;
    let mut c = f.client().await;
    let admin = c.login(login("root@w4l.example", "root pass phrase")).await.expect("login").into_inner().tokens.expect("t").access_token;
    let counts = || async {
        let mut out = Vec::new();
        for table in TABLES {
            out.push(f.count(&format!("SELECT count(*) FROM identity.{table}")).await);
        }
        out
    };
    let before = counts().await;
    let name = format!("accounts/{target}");
    let long = "x".repeat(300);
    let org = |display_name: &str, kind: OrganizationKind, zones: &[&str]| Organization {
        display_name: display_name.into(),
        kind: kind as i32,
        zones: zones.iter().map(|z| (*z).to_string()).collect(),
        ..Organization::default()
    };
    let account = |email: &str, phone: &str, display_name: &str| Account {
        email: email.into(),
        phone: phone.into(),
        display_name: display_name.into(),
        ..Account::default()
    };
    let rid = || uuid::Uuid::new_v4().to_string();
    let binding = |role: &str, zones: &[&str]| {
        Some(RoleBinding { role: role.into(), organization: String::new(), zones: zones.iter().map(|z| (*z).to_string()).collect() })
    };
    let mask = |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() });

    let cases: Vec<(&str, Result<(), tonic::Status>, &[&str])> = vec![
        (
            "CreateOrganization without organization",
            c.create_organization(bearer(CreateOrganizationRequest { organization: None, request_id: rid() }, &admin)).await.map(drop),
            &["organization"],
        ),
        (
            "CreateOrganization with every field wrong",
            c.create_organization(bearer(
                CreateOrganizationRequest { organization: Some(org("", OrganizationKind::Unspecified, &["Oujda!"])), request_id: rid() },
                &admin,
            ))
            .await
            .map(drop),
            &["organization.display_name", "organization.kind", "organization.zones"],
        ),
        (
            "CreateOrganization with an oversize name",
            c.create_organization(bearer(
                CreateOrganizationRequest { organization: Some(org(&long, OrganizationKind::Donor, &[])), request_id: rid() },
                &admin,
            ))
            .await
            .map(drop),
            &["organization.display_name"],
        ),
        (
            "CreateOrganization with a bad request id",
            c.create_organization(bearer(
                CreateOrganizationRequest {
                    organization: Some(org("Fine", OrganizationKind::Donor, &[])),
                    request_id: "not-a-uuid".into(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["request_id"],
        ),
        (
            "CreateAccount without account",
            c.create_account(bearer(CreateAccountRequest { account: None, request_id: rid() }, &admin)).await.map(drop),
            &["account"],
        ),
        (
            "CreateAccount with bad email, phone and name",
            c.create_account(bearer(CreateAccountRequest { account: Some(account("nope", "12", &long)), request_id: rid() }, &admin))
                .await
                .map(drop),
            &["account.email", "account.phone", "account.display_name"],
        ),
        (
            "CreateAccount with an unknown kind",
            c.create_account(bearer(
                CreateAccountRequest { account: Some(Account { kind: 99, ..account("a@b.example", "", "A") }), request_id: rid() },
                &admin,
            ))
            .await
            .map(drop),
            &["account.kind"],
        ),
        (
            "CreateAccount for a beneficiary without phone",
            c.create_account(bearer(
                CreateAccountRequest { account: Some(Account { kind: 2, ..account("", "", "B") }), request_id: rid() },
                &admin,
            ))
            .await
            .map(drop),
            &["account.phone"],
        ),
        (
            "CreateAccount in a malformed organisation",
            c.create_account(bearer(
                CreateAccountRequest {
                    account: Some(Account { organization: "orgs/1".into(), ..account("a@b.example", "", "A") }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["account.organization"],
        ),
        (
            "CreateAccount in a missing organisation",
            c.create_account(bearer(
                CreateAccountRequest {
                    account: Some(Account {
                        organization: format!("organizations/{}", uuid::Uuid::new_v4()),
                        ..account("a@b.example", "", "A")
                    }),
                    request_id: rid(),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["account.organization"],
        ),
        (
            "GetAccount with a malformed name",
            c.get_account(bearer(GetAccountRequest { name: "accounts/42".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "GetOrganization with a malformed name",
            c.get_organization(bearer(GetOrganizationRequest { name: "42".into() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "ListOrganizations with a negative page size",
            c.list_organizations(bearer(ListOrganizationsRequest { page_size: -1, ..Default::default() }, &admin)).await.map(drop),
            &["page_size"],
        ),
        (
            "ListOrganizations with a forged page token",
            c.list_organizations(bearer(ListOrganizationsRequest { page_token: "forged".into(), ..Default::default() }, &admin))
                .await
                .map(drop),
            &["page_token"],
        ),
        (
            "ListAccounts with an unknown state",
            c.list_accounts(bearer(ListAccountsRequest { state: 99, ..Default::default() }, &admin)).await.map(drop),
            &["state"],
        ),
        (
            "ListAccounts with an unknown role",
            c.list_accounts(bearer(ListAccountsRequest { role: "wizard".into(), ..Default::default() }, &admin)).await.map(drop),
            &["role"],
        ),
        (
            "ListAccounts with a malformed organisation",
            c.list_accounts(bearer(ListAccountsRequest { organization: "x".into(), ..Default::default() }, &admin)).await.map(drop),
            &["organization"],
        ),
        (
            "UpdateAccount without a mask",
            c.update_account(bearer(
                UpdateAccountRequest { account: Some(Account { name: name.clone(), ..Account::default() }), update_mask: None },
                &admin,
            ))
            .await
            .map(drop),
            &["update_mask"],
        ),
        (
            "UpdateAccount with bad masked values",
            c.update_account(bearer(
                UpdateAccountRequest {
                    account: Some(Account { name: name.clone(), ..account("bad", "1", "") }),
                    update_mask: mask(&["email", "phone", "display_name", "state"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["account.email", "account.phone", "account.display_name", "update_mask"],
        ),
        (
            "UpdateAccount with a malformed name",
            c.update_account(bearer(
                UpdateAccountRequest {
                    account: Some(Account { name: "accounts/x".into(), ..account("", "", "Name") }),
                    update_mask: mask(&["display_name"]),
                },
                &admin,
            ))
            .await
            .map(drop),
            &["name"],
        ),
        (
            "DisableAccount with a malformed name",
            c.disable_account(bearer(DisableAccountRequest { name: "x".into(), etag: String::new() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "EnableAccount with a malformed name",
            c.enable_account(bearer(EnableAccountRequest { name: "x".into(), etag: String::new() }, &admin)).await.map(drop),
            &["name"],
        ),
        (
            "GrantRole without binding",
            c.grant_role(bearer(GrantRoleRequest { account: name.clone(), role_binding: None }, &admin)).await.map(drop),
            &["role_binding"],
        ),
        (
            "GrantRole with an unknown role and bad zone",
            c.grant_role(bearer(GrantRoleRequest { account: name.clone(), role_binding: binding("wizard", &["Tanger"]) }, &admin))
                .await
                .map(drop),
            &["role_binding.role", "role_binding.zones"],
        ),
        (
            "GrantRole of a scoped admin",
            c.grant_role(bearer(GrantRoleRequest { account: name.clone(), role_binding: binding("admin", &["oujda"]) }, &admin))
                .await
                .map(drop),
            &["role_binding.role"],
        ),
        (
            "ListRoleBindings with a malformed account",
            c.list_role_bindings(bearer(work4life_proto::identity::ListRoleBindingsRequest { account: "a/b".into() }, &admin))
                .await
                .map(drop),
            &["account"],
        ),
        (
            "RevokeRole with a malformed account",
            c.revoke_role(bearer(RevokeRoleRequest { account: "nobody".into(), role_binding: binding("coach", &["oujda"]) }, &admin))
                .await
                .map(drop),
            &["account"],
        ),
        ("Login with nothing", c.login(login("", "")).await.map(drop), &["email", "password"]),
        ("Login with an oversize email", c.login(login(&long, "p")).await.map(drop), &["email"]),
        ("RefreshToken with nothing", c.refresh_token(RefreshTokenRequest::default()).await.map(drop), &["refresh_token"]),
        ("Logout with nothing", c.logout(LogoutRequest::default()).await.map(drop), &["refresh_token"]),
        (
            "RequestOneTimeCode with a bad phone",
            c.request_one_time_code(RequestOneTimeCodeRequest { phone: "call me".into() }).await.map(drop),
            &["phone"],
        ),
        (
            "VerifyOneTimeCode with bad phone and code",
            c.verify_one_time_code(VerifyOneTimeCodeRequest { phone: "x".into(), code: "12".into() }).await.map(drop),
            &["phone", "code"],
        ),
        (
            "CreateClientSecret with a malformed account",
            c.create_client_secret(bearer(CreateClientSecretRequest { account: "svc".into() }, &admin)).await.map(drop),
            &["account"],
        ),
        (
            "ExchangeClientCredentials with nothing",
            c.exchange_client_credentials(ExchangeClientCredentialsRequest::default()).await.map(drop),
            &["client_id"],
        ),
        (
            "ListAuditRecords with a negative page size",
            c.list_audit_records(bearer(ListAuditRecordsRequest { page_size: -5, ..Default::default() }, &admin)).await.map(drop),
            &["page_size"],
        ),
    ];
    for (case, result, expected) in cases {
        let status = result.expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        let fields: Vec<String> = status
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, expected, "{case}");
    }
    assert_eq!(counts().await, before, "refused requests wrote nothing ({TABLES:?})");
}
