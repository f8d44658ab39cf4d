//! Failure counting per source address for guessable endpoints (claim,
//! login) and for refused-token audit records: the domain's one counter.

pub use gatehouse_domain::failure_window::FailureWindow as FailureLimiter;
