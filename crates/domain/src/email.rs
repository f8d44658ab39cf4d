//! Owner identity. An owner is an email address, compared
//! case-insensitively: the canonical form is lower case, so two spellings
//! of one address can never become two tenants.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid email address: {0}")]
pub struct EmailError(&'static str);

/// A normalised (trimmed, lower-case) email address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// The grammar [`Email::parse`] checks (after trimming blanks), with
/// [`MAX_EMAIL_LENGTH`] beside it: printable ASCII but `@` before the one
/// `@` (at most 64), a host name after it.
pub const EMAIL_PATTERN: &str = r"^[!-?A-~]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";
pub const MAX_EMAIL_LENGTH: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError("it is empty"));
        }
        if s.len() > 254 {
            return Err(EmailError("it is longer than 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError("it contains whitespace or control characters"));
        }
        if !s.is_ascii() {
            return Err(EmailError("it is not ASCII"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError("it has no '@'"))?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(EmailError(
                "the part before '@' is empty, too long or holds another '@'",
            ));
        }
        let domain_ok = crate::names::is_host_name(domain);
        if !domain_ok {
            return Err(EmailError("the domain is not a valid host name"));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_compare_case_insensitively() {
        let a = Email::parse("Alice@Example.COM").unwrap();
        let b = Email::parse(" alice@example.com ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "alice@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "alice",
            "@x.org",
            "a@",
            "a@b@c",
            "a b@c.d",
            "a@-x.org",
            "a@x..org",
            "a@x_y.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@x.org", "a".repeat(65))).is_err());
    }

    #[test]
    fn deserialising_normalises() {
        let e: Email = serde_json::from_str("\"Bob@X.org\"").unwrap();
        assert_eq!(e.as_str(), "bob@x.org");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }
}
