//! Rows of upstream credential rotation (SPEC §8). Token values appear
//! only sealed; ids, states and times are plain so status and recovery
//! need no key.

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::Email;

use crate::model::SecretRecord;

/// One upstream token Gatehouse holds: its id at the upstream, its value
/// sealed under the owner's data key, and when it lapses.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamSlot {
    pub token_id: String,
    pub sealed: Vec<u8>,
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for UpstreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSlot")
            .field("token_id", &self.token_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamState {
    pub name: String,
    pub owner: Email,
    /// The token in use (also written as the owner's secret `upstream.<name>`).
    pub current: Option<UpstreamSlot>,
    pub last_rotation: Option<UnixTime>,
    /// Minted and persisted, not yet switched to: a rotation in flight, or
    /// one a crash interrupted.
    pub pending: Option<UpstreamSlot>,
    pub updated_at: UnixTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTokenState {
    Pending,
    Current,
    PendingRevoke,
    Revoked,
    Expired,
}

impl UpstreamTokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Current => "current",
            Self::PendingRevoke => "pending_revoke",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "current" => Self::Current,
            "pending_revoke" => Self::PendingRevoke,
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// Every upstream token Gatehouse minted or was handed, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTokenRecord {
    pub upstream: String,
    pub token_id: String,
    /// `pasted` (handed over at bootstrap) or `minted` (by Gatehouse).
    pub origin: String,
    pub state: UpstreamTokenState,
    pub attempts: i64,
    pub next_attempt_at: Option<UnixTime>,
    pub last_error: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
}

/// A bootstrap's result, written at once: the first minted token in use,
/// the pasted token queued for revocation, the secret agents read.
#[derive(Debug, Clone)]
pub struct UpstreamInstall {
    pub name: String,
    pub owner: Email,
    pub current: UpstreamSlot,
    /// The pasted token's id at the upstream, when the driver found it.
    pub pasted_id: Option<String>,
    pub secret: SecretRecord,
}

/// Held while one replica rotates an upstream; dropping it releases the
/// lock (on PostgreSQL a transaction-scoped advisory lock, so a killed
/// process releases it with its connection).
pub struct UpstreamLock(pub(crate) Option<Box<dyn std::any::Any + Send>>);

impl std::fmt::Debug for UpstreamLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamLock")
    }
}
