//! Parsing the master key from its text form (environment or key file).
//! Every error says what is wrong with the key and never echoes it.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::crypto::SymmetricKey;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MasterKeyError {
    #[error("the master key is empty")]
    Empty,
    #[error("the master key is neither hex nor base64 text")]
    Undecodable,
    #[error("the master key decodes to {0} bytes; exactly 32 bytes are required")]
    WrongLength(usize),
    #[error("the master key is one byte repeated 32 times; use random bytes (e.g. `openssl rand -base64 32`)")]
    Degenerate,
}

/// Accepts 64 hex digits or base64 (standard or URL-safe, padded or not)
/// of exactly 32 bytes. Surrounding whitespace is ignored.
pub fn parse_master_key(text: &str) -> Result<SymmetricKey, MasterKeyError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(MasterKeyError::Empty);
    }
    let decoded: Zeroizing<Vec<u8>> = Zeroizing::new(
        decode_hex(t)
            .or_else(|| {
                [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                    .iter()
                    .find_map(|engine| engine.decode(t).ok())
            })
            .ok_or(MasterKeyError::Undecodable)?,
    );
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| MasterKeyError::WrongLength(decoded.len()))?;
    if bytes.iter().all(|b| *b == bytes[0]) {
        return Err(MasterKeyError::Degenerate);
    }
    Ok(SymmetricKey::from_bytes(bytes))
}

fn decode_hex(t: &str) -> Option<Vec<u8>> {
    if t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).ok()
    } else {
        None
    }
}

/// The text written to a freshly created key file.
pub fn encode_master_key(key: &SymmetricKey) -> Zeroizing<String> {
    Zeroizing::new(format!("{}\n", STANDARD.encode(key.expose())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn hex_and_base64_forms_give_the_same_key() {
        let from_hex = parse_master_key(HEX).unwrap();
        let b64 = STANDARD.encode(from_hex.expose());
        let from_b64 = parse_master_key(&format!("  {b64}\n")).unwrap();
        assert_eq!(from_hex.expose(), from_b64.expose());
        let url = URL_SAFE_NO_PAD.encode(from_hex.expose());
        assert_eq!(parse_master_key(&url).unwrap().expose(), from_hex.expose());
        let round = encode_master_key(&from_hex);
        assert_eq!(
            parse_master_key(&round).unwrap().expose(),
            from_hex.expose()
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echo() {
        let cases = [
            ("", MasterKeyError::Empty),
            ("not a key at all!", MasterKeyError::Undecodable),
            (&HEX[..62], MasterKeyError::WrongLength(31)),
            ("c2hvcnQ=", MasterKeyError::WrongLength(5)),
            (&"ab".repeat(32), MasterKeyError::Degenerate),
            (&"00".repeat(32), MasterKeyError::Degenerate),
        ];
        for (input, want) in cases {
            let err = parse_master_key(input).unwrap_err();
            assert_eq!(err, want, "{input:?}");
            if !input.is_empty() {
                assert!(!err.to_string().contains(input), "error echoed the key");
            }
        }
    }
}
