//! The application layer: what a person or a program can do, as plain
//! async functions taking the state, the caller's `Principal` and typed
//! input, and returning typed results or the one `ApiError`. The JSON
//! handlers (`routes/`) and the web console both call these, so a rule
//! lives in one place whichever door a request came through. Handlers
//! only parse HTTP into these inputs and shape the answers.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod egress;
pub mod grants;
pub mod identity;
pub mod jobs;
pub mod mcp_servers;
pub mod secrets;
pub mod sessions;
pub mod tokens;
pub mod upstreams;
