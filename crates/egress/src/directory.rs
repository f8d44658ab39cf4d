//! What the proxy needs from the rest of Gatehouse, as two small traits the
//! API crate implements: who a proxy token belongs to (through the one
//! token verifier, never a second one) and what that job may use (its
//! placeholders, their real values and host bindings, its allow list).
//!
//! The proxy never reads the store or a token itself; keeping these as
//! traits lets the proxy's tests run with a fake directory and keeps this
//! crate free of the API crate.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::secret::SecretBytes;

/// A verified job token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobIdentity {
    pub job_id: String,
    /// Token subject, `<agent>/<job id>`.
    pub subject: String,
    pub agent: String,
    pub owner: String,
    /// The token's id: the job's credentials resolve only for the token
    /// recorded on the job.
    pub jti: String,
}

/// Why a proxy credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Missing, malformed, expired, revoked, not a job token, or a job
    /// that no longer exists: `407`.
    Refused,
    /// The revocation view cannot be confirmed: `503`, never a pass.
    Unavailable,
}

/// Why a job's view could not be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// The job's credentials do not resolve: the uniform `403`, never a
    /// view with the failing grant left out.
    Refused,
    /// A failure of ours (the store): `500`, logged.
    Internal(String),
}

/// A secret's `inject` rule: add `header: format` (with `{value}`
/// replaced) when the request does not carry that header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    pub header: String,
    pub format: String,
}

/// One secret granted to a job, as its secret's row is now: the binding,
/// `inject` rule and value in force at the moment of the request.
pub struct Binding {
    pub secret: String,
    /// The job's stand-in for the value (placeholder grants only).
    pub placeholder: Option<String>,
    pub placeholder_expires_at: UnixTime,
    /// Host patterns the value may be sent to.
    pub allowed_hosts: Vec<String>,
    pub value: SecretBytes,
    pub inject: Option<Inject>,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("secret", &self.secret)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

/// Everything the proxy needs to decide about one job's traffic.
#[derive(Debug, Default)]
pub struct JobView {
    /// The job's `egress.allow_hosts`; empty means the hosts its secrets
    /// name.
    pub allow_hosts: Vec<String>,
    pub bindings: Vec<Binding>,
    /// The agent's egress policy, when it has one: a ceiling every job of
    /// the agent is held to, whatever the job's own list says.
    pub agent_allow_hosts: Option<Vec<String>>,
}

impl JobView {
    /// The allow list in force: the job's own, or else every host its
    /// granted secrets are bound to.
    pub fn effective_allow_list(&self) -> Vec<&str> {
        if self.allow_hosts.is_empty() {
            self.bindings
                .iter()
                .flat_map(|b| b.allowed_hosts.iter().map(String::as_str))
                .collect()
        } else {
            self.allow_hosts.iter().map(String::as_str).collect()
        }
    }

    /// Whether the job may reach `host` at all: its own allow list (or its
    /// secrets' hosts) and, when the agent has one, the agent's policy.
    pub fn allows(&self, host: &str) -> bool {
        use gatehouse_domain::egress::host_allowed;
        host_allowed(&self.effective_allow_list(), host)
            && self
                .agent_allow_hosts
                .as_ref()
                .is_none_or(|policy| host_allowed(policy, host))
    }

    /// Whether traffic to `host` must be terminated (intercepted): some
    /// live placeholder or inject rule of this job is bound to it.
    pub fn binds(&self, host: &str, now: UnixTime) -> bool {
        self.bindings.iter().any(|b| {
            let usable =
                (b.placeholder.is_some() && b.placeholder_expires_at > now) || b.inject.is_some();
            usable && gatehouse_domain::egress::host_allowed(&b.allowed_hosts, host)
        })
    }
}

/// One egress event for the audit log. Never carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressAudit {
    /// `egress.refuse`, `egress.swap`, `egress.judge`.
    pub action: &'static str,
    /// Host, and for swaps the secret name (`secret@host`).
    pub target: String,
    /// `denied:<reason>`, `ok`, `allow`, `deny`.
    pub outcome: String,
    /// The job, when known.
    pub job: Option<JobIdentity>,
    pub source: IpAddr,
}

/// What the proxy keeps about the token an open connection (a tunnel, an
/// intercepted connection, a kept upstream connection) was opened with:
/// enough to tell, at any later moment, whether that token still stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: JobIdentity,
    pub jti: String,
    /// The token's `iat`: subject, agent and owner watermarks compare it.
    pub issued_at: UnixTime,
    /// When the verifier stops accepting the token (its `exp` plus the
    /// clock skew allowance).
    pub ends_at: UnixTime,
}

/// What a directory remembers between re-checks of one lease, so that a
/// re-check repeats only what may have changed since the last one. Kept
/// by whoever holds the lease (a client connection's credential, an
/// intercepted tunnel) and forgotten with it; never a verdict on its own.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rechecked {
    /// The revocation view's generation at which the token was last found
    /// not revoked: while the view has not changed, neither has that.
    pub revocations: Option<u64>,
    /// When the job was last read from the store as live and holding the
    /// token (believed as long as a fresh read would be).
    pub live_since: Option<UnixTime>,
}

/// How open connections learn that their token stopped being valid
/// (SPEC §6, revocation reaches open connections). A supertrait of
/// [`JobDirectory`], so no directory can leave it out.
pub trait TokenWatch: Send + Sync {
    /// Whether the token behind `lease` is revoked now: by jti (a deleted
    /// job's token is revoked by jti), by its subject, its agent or its
    /// owner. Expiry is the proxy's to check, against `ends_at`.
    fn revoked(&self, lease: &Lease) -> bool;

    /// A receiver that changes whenever a revocation reaches this node
    /// (its own, another replica's, or one written by the CLI).
    fn revocations(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// The API's side of the proxy.
#[async_trait]
pub trait JobDirectory: TokenWatch + Send + Sync + 'static {
    /// Verifies a job token with the one token verifier (signature,
    /// claims, revocation) and that its job is live; the lease says
    /// whose it is and until when it can stand.
    async fn verify(&self, token: &str, peer: IpAddr) -> Result<Lease, AuthFailure>;

    /// The verdict on a token [`JobDirectory::verify`] accepted earlier
    /// for the same connection, now: everything that can change since
    /// (its time window, revocation of any kind, the view's freshness,
    /// its job still live and still holding it), without decoding or
    /// checking its signature again. Refusals are what `verify` would
    /// answer now. `memo` is this lease's, from its earlier re-checks.
    async fn recheck(
        &self,
        lease: &Lease,
        memo: &mut Rechecked,
        peer: IpAddr,
    ) -> Result<(), AuthFailure>;

    /// The job's allow list and bindings, read from the secrets' current
    /// rows for this request. An error refuses the request.
    async fn view(&self, job: &JobIdentity) -> Result<Arc<JobView>, ViewError>;

    /// Appends an egress event to the audit log (best effort, already
    /// rate-limited by the proxy).
    fn audit(&self, event: EgressAudit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(job: &[&str], secret_hosts: &[&str], agent: Option<&[&str]>) -> JobView {
        JobView {
            allow_hosts: job.iter().map(|h| h.to_string()).collect(),
            bindings: vec![Binding {
                secret: "s".into(),
                placeholder: None,
                placeholder_expires_at: 0,
                allowed_hosts: secret_hosts.iter().map(|h| h.to_string()).collect(),
                value: gatehouse_domain::SecretBytes::new(b"value".to_vec()),
                inject: None,
            }],
            agent_allow_hosts: agent.map(|a| a.iter().map(|h| h.to_string()).collect()),
        }
    }

    #[test]
    fn the_agent_policy_is_a_ceiling_over_the_jobs_own_list() {
        let open = view(&["*"], &[], None);
        assert!(open.allows("anything.example"));
        let held = view(&["*"], &[], Some(&["*.github.com"]));
        assert!(held.allows("api.github.com"));
        assert!(!held.allows("evil.example"));
        // The job's list still narrows within the policy.
        let narrow = view(&["api.github.com"], &[], Some(&["*.github.com"]));
        assert!(!narrow.allows("uploads.github.com"));
        // No job list: the secrets' hosts, still under the policy.
        let by_secret = view(
            &[],
            &["api.github.com", "x.example"],
            Some(&["api.github.com"]),
        );
        assert!(by_secret.allows("api.github.com"));
        assert!(!by_secret.allows("x.example"));
        // An empty policy allows nothing.
        assert!(!view(&["*"], &[], Some(&[])).allows("api.github.com"));
    }
}
