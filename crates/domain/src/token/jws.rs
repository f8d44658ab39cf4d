//! Compact JWS encoding and strict decoding.
//!
//! Decoding accepts exactly one spelling of a token: three segments of
//! canonical, unpadded base64url. Anything else is malformed before any
//! cryptography runs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey};

use super::claims::{Claims, Header};

pub const ALG: &str = "EdDSA";

/// A token split into its parts, signature not yet checked.
pub struct Parsed<'a> {
    pub header: Header,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub payload_b64: &'a str,
    pub signature: Signature,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Canonical unpadded base64url only: the engine refuses padding,
/// characters outside the URL alphabet and non-zero trailing bits.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, Malformed> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Malformed("segment is not canonical base64url"))
}

pub fn sign(claims: &Claims, kid: &str, key: &SigningKey) -> String {
    let header = Header {
        alg: ALG.into(),
        kid: kid.into(),
        typ: Some("JWT".into()),
    };
    // Serialising these plain structs cannot fail.
    let header_json = serde_json::to_vec(&header).unwrap_or_default();
    let claims_json = serde_json::to_vec(claims).unwrap_or_default();
    let mut token = format!("{}.{}", b64(&header_json), b64(&claims_json));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64(&signature.to_bytes()));
    token
}

pub fn split(token: &str) -> Result<Parsed<'_>, Malformed> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed("a token has exactly three segments"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(Malformed("empty segment"));
    }
    let header: Header = serde_json::from_slice(&b64_decode(h)?)
        .map_err(|_| Malformed("header is not the expected JSON object"))?;
    let sig_bytes: [u8; 64] = b64_decode(s)?
        .try_into()
        .map_err(|_| Malformed("signature is not 64 bytes"))?;
    Ok(Parsed {
        header,
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        payload_b64: p,
        signature: Signature::from_bytes(&sig_bytes),
    })
}

pub fn decode_claims(payload_b64: &str) -> Result<Claims, Malformed> {
    serde_json::from_slice(&b64_decode(payload_b64)?)
        .map_err(|_| Malformed("claims are missing, duplicated, unknown or of the wrong type"))
}
