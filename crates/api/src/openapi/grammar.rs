//! The name grammars as JSON Schema, built from the domain's own pattern
//! constants (the same ones its validators mirror), never retyped here.
//! Request types point at these with `#[schema(schema_with = …)]`; path
//! parameters take them from the operation table.

use utoipa::openapi::schema::{
    Array, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;

use gatehouse_domain::token::policy::class_maximum;
use gatehouse_domain::{codes, email, jobs, names, CredentialClass, Scope};

fn string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
}

fn array_of(item: Object, max: Option<usize>) -> Array {
    ArrayBuilder::new().items(item).max_items(max).build()
}

fn one_of_strings(values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// Agent names (also subjects of agent and api tokens, upstream names).
pub fn agent_name() -> Object {
    string(names::AGENT_NAME_PATTERN).build()
}

/// Secret names.
pub fn secret_name() -> Object {
    string(names::SECRET_NAME_PATTERN).build()
}

/// Secret names, as a list (an agent's ceiling).
pub fn secret_names() -> Array {
    array_of(secret_name(), Some(crate::app::agents::MAX_CEILING))
}

/// An owner's email address.
pub fn email() -> Object {
    string(email::EMAIL_PATTERN)
        .max_length(Some(email::MAX_EMAIL_LENGTH))
        .build()
}

/// A host binding: an exact name or `*.suffix`.
pub fn host_binding() -> Object {
    string(names::HOST_BINDING_PATTERN)
        .max_length(Some(names::HOST_NAME_MAX))
        .build()
}

/// A secret's `allowed_hosts`.
pub fn host_bindings() -> Array {
    array_of(host_binding(), Some(crate::app::secrets::MAX_ALLOWED_HOSTS))
}

/// A job's or an agent's allow list entry: a host binding, or `*`.
pub fn allow_host() -> Object {
    string(names::ALLOW_HOST_PATTERN)
        .max_length(Some(names::HOST_NAME_MAX))
        .build()
}

/// A job's `egress.allow_hosts`.
pub fn allow_hosts() -> Array {
    array_of(allow_host(), None)
}

/// An agent's egress policy: a list, or `null` to lift it.
pub fn policy_hosts() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(allow_host())
        .max_items(Some(crate::app::agents::MAX_POLICY_HOSTS))
        .build()
}

/// A host name (the relay's target).
pub fn host_name() -> Object {
    string(names::HOST_NAME_PATTERN)
        .max_length(Some(names::HOST_NAME_MAX))
        .build()
}

/// Ids Gatehouse hands out (jobs, hooks, approvals).
pub fn id() -> Object {
    string(codes::ID_PATTERN).build()
}

/// A job grant's environment variable (reserved names are refused 422).
pub fn env_var() -> Object {
    string(jobs::ENV_VAR_PATTERN).build()
}

/// A job's packages: leaves, or `<known namespace>.<leaf>`.
pub fn packages() -> Array {
    array_of(string(&jobs::package_pattern()).build(), None)
}

/// How a grant reaches the job.
pub fn grant_mode() -> Object {
    one_of_strings(&["placeholder", "value"])
}

/// A lifetime in seconds, within a class's maximum.
fn ttl(class: CredentialClass) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(class_maximum(class)))
        .build()
}

pub fn job_ttl() -> Object {
    ttl(CredentialClass::Job)
}

/// Space-separated scopes from `allowed` (blanks as the parser splits).
fn scope_list(allowed: &[Scope]) -> Object {
    let words = allowed
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("|");
    string(&format!(
        "^[ \\t\\n\\f\\r]*(?:(?:{words})(?:[ \\t\\n\\f\\r]+(?:{words}))*)?[ \\t\\n\\f\\r]*$"
    ))
    .build()
}

/// `POST /v1/tokens`: which class may carry which scopes and lifetime
/// (agent tokens: no `approval:bypass`; neither `credentials:read`).
pub fn mint_request() -> RefOr<Schema> {
    let variant = |class: CredentialClass, scopes: Vec<Scope>, about: &str| {
        ObjectBuilder::new()
            .description(Some(about))
            .property("class", one_of_strings(&[class.as_str()]))
            .required("class")
            .property("subject", agent_name())
            .required("subject")
            .property("ttl_seconds", ttl(class))
            .property("scope", scope_list(&scopes))
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .build()
    };
    let not_job = |s: &Scope| *s != Scope::CredentialsRead;
    let agent_scopes = Scope::ALL
        .into_iter()
        .filter(|s| not_job(s) && *s != Scope::ApprovalBypass)
        .collect();
    let api_scopes = Scope::ALL.into_iter().filter(not_job).collect();
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(variant(
                CredentialClass::Agent,
                agent_scopes,
                "An agent token (human sessions only) for a registered agent.",
            ))
            .item(variant(
                CredentialClass::Api,
                api_scopes,
                "An api token: a gated verb (token.mint_api) for non-interactive callers.",
            ))
            .build(),
    ))
}

/// `POST /v1/tokens/revoke`: one token by `jti`, every token of a
/// `subject` (an agent, `<agent>/<job>`, an email), or of an `owner`.
pub fn revoke_request() -> RefOr<Schema> {
    let one = |field: &str, schema: Object| {
        ObjectBuilder::new()
            .property(field, schema)
            .required(field)
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .build()
    };
    let subject = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(256))
        .build();
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(one(
                "jti",
                ObjectBuilder::new().schema_type(Type::String).build(),
            ))
            .item(one("subject", subject))
            .item(one("owner", email()))
            .build(),
    ))
}

/// An inbound webhook's provider.
pub fn hook_provider() -> Object {
    let names: Vec<&str> = gatehouse_domain::webhook::Provider::ALL
        .iter()
        .map(|p| p.as_str())
        .collect();
    one_of_strings(&names)
}

/// `GET /v1/approvals?status=`: a state, or empty for any.
pub fn approval_status() -> Object {
    let mut states = vec![""];
    states.extend(
        gatehouse_domain::approvals::ApprovalStatus::ALL
            .iter()
            .map(|s| s.as_str()),
    );
    one_of_strings(&states)
}

pub fn decision() -> Object {
    one_of_strings(&["approve", "deny"])
}

/// A decision's reason: printable, at most 500 characters.
pub fn reason() -> Object {
    string(crate::app::approvals::REASON_PATTERN).build()
}

/// A header name (RFC 9110 token), at most 128 characters.
pub fn header_name() -> Object {
    string(crate::app::secrets::HEADER_NAME_PATTERN).build()
}

/// An inject format: holds `{value}`, at most 256 printable characters.
pub fn inject_format() -> Object {
    string(crate::app::secrets::INJECT_FORMAT_PATTERN)
        .max_length(Some(crate::app::secrets::MAX_INJECT_FORMAT))
        .build()
}

/// Free-form JSON (approval parameters, results).
pub fn any() -> RefOr<Schema> {
    RefOr::T(Schema::Object(ObjectBuilder::new().build()))
}

/// The rest of a relayed URL's path.
pub fn relay_path() -> Object {
    ObjectBuilder::new().schema_type(Type::String).build()
}

/// An upstream MCP server's name (the agent-name grammar).
pub fn mcp_server_name() -> Object {
    string(names::MCP_SERVER_NAME_PATTERN).build()
}

/// The upstream's auth header name.
pub fn mcp_auth_header() -> Object {
    string(gatehouse_domain::mcp::HEADER_NAME_PATTERN).build()
}

/// Tool names or `*` globs.
pub fn tool_patterns() -> Array {
    array_of(
        string(gatehouse_domain::mcp::TOOL_PATTERN_PATTERN).build(),
        Some(gatehouse_domain::mcp::MAX_TOOL_PATTERNS),
    )
}
