//! Feeds arbitrary strings to the outbound client's URL check (a hook's
//! `forward_to`, `approvals.notify_url`, an upstream's `base_url`, the
//! judge): parse with reqwest's own URL parser, read the host into the
//! domain's normal form, apply the §12 rule.
//!
//! Besides "never panics", asserts what the client relies on: an accepted
//! IP literal is the very address reqwest will connect to, is canonical,
//! passes the address check again and is never one of Gatehouse's own
//! listeners; an accepted name is never `localhost` and keeps the URL's
//! port. The same invariants are replayed on stable by
//! `crates/egress/tests/outbound_corpus.rs`.
//!
//! The fuzz target (`fuzz/fuzz_targets/outbound_target.rs`) and the stable
//! regression test replaying `fuzz/corpus/outbound_target/` both call [`run`].

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

/// The target's check on one input: panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let policy = policy();
    for origin in [Origin::User, Origin::Operator] {
        let Ok((url, checked)) = check_url(input, origin, &policy) else {
            continue;
        };
        let port = url.port_or_known_default().unwrap();
        match checked {
            Checked::Connect(addr) => {
                let host = url.host_str().unwrap().trim_matches(['[', ']']);
                let ip: IpAddr = host.parse().unwrap();
                assert_eq!(ip.to_canonical(), addr.ip());
                assert_eq!(addr.port(), port);
                assert_eq!(addr.ip().to_canonical(), addr.ip());
                assert_eq!(check_address(addr.ip(), &policy.egress), Ok(addr.ip()));
                assert!(!is_own_listener(addr, &policy.own_listeners));
            }
            Checked::Resolve { name, port: p } => {
                assert!(!name.is_localhost());
                assert_eq!(p, port);
                assert_ne!(
                    p, 8271,
                    "every address on a wildcard listener's port is refused"
                );
            }
        }
        if origin == Origin::User {
            assert!(policy.egress.allowed_ports.contains(&port));
        }
    }
}
