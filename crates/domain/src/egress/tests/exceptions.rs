//! `egress.allow_private_cidrs` and `egress.allowed_ports`, and the
//! resolved-address entry points.

use std::net::{IpAddr, SocketAddr};

use super::{is_ssrf, verdict, Verdict};
use crate::egress::{check_address, check_resolved, Cidr, Deny, EgressPolicy, SsrfReason};

fn policy(cidrs: &[&str]) -> EgressPolicy {
    EgressPolicy {
        allow_private_cidrs: cidrs.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
        ..EgressPolicy::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn allow(s: &str) -> Verdict {
    Verdict::Allow(s.to_owned())
}

#[test]
fn an_allowed_block_lets_its_addresses_through_in_every_spelling() {
    let p = policy(&["10.0.0.0/8"]);
    for (input, want) in [
        ("10.1.2.3", allow("10.1.2.3:443")),
        ("012.1.2.3", allow("10.1.2.3:443")),
        ("167838211", allow("10.1.2.3:443")),
        ("[::ffff:10.1.2.3]", allow("10.1.2.3:443")),
        ("[64:ff9b::a01:203]", allow("[64:ff9b::a01:203]:443")),
        ("[2002:a01:203::]", allow("[2002:a01:203::]:443")),
        ("11.0.0.1", allow("11.0.0.1:443")),
        ("127.0.0.1", Verdict::Ssrf),
        ("172.16.0.1", Verdict::Ssrf),
        ("[fd00::1]", Verdict::Ssrf),
    ] {
        assert_eq!(verdict(input, &p), want, "{input}");
    }
}

#[test]
fn loopback_can_be_allowed_for_tests() {
    let p = policy(&["127.0.0.0/8", "::1"]);
    assert_eq!(verdict("127.0.0.2:80", &p), allow("127.0.0.2:80"));
    assert_eq!(verdict("[::1]:80", &p), allow("[::1]:80"));
    assert_eq!(verdict("localhost:80", &p), Verdict::Ssrf);
}

#[test]
fn some_addresses_are_never_exempt() {
    let p = policy(&["0.0.0.0/0", "::/0"]);
    for input in [
        "0.0.0.0",
        "[::]",
        "255.255.255.255",
        "224.0.0.1",
        "[ff02::1]",
        "[::ffff:0.0.0.0]",
    ] {
        assert_eq!(verdict(input, &p), Verdict::Ssrf, "{input}");
    }
    assert_eq!(verdict("10.0.0.1", &p), allow("10.0.0.1:443"));
    assert_eq!(verdict("[fe80::1]", &p), allow("[fe80::1]:443"));
}

#[test]
fn exempting_a_translation_prefix_still_checks_what_is_inside() {
    let p = policy(&["64:ff9b:1::/48", "2001::/32"]);
    assert_eq!(
        verdict("[64:ff9b:1::808:808]", &p),
        allow("[64:ff9b:1::808:808]:443")
    );
    assert_eq!(verdict("[64:ff9b:1::a9fe:a9fe]", &p), Verdict::Ssrf);
    // Teredo client 8.8.8.8 (stored inverted: f7f7:f7f7) and 127.0.0.1.
    assert_eq!(
        verdict("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]", &p),
        allow("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]:443")
    );
    assert_eq!(
        verdict("[2001:0:4136:e378:8000:63bf:80ff:fffe]", &p),
        Verdict::Ssrf
    );
}

#[test]
fn ports_come_from_the_policy() {
    let p = EgressPolicy {
        allowed_ports: vec![8443],
        ..EgressPolicy::default()
    };
    assert_eq!(
        verdict("api.github.com:8443", &p),
        allow("api.github.com:8443")
    );
    assert_eq!(verdict("api.github.com", &p), Verdict::NotAllowed);
    assert_eq!(verdict("api.github.com:80", &p), Verdict::NotAllowed);
}

#[test]
fn check_address_reports_the_embedded_match_and_canonicalises() {
    let p = EgressPolicy::default();
    assert_eq!(
        check_address(ip("64:ff9b::a9fe:a9fe"), &p),
        Err(Deny::InternalAddress {
            reason: SsrfReason::LinkLocal,
            matched: ip("169.254.169.254"),
        })
    );
    assert_eq!(check_address(ip("::ffff:1.1.1.1"), &p), Ok(ip("1.1.1.1")));
    assert_eq!(
        check_address(ip("2606:4700::1111"), &p),
        Ok(ip("2606:4700::1111"))
    );
}

#[test]
fn one_internal_answer_refuses_the_whole_name() {
    let p = EgressPolicy::default();
    let good = [ip("1.1.1.1"), ip("::ffff:8.8.8.8")];
    assert_eq!(
        check_resolved(&good, 443, &p),
        Ok(vec![
            SocketAddr::new(ip("1.1.1.1"), 443),
            SocketAddr::new(ip("8.8.8.8"), 443)
        ])
    );
    let rebinding = [ip("1.1.1.1"), ip("169.254.169.254")];
    let err = check_resolved(&rebinding, 443, &p).unwrap_err();
    assert!(is_ssrf(&err), "{err:?}");
}

#[test]
fn deny_headers() {
    assert_eq!(Deny::LocalhostName.header_value(), "ssrf");
    assert_eq!(
        Deny::PortNotAllowed { port: 22 }.header_value(),
        "not_allowed"
    );
}
