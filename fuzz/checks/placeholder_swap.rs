//! Feeds hostile request headers to the proxy's placeholder swap and
//! hostile response bytes to the echo guard, and the `Proxy-Authorization`
//! reader.
//!
//! Besides "never panics", asserts what the proxy promises: a swapped
//! request towards an unbound host is refused, never sent with the value;
//! a request it lets through towards a bound host holds no placeholder of
//! the job any more; a plain-HTTP request carrying the job's placeholder
//! is always refused (its value never goes out in clear text), and one
//! the plain check lets through carries none; the one placeholder rule
//! agrees with both; a guarded response never holds the real value.
//!
//! The fuzz target (`fuzz/fuzz_targets/placeholder_swap.rs`) and the stable
//! regression test replaying `fuzz/corpus/placeholder_swap/` both call [`run`].

use gatehouse_domain::SecretBytes;
use gatehouse_egress::directory::{Binding, JobView};
use gatehouse_egress::echo::guard_bytes;
use gatehouse_egress::proxy_token;
use gatehouse_egress::swap::{apply, placeholders_in, refuse_in_clear};
use gatehouse_egress::VerifiedTls;
use http::{HeaderMap, HeaderName, HeaderValue};

const PREFIX: &str = "gh_ph_";
const PLACEHOLDER: &str = "gh_ph_0123456789abcdef0123456789abcdef01234567";
const VALUE: &str = "real-secret-value";

fn view() -> JobView {
    JobView {
        agent_allow_hosts: None,
        allow_hosts: vec![],
        bindings: vec![Binding {
            secret: "S".into(),
            placeholder: Some(PLACEHOLDER.into()),
            placeholder_expires_at: i64::MAX,
            allowed_hosts: vec!["api.bound.test".into()],
            value: SecretBytes::new(VALUE.as_bytes().to_vec()),
            inject: None,
        }],
    }
}

/// The target's check on one input: panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let view = view();
    // The echo guard on raw bytes (with the value sometimes planted).
    let mut body = data.to_vec();
    if data.first().is_some_and(|b| b % 2 == 0) {
        body.extend_from_slice(VALUE.as_bytes());
    }
    let guarded = guard_bytes(&body, &view).unwrap_or(body);
    assert!(!guarded.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));

    // Header lines `name: value`, the placeholder sometimes planted.
    let text = String::from_utf8_lossy(data);
    let mut headers = HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.replace("PH", PLACEHOLDER);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(n, v);
        }
    }
    let _ = proxy_token(&headers);
    let carried = headers.values().any(|v| {
        v.as_bytes()
            .windows(PLACEHOLDER.len())
            .any(|w| w == PLACEHOLDER.as_bytes())
    });
    // The request target, planted the same way.
    let target = format!("/{}", text.lines().next().unwrap_or("")).replace("PH", PLACEHOLDER);
    // Swaps need the proof of a verified TLS upstream; the fuzz target
    // stands in for one (the `test-support` feature).
    let tls = VerifiedTls::assumed_for_tests();
    for host in ["api.bound.test", "elsewhere.test"] {
        let mut h = headers.clone();
        match apply(&mut h, &view, host, PREFIX, 0, &tls) {
            Ok(_) => {
                assert!(
                    !(carried && host == "elsewhere.test"),
                    "a placeholder went towards an unbound host"
                );
                assert!(!h.values().any(|v| v
                    .as_bytes()
                    .windows(PLACEHOLDER.len())
                    .any(|w| w == PLACEHOLDER.as_bytes())));
            }
            Err(_) => {
                // Refused only because the one rule refuses some value.
                assert!(headers.values().any(|v| placeholders_in(
                    v.as_bytes(),
                    &view,
                    host,
                    PREFIX,
                    0
                )
                .is_err()));
            }
        }
        match refuse_in_clear(&headers, &target, &view, host, PREFIX, 0) {
            Ok(()) => assert!(
                !carried && !target.contains(PLACEHOLDER),
                "a placeholder passed in clear text"
            ),
            Err(refusal) => assert_eq!(refusal.deny_reason(), Some("not_allowed")),
        }
    }
}
