//! The name grammars published in the OpenAPI document are the patterns
//! beside each validator; these properties hold the two together: every
//! string a pattern generates passes its validator, and on arbitrary
//! strings the validator and the pattern agree (except where the
//! validator, on purpose, also trims blanks or extra trailing dots).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_domain::codes::{random_id, ID_PATTERN};
use gatehouse_domain::email::{Email, EMAIL_PATTERN, MAX_EMAIL_LENGTH};
use gatehouse_domain::jobs::{package_pattern, validate_env_var, Package, ENV_VAR_PATTERN};
use gatehouse_domain::names::{
    is_host_name, normalise_host_pattern, validate_agent_name, validate_secret_name,
    AGENT_NAME_PATTERN, ALLOW_HOST_PATTERN, HOST_BINDING_PATTERN, HOST_NAME_MAX, HOST_NAME_PATTERN,
    SECRET_NAME_PATTERN,
};
use proptest::prelude::*;
use proptest::string::string_regex;
use regex::Regex;

/// Strings the pattern matches (the generator wants no anchors).
fn gen(pattern: &str) -> impl Strategy<Value = String> {
    string_regex(pattern.trim_start_matches('^').trim_end_matches('$')).expect("strategy")
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("pattern compiles")
}

/// Strings near the grammars: their alphabets, the separators and a few
/// characters outside them.
fn near() -> impl Strategy<Value = String> {
    string_regex("[a-zA-Z0-9_.*@ -]{0,12}|[a-z0-9]{1,70}|.{0,8}").expect("strategy")
}

/// Env vars without the reserved ones (refused on top of the grammar).
fn env_var_ok(s: &str) -> bool {
    matches!(validate_env_var(s), Ok(()))
        || matches!(
            validate_env_var(s),
            Err(gatehouse_domain::jobs::JobRuleError::EnvVarReserved(_))
        )
}

proptest! {
    #[test]
    fn generated_names_pass_their_validators(
        agent in gen(AGENT_NAME_PATTERN),
        secret in gen(SECRET_NAME_PATTERN),
        env in gen(ENV_VAR_PATTERN),
        package in gen(&package_pattern()),
        email in gen(EMAIL_PATTERN),
        host in gen(HOST_NAME_PATTERN),
        binding in gen(HOST_BINDING_PATTERN),
        allow in gen(ALLOW_HOST_PATTERN),
    ) {
        prop_assert!(validate_agent_name(&agent).is_ok(), "{agent}");
        prop_assert!(validate_secret_name(&secret).is_ok(), "{secret}");
        prop_assert!(env_var_ok(&env), "{env}");
        prop_assert!(Package::parse(&package).is_ok(), "{package}");
        if email.len() <= MAX_EMAIL_LENGTH && email.rsplit_once('@').is_some_and(|(_, d)| d.len() <= HOST_NAME_MAX) {
            prop_assert!(Email::parse(&email).is_ok(), "{email}");
        }
        if host.len() <= HOST_NAME_MAX {
            prop_assert!(is_host_name(&host), "{host}");
        }
        if binding.len() <= HOST_NAME_MAX {
            prop_assert!(normalise_host_pattern(&binding).is_some(), "{binding}");
        }
        if allow != "*" && allow.len() <= HOST_NAME_MAX {
            prop_assert!(normalise_host_pattern(&allow).is_some(), "{allow}");
        }
    }

    #[test]
    fn validators_accept_only_what_their_patterns_match(s in near()) {
        prop_assert_eq!(validate_agent_name(&s).is_ok(), re(AGENT_NAME_PATTERN).is_match(&s), "{}", s);
        prop_assert_eq!(validate_secret_name(&s).is_ok(), re(SECRET_NAME_PATTERN).is_match(&s), "{}", s);
        prop_assert_eq!(env_var_ok(&s), re(ENV_VAR_PATTERN).is_match(&s), "{}", s);
        prop_assert_eq!(Package::parse(&s).is_ok(), re(&package_pattern()).is_match(&s), "{}", s);
        prop_assert_eq!(is_host_name(&s), re(HOST_NAME_PATTERN).is_match(&s) && s.len() <= HOST_NAME_MAX, "{}", s);
        // Validators also trim blanks (and emails fold case): compare on
        // what a pattern can see.
        let t = s.trim();
        prop_assert_eq!(
            Email::parse(&s).is_ok(),
            re(EMAIL_PATTERN).is_match(t) && t.len() <= MAX_EMAIL_LENGTH,
            "{}", s
        );
        let bare = t.trim_end_matches('.');
        let one_dot = if bare.len() < t.len() { format!("{bare}.") } else { bare.to_string() };
        let binding_fits = bare.strip_prefix("*.").unwrap_or(bare).len() <= HOST_NAME_MAX;
        prop_assert_eq!(
            normalise_host_pattern(&s).is_some(),
            re(HOST_BINDING_PATTERN).is_match(&one_dot) && binding_fits,
            "{}", s
        );
    }
}

#[test]
fn ids_match_their_pattern() {
    let id = re(ID_PATTERN);
    for _ in 0..100 {
        let v = random_id();
        assert!(id.is_match(&v), "{v}");
    }
}

#[test]
fn the_package_pattern_names_every_namespace() {
    for ns in gatehouse_domain::jobs::PACKAGE_NAMESPACES {
        let name = format!("{ns}.requests");
        assert!(re(&package_pattern()).is_match(&name), "{name}");
        assert!(Package::parse(&name).is_ok());
    }
    assert!(!re(&package_pattern()).is_match("unknownPackages.x"));
}
