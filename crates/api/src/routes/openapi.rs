//! `GET /v1/openapi.json`, generated from the route table itself, so the
//! document cannot list a route the server lacks or miss one it has.

use axum::Json;
use serde_json::{json, Map, Value};

use crate::router::{route_specs, Access};

pub async fn document() -> Json<Value> {
    let mut paths = Map::new();
    for spec in route_specs() {
        let mut operation = json!({
            "operationId": format!("{}_{}", spec.method.as_str().to_ascii_lowercase(), spec.path.trim_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
            "responses": { "default": { "description": "JSON; errors are {\"error\":{\"code\",\"message\"}}" } },
        });
        if let (Access::Authenticated, Some(rule)) = (spec.access, spec.rule) {
            // The route table's rule: the scope in the security
            // requirement, the admitted classes beside it.
            let scopes: Vec<&str> = rule.scope.map(|s| s.as_str()).into_iter().collect();
            operation["security"] = json!([{ "bearer": scopes }, { "session": scopes }]);
            operation["x-gatehouse-classes"] =
                json!(rule.classes.iter().map(|c| c.as_str()).collect::<Vec<_>>());
            operation["x-gatehouse-operator-only"] = json!(rule.operator);
            operation["description"] = json!(rule.describe());
        }
        let params: Vec<Value> = spec
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        let entry = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        entry[spec.method.as_str().to_ascii_lowercase()] = operation;
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "Gatehouse", "version": env!("CARGO_PKG_VERSION") },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)" },
                "session": { "type": "apiKey", "in": "cookie", "name": "gatehouse_session" }
            }
        },
        "paths": paths,
    }))
}
