//! Tests across the whole check: a corpus of target spellings with their
//! verdicts, the operator exceptions, and property tests.

mod corpus;
mod exceptions;
mod props;

use super::{check_target, parse_target, Checked, Deny, EgressPolicy};

/// What the proxy would do with a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Connect to this address, or resolve this name (`host:port`).
    Allow(String),
    /// `403`, `X-Gatehouse-Deny: ssrf`.
    Ssrf,
    /// `403`, `X-Gatehouse-Deny: not_allowed` (port).
    NotAllowed,
    /// `400`.
    Malformed,
}

pub(super) fn verdict(input: &str, policy: &EgressPolicy) -> Verdict {
    let Ok(target) = parse_target(input, 443) else {
        return Verdict::Malformed;
    };
    match check_target(&target, policy) {
        Ok(Checked::Connect(addr)) => Verdict::Allow(addr.to_string()),
        Ok(Checked::Resolve { name, port }) => Verdict::Allow(format!("{name}:{port}")),
        Err(deny) => match deny.header_value() {
            "ssrf" => Verdict::Ssrf,
            "not_allowed" => Verdict::NotAllowed,
            other => panic!("unexpected deny header {other:?} for {deny:?}"),
        },
    }
}

pub(super) fn is_ssrf(deny: &Deny) -> bool {
    deny.header_value() == "ssrf"
}
