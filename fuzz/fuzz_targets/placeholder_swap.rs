//! Hostile request headers into the placeholder swap, hostile response bytes into the echo guard.
//!
//! The check lives in `fuzz/checks/placeholder_swap.rs`, shared with the stable
//! regression test that replays `fuzz/corpus/placeholder_swap/`.
#![no_main]

#[path = "../checks/placeholder_swap.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
