//! The web console over HTTP (SPEC §14), on both engines: the headers of
//! every page, the route rules, CSRF and origin checks on every form,
//! escaping, sign-out as a kill switch, the entry redirects, and the live
//! approval feed across replicas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../api/tests/support/mod.rs"]
mod support;

mod common;

use std::time::Duration;

use reqwest::header::{COOKIE, ORIGIN};
use reqwest::Method;
use serde_json::json;

use common::*;
use gatehouse_api::router::Access;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn assert_secure_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(
        get("content-security-policy").as_deref(),
        Some(CSP),
        "{what}"
    );
    assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{what}");
    assert_eq!(
        get("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        get("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(get("cache-control").as_deref(), Some("no-store"), "{what}");
}

async fn every_page_carries_the_security_headers(engine: Engine) {
    let s = console_server(engine).await;
    for path in ["/", "/claim", "/login"] {
        let r = get(&s, path, None).await;
        assert!(
            r.status() == 200 || r.status() == 303,
            "{path}: {}",
            r.status()
        );
        assert_secure_headers(&r, path);
    }
    let op = s.claim("op@x.org").await;
    let bot = agent_token(&s, &op, "bot", "secrets:write").await;
    let id = held_secret_write(&s, &bot, "API_KEY").await;
    let pages = [
        "/approvals".to_string(),
        format!("/approvals/{id}"),
        "/upstreams".into(),
        "/secrets".into(),
        "/agents".into(),
        "/tokens".into(),
        "/audit".into(),
        "/audit?verify=1".into(),
        "/logout".into(),
        "/login".into(),
    ];
    for path in &pages {
        let r = get(&s, path, Some(&op)).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_secure_headers(&r, path);
        assert!(r
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = r.text().await.unwrap();
        // No inline script or style anywhere: the CSP would block it.
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{path}"
        );
        assert!(!html.contains("<style"), "{path}");
    }
    // Refusals and redirects carry them too.
    let r = post(&s, "/secrets", Some(&op), &[("name", "X")]).await;
    assert_eq!(r.status(), 403);
    assert_secure_headers(&r, "a CSRF refusal");
    // The assets: content-hashed names, cached for a year.
    let html = page_text(&s, "/approvals", &op).await;
    for (attr, ext) in [("href=\"", ".css"), ("src=\"", ".js")] {
        let start = html.find(&format!("{attr}/assets/")).unwrap() + attr.len();
        let end = start + html[start..].find('"').unwrap();
        let path = &html[start..end];
        assert!(path.ends_with(ext), "{path}");
        let r = get(&s, path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers().get("cache-control").unwrap(),
            "public, max-age=31536000, immutable"
        );
    }
    assert_eq!(
        get(&s, "/assets/console.0000.css", None).await.status(),
        404
    );
}

/// Path parameters that reach the handler but touch nothing that exists.
fn concrete(path: &str) -> String {
    path.replace("{name}", "SOME_NAME")
        .replace("{id}", "some-id")
        .replace("{file}", "none.css")
}

async fn console_routes_hold_their_rules(engine: Engine) {
    let s = console_server(engine).await;
    let op = s.claim("op@x.org").await;
    let bot = agent_token(
        &s,
        &op,
        "bot",
        "secrets:write tokens:write jobs:read audit:read",
    )
    .await;
    let (status, api) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&op),
            Some(json!({"class": "api", "subject": "ci", "scope": "secrets:write tokens:write jobs:read audit:read"})),
        )
        .await;
    assert_eq!(status, 201, "{api}");
    let api = api["token"].as_str().unwrap().to_string();
    let revoked = agent_token(&s, &op, "gone", "").await;
    let (_, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&revoked), None)
        .await;
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"jti": me["jti"]})),
        )
        .await;
    assert_eq!(status, 200);
    let specs: Vec<_> = gatehouse_console::routes()
        .into_iter()
        .map(|(spec, _)| spec)
        .collect();
    let mut public: Vec<String> = specs
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    public.sort();
    assert_eq!(
        public,
        vec![
            "GET /",
            "GET /assets/{file}",
            "GET /claim",
            "GET /login",
            "POST /claim",
            "POST /login",
        ],
        "a new public console route must be added here on purpose"
    );
    let mut checked = 0;
    for spec in specs.iter().filter(|r| r.access == Access::Authenticated) {
        let rule = spec.rule.unwrap();
        assert_eq!(
            rule.classes,
            gatehouse_domain::access::SESSION,
            "{}",
            spec.path
        );
        let url = format!("{}{}", s.url, concrete(spec.path));
        // No session, a garbage one, a revoked one: to the sign-in page.
        for bad in [None, Some("garbage"), Some(revoked.as_str())] {
            let mut req = browser()
                .request(spec.method.clone(), &url)
                .header(ORIGIN, s.url.clone());
            if let Some(t) = bad {
                req = req.header(COOKIE, cookie(t));
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                303,
                "{} {} with {bad:?}",
                spec.method,
                spec.path
            );
            assert_eq!(location(&r), "/login", "{} {}", spec.method, spec.path);
        }
        // Non-interactive credentials are not people: 403, nothing shown.
        for token in [&bot, &api] {
            let r = browser()
                .request(spec.method.clone(), &url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{} {}", spec.method, spec.path);
        }
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
}

/// A console form: its route, a path of that route, and its fields but
/// the CSRF token.
type FormCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

async fn forms_need_this_sessions_csrf_token_and_our_origin(engine: Engine) {
    let s = console_server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let bot = agent_token(&s, &op, "bot", "secrets:write").await;
    let id = held_secret_write(&s, &bot, "HELD").await;
    let mine = csrf(&s, &op).await;
    let theirs = csrf(&s, &alice).await;
    assert_ne!(mine, theirs, "a CSRF token is bound to its session");
    let (_, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&op), None)
        .await;
    let jti = me["jti"].as_str().unwrap().to_string();
    let approval = format!("/approvals/{id}");
    // Every console form, keyed by its route; each would change something
    // if its token were not checked.
    let forms: Vec<FormCase> = vec![
        (
            "/secrets",
            "/secrets",
            vec![
                ("name", "FORM_SECRET"),
                ("value", "v"),
                ("allowed_hosts", "api.example.com"),
            ],
        ),
        ("/secrets/{name}/delete", "/secrets/HELD/delete", vec![]),
        (
            "/approvals/{id}",
            &approval,
            vec![("decision", "approve"), ("reason", "ok")],
        ),
        ("/tokens/revoke", "/tokens/revoke", vec![("jti", &jti)]),
        (
            "/upstreams/{name}/credential",
            "/upstreams/none/credential",
            vec![("token", "x")],
        ),
        ("/agents", "/agents", vec![("name", "formbot")]),
        (
            "/agents/{name}/egress",
            "/agents/bot/egress",
            vec![("allow_hosts", "*")],
        ),
        (
            "/agents/{name}/secrets",
            "/agents/bot/secrets",
            vec![("secrets", "HELD")],
        ),
        ("/logout", "/logout", vec![]),
    ];
    // The list is the router's: a new form route fails here until its
    // form is added, so no form escapes the check below.
    let mut posted: Vec<&str> = gatehouse_console::routes()
        .into_iter()
        .map(|(spec, _)| spec)
        .filter(|r| r.method == Method::POST && r.access == Access::Authenticated)
        .map(|r| r.path)
        .collect();
    posted.sort();
    let mut listed: Vec<&str> = forms.iter().map(|(route, _, _)| *route).collect();
    listed.sort();
    assert_eq!(
        listed, posted,
        "every console POST route for people has its form here"
    );
    let audited = || async {
        let log = s.state().store.audit_page(None, 0, 10_000).await.unwrap();
        log.into_iter().map(|r| r.action).collect::<Vec<_>>()
    };
    let audited_before = audited().await;
    for (route, path, fields) in &forms {
        for presented in [None, Some("0".repeat(64)), Some(theirs.clone())] {
            let mut form = fields.clone();
            if let Some(t) = &presented {
                form.push(("csrf_token", t));
            }
            let r = post(&s, path, Some(&op), &form).await;
            assert_eq!(r.status(), 403, "{route} with {presented:?}");
            let page = r.text().await.unwrap();
            assert!(
                page.contains("Refused (403 csrf)") && page.contains("Nothing was changed."),
                "{route}: {page}"
            );
        }
        // A body that is no form at all: the 400 it always was, token or not.
        let r = browser()
            .post(format!("{}{path}", s.url))
            .header(ORIGIN, s.url.clone())
            .header(COOKIE, cookie(&op))
            .header("content-type", "text/plain")
            .body(format!("csrf_token={mine}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{route}");
        assert!(
            r.text().await.unwrap().contains("unreadable form"),
            "{route}"
        );
        // The right token from another origin: the API's cookie rule.
        let mut form = fields.clone();
        form.push(("csrf_token", &mine));
        let r = browser()
            .post(format!("{}{path}", s.url))
            .header(ORIGIN, "https://evil.example")
            .header(COOKIE, cookie(&op))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "cross-origin {route}");
    }
    // Nothing happened: every change is audited and the log is as it was;
    // no secret written or deleted, no agent registered or given a policy
    // or ceiling, the approval still pending, the session alive.
    assert_eq!(audited().await, audited_before);
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets.as_array().unwrap().len(), 0, "{secrets}");
    let (_, agents) = s.json(Method::GET, "/v1/agents", Some(&op), None).await;
    assert_eq!(
        agents.as_array().unwrap().len(),
        1,
        "no agent registered: {agents}"
    );
    assert_eq!(agents[0]["secrets"], json!([]), "{agents}");
    assert!(agents[0]["allow_hosts"].is_null(), "{agents}");
    let (_, a) = s
        .json(Method::GET, &format!("/v1/approvals/{id}"), Some(&op), None)
        .await;
    assert_eq!(a["status"], "pending");
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await
            .0,
        200
    );
    // With the token: the same rules as the API (a bad name is its 400).
    let r = post(
        &s,
        "/secrets",
        Some(&op),
        &[("csrf_token", &mine), ("name", "bad name"), ("value", "v")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("invalid_name"));
    let r = post(
        &s,
        "/secrets",
        Some(&op),
        &[
            ("csrf_token", &mine),
            ("name", "FORM_SECRET"),
            ("value", "v4lue"),
            ("allowed_hosts", "api.example.com, *.example.org"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/secrets?ok=written");
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets[0]["name"], "FORM_SECRET");
    assert_eq!(
        secrets[0]["allowed_hosts"],
        json!(["api.example.com", "*.example.org"])
    );
    let page = page_text(&s, "/secrets", &op).await;
    assert!(
        page.contains("FORM_SECRET") && !page.contains("v4lue"),
        "never a value"
    );
    let r = post(
        &s,
        &approval,
        Some(&op),
        &[
            ("csrf_token", &mine),
            ("decision", "approve"),
            ("reason", "fine"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, a) = s
        .json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&bot),
            None,
        )
        .await;
    assert_eq!(a["status"], "executed", "{a}");
    // Agents: registered and given ceilings through the same functions.
    let r = post(
        &s,
        "/agents",
        Some(&op),
        &[("csrf_token", &mine), ("name", "formbot")],
    )
    .await;
    assert_eq!(location(&r), "/agents?ok=created");
    let r = post(
        &s,
        "/agents/formbot/secrets",
        Some(&op),
        &[("csrf_token", &mine), ("secrets", "FORM_SECRET, OTHER")],
    )
    .await;
    assert_eq!(location(&r), "/agents?ok=secrets");
    let r = post(
        &s,
        "/agents/formbot/egress",
        Some(&op),
        &[("csrf_token", &mine), ("allow_hosts", "api.github.com")],
    )
    .await;
    assert_eq!(location(&r), "/agents?ok=egress");
    let r = post(
        &s,
        "/agents/formbot/egress",
        Some(&op),
        &[("csrf_token", &mine), ("allow_hosts", "not a host!")],
    )
    .await;
    assert_eq!(r.status(), 400, "the API's validation");
    let (_, agents) = s.json(Method::GET, "/v1/agents", Some(&op), None).await;
    let formbot = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "formbot")
        .unwrap();
    assert_eq!(formbot["secrets"], json!(["FORM_SECRET", "OTHER"]));
    assert_eq!(formbot["allow_hosts"], json!(["api.github.com"]));
    let r = post(
        &s,
        "/agents/formbot/egress",
        Some(&op),
        &[("csrf_token", &mine), ("allow_hosts", ""), ("lift", "1")],
    )
    .await;
    assert_eq!(location(&r), "/agents?ok=egress");
    let (_, agents) = s.json(Method::GET, "/v1/agents", Some(&op), None).await;
    let formbot = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "formbot")
        .unwrap();
    assert!(formbot["allow_hosts"].is_null(), "{formbot}");
    // A second decision: the API's 409, shown on the page.
    let r = post(
        &s,
        &approval,
        Some(&op),
        &[("csrf_token", &mine), ("decision", "deny")],
    )
    .await;
    assert_eq!(r.status(), 409);
}

async fn user_supplied_text_is_escaped(engine: Engine) {
    let s = console_server(engine).await;
    let op = s.claim("op@x.org").await;
    let bot = agent_token(&s, &op, "bot", "secrets:write").await;
    let id = held_secret_write(&s, &bot, "XSS").await;
    let token = csrf(&s, &op).await;
    let payload = "<script>alert(1)</script>\"onerror=alert(2) <img src=x onerror=alert(3)>";
    let r = post(
        &s,
        &format!("/approvals/{id}"),
        Some(&op),
        &[
            ("csrf_token", &token),
            ("decision", "deny"),
            ("reason", payload),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = post(
        &s,
        "/tokens/revoke",
        Some(&op),
        &[("csrf_token", &token), ("subject", payload)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = post(&s, "/login", None, &[("email", payload), ("code", "x")]).await;
    assert_eq!(r.status(), 400);
    let login = r.text().await.unwrap();
    for (page, html) in [
        (
            "/approvals/{id}",
            page_text(&s, &format!("/approvals/{id}"), &op).await,
        ),
        ("/audit", page_text(&s, "/audit", &op).await),
        ("/login", login),
    ] {
        assert!(!html.contains("<script>alert"), "{page}");
        assert!(!html.contains("<img src=x"), "{page}");
        assert!(!html.contains("\"onerror"), "{page}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}: the text is shown, escaped"
        );
    }
}

async fn signing_out_revokes_the_session_then_clears_the_cookie(engine: Engine) {
    let s = console_server(engine).await;
    let op = s.claim("op@x.org").await;
    let token = csrf(&s, &op).await;
    let r = post(&s, "/logout", Some(&op), &[("csrf_token", &token)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.starts_with("gatehouse_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    // The token itself is dead, as a bearer too: a kill switch, not
    // merely a forgotten cookie.
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await
            .0,
        401
    );
    let r = get(&s, "/approvals", Some(&op)).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/login".to_string())
    );
    let audit = s.state().store.audit_page(None, 0, 1000).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.action == "token.revoke" && r.actor == "op@x.org"),
        "signing out is audited as a revocation"
    );
}

async fn the_entry_sends_newcomers_to_claim_then_login_and_people_to_approvals(engine: Engine) {
    let s = console_server(engine).await;
    let r = get(&s, "/", None).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/claim".to_string())
    );
    let code = s.code.clone().unwrap();
    // A wrong code is the API's 403, said on the page; the email is kept.
    let r = post(
        &s,
        "/claim",
        None,
        &[("code", "wrong"), ("email", "op@x.org")],
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("wrong_code"));
    let r = post(
        &s,
        "/claim",
        None,
        &[("code", &code), ("email", "op@x.org")],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/approvals".to_string())
    );
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "loopback listener: no Secure flag ({set})"
    );
    let session = set
        .trim_start_matches("gatehouse_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = get(&s, "/", Some(&session)).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/approvals".to_string())
    );
    let r = get(&s, "/", None).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/login".to_string())
    );
    let r = get(&s, "/claim", None).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/login".to_string())
    );
    // Owners sign in with their one-time code through the same function.
    let (_, added) = s
        .json(
            Method::POST,
            "/v1/owners",
            Some(&session),
            Some(json!({"email": "alice@x.org"})),
        )
        .await;
    let code = added["login_code"].as_str().unwrap();
    let r = post(
        &s,
        "/login",
        None,
        &[("email", "alice@x.org"), ("code", code)],
    )
    .await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/approvals".to_string())
    );
    let r = post(
        &s,
        "/login",
        None,
        &[("email", "alice@x.org"), ("code", code)],
    )
    .await;
    assert_eq!(r.status(), 401, "a login code works once");
    // A login form posted from another origin is refused.
    let r = browser()
        .post(format!("{}/login", s.url))
        .header(ORIGIN, "https://evil.example")
        .form(&[("email", "alice@x.org"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Browsers send `Origin: null` under `Referrer-Policy: no-referrer`:
    // fetch metadata says whether the form was ours.
    for (site, want) in [
        ("cross-site", 403),
        ("same-site", 403),
        ("same-origin", 401),
    ] {
        let r = browser()
            .post(format!("{}/login", s.url))
            .header(ORIGIN, "null")
            .header("sec-fetch-site", site)
            .form(&[("email", "alice@x.org"), ("code", "wrong")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "Sec-Fetch-Site: {site}");
    }
}

/// Reads server-sent events until one names `id`, or fails after `bound`.
async fn hears(mut r: reqwest::Response, id: &str, bound: Duration) {
    let mut seen = String::new();
    let found = tokio::time::timeout(bound, async {
        while let Some(chunk) = r.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: approval") && seen.contains(id) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no event for {id}; got {seen:?}");
}

async fn approval_events_reach_every_replica_and_only_those_who_may_see_them(engine: Engine) {
    let a = console_server(engine).await;
    let op = a.claim("op@x.org").await;
    let alice = a.owner(&op, "alice@x.org").await;
    let bob = a.owner(&op, "bob@x.org").await;
    // On PostgreSQL the listener is another replica; SQLite is one process.
    let b = match engine {
        Engine::Postgres => Some(a.replica().await),
        Engine::Sqlite => None,
    };
    let listen_on = b.as_ref().unwrap_or(&a);
    let open = |token: String| {
        let url = format!("{}/v1/approvals/events", listen_on.url);
        async move {
            let r = browser()
                .get(url)
                .header(COOKIE, cookie(&token))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert!(r
                .headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/event-stream"));
            r
        }
    };
    let alice_feed = open(alice.clone()).await;
    let bob_feed = open(bob.clone()).await;
    let bot = agent_token(&a, &alice, "bot", "secrets:write").await;
    let id = held_secret_write(&a, &bot, "LIVE").await;
    hears(alice_feed, &id, Duration::from_secs(10)).await;
    // Bob is another tenant: his feed says nothing of alice's request.
    let mut bob_feed = bob_feed;
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        let mut seen = String::new();
        while let Some(chunk) = bob_feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&id) {
                return seen;
            }
        }
        seen
    })
    .await;
    if let Ok(seen) = quiet {
        assert!(!seen.contains(&id), "{seen}");
    }
    // An expired request leaves the inbox live too (the sweeper says so).
    let feed = open(alice.clone()).await;
    let expiring = held_secret_write(&a, &bot, "EXPIRING").await;
    let mut feed = feed;
    let mut seen = String::new();
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&expiring) {
                break;
            }
        }
    })
    .await;
    assert!(heard.is_ok(), "{seen}");
    a.clock.advance(3601);
    if let Some(b) = &b {
        b.clock.advance(3601);
    }
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\"expired\"") {
                break;
            }
        }
    })
    .await;
    assert!(heard.is_ok(), "no expiry event: {seen}");
    // No credential: 401.
    let r = browser()
        .get(format!("{}/v1/approvals/events", listen_on.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signing out ends the feed.
    let feed = open(alice.clone()).await;
    let token = csrf(&a, &alice).await;
    assert_eq!(
        post(&a, "/logout", Some(&alice), &[("csrf_token", &token)])
            .await
            .status(),
        303
    );
    let mut feed = feed;
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(_)) = feed.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the feed of a revoked session ends");
}

on_both_engines!(
    every_page_carries_the_security_headers,
    console_routes_hold_their_rules,
    forms_need_this_sessions_csrf_token_and_our_origin,
    user_supplied_text_is_escaped,
    signing_out_revokes_the_session_then_clears_the_cookie,
    the_entry_sends_newcomers_to_claim_then_login_and_people_to_approvals,
    approval_events_reach_every_replica_and_only_those_who_may_see_them,
);
