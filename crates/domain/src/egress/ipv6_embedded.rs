//! IPv6 addresses that carry an IPv4 address, and where its bits sit.
//!
//! Several IPv6 forms are only another road to an IPv4 host: the kernel
//! (mapped), a tunnel (6to4, Teredo) or a translator (NAT64) delivers the
//! packet to the embedded IPv4 address. An IPv6 check alone would let
//! `[::ffff:127.0.0.1]` or `[64:ff9b::a9fe:a9fe]` through, so the classifier
//! also classifies the embedded address. Which prefix carries which
//! embedding is written in the range table (`ranges.rs`); this module only
//! knows how to pull the 32 bits out.
//!
//! Teredo (`2001::/32`) is refused outright: it is obsolete, every packet
//! goes through a third-party relay, and the address carries two IPv4
//! addresses (server and obfuscated client). Only if an operator exempts
//! the prefix do we look inside, and then the client address (the real
//! destination, stored bit-inverted in the last 32 bits) is classified.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Where an IPv6 form keeps its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Embedding {
    /// `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2): the last 32 bits.
    Mapped,
    /// `::a.b.c.d`, deprecated (RFC 4291 §2.5.5.1): the last 32 bits.
    Compatible,
    /// `64:ff9b::a.b.c.d` (RFC 6052 well-known prefix): the last 32 bits.
    Nat64,
    /// `64:ff9b:1::/48` (RFC 8215). The prefix length a site chooses inside
    /// it is unknown to us; the common `/96` layout (last 32 bits) is read.
    Nat64LocalUse,
    /// `2002:AABB:CCDD::/48` (RFC 3056): bits 16 to 48.
    SixToFour,
    /// `2001:0:SSSS:SSSS:flags:port:CCCC:CCCC` (RFC 4380): the client
    /// address is the last 32 bits, inverted.
    TeredoClient,
}

impl Embedding {
    /// The IPv4 address `addr` carries in this embedding.
    pub(crate) fn extract(self, addr: Ipv6Addr) -> Ipv4Addr {
        let bits = u128::from(addr);
        // Truncating casts keep exactly the low 32 bits of the shifted value.
        let low32 = bits as u32;
        match self {
            Self::Mapped | Self::Compatible | Self::Nat64 | Self::Nat64LocalUse => {
                Ipv4Addr::from(low32)
            }
            Self::SixToFour => Ipv4Addr::from((bits >> 80) as u32),
            Self::TeredoClient => Ipv4Addr::from(!low32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn pulls_out_the_embedded_address() {
        for (e, addr, want) in [
            (Embedding::Mapped, "::ffff:7f00:1", "127.0.0.1"),
            (Embedding::Compatible, "::127.0.0.1", "127.0.0.1"),
            (Embedding::Nat64, "64:ff9b::a9fe:a9fe", "169.254.169.254"),
            (Embedding::Nat64LocalUse, "64:ff9b:1::a00:1", "10.0.0.1"),
            (Embedding::SixToFour, "2002:a9fe:a9fe::", "169.254.169.254"),
            (Embedding::SixToFour, "2002:c000:204:1:2:3:4:5", "192.0.2.4"),
            (
                Embedding::TeredoClient,
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "192.0.2.45",
            ),
        ] {
            assert_eq!(e.extract(v6(addr)), v4(want), "{addr}");
        }
    }
}
