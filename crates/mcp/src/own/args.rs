//! The tools' inputs: JSON Schemas (schemars) for `tools/list`, and
//! parsing that names the field that is wrong. Values are checked by the
//! application functions the tools call, as for the JSON API; these types
//! only give them shape.

use std::sync::Arc;

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressCheck {
    /// An absolute `http://` or `https://` URL, as a job would request it
    /// through the proxy.
    pub url: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStatus {
    /// The `approval_id` a gated tool (or a `202` answer) returned.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectRule {
    /// The header to add, e.g. `Authorization`.
    pub header: String,
    /// Its value, containing `{value}`, e.g. `Bearer {value}`.
    pub format: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretWrite {
    /// `^[A-Za-z0-9_.-]{1,128}$`.
    pub name: String,
    /// The secret value. Never returned, logged or audited.
    pub value: String,
    /// Hosts the value may be sent to: exact names or `*.suffix`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// A header added with the value to requests towards those hosts.
    #[serde(default)]
    pub inject: Option<InjectRule>,
}

impl std::fmt::Debug for SecretWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWrite")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretDelete {
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenMintApi {
    /// What the api token is for (`^[a-z0-9][a-z0-9_-]{0,62}$`).
    pub subject: String,
    /// Space-separated scopes, at most the caller's.
    #[serde(default)]
    pub scope: String,
    /// Lifetime in seconds (default and maximum: the api token policy).
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPolicyChange {
    /// A registered agent of the caller's owner.
    pub agent: String,
    /// Hosts every job of the agent may reach (exact names, `*.suffix`
    /// or `*`); `null` lifts the policy. Required: a missing field is not
    /// read as "lift" (that would widen access by accident).
    #[serde(deserialize_with = "present")]
    #[schemars(required, with = "Option<Vec<String>>")]
    pub allow_hosts: Option<Option<Vec<String>>>,
}

/// A field that must be present, `null` or not.
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSecretsChange {
    /// A registered agent of the caller's owner.
    pub agent: String,
    /// The secrets jobs created by the agent's own credentials may be
    /// granted without a human.
    pub secrets: Vec<String>,
}

/// The input schema of `T`, as `tools/list` shows it.
pub fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_input::<T>()
        .unwrap_or_else(|_| rmcp::handler::server::common::schema_for_empty_input())
}

/// Bad arguments: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadArguments {
    /// The JSON path of the offending field (`.` when it is the whole
    /// object, e.g. a missing field).
    pub field: String,
    pub message: String,
}

/// Parses a tool's arguments; an error names the field.
pub fn parse<T: DeserializeOwned>(arguments: Option<JsonObject>) -> Result<T, BadArguments> {
    let value = Value::Object(arguments.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if field == "." {
            // serde names a missing or unknown field only in its message.
            field_in(&inner).unwrap_or(field)
        } else {
            field
        };
        BadArguments {
            message: format!("argument {field}: {inner}"),
            field,
        }
    })
}

/// The field a serde message names in backquotes (`missing field `url``).
fn field_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = parse::<EgressCheck>(obj(json!({}))).unwrap_err();
        assert_eq!(e.field, "url");
        assert!(e.message.contains("missing field"), "{}", e.message);
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let e = parse::<EgressCheck>(obj(json!({"url": 5}))).unwrap_err();
        assert_eq!(e.field, "url");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let e = parse::<ApprovalStatus>(obj(json!({"id": "a", "bogus": 1}))).unwrap_err();
        assert_eq!(e.field, "bogus");
    }

    #[test]
    fn a_nested_field_is_named_by_its_path() {
        let e = parse::<SecretWrite>(obj(
            json!({"name": "X", "value": "v", "inject": {"header": "A", "format": 1}}),
        ))
        .unwrap_err();
        assert_eq!(e.field, "inject.format");
    }

    #[test]
    fn a_policy_change_must_say_its_hosts_or_null() {
        let e = parse::<AgentPolicyChange>(obj(json!({"agent": "bot"}))).unwrap_err();
        assert_eq!(e.field, "allow_hosts");
        let lift = parse::<AgentPolicyChange>(obj(json!({"agent": "bot", "allow_hosts": null})));
        assert_eq!(lift.unwrap().allow_hosts, Some(None));
        let s = schema::<AgentPolicyChange>();
        assert!(s["required"]
            .as_array()
            .unwrap()
            .contains(&json!("allow_hosts")));
    }

    #[test]
    fn a_secret_value_is_not_in_debug_output() {
        let w = parse::<SecretWrite>(obj(json!({"name": "X", "value": "hunter2-value"}))).unwrap();
        assert!(!format!("{w:?}").contains("hunter2"));
    }

    #[test]
    fn schemas_are_objects_naming_their_required_fields() {
        let s = schema::<EgressCheck>();
        assert_eq!(s.get("type"), Some(&json!("object")));
        assert_eq!(s.get("required"), Some(&json!(["url"])));
    }
}
