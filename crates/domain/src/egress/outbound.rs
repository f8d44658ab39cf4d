//! The address rule for Gatehouse's own outbound requests (SPEC §12):
//! webhook forwarding, approval notifications, the judge, upstream
//! drivers, MCP upstreams.
//!
//! The same check as the proxy's (§6), with two differences:
//! - **Gatehouse's own listeners are never a target**, whatever
//!   `egress.allow_private_cidrs` or `egress.static_hosts` let through. A
//!   listener bound to `0.0.0.0` or `[::]` answers on every local address,
//!   and a host cannot tell every address that reaches it, so such a bind
//!   refuses every target on its port.
//! - **Ports** follow who chose the target. A target a user supplied (a
//!   hook's `forward_to`, an MCP server's `url`) must use a port in
//!   `egress.allowed_ports`, like anything an agent reaches. A target the
//!   operator configured (`approvals.notify_url`, `egress.judge.url`, an
//!   upstream's `base_url`) may use any port: the operator chose it, as
//!   they chose the exceptions.
//!
//! Pure: the caller resolves a name once, hands every answer to
//! [`check_outbound_resolved`], and connects only to what it returned.

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::{check_address, check_resolved, Checked, Deny, EgressPolicy, Host, Target};

/// Who chose an outbound target; decides whether the port list applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A user saved it (a hook's `forward_to`): `egress.allowed_ports` applies.
    User,
    /// The operator configured it: any port.
    Operator,
}

/// What the outbound check needs: the operator's egress exceptions and
/// ports, and where Gatehouse itself listens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    pub egress: EgressPolicy,
    /// The bound API and proxy addresses (after binding, so port 0 has
    /// become the real port).
    pub own_listeners: Vec<SocketAddr>,
}

/// Why an outbound target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refused {
    /// An internal address or a `localhost` name (§6).
    #[error("{0}")]
    Ssrf(Deny),
    /// One of Gatehouse's own listeners.
    #[error("{0} is one of Gatehouse's own listeners")]
    OwnListener(SocketAddr),
    /// A user-supplied target on a port outside `egress.allowed_ports`.
    #[error("port {0} is not in egress.allowed_ports")]
    Port(u16),
}

impl Refused {
    /// The reason named in errors and audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Ssrf(_) => "ssrf",
            Self::OwnListener(_) => "own_listener",
            Self::Port(_) => "port",
        }
    }
}

/// Whether a connection to `addr` would reach one of `listeners`.
pub fn is_own_listener(addr: SocketAddr, listeners: &[SocketAddr]) -> bool {
    let ip = addr.ip().to_canonical();
    listeners.iter().any(|l| {
        l.port() == addr.port() && (l.ip().is_unspecified() || l.ip().to_canonical() == ip)
    })
}

fn not_own(addr: SocketAddr, policy: &OutboundPolicy) -> Result<SocketAddr, Refused> {
    if is_own_listener(addr, &policy.own_listeners) {
        Err(Refused::OwnListener(addr))
    } else {
        Ok(addr)
    }
}

/// Checks a parsed outbound target: the port (for user targets), an IP
/// literal's address and listener, the `localhost` rule for a name. A
/// name comes back as [`Checked::Resolve`].
pub fn check_outbound_target(
    target: &Target,
    origin: Origin,
    policy: &OutboundPolicy,
) -> Result<Checked, Refused> {
    let port = target.port();
    // The address first: it is the reason that matters most to a reader.
    let checked = match target.host() {
        Host::Ip(ip) => {
            let ip = check_address(*ip, &policy.egress).map_err(Refused::Ssrf)?;
            Checked::Connect(not_own(SocketAddr::new(ip, port), policy)?)
        }
        Host::Name(name) if name.is_localhost() => return Err(Refused::Ssrf(Deny::LocalhostName)),
        Host::Name(name) => {
            // A wildcard bind answers on every address: no answer to the
            // name could pass, so refuse before resolving.
            if let Some(l) = policy
                .own_listeners
                .iter()
                .find(|l| l.ip().is_unspecified() && l.port() == port)
            {
                return Err(Refused::OwnListener(*l));
            }
            Checked::Resolve {
                name: name.clone(),
                port,
            }
        }
    };
    if origin == Origin::User && !policy.egress.allowed_ports.contains(&port) {
        return Err(Refused::Port(port));
    }
    Ok(checked)
}

/// Checks every address a name resolved to: one refused address refuses
/// the name. On success, the socket addresses to connect to.
pub fn check_outbound_resolved(
    addrs: &[IpAddr],
    port: u16,
    policy: &OutboundPolicy,
) -> Result<Vec<SocketAddr>, Refused> {
    check_resolved(addrs, port, &policy.egress)
        .map_err(Refused::Ssrf)?
        .into_iter()
        .map(|a| not_own(a, policy))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{parse_target, Cidr};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn policy(private: &[&str], listeners: &[&str]) -> OutboundPolicy {
        OutboundPolicy {
            egress: EgressPolicy {
                allow_private_cidrs: private.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
                ..EgressPolicy::default()
            },
            own_listeners: listeners.iter().map(|l| sa(l)).collect(),
        }
    }

    fn check(target: &str, origin: Origin, p: &OutboundPolicy) -> Result<Checked, Refused> {
        check_outbound_target(&parse_target(target, 80).unwrap(), origin, p)
    }

    #[test]
    fn own_listeners_are_refused_even_inside_allowed_private_ranges() {
        let p = policy(&["127.0.0.0/8"], &["127.0.0.1:8270", "127.0.0.1:8271"]);
        for t in [
            "127.0.0.1:8270",
            "[::ffff:127.0.0.1]:8270",
            "2130706433:8271",
        ] {
            assert_eq!(
                check(t, Origin::Operator, &p).map_err(|e| e.reason()),
                Err("own_listener"),
                "{t}"
            );
        }
        assert!(matches!(
            check("127.0.0.1:9000", Origin::Operator, &p),
            Ok(Checked::Connect(_))
        ));
        assert_eq!(
            check_outbound_resolved(&["127.0.0.1".parse().unwrap()], 8270, &p),
            Err(Refused::OwnListener(sa("127.0.0.1:8270")))
        );
    }

    #[test]
    fn a_wildcard_bind_refuses_every_address_on_its_port() {
        let p = policy(&["10.0.0.0/8"], &["0.0.0.0:8270", "[::]:8271"]);
        assert!(is_own_listener(sa("10.1.2.3:8270"), &p.own_listeners));
        assert!(is_own_listener(sa("[2001:db8::1]:8271"), &p.own_listeners));
        assert!(!is_own_listener(sa("10.1.2.3:8272"), &p.own_listeners));
        assert_eq!(
            check("example.com:8271", Origin::Operator, &p).map_err(|e| e.reason()),
            Err("own_listener")
        );
    }

    #[test]
    fn internal_addresses_stay_refused_without_an_exception() {
        let p = policy(&[], &["127.0.0.1:8270"]);
        assert_eq!(
            check("127.0.0.1:8270", Origin::Operator, &p).map_err(|e| e.reason()),
            Err("ssrf")
        );
        assert_eq!(
            check("localhost:80", Origin::Operator, &p).map_err(|e| e.reason()),
            Err("ssrf")
        );
        assert_eq!(
            check_outbound_resolved(
                &[
                    "93.184.216.34".parse().unwrap(),
                    "169.254.169.254".parse().unwrap()
                ],
                443,
                &p
            )
            .map_err(|e| e.reason()),
            Err("ssrf")
        );
    }

    #[test]
    fn ports_bind_user_targets_only() {
        let p = policy(&[], &[]);
        assert_eq!(
            check("example.com:8443", Origin::User, &p),
            Err(Refused::Port(8443))
        );
        assert!(check("example.com:8443", Origin::Operator, &p).is_ok());
        assert!(check("example.com:443", Origin::User, &p).is_ok());
    }
}
