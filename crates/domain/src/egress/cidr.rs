//! A minimal CIDR block: `a.b.c.d/n` or `v6/n`, and membership.
//!
//! Used twice: for the table of refused ranges, and for the operator's
//! `egress.allow_private_cidrs`. Parsing is strict on purpose (this is an
//! exception to a security rule, so a typo must fail loudly): the address
//! must be in standard notation (no legacy IPv4 forms, no zone id), and a
//! block with host bits set (`10.1.2.3/8`) is refused rather than silently
//! widened. A bare address means a single host (`/32` or `/128`).
//! An IPv4-mapped block (`::ffff:10.0.0.0/104`) is stored as the IPv4 block
//! it denotes, so it matches both spellings of those addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

/// An IP network: an address with all host bits zero and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CidrError {
    #[error("not an IP address in standard notation")]
    BadAddress,
    #[error("prefix length is not a number")]
    BadPrefix,
    #[error("prefix length {0} is longer than the address")]
    PrefixTooLong(u8),
    #[error("host bits are set; write the network address")]
    HostBitsSet,
}

fn mask_v4(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn mask_v6(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0)
}

impl Cidr {
    /// Table constructor for IPv4 blocks written in this crate; a test
    /// checks every such block with `check`.
    pub(crate) const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u8) -> Self {
        Self {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix_len,
        }
    }

    /// Table constructor for IPv6 blocks written in this crate.
    pub(crate) const fn v6(segments: [u16; 8], prefix_len: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix_len,
        }
    }

    /// A block from a network address and a prefix length.
    pub fn new(network: IpAddr, prefix_len: u8) -> Result<Self, CidrError> {
        let (network, prefix_len) = match network {
            IpAddr::V6(v6) if prefix_len >= 96 && v6.to_ipv4_mapped().is_some() => {
                (network.to_canonical(), prefix_len - 96)
            }
            _ => (network, prefix_len),
        };
        let cidr = Self {
            network,
            prefix_len,
        };
        cidr.check()?;
        Ok(cidr)
    }

    /// Prefix no longer than the address, no host bits set.
    pub(crate) fn check(&self) -> Result<(), CidrError> {
        let prefix_len = self.prefix_len;
        let host_bits = match self.network {
            IpAddr::V4(v4) => {
                if prefix_len > 32 {
                    return Err(CidrError::PrefixTooLong(prefix_len));
                }
                u32::from(v4) & !mask_v4(prefix_len) != 0
            }
            IpAddr::V6(v6) => {
                if prefix_len > 128 {
                    return Err(CidrError::PrefixTooLong(prefix_len));
                }
                u128::from(v6) & !mask_v6(prefix_len) != 0
            }
        };
        if host_bits {
            return Err(CidrError::HostBitsSet);
        }
        Ok(())
    }

    /// Parses `a.b.c.d/n`, `v6/n`, or a bare address (one host).
    pub fn parse(s: &str) -> Result<Self, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| CidrError::BadAddress)?;
        let prefix_len = match prefix {
            None if network.is_ipv4() => 32,
            None => 128,
            Some(p) if (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| CidrError::BadPrefix)?
            }
            Some(_) => return Err(CidrError::BadPrefix),
        };
        Self::new(network, prefix_len)
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` lies in this block. An IPv4-mapped IPv6 address is
    /// compared as the IPv4 address it is; other embeddings (NAT64, 6to4)
    /// are the classifier's business, not this type's.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = mask_v4(self.prefix_len);
                u32::from(a) & mask == u32::from(net) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = mask_v6(self.prefix_len);
                u128::from(a) & mask == u128::from(net) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_matches_v4() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.0")));
        assert!(!c.contains(ip("::a01:203")));
        assert_eq!(c.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn parses_and_matches_v6() {
        let c = Cidr::parse("fd00:ec2::/32").unwrap();
        assert!(c.contains(ip("fd00:ec2::254")));
        assert!(!c.contains(ip("fd00:ec3::254")));
        assert!(!c.contains(ip("10.0.0.1")));
    }

    #[test]
    fn bare_address_is_one_host_and_zero_prefix_is_everything() {
        let one = Cidr::parse("127.0.0.2").unwrap();
        assert_eq!(one.prefix_len(), 32);
        assert!(one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("127.0.0.3")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("255.255.255.255")));
        let all6 = Cidr::parse("::/0").unwrap();
        assert!(all6.contains(ip("ffff::1")));
        assert_eq!(Cidr::parse("::1").unwrap().prefix_len(), 128);
    }

    #[test]
    fn mapped_block_becomes_v4() {
        let c = Cidr::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(c, Cidr::parse("10.0.0.0/8").unwrap());
        assert!(c.contains(ip("10.9.9.9")));
    }

    #[test]
    fn refuses_sloppy_blocks() {
        for (s, e) in [
            ("10.1.2.3/8", CidrError::HostBitsSet),
            ("10.0.0.0/33", CidrError::PrefixTooLong(33)),
            ("::/129", CidrError::PrefixTooLong(129)),
            ("10.0.0.0/", CidrError::BadPrefix),
            ("10.0.0.0/+8", CidrError::BadPrefix),
            ("10.0.0.0/0008", CidrError::BadPrefix),
            ("10.0.0.0/256", CidrError::BadPrefix),
            ("010.0.0.0/8", CidrError::BadAddress),
            ("10/8", CidrError::BadAddress),
            ("fe80::%eth0/64", CidrError::BadAddress),
            ("", CidrError::BadAddress),
        ] {
            assert_eq!(Cidr::parse(s), Err(e), "{s}");
        }
    }
}
