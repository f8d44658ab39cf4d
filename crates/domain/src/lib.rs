//! Gatehouse's domain core: every security rule, with no I/O.
//!
//! Nothing here touches the network, the disk or the process environment.
//! Callers hand in the data (a token's bytes, a clock reading, the
//! revocation view) and get a decision back, so every rule can be tested
//! directly and reused by the API, the egress proxy and the CLI alike.
#![forbid(unsafe_code)]

pub mod access;
pub mod approvals;
pub mod audit;
pub mod clock;
pub mod codes;
pub mod crypto;
pub mod csrf;
pub mod egress;
pub mod email;
pub mod failure_window;
pub mod grant_ceiling;
pub mod jobs;
pub mod lru;
pub mod master_key;
pub mod mcp;
pub mod names;
pub mod principal;
pub mod rate_budget;
pub mod secret;
pub mod token;
pub mod webhook;

pub use clock::{Clock, ManualClock, OffsetClock, SystemClock, UnixTime};
pub use email::Email;
pub use principal::{CredentialClass, Principal, Role, Scope, ScopeSet};
pub use secret::SecretBytes;
