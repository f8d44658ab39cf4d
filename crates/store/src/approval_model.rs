//! Approval rows and the gated actions the store runs, atomically with
//! the approval's move to `executed`.
//!
//! Secrets are written and deleted only by gated actions: the store has
//! no other write path for them (its own upstream rotation aside, which
//! replaces `upstream.<name>` inside `upstream_switch`'s transaction), and
//! [`Store::run_gated`](crate::Store::run_gated) takes a [`GateKey`] that
//! the store hands out once, to the gate.

use gatehouse_domain::approvals::{ApprovalStatus, Decision};
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::{CredentialClass, Email};

use crate::model::{
    IssuedToken, JobRecord, McpServerRecord, PlaceholderRecord, PutOutcome, Revocation,
    SecretRecord,
};

/// Who asked for a held verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub class: CredentialClass,
    pub subject: String,
    pub jti: Option<String>,
    /// The agent behind an agent or job credential.
    pub agent: Option<String>,
    /// The job behind a job credential.
    pub job: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApprovalRecord {
    pub id: String,
    pub owner: Email,
    pub verb: String,
    /// What deciders see (JSON text); never a secret value.
    pub params: String,
    pub params_digest: Vec<u8>,
    /// Sealed parameters that must not be shown (a secret value).
    pub sealed: Option<Vec<u8>>,
    pub requester: Requester,
    pub status: ApprovalStatus,
    pub required: u32,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub updated_at: UnixTime,
    /// JSON text of the outcome once executed.
    pub result: Option<String>,
    /// The part of the outcome only the requester may read, sealed.
    pub sealed_result: Option<Vec<u8>>,
    pub error: Option<String>,
    /// Filled when read; ignored when created.
    pub decisions: Vec<ApprovalDecision>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    pub decider: String,
    pub decision: Decision,
    pub reason: String,
    pub decided_at: UnixTime,
}

/// What the store made of one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideResult {
    /// Recorded; the approval's status afterwards.
    Recorded(ApprovalStatus),
    NotFound,
    /// The approval was no longer pending (expired ones are marked so by
    /// this very call).
    NotPending(ApprovalStatus),
    AlreadyDecided,
}

/// A gated verb's effect on the store, run in one transaction: directly
/// (a human session or a bypass) or when its approval executes.
#[derive(Debug, Clone)]
pub enum GatedAction {
    PutSecret(SecretRecord),
    DeleteSecret {
        owner: Email,
        name: String,
    },
    /// Records an api token signed at execution time.
    MintToken(IssuedToken),
    /// Deletes every live job of the owner and revokes their tokens.
    DeleteAllJobs {
        owner: Email,
    },
    /// Removes the owner with their data key, secrets, jobs, agents and
    /// hooks, revokes every token of theirs and expires their pending
    /// approvals. The audit log keeps everything.
    DeprovisionOwner {
        owner: Email,
        token_expiry: UnixTime,
    },
    DeleteJob {
        owner: Email,
        id: String,
    },
    /// Forgets an upstream credential whose tokens were revoked at the
    /// upstream: state cleared, tokens marked revoked, the secret
    /// `secret_name` deleted. Fails when the current token is no longer
    /// `expected_current` (a rotation got in between).
    RetireUpstream {
        owner: Email,
        name: String,
        expected_current: String,
        secret_name: String,
    },
    /// Sets (or, with `None`, clears) an agent's egress allow list: JSON
    /// array text of host patterns.
    SetAgentEgress {
        owner: Email,
        agent: String,
        allow_hosts: Option<String>,
    },
    /// Sets an agent's secret ceiling: JSON array text of secret names.
    SetAgentSecrets {
        owner: Email,
        agent: String,
        secrets: String,
    },
    /// Saves (creates or replaces) an owner's upstream MCP server
    /// (`policy.change`); fails if the owner is gone.
    PutMcpServer(McpServerRecord),
    /// A gated MCP tool call (`mcp.tool`): the call itself happened
    /// outside the store, after the claim; the store only completes the
    /// approval with its result and audit records.
    RecordMcpCall,
    /// Creates a job held for `job.grant_values`, as `Store::create_job`
    /// would; fails if the agent or a granted secret is gone.
    CreateJob {
        job: Box<JobRecord>,
        placeholders: Vec<PlaceholderRecord>,
        token: IssuedToken,
    },
}

/// The right to run gated actions, and so to write or delete secrets.
/// It cannot be built outside this crate; each store hands out one, once
/// ([`Store::take_gate_key`](crate::Store::take_gate_key)), and the API
/// gives it to its gate at start.
///
/// ```compile_fail
/// let key = gatehouse_store::GateKey { _private: () };
/// ```
#[derive(Debug)]
pub struct GateKey {
    _private: (),
}

impl GateKey {
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }
}

/// An agent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub name: String,
    /// JSON array of host patterns every job of the agent is held to.
    pub allow_hosts: Option<String>,
    /// JSON array of the secret names jobs created by the agent's own
    /// credentials may be granted; `None`: none.
    pub secrets: Option<String>,
    pub created_at: UnixTime,
}

/// What a gated action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionEffect {
    Secret(PutOutcome),
    /// An MCP server saved: new, or replacing one of that name.
    McpServer(PutOutcome),
    Done,
    /// Revocations written, for the caller to apply to its own view at
    /// once (other replicas hear of them through the store).
    Revoked(Vec<Revocation>),
    /// Jobs deleted, with the revocations of their live tokens.
    JobsDeleted {
        count: usize,
        revocations: Vec<Revocation>,
    },
    /// The action found nothing to act on: the approval fails with this
    /// reason and nothing is changed.
    Failed(String),
}

/// The approval an action completes, if any.
#[derive(Debug, Clone)]
pub struct Completion {
    pub approval_id: String,
    /// The run claimed the approval first (`executing`, for a verb that
    /// calls out); otherwise it must still be `approved`.
    pub claimed: bool,
    /// JSON text shown to requester and deciders.
    pub result: String,
    pub sealed_result: Option<Vec<u8>>,
}

/// What running a gated action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    Ran(ActionEffect),
    /// The approval was not `approved` any more: another replica or
    /// request ran it (or it failed) first. Nothing was done.
    NotApproved,
}

/// Which approvals to list, newest first.
#[derive(Debug, Clone)]
pub struct ApprovalFilter {
    /// `None`: every owner's (the operator's view).
    pub owner: Option<Email>,
    pub status: Option<ApprovalStatus>,
    /// Only those one requester asked for.
    pub requester: Option<(CredentialClass, String)>,
    pub limit: i64,
}
