//! The fuzz targets' checks, replayed on the stable toolchain over the
//! committed corpus (`fuzz/corpus/<target>/*`): every input that once
//! found a bug or reaches an interesting branch stays a regression test,
//! whether or not `cargo fuzz` (nightly) is available. The fuzz targets
//! call the very same functions (`fuzz/checks/*.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/checks/egress_target.rs"]
mod egress_target;
#[path = "../../../fuzz/checks/token_verify.rs"]
mod token_verify;
#[path = "../../../fuzz/checks/webhook_headers.rs"]
mod webhook_headers;

#[path = "../../../fuzz/checks/corpus.rs"]
mod corpus;

#[test]
fn egress_target_corpus_replays() {
    corpus::replay("egress_target", egress_target::run);
}

#[test]
fn token_verify_corpus_replays() {
    corpus::replay("token_verify", token_verify::run);
}

#[test]
fn webhook_headers_corpus_replays() {
    corpus::replay("webhook_headers", webhook_headers::run);
}
