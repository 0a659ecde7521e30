//! The committed conformance vectors (`testdata/vectors/`) are exactly what
//! `vectors::generate` produces now, every one of them passes
//! `check_vector_json`, and corrupting one is detected.
//!
//! Regenerate with `cargo run -p anchord-core --example gen_vectors -- testdata/vectors`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anchord_core::HashSuite;
use anchord_core::vectors::{VectorFileError, VectorKind, check_vector_json, generate};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

/// Every file under `dir`, keyed by its `/`-separated path relative to `dir`.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let rel: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect();
                out.insert(
                    rel.join("/"),
                    std::fs::read(&path).expect("readable vector"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

const REGENERATE: &str =
    "regenerate with: cargo run -p anchord-core --example gen_vectors -- testdata/vectors";

#[test]
fn committed_vectors_equal_the_generator_output() {
    for suite in HashSuite::ALL {
        let committed = read_tree(&vectors_dir().join(suite.name()));
        let generated: BTreeMap<String, Vec<u8>> = generate(suite)
            .into_iter()
            .map(|(path, json)| (path, json.into_bytes()))
            .collect();
        let missing: Vec<_> = generated
            .keys()
            .filter(|k| !committed.contains_key(*k))
            .collect();
        let extra: Vec<_> = committed
            .keys()
            .filter(|k| !generated.contains_key(*k))
            .collect();
        assert!(
            missing.is_empty(),
            "{suite}: not committed: {missing:?}; {REGENERATE}"
        );
        assert!(
            extra.is_empty(),
            "{suite}: not generated: {extra:?}; {REGENERATE}"
        );
        for (path, json) in &generated {
            assert!(
                committed[path] == *json,
                "{suite}/{path} differs from the generator; {REGENERATE}"
            );
        }
    }
}

#[test]
fn every_committed_vector_passes() {
    let mut counts: HashMap<(HashSuite, VectorKind, bool), usize> = HashMap::new();
    for suite in HashSuite::ALL {
        for (path, bytes) in read_tree(&vectors_dir().join(suite.name())) {
            let outcome =
                check_vector_json(&bytes).unwrap_or_else(|e| panic!("{suite}/{path}: {e}"));
            assert!(outcome.matched, "{suite}/{path}: {}", outcome.explanation());
            assert_eq!(outcome.suite, suite, "{suite}/{path}");
            assert!(
                path.starts_with(outcome.kind.name()),
                "{suite}/{path} is {}",
                outcome.kind
            );
            assert_eq!(outcome.verifier_error.is_some(), outcome.want_err);
            *counts
                .entry((suite, outcome.kind, outcome.want_err))
                .or_default() += 1;
        }
    }
    // Both suites, both kinds, positives and negatives.
    for suite in HashSuite::ALL {
        for kind in [VectorKind::Inclusion, VectorKind::Consistency] {
            assert!(
                counts.get(&(suite, kind, false)).copied().unwrap_or(0) >= 10,
                "{counts:?}"
            );
            assert!(
                counts.get(&(suite, kind, true)).copied().unwrap_or(0) >= 100,
                "{counts:?}"
            );
        }
    }
}

/// Flips one bit of the base64 hash in `field`.
fn corrupt(json: &[u8], field: &str) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(json).expect("JSON vector");
    let text = value[field].as_str().expect("base64 field");
    let mut bytes = STANDARD.decode(text).expect("base64");
    bytes[7] ^= 0x01;
    value[field] = STANDARD.encode(bytes).into();
    serde_json::to_vec(&value).expect("serialises")
}

#[test]
fn corrupting_a_root_in_a_happy_path_is_detected() {
    let mut checked = 0;
    for suite in HashSuite::ALL {
        for (path, bytes) in read_tree(&vectors_dir().join(suite.name())) {
            if !path.ends_with("/happy-path.json") {
                continue;
            }
            let fields: &[&str] = if path.starts_with("inclusion/") {
                &["root", "leafHash"]
            } else if path.contains("/1/") {
                // consistency/1 is from size 0: no root is examined there.
                &[]
            } else {
                &["root1", "root2"]
            };
            for field in fields {
                let outcome = check_vector_json(&corrupt(&bytes, field)).unwrap();
                assert!(!outcome.want_err, "{suite}/{path}");
                assert!(
                    !outcome.matched,
                    "{suite}/{path} with {field} corrupted still passes"
                );
                let said = outcome.explanation();
                assert!(
                    said.starts_with("expected wantErr=false, verifier said: "),
                    "{said}"
                );
                assert!(
                    said.contains("mismatch") || said.contains("differs"),
                    "{said}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} corruptions checked");

    // A raw byte flip in the file text (one base64 character of a root).
    let path = vectors_dir().join("sha256/inclusion/5/happy-path.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("\"root\": \"").unwrap() + "\"root\": \"".len() + 3;
    let mut raw = text.into_bytes();
    raw[at] = if raw[at] == b'A' { b'B' } else { b'A' };
    let outcome = check_vector_json(&raw).unwrap();
    assert!(!outcome.matched, "{}", outcome.explanation());
}

#[test]
fn a_truncated_file_is_a_file_error_not_a_pass() {
    let path = vectors_dir().join("sm3/consistency/4/happy-path.json");
    let bytes = std::fs::read(&path).expect("readable vector");
    assert!(matches!(
        check_vector_json(&bytes[..bytes.len() / 2]),
        Err(VectorFileError::Json(_))
    ));
}
