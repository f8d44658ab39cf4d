//! Each gated verb as a value: its exact parameters, how they are stored
//! while a human decides (a secret value sealed, never shown), and the
//! store action it becomes when it runs.

use serde_json::{json, Map, Value};

use gatehouse_domain::approvals::{fingerprint, Verb};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::secret::constant_time_eq;
use gatehouse_domain::{Email, ScopeSet, SecretBytes};
use gatehouse_store::{Grant, GrantMode};

/// A secret write, validated.
#[derive(Debug)]
pub struct SecretWrite {
    pub name: String,
    pub value: SecretBytes,
    /// Normalised host patterns.
    pub allowed_hosts: Vec<String>,
    /// The validated `inject` rule, if any.
    pub inject: Option<Value>,
}

/// A job creation, validated (the agent, grants, packages and hosts as
/// `POST /v1/jobs` checked them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlan {
    pub agent: String,
    pub grants: Vec<Grant>,
    pub packages: Vec<String>,
    pub ttl_seconds: Option<i64>,
    /// Normalised host patterns.
    pub allow_hosts: Vec<String>,
}

impl JobPlan {
    fn to_json(&self) -> Value {
        json!({
            "agent": self.agent,
            "grants": self.grants.iter().map(|g| json!({
                "env_var": g.env_var,
                "secret": g.secret,
                "mode": g.mode.as_str(),
            })).collect::<Vec<_>>(),
            "packages": self.packages,
            "ttl_seconds": self.ttl_seconds,
            "egress": { "allow_hosts": self.allow_hosts },
        })
    }

    fn from_json(params: &Value) -> Result<JobPlan, String> {
        let texts = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            v.and_then(Value::as_array)
                .ok_or_else(|| format!("stored {what} are not a list"))?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("stored {what} are not all text"))
        };
        let grants = params
            .get("grants")
            .and_then(Value::as_array)
            .ok_or("stored grants are not a list")?
            .iter()
            .map(|g| {
                let field = |k: &str| g.get(k).and_then(Value::as_str).map(str::to_string);
                Some(Grant {
                    env_var: field("env_var")?,
                    secret: field("secret")?,
                    mode: GrantMode::parse(&field("mode")?)?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("a stored grant is malformed")?;
        Ok(JobPlan {
            agent: params
                .get("agent")
                .and_then(Value::as_str)
                .ok_or("stored parameters lack agent")?
                .to_string(),
            grants,
            packages: texts(params.get("packages"), "packages")?,
            ttl_seconds: params.get("ttl_seconds").and_then(Value::as_i64),
            allow_hosts: texts(params.pointer("/egress/allow_hosts"), "allow_hosts")?,
        })
    }
}

/// How the owner's secret reaches an upstream MCP server, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpAuthPlan {
    /// The name of one of the owner's secrets (never a value).
    pub secret: String,
    /// Lower-case header name.
    pub header: String,
    /// Holds `{value}` once.
    pub format: String,
}

/// An upstream MCP server to save, validated (`POST /v1/mcp/servers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerPlan {
    pub name: String,
    pub url: String,
    pub auth: Option<McpAuthPlan>,
    pub allow: Vec<String>,
    pub gated: Vec<String>,
}

impl McpServerPlan {
    /// The `auth` column / field: JSON, or null.
    pub fn auth_json(&self) -> Value {
        match &self.auth {
            None => Value::Null,
            Some(a) => json!({ "secret": a.secret, "header": a.header, "format": a.format }),
        }
    }

    /// The `tools` column / field.
    pub fn tools_json(&self) -> Value {
        json!({ "allow": self.allow, "gated": self.gated })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "url": self.url,
            "auth": self.auth_json(),
            "tools": self.tools_json(),
        })
    }

    /// Reads a plan back from its JSON form (stored parameters, a row).
    pub fn from_json(v: &Value) -> Result<McpServerPlan, String> {
        let text = |v: Option<&Value>, what: &str| -> Result<String, String> {
            v.and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("stored mcp server lacks {what}"))
        };
        let list = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            v.and_then(Value::as_array)
                .ok_or_else(|| format!("stored {what} are not a list"))?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("stored {what} are not all text"))
        };
        let auth = match v.get("auth") {
            None | Some(Value::Null) => None,
            Some(a) => Some(McpAuthPlan {
                secret: text(a.get("secret"), "auth.secret")?,
                header: text(a.get("header"), "auth.header")?,
                format: text(a.get("format"), "auth.format")?,
            }),
        };
        Ok(McpServerPlan {
            name: text(v.get("name"), "name")?,
            url: text(v.get("url"), "url")?,
            auth,
            allow: list(v.pointer("/tools/allow"), "tools.allow")?,
            gated: list(v.pointer("/tools/gated"), "tools.gated")?,
        })
    }
}

/// One call of a gateable verb with everything it needs to run.
#[derive(Debug)]
pub enum GatedCall {
    SecretWrite(SecretWrite),
    SecretDelete {
        name: String,
    },
    TokenMintApi {
        subject: String,
        scope: ScopeSet,
        ttl_seconds: Option<i64>,
    },
    JobDeleteAll,
    OwnerDeprovision {
        email: Email,
    },
    JobDelete {
        id: String,
    },
    /// Take back the credential Gatehouse holds for an upstream.
    UpstreamRevoke {
        name: String,
    },
    /// An agent's egress policy: the hosts every job of it may reach
    /// (normalised patterns), or `None` to lift it.
    PolicyChange {
        agent: String,
        allow_hosts: Option<Vec<String>>,
    },
    /// An agent's secret ceiling (also `policy.change`): the secrets jobs
    /// created by its own credentials may be granted.
    AgentSecrets {
        agent: String,
        secrets: Vec<String>,
    },
    /// A job whose creator is not a human and that grants a value.
    JobGrantValues(JobPlan),
    /// An owner's upstream MCP server saved (also `policy.change`).
    McpServerSave(McpServerPlan),
    /// A call to a tool an owner's MCP server marks gated (`mcp.tool`).
    /// The arguments are shown to deciders and bound by the digest; the
    /// audit log holds only their digest.
    McpTool {
        server: String,
        tool: String,
        arguments: Map<String, Value>,
    },
}

impl GatedCall {
    pub fn verb(&self) -> Verb {
        match self {
            GatedCall::SecretWrite(_) => Verb::SecretWrite,
            GatedCall::SecretDelete { .. } => Verb::SecretDelete,
            GatedCall::TokenMintApi { .. } => Verb::TokenMintApi,
            GatedCall::JobDeleteAll => Verb::JobDeleteAll,
            GatedCall::OwnerDeprovision { .. } => Verb::OwnerDeprovision,
            GatedCall::JobDelete { .. } => Verb::JobDelete,
            GatedCall::PolicyChange { .. }
            | GatedCall::AgentSecrets { .. }
            | GatedCall::McpServerSave(_) => Verb::PolicyChange,
            GatedCall::McpTool { .. } => Verb::McpTool,
            GatedCall::JobGrantValues(_) => Verb::JobGrantValues,
            GatedCall::UpstreamRevoke { .. } => Verb::UpstreamRevoke,
        }
    }

    /// The parameters as deciders see them and as the approval is bound
    /// to, plus the value that must be sealed rather than shown. A secret
    /// appears only as its length and a fingerprint keyed by the owner's
    /// data key.
    pub fn stored_params(&self, data_key: &SymmetricKey) -> (Value, Option<&SecretBytes>) {
        match self {
            GatedCall::SecretWrite(w) => (
                json!({
                    "name": w.name,
                    "allowed_hosts": w.allowed_hosts,
                    "inject": w.inject,
                    "value": {
                        "length": w.value.len(),
                        "fingerprint": fingerprint(data_key.expose(), w.value.expose()),
                    },
                }),
                Some(&w.value),
            ),
            GatedCall::SecretDelete { name } => (json!({ "name": name }), None),
            GatedCall::TokenMintApi {
                subject,
                scope,
                ttl_seconds,
            } => (
                json!({
                    "class": "api",
                    "subject": subject,
                    "scope": scope.to_string(),
                    "ttl_seconds": ttl_seconds,
                }),
                None,
            ),
            GatedCall::JobDeleteAll => (json!({}), None),
            GatedCall::OwnerDeprovision { email } => (json!({ "email": email.as_str() }), None),
            GatedCall::JobDelete { id } => (json!({ "job_id": id }), None),
            GatedCall::UpstreamRevoke { name } => (json!({ "upstream": name }), None),
            GatedCall::PolicyChange { agent, allow_hosts } => {
                (json!({ "agent": agent, "allow_hosts": allow_hosts }), None)
            }
            GatedCall::AgentSecrets { agent, secrets } => {
                (json!({ "agent": agent, "secrets": secrets }), None)
            }
            GatedCall::JobGrantValues(plan) => (plan.to_json(), None),
            GatedCall::McpServerSave(plan) => (json!({ "mcp_server": plan.to_json() }), None),
            GatedCall::McpTool {
                server,
                tool,
                arguments,
            } => (
                json!({ "server": server, "tool": tool, "arguments": arguments }),
                None,
            ),
        }
    }

    /// Rebuilds a call from what was stored at request time. The sealed
    /// value, once opened, must match the fingerprint the deciders saw.
    pub fn from_stored(
        verb: Verb,
        params: &Value,
        value: Option<SecretBytes>,
        data_key: &SymmetricKey,
    ) -> Result<GatedCall, String> {
        let text = |key: &str| -> Result<String, String> {
            params
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("stored parameters lack {key}"))
        };
        Ok(match verb {
            Verb::SecretWrite => {
                let value = value.ok_or("the stored secret value is missing")?;
                let expected = params
                    .pointer("/value/fingerprint")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let actual = fingerprint(data_key.expose(), value.expose());
                if !constant_time_eq(actual.as_bytes(), expected.as_bytes()) {
                    return Err("the stored secret value does not match its fingerprint".into());
                }
                let allowed_hosts = params
                    .get("allowed_hosts")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                GatedCall::SecretWrite(SecretWrite {
                    name: text("name")?,
                    value,
                    allowed_hosts,
                    inject: params.get("inject").filter(|v| !v.is_null()).cloned(),
                })
            }
            Verb::SecretDelete => GatedCall::SecretDelete {
                name: text("name")?,
            },
            Verb::TokenMintApi => GatedCall::TokenMintApi {
                subject: text("subject")?,
                scope: ScopeSet::parse(&text("scope")?).map_err(|e| e.to_string())?,
                ttl_seconds: params.get("ttl_seconds").and_then(Value::as_i64),
            },
            Verb::JobDeleteAll => GatedCall::JobDeleteAll,
            Verb::OwnerDeprovision => GatedCall::OwnerDeprovision {
                email: Email::parse(&text("email")?).map_err(|e| e.to_string())?,
            },
            Verb::JobDelete => GatedCall::JobDelete {
                id: text("job_id")?,
            },
            Verb::PolicyChange if params.get("mcp_server").is_some() => {
                GatedCall::McpServerSave(McpServerPlan::from_json(&params["mcp_server"])?)
            }
            Verb::McpTool => GatedCall::McpTool {
                server: text("server")?,
                tool: text("tool")?,
                arguments: params
                    .get("arguments")
                    .and_then(Value::as_object)
                    .cloned()
                    .ok_or("stored arguments are not an object")?,
            },
            Verb::PolicyChange if params.get("secrets").is_some() => GatedCall::AgentSecrets {
                agent: text("agent")?,
                secrets: params
                    .get("secrets")
                    .and_then(Value::as_array)
                    .ok_or("stored secrets are not a list")?
                    .iter()
                    .map(|s| s.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("stored secrets are not all text")?,
            },
            Verb::JobGrantValues => GatedCall::JobGrantValues(JobPlan::from_json(params)?),
            Verb::PolicyChange => GatedCall::PolicyChange {
                agent: text("agent")?,
                allow_hosts: match params.get("allow_hosts") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(hosts)) => Some(
                        hosts
                            .iter()
                            .map(|h| h.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .ok_or("stored allow_hosts are not all text")?,
                    ),
                    Some(_) => return Err("stored allow_hosts are not a list".into()),
                },
            },
            Verb::UpstreamRevoke => GatedCall::UpstreamRevoke {
                name: text("upstream")?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SymmetricKey {
        SymmetricKey::from_bytes([7; 32])
    }

    fn every_call() -> Vec<GatedCall> {
        vec![
            GatedCall::SecretWrite(SecretWrite {
                name: "GH".into(),
                value: SecretBytes::from_string("ghp_value".into()),
                allowed_hosts: vec!["api.github.com".into()],
                inject: Some(json!({"header": "Authorization", "format": "Bearer {value}"})),
            }),
            GatedCall::SecretDelete { name: "GH".into() },
            GatedCall::TokenMintApi {
                subject: "ci".into(),
                scope: ScopeSet::parse("secrets:write jobs:read").unwrap(),
                ttl_seconds: Some(600),
            },
            GatedCall::JobDeleteAll,
            GatedCall::OwnerDeprovision {
                email: Email::parse("bob@example.com").unwrap(),
            },
            GatedCall::JobDelete { id: "j1".into() },
            GatedCall::PolicyChange {
                agent: "bot".into(),
                allow_hosts: Some(vec!["api.github.com".into(), "*.example.com".into()]),
            },
            GatedCall::PolicyChange {
                agent: "bot".into(),
                allow_hosts: None,
            },
            GatedCall::UpstreamRevoke { name: "dbx".into() },
            GatedCall::AgentSecrets {
                agent: "bot".into(),
                secrets: vec!["GH".into(), "upstream.dbx".into()],
            },
            GatedCall::AgentSecrets {
                agent: "bot".into(),
                secrets: vec![],
            },
            GatedCall::JobGrantValues(JobPlan {
                agent: "bot".into(),
                grants: vec![
                    Grant {
                        env_var: "GH_TOKEN".into(),
                        secret: "GH".into(),
                        mode: GrantMode::Value,
                    },
                    Grant {
                        env_var: "DB".into(),
                        secret: "DB".into(),
                        mode: GrantMode::Placeholder,
                    },
                ],
                packages: vec!["jq".into()],
                ttl_seconds: Some(600),
                allow_hosts: vec!["api.github.com".into()],
            }),
            GatedCall::McpServerSave(McpServerPlan {
                name: "github".into(),
                url: "https://mcp.example.com/mcp".into(),
                auth: Some(McpAuthPlan {
                    secret: "GH".into(),
                    header: "authorization".into(),
                    format: "Bearer {value}".into(),
                }),
                allow: vec!["*".into()],
                gated: vec!["delete_*".into()],
            }),
            GatedCall::McpServerSave(McpServerPlan {
                name: "open".into(),
                url: "http://10.0.0.1/mcp".into(),
                auth: None,
                allow: vec![],
                gated: vec![],
            }),
            GatedCall::McpTool {
                server: "github".into(),
                tool: "delete_repo".into(),
                arguments: json!({"repo": "x", "force": true})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
        ]
    }

    #[test]
    fn every_call_survives_storage_with_the_same_parameters() {
        for call in every_call() {
            let (params, secret) = call.stored_params(&key());
            let back =
                GatedCall::from_stored(call.verb(), &params, secret.cloned(), &key()).unwrap();
            assert_eq!(back.verb(), call.verb());
            assert_eq!(back.stored_params(&key()).0, params, "{}", call.verb());
        }
    }

    #[test]
    fn shown_parameters_never_hold_the_secret_value() {
        let call = &every_call()[0];
        let (params, secret) = call.stored_params(&key());
        assert!(secret.is_some());
        assert!(!params.to_string().contains("ghp_value"));
        assert_eq!(params["value"]["length"], 9);
    }

    #[test]
    fn a_swapped_sealed_value_is_refused() {
        let call = &every_call()[0];
        let (params, _) = call.stored_params(&key());
        let other = SecretBytes::from_string("ghp_other".into());
        let err =
            GatedCall::from_stored(Verb::SecretWrite, &params, Some(other), &key()).unwrap_err();
        assert!(err.contains("fingerprint"));
    }
}
