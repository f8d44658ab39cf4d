//! HTTP handlers, one file per resource. Each handler's first lines state
//! the rights it needs.

pub mod agents;
pub mod approval_events;
pub mod approvals;
pub mod audit;
pub mod bootstrap;
pub mod egress;
pub mod health;
pub mod hooks;
pub mod inbound;
pub mod jobs;
pub mod mcp_servers;
pub mod openapi;
pub mod owners;
pub mod secrets;
pub mod tokens;
pub mod upstreams;
pub mod whoami;
