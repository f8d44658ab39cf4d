//! Reading signature headers: size limit, character set, prefixes, hex
//! and timestamps.
//!
//! Every header is refused above [`MAX_HEADER_BYTES`] before it is parsed,
//! so no input can make the parsers do unbounded work, and only printable
//! ASCII is accepted: every format we read is ASCII, and anything else is
//! a sign of tampering or a confused proxy.

use super::error::WebhookError;
use crate::clock::UnixTime;

/// No signature header we read comes near this; longer values are refused
/// as malformed rather than parsed.
pub const MAX_HEADER_BYTES: usize = 1024;

/// Read access to a request's headers. Names are matched ASCII
/// case-insensitively; when a header occurs more than once the first value
/// is returned, as `http::HeaderMap::get` does.
pub trait HeaderLookup {
    fn header(&self, name: &str) -> Option<&[u8]>;
}

impl HeaderLookup for Vec<(&str, &[u8])> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        first_match(self.iter().map(|(n, v)| (*n, *v)), name)
    }
}

impl<const N: usize> HeaderLookup for [(&str, &[u8]); N] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        first_match(self.iter().map(|(n, v)| (*n, *v)), name)
    }
}

impl HeaderLookup for Vec<(String, Vec<u8>)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        first_match(self.iter().map(|(n, v)| (n.as_str(), v.as_slice())), name)
    }
}

fn first_match<'a>(
    mut pairs: impl Iterator<Item = (&'a str, &'a [u8])>,
    name: &str,
) -> Option<&'a [u8]> {
    pairs
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The header's value as text with surrounding blanks removed, `None` when
/// absent.
pub(crate) fn optional_header<'h>(
    headers: &'h dyn HeaderLookup,
    name: &str,
) -> Result<Option<&'h str>, WebhookError> {
    let Some(raw) = headers.header(name) else {
        return Ok(None);
    };
    if raw.len() > MAX_HEADER_BYTES {
        return Err(WebhookError::malformed(name, "longer than 1024 bytes"));
    }
    if !raw
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t')
    {
        return Err(WebhookError::malformed(name, "not printable ASCII"));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| WebhookError::malformed(name, "not printable ASCII"))?;
    Ok(Some(text.trim_matches([' ', '\t'])))
}

pub(crate) fn required_header<'h>(
    headers: &'h dyn HeaderLookup,
    name: &str,
) -> Result<&'h str, WebhookError> {
    optional_header(headers, name)?.ok_or_else(|| WebhookError::MissingHeader(name.to_string()))
}

/// `value` must be `prefix` followed by exactly `N` bytes in hex (either
/// case); a truncated or padded digest is refused, not compared.
pub(crate) fn prefixed_hex<const N: usize>(value: &str, prefix: &str) -> Option<[u8; N]> {
    let digits = value.strip_prefix(prefix)?;
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

/// Unix seconds as plain decimal digits: no sign, no spaces, no fraction.
/// Twelve digits reach past the year 30000, so nothing real is refused.
pub(crate) fn unix_seconds(text: &str) -> Option<UnixTime> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_names_match_case_insensitively_and_first_value_wins() {
        let h = [
            ("x-hub-signature-256", b"one".as_slice()),
            ("X-Hub-Signature-256", b"two"),
        ];
        assert_eq!(h.header("X-HUB-SIGNATURE-256"), Some(b"one".as_slice()));
        assert_eq!(h.header("X-Hub-Signature"), None);
    }

    #[test]
    fn header_over_1024_bytes_is_refused_as_malformed() {
        let long = "a".repeat(MAX_HEADER_BYTES + 1);
        let h = vec![("X-Signature", long.as_bytes())];
        let err = required_header(&h, "X-Signature").unwrap_err();
        assert_eq!(err.code(), "malformed_header");
        let exact = "a".repeat(MAX_HEADER_BYTES);
        let h = vec![("X-Signature", exact.as_bytes())];
        assert!(required_header(&h, "X-Signature").is_ok());
    }

    #[test]
    fn control_and_non_ascii_bytes_are_refused() {
        for bad in [b"abc\r\n".as_slice(), b"\x00", "é".as_bytes()] {
            let h = vec![("X-Signature", bad)];
            assert_eq!(
                required_header(&h, "X-Signature").unwrap_err().code(),
                "malformed_header"
            );
        }
    }

    #[test]
    fn surrounding_blanks_are_trimmed_and_absence_is_missing_header() {
        let h = vec![("X-Signature", b"  v \t".as_slice())];
        assert_eq!(required_header(&h, "X-Signature").unwrap(), "v");
        let err = required_header(&h, "X-Other").unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader("X-Other".into()));
    }

    #[test]
    fn prefixed_hex_needs_the_exact_prefix_and_length() {
        assert_eq!(
            prefixed_hex::<2>("sha256=abCD", "sha256="),
            Some([0xab, 0xcd])
        );
        assert_eq!(prefixed_hex::<2>("SHA256=abcd", "sha256="), None);
        assert_eq!(prefixed_hex::<2>("sha256=abc", "sha256="), None);
        assert_eq!(prefixed_hex::<2>("sha256=abcdef", "sha256="), None);
        assert_eq!(prefixed_hex::<2>("sha256=zzzz", "sha256="), None);
        assert_eq!(prefixed_hex::<2>("abcd", ""), Some([0xab, 0xcd]));
    }

    #[test]
    fn unix_seconds_are_plain_digits_only() {
        assert_eq!(unix_seconds("1531420618"), Some(1_531_420_618));
        assert_eq!(unix_seconds("999999999999"), Some(999_999_999_999));
        for bad in ["", "-1", "+1", " 1", "1.5", "1e9", "9999999999999"] {
            assert_eq!(unix_seconds(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn prefix_and_hex_parsing_never_panics(s in "\\PC{0,200}", p in "\\PC{0,10}") {
            let _ = prefixed_hex::<32>(&s, &p);
            let _ = prefixed_hex::<64>(&s, "sha256=");
            let _ = unix_seconds(&s);
        }

        #[test]
        fn header_reading_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..1100)) {
            let h = vec![("X-Signature", raw.as_slice())];
            if let Ok(v) = required_header(&h, "x-signature") {
                prop_assert!(v.len() <= MAX_HEADER_BYTES);
            }
        }
    }
}
