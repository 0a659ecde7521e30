//! The short form of every fuzz target: the corpus plus a few thousand
//! seeded mutations each must not panic (and round trips must hold).
//! `scripts/fuzz` runs the long form.

use anchord_fuzz::driver::{Budget, load_corpus, run};
use anchord_fuzz::{fuzz_dir, target};

const ITERATIONS: u64 = 3_000;

fn short(name: &str) {
    short_n(name, ITERATIONS);
}

fn short_n(name: &str, iterations: u64) {
    let t = target(name).expect("known target");
    let corpus = load_corpus(&fuzz_dir().join("corpus").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has seeds");
    let s = run(name, t, &corpus, 0x5eed, Budget::Iterations(iterations));
    if let Some((input, msg)) = s.crash {
        panic!(
            "{name} panicked: {msg}\ninput ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(&input)
        );
    }
    assert!(s.executions >= iterations);
    // The seeds reach the parser's acceptance path, not only its rejections.
    assert!(s.accepted > 0, "{name}: no input was accepted");
}

#[test]
fn ingest_message_never_panics_and_round_trips() {
    short("ingest_message");
}

#[test]
fn entry_encoding_never_panics_and_is_canonical() {
    short("entry");
}

#[test]
fn checkpoint_and_cosignature_notes_never_panic_and_round_trip() {
    short("checkpoint");
}

#[test]
fn witness_add_checkpoint_body_never_panics() {
    short("witness_add_checkpoint");
}

#[test]
fn bundle_parse_and_verify_never_panic_and_round_trip() {
    short("bundle");
}

#[test]
fn ots_export_never_panics() {
    short("ots");
}

#[test]
fn rfc3161_responses_and_tokens_never_panic() {
    short("tsa");
}

#[test]
fn relay_chain_responses_never_panic() {
    short("relay");
}

/// Over loopback HTTP, a few hundred executions per second: fewer here.
#[test]
fn relay_clients_never_panic_on_hostile_gateway_and_json_rpc_responses() {
    short_n("relay_http", 400);
}

/// The driver itself: a target that panics on some mutated input is caught,
/// the run stops and reports that input (what `scripts/fuzz` saves).
#[test]
fn the_driver_catches_a_panic_and_keeps_the_input() {
    fn planted(data: &[u8]) -> bool {
        assert!(!data.contains(&0xff), "planted bug");
        true
    }
    let s = run(
        "planted",
        planted,
        &[b"seed".to_vec()],
        7,
        Budget::Iterations(100_000),
    );
    let (input, msg) = s.crash.expect("the planted bug is found");
    assert!(input.contains(&0xff));
    assert!(msg.contains("planted bug"), "{msg}");
    let dir = std::env::temp_dir().join(format!("anchord-fuzz-{}", std::process::id()));
    let path = anchord_fuzz::driver::save_crash(&dir, &input).expect("saved");
    assert_eq!(std::fs::read(&path).expect("read back"), input);
    let _ = std::fs::remove_dir_all(dir);
}

/// The AFL++ harness (`fuzz/afl`, outside the workspace, so CI never builds
/// it) includes `src/pure.rs` by path and depends only on core and tsa: a
/// pipeline crate used in `pure.rs` would break that build unnoticed. This
/// keeps `pure.rs` to the crates the harness has, and the harness's manifest
/// to the lean set.
#[test]
fn afl_harness_stays_lean_and_outside_the_workspace() {
    let source = std::fs::read_to_string(fuzz_dir().join("src/pure.rs")).expect("pure.rs");
    // The code, without comments (the docs may name other crates).
    let pure: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let allowed = ["anchord_core", "anchord_tsa"];
    for (i, _) in pure.match_indices("anchord_") {
        let name: String = pure[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            allowed.contains(&name.as_str()),
            "fuzz/src/pure.rs uses {name}; the AFL++ harness has only {allowed:?} (move the target to targets.rs)"
        );
    }
    for (i, _) in pure.match_indices("crate::") {
        assert!(
            pure[i..].starts_with("crate::fuzz_dir()"),
            "fuzz/src/pure.rs may use only crate::fuzz_dir() from the including crate"
        );
    }
    for forbidden in ["tokio", "axum", "rdkafka"] {
        assert!(
            !pure.contains(forbidden),
            "fuzz/src/pure.rs mentions {forbidden}"
        );
    }

    let manifest = std::fs::read_to_string(fuzz_dir().join("afl/Cargo.toml")).expect("manifest");
    let deps: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("[dependencies]")
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .collect();
    assert_eq!(
        deps,
        ["afl", "anchord-core", "anchord-tsa", "hex", "serde_json"]
    );
    // Its own workspace: members win over `workspace.exclude` for a
    // directory under the member `fuzz`, so only this keeps it out.
    assert!(manifest.lines().any(|l| l.trim() == "[workspace]"));
    let root = std::fs::read_to_string(fuzz_dir().join("../Cargo.toml")).expect("root manifest");
    assert!(
        !root.contains("\"fuzz/afl\""),
        "fuzz/afl must not be a workspace member"
    );
}
