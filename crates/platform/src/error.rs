//! The one error type services return from their domain and store layers, and its single mapping
//! to gRPC: a small set of codes, each with `google.rpc` details (BadRequest field violations,
//! PreconditionFailure, ErrorInfo with a machine-readable reason). Internal causes are logged
//! with the request id and never sent to the caller.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every work4life error.
pub const ERROR_DOMAIN: &str = "work4life.org";

/// One field that is wrong in a request, named by its path (`applicant.phone`, `members[2].id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request message.
    pub field: String,
    /// Why the value was refused, for a person to read.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

/// One precondition the system state did not meet (AIP-193 `PreconditionFailure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// A short type, upper snake case: `BUDGET`, `STATE`, `QUOTA`.
    pub kind: String,
    /// The resource concerned: `budgets/2026/lines/tanger`.
    pub subject: String,
    /// What is missing, for a person to read.
    pub description: String,
}

/// Every failure a service reports to a caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request itself is wrong (INVALID_ARGUMENT with BadRequest details).
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<FieldViolation>),
    /// The state of the system does not allow it (FAILED_PRECONDITION with PreconditionFailure).
    #[error("failed precondition: {reason}")]
    FailedPrecondition { reason: &'static str, violations: Vec<PreconditionViolation> },
    /// The named resource does not exist, or the caller may not know that it does.
    #[error("not found: {0}")]
    NotFound(String),
    /// A resource with the same identity exists already.
    #[error("already exists: {resource}")]
    AlreadyExists { resource: String, reason: &'static str, metadata: HashMap<String, String> },
    /// Optimistic concurrency lost (stale etag) or a concurrent duplicate request: retry.
    #[error("aborted: {reason}")]
    Aborted { reason: &'static str, message: String },
    /// No valid credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// Valid credentials, not allowed to do this.
    #[error("permission denied: {0}")]
    PermissionDenied(&'static str),
    /// Too much load or a quota reached.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(&'static str),
    /// The call's deadline passed before the work was done.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A dependency (database, Redis, another service) is unreachable: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the cause is logged, the caller sees only `internal error`.
    #[error("internal: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// An INVALID_ARGUMENT for one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// A FAILED_PRECONDITION with one violation.
    pub fn precondition(reason: &'static str, kind: impl Into<String>, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            violations: vec![PreconditionViolation { kind: kind.into(), subject: subject.into(), description: description.into() }],
        }
    }

    /// The stable machine-readable reason carried in `ErrorInfo.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::FailedPrecondition { reason, .. } => reason,
            Self::NotFound(_) => "NOT_FOUND",
            Self::AlreadyExists { reason, .. } => reason,
            Self::Aborted { reason, .. } => reason,
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::ResourceExhausted(_) => "RESOURCE_EXHAUSTED",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

/// The constraint a unique violation (SQLSTATE 23505) names, for turning it into ALREADY_EXISTS.
pub fn unique_violated(err: &sqlx::Error) -> Option<&str> {
    let db = err.as_database_error()?;
    if db.code().as_deref() == Some("23505") { Some(db.constraint().unwrap_or_default()) } else { None }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        // statement_timeout (57014, query_canceled) fires when the call's deadline is reached.
        if let sqlx::Error::Database(db) = &err
            && db.code().as_deref() == Some("57014")
        {
            return Self::DeadlineExceeded;
        }
        // A NUL or otherwise unstorable character in some text the caller sent.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return Self::invalid("", "a text contains a character that cannot be stored (such as NUL)");
        }
        // Two transactions waited on each other (deadlock_detected) or a snapshot could not be
        // kept (serialization_failure): nothing was written, and the same request can be retried.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("40P01" | "40001"))
        {
            return Self::Aborted { reason: "CONCURRENT_UPDATE", message: "a concurrent change got in the way; retry the request".into() };
        }
        // The server is going away or not accepting connections yet (a restart, a failover):
        // connection exceptions (class 08) and operator intervention (57P01 admin_shutdown,
        // 57P02 crash_shutdown, 57P03 cannot_connect_now). The caller retries; with its request id, a
        // write whose commit did land before the cut is answered again, not repeated.
        if let sqlx::Error::Database(db) = &err
            && db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
        {
            return Self::Unavailable("database unavailable".into());
        }
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => Self::Unavailable("database unavailable".into()),
            other => Self::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

impl From<redis::RedisError> for ServiceError {
    fn from(err: redis::RedisError) -> Self {
        if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() {
            return Self::Unavailable("redis unavailable".into());
        }
        Self::Internal(anyhow::Error::new(err).context("redis"))
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        let reason = err.reason();
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
        let (code, message) = match err {
            ServiceError::InvalidArgument(violations) => {
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
                (Code::InvalidArgument, format!("invalid request: {}", fields.join(", ")))
            }
            ServiceError::FailedPrecondition { violations, .. } => {
                let message = violations.first().map_or_else(|| "failed precondition".to_string(), |v| v.description.clone());
                for v in violations {
                    details.add_precondition_failure_violation(v.kind, v.subject, v.description);
                }
                (Code::FailedPrecondition, message)
            }
            ServiceError::NotFound(resource) => (Code::NotFound, format!("{resource} not found")),
            ServiceError::AlreadyExists { resource, reason, metadata } => {
                details.set_error_info(reason, ERROR_DOMAIN, metadata);
                (Code::AlreadyExists, format!("{resource} already exists"))
            }
            ServiceError::Aborted { message, .. } => (Code::Aborted, message),
            ServiceError::Unauthenticated(why) => (Code::Unauthenticated, why.to_string()),
            ServiceError::PermissionDenied(why) => (Code::PermissionDenied, why.to_string()),
            ServiceError::ResourceExhausted(why) => (Code::ResourceExhausted, why.to_string()),
            ServiceError::DeadlineExceeded => (Code::DeadlineExceeded, "deadline exceeded".to_string()),
            ServiceError::Unavailable(why) => {
                let request_id = crate::stack::current_request_id().unwrap_or_default();
                tracing::warn!(cause = %why, %request_id, "dependency unavailable");
                (Code::Unavailable, "service temporarily unavailable, retry with backoff".to_string())
            }
            ServiceError::Internal(cause) => {
                // The cause may hold SQL, addresses or personal data: it goes to the log only.
                let request_id = crate::stack::current_request_id().unwrap_or_default();
                tracing::error!(error = format!("{cause:#}"), %request_id, "internal error");
                (Code::Internal, "internal error".to_string())
            }
        };
        Status::with_error_details(code, message, details)
    }
}

/// Shorthand for handler results.
pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field() {
        let status: Status = ServiceError::InvalidArgument(vec![
            FieldViolation::new("applicant.phone", "not a phone number"),
            FieldViolation::new("applicant.birth_date", "in the future"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "applicant.phone");
        assert_eq!(details.error_info().expect("error info").reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn precondition_failure_has_violation_and_reason() {
        let status: Status = ServiceError::precondition("BUDGET_EXCEEDED", "BUDGET", "budgets/x/lines/y", "only 10.00 EUR left").into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        assert_eq!(details.precondition_failure().expect("pf").violations[0].subject, "budgets/x/lines/y");
        assert_eq!(details.error_info().expect("info").reason, "BUDGET_EXCEEDED");
    }

    #[test]
    fn internal_cause_never_reaches_the_caller() {
        let status: Status = ServiceError::Internal(anyhow::anyhow!("relation \"secret_table\" does not exist at 10.0.0.7")).into();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
        assert!(!format!("{:?}", status.details()).contains("secret_table"));
    }
}
