//! Calling a peer as this service: an access token for the service account configured by
//! `W4L_SERVICE_CLIENT_ID` / `W4L_SERVICE_CLIENT_SECRET`, obtained from identity's
//! `ExchangeClientCredentials` and kept until a minute before it expires, so that a burst of
//! calls costs one exchange. A fixed `W4L_SERVICE_TOKEN` is used as is (tests).

use std::{sync::Arc, time::Duration};

use tokio::sync::Mutex;
use tonic::{Status, metadata::MetadataValue};

use crate::{config::ServiceCredentials, host::Peers};

/// Renew a token this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// The bearer token of this process's service account, for peer calls.
#[derive(Clone)]
pub struct PeerAuth {
    credentials: Option<ServiceCredentials>,
    peers: Peers,
    cached: Arc<Mutex<Option<(String, tokio::time::Instant)>>>,
}

impl PeerAuth {
    /// Tokens for `credentials`, exchanged with identity through `peers`.
    pub fn new(credentials: Option<ServiceCredentials>, peers: Peers) -> Self {
        Self { credentials, peers, cached: Arc::new(Mutex::new(None)) }
    }

    /// Whether any credentials are configured.
    pub fn is_configured(&self) -> bool {
        self.credentials.is_some()
    }

    /// `Bearer <token>`, exchanging credentials when the cached token is missing or near expiry.
    pub async fn authorization(&self) -> Result<MetadataValue<tonic::metadata::Ascii>, Status> {
        let token = match &self.credentials {
            None => {
                return Err(Status::failed_precondition(
                    "no service credentials: set W4L_SERVICE_CLIENT_ID and W4L_SERVICE_CLIENT_SECRET to call peers",
                ));
            }
            Some(ServiceCredentials::Token(token)) => token.clone(),
            Some(ServiceCredentials::Client { id, secret }) => {
                let mut cached = self.cached.lock().await;
                match cached.as_ref() {
                    Some((token, renew_at)) if tokio::time::Instant::now() < *renew_at => token.clone(),
                    _ => {
                        let (token, lifetime) = self.exchange(*id, secret).await?;
                        let renew_at = tokio::time::Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
                        *cached = Some((token.clone(), renew_at));
                        token
                    }
                }
            }
        };
        format!("Bearer {token}").parse().map_err(|_| Status::internal("the service token is not valid header text"))
    }

    /// Forgets the cached token (a peer refused it: the next call exchanges again).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    /// `request` with this service's authorization header.
    pub async fn request<T>(&self, message: T) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.authorization().await?);
        Ok(request)
    }

    async fn exchange(&self, id: uuid::Uuid, secret: &str) -> Result<(String, Duration), Status> {
        let channel = self.peers.channel("identity").map_err(|e| Status::unavailable(format!("{e:#}")))?;
        let mut client = work4life_proto::identity::identity_service_client::IdentityServiceClient::new(channel);
        let answer = client
            .exchange_client_credentials(work4life_proto::identity::ExchangeClientCredentialsRequest {
                client_id: id.to_string(),
                client_secret: secret.to_string(),
            })
            .await?
            .into_inner();
        let expires = answer.access_token_expires_at.map(|t| t.seconds).unwrap_or_default();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let lifetime = Duration::from_secs(u64::try_from(expires - now).unwrap_or(0));
        tracing::info!(account = %id, lifetime_secs = lifetime.as_secs(), "service token obtained from identity");
        Ok((answer.access_token, lifetime))
    }
}
