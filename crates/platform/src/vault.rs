//! Personal identifiers at rest (intake's phones, emails and document numbers, grants' payment
//! accounts) are sealed with AES-256-GCM
//! under a key named by id (so keys rotate: the first configured key seals, every configured key
//! opens), and found through keyed HMAC-SHA-256 lookup hashes. The associated data binds each
//! ciphertext to its record and field, so a ciphertext copied to another row does not open.

use crate::ServiceError;
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce, aead::Aead as _, aead::Payload};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;
use uuid::Uuid;

const NONCE_LEN: usize = 12;

/// The keys of the personal-data vault.
#[derive(Clone)]
pub struct Vault {
    keys: Vec<(String, Aes256Gcm)>,
    lookup_key: Vec<u8>,
    pseudonym_key: Vec<u8>,
}

/// Which identifier a lookup hash is for: hashes of different kinds never collide.
#[derive(Clone, Copy, Debug)]
pub enum Lookup {
    /// A phone in E.164.
    Phone,
    /// A document: `type:NUMBER`.
    Document,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn internal(what: &str) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("personal data: {what}"))
}

impl Vault {
    /// From the configured keys (the first seals) and hash key, for `service`. Lookup hashes and
    /// pseudonyms use separate keys derived from it per service, so an export's pseudonyms reveal
    /// nothing about lookups and one service's hashes mean nothing to another.
    pub fn new(service: &str, keys: &[(String, [u8; 32])], hash_key: &[u8]) -> Self {
        Self {
            keys: keys.iter().map(|(id, key)| (id.clone(), Aes256Gcm::new(key.into()))).collect(),
            lookup_key: mac(hash_key, &[format!("work4life {service} lookup").as_bytes()]),
            pseudonym_key: mac(hash_key, &[format!("work4life {service} pseudonym").as_bytes()]),
        }
    }

    /// The id of the key that seals now.
    pub fn current_key_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id.as_str())
    }

    /// Seals `plain` for `field` of record `id` with the current key: nonce ‖ ciphertext.
    pub fn seal(&self, id: Uuid, field: &str, plain: &str) -> Result<Vec<u8>, ServiceError> {
        let (_, cipher) = self.keys.first().ok_or_else(|| internal("no key configured"))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = [id.as_bytes().as_slice(), field.as_bytes()].concat();
        let sealed =
            cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: &aad }).map_err(|_| internal("seal"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`Vault::seal`] sealed under key `key_id`.
    pub fn open(&self, key_id: &str, id: Uuid, field: &str, sealed: &[u8]) -> Result<String, ServiceError> {
        let (_, cipher) = self.keys.iter().find(|(k, _)| k == key_id).ok_or_else(|| internal("a record's key is no longer configured"))?;
        if sealed.len() < NONCE_LEN {
            return Err(internal("truncated ciphertext"));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = [id.as_bytes().as_slice(), field.as_bytes()].concat();
        let plain = cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: &aad }).map_err(|_| internal("open"))?;
        String::from_utf8(plain).map_err(|_| internal("not UTF-8"))
    }

    /// The keyed hash that finds a record by an identifier without storing it.
    pub fn lookup(&self, kind: Lookup, value: &str) -> Vec<u8> {
        let kind = match kind {
            Lookup::Phone => b"phone".as_slice(),
            Lookup::Document => b"document".as_slice(),
        };
        mac(&self.lookup_key, &[kind, value.as_bytes()])
    }

    /// A keyed digest of a request, for idempotency records: a plain hash of a request holding
    /// a phone or a document number could be reversed by trying candidates.
    pub fn request_digest(&self, request: &[u8]) -> Vec<u8> {
        mac(&self.lookup_key, &[b"request", request])
    }

    /// The stable pseudonym of a record in donor exports.
    pub fn pseudonym(&self, id: Uuid) -> String {
        format!("p-{}", hex::encode(&mac(&self.pseudonym_key, &[id.as_bytes()])[..12]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(keys: &[(&str, u8)]) -> Vault {
        let keys: Vec<(String, [u8; 32])> = keys.iter().map(|(id, b)| ((*id).to_string(), [*b; 32])).collect();
        Vault::new("intake", &keys, b"hash key of at least thirty-two bytes")
    }

    #[test]
    fn sealed_values_open_only_for_their_record_and_field() {
        let v = vault(&[("k1", 1)]);
        let id = Uuid::now_v7();
        let sealed = v.seal(id, "document", "AB123456").expect("seal");
        assert!(!sealed.windows(8).any(|w| w == b"AB123456"), "no clear text in the ciphertext");
        assert_eq!(v.open("k1", id, "document", &sealed).expect("open"), "AB123456");
        assert!(v.open("k1", Uuid::now_v7(), "document", &sealed).is_err(), "moved to another record");
        assert!(v.open("k1", id, "phone", &sealed).is_err(), "moved to another field");
        assert_ne!(sealed, v.seal(id, "document", "AB123456").expect("seal"), "a fresh nonce each time");
    }

    #[test]
    fn rotated_keys_still_open_old_values() {
        let old = vault(&[("k1", 1)]);
        let id = Uuid::now_v7();
        let sealed = old.seal(id, "phone", "+212612345678").expect("seal");
        let rotated = vault(&[("k2", 2), ("k1", 1)]);
        assert_eq!(rotated.current_key_id(), "k2");
        assert_eq!(rotated.open("k1", id, "phone", &sealed).expect("open"), "+212612345678");
        assert!(vault(&[("k2", 2)]).open("k1", id, "phone", &sealed).is_err(), "a removed key opens nothing");
    }

    #[test]
    fn lookups_are_keyed_and_kinds_do_not_collide() {
        let v = vault(&[("k1", 1)]);
        assert_eq!(v.lookup(Lookup::Phone, "+212612345678"), v.lookup(Lookup::Phone, "+212612345678"));
        assert_ne!(v.lookup(Lookup::Phone, "x"), v.lookup(Lookup::Document, "x"));
        let other = Vault::new("intake", &[("k1".into(), [1; 32])], b"another hash key, also long enough");
        assert_ne!(v.lookup(Lookup::Phone, "x"), other.lookup(Lookup::Phone, "x"));
        let id = Uuid::now_v7();
        assert_eq!(v.pseudonym(id), v.pseudonym(id));
        assert!(!v.pseudonym(id).contains(&id.simple().to_string()));
    }
}
