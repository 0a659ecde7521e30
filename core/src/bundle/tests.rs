//! A bundle built from first principles (entries, block trees, block log,
//! signed and cosigned checkpoint, receipts), then one mutation per check.

use super::*;
use crate::EvidenceAlg;
use crate::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, GENESIS_PREV_HASH, NoteSigner};

const SUITE: HashSuite = HashSuite::Sha256;
const ORIGIN: &str = "anchord.test/ledger";

fn sealer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[7; 32]).unwrap()
}

fn witness(i: u8) -> NoteSigner {
    NoteSigner::from_seed(&format!("w{i}.test"), ALG_COSIGNATURE_V1, &[10 + i; 32]).unwrap()
}

fn entry(seq: u64) -> Entry {
    Entry {
        seq,
        received_at_us: 1_764_000_000_000_000 + seq as i64,
        tenant: "bank-a".into(),
        external_id: format!("LOAN-{seq:04}"),
        hash_alg: EvidenceAlg::Sha256,
        evidence_hash: SUITE.digest(format!("file {seq}").as_bytes()).to_vec(),
        metadata: Some(r#"{"type":"loan"}"#.into()),
    }
}

/// Four blocks of 5 entries each; returns the headers.
fn chain() -> (Vec<Vec<Entry>>, Vec<BlockHeader>) {
    let mut blocks = Vec::new();
    let mut headers: Vec<BlockHeader> = Vec::new();
    for h in 0..4u64 {
        let entries: Vec<Entry> = (h * 5..h * 5 + 5).map(entry).collect();
        let leaves: Vec<Digest32> = entries.iter().map(|e| e.leaf_hash(SUITE)).collect();
        let header = BlockHeader {
            suite: SUITE,
            height: h,
            first_seq: h * 5,
            last_seq: h * 5 + 4,
            leaf_count: 5,
            merkle_root: merkle::root(SUITE, &leaves),
            prev_hash: headers.last().map_or(GENESIS_PREV_HASH, BlockHeader::hash),
            sealed_at_us: 1_764_000_001_000_000 + h as i64,
        };
        headers.push(header);
        blocks.push(entries);
    }
    (blocks, headers)
}

fn signed_note(size: u64, root: Digest32, witnesses: &[u8]) -> String {
    let body = Checkpoint::new(ORIGIN, size, root).body();
    let mut note = SignedNote::new(body.clone());
    note.signatures.push(sealer().sign(&body).unwrap());
    for &w in witnesses {
        note.signatures
            .push(witness(w).cosign(&body, 1_790_000_000).unwrap());
    }
    note.format()
}

/// The bundle of seq 7 (block 1) at checkpoint size 3, anchored by target
/// `court` at size 3 and by target `evm` at size 4.
fn fixture() -> Bundle {
    let (blocks, headers) = chain();
    let e = blocks[1][2].clone();
    let leaves: Vec<Digest32> = blocks[1].iter().map(|e| e.leaf_hash(SUITE)).collect();
    let log: Vec<Digest32> = headers.iter().map(BlockHeader::hash).collect();
    let root3 = merkle::root(SUITE, &log[..3]);
    let root4 = merkle::root(SUITE, &log);
    let receipt = |target: &str, size: u64, root: Digest32| AnchorReceipt {
        target: target.into(),
        chain_kind: "evm".into(),
        chain_id: "31337".into(),
        tx_id: format!("0x{}", hex::encode(SUITE.digest(target.as_bytes()))),
        block_number: 12,
        block_hash: format!("0x{}", hex::encode([1u8; 32])),
        block_time_us: 1_764_000_100_000_000,
        checkpoint_size: size,
        checkpoint_root: root,
        consistency_proof: merkle::consistency_proof(SUITE, &log[..size as usize], 3).unwrap(),
        receipt: serde_json::json!({ "checkpoint_root": hex::encode(root) }),
    };
    Bundle {
        format: BUNDLE_FORMAT_V1.into(),
        hash_suite: SUITE,
        leaf_hash: e.leaf_hash(SUITE),
        leaf_index: 2,
        audit_path: merkle::inclusion_proof(SUITE, &leaves, 2).unwrap(),
        block: BundleBlock::from_header(&headers[1]),
        block_log_path: merkle::inclusion_proof(SUITE, &log[..3], 1).unwrap(),
        checkpoint: BundleCheckpoint {
            size: 3,
            root: root3,
            origin: ORIGIN.into(),
            signed_note: signed_note(3, root3, &[1, 2]),
            timestamp_token: None,
        },
        keys: DeclaredKeys {
            sealer: sealer().verifier().vkey(),
            witnesses: vec![witness(1).verifier().vkey(), witness(2).verifier().vkey()],
            quorum: 2,
        },
        anchor: AnchorStatus {
            status: AnchorState::Anchored,
            expected_at_us: None,
            receipts: vec![receipt("court", 3, root3), receipt("evm", 4, root4)],
        },
        entry: e,
    }
}

fn trusted() -> TrustedKeys {
    TrustedKeys {
        sealers: vec![sealer().verifier()],
        witnesses: vec![witness(1).verifier(), witness(2).verifier()],
        quorum: 2,
        timestamps: None,
        from_bundle: false,
    }
}

fn check_of(b: &Bundle) -> &'static str {
    verify_bundle(b, &trusted(), None).unwrap_err().check()
}

#[test]
fn fresh_bundle_verifies_and_round_trips_through_json() {
    let b = fixture();
    let json = serde_json::to_string_pretty(&b).unwrap();
    let back: Bundle = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
    let r = verify_bundle(&back, &trusted(), Some(&b.entry.evidence_hash)).unwrap();
    assert_eq!(r.seq, 7);
    assert_eq!(r.block_height, 1);
    assert_eq!(r.checkpoint_size, 3);
    assert_eq!(r.cosigned_by, vec!["w1.test", "w2.test"]);
    assert!(r.anchored);
    assert_eq!(r.anchors.len(), 2);
    assert!(!r.keys_from_bundle);
    // The bundle's own keys give the same verdict, flagged as such.
    let own = TrustedKeys::from_bundle(&b).unwrap();
    assert!(verify_bundle(&b, &own, None).unwrap().keys_from_bundle);
}

#[test]
fn unknown_fields_and_formats_are_rejected() {
    let mut v = serde_json::to_value(fixture()).unwrap();
    v["extra"] = serde_json::json!(1);
    assert!(serde_json::from_value::<Bundle>(v).is_err());
    let mut b = fixture();
    b.format = "anchord.proof-bundle/v2".into();
    assert_eq!(check_of(&b), "format");
}

#[test]
fn a_hash_with_one_changed_byte_is_a_mismatch() {
    let b = fixture();
    let mut h = b.entry.evidence_hash.clone();
    h[31] ^= 1;
    let e = verify_bundle(&b, &trusted(), Some(&h)).unwrap_err();
    assert_eq!(e.check(), "evidence_mismatch", "{e}");
}

#[test]
fn each_tampered_entry_field_fails_the_leaf_hash() {
    let muts: Vec<fn(&mut Entry)> = vec![
        |e| e.tenant = "bank-b".into(),
        |e| e.external_id.push('X'),
        |e| e.received_at_us += 1,
        |e| e.evidence_hash[0] ^= 1,
        |e| e.metadata = None,
    ];
    for (i, m) in muts.into_iter().enumerate() {
        let mut b = fixture();
        m(&mut b.entry);
        assert_eq!(check_of(&b), "leaf_hash", "mutation {i}");
    }
    // Changing the seq moves the leaf too; with the leaf hash restated the
    // audit path catches it.
    let mut b = fixture();
    b.entry.seq = 8;
    b.leaf_hash = b.entry.leaf_hash(SUITE);
    b.leaf_index = 3;
    assert_eq!(check_of(&b), "audit_path");
    let mut b = fixture();
    b.entry.tenant = "bad tenant".into();
    assert_eq!(check_of(&b), "entry");
}

#[test]
fn leaf_index_outside_the_block_fails() {
    let mut b = fixture();
    b.leaf_index = 3;
    assert_eq!(check_of(&b), "leaf_index");
}

#[test]
fn each_tampered_audit_path_element_fails() {
    for i in 0..fixture().audit_path.len() {
        let mut b = fixture();
        b.audit_path[i][5] ^= 0x80;
        let e = verify_bundle(&b, &trusted(), None).unwrap_err();
        assert!(
            matches!(e, BundleError::AuditPath(ProofError::RootMismatch { .. })),
            "{e}"
        );
    }
    let mut b = fixture();
    b.audit_path.pop();
    assert_eq!(check_of(&b), "audit_path");
}

#[test]
fn tampered_block_header_fails() {
    let mut b = fixture();
    b.block.sealed_at_us += 1;
    assert_eq!(check_of(&b), "block_header");
    let mut b = fixture();
    b.block.prev_hash[0] ^= 1;
    assert_eq!(check_of(&b), "block_header");
    // A forged header with its hash restated breaks the block-log path.
    let mut b = fixture();
    b.block.sealed_at_us += 1;
    b.block.hash = b.block.header(SUITE).hash();
    assert_eq!(check_of(&b), "block_log_path");
    let mut b = fixture();
    b.block.merkle_root[0] ^= 1;
    assert_eq!(check_of(&b), "audit_path");
}

#[test]
fn tampered_block_log_path_fails() {
    let mut b = fixture();
    b.block_log_path[0][0] ^= 1;
    assert_eq!(check_of(&b), "block_log_path");
}

#[test]
fn checkpoint_fields_must_match_the_signed_note() {
    let mut b = fixture();
    b.checkpoint.root[0] ^= 1;
    assert_eq!(check_of(&b), "checkpoint");
    let mut b = fixture();
    b.checkpoint.signed_note = b.checkpoint.signed_note.replace("\n\n", "\n");
    assert_eq!(check_of(&b), "checkpoint");
}

/// Flip one bit of the base64 signature blob on the line of `name`.
fn corrupt_signature(note: &str, name: &str) -> String {
    let mut n = SignedNote::parse(note).unwrap();
    let s = n.signatures.iter_mut().find(|s| s.name == name).unwrap();
    let last = s.payload.len() - 1;
    s.payload[last] ^= 1;
    n.format()
}

#[test]
fn tampered_sealer_signature_fails() {
    let mut b = fixture();
    b.checkpoint.signed_note = corrupt_signature(&b.checkpoint.signed_note, ORIGIN);
    let e = verify_bundle(&b, &trusted(), None).unwrap_err();
    assert!(
        matches!(
            e,
            BundleError::SealerSignature(NoteError::BadSignature { .. })
        ),
        "{e}"
    );
    // An untrusted sealer key: the signature is "missing".
    let mut keys = trusted();
    keys.sealers = vec![witness(9).verifier()];
    let e = verify_bundle(&fixture(), &keys, None).unwrap_err();
    assert_eq!(e.check(), "sealer_signature");
}

#[test]
fn tampered_cosignature_fails() {
    let mut b = fixture();
    b.checkpoint.signed_note = corrupt_signature(&b.checkpoint.signed_note, "w2.test");
    assert_eq!(check_of(&b), "witness_signature");
}

#[test]
fn a_missing_cosignature_under_a_quorum_rule_fails() {
    let mut b = fixture();
    let (root, size) = (b.checkpoint.root, b.checkpoint.size);
    b.checkpoint.signed_note = signed_note(size, root, &[1]);
    let e = verify_bundle(&b, &trusted(), None).unwrap_err();
    assert_eq!(
        e,
        BundleError::Quorum {
            have: 1,
            need: 2,
            cosigned_by: vec!["w1.test".into()]
        }
    );
    // 1 of 2 is enough under a 1-of-2 rule.
    let mut keys = trusted();
    keys.quorum = 1;
    assert!(verify_bundle(&b, &keys, None).is_ok());
}

struct FailingTsa;
impl TimestampVerifier for FailingTsa {
    fn verify(&self, _: &[u8], _: &[u8; 32]) -> Result<i64, String> {
        Err("messageImprint mismatch".into())
    }
}
struct DigestTsa;
impl TimestampVerifier for DigestTsa {
    fn verify(&self, token: &[u8], digest: &[u8; 32]) -> Result<i64, String> {
        (token == digest)
            .then_some(1_790_000_000)
            .ok_or("wrong digest".into())
    }
}

#[test]
fn timestamp_token_is_checked_over_the_checkpoint_body() {
    let mut b = fixture();
    let body = SignedNote::parse(&b.checkpoint.signed_note).unwrap().text;
    b.checkpoint.timestamp_token = Some(HashSuite::Sha256.digest(body.as_bytes()).to_vec());
    let r = verify_bundle(&b, &trusted(), None).unwrap();
    assert!(r.timestamp_unchecked);
    let mut keys = trusted();
    keys.timestamps = Some(Box::new(DigestTsa));
    assert_eq!(
        verify_bundle(&b, &keys, None).unwrap().timestamp_unix,
        Some(1_790_000_000)
    );
    keys.timestamps = Some(Box::new(FailingTsa));
    assert_eq!(
        verify_bundle(&b, &keys, None).unwrap_err().check(),
        "timestamp"
    );
}

#[test]
fn tampered_receipts_fail() {
    let mut b = fixture();
    b.anchor.receipts[0].checkpoint_root[0] ^= 1;
    assert_eq!(check_of(&b), "anchor_receipt");
    let mut b = fixture();
    b.anchor.receipts[1].consistency_proof[0][0] ^= 1;
    assert_eq!(check_of(&b), "anchor_receipt");
    let mut b = fixture();
    b.anchor.receipts[1].receipt = serde_json::json!({"checkpoint_root": hex::encode([0u8; 32])});
    assert_eq!(check_of(&b), "anchor_receipt");
    let mut b = fixture();
    b.anchor.receipts.clear();
    assert_eq!(check_of(&b), "anchor_receipt", "anchored without receipts");
    b.anchor.status = AnchorState::Pending;
    assert!(
        verify_bundle(&b, &trusted(), None).is_ok(),
        "pending is valid"
    );
}

#[test]
fn ots_operations_lead_from_the_evidence_hash_to_the_checkpoint_root() {
    let b = fixture();
    let ops = crate::ots::operations(&b).unwrap();
    let end = ops
        .iter()
        .fold(b.entry.evidence_hash.clone(), |m, op| op.apply(&m));
    assert_eq!(end, b.checkpoint.root.to_vec());
    let file = crate::ots::encode(&b, &[crate::ots::Attestation::pending("http://x/y")]).unwrap();
    assert!(file.starts_with(crate::ots::MAGIC));
}

#[test]
fn docs_worked_example_verifies() {
    let doc = include_str!("../../../docs/proof-format.md");
    // The first JSON block holding a whole bundle.
    let json = doc
        .split("```json\n")
        .skip(1)
        .filter_map(|s| s.split("\n```").next())
        .find(|s| s.contains("\"format\": \"anchord.proof-bundle/v1\""))
        .expect("a bundle in a json block in docs/proof-format.md");
    let b: Bundle = serde_json::from_str(json).unwrap();
    let mut f = fixture();
    f.anchor.receipts.truncate(1);
    assert_eq!(b, f, "the docs example is the fixture");
    verify_bundle(&b, &trusted(), Some(&b.entry.evidence_hash)).unwrap();
}

/// The frozen corpus of today's v1 bundles, written once by the v1 code
/// (`ANCHORD_WRITE_FROZEN=dir`).
fn frozen_specs() -> Vec<(&'static str, corpus::Spec)> {
    use corpus::{Chain, Spec};
    let hz = Chain::Judicial {
        target: "hz-court".into(),
        chain_id: "sim-court".into(),
        gateway: "http://127.0.0.1:7471".into(),
    };
    let evm = Chain::Evm {
        target: "evm-local".into(),
        chain_id: "31337".into(),
        rpc: "http://127.0.0.1:8545".into(),
    };
    vec![
        (
            "anchored-judicial-evm-sha256",
            Spec {
                receipts: vec![(hz.clone(), 3), (evm.clone(), 4)],
                ..Spec::default()
            },
        ),
        ("pending-sha256", Spec::default()),
        (
            "anchored-judicial-sm3",
            Spec {
                suite: HashSuite::Sm3,
                evidence_alg: EvidenceAlg::Sm3,
                seq: 12,
                witnesses: vec![1],
                quorum: 1,
                receipts: vec![(hz.clone(), 3)],
                ..Spec::default()
            },
        ),
        (
            "anchored-evm-sha512-evidence",
            Spec {
                evidence_alg: EvidenceAlg::Sha512,
                seq: 0,
                checkpoint_size: 1,
                witnesses: vec![],
                quorum: 0,
                receipts: vec![(evm, 2)],
                ..Spec::default()
            },
        ),
    ]
}

#[test]
fn write_frozen_v1_corpus() {
    let Ok(dir) = std::env::var("ANCHORD_WRITE_FROZEN") else {
        return;
    };
    for (name, spec) in frozen_specs() {
        let b = corpus::build(&spec);
        verify_bundle(&b, &TrustedKeys::from_bundle(&b).unwrap(), None).unwrap();
        let mut text = serde_json::to_string_pretty(&b).unwrap();
        text.push('\n');
        std::fs::write(format!("{dir}/{name}.json"), text).unwrap();
    }
}

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/bundles")
}

fn corpus_trusted() -> TrustedKeys {
    TrustedKeys {
        sealers: vec![corpus::sealer().verifier()],
        witnesses: vec![corpus::witness(1).verifier(), corpus::witness(2).verifier()],
        quorum: 2,
        timestamps: None,
        from_bundle: false,
    }
}

/// Checks made outside core (the trust policy's keys and chain registry).
const POLICY_CHECKS: [&str; 4] = [
    "anchor_registry",
    "anchor_not_trusted",
    "sealer_not_trusted",
    "witness_not_trusted",
];

/// The files under testdata/bundles/ (valid/, invalid/, manifest.json).
fn corpus_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut valid = Vec::new();
    for (name, what, b) in corpus::valid() {
        let file = format!("valid/{name}.json");
        files.push((
            file.clone(),
            corpus::pretty(&serde_json::to_value(&b).unwrap()),
        ));
        files.push((format!("valid/{name}.evidence"), {
            // Evidence files are text (UTF-8) so the corpus stays diffable.
            String::from_utf8(corpus::evidence_file(b.entry.seq)).unwrap()
        }));
        valid.push(serde_json::json!({
            "file": file, "evidence": format!("valid/{name}.evidence"), "description": what,
        }));
    }
    let mut invalid = Vec::new();
    for c in corpus::invalid() {
        let file = format!("invalid/{}.json", c.name);
        files.push((file.clone(), c.json.clone()));
        invalid.push(serde_json::json!({
            "file": file, "rule": c.rule, "check": c.check, "reason": c.reason, "exit": c.exit,
        }));
    }
    let manifest = serde_json::json!({
        "format": "anchord.bundle-corpus/v1",
        "generator": "core/src/bundle/corpus.rs (ANCHORD_WRITE_CORPUS=1 cargo test -p anchord-core corpus_files_match_the_generator)",
        "trust_policy": "trust-policy.toml",
        "exit_codes": {"0": "VALID", "1": "INVALID (<check>)", "3": "UNTRUSTED (<check>)"},
        "valid": valid,
        "invalid": invalid,
    });
    files.push(("manifest.json".into(), corpus::pretty(&manifest)));
    files
}

#[test]
fn corpus_files_match_the_generator() {
    let dir = corpus_dir();
    let write = std::env::var_os("ANCHORD_WRITE_CORPUS").is_some();
    for (name, text) in corpus_files() {
        let path = dir.join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else {
            let have = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (regenerate with ANCHORD_WRITE_CORPUS=1)",
                    path.display()
                )
            });
            assert_eq!(have, text, "{name} differs from the generator");
        }
    }
}

#[test]
fn valid_corpus_verifies_against_the_court_keys() {
    for (name, _, b) in corpus::valid() {
        let text = corpus::pretty(&serde_json::to_value(&b).unwrap());
        let parsed = parse_bundle(&text).unwrap();
        let want = b.entry.hash_alg.hash(&corpus::evidence_file(b.entry.seq));
        verify_bundle(&parsed, &corpus_trusted(), Some(&want))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn invalid_corpus_is_rejected_rule_by_rule() {
    let mut core_checked = 0;
    for c in corpus::invalid() {
        let result = parse_bundle(&c.json).and_then(|b| verify_bundle(&b, &corpus_trusted(), None));
        if POLICY_CHECKS.contains(&c.check) {
            // Judged by the trust policy (verifier crate): here only the
            // rule's own breakage must not trip another core check, except
            // for forged keys (the court's keys reject them).
            if c.check == "sealer_not_trusted" || c.check == "witness_not_trusted" {
                assert!(result.is_err(), "{}", c.name);
                let b = parse_bundle(&c.json).unwrap();
                verify_bundle(&b, &TrustedKeys::from_bundle(&b).unwrap(), None)
                    .unwrap_or_else(|e| panic!("{}: self-consistent forgery: {e}", c.name));
            } else {
                result.unwrap_or_else(|e| panic!("{}: {e}", c.name));
            }
            continue;
        }
        let e = result.expect_err(c.name);
        assert_eq!(e.check(), c.check, "{}: {e}", c.name);
        assert!(e.to_string().contains(c.reason), "{}: {e}", c.name);
        core_checked += 1;
    }
    assert!(core_checked >= 25, "{core_checked}");
}

#[test]
fn frozen_v1_bundles_still_verify() {
    let dir = corpus_dir().join("v1-frozen");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let b = parse_bundle(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut keys = corpus_trusted();
        keys.quorum = b.keys.quorum;
        verify_bundle(&b, &keys, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert_eq!(n, 5);
}

/// Every string that names a unit enum variant (suite, evidence algorithm,
/// anchor status), rewritten in serde's map form `{"sha256": null}`, is
/// refused: strict parsing accepts the string form only (the TypeScript
/// verifier refused such a bundle this one answered VALID for).
#[test]
fn enum_values_in_map_form_are_refused() {
    fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s)
                if ["sha256", "sm3", "sha512", "anchored", "pending"].contains(&s.as_str()) =>
            {
                out.push(at)
            }
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    pointers(x, format!("{at}/{k}"), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    pointers(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut pending = fixture();
    pending.anchor.status = AnchorState::Pending;
    pending.anchor.receipts.clear();
    for b in [fixture(), pending] {
        let v = serde_json::to_value(&b).unwrap();
        assert!(serde_json::from_value::<Bundle>(v.clone()).is_ok());
        let mut found = Vec::new();
        pointers(&v, String::new(), &mut found);
        assert!(
            found.len() >= 3,
            "suite, evidence algorithm and status: {found:?}"
        );
        for p in found {
            let mut m = v.clone();
            let name = m.pointer(&p).unwrap().as_str().unwrap().to_owned();
            *m.pointer_mut(&p).unwrap() = serde_json::json!({ name: null });
            let e = serde_json::from_value::<Bundle>(m).unwrap_err();
            assert!(
                e.to_string().contains("expected a string")
                    || e.to_string().contains("invalid type"),
                "{p}: {e}"
            );
        }
    }
}
