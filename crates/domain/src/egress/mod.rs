//! Egress target checks (SSRF defence). See SPEC §6.
//!
//! Decides, with no I/O, whether the egress proxy may connect to a target.
//! The proxy's steps, each a function here:
//!
//! 1. [`parse_target`] the `CONNECT` authority or `Host`: one normal form
//!    per host (legacy IPv4 forms read as `inet_aton` does, zone ids and
//!    trailing dots dropped, case folded). An error is a `400`.
//! 2. [`check_target`]: port in `egress.allowed_ports`, IP literals checked
//!    right away, `localhost` names refused. A name comes back as
//!    [`Checked::Resolve`].
//! 3. [`host_allowed`] against the job's `allow_hosts`.
//! 4. For a name: resolve it **once**, pass every address to
//!    [`check_resolved`] (one internal answer refuses the whole name, so a
//!    rebinding answer cannot hide behind a public one), and connect to an
//!    address it returned, never to a second lookup.
//!
//! A [`Deny`] becomes `403` with `X-Gatehouse-Deny:` [`Deny::header_value`].
//! The refused ranges are one table in `ranges.rs`; the IPv6 forms that
//! carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are
//! unwrapped and the IPv4 address is classified too.

mod allow_list;
mod cidr;
mod ipv4_legacy;
mod ipv6_embedded;
pub mod judge;
pub mod outbound;
mod ranges;
mod target;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

pub use allow_list::host_allowed;
pub use cidr::{Cidr, CidrError};
pub use ranges::SsrfReason;
pub use target::{parse_target, DnsName, Host, Target, TargetError, MAX_NAME_LEN, MAX_TARGET_LEN};

/// `egress.allowed_ports` when the configuration says nothing.
pub const DEFAULT_ALLOWED_PORTS: [u16; 2] = [80, 443];

/// The operator's egress settings that bear on the target check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// `egress.allow_private_cidrs`: internal blocks let through on
    /// purpose (the proxy logs each at start). Never exempts the
    /// unspecified, multicast or broadcast addresses.
    pub allow_private_cidrs: Vec<Cidr>,
    /// `egress.allowed_ports`.
    pub allowed_ports: Vec<u16>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow_private_cidrs: Vec::new(),
            allowed_ports: DEFAULT_ALLOWED_PORTS.to_vec(),
        }
    }
}

/// Why a well-formed target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Deny {
    /// The address, or the IPv4 address it carries (`matched`), lies in a
    /// refused range.
    #[error("{matched} is refused: {reason}")]
    InternalAddress { reason: SsrfReason, matched: IpAddr },
    /// `localhost` or a name under `.localhost`.
    #[error("localhost names are refused")]
    LocalhostName,
    /// The port is not in `egress.allowed_ports`.
    #[error("port {port} is not allowed")]
    PortNotAllowed { port: u16 },
}

impl Deny {
    /// The `X-Gatehouse-Deny` value for this refusal.
    pub fn header_value(&self) -> &'static str {
        match self {
            Self::InternalAddress { .. } | Self::LocalhostName => "ssrf",
            Self::PortNotAllowed { .. } => "not_allowed",
        }
    }
}

/// A target that passed [`check_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// An IP literal, checked: connect here (canonical address).
    Connect(SocketAddr),
    /// A name: resolve it once and hand the answers to [`check_resolved`].
    Resolve { name: DnsName, port: u16 },
}

/// Checks one address. On success returns its canonical form (an
/// IPv4-mapped address becomes plain IPv4), which is what to connect to.
pub fn check_address(addr: IpAddr, policy: &EgressPolicy) -> Result<IpAddr, Deny> {
    ranges::classify(addr, &policy.allow_private_cidrs)
        .map_err(|(reason, matched)| Deny::InternalAddress { reason, matched })?;
    Ok(addr.to_canonical())
}

/// Checks every address a name resolved to; if any is refused, the name is
/// refused. On success returns the checked socket addresses, in order.
pub fn check_resolved(
    addrs: &[IpAddr],
    port: u16,
    policy: &EgressPolicy,
) -> Result<Vec<SocketAddr>, Deny> {
    addrs
        .iter()
        .map(|&addr| check_address(addr, policy).map(|ip| SocketAddr::new(ip, port)))
        .collect()
}

/// Checks a parsed target: the address of an IP literal, the `localhost`
/// rule for a name, and the port.
pub fn check_target(target: &Target, policy: &EgressPolicy) -> Result<Checked, Deny> {
    let port = target.port();
    let checked = match target.host() {
        Host::Ip(ip) => Checked::Connect(SocketAddr::new(check_address(*ip, policy)?, port)),
        Host::Name(name) if name.is_localhost() => return Err(Deny::LocalhostName),
        Host::Name(name) => Checked::Resolve {
            name: name.clone(),
            port,
        },
    };
    if !policy.allowed_ports.contains(&port) {
        return Err(Deny::PortNotAllowed { port });
    }
    Ok(checked)
}
