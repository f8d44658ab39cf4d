use super::*;
use crate::directory::{Binding, Inject};
use crate::tls::VerifiedTls;
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::secret::SecretBytes;
use http::HeaderValue;

const PH_A: &str = "gh_ph_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const PH_B: &str = "gh_ph_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const OTHER: &str = "gh_ph_0123456789abcdef0123456789abcdef01234567";

fn binding(secret: &str, ph: &str, value: &str, hosts: &[&str], expires: i64) -> Binding {
    Binding {
        secret: secret.into(),
        placeholder: Some(ph.into()),
        placeholder_expires_at: expires,
        allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        value: SecretBytes::new(value.as_bytes().to_vec()),
        inject: None,
    }
}

fn view() -> JobView {
    JobView {
        agent_allow_hosts: None,
        allow_hosts: vec![],
        bindings: vec![
            binding("gh", PH_A, "real-a", &["api.github.com"], 2000),
            binding("other", PH_B, "real-b", &["*.example.com"], 2000),
        ],
    }
}

/// `apply` as the TLS paths call it.
fn swap(h: &mut HeaderMap, v: &JobView, host: &str, now: UnixTime) -> Result<Vec<String>, Refusal> {
    apply(h, v, host, "gh_ph_", now, &VerifiedTls::assumed_for_tests())
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

#[test]
fn swaps_a_bound_placeholder_towards_its_host_only() {
    let mut h = headers(&[("authorization", &format!("Bearer {PH_A}")), ("x-a", "1")]);
    let used = swap(&mut h, &view(), "api.github.com", 1000).unwrap();
    assert_eq!(used, vec!["gh".to_string()]);
    assert_eq!(h["authorization"], "Bearer real-a");
    assert_eq!(h["x-a"], "1");

    let mut h = headers(&[("authorization", &format!("Bearer {PH_A}"))]);
    let refused = swap(&mut h, &view(), "evil.example.com", 1000).unwrap_err();
    assert_eq!(
        refused,
        Refusal::PlaceholderNotAllowed {
            host: "evil.example.com".into()
        }
    );
    assert_eq!(h["authorization"], format!("Bearer {PH_A}").as_str());
}

#[test]
fn foreign_and_expired_placeholders_are_refused() {
    let mut h = headers(&[("x-token", OTHER)]);
    assert_eq!(
        swap(&mut h, &view(), "api.github.com", 1000),
        Err(Refusal::ForeignPlaceholder)
    );
    let mut h = headers(&[("authorization", PH_A)]);
    assert_eq!(
        swap(&mut h, &view(), "api.github.com", 2000),
        Err(Refusal::ForeignPlaceholder)
    );
    // A foreign one riding along with a good one still refuses.
    let mut h = headers(&[("authorization", PH_A), ("x-other", OTHER)]);
    assert!(swap(&mut h, &view(), "api.github.com", 1000).is_err());
}

#[test]
fn several_placeholders_and_repeated_headers() {
    let mut h = headers(&[
        ("cookie", &format!("a={PH_B}; b={PH_B}")),
        ("cookie", "plain=1"),
    ]);
    let used = swap(&mut h, &view(), "x.example.com", 1000).unwrap();
    assert_eq!(used, vec!["other".to_string()]);
    let all: Vec<_> = h.get_all("cookie").iter().collect();
    assert_eq!(all, vec!["a=real-b; b=real-b", "plain=1"]);
}

#[test]
fn a_swap_replaces_only_the_values_that_held_placeholders_where_they_stand() {
    let mut h = headers(&[
        ("cookie", "plain=1"),
        ("x-first", "untouched"),
        ("cookie", &format!("b={PH_B}")),
        ("x-last", &format!("Bearer {PH_B}")),
        ("cookie", "plain=3"),
    ]);
    swap(&mut h, &view(), "x.example.com", 1000).unwrap();
    let cookies: Vec<_> = h.get_all("cookie").iter().collect();
    assert_eq!(cookies, vec!["plain=1", "b=real-b", "plain=3"]);
    assert_eq!(h.get("x-first").unwrap(), "untouched");
    assert_eq!(h.get("x-last").unwrap(), "Bearer real-b");
    assert_eq!(h.len(), 5);
}

#[test]
fn inject_adds_a_missing_header_towards_a_bound_host() {
    let mut v = view();
    v.bindings[0].inject = Some(Inject {
        header: "Authorization".into(),
        format: "token {value}".into(),
    });
    let mut h = HeaderMap::new();
    let used = swap(&mut h, &v, "api.github.com", 1000).unwrap();
    assert_eq!(h["authorization"], "token real-a");
    assert_eq!(used, vec!["gh".to_string()]);

    let mut h = headers(&[("authorization", "mine")]);
    swap(&mut h, &v, "api.github.com", 1000).unwrap();
    assert_eq!(h["authorization"], "mine");

    let mut h = HeaderMap::new();
    let used = swap(&mut h, &v, "other.host", 1000).unwrap();
    assert!(h.is_empty() && used.is_empty());
}

#[test]
fn nothing_to_do_leaves_headers_alone() {
    let mut h = headers(&[
        ("accept", "*/*"),
        ("x-sha", "0123456789abcdef0123456789abcdef01234567"),
    ]);
    let before = h.clone();
    assert!(swap(&mut h, &view(), "api.github.com", 1000)
        .unwrap()
        .is_empty());
    assert_eq!(h, before);
}

#[test]
fn placeholders_in_the_request_target_follow_the_same_rule() {
    let v = view();
    let q = format!("/search?token={PH_A}");
    assert_eq!(
        check_target_text(&q, &v, "api.github.com", "gh_ph_", 1000),
        Ok(())
    );
    assert!(matches!(
        check_target_text(&q, &v, "evil.test", "gh_ph_", 1000),
        Err(Refusal::PlaceholderNotAllowed { .. })
    ));
    assert_eq!(
        check_target_text(&format!("/x/{OTHER}"), &v, "api.github.com", "gh_ph_", 1000),
        Err(Refusal::ForeignPlaceholder)
    );
    assert_eq!(
        check_target_text("/plain", &v, "evil.test", "gh_ph_", 1000),
        Ok(())
    );
}

#[test]
fn replace_all_handles_edges() {
    assert_eq!(
        replace_all(b"aXbXc", b"X", b"YY"),
        Some(b"aYYbYYc".to_vec())
    );
    assert_eq!(replace_all(b"abc", b"X", b"Y"), None);
    assert_eq!(replace_all(b"", b"X", b"Y"), None);
    assert_eq!(replace_all(b"XX", b"XX", b""), Some(vec![]));
}

#[test]
fn find_all_finds_each_non_overlapping_hit() {
    assert_eq!(find_all(b"abXabXab", b"ab"), vec![0, 3, 6]);
    assert_eq!(find_all(b"aaaa", b"aa"), vec![0, 2]);
    assert_eq!(find_all(b"a", b"ab"), Vec::<usize>::new());
    assert_eq!(find_all(b"abc", b""), Vec::<usize>::new());
    // Long texts take the prepared finder: same answers.
    let mut long = vec![b'x'; 5000];
    long[10..12].copy_from_slice(b"ab");
    long[4990..4992].copy_from_slice(b"ab");
    assert_eq!(find_all(&long, b"ab"), vec![10, 4990]);
    assert_eq!(find_all(&long, b"abc"), Vec::<usize>::new());
    assert_eq!(replace_all(b"X", b"X", b"longer"), Some(b"longer".to_vec()));
}

/// The prefix alone does not make a placeholder: it takes 40 lower-case
/// hex digits after it, digits and letters alike.
#[test]
fn only_the_full_shape_is_taken_for_a_foreign_placeholder() {
    let v = view();
    for text in [
        "gh_ph_".to_string(),
        format!("gh_ph_{}", "z".repeat(45)),
        format!("gh_ph_{}g", "a".repeat(39)),
        format!("gh_ph_{}", "A".repeat(40)),
        format!("gh_ph_{}", "a".repeat(39)),
    ] {
        let found = placeholders_in(text.as_bytes(), &v, "api.github.com", "gh_ph_", 1000);
        assert!(found.is_ok_and(|f| f.is_empty()), "{text}");
    }
    for text in [
        format!("gh_ph_{}", "0".repeat(40)),
        format!("gh_ph_{}", "f".repeat(40)),
        format!("x gh_ph_{}", "9a".repeat(20)),
    ] {
        let found = placeholders_in(text.as_bytes(), &v, "api.github.com", "gh_ph_", 1000);
        assert!(matches!(found, Err(Refusal::ForeignPlaceholder)), "{text}");
    }
}

/// The job's placeholder and a foreign one in the same header value: the
/// swap of the first does not hide the second.
#[test]
fn a_foreign_placeholder_beside_the_jobs_own_in_one_value_is_refused() {
    let mut h = headers(&[("authorization", &format!("Bearer {PH_A} {OTHER}"))]);
    assert_eq!(
        swap(&mut h, &view(), "api.github.com", 1000),
        Err(Refusal::ForeignPlaceholder)
    );
    assert_eq!(
        h["authorization"],
        format!("Bearer {PH_A} {OTHER}").as_str()
    );
}

/// Each secret put in is named once, in the order first met.
#[test]
fn used_secrets_are_named_once_each() {
    let mut v = view();
    v.bindings[1].allowed_hosts = vec!["api.github.com".into()];
    let mut h = headers(&[
        ("authorization", PH_A),
        ("x-a", &format!("{PH_A}/{PH_A}")),
        ("x-b", PH_B),
        ("x-c", PH_A),
    ]);
    let used = swap(&mut h, &v, "api.github.com", 1000).unwrap();
    assert_eq!(used, vec!["gh".to_string(), "other".to_string()]);
    assert_eq!(h["x-a"], "real-a/real-a");
    assert_eq!(h["x-b"], "real-b");
}

#[test]
fn plain_http_carries_no_placeholder_and_gets_no_inject() {
    let mut v = view();
    v.bindings[0].inject = Some(Inject {
        header: "Authorization".into(),
        format: "token {value}".into(),
    });
    let clear = |h: &HeaderMap, target: &str, host: &str| {
        refuse_in_clear(h, target, &v, host, "gh_ph_", 1000)
    };
    // The job's own placeholder, towards its bound host: refused in clear.
    let h = headers(&[("authorization", &format!("Bearer {PH_A}"))]);
    assert_eq!(
        clear(&h, "/", "api.github.com"),
        Err(Refusal::PlaceholderInClearText {
            host: "api.github.com".into()
        })
    );
    assert_eq!(
        clear(&HeaderMap::new(), &format!("/?t={PH_A}"), "api.github.com"),
        Err(Refusal::PlaceholderInClearText {
            host: "api.github.com".into()
        })
    );
    // Elsewhere, foreign or expired: the one rule's own refusals.
    assert_eq!(
        clear(&h, "/", "evil.test"),
        Err(Refusal::PlaceholderNotAllowed {
            host: "evil.test".into()
        })
    );
    assert_eq!(
        clear(&headers(&[("x", OTHER)]), "/", "api.github.com"),
        Err(Refusal::ForeignPlaceholder)
    );
    assert_eq!(
        refuse_in_clear(&h, "/", &v, "api.github.com", "gh_ph_", 2000),
        Err(Refusal::ForeignPlaceholder)
    );
    // Nothing placeholder-shaped towards a bound host with an inject
    // rule: passes, and nothing was added (the headers are borrowed).
    let h = headers(&[("accept", "*/*")]);
    assert_eq!(clear(&h, "/x", "api.github.com"), Ok(()));
    for refusal in [
        Refusal::PlaceholderInClearText { host: "h".into() },
        Refusal::PlaceholderNotAllowed { host: "h".into() },
        Refusal::ForeignPlaceholder,
    ] {
        assert_eq!(refusal.deny_reason(), Some("not_allowed"));
        assert!(refusal.is_placeholder_failure());
    }
}

#[test]
fn the_one_rule_names_the_bindings_it_lets_through() {
    let v = view();
    let text = format!("{PH_A} and {PH_B}");
    // PH_B is bound to *.example.com only, so towards api.github.com the
    // text is refused as a whole.
    assert!(placeholders_in(text.as_bytes(), &v, "api.github.com", "gh_ph_", 1000).is_err());
    let found = placeholders_in(PH_B.as_bytes(), &v, "a.example.com", "gh_ph_", 1000).unwrap();
    assert_eq!(
        found.iter().map(|b| b.secret.as_str()).collect::<Vec<_>>(),
        vec!["other"]
    );
    assert!(placeholders_in(b"nothing", &v, "evil.test", "gh_ph_", 1000)
        .unwrap()
        .is_empty());
}

#[test]
fn a_value_holding_another_placeholder_is_not_swapped_again() {
    let mut v = view();
    v.bindings[0].value = SecretBytes::new(format!("x{PH_B}x").into_bytes());
    v.bindings[1].allowed_hosts = vec!["api.github.com".into()];
    let mut h = headers(&[("authorization", PH_A)]);
    swap(&mut h, &v, "api.github.com", 1000).unwrap();
    assert_eq!(h["authorization"], format!("x{PH_B}x").as_str());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const BOUND: &str = "api.github.com";

    /// Hosts near the bound one: its case and trailing-dot spellings (the
    /// same host), and prefixes, suffixes, truncations and label changes
    /// of it (other hosts).
    fn near_bound_host() -> impl Strategy<Value = String> {
        let respell = (any::<u16>(), any::<bool>()).prop_map(|(mask, dot)| {
            let mut h: String = BOUND
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if mask & (1 << (i % 16)) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            if dot {
                h.push('.');
            }
            h
        });
        prop_oneof![
            respell.clone(),
            ("[a-z0-9-]{1,6}\\.?", respell.clone()).prop_map(|(p, h)| format!("{p}{h}")),
            (respell.clone(), "[a-z0-9.-]{1,8}").prop_map(|(h, s)| format!("{h}{s}")),
            (1..BOUND.len()).prop_map(|n| BOUND[..n].to_string()),
            (1..BOUND.len()).prop_map(|n| BOUND[n..].to_string()),
            Just("api.github.co".to_string()),
            Just("api-github.com".to_string()),
            Just("api.github.com.example.com".to_string()),
        ]
    }

    /// The same host as the bound one, by an oracle independent of the
    /// allow-list code: lower case, one trailing dot dropped.
    fn is_bound(host: &str) -> bool {
        let h = host.to_ascii_lowercase();
        h.strip_suffix('.').unwrap_or(&h) == BOUND
    }

    proptest! {
        /// Whatever surrounds it, a placeholder never leaves towards a
        /// host its secret is not bound to, however close the spelling:
        /// the request is refused with exactly `PlaceholderNotAllowed`
        /// for that host, and left as it was; towards the bound host
        /// (any spelling of it) the value goes in.
        #[test]
        fn placeholder_never_swapped_towards_unbound_hosts(
            before in "[ -~]{0,20}", after in "[ -~]{0,20}",
            host in near_bound_host(),
        ) {
            let value = format!("{before}{PH_A}{after}");
            prop_assume!(HeaderValue::from_str(&value).is_ok());
            let mut h = headers(&[("authorization", &value)]);
            let result = swap(&mut h, &view(), &host, 1000);
            if is_bound(&host) {
                prop_assert_eq!(result, Ok(vec!["gh".to_string()]));
                prop_assert_eq!(h["authorization"].to_str().unwrap(), format!("{before}real-a{after}"));
            } else {
                prop_assert_eq!(result, Err(Refusal::PlaceholderNotAllowed { host: host.clone() }));
                prop_assert_eq!(h["authorization"].to_str().unwrap(), value.as_str());
            }
        }

        /// Towards the bound host the value goes in and no placeholder
        /// of the job is left, whatever surrounds it.
        #[test]
        fn swapped_requests_hold_no_placeholder(before in "[ -~]{0,20}", after in "[ -~]{0,20}") {
            let value = format!("{before}{PH_A}{after}");
            prop_assume!(HeaderValue::from_str(&value).is_ok());
            let mut h = headers(&[("authorization", &value)]);
            let used = swap(&mut h, &view(), BOUND, 1000);
            prop_assert_eq!(used, Ok(vec!["gh".to_string()]));
            let out = h["authorization"].to_str().unwrap().to_string();
            prop_assert!(!out.contains(PH_A));
            prop_assert_eq!(out, format!("{before}real-a{after}"));
        }
    }
}
