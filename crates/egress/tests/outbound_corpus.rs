//! Replays interesting inputs of the `outbound_target` fuzz target on the
//! stable toolchain, through the same function ([`check_url`]) and with
//! the same invariants: what is accepted is exactly what reqwest will
//! connect to, and never Gatehouse's own listeners.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};

use gatehouse_domain::egress::outbound::{is_own_listener, Origin, OutboundPolicy};
use gatehouse_domain::egress::{check_address, Checked, Cidr, EgressPolicy};
use gatehouse_egress::outbound::check_url;

fn policy() -> OutboundPolicy {
    OutboundPolicy {
        egress: EgressPolicy {
            allow_private_cidrs: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            ..EgressPolicy::default()
        },
        own_listeners: vec![
            "127.0.0.1:8270".parse::<SocketAddr>().unwrap(),
            "[::]:8271".parse::<SocketAddr>().unwrap(),
        ],
    }
}

/// The fuzz target's body; returns the refusal reason or "ok".
fn replay(input: &str, origin: Origin) -> &'static str {
    let policy = policy();
    let (url, checked) = match check_url(input, origin, &policy) {
        Ok(v) => v,
        Err(e) => return e.reason(),
    };
    let port = url.port_or_known_default().unwrap();
    match checked {
        Checked::Connect(addr) => {
            let host = url.host_str().unwrap().trim_matches(['[', ']']);
            let ip: IpAddr = host.parse().unwrap();
            assert_eq!(ip.to_canonical(), addr.ip(), "{input}");
            assert_eq!(addr.port(), port);
            assert_eq!(addr.ip().to_canonical(), addr.ip());
            assert_eq!(check_address(addr.ip(), &policy.egress), Ok(addr.ip()));
            assert!(!is_own_listener(addr, &policy.own_listeners));
        }
        Checked::Resolve { name, port: p } => {
            assert!(!name.is_localhost());
            assert_eq!(p, port);
            assert_ne!(p, 8271);
        }
    }
    if origin == Origin::User {
        assert!(policy.egress.allowed_ports.contains(&port));
    }
    "ok"
}

#[test]
fn interesting_outbound_targets_keep_the_invariants() {
    for (input, operator, user) in [
        (
            "http://127.0.0.1:8270/v1/tokens",
            "own_listener",
            "own_listener",
        ),
        ("http://2130706433:8270/", "own_listener", "own_listener"),
        ("http://0x7f.1:8270/", "own_listener", "own_listener"),
        ("http://0177.0.0.1:8270/", "own_listener", "own_listener"),
        ("http://127.1:8270/", "own_listener", "own_listener"),
        (
            "http://[::ffff:127.0.0.1]:8270/",
            "own_listener",
            "own_listener",
        ),
        (
            "http://[::ffff:7f00:1]:8270/",
            "own_listener",
            "own_listener",
        ),
        ("http://127.0.0.1.:8270/", "own_listener", "own_listener"),
        ("http://127.0.0.2:8271/", "own_listener", "own_listener"),
        ("http://example.com:8271/", "own_listener", "own_listener"),
        ("http://[::1]:8271/", "ssrf", "ssrf"),
        ("http://127.0.0.1:9000/in", "ok", "port"),
        ("http://127.0.0.1/in", "ok", "ok"),
        ("http://[::1]/", "ssrf", "ssrf"),
        ("http://[64:ff9b::a9fe:a9fe]/", "ssrf", "ssrf"),
        ("http://169.254.169.254/latest/meta-data/", "ssrf", "ssrf"),
        ("http://0/", "ssrf", "ssrf"),
        ("http://localhost/", "ssrf", "ssrf"),
        ("http://LOCALHOST./", "ssrf", "ssrf"),
        ("http://a.localhost:80/", "ssrf", "ssrf"),
        ("https://example.com/hook", "ok", "ok"),
        ("https://EXAMPLE.com.:443/hook", "ok", "ok"),
        ("https://example.com:8443/hook", "ok", "port"),
        ("http://user:pw@example.com/", "malformed", "malformed"),
        ("http://@example.com/", "ok", "ok"),
        ("http://example.com/#frag", "malformed", "malformed"),
        ("http://example.com\\@127.0.0.1:8270/", "ok", "ok"),
        ("http://1.2.3.4.5/", "malformed", "malformed"),
        ("http://exa%6dple.com/", "ok", "ok"),
        ("http://[fe80::1%25eth0]/", "malformed", "malformed"),
        ("gopher://example.com/", "malformed", "malformed"),
        ("file:///etc/passwd", "malformed", "malformed"),
        ("http:///x", "ok", "ok"),
        ("", "malformed", "malformed"),
    ] {
        assert_eq!(
            replay(input, Origin::Operator),
            operator,
            "{input} (operator)"
        );
        assert_eq!(replay(input, Origin::User), user, "{input} (user)");
    }
}
