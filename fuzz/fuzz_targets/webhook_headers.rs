//! Arbitrary bytes into every webhook verifier and the Stripe header parser.
//!
//! The check lives in `fuzz/checks/webhook_headers.rs`, shared with the stable
//! regression test that replays `fuzz/corpus/webhook_headers/`.
#![no_main]

#[path = "../checks/webhook_headers.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
