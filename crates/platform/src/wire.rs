//! Conversions every service makes at its gRPC edge, written once: resource names, timestamps,
//! ISO dates, etags, and the request's id and source address for audit records.

use time::{Date, OffsetDateTime, format_description::well_known::Iso8601};
use uuid::Uuid;

use crate::error::ServiceError;

/// The id in `{collection}/{uuid}`, or INVALID_ARGUMENT on `field`.
pub fn parse_name(field: &str, collection: &str, name: &str) -> Result<Uuid, ServiceError> {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ServiceError::invalid(field, format!("must be {collection}/<id>")))
}

/// A protobuf timestamp.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: t.nanosecond() as i32 }
}

/// A protobuf timestamp as a time, or INVALID_ARGUMENT on `field`.
pub fn from_timestamp(field: &str, t: &prost_types::Timestamp) -> Result<OffsetDateTime, ServiceError> {
    let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000);
    nanos
        .and_then(|n| OffsetDateTime::from_unix_timestamp(t.seconds).ok().and_then(|s| s.replace_nanosecond(n).ok()))
        // PostgreSQL's range is narrower than protobuf's; no date of this program is outside these years.
        .filter(|t| (1900..=9999).contains(&t.year()))
        .ok_or_else(|| ServiceError::invalid(field, "is not a valid timestamp (years 1900 to 9999)"))
}

/// An ISO 8601 calendar date (`2026-11-29`), or why not.
pub fn parse_date(field: &str, raw: &str) -> Result<Date, crate::error::FieldViolation> {
    let raw = raw.trim();
    if raw.len() != 10 {
        return Err(crate::error::FieldViolation::new(field, "must be a date written YYYY-MM-DD"));
    }
    Date::parse(raw, &Iso8601::DATE).map_err(|_| crate::error::FieldViolation::new(field, "must be a date written YYYY-MM-DD"))
}

/// A date as ISO 8601 (`2026-11-29`).
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Keeps going after a field check fails: its violations join `violations` (so a request's
/// every bad field is reported at once) and the value is `None`.
pub fn gather<T>(violations: &mut Vec<crate::error::FieldViolation>, result: Result<T, ServiceError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(ServiceError::InvalidArgument(mut found)) => {
            violations.append(&mut found);
            None
        }
        Err(other) => {
            violations.push(crate::error::FieldViolation::new("", other.to_string()));
            None
        }
    }
}

/// INVALID_ARGUMENT with every violation, unless there are none.
pub fn refuse_if_any(violations: Vec<crate::error::FieldViolation>) -> Result<(), ServiceError> {
    if violations.is_empty() { Ok(()) } else { Err(ServiceError::InvalidArgument(violations)) }
}

/// The etag of a row version.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Refuses with ABORTED unless `etag` is empty or names `version`.
pub fn check_etag(etag_sent: &str, version: i64) -> Result<(), ServiceError> {
    if etag_sent.is_empty() || etag_sent == etag(version) {
        return Ok(());
    }
    Err(ServiceError::Aborted { reason: "ETAG_MISMATCH", message: "the resource changed since it was read: read it again".into() })
}

/// The id of the request being served (for audit records).
pub fn request_id() -> String {
    crate::stack::current_request_id().map(|id| id.to_string()).unwrap_or_default()
}

/// The caller's IP address (for audit records).
pub fn source<T>(request: &tonic::Request<T>) -> String {
    request.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_dates_and_timestamps_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(parse_name("name", "applicants", &format!("applicants/{id}")).expect("ok"), id);
        for bad in ["applicants/", "calls/0192", "applicants/not-a-uuid", ""] {
            assert!(parse_name("name", "applicants", bad).is_err(), "{bad}");
        }
        let d = parse_date("birth_date", "1998-04-17").expect("date");
        assert_eq!(format_date(d), "1998-04-17");
        for bad in ["1998-4-17", "17/04/1998", "1998-02-30", ""] {
            assert!(parse_date("birth_date", bad).is_err(), "{bad}");
        }
        let now = OffsetDateTime::now_utc();
        assert_eq!(from_timestamp("t", &timestamp(now)).expect("ts"), now);
        assert!(from_timestamp("t", &prost_types::Timestamp { seconds: 0, nanos: -1 }).is_err());
        assert!(from_timestamp("t", &prost_types::Timestamp { seconds: -377_705_116_800, nanos: 0 }).is_err(), "before PostgreSQL's range");
        assert!(check_etag("", 3).is_ok() && check_etag("v3", 3).is_ok() && check_etag("v2", 3).is_err());
    }
}
