//! Fuzzing of every parser and decoder that takes outside input (issue 14).
//!
//! Two drivers over the same targets. Coverage-guided: the AFL++ harness
//! `fuzz/afl` (its own excluded crate, `scripts/fuzz --afl`) runs the pure
//! targets ([`pure`]: everything that needs only `anchord-core` and
//! `anchord-tsa`), whose instrumented build stays small. Property-based (this
//! crate, every target, including those that need rdkafka/tokio/axum): one
//! target per parser ([`targets`]), each a function `fn(&[u8])` that must
//! never panic and, where a round trip exists, checks `decode(encode(x)) ==
//! x`; a seeded mutation driver ([`driver`]) that mutates the corpus kept in
//! the repo (`fuzz/corpus/<target>/`) with byte flips, truncations, splices,
//! dictionary insertions and JSON-aware mutations ([`mutate`]). Inputs a
//! parser accepts are added to the in-memory pool (a cheap stand-in for
//! coverage feedback: accepted inputs reach the deeper checks).
//!
//! Run: `cargo run -p anchord-fuzz --release -- <target> --seconds N` (or
//! `--iterations N`), or `scripts/fuzz`. `cargo test -p anchord-fuzz` runs
//! a short form of every target.

pub mod driver;
pub mod mutate;
pub mod pure;
pub mod targets;

/// A fuzz target: returns whether the parser accepted the input (used only
/// as feedback for the pool; a target signals a bug by panicking).
pub type Target = fn(&[u8]) -> bool;

/// Every target, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("ingest_message", targets::ingest_message::target),
    ("entry", targets::entry::target),
    ("checkpoint", targets::checkpoint::target),
    ("witness_add_checkpoint", targets::witness::target),
    ("bundle", targets::bundle::target),
    ("ots", targets::ots::target),
    ("tsa", targets::tsa::target),
    ("relay", targets::relay::target),
    ("relay_http", targets::relay_http::target),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// `fuzz/` in the source tree (corpus, crashes, assets).
pub fn fuzz_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
