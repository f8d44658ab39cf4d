//! Shared by the console's test binaries: the API's test server (the
//! same support module) with the console's routes added through the one
//! router builder, and a browser-like client that follows no redirects.
#![allow(dead_code)]

use reqwest::header::{COOKIE, LOCATION, ORIGIN};
use reqwest::{Client, Response};
use serde_json::{json, Value};

#[allow(unused_imports)]
pub use crate::support::{server, server_with_clock, Engine, TestServer};

/// Every server these tests start serves the console too.
pub fn with_console() {
    let _ = crate::support::EXTRA_ROUTES.set(gatehouse_console::routes);
}

pub async fn console_server(engine: Engine) -> TestServer {
    with_console();
    server(engine).await
}

pub fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn cookie(token: &str) -> String {
    format!("gatehouse_session={token}")
}

/// GET a console page as the holder of `session` (a cookie).
pub async fn get(s: &TestServer, path: &str, session: Option<&str>) -> Response {
    let mut req = browser().get(format!("{}{path}", s.url));
    if let Some(t) = session {
        req = req.header(COOKIE, cookie(t));
    }
    req.send().await.unwrap()
}

/// POST a form as the holder of `session`, from our own origin.
pub async fn post(
    s: &TestServer,
    path: &str,
    session: Option<&str>,
    form: &[(&str, &str)],
) -> Response {
    let mut req = browser()
        .post(format!("{}{path}", s.url))
        .header(ORIGIN, s.url.clone())
        .form(form);
    if let Some(t) = session {
        req = req.header(COOKIE, cookie(t));
    }
    req.send().await.unwrap()
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .expect("the page has a form with a CSRF token")
        + marker.len();
    html[start..start + 64].to_string()
}

pub async fn page_text(s: &TestServer, path: &str, session: &str) -> String {
    let r = get(s, path, Some(session)).await;
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

pub async fn csrf(s: &TestServer, session: &str) -> String {
    csrf_of(&page_text(s, "/secrets", session).await)
}

/// An agent `bot` of the session's owner with a token holding `scope`.
pub async fn agent_token(s: &TestServer, session: &str, name: &str, scope: &str) -> String {
    let (status, body) = s
        .json(
            reqwest::Method::POST,
            "/v1/agents",
            Some(session),
            Some(json!({ "name": name })),
        )
        .await;
    assert!(status == 201 || status == 409, "{body}");
    let (status, body) = s
        .json(
            reqwest::Method::POST,
            "/v1/tokens",
            Some(session),
            Some(json!({"class": "agent", "subject": name, "scope": scope})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// A secret write by an agent: held for approval; returns its id.
pub async fn held_secret_write(s: &TestServer, agent: &str, name: &str) -> String {
    let (status, body): (u16, Value) = s
        .json(
            reqwest::Method::PUT,
            &format!("/v1/secrets/{name}"),
            Some(agent),
            Some(json!({"value": "s3cr3t-value", "allowed_hosts": ["api.example.com"]})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["approval_id"].as_str().unwrap().to_string()
}
