//! Upstream MCP servers (SPEC §13): an owner registers the MCP servers
//! its agents reach through the gateway at `/mcp/{name}`, with the tools
//! they may see and call (`*` globs), the ones held for a human, and the
//! owner's secret the gateway writes into the upstream's auth header.
//!
//! Saving is the gated verb `policy.change`: a human session saves at
//! once, any other credential waits for a human. Before that the request
//! is checked in full: the name's grammar, the tool rules and auth
//! template (`domain::mcp`), the URL through the one outbound client's
//! save-time check (§12: `400 url_refused` naming the reason; `https`
//! unless every address is in `egress.allow_private_cidrs`), and the
//! secret must exist among the owner's. Another owner's server answers
//! like an unknown name (404).

use axum::http::HeaderMap;

use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::clock::{rfc3339, UnixTime};
use gatehouse_domain::egress::outbound::Origin;
use gatehouse_domain::mcp::{AuthTemplate, ToolRules};
use gatehouse_domain::names::{validate_mcp_server_name, validate_secret_name};
use gatehouse_domain::{Email, Principal};
use gatehouse_egress::OutboundError;
use gatehouse_store::{McpServerRecord, SecretRecord};

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall, McpAuthPlan, McpServerPlan};
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

/// Longest `url`.
pub const MAX_URL: usize = 2048;

/// `POST /v1/mcp/servers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerInput {
    #[schema(schema_with = crate::openapi::grammar::mcp_server_name)]
    pub name: String,
    /// The upstream's Streamable HTTP endpoint. `https`, unless every
    /// address it resolves to is in `egress.allow_private_cidrs`; checked
    /// when saved (`400 url_refused`) and again at every use.
    #[schema(max_length = 2048)]
    pub url: String,
    /// The owner's secret the gateway sends in the upstream's auth
    /// header; the agent never holds it.
    #[serde(default)]
    pub auth: Option<McpAuthInput>,
    #[serde(default)]
    pub tools: McpToolsInput,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpAuthInput {
    /// The name of one of the owner's secrets (never a value).
    #[schema(schema_with = crate::openapi::grammar::secret_name)]
    pub secret: String,
    /// Default `Authorization`.
    #[serde(default = "default_header")]
    #[schema(schema_with = crate::openapi::grammar::mcp_auth_header)]
    pub header: String,
    /// Holds `{value}` once; default `Bearer {value}`.
    #[serde(default = "default_format")]
    #[schema(max_length = 200)]
    pub format: String,
}

fn default_header() -> String {
    "Authorization".into()
}

fn default_format() -> String {
    "Bearer {value}".into()
}

/// Tool names or `*` globs. Only tools `allow` matches are listed and
/// callable; of those, the ones `gated` matches are held for a human.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpToolsInput {
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::tool_patterns)]
    pub allow: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::tool_patterns)]
    pub gated: Vec<String>,
}

fn checked_name(name: &str) -> ApiResult<()> {
    validate_mcp_server_name(name).map_err(|e| ApiError::BadRequest {
        code: "invalid_name",
        message: e.to_string(),
    })
}

/// The URL as the one outbound client judges a user's target when saved.
pub async fn check_url(st: &AppState, url: &str) -> ApiResult<()> {
    if url.len() > MAX_URL {
        return Err(ApiError::BadRequest {
            code: "url_refused",
            message: format!("url is longer than {MAX_URL} characters"),
        });
    }
    st.outbound
        .check_saved_tls(url, Origin::User)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest {
            code: "url_refused",
            message: match &e {
                OutboundError::Refused(r) => format!("url is refused ({}): {r}", r.reason()),
                _ => format!("url is refused ({}): {e}", e.reason()),
            },
        })
}

/// A secret goes only towards the hosts it is bound to (SPEC §4, §6): the
/// server's URL host must be in the secret's `allowed_hosts`, checked when
/// the server is saved and again each time the header is built (the
/// secret may have been rebound since).
pub fn secret_bound_to(secret: &SecretRecord, url: &str) -> Result<(), String> {
    let hosts: Vec<String> = serde_json::from_str(&secret.allowed_hosts)
        .map_err(|_| format!("the stored hosts of secret {} are unreadable", secret.name))?;
    let (parsed, _) = gatehouse_egress::outbound::parse_url(url)
        .map_err(|e| format!("the server's url is refused: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    if gatehouse_domain::egress::host_allowed(&hosts, host) {
        Ok(())
    } else {
        Err(format!(
            "secret {} is not bound to {host} (its allowed_hosts do not name it)",
            secret.name
        ))
    }
}

/// Everything about a save that does not depend on a human.
async fn validate(
    st: &AppState,
    principal: &Principal,
    input: McpServerInput,
) -> ApiResult<McpServerPlan> {
    checked_name(&input.name)?;
    let rules = ToolRules::new(input.tools.allow, input.tools.gated)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Where it points first: the secret's binding is judged against it.
    check_url(st, &input.url).await?;
    let auth = match input.auth {
        None => None,
        Some(a) => {
            validate_secret_name(&a.secret)
                .map_err(|e| ApiError::bad_request(format!("auth.secret: {e}")))?;
            let template = AuthTemplate::new(&a.header, &a.format)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let Some(secret) = st.store.secret(&principal.owner, &a.secret).await? else {
                return Err(ApiError::Unprocessable {
                    code: "unknown_secret",
                    message: format!("auth.secret: you have no secret named {}", a.secret),
                });
            };
            secret_bound_to(&secret, &input.url).map_err(|why| ApiError::Unprocessable {
                code: "secret_not_bound",
                message: format!("auth.secret: {why}"),
            })?;
            Some(McpAuthPlan {
                secret: a.secret,
                header: template.header().to_string(),
                format: template.format().to_string(),
            })
        }
    };
    Ok(McpServerPlan {
        name: input.name,
        url: input.url,
        auth,
        allow: rules.allow().to_vec(),
        gated: rules.gated().to_vec(),
    })
}

/// Saves (creates or replaces) a server: `201` new, `200` replaced, or
/// `202` held for a human (`policy.change`).
pub async fn save(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    input: McpServerInput,
) -> ApiResult<GateOutcome> {
    let plan = validate(st, principal, input).await?;
    gate(
        st,
        principal,
        headers,
        request,
        GatedCall::McpServerSave(plan),
    )
    .await
}

/// The owner's servers, by name.
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Vec<McpServerRecord>> {
    Ok(st.store.mcp_servers(&principal.owner).await?)
}

/// One of the caller's owner's servers; any other name (another owner's
/// included) is `404`.
pub async fn get(st: &AppState, principal: &Principal, name: &str) -> ApiResult<McpServerRecord> {
    checked_name(name)?;
    find(st, &principal.owner, name)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such MCP server".into()))
}

/// The owner's server of that name, looked up in that owner only.
pub async fn find(st: &AppState, owner: &Email, name: &str) -> ApiResult<Option<McpServerRecord>> {
    Ok(st.store.mcp_server(owner, name).await?)
}

/// Removes a server (`204`); agents reach it no more. Taking access away
/// needs no human.
pub async fn delete(
    st: &AppState,
    principal: &Principal,
    request: &RequestId,
    name: &str,
) -> ApiResult<()> {
    checked_name(name)?;
    let event = audit_event(principal, "mcp.server.delete", name, "ok", request);
    if st
        .store
        .delete_mcp_server(&principal.owner, name, event, st.now())
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such MCP server".into()))
    }
}

/// A plan as its row.
pub fn record(
    owner: &Email,
    plan: &McpServerPlan,
    created_at: UnixTime,
    now: UnixTime,
) -> McpServerRecord {
    let auth = plan.auth_json();
    McpServerRecord {
        owner: owner.clone(),
        name: plan.name.clone(),
        url: plan.url.clone(),
        auth: (!auth.is_null()).then(|| auth.to_string()),
        tools: plan.tools_json().to_string(),
        created_at,
        updated_at: now,
    }
}

/// A row as its plan (the gateway reads its rules from this).
pub fn plan_of(r: &McpServerRecord) -> Result<McpServerPlan, String> {
    let auth: Value = match &r.auth {
        None => Value::Null,
        Some(a) => serde_json::from_str(a).map_err(|_| "stored auth is not JSON".to_string())?,
    };
    let tools: Value =
        serde_json::from_str(&r.tools).map_err(|_| "stored tools are not JSON".to_string())?;
    McpServerPlan::from_json(&json!({
        "name": r.name,
        "url": r.url,
        "auth": auth,
        "tools": tools,
    }))
}

/// What callers see of a server: everything but a value (there is none
/// stored; `auth.secret` is a name).
pub fn view(r: &McpServerRecord) -> Value {
    let parse = |text: Option<&str>| -> Value {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null)
    };
    json!({
        "name": r.name,
        "url": r.url,
        "auth": parse(r.auth.as_deref()),
        "tools": parse(Some(&r.tools)),
        "endpoint": format!("/mcp/{}", r.name),
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    })
}
