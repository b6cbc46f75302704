//! Append-only, hash-chained audit log: who did what, to which resource, when, from where.
//!
//! Every record's hash is `SHA-256(previous hash ‖ length-prefixed fields)`, so changing,
//! removing or reordering any record breaks every later link; [`verify`] finds the first broken
//! one. The database refuses UPDATE, DELETE and TRUNCATE on the table (a trigger), and appends are
//! serialised by locking the chain head, in the caller's transaction: the audit record commits
//! with the change it describes, or not at all.

use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::error::ServiceError;

/// One thing to record.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// The account that acted (`accounts/…`), or `system`.
    pub actor: String,
    /// What was done, `<service>.<Method>` (`intake.GetApplicant`).
    pub action: String,
    /// The resource acted on (`applicants/…`).
    pub resource: String,
    /// The caller's address.
    pub source_addr: String,
    /// The request id.
    pub request_id: String,
    /// Extra facts as a JSON object (never secrets or document numbers).
    pub details: serde_json::Value,
}

/// Binds `$actor` to the caller of the tonic request `$request` (principal, request id, source
/// address), or returns UNAUTHENTICATED from the enclosing handler.
#[macro_export]
macro_rules! actor {
    ($request:ident, $actor:ident) => {
        let caller = $crate::auth::principal(&$request)?;
        let request_id = $crate::wire::request_id();
        let source = $crate::wire::source(&$request);
        let $actor = $crate::audit::Actor { principal: caller, request_id: &request_id, source: &source };
    };
}

/// Who acted: the caller, the request and where it came from, for the entries of one request.
pub struct Actor<'a> {
    /// The caller.
    pub principal: &'a crate::auth::Principal,
    /// The request id.
    pub request_id: &'a str,
    /// The caller's address.
    pub source: &'a str,
}

impl Actor<'_> {
    /// An entry by this actor.
    pub fn entry(&self, action: &str, resource: String, details: serde_json::Value) -> AuditEntry {
        AuditEntry {
            actor: self.principal.subject.clone(),
            action: action.to_string(),
            resource,
            source_addr: self.source.to_string(),
            request_id: self.request_id.to_string(),
            details,
        }
    }

    /// Appends an entry by this actor in the caller's transaction.
    pub async fn record(
        &self,
        tx: &mut PgConnection,
        action: &str,
        resource: String,
        details: serde_json::Value,
    ) -> Result<i64, ServiceError> {
        append(tx, &self.entry(action, resource, details)).await
    }
}

/// Appends `entry` to the chain in the caller's transaction; returns its sequence number.
pub async fn append(tx: &mut PgConnection, entry: &AuditEntry) -> Result<i64, ServiceError> {
    let head = sqlx::query!("SELECT seq, hash FROM audit_head WHERE singleton FOR UPDATE").fetch_one(&mut *tx).await?;
    let seq = head.seq + 1;
    let now = OffsetDateTime::now_utc();
    // PostgreSQL keeps microseconds: hash exactly what is stored.
    let occurred_at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).map_err(|e| ServiceError::Internal(e.into()))?;
    let details = entry.details.to_string();
    let hash = link_hash(&head.hash, seq, occurred_at, entry, &details);
    sqlx::query!(
        "INSERT INTO audit_log (seq, occurred_at, actor, action, resource, source_addr, request_id, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        seq,
        occurred_at,
        entry.actor,
        entry.action,
        entry.resource,
        entry.source_addr,
        entry.request_id,
        details,
        head.hash,
        hash
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE audit_head SET seq = $1, hash = $2 WHERE singleton", seq, hash).execute(&mut *tx).await?;
    Ok(seq)
}

fn link_hash(prev: &[u8], seq: i64, occurred_at: OffsetDateTime, entry: &AuditEntry, details: &str) -> Vec<u8> {
    let micros = occurred_at.unix_timestamp_nanos() / 1000;
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(micros.to_be_bytes());
    for field in [&entry.actor, &entry.action, &entry.resource, &entry.source_addr, &entry.request_id] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.update((details.len() as u64).to_be_bytes());
    h.update(details.as_bytes());
    h.finalize().to_vec()
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every link holds; `records` were checked.
    Intact { records: i64 },
    /// The first record whose stored or recomputed hash does not follow from its predecessor.
    Broken { seq: i64, reason: &'static str },
}

/// Walks the whole chain in order and reports the first broken link.
pub async fn verify(pool: &PgPool) -> Result<Verification, ServiceError> {
    let mut prev = vec![0u8; 32];
    let mut expected_seq = 1i64;
    let mut last_seq = 0i64;
    // Keyset pages keep memory flat on long chains.
    loop {
        let rows = sqlx::query!(
            "SELECT seq, occurred_at, actor, action, resource, source_addr, request_id, details, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000",
            last_seq
        )
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if row.seq != expected_seq {
                return Ok(Verification::Broken { seq: expected_seq, reason: "record missing" });
            }
            if row.prev_hash != prev {
                return Ok(Verification::Broken { seq: row.seq, reason: "previous hash does not match" });
            }
            let entry = AuditEntry {
                actor: row.actor,
                action: row.action,
                resource: row.resource,
                source_addr: row.source_addr,
                request_id: row.request_id,
                details: serde_json::Value::Null,
            };
            let hash = link_hash(&prev, row.seq, row.occurred_at, &entry, &row.details);
            if hash != row.hash {
                return Ok(Verification::Broken { seq: row.seq, reason: "record altered" });
            }
            prev = row.hash;
            last_seq = row.seq;
            expected_seq += 1;
        }
    }
    let head = sqlx::query!("SELECT seq, hash FROM audit_head WHERE singleton").fetch_one(pool).await?;
    if head.seq != last_seq || head.hash != prev {
        return Ok(Verification::Broken { seq: last_seq + 1, reason: "chain head does not match the last record" });
    }
    Ok(Verification::Intact { records: last_seq })
}

/// A stored audit record.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Position in the chain.
    pub seq: i64,
    /// When.
    pub occurred_at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub resource: String,
    /// From where.
    pub source_addr: String,
    /// Request id.
    pub request_id: String,
    /// JSON details.
    pub details: String,
}

/// Filters of [`list`]; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact resource.
    pub resource: Option<String>,
    /// At or after.
    pub from: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
}

/// Records matching `filter`, newest first, before sequence `before` (keyset paging).
pub async fn list(pool: &PgPool, filter: &AuditFilter, before: Option<i64>, limit: i64) -> Result<Vec<AuditRecord>, ServiceError> {
    Ok(sqlx::query_as!(
        AuditRecord,
        "SELECT seq, occurred_at, actor, action, resource, source_addr, request_id, details FROM audit_log \
         WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR resource = $2) \
           AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4) \
           AND seq < $5 ORDER BY seq DESC LIMIT $6",
        filter.actor,
        filter.resource,
        filter.from,
        filter.until,
        before.unwrap_or(i64::MAX),
        limit
    )
    .fetch_all(pool)
    .await?)
}
