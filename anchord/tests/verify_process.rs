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

    // Without trusted keys: valid, with a warning.
    let o = verify(&["--bundle".as_ref(), bpath.as_os_str()]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--trusted-keys"));

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
            block_time_us: 1_764_000_100_000_000,
            receipt: "{}".into(),
        })
        .await
        .unwrap();
    let b = bundle(&prover, 5).await;
    let bpath = write_json(&dir, "anchored.json", &b);
    let o = verify(&[
        "--bundle".as_ref(),
        bpath.as_os_str(),
        "--trusted-keys".as_ref(),
        keys.as_os_str(),
    ]);
    assert_eq!(code(&o), 0);
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
    let o = verify(&["--bundle".as_ref(), bpath.as_os_str(), "--online".as_ref()]);
    assert_eq!(code(&o), 1);
    // This receipt records no endpoint to look it up at: --online must say so
    // and refuse, never pass silently. (The lookup itself is tested against
    // the judicial-chain simulator in tests/tests/pipeline.rs.)
    assert!(
        stdout(&o).contains("INVALID (anchor_online)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("records no block URL"),
        "{}",
        stdout(&o)
    );
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
