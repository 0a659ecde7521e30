//! Coverage-guided fuzzing (AFL++ through the `afl` crate) of the pure
//! parsers: the targets of `anchord-fuzz` that need only `anchord-core` and
//! `anchord-tsa`, included from `fuzz/src/pure.rs` (shared, not copied).
//!
//! One binary; the target is its first argument:
//! `cargo afl fuzz -i fuzz/corpus/<corpus> -o OUT -- fuzz/afl/target/release/anchord-fuzz-afl <target>`
//! (`scripts/fuzz --afl` does this). `anchord-fuzz-afl list` prints
//! `<target> <corpus directory>` per line. Outside AFL (plain
//! `cargo build`) the binary reads one input from stdin and runs the target
//! once, which replays a crash: `anchord-fuzz-afl bundle < crash-file`.

#[path = "../../src/pure.rs"]
mod pure;

/// `fuzz/` in the source tree (assets: the pinned test TSA certificates).
fn fuzz_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

type Target = fn(&[u8]) -> bool;

/// Every target: name, function, corpus directory under `fuzz/corpus/`.
const TARGETS: &[(&str, Target, &str)] = &[
    ("entry", pure::entry::target, "entry"),
    ("checkpoint", pure::checkpoint::target, "checkpoint"),
    (
        "witness_add_checkpoint",
        pure::witness::target,
        "witness_add_checkpoint",
    ),
    ("bundle", pure::bundle::target, "bundle"),
    ("ots", pure::ots::target, "ots"),
    ("tsa", pure::tsa::target, "tsa"),
    // The anchor payload and raw receipts: the pure half of the `relay`
    // target (its SimBlock half needs the relay crate), same corpus.
    ("anchor", pure::anchor::target, "relay"),
];

/// A target that panics on inputs starting with `!` (one byte flip from the
/// corpus away), never listed: it checks that AFL finds the crash and that
/// `scripts/fuzz --afl selftest_crash` saves it and exits non-zero (the
/// script's crash path works).
fn selftest_crash(data: &[u8]) -> bool {
    if data.first() == Some(&b'!') {
        panic!("selftest_crash: the input starts with '!'");
    }
    false
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    if name == "list" {
        for (n, _, corpus) in TARGETS {
            println!("{n} {corpus}");
        }
        return;
    }
    let selftest = [("selftest_crash", selftest_crash as Target, "entry")];
    let Some(&(_, target, _)) = TARGETS.iter().chain(&selftest).find(|(n, _, _)| *n == name) else {
        eprintln!(
            "usage: anchord-fuzz-afl <target>|list; targets: {}",
            TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
        );
        std::process::exit(2);
    };
    pure::warm_up();
    afl::fuzz!(|data: &[u8]| {
        let _ = target(data);
    });
}
