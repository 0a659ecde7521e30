//! `anchord verify` and `anchord export` as a court or notary runs them:
//! a bundle assembled from a real ledger (blocks sealed by the batcher's
//! code), checked offline against a file or a hash and trusted keys; exit
//! codes 0 valid, 1 invalid with the check named, 2 usage error; the .ots
//! export parsed and walked by the python opentimestamps library.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anchord_batcher::config::BatcherConfig;
use anchord_core::bundle::{Bundle, DeclaredKeys};
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ledger::{AppendBatch, Ledger, NewEntry, ReceiptRow};
use anchord_testkit::TestDb;
use anchord_verifier::VerifierConfig;
use anchord_verifier::prover::{Lookup, Prover};

const BIN: &str = env!("CARGO_BIN_EXE_anchord");
const SUITE: HashSuite = HashSuite::Sha256;
const ORIGIN: &str = "anchord.test/ledger";

fn sealer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[42; 32]).unwrap()
}

fn file(i: usize) -> Vec<u8> {
    format!("电子合同 CONTRACT-{i:03}").into_bytes()
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(anchord_testkit::unique("anchord_verify"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 6 entries sealed in blocks of 4; returns the ledger and a prover.
async fn ledger_with_blocks(dir: &Path) -> (TestDb, Ledger, Prover) {
    let (db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(SUITE).await.unwrap();
    let entries = (0..6)
        .map(|i| NewEntry {
            tenant: "bank-a".into(),
            external_id: format!("CONTRACT-{i:03}"),
            hash_alg: EvidenceAlg::Sha256,
            evidence_hash: EvidenceAlg::Sha256.hash(&file(i)),
            metadata: Some(r#"{"type":"contract"}"#.into()),
            source: None,
            raw: bytes::Bytes::new(),
        })
        .collect();
    ledger
        .append(&AppendBatch {
            suite: SUITE,
            consumer_group: None,
            received_at_us: 1_764_000_000_000_000,
            entries,
            rejections: vec![],
            positions: vec![],
        })
        .await
        .unwrap();
    let key = dir.join("sealer.key");
    std::fs::write(&key, sealer().private_key_text()).unwrap();
    let bc = BatcherConfig {
        block_max_entries: 4,
        origin: ORIGIN.into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let mut sealed = 0;
    for _ in 0..200 {
        if sealed == 2 {
            break;
        }
        match anchord_batcher::seal_once(&bc, SUITE, &ledger)
            .await
            .unwrap()
        {
            Some(_) => sealed += 1,
            None => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    assert_eq!(sealed, 2);
    let keys = DeclaredKeys {
        sealer: sealer().verifier().vkey(),
        witnesses: vec![],
        quorum: 0,
    };
    let config = VerifierConfig {
        pending_cache_ttl_s: 0,
        anchored_cache_ttl_s: 0,
        anchor_view_ttl_ms: 0,
        ..VerifierConfig::default()
    };
    let prover = Prover::new(ledger.clone(), SUITE, keys, &config);
    (db, ledger, prover)
}

async fn bundle(p: &Prover, i: usize) -> Bundle {
    match p
        .by_hash(&EvidenceAlg::Sha256.hash(&file(i)), None)
        .await
        .unwrap()
    {
        Lookup::Found(s) => s.bundle.clone(),
        other => panic!("no bundle for {i}: {other:?}"),
    }
}

fn write_json(dir: &Path, name: &str, b: &Bundle) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(b).unwrap()).unwrap();
    p
}

fn trusted_keys(dir: &Path) -> PathBuf {
    let p = dir.join("trusted.toml");
    std::fs::write(
        &p,
        format!("sealers = [\"{}\"]\n", sealer().verifier().vkey()),
    )
    .unwrap();
    p
}

fn verify(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .env_clear()
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn verify_exit_codes_and_reasons() {
    let dir = tmpdir();
    let (_db, ledger, prover) = ledger_with_blocks(&dir).await;
    let b = bundle(&prover, 5).await;
    let bpath = write_json(&dir, "b.json", &b);
    let keys = trusted_keys(&dir);
    let evidence = dir.join("contract.txt");
    std::fs::write(&evidence, file(5)).unwrap();

    // A fresh bundle verifies against the file and trusted keys.
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--file".as_ref(),
        evidence.as_os_str(),
        "--trusted-keys".as_ref(),
        keys.as_os_str(),
    ]);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).starts_with("VALID"));
    assert!(
        stdout(&o).contains("pending"),
        "not anchored yet: {}",
        stdout(&o)
    );

    // Without a trust policy: never VALID (exit 3), however consistent.
    let o = verify(&["--bundle".as_ref(), bpath.as_os_str()]);
    assert_eq!(code(&o), 3);
    assert!(
        stdout(&o).starts_with("UNTRUSTED (no_trust_policy): signatures valid, signer not trusted"),
        "{}",
        stdout(&o)
    );

    // One changed byte in the file: a mismatch.
    let mut changed = file(5);
    changed[0] ^= 1;
    std::fs::write(&evidence, &changed).unwrap();
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--file".as_ref(),
        evidence.as_os_str(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("INVALID (evidence_mismatch)"),
        "{}",
        stdout(&o)
    );

    // The hash, given as hex.
    let hx = hex::encode(&b.entry.evidence_hash);
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--hash".as_ref(),
        hx.as_ref(),
        "--trust".as_ref(),
        keys.as_os_str(),
    ]);
    assert_eq!(code(&o), 0);

    // Tampered parts, each with its own reason.
    type Mutation = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("leaf_hash", Box::new(|b| b.entry.external_id.push('X'))),
        ("audit_path", Box::new(|b| b.audit_path[0][0] ^= 1)),
        ("block_header", Box::new(|b| b.block.sealed_at_us += 1)),
        ("block_log_path", Box::new(|b| b.block_log_path[0][0] ^= 1)),
        (
            "sealer_signature",
            Box::new(|b| {
                let note = &mut b.checkpoint.signed_note;
                let pos = note.rfind(' ').unwrap() + 3;
                let c = if &note[pos..pos + 1] == "A" { "B" } else { "A" };
                note.replace_range(pos..pos + 1, c);
            }),
        ),
    ];
    for (check, m) in cases {
        let mut t = b.clone();
        m(&mut t);
        let p = write_json(&dir, "t.json", &t);
        let o = verify(&[
            "--bundle".as_ref(),
            p.as_os_str(),
            "--trusted-keys".as_ref(),
            keys.as_os_str(),
        ]);
        assert_eq!(code(&o), 1, "{check}");
        assert!(
            stdout(&o).contains(&format!("INVALID ({check})")),
            "{check}: {}",
            stdout(&o)
        );
    }

    // The certificate from the command line, read back with pdftotext.
    let pdf = dir.join("cert.pdf");
    let o = Command::new(BIN)
        .args(["export", "--format", "pdf", "--bundle"])
        .arg(&bpath)
        .arg("--trust")
        .arg(&keys)
        .arg("--out")
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by scripts/test-peers)");
    let t = String::from_utf8(t.stdout).unwrap();
    assert!(
        t.contains("电子数据保全证书") && t.contains("CONTRACT-005"),
        "{t}"
    );
    // It shows the court's command, with its trust file, and what was verified.
    assert!(t.contains("anchord verify --trust trusted.toml"), "{t}");
    assert!(t.contains("Verified") && t.contains("sha256"), "{t}");
    // No certificate without a trust policy, nor for an untrusted signer.
    let o = Command::new(BIN)
        .args(["export", "--format", "pdf", "--bundle"])
        .arg(&bpath)
        .arg("--out")
        .arg(dir.join("none.pdf"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.join("none.pdf").exists());

    // Usage errors.
    let o = verify(&["--bundle".as_ref(), dir.join("missing.json").as_os_str()]);
    assert_eq!(code(&o), 2);
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--hash".as_ref(),
        "zz".as_ref(),
    ]);
    assert_eq!(code(&o), 2);
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--file".as_ref(),
        "a".as_ref(),
        "--hash".as_ref(),
        hx.as_ref(),
    ]);
    assert_eq!(code(&o), 2);
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{}").unwrap();
    let o = verify(&["--bundle".as_ref(), garbage.as_os_str()]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("INVALID (format)"));

    // Anchored: the receipt is checked offline; --online looks it up.
    ledger
        .record_anchor_receipt(&ReceiptRow {
            target: "hz-court".into(),
            checkpoint_size: 2,
            chain_kind: "judicial".into(),
            chain_id: "hz".into(),
            tx_id: "tx-1".into(),
            block_number: 9,
            block_hash: "bh".into(),
            // Anchored after sealing (an anchor may not predate its block).
            block_time_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as i64,
            receipt: "{}".into(),
        })
        .await
        .unwrap();
    let b = bundle(&prover, 5).await;
    let bpath = write_json(&dir, "anchored.json", &b);
    // Keys without a chain registry cannot vouch for the anchor.
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--trusted-keys".as_ref(),
        keys.as_os_str(),
    ]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    assert!(stdout(&o).starts_with("UNTRUSTED (anchor_not_trusted)"));
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "{}\n[chains.hz-court]\nkind = \"judicial\"\nchain_id = \"hz\"\n",
            std::fs::read_to_string(&keys).unwrap()
        ),
    )
    .unwrap();
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--trust".as_ref(),
        policy.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // ANCHORD_WRITE_FROZEN=1 froze these prover-made bundles (a real
    // ledger, the batcher's seal path) into testdata/bundles/v1-frozen/prover/;
    // frozen_prover_bundles_still_verify keeps them verifying.
    if std::env::var_os("ANCHORD_WRITE_FROZEN").is_some() {
        let out = corpus().join("v1-frozen/prover");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::copy(dir.join("b.json"), out.join("pending.json")).unwrap();
        std::fs::copy(&bpath, out.join("anchored.json")).unwrap();
        std::fs::copy(&policy, out.join("trust-policy.toml")).unwrap();
        std::fs::write(out.join("pending.evidence"), file(5)).unwrap();
    }
    assert!(
        stdout(&o).contains("anchor     hz-court: judicial hz tx tx-1 block 9"),
        "{}",
        stdout(&o)
    );
    let mut t = b.clone();
    t.anchor.receipts[0].checkpoint_root[0] ^= 1;
    let p = write_json(&dir, "t.json", &t);
    let o = verify(&["--bundle".as_ref(), p.as_os_str()]);
    assert!(
        stdout(&o).contains("INVALID (anchor_receipt)"),
        "{}",
        stdout(&o)
    );
    // --online without a policy: nowhere trusted to look (usage error).
    let o = verify(&["--bundle".as_ref(), bpath.as_os_str(), "--online".as_ref()]);
    assert_eq!(code(&o), 2);
    // The policy lists no endpoint for this target: --online must say so
    // and refuse, never pass silently. (Lookups against real chains:
    // a_real_receipt_relabelled_or_backdated_is_rejected_online below.)
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--trust".as_ref(),
        policy.as_os_str(),
        "--online".as_ref(),
    ]);
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("UNCONFIRMED (anchor_online)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("lists no endpoint"), "{}", stdout(&o));
}

fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.anchord/peers/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test-peers (installs the python opentimestamps package)",
        p.display()
    );
    p
}

/// Walk an .ots file with python-opentimestamps: print the digest reached
/// at each attestation, with the attestation.
const WALK_OTS: &str = r#"
import sys
from opentimestamps.core.timestamp import DetachedTimestampFile
from opentimestamps.core.serialize import BytesDeserializationContext
data = open(sys.argv[1], 'rb').read()
d = DetachedTimestampFile.deserialize(BytesDeserializationContext(data))
print("file", d.file_digest.hex())
for msg, att in d.timestamp.all_attestations():
    print("att", msg.hex(), type(att).__name__, att.__class__.__name__ == "UnknownAttestation" and att.TAG.hex() or "", getattr(att, "payload", b"").decode() if hasattr(att, "payload") else getattr(att, "uri", ""))
"#;

#[tokio::test]
async fn ots_export_is_parsed_and_walked_by_python_opentimestamps() {
    let py = python();
    let dir = tmpdir();
    let (_db, ledger, prover) = ledger_with_blocks(&dir).await;
    let script = dir.join("walk.py");
    std::fs::write(&script, WALK_OTS).unwrap();
    let export = |b: &Bundle, name: &str| {
        let bp = write_json(&dir, &format!("{name}.json"), b);
        let out = dir.join(format!("{name}.ots"));
        let o = Command::new(BIN)
            .args(["export", "--format", "ots", "--bundle"])
            .arg(&bp)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = Command::new(&py).arg(&script).arg(&out).output().unwrap();
        assert!(
            o.status.success(),
            "python: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    // Pending: a pending attestation at the checkpoint root.
    let b = bundle(&prover, 1).await;
    let out = export(&b, "pending");
    assert!(
        out.contains(&format!("file {}", hex::encode(&b.entry.evidence_hash))),
        "{out}"
    );
    let att = format!("att {} PendingAttestation", hex::encode(b.checkpoint.root));
    assert!(out.contains(&att), "{out}");
    // Anchored: our ANCHORD1 attestation at the anchored checkpoint's root.
    ledger
        .record_anchor_receipt(&ReceiptRow {
            target: "hz-court".into(),
            checkpoint_size: 1,
            chain_kind: "judicial".into(),
            chain_id: "hz".into(),
            tx_id: "tx-7".into(),
            block_number: 3,
            block_hash: "bh".into(),
            block_time_us: 1_764_000_100_000_000,
            receipt: "{}".into(),
        })
        .await
        .unwrap();
    let b = bundle(&prover, 1).await;
    assert_eq!(b.checkpoint.size, 1);
    let out = export(&b, "anchored");
    let att = format!(
        "att {} UnknownAttestation {}",
        hex::encode(b.checkpoint.root),
        hex::encode(b"ANCHORD1")
    );
    assert!(out.contains(&att), "{out}");
    assert!(out.contains("\"tx_id\":\"tx-7\""), "{out}");
}

// ---------------------------------------------------------------------------
// Trust: the verdict rests on the court's trust policy (docs/trust-policy.md).
// ---------------------------------------------------------------------------

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/bundles")
}

fn run_verify(bundle: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .arg("verify")
        .arg("--bundle")
        .arg(bundle)
        .args(extra)
        .output()
        .unwrap()
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn corpus_is_judged_rule_by_rule_by_anchord_verify() {
    let dir = corpus();
    let policy = dir.join("trust-policy.toml");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let valid = manifest["valid"].as_array().unwrap();
    assert!(valid.len() >= 4);
    for v in valid {
        let b = dir.join(v["file"].as_str().unwrap());
        let f = dir.join(v["evidence"].as_str().unwrap());
        let o = run_verify(
            &b,
            &[
                "--trust",
                policy.to_str().unwrap(),
                "--file",
                f.to_str().unwrap(),
            ],
        );
        assert_eq!(code(&o), 0, "{}: {}", v["file"], describe(&o));
        assert!(stdout(&o).starts_with("VALID\n"), "{}", describe(&o));
    }
    let invalid = manifest["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 30);
    for c in invalid {
        let b = dir.join(c["file"].as_str().unwrap());
        let o = run_verify(&b, &["--trust", policy.to_str().unwrap()]);
        let exit = c["exit"].as_i64().unwrap() as i32;
        let word = if exit == 3 { "UNTRUSTED" } else { "INVALID" };
        let head = format!("{word} ({})", c["check"].as_str().unwrap());
        assert_eq!(code(&o), exit, "{}: {}", c["file"], describe(&o));
        assert!(
            stdout(&o).starts_with(&head),
            "{}: want {head}: {}",
            c["file"],
            describe(&o)
        );
        assert!(
            stdout(&o).contains(c["reason"].as_str().unwrap()),
            "{}: want {:?}: {}",
            c["file"],
            c["reason"],
            describe(&o)
        );
    }
}

#[test]
fn frozen_v1_bundles_still_verify_with_anchord_verify() {
    let dir = corpus().join("v1-frozen");
    let policy = dir.join("trust-policy.toml");
    let old_keys = dir.join("trusted-keys.toml");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        n += 1;
        let o = run_verify(&p, &["--trust", policy.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}: {}", p.display(), describe(&o));
        // Their v1 --trusted-keys file still loads: keys trusted, but a
        // file without a chain registry cannot vouch for an anchor.
        let o = run_verify(&p, &["--trusted-keys", old_keys.to_str().unwrap()]);
        if p.to_string_lossy().contains("pending") {
            assert_eq!(code(&o), 0, "{}", describe(&o));
        } else {
            assert_eq!(code(&o), 3, "{}", describe(&o));
            assert!(
                stdout(&o).starts_with("UNTRUSTED (anchor_not_trusted)"),
                "{}",
                describe(&o)
            );
        }
    }
    assert_eq!(n, 5);
}

#[test]
fn without_a_trust_policy_a_self_consistent_bundle_is_never_valid() {
    let dir = corpus();
    for name in [
        "valid/anchored-judicial-evm.json",
        "invalid/self-signed-sealer.json",
    ] {
        let o = run_verify(&dir.join(name), &[]);
        assert_eq!(code(&o), 3, "{name}: {}", describe(&o));
        assert!(
            stdout(&o)
                .starts_with("UNTRUSTED (no_trust_policy): signatures valid, signer not trusted"),
            "{}",
            describe(&o)
        );
        assert!(!stdout(&o).contains("VALID\n"), "{}", describe(&o));
        let o = run_verify(&dir.join(name), &["--json"]);
        assert_eq!(code(&o), 3);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["verdict"], "UNTRUSTED");
        assert_eq!(v["check"], "no_trust_policy");
    }
    // The forger's own keys verify the forgery; the court's do not.
    let o = run_verify(
        &dir.join("invalid/self-signed-sealer.json"),
        &["--trust", dir.join("trust-policy.toml").to_str().unwrap()],
    );
    assert_eq!(code(&o), 3, "{}", describe(&o));
    assert!(
        stdout(&o)
            .starts_with("UNTRUSTED (sealer_not_trusted): signatures valid, signer not trusted")
    );
    // --online needs a policy: there is nowhere trusted to look.
    let o = run_verify(&dir.join("valid/anchored-judicial-evm.json"), &["--online"]);
    assert_eq!(code(&o), 2, "{}", describe(&o));
}

/// A 20-line fake gateway that confirms whatever it is asked about.
async fn fake_gateway(
    r: anchord_core::bundle::AnchorReceipt,
    origin: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let (h, r, origin) = (h.clone(), r.clone(), origin.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            axum::Json(serde_json::json!({
                "chainId": r.chain_id, "height": r.block_number, "hash": r.block_hash,
                "time": r.block_time_us / 1000, "prevHash": "00",
                "txs": [{"txId": r.tx_id, "evidence": {"type": "c2sp-checkpoint", "origin": origin,
                    "size": r.checkpoint_size, "root": anchord_core::checkpoint::encode_hash(&r.checkpoint_root)}}],
            }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn policy_with_hz(dir: &Path, endpoint: &str, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(corpus().join("trust-policy.toml")).unwrap();
    let text = base.replace(
        "[chains.hz-court]\nkind = \"judicial\"\nchain_id = \"sim-court\"\nendpoints = [\"http://127.0.0.1:9\"]",
        &format!("[chains.hz-court]\nkind = \"judicial\"\nchain_id = \"sim-court\"\nendpoints = [\"{endpoint}\"]"),
    );
    assert_ne!(text, base);
    let p = dir.join(anchord_testkit::unique("policy") + ".toml");
    std::fs::write(&p, format!("{text}{extra}")).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fake_gateway_named_in_the_bundle_is_never_contacted() {
    use anchord_core::bundle::corpus::{self, Chain, Spec};
    let dir = tmpdir();
    // A bundle whose receipt names the forger's gateway, which would
    // confirm anything (the issue's attack: a non-existent transaction).
    let probe = corpus::build(&Spec {
        receipts: vec![(corpus::hz_court(), 3)],
        ..Spec::default()
    });
    let (fake, hits) = fake_gateway(
        probe.anchor.receipts[0].clone(),
        probe.checkpoint.origin.clone(),
    )
    .await;
    let b = corpus::build(&Spec {
        receipts: vec![(
            Chain::Judicial {
                target: "hz-court".into(),
                chain_id: "sim-court".into(),
                gateway: fake.clone(),
            },
            3,
        )],
        ..Spec::default()
    });
    let bpath = write_json(&dir, "fake.json", &b);
    // The court's registry names its own endpoint for hz-court (down here).
    let policy = policy_with_hz(&dir, &format!("http://127.0.0.1:{}", closed_port()), "");
    let o = tokio::task::spawn_blocking({
        let (bpath, policy) = (bpath.clone(), policy.clone());
        move || run_verify(&bpath, &["--trust", policy.to_str().unwrap(), "--online"])
    })
    .await
    .unwrap();
    assert_ne!(code(&o), 0, "{}", describe(&o));
    assert_eq!(code(&o), 4, "{}", describe(&o));
    assert!(
        stdout(&o).starts_with("UNCONFIRMED (anchor_online)"),
        "{}",
        describe(&o)
    );
    assert!(!stdout(&o).contains(&fake), "{}", describe(&o));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the fake gateway was contacted"
    );
    // Even with --allow-bundle-endpoints, a bundle's endpoint on a
    // loopback (private, link-local, metadata) address is refused before
    // any connection: verifying a bundle must not probe the court's network.
    let o = tokio::task::spawn_blocking({
        let (bpath, policy) = (bpath.clone(), policy.clone());
        move || {
            run_verify(
                &bpath,
                &[
                    "--trust",
                    policy.to_str().unwrap(),
                    "--online",
                    "--allow-bundle-endpoints",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code(&o), 4, "{}", describe(&o));
    assert!(
        describe(&o).contains("was not contacted") && describe(&o).contains("--egress-allow"),
        "{}",
        describe(&o)
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a bundle's loopback endpoint was contacted without --egress-allow"
    );
    // Only explicit flags let the bundle's own endpoint be asked.
    let o = tokio::task::spawn_blocking(move || {
        run_verify(
            &bpath,
            &[
                "--trust",
                policy.to_str().unwrap(),
                "--online",
                "--allow-bundle-endpoints",
                "--egress-allow",
                "127.0.0.1",
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "{}",
        describe(&o)
    );
}

/// A bad `--egress-allow` entry is the caller's mistake: a usage error (exit
/// 2, naming the entry) before anything is read or contacted, never a
/// verdict (it was UNCONFIRMED, exit 4, once the online step built its
/// client).
#[test]
fn a_bad_egress_allow_entry_is_a_usage_error_not_a_verdict() {
    use anchord_core::bundle::corpus::{self, Spec};
    let dir = tmpdir();
    let b = corpus::build(&Spec {
        receipts: vec![(corpus::hz_court(), 3)],
        ..Spec::default()
    });
    let bpath = write_json(&dir, "b.json", &b);
    let policy = policy_with_hz(&dir, &format!("http://127.0.0.1:{}", closed_port()), "");
    for bad in ["not a host!", "10.0.0.0/33", "", "http://10.0.0.1/", "a..b"] {
        let o = run_verify(
            &bpath,
            &[
                "--trust",
                policy.to_str().unwrap(),
                "--online",
                "--allow-bundle-endpoints",
                "--egress-allow",
                "127.0.0.1",
                "--egress-allow",
                bad,
            ],
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 2, "--egress-allow {bad:?}: {}", describe(&o));
        assert!(
            stdout(&o).is_empty(),
            "--egress-allow {bad:?}: no verdict expected: {}",
            describe(&o)
        );
        assert!(
            stderr.contains("--egress-allow") && stderr.contains(&format!("{bad:?}")),
            "--egress-allow {bad:?}: the message names the option and the entry: {stderr}"
        );
    }
    // Good entries still reach the verdict.
    let o = run_verify(
        &bpath,
        &[
            "--trust",
            policy.to_str().unwrap(),
            "--online",
            "--allow-bundle-endpoints",
            "--egress-allow",
            "10.0.0.0/8",
            "--egress-allow",
            "hooks.bank.internal",
        ],
    );
    assert_eq!(code(&o), 4, "{}", describe(&o));
}

/// The corpus bundle anchored for real on a judicial chain simulator: its
/// chain file holds the transaction in block `receipt.block_number`; the
/// receipt's block hash and time are the chain's.
async fn anchored_on_sim(dir: &Path) -> (Bundle, anchord_relay::sim::SimHandle) {
    use anchord_core::bundle::corpus::{self, Spec};
    use anchord_relay::gateway::Evidence;
    use anchord_relay::sim::{SimBlock, SimConfig, SimTx};
    let mut b = corpus::build(&Spec {
        receipts: vec![(corpus::hz_court(), 3)],
        ..Spec::default()
    });
    let r = b.anchor.receipts[0].clone();
    let data = dir.join("chain");
    std::fs::create_dir_all(&data).unwrap();
    let mut blocks: Vec<SimBlock> = Vec::new();
    let tx_time_ms = r.block_time_us / 1000;
    for h in 0..=r.block_number {
        let txs = if h == r.block_number {
            vec![SimTx {
                tx_id: r.tx_id.clone(),
                account_id: "anchord-bank-a".into(),
                idempotency_key: r.receipt["idempotencyKey"].as_str().unwrap().into(),
                evidence: Evidence {
                    kind: "c2sp-checkpoint".into(),
                    origin: b.checkpoint.origin.clone(),
                    size: r.checkpoint_size,
                    root: anchord_core::checkpoint::encode_hash(&r.checkpoint_root),
                },
                received_at: tx_time_ms - 5,
            }]
        } else {
            vec![]
        };
        let mut blk = SimBlock {
            height: h,
            prev_hash: blocks.last().map_or("0".repeat(64), |p| p.hash.clone()),
            time: tx_time_ms - (r.block_number - h) as i64 * 100,
            txs,
            hash: String::new(),
        };
        blk.hash = blk.compute_hash();
        blocks.push(blk);
    }
    let text: String = blocks
        .iter()
        .map(|b| serde_json::to_string(b).unwrap() + "\n")
        .collect();
    std::fs::write(data.join("chain.jsonl"), text).unwrap();
    let hash = blocks.last().unwrap().hash.clone();
    let rr = &mut b.anchor.receipts[0];
    rr.block_hash = hash.clone();
    rr.receipt["blockHash"] = serde_json::json!(hash);
    rr.receipt["details"]["response"]["blockHash"] = serde_json::json!(hash);
    let sim = anchord_relay::sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data,
        chain_id: "sim-court".into(),
        accounts: vec![],
        block_ms: 100,
        wait_ms: 100,
        faults: Default::default(),
    })
    .await
    .unwrap();
    (b, sim)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_receipt_relabelled_or_backdated_is_rejected_online() {
    let dir = tmpdir();
    let (b, sim) = anchored_on_sim(&dir).await;
    let bj = format!(
        "\n[chains.bj-sim]\nkind = \"judicial\"\nchain_id = \"bj-internet-court\"\nendpoints = [\"{}\"]\n",
        sim.url()
    );
    let policy = policy_with_hz(&dir, &sim.url(), &bj);
    let run = |b: &Bundle, name: &str| {
        let p = write_json(&dir, name, b);
        let policy = policy.clone();
        tokio::task::spawn_blocking(move || {
            run_verify(&p, &["--trust", policy.to_str().unwrap(), "--online"])
        })
    };
    // The real receipt: confirmed at the court's own endpoint.
    let o = run(&b, "real.json").await.unwrap();
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert!(
        stdout(&o).contains("online     hz-court: chain sim-court block"),
        "{}",
        describe(&o)
    );
    assert!(
        stdout(&o).contains(&format!("at {}", sim.url())),
        "{}",
        describe(&o)
    );

    // Relabelled to another court's target: that target is another chain.
    let mut t = b.clone();
    t.anchor.receipts[0].target = "bj-court".into();
    t.anchor.receipts[0].receipt["target"] = serde_json::json!("bj-court");
    let o = run(&t, "relabelled.json").await.unwrap();
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(
        stdout(&o).starts_with("INVALID (anchor_registry)"),
        "{}",
        describe(&o)
    );

    // Relabelled with that court's chain id too: its endpoint (here the
    // same simulator) serves another chain.
    let mut t = b.clone();
    let rr = &mut t.anchor.receipts[0];
    rr.target = "bj-sim".into();
    rr.chain_id = "bj-internet-court".into();
    rr.receipt = serde_json::json!({});
    let o = run(&t, "relabelled-chain.json").await.unwrap();
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(
        stdout(&o).starts_with("INVALID (anchor_online)"),
        "{}",
        describe(&o)
    );
    assert!(stdout(&o).contains("serves chain"), "{}", describe(&o));

    // Backdated by a year: before its block was even sealed.
    let mut t = b.clone();
    t.anchor.receipts[0].block_time_us -= 365 * 86_400_000_000;
    t.anchor.receipts[0].receipt = serde_json::json!({});
    let o = run(&t, "backdated-year.json").await.unwrap();
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(
        stdout(&o).starts_with("INVALID (time_order)"),
        "{}",
        describe(&o)
    );

    // Backdated by 400 s (within the 10-minute clock tolerance of the
    // sealing time, so offline it passes) or postdated by an hour: the
    // chain's block time is beyond the policy's 300 s tolerance.
    for (name, shift) in [
        ("backdated-400s", -400_000_000),
        ("postdated-hour", 3_600_000_000),
    ] {
        let mut t = b.clone();
        t.anchor.receipts[0].block_time_us += shift;
        t.anchor.receipts[0].receipt = serde_json::json!({});
        let o = run(&t, &format!("{name}.json")).await.unwrap();
        assert_eq!(code(&o), 1, "{name}: {}", describe(&o));
        assert!(
            stdout(&o).starts_with("INVALID (anchor_online)"),
            "{name}: {}",
            describe(&o)
        );
        assert!(
            stdout(&o).contains("tolerance 300 s"),
            "{name}: {}",
            describe(&o)
        );
    }

    // Another transaction id, block or checkpoint: not on the chain.
    for (name, f) in [
        (
            "tx",
            Box::new(|r: &mut anchord_core::bundle::AnchorReceipt| r.tx_id = "ab".repeat(32))
                as Box<dyn Fn(&mut anchord_core::bundle::AnchorReceipt)>,
        ),
        ("block", Box::new(|r| r.block_number -= 1)),
        ("hash", Box::new(|r| r.block_hash = "cd".repeat(32))),
    ] {
        let mut t = b.clone();
        f(&mut t.anchor.receipts[0]);
        t.anchor.receipts[0].receipt = serde_json::json!({});
        let o = run(&t, &format!("{name}.json")).await.unwrap();
        assert_eq!(code(&o), 1, "{name}: {}", describe(&o));
        assert!(
            stdout(&o).starts_with("INVALID (anchor_online)"),
            "{name}: {}",
            describe(&o)
        );
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_exports_its_trust_policy_and_a_court_verifies_with_it() {
    use anchord_core::bundle::corpus;
    let dir = tmpdir();
    let (b, sim) = anchored_on_sim(&dir).await;
    // The deployment: the corpus sealer, one judicial target (the sim).
    let sealer_key = dir.join("sealer.key");
    std::fs::write(&sealer_key, corpus::sealer().private_key_text()).unwrap();
    let rsa = dir.join("judicial.pem");
    let o = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = dir.join("anchord.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"postgres://unused@127.0.0.1:1/none\"\n[batcher]\norigin = \"{}\"\nsigning_key = \"{}\"\n\n[[relay.targets]]\nname = \"hz-court\"\nkind = \"judicial\"\nurl = \"{}\"\naccount_id = \"anchord-bank-a\"\nsigning_key = \"{}\"\n",
            corpus::ORIGIN,
            sealer_key.display(),
            sim.url(),
            rsa.display()
        ),
    )
    .unwrap();
    let trust = dir.join("trust.toml");
    let o = tokio::task::spawn_blocking({
        let (config, trust) = (config.clone(), trust.clone());
        move || {
            Command::new(BIN)
                .env_clear()
                .arg("--config")
                .arg(&config)
                .args(["trust", "export", "--out"])
                .arg(&trust)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", describe(&o));
    let text = std::fs::read_to_string(&trust).unwrap();
    assert!(
        text.contains("format = \"anchord.trust-policy/v1\""),
        "{text}"
    );
    assert!(text.contains(&corpus::sealer().verifier().vkey()), "{text}");
    // The chain id was asked from the gateway, not taken from a bundle.
    assert!(text.contains("chain_id = \"sim-court\""), "{text}");
    assert!(text.contains(&sim.url()), "{text}");
    let sha = hex::encode(HashSuite::Sha256.digest(text.as_bytes()));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&sha),
        "{}",
        describe(&o)
    );
    // A court verifies the deployment's bundle with it, online.
    let p = write_json(&dir, "b.json", &b);
    let o = tokio::task::spawn_blocking(move || {
        run_verify(&p, &["--trust", trust.to_str().unwrap(), "--online"])
    })
    .await
    .unwrap();
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert!(
        stdout(&o).contains(&format!("policy     trust policy sha256 {sha}")),
        "{}",
        describe(&o)
    );
    sim.stop().await;
}

#[test]
fn frozen_prover_bundles_still_verify() {
    let dir = corpus().join("v1-frozen/prover");
    let policy = dir.join("trust-policy.toml");
    let evidence = dir.join("pending.evidence");
    for name in ["pending.json", "anchored.json"] {
        let o = run_verify(
            &dir.join(name),
            &[
                "--trust",
                policy.to_str().unwrap(),
                "--file",
                evidence.to_str().unwrap(),
            ],
        );
        assert_eq!(code(&o), 0, "{name}: {}", describe(&o));
        assert!(stdout(&o).starts_with("VALID\n"), "{}", describe(&o));
    }
}

/// One entry per evidence algorithm (`EvidenceAlg::ALL`, the kinds the load
/// generator and the demo publish) sealed in one block of a `suite`
/// deployment; the bundle of each, in `EvidenceAlg::ALL` order.
async fn bundles_of_every_kind(dir: &Path, suite: HashSuite) -> (TestDb, Vec<Bundle>) {
    let (db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(suite).await.unwrap();
    let entries = EvidenceAlg::ALL
        .iter()
        .enumerate()
        .map(|(i, alg)| NewEntry {
            tenant: "bank-a".into(),
            external_id: format!("KIND-{}", alg.name()),
            hash_alg: *alg,
            evidence_hash: alg.hash(&file(100 + i)),
            metadata: None,
            source: None,
            raw: bytes::Bytes::new(),
        })
        .collect();
    ledger
        .append(&AppendBatch {
            suite,
            consumer_group: None,
            received_at_us: 1_764_000_000_000_000,
            entries,
            rejections: vec![],
            positions: vec![],
        })
        .await
        .unwrap();
    let key = dir.join(format!("sealer-{}.key", suite.name()));
    std::fs::write(&key, sealer().private_key_text()).unwrap();
    let bc = BatcherConfig {
        block_max_entries: 3,
        origin: ORIGIN.into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let mut sealed = false;
    for _ in 0..200 {
        if anchord_batcher::seal_once(&bc, suite, &ledger)
            .await
            .unwrap()
            .is_some()
        {
            sealed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(sealed, "the block of every kind was not sealed");
    let keys = DeclaredKeys {
        sealer: sealer().verifier().vkey(),
        witnesses: vec![],
        quorum: 0,
    };
    let prover = Prover::new(ledger.clone(), suite, keys, &VerifierConfig::default());
    let mut out = Vec::new();
    for (i, alg) in EvidenceAlg::ALL.iter().enumerate() {
        match prover
            .by_hash(&alg.hash(&file(100 + i)), None)
            .await
            .unwrap()
        {
            Lookup::Found(s) => out.push(s.bundle.clone()),
            other => panic!("no bundle for {} evidence: {other:?}", alg.name()),
        }
    }
    (db, out)
}

/// python-opentimestamps checks an `.ots` as `ots verify` would up to the
/// calendar: the stamped file (argv 2) hashed with the file's own hash op
/// gives the file digest, and the walk reaches the expected root (argv 3),
/// where the attestations sit. Prints `ok <file digest>`.
const CHECK_OTS: &str = r#"
import sys
from opentimestamps.core.timestamp import DetachedTimestampFile
from opentimestamps.core.serialize import BytesDeserializationContext
d = DetachedTimestampFile.deserialize(BytesDeserializationContext(open(sys.argv[1], 'rb').read()))
with open(sys.argv[2], 'rb') as f:
    stamped = DetachedTimestampFile.from_fd(d.file_hash_op, f)
assert stamped.file_digest == d.file_digest, "the stamped file does not match the .ots file digest"
roots = {msg.hex() for msg, att in d.timestamp.all_attestations()}
assert roots == {sys.argv[3]}, "attestations at %s, expected the checkpoint root %s" % (roots, sys.argv[3])
print("ok", d.file_digest.hex())
"#;

/// The demo's proof steps (`scripts/demo`, `proof_steps`: verify against the
/// trust policy, export the `.ots` and check it with python-opentimestamps,
/// export the certificate) over one entry of every evidence kind: SHA-256
/// evidence is stamped as itself, SM3 and SHA-512 evidence through its
/// canonical entry written beside the `.ots`. Guards the README's first
/// command failing when it happened to pick SM3 evidence.
#[tokio::test]
async fn the_demo_proof_steps_work_for_every_evidence_kind() {
    let py = python();
    let dir = tmpdir();
    let script = dir.join("check_ots.py");
    std::fs::write(&script, CHECK_OTS).unwrap();
    let keys = trusted_keys(&dir);
    let (_db, bundles) = bundles_of_every_kind(&dir, SUITE).await;
    for b in &bundles {
        let kind = b.entry.hash_alg.name();
        let bpath = write_json(&dir, &format!("proof-{kind}.json"), b);
        let hx = hex::encode(&b.entry.evidence_hash);
        let o = verify(&[
            "--bundle".as_ref(),
            bpath.as_os_str(),
            "--hash".as_ref(),
            hx.as_ref(),
            "--trust".as_ref(),
            keys.as_os_str(),
        ]);
        assert_eq!(code(&o), 0, "{kind}: {}", stdout(&o));
        let ots = dir.join(format!("proof-{kind}.ots"));
        let o = Command::new(BIN)
            .args(["export", "--format", "ots", "--bundle"])
            .arg(&bpath)
            .arg("--out")
            .arg(&ots)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{kind}: {}{}",
            stdout(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        // What the .ots stamps: the evidence itself, or the canonical entry
        // beside it (`proof-<kind>`, the .ots path without `.ots`).
        let entry_file = dir.join(format!("proof-{kind}"));
        let stamped = if b.entry.hash_alg == EvidenceAlg::Sha256 {
            assert!(!entry_file.exists(), "{kind}: no entry file for SHA-256");
            let f = dir.join(format!("evidence-{kind}"));
            std::fs::write(&f, file(100)).unwrap();
            f
        } else {
            assert!(
                stdout(&o).contains("canonical entry"),
                "{kind}: the export says what it stamps: {}",
                stdout(&o)
            );
            let bytes = std::fs::read(&entry_file).unwrap();
            assert_eq!(bytes[0], 0x00, "{kind}: the RFC 6962 leaf prefix");
            assert_eq!(&bytes[1..], b.entry.encode().as_slice(), "{kind}");
            assert!(
                bytes
                    .windows(b.entry.evidence_hash.len())
                    .any(|w| w == b.entry.evidence_hash.as_slice()),
                "{kind}: the stamped entry holds the evidence hash"
            );
            entry_file
        };
        let o = Command::new(&py)
            .arg(&script)
            .arg(&ots)
            .arg(&stamped)
            .arg(hex::encode(b.checkpoint.root))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{kind}: python-opentimestamps: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let expected_digest = if b.entry.hash_alg == EvidenceAlg::Sha256 {
            hx.clone()
        } else {
            hex::encode(b.leaf_hash)
        };
        assert_eq!(stdout(&o).trim(), format!("ok {expected_digest}"), "{kind}");
        // A stamped file one byte off does not match.
        let mut off = std::fs::read(&stamped).unwrap();
        off[5] ^= 1;
        let tampered = dir.join(format!("tampered-{kind}"));
        std::fs::write(&tampered, off).unwrap();
        let o = Command::new(&py)
            .arg(&script)
            .arg(&ots)
            .arg(&tampered)
            .arg(hex::encode(b.checkpoint.root))
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "{kind}: a tampered stamped file passed"
        );
        // The certificate.
        let pdf = dir.join(format!("certificate-{kind}.pdf"));
        let o = Command::new(BIN)
            .args(["export", "--format", "pdf", "--bundle"])
            .arg(&bpath)
            .arg("--trust")
            .arg(&keys)
            .arg("--out")
            .arg(&pdf)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{kind}: certificate: {}{}",
            stdout(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"), "{kind}");
    }
    assert_eq!(bundles.len(), EvidenceAlg::ALL.len());
}

/// In an SM3-tree deployment no `.ots` can reach the checkpoint root: the
/// export refuses with a line that says so (the demo prints a skip line).
#[tokio::test]
async fn an_sm3_tree_deployment_refuses_the_ots_export_clearly() {
    let dir = tmpdir();
    let (_db, bundles) = bundles_of_every_kind(&dir, HashSuite::Sm3).await;
    for b in &bundles {
        let kind = b.entry.hash_alg.name();
        let bpath = write_json(&dir, &format!("proof-{kind}.json"), b);
        let ots = dir.join(format!("proof-{kind}.ots"));
        let o = Command::new(BIN)
            .args(["export", "--format", "ots", "--bundle"])
            .arg(&bpath)
            .arg("--out")
            .arg(&ots)
            .output()
            .unwrap();
        assert_eq!(code(&o), 1, "{kind}");
        assert!(
            stdout(&o).contains("OpenTimestamps needs a SHA-256 deployment"),
            "{kind}: {}",
            stdout(&o)
        );
        assert!(!ots.exists() && !dir.join(format!("proof-{kind}")).exists());
    }
}

/// `url` with its user replaced by `role` (no password: the test cluster
/// trusts local connections).
fn url_as(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{role}@{host}")
}

fn anchord_with(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_serve_proofs_audit_and_status_as_a_select_only_role_and_check_the_schema() {
    use anchord_testkit::process::{Proc, free_port};
    let dir = tmpdir();
    let (db, _ledger, _prover) = ledger_with_blocks(&dir).await;
    // A read replica's view: a role that may only SELECT. PostgreSQL
    // refuses it any write (and any DDL), as a hot standby would.
    let role = anchord_testkit::unique("anchord_ro");
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; \
             GRANT CONNECT ON DATABASE {db} TO {role}; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};",
            db = db.name()
        ))
        .await
        .unwrap();
    let key = dir.join("sealer.key");
    let (verifier_port, admin_port) = (free_port(), free_port());
    let config = dir.join("reader.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\
             [batcher]\norigin = \"{ORIGIN}\"\nsigning_key = \"{}\"\n\
             [verifier]\nlisten = \"127.0.0.1:{verifier_port}\"\n\
             [[relay.targets]]\nname = \"court\"\nkind = \"judicial\"\n\
             url = \"http://127.0.0.1:9\"\naccount_id = \"bank-a\"\nsigning_key = \"unused.pem\"\n",
            url_as(db.url(), &role),
            key.display()
        ),
    )
    .unwrap();

    // The verifier serves a proof and its checkpoint with that role.
    let log = dir.join("verifier.log");
    let mut verifier = Proc(
        Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .arg("--config")
            .arg(&config)
            .arg("verifier")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let proof = format!(
        "http://127.0.0.1:{verifier_port}/v1/proofs/{}",
        hex::encode(EvidenceAlg::Sha256.hash(&file(1)))
    );
    let mut answered = None;
    for _ in 0..300 {
        if let Some(status) = verifier.0.try_wait().unwrap() {
            panic!(
                "the verifier exited ({status}) as a SELECT-only role:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Ok(r) = http.get(&proof).send().await {
            answered = Some((r.status().as_u16(), r.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = answered.unwrap_or_else(|| {
        panic!(
            "the verifier never answered:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert_eq!(status, 200, "{body}");
    let b: Bundle = serde_json::from_str(&body).unwrap();
    assert_eq!(b.entry.external_id, "CONTRACT-001");
    // Every other read route answers from the replica's view, too.
    let base = format!("http://127.0.0.1:{verifier_port}");
    for path in [
        "/v1/proofs/by-id/bank-a/CONTRACT-004".to_owned(),
        "/v1/checkpoints/latest".to_owned(),
        "/v1/checkpoints/1".to_owned(),
        "/v1/checkpoints/consistency?from=1&to=2".to_owned(),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 200, "{path}: {}", r.text().await.unwrap());
    }
    let r = http
        .post(format!("{base}/v1/verify"))
        .json(&serde_json::json!({"hash": hex::encode(EvidenceAlg::Sha256.hash(&file(2)))}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 200, "/v1/verify: {}", r.text().await.unwrap());
    let ready = http
        .get(format!("http://127.0.0.1:{admin_port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    drop(verifier);

    // audit and status run with it, too.
    let o = anchord_with(&config, &["audit", "--no-progress"]);
    assert_eq!(code(&o), 0, "audit: {}", describe(&o));
    assert!(stdout(&o).contains("verdict: OK"), "{}", describe(&o));
    let o = anchord_with(&config, &["status"]);
    assert_eq!(code(&o), 0, "status: {}", describe(&o));
    assert!(stdout(&o).contains("entries 6"), "{}", describe(&o));
    let o = anchord_with(&config, &["status", "--json"]);
    assert_eq!(code(&o), 0, "status --json: {}", describe(&o));
    let o = anchord_with(&config, &["relay", "gaps", "--late-after-s", "0"]);
    assert_eq!(code(&o), 0, "relay gaps: {}", describe(&o));
    assert!(stdout(&o).contains("target court:"), "{}", describe(&o));

    // A reader never migrates: behind the binary's schema it says what is
    // found, what is expected, and what to run.
    let last = anchord_ledger::MIGRATIONS.last().unwrap().version;
    admin
        .execute("DELETE FROM schema_migrations WHERE version = $1", &[&last])
        .await
        .unwrap();
    for args in [&["status"][..], &["audit", "--no-progress"]] {
        let o = anchord_with(&config, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 1, "{args:?}: {}", describe(&o));
        assert!(
            err.contains(&format!("at version {}", last - 1))
                && err.contains(&format!("expects version {last}"))
                && err.contains("anchord migrate"),
            "{args:?}: {err}"
        );
    }
    let found: i64 = admin
        .query_one(
            "SELECT count(*) FROM schema_migrations WHERE version = $1",
            &[&last],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, 0, "a reader applied a migration");

    let _ = admin
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await;
}

#[tokio::test]
async fn verify_prints_times_in_rfc3339_utc_and_the_local_zone_and_keeps_us_in_json() {
    let dir = tmpdir();
    let (_db, _ledger, prover) = ledger_with_blocks(&dir).await;
    let b = bundle(&prover, 1).await;
    let path = write_json(&dir, "b.json", &b);
    let trust = trusted_keys(&dir);
    let run = |tz: &str, json: bool| {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("TZ", tz)
            .arg("verify")
            .arg("--bundle")
            .arg(&path)
            .arg("--trust")
            .arg(&trust);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    // The ledger recorded the entries at 1_764_000_000_000_000 µs.
    let o = run("Asia/Shanghai", false);
    assert!(
        stdout(&o).contains(
            "recorded   seq 1 at 2025-11-24T16:00:00Z (2025-11-25T00:00:00+08:00 Asia/Shanghai)"
        ),
        "{}",
        describe(&o)
    );
    assert!(!stdout(&o).contains("µs"), "{}", describe(&o));
    let o = run("UTC", false);
    assert!(
        stdout(&o).contains("recorded   seq 1 at 2025-11-24T16:00:00Z\n"),
        "{}",
        describe(&o)
    );
    let o = run("Asia/Shanghai", true);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["report"]["received_at_us"],
        serde_json::json!(1_764_000_000_000_000i64),
        "{}",
        describe(&o)
    );
}

#[path = "verify_process/cross_verifier.rs"]
mod cross_verifier;

/// `anchord verify … | head -0`: the reader has gone before the report is
/// written. The old code panicked in `println!` (exit 101, a backtrace on
/// stderr); the verdict's exit code must survive a closed pipe.
#[test]
fn a_reader_that_closes_the_pipe_does_not_turn_a_verdict_into_a_panic() {
    let dir = corpus();
    let policy = dir.join("trust-policy.toml");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let v = &manifest["valid"][0];
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(BIN)
        .env_clear()
        .arg("verify")
        .arg("--bundle")
        .arg(dir.join(v["file"].as_str().unwrap()))
        .arg("--trust")
        .arg(&policy)
        .arg("--file")
        .arg(dir.join(v["evidence"].as_str().unwrap()))
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}

/// A file that is not JSON is judged `format` with a message that says
/// so, not "unsupported bundle format \"not a proof bundle: …\"".
#[test]
fn unparseable_input_is_named_as_not_a_bundle() {
    let dir = tmpdir();
    let p = dir.join("garbage.json");
    std::fs::write(&p, b"{\"format\": ").unwrap();
    let o = run_verify(&p, &[]);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("INVALID (format): not a proof bundle:"),
        "{out}"
    );
    assert!(!out.contains("unsupported bundle format"), "{out}");
}
