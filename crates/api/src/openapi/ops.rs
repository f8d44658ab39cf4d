//! What each route answers: one entry per route of the route table, by
//! method and path. Request bodies and query parameters are the types the
//! handlers parse; responses are the types in `schemas.rs`.

use std::borrow::Cow;

use utoipa::openapi::path::Parameter;
use utoipa::openapi::schema::Object;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use super::grammar;
use super::schemas as s;
use crate::routes::{
    agents, approvals, audit, bootstrap, hooks, jobs, owners, secrets, tokens, upstreams,
};

/// A type's schema, its name and the schemas it refers to.
#[derive(Clone, Copy)]
pub struct TypeDoc {
    pub name: fn() -> Cow<'static, str>,
    pub schema: fn() -> RefOr<Schema>,
    pub deps: fn(&mut Vec<(String, RefOr<Schema>)>),
}

pub fn ty<T: ToSchema>() -> TypeDoc {
    TypeDoc {
        name: T::name,
        schema: T::schema,
        deps: T::schemas,
    }
}

/// A request or response body.
#[derive(Clone, Copy)]
pub enum Body {
    Empty,
    Json(TypeDoc),
    JsonList(TypeDoc),
    /// Text of this content type.
    Text(&'static str),
    /// Whatever the caller (or an upstream) sends.
    Any,
    /// A JSON object of any shape (this document).
    Document,
    /// A webhook delivery: the provider's JSON or form body, verified raw.
    Delivery,
    /// Bytes for an upstream (the relay).
    Bytes,
}

impl Body {
    pub fn is_json(&self) -> bool {
        matches!(self, Body::Json(_) | Body::JsonList(_))
    }
}

pub struct Resp {
    pub status: &'static str,
    pub body: Body,
    pub description: &'static str,
}

/// A path parameter: its name and its grammar.
pub type PathParam = (&'static str, fn() -> Object);

/// One documented operation.
pub struct OpDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub body: Body,
    pub query: Option<fn() -> Vec<Parameter>>,
    pub path_params: Vec<PathParam>,
    pub ok: Vec<Resp>,
    pub errors: Vec<(u16, &'static [&'static str])>,
    /// The gated verb, when a non-interactive caller is held for approval.
    pub gated: Option<&'static str>,
    /// OpenAPI links from a success response to the operations that use
    /// what it made: (status, operationId, parameter, runtime expression).
    pub links: Vec<Link>,
}

pub type Link = (&'static str, &'static str, &'static str, &'static str);

fn op(method: &'static str, path: &'static str, id: &'static str, summary: &'static str) -> OpDoc {
    let tag = path
        .trim_start_matches('/')
        .trim_start_matches("v1/")
        .split(['/', '.'])
        .find(|seg| !seg.is_empty())
        .unwrap_or("gatehouse");
    OpDoc {
        method,
        path,
        id,
        summary,
        tag,
        body: Body::Empty,
        query: None,
        path_params: Vec::new(),
        ok: Vec::new(),
        errors: Vec::new(),
        gated: None,
        links: Vec::new(),
    }
}

impl OpDoc {
    fn body<T: ToSchema>(mut self) -> Self {
        self.body = Body::Json(ty::<T>());
        self
    }
    fn raw_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    fn query<Q: IntoParams>(mut self) -> Self {
        self.query = Some(|| Q::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)));
        self
    }
    fn param(mut self, name: &'static str, schema: fn() -> Object) -> Self {
        self.path_params.push((name, schema));
        self
    }
    fn ok<T: ToSchema>(mut self, status: &'static str, description: &'static str) -> Self {
        self.ok.push(Resp {
            status,
            body: Body::Json(ty::<T>()),
            description,
        });
        self
    }
    fn ok_list<T: ToSchema>(mut self, description: &'static str) -> Self {
        self.ok.push(Resp {
            status: "200",
            body: Body::JsonList(ty::<T>()),
            description,
        });
        self
    }
    fn ok_with(mut self, status: &'static str, body: Body, description: &'static str) -> Self {
        self.ok.push(Resp {
            status,
            body,
            description,
        });
        self
    }
    /// What `status` answers is used by `operation` as `param`.
    fn link(
        mut self,
        status: &'static str,
        operation: &'static str,
        param: &'static str,
        expression: &'static str,
    ) -> Self {
        self.links.push((status, operation, param, expression));
        self
    }
    fn err(mut self, status: u16, codes: &'static [&'static str]) -> Self {
        self.errors.push((status, codes));
        self
    }
    /// A gated verb: a non-interactive caller gets `202` and an approval.
    fn gated(mut self, verb: &'static str) -> Self {
        self.gated = Some(verb);
        self.ok::<s::Pending>(
            "202",
            "held for approval: a human of the owner decides at POST /v1/approvals/{id}/decision",
        )
        .err(400, &["bad_request"])
    }
}

const NAME_ERRORS: &[&str] = &["invalid_name", "bad_request"];

/// Every documented operation.
pub fn operations() -> Vec<OpDoc> {
    vec![
        // Public.
        op("GET", "/healthz", "health", "Liveness").ok::<s::Health>("200", "alive"),
        op(
            "GET",
            "/readyz",
            "readiness",
            "Readiness: store reachable and revocation view fresh",
        )
        .ok::<s::Ready>("200", "ready")
        .ok::<s::Ready>(
            "503",
            "not ready (store unreachable or revocation view stale)",
        ),
        op(
            "GET",
            "/.well-known/jwks.json",
            "get_jwks",
            "Public keys that verify Gatehouse tokens",
        )
        .ok::<s::Jwks>("200", "RFC 8037 OKP keys"),
        op("GET", "/metrics", "get_metrics", "Prometheus metrics").ok_with(
            "200",
            Body::Text("text/plain"),
            "Prometheus text exposition (0.0.4)",
        ),
        op("GET", "/v1/openapi.json", "get_openapi", "This document").ok_with(
            "200",
            Body::Document,
            "OpenAPI 3.1",
        ),
        op(
            "POST",
            "/v1/bootstrap/claim",
            "claim_bootstrap",
            "Claim the installation with the bootstrap code",
        )
        .body::<bootstrap::ClaimRequest>()
        .ok::<s::Session>(
            "201",
            "the claimant is the operator; the session is also set as a cookie",
        )
        .err(403, &["forbidden"])
        .err(409, &["conflict"])
        .err(429, &["too_many_requests"]),
        op(
            "POST",
            "/v1/login",
            "login",
            "Log in with a one-time login code",
        )
        .body::<owners::LoginRequest>()
        .ok::<s::Session>("200", "a session, also set as a cookie")
        .err(401, &["unauthenticated"])
        .err(403, &["forbidden"])
        .err(429, &["too_many_requests"]),
        // Owners.
        op(
            "POST",
            "/v1/owners",
            "create_owner",
            "Add an owner (operator)",
        )
        .body::<owners::NewOwnerRequest>()
        .ok::<s::OwnerCode>("201", "the owner and a one-time login code (24 h)")
        .err(400, &["bad_request"])
        .err(409, &["conflict"]),
        op(
            "POST",
            "/v1/owners/{email}/recover",
            "recover_owner",
            "Account recovery (operator)",
        )
        .param("email", grammar::email)
        .ok::<s::OwnerCode>("200", "every token of the owner revoked; a new login code")
        .err(400, &["bad_request"])
        .err(404, &["not_found"]),
        op(
            "DELETE",
            "/v1/owners/{email}",
            "deprovision_owner",
            "Deprovision an owner (operator)",
        )
        .param("email", grammar::email)
        .ok::<s::Deprovisioned>(
            "200",
            "the owner, their data key and everything of theirs removed",
        )
        .gated("owner.deprovision")
        .err(400, &["bad_request"])
        .err(403, &["forbidden"])
        .err(404, &["not_found"])
        .err(409, &["conflict"]),
        op("GET", "/v1/auth/whoami", "whoami", "Who this credential is")
            .ok::<s::Whoami>("200", "the credential's claims"),
        // Secrets.
        op(
            "GET",
            "/v1/secrets",
            "list_secrets",
            "Secret names and bindings, never values",
        )
        .ok_list::<s::SecretMeta>("the caller's owner's secrets"),
        op("PUT", "/v1/secrets/{name}", "put_secret", "Write a secret")
            .param("name", grammar::secret_name)
            .body::<secrets::PutSecret>()
            .ok::<s::SecretMeta>("201", "created")
            .ok::<s::SecretMeta>("200", "replaced")
            .link("201", "delete_secret", "name", "$response.body#/name")
            .gated("secret.write")
            .err(400, NAME_ERRORS)
            .err(
                403,
                &[
                    "reserved_name",
                    "self_targeted_secret_write",
                    "owner_unknown",
                ],
            ),
        op(
            "DELETE",
            "/v1/secrets/{name}",
            "delete_secret",
            "Delete a secret",
        )
        .param("name", grammar::secret_name)
        .ok_with("204", Body::Empty, "deleted")
        .gated("secret.delete")
        .err(400, NAME_ERRORS)
        .err(403, &["reserved_name", "self_targeted_secret_write"])
        .err(404, &["not_found"]),
        // Audit.
        op(
            "GET",
            "/v1/audit",
            "list_audit",
            "Audit records (owners their own, the operator all)",
        )
        .query::<audit::Page>()
        .ok_list::<s::AuditEntry>("records in sequence order")
        .err(400, &["bad_request"]),
        // Agents.
        op("POST", "/v1/agents", "create_agent", "Register an agent")
            .body::<agents::NewAgent>()
            .ok::<s::AgentName>("201", "registered")
            .link("201", "set_agent_egress", "name", "$response.body#/name")
            .link("201", "set_agent_secrets", "name", "$response.body#/name")
            .err(400, NAME_ERRORS)
            .err(409, &["conflict"]),
        op(
            "GET",
            "/v1/agents",
            "list_agents",
            "Agents with their egress policies and secret ceilings",
        )
        .ok_list::<s::AgentView>("the owner's agents"),
        op(
            "PUT",
            "/v1/agents/{name}/egress",
            "set_agent_egress",
            "Set an agent's egress policy",
        )
        .param("name", grammar::agent_name)
        .body::<agents::EgressPolicy>()
        .ok::<s::AgentPolicy>("200", "set")
        .gated("policy.change")
        .err(400, NAME_ERRORS)
        .err(404, &["not_found"]),
        op(
            "PUT",
            "/v1/agents/{name}/secrets",
            "set_agent_secrets",
            "Set an agent's secret ceiling",
        )
        .param("name", grammar::agent_name)
        .body::<agents::SecretCeiling>()
        .ok::<s::AgentCeiling>("200", "set")
        .gated("policy.change")
        .err(400, NAME_ERRORS)
        .err(404, &["not_found"]),
        // Tokens.
        op(
            "POST",
            "/v1/tokens",
            "mint_token",
            "Mint an agent or api token",
        )
        .body::<tokens::MintRequest>()
        .ok::<s::MintedToken>("201", "the token, shown this once")
        .gated("token.mint_api")
        .err(400, &["bad_request", "invalid_subject"])
        .err(403, &["insufficient_scope"])
        .err(422, &["unknown_agent"]),
        op(
            "GET",
            "/v1/tokens",
            "list_tokens",
            "Tokens issued under the owner, without values",
        )
        .ok_list::<s::TokenView>("issued tokens"),
        op(
            "POST",
            "/v1/tokens/revoke",
            "revoke_tokens",
            "Revoke by jti, subject or owner",
        )
        .body::<tokens::RevokeRequest>()
        .ok::<s::Revoked>("200", "revoked")
        .err(403, &["forbidden"])
        .err(404, &["not_found"]),
        // Jobs.
        op(
            "POST",
            "/v1/jobs",
            "create_job",
            "Create a job and its token",
        )
        .body::<jobs::CreateJob>()
        .ok::<s::JobCreated>("201", "the job, its token (shown once) and its environment")
        .link("201", "get_job", "id", "$response.body#/job_id")
        .link("201", "delete_job", "id", "$response.body#/job_id")
        .gated("job.grant_values")
        .err(403, &["secret_not_grantable"])
        .err(
            422,
            &[
                "invalid_grant",
                "unknown_agent",
                "unknown_secret",
                "invalid_package",
                "invalid_host",
                "failed",
            ],
        ),
        op("GET", "/v1/jobs", "list_jobs", "The owner's jobs").ok_list::<s::JobView>("jobs"),
        op(
            "DELETE",
            "/v1/jobs",
            "delete_all_jobs",
            "Delete every job of the owner",
        )
        .ok::<s::DeletedCount>("200", "deleted")
        .gated("job.delete_all"),
        op(
            "GET",
            "/v1/jobs/{id}",
            "get_job",
            "One job with its placeholders",
        )
        .param("id", grammar::id)
        .ok::<s::JobDetail>("200", "the job")
        .err(404, &["not_found"]),
        op(
            "DELETE",
            "/v1/jobs/{id}",
            "delete_job",
            "Delete a job: its token revoked, placeholders dropped",
        )
        .param("id", grammar::id)
        .ok_with("204", Body::Empty, "deleted")
        .gated("job.delete")
        .err(404, &["not_found"]),
        op(
            "GET",
            "/v1/job/credentials",
            "get_job_credentials",
            "A job's credentials (job token)",
        )
        .ok_list::<s::Credential>("placeholders, or values for value grants")
        .ok_with("204", Body::Empty, "the job has no grants"),
        // Webhooks.
        op(
            "POST",
            "/v1/hooks",
            "create_hook",
            "Register an inbound webhook",
        )
        .body::<hooks::NewHook>()
        .ok::<s::HookCreated>("201", "registered")
        .link("201", "delete_hook", "id", "$response.body#/hook_id")
        .err(400, &["bad_request", "forward_to_refused"])
        .err(403, &["owner_unknown"]),
        op("GET", "/v1/hooks", "list_hooks", "The owner's webhooks")
            .ok_list::<s::HookView>("hooks"),
        op(
            "DELETE",
            "/v1/hooks/{id}",
            "delete_hook",
            "Delete a webhook",
        )
        .param("id", grammar::id)
        .ok_with("204", Body::Empty, "deleted")
        .err(404, &["not_found"]),
        op(
            "POST",
            "/hooks/{id}",
            "deliver_hook",
            "Inbound delivery, verified before anything else",
        )
        .param("id", grammar::id)
        .raw_body(Body::Delivery)
        .ok_with(
            "default",
            Body::Any,
            "the forward target's answer, or a Slack challenge",
        )
        .err(401, &["webhook_refused"])
        .err(404, &["not_found"])
        .err(413, &["payload_too_large"])
        .err(502, &["bad_gateway"]),
        // Upstream MCP servers.
        op(
            "POST",
            "/v1/mcp/servers",
            "save_mcp_server",
            "Register or replace an upstream MCP server for the gateway",
        )
        .body::<crate::app::mcp_servers::McpServerInput>()
        .ok::<s::McpServerView>("201", "created")
        .ok::<s::McpServerView>("200", "replaced")
        .link("201", "get_mcp_server", "name", "$response.body#/name")
        .gated("policy.change")
        .err(400, &["bad_request", "invalid_name", "url_refused"])
        .err(403, &["owner_unknown"])
        .err(422, &["unknown_secret"]),
        op(
            "GET",
            "/v1/mcp/servers",
            "list_mcp_servers",
            "The owner's upstream MCP servers",
        )
        .ok_list::<s::McpServerView>("servers, by name"),
        op(
            "GET",
            "/v1/mcp/servers/{name}",
            "get_mcp_server",
            "One of the owner's upstream MCP servers",
        )
        .param("name", grammar::mcp_server_name)
        .ok::<s::McpServerView>("200", "the server")
        .err(400, &["invalid_name"])
        .err(404, &["not_found"]),
        op(
            "DELETE",
            "/v1/mcp/servers/{name}",
            "delete_mcp_server",
            "Remove an upstream MCP server",
        )
        .param("name", grammar::mcp_server_name)
        .ok_with("204", Body::Empty, "deleted")
        .err(400, &["invalid_name"])
        .err(404, &["not_found"]),
        // Approvals.
        op(
            "GET",
            "/v1/approvals",
            "list_approvals",
            "Approvals: humans their owner's, others their own requests",
        )
        .query::<approvals::ListQuery>()
        .ok_list::<s::Approval>("approvals")
        .err(400, &["bad_request"]),
        op(
            "GET",
            "/v1/approvals/events",
            "approval_events",
            "Live approval events (server-sent events; the stream stays open)",
        )
        .ok_with(
            "200",
            Body::Text("text/event-stream"),
            "an event per approval change the caller may see",
        ),
        op(
            "GET",
            "/v1/approvals/{id}",
            "get_approval",
            "One approval (the requester sees its result once)",
        )
        .param("id", grammar::id)
        .ok::<s::Approval>("200", "the approval")
        .err(404, &["not_found"]),
        op(
            "POST",
            "/v1/approvals/{id}/decision",
            "decide_approval",
            "Approve or deny (human session)",
        )
        .param("id", grammar::id)
        .body::<approvals::DecisionBody>()
        .ok::<s::Approval>("200", "recorded")
        .err(403, &["not_a_decider"])
        .err(404, &["not_found"])
        .err(409, &["conflict"]),
        // Upstreams.
        op(
            "GET",
            "/v1/upstreams",
            "list_upstreams",
            "Status of the caller's upstreams",
        )
        .ok_list::<s::UpstreamStatus>("statuses"),
        op(
            "PUT",
            "/v1/upstreams/{name}/credential",
            "put_upstream_credential",
            "Paste an upstream token to bootstrap rotation",
        )
        .param("name", grammar::agent_name)
        .body::<upstreams::PutCredential>()
        .ok::<s::UpstreamStatus>("200", "exchanged for a token Gatehouse minted")
        .err(400, &["bad_request"])
        .err(403, &["not_upstream_owner", "identity_mismatch"])
        .err(404, &["not_found"])
        .err(409, &["conflict"])
        .err(400, &["invalid_token"]),
        op(
            "DELETE",
            "/v1/upstreams/{name}/credential",
            "revoke_upstream_credential",
            "Take back an upstream credential",
        )
        .param("name", grammar::agent_name)
        .ok::<s::UpstreamRevoked>("200", "revoked")
        .gated("upstream.revoke")
        .err(403, &["not_upstream_owner"])
        .err(404, &["not_found"])
        .err(422, &["upstream_failed"]),
        op(
            "GET",
            "/v1/upstreams/{name}/status",
            "get_upstream_status",
            "One upstream's status",
        )
        .param("name", grammar::agent_name)
        .ok::<s::UpstreamStatus>("200", "status")
        .err(403, &["not_upstream_owner"])
        .err(404, &["not_found"]),
        // Egress.
        op(
            "GET",
            "/v1/egress/ca.pem",
            "get_egress_ca",
            "The interception CA certificate",
        )
        .ok_with("200", Body::Text("application/x-pem-file"), "PEM")
        .err(404, &["not_found"]),
        relay("GET", "relay_get"),
        relay("POST", "relay_post"),
        relay("PUT", "relay_put"),
        relay("PATCH", "relay_patch"),
        relay("DELETE", "relay_delete"),
    ]
}

fn relay(method: &'static str, id: &'static str) -> OpDoc {
    let op = op(
        method,
        "/relay/{host}/{*path}",
        id,
        "Relay to https://{host}/{path} (job token)",
    )
    .param("host", grammar::host_name)
    .param("path", grammar::relay_path)
    .ok_with("default", Body::Any, "the upstream's answer, or a refusal")
    .err(400, &["bad_request"])
    .err(403, &["ssrf", "not_allowed", "judge", "throttled"])
    .err(429, &["throttled"])
    .err(502, &["bad_gateway"]);
    if matches!(method, "GET" | "DELETE") {
        op
    } else {
        op.raw_body(Body::Bytes)
    }
}
