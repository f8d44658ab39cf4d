//! One place that times every store call: a decorator over the `Store`
//! trait object, put around the store once at start (`server::start`).
//! Each call is observed under its method name and outcome
//! (`gatehouse_store_call_duration_seconds`). A new trait method does not
//! compile until it is listed here, so no call goes untimed.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use gatehouse_domain::audit::{AuditEvent, AuditRecord, ChainHead};
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::Email;
use gatehouse_store::*;

use crate::metrics::Metrics;

type Result<T> = std::result::Result<T, StoreError>;

pub struct TimedStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        Arc::new(Self { inner, metrics })
    }

    async fn timed<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = fut.await;
        self.metrics
            .store_call(call, result.is_ok(), started.elapsed());
        result
    }
}

#[async_trait]
impl Store for TimedStore {
    fn engine(&self) -> Engine {
        self.inner.engine()
    }
    async fn ping(&self) -> Result<()> {
        self.timed("ping", self.inner.ping()).await
    }
    async fn bootstrap_state(&self) -> Result<BootstrapState> {
        self.timed("bootstrap_state", self.inner.bootstrap_state())
            .await
    }
    async fn set_bootstrap_code(&self, digest: &[u8]) -> Result<bool> {
        self.timed("set_bootstrap_code", self.inner.set_bootstrap_code(digest))
            .await
    }
    async fn claim_bootstrap(
        &self,
        operator: &NewOwner,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "claim_bootstrap",
            self.inner.claim_bootstrap(operator, audit, now),
        )
        .await
    }
    async fn create_owner(&self, owner: &NewOwner, audit: AuditEvent, now: UnixTime) -> Result<()> {
        self.timed("create_owner", self.inner.create_owner(owner, audit, now))
            .await
    }
    async fn owner(&self, email: &Email) -> Result<Option<OwnerRecord>> {
        self.timed("owner", self.inner.owner(email)).await
    }
    async fn owner_data_key(&self, email: &Email) -> Result<Option<WrappedKey>> {
        self.timed("owner_data_key", self.inner.owner_data_key(email))
            .await
    }
    async fn set_login_code(
        &self,
        email: &Email,
        digest: &[u8],
        expires_at: UnixTime,
    ) -> Result<()> {
        self.timed(
            "set_login_code",
            self.inner.set_login_code(email, digest, expires_at),
        )
        .await
    }
    async fn login_code(&self, email: &Email, now: UnixTime) -> Result<Option<Vec<u8>>> {
        self.timed("login_code", self.inner.login_code(email, now))
            .await
    }
    async fn consume_login_code(
        &self,
        email: &Email,
        digest: &[u8],
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed(
            "consume_login_code",
            self.inner.consume_login_code(email, digest, audit, now),
        )
        .await
    }
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        self.timed("signing_keys", self.inner.signing_keys()).await
    }
    async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        verify_until: UnixTime,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "rotate_signing_key",
            self.inner.rotate_signing_key(new, verify_until, audit, now),
        )
        .await
    }
    async fn sweep_signing_keys(&self, now: UnixTime) -> Result<u64> {
        self.timed("sweep_signing_keys", self.inner.sweep_signing_keys(now))
            .await
    }
    async fn wrapped_keys(&self) -> Result<Vec<Rewrapped>> {
        self.timed("wrapped_keys", self.inner.wrapped_keys()).await
    }
    async fn replace_wrapped_keys(
        &self,
        keys: &[Rewrapped],
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "replace_wrapped_keys",
            self.inner.replace_wrapped_keys(keys, audit, now),
        )
        .await
    }
    async fn egress_cas(&self) -> Result<Vec<EgressCaRecord>> {
        self.timed("egress_cas", self.inner.egress_cas()).await
    }
    async fn create_egress_ca(
        &self,
        ca: &EgressCaRecord,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed(
            "create_egress_ca",
            self.inner.create_egress_ca(ca, audit, now),
        )
        .await
    }
    async fn rotate_egress_ca(
        &self,
        new: &EgressCaRecord,
        trust_until: UnixTime,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "rotate_egress_ca",
            self.inner.rotate_egress_ca(new, trust_until, audit, now),
        )
        .await
    }
    async fn secret(&self, owner: &Email, name: &str) -> Result<Option<SecretRecord>> {
        self.timed("secret", self.inner.secret(owner, name)).await
    }
    async fn list_secrets(&self, owner: &Email) -> Result<Vec<SecretRecord>> {
        self.timed("list_secrets", self.inner.list_secrets(owner))
            .await
    }
    async fn create_agent(
        &self,
        owner: &Email,
        name: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "create_agent",
            self.inner.create_agent(owner, name, audit, now),
        )
        .await
    }
    async fn agent_exists(&self, owner: &Email, name: &str) -> Result<bool> {
        self.timed("agent_exists", self.inner.agent_exists(owner, name))
            .await
    }
    async fn record_issued_token(
        &self,
        token: &IssuedToken,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "record_issued_token",
            self.inner.record_issued_token(token, audit, now),
        )
        .await
    }
    async fn issuance_floor(
        &self,
        owner: &Email,
        subject: &str,
        parent: Option<&str>,
    ) -> Result<Option<UnixTime>> {
        self.timed(
            "issuance_floor",
            self.inner.issuance_floor(owner, subject, parent),
        )
        .await
    }
    async fn issued_token(&self, jti: &str) -> Result<Option<IssuedToken>> {
        self.timed("issued_token", self.inner.issued_token(jti))
            .await
    }
    async fn issued_tokens(&self, owner: &Email, now: UnixTime) -> Result<Vec<IssuedToken>> {
        self.timed("issued_tokens", self.inner.issued_tokens(owner, now))
            .await
    }
    async fn create_job(
        &self,
        job: &JobRecord,
        placeholders: &[PlaceholderRecord],
        token: &IssuedToken,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "create_job",
            self.inner.create_job(job, placeholders, token, audit, now),
        )
        .await
    }
    async fn job(&self, id: &str) -> Result<Option<JobRecord>> {
        self.timed("job", self.inner.job(id)).await
    }
    async fn jobs(&self, owner: &Email) -> Result<Vec<JobRecord>> {
        self.timed("jobs", self.inner.jobs(owner)).await
    }
    async fn job_owner(&self, id: &str) -> Result<Option<Email>> {
        self.timed("job_owner", self.inner.job_owner(id)).await
    }
    async fn job_material(&self, job_id: &str, owner: &Email) -> Result<Option<JobMaterial>> {
        self.timed("job_material", self.inner.job_material(job_id, owner))
            .await
    }
    async fn job_placeholders(&self, job_id: &str) -> Result<Vec<PlaceholderRecord>> {
        self.timed("job_placeholders", self.inner.job_placeholders(job_id))
            .await
    }
    async fn delete_job(
        &self,
        owner: &Email,
        id: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed("delete_job", self.inner.delete_job(owner, id, audit, now))
            .await
    }
    async fn drop_agent_placeholders(&self, owner: &Email, agent: &str) -> Result<u64> {
        self.timed(
            "drop_agent_placeholders",
            self.inner.drop_agent_placeholders(owner, agent),
        )
        .await
    }
    async fn create_hook(&self, hook: &HookRecord, audit: AuditEvent, now: UnixTime) -> Result<()> {
        self.timed("create_hook", self.inner.create_hook(hook, audit, now))
            .await
    }
    async fn hook(&self, id: &str) -> Result<Option<HookRecord>> {
        self.timed("hook", self.inner.hook(id)).await
    }
    async fn hooks(&self, owner: &Email) -> Result<Vec<HookRecord>> {
        self.timed("hooks", self.inner.hooks(owner)).await
    }
    async fn mcp_server(&self, owner: &Email, name: &str) -> Result<Option<McpServerRecord>> {
        self.timed("mcp_server", self.inner.mcp_server(owner, name))
            .await
    }
    async fn mcp_servers(&self, owner: &Email) -> Result<Vec<McpServerRecord>> {
        self.timed("mcp_servers", self.inner.mcp_servers(owner))
            .await
    }
    async fn delete_mcp_server(
        &self,
        owner: &Email,
        name: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed(
            "delete_mcp_server",
            self.inner.delete_mcp_server(owner, name, audit, now),
        )
        .await
    }
    async fn delete_hook(
        &self,
        owner: &Email,
        id: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed("delete_hook", self.inner.delete_hook(owner, id, audit, now))
            .await
    }
    async fn remember_delivery(
        &self,
        replay_key: &[u8],
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed(
            "remember_delivery",
            self.inner.remember_delivery(replay_key, expires_at, now),
        )
        .await
    }
    async fn forget_delivery(&self, replay_key: &[u8]) -> Result<()> {
        self.timed("forget_delivery", self.inner.forget_delivery(replay_key))
            .await
    }
    async fn create_approval(
        &self,
        approval: &ApprovalRecord,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "create_approval",
            self.inner.create_approval(approval, audit, now),
        )
        .await
    }
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>> {
        self.timed("approval", self.inner.approval(id)).await
    }
    async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<ApprovalRecord>> {
        self.timed("approvals", self.inner.approvals(filter)).await
    }
    async fn decide_approval(
        &self,
        id: &str,
        decision: &ApprovalDecision,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<DecideResult> {
        self.timed(
            "decide_approval",
            self.inner.decide_approval(id, decision, audit, now),
        )
        .await
    }
    fn take_gate_key(&self) -> Option<GateKey> {
        self.inner.take_gate_key()
    }
    async fn run_gated(
        &self,
        key: &GateKey,
        action: &GatedAction,
        completion: Option<&Completion>,
        audit: Vec<AuditEvent>,
        now: UnixTime,
    ) -> Result<RunResult> {
        self.timed(
            "run_gated",
            self.inner.run_gated(key, action, completion, audit, now),
        )
        .await
    }
    async fn claim_approval(&self, id: &str, now: UnixTime) -> Result<bool> {
        self.timed("claim_approval", self.inner.claim_approval(id, now))
            .await
    }
    async fn fail_approval(
        &self,
        id: &str,
        error: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<bool> {
        self.timed(
            "fail_approval",
            self.inner.fail_approval(id, error, audit, now),
        )
        .await
    }
    async fn expire_approvals(&self, now: UnixTime) -> Result<Vec<ApprovalRecord>> {
        self.timed("expire_approvals", self.inner.expire_approvals(now))
            .await
    }
    async fn approved_approvals(&self, limit: i64) -> Result<Vec<ApprovalRecord>> {
        self.timed("approved_approvals", self.inner.approved_approvals(limit))
            .await
    }
    async fn fail_interrupted(
        &self,
        claimed_before: UnixTime,
        now: UnixTime,
    ) -> Result<Vec<ApprovalRecord>> {
        self.timed(
            "fail_interrupted",
            self.inner.fail_interrupted(claimed_before, now),
        )
        .await
    }
    async fn take_approval_result(&self, id: &str, jti: &str, now: UnixTime) -> Result<bool> {
        self.timed(
            "take_approval_result",
            self.inner.take_approval_result(id, jti, now),
        )
        .await
    }
    async fn agents(&self, owner: &Email) -> Result<Vec<AgentRecord>> {
        self.timed("agents", self.inner.agents(owner)).await
    }
    async fn secret_granted_to_agent(
        &self,
        owner: &Email,
        agent: &str,
        secret: &str,
    ) -> Result<bool> {
        self.timed(
            "secret_granted_to_agent",
            self.inner.secret_granted_to_agent(owner, agent, secret),
        )
        .await
    }
    async fn revoke(
        &self,
        kind: RevocationKind,
        not_before: UnixTime,
        expires_at: UnixTime,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<Revocation> {
        self.timed(
            "revoke",
            self.inner.revoke(kind, not_before, expires_at, audit, now),
        )
        .await
    }
    async fn revocations_since(&self, after_id: i64) -> Result<Vec<Revocation>> {
        self.timed("revocations_since", self.inner.revocations_since(after_id))
            .await
    }
    async fn live_revocations(&self, now: UnixTime) -> Result<Vec<Revocation>> {
        self.timed("live_revocations", self.inner.live_revocations(now))
            .await
    }
    async fn sweep_revocations(&self, now: UnixTime) -> Result<u64> {
        self.timed("sweep_revocations", self.inner.sweep_revocations(now))
            .await
    }
    async fn revocation_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<Option<Revocation>>> {
        self.inner.revocation_wakeups().await
    }
    async fn announce_approval(&self, id: &str) -> Result<()> {
        self.timed("announce_approval", self.inner.announce_approval(id))
            .await
    }
    async fn approval_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.inner.approval_wakeups().await
    }
    fn binding_epoch(&self) -> gatehouse_store::BindingEpoch {
        self.inner.binding_epoch()
    }
    async fn append_audit(&self, event: AuditEvent, now: UnixTime) -> Result<AuditRecord> {
        self.timed("append_audit", self.inner.append_audit(event, now))
            .await
    }
    async fn audit_page(
        &self,
        owner: Option<&Email>,
        since_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        self.timed("audit_page", self.inner.audit_page(owner, since_seq, limit))
            .await
    }
    async fn audit_all(&self) -> Result<(Vec<AuditRecord>, ChainHead)> {
        self.timed("audit_all", self.inner.audit_all()).await
    }
    async fn upstream_state(&self, name: &str) -> Result<Option<UpstreamState>> {
        self.timed("upstream_state", self.inner.upstream_state(name))
            .await
    }
    async fn upstream_tokens(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>> {
        self.timed("upstream_tokens", self.inner.upstream_tokens(name))
            .await
    }
    async fn upstream_open_tokens(&self, name: &str) -> Result<Vec<UpstreamTokenRecord>> {
        self.timed(
            "upstream_open_tokens",
            self.inner.upstream_open_tokens(name),
        )
        .await
    }
    async fn upstream_install(
        &self,
        install: &UpstreamInstall,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "upstream_install",
            self.inner.upstream_install(install, audit, now),
        )
        .await
    }
    async fn upstream_persist_pending(
        &self,
        name: &str,
        expected_current: &str,
        pending: &UpstreamSlot,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "upstream_persist_pending",
            self.inner
                .upstream_persist_pending(name, expected_current, pending, audit, now),
        )
        .await
    }
    async fn upstream_switch(
        &self,
        name: &str,
        pending_id: &str,
        secret: &SecretRecord,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "upstream_switch",
            self.inner
                .upstream_switch(name, pending_id, secret, audit, now),
        )
        .await
    }
    async fn upstream_discard_pending(
        &self,
        name: &str,
        pending_id: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "upstream_discard_pending",
            self.inner
                .upstream_discard_pending(name, pending_id, audit, now),
        )
        .await
    }
    async fn upstream_revoke_done(
        &self,
        name: &str,
        token_id: &str,
        state: UpstreamTokenState,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "upstream_revoke_done",
            self.inner
                .upstream_revoke_done(name, token_id, state, audit, now),
        )
        .await
    }
    async fn upstream_revoke_failed(
        &self,
        name: &str,
        token_id: &str,
        next_attempt_at: UnixTime,
        error: &str,
        audit: AuditEvent,
        now: UnixTime,
    ) -> Result<()> {
        self.timed(
            "upstream_revoke_failed",
            self.inner
                .upstream_revoke_failed(name, token_id, next_attempt_at, error, audit, now),
        )
        .await
    }
    async fn owner_active(&self, owner: &Email, now: UnixTime) -> Result<bool> {
        self.timed("owner_active", self.inner.owner_active(owner, now))
            .await
    }
    async fn upstream_lock(&self, name: &str) -> Result<Option<UpstreamLock>> {
        self.timed("upstream_lock", self.inner.upstream_lock(name))
            .await
    }
    async fn upstream_unlock(&self, lock: UpstreamLock) -> Result<()> {
        self.timed("upstream_unlock", self.inner.upstream_unlock(lock))
            .await
    }
}
