//! Grammars for caller-chosen names. Each check is a plain character scan
//! (no regex engine) that mirrors the pattern in its doc comment exactly.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{kind} name {shown:?} is invalid: must match {pattern}")]
pub struct NameError {
    pub kind: &'static str,
    pub pattern: &'static str,
    /// The offending name, cut short so an error never carries a huge input.
    pub shown: String,
}

fn refuse(kind: &'static str, pattern: &'static str, name: &str) -> NameError {
    NameError {
        kind,
        pattern,
        shown: name.chars().take(64).collect(),
    }
}

pub const SECRET_NAME_PATTERN: &str = "^[A-Za-z0-9_.-]{1,128}$";
pub const AGENT_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";
/// An upstream MCP server's name (`/mcp/{name}`): the agent-name grammar.
pub const MCP_SERVER_NAME_PATTERN: &str = AGENT_NAME_PATTERN;

/// A DNS host name, as [`is_host_name`] checks it; the 253-character cap
/// is [`HOST_NAME_MAX`] (a `maxLength` beside the pattern).
pub const HOST_NAME_PATTERN: &str = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";
pub const HOST_NAME_MAX: usize = 253;

/// A host binding as a person writes it (`api.github.com`,
/// `*.example.org`, a trailing dot allowed): what
/// [`normalise_host_pattern`] accepts, less surrounding blanks.
pub const HOST_BINDING_PATTERN: &str = r"^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$";

/// An allow-list entry: a host binding, or `*` (any host that passes the
/// address check).
pub const ALLOW_HOST_PATTERN: &str = r"^(?:\*|(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?)$";

/// `^[A-Za-z0-9_.-]{1,128}$`
pub fn validate_secret_name(name: &str) -> Result<(), NameError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(refuse("secret", SECRET_NAME_PATTERN, name))
    }
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$`
pub fn validate_agent_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let lower_digit = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = (1..=63).contains(&bytes.len())
        && bytes.first().is_some_and(lower_digit)
        && bytes[1..]
            .iter()
            .all(|b| lower_digit(b) || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(refuse("agent", AGENT_NAME_PATTERN, name))
    }
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$`, the agent-name grammar: it appears in
/// the path `/mcp/{name}`.
pub fn validate_mcp_server_name(name: &str) -> Result<(), NameError> {
    validate_agent_name(name).map_err(|_| refuse("mcp server", MCP_SERVER_NAME_PATTERN, name))
}

/// A DNS host name: dot-separated labels of ASCII letters, digits and
/// inner hyphens (each 1..=63), at most 253 characters in all.
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A host binding as written by a person (`api.github.com`,
/// `*.example.org`), normalised: lower case, no trailing dot.
pub fn normalise_host_pattern(pattern: &str) -> Option<String> {
    let p = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    is_host_name(p.strip_prefix("*.").unwrap_or(&p)).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_patterns_are_names_or_wildcard_suffixes() {
        assert_eq!(
            normalise_host_pattern("API.GitHub.com."),
            Some("api.github.com".into())
        );
        assert_eq!(
            normalise_host_pattern("*.example.org"),
            Some("*.example.org".into())
        );
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "-a.b",
            "http://x/",
            "a b",
            "x*.y",
            "*.*.y",
        ] {
            assert_eq!(normalise_host_pattern(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn secret_names_follow_the_grammar() {
        for ok in ["a", "GITHUB_TOKEN", "x.y-z_1", &"a".repeat(128)] {
            assert!(validate_secret_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "..%2f", "é", &"a".repeat(129), "a\n"] {
            assert!(validate_secret_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn agent_names_follow_the_grammar() {
        for ok in ["a", "0", "claude-code", "ci_bot", &"a".repeat(63)] {
            assert!(validate_agent_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a.b", "a b", &"a".repeat(64)] {
            assert!(validate_agent_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_names_the_pattern_and_cuts_long_input() {
        let e = validate_secret_name(&"/".repeat(500)).unwrap_err();
        assert_eq!(e.shown.len(), 64);
        assert!(e.to_string().contains(SECRET_NAME_PATTERN));
    }

    proptest! {
        #[test]
        fn accepted_secret_names_hold_only_grammar_characters(s in "\\PC{0,140}") {
            if validate_secret_name(&s).is_ok() {
                prop_assert!(!s.is_empty() && s.len() <= 128);
                prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
            }
        }

        #[test]
        fn grammar_strings_are_accepted(s in "[A-Za-z0-9_.-]{1,128}") {
            prop_assert!(validate_secret_name(&s).is_ok());
        }

        #[test]
        fn accepted_agent_names_match_the_pattern(s in "[a-z0-9][a-z0-9_-]{0,62}") {
            prop_assert!(validate_agent_name(&s).is_ok());
        }
    }
}
