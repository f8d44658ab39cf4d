//! Arbitrary strings into the outbound client's URL check.
//!
//! The check lives in `fuzz/checks/outbound_target.rs`, shared with the stable
//! regression test that replays `fuzz/corpus/outbound_target/`.
#![no_main]

#[path = "../checks/outbound_target.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
