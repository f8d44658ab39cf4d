//! Target spellings and their verdicts under the default policy (ports 80
//! and 443, no exceptions, default port 443). Each row is one spelling an
//! attacker or a sloppy client might send.

use super::{verdict, Verdict};
use crate::egress::EgressPolicy;

/// Expected verdict, in table-friendly form.
#[derive(Debug, Clone, Copy)]
enum E {
    /// Allowed; connect to / resolve this `host:port`.
    A(&'static str),
    /// Refused as SSRF.
    S,
    /// Refused: port not in the allowed list.
    N,
    /// Malformed (`400`).
    M,
}

#[rustfmt::skip]
const CORPUS: &[(&str, E)] = &[
    // ---- public names ---------------------------------------------------
    ("api.github.com",                   E::A("api.github.com:443")),
    ("API.GitHub.COM.",                  E::A("api.github.com:443")),
    ("api.github.com:80",                E::A("api.github.com:80")),
    ("api.github.com.:443",              E::A("api.github.com:443")),
    ("xn--bcher-kva.example",            E::A("xn--bcher-kva.example:443")),
    ("my_bucket.s3.amazonaws.com",       E::A("my_bucket.s3.amazonaws.com:443")),
    ("a-b.example.com",                  E::A("a-b.example.com:443")),
    ("1password.com",                    E::A("1password.com:443")),
    ("localhost.example.com",            E::A("localhost.example.com:443")),
    ("notlocalhost",                     E::A("notlocalhost:443")),
    ("0x7f.1.example",                   E::A("0x7f.1.example:443")),
    // ---- public IPv4, every spelling ------------------------------------
    ("8.8.8.8",                          E::A("8.8.8.8:443")),
    ("8.8.8.8:80",                       E::A("8.8.8.8:80")),
    ("1.1.1.1",                          E::A("1.1.1.1:443")),
    ("134744072",                        E::A("8.8.8.8:443")),
    ("0x08080808",                       E::A("8.8.8.8:443")),
    ("010.010.010.010",                  E::A("8.8.8.8:443")),
    ("8.8.2056",                         E::A("8.8.8.8:443")),
    ("8.526344",                         E::A("8.8.8.8:443")),
    ("8.8.8.8.",                         E::A("8.8.8.8:443")),
    ("192.169.0.1",                      E::A("192.169.0.1:443")),
    ("172.15.255.255",                   E::A("172.15.255.255:443")),
    ("172.32.0.1",                       E::A("172.32.0.1:443")),
    ("100.63.255.255",                   E::A("100.63.255.255:443")),
    ("100.128.0.1",                      E::A("100.128.0.1:443")),
    ("198.20.0.1",                       E::A("198.20.0.1:443")),
    ("11.0.0.1",                         E::A("11.0.0.1:443")),
    ("223.255.255.255",                  E::A("223.255.255.255:443")),
    // ---- public IPv6 and IPv6 forms of public IPv4 ----------------------
    ("[2606:4700::1111]:443",            E::A("[2606:4700::1111]:443")),
    ("[2606:4700:4700::1111]",           E::A("[2606:4700:4700::1111]:443")),
    ("[2001:4860:4860:0:0:0:0:8888]:80", E::A("[2001:4860:4860::8888]:80")),
    ("[::ffff:8.8.8.8]",                 E::A("8.8.8.8:443")),
    ("[::FFFF:808:808]",                 E::A("8.8.8.8:443")),
    ("[64:ff9b::808:808]",               E::A("[64:ff9b::808:808]:443")),
    ("[64:ff9b::8.8.8.8]",               E::A("[64:ff9b::808:808]:443")),
    ("[2002:808:808::1]",                E::A("[2002:808:808::1]:443")),
    ("[::8.8.8.8]",                      E::A("[::808:808]:443")),
    // ---- loopback in every spelling -------------------------------------
    ("127.0.0.1",                        E::S),
    ("127.0.0.1:80",                     E::S),
    ("127.0.0.1.",                       E::S),
    ("127.1",                            E::S),
    ("127.0.1",                          E::S),
    ("0x7f.1",                           E::S),
    ("0X7F.1",                           E::S),
    ("0177.0.0.1",                       E::S),
    ("0177.0x0.0.01",                    E::S),
    ("2130706433",                       E::S),
    ("0x7f000001",                       E::S),
    ("017700000001",                     E::S),
    ("127.255.255.254",                  E::S),
    ("[::1]",                            E::S),
    ("[::1]:443",                        E::S),
    ("[0:0:0:0:0:0:0:1]",                E::S),
    ("[0000:0000:0000:0000:0000:0000:0000:0001]", E::S),
    ("[::ffff:127.0.0.1]",               E::S),
    ("[::ffff:7f00:1]",                  E::S),
    ("[::FFFF:7F00:0001]",               E::S),
    ("[0:0:0:0:0:ffff:127.0.0.1]",       E::S),
    ("[::127.0.0.1]",                    E::S),
    ("[::7f00:1]",                       E::S),
    ("[64:ff9b::127.0.0.1]",             E::S),
    ("[64:ff9b::7f00:1]",                E::S),
    ("[2002:7f00:1::1]",                 E::S),
    // ---- unspecified / this network -------------------------------------
    ("0",                                E::S),
    ("00",                               E::S),
    ("0x0",                              E::S),
    ("0.0.0.0",                          E::S),
    ("0.1.2.3",                          E::S),
    ("[::]",                             E::S),
    ("[::ffff:0.0.0.0]",                 E::S),
    ("[::2]",                            E::S),
    // ---- private, CGNAT ---------------------------------------------------
    ("10.0.0.1",                         E::S),
    ("10.255.255.255",                   E::S),
    ("012.0.0.1",                        E::S),
    ("0xa.0.0.1",                        E::S),
    ("167772161",                        E::S),
    ("172.16.0.1",                       E::S),
    ("172.31.255.255",                   E::S),
    ("192.168.1.1",                      E::S),
    ("3232235777",                       E::S),
    ("0xc0.0xa8.1.1",                    E::S),
    ("100.64.0.1",                       E::S),
    ("100.127.255.255",                  E::S),
    ("[2002:0a00:0001::]",               E::S),
    ("[fc00::1]",                        E::S),
    ("[fd00:ec2::254]",                  E::S),
    // ---- link-local and cloud metadata ----------------------------------
    ("169.254.169.254",                  E::S),
    ("169.254.169.254:80",               E::S),
    ("0xa9fea9fe",                       E::S),
    ("2852039166",                       E::S),
    ("0251.0376.0251.0376",              E::S),
    ("169.254.43518",                    E::S),
    ("[::ffff:a9fe:a9fe]",               E::S),
    ("[0:0:0:0:0:ffff:169.254.169.254]", E::S),
    ("[64:ff9b::a9fe:a9fe]",             E::S),
    ("[64:ff9b::169.254.169.254]",       E::S),
    ("[0064:FF9B:0000:0000:0000:0000:A9FE:A9FE]", E::S),
    ("[64:ff9b:1::a9fe:a9fe]",           E::S),
    ("[2002:a9fe:a9fe::]",               E::S),
    ("[::a9fe:a9fe]",                    E::S),
    ("[fe80::1]",                        E::S),
    ("[fe80::1%25eth0]",                 E::S),
    ("[fe80::1%eth0]:443",               E::S),
    ("[FE80::A9FE:A9FE%en0]",            E::S),
    // ---- other special blocks -------------------------------------------
    ("198.18.0.1",                       E::S),
    ("198.19.255.255",                   E::S),
    ("192.0.2.1",                        E::S),
    ("198.51.100.7",                     E::S),
    ("203.0.113.9",                      E::S),
    ("192.0.0.170",                      E::S),
    ("192.88.99.1",                      E::S),
    ("224.0.0.1",                        E::S),
    ("239.255.255.250",                  E::S),
    ("240.0.0.1",                        E::S),
    ("255.255.255.255",                  E::S),
    ("4294967295",                       E::S),
    ("0xffffffff",                       E::S),
    ("[fec0::1]",                        E::S),
    ("[ff02::1]",                        E::S),
    ("[100::1]",                         E::S),
    ("[2001:db8::1]",                    E::S),
    ("[3fff::1]",                        E::S),
    ("[2001:2::1]",                      E::S),
    ("[2001::1]",                        E::S),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", E::S),
    ("[64:ff9b:1::808:808]",             E::S),
    ("[64:ff9b:0:1::1]",                 E::S),
    ("[::ffff:0:808:808]",               E::S),
    ("[4000::1]",                        E::S),
    ("[5f00::1]",                        E::S),
    // ---- localhost names --------------------------------------------------
    ("localhost",                        E::S),
    ("localhost:80",                     E::S),
    ("LOCALHOST.",                       E::S),
    ("LocalHost",                        E::S),
    ("foo.localhost",                    E::S),
    ("a.b.LOCALHOST.",                   E::S),
    // ---- ports ------------------------------------------------------------
    ("api.github.com:22",                E::N),
    ("8.8.8.8:8080",                     E::N),
    ("[2606:4700::1111]:8443",           E::N),
    ("127.0.0.1:22",                     E::S),
    ("api.github.com:0",                 E::M),
    ("api.github.com:65536",             E::M),
    ("127.0.0.1:0",                      E::M),
    ("127.0.0.1:65536",                  E::M),
    ("[::1]:0",                          E::M),
    ("api.github.com:",                  E::M),
    ("api.github.com:https",             E::M),
    ("api.github.com:-1",                E::M),
    // ---- malformed literals -----------------------------------------------
    ("1.2.3.4.5",                        E::M),
    ("256.1.1.1",                        E::M),
    ("1.2.3.256",                        E::M),
    ("1.2.65536",                        E::M),
    ("1.16777216",                       E::M),
    ("0x100000000",                      E::M),
    ("4294967296",                       E::M),
    ("08.0.0.1",                         E::M),
    ("0x",                               E::M),
    ("0x.1",                             E::M),
    ("0x7g.1",                           E::M),
    ("1..1",                             E::M),
    ("127.0.0.1..",                      E::M),
    ("example.1com",                     E::M),
    ("foo.123",                          E::M),
    ("127.0.0.1 ",                       E::M),
    ("::1",                              E::M),
    ("::ffff:127.0.0.1",                 E::M),
    ("fe80::1%eth0",                     E::M),
    ("[::1",                             E::M),
    ("[::1]x",                           E::M),
    ("[::1]:",                           E::M),
    ("[127.0.0.1]",                      E::M),
    ("[fe80::1%]",                       E::M),
    ("[fe80::1%eth 0]",                  E::M),
    ("[::ffff:127.0.0.01]",              E::M),
    ("[1::2::3]",                        E::M),
    ("[12345::]",                        E::M),
    ("[v1.fe]",                          E::M),
    // ---- malformed names --------------------------------------------------
    ("",                                 E::M),
    (".",                                E::M),
    (":443",                             E::M),
    ("a..b",                             E::M),
    ("..",                               E::M),
    ("exa mple.com",                     E::M),
    ("user@example.com",                 E::M),
    ("http://example.com",               E::M),
    ("example.com/path",                 E::M),
    ("-example.com",                     E::M),
    ("example-.com",                     E::M),
    ("bücher.de",                        E::M),
    ("exa%6dple.com",                    E::M),
    ("example.com\0",                    E::M),
];

#[test]
fn corpus_is_large_enough_and_unique() {
    assert!(CORPUS.len() >= 80, "corpus has {} rows", CORPUS.len());
    for (i, (input, _)) in CORPUS.iter().enumerate() {
        assert!(
            CORPUS[..i].iter().all(|(other, _)| other != input),
            "{input:?} listed twice"
        );
    }
}

#[test]
fn corpus_verdicts() {
    let policy = EgressPolicy::default();
    let mut failures = Vec::new();
    for &(input, expected) in CORPUS {
        let want = match expected {
            E::A(s) => Verdict::Allow(s.to_owned()),
            E::S => Verdict::Ssrf,
            E::N => Verdict::NotAllowed,
            E::M => Verdict::Malformed,
        };
        let got = verdict(input, &policy);
        if got != want {
            failures.push(format!("{input:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn long_names_and_labels() {
    let policy = EgressPolicy::default();
    let label64 = format!("{}.example", "a".repeat(64));
    assert_eq!(verdict(&label64, &policy), Verdict::Malformed);
    let name254 = format!(
        "{}.{}",
        "a".repeat(63),
        vec!["abcdefghi"; 19].join(".") + "x"
    );
    assert_eq!(name254.len(), 254);
    assert_eq!(verdict(&name254, &policy), Verdict::Malformed);
    assert_eq!(verdict(&"9".repeat(600), &policy), Verdict::Malformed);
}
