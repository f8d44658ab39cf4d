//! Lifetimes, issuer and audience: the token rules that configuration may
//! tune within fixed limits.

use thiserror::Error;

use crate::principal::CredentialClass;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// Largest lifetime any token of a class may have, whatever the
/// configuration says. The verifier refuses tokens above it too.
pub fn class_maximum(class: CredentialClass) -> i64 {
    match class {
        CredentialClass::Agent => DAY,
        CredentialClass::Job => DAY,
        CredentialClass::Session => 7 * DAY,
        CredentialClass::Api => 90 * DAY,
    }
}

pub fn class_default(class: CredentialClass) -> i64 {
    match class {
        CredentialClass::Agent => 15 * 60,
        CredentialClass::Job => 2 * HOUR,
        CredentialClass::Session => 12 * HOUR,
        CredentialClass::Api => 30 * DAY,
    }
}

pub const DEFAULT_CLOCK_SKEW: i64 = 30;
pub const MAX_CLOCK_SKEW: i64 = 300;
pub const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LifetimeError {
    #[error("ttl_seconds must be positive")]
    NotPositive,
    #[error("ttl_seconds {asked} is above the {class} maximum of {max} seconds")]
    AboveMaximum {
        class: CredentialClass,
        asked: i64,
        max: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    pub clock_skew: i64,
    /// Default lifetime per class, indexed like [`CredentialClass::ALL`].
    pub defaults: [i64; 4],
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            issuer: "gatehouse".into(),
            audience: "gatehouse".into(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            defaults: CredentialClass::ALL.map(class_default),
        }
    }
}

fn index(class: CredentialClass) -> usize {
    CredentialClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(0)
}

impl TokenPolicy {
    pub fn default_lifetime(&self, class: CredentialClass) -> i64 {
        self.defaults[index(class)]
    }

    /// The lifetime to issue with: the class default, or what was asked,
    /// refused when above the class maximum.
    pub fn lifetime(
        &self,
        class: CredentialClass,
        asked: Option<i64>,
    ) -> Result<i64, LifetimeError> {
        let ttl = asked.unwrap_or_else(|| self.default_lifetime(class));
        check_lifetime(class, ttl)?;
        Ok(ttl)
    }
}

pub fn check_lifetime(class: CredentialClass, ttl: i64) -> Result<(), LifetimeError> {
    let max = class_maximum(class);
    if ttl <= 0 {
        Err(LifetimeError::NotPositive)
    } else if ttl > max {
        Err(LifetimeError::AboveMaximum {
            class,
            asked: ttl,
            max,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let p = TokenPolicy::default();
        assert_eq!(p.default_lifetime(CredentialClass::Agent), 900);
        assert_eq!(p.default_lifetime(CredentialClass::Job), 7200);
        assert_eq!(p.default_lifetime(CredentialClass::Session), 43200);
        assert_eq!(p.default_lifetime(CredentialClass::Api), 30 * 86400);
        for c in CredentialClass::ALL {
            assert!(p.default_lifetime(c) <= class_maximum(c));
        }
    }

    #[test]
    fn lifetimes_above_the_class_maximum_are_refused_naming_it() {
        let p = TokenPolicy::default();
        let e = p.lifetime(CredentialClass::Agent, Some(86401)).unwrap_err();
        assert!(e.to_string().contains("86400"), "{e}");
        assert_eq!(p.lifetime(CredentialClass::Agent, Some(86400)), Ok(86400));
        assert_eq!(
            p.lifetime(CredentialClass::Job, Some(0)),
            Err(LifetimeError::NotPositive)
        );
    }
}
