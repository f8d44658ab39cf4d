//! Approval gates (SPEC §7): which verbs wait for a human, who may decide,
//! and what an approval is bound to.
//!
//! The rules live here with no I/O; the API has one gate function that
//! every gated handler goes through, and it asks this module:
//!
//! - [`GateRegistry`]: the gated verbs (the default list plus whatever the
//!   configuration adds; nothing can remove a default) and how many
//!   distinct humans each needs.
//! - [`gate_decision`]: given the caller's credential, run the verb now
//!   (a human session, or an `api` token with `approval:bypass` that gives
//!   a reason) or hold it for approval (every other credential, whatever
//!   its scopes).
//! - [`may_decide`] and [`Tally`]: only a human session of the same owner
//!   or the operator, never the requester, each human once; N of M.
//! - [`params_digest`] and [`fingerprint`]: an approval is bound to the
//!   exact parameters it was requested with, and deciders see a secret
//!   only as its name, length and a keyed fingerprint.

mod binding;
mod decision;
mod status;
mod verbs;

pub use binding::{fingerprint, params_digest, BYPASS_REASON_MAX, BYPASS_REASON_PATTERN};
pub use decision::{
    gate_decision, may_decide, validate_bypass_reason, DecideRefusal, GateDecision, Tally,
};
pub use status::{ApprovalStatus, Decision};
pub use verbs::{GateRegistry, RegistryError, Verb, DEFAULT_REQUIRED};
