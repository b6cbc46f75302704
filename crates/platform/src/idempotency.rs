//! Idempotent requests by `request_id` (AIP-155). The key row and the request's effect are
//! written in one transaction:
//! - first time: [`begin`] returns [`Begun::Fresh`] holding the transaction; the handler does its
//!   work in it and calls [`Fresh::commit`] with the response;
//! - replay with the same request: [`Begun::Replay`] with the first response;
//! - same id, different request: INVALID_ARGUMENT on `request_id`;
//! - a concurrent duplicate blocks on the key's primary key until the first commits (then it is
//!   a replay) or rolls back (then it runs); waiting longer than the lock timeout gives ABORTED.
//!   Either way the effect happens once.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::ServiceError;

/// How long a duplicate waits for the first request to finish before ABORTED.
const LOCK_TIMEOUT_MS: &str = "5000";

/// The outcome of starting an idempotent request.
pub enum Begun<R> {
    /// First time this id is seen: do the work in `tx`, then commit.
    Fresh(Fresh),
    /// Seen before with the same request: return this response.
    Replay(R),
}

/// An open transaction holding the idempotency key.
pub struct Fresh {
    /// The transaction to do the request's effect in.
    pub tx: Transaction<'static, Postgres>,
    scope: String,
    request_id: Option<String>,
}

impl Fresh {
    /// Stores the response with the key and commits everything at once.
    pub async fn commit<R: Message>(mut self, response: &R) -> Result<(), ServiceError> {
        if let Some(request_id) = &self.request_id {
            sqlx::query!(
                "UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND request_id = $2",
                self.scope,
                request_id,
                response.encode_to_vec()
            )
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// A stable hash of a request message, without its `request_id` field's influence left to the
/// caller: pass the request as received (the id is part of it, which is harmless).
pub fn request_hash<M: Message>(request: &M) -> Vec<u8> {
    Sha256::digest(request.encode_to_vec()).to_vec()
}

/// Starts an idempotent request. `scope` names the method (`grants.RequestDisbursement`) and,
/// where ids are per caller, the caller; `request_id` must be a UUID (AIP-155).
pub async fn begin<R: Message + Default>(
    pool: &PgPool,
    scope: &str,
    request_id: &str,
    request_hash: &[u8],
) -> Result<Begun<R>, ServiceError> {
    if uuid::Uuid::parse_str(request_id).is_err() {
        return Err(ServiceError::invalid("request_id", "must be a UUID (for example a v4 or v7 UUID made by the client)"));
    }
    let mut tx = crate::db::begin(pool).await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)").bind(LOCK_TIMEOUT_MS).execute(&mut *tx).await?;
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_keys (scope, request_id, request_hash, response) VALUES ($1, $2, $3, '') \
         ON CONFLICT (scope, request_id) DO NOTHING",
        scope,
        request_id,
        request_hash
    )
    .execute(&mut *tx)
    .await
    .map_err(|err| match err.as_database_error().and_then(|e| e.code()) {
        // lock_not_available: the first request is still running after the lock timeout
        Some(code) if code == "55P03" => ServiceError::Aborted {
            reason: "REQUEST_IN_PROGRESS",
            message: "a request with this request_id is still in progress; retry later".into(),
        },
        _ => err.into(),
    })?
    .rows_affected()
        == 1;
    if inserted {
        return Ok(Begun::Fresh(Fresh { tx, scope: scope.to_string(), request_id: Some(request_id.to_string()) }));
    }
    let stored =
        sqlx::query!("SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND request_id = $2", scope, request_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.rollback().await?;
    if stored.request_hash != request_hash {
        return Err(ServiceError::invalid("request_id", "was already used for a different request"));
    }
    let response = R::decode(stored.response.as_slice()).map_err(|e| ServiceError::Internal(anyhow::anyhow!("stored response: {e}")))?;
    Ok(Begun::Replay(response))
}

/// Adds a violation when a non-empty `request_id` is not a UUID, so that handlers report it with
/// the request's other bad fields before any work starts.
pub fn check_request_id(violations: &mut Vec<crate::error::FieldViolation>, request_id: &str) {
    if !request_id.is_empty() && uuid::Uuid::parse_str(request_id).is_err() {
        violations.push(crate::error::FieldViolation::new("request_id", "must be a UUID (for example a v4 or v7 UUID made by the client)"));
    }
}

/// Like [`begin`], where `request_id` is optional: without one the request simply runs in a
/// fresh transaction (a retry may then repeat its effect, as the caller chose).
pub async fn begin_optional<R: Message + Default>(
    pool: &PgPool,
    scope: &str,
    request_id: &str,
    request_hash: &[u8],
) -> Result<Begun<R>, ServiceError> {
    if request_id.is_empty() {
        return Ok(Begun::Fresh(Fresh { tx: crate::db::begin(pool).await?, scope: scope.to_string(), request_id: None }));
    }
    begin(pool, scope, request_id, request_hash).await
}

/// How long a `request_id` is remembered: a retry within this window replays the first response.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Forgets request ids older than `older_than`; returns how many were removed.
pub async fn prune(pool: &PgPool, older_than: std::time::Duration) -> Result<u64, ServiceError> {
    let seconds = older_than.as_secs_f64();
    let done =
        sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", seconds).execute(pool).await?;
    Ok(done.rows_affected())
}
