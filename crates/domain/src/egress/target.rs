//! Parsing an egress target (`host`, `host:port`, `[v6]:port`) into one
//! normal form.
//!
//! Every later decision (allow lists, placeholder bindings, the address
//! check) compares this normal form, so two spellings of one host must end
//! up equal and nothing ambiguous may get through: a host is either an IP
//! literal or a DNS name, never "a name that a resolver will read as an
//! address". Hence:
//! - a host whose last label starts with a digit must be an IPv4 literal in
//!   one of the `inet_aton` forms (`ipv4_legacy.rs`), or it is malformed;
//! - IPv6 must be bracketed (`::1:443` is ambiguous), the zone id
//!   (`%eth0`, URL-encoded `%25eth0`) is dropped;
//! - names are lower-cased, lose one trailing dot, must be ASCII (punycode
//!   is the caller's job) and follow the label grammar (letters, digits,
//!   `-` and `_`; 1 to 63 bytes a label, no `-` at either end; at most 253
//!   bytes in all);
//! - the port, explicit or default, is 1 to 65535.
//!
//! Any error here is a malformed request (`400`), not a refusal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::ipv4_legacy;

/// Longest input we look at; a real authority is far shorter.
pub const MAX_TARGET_LEN: usize = 512;
/// Longest DNS name, without the trailing dot (RFC 1035).
pub const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;
const MAX_ZONE_LEN: usize = 64;

/// Why a target could not be parsed. Every variant means `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TargetError {
    #[error("empty host")]
    EmptyHost,
    #[error("target longer than {MAX_TARGET_LEN} bytes")]
    TooLong,
    #[error("non-ASCII host; send the punycode (xn--) form")]
    NonAscii,
    #[error("port must be a number from 1 to 65535")]
    BadPort,
    #[error("host looks like an IPv4 address but is not a valid one")]
    MalformedIpv4,
    #[error("malformed bracketed IPv6 address")]
    MalformedIpv6,
    #[error("IPv6 address must be in brackets")]
    UnbracketedIpv6,
    #[error("host is not a valid DNS name")]
    BadName,
}

/// A normalised DNS name: lower case, no trailing dot, grammar checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsName(String);

impl DnsName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `localhost` or any name under `.localhost` (RFC 6761).
    pub fn is_localhost(&self) -> bool {
        self.0 == "localhost" || self.0.ends_with(".localhost")
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host of a target after normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal, as written once legacy IPv4 forms are read and the
    /// zone id is dropped (an IPv4-mapped address stays IPv6 here; the
    /// check canonicalises it).
    Ip(IpAddr),
    Name(DnsName),
}

impl fmt::Display for Host {
    /// Bare form, without brackets: what allow lists compare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Name(name) => name.fmt(f),
        }
    }
}

/// A parsed target: normalised host and a port in 1..=65535.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    host: Host,
    port: u16,
}

impl Target {
    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Target {
    /// `host:port`, IPv6 in brackets; parses back to the same target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            Host::Ip(IpAddr::V4(_)) | Host::Name(_) => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// Parses `host`, `host:port`, `[v6]` or `[v6]:port` (a `CONNECT`
/// authority, a `Host` header, a relay path segment). `default_port` is
/// used when none is given and must itself be valid.
pub fn parse_target(input: &str, default_port: u16) -> Result<Target, TargetError> {
    if input.len() > MAX_TARGET_LEN {
        return Err(TargetError::TooLong);
    }
    if !input.is_ascii() {
        return Err(TargetError::NonAscii);
    }
    let (host, port) = match input.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']').ok_or(TargetError::MalformedIpv6)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(TargetError::MalformedIpv6)?),
            };
            (Host::Ip(IpAddr::V6(parse_bracketed_v6(inside)?)), port)
        }
        None => {
            let (host, port) = match input.split_once(':') {
                Some((_, port)) if port.contains(':') => return Err(TargetError::UnbracketedIpv6),
                Some((host, port)) => (host, Some(port)),
                None => (input, None),
            };
            (parse_plain_host(host)?, port)
        }
    };
    let port = match port {
        Some(p) => parse_port(p)?,
        None if default_port != 0 => default_port,
        None => return Err(TargetError::BadPort),
    };
    Ok(Target { host, port })
}

/// Decimal digits only (leading zeros allowed, as URL parsers do), 1..=65535.
fn parse_port(s: &str) -> Result<u16, TargetError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TargetError::BadPort);
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(TargetError::BadPort);
    }
    match digits.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        Ok(_) | Err(_) => Err(TargetError::BadPort),
    }
}

/// `v6` or `v6%zone`; the zone is checked for shape and dropped.
fn parse_bracketed_v6(inside: &str) -> Result<Ipv6Addr, TargetError> {
    let addr = match inside.split_once('%') {
        Some((addr, zone)) => {
            let zone_ok = (1..=MAX_ZONE_LEN).contains(&zone.len())
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !zone_ok {
                return Err(TargetError::MalformedIpv6);
            }
            addr
        }
        None => inside,
    };
    addr.parse().map_err(|_| TargetError::MalformedIpv6)
}

fn parse_plain_host(host: &str) -> Result<Host, TargetError> {
    let lower = host.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(TargetError::EmptyHost);
    }
    if ipv4_legacy::looks_numeric(name) {
        return ipv4_legacy::parse(name)
            .map(|v4: Ipv4Addr| Host::Ip(IpAddr::V4(v4)))
            .ok_or(TargetError::MalformedIpv4);
    }
    if name.len() > MAX_NAME_LEN || !name.split('.').all(label_ok) {
        return Err(TargetError::BadName);
    }
    Ok(Host::Name(DnsName(name.to_owned())))
}

/// One lower-case label: `[a-z0-9_-]{1,63}`, not starting or ending in `-`.
fn label_ok(label: &str) -> bool {
    (1..=MAX_LABEL_LEN).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        parse_target(s, 443).unwrap()
    }

    #[test]
    fn normalises_names() {
        let t = target("API.GitHub.COM.:8443");
        assert_eq!(t.host(), &Host::Name(DnsName("api.github.com".into())));
        assert_eq!(t.port(), 8443);
        assert_eq!(t.to_string(), "api.github.com:8443");
    }

    #[test]
    fn reads_literals() {
        assert_eq!(target("0x7f.1").to_string(), "127.0.0.1:443");
        assert_eq!(target("[FE80::1%25eth0]:80").to_string(), "[fe80::1]:80");
        assert_eq!(
            target("[::FFFF:127.0.0.1]").to_string(),
            "[::ffff:127.0.0.1]:443"
        );
    }

    #[test]
    fn ports() {
        assert_eq!(target("a.example:00080").port(), 80);
        assert_eq!(target("a.example:65535").port(), 65535);
        for s in [
            "a.example:0",
            "a.example:65536",
            "a.example:",
            "a.example:+1",
            "a.example:99999999999",
        ] {
            assert_eq!(parse_target(s, 443), Err(TargetError::BadPort), "{s}");
        }
        assert_eq!(parse_target("a.example", 0), Err(TargetError::BadPort));
    }

    #[test]
    fn name_grammar() {
        let label63 = "a".repeat(63);
        assert!(parse_target(&format!("{label63}.example"), 443).is_ok());
        let label64 = "a".repeat(64);
        assert_eq!(
            parse_target(&format!("{label64}.example"), 443),
            Err(TargetError::BadName)
        );
        let long = vec!["abcdefghi"; 26].join("."); // 26*10-1 = 259 bytes
        assert_eq!(parse_target(&long, 443), Err(TargetError::BadName));
        let max = format!("{}.{}", "a".repeat(63), vec!["abcdefghi"; 19].join("."));
        assert_eq!(max.len(), 253);
        assert!(parse_target(&max, 443).is_ok());
        assert!(parse_target(&format!("{max}."), 443).is_ok());
        assert_eq!(
            parse_target(&"a".repeat(600), 443),
            Err(TargetError::TooLong)
        );
    }
}
