//! The gated verbs and how many humans each needs.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

/// Every verb the gate knows how to hold and later run. All but
/// `job.delete` are gated by default (SPEC §7); it is gated only when the
/// configuration adds it. `mcp.tool` is a call to an MCP tool an owner
/// marked `gated` on an upstream MCP server (SPEC §13): the gateway sends
/// it through the gate only for such tools, and it is always gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    TokenMintApi,
    SecretWrite,
    SecretDelete,
    JobDeleteAll,
    OwnerDeprovision,
    UpstreamRevoke,
    PolicyChange,
    /// A job created by a non-interactive credential with a `value` grant:
    /// the job would read a plaintext secret.
    JobGrantValues,
    JobDelete,
    /// A gated tool of an upstream MCP server (SPEC §13).
    McpTool,
}

impl Verb {
    pub const ALL: [Verb; 10] = [
        Verb::TokenMintApi,
        Verb::SecretWrite,
        Verb::SecretDelete,
        Verb::JobDeleteAll,
        Verb::OwnerDeprovision,
        Verb::UpstreamRevoke,
        Verb::PolicyChange,
        Verb::JobGrantValues,
        Verb::JobDelete,
        Verb::McpTool,
    ];

    /// Gated whatever the configuration says.
    pub const DEFAULT_GATED: [Verb; 9] = [
        Verb::TokenMintApi,
        Verb::SecretWrite,
        Verb::SecretDelete,
        Verb::JobDeleteAll,
        Verb::OwnerDeprovision,
        Verb::UpstreamRevoke,
        Verb::PolicyChange,
        Verb::JobGrantValues,
        Verb::McpTool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::TokenMintApi => "token.mint_api",
            Verb::SecretWrite => "secret.write",
            Verb::SecretDelete => "secret.delete",
            Verb::JobDeleteAll => "job.delete_all",
            Verb::OwnerDeprovision => "owner.deprovision",
            Verb::UpstreamRevoke => "upstream.revoke",
            Verb::PolicyChange => "policy.change",
            Verb::JobGrantValues => "job.grant_values",
            Verb::JobDelete => "job.delete",
            Verb::McpTool => "mcp.tool",
        }
    }

    /// Whether running the verb calls out to another system (an upstream's
    /// token API, an MCP server's tool). Such a run first claims its approval (`approved →
    /// executing`), so the outside call happens at most once; a verb that
    /// only changes the store needs no claim, its store transaction is
    /// the claim.
    pub fn calls_out(self) -> bool {
        match self {
            Verb::UpstreamRevoke | Verb::OwnerDeprovision | Verb::McpTool => true,
            Verb::TokenMintApi
            | Verb::SecretWrite
            | Verb::SecretDelete
            | Verb::JobDeleteAll
            | Verb::PolicyChange
            | Verb::JobGrantValues
            | Verb::JobDelete => false,
        }
    }

    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `approvals.required` when the configuration names no number.
pub const DEFAULT_REQUIRED: u32 = 1;
/// More distinct humans than this is a configuration mistake.
const MAX_REQUIRED: u32 = 10;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("approvals: unknown verb {0:?} (known: {known})", known = known_verbs())]
    UnknownVerb(String),
    #[error("approvals.required for {verb} must be between 1 and {MAX_REQUIRED}, not {n}")]
    BadRequired { verb: &'static str, n: i64 },
}

fn known_verbs() -> String {
    Verb::ALL.map(Verb::as_str).join(", ")
}

/// Which verbs are gated and how many distinct humans each needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRegistry {
    gated: BTreeMap<Verb, u32>,
}

impl Default for GateRegistry {
    fn default() -> Self {
        Self {
            gated: Verb::DEFAULT_GATED
                .into_iter()
                .map(|v| (v, DEFAULT_REQUIRED))
                .collect(),
        }
    }
}

impl GateRegistry {
    /// The default list, plus `extra_verbs`, with `required` overriding
    /// the number of approvers per verb. A verb named in `required` is
    /// gated too: asking for two approvers of an ungated verb means gating
    /// it. There is deliberately no way to remove a default.
    pub fn from_config(
        extra_verbs: &[String],
        required: &BTreeMap<String, i64>,
    ) -> Result<Self, RegistryError> {
        let mut registry = Self::default();
        for name in extra_verbs {
            let verb = Verb::parse(name).ok_or_else(|| RegistryError::UnknownVerb(name.clone()))?;
            registry.gated.entry(verb).or_insert(DEFAULT_REQUIRED);
        }
        for (name, n) in required {
            let verb = Verb::parse(name).ok_or_else(|| RegistryError::UnknownVerb(name.clone()))?;
            let n32 = u32::try_from(*n)
                .ok()
                .filter(|n| (1..=MAX_REQUIRED).contains(n))
                .ok_or(RegistryError::BadRequired {
                    verb: verb.as_str(),
                    n: *n,
                })?;
            registry.gated.insert(verb, n32);
        }
        Ok(registry)
    }

    pub fn is_gated(&self, verb: Verb) -> bool {
        self.gated.contains_key(&verb)
    }

    /// Distinct human approvals the verb needs; at least 1.
    pub fn required(&self, verb: Verb) -> u32 {
        self.gated.get(&verb).copied().unwrap_or(DEFAULT_REQUIRED)
    }

    pub fn gated_verbs(&self) -> impl Iterator<Item = Verb> + '_ {
        self.gated.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn every_verb_round_trips_through_its_name() {
        for verb in Verb::ALL {
            assert_eq!(Verb::parse(verb.as_str()), Some(verb));
        }
        assert_eq!(Verb::parse("secret.Write"), None);
    }

    #[test]
    fn default_registry_gates_exactly_the_spec_list() {
        let names: Vec<_> = GateRegistry::default()
            .gated_verbs()
            .map(Verb::as_str)
            .collect();
        let mut expected = vec![
            "token.mint_api",
            "secret.write",
            "secret.delete",
            "job.delete_all",
            "owner.deprovision",
            "upstream.revoke",
            "policy.change",
            "job.grant_values",
            "mcp.tool",
        ];
        expected.sort_by_key(|n| Verb::parse(n));
        assert_eq!(names, expected);
    }

    #[test]
    fn only_verbs_that_reach_an_upstream_call_out() {
        let out: Vec<_> = Verb::ALL.into_iter().filter(|v| v.calls_out()).collect();
        assert_eq!(
            out,
            [Verb::OwnerDeprovision, Verb::UpstreamRevoke, Verb::McpTool]
        );
    }

    #[test]
    fn configuration_adds_verbs_and_never_removes_defaults() {
        let r = GateRegistry::from_config(&["job.delete".into()], &BTreeMap::new()).unwrap();
        assert!(r.is_gated(Verb::JobDelete));
        for verb in Verb::DEFAULT_GATED {
            assert!(r.is_gated(verb), "{verb} lost its gate");
        }
    }

    #[test]
    fn required_sets_n_of_m_and_gates_the_verb() {
        let r =
            GateRegistry::from_config(&[], &required(&[("secret.write", 2), ("job.delete", 1)]))
                .unwrap();
        assert_eq!(r.required(Verb::SecretWrite), 2);
        assert_eq!(r.required(Verb::SecretDelete), 1);
        assert!(r.is_gated(Verb::JobDelete));
    }

    #[test]
    fn unknown_verbs_and_silly_counts_are_refused_by_name() {
        let e = GateRegistry::from_config(&["secret.wipe".into()], &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("secret.wipe"));
        for n in [0, -1, 11] {
            let e = GateRegistry::from_config(&[], &required(&[("secret.write", n)])).unwrap_err();
            assert_eq!(
                e,
                RegistryError::BadRequired {
                    verb: "secret.write",
                    n
                }
            );
        }
    }
}
