//! Per-job (or per-agent) host allow lists: `allow_hosts` entries.
//!
//! Decides whether a job may talk to a host at all, on top of (never
//! instead of) the address check. Entries are:
//! - `"*"`: any host;
//! - `"*.suffix"`: any name strictly below `suffix` (`a.suffix`,
//!   `b.a.suffix`), never `suffix` itself and never `evilsuffix`;
//! - anything else: that exact host.
//!
//! Both sides compare case-insensitively, ignoring one trailing dot and
//! the brackets of an IPv6 literal. A wildcard only ever matches DNS names:
//! `*.0.1` does not open a range of IPv4 addresses. Pass the host in its
//! normal form ([`super::Host`]'s `Display`), so that `127.1` and
//! `127.0.0.1` cannot be told apart by spelling. An empty list allows
//! nothing; the proxy fills it with the hosts the job's secrets name.

use std::borrow::Cow;
use std::net::IpAddr;

/// Lower case, one trailing dot and IPv6 brackets removed.
fn normalise(host: &str) -> Cow<'_, str> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

fn entry_matches(entry: &str, host: &str, host_is_ip: bool) -> bool {
    if entry == "*" {
        return true;
    }
    let entry = normalise(entry);
    match entry.strip_prefix("*.") {
        Some(suffix) => {
            !host_is_ip
                && !suffix.is_empty()
                && !suffix.contains('*')
                && host
                    .strip_suffix(suffix)
                    .and_then(|prefix| prefix.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty())
        }
        None => entry == host,
    }
}

/// Whether `host` is allowed by `list` (see the module doc).
pub fn host_allowed<S: AsRef<str>>(list: &[S], host: &str) -> bool {
    let host = normalise(host);
    if host.is_empty() {
        return false;
    }
    let host_is_ip = host.parse::<IpAddr>().is_ok();
    list.iter()
        .any(|entry| entry_matches(entry.as_ref(), &host, host_is_ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard() {
        let list = [
            "api.github.com",
            "*.example.com",
            "10.0.0.5",
            "[2606:4700::1111]",
        ];
        for (host, want) in [
            ("api.github.com", true),
            ("API.GitHub.com.", true),
            ("github.com", false),
            ("x.api.github.com", false),
            ("a.example.com", true),
            ("b.a.EXAMPLE.com.", true),
            ("example.com", false),
            ("evilexample.com", false),
            ("a.evilexample.com", false),
            (".example.com", false),
            ("example.com.evil", false),
            ("10.0.0.5", true),
            ("10.0.0.6", false),
            ("2606:4700::1111", true),
            ("[2606:4700::1111]", true),
            ("", false),
        ] {
            assert_eq!(host_allowed(&list, host), want, "{host}");
        }
    }

    #[test]
    fn star_allows_any_and_empty_allows_none() {
        assert!(host_allowed(&["*"], "anything.example"));
        assert!(host_allowed(&["*"], "8.8.8.8"));
        assert!(!host_allowed::<&str>(&[], "anything.example"));
    }

    #[test]
    fn wildcards_never_match_addresses_or_odd_patterns() {
        assert!(!host_allowed(&["*.0.0.1"], "127.0.0.1"));
        assert!(!host_allowed(&["*.1"], "10.0.0.1"));
        assert!(!host_allowed(&["*."], "a.b"));
        assert!(!host_allowed(&["*.*.com"], "a.b.com"));
        assert!(!host_allowed(&["*example.com"], "aexample.com"));
        assert!(host_allowed(&["*.Example.COM."], "a.example.com"));
    }
}
