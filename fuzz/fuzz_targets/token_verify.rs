//! Arbitrary text, and small edits of valid tokens, into the one token verifier.
//!
//! The check lives in `fuzz/checks/token_verify.rs`, shared with the stable
//! regression test that replays `fuzz/corpus/token_verify/`.
#![no_main]

#[path = "../checks/token_verify.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
