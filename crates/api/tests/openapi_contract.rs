//! The OpenAPI document and the running router describe the same API
//! (SPEC §15), in both directions:
//! - every route of the route table is documented, or named in
//!   `openapi::NOT_API`; every documented operation is in the table;
//! - every documented operation is served by the live axum router (a
//!   request with schema-valid path values is not answered by the
//!   fallback nor with 405), and on every documented path each method the
//!   router serves is documented: a route added to the router by any
//!   means, in the table or not, that is neither documented nor marked
//!   "not an API route" fails here;
//! - security is the route table's rule, and parameters carry the
//!   domain's grammars as patterns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::Value;
use support::{server, Engine};

use gatehouse_api::openapi::{document, is_not_api, openapi_path, operations};
use gatehouse_api::router::{route_specs, Access};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn every_route_of_the_table_is_documented_or_marked_not_api() {
    let doc = document();
    for spec in route_specs() {
        let method = spec.method.as_str();
        if is_not_api(method, spec.path) {
            continue;
        }
        let op = &doc["paths"][openapi_path(spec.path)][method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{method} {} is neither in the OpenAPI document nor in openapi::NOT_API",
            spec.path
        );
        let security = op["security"].as_array().expect("security");
        match (spec.access, spec.rule) {
            (Access::Authenticated, Some(rule)) => {
                let scopes: Vec<&str> = rule.scope.map(|s| s.as_str()).into_iter().collect();
                assert_eq!(
                    security[0]["bearer"],
                    serde_json::json!(scopes),
                    "{}",
                    spec.path
                );
                let classes: Vec<&str> = rule.classes.iter().map(|c| c.as_str()).collect();
                assert_eq!(op["x-gatehouse-classes"], serde_json::json!(classes));
                assert_eq!(op["x-gatehouse-operator-only"], rule.operator);
            }
            _ => assert!(security.is_empty(), "{} is public", spec.path),
        }
    }
}

#[test]
fn every_documented_operation_is_a_route_of_the_table() {
    let specs = route_specs();
    for op in operations() {
        assert!(
            specs
                .iter()
                .any(|s| s.method.as_str() == op.method && s.path == op.path),
            "{} {} is documented but not routed",
            op.method,
            op.path
        );
    }
    let doc = document();
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let api_routes = specs
        .iter()
        .filter(|s| !is_not_api(s.method.as_str(), s.path))
        .count();
    assert_eq!(documented, api_routes);
}

#[test]
fn links_lead_to_documented_operations_and_their_parameters() {
    let doc = document();
    let mut ops = std::collections::HashMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            ops.insert(op["operationId"].as_str().unwrap().to_string(), op.clone());
        }
    }
    let mut links = 0;
    for op in ops.values() {
        for response in op["responses"].as_object().unwrap().values() {
            let Some(found) = response.get("links") else {
                continue;
            };
            for link in found.as_object().unwrap().values() {
                links += 1;
                let target = &ops[link["operationId"].as_str().unwrap()];
                for param in link["parameters"].as_object().unwrap().keys() {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["name"] == param.as_str()),
                        "{link}"
                    );
                }
            }
        }
    }
    assert!(links >= 6, "create → use links are there ({links})");
}

#[test]
fn operation_ids_are_unique_identifiers() {
    let mut seen = std::collections::HashSet::new();
    for op in operations() {
        assert!(
            op.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            op.id
        );
        assert!(seen.insert(op.id), "{} twice", op.id);
    }
}

#[test]
fn parameters_and_bodies_carry_the_domain_grammars() {
    let doc = document();
    let param = |path: &str, method: &str, name: &str| -> Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
            .clone()
    };
    use gatehouse_domain::names::{AGENT_NAME_PATTERN, SECRET_NAME_PATTERN};
    assert_eq!(
        param("/v1/secrets/{name}", "put", "name")["schema"]["pattern"],
        SECRET_NAME_PATTERN
    );
    assert_eq!(
        param("/v1/agents/{name}/egress", "put", "name")["schema"]["pattern"],
        AGENT_NAME_PATTERN
    );
    assert_eq!(
        param("/v1/owners/{email}/recover", "post", "email")["schema"]["pattern"],
        gatehouse_domain::email::EMAIL_PATTERN
    );
    assert_eq!(
        param("/v1/jobs/{id}", "get", "id")["schema"]["pattern"],
        gatehouse_domain::codes::ID_PATTERN
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["NewAgent"]["properties"]["name"]["pattern"],
        AGENT_NAME_PATTERN
    );
    assert_eq!(
        schemas["GrantRequest"]["properties"]["env_var"]["pattern"],
        gatehouse_domain::jobs::ENV_VAR_PATTERN
    );
    assert_eq!(
        schemas["CreateJob"]["additionalProperties"], false,
        "deny_unknown_fields is in the schema"
    );
    // Every path template's parameters are declared, with a schema.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for seg in path.split('/') {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    let p = param(path, method, name);
                    assert_eq!(p["in"], "path");
                    assert!(p["schema"]["type"] == "string", "{method} {path} {name}");
                }
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|k| k.starts_with('2') || k == "default"),
                "{method} {path} names its success"
            );
            if !op["security"].as_array().unwrap().is_empty() {
                assert_eq!(
                    responses["401"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
            }
        }
    }
}

/// A value for each path parameter that its schema accepts.
fn sample(name: &str) -> &'static str {
    match name {
        "email" => "nobody@example.org",
        "id" => "AAAAAAAAAAAAAAAAAAAAAA",
        "host" => "api.example.org",
        "path" => "x",
        _ => "sample",
    }
}

fn fill(path: &str) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => sample(name.trim_start_matches('*')).to_string(),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// The router's answer: served (by some route), or not.
fn served(status: u16, body: &Value) -> bool {
    let fallback = status == 404 && body["error"]["message"] == "no such route";
    !(fallback || status == 405)
}

async fn the_live_router_serves_exactly_what_the_document_lists(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@example.org").await;
    let doc = document();
    let specs = route_specs();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = fill(path);
        for method in METHODS {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            // A read-only probe: no body, so no route does anything.
            let (status, body) = s.json(m.clone(), &url, Some(&op), None).await;
            let documented = item.get(method).is_some();
            let routed = specs
                .iter()
                .find(|r| r.method == m && openapi_path(r.path) == *path);
            if documented {
                assert!(
                    served(status, &body),
                    "{method} {path} is documented but the router does not serve it ({status} {body})"
                );
            } else {
                assert!(
                    !served(status, &body) || routed.is_some_and(|r| is_not_api(r.method.as_str(), r.path)),
                    "{method} {path} is served ({status}) but neither documented nor marked not-an-API route"
                );
            }
        }
    }
}

/// What the fuzzer found, held here: axum's own refusals answer the one
/// JSON error shape, integers are read as JSON Schema reads them, and a
/// malformed bypass header is refused on a route that only sometimes
/// reaches the gate.
async fn requests_the_document_describes_are_read_as_it_says(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@example.org").await;

    let r = s
        .call(Method::GET, "/v1/approvals?limit=many", Some(&op), None)
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");

    let r = s.call(Method::PATCH, "/v1/secrets", Some(&op), None).await;
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");

    let (status, _) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(serde_json::json!({"name": "bot"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, job) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&op),
            Some(serde_json::json!({"agent": "bot", "ttl_seconds": 600.0})),
        )
        .await;
    assert_eq!(status, 201, "600.0 is the integer 600: {job}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&op),
            Some(serde_json::json!({"agent": "bot", "ttl_seconds": 600.5})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    let r = s
        .client
        .post(format!("{}/v1/jobs", s.url))
        .bearer_auth(&op)
        .header("Gatehouse-Approval-Bypass", "")
        .json(&serde_json::json!({"agent": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an empty bypass reason is malformed");
}

on_both_engines!(
    the_live_router_serves_exactly_what_the_document_lists,
    requests_the_document_describes_are_read_as_it_says,
);
