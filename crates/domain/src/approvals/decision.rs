//! Who runs a gated verb now, who may decide on a held one, and when
//! enough humans have said yes.

use thiserror::Error;

use super::{ApprovalStatus, Decision, GateRegistry, Verb, BYPASS_REASON_MAX};
use crate::{CredentialClass, Email, Principal, Scope};

/// What the gate does with one call of a verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateDecision {
    /// Not gated, or a human session: run it.
    Run,
    /// An `api` token with `approval:bypass` that gave a reason: run it,
    /// and audit the bypass with the reason.
    Bypass { reason: String },
    /// Everyone else: store the request and answer `202`.
    Hold,
}

/// Why a decision (or a bypass) is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecideRefusal {
    #[error("only a human session may decide on an approval")]
    NotHuman,
    /// Another owner's approval: answered like an unknown id.
    #[error("no such approval")]
    OtherOwner,
    #[error("the requester cannot decide on its own request")]
    Requester,
    #[error("this person has already decided on this approval")]
    AlreadyDecided,
    #[error("the approval is {0}, not pending")]
    NotPending(ApprovalStatus),
    #[error("Gatehouse-Approval-Bypass must give a reason of 1 to {BYPASS_REASON_MAX} printable characters")]
    BadBypassReason,
}

/// The one rule for every gated verb, whatever handler calls it.
///
/// Only the credential class and the bypass scope matter: the scopes that
/// let a caller reach the handler at all are checked before, and no scope
/// turns a held call into a run one except `approval:bypass` on an `api`
/// token together with a reason. The bypass header on any other credential
/// changes nothing.
pub fn gate_decision(
    registry: &GateRegistry,
    verb: Verb,
    caller: &Principal,
    bypass_header: Option<&str>,
) -> Result<GateDecision, DecideRefusal> {
    if !registry.is_gated(verb) || caller.is_human() {
        return Ok(GateDecision::Run);
    }
    let may_bypass =
        caller.class == CredentialClass::Api && caller.scopes.contains(Scope::ApprovalBypass);
    match bypass_header {
        Some(reason) if may_bypass => Ok(GateDecision::Bypass {
            reason: validate_bypass_reason(reason)?,
        }),
        _ => Ok(GateDecision::Hold),
    }
}

/// A reason that is safe to store and show: trimmed, printable, bounded.
pub fn validate_bypass_reason(reason: &str) -> Result<String, DecideRefusal> {
    let reason = reason.trim();
    let ok = !reason.is_empty()
        && reason.chars().count() <= BYPASS_REASON_MAX
        && !reason.chars().any(char::is_control);
    if ok {
        Ok(reason.to_string())
    } else {
        Err(DecideRefusal::BadBypassReason)
    }
}

/// May `decider` decide on an approval of `owner` requested by
/// (`requester_class`, `requester_subject`)?
pub fn may_decide(
    decider: &Principal,
    owner: &Email,
    requester_class: CredentialClass,
    requester_subject: &str,
) -> Result<(), DecideRefusal> {
    if !decider.is_human() {
        return Err(DecideRefusal::NotHuman);
    }
    if &decider.owner != owner && !decider.is_operator() {
        return Err(DecideRefusal::OtherOwner);
    }
    if decider.class == requester_class && decider.subject == requester_subject {
        return Err(DecideRefusal::Requester);
    }
    Ok(())
}

/// The decisions so far on one approval and what one more makes of it.
#[derive(Debug, Clone)]
pub struct Tally {
    required: u32,
    deciders: Vec<String>,
    approvals: u32,
    denied: bool,
}

impl Tally {
    pub fn new(required: u32) -> Self {
        Self {
            required: required.max(1),
            deciders: Vec::new(),
            approvals: 0,
            denied: false,
        }
    }

    /// Adds a recorded decision (from the store), in order.
    pub fn record(&mut self, decider: &str, decision: Decision) {
        self.deciders.push(decider.to_string());
        match decision {
            Decision::Approve => self.approvals = self.approvals.saturating_add(1),
            Decision::Deny => self.denied = true,
        }
    }

    pub fn approvals(&self) -> u32 {
        self.approvals
    }

    /// The status after `decider` adds `decision`, or why it may not:
    /// each human decides once; one deny denies; `required` distinct
    /// approvals approve.
    pub fn add(
        &mut self,
        decider: &str,
        decision: Decision,
    ) -> Result<ApprovalStatus, DecideRefusal> {
        if self.deciders.iter().any(|d| d == decider) {
            return Err(DecideRefusal::AlreadyDecided);
        }
        self.record(decider, decision);
        Ok(self.status())
    }

    pub fn status(&self) -> ApprovalStatus {
        if self.denied {
            ApprovalStatus::Denied
        } else if self.approvals() >= self.required {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, ScopeSet};

    fn principal(
        class: CredentialClass,
        subject: &str,
        owner: &str,
        scopes: &[Scope],
    ) -> Principal {
        Principal {
            subject: subject.into(),
            owner: Email::parse(owner).unwrap(),
            class,
            scopes: ScopeSet::of(scopes),
            role: if owner == "op@example.com" {
                Role::Operator
            } else {
                Role::Owner
            },
            jti: None,
            expires_at: None,
        }
    }

    const ALL_SCOPES: [Scope; 7] = [
        Scope::SecretsWrite,
        Scope::TokensWrite,
        Scope::JobsCreate,
        Scope::JobsRead,
        Scope::HooksWrite,
        Scope::AuditRead,
        Scope::ApprovalBypass,
    ];

    #[test]
    fn every_non_interactive_class_is_held_for_every_gated_verb_whatever_its_scopes() {
        let registry = GateRegistry::default();
        for verb in Verb::DEFAULT_GATED {
            for class in [
                CredentialClass::Api,
                CredentialClass::Agent,
                CredentialClass::Job,
            ] {
                for owner in ["op@example.com", "alice@example.com"] {
                    let caller = principal(class, "bot", owner, &ALL_SCOPES);
                    assert_eq!(
                        gate_decision(&registry, verb, &caller, None),
                        Ok(GateDecision::Hold),
                        "{verb} by {class:?} of {owner}"
                    );
                }
            }
        }
    }

    #[test]
    fn human_sessions_run_gated_verbs_and_ungated_verbs_run_for_anyone() {
        let registry = GateRegistry::default();
        let human = principal(
            CredentialClass::Session,
            "alice@example.com",
            "alice@example.com",
            &[],
        );
        let agent = principal(CredentialClass::Agent, "bot", "alice@example.com", &[]);
        assert_eq!(
            gate_decision(&registry, Verb::SecretWrite, &human, None),
            Ok(GateDecision::Run)
        );
        assert_eq!(
            gate_decision(&registry, Verb::JobDelete, &agent, None),
            Ok(GateDecision::Run)
        );
        let gated = GateRegistry::from_config(&["job.delete".into()], &Default::default()).unwrap();
        assert_eq!(
            gate_decision(&gated, Verb::JobDelete, &agent, None),
            Ok(GateDecision::Hold)
        );
    }

    #[test]
    fn bypass_needs_an_api_token_with_the_scope_and_a_reason() {
        let registry = GateRegistry::default();
        let with_scope = principal(
            CredentialClass::Api,
            "ci",
            "op@example.com",
            &[Scope::ApprovalBypass],
        );
        assert_eq!(
            gate_decision(
                &registry,
                Verb::SecretWrite,
                &with_scope,
                Some(" incident 42 ")
            ),
            Ok(GateDecision::Bypass {
                reason: "incident 42".into()
            })
        );
        assert_eq!(
            gate_decision(&registry, Verb::SecretWrite, &with_scope, None),
            Ok(GateDecision::Hold)
        );
        for bad in ["", "   ", "a\nb", &"x".repeat(BYPASS_REASON_MAX + 1)] {
            assert_eq!(
                gate_decision(&registry, Verb::SecretWrite, &with_scope, Some(bad)),
                Err(DecideRefusal::BadBypassReason),
                "{bad:?}"
            );
        }
        let without = principal(
            CredentialClass::Api,
            "ci",
            "op@example.com",
            &[Scope::SecretsWrite],
        );
        let agent = principal(CredentialClass::Agent, "bot", "op@example.com", &ALL_SCOPES);
        let job = principal(CredentialClass::Job, "bot/j", "op@example.com", &ALL_SCOPES);
        for caller in [without, agent, job] {
            assert_eq!(
                gate_decision(&registry, Verb::SecretWrite, &caller, Some("because")),
                Ok(GateDecision::Hold),
                "{:?}",
                caller.class
            );
        }
    }

    #[test]
    fn only_humans_of_the_owner_or_the_operator_decide_and_never_the_requester() {
        let alice = Email::parse("alice@example.com").unwrap();
        let same = principal(
            CredentialClass::Session,
            "alice@example.com",
            "alice@example.com",
            &[],
        );
        let operator = principal(
            CredentialClass::Session,
            "op@example.com",
            "op@example.com",
            &[],
        );
        let other = principal(
            CredentialClass::Session,
            "bob@example.com",
            "bob@example.com",
            &[],
        );
        let api = principal(CredentialClass::Api, "ci", "alice@example.com", &ALL_SCOPES);
        assert_eq!(
            may_decide(&same, &alice, CredentialClass::Agent, "bot"),
            Ok(())
        );
        assert_eq!(
            may_decide(&operator, &alice, CredentialClass::Agent, "bot"),
            Ok(())
        );
        assert_eq!(
            may_decide(&other, &alice, CredentialClass::Agent, "bot"),
            Err(DecideRefusal::OtherOwner)
        );
        assert_eq!(
            may_decide(&api, &alice, CredentialClass::Agent, "bot"),
            Err(DecideRefusal::NotHuman)
        );
        assert_eq!(
            may_decide(&same, &alice, CredentialClass::Session, "alice@example.com"),
            Err(DecideRefusal::Requester)
        );
        // The requester is the pair (class, subject): another person's
        // session, or a credential of another class that happens to carry
        // the same subject, is not.
        assert_eq!(
            may_decide(&same, &alice, CredentialClass::Session, "carol@example.com"),
            Ok(())
        );
        assert_eq!(
            may_decide(&same, &alice, CredentialClass::Api, "alice@example.com"),
            Ok(())
        );
    }

    #[test]
    fn tally_needs_n_distinct_approvals_and_one_deny_denies() {
        let mut t = Tally::new(2);
        assert_eq!(t.add("a", Decision::Approve), Ok(ApprovalStatus::Pending));
        assert_eq!(
            t.add("a", Decision::Approve),
            Err(DecideRefusal::AlreadyDecided)
        );
        assert_eq!(t.add("b", Decision::Approve), Ok(ApprovalStatus::Approved));

        let mut t = Tally::new(2);
        t.record("a", Decision::Approve);
        assert_eq!(t.add("b", Decision::Deny), Ok(ApprovalStatus::Denied));
        assert_eq!(
            t.add("b", Decision::Approve),
            Err(DecideRefusal::AlreadyDecided)
        );

        let mut t = Tally::new(0);
        assert_eq!(t.add("a", Decision::Approve), Ok(ApprovalStatus::Approved));
    }
}
