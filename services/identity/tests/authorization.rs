//! The authorization matrix: every IdentityService method × every role × {own account, an account
//! of the caller's organisation, an account of another organisation}. The list of methods comes
//! from the service descriptor, so a new RPC without a rule here fails this test.

mod common;

use prost::Message as _;
use tonic::{Code, Status};
use work4life_proto::identity::{
    Account, CreateAccountRequest, CreateClientSecretRequest, CreateOrganizationRequest, DisableAccountRequest, EnableAccountRequest,
    GetAccountRequest, GetOrganizationRequest, GrantRoleRequest, ListAccountsRequest, ListAuditRecordsRequest, ListOrganizationsRequest,
    ListRoleBindingsRequest, Organization, OrganizationKind, RevokeRoleRequest, RoleBinding, RotateSigningKeyRequest, UpdateAccountRequest,
    WhoAmIRequest,
};

use common::{bearer, fresh};

/// Methods anyone may call without a token (they carry their own proof: a password, a code, ...).
const PUBLIC: [&str; 7] =
    ["GetKeySet", "Login", "RefreshToken", "Logout", "RequestOneTimeCode", "VerifyOneTimeCode", "ExchangeClientCredentials"];
const ROLES: [&str; 10] = [
    "admin",
    "program_manager",
    "officer",
    "reviewer",
    "coach",
    "finance_officer",
    "finance_checker",
    "auditor",
    "beneficiary",
    "partner_system",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Own,
    SameOrganization,
    OtherOrganization,
}

/// Whether `role` may call `method` on `target`: the rule of each method, written once.
fn allowed(method: &str, role: &str, target: Target) -> bool {
    let admin = role == "admin";
    let manager_here = role == "program_manager" && target != Target::OtherOrganization;
    match method {
        "WhoAmI" | "GetOrganization" | "ListOrganizations" => true,
        "RotateSigningKey" | "CreateOrganization" | "GrantRole" | "RevokeRole" | "CreateClientSecret" => admin,
        "CreateAccount" | "UpdateAccount" | "DisableAccount" | "EnableAccount" => admin || manager_here,
        "GetAccount" | "ListRoleBindings" => target == Target::Own || admin || role == "auditor" || manager_here,
        // The target's organisation is the list filter: managers list their own only.
        "ListAccounts" => admin || role == "auditor" || manager_here,
        "ListAuditRecords" => admin || role == "auditor",
        other => panic!("no authorization rule for IdentityService/{other}: add one to this test"),
    }
}

fn methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(work4life_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == "work4life.identity.v1")
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == "IdentityService")
        .flat_map(|s| &s.method)
        .map(|m| m.name().to_string())
        .collect()
}

#[tokio::test]
async fn no_role_is_allowed_more_than_its_rules() {
    let f = fresh(14).await;
    let org_a = f.organization("CEFA").await;
    let org_b = f.organization("ES.MAROC").await;
    let mut tokens = Vec::new();
    for role in ROLES {
        let email = format!("{role}@cefa.example");
        let id = f.account(&email, "matrix pass phrase", &[]).await;
        f.set_org(id, org_a).await;
        let scope = if role == "admin" { None } else { Some(org_a) };
        f.bind(id, role, scope).await;
        let token = f.token(&email, "matrix pass phrase").await;
        tokens.push((role, id, token));
    }
    let same = f.account("target@cefa.example", "target pass phrase", &[]).await;
    f.set_org(same, org_a).await;
    let other = f.account("target@esmaroc.example", "target pass phrase", &[]).await;
    f.set_org(other, org_b).await;

    let methods = methods();
    assert!(methods.len() >= 20, "{methods:?}");
    let mut checked = 0;
    for method in &methods {
        if PUBLIC.contains(&method.as_str()) {
            continue;
        }
        for (role, own, token) in &tokens {
            for target in [Target::Own, Target::SameOrganization, Target::OtherOrganization] {
                let (account, organization) = match target {
                    Target::Own => (*own, org_a),
                    Target::SameOrganization => (same, org_a),
                    Target::OtherOrganization => (other, org_b),
                };
                if method == "RevokeRole" {
                    f.bind(account, "reviewer", Some(organization)).await; // something to revoke
                }
                let result = call(&f, method, token, account, organization).await;
                let expected = allowed(method, role, target);
                match (&result, expected) {
                    (Ok(()), true) => {}
                    (Err(status), false) => assert!(
                        matches!(status.code(), Code::PermissionDenied | Code::NotFound),
                        "{method} by {role} on {target:?}: refused with {status:?}, expected PERMISSION_DENIED or NOT_FOUND"
                    ),
                    (Ok(()), false) => panic!("{method} by {role} on {target:?} was ALLOWED but must be refused"),
                    (Err(status), true) => {
                        assert!(
                            !matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated | Code::NotFound),
                            "{method} by {role} on {target:?} was refused ({status:?}) but is allowed"
                        )
                    }
                }
                checked += 1;
            }
        }
    }
    let public = methods.iter().filter(|m| PUBLIC.contains(&m.as_str())).count();
    assert_eq!(public, PUBLIC.len(), "every public method exists");
    assert_eq!(checked, (methods.len() - public) * ROLES.len() * 3, "every method x role x target was called");
}

async fn call(f: &common::Fixture, method: &str, token: &str, account: uuid::Uuid, organization: uuid::Uuid) -> Result<(), Status> {
    let mut c = f.client().await;
    let name = format!("accounts/{account}");
    let org = format!("organizations/{organization}");
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let binding = RoleBinding { role: "reviewer".into(), organization: org.clone(), zones: vec![] };
    match method {
        "WhoAmI" => c.who_am_i(bearer(WhoAmIRequest {}, token)).await.map(drop),
        "RotateSigningKey" => c.rotate_signing_key(bearer(RotateSigningKeyRequest {}, token)).await.map(drop),
        "CreateOrganization" => {
            let organization =
                Organization { display_name: format!("Org {unique}"), kind: OrganizationKind::Employer as i32, ..Organization::default() };
            c.create_organization(bearer(
                CreateOrganizationRequest { organization: Some(organization), request_id: uuid::Uuid::new_v4().to_string() },
                token,
            ))
            .await
            .map(drop)
        }
        "GetOrganization" => c.get_organization(bearer(GetOrganizationRequest { name: org }, token)).await.map(drop),
        "ListOrganizations" => c.list_organizations(bearer(ListOrganizationsRequest::default(), token)).await.map(drop),
        "CreateAccount" => {
            let account =
                Account { email: format!("{unique}@example.org"), display_name: "New".into(), organization: org, ..Account::default() };
            c.create_account(bearer(CreateAccountRequest { account: Some(account), request_id: uuid::Uuid::new_v4().to_string() }, token))
                .await
                .map(drop)
        }
        "GetAccount" => c.get_account(bearer(GetAccountRequest { name }, token)).await.map(drop),
        "ListRoleBindings" => c.list_role_bindings(bearer(ListRoleBindingsRequest { account: name }, token)).await.map(drop),
        "ListAccounts" => c.list_accounts(bearer(ListAccountsRequest { organization: org, ..Default::default() }, token)).await.map(drop),
        "UpdateAccount" => {
            let account = Account { name, display_name: format!("Renamed {unique}"), ..Account::default() };
            let mask = Some(prost_types::FieldMask { paths: vec!["display_name".into()] });
            c.update_account(bearer(UpdateAccountRequest { account: Some(account), update_mask: mask }, token)).await.map(drop)
        }
        // Disable then enable at once, so the matrix's accounts stay usable.
        "DisableAccount" => {
            let result =
                c.disable_account(bearer(DisableAccountRequest { name: name.clone(), etag: String::new() }, token)).await.map(drop);
            if result.is_ok() {
                f.enable(account).await;
            }
            result
        }
        "ListAuditRecords" => {
            c.list_audit_records(bearer(ListAuditRecordsRequest { resource: name, ..Default::default() }, token)).await.map(drop)
        }
        "EnableAccount" => c.enable_account(bearer(EnableAccountRequest { name, etag: String::new() }, token)).await.map(drop),
        "GrantRole" => c.grant_role(bearer(GrantRoleRequest { account: name, role_binding: Some(binding) }, token)).await.map(drop),
        "RevokeRole" => c.revoke_role(bearer(RevokeRoleRequest { account: name, role_binding: Some(binding) }, token)).await.map(drop),
        "CreateClientSecret" => {
            // A service account of the target's organisation, so an allowed call succeeds.
            let service = f.service_account(organization).await;
            c.create_client_secret(bearer(CreateClientSecretRequest { account: format!("accounts/{service}") }, token)).await.map(drop)
        }
        other => panic!("no call for IdentityService/{other}: add one to this test"),
    }
}
