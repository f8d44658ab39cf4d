//! Gatehouse storage: one [`Store`] trait, two engines.
//!
//! The engine is chosen once, at start, from the URL scheme
//! ([`connect`]); nothing above this crate knows which one runs. Both
//! engines share the SQL text of every query (see `sql_store.rs`) and keep
//! numbered migrations in lockstep (`migrations/{sqlite,postgres}`).
#![forbid(unsafe_code)]

mod approval_events;
mod approval_model;
mod binding_events;
mod connect;
mod error;
mod job_material;
mod migrations;
mod model;
mod postgres;
mod sql_egress_ca;
mod sql_gated;
mod sql_store;
mod sql_upstream;
mod sqlite;
mod store;
mod upstream_model;

pub use connect::{
    connect, connect_with, Engine, PoolSettings, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_STATEMENT_TIMEOUT_MS,
};
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub use approval_model::*;
pub use binding_events::BindingEpoch;
pub use error::StoreError;
pub use job_material::{GrantMaterial, JobMaterial, SecretMaterial};
pub use model::*;
pub use store::Store;
pub use upstream_model::*;
