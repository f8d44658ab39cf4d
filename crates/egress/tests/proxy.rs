//! The proxy end to end on loopback: real sockets, real TLS (the upstream
//! world has its own CA; Gatehouse's CA is trusted by the client), `curl`
//! as the agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn opts(ports: Vec<u16>) -> ProxyOptions {
    ProxyOptions {
        ports,
        extra_roots: vec![],
        judge: None,
        secrets: vec![],
        allow_hosts: vec![],
    }
}

#[tokio::test]
async fn missing_or_bad_proxy_credentials_get_407() {
    let p = proxy(opts(vec![80, 443])).await;
    for head in [
        "GET http://api.test/ HTTP/1.1\r\nHost: api.test\r\n\r\n".to_string(),
        format!(
            "GET http://api.test/ HTTP/1.1\r\nHost: api.test\r\nProxy-Authorization: {}\r\n\r\n",
            basic("wrong")
        ),
        "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\nProxy-Authorization: Bearer nope\r\n\r\n"
            .to_string(),
        "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\nProxy-Authorization: Digest x\r\n\r\n"
            .to_string(),
    ] {
        let (status, text) = raw(p.addr, &head).await;
        assert_eq!(status, 407, "{head}: {text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("proxy-authenticate: basic realm=\"gatehouse\""),
            "{text}"
        );
        assert!(text.contains("\"code\":\"proxy_auth_required\""), "{text}");
    }
}

#[tokio::test]
async fn malformed_targets_get_400_and_refused_ones_403_with_a_reason() {
    let p = proxy(ProxyOptions {
        allow_hosts: vec!["*"],
        ..opts(vec![80, 443])
    })
    .await;
    let auth = basic(TOKEN);
    for (line, want, deny) in [
        ("CONNECT 1.2.3.4.5:443", 400, None),
        ("CONNECT 0x7g.1:443", 400, None),
        ("CONNECT api.test:0", 400, None),
        ("CONNECT api.test:70000", 400, None),
        ("GET / HTTP/1.1", 400, None),
        ("GET https://api.test/", 400, None),
        ("CONNECT 169.254.169.254:443", 403, Some("ssrf")),
        ("CONNECT [::1]:443", 403, Some("ssrf")),
        ("CONNECT [fe80::1%25eth0]:443", 403, Some("ssrf")),
        ("CONNECT [64:ff9b::a9fe:a9fe]:443", 403, Some("ssrf")),
        ("CONNECT [::ffff:10.0.0.1]:443", 403, Some("ssrf")),
        ("CONNECT 0251.0376.0251.0376:443", 403, Some("ssrf")),
        ("GET http://10.1.2.3/latest", 403, Some("ssrf")),
        ("GET http://localhost./", 403, Some("ssrf")),
        ("GET http://a.b.localhost/", 403, Some("ssrf")),
        ("CONNECT api.test:22", 403, Some("not_allowed")),
    ] {
        let line = if line.ends_with("HTTP/1.1") {
            line.to_string()
        } else {
            format!("{line} HTTP/1.1")
        };
        let head = format!("{line}\r\nHost: x\r\nProxy-Authorization: {auth}\r\n\r\n");
        let (status, text) = raw(p.addr, &head).await;
        assert_eq!(status, want, "{line}: {text}");
        let lower = text.to_ascii_lowercase();
        match deny {
            Some(reason) => assert!(
                lower.contains(&format!("x-gatehouse-deny: {reason}")),
                "{line}: {text}"
            ),
            None => assert!(!lower.contains("x-gatehouse-deny"), "{line}: {text}"),
        }
        assert!(text.contains("{\"error\":{\"code\":"), "{line}: {text}");
    }
    // Unparseable request lines never reach the proxy's code: hyper answers.
    let head = format!("CONNECT [::1:443 HTTP/1.1\r\nProxy-Authorization: {auth}\r\n\r\n");
    assert_eq!(raw(p.addr, &head).await.0, 400);
    assert!(
        p.resolver.lookups().is_empty(),
        "nothing was resolved for refused literals"
    );
    let audits = p.directory.audits();
    assert!(audits.iter().any(|a| a.action == "egress.refuse"
        && a.outcome == "denied:ssrf"
        && a.target == "169.254.169.254"));
}

#[tokio::test]
async fn hosts_off_the_allow_list_are_refused_and_an_empty_list_means_the_secrets_hosts() {
    let (up, seen) = plain_upstream().await;
    let p = proxy(ProxyOptions {
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        ..opts(vec![up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    p.resolver.answer("else.test", vec![ip("127.0.0.1")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &format!("http://api.test:{}/", up.port()),
    ])
    .await;
    assert_eq!(out, "200");
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "-i",
        &format!("http://else.test:{}/", up.port()),
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("x-gatehouse-deny: not_allowed"),
        "{out}"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    assert_eq!(p.resolver.lookups(), vec!["api.test".to_string()]);
}

#[tokio::test]
async fn unbound_hosts_are_tunnelled_byte_exact_ipv6_literals_included() {
    let (echo, connections) = echo_upstream().await;
    let p = proxy(ProxyOptions {
        allow_hosts: vec!["*"],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        ..opts(vec![echo.port()])
    })
    .await;
    p.resolver.answer("tcp.test", vec![ip("127.0.0.1")]);
    let payload: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain(format!("{PH_API}\r\n\r\nGET / HTTP/1.1\r\n").into_bytes())
        .collect();
    for authority in [
        format!("tcp.test:{}", echo.port()),
        format!("[::ffff:127.0.0.1]:{}", echo.port()),
    ] {
        let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let head = format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
            basic(TOKEN)
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut resp = Vec::new();
        while !resp.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            resp.push(b[0]);
        }
        assert!(
            resp.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&resp)
        );
        let (mut r, mut w) = s.into_split();
        let to_send = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&to_send).await.unwrap();
            w
        });
        let mut back = vec![0u8; payload.len()];
        r.read_exact(&mut back).await.unwrap();
        let _ = writer.await;
        assert!(back == payload, "tunnel altered the bytes");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn intercepted_https_swaps_the_placeholder_and_the_echo_guard_hides_the_value() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        ..opts(vec![up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let ca_file = p.ca_file.display().to_string();
    let url = format!("https://api.test:{}/v1/me", up.port());
    let header = format!("Authorization: Bearer {PH_API}");
    for _ in 0..2 {
        let (ok, out, err) = curl(&[
            "-x", &proxy_url, "--cacert", &ca_file, "-i", "-H", &header, &url,
        ])
        .await;
        assert!(ok, "{err}");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(
            !out.contains(REAL_API),
            "the agent saw the real value: {out}"
        );
        assert!(out.contains(&format!("x-echo: Bearer {PH_API}")), "{out}");
        assert!(
            out.contains(&format!("\"you_sent\":\"Bearer {PH_API}\"")),
            "{out}"
        );
        // The rewritten body is whole: sent with its new length, not chunked.
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{out}"
        );
        assert!(!head.contains("transfer-encoding"), "{out}");
    }
    assert_eq!(
        *seen.authorization.lock().unwrap(),
        vec![format!("Bearer {REAL_API}"); 2]
    );
    let swaps: Vec<_> = p
        .directory
        .audits()
        .into_iter()
        .filter(|a| a.action == "egress.swap")
        .collect();
    assert_eq!(
        swaps.len(),
        1,
        "swaps are audited once a minute per job, secret and host"
    );
    assert_eq!(swaps[0].target, "api@api.test");
    assert!(!format!("{swaps:?}").contains(REAL_API));
}

#[tokio::test]
async fn a_placeholder_sent_to_another_host_is_refused_and_that_host_sees_nothing() {
    let ca = upstream_ca();
    let (other, other_seen) = tls_upstream(&ca, &["other.test"]).await;
    let (plain, plain_seen) = plain_upstream().await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![
            secret("api", PH_API, REAL_API, &["api.test"]),
            secret("other", PH_OTHER, REAL_OTHER, &["other.test"]),
        ],
        allow_hosts: vec!["*"],
        ..opts(vec![other.port(), plain.port()])
    })
    .await;
    p.resolver.answer("other.test", vec![ip("127.0.0.1")]);
    p.resolver.answer("plain.test", vec![ip("127.0.0.1")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let ca_file = p.ca_file.display().to_string();
    let header = format!("Authorization: Bearer {PH_API}");
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "--cacert",
        &ca_file,
        "-i",
        "-H",
        &header,
        &format!("https://other.test:{}/", other.port()),
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("x-gatehouse-deny: not_allowed"),
        "{out}"
    );
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "-i",
        "-H",
        &header,
        &format!("http://plain.test:{}/", plain.port()),
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert_eq!(other_seen.requests.load(Ordering::SeqCst), 0);
    assert_eq!(plain_seen.requests.load(Ordering::SeqCst), 0);
    assert!(p
        .directory
        .audits()
        .iter()
        .any(|a| a.outcome == "denied:not_allowed" && a.target == "other.test"));
}

#[tokio::test]
async fn foreign_placeholders_count_as_failures_and_twenty_throttle_the_source() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        ..opts(vec![up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let authority = format!("api.test:{}", up.port());
    let mut tunnel = intercepted(&p, &authority).await;
    let foreign = "Bearer gh_ph_9999999999999999999999999999999999999999";
    let good = format!("Bearer {PH_API}");
    for _ in 0..19 {
        assert_eq!(get_in_tunnel(&mut tunnel, &authority, foreign).await, 403);
    }
    // A success clears the count.
    assert_eq!(get_in_tunnel(&mut tunnel, &authority, &good).await, 200);
    for _ in 0..19 {
        assert_eq!(get_in_tunnel(&mut tunnel, &authority, foreign).await, 403);
    }
    // Plain http:// with a placeholder counts as a failure too.
    let head = format!(
        "GET http://api.test:{port}/ HTTP/1.1\r\nHost: api.test:{port}\r\nAuthorization: {good}\r\nProxy-Authorization: {}\r\n\r\n",
        basic(TOKEN),
        port = up.port()
    );
    assert_eq!(raw(p.addr, &head).await.0, 403);
    assert_eq!(
        get_in_tunnel(&mut tunnel, &authority, &good).await,
        429,
        "the 20th failure throttles the source"
    );
    p.clock.advance(299);
    assert_eq!(get_in_tunnel(&mut tunnel, &authority, &good).await, 429);
    p.clock.advance(2);
    assert_eq!(
        get_in_tunnel(&mut tunnel, &authority, &good).await,
        200,
        "the window passed"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn expired_placeholders_are_refused() {
    let (plain, seen) = plain_upstream().await;
    let mut s = secret("api", PH_API, REAL_API, &["plain.test"]);
    s.expires_at = now() - 1;
    let p = proxy(ProxyOptions {
        secrets: vec![s],
        ..opts(vec![plain.port()])
    })
    .await;
    p.resolver.answer("plain.test", vec![ip("127.0.0.1")]);
    let (_, out, _) = curl(&[
        "-x",
        &format!("http://job:{TOKEN}@{}", p.addr),
        "-i",
        "-H",
        &format!("Authorization: Bearer {PH_API}"),
        &format!("http://plain.test:{}/", plain.port()),
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_returned_and_the_follow_up_refused() {
    let ca = upstream_ca();
    let (up, _seen) = tls_upstream(&ca, &["api.test"]).await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        allow_hosts: vec!["*"],
        ..opts(vec![80, up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let ca_file = p.ca_file.display().to_string();
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "--cacert",
        &ca_file,
        "-i",
        &format!("https://api.test:{}/redirect", up.port()),
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 302"), "{out}");
    assert!(
        out.contains("location: http://169.254.169.254/latest/meta-data/"),
        "{out}"
    );
    // The client follows; the proxy checks the new target like any other.
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "-i",
        "-L",
        &format!("https://api.test:{}/redirect", up.port()),
        "--cacert",
        &ca_file,
    ])
    .await;
    assert!(out.contains("HTTP/1.1 403"), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("x-gatehouse-deny: ssrf"),
        "{out}"
    );
}

#[tokio::test]
async fn dns_rebinding_cannot_reach_a_private_address() {
    let (plain, seen) = plain_upstream().await;
    let p = proxy(ProxyOptions {
        allow_hosts: vec!["*"],
        ..opts(vec![plain.port()])
    })
    .await;
    // Loopback stands for "public" here (the test lets 127.0.0.0/8 through);
    // the metadata address is the private one.
    p.resolver
        .answer("rebind.test", vec![ip("127.0.0.1")])
        .answer("rebind.test", vec![ip("169.254.169.254")]);
    p.resolver
        .answer("mixed.test", vec![ip("127.0.0.1"), ip("10.0.0.7")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let url = |h: &str| format!("http://{h}:{}/", plain.port());
    let (_, out, _) = curl(&["-x", &proxy_url, "-i", &url("rebind.test")]).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let (_, out, _) = curl(&["-x", &proxy_url, "-i", &url("rebind.test")]).await;
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(
        out.to_ascii_lowercase().contains("x-gatehouse-deny: ssrf"),
        "{out}"
    );
    let (_, out, _) = curl(&["-x", &proxy_url, "-i", &url("mixed.test")]).await;
    assert!(
        out.starts_with("HTTP/1.1 403"),
        "one private answer refuses the name: {out}"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        p.resolver.lookups(),
        vec!["rebind.test", "rebind.test", "mixed.test"],
        "each request resolved its name exactly once"
    );
}

#[tokio::test]
async fn inject_rules_add_the_header_only_towards_bound_hosts() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let mut s = secret("api", PH_API, REAL_API, &["api.test"]);
    s.inject = Some(("Authorization", "token {value}"));
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![s],
        ..opts(vec![up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let (ok, out, err) = curl(&[
        "-x",
        &format!("http://job:{TOKEN}@{}", p.addr),
        "--cacert",
        &p.ca_file.display().to_string(),
        &format!("https://api.test:{}/", up.port()),
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        *seen.authorization.lock().unwrap(),
        vec![format!("token {REAL_API}")]
    );
    assert!(
        out.contains(&format!("token {PH_API}")) && !out.contains(REAL_API),
        "{out}"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_inside_an_open_intercepted_tunnel() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        ..opts(vec![up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let mut s = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let authority = format!("api.test:{}", up.port());
    s.write_all(
        format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
            basic(TOKEN)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let tls = tokio_rustls::TlsConnector::from(client_tls_config_from(&p.ca_file))
        .connect("api.test".try_into().unwrap(), s)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = || {
        http::Request::builder()
            .uri("/")
            .header("host", &authority)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let r = sender.send_request(req()).await.unwrap();
    assert_eq!(r.status(), 200);
    let _ = http_body_util::BodyExt::collect(r.into_body()).await;
    p.directory.revoke(TOKEN);
    // The connection is closed under the client (tests/connections.rs); a
    // request that races the close is refused, never forwarded.
    if let Ok(r) = sender.send_request(req()).await {
        assert_eq!(r.status(), 407);
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn plain_http_with_a_placeholder_is_refused_and_the_upstream_sees_nothing() {
    let (plain, seen) = plain_upstream().await;
    let p = proxy(ProxyOptions {
        secrets: vec![secret("api", PH_API, REAL_API, &["plain.test"])],
        ..opts(vec![plain.port()])
    })
    .await;
    p.resolver.answer("plain.test", vec![ip("127.0.0.1")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let url = format!("http://plain.test:{}/", plain.port());
    let header = format!("Authorization: Bearer {PH_API}");
    // The placeholder's own bound host, in a header or in the query.
    let in_query = format!("{url}?token={PH_API}");
    for args in [vec!["-H", &header, &url], vec![&in_query]] {
        let mut argv = vec!["-x", &proxy_url, "-i"];
        argv.extend(args);
        let (_, out, _) = curl(&argv).await;
        assert!(out.starts_with("HTTP/1.1 403"), "{out}");
        assert!(
            out.to_ascii_lowercase()
                .contains("x-gatehouse-deny: not_allowed"),
            "{out}"
        );
        assert!(out.contains("\"code\":\"not_allowed\""), "{out}");
        assert!(!out.contains(REAL_API), "{out}");
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0, "nothing was sent");
    // Without a placeholder the bound host is reached as usual.
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "-i",
        "-H",
        "Authorization: Bearer mine",
        &url,
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(*seen.authorization.lock().unwrap(), vec!["Bearer mine"]);
    assert!(p
        .directory
        .audits()
        .iter()
        .any(|a| a.action == "egress.refuse" && a.outcome == "denied:not_allowed"));
}

#[tokio::test]
async fn inject_rules_never_reach_plain_http_but_do_reach_intercepted_https() {
    let ca = upstream_ca();
    let (tls, tls_seen) = tls_upstream(&ca, &["api.test"]).await;
    let (plain, plain_seen) = plain_upstream().await;
    let mut s = secret("api", PH_API, REAL_API, &["api.test", "plain.test"]);
    s.inject = Some(("Authorization", "token {value}"));
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![s],
        ..opts(vec![tls.port(), plain.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    p.resolver.answer("plain.test", vec![ip("127.0.0.1")]);
    let proxy_url = format!("http://job:{TOKEN}@{}", p.addr);
    let (ok, out, err) = curl(&[
        "-x",
        &proxy_url,
        "-i",
        &format!("http://plain.test:{}/", plain.port()),
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(
        *plain_seen.authorization.lock().unwrap(),
        vec![String::new()],
        "no injected header in clear text"
    );
    let (ok, _, err) = curl(&[
        "-x",
        &proxy_url,
        "--cacert",
        &p.ca_file.display().to_string(),
        &format!("https://api.test:{}/", tls.port()),
    ])
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        *tls_seen.authorization.lock().unwrap(),
        vec![format!("token {REAL_API}")]
    );
}

type KeptClient = hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>;

/// A proxy whose job may reach `allow_hosts`, `plain.test` resolving to a
/// plain upstream (its port and what it saw), and one kept-alive client
/// connection to the proxy.
async fn kept_plain_client(allow_hosts: Vec<&'static str>) -> (Proxy, u16, Arc<Seen>, KeptClient) {
    let (plain, seen) = plain_upstream().await;
    let p = proxy(ProxyOptions {
        allow_hosts,
        ..opts(vec![plain.port()])
    })
    .await;
    p.resolver.answer("plain.test", vec![ip("127.0.0.1")]);
    let kept = kept_alive(tokio::net::TcpStream::connect(p.addr).await.unwrap()).await;
    (p, plain.port(), seen, kept)
}

/// `GET http://plain.test:<port>/` on a kept-alive proxy connection with
/// `auth` as the proxy credential; the status.
async fn kept_get(sender: &mut KeptClient, port: u16, auth: &str) -> u16 {
    kept_get_denied(sender, port, auth).await.0
}

/// [`kept_get`], with the `X-Gatehouse-Deny` reason.
async fn kept_get_denied(sender: &mut KeptClient, port: u16, auth: &str) -> (u16, String) {
    let host = format!("plain.test:{port}");
    let url = format!("http://{host}/");
    get_on(sender, &url, &host, &[("proxy-authorization", auth)]).await
}

/// A kept-alive client asking for the same authority under the same view
/// is admitted as its upstream connection was (no second resolution);
/// a changed view (here its allow list) is admitted afresh, and refused.
#[tokio::test]
async fn a_kept_admission_stands_only_while_the_view_it_was_made_under_does() {
    let (p, port, seen, mut kept) = kept_plain_client(vec!["plain.test", "other.test"]).await;
    p.directory.keep_views.store(true, Ordering::SeqCst);
    let good = basic(TOKEN);
    for _ in 0..3 {
        assert_eq!(kept_get(&mut kept, port, &good).await, 200);
    }
    assert_eq!(p.resolver.lookups(), ["plain.test"], "admitted once");

    p.directory
        .change_view(|d| *d.allow_hosts.lock().unwrap() = vec!["other.test".into()]);
    let refused = kept_get_denied(&mut kept, port, &good).await;
    assert_eq!(refused, (403, "not_allowed".to_string()));
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_kept_connection_verifies_its_credential_once_and_rechecks_it_on_every_request() {
    let (p, port, seen, mut kept) = kept_plain_client(vec!["plain.test"]).await;
    let (verified, rechecked) = (
        || p.directory.verifications.load(Ordering::SeqCst),
        || p.directory.rechecks.load(Ordering::SeqCst),
    );
    let good = basic(TOKEN);
    for _ in 0..3 {
        assert_eq!(kept_get(&mut kept, port, &good).await, 200);
    }
    assert_eq!(
        (verified(), rechecked()),
        (1, 2),
        "verified once, then re-checked"
    );

    // Another credential on the same connection is verified in full, and
    // a refusal forgets the one before: the good one is verified again.
    assert_eq!(kept_get(&mut kept, port, &basic("wrong")).await, 407);
    assert_eq!(kept_get(&mut kept, port, &good).await, 200);
    assert_eq!((verified(), rechecked()), (3, 2));

    // Expiry and revocation are seen by the re-check of the very next
    // request, and nothing reaches the upstream. (A `Bearer` credential:
    // other bytes, so verified anew, with the lease's new end.)
    use gatehouse_domain::clock::Clock;
    let bearer = format!("Bearer {TOKEN}");
    let sent = seen.requests.load(Ordering::SeqCst);
    *p.directory.ends_at.lock().unwrap() = p.clock.now() + 60;
    assert_eq!(kept_get(&mut kept, port, &bearer).await, 200);
    p.clock.advance(60);
    assert_eq!(kept_get(&mut kept, port, &bearer).await, 407, "expired");
    *p.directory.ends_at.lock().unwrap() = i64::MAX;
    assert_eq!(kept_get(&mut kept, port, &bearer).await, 200);
    assert_eq!(kept_get(&mut kept, port, &bearer).await, 200);
    p.directory.revoke(TOKEN);
    assert_eq!(kept_get(&mut kept, port, &bearer).await, 407, "revoked");
    assert_eq!(seen.requests.load(Ordering::SeqCst), sent + 3);
    assert_eq!((verified(), rechecked()), (5, 5));
}

/// A proxy whose job holds the `api` placeholder (bound to `api.test`)
/// and may reach `api.test` and `other.test`, a TLS upstream answering for
/// `names`, and one intercepted tunnel open to `api.test`.
struct InTunnel {
    p: Proxy,
    port: u16,
    seen: Arc<Seen>,
    authority: String,
    tunnel: KeptClient,
    /// The upstream world's CA, kept while the test runs.
    _ca: UpstreamCa,
}

async fn in_tunnel_to_api(names: &[&str]) -> InTunnel {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, names).await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        allow_hosts: vec!["api.test", "other.test"],
        ..opts(vec![up.port()])
    })
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let authority = format!("api.test:{}", up.port());
    let tunnel = intercepted(&p, &authority).await;
    InTunnel {
        p,
        port: up.port(),
        seen,
        authority,
        tunnel,
        _ca: ca,
    }
}

/// The job's allow list as its view is now holds inside an open
/// intercepted tunnel: narrowed, it refuses the tunnel's next request,
/// placeholder or not, and nothing reaches the upstream.
#[tokio::test]
async fn a_narrowed_allow_list_refuses_the_next_request_in_an_open_intercepted_tunnel() {
    let InTunnel {
        p,
        seen,
        authority,
        mut tunnel,
        ..
    } = in_tunnel_to_api(&["api.test"]).await;
    let bearer = format!("Bearer {PH_API}");
    assert_eq!(get_in_tunnel(&mut tunnel, &authority, &bearer).await, 200);
    assert_eq!(
        get_in_tunnel(&mut tunnel, &authority, "Bearer mine").await,
        200
    );
    p.directory
        .change_view(|d| *d.allow_hosts.lock().unwrap() = vec!["other.test".into()]);
    assert_eq!(
        get_in_tunnel(&mut tunnel, &authority, "Bearer mine").await,
        403
    );
    assert_eq!(get_in_tunnel(&mut tunnel, &authority, &bearer).await, 403);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn inside_an_intercepted_tunnel_every_request_must_name_the_connect_target() {
    let InTunnel {
        p,
        port,
        seen,
        authority,
        mut tunnel,
        ..
    } = in_tunnel_to_api(&["api.test", "other.test"]).await;
    p.resolver.answer("other.test", vec![ip("127.0.0.1")]);
    let other = format!("other.test:{port}");
    let bearer = format!("Bearer {PH_API}");
    // Refused before any good request, and after one (a remembered good
    // Host does not let another through); other spellings of the target
    // still pass.
    assert_eq!(get_in_tunnel(&mut tunnel, &other, "Bearer mine").await, 400);
    assert_eq!(get_in_tunnel(&mut tunnel, &authority, &bearer).await, 200);
    assert_eq!(get_in_tunnel(&mut tunnel, &authority, &bearer).await, 200);
    assert_eq!(get_in_tunnel(&mut tunnel, &other, "Bearer mine").await, 400);
    let upper = format!("API.TEST.:{port}");
    assert_eq!(get_in_tunnel(&mut tunnel, &upper, &bearer).await, 200);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    assert_eq!(
        *seen.hosts.lock().unwrap(),
        vec![authority.clone(), authority.clone(), upper.clone()]
    );
}
