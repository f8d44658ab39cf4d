//! Property tests: internal IPv4 addresses stay refused in every spelling
//! we can generate, the parser never panics, and what passes is canonical.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::{verdict, Verdict};
use crate::egress::{check_address, check_target, parse_target, Checked, EgressPolicy, Host};

/// Internal IPv4 blocks, written out independently of `ranges.rs`.
const INTERNAL_V4: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0/8
    (0x0a00_0000, 8),  // 10/8
    (0x6440_0000, 10), // 100.64/10
    (0x7f00_0000, 8),  // 127/8
    (0xa9fe_0000, 16), // 169.254/16
    (0xac10_0000, 12), // 172.16/12
    (0xc000_0000, 24), // 192.0.0/24
    (0xc000_0200, 24), // 192.0.2/24
    (0xc0a8_0000, 16), // 192.168/16
    (0xc612_0000, 15), // 198.18/15
    (0xc633_6400, 24), // 198.51.100/24
    (0xcb00_7100, 24), // 203.0.113/24
    (0xe000_0000, 4),  // 224/4
    (0xf000_0000, 4),  // 240/4 incl. broadcast
];

fn internal_v4() -> impl Strategy<Value = Ipv4Addr> {
    (0..INTERNAL_V4.len(), any::<u32>()).prop_map(|(i, host)| {
        let (net, len) = INTERNAL_V4[i];
        let host_mask = u32::MAX >> len;
        Ipv4Addr::from(net | (host & host_mask))
    })
}

/// One number in one of `inet_aton`'s bases, with extra leading zeros.
fn num(v: u32, base: u8, zeros: usize, upper: bool) -> String {
    let pad = "0".repeat(zeros);
    match base % 3 {
        0 => v.to_string(), // decimal cannot take leading zeros
        1 => format!("0{pad}{v:o}"),
        _ if upper => format!("0X{pad}{v:X}"),
        _ => format!("0x{pad}{v:x}"),
    }
}

/// How the IPv4 address is written.
#[derive(Debug, Clone)]
struct Style {
    form: u8,
    bases: [u8; 4],
    zeros: usize,
    upper: bool,
    trailing_dot: bool,
    port: Option<u16>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        0u8..14,
        any::<[u8; 4]>(),
        0usize..4,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![80u16, 443])),
    )
        .prop_map(|(form, bases, zeros, upper, trailing_dot, port)| Style {
            form,
            bases,
            zeros,
            upper,
            trailing_dot,
            port,
        })
}

fn spell(addr: Ipv4Addr, s: &Style) -> String {
    let v = u32::from(addr);
    let [a, b, c, d] = addr.octets().map(u32::from);
    let (hi, lo) = (v >> 16, v & 0xffff);
    let n = |v: u32, i: usize| num(v, s.bases[i], s.zeros, s.upper);
    let dot = if s.trailing_dot { "." } else { "" };
    let host = match s.form {
        0 => format!("{}{dot}", n(v, 0)),
        1 => format!("{}.{}{dot}", n(a, 0), n(v & 0xff_ffff, 1)),
        2 => format!("{}.{}.{}{dot}", n(a, 0), n(b, 1), n(v & 0xffff, 2)),
        3 => format!("{}.{}.{}.{}{dot}", n(a, 0), n(b, 1), n(c, 2), n(d, 3)),
        4 => format!("[::ffff:{addr}]"),
        5 => format!("[::ffff:{hi:x}:{lo:x}]"),
        6 => format!("[0:0:0:0:0:FFFF:{hi:04X}:{lo:04X}]"),
        7 => format!("[0000:0000:0000:0000:0000:ffff:{addr}]"),
        8 => format!("[64:ff9b::{hi:x}:{lo:x}]"),
        9 => format!("[64:ff9b::{addr}]"),
        10 => format!("[0064:FF9B:0:0:0:0:{hi:X}:{lo:X}]"),
        11 => format!("[2002:{hi:x}:{lo:x}:{:x}::{:x}]", s.bases[0], s.bases[1]),
        12 => format!("[::{addr}]"),
        _ => format!("[64:ff9b:1::{hi:x}:{lo:x}]"),
    };
    match s.port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn internal_v4_is_refused_in_every_spelling(addr in internal_v4(), s in style()) {
        let input = spell(addr, &s);
        prop_assert_eq!(verdict(&input, &EgressPolicy::default()), Verdict::Ssrf, "{}", input);
    }

    #[test]
    fn every_legacy_spelling_reads_as_the_same_address(v in any::<u32>(), s in style()) {
        let addr = Ipv4Addr::from(v);
        let s = Style { form: s.form % 4, ..s };
        let input = spell(addr, &s);
        let target = parse_target(&input, 443);
        prop_assert_eq!(
            target.as_ref().map(|t| t.host().clone()),
            Ok(Host::Ip(IpAddr::V4(addr))),
            "{}", input
        );
    }

    #[test]
    fn a_v4_address_and_its_v6_forms_get_one_verdict(v in any::<u32>()) {
        let p = EgressPolicy::default();
        let addr = Ipv4Addr::from(v);
        let plain = check_address(IpAddr::V4(addr), &p).is_ok();
        let mapped = check_address(IpAddr::V6(addr.to_ipv6_mapped()), &p);
        prop_assert_eq!(mapped.is_ok(), plain);
        if let Ok(ip) = mapped {
            prop_assert_eq!(ip, IpAddr::V4(addr));
        }
        let [a, b] = [(v >> 16) as u16, v as u16];
        let nat64 = IpAddr::V6(std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, a, b));
        let six_to_four = IpAddr::V6(std::net::Ipv6Addr::new(0x2002, a, b, 0, 0, 0, 0, 1));
        prop_assert_eq!(check_address(nat64, &p).is_ok(), plain);
        prop_assert_eq!(check_address(six_to_four, &p).is_ok(), plain);
    }

    #[test]
    fn checked_addresses_are_canonical_and_stable(bits in any::<u128>(), mapped in any::<u32>()) {
        let p = EgressPolicy::default();
        for addr in [
            IpAddr::V6(bits.into()),
            IpAddr::V6(Ipv4Addr::from(mapped).to_ipv6_mapped()),
            IpAddr::V4(mapped.into()),
        ] {
            if let Ok(ip) = check_address(addr, &p) {
                prop_assert_eq!(ip.to_canonical(), ip);
                prop_assert_eq!(check_address(ip, &p), Ok(ip));
                let literal = match ip {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                prop_assert_eq!(verdict(&literal, &p), Verdict::Allow(format!("{literal}:443")));
            }
        }
    }

    #[test]
    fn parser_never_panics(input in any::<String>(), port in any::<u16>()) {
        if let Ok(t) = parse_target(&input, port) {
            let _ = check_target(&t, &EgressPolicy::default());
        }
    }

    #[test]
    fn what_passes_is_canonical(input in "[0-9a-fA-FxXlocahst.:%\\[\\]]{0,28}") {
        let p = EgressPolicy::default();
        let Ok(t) = parse_target(&input, 443) else { return Ok(()) };
        // The normal form is a fixed point.
        let again = parse_target(&t.to_string(), 1);
        prop_assert_eq!(again.as_ref(), Ok(&t), "{}", input);
        if let Host::Name(name) = t.host() {
            let s = name.as_str();
            prop_assert!(!s.ends_with('.') && s == s.to_ascii_lowercase(), "{}", s);
        }
        match check_target(&t, &p) {
            Ok(Checked::Connect(sa)) => {
                prop_assert_eq!(sa.ip().to_canonical(), sa.ip());
                prop_assert_eq!(check_address(sa.ip(), &p), Ok(sa.ip()));
                prop_assert_eq!(verdict(&sa.to_string(), &p), Verdict::Allow(sa.to_string()));
            }
            Ok(Checked::Resolve { name, port }) => {
                prop_assert!(!name.is_localhost());
                prop_assert_eq!(port, t.port());
            }
            Err(_) => {}
        }
    }
}
