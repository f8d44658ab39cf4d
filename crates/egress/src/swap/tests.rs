use super::*;
use crate::directory::{Binding, Inject};
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
    let used = apply(&mut h, &view(), "api.github.com", "gh_ph_", 1000).unwrap();
    assert_eq!(used, vec!["gh".to_string()]);
    assert_eq!(h["authorization"], "Bearer real-a");
    assert_eq!(h["x-a"], "1");

    let mut h = headers(&[("authorization", &format!("Bearer {PH_A}"))]);
    let refused = apply(&mut h, &view(), "evil.example.com", "gh_ph_", 1000).unwrap_err();
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
        apply(&mut h, &view(), "api.github.com", "gh_ph_", 1000),
        Err(Refusal::ForeignPlaceholder)
    );
    let mut h = headers(&[("authorization", PH_A)]);
    assert_eq!(
        apply(&mut h, &view(), "api.github.com", "gh_ph_", 2000),
        Err(Refusal::ForeignPlaceholder)
    );
    // A foreign one riding along with a good one still refuses.
    let mut h = headers(&[("authorization", PH_A), ("x-other", OTHER)]);
    assert!(apply(&mut h, &view(), "api.github.com", "gh_ph_", 1000).is_err());
}

#[test]
fn several_placeholders_and_repeated_headers() {
    let mut h = headers(&[
        ("cookie", &format!("a={PH_B}; b={PH_B}")),
        ("cookie", "plain=1"),
    ]);
    let used = apply(&mut h, &view(), "x.example.com", "gh_ph_", 1000).unwrap();
    assert_eq!(used, vec!["other".to_string()]);
    let all: Vec<_> = h.get_all("cookie").iter().collect();
    assert_eq!(all, vec!["a=real-b; b=real-b", "plain=1"]);
}

#[test]
fn inject_adds_a_missing_header_towards_a_bound_host() {
    let mut v = view();
    v.bindings[0].inject = Some(Inject {
        header: "Authorization".into(),
        format: "token {value}".into(),
    });
    let mut h = HeaderMap::new();
    let used = apply(&mut h, &v, "api.github.com", "gh_ph_", 1000).unwrap();
    assert_eq!(h["authorization"], "token real-a");
    assert_eq!(used, vec!["gh".to_string()]);

    let mut h = headers(&[("authorization", "mine")]);
    apply(&mut h, &v, "api.github.com", "gh_ph_", 1000).unwrap();
    assert_eq!(h["authorization"], "mine");

    let mut h = HeaderMap::new();
    let used = apply(&mut h, &v, "other.host", "gh_ph_", 1000).unwrap();
    assert!(h.is_empty() && used.is_empty());
}

#[test]
fn nothing_to_do_leaves_headers_alone() {
    let mut h = headers(&[
        ("accept", "*/*"),
        ("x-sha", "0123456789abcdef0123456789abcdef01234567"),
    ]);
    let before = h.clone();
    assert!(apply(&mut h, &view(), "api.github.com", "gh_ph_", 1000)
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

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever surrounds it, a placeholder never leaves towards a
        /// host its secret is not bound to: either the request is refused
        /// or the placeholder was not in it.
        #[test]
        fn placeholder_never_swapped_towards_unbound_hosts(
            before in "[ -~]{0,20}", after in "[ -~]{0,20}",
            host in "[a-z]{1,10}\\.(com|net|test)",
        ) {
            let value = format!("{before}{PH_A}{after}");
            prop_assume!(HeaderValue::from_str(&value).is_ok());
            let mut h = headers(&[("authorization", &value)]);
            let result = apply(&mut h, &view(), &host, "gh_ph_", 1000);
            prop_assert!(result.is_err());
        }

        /// Towards the bound host the value goes in and no placeholder
        /// of the job is left.
        #[test]
        fn swapped_requests_hold_no_placeholder(before in "[ -~]{0,20}", after in "[ -~]{0,20}") {
            let value = format!("{before}{PH_A}{after}");
            prop_assume!(HeaderValue::from_str(&value).is_ok());
            prop_assume!(!value.contains("gh_ph_") || value.matches("gh_ph_").count() == 1);
            let mut h = headers(&[("authorization", &value)]);
            if apply(&mut h, &view(), "api.github.com", "gh_ph_", 1000).is_ok() {
                let out = h["authorization"].to_str().unwrap().to_string();
                prop_assert!(!out.contains(PH_A));
                prop_assert!(out.contains("real-a"));
            }
        }
    }
}
