//! Response bodies as schemas. The error body is the type `ApiError`
//! serialises; the others describe the JSON the handlers answer, and the
//! fuzzer in CI (`.ci/schemathesis.sh`, `response_schema_conformance`)
//! holds every live answer to them. Fields a handler always writes are
//! required; objects stay open (a new field is not a breaking change).
#![allow(dead_code)] // Read by the schema derive only.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::grammar;

/// Every error: `{"error":{"code","message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable; each response lists the codes it may carry.
    pub code: String,
    /// For people; never holds a secret value.
    pub message: String,
}

#[derive(ToSchema)]
pub struct Health {
    status: String,
}

#[derive(ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    status: String,
    /// `ok` or `unreachable`.
    store: String,
    /// `fresh` or `stale`.
    revocations: String,
}

#[derive(ToSchema)]
pub struct Jwk {
    kty: String,
    crv: String,
    alg: String,
    #[schema(rename = "use")]
    use_: String,
    kid: String,
    x: String,
}

#[derive(ToSchema)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// A human session.
#[derive(ToSchema)]
pub struct Session {
    email: String,
    token: String,
    /// RFC 3339.
    expires_at: String,
}

#[derive(ToSchema)]
pub struct OwnerCode {
    email: String,
    /// One-time, 24 h.
    login_code: String,
}

#[derive(ToSchema)]
pub struct Deprovisioned {
    deprovisioned: String,
}

#[derive(ToSchema)]
pub struct Whoami {
    sub: String,
    owner: String,
    /// `session`, `api`, `agent` or `job`.
    cls: String,
    /// Space-separated.
    scope: String,
    jti: Option<String>,
    exp: Option<i64>,
    operator: bool,
}

#[derive(ToSchema)]
pub struct InjectView {
    header: String,
    format: String,
}

/// A secret's name and bindings; never its value.
#[derive(ToSchema)]
pub struct SecretMeta {
    name: String,
    allowed_hosts: Vec<String>,
    inject: Option<InjectView>,
    created_at: String,
    updated_at: String,
}

/// `202`: the call is held until a human decides.
#[derive(ToSchema)]
pub struct Pending {
    approval_id: String,
    /// `pending`.
    status: String,
    verb: String,
    expires_at: String,
}

#[derive(ToSchema)]
pub struct AuditEntry {
    seq: i64,
    ts: i64,
    actor: String,
    cls: String,
    owner: String,
    action: String,
    target: String,
    outcome: String,
    request_id: String,
    prev_hash: String,
    hash: String,
}

#[derive(ToSchema)]
pub struct AgentName {
    name: String,
}

#[derive(ToSchema)]
pub struct AgentView {
    name: String,
    /// `null`: no policy of the agent's own.
    allow_hosts: Option<Vec<String>>,
    /// The secret ceiling.
    secrets: Vec<String>,
}

#[derive(ToSchema)]
pub struct AgentPolicy {
    name: String,
    allow_hosts: Option<Vec<String>>,
}

#[derive(ToSchema)]
pub struct AgentCeiling {
    name: String,
    secrets: Vec<String>,
}

#[derive(ToSchema)]
pub struct MintedToken {
    token: String,
    jti: String,
    expires_at: String,
    class: String,
    subject: String,
    scope: String,
}

#[derive(ToSchema)]
pub struct TokenView {
    jti: String,
    subject: String,
    class: String,
    scope: String,
    iat: i64,
    exp: i64,
    revoked: bool,
}

/// A count of revoked tokens, or the watermark of a subject or owner.
#[derive(ToSchema)]
pub struct Revoked {
    #[schema(schema_with = revoked_value)]
    revoked: (),
}

fn revoked_value() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "all-before",
                    ObjectBuilder::new().schema_type(Type::Integer),
                )
                .required("all-before"),
        )
        .build();
    utoipa::openapi::RefOr::T(utoipa::openapi::Schema::OneOf(one_of))
}

#[derive(ToSchema)]
pub struct JobCreated {
    job_id: String,
    /// Shown once.
    job_token: String,
    expires_at: String,
    /// Environment for the job: placeholders (or values for value grants).
    env: BTreeMap<String, String>,
}

#[derive(ToSchema)]
pub struct GrantView {
    env_var: String,
    secret: String,
    /// `placeholder` or `value`.
    mode: String,
}

#[derive(ToSchema)]
pub struct JobEgress {
    allow_hosts: Vec<String>,
}

#[derive(ToSchema)]
pub struct JobView {
    job_id: String,
    agent: String,
    created_by: String,
    created_at: String,
    expires_at: String,
    deleted: bool,
    packages: Vec<String>,
    egress: JobEgress,
    grants: Vec<GrantView>,
}

#[derive(ToSchema)]
pub struct PlaceholderView {
    secret: String,
    placeholder: String,
    expires_at: String,
}

#[derive(ToSchema)]
pub struct JobDetail {
    job_id: String,
    agent: String,
    created_by: String,
    created_at: String,
    expires_at: String,
    deleted: bool,
    packages: Vec<String>,
    egress: JobEgress,
    grants: Vec<GrantView>,
    placeholders: Vec<PlaceholderView>,
}

#[derive(ToSchema)]
pub struct DeletedCount {
    deleted: i64,
}

#[derive(ToSchema)]
pub struct Credential {
    env_var: String,
    value: String,
}

#[derive(ToSchema)]
pub struct HookCreated {
    hook_id: String,
    url: String,
}

#[derive(ToSchema)]
pub struct HookView {
    hook_id: String,
    provider: String,
    forward_to: String,
    url: String,
    created_at: String,
}

#[derive(ToSchema)]
pub struct McpServerAuthView {
    /// The name of the owner's secret (never a value).
    secret: String,
    header: String,
    format: String,
}

#[derive(ToSchema)]
pub struct McpToolsView {
    allow: Vec<String>,
    gated: Vec<String>,
}

#[derive(ToSchema)]
pub struct McpServerView {
    name: String,
    url: String,
    auth: Option<McpServerAuthView>,
    tools: McpToolsView,
    /// Where agents connect: `/mcp/{name}`.
    endpoint: String,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
pub struct Requester {
    cls: String,
    subject: String,
}

#[derive(ToSchema)]
pub struct DecisionView {
    by: String,
    /// `approve` or `deny`.
    decision: String,
    reason: String,
    at: String,
}

#[derive(ToSchema)]
pub struct Approval {
    approval_id: String,
    /// pending, approved, executing, executed, failed, denied, expired.
    status: String,
    verb: String,
    owner: String,
    requester: Requester,
    /// The parameters the approval is bound to.
    #[schema(schema_with = grammar::any)]
    params: (),
    params_digest: String,
    required: i64,
    approvals: i64,
    decisions: Vec<DecisionView>,
    created_at: String,
    expires_at: String,
    updated_at: String,
    /// What the approved call produced (a token only for its requester, once).
    #[schema(schema_with = grammar::any)]
    result: (),
    error: Option<String>,
}

#[derive(ToSchema)]
pub struct UpstreamStatus {
    configured: bool,
    valid: bool,
    expires_at: Option<String>,
    last_rotation: Option<String>,
}

#[derive(ToSchema)]
pub struct UpstreamRevoked {
    upstream: String,
    revoked_token_ids: Vec<String>,
}
