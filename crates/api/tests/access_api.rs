//! Who may call what (SPEC §1, §2): the route table's rules hold for every
//! credential class on every route, job tokens reach only their own
//! routes, and the operator adds owners once and recovers them in the
//! open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{server, server_with, Engine, TestServer};

use gatehouse_api::router::{route_specs, Access, RouteSpec};
use gatehouse_domain::access::Rule;
use gatehouse_domain::{CredentialClass, Role, Scope, ScopeSet};

const AGENT_SCOPES: &str =
    "secrets:write tokens:write jobs:create jobs:read hooks:write audit:read";
const ALL_SCOPES: &str =
    "secrets:write tokens:write jobs:create jobs:read hooks:write audit:read approval:bypass";

async fn mint(s: &TestServer, session: &str, class: &str, subject: &str, scope: &str) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(session),
            Some(json!({ "class": class, "subject": subject, "scope": scope })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn agent(s: &TestServer, session: &str, name: &str) {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(session),
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

struct Credential {
    label: &'static str,
    token: String,
    class: CredentialClass,
    scopes: ScopeSet,
    operator: bool,
}

/// What the table says this credential gets on this route: `None` when
/// admitted, else the refusal code.
fn expected(rule: &Rule, c: &Credential) -> Option<&'static str> {
    if rule.scope.is_some_and(|s| !c.scopes.contains(s)) {
        return Some("insufficient_scope");
    }
    if !rule.classes.contains(&c.class) {
        return Some(if rule.classes == [CredentialClass::Session] {
            "human_session_required"
        } else {
            "credential_class_not_admitted"
        });
    }
    if rule.operator && !c.operator {
        return Some("operator_required");
    }
    None
}

const RULE_CODES: [&str; 4] = [
    "insufficient_scope",
    "credential_class_not_admitted",
    "human_session_required",
    "operator_required",
];

/// Path parameters that reach the handler but touch nothing that exists
/// (the relay's host is refused by the address check, never dialled).
fn concrete(path: &str) -> String {
    path.replace("{name}", "SOME_NAME")
        .replace("{id}", "some-id")
        .replace("{email}", "nobody@x.org")
        .replace("{host}", "127.0.0.1")
        .replace("{*path}", "v1/x")
}

async fn every_route_holds_its_rule_for_every_credential_class(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    agent(&s, &alice, "bot").await;
    let (status, job) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&alice),
            Some(json!({ "agent": "bot" })),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let owner_scopes = ScopeSet::for_role(Role::Owner);
    let parse = |s: &str| ScopeSet::parse(s).unwrap();
    // Jobs first and sessions last: a session deleting every job (the last
    // route) ends the job token.
    let credentials = vec![
        Credential {
            label: "job",
            token: job["job_token"].as_str().unwrap().into(),
            class: CredentialClass::Job,
            scopes: ScopeSet::of(&[Scope::CredentialsRead]),
            operator: false,
        },
        Credential {
            label: "agent with scopes",
            token: mint(&s, &alice, "agent", "bot", AGENT_SCOPES).await,
            class: CredentialClass::Agent,
            scopes: parse(AGENT_SCOPES),
            operator: false,
        },
        Credential {
            label: "agent without scopes",
            token: mint(&s, &alice, "agent", "bot", "").await,
            class: CredentialClass::Agent,
            scopes: ScopeSet::empty(),
            operator: false,
        },
        Credential {
            label: "operator api with every scope",
            token: mint(&s, &op, "api", "ops", ALL_SCOPES).await,
            class: CredentialClass::Api,
            scopes: parse(ALL_SCOPES),
            operator: true,
        },
        Credential {
            label: "api without scopes",
            token: mint(&s, &alice, "api", "ci", "").await,
            class: CredentialClass::Api,
            scopes: ScopeSet::empty(),
            operator: false,
        },
        Credential {
            label: "owner session",
            token: alice.clone(),
            class: CredentialClass::Session,
            scopes: owner_scopes,
            operator: false,
        },
        Credential {
            label: "operator session",
            token: op.clone(),
            class: CredentialClass::Session,
            scopes: ScopeSet::for_role(Role::Operator),
            operator: true,
        },
    ];
    let mut specs: Vec<RouteSpec> = route_specs()
        .into_iter()
        .filter(|r| r.access == Access::Authenticated)
        .collect();
    specs.sort_by_key(|r| r.method == Method::DELETE && r.path == "/v1/jobs");
    let mut refused = 0;
    for spec in &specs {
        let rule = spec
            .rule
            .unwrap_or_else(|| panic!("{} {} has no rule", spec.method, spec.path));
        let path = concrete(spec.path);
        for c in &credentials {
            let response = s
                .call(spec.method.clone(), &path, Some(&c.token), Some(json!({})))
                .await;
            let status = response.status().as_u16();
            // The live approval feed is an endless stream: its status
            // and headers say it all.
            let text = if spec.path == "/v1/approvals/events" && status == 200 {
                String::new()
            } else {
                response.text().await.unwrap()
            };
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
            let at = format!(
                "{} {} with {}: {status} {text}",
                spec.method, spec.path, c.label
            );
            match expected(&rule, c) {
                Some(want) => {
                    refused += 1;
                    if spec.path == "/v1/job/credentials" {
                        // The route's one uniform answer: no oracle.
                        assert_eq!((status, code.as_deref()), (403, Some("forbidden")), "{at}");
                    } else if spec.path.starts_with("/relay/") {
                        // The proxy engine's directory admits job tokens only.
                        assert_eq!(status, 401, "{at}");
                    } else {
                        assert_eq!((status, code.as_deref()), (403, Some(want)), "{at}");
                    }
                }
                None => {
                    assert_ne!(status, 401, "{at}");
                    assert!(
                        !code.as_deref().is_some_and(|c| RULE_CODES.contains(&c)),
                        "admitted by the table but refused: {at}"
                    );
                }
            }
        }
    }
    assert!(refused > 100, "{refused}");
    // Refusals by the rule are audited under the caller's owner, with the
    // route template and the rule's code; within the per-source audit
    // budget (the rest are counted in /metrics), so a valid token cannot
    // flood the chain.
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&alice), None)
        .await;
    let denied: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "access.denied")
        .collect();
    // (Some of the budget went to refusals of the operator's credentials,
    // audited under the operator.)
    assert!(
        !denied.is_empty() && denied.len() <= gatehouse_api::rate_limit::REFUSAL_AUDITS_PER_SOURCE,
        "{audit}"
    );
    for r in denied {
        assert_eq!(r["owner"], "alice@x.org", "{r}");
        let outcome = r["outcome"].as_str().unwrap();
        let code = outcome.strip_prefix("denied:").unwrap();
        assert!(RULE_CODES.contains(&code), "{r}");
        let target = r["target"].as_str().unwrap();
        assert!(
            route_specs()
                .iter()
                .any(|spec| target == format!("{} {}", spec.method, spec.path)),
            "{r}"
        );
    }
}

/// The routes a job token reaches (SPEC §2), pinned: a new route admits
/// jobs only on purpose.
fn job_routes_are_pinned() {
    let mut admitting_jobs: Vec<String> = route_specs()
        .iter()
        .filter(|r| {
            r.rule
                .is_some_and(|rule| rule.classes.contains(&CredentialClass::Job))
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    admitting_jobs.sort();
    assert_eq!(
        admitting_jobs,
        vec![
            "DELETE /relay/{host}/{*path}",
            "GET /relay/{host}/{*path}",
            "GET /v1/auth/whoami",
            "GET /v1/job/credentials",
            "PATCH /relay/{host}/{*path}",
            "POST /relay/{host}/{*path}",
            "PUT /relay/{host}/{*path}",
        ]
    );
    // Listing secrets and agents needs a scope (SPEC §2).
    for (method, path, scope) in [
        (Method::GET, "/v1/secrets", Scope::SecretsWrite),
        (Method::GET, "/v1/agents", Scope::JobsRead),
    ] {
        let spec = route_specs()
            .into_iter()
            .find(|r| r.method == method && r.path == path)
            .unwrap();
        assert_eq!(spec.rule.unwrap().scope, Some(scope), "{path}");
    }
}

#[test]
fn job_tokens_reach_only_their_routes() {
    job_routes_are_pinned();
}

async fn adding_an_existing_owner_is_409_and_leaves_their_code_alone(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let add = |email: &'static str| {
        s.json(
            Method::POST,
            "/v1/owners",
            Some(&op),
            Some(json!({ "email": email })),
        )
    };
    let (status, first) = add("alice@x.org").await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = add("ALICE@x.org").await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{again}"
    );
    assert!(again.get("login_code").is_none());
    let (status, again) = add("op@x.org").await;
    assert_eq!(status, 409, "the operator too: {again}");
    // The first code was not replaced: asking again gave nobody a way in.
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({ "email": "alice@x.org", "code": first["login_code"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn recovery_revokes_every_token_of_the_owner_and_is_audited_under_them(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let bob = s.owner(&op, "bob@x.org").await;
    agent(&s, &alice, "bot").await;
    let alice_agent = mint(&s, &alice, "agent", "bot", "").await;
    let alice_api = mint(&s, &alice, "api", "ci", "audit:read").await;
    let op_api = mint(&s, &op, "api", "ops", ALL_SCOPES).await;
    let recover = |who: &str, email: &str| {
        let path = format!("/v1/owners/{email}/recover");
        let who = who.to_string();
        let s = &s;
        async move { s.json(Method::POST, &path, Some(&who), None).await }
    };
    for (who, code) in [
        (&bob, "operator_required"),
        (&alice, "operator_required"),
        (&op_api, "human_session_required"),
        (&alice_agent, "human_session_required"),
    ] {
        let (status, body) = recover(who, "alice@x.org").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some(code)),
            "{body}"
        );
    }
    assert_eq!(recover(&op, "nobody@x.org").await.0, 404);
    assert_eq!(recover(&op, "not-an-email").await.0, 400);
    for t in [&alice, &alice_agent, &alice_api] {
        assert_eq!(whoami(&s, t).await, 200, "nothing changed yet");
    }

    let (status, body) = recover(&op, "Alice@x.org").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "alice@x.org");
    let code = body["login_code"].as_str().unwrap().to_string();
    for t in [&alice, &alice_agent, &alice_api] {
        assert_eq!(whoami(&s, t).await, 401, "sessions and tokens alike");
    }
    assert_eq!(whoami(&s, &bob).await, 200, "other owners untouched");
    assert_eq!(whoami(&s, &op).await, 200);

    let (status, body) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({ "email": "alice@x.org", "code": code })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&s, &fresh).await, 200, "issued after: alive");
    // Alice sees who recovered her account, in her own audit.
    let (status, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&fresh), None)
        .await;
    assert_eq!(status, 200, "{audit}");
    let record = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "owner.recover")
        .unwrap_or_else(|| panic!("no owner.recover in {audit}"))
        .clone();
    assert_eq!(
        (&record["owner"], &record["actor"], &record["target"]),
        (
            &json!("alice@x.org"),
            &json!("op@x.org"),
            &json!("alice@x.org")
        )
    );
    assert!(!audit.to_string().contains(&code), "no login code in audit");
}

/// CSRF: a write carried by what a browser sends by itself (the session
/// cookie, or the identity header a trusted proxy adds) with a foreign
/// `Origin` is refused on every state-changing route before its handler
/// runs. No `Origin` (not a cross-origin browser request) or our own
/// passes; a bearer token is never sent by a browser on its own, so the
/// rule does not apply to it.
async fn a_foreign_origin_is_refused_on_every_state_changing_route(engine: Engine) {
    let s = server_with(
        engine,
        &[
            ("GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_IDENTITY_HEADER", "X-Forwarded-Email"),
        ],
    )
    .await;
    let op = s.claim("op@x.org").await;
    let cookie = format!("gatehouse_session={op}");
    let ours = s.url.clone();
    let send = |method: Method, path: String, auth: (&str, &str), origin: Option<&str>| {
        let mut req = s
            .client
            .request(method, format!("{}{path}", s.url))
            .header(auth.0, auth.1)
            .json(&json!({"value": "v", "allowed_hosts": ["api.test"]}));
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        req.send()
    };
    let writes: Vec<RouteSpec> = route_specs()
        .into_iter()
        .filter(|r| r.access == Access::Authenticated && r.method != Method::GET)
        // The relay takes a job token only, never a cookie or the header.
        .filter(|r| !r.path.starts_with("/relay/"))
        .collect();
    assert!(writes.len() > 15, "{}", writes.len());
    let foreign = ["https://evil.test", "null", &format!("{ours}.evil.test")];
    for spec in &writes {
        for auth in [
            ("Cookie", cookie.as_str()),
            ("X-Forwarded-Email", "op@x.org"),
        ] {
            for origin in foreign {
                let r = send(spec.method.clone(), concrete(spec.path), auth, Some(origin))
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or_default();
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (403, Some("cross_origin")),
                    "{} {} by {} from {origin}: {body}",
                    spec.method,
                    spec.path,
                    auth.0
                );
            }
        }
    }
    // Nothing was written by any of them.
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets, json!([]));
    let (_, agents) = s.json(Method::GET, "/v1/agents", Some(&op), None).await;
    assert_eq!(agents, json!([]));

    // Our own origin, no origin, or a bearer token: the write goes through.
    let put = |name: &str| (Method::PUT, format!("/v1/secrets/{name}"));
    for (name, auth, origin) in [
        (
            "COOKIE_SAME",
            ("Cookie", cookie.as_str()),
            Some(ours.as_str()),
        ),
        ("COOKIE_NONE", ("Cookie", cookie.as_str()), None),
        (
            "HEADER_SAME",
            ("X-Forwarded-Email", "op@x.org"),
            Some(ours.as_str()),
        ),
        ("HEADER_NONE", ("X-Forwarded-Email", "op@x.org"), None),
    ] {
        let (method, path) = put(name);
        let r = send(method, path, auth, origin).await.unwrap();
        assert_eq!(r.status(), 201, "{name}");
    }
    let bearer = format!("Bearer {op}");
    let (method, path) = put("BEARER_FOREIGN");
    let r = send(
        method,
        path,
        ("Authorization", bearer.as_str()),
        Some("https://evil.test"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets.as_array().unwrap().len(), 5, "{secrets}");
}

async fn whoami(s: &TestServer, token: &str) -> u16 {
    s.json(Method::GET, "/v1/auth/whoami", Some(token), None)
        .await
        .0
}

on_both_engines!(
    every_route_holds_its_rule_for_every_credential_class,
    adding_an_existing_owner_is_409_and_leaves_their_code_alone,
    recovery_revokes_every_token_of_the_owner_and_is_audited_under_them,
    a_foreign_origin_is_refused_on_every_state_changing_route,
);
