//! Replays a committed fuzz corpus through a target's check, for the
//! stable-toolchain regression tests (`crates/*/tests/fuzz_corpus.rs`).

use std::path::{Path, PathBuf};

/// `fuzz/corpus/<target>`, from the crate's manifest directory.
fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of the target's corpus; a panic names the
/// file. An empty or missing corpus fails: a replay of nothing proves
/// nothing.
pub fn replay(target: &str, check: fn(&[u8])) {
    let dir = dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    for file in files {
        let data = std::fs::read(&file).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the {target} check",
            file.display()
        );
    }
}
