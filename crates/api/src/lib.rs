//! Gatehouse's HTTP API and server runtime.
//!
//! `router::app` builds the one router; `server::start` prepares the
//! store, keys and bootstrap code and serves it. Errors become HTTP
//! answers only at this edge (`error::ApiError`).
#![forbid(unsafe_code)]

pub mod access;
pub mod app;
pub mod approval_feed;
pub mod auth;
pub mod config;
pub mod egress_bridge;
pub mod egress_ca;
pub mod egress_views;
pub mod egress_watch;
pub mod error;
pub mod gate;
pub mod job_build;
pub mod job_credentials;
pub mod json;
pub mod keys;
pub mod listener;
pub mod mcp_bridge;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod owner_cache;
pub mod rate_limit;
pub mod rejections;
pub mod request_id;
pub mod revocation;
pub mod revocation_sync;
pub mod router;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod store_timing;
pub mod token_cache;
pub mod upstream;
