//! The one AEAD module. Every value Gatehouse keeps encrypted (owner data
//! keys, secret values, signing keys) is sealed here with
//! XChaCha20-Poly1305 and associated data naming *what* the value is and
//! *whose* it is. A sealed row copied to another owner, another name or
//! another purpose therefore fails to open instead of decrypting.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// What a sealed value is. Part of the associated data, so a value sealed
/// for one purpose cannot be opened as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An owner's data key, wrapped by the master key. Context: owner.
    DataKey,
    /// A secret's value, under its owner's data key. Context: owner, name.
    SecretValue,
    /// A token-signing private key, under the master key. Context: kid.
    SigningKey,
    /// An inbound webhook's signing secret, under its owner's data key.
    /// Context: owner, hook id.
    HookSecret,
    /// What a held request must not show (a secret value), or what only
    /// its requester may read back (a minted token), under the owner's
    /// data key. Context: owner, approval id, part.
    ApprovalPayload,
    /// An upstream token Gatehouse holds (SPEC §8), under its owner's data
    /// key. Context: owner, upstream name, token id.
    UpstreamToken,
    /// The installation's egress CA private key (SPEC §6), under the
    /// master key. Context: generation, SHA-256 of its certificate (so a
    /// key does not open beside another row's certificate).
    EgressCaKey,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::DataKey => "gatehouse/v1/data-key",
            Purpose::SecretValue => "gatehouse/v1/secret-value",
            Purpose::SigningKey => "gatehouse/v1/signing-key",
            Purpose::HookSecret => "gatehouse/v1/hook-secret",
            Purpose::ApprovalPayload => "gatehouse/v1/approval-payload",
            Purpose::UpstreamToken => "gatehouse/v1/upstream-token",
            Purpose::EgressCaKey => "gatehouse/v1/egress-ca-key",
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open under this key and context")]
    Open,
}

/// A 256-bit symmetric key (master key or owner data key).
#[derive(Clone)]
pub struct SymmetricKey(Zeroizing<[u8; 32]>);

impl SymmetricKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn generate() -> Self {
        Self::from_bytes(crate::codes::random_array())
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short public identifier of the key, stored beside every value it
    /// seals so a rotated key ring can pick the right key. One-way and
    /// domain-separated: it reveals nothing usable about the key.
    pub fn key_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"gatehouse/v1/key-id\0");
        h.update(self.0.as_slice());
        hex::encode(&h.finalize()[..8])
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SymmetricKey(id={})", self.key_id())
    }
}

/// Associated data: the purpose label, then each context part
/// length-prefixed, so ("ab","c") and ("a","bc") never collide.
fn associated_data(purpose: Purpose, context: &[&str]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(64);
    ad.extend_from_slice(purpose.label().as_bytes());
    for part in context {
        ad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        ad.extend_from_slice(part.as_bytes());
    }
    ad
}

pub fn seal(key: &SymmetricKey, purpose: Purpose, context: &[&str], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let nonce_bytes: [u8; NONCE_LEN] = crate::codes::random_array();
    let ad = associated_data(purpose, context);
    // Encryption with a valid key and in-memory buffers cannot fail.
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce_bytes),
            Payload {
                msg: plaintext,
                aad: &ad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    out
}

pub fn open(
    key: &SymmetricKey,
    purpose: Purpose,
    context: &[&str],
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    let (version, rest) = sealed.split_first().ok_or(CryptoError::Malformed)?;
    if *version != FORMAT_V1 || rest.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let ad = associated_data(purpose, context);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &ad,
            },
        )
        .map(SecretBytes::new)
        .map_err(|_| CryptoError::Open)
}

/// Wraps a freshly generated owner data key under the master key.
pub fn wrap_data_key(master: &SymmetricKey, owner: &str, data_key: &SymmetricKey) -> Vec<u8> {
    seal(master, Purpose::DataKey, &[owner], data_key.expose())
}

pub fn unwrap_data_key(
    master: &SymmetricKey,
    owner: &str,
    wrapped: &[u8],
) -> Result<SymmetricKey, CryptoError> {
    let raw = open(master, Purpose::DataKey, &[owner], wrapped)?;
    let bytes: [u8; 32] = raw
        .expose()
        .try_into()
        .map_err(|_| CryptoError::Malformed)?;
    Ok(SymmetricKey::from_bytes(bytes))
}

/// SHA-256 with a domain label, for values stored only as digests
/// (one-time codes, audit hashes use their own canonical form).
pub fn labelled_digest(label: &str, value: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(value);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_with_its_own_context() {
        let k = SymmetricKey::generate();
        let sealed = seal(&k, Purpose::SecretValue, &["alice@x.org", "GH"], b"ghp_abc");
        let opened = open(&k, Purpose::SecretValue, &["alice@x.org", "GH"], &sealed).unwrap();
        assert_eq!(opened.expose(), b"ghp_abc");
        assert_eq!(
            open(&k, Purpose::SecretValue, &["bob@x.org", "GH"], &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            open(&k, Purpose::SecretValue, &["alice@x.org", "GH2"], &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            open(&k, Purpose::DataKey, &["alice@x.org", "GH"], &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            open(&k, Purpose::SecretValue, &["alice@x.orgGH"], &sealed),
            Err(CryptoError::Open)
        );
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        let k = SymmetricKey::generate();
        let mut sealed = seal(&k, Purpose::SigningKey, &["kid"], b"x");
        assert_eq!(
            open(
                &SymmetricKey::generate(),
                Purpose::SigningKey,
                &["kid"],
                &sealed
            ),
            Err(CryptoError::Open)
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            open(&k, Purpose::SigningKey, &["kid"], &sealed),
            Err(CryptoError::Open)
        );
        assert_eq!(
            open(&k, Purpose::SigningKey, &["kid"], &[1, 2, 3]),
            Err(CryptoError::Malformed)
        );
        assert_eq!(
            open(&k, Purpose::SigningKey, &["kid"], &[]),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn nonces_differ_between_seals() {
        let k = SymmetricKey::generate();
        assert_ne!(
            seal(&k, Purpose::DataKey, &["a"], b"v"),
            seal(&k, Purpose::DataKey, &["a"], b"v")
        );
    }

    #[test]
    fn data_keys_are_bound_to_their_owner() {
        let master = SymmetricKey::generate();
        let dk = SymmetricKey::generate();
        let wrapped = wrap_data_key(&master, "alice@x.org", &dk);
        assert_eq!(
            unwrap_data_key(&master, "alice@x.org", &wrapped)
                .unwrap()
                .expose(),
            dk.expose()
        );
        assert!(unwrap_data_key(&master, "bob@x.org", &wrapped).is_err());
    }

    #[test]
    fn key_debug_shows_only_the_id() {
        let k = SymmetricKey::from_bytes([7; 32]);
        let shown = format!("{k:?}");
        assert!(shown.contains(&k.key_id()));
        assert!(!shown.contains("07070707"));
    }
}
