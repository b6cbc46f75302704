//! The `work4life.identity.v1.IdentityService` implementation: maps wire types to the sessions
//! and key ring, and checks who may call what. No SQL here.

use tonic::{Request, Response, Status};
use uuid::Uuid;
use work4life_platform::{
    ServiceError,
    audit::{self, AuditFilter},
    auth::{Principal, principal},
    idempotency::{self, Begun},
    pagination::{PageTokens, next_page, page_size},
    wire::{request_id, source, timestamp},
};
use work4life_proto::identity::{
    Account, AccountKind, AccountState, AuditRecord, CreateAccountRequest, CreateAccountResponse, CreateClientSecretRequest,
    CreateClientSecretResponse, CreateOrganizationRequest, CreateOrganizationResponse, DisableAccountRequest, DisableAccountResponse,
    EnableAccountRequest, EnableAccountResponse, ExchangeClientCredentialsRequest, ExchangeClientCredentialsResponse, GetAccountRequest,
    GetAccountResponse, GetKeySetRequest, GetKeySetResponse, GetOrganizationRequest, GetOrganizationResponse, GrantRoleRequest,
    GrantRoleResponse, ListAccountsRequest, ListAccountsResponse, ListAuditRecordsRequest, ListAuditRecordsResponse,
    ListOrganizationsRequest, ListOrganizationsResponse, ListRoleBindingsRequest, ListRoleBindingsResponse, LoginRequest, LoginResponse,
    LogoutRequest, LogoutResponse, Organization, OrganizationKind, RefreshTokenRequest, RefreshTokenResponse, RequestOneTimeCodeRequest,
    RequestOneTimeCodeResponse, RevokeRoleRequest, RevokeRoleResponse, RoleBinding, RotateSigningKeyRequest, RotateSigningKeyResponse,
    Tokens, UpdateAccountRequest, UpdateAccountResponse, VerifyOneTimeCodeRequest, VerifyOneTimeCodeResponse, WhoAmIRequest,
    WhoAmIResponse, identity_service_server::IdentityService,
};

use crate::{
    directory::{self, AccountChange, AccountFilter, AccountRow, Actor, Directory, NewAccount, OrganizationRow, policy},
    keys::KeyRing,
    sessions::{ACCESS_TOKEN_TTL, Issued, Sessions},
};

/// Longest accepted email or password, in bytes.
const MAX_CREDENTIAL_LEN: usize = 256;

/// The gRPC face of identity.
pub struct Identity {
    /// Signing keys.
    pub keys: KeyRing,
    /// Login and tokens.
    pub sessions: Sessions,
    /// Skew tolerated by verifiers: a retired key stays published this much longer.
    pub leeway: std::time::Duration,
    /// Organisations, accounts, role bindings.
    pub directory: Directory,
    /// Page-token codec.
    pub page_tokens: PageTokens,
}

fn kind_to_str(kind: i32) -> &'static str {
    match OrganizationKind::try_from(kind) {
        Ok(OrganizationKind::PartnerNgo) => "partner_ngo",
        Ok(OrganizationKind::Incubator) => "incubator",
        Ok(OrganizationKind::Employer) => "employer",
        Ok(OrganizationKind::Donor) => "donor",
        Ok(OrganizationKind::PaymentProvider) => "payment_provider",
        _ => "",
    }
}

fn kind_from_str(kind: &str) -> OrganizationKind {
    match kind {
        "partner_ngo" => OrganizationKind::PartnerNgo,
        "incubator" => OrganizationKind::Incubator,
        "employer" => OrganizationKind::Employer,
        "donor" => OrganizationKind::Donor,
        "payment_provider" => OrganizationKind::PaymentProvider,
        _ => OrganizationKind::Unspecified,
    }
}

fn organization(row: OrganizationRow) -> Organization {
    Organization {
        name: format!("organizations/{}", row.id),
        display_name: row.display_name,
        kind: kind_from_str(&row.kind) as i32,
        zones: row.zones,
        create_time: Some(timestamp(row.created_at)),
    }
}

fn account(row: AccountRow) -> Account {
    let etag = row.etag();
    Account {
        name: format!("accounts/{}", row.id),
        email: row.email.unwrap_or_default(),
        phone: row.phone.unwrap_or_default(),
        display_name: row.display_name,
        organization: row.organization_id.map(|o| format!("organizations/{o}")).unwrap_or_default(),
        state: if row.status == "active" { AccountState::Active } else { AccountState::Disabled } as i32,
        role_bindings: row
            .bindings
            .into_iter()
            .map(|b| RoleBinding {
                role: b.role,
                organization: b.organization_id.map(|o| format!("organizations/{o}")).unwrap_or_default(),
                zones: b.zones,
            })
            .collect(),
        etag,
        create_time: Some(timestamp(row.created_at)),
        kind: match row.kind.as_str() {
            "beneficiary" => AccountKind::Beneficiary,
            "service" => AccountKind::Service,
            _ => AccountKind::Staff,
        } as i32,
    }
}

impl Identity {
    /// Changes an account after checking the caller may manage it.
    async fn change_account(
        &self,
        caller: &Principal,
        source: &str,
        name: &str,
        etag: &str,
        change: AccountChange,
    ) -> Result<Account, ServiceError> {
        let id = directory::parse_name("name", "accounts", name)?;
        let current = self.directory.account(id).await?;
        if !policy::can_read(caller, id, current.organization_id) {
            return Err(ServiceError::NotFound(name.to_string()));
        }
        policy::require(
            policy::can_manage(caller, current.organization_id),
            "only an admin or the organisation's program manager changes an account",
        )?;
        let request_id = request_id();
        let actor = Actor { principal: caller, request_id: &request_id, source };
        Ok(account(self.directory.update_account(&actor, id, etag, change).await?))
    }

    /// Disables or re-enables an account (DisableAccount, EnableAccount).
    async fn set_status<T>(&self, request: &Request<T>, name: &str, etag: &str, status: &str) -> Result<Account, ServiceError> {
        let caller = principal(request)?;
        let change = AccountChange { status: Some(status.to_string()), ..AccountChange::default() };
        self.change_account(caller, &source(request), name, etag, change).await
    }

    /// Grants or revokes after checking the caller is an admin.
    async fn binding_change(
        &self,
        caller: &Principal,
        source: &str,
        name: &str,
        binding: Option<RoleBinding>,
        grant: bool,
    ) -> Result<Account, ServiceError> {
        policy::require(caller.has_role("admin"), "only an admin grants or revokes roles")?;
        let id = directory::parse_name("account", "accounts", name)?;
        let binding = binding.ok_or_else(|| ServiceError::invalid("role_binding", "is required"))?;
        let binding = directory::parse_binding(&binding.role, &binding.organization, &binding.zones)?;
        let request_id = request_id();
        let actor = Actor { principal: caller, request_id: &request_id, source };
        let row =
            if grant { self.directory.grant(&actor, id, &binding).await? } else { self.directory.revoke(&actor, id, &binding).await? };
        Ok(account(row))
    }
}

fn tokens(issued: &Issued) -> Tokens {
    Tokens {
        access_token: issued.access_token.clone(),
        access_token_expires_at: Some(timestamp(issued.access_expires_at)),
        refresh_token: issued.refresh_token.clone(),
        refresh_token_expires_at: Some(timestamp(issued.refresh_expires_at)),
    }
}

fn required(field: &'static str, value: &str) -> Result<(), ServiceError> {
    if value.trim().is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(ServiceError::invalid(field, format!("is longer than {MAX_CREDENTIAL_LEN} bytes")));
    }
    Ok(())
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn get_key_set(&self, _request: Request<GetKeySetRequest>) -> Result<Response<GetKeySetResponse>, Status> {
        // Make sure a key exists before anyone asks for one.
        self.keys.active().await?;
        let set = self.keys.key_set().await?;
        let jwks_json = serde_json::to_string(&set).map_err(|e| Status::from(ServiceError::Internal(e.into())))?;
        Ok(Response::new(GetKeySetResponse { jwks_json }))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let source = request.remote_addr().map(|a| a.ip());
        let LoginRequest { email, password } = request.into_inner();
        let mut violations = Vec::new();
        for (field, value) in [("email", &email), ("password", &password)] {
            if let Err(ServiceError::InvalidArgument(v)) = required(field, value) {
                violations.extend(v);
            }
        }
        if !violations.is_empty() {
            return Err(ServiceError::InvalidArgument(violations).into());
        }
        let issued = self.sessions.login(&email, &password, source, &request_id()).await?;
        Ok(Response::new(LoginResponse { tokens: Some(tokens(&issued)), account: format!("accounts/{}", issued.account_id) }))
    }

    async fn refresh_token(&self, request: Request<RefreshTokenRequest>) -> Result<Response<RefreshTokenResponse>, Status> {
        let token = request.into_inner().refresh_token;
        required("refresh_token", &token)?;
        let issued = self.sessions.refresh(&token).await?;
        Ok(Response::new(RefreshTokenResponse { tokens: Some(tokens(&issued)) }))
    }

    async fn logout(&self, request: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        let token = request.into_inner().refresh_token;
        required("refresh_token", &token)?;
        self.sessions.logout(&token, &request_id()).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn rotate_signing_key(&self, request: Request<RotateSigningKeyRequest>) -> Result<Response<RotateSigningKeyResponse>, Status> {
        let caller = principal(&request)?;
        if !caller.has_role("admin") {
            return Err(ServiceError::PermissionDenied("only an admin rotates signing keys").into());
        }
        // The previous key verifies every token it signed until they expire (plus skew).
        let rotation = self.keys.rotate(ACCESS_TOKEN_TTL + self.leeway).await?;
        let (previous_kid, previous_retires_at) = rotation.previous.map_or((String::new(), None), |(kid, at)| (kid, Some(timestamp(at))));
        Ok(Response::new(RotateSigningKeyResponse { kid: rotation.kid, previous_kid, previous_retires_at }))
    }

    async fn create_organization(
        &self,
        request: Request<CreateOrganizationRequest>,
    ) -> Result<Response<CreateOrganizationResponse>, Status> {
        let caller = principal(&request)?.clone();
        let source = source(&request);
        policy::require(caller.has_role("admin"), "only an admin creates organisations")?;
        let body = request.into_inner();
        let org = body.organization.clone().ok_or_else(|| ServiceError::invalid("organization", "is required"))?;
        let (name, zones) = directory::parse_organization(&org.display_name, kind_to_str(org.kind), &org.zones)?;
        let scope = format!("identity.CreateOrganization:{}", caller.subject);
        match idempotency::begin::<CreateOrganizationResponse>(
            self.directory.pool(),
            &scope,
            &body.request_id,
            &idempotency::request_hash(&body),
        )
        .await?
        {
            Begun::Replay(response) => Ok(Response::new(response)),
            Begun::Fresh(mut fresh) => {
                let request_id = request_id();
                let actor = Actor { principal: &caller, request_id: &request_id, source: &source };
                let row = self.directory.create_organization(&mut fresh.tx, &actor, &name, kind_to_str(org.kind), &zones).await?;
                let response = CreateOrganizationResponse { organization: Some(organization(row)) };
                fresh.commit(&response).await?;
                Ok(Response::new(response))
            }
        }
    }

    async fn get_organization(&self, request: Request<GetOrganizationRequest>) -> Result<Response<GetOrganizationResponse>, Status> {
        principal(&request)?;
        let id = directory::parse_name("name", "organizations", &request.get_ref().name)?;
        Ok(Response::new(GetOrganizationResponse { organization: Some(organization(self.directory.organization(id).await?)) }))
    }

    async fn list_organizations(&self, request: Request<ListOrganizationsRequest>) -> Result<Response<ListOrganizationsResponse>, Status> {
        principal(&request)?;
        let body = request.into_inner();
        let size = page_size(body.page_size)?;
        let filter = "identity.ListOrganizations";
        let after: Option<(String, Uuid)> = self.page_tokens.decode(&body.page_token, filter)?;
        let rows = self.directory.organizations(after, i64::from(size) + 1).await?;
        let (rows, next_page_token) = next_page(rows, size, &self.page_tokens, filter, |r| (r.display_name.clone(), r.id));
        Ok(Response::new(ListOrganizationsResponse { organizations: rows.into_iter().map(organization).collect(), next_page_token }))
    }

    async fn create_account(&self, request: Request<CreateAccountRequest>) -> Result<Response<CreateAccountResponse>, Status> {
        let caller = principal(&request)?.clone();
        let source = source(&request);
        let body = request.into_inner();
        let input = body.account.clone().ok_or_else(|| ServiceError::invalid("account", "is required"))?;
        let kind = match AccountKind::try_from(input.kind) {
            Ok(AccountKind::Unspecified | AccountKind::Staff) => "staff",
            Ok(AccountKind::Beneficiary) => "beneficiary",
            Ok(AccountKind::Service) => "service",
            Err(_) => return Err(ServiceError::invalid("account.kind", "unknown account kind").into()),
        };
        let new = NewAccount::parse(kind, &input.email, &input.phone, &input.display_name, &input.organization)?;
        policy::require(
            policy::can_manage(&caller, new.organization_id),
            "only an admin, or a program manager for their organisation, creates accounts",
        )?;
        let scope = format!("identity.CreateAccount:{}", caller.subject);
        match idempotency::begin::<CreateAccountResponse>(
            self.directory.pool(),
            &scope,
            &body.request_id,
            &idempotency::request_hash(&body),
        )
        .await?
        {
            Begun::Replay(response) => Ok(Response::new(response)),
            Begun::Fresh(mut fresh) => {
                let request_id = request_id();
                let actor = Actor { principal: &caller, request_id: &request_id, source: &source };
                let row = self.directory.create_account(&mut fresh.tx, &actor, &new).await?;
                let created = account(row);
                work4life_platform::outbox::enqueue(
                    &mut fresh.tx,
                    "identity",
                    "identity.account.created",
                    &created.name,
                    prost_types::Any {
                        type_url: "type.googleapis.com/work4life.identity.v1.Account".into(),
                        value: prost::Message::encode_to_vec(&created),
                    },
                )
                .await?;
                let response = CreateAccountResponse { account: Some(created) };
                fresh.commit(&response).await?;
                Ok(Response::new(response))
            }
        }
    }

    async fn list_role_bindings(&self, request: Request<ListRoleBindingsRequest>) -> Result<Response<ListRoleBindingsResponse>, Status> {
        let caller = principal(&request)?;
        let name = &request.get_ref().account;
        let id = directory::parse_name("account", "accounts", name)?;
        let row = self.directory.account(id).await?;
        if !policy::can_read(caller, id, row.organization_id) {
            return Err(ServiceError::NotFound(name.clone()).into());
        }
        Ok(Response::new(ListRoleBindingsResponse { role_bindings: account(row).role_bindings }))
    }

    async fn get_account(&self, request: Request<GetAccountRequest>) -> Result<Response<GetAccountResponse>, Status> {
        let caller = principal(&request)?;
        let name = &request.get_ref().name;
        let id = directory::parse_name("name", "accounts", name)?;
        let row = self.directory.account(id).await?;
        // Not allowed to see it: indistinguishable from absent.
        if !policy::can_read(caller, id, row.organization_id) {
            return Err(ServiceError::NotFound(name.clone()).into());
        }
        Ok(Response::new(GetAccountResponse { account: Some(account(row)) }))
    }

    async fn list_accounts(&self, request: Request<ListAccountsRequest>) -> Result<Response<ListAccountsResponse>, Status> {
        let caller = principal(&request)?.clone();
        let body = request.into_inner();
        let size = page_size(body.page_size)?;
        let mut filter = AccountFilter {
            organizations: None,
            status: match AccountState::try_from(body.state) {
                Ok(AccountState::Active) => Some("active".into()),
                Ok(AccountState::Disabled) => Some("disabled".into()),
                Ok(AccountState::Unspecified) => None,
                Err(_) => return Err(ServiceError::invalid("state", "unknown account state").into()),
            },
            role: (!body.role.is_empty()).then(|| body.role.clone()),
            zone: (!body.zone.is_empty()).then(|| body.zone.clone()),
        };
        if let Some(role) = &filter.role
            && !directory::ROLES.contains(&role.as_str())
        {
            return Err(ServiceError::invalid("role", format!("must be one of {}", directory::ROLES.join(", "))).into());
        }
        let requested_org = if body.organization.is_empty() {
            None
        } else {
            Some(directory::parse_name("organization", "organizations", &body.organization)?)
        };
        // Scope: admins and auditors see every account; program managers only their organisations'.
        if caller.has_role("admin") || caller.has_role("auditor") {
            filter.organizations = requested_org.map(|o| vec![o]);
        } else {
            let managed: Vec<Uuid> =
                policy::managed_orgs(&caller).iter().filter_map(|o| directory::parse_name("", "organizations", o).ok()).collect();
            policy::require(!managed.is_empty(), "only admins, auditors and program managers list accounts")?;
            filter.organizations = Some(match requested_org {
                Some(o) if managed.contains(&o) => vec![o],
                Some(_) => return Err(ServiceError::PermissionDenied("that organisation is outside your scope").into()),
                None => managed,
            });
        }
        let filter_key = format!(
            "identity.ListAccounts;{}|{:?}|{:?}|{:?}|{:?}",
            caller.subject, filter.organizations, filter.status, filter.role, filter.zone
        );
        let after: Option<(String, Uuid)> = self.page_tokens.decode(&body.page_token, &filter_key)?;
        let rows = self.directory.accounts(&filter, after, i64::from(size) + 1).await?;
        let (rows, next_page_token) =
            next_page(rows, size, &self.page_tokens, &filter_key, |r| (r.email.clone().unwrap_or_default(), r.id));
        Ok(Response::new(ListAccountsResponse { accounts: rows.into_iter().map(account).collect(), next_page_token }))
    }

    async fn update_account(&self, request: Request<UpdateAccountRequest>) -> Result<Response<UpdateAccountResponse>, Status> {
        let caller = principal(&request)?.clone();
        let source = source(&request);
        let body = request.into_inner();
        let input = body.account.ok_or_else(|| ServiceError::invalid("account", "is required"))?;
        let mask = body.update_mask.map(|m| m.paths).unwrap_or_default();
        let change = AccountChange::parse(&mask, &input.email, &input.phone, &input.display_name)?;
        let updated = self.change_account(&caller, &source, &input.name, &input.etag, change).await?;
        Ok(Response::new(UpdateAccountResponse { account: Some(updated) }))
    }

    async fn disable_account(&self, request: Request<DisableAccountRequest>) -> Result<Response<DisableAccountResponse>, Status> {
        let account = self.set_status(&request, &request.get_ref().name, &request.get_ref().etag, "disabled").await?;
        Ok(Response::new(DisableAccountResponse { account: Some(account) }))
    }

    async fn enable_account(&self, request: Request<EnableAccountRequest>) -> Result<Response<EnableAccountResponse>, Status> {
        let account = self.set_status(&request, &request.get_ref().name, &request.get_ref().etag, "active").await?;
        Ok(Response::new(EnableAccountResponse { account: Some(account) }))
    }

    async fn grant_role(&self, request: Request<GrantRoleRequest>) -> Result<Response<GrantRoleResponse>, Status> {
        let caller = principal(&request)?.clone();
        let source = source(&request);
        let body = request.into_inner();
        let updated = self.binding_change(&caller, &source, &body.account, body.role_binding, true).await?;
        Ok(Response::new(GrantRoleResponse { account: Some(updated) }))
    }

    async fn revoke_role(&self, request: Request<RevokeRoleRequest>) -> Result<Response<RevokeRoleResponse>, Status> {
        let caller = principal(&request)?.clone();
        let source = source(&request);
        let body = request.into_inner();
        let updated = self.binding_change(&caller, &source, &body.account, body.role_binding, false).await?;
        Ok(Response::new(RevokeRoleResponse { account: Some(updated) }))
    }

    async fn request_one_time_code(
        &self,
        request: Request<RequestOneTimeCodeRequest>,
    ) -> Result<Response<RequestOneTimeCodeResponse>, Status> {
        let phone = directory::normalize_phone("phone", &request.get_ref().phone)
            .map_err(|v| ServiceError::InvalidArgument(vec![v]))?
            .ok_or_else(|| ServiceError::invalid("phone", "is required"))?;
        let expires_at = self.sessions.request_code(&phone).await?;
        Ok(Response::new(RequestOneTimeCodeResponse { expire_time: Some(timestamp(expires_at)) }))
    }

    async fn verify_one_time_code(
        &self,
        request: Request<VerifyOneTimeCodeRequest>,
    ) -> Result<Response<VerifyOneTimeCodeResponse>, Status> {
        let body = request.into_inner();
        let mut violations = Vec::new();
        let phone = match directory::normalize_phone("phone", &body.phone) {
            Ok(Some(phone)) => Some(phone),
            Ok(None) => {
                violations.push(work4life_platform::FieldViolation::new("phone", "is required"));
                None
            }
            Err(v) => {
                violations.push(v);
                None
            }
        };
        let code = body.code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            violations.push(work4life_platform::FieldViolation::new("code", "is six digits"));
        }
        let Some(phone) = phone.filter(|_| violations.is_empty()) else {
            return Err(ServiceError::InvalidArgument(violations).into());
        };
        let issued = self.sessions.verify_code(&phone, code, &request_id()).await?;
        Ok(Response::new(VerifyOneTimeCodeResponse { tokens: Some(tokens(&issued)), account: format!("accounts/{}", issued.account_id) }))
    }

    async fn create_client_secret(
        &self,
        request: Request<CreateClientSecretRequest>,
    ) -> Result<Response<CreateClientSecretResponse>, Status> {
        let caller = principal(&request)?;
        policy::require(caller.has_role("admin"), "only an admin issues client secrets")?;
        let id = directory::parse_name("account", "accounts", &request.get_ref().account)?;
        let client_secret = self.sessions.create_client_secret(id, &caller.subject, &request_id()).await?;
        Ok(Response::new(CreateClientSecretResponse { client_id: id.to_string(), client_secret }))
    }

    async fn exchange_client_credentials(
        &self,
        request: Request<ExchangeClientCredentialsRequest>,
    ) -> Result<Response<ExchangeClientCredentialsResponse>, Status> {
        let source = request.remote_addr().map(|a| a.ip());
        let body = request.into_inner();
        required("client_id", &body.client_id)?;
        required("client_secret", &body.client_secret)?;
        let (access_token, expires_at) = self.sessions.exchange_client_credentials(&body.client_id, &body.client_secret, source).await?;
        Ok(Response::new(ExchangeClientCredentialsResponse { access_token, access_token_expires_at: Some(timestamp(expires_at)) }))
    }

    async fn list_audit_records(&self, request: Request<ListAuditRecordsRequest>) -> Result<Response<ListAuditRecordsResponse>, Status> {
        let caller = principal(&request)?;
        policy::require(caller.has_role("auditor") || caller.has_role("admin"), "only auditors and admins read the audit log")?;
        let body = request.get_ref();
        let size = page_size(body.page_size)?;
        let time = |field: &'static str, t: &Option<prost_types::Timestamp>| -> Result<Option<time::OffsetDateTime>, ServiceError> {
            t.as_ref()
                .map(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).map_err(|_| ServiceError::invalid(field, "is out of range")))
                .transpose()
        };
        let filter = AuditFilter {
            actor: (!body.actor.is_empty()).then(|| body.actor.clone()),
            resource: (!body.resource.is_empty()).then(|| body.resource.clone()),
            from: time("start_time", &body.start_time)?,
            until: time("end_time", &body.end_time)?,
        };
        let filter_key = format!("identity.ListAuditRecords;{filter:?}");
        let before: Option<i64> = self.page_tokens.decode(&body.page_token, &filter_key)?;
        let rows = audit::list(self.directory.pool(), &filter, before, i64::from(size) + 1).await?;
        let (rows, next_page_token) = next_page(rows, size, &self.page_tokens, &filter_key, |r| r.seq);
        let records = rows
            .into_iter()
            .map(|r| AuditRecord {
                sequence: r.seq,
                time: Some(timestamp(r.occurred_at)),
                actor: r.actor,
                action: r.action,
                resource: r.resource,
                source_address: r.source_addr,
                request_id: r.request_id,
                details_json: r.details,
            })
            .collect();
        Ok(Response::new(ListAuditRecordsResponse { records, next_page_token }))
    }

    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Result<Response<WhoAmIResponse>, Status> {
        let caller = principal(&request)?;
        let role_bindings = caller
            .roles
            .iter()
            .map(|b| RoleBinding { role: b.role.clone(), organization: b.org.clone().unwrap_or_default(), zones: b.zones.clone() })
            .collect();
        Ok(Response::new(WhoAmIResponse { account: caller.subject.clone(), role_bindings }))
    }
}
