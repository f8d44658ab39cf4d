//! Running a gated call: directly for a human or a bypass, or as an
//! approved request. Both paths go through [`run`], so a verb behaves the
//! same whoever let it through.

use axum::http::StatusCode;
use serde_json::{json, Value};

use gatehouse_domain::approvals::{params_digest, Verb};
use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::crypto::{self, Purpose, SymmetricKey};
use gatehouse_domain::secret::constant_time_eq;
use gatehouse_domain::{CredentialClass, Email, Principal, SecretBytes};
use gatehouse_store::{
    ActionEffect, ApprovalRecord, Completion, GatedAction, PutOutcome, RunResult, SecretRecord,
};

use super::{GateOutcome, GatedCall};
use crate::error::{ApiError, ApiResult};
use crate::keys::longest_token_lifetime;
use crate::request_id::RequestId;
use crate::routes::{secrets, tokens};
use crate::state::AppState;

/// On whose behalf a call runs, for its audit records.
struct Context {
    owner: Email,
    actor: String,
    class: CredentialClass,
    request_id: String,
    /// The approval this run completes.
    approval: Option<String>,
    /// That approval was claimed (`executing`) before the run.
    claimed: bool,
    /// Audit records written with the action (bypass, execution).
    extra_audit: Vec<AuditEvent>,
}

impl Context {
    fn event(&self, action: &str, target: &str) -> AuditEvent {
        let outcome = match &self.approval {
            Some(id) => format!("ok approval={id}"),
            None => "ok".into(),
        };
        AuditEvent {
            actor: self.actor.clone(),
            cls: self.class.as_str().into(),
            owner: self.owner.as_str().into(),
            action: action.into(),
            target: target.into(),
            outcome,
            request_id: self.request_id.clone(),
        }
    }
}

/// How a direct run answers.
enum Respond {
    Secret(Value),
    /// An MCP server saved: 201 when new, 200 when it replaced one.
    Saved(Value),
    NoContent,
    Created(Value),
    Ok(Value),
    JobsDeleted,
}

/// A call turned into its store action, audit records and result.
struct Prepared {
    action: GatedAction,
    audit: Vec<AuditEvent>,
    /// Shown to requester and deciders once executed.
    result: Value,
    /// Shown to the requester only (a minted token), sealed at rest.
    requester_secret: Option<SecretBytes>,
    respond: Respond,
}

enum Ran {
    Done(ActionEffect, Respond),
    Failed(String),
    NotApproved,
}

async fn prepare(
    st: &AppState,
    ctx: &Context,
    call: &GatedCall,
    data_key: &SymmetricKey,
) -> ApiResult<Prepared> {
    let now = st.now();
    let owner = &ctx.owner;
    Ok(match call {
        GatedCall::SecretWrite(w) => {
            let created_at = st
                .store
                .secret(owner, &w.name)
                .await?
                .map_or(now, |s| s.created_at);
            let record = SecretRecord {
                owner: owner.clone(),
                name: w.name.clone(),
                sealed: crypto::seal(
                    data_key,
                    Purpose::SecretValue,
                    &[owner.as_str(), &w.name],
                    w.value.expose(),
                ),
                allowed_hosts: serde_json::to_string(&w.allowed_hosts)
                    .map_err(ApiError::internal)?,
                inject: w.inject.as_ref().map(Value::to_string),
                created_at,
                updated_at: now,
            };
            let shown = secrets::metadata(&record);
            Prepared {
                audit: vec![ctx.event("secret.write", &w.name)],
                action: GatedAction::PutSecret(record),
                result: shown.clone(),
                requester_secret: None,
                respond: Respond::Secret(shown),
            }
        }
        GatedCall::SecretDelete { name } => Prepared {
            action: GatedAction::DeleteSecret {
                owner: owner.clone(),
                name: name.clone(),
            },
            audit: vec![ctx.event("secret.delete", name)],
            result: json!({ "deleted": name }),
            requester_secret: None,
            respond: Respond::NoContent,
        },
        GatedCall::TokenMintApi {
            subject,
            scope,
            ttl_seconds,
        } => {
            let (token, claims) = st
                .auth
                .issue(CredentialClass::Api, subject, owner, *scope, *ttl_seconds)
                .await?;
            let (issued, event) = tokens::issued_record(&claims, &ctx.actor, &ctx.request_id)?;
            let shown = json!({
                "jti": claims.jti,
                "expires_at": rfc3339(claims.exp),
                "class": claims.cls.as_str(),
                "subject": claims.sub,
                "scope": claims.scope,
            });
            let mut with_token = shown.clone();
            with_token["token"] = json!(token);
            Prepared {
                action: GatedAction::MintToken(issued),
                audit: vec![event],
                result: shown,
                requester_secret: Some(SecretBytes::from_string(token)),
                respond: Respond::Created(with_token),
            }
        }
        GatedCall::JobDeleteAll => Prepared {
            action: GatedAction::DeleteAllJobs {
                owner: owner.clone(),
            },
            audit: vec![ctx.event("job.delete_all", "*")],
            result: json!({}),
            requester_secret: None,
            respond: Respond::JobsDeleted,
        },
        GatedCall::OwnerDeprovision { email } => {
            take_back_upstreams(st, email).await;
            Prepared {
                action: GatedAction::DeprovisionOwner {
                    owner: email.clone(),
                    token_expiry: now + longest_token_lifetime(),
                },
                audit: vec![ctx.event("owner.deprovision", email.as_str())],
                result: json!({ "deprovisioned": email.as_str() }),
                requester_secret: None,
                respond: Respond::Ok(json!({ "deprovisioned": email.as_str() })),
            }
        }
        GatedCall::UpstreamRevoke { name } => {
            let taken = crate::upstream::revoke::take_back(st, owner, name).await?;
            let shown = json!({ "upstream": name, "revoked_token_ids": taken.revoked });
            Prepared {
                action: GatedAction::RetireUpstream {
                    owner: owner.clone(),
                    name: name.clone(),
                    expected_current: taken.current,
                    secret_name: crate::upstream::secret_name(name),
                },
                audit: vec![ctx.event(
                    "upstream.revoke",
                    &format!("{name}: {}", taken.revoked.join(" ")),
                )],
                result: shown.clone(),
                requester_secret: None,
                respond: Respond::Ok(shown),
            }
        }
        GatedCall::PolicyChange { agent, allow_hosts } => {
            let shown = json!({ "name": agent, "allow_hosts": allow_hosts });
            Prepared {
                action: GatedAction::SetAgentEgress {
                    owner: owner.clone(),
                    agent: agent.clone(),
                    allow_hosts: allow_hosts
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(ApiError::internal)?,
                },
                audit: vec![ctx.event("policy.change", &format!("agent {agent} egress"))],
                result: shown.clone(),
                requester_secret: None,
                respond: Respond::Ok(shown),
            }
        }
        GatedCall::AgentSecrets { agent, secrets } => {
            let shown = json!({ "name": agent, "secrets": secrets });
            Prepared {
                action: GatedAction::SetAgentSecrets {
                    owner: owner.clone(),
                    agent: agent.clone(),
                    secrets: serde_json::to_string(secrets).map_err(ApiError::internal)?,
                },
                audit: vec![ctx.event(
                    "policy.change",
                    &format!("agent {agent} secrets: {}", secrets.join(" ")),
                )],
                result: shown.clone(),
                requester_secret: None,
                respond: Respond::Ok(shown),
            }
        }
        GatedCall::JobGrantValues(plan) => {
            // The ceiling again, as it stands now: a secret a human took
            // out of it since the request is not granted by the approval.
            crate::job_build::check_ceiling(st, owner, ctx.class, plan).await?;
            let built = crate::job_build::build(st, owner, &ctx.actor, plan).await?;
            let event = ctx.event("job.create", &built.job.id);
            Prepared {
                result: built.shown(),
                requester_secret: Some(SecretBytes::from_string(built.token.clone())),
                respond: Respond::Created(built.answer()),
                audit: vec![event],
                action: GatedAction::CreateJob {
                    job: Box::new(built.job),
                    placeholders: built.placeholders,
                    token: built.issued,
                },
            }
        }
        GatedCall::McpServerSave(plan) => {
            let created_at = st
                .store
                .mcp_server(owner, &plan.name)
                .await?
                .map_or(now, |m| m.created_at);
            let record = crate::app::mcp_servers::record(owner, plan, created_at, now);
            let shown = crate::app::mcp_servers::view(&record);
            Prepared {
                action: GatedAction::PutMcpServer(record),
                audit: vec![ctx.event(
                    "policy.change",
                    &format!("mcp server {} {}", plan.name, plan.url),
                )],
                result: shown.clone(),
                requester_secret: None,
                respond: Respond::Saved(shown),
            }
        }
        GatedCall::McpTool {
            server,
            tool,
            arguments,
        } => {
            // Only after the claim (an approved call) or for a caller the
            // gate runs directly: the one call out, made at most once.
            let caller = st.mcp.get().ok_or_else(|| ApiError::Unprocessable {
                code: "mcp_unavailable",
                message: "the MCP gateway does not run on this server".into(),
            })?;
            let digest = gatehouse_domain::mcp::arguments_digest(&Value::Object(arguments.clone()));
            let result = caller
                .call_tool(st, owner, server, tool, arguments)
                .await
                .map_err(|reason| ApiError::Unprocessable {
                    code: "mcp_call_failed",
                    message: format!("calling tool {tool} on MCP server {server} failed: {reason}"),
                })?;
            let is_error = result
                .get("isError")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut event = ctx.event("mcp.tool", &format!("{server} {tool} args={digest}"));
            if is_error {
                event.outcome = format!("tool_error {}", event.outcome);
            }
            Prepared {
                action: GatedAction::RecordMcpCall,
                audit: vec![event],
                result: json!({ "server": server, "tool": tool, "is_error": is_error }),
                // The tool's answer is for the requester alone.
                requester_secret: Some(SecretBytes::from_string(result.to_string())),
                respond: Respond::Ok(result),
            }
        }
        GatedCall::JobDelete { id } => Prepared {
            action: GatedAction::DeleteJob {
                owner: owner.clone(),
                id: id.clone(),
            },
            audit: vec![ctx.event("job.delete", id)],
            result: json!({ "deleted": id }),
            requester_secret: None,
            respond: Respond::NoContent,
        },
    })
}

/// Before an owner goes, the tokens Gatehouse minted at their upstreams
/// are revoked there (their state goes with the owner, and nothing would
/// revoke them later). Best effort: an unreachable upstream does not keep
/// an owner from being removed; its tokens then lapse at their lifetime,
/// and the failure is in the log.
async fn take_back_upstreams(st: &AppState, owner: &Email) {
    for upstream in st.upstreams.iter() {
        let name = &upstream.config.name;
        if !crate::upstream::same_person(owner.as_str(), upstream.config.owner.as_str()) {
            continue;
        }
        match crate::upstream::revoke::take_back(st, owner, name).await {
            Ok(_) | Err(ApiError::Conflict(_)) => {}
            Err(e) => {
                tracing::warn!(upstream = %name, "revoking upstream tokens of a deprovisioned owner failed: {}", e.message())
            }
        }
    }
}

/// The one way a gated call takes effect.
async fn run(
    st: &AppState,
    ctx: Context,
    call: &GatedCall,
    data_key: &SymmetricKey,
) -> ApiResult<Ran> {
    let mut prepared = prepare(st, &ctx, call, data_key).await?;
    let completion = ctx.approval.as_ref().map(|id| Completion {
        approval_id: id.clone(),
        claimed: ctx.claimed,
        result: prepared.result.to_string(),
        sealed_result: prepared.requester_secret.as_ref().map(|secret| {
            crypto::seal(
                data_key,
                Purpose::ApprovalPayload,
                &[ctx.owner.as_str(), id, "result"],
                secret.expose(),
            )
        }),
    });
    let mut audit = ctx.extra_audit;
    audit.append(&mut prepared.audit);
    let outcome = st
        .store
        .run_gated(
            &st.gatekeeper.key,
            &prepared.action,
            completion.as_ref(),
            audit,
            st.now(),
        )
        .await?;
    Ok(match outcome {
        RunResult::NotApproved => Ran::NotApproved,
        RunResult::Ran(ActionEffect::Failed(reason)) => Ran::Failed(reason),
        RunResult::Ran(effect) => {
            let revoked = match &effect {
                ActionEffect::Revoked(r) => r.as_slice(),
                ActionEffect::JobsDeleted { revocations, .. } => revocations.as_slice(),
                _ => &[],
            };
            for r in revoked {
                st.auth.revocations.apply(r);
            }
            Ran::Done(effect, prepared.respond)
        }
    })
}

/// A human session or a bypass: run now and answer as the plain route
/// would.
pub(super) async fn run_now(
    st: &AppState,
    principal: &Principal,
    request: &RequestId,
    call: &GatedCall,
    bypass_event: Option<AuditEvent>,
) -> ApiResult<GateOutcome> {
    let data_key = st
        .data_key(&principal.owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    let ctx = Context {
        owner: principal.owner.clone(),
        actor: principal.subject.clone(),
        class: principal.class,
        request_id: request.0.clone(),
        approval: None,
        claimed: false,
        extra_audit: bypass_event.into_iter().collect(),
    };
    match run(st, ctx, call, &data_key).await? {
        Ran::Done(effect, respond) => Ok(direct_response(effect, respond)),
        Ran::Failed(reason) => Err(failure_error(call.verb(), reason)),
        Ran::NotApproved => Err(ApiError::internal("a direct run was refused as unapproved")),
    }
}

fn direct_response(effect: ActionEffect, respond: Respond) -> GateOutcome {
    let (status, body) = match respond {
        Respond::Secret(body) => {
            let status = match effect {
                ActionEffect::Secret(PutOutcome::Replaced) => StatusCode::OK,
                _ => StatusCode::CREATED,
            };
            (status, body)
        }
        Respond::Saved(body) => {
            let status = match effect {
                ActionEffect::McpServer(PutOutcome::Replaced) => StatusCode::OK,
                _ => StatusCode::CREATED,
            };
            (status, body)
        }
        Respond::NoContent => (StatusCode::NO_CONTENT, Value::Null),
        Respond::Created(body) => (StatusCode::CREATED, body),
        Respond::Ok(body) => (StatusCode::OK, body),
        Respond::JobsDeleted => {
            let count = match effect {
                ActionEffect::JobsDeleted { count, .. } => count,
                _ => 0,
            };
            (StatusCode::OK, json!({ "deleted": count }))
        }
    };
    GateOutcome::Ran { status, body }
}

/// A direct run whose target was gone.
fn failure_error(verb: Verb, reason: String) -> ApiError {
    match verb {
        Verb::SecretDelete | Verb::JobDelete | Verb::OwnerDeprovision | Verb::PolicyChange => {
            ApiError::NotFound(reason)
        }
        Verb::SecretWrite | Verb::TokenMintApi => ApiError::forbidden("owner_unknown", reason),
        Verb::UpstreamRevoke => ApiError::Conflict(reason),
        // The agent or a granted secret went away meanwhile.
        Verb::JobDeleteAll | Verb::JobGrantValues | Verb::McpTool => ApiError::Unprocessable {
            code: "failed",
            message: reason,
        },
    }
}

/// Runs an approved request with the parameters stored when it was made.
/// Safe to call from any number of requests and replicas at once: the
/// store runs it for exactly one of them. Anything that prevents it from
/// running ends the approval `failed` with the reason, nothing half-done.
///
/// A verb that calls out (an upstream's token API) first claims the
/// approval (`approved → executing`); only the one claimer calls out, so
/// the outside call happens at most once, and an executor that dies after
/// the claim leaves it `executing` for the sweeper to fail, never re-run.
pub async fn execute_approved(st: &AppState, approval: &ApprovalRecord) -> ApiResult<()> {
    let call = match decode(st, approval).await? {
        Ok(call) => call,
        Err(reason) => return fail(st, approval, &reason).await,
    };
    let claimed = call.verb().calls_out();
    if claimed && !st.store.claim_approval(&approval.id, st.now()).await? {
        // Another request or replica claimed it (or it is no longer
        // approved): it is theirs to run.
        return Ok(());
    }
    let Some(data_key) = st.data_key(&approval.owner).await? else {
        return fail(st, approval, "the owner no longer exists").await;
    };
    let requester = &approval.requester;
    let verb = call.verb();
    let execute_event = AuditEvent {
        actor: requester.subject.clone(),
        cls: requester.class.as_str().into(),
        owner: approval.owner.as_str().into(),
        action: "approval.execute".into(),
        target: format!("{} {verb}", approval.id),
        outcome: "executed".into(),
        request_id: String::new(),
    };
    let ctx = Context {
        owner: approval.owner.clone(),
        actor: requester.subject.clone(),
        class: requester.class,
        request_id: String::new(),
        approval: Some(approval.id.clone()),
        claimed,
        extra_audit: vec![execute_event],
    };
    match run(st, ctx, &call, &data_key).await {
        Ok(Ran::Done(..)) | Ok(Ran::NotApproved) => Ok(()),
        Ok(Ran::Failed(reason)) => fail(st, approval, &reason).await,
        // A call that cannot be prepared (no signing key, a scope the
        // policy now refuses) fails for good; a store outage is retried.
        Err(ApiError::Unavailable(m)) => Err(ApiError::Unavailable(m)),
        Err(ApiError::Internal { reference }) => Err(ApiError::Internal { reference }),
        Err(other) => fail(st, approval, &other.message()).await,
    }
}

/// The stored request as a call, or why it cannot be one.
async fn decode(st: &AppState, approval: &ApprovalRecord) -> ApiResult<Result<GatedCall, String>> {
    let Some(verb) = Verb::parse(&approval.verb) else {
        return Ok(Err(format!("unknown verb {}", approval.verb)));
    };
    let Some(data_key) = st.data_key(&approval.owner).await? else {
        return Ok(Err("the owner no longer exists".into()));
    };
    let Ok(params) = serde_json::from_str::<Value>(&approval.params) else {
        return Ok(Err("the stored parameters are not JSON".into()));
    };
    if !constant_time_eq(&params_digest(verb, &params), &approval.params_digest) {
        return Ok(Err(
            "the stored parameters do not match the digest they were approved under".into(),
        ));
    }
    let value = match &approval.sealed {
        None => None,
        Some(sealed) => match crypto::open(
            &data_key,
            Purpose::ApprovalPayload,
            &[approval.owner.as_str(), &approval.id, "request"],
            sealed,
        ) {
            Ok(v) => Some(v),
            Err(_) => return Ok(Err("the sealed parameters do not open".into())),
        },
    };
    Ok(GatedCall::from_stored(verb, &params, value, &data_key))
}

async fn fail(st: &AppState, approval: &ApprovalRecord, reason: &str) -> ApiResult<()> {
    let event = AuditEvent {
        actor: "gatehouse".into(),
        cls: "system".into(),
        owner: approval.owner.as_str().into(),
        action: "approval.fail".into(),
        target: format!("{} {}", approval.id, approval.verb),
        outcome: format!("failed: {reason}"),
        request_id: String::new(),
    };
    st.store
        .fail_approval(&approval.id, reason, event, st.now())
        .await?;
    Ok(())
}

/// What only the requester may read back (a minted token), opened.
pub async fn requester_result(st: &AppState, approval: &ApprovalRecord) -> Option<SecretBytes> {
    let sealed = approval.sealed_result.as_ref()?;
    let data_key = st.data_key(&approval.owner).await.ok()??;
    crypto::open(
        &data_key,
        Purpose::ApprovalPayload,
        &[approval.owner.as_str(), &approval.id, "result"],
        sealed,
    )
    .ok()
}
