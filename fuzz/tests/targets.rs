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
