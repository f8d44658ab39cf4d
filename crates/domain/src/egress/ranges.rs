//! Every address range the egress proxy refuses, in one table.
//!
//! The question this module answers is "may a connection go to this
//! address?", and the answer is no for anything that is not a public
//! unicast host: loopback, private, link-local (cloud metadata included),
//! and every special-purpose block of the IANA registries. IPv6 is handled
//! as an allow-by-exception: everything outside global unicast `2000::/3`
//! is refused unless a more specific row says otherwise (the embeddings),
//! so a new or forgotten special block fails closed.
//!
//! Rows are matched by longest prefix, so their order does not matter. A
//! row may refuse, unwrap an embedded IPv4 address (classified again, with
//! the IPv4 rows), or both (refuse unless exempted, then look inside).
//! The operator's `egress.allow_private_cidrs` exempts an address from a
//! refusing row when a listed block contains it, except for the rows whose
//! addresses are never a unicast destination (unspecified, multicast,
//! broadcast).

use std::fmt;
use std::net::IpAddr;

use super::cidr::Cidr;
use super::ipv6_embedded::Embedding;

/// Why an address was refused. Every variant maps to
/// `X-Gatehouse-Deny: ssrf`; the variant itself is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SsrfReason {
    /// `0.0.0.0/8`: "this network".
    ThisNetwork,
    /// `0.0.0.0`, `::`: reaches the local host on most stacks.
    Unspecified,
    Loopback,
    /// RFC 1918 and IPv6 unique local `fc00::/7`.
    Private,
    /// Carrier-grade NAT `100.64.0.0/10`.
    SharedAddressSpace,
    /// `169.254.0.0/16` (cloud metadata lives here) and `fe80::/10`.
    LinkLocal,
    /// Deprecated IPv6 site-local `fec0::/10`.
    SiteLocal,
    /// `192.0.0.0/24`, `2001::/23`.
    IetfProtocolAssignments,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    Documentation,
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `100::/64`.
    DiscardOnly,
    /// `2001::/32`, refused outright (see `ipv6_embedded.rs`).
    Teredo,
    /// The local-use NAT64 prefix `64:ff9b:1::/48`: a site's own translator.
    LocalUseTranslation,
    /// Reserved or unassigned: `240.0.0.0/4`, IPv6 outside `2000::/3`.
    Reserved,
}

impl SsrfReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThisNetwork => "this_network",
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared_address_space",
            Self::LinkLocal => "link_local",
            Self::SiteLocal => "site_local",
            Self::IetfProtocolAssignments => "ietf_protocol_assignments",
            Self::Benchmarking => "benchmarking",
            Self::Documentation => "documentation",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::DiscardOnly => "discard_only",
            Self::Teredo => "teredo",
            Self::LocalUseTranslation => "local_use_translation",
            Self::Reserved => "reserved",
        }
    }

    /// Whether `egress.allow_private_cidrs` may let such an address through.
    /// No listed block makes these a unicast destination.
    fn exemptable(self) -> bool {
        match self {
            Self::Unspecified | Self::Multicast | Self::Broadcast => false,
            Self::ThisNetwork
            | Self::Loopback
            | Self::Private
            | Self::SharedAddressSpace
            | Self::LinkLocal
            | Self::SiteLocal
            | Self::IetfProtocolAssignments
            | Self::Benchmarking
            | Self::Documentation
            | Self::DiscardOnly
            | Self::Teredo
            | Self::LocalUseTranslation
            | Self::Reserved => true,
        }
    }
}

impl fmt::Display for SsrfReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row: a block, and what to do with addresses in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) block: Cidr,
    /// Refuse (unless exempted) for this reason.
    pub(crate) refuse: Option<SsrfReason>,
    /// Then classify the IPv4 address embedded this way.
    pub(crate) unwrap: Option<Embedding>,
}

const fn deny(block: Cidr, reason: SsrfReason) -> Row {
    Row {
        block,
        refuse: Some(reason),
        unwrap: None,
    }
}

const fn unwrap(block: Cidr, embedding: Embedding) -> Row {
    Row {
        block,
        refuse: None,
        unwrap: Some(embedding),
    }
}

const fn deny_then_unwrap(block: Cidr, reason: SsrfReason, embedding: Embedding) -> Row {
    Row {
        block,
        refuse: Some(reason),
        unwrap: Some(embedding),
    }
}

use Cidr as C;
use Embedding as E;
use SsrfReason as R;

/// The refused ranges. Longest prefix wins.
#[rustfmt::skip]
pub(crate) const TABLE: &[Row] = &[
    // ---- IPv4 ----------------------------------------------------------
    deny(C::v4(0, 0, 0, 0, 8),         R::ThisNetwork),              // RFC 791
    deny(C::v4(0, 0, 0, 0, 32),        R::Unspecified),
    deny(C::v4(10, 0, 0, 0, 8),        R::Private),                  // RFC 1918
    deny(C::v4(100, 64, 0, 0, 10),     R::SharedAddressSpace),       // RFC 6598 (CGNAT)
    deny(C::v4(127, 0, 0, 0, 8),       R::Loopback),
    deny(C::v4(169, 254, 0, 0, 16),    R::LinkLocal),                // incl. 169.254.169.254
    deny(C::v4(172, 16, 0, 0, 12),     R::Private),                  // RFC 1918
    deny(C::v4(192, 0, 0, 0, 24),      R::IetfProtocolAssignments),  // RFC 6890
    deny(C::v4(192, 0, 2, 0, 24),      R::Documentation),            // TEST-NET-1
    deny(C::v4(192, 88, 99, 0, 24),    R::Reserved),                 // ex-6to4 relay anycast, RFC 7526
    deny(C::v4(192, 168, 0, 0, 16),    R::Private),                  // RFC 1918
    deny(C::v4(198, 18, 0, 0, 15),     R::Benchmarking),             // RFC 2544
    deny(C::v4(198, 51, 100, 0, 24),   R::Documentation),            // TEST-NET-2
    deny(C::v4(203, 0, 113, 0, 24),    R::Documentation),            // TEST-NET-3
    deny(C::v4(224, 0, 0, 0, 4),       R::Multicast),
    deny(C::v4(240, 0, 0, 0, 4),       R::Reserved),                 // class E
    deny(C::v4(255, 255, 255, 255, 32), R::Broadcast),
    // ---- IPv6: spellings and translations of IPv4 ---------------------
    deny(C::v6([0, 0, 0, 0, 0, 0, 0, 0], 128),          R::Unspecified),
    deny(C::v6([0, 0, 0, 0, 0, 0, 0, 1], 128),          R::Loopback),
    unwrap(C::v6([0, 0, 0, 0, 0, 0, 0, 0], 96),         E::Compatible),    // ::a.b.c.d
    unwrap(C::v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),    E::Mapped),        // ::ffff:a.b.c.d
    unwrap(C::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), E::Nat64),         // RFC 6052
    deny_then_unwrap(C::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
                     R::LocalUseTranslation, E::Nat64LocalUse),             // RFC 8215
    unwrap(C::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),    E::SixToFour),     // RFC 3056
    // ---- IPv6: special blocks inside global unicast 2000::/3 ----------
    deny(C::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),      R::IetfProtocolAssignments),
    deny_then_unwrap(C::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
                     R::Teredo, E::TeredoClient),                           // RFC 4380
    deny(C::v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),      R::Benchmarking),  // RFC 5180
    deny(C::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),  R::Documentation), // RFC 3849
    deny(C::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),      R::Documentation), // RFC 9637
    // ---- IPv6: outside global unicast ----------------------------------
    deny(C::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),       R::DiscardOnly),   // RFC 6666
    deny(C::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),       R::Private),       // unique local
    deny(C::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),      R::LinkLocal),
    deny(C::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),      R::SiteLocal),
    deny(C::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),       R::Multicast),
    deny(C::v6([0, 0, 0, 0, 0, 0, 0, 0], 3),            R::Reserved),      // 0000-1fff
    deny(C::v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 2),       R::Reserved),      // 4000-7fff
    deny(C::v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 1),       R::Reserved),      // 8000-ffff
];

/// The most specific row containing `addr`, if any.
fn lookup(addr: IpAddr) -> Option<&'static Row> {
    TABLE
        .iter()
        .filter(|row| row.block.contains(addr))
        .max_by_key(|row| row.block.prefix_len())
}

/// Classifies `addr` as written (an IPv4-mapped address goes through the
/// mapped row). `Err` carries the reason and the address that matched the
/// refusing row, which is the embedded IPv4 address when that is what hit.
pub(crate) fn classify(addr: IpAddr, exempt: &[Cidr]) -> Result<(), (SsrfReason, IpAddr)> {
    let Some(row) = lookup(addr) else {
        return Ok(());
    };
    if let Some(reason) = row.refuse {
        let exempted = reason.exemptable() && exempt.iter().any(|c| c.contains(addr));
        if !exempted {
            return Err((reason, addr));
        }
    }
    match (row.unwrap, addr) {
        // IPv4 rows never unwrap, so this recursion is one level deep.
        (Some(embedding), IpAddr::V6(v6)) => classify(IpAddr::V4(embedding.extract(v6)), exempt),
        (Some(_), IpAddr::V4(_)) | (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_a_valid_block_and_unique() {
        for row in TABLE {
            let b = row.block;
            assert_eq!(b.check(), Ok(()), "{b}");
            assert!(row.refuse.is_some() || row.unwrap.is_some(), "{b}");
            assert!(row.unwrap.is_none() || b.network().is_ipv6(), "{b}");
            let same = TABLE.iter().filter(|r| r.block == b).count();
            assert_eq!(same, 1, "{b} listed twice");
        }
    }

    #[test]
    fn reasons_come_from_the_most_specific_row() {
        for (addr, reason) in [
            ("0.0.0.0", R::Unspecified),
            ("0.1.2.3", R::ThisNetwork),
            ("255.255.255.255", R::Broadcast),
            ("255.255.255.254", R::Reserved),
            ("::", R::Unspecified),
            ("::1", R::Loopback),
            ("::2", R::ThisNetwork),
            ("2001::1", R::Teredo),
            ("2001:2::1", R::Benchmarking),
            ("2001:1::1", R::IetfProtocolAssignments),
            ("fe80::1", R::LinkLocal),
            ("ff02::1", R::Multicast),
            ("5f00::1", R::Reserved),
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(classify(ip, &[]).map_err(|e| e.0), Err(reason), "{addr}");
        }
    }

    /// The log names are part of the audit format: each reason has its
    /// own, and `Display` writes exactly it.
    #[test]
    fn every_reason_has_its_own_log_name() {
        let all = [
            (R::ThisNetwork, "this_network"),
            (R::Unspecified, "unspecified"),
            (R::Loopback, "loopback"),
            (R::Private, "private"),
            (R::SharedAddressSpace, "shared_address_space"),
            (R::LinkLocal, "link_local"),
            (R::SiteLocal, "site_local"),
            (R::IetfProtocolAssignments, "ietf_protocol_assignments"),
            (R::Benchmarking, "benchmarking"),
            (R::Documentation, "documentation"),
            (R::Multicast, "multicast"),
            (R::Broadcast, "broadcast"),
            (R::DiscardOnly, "discard_only"),
            (R::Teredo, "teredo"),
            (R::LocalUseTranslation, "local_use_translation"),
            (R::Reserved, "reserved"),
        ];
        for (reason, name) in all {
            assert_eq!(reason.as_str(), name);
            assert_eq!(reason.to_string(), name);
        }
    }

    #[test]
    fn global_unicast_passes() {
        for addr in [
            "8.8.8.8",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(classify(addr.parse().unwrap(), &[]), Ok(()), "{addr}");
        }
    }
}
