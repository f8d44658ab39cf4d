//! The storage trait: everything Gatehouse persists goes through it.
//!
//! Every mutation that must be audited takes its [`AuditEvent`] and
//! appends it in the same transaction, so a change and its audit record
//! land together or not at all.

use async_trait::async_trait;
use gatehouse_domain::audit::{AuditEvent, AuditRecord, ChainHead};
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::Email;

use crate::approval_model::*;
use crate::connect::Engine;
use crate::error::Result;
use crate::job_material::JobMaterial;
use crate::model::*;
use crate::upstream_model::*;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn engine(&self) -> Engine;
    async fn ping(&self) -> Result<()>;

    // Bootstrap claim.
    async fn bootstrap_state(&self) -> Result<BootstrapState>;
    /// Sets the code digest while unclaimed; returns false once claimed.
    async fn set_bootstrap_code(&self, digest: &[u8]) -> Result<bool>;
    /// Marks the installation claimed and creates the operator, atomically.
    /// `Conflict` when already claimed (also under a concurrent claim).
    async fn claim_bootstrap(
        &self,
        operator: &NewOwner,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;

    // Owners.
    async fn create_owner(&self, owner: &NewOwner, audit: AuditEvent, now: UnixTime) -> Result<()>;
    async fn owner(&self, email: &Email) -> Result<Option<OwnerRecord>>;
    async fn owner_data_key(&self, email: &Email) -> Result<Option<WrappedKey>>;
    async fn set_login_code(
        &self,
        email: &Email,
        digest: &[u8],
        expires_at: UnixTime,
    ) -> Result<()>;
    /// The current unexpired login code digest of an owner.
    async fn login_code(&self, email: &Email, now: UnixTime) -> Result<Option<Vec<u8>>>;
    /// Consumes the code with this digest; true for exactly one caller.
    async fn consume_login_code(
        &self,
        email: &Email,
        digest: &[u8],
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool>;

    // Signing keys.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Adds `new` as the active key and retires every other active key,
    /// keeping it for verification until `verify_until`.
    async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        verify_until: UnixTime,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// Drops retired keys whose `verify_until` has passed.
    async fn sweep_signing_keys(&self, now: UnixTime) -> Result<u64>;

    // Master key rotation: every wrapped value, then all re-wrapped at once.
    async fn wrapped_keys(&self) -> Result<Vec<Rewrapped>>;
    async fn replace_wrapped_keys(
        &self,
        keys: &[Rewrapped],
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;

    // The installation's egress CA (SPEC §6), newest generation first.
    async fn egress_cas(&self) -> Result<Vec<EgressCaRecord>>;
    /// Inserts generation 1 unless a CA exists; `false`: another process
    /// created it first (read it back with [`Store::egress_cas`]). The
    /// audit event is appended only by the winner.
    async fn create_egress_ca(
        &self,
        ca: &EgressCaRecord,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool>;
    /// Adds `new` (the next generation, else `Conflict`) as the signer and
    /// retires the current one, trusted until `trust_until`; drops retired
    /// CAs whose trust has ended.
    async fn rotate_egress_ca(
        &self,
        new: &EgressCaRecord,
        trust_until: UnixTime,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;

    // Secrets. Written and deleted only by gated actions (`run_gated`).
    async fn secret(&self, owner: &Email, name: &str) -> Result<Option<SecretRecord>>;
    /// Metadata only: the `sealed` field of each record is left empty.
    async fn list_secrets(&self, owner: &Email) -> Result<Vec<SecretRecord>>;

    // Agents and issued tokens.
    async fn create_agent(
        &self,
        owner: &Email,
        name: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    async fn agent_exists(&self, owner: &Email, name: &str) -> Result<bool>;
    /// Records an issued token (never its value) with its audit event.
    async fn record_issued_token(
        &self,
        token: &IssuedToken,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// The highest subject or owner watermark that would cover a new
    /// token of (owner, subject) — and of its agent `parent`, for a job —
    /// so it can be stamped after it (`token::watermark::issued_at`).
    /// Recording the token checks again under the writers' lock.
    async fn issuance_floor(
        &self,
        owner: &Email,
        subject: &str,
        parent: Option<&str>,
    ) -> Result<Option<UnixTime>>;
    async fn issued_token(&self, jti: &str) -> Result<Option<IssuedToken>>;
    /// The owner's tokens that have not yet expired, newest first.
    async fn issued_tokens(&self, owner: &Email, now: UnixTime) -> Result<Vec<IssuedToken>>;

    // Jobs.
    /// Creates a job with its grants, placeholders and token record, and
    /// its audit event, in one transaction.
    async fn create_job(
        &self,
        job: &JobRecord,
        placeholders: &[PlaceholderRecord],
        token: &IssuedToken,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    async fn job(&self, id: &str) -> Result<Option<JobRecord>>;
    /// The owner's jobs, newest first (deleted ones included, marked).
    async fn jobs(&self, owner: &Email) -> Result<Vec<JobRecord>>;
    /// The owner recorded for a job at creation: one round trip.
    async fn job_owner(&self, id: &str) -> Result<Option<Email>>;
    /// A job of `owner` (deleted or not) with everything its credentials
    /// resolve from, in one round trip: the owner's wrapped data key, the
    /// agent's egress policy, and per grant its placeholder and its
    /// secret's current row (none when the secret was deleted, or replaced
    /// by a new secret of that name created after the job). `None` when
    /// `owner` has no such job.
    async fn job_material(&self, job_id: &str, owner: &Email) -> Result<Option<JobMaterial>>;
    async fn job_placeholders(&self, job_id: &str) -> Result<Vec<PlaceholderRecord>>;
    /// Marks an owner's live job deleted, drops its placeholders and
    /// expires its pending approvals; false when there is no such live job.
    async fn delete_job(
        &self,
        owner: &Email,
        id: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool>;
    /// Drops the placeholders of every job of an agent.
    async fn drop_agent_placeholders(&self, owner: &Email, agent: &str) -> Result<u64>;

    // Webhooks.
    async fn create_hook(&self, hook: &HookRecord, audit: AuditEvent, now: UnixTime) -> Result<()>;
    async fn hook(&self, id: &str) -> Result<Option<HookRecord>>;
    /// Metadata only: `sealed` is left empty.
    async fn hooks(&self, owner: &Email) -> Result<Vec<HookRecord>>;
    async fn delete_hook(
        &self,
        owner: &Email,
        id: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool>;
    /// Remembers an accepted delivery; false when it was already seen
    /// (a replay), on any replica.
    async fn remember_delivery(
        &self,
        replay_key: &[u8],
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool>;
    /// Forgets a delivery whose forwarding failed, so the provider's retry
    /// is accepted.
    async fn forget_delivery(&self, replay_key: &[u8]) -> Result<()>;

    // Upstream MCP servers (SPEC §13). Saved only by the gated action
    // `GatedAction::PutMcpServer` (`policy.change`).
    /// One of the owner's servers; another owner's name is `None`.
    async fn mcp_server(&self, owner: &Email, name: &str) -> Result<Option<McpServerRecord>>;
    /// The owner's servers, by name.
    async fn mcp_servers(&self, owner: &Email) -> Result<Vec<McpServerRecord>>;
    /// Removes one of the owner's servers with its audit event; false when
    /// the owner has none of that name.
    async fn delete_mcp_server(
        &self,
        owner: &Email,
        name: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool>;

    // Approvals (SPEC §7).
    /// Stores a held request with its `approval.request` audit record.
    async fn create_approval(
        &self,
        approval: &ApprovalRecord,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// One approval with its decisions.
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>>;
    async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRecord>>;
    /// Records one human's decision under the approval's row lock, so
    /// concurrent decisions on any replica are counted in turn. A pending
    /// approval past its expiry is marked expired instead.
    async fn decide_approval(
        &self,
        id: &str,
        decision: &ApprovalDecision,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<DecideResult>;
    /// The one key to [`Store::run_gated`]: `Some` the first time only.
    /// The API takes it at start and gives it to its gate.
    fn take_gate_key(&self) -> Option<GateKey>;
    /// Runs a gated action in one transaction with its audit records.
    /// With a completion it runs only if that approval is still
    /// `approved` (or, when the completion says it was claimed,
    /// `executing`), and moves it to `executed` in the same transaction:
    /// exactly once, whichever replica gets there first. An action whose
    /// target is gone changes nothing and comes back `Failed`.
    async fn run_gated(
        &self,
        key: &GateKey,
        action: &GatedAction,
        completion: Option<&Completion>,
        audit: Vec<AuditEvent>,
        now: UnixTime,
    ) -> Result<RunResult>;
    /// `approved → executing`: one caller wins, across replicas; false for
    /// everyone else. For verbs that call out, before the call.
    async fn claim_approval(&self, id: &str, now: UnixTime) -> Result<bool>;
    /// `approved | executing → failed`; false when it was neither.
    async fn fail_approval(
        &self,
        id: &str,
        error: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool>;
    /// Pending approvals past their expiry become `expired` (audited).
    async fn expire_approvals(&self, now: UnixTime) -> Result<Vec<ApprovalRecord>>;
    /// Approved requests not yet run (after a restart, or a crash
    /// between decision and execution), oldest first. Never `executing`
    /// ones: their outside call may have happened.
    async fn approved_approvals(&self, limit: i64) -> Result<Vec<ApprovalRecord>>;
    /// `executing` approvals claimed at or before `claimed_before` (their
    /// executor died mid-call) become `failed` ("interrupted"), audited;
    /// they are never run again.
    async fn fail_interrupted(
        &self,
        claimed_before: UnixTime,
        now: UnixTime,
    ) -> Result<Vec<ApprovalRecord>>;
    /// Hands out the sealed part of an executed approval's result once:
    /// clears it if `jti` is the requesting token's and it is still
    /// there; true for the one caller that cleared it.
    async fn take_approval_result(&self, id: &str, jti: &str, now: UnixTime) -> Result<bool>;
    /// The owner's agents with their egress policies, by name.
    async fn agents(&self, owner: &Email) -> Result<Vec<AgentRecord>>;
    /// Whether a live job of `agent` holds a grant of `secret`.
    async fn secret_granted_to_agent(
        &self,
        owner: &Email,
        agent: &str,
        secret: &str,
    ) -> Result<bool>;

    // Revocation.
    /// Persists a revocation (with its audit event), expires the pending
    /// approvals its tokens asked for, and wakes every replica's
    /// revocation sync. Returns it with its store-assigned id.
    async fn revoke(
        &self,
        kind: RevocationKind,
        not_before: UnixTime,
        expires_at: UnixTime,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<Revocation>;
    /// Revocations with an id above `after_id`, oldest first.
    async fn revocations_since(&self, after_id: i64) -> Result<Vec<Revocation>>;
    /// Every revocation that still matters (not yet expired).
    async fn live_revocations(&self, now: UnixTime) -> Result<Vec<Revocation>>;
    /// Drops revocations and issued-token rows whose tokens have expired.
    async fn sweep_revocations(&self, now: UnixTime) -> Result<u64>;
    /// A message each time any replica writes a revocation, where the
    /// engine can push (PostgreSQL LISTEN/NOTIFY): the revocation itself,
    /// or `None` when some may have been missed (resync). `None` as a whole
    /// means the engine cannot push: poll only.
    async fn revocation_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<Option<Revocation>>>;

    // Approval events (the console's live inbox).
    /// Tells every replica that an approval was created or changed
    /// (PostgreSQL NOTIFY with its id); nothing on an engine that is one
    /// process. Best effort: the inbox still shows it on reload.
    async fn announce_approval(&self, id: &str) -> Result<()>;
    /// The ids every replica announces, where the engine can push;
    /// `None`: this process hears only its own.
    async fn approval_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<String>>;

    // Job views (the egress proxy's kept views).
    /// The epoch that moves after every write that may change what a job
    /// may use (its `job_material`), on this replica and, pushed, on the
    /// others; `current()` is `None` while this process cannot vouch for
    /// it. A view read at epoch `e` is the current one while the epoch is
    /// still `e`.
    fn binding_epoch(&self) -> crate::BindingEpoch;

    // Audit.
    async fn append_audit(&self, event: AuditEvent, now: UnixTime) -> Result<AuditRecord>;
    /// Records after `since_seq`, oldest first; only `owner`'s when given.
    async fn audit_page(
        &self,
        owner: Option<&Email>,
        since_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>>;
    /// The whole log in order, and the head the store believes in.
    async fn audit_all(&self) -> Result<(Vec<AuditRecord>, ChainHead)>;

    // Upstream credentials (SPEC §8). Every state change of a rotation is
    // one transaction with its audit event, so a crash between steps
    // leaves a state recovery can finish or undo.

    async fn upstream_state(&self, name: &str) -> Result<Option<UpstreamState>>;
    /// Every token of the upstream, newest first.
    async fn upstream_tokens(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>>;
    /// The upstream's tokens still in play (pending, current, awaiting
    /// revocation), newest first: what the tick and status read.
    async fn upstream_open_tokens(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>>;
    /// Installs a bootstrap's first token. `Conflict` while a current
    /// token is unexpired (also under a concurrent bootstrap); an earlier
    /// pending token is queued for revocation, an expired current marked
    /// expired.
    async fn upstream_install(
        &self,
        install: &UpstreamInstall,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// Records a freshly minted token as pending, provided the current
    /// token is still `expected_current` and nothing is pending.
    async fn upstream_persist_pending(
        &self,
        name: &str,
        expected_current: &str,
        pending: &UpstreamSlot,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// Makes the pending token `pending_id` current, rewrites the owner's
    /// secret with its value, and queues the old current for revocation.
    async fn upstream_switch(
        &self,
        name: &str,
        pending_id: &str,
        secret: &SecretRecord,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// Drops a pending token that will not be used, queueing its revocation.
    async fn upstream_discard_pending(
        &self,
        name: &str,
        pending_id: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// Ends a queued revocation: `Revoked`, or `Expired` when it lapsed
    /// first. Ended rows older than a week are pruned (the audit log keeps
    /// the history).
    async fn upstream_revoke_done(
        &self,
        name: &str,
        token_id: &str,
        state: UpstreamTokenState,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// Counts a failed revocation attempt and schedules the next one.
    async fn upstream_revoke_failed(
        &self,
        name: &str,
        token_id: &str,
        next_attempt_at: UnixTime,
        error: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()>;
    /// True while the owner has a live unexpired job or an unexpired,
    /// unrevoked session: the condition for rotating with `idle = expire`.
    async fn owner_active(&self, owner: &Email, now: UnixTime) -> Result<bool>;
    /// Tries to become the one replica rotating `name`; `None` when
    /// another holds it. Single-node engines always succeed.
    async fn upstream_lock(&self, name: &str) -> Result<Option<UpstreamLock>>;
    /// Releases a lock from [`Store::upstream_lock`] at once (dropping it
    /// also releases it, but only once its connection is next used).
    async fn upstream_unlock(&self, lock: UpstreamLock) -> Result<()>;
}
