//! Gatehouse's own tools (SPEC §13): each one a thin translation of MCP
//! arguments into a call of the application layer (`gatehouse_api::app`),
//! the same functions the JSON handlers and the console call.
//!
//! Who sees which tool:
//! - `whoami`, `list_grants`, `egress_check`: every credential.
//! - `revoke_self`: every token credential (it can only take authority
//!   away, from the caller itself), through `app::tokens::revoke`.
//! - `approval_status` and one tool per gated verb: exactly the callers
//!   the matching JSON route's rule admits (its scope, its credential
//!   classes), read from the route table, so a job sees none of them and
//!   an api token without `secrets:write` sees no secret tool. A gated
//!   verb goes through the one gate: a human session runs it (the tool
//!   answers `executed` with the route's result), anything else is held
//!   (`pending`, the approval id; poll with `approval_status`).
//!
//! A tool the caller may not use is not listed, and calling it answers
//! like an unknown tool.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::http::HeaderMap;
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde_json::{json, Value};

use gatehouse_api::app;
use gatehouse_api::error::ApiError;
use gatehouse_api::gate::GateOutcome;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;
use gatehouse_domain::access::Rule;
use gatehouse_domain::{Principal, SecretBytes};

use super::args::{self, BadArguments};

/// Which tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Whoami,
    ListGrants,
    EgressCheck,
    ApprovalStatus,
    RevokeSelf,
    SecretWrite,
    SecretDelete,
    TokenMintApi,
    AgentPolicyChange,
    AgentSecretsChange,
    JobsDeleteAll,
}

/// Who may use a tool.
#[derive(Debug, Clone, Copy)]
enum Audience {
    Everyone,
    /// A credential with a token of its own (not a trusted-proxy identity).
    Tokens,
    /// Whoever the JSON route `(method, path)` admits.
    Route(&'static str, &'static str),
}

struct Def {
    name: Name,
    tool: &'static str,
    description: &'static str,
    schema: fn() -> Arc<JsonObject>,
    audience: Audience,
}

const CATALOGUE: &[Def] = &[
    Def {
        name: Name::Whoami,
        tool: "whoami",
        description: "Who this credential is: subject, owner, class, scopes, token id, expiry.",
        schema: args::schema::<args::NoArgs>,
        audience: Audience::Everyone,
    },
    Def {
        name: Name::ListGrants,
        tool: "list_grants",
        description: "What this credential may use, never a value. A job: its grants (env var, secret name, mode, bound hosts) and allow list. An agent: its secret ceiling with bound hosts, and its egress policy. A human or an api token with secrets:write: the owner's secrets and their bound hosts.",
        schema: args::schema::<args::NoArgs>,
        audience: Audience::Everyone,
    },
    Def {
        name: Name::EgressCheck,
        tool: "egress_check",
        description: "Whether the egress proxy would let this caller reach a URL, or the reason it would refuse (ssrf, not_allowed, ...). The proxy's own check; nothing is connected to.",
        schema: args::schema::<args::EgressCheck>,
        audience: Audience::Everyone,
    },
    Def {
        name: Name::ApprovalStatus,
        tool: "approval_status",
        description: "The status of an approval; for its requester, what it produced (a token), shown once.",
        schema: args::schema::<args::ApprovalStatus>,
        audience: Audience::Route("GET", "/v1/approvals/{id}"),
    },
    Def {
        name: Name::RevokeSelf,
        tool: "revoke_self",
        description: "Revokes this credential's own token, at once. The session ends with it.",
        schema: args::schema::<args::NoArgs>,
        audience: Audience::Tokens,
    },
    Def {
        name: Name::SecretWrite,
        tool: "secret_write",
        description: "Writes a secret (gated: secret.write). A non-interactive caller gets a pending approval id; nothing changes until a human approves.",
        schema: args::schema::<args::SecretWrite>,
        audience: Audience::Route("PUT", "/v1/secrets/{name}"),
    },
    Def {
        name: Name::SecretDelete,
        tool: "secret_delete",
        description: "Deletes a secret (gated: secret.delete). A non-interactive caller gets a pending approval id.",
        schema: args::schema::<args::SecretDelete>,
        audience: Audience::Route("DELETE", "/v1/secrets/{name}"),
    },
    Def {
        name: Name::TokenMintApi,
        tool: "token_mint_api",
        description: "Mints an api token (gated: token.mint_api). A non-interactive caller gets a pending approval id; the token is shown once, to the requester, by approval_status.",
        schema: args::schema::<args::TokenMintApi>,
        audience: Audience::Route("POST", "/v1/tokens"),
    },
    Def {
        name: Name::AgentPolicyChange,
        tool: "agent_policy_change",
        description: "Sets an agent's egress policy (gated: policy.change). A non-interactive caller gets a pending approval id.",
        schema: args::schema::<args::AgentPolicyChange>,
        audience: Audience::Route("PUT", "/v1/agents/{name}/egress"),
    },
    Def {
        name: Name::AgentSecretsChange,
        tool: "agent_secrets_change",
        description: "Sets an agent's secret ceiling (gated: policy.change). A non-interactive caller gets a pending approval id.",
        schema: args::schema::<args::AgentSecretsChange>,
        audience: Audience::Route("PUT", "/v1/agents/{name}/secrets"),
    },
    Def {
        name: Name::JobsDeleteAll,
        tool: "jobs_delete_all",
        description: "Deletes every live job of the owner (gated: job.delete_all). A non-interactive caller gets a pending approval id.",
        schema: args::schema::<args::NoArgs>,
        audience: Audience::Route("DELETE", "/v1/jobs"),
    },
];

/// The route table's rules, by (method, path).
fn route_rules() -> &'static HashMap<(String, &'static str), Rule> {
    static RULES: OnceLock<HashMap<(String, &'static str), Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        gatehouse_api::router::route_specs()
            .into_iter()
            .filter_map(|s| Some(((s.method.to_string(), s.path), s.rule?)))
            .collect()
    })
}

fn admits(audience: Audience, principal: &Principal) -> bool {
    match audience {
        Audience::Everyone => true,
        Audience::Tokens => principal.jti.is_some(),
        // A route that is gone (or public) admits no one here.
        Audience::Route(method, path) => route_rules()
            .get(&(method.to_string(), path))
            .is_some_and(|rule| rule.admit(principal).is_ok()),
    }
}

/// The tools `principal` may use, as `tools/list` shows them.
pub fn listed(principal: &Principal) -> Vec<Tool> {
    CATALOGUE
        .iter()
        .filter(|d| admits(d.audience, principal))
        .map(|d| Tool::new(d.tool, d.description, (d.schema)()))
        .collect()
}

/// The tool called `name`, if `principal` may use it.
pub fn find(principal: &Principal, name: &str) -> Option<Name> {
    CATALOGUE
        .iter()
        .find(|d| d.tool == name && admits(d.audience, principal))
        .map(|d| d.name)
}

/// Everything a call needs from the HTTP request it came in.
pub struct Call<'a> {
    pub st: &'a AppState,
    pub principal: &'a Principal,
    /// The request's headers: the operator bypass header, if any, is
    /// honoured exactly as on the JSON routes.
    pub headers: &'a HeaderMap,
    pub request: &'a RequestId,
}

/// Runs tool `name`: its structured result, or a tool error naming what
/// is wrong.
pub async fn call(c: &Call<'_>, name: Name, arguments: Option<JsonObject>) -> CallToolResult {
    match run(c, name, arguments).await {
        Ok(value) => CallToolResult::structured(value),
        Err(Failure::Arguments(bad)) => CallToolResult::structured_error(json!({
            "error": {
                "code": "invalid_arguments",
                "field": bad.field,
                "message": bad.message,
            }
        })),
        Err(Failure::Api(e)) => CallToolResult::structured_error(json!({
            "error": {
                "code": e.code(),
                "status": e.status().as_u16(),
                "message": e.message(),
            }
        })),
    }
}

enum Failure {
    Arguments(BadArguments),
    Api(ApiError),
}

impl From<BadArguments> for Failure {
    fn from(b: BadArguments) -> Self {
        Self::Arguments(b)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// A gated verb's answer: what ran, or the approval it waits on.
pub fn outcome(o: GateOutcome) -> Value {
    match o {
        GateOutcome::Ran { status, body } => json!({
            "status": "executed",
            "http_status": status.as_u16(),
            "result": body,
        }),
        GateOutcome::Held(held) => held.body(),
    }
}

async fn run(c: &Call<'_>, name: Name, arguments: Option<JsonObject>) -> Result<Value, Failure> {
    let (st, p, headers, request) = (c.st, c.principal, c.headers, c.request);
    Ok(match name {
        Name::Whoami => {
            args::parse::<args::NoArgs>(arguments)?;
            app::identity::whoami(p)
        }
        Name::ListGrants => {
            args::parse::<args::NoArgs>(arguments)?;
            app::grants::list(st, p).await?
        }
        Name::EgressCheck => {
            let a: args::EgressCheck = args::parse(arguments)?;
            match app::egress::check(st, p, &a.url).await? {
                app::egress::EgressVerdict::Allowed {
                    host,
                    addresses,
                    judged,
                } => json!({
                    "allowed": true,
                    "host": host,
                    "addresses": addresses,
                    "judge_decides_each_request": judged,
                }),
                app::egress::EgressVerdict::Refused {
                    reason,
                    status,
                    message,
                } => json!({
                    "allowed": false,
                    "reason": reason,
                    "status": status,
                    "message": message,
                }),
            }
        }
        Name::ApprovalStatus => {
            let a: args::ApprovalStatus = args::parse(arguments)?;
            app::approvals::shown(st, p, &a.id).await?
        }
        Name::RevokeSelf => {
            args::parse::<args::NoArgs>(arguments)?;
            let jti = p
                .jti
                .clone()
                .ok_or_else(|| ApiError::bad_request("this credential has no token to revoke"))?;
            match app::tokens::revoke(st, p, request, app::tokens::RevokeTarget::Jti(jti)).await? {
                app::tokens::Revoked::Count(n) => json!({ "revoked": n }),
                app::tokens::Revoked::AllBefore(ts) => json!({ "revoked": { "all-before": ts } }),
            }
        }
        Name::SecretWrite => {
            let a: args::SecretWrite = args::parse(arguments)?;
            let input = app::secrets::SecretInput {
                value: SecretBytes::from_string(a.value),
                allowed_hosts: a.allowed_hosts,
                inject: a.inject.map(|i| app::secrets::Inject {
                    header: i.header,
                    format: i.format,
                }),
            };
            outcome(app::secrets::put(st, p, headers, request, a.name, input).await?)
        }
        Name::SecretDelete => {
            let a: args::SecretDelete = args::parse(arguments)?;
            outcome(app::secrets::delete(st, p, headers, request, a.name).await?)
        }
        Name::TokenMintApi => {
            let a: args::TokenMintApi = args::parse(arguments)?;
            let input = app::tokens::MintInput {
                class: "api".into(),
                subject: a.subject,
                ttl_seconds: a.ttl_seconds,
                scope: a.scope,
            };
            outcome(app::tokens::mint(st, p, headers, request, input).await?)
        }
        Name::AgentPolicyChange => {
            let a: args::AgentPolicyChange = args::parse(arguments)?;
            let hosts = a.allow_hosts.ok_or_else(|| BadArguments {
                field: "allow_hosts".into(),
                message: "argument allow_hosts: required (a list, or null to lift)".into(),
            })?;
            outcome(app::agents::set_egress(st, p, headers, request, a.agent, hosts).await?)
        }
        Name::AgentSecretsChange => {
            let a: args::AgentSecretsChange = args::parse(arguments)?;
            outcome(app::agents::set_secrets(st, p, headers, request, a.agent, a.secrets).await?)
        }
        Name::JobsDeleteAll => {
            args::parse::<args::NoArgs>(arguments)?;
            outcome(app::jobs::delete_all(st, p, headers, request).await?)
        }
    })
}
