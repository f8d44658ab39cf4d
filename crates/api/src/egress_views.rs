//! The egress proxy's kept job views: what a job may use (values, host
//! bindings, `inject` rules, placeholders, allow lists), as the one
//! job-credential resolver last read it, so a request does not read the
//! store when nothing it depends on has changed.
//!
//! A view is trusted only while all of these hold, else the request reads
//! the store as before (and keeps the new view):
//! - it was read for this job, this owner and this very token (jti);
//! - the store's binding epoch ([`gatehouse_store::BindingEpoch`]) is
//!   confirmed and still the one seen *before* the view was read: every
//!   store write that may change a view moves it after the write, on this
//!   replica at once and on the others through NOTIFY, so a view read
//!   before a secret was replaced or deleted, a job deleted or an agent's
//!   policy changed is never used after the change reached this node; an
//!   epoch this process cannot vouch for (PostgreSQL listener down) means
//!   nothing kept is used;
//! - every placeholder in it is still unexpired (the resolver refuses a
//!   job with an expired one: the next read refuses it again);
//! - it is younger than [`MAX_AGE`], a safety net behind the push.
//!
//! The token itself is verified on every request before the view is
//! asked for (signature cache, claims, revocation), so a revoked token
//! never reaches a kept view. Values stay in zeroizing [`SecretBytes`]
//! inside the views, and a view is dropped when evicted or replaced.
//!
//! [`SecretBytes`]: gatehouse_domain::SecretBytes

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_domain::clock::UnixTime;
use gatehouse_egress::{JobIdentity, JobView};

/// The longest a view is kept, whatever the epoch says.
pub const MAX_AGE: Duration = Duration::from_secs(10);
/// Views kept at most; beyond, the oldest go first.
pub const MAX_VIEWS: usize = 10_000;

struct Kept {
    owner: String,
    jti: String,
    epoch: u64,
    read_at: Instant,
    /// The earliest placeholder expiry in the view (`UnixTime::MAX` if none).
    expires_at: UnixTime,
    view: Arc<JobView>,
}

/// Job id → its kept view.
pub struct JobViews {
    kept: Mutex<HashMap<String, Kept>>,
    capacity: usize,
}

impl Default for JobViews {
    fn default() -> Self {
        Self::new(MAX_VIEWS)
    }
}

impl JobViews {
    pub fn new(capacity: usize) -> Self {
        Self {
            kept: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Kept>) -> T) -> T {
        match self.kept.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The kept view of `job`'s token, if it may still be used at epoch
    /// `epoch` (`None`: unconfirmed, nothing may) and time `now`.
    pub fn get(
        &self,
        job: &JobIdentity,
        epoch: Option<u64>,
        now: UnixTime,
    ) -> Option<Arc<JobView>> {
        let epoch = epoch?;
        self.with(|kept| {
            let k = kept.get(&job.job_id)?;
            let usable = k.epoch == epoch
                && k.jti == job.jti
                && k.owner == job.owner
                && k.expires_at > now
                && k.read_at.elapsed() < MAX_AGE;
            if usable {
                Some(k.view.clone())
            } else {
                kept.remove(&job.job_id);
                None
            }
        })
    }

    /// Keeps `view`, read for `job` after the epoch was seen at `epoch`.
    pub fn keep(&self, job: &JobIdentity, epoch: Option<u64>, view: Arc<JobView>) {
        let Some(epoch) = epoch else { return };
        let expires_at = view
            .bindings
            .iter()
            .filter(|b| b.placeholder.is_some())
            .map(|b| b.placeholder_expires_at)
            .min()
            .unwrap_or(UnixTime::MAX);
        let capacity = self.capacity;
        self.with(|kept| {
            if kept.len() >= capacity && !kept.contains_key(&job.job_id) {
                kept.retain(|_, k| k.epoch == epoch && k.read_at.elapsed() < MAX_AGE);
                if kept.len() >= capacity {
                    if let Some(oldest) = kept
                        .iter()
                        .min_by_key(|(_, k)| k.read_at)
                        .map(|(id, _)| id.clone())
                    {
                        kept.remove(&oldest);
                    }
                }
            }
            kept.insert(
                job.job_id.clone(),
                Kept {
                    owner: job.owner.clone(),
                    jti: job.jti.clone(),
                    epoch,
                    read_at: Instant::now(),
                    expires_at,
                    view,
                },
            );
        });
    }

    pub fn len(&self) -> usize {
        self.with(|kept| kept.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_egress::Binding;

    fn job(id: &str, jti: &str) -> JobIdentity {
        JobIdentity {
            job_id: id.into(),
            subject: format!("bot/{id}"),
            agent: "bot".into(),
            owner: "o@x.org".into(),
            jti: jti.into(),
        }
    }

    fn view(placeholder_expires_at: UnixTime) -> Arc<JobView> {
        Arc::new(JobView {
            allow_hosts: vec![],
            bindings: vec![Binding {
                secret: "s".into(),
                placeholder: Some("ph".into()),
                placeholder_expires_at,
                allowed_hosts: vec!["api.test".into()],
                value: gatehouse_domain::SecretBytes::new(b"value".to_vec()),
                inject: None,
            }],
            agent_allow_hosts: None,
        })
    }

    #[test]
    fn a_view_is_used_only_at_its_epoch_for_its_token_before_its_placeholders_expire() {
        let views = JobViews::new(10);
        let j = job("j1", "t1");
        views.keep(&j, Some(3), view(100));
        assert!(views.get(&j, Some(3), 50).is_some());
        // Another token of the same job, another owner: not this view.
        assert!(views.get(&job("j1", "t2"), Some(3), 50).is_none());
        views.keep(&j, Some(3), view(100));
        let mut other_owner = j.clone();
        other_owner.owner = "eve@x.org".into();
        assert!(views.get(&other_owner, Some(3), 50).is_none());
        // The epoch moved: gone for good.
        views.keep(&j, Some(3), view(100));
        assert!(views.get(&j, Some(4), 50).is_none());
        assert!(views.get(&j, Some(3), 50).is_none());
        // Unconfirmed: nothing is used, nothing is kept.
        views.keep(&j, Some(3), view(100));
        assert!(views.get(&j, None, 50).is_none());
        let other = job("j2", "t1");
        views.keep(&other, None, view(100));
        assert!(views.get(&other, Some(3), 50).is_none());
        // A placeholder expired: the store decides again.
        views.keep(&j, Some(3), view(100));
        assert!(views.get(&j, Some(3), 100).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let views = JobViews::new(2);
        for i in 0..5 {
            views.keep(&job(&format!("j{i}"), "t"), Some(1), view(100));
        }
        assert!(views.len() <= 2);
        assert!(views.get(&job("j4", "t"), Some(1), 50).is_some());
    }
}
