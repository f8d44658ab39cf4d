//! The egress fuzz targets' checks, replayed on the stable toolchain over
//! the committed corpus (`fuzz/corpus/<target>/*`), whether or not
//! `cargo fuzz` (nightly) is available. The fuzz targets call the very
//! same functions (`fuzz/checks/*.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/checks/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/checks/outbound_target.rs"]
mod outbound_target;
#[path = "../../../fuzz/checks/placeholder_swap.rs"]
mod placeholder_swap;

#[test]
fn placeholder_swap_corpus_replays() {
    corpus::replay("placeholder_swap", placeholder_swap::run);
}

#[test]
fn outbound_target_corpus_replays() {
    corpus::replay("outbound_target", outbound_target::run);
}
