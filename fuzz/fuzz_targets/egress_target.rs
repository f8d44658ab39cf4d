//! Feeds arbitrary strings to the egress target parser and check.
//!
//! The check lives in `fuzz/checks/egress_target.rs`, shared with the stable
//! regression test that replays `fuzz/corpus/egress_target/`.
#![no_main]

#[path = "../checks/egress_target.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
