//! AIP-158 pagination: `page_size` with a default and a maximum, and opaque `page_token`s that
//! carry the last row's keyset position (never an OFFSET). A token is MAC-signed and bound to the
//! list's filter: a token tampered with, forged, or used with another filter is refused with
//! INVALID_ARGUMENT on `page_token`.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// Page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page; larger requests are served this many (AIP-158 coerces, it does not refuse).
pub const MAX_PAGE_SIZE: u32 = 500;
const MAC_LEN: usize = 16;

/// The page size to serve for a requested `page_size`.
pub fn page_size(requested: i32) -> Result<u32, ServiceError> {
    match requested {
        n if n < 0 => Err(ServiceError::invalid("page_size", "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u32).min(MAX_PAGE_SIZE)),
    }
}

/// Signs and checks page tokens with the deployment's page-token key.
#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

#[derive(Serialize, serde::Deserialize)]
struct Payload<K> {
    /// First bytes of SHA-256 of the filter, hex.
    f: String,
    /// The keyset position after which the next page starts.
    k: K,
}

impl PageTokens {
    /// Uses `key` (at least 32 bytes in production; see `W4L_PAGE_TOKEN_KEY`).
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// A token for the page after `last_key`, valid only with the same `filter`. The filter is a
    /// canonical rendering of every request field that shapes the list except the page fields
    /// (`"zone=tanger;status=active;order=name"`), prefixed by the method.
    pub fn encode<K: Serialize>(&self, filter: &str, last_key: &K) -> String {
        let payload = Payload { f: filter_digest(filter), k: last_key };
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let mac = self.mac(&body);
        let mut token = URL_SAFE_NO_PAD.encode(&body);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(mac));
        token
    }

    /// The keyset position of `token`, `None` for the first page (empty token).
    pub fn decode<K: DeserializeOwned>(&self, token: &str, filter: &str) -> Result<Option<K>, ServiceError> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || ServiceError::invalid("page_token", "is not a page token of this list; start again without it");
        let (body, mac) = token.split_once('.').ok_or_else(invalid)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid())?;
        if mac.len() != MAC_LEN {
            return Err(invalid());
        }
        let mut check = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| invalid())?;
        check.update(&body);
        check.verify_truncated_left(&mac).map_err(|_| invalid())?;
        let payload: Payload<K> = serde_json::from_slice(&body).map_err(|_| invalid())?;
        if payload.f != filter_digest(filter) {
            return Err(ServiceError::invalid(
                "page_token",
                "was issued for a different filter or order; keep the same request fields while paging",
            ));
        }
        Ok(Some(payload.k))
    }

    fn mac(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_hmac());
        mac.update(body);
        mac.finalize().into_bytes()[..MAC_LEN].to_vec()
    }
}

// HMAC accepts keys of any length, so construction cannot fail.
fn unreachable_hmac() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(b"k").unwrap_or_else(|_| unreachable!("hmac takes any key length"))
}

fn filter_digest(filter: &str) -> String {
    hex::encode(&Sha256::digest(filter.as_bytes())[..12])
}

/// Splits `rows` (fetched with `LIMIT page_size + 1`) into the page and the next token.
pub fn next_page<T, K: Serialize>(
    mut rows: Vec<T>,
    page_size: u32,
    tokens: &PageTokens,
    filter: &str,
    key_of: impl Fn(&T) -> K,
) -> (Vec<T>, String) {
    if rows.len() as u64 <= u64::from(page_size) {
        return (rows, String::new());
    }
    rows.truncate(page_size as usize);
    let token = rows.last().map(|last| tokens.encode(filter, &key_of(last))).unwrap_or_default();
    (rows, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PageTokens {
        PageTokens::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn round_trip_with_same_filter() {
        let t = tokens().encode("zone=tanger", &("Amina".to_string(), 42i64));
        let k: Option<(String, i64)> = tokens().decode(&t, "zone=tanger").expect("valid");
        assert_eq!(k, Some(("Amina".into(), 42)));
    }

    #[test]
    fn other_filter_is_refused() {
        let t = tokens().encode("zone=tanger", &1i64);
        let err = tokens().decode::<i64>(&t, "zone=oujda").expect_err("other filter");
        assert!(matches!(err, ServiceError::InvalidArgument(ref v) if v[0].field == "page_token"));
    }

    #[test]
    fn tampered_or_forged_tokens_are_refused() {
        let t = tokens().encode("f", &10i64);
        let (body, mac) = t.split_once('.').expect("dot");
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Payload { f: filter_digest("f"), k: 11i64 }).expect("json"));
        for bad in [format!("{forged_body}.{mac}"), format!("{body}.AAAA"), "garbage".into(), format!("{body}x.{mac}")] {
            assert!(tokens().decode::<i64>(&bad, "f").is_err(), "{bad}");
        }
        let other_key = PageTokens::new(b"another key of thirty two bytes!".to_vec());
        assert!(other_key.decode::<i64>(&t, "f").is_err());
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(page_size(0).expect("0"), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(7).expect("7"), 7);
        assert_eq!(page_size(100_000).expect("big"), MAX_PAGE_SIZE);
        assert!(page_size(-1).is_err());
    }
}
