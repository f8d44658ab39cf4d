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

/// The timed methods: each runs the inner store's method of the same name
/// under `timed`, observed under that name. Written once here; a new
/// trait method is a compile error until listed.
macro_rules! timed_store {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {
        #[async_trait]
        impl Store for TimedStore {
            // Not store calls: no I/O to time.
            fn engine(&self) -> Engine {
                self.inner.engine()
            }
            fn take_gate_key(&self) -> Option<GateKey> {
                self.inner.take_gate_key()
            }
            fn binding_epoch(&self) -> gatehouse_store::BindingEpoch {
                self.inner.binding_epoch()
            }
            async fn revocation_wakeups(
                &self,
            ) -> Option<tokio::sync::mpsc::Receiver<Option<Revocation>>> {
                self.inner.revocation_wakeups().await
            }
            async fn approval_wakeups(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
                self.inner.approval_wakeups().await
            }
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ok> {
                    self.timed(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*
        }
    };
}

timed_store! {
    ping() -> ();
    bootstrap_state() -> BootstrapState;
    set_bootstrap_code(digest: &[u8]) -> bool;
    claim_bootstrap(operator: &NewOwner, audit: AuditEvent, now: UnixTime) -> ();
    create_owner(owner: &NewOwner, audit: AuditEvent, now: UnixTime) -> ();
    owner(email: &Email) -> Option<OwnerRecord>;
    owner_data_key(email: &Email) -> Option<WrappedKey>;
    set_login_code(email: &Email, digest: &[u8], expires_at: UnixTime) -> ();
    login_code(email: &Email, now: UnixTime) -> Option<Vec<u8>>;
    consume_login_code(email: &Email, digest: &[u8], audit: AuditEvent, now: UnixTime) -> bool;
    signing_keys() -> Vec<SigningKeyRecord>;
    rotate_signing_key(new: &SigningKeyRecord, verify_until: UnixTime, audit: AuditEvent, now: UnixTime) -> ();
    sweep_signing_keys(now: UnixTime) -> u64;
    wrapped_keys() -> Vec<Rewrapped>;
    replace_wrapped_keys(keys: &[Rewrapped], audit: AuditEvent, now: UnixTime) -> ();
    egress_cas() -> Vec<EgressCaRecord>;
    create_egress_ca(ca: &EgressCaRecord, audit: AuditEvent, now: UnixTime) -> bool;
    rotate_egress_ca(new: &EgressCaRecord, trust_until: UnixTime, audit: AuditEvent, now: UnixTime) -> ();
    secret(owner: &Email, name: &str) -> Option<SecretRecord>;
    list_secrets(owner: &Email) -> Vec<SecretRecord>;
    create_agent(owner: &Email, name: &str, audit: AuditEvent, now: UnixTime) -> ();
    agent_exists(owner: &Email, name: &str) -> bool;
    record_issued_token(token: &IssuedToken, audit: AuditEvent, now: UnixTime) -> ();
    issuance_floor(owner: &Email, subject: &str, parent: Option<&str>) -> Option<UnixTime>;
    issued_token(jti: &str) -> Option<IssuedToken>;
    issued_tokens(owner: &Email, now: UnixTime) -> Vec<IssuedToken>;
    create_job(job: &JobRecord, placeholders: &[PlaceholderRecord], token: &IssuedToken, audit: AuditEvent, now: UnixTime) -> ();
    job(id: &str) -> Option<JobRecord>;
    jobs(owner: &Email) -> Vec<JobRecord>;
    job_owner(id: &str) -> Option<Email>;
    job_material(job_id: &str, owner: &Email) -> Option<JobMaterial>;
    job_placeholders(job_id: &str) -> Vec<PlaceholderRecord>;
    delete_job(owner: &Email, id: &str, audit: AuditEvent, now: UnixTime) -> bool;
    drop_agent_placeholders(owner: &Email, agent: &str) -> u64;
    create_hook(hook: &HookRecord, audit: AuditEvent, now: UnixTime) -> ();
    hook(id: &str) -> Option<HookRecord>;
    hooks(owner: &Email) -> Vec<HookRecord>;
    mcp_server(owner: &Email, name: &str) -> Option<McpServerRecord>;
    mcp_servers(owner: &Email) -> Vec<McpServerRecord>;
    delete_mcp_server(owner: &Email, name: &str, audit: AuditEvent, now: UnixTime) -> bool;
    delete_hook(owner: &Email, id: &str, audit: AuditEvent, now: UnixTime) -> bool;
    remember_delivery(replay_key: &[u8], expires_at: UnixTime, now: UnixTime) -> bool;
    forget_delivery(replay_key: &[u8]) -> ();
    create_approval(approval: &ApprovalRecord, audit: AuditEvent, now: UnixTime) -> ();
    approval(id: &str) -> Option<ApprovalRecord>;
    approvals(filter: &ApprovalFilter) -> Vec<ApprovalRecord>;
    decide_approval(id: &str, decision: &ApprovalDecision, audit: AuditEvent, now: UnixTime) -> DecideResult;
    run_gated(key: &GateKey, action: &GatedAction, completion: Option<&Completion>, audit: Vec<AuditEvent>, now: UnixTime) -> RunResult;
    claim_approval(id: &str, now: UnixTime) -> bool;
    fail_approval(id: &str, error: &str, audit: AuditEvent, now: UnixTime) -> bool;
    expire_approvals(now: UnixTime) -> Vec<ApprovalRecord>;
    approved_approvals(limit: i64) -> Vec<ApprovalRecord>;
    fail_interrupted(claimed_before: UnixTime, now: UnixTime) -> Vec<ApprovalRecord>;
    take_approval_result(id: &str, jti: &str, now: UnixTime) -> bool;
    agents(owner: &Email) -> Vec<AgentRecord>;
    secret_granted_to_agent(owner: &Email, agent: &str, secret: &str) -> bool;
    revoke(kind: RevocationKind, not_before: UnixTime, expires_at: UnixTime, audit: AuditEvent, now: UnixTime) -> Revocation;
    revocations_since(after_id: i64) -> Vec<Revocation>;
    live_revocations(now: UnixTime) -> Vec<Revocation>;
    sweep_revocations(now: UnixTime) -> u64;
    announce_approval(id: &str) -> ();
    append_audit(event: AuditEvent, now: UnixTime) -> AuditRecord;
    audit_page(owner: Option<&Email>, since_seq: i64, limit: i64) -> Vec<AuditRecord>;
    audit_all() -> (Vec<AuditRecord>, ChainHead);
    upstream_state(name: &str) -> Option<UpstreamState>;
    upstream_tokens(name: &str) -> Vec<UpstreamTokenRecord>;
    upstream_open_tokens(name: &str) -> Vec<UpstreamTokenRecord>;
    upstream_install(install: &UpstreamInstall, audit: AuditEvent, now: UnixTime) -> ();
    upstream_persist_pending(name: &str, expected_current: &str, pending: &UpstreamSlot, audit: AuditEvent, now: UnixTime) -> ();
    upstream_switch(name: &str, pending_id: &str, secret: &SecretRecord, audit: AuditEvent, now: UnixTime) -> ();
    upstream_discard_pending(name: &str, pending_id: &str, audit: AuditEvent, now: UnixTime) -> ();
    upstream_revoke_done(name: &str, token_id: &str, state: UpstreamTokenState, audit: AuditEvent, now: UnixTime) -> ();
    upstream_revoke_failed(name: &str, token_id: &str, next_attempt_at: UnixTime, error: &str, audit: AuditEvent, now: UnixTime) -> ();
    owner_active(owner: &Email, now: UnixTime) -> bool;
    upstream_lock(name: &str) -> Option<UpstreamLock>;
    upstream_unlock(lock: UpstreamLock) -> ();
}
