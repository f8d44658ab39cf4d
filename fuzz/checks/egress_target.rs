//! Feeds arbitrary strings to the egress target parser and check.
//!
//! Besides "never panics", asserts the invariants the proxy relies on: a
//! parsed target's display form parses back to the same target, and an
//! address that passes the check is canonical and passes again.
//!
//! The fuzz target (`fuzz/fuzz_targets/egress_target.rs`) and the stable
//! regression test replaying `fuzz/corpus/egress_target/` both call [`run`].

use gatehouse_domain::egress::{check_address, check_target, parse_target, Checked, EgressPolicy};

/// The target's check on one input: panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let policy = EgressPolicy::default();
    let Ok(target) = parse_target(input, 443) else {
        return;
    };
    assert_eq!(parse_target(&target.to_string(), 1).as_ref(), Ok(&target));
    if let Ok(Checked::Connect(addr)) = check_target(&target, &policy) {
        assert_eq!(addr.ip().to_canonical(), addr.ip());
        assert_eq!(check_address(addr.ip(), &policy), Ok(addr.ip()));
    }
}
