//! Where a secret's real value may go, through the real server and its
//! proxy (SPEC §5, §6): only over TLS that Gatehouse verified (intercepted
//! `CONNECT`, relay), never in plain `http://`; always under the secret's
//! current row (a replaced secret's new value and binding from the very
//! next request, on any replica; a deleted secret's placeholders dead);
//! and through the one job-credential resolver, so the credential route
//! and the proxy refuse the same jobs. Upstreams live on loopback: a TLS
//! one with its own CA (`api.test`, `other.test`) and a plain one
//! (`plain.test`), recording what they receive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use gatehouse_egress::test_support::{
    curl, get_on, kept_alive, plain_upstream, tls_upstream, upstream_ca, Seen,
};
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use reqwest::Method;
use serde_json::{json, Value};
use support::{server_with, Engine, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REAL: &str = "ghp_the_real_secret_value_1234";
const NEW: &str = "ghp_the_replacement_value_5678";

struct World {
    s: TestServer,
    op: String,
    tls_port: u16,
    plain_port: u16,
    tls_seen: Arc<Seen>,
    plain_seen: Arc<Seen>,
    /// Gatehouse's CA, as the agent trusts it.
    ca_file: String,
    _upstream_ca: gatehouse_egress::test_support::UpstreamCa,
}

async fn world(engine: Engine) -> World {
    let ca = upstream_ca();
    let (tls, tls_seen) = tls_upstream(&ca, &["api.test", "other.test"]).await;
    let (plain, plain_seen) = plain_upstream().await;
    let ports = format!("{},{}", tls.port(), plain.port());
    let roots = ca.pem_file.display().to_string();
    let s = server_with(
        engine,
        &[
            (
                "GATEHOUSE_EGRESS_STATIC_HOSTS",
                "api.test=127.0.0.1,other.test=127.0.0.1,plain.test=127.0.0.1",
            ),
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS", &roots),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &ports),
        ],
    )
    .await;
    let op = s.claim("op@x.org").await;
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(json!({"name": "bot"})),
        )
        .await;
    assert_eq!(status, 201);
    let pem = s
        .call(Method::GET, "/v1/egress/ca.pem", None, None)
        .await
        .text()
        .await
        .unwrap();
    let ca_file = s.dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &pem).unwrap();
    World {
        s,
        op,
        tls_port: tls.port(),
        plain_port: plain.port(),
        tls_seen,
        plain_seen,
        ca_file: ca_file.display().to_string(),
        _upstream_ca: ca,
    }
}

impl World {
    async fn put_secret(&self, s: &TestServer, name: &str, body: Value) -> u16 {
        let (status, reply) = s
            .json(
                Method::PUT,
                &format!("/v1/secrets/{name}"),
                Some(&self.op),
                Some(body),
            )
            .await;
        assert!(status == 200 || status == 201, "{reply}");
        status
    }

    /// A job of agent `bot`; its token and its `env`.
    async fn job(&self, grants: Value, allow_hosts: Value) -> (String, Value) {
        let (status, job) = self
            .s
            .json(
                Method::POST,
                "/v1/jobs",
                Some(&self.op),
                Some(json!({"agent": "bot", "grants": grants, "egress": {"allow_hosts": allow_hosts}})),
            )
            .await;
        assert_eq!(status, 201, "{job}");
        (
            job["job_token"].as_str().unwrap().to_string(),
            job["env"].clone(),
        )
    }

    fn proxy_url(&self, token: &str) -> String {
        format!(
            "http://job:{token}@{}",
            self.s.running.as_ref().unwrap().proxy_addr
        )
    }

    fn last_tls_authorization(&self) -> String {
        self.tls_seen
            .authorization
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    /// `GET /x` through `s`'s relay to `host` (on the TLS upstream's port),
    /// the job token in its own header and `Authorization: Bearer
    /// <placeholder>`; the status, the deny reason and the error code.
    async fn relay(
        &self,
        s: &TestServer,
        host: &str,
        token: &str,
        placeholder: Option<&str>,
    ) -> (u16, String, String) {
        let mut req = s
            .client
            .get(format!("{}/relay/{host}:{}/x", s.url, self.tls_port))
            .header("x-gatehouse-job-token", token);
        if let Some(ph) = placeholder {
            req = req.header("authorization", format!("Bearer {ph}"));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let deny = r
            .headers()
            .get("x-gatehouse-deny")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("").to_string();
        (status, deny, code)
    }

    /// A keep-alive client connection to the proxy, for plain requests.
    async fn plain_client(&self) -> SendRequest<Empty<Bytes>> {
        let proxy = self.s.running.as_ref().unwrap().proxy_addr;
        kept_alive(tokio::net::TcpStream::connect(proxy).await.unwrap()).await
    }

    /// A plain `GET http://plain.test/x` on `sender`, no placeholder; the
    /// status and the deny reason.
    async fn plain_get(
        &self,
        sender: &mut SendRequest<Empty<Bytes>>,
        token: &str,
    ) -> (u16, String) {
        let host = format!("plain.test:{}", self.plain_port);
        let auth = format!("Bearer {token}");
        get_on(
            sender,
            &format!("http://{host}/x"),
            &host,
            &[("proxy-authorization", &auth)],
        )
        .await
    }

    /// A keep-alive HTTP/1.1 client inside an intercepted tunnel to
    /// `host` (on the TLS upstream's port).
    async fn tunnel(&self, token: &str, host: &str) -> SendRequest<Empty<Bytes>> {
        let authority = format!("{host}:{}", self.tls_port);
        let (status, tcp) = connect(&self.s, token, &authority).await;
        assert_eq!(status, 200);
        let config = gatehouse_egress::test_support::client_tls_config_from(&self.ca_file);
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(host.to_string().try_into().unwrap(), tcp)
            .await
            .unwrap();
        kept_alive(tls).await
    }

    /// `GET /x` with `Authorization: Bearer <placeholder>` in an open
    /// tunnel to `host`; the status and the deny reason.
    async fn in_tunnel(
        &self,
        sender: &mut SendRequest<Empty<Bytes>>,
        host: &str,
        placeholder: &str,
    ) -> (u16, String) {
        let auth = format!("Bearer {placeholder}");
        let host = format!("{host}:{}", self.tls_port);
        get_on(sender, "/x", &host, &[("authorization", &auth)]).await
    }
}

/// A `CONNECT` to `authority` through `s`'s proxy; the status and the
/// socket.
async fn connect(s: &TestServer, token: &str, authority: &str) -> (u16, tokio::net::TcpStream) {
    let proxy = s.running.as_ref().unwrap().proxy_addr;
    let mut tcp = tokio::net::TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, tcp)
}

/// Waits (at most 2 s) until `s`'s binding epoch is confirmed and no
/// longer `seen`: a write on another replica has reached `s`.
async fn epoch_moved_past(s: &TestServer, seen: Option<u64>) {
    let epoch = s.state().store.binding_epoch();
    for _ in 0..200 {
        if epoch.current().is_some_and(|e| Some(e) != seen) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the write on the other replica never reached this one");
}

/// `GET /v1/job/credentials` with the job token: status and body.
async fn credentials(s: &TestServer, token: &str) -> (u16, Value) {
    s.json(Method::GET, "/v1/job/credentials", Some(token), None)
        .await
}

async fn plain_http_never_carries_a_real_value(engine: Engine) {
    let w = world(engine).await;
    w.put_secret(
        &w.s,
        "gh",
        json!({"value": REAL, "allowed_hosts": ["api.test", "plain.test"],
               "inject": {"header": "Authorization", "format": "token {value}"}}),
    )
    .await;
    let (token, env) = w
        .job(json!([{"env_var": "GH_TOKEN", "secret": "gh"}]), json!([]))
        .await;
    let ph = env["GH_TOKEN"].as_str().unwrap().to_string();
    let proxy_url = w.proxy_url(&token);
    let plain_url = format!("http://plain.test:{}/", w.plain_port);

    // The placeholder towards its own bound host, in plain http://: in a
    // header or in the query, refused before anything is sent.
    let header = format!("Authorization: Bearer {ph}");
    let in_query = format!("{plain_url}?token={ph}");
    for args in [vec!["-H", &header, &plain_url], vec![&in_query]] {
        let mut argv = vec!["-x", &proxy_url, "-i"];
        argv.extend(args);
        let (_, out, _) = curl(&argv).await;
        assert!(out.starts_with("HTTP/1.1 403"), "{out}");
        assert!(
            out.to_ascii_lowercase()
                .contains("x-gatehouse-deny: not_allowed"),
            "{out}"
        );
        assert!(!out.contains(REAL), "{out}");
    }
    assert_eq!(w.plain_seen.requests.load(Ordering::SeqCst), 0);

    // Without a placeholder it passes, and the inject rule adds nothing.
    let (ok, out, err) = curl(&["-x", &proxy_url, "-i", &plain_url]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(
        *w.plain_seen.authorization.lock().unwrap(),
        vec![String::new()],
        "no injected header in clear text"
    );

    // Over interception: injected when absent, swapped when present.
    let https_url = format!("https://api.test:{}/", w.tls_port);
    let (ok, out, err) = curl(&["-x", &proxy_url, "--cacert", &w.ca_file, "-i", &https_url]).await;
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{err} {out}");
    assert_eq!(w.last_tls_authorization(), format!("token {REAL}"));
    let (ok, out, err) = curl(&[
        "-x", &proxy_url, "--cacert", &w.ca_file, "-i", "-H", &header, &https_url,
    ])
    .await;
    assert!(ok && out.starts_with("HTTP/1.1 200"), "{err} {out}");
    assert!(!out.contains(REAL), "echo guard: {out}");
    assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
    // Over the relay too.
    assert_eq!(w.relay(&w.s, "api.test", &token, None).await.0, 200);
    assert_eq!(w.last_tls_authorization(), format!("token {REAL}"));
}

async fn a_placeholder_follows_its_secret_across_replace_and_delete(engine: Engine) {
    let w = world(engine).await;
    let replica = w.s.replica().await;
    w.put_secret(
        &w.s,
        "gh",
        json!({"value": REAL, "allowed_hosts": ["api.test"]}),
    )
    .await;
    let (token, env) = w
        .job(
            json!([{"env_var": "GH_TOKEN", "secret": "gh"}]),
            json!(["api.test", "other.test"]),
        )
        .await;
    let ph = env["GH_TOKEN"].as_str().unwrap().to_string();

    let mut old_host = w.tunnel(&token, "api.test").await;
    assert_eq!(w.in_tunnel(&mut old_host, "api.test", &ph).await.0, 200);
    assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);

    // Replaced on the other replica: new value, new binding. This node
    // hears of it through its binding epoch (PostgreSQL: NOTIFY, pushed;
    // SQLite: the same file in this process, at once); the test waits for
    // that push, not for any request.
    let seen = w.s.state().store.binding_epoch().current();
    let status = w
        .put_secret(
            &replica,
            "gh",
            json!({"value": NEW, "allowed_hosts": ["other.test"]}),
        )
        .await;
    assert_eq!(status, 200);
    epoch_moved_past(&w.s, seen).await;
    // The very next request in the tunnel opened before: refused.
    assert_eq!(
        w.in_tunnel(&mut old_host, "api.test", &ph).await,
        (403, "not_allowed".to_string())
    );
    assert_eq!(
        w.relay(&w.s, "api.test", &token, Some(&ph)).await,
        (403, "not_allowed".into(), "not_allowed".into())
    );
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
    // Towards the new host: the new value, intercepted and relayed.
    let mut new_host = w.tunnel(&token, "other.test").await;
    assert_eq!(w.in_tunnel(&mut new_host, "other.test", &ph).await.0, 200);
    assert_eq!(w.last_tls_authorization(), format!("Bearer {NEW}"));
    assert_eq!(
        w.relay(&replica, "other.test", &token, Some(&ph)).await.0,
        200
    );
    assert_eq!(w.last_tls_authorization(), format!("Bearer {NEW}"));
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);

    // Deleted: its placeholders are dead, in the open tunnel, on the
    // relay of either replica, and at the credential route.
    let seen_there = replica.state().store.binding_epoch().current();
    let r =
        w.s.call(Method::DELETE, "/v1/secrets/gh", Some(&w.op), None)
            .await;
    assert_eq!(r.status(), 204);
    epoch_moved_past(&replica, seen_there).await;
    assert_eq!(
        w.in_tunnel(&mut new_host, "other.test", &ph).await,
        (403, "not_allowed".to_string())
    );
    for s in [&w.s, &replica] {
        assert_eq!(
            w.relay(s, "other.test", &token, Some(&ph)).await,
            (403, "not_allowed".into(), "forbidden".into())
        );
    }
    let (status, body) = credentials(&w.s, &token).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");

    // A new secret under the old name is not the one granted.
    w.s.clock.advance(2);
    let status = w
        .put_secret(
            &w.s,
            "gh",
            json!({"value": NEW, "allowed_hosts": ["other.test"]}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(w.relay(&w.s, "other.test", &token, Some(&ph)).await.0, 403);
    assert_eq!(credentials(&w.s, &token).await.0, 403);
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
}

async fn a_deleted_grant_refuses_the_route_and_the_proxy_alike(engine: Engine) {
    let w = world(engine).await;
    w.put_secret(
        &w.s,
        "kept",
        json!({"value": REAL, "allowed_hosts": ["api.test"]}),
    )
    .await;
    w.put_secret(
        &w.s,
        "gone",
        json!({"value": NEW, "allowed_hosts": ["other.test"]}),
    )
    .await;
    let (token, env) = w
        .job(
            json!([{"env_var": "KEPT", "secret": "kept"}, {"env_var": "GONE", "secret": "gone"}]),
            json!([]),
        )
        .await;
    let kept = env["KEPT"].as_str().unwrap().to_string();
    assert_eq!(credentials(&w.s, &token).await.0, 200);
    assert_eq!(w.relay(&w.s, "api.test", &token, Some(&kept)).await.0, 200);
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);

    let r =
        w.s.call(Method::DELETE, "/v1/secrets/gone", Some(&w.op), None)
            .await;
    assert_eq!(r.status(), 204);
    // The route: the uniform 403.
    let (status, body) = credentials(&w.s, &token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    // The proxy: the same resolution fails, so the request is refused,
    // even one that uses only the grant still there (never skipped).
    assert_eq!(
        w.relay(&w.s, "api.test", &token, Some(&kept)).await,
        (403, "not_allowed".into(), "forbidden".into())
    );
    let (status, _) = connect(&w.s, &token, &format!("api.test:{}", w.tls_port)).await;
    assert_eq!(status, 403);
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
}

async fn a_secret_granted_twice_gives_two_working_placeholders(engine: Engine) {
    let w = world(engine).await;
    w.put_secret(
        &w.s,
        "gh",
        json!({"value": REAL, "allowed_hosts": ["api.test"]}),
    )
    .await;
    let (token, env) = w
        .job(
            json!([{"env_var": "GH_A", "secret": "gh"}, {"env_var": "GH_B", "secret": "gh"}]),
            json!([]),
        )
        .await;
    let (status, body) = credentials(&w.s, &token).await;
    assert_eq!(status, 200, "{body}");
    let shown: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    let mut given = vec![env["GH_A"].as_str().unwrap(), env["GH_B"].as_str().unwrap()];
    let mut sorted = shown.clone();
    sorted.sort();
    given.sort();
    assert_eq!(sorted, given, "each placeholder shown once");
    for ph in given {
        assert_eq!(w.relay(&w.s, "api.test", &token, Some(ph)).await.0, 200);
        assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
    }
}

/// No fallback between owners on the egress path (SPEC §5): two owners
/// with a secret of the same name, each job swaps only its own owner's
/// value; the other owner's placeholder is foreign to it; a secret deleted
/// under one owner refuses that owner's job rather than finding the other
/// owner's secret of that name; a deleted job's token is refused by the
/// relay and the proxy.
async fn no_fallback_between_owners_on_the_egress_path(engine: Engine) {
    const ALICE_VALUE: &str = "ghp_alices_own_value_0000";
    let w = world(engine).await;
    w.put_secret(
        &w.s,
        "gh",
        json!({"value": REAL, "allowed_hosts": ["api.test"]}),
    )
    .await;
    let alice = w.s.owner(&w.op, "alice@x.org").await;
    for (path, body) in [
        ("/v1/agents".to_string(), json!({"name": "bot"})),
        (
            "/v1/secrets/gh".to_string(),
            json!({"value": ALICE_VALUE, "allowed_hosts": ["api.test"]}),
        ),
    ] {
        let method = if path.contains("secrets") {
            Method::PUT
        } else {
            Method::POST
        };
        let (status, reply) = w.s.json(method, &path, Some(&alice), Some(body)).await;
        assert_eq!(status, 201, "{reply}");
    }
    let grant = json!([{"env_var": "GH", "secret": "gh"}]);
    let (op_token, op_env) = w.job(grant.clone(), json!([])).await;
    let (status, alice_job) =
        w.s.json(
            Method::POST,
            "/v1/jobs",
            Some(&alice),
            Some(json!({"agent": "bot", "grants": grant})),
        )
        .await;
    assert_eq!(status, 201, "{alice_job}");
    let alice_token = alice_job["job_token"].as_str().unwrap().to_string();
    let op_ph = op_env["GH"].as_str().unwrap().to_string();
    let alice_ph = alice_job["env"]["GH"].as_str().unwrap().to_string();

    // A session token is not a job's: the relay refuses it, sends nothing.
    let (status, _, _) = w.relay(&w.s, "api.test", &w.op, Some(&op_ph)).await;
    assert_eq!(status, 401);
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), 0);

    // Each job swaps its own owner's value.
    assert_eq!(
        w.relay(&w.s, "api.test", &op_token, Some(&op_ph)).await.0,
        200
    );
    assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
    assert_eq!(
        w.relay(&w.s, "api.test", &alice_token, Some(&alice_ph))
            .await
            .0,
        200
    );
    assert_eq!(w.last_tls_authorization(), format!("Bearer {ALICE_VALUE}"));
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);

    // The other owner's placeholder is foreign, whichever way round.
    for (token, ph) in [(&op_token, &alice_ph), (&alice_token, &op_ph)] {
        let (status, deny, _) = w.relay(&w.s, "api.test", token, Some(ph)).await;
        assert_eq!((status, deny.as_str()), (403, "not_allowed"));
    }
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);

    // Alice's secret goes: her job is refused, never served op's "gh".
    let r =
        w.s.call(Method::DELETE, "/v1/secrets/gh", Some(&alice), None)
            .await;
    assert_eq!(r.status(), 204);
    assert_eq!(credentials(&w.s, &alice_token).await.0, 403);
    let (status, _, _) = w
        .relay(&w.s, "api.test", &alice_token, Some(&alice_ph))
        .await;
    assert_eq!(status, 403);
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
    // Op's job is untouched by it.
    assert_eq!(
        w.relay(&w.s, "api.test", &op_token, Some(&op_ph)).await.0,
        200
    );
    assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);

    // A deleted job's token: refused by the relay and the proxy.
    let (_, jobs) = w.s.json(Method::GET, "/v1/jobs", Some(&w.op), None).await;
    let id = jobs[0]["job_id"].as_str().unwrap().to_string();
    let r =
        w.s.call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(&w.op), None)
            .await;
    assert_eq!(r.status(), 204);
    let (status, _, _) = w.relay(&w.s, "api.test", &op_token, Some(&op_ph)).await;
    assert_eq!(status, 401);
    let (status, _) = connect(&w.s, &op_token, &format!("api.test:{}", w.tls_port)).await;
    assert_eq!(status, 407);
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
}

/// The proxy keeps each job's view between requests; no change outlives
/// it. After a secret is replaced on this node, the very next request on
/// every path (plain, intercepted in an open tunnel, relayed) follows the
/// new row; after a change on another replica, the first request once it
/// reached this node does; a job deleted on another replica refuses its
/// token on every path.
async fn a_kept_view_never_outlives_a_change(engine: Engine) {
    let w = world(engine).await;
    let replica = w.s.replica().await;
    w.put_secret(
        &w.s,
        "gh",
        json!({"value": REAL, "allowed_hosts": ["api.test", "plain.test"]}),
    )
    .await;
    // No allow list of its own: the job reaches the hosts its secret names.
    let (token, env) = w
        .job(json!([{"env_var": "GH_TOKEN", "secret": "gh"}]), json!([]))
        .await;
    let ph = env["GH_TOKEN"].as_str().unwrap().to_string();
    let mut plain = w.plain_client().await;
    let mut tunnel = w.tunnel(&token, "api.test").await;
    // Twice each: the second request of each path is served from a kept view.
    for _ in 0..2 {
        assert_eq!(w.plain_get(&mut plain, &token).await, (200, String::new()));
        assert_eq!(w.in_tunnel(&mut tunnel, "api.test", &ph).await.0, 200);
        assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
        assert_eq!(w.relay(&w.s, "api.test", &token, Some(&ph)).await.0, 200);
        assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));
    }

    // Replaced on this node: plain.test is no longer the secret's, so no
    // longer the job's; api.test gets the new value.
    w.put_secret(
        &w.s,
        "gh",
        json!({"value": NEW, "allowed_hosts": ["api.test"]}),
    )
    .await;
    assert_eq!(
        w.plain_get(&mut plain, &token).await,
        (403, "not_allowed".to_string())
    );
    assert_eq!(w.in_tunnel(&mut tunnel, "api.test", &ph).await.0, 200);
    assert_eq!(w.last_tls_authorization(), format!("Bearer {NEW}"));
    assert_eq!(w.relay(&w.s, "api.test", &token, Some(&ph)).await.0, 200);
    assert_eq!(w.last_tls_authorization(), format!("Bearer {NEW}"));

    // Replaced on the other replica: bound to plain.test and other.test.
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);
    let seen = w.s.state().store.binding_epoch().current();
    w.put_secret(
        &replica,
        "gh",
        json!({"value": REAL, "allowed_hosts": ["plain.test", "other.test"]}),
    )
    .await;
    epoch_moved_past(&w.s, seen).await;
    assert_eq!(w.plain_get(&mut plain, &token).await, (200, String::new()));
    assert_eq!(
        w.in_tunnel(&mut tunnel, "api.test", &ph).await,
        (403, "not_allowed".to_string())
    );
    assert_eq!(
        w.relay(&w.s, "api.test", &token, Some(&ph)).await,
        (403, "not_allowed".into(), "not_allowed".into())
    );
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
    assert_eq!(w.relay(&w.s, "other.test", &token, Some(&ph)).await.0, 200);
    assert_eq!(w.last_tls_authorization(), format!("Bearer {REAL}"));

    // The job deleted on the other replica: its token is refused here on
    // every path once the revocation arrives (pushed, under 1 s).
    let (_, jobs) = replica
        .json(Method::GET, "/v1/jobs", Some(&w.op), None)
        .await;
    let id = jobs[0]["job_id"].as_str().unwrap().to_string();
    let r = replica
        .call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(&w.op), None)
        .await;
    assert_eq!(r.status(), 204);
    let mut refused = false;
    for _ in 0..40 {
        let (status, _, _) = w.relay(&w.s, "other.test", &token, Some(&ph)).await;
        if status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(refused, "the deletion reached this node within 2 s");
    let sent = w.tls_seen.requests.load(Ordering::SeqCst);
    let mut fresh = w.plain_client().await;
    assert_eq!(w.plain_get(&mut fresh, &token).await.0, 407);
    let (status, _) = connect(&w.s, &token, &format!("other.test:{}", w.tls_port)).await;
    assert_eq!(status, 407);
    assert_eq!(w.relay(&w.s, "other.test", &token, Some(&ph)).await.0, 401);
    assert_eq!(w.tls_seen.requests.load(Ordering::SeqCst), sent);
}

on_both_engines!(
    a_kept_view_never_outlives_a_change,
    a_secret_granted_twice_gives_two_working_placeholders,
    plain_http_never_carries_a_real_value,
    a_placeholder_follows_its_secret_across_replace_and_delete,
    a_deleted_grant_refuses_the_route_and_the_proxy_alike,
    no_fallback_between_owners_on_the_egress_path,
);
