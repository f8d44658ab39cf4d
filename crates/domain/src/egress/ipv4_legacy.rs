//! IPv4 literals exactly as the C library's `inet_aton` reads them.
//!
//! Resolvers, `curl` and many HTTP clients hand a host to `inet_aton`
//! before they try DNS, so `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1`
//! all reach 127.0.0.1. If we read these strings differently from the code
//! that finally connects, an attacker gets a literal that we call a name
//! (or a public address) and the socket calls loopback. So this module
//! copies glibc's rules, and [`looks_numeric`] decides which hosts must be
//! read this way (and are refused when they do not parse) instead of being
//! treated as DNS names.
//!
//! The rules (glibc `inet_aton_end`, with `strtoul(.., 0)` per part):
//! - 1 to 4 parts separated by `.`, none empty;
//! - each part starts with a digit; `0x`/`0X` then at least one hex digit is
//!   hexadecimal, another leading `0` is octal (so `08` is invalid), anything
//!   else is decimal; any number of leading zeros;
//! - every part but the last is at most 255; the last fills the remaining
//!   bytes: `a` (32 bits), `a.b` (24), `a.b.c` (16), `a.b.c.d` (8).
//!
//! glibc also accepts trailing whitespace and garbage after it; we never
//! do (the caller refuses such a host as malformed).

use std::net::Ipv4Addr;

/// Whether `host` (lower-cased, trailing dot removed) must be an IPv4
/// literal: its last label starts with an ASCII digit.
///
/// This is wider than "`inet_aton` accepts it": every string `inet_aton`
/// accepts ends in a part that starts with a digit, and no top-level domain
/// starts with one, so a name like `foo.1a` can never be a public DNS name.
/// Treating all such hosts as attempted literals (refused when they do not
/// parse) leaves no string that we call a name and a resolver calls an
/// address.
pub(crate) fn looks_numeric(host: &str) -> bool {
    host.rsplit('.')
        .next()
        .and_then(|label| label.bytes().next())
        .is_some_and(|b| b.is_ascii_digit())
}

/// Reads one part the way `strtoul(part, .., 0)` does, requiring that the
/// whole part is consumed. `None` for anything `inet_aton` refuses,
/// including values above `u32::MAX`.
fn parse_part(part: &str) -> Option<u32> {
    let bytes = part.as_bytes();
    if !bytes.first()?.is_ascii_digit() {
        return None;
    }
    let (radix, digits) = match bytes {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
        _ => (10, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    for &b in digits {
        let digit = char::from(b).to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(digit)?;
    }
    Some(value)
}

/// Parses `host` as `inet_aton` would; `None` if it would refuse it.
pub(crate) fn parse(host: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u32; 4];
    let mut count = 0;
    for part in host.split('.') {
        let slot = parts.get_mut(count)?;
        *slot = parse_part(part)?;
        count += 1;
    }
    let (leading, last) = match count {
        1..=4 => (&parts[..count - 1], parts[count - 1]),
        _ => return None,
    };
    if leading.iter().any(|&p| p > 0xff) {
        return None;
    }
    // Bits left for the last part once the leading bytes are placed.
    let last_bits = 32 - 8 * u32::try_from(leading.len()).ok()?;
    if last_bits < 32 && last >> last_bits != 0 {
        return None;
    }
    let mut value = last;
    for (i, &p) in leading.iter().enumerate() {
        value |= p << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_legacy_forms_like_inet_aton() {
        for (s, want) in [
            ("127.0.0.1", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0X7F000001", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("0x7f.0.0x0.01", "127.0.0.1"),
            ("0000000000177.1", "127.0.0.1"),
            ("0000000000127.1", "87.0.0.1"),
            ("0x000000000007f.1", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("00", "0.0.0.0"),
            ("0x0", "0.0.0.0"),
            ("4294967295", "255.255.255.255"),
            ("0xffffffff", "255.255.255.255"),
            ("1.0xffffff", "1.255.255.255"),
            ("1.2.65535", "1.2.255.255"),
            ("10.0377.0xff.255", "10.255.255.255"),
        ] {
            assert_eq!(parse(s), Some(want.parse().unwrap()), "{s}");
        }
    }

    #[test]
    fn refuses_what_inet_aton_refuses() {
        for s in [
            "",
            ".",
            "1.",
            ".1",
            "1..1",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "1.2.65536",
            "1.16777216",
            "4294967296",
            "0x100000000",
            "99999999999999999999",
            "08",
            "09.1",
            "0x",
            "0x.1",
            "0xg",
            "1a",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.2.3.4 ",
            "x1",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn numeric_looking_hosts() {
        for s in ["1", "1.2.3.4.5", "a.1", "foo.1a", "0x7f", "example.0x1"] {
            assert!(looks_numeric(s), "{s}");
        }
        for s in ["", "example.com", "1.example", "0x7f.one", "a1"] {
            assert!(!looks_numeric(s), "{s}");
        }
    }
}
