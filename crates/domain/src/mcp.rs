//! The MCP gateway's rules (SPEC §13), with no I/O: which tools of an
//! upstream MCP server an agent may see and call, which of those wait for
//! a human, how the owner's secret is written into the upstream's auth
//! header, when plain `http` is acceptable, and what the audit log keeps
//! of a call's arguments (a digest, never the values).
//!
//! Tool rules are lists of `*` globs over tool names. A tool is reachable
//! only when a pattern of `allow` matches it; a reachable tool that a
//! pattern of `gated` also matches is held for approval (`mcp.tool`). A
//! `gated` pattern never makes a tool reachable on its own: what is not
//! allowed is neither listed nor called, held or not.

use std::net::SocketAddr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::egress::EgressPolicy;

/// A tool name or glob as an owner writes it: MCP's tool-name characters
/// plus `*`.
pub const TOOL_PATTERN_PATTERN: &str = "^[A-Za-z0-9_.*/-]{1,128}$";
/// At most this many patterns in each of `allow` and `gated`.
pub const MAX_TOOL_PATTERNS: usize = 100;
/// An HTTP header name (RFC 9110 token), as the upstream auth header.
pub const HEADER_NAME_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$";
/// The placeholder `format` must hold exactly once.
pub const VALUE_SLOT: &str = "{value}";
/// Longest `format`.
pub const FORMAT_MAX: usize = 200;

/// Why a server's rules are refused: names the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum McpRuleError {
    #[error("tools.{list} pattern {shown:?} is invalid: must match {TOOL_PATTERN_PATTERN}")]
    BadPattern { list: &'static str, shown: String },
    #[error("tools.{list} holds more than {MAX_TOOL_PATTERNS} patterns")]
    TooManyPatterns { list: &'static str },
    #[error("auth.header {shown:?} is invalid: must match {HEADER_NAME_PATTERN}")]
    BadHeader { shown: String },
    #[error("auth.header {0:?} is reserved: Gatehouse or the transport sets it")]
    ReservedHeader(String),
    #[error("auth.format must contain {VALUE_SLOT} exactly once, be at most {FORMAT_MAX} characters and hold no control characters")]
    BadFormat,
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (none included) and every other character for itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        // No `*`: the whole name must be the pattern.
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn validate_pattern(list: &'static str, p: &str) -> Result<(), McpRuleError> {
    let ok = (1..=128).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'*' | b'/' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(McpRuleError::BadPattern {
            list,
            shown: p.chars().take(64).collect(),
        })
    }
}

/// What an agent may do with one tool of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolAccess {
    /// Not allowed: not listed, a call is refused naming the tool.
    Hidden,
    /// Listed and forwarded.
    Allowed,
    /// Listed; a call sends nothing upstream and is held (`mcp.tool`).
    Gated,
}

/// An upstream's tool rules, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolRules {
    allow: Vec<String>,
    gated: Vec<String>,
}

impl ToolRules {
    pub fn new(allow: Vec<String>, gated: Vec<String>) -> Result<Self, McpRuleError> {
        for (list, patterns) in [("allow", &allow), ("gated", &gated)] {
            if patterns.len() > MAX_TOOL_PATTERNS {
                return Err(McpRuleError::TooManyPatterns { list });
            }
            for p in patterns {
                validate_pattern(list, p)?;
            }
        }
        Ok(Self { allow, gated })
    }

    pub fn allow(&self) -> &[String] {
        &self.allow
    }

    pub fn gated(&self) -> &[String] {
        &self.gated
    }

    /// The one decision for a tool name.
    pub fn access(&self, tool: &str) -> ToolAccess {
        if !self.allow.iter().any(|p| glob_matches(p, tool)) {
            ToolAccess::Hidden
        } else if self.gated.iter().any(|p| glob_matches(p, tool)) {
            ToolAccess::Gated
        } else {
            ToolAccess::Allowed
        }
    }
}

/// Headers the owner may not name as the upstream's auth header: the
/// transport's own, or ones that would change where or how the request
/// goes.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
];

/// How the owner's secret reaches the upstream: `header: format` with
/// `{value}` replaced by the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTemplate {
    header: String,
    format: String,
}

impl AuthTemplate {
    pub fn new(header: &str, format: &str) -> Result<Self, McpRuleError> {
        let header_ok = (1..=64).contains(&header.len())
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b));
        if !header_ok {
            return Err(McpRuleError::BadHeader {
                shown: header.chars().take(64).collect(),
            });
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(header))
        {
            return Err(McpRuleError::ReservedHeader(header.to_string()));
        }
        if format.matches(VALUE_SLOT).count() != 1
            || format.chars().count() > FORMAT_MAX
            || format.chars().any(char::is_control)
        {
            return Err(McpRuleError::BadFormat);
        }
        Ok(Self {
            header: header.to_ascii_lowercase(),
            format: format.to_string(),
        })
    }

    /// The header name, lower case.
    pub fn header(&self) -> &str {
        &self.header
    }

    pub fn format(&self) -> &str {
        &self.format
    }

    /// The header value with the secret in place; the caller keeps it in
    /// a zeroizing type. `None` when the secret holds a byte no header
    /// value may (a line break, a control character).
    pub fn render(&self, secret: &str) -> Option<String> {
        if secret.chars().any(char::is_control) {
            return None;
        }
        Some(self.format.replacen(VALUE_SLOT, secret, 1))
    }
}

/// Plain `http` to an upstream MCP server is accepted only when every
/// address it connects to is inside a range the operator allowed
/// (`egress.allow_private_cidrs`): a service on the operator's own
/// network. Anything on the public internet needs `https`.
pub fn plain_http_allowed(addrs: &[SocketAddr], policy: &EgressPolicy) -> bool {
    !addrs.is_empty()
        && addrs.iter().all(|a| {
            let ip = a.ip().to_canonical();
            policy.allow_private_cidrs.iter().any(|c| c.contains(ip))
        })
}

/// What the audit log keeps of a call's arguments: hex SHA-256 over a
/// domain tag and their canonical JSON (keys sorted), never the values.
pub fn arguments_digest(arguments: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse/v1/mcp-arguments\0");
    h.update(arguments.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::Cidr;
    use proptest::prelude::*;

    fn rules(allow: &[&str], gated: &[&str]) -> ToolRules {
        ToolRules::new(
            allow.iter().map(|s| s.to_string()).collect(),
            gated.iter().map(|s| s.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn globs_match_runs_of_any_characters() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("read_*", "read_file"));
        assert!(glob_matches("read_*", "read_"));
        assert!(!glob_matches("read_*", "xread_file"));
        assert!(glob_matches("*_file", "read_file"));
        assert!(glob_matches("a*b*c", "abc"));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(!glob_matches("a*b*c", "a-c-b"));
        assert!(!glob_matches("ab*ba", "aba"));
        assert!(glob_matches("search", "search"));
        assert!(!glob_matches("search", "search2"));
    }

    #[test]
    fn gated_wins_over_allowed_and_never_reaches_beyond_allow() {
        let r = rules(&["*"], &["delete_*"]);
        assert_eq!(r.access("read"), ToolAccess::Allowed);
        assert_eq!(r.access("delete_repo"), ToolAccess::Gated);
        let r = rules(&["read_*"], &["delete_*"]);
        assert_eq!(r.access("delete_repo"), ToolAccess::Hidden);
        assert_eq!(rules(&[], &["*"]).access("x"), ToolAccess::Hidden);
    }

    #[test]
    fn bad_patterns_are_refused_naming_the_list() {
        for bad in ["", "a b", "é", "a\n", &"a".repeat(129)] {
            let e = ToolRules::new(vec!["ok".into()], vec![bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains("tools.gated"), "{e}");
        }
        let many = vec!["a".to_string(); MAX_TOOL_PATTERNS + 1];
        assert_eq!(
            ToolRules::new(many, vec![]).unwrap_err(),
            McpRuleError::TooManyPatterns { list: "allow" }
        );
    }

    #[test]
    fn auth_templates_need_one_value_slot_and_an_unreserved_header() {
        let t = AuthTemplate::new("Authorization", "Bearer {value}").unwrap();
        assert_eq!(t.header(), "authorization");
        assert_eq!(t.render("s3cr3t").unwrap(), "Bearer s3cr3t");
        assert_eq!(t.render("a\r\nX-Evil: 1"), None);
        assert_eq!(
            AuthTemplate::new("Host", "{value}").unwrap_err(),
            McpRuleError::ReservedHeader("Host".into())
        );
        for bad in ["Bearer", "{value}{value}", "x\n{value}"] {
            assert_eq!(
                AuthTemplate::new("X-Key", bad).unwrap_err(),
                McpRuleError::BadFormat
            );
        }
        assert!(matches!(
            AuthTemplate::new("X Key", "{value}").unwrap_err(),
            McpRuleError::BadHeader { .. }
        ));
    }

    #[test]
    fn plain_http_only_inside_operator_ranges() {
        let policy = EgressPolicy {
            allow_private_cidrs: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..EgressPolicy::default()
        };
        let local: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let public: SocketAddr = "93.184.216.34:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        assert!(plain_http_allowed(&[local], &policy));
        assert!(plain_http_allowed(&[mapped], &policy));
        assert!(!plain_http_allowed(&[public], &policy));
        assert!(!plain_http_allowed(&[local, public], &policy));
        assert!(!plain_http_allowed(&[], &policy));
        assert!(!plain_http_allowed(&[local], &EgressPolicy::default()));
    }

    #[test]
    fn argument_digests_ignore_key_order_and_hide_values() {
        let a = serde_json::json!({"b": 1, "a": "secret-ish"});
        let b: serde_json::Value = serde_json::from_str(r#"{"a":"secret-ish","b":1}"#).unwrap();
        assert_eq!(arguments_digest(&a), arguments_digest(&b));
        assert!(!arguments_digest(&a).contains("secret"));
        assert_ne!(
            arguments_digest(&a),
            arguments_digest(&serde_json::json!({"b": 2, "a": "secret-ish"}))
        );
    }

    /// A reference matcher: the classic dynamic programme over
    /// (pattern, name) positions.
    fn reference(pattern: &str, name: &str) -> bool {
        let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
        let mut dp = vec![vec![false; n.len() + 1]; p.len() + 1];
        dp[0][0] = true;
        for i in 1..=p.len() {
            dp[i][0] = dp[i - 1][0] && p[i - 1] == '*';
            for j in 1..=n.len() {
                dp[i][j] = if p[i - 1] == '*' {
                    dp[i - 1][j] || dp[i][j - 1]
                } else {
                    dp[i - 1][j - 1] && p[i - 1] == n[j - 1]
                };
            }
        }
        dp[p.len()][n.len()]
    }

    proptest! {
        #[test]
        fn glob_agrees_with_the_reference_matcher(p in "[ab*]{0,8}", n in "[ab]{0,10}") {
            prop_assert_eq!(glob_matches(&p, &n), reference(&p, &n));
        }

        #[test]
        fn a_pattern_without_star_matches_only_itself(p in "[a-z_]{1,12}", n in "[a-z_]{0,12}") {
            prop_assert_eq!(glob_matches(&p, &n), p == n);
        }

        #[test]
        fn prefix_globs_match_exactly_the_names_they_start(pre in "[a-z]{0,6}", n in "[a-z]{0,10}") {
            let pattern = format!("{pre}*");
            prop_assert_eq!(glob_matches(&pattern, &n), n.starts_with(&pre));
        }

        #[test]
        fn nothing_outside_allow_is_ever_reachable(
            allow in proptest::collection::vec("[ab*]{1,4}", 0..4),
            gated in proptest::collection::vec("[ab*]{1,4}", 0..4),
            n in "[ab]{0,6}",
        ) {
            let r = ToolRules::new(allow.clone(), gated.clone()).unwrap();
            let allowed = allow.iter().any(|p| reference(p, &n));
            let held = gated.iter().any(|p| reference(p, &n));
            let expected = match (allowed, held) {
                (false, _) => ToolAccess::Hidden,
                (true, true) => ToolAccess::Gated,
                (true, false) => ToolAccess::Allowed,
            };
            prop_assert_eq!(r.access(&n), expected);
        }
    }
}
