//! The `work4life.identity.v1.IdentityService` implementation: maps wire types to the sessions
//! and key ring, and checks who may call what. No SQL here.

use tonic::{Request, Response, Status};
use work4life_platform::{ServiceError, auth::principal, stack::current_request_id};
use work4life_proto::identity::{
    GetKeySetRequest, GetKeySetResponse, LoginRequest, LoginResponse, LogoutRequest, LogoutResponse, RefreshTokenRequest,
    RefreshTokenResponse, RoleBinding, RotateSigningKeyRequest, RotateSigningKeyResponse, Tokens, WhoAmIRequest, WhoAmIResponse,
    identity_service_server::IdentityService,
};

use crate::{
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
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: t.nanosecond() as i32 }
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

fn request_id() -> String {
    current_request_id().map(|id| id.to_string()).unwrap_or_default()
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
