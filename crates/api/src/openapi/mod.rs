//! The OpenAPI 3.1 document served at `GET /v1/openapi.json` (SPEC §15).
//!
//! Three sources, so the document cannot drift from the server:
//! - the routes and their security come from the route table
//!   (`router::route_specs`): every route's rule (scope, admitted classes,
//!   operator only) becomes its `security` and `x-gatehouse-*` fields;
//! - request bodies and query parameters are the schemas of the very
//!   types serde parses (`ToSchema`/`IntoParams` derived on them), with
//!   the domain's name grammars as `pattern`s (`grammar.rs`);
//! - what each route answers (statuses, response types, error codes) is
//!   in the operation table (`ops.rs`), one entry per route.
//!
//! A route of the table that is neither in the operation table nor named
//! in [`NOT_API`] is a test failure (`api/tests/openapi_contract.rs`), as
//! is an operation the router does not serve.

pub mod grammar;
mod ops;
pub mod schemas;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::Schema;

use crate::router::{route_specs, Access, RouteSpec};

pub use ops::{operations, Body, OpDoc};

/// Routes the table serves that are not part of the JSON API, with why:
/// `(method, path)`. Anything else the router serves must be documented.
pub const NOT_API: &[(&str, &str)] = &[];

/// Whether `(method, path)` is deliberately left out of the document.
pub fn is_not_api(method: &str, path: &str) -> bool {
    NOT_API
        .iter()
        .any(|(m, p)| m.eq_ignore_ascii_case(method) && *p == path)
}

/// The error codes any authenticated route may answer, by status: the
/// one verifier (401), the route's rule (403), a revocation view or
/// store that cannot be trusted (503).
const AUTH_ERRORS: &[(u16, &[&str])] = &[
    (401, &["unauthenticated"]),
    (
        403,
        &[
            "insufficient_scope",
            "human_session_required",
            "operator_required",
            "credential_class_not_admitted",
            "forbidden",
            "owner_unknown",
        ],
    ),
    (503, &["unavailable"]),
];

/// The error codes of the JSON body extractor.
const BODY_ERRORS: &[(u16, &[&str])] = &[
    (400, &["bad_request"]),
    (413, &["payload_too_large"]),
    (415, &["unsupported_media_type"]),
];

/// The document, built from the route table and the operation table.
pub fn document() -> Value {
    let docs = operations();
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    add_type(&mut schemas, ops::ty::<schemas::ErrorBody>());
    for spec in route_specs() {
        let Some(doc) = docs
            .iter()
            .find(|d| d.method == spec.method.as_str() && d.path == spec.path)
        else {
            // Undocumented: the contract test names it.
            continue;
        };
        let operation = operation(&spec, doc, &mut schemas);
        paths
            .entry(openapi_path(spec.path))
            .or_default()
            .insert(spec.method.as_str().to_ascii_lowercase(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Credential and authority gateway for AI agents. Errors are {\"error\":{\"code\",\"message\"}}; each response lists the codes it may carry.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (EdDSA)",
                    "description": "A session, api, agent or job token; which classes an operation admits is in its x-gatehouse-classes.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "gatehouse_session",
                    "description": "The human session cookie set by /v1/bootstrap/claim and /v1/login.",
                },
            },
            "schemas": schemas,
        },
        "paths": paths,
    })
}

/// `{*path}` (axum's catch-all) is `{path}` in OpenAPI.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn schema_json(schema: RefOr<Schema>) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn add_type(schemas: &mut BTreeMap<String, Value>, ty: ops::TypeDoc) -> Value {
    let name = (ty.name)().into_owned();
    let mut deps = Vec::new();
    (ty.deps)(&mut deps);
    for (dep, schema) in deps {
        schemas.entry(dep).or_insert_with(|| schema_json(schema));
    }
    schemas
        .entry(name.clone())
        .or_insert_with(|| schema_json((ty.schema)()));
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body_content(schemas: &mut BTreeMap<String, Value>, body: &Body) -> Option<Value> {
    match body {
        Body::Empty => None,
        Body::Json(ty) => Some(json!({ "application/json": { "schema": add_type(schemas, *ty) } })),
        Body::JsonList(ty) => Some(json!({
            "application/json": { "schema": { "type": "array", "items": add_type(schemas, *ty) } }
        })),
        Body::Text(content_type) => {
            Some(json!({ *content_type: { "schema": { "type": "string" } } }))
        }
        Body::Any => Some(json!({ "*/*": { "schema": {} } })),
        Body::Document => Some(json!({ "application/json": { "schema": { "type": "object" } } })),
        Body::Delivery => Some(json!({
            "application/json": { "schema": {} },
            "application/x-www-form-urlencoded": { "schema": { "type": "object" } },
        })),
        Body::Bytes => Some(json!({
            "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
        })),
    }
}

fn operation(spec: &RouteSpec, doc: &OpDoc, schemas: &mut BTreeMap<String, Value>) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(doc.id));
    op.insert("summary".into(), json!(doc.summary));
    op.insert("tags".into(), json!([doc.tag]));

    // Parameters: path grammars, then query types, then headers.
    let mut parameters: Vec<Value> = doc
        .path_params
        .iter()
        .map(|(name, schema)| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": serde_json::to_value(schema()).unwrap_or(Value::Null),
            })
        })
        .collect();
    if let Some(query) = doc.query {
        parameters.extend(
            query()
                .into_iter()
                .filter_map(|p| serde_json::to_value(p).ok()),
        );
    }
    if doc.gated.is_some() {
        parameters.push(json!({
            "name": "Gatehouse-Approval-Bypass",
            "in": "header",
            "required": false,
            "description": "With an api token holding approval:bypass: run the gated verb at once, audited with this reason. Ignored for human sessions, which run gated verbs directly.",
            "schema": {
                "type": "string",
                "pattern": gatehouse_domain::approvals::BYPASS_REASON_PATTERN,
                "maxLength": gatehouse_domain::approvals::BYPASS_REASON_MAX,
            },
        }));
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }

    if let Some(content) = body_content(schemas, &doc.body) {
        op.insert(
            "requestBody".into(),
            json!({ "required": true, "content": content }),
        );
    }

    // Responses: success first, then the errors the route itself names,
    // then those of its machinery (body extractor, verifier and rule).
    let mut responses = Map::new();
    for resp in &doc.ok {
        let mut r = json!({ "description": resp.description });
        if let Some(content) = body_content(schemas, &resp.body) {
            r["content"] = content;
        }
        if resp.status == "202" {
            r["headers"] = json!({
                "Location": { "description": "/v1/approvals/{id}", "schema": { "type": "string" } }
            });
        }
        responses.insert(resp.status.to_string(), r);
    }
    for (status, target, param, expression) in &doc.links {
        if let Some(r) = responses.get_mut(*status) {
            r["links"][*target] = json!({
                "operationId": target,
                "parameters": { *param: expression },
            });
        }
    }
    if let Some(pending) = responses.get_mut("202") {
        pending["links"]["get_approval"] = json!({
            "operationId": "get_approval",
            "parameters": { "id": "$response.body#/approval_id" },
        });
    }
    let mut errors: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (status, codes) in &doc.errors {
        errors
            .entry(*status)
            .or_default()
            .extend(codes.iter().copied());
    }
    if doc.body.is_json() {
        for (status, codes) in BODY_ERRORS {
            errors
                .entry(*status)
                .or_default()
                .extend(codes.iter().copied());
        }
    }
    if spec.access == Access::Authenticated {
        for (status, codes) in AUTH_ERRORS {
            errors
                .entry(*status)
                .or_default()
                .extend(codes.iter().copied());
        }
    }
    let error_ref = add_type(schemas, ops::ty::<schemas::ErrorBody>());
    for (status, mut codes) in errors {
        codes.sort_unstable();
        codes.dedup();
        let mut r = json!({
            "description": format!("error; code is one of: {}", codes.join(", ")),
            "content": { "application/json": { "schema": error_ref.clone() } },
            "x-gatehouse-error-codes": codes,
        });
        if status == 401 {
            r["headers"] = json!({ "WWW-Authenticate": { "schema": { "type": "string" } } });
        }
        if status == 429 {
            r["headers"] = json!({ "Retry-After": { "schema": { "type": "string" } } });
        }
        responses.insert(status.to_string(), r);
    }
    op.insert("responses".into(), Value::Object(responses));

    // Security: from the route table's rule, never from this module.
    match (spec.access, spec.rule) {
        (Access::Authenticated, Some(rule)) => {
            let scopes: Vec<&str> = rule.scope.map(|s| s.as_str()).into_iter().collect();
            let mut security = vec![json!({ "bearer": scopes })];
            if rule
                .classes
                .contains(&gatehouse_domain::CredentialClass::Session)
            {
                security.push(json!({ "session": scopes }));
            }
            op.insert("security".into(), Value::Array(security));
            op.insert(
                "x-gatehouse-classes".into(),
                json!(rule.classes.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
            );
            op.insert("x-gatehouse-operator-only".into(), json!(rule.operator));
            op.insert("description".into(), json!(rule.describe()));
        }
        _ => {
            op.insert("security".into(), json!([]));
        }
    }
    if let Some(verb) = doc.gated {
        op.insert("x-gatehouse-gated-verb".into(), json!(verb));
    }
    Value::Object(op)
}
