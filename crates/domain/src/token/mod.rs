//! Gatehouse tokens: compact JWS, EdDSA (Ed25519) only.
//!
//! [`verify::verify_token`] is the *only* function that turns bytes into
//! trusted claims. It checks shape, algorithm, key, signature, claims,
//! lifetime and revocation in that order, and every caller (API routes,
//! egress proxy) goes through it.

pub mod claims;
pub mod jws;
pub mod policy;
pub mod verify;
pub mod watermark;

pub use claims::Claims;
pub use policy::{LifetimeError, TokenPolicy};
pub use verify::{
    verify_token, verify_token_cached, KeyLookup, NoCache, RevocationView, TokenError,
    VerifiedCache, ViewUnavailable,
};
