//! Deterministic proof bundles built from first principles (entries, block
//! trees, block log, signed and cosigned checkpoint, receipts in the relay's
//! raw format), for tests and for the published test-vector corpus under
//! `testdata/bundles/` (`docs/proof-format.md` §Test vectors).
//!
//! Everything is derived from fixed seeds and times, so the same call gives
//! the same bytes on every machine. No I/O: callers write the files.

use crate::checkpoint::{
    ALG_COSIGNATURE_V1, ALG_ED25519, BlockHeader, Checkpoint, GENESIS_PREV_HASH, NoteSigner,
    SignedNote, encode_hash,
};
use crate::entry::{Entry, EvidenceAlg};
use crate::merkle;
use crate::suite::{Digest32, HashSuite};

use super::{
    AnchorReceipt, AnchorState, AnchorStatus, BUNDLE_FORMAT_V1, Bundle, BundleBlock,
    BundleCheckpoint, DeclaredKeys,
};

/// The corpus deployment's checkpoint origin (and sealer key name).
pub const ORIGIN: &str = "anchord.test/ledger";
/// Blocks in the corpus ledger, entries per block.
pub const BLOCKS: u64 = 4;
pub const PER_BLOCK: u64 = 5;
/// When the corpus ledger received seq 0, and sealed block 0 (µs).
pub const RECEIVED_AT_US: i64 = 1_764_000_000_000_000;
pub const SEALED_AT_US: i64 = 1_764_000_001_000_000;
/// When the witnesses cosigned (Unix seconds): after sealing.
pub const COSIGNED_AT: u64 = 1_764_000_010;

/// The corpus sealer: seed `07`×32, named [`ORIGIN`].
pub fn sealer() -> NoteSigner {
    sealer_with(7)
}

/// A sealer named [`ORIGIN`] with seed `seed`×32 (another seed: a forger's
/// own key for the same name).
pub fn sealer_with(seed: u8) -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[seed; 32]).expect("valid seed")
}

/// Witness `i`: `w{i}.test`, seed `(10+i)`×32.
pub fn witness(i: u8) -> NoteSigner {
    witness_with(i, 10)
}

/// Witness `i` with seed `(base+i)`×32.
pub fn witness_with(i: u8, base: u8) -> NoteSigner {
    NoteSigner::from_seed(
        &format!("w{i}.test"),
        ALG_COSIGNATURE_V1,
        &[base.wrapping_add(i); 32],
    )
    .expect("valid seed")
}

/// Which chain a receipt is on, and the endpoint the relay recorded.
#[derive(Clone, Debug)]
pub enum Chain {
    /// A judicial gateway (`docs/judicial-gateway-v1.md`) at `gateway`.
    Judicial {
        target: String,
        chain_id: String,
        gateway: String,
    },
    /// An EVM chain reached through `rpc`.
    Evm {
        target: String,
        chain_id: String,
        rpc: String,
    },
}

impl Chain {
    pub fn target(&self) -> &str {
        match self {
            Chain::Judicial { target, .. } | Chain::Evm { target, .. } => target,
        }
    }
}

/// What to build.
#[derive(Clone, Debug)]
pub struct Spec {
    pub suite: HashSuite,
    pub evidence_alg: EvidenceAlg,
    /// The entry the bundle proves (0..BLOCKS*PER_BLOCK).
    pub seq: u64,
    /// The checkpoint the bundle ends at (> the entry's block height).
    pub checkpoint_size: u64,
    /// Witness numbers that cosign, and the declared quorum.
    pub witnesses: Vec<u8>,
    pub quorum: usize,
    /// Receipts: the chain and the anchored checkpoint size (>= checkpoint_size).
    pub receipts: Vec<(Chain, u64)>,
    /// When there are no receipts: the expected anchor time.
    pub expected_at_us: Option<i64>,
    /// The sealer's seed byte and the witnesses' seed base (7 and 10 are
    /// the corpus deployment's keys; others are a forger's).
    pub sealer_seed: u8,
    pub witness_seed_base: u8,
    /// When the witnesses cosign (Unix seconds).
    pub cosigned_at: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            suite: HashSuite::Sha256,
            evidence_alg: EvidenceAlg::Sha256,
            seq: 7,
            checkpoint_size: 3,
            witnesses: vec![1, 2],
            quorum: 2,
            receipts: vec![],
            expected_at_us: Some(SEALED_AT_US + 600_000_000),
            sealer_seed: 7,
            witness_seed_base: 10,
            cosigned_at: COSIGNED_AT,
        }
    }
}

/// The evidence file of `seq` (its hash is the entry's evidence hash).
pub fn evidence_file(seq: u64) -> Vec<u8> {
    format!("电子合同 LOAN-{seq:04}\n").into_bytes()
}

fn entry(alg: EvidenceAlg, seq: u64) -> Entry {
    Entry {
        seq,
        received_at_us: RECEIVED_AT_US + seq as i64,
        tenant: "bank-a".into(),
        external_id: format!("LOAN-{seq:04}"),
        hash_alg: alg,
        evidence_hash: alg.hash(&evidence_file(seq)),
        metadata: Some(r#"{"type":"loan"}"#.into()),
    }
}

/// The corpus ledger: every block's entries and header.
pub fn ledger(suite: HashSuite, alg: EvidenceAlg) -> (Vec<Vec<Entry>>, Vec<BlockHeader>) {
    let mut blocks = Vec::new();
    let mut headers: Vec<BlockHeader> = Vec::new();
    for h in 0..BLOCKS {
        let first = h * PER_BLOCK;
        let entries: Vec<Entry> = (first..first + PER_BLOCK).map(|s| entry(alg, s)).collect();
        let leaves: Vec<Digest32> = entries.iter().map(|e| e.leaf_hash(suite)).collect();
        headers.push(BlockHeader {
            suite,
            height: h,
            first_seq: first,
            last_seq: first + PER_BLOCK - 1,
            leaf_count: PER_BLOCK,
            merkle_root: merkle::root(suite, &leaves),
            prev_hash: headers.last().map_or(GENESIS_PREV_HASH, BlockHeader::hash),
            sealed_at_us: SEALED_AT_US + h as i64 * 1_000_000,
        });
        blocks.push(entries);
    }
    (blocks, headers)
}

/// The signed, cosigned note of a checkpoint.
pub fn signed_note(size: u64, root: Digest32, witnesses: &[u8]) -> String {
    signed_note_by(&Spec::default(), size, root, witnesses)
}

fn signed_note_by(spec: &Spec, size: u64, root: Digest32, witnesses: &[u8]) -> String {
    let body = Checkpoint::new(ORIGIN, size, root).body();
    let mut note = SignedNote::new(body.clone());
    note.signatures.push(
        sealer_with(spec.sealer_seed)
            .sign(&body)
            .expect("sealer signs"),
    );
    for &w in witnesses {
        note.signatures.push(
            witness_with(w, spec.witness_seed_base)
                .cosign(&body, spec.cosigned_at)
                .expect("witness cosigns"),
        );
    }
    note.format()
}

/// The simulator's transaction id (`docs/judicial-gateway-v1.md`).
pub fn sim_tx_id(
    account: &str,
    key: &str,
    origin: &str,
    size: u64,
    root_b64: &str,
    n: u64,
) -> String {
    let s = format!("anchord-sim-tx/v1\n{account}\n{key}\n{origin}\n{size}\n{root_b64}\n{n}");
    hex::encode(HashSuite::Sha256.digest(s.as_bytes()))
}

/// A receipt as the relay records it (`relay/src/worker.rs` `confirm`).
pub fn receipt(
    suite: HashSuite,
    log: &[Digest32],
    from: u64,
    chain: &Chain,
    size: u64,
) -> AnchorReceipt {
    let root = merkle::root(suite, &log[..size as usize]);
    let root_b64 = encode_hash(&root);
    let cp = Checkpoint::new(ORIGIN, size, root);
    let key = crate::anchor::idempotency_key(chain.target(), &cp);
    let block_number = 40 + size;
    let (kind, chain_id, tx_id, block_hash, block_time_us, details) = match chain {
        Chain::Judicial {
            chain_id, gateway, ..
        } => {
            let tx = sim_tx_id("anchord-bank-a", &key, ORIGIN, size, &root_b64, size);
            let time_ms = 1_764_000_100_000 + size as i64;
            let block_hash = hex::encode(
                HashSuite::Sha256.digest(format!("corpus block {block_number}").as_bytes()),
            );
            let evidence = serde_json::json!({
                "type": "c2sp-checkpoint", "origin": ORIGIN, "size": size, "root": root_b64,
            });
            let details = serde_json::json!({
                "gateway": gateway,
                "query": format!("{gateway}/v1/anchors/query"),
                "block": format!("{gateway}/v1/blocks/{block_number}"),
                "accountId": "anchord-bank-a",
                "idempotencyKey": key,
                "evidence": evidence,
                "response": {
                    "txId": tx, "status": "confirmed", "chainId": chain_id,
                    "blockHeight": block_number, "blockHash": block_hash, "blockTime": time_ms,
                    "idempotencyKey": key, "evidence": evidence,
                },
            });
            (
                "judicial",
                chain_id,
                tx,
                block_hash,
                time_ms * 1000,
                details,
            )
        }
        Chain::Evm { chain_id, rpc, .. } => {
            let input = crate::anchor::AnchorPayload::new(ORIGIN, size, root).to_hex_data();
            let tx = format!(
                "0x{}",
                hex::encode(HashSuite::Sha256.digest(input.as_bytes()))
            );
            let block_hash = format!(
                "0x{}",
                hex::encode(
                    HashSuite::Sha256.digest(format!("evm block {block_number}").as_bytes())
                )
            );
            let details = serde_json::json!({
                "rpc": rpc,
                "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                "to": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                "nonce": size,
                "input": input,
                "confirmations": 1,
                "confirmedAtHead": block_number,
                "payloadFormat": crate::anchor::PAYLOAD_FORMAT,
            });
            let time_s = 1_764_000_200 + size as i64;
            ("evm", chain_id, tx, block_hash, time_s * 1_000_000, details)
        }
    };
    let raw = crate::anchor::RawReceipt {
        target: chain.target(),
        chain_kind: kind,
        chain_id,
        tx_id: &tx_id,
        block_number,
        block_hash: &block_hash,
        block_time_us,
        genesis_hash: None,
        idempotency_key: &key,
        checkpoint: &cp,
        details: &details,
    }
    .to_json();
    AnchorReceipt {
        target: chain.target().into(),
        chain_kind: kind.into(),
        chain_id: chain_id.clone(),
        tx_id,
        block_number,
        block_hash,
        block_time_us,
        checkpoint_size: size,
        checkpoint_root: root,
        consistency_proof: merkle::consistency_proof(suite, &log[..size as usize], from)
            .expect("consistency proof"),
        receipt: raw,
    }
}

/// Build the bundle `spec` describes.
pub fn build(spec: &Spec) -> Bundle {
    let (blocks, headers) = ledger(spec.suite, spec.evidence_alg);
    let height = spec.seq / PER_BLOCK;
    let idx = spec.seq % PER_BLOCK;
    let e = blocks[height as usize][idx as usize].clone();
    let leaves: Vec<Digest32> = blocks[height as usize]
        .iter()
        .map(|e| e.leaf_hash(spec.suite))
        .collect();
    let log: Vec<Digest32> = headers.iter().map(BlockHeader::hash).collect();
    let size = spec.checkpoint_size;
    let root = merkle::root(spec.suite, &log[..size as usize]);
    let receipts: Vec<AnchorReceipt> = spec
        .receipts
        .iter()
        .map(|(c, s)| receipt(spec.suite, &log, size, c, *s))
        .collect();
    Bundle {
        format: BUNDLE_FORMAT_V1.into(),
        hash_suite: spec.suite,
        leaf_hash: e.leaf_hash(spec.suite),
        leaf_index: idx,
        audit_path: merkle::inclusion_proof(spec.suite, &leaves, idx).expect("inclusion proof"),
        block: BundleBlock::from_header(&headers[height as usize]),
        block_log_path: merkle::inclusion_proof(spec.suite, &log[..size as usize], height)
            .expect("inclusion proof"),
        checkpoint: BundleCheckpoint {
            size,
            root,
            origin: ORIGIN.into(),
            signed_note: signed_note_by(spec, size, root, &spec.witnesses),
            timestamp_token: None,
        },
        keys: DeclaredKeys {
            sealer: sealer_with(spec.sealer_seed).verifier().vkey(),
            witnesses: spec
                .witnesses
                .iter()
                .map(|&w| witness_with(w, spec.witness_seed_base).verifier().vkey())
                .collect(),
            quorum: spec.quorum,
        },
        anchor: AnchorStatus {
            status: if receipts.is_empty() {
                AnchorState::Pending
            } else {
                AnchorState::Anchored
            },
            expected_at_us: if receipts.is_empty() {
                spec.expected_at_us
            } else {
                None
            },
            receipts,
        },
        entry: e,
    }
}

/// The corpus deployment's judicial target (`hz-court` on `sim-court`).
pub fn hz_court() -> Chain {
    Chain::Judicial {
        target: "hz-court".into(),
        chain_id: "sim-court".into(),
        gateway: "http://127.0.0.1:7471".into(),
    }
}

/// The corpus deployment's EVM target (`evm-local`, chain id 31337).
pub fn evm_local() -> Chain {
    Chain::Evm {
        target: "evm-local".into(),
        chain_id: "31337".into(),
        rpc: "http://127.0.0.1:8545".into(),
    }
}

/// The valid corpus: (file stem, what it shows, bundle).
pub fn valid() -> Vec<(&'static str, &'static str, Bundle)> {
    vec![
        (
            "anchored-judicial-evm",
            "SHA-256 ledger, 2-of-2 witnesses, anchored on a judicial chain at the bundle's checkpoint and on an EVM chain at a later one (consistency proof)",
            build(&Spec {
                receipts: vec![(hz_court(), 3), (evm_local(), 4)],
                ..Spec::default()
            }),
        ),
        (
            "pending",
            "not anchored yet: status pending with the expected anchor time",
            build(&Spec::default()),
        ),
        (
            "anchored-sm3",
            "SM3 ledger and SM3 evidence, first entry of the last block",
            build(&Spec {
                suite: HashSuite::Sm3,
                evidence_alg: EvidenceAlg::Sm3,
                seq: 15,
                checkpoint_size: 4,
                receipts: vec![(hz_court(), 4)],
                ..Spec::default()
            }),
        ),
        (
            "anchored-sha512-evidence",
            "SHA-512 evidence in a SHA-256 ledger, block 0 in a checkpoint of size 1",
            build(&Spec {
                evidence_alg: EvidenceAlg::Sha512,
                seq: 0,
                checkpoint_size: 1,
                receipts: vec![(evm_local(), 2)],
                ..Spec::default()
            }),
        ),
    ]
}

/// One invalid bundle of the corpus and the rule it breaks.
#[derive(Clone, Debug)]
pub struct Case {
    /// File stem under `invalid/`.
    pub name: &'static str,
    /// The rule, as `docs/proof-format.md` states it.
    pub rule: &'static str,
    /// The check name `anchord verify` prints: `INVALID (<check>)` (exit 1)
    /// or `UNTRUSTED (<check>)` (exit 3).
    pub check: &'static str,
    /// A part of the message that names the rule.
    pub reason: &'static str,
    /// `anchord verify`'s exit code with the corpus trust policy.
    pub exit: u8,
    /// The bundle's JSON text.
    pub json: String,
}

fn base() -> serde_json::Value {
    serde_json::to_value(build(&Spec {
        receipts: vec![(hz_court(), 3), (evm_local(), 4)],
        ..Spec::default()
    }))
    .expect("a bundle is JSON")
}

fn flip_hex(s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    let i = c.len() - 1;
    c[i] = if c[i] == '0' { '1' } else { '0' };
    c.into_iter().collect()
}

/// The invalid corpus: one broken rule each, everything else as in
/// `anchored-judicial-evm`.
pub fn invalid() -> Vec<Case> {
    use serde_json::{Value, json};
    type Mutation = Box<dyn Fn(&mut Value)>;
    let m = |f: fn(&mut Value)| -> Mutation { Box::new(f) };
    let cases: Vec<(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        u8,
        Mutation,
    )> = vec![
        (
            "format-unknown-version",
            "format is anchord.proof-bundle/v1",
            "format",
            "unsupported bundle format",
            1,
            m(|v| v["format"] = json!("anchord.proof-bundle/v2")),
        ),
        (
            "unknown-top-level-field",
            "no unknown fields (top level)",
            "format",
            "unknown field `comment`",
            1,
            m(|v| v["comment"] = json!("trust me")),
        ),
        (
            "entry-unknown-field",
            "no unknown fields (entry)",
            "format",
            "unknown field `note`",
            1,
            m(|v| v["entry"]["note"] = json!("ignored?")),
        ),
        (
            "entry-metadata-missing",
            "every entry field is required (metadata: null when none)",
            "format",
            "missing field `metadata`",
            1,
            m(|v| {
                v["entry"].as_object_mut().map(|o| o.remove("metadata"));
            }),
        ),
        (
            "keys-witnesses-missing",
            "keys.witnesses is required",
            "format",
            "missing field `witnesses`",
            1,
            m(|v| {
                v["keys"].as_object_mut().map(|o| o.remove("witnesses"));
            }),
        ),
        (
            "keys-quorum-missing",
            "keys.quorum is required",
            "format",
            "missing field `quorum`",
            1,
            m(|v| {
                v["keys"].as_object_mut().map(|o| o.remove("quorum"));
            }),
        ),
        (
            "receipts-missing",
            "anchor.receipts is required ([] when pending)",
            "format",
            "missing field `receipts`",
            1,
            m(|v| {
                v["anchor"].as_object_mut().map(|o| o.remove("receipts"));
            }),
        ),
        (
            "uppercase-hex-leaf-hash",
            "hex is lowercase (hashes)",
            "format",
            "uppercase hex",
            1,
            m(|v| {
                v["leaf_hash"] = json!(v["leaf_hash"].as_str().unwrap_or_default().to_uppercase())
            }),
        ),
        (
            "uppercase-hex-evidence-hash",
            "hex is lowercase (entry.evidence_hash)",
            "format",
            "uppercase hex",
            1,
            m(|v| {
                v["entry"]["evidence_hash"] = json!(
                    v["entry"]["evidence_hash"]
                        .as_str()
                        .unwrap_or_default()
                        .to_uppercase()
                )
            }),
        ),
        (
            "timestamp-token-empty",
            "timestamp_token is null or a non-empty DER token",
            "format",
            "is empty",
            1,
            m(|v| v["checkpoint"]["timestamp_token"] = json!("")),
        ),
        (
            "timestamp-token-trailing-bytes",
            "timestamp_token is exactly one DER value, no trailing bytes",
            "format",
            "trailing bytes",
            1,
            m(|v| v["checkpoint"]["timestamp_token"] = json!("300302010100")),
        ),
        (
            "leaf-hash-mismatch",
            "leaf_hash is the entry's leaf hash",
            "leaf_hash",
            "the entry hashes to",
            1,
            m(|v| v["entry"]["external_id"] = json!("LOAN-9999")),
        ),
        (
            "audit-path-tampered",
            "audit_path leads to block.merkle_root",
            "audit_path",
            "does not verify",
            1,
            m(|v| {
                v["audit_path"][0] =
                    json!(flip_hex(v["audit_path"][0].as_str().unwrap_or_default()))
            }),
        ),
        (
            "block-header-tampered",
            "the header hashes to block.hash",
            "block_header",
            "the header hashes to",
            1,
            m(|v| {
                v["block"]["sealed_at_us"] =
                    json!(v["block"]["sealed_at_us"].as_i64().unwrap_or_default() + 1)
            }),
        ),
        (
            "block-log-path-tampered",
            "block_log_path leads to checkpoint.root",
            "block_log_path",
            "does not verify",
            1,
            m(|v| {
                v["block_log_path"][0] = json!(flip_hex(
                    v["block_log_path"][0].as_str().unwrap_or_default()
                ))
            }),
        ),
        (
            "duplicate-signature-line",
            "one signature line per key",
            "checkpoint",
            "two signature lines",
            1,
            m(|v| {
                let note = v["checkpoint"]["signed_note"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let last = note
                    .trim_end_matches('\n')
                    .rsplit('\n')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                v["checkpoint"]["signed_note"] = json!(format!("{note}{last}\n"));
            }),
        ),
        (
            "witness-quorum-not-met",
            "at least quorum trusted witnesses cosign",
            "witness_quorum",
            "1 of 2",
            1,
            m(|v| {
                let note = v["checkpoint"]["signed_note"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let kept: Vec<&str> = note
                    .split_inclusive('\n')
                    .filter(|l| !l.starts_with("— w2.test "))
                    .collect();
                v["checkpoint"]["signed_note"] = json!(kept.concat());
            }),
        ),
        (
            "duplicate-receipt-target",
            "at most one receipt per target",
            "anchor_receipt",
            "two receipts for the same target",
            1,
            m(|v| {
                let r = v["anchor"]["receipts"][0].clone();
                if let Some(a) = v["anchor"]["receipts"].as_array_mut() {
                    a.push(r);
                }
            }),
        ),
        (
            "receipt-smaller-checkpoint",
            "a receipt anchors a checkpoint at least as large as the bundle's",
            "anchor_receipt",
            "smaller than the bundle's",
            1,
            m(|v| v["anchor"]["receipts"][0]["checkpoint_size"] = json!(2)),
        ),
        (
            "receipt-consistency-tampered",
            "the anchored checkpoint is consistent with the bundle's",
            "anchor_receipt",
            "not consistent",
            1,
            m(|v| {
                v["anchor"]["receipts"][1]["consistency_proof"][0] = json!(flip_hex(
                    v["anchor"]["receipts"][1]["consistency_proof"][0]
                        .as_str()
                        .unwrap_or_default()
                ))
            }),
        ),
        (
            "raw-receipt-tx-id-contradicts",
            "the raw receipt agrees with the summary (txId)",
            "anchor_receipt",
            "raw receipt's txId",
            1,
            m(|v| {
                v["anchor"]["receipts"][0]["receipt"]["txId"] =
                    json!("0000000000000000000000000000000000000000000000000000000000000000")
            }),
        ),
        (
            "raw-receipt-block-number-contradicts",
            "the raw receipt agrees with the summary (blockNumber)",
            "anchor_receipt",
            "raw receipt's blockNumber",
            1,
            m(|v| v["anchor"]["receipts"][0]["block_number"] = json!(123)),
        ),
        (
            "raw-receipt-block-time-contradicts",
            "the raw receipt agrees with the summary (blockTimeUs)",
            "anchor_receipt",
            "raw receipt's blockTimeUs",
            1,
            m(|v| {
                v["anchor"]["receipts"][0]["block_time_us"] = json!(
                    v["anchor"]["receipts"][0]["block_time_us"]
                        .as_i64()
                        .unwrap_or_default()
                        - 1_000_000
                )
            }),
        ),
        (
            "raw-receipt-checkpoint-root-contradicts",
            "the raw receipt agrees with the summary (checkpoint root)",
            "anchor_receipt",
            "raw receipt's checkpoint.root",
            1,
            m(|v| {
                v["anchor"]["receipts"][0]["receipt"]["checkpoint"]["root"] =
                    json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            }),
        ),
        (
            "raw-receipt-evm-input-contradicts",
            "the raw EVM receipt's input is the anchored checkpoint's payload",
            "anchor_receipt",
            "details.input",
            1,
            m(|v| {
                v["anchor"]["receipts"][1]["receipt"]["details"]["input"] =
                    json!("0x414e43484f52443100")
            }),
        ),
        (
            "evm-tx-id-uppercase",
            "an EVM tx_id is 0x and 64 lowercase hex digits",
            "anchor_receipt",
            "lowercase hex",
            1,
            m(|v| {
                let t = v["anchor"]["receipts"][1]["tx_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_uppercase()
                    .replacen("0X", "0x", 1);
                v["anchor"]["receipts"][1]["tx_id"] = json!(t.clone());
                v["anchor"]["receipts"][1]["receipt"]["txId"] = json!(t);
            }),
        ),
        (
            "anchored-with-expected-time",
            "expected_at_us only on pending bundles",
            "anchor_receipt",
            "expected anchor time",
            1,
            m(|v| v["anchor"]["expected_at_us"] = json!(1_764_000_600_000_000_i64)),
        ),
        (
            "status-pending-with-receipts",
            "status is anchored exactly when there is a receipt",
            "anchor_receipt",
            "status Pending but 2 receipt(s)",
            1,
            m(|v| v["anchor"]["status"] = json!("pending")),
        ),
        (
            "anchor-backdated",
            "no anchor predates the sealing of the block (clock tolerance 10 min)",
            "time_order",
            "before block 1 was sealed",
            1,
            m(|v| {
                let t =
                    v["block"]["sealed_at_us"].as_i64().unwrap_or_default() - 365 * 86_400_000_000;
                v["anchor"]["receipts"][0]["block_time_us"] = json!(t);
                v["anchor"]["receipts"][0]["receipt"]["blockTimeUs"] = json!(t);
                v["anchor"]["receipts"][0]["receipt"]["details"]["response"]["blockTime"] =
                    json!(t / 1000);
            }),
        ),
        (
            "receipt-relabelled-target",
            "a receipt's chain kind and chain id are the trust policy's for its target",
            "anchor_registry",
            "the trust policy says",
            1,
            m(|v| {
                v["anchor"]["receipts"][0]["target"] = json!("bj-court");
                v["anchor"]["receipts"][0]["receipt"]["target"] = json!("bj-court");
            }),
        ),
        (
            "receipt-relabelled-chain",
            "a receipt's chain kind and chain id are the trust policy's for its target",
            "anchor_registry",
            "the trust policy says",
            1,
            m(|v| {
                v["anchor"]["receipts"][0]["chain_id"] = json!("bj-internet-court");
                v["anchor"]["receipts"][0]["receipt"]["chainId"] = json!("bj-internet-court");
                v["anchor"]["receipts"][0]["receipt"]["details"]["response"]["chainId"] =
                    json!("bj-internet-court");
            }),
        ),
        (
            "receipt-unknown-target",
            "every receipt's target is in the trust policy's chain registry",
            "anchor_not_trusted",
            "not in the trust policy",
            3,
            m(|v| {
                v["anchor"]["receipts"][0]["target"] = json!("hz-internet-court");
                v["anchor"]["receipts"][0]["receipt"]["target"] = json!("hz-internet-court");
            }),
        ),
    ];
    let mut out: Vec<Case> = cases
        .into_iter()
        .map(|(name, rule, check, reason, exit, f)| {
            let mut v = base();
            f(&mut v);
            Case {
                name,
                rule,
                check,
                reason,
                exit,
                json: pretty(&v),
            }
        })
        .collect();
    // Forgeries signed with keys the court does not trust.
    let forged = |spec: Spec| pretty(&serde_json::to_value(build(&spec)).expect("JSON"));
    out.push(Case {
        name: "self-signed-sealer",
        rule: "the sealer key is one the trust policy names",
        check: "sealer_not_trusted",
        reason: "signatures valid, signer not trusted",
        exit: 3,
        json: forged(Spec {
            sealer_seed: 66,
            receipts: vec![(hz_court(), 3)],
            ..Spec::default()
        }),
    });
    out.push(Case {
        name: "self-signed-witnesses",
        rule: "the witness quorum is met by witnesses the trust policy names",
        check: "witness_not_trusted",
        reason: "signatures valid, signer not trusted",
        exit: 3,
        json: forged(Spec {
            witness_seed_base: 66,
            receipts: vec![(hz_court(), 3)],
            ..Spec::default()
        }),
    });
    out.push(Case {
        name: "cosignature-predates-sealing",
        rule: "no cosignature predates the sealing of the block (clock tolerance 10 min)",
        check: "time_order",
        reason: "cosigned at",
        exit: 1,
        json: forged(Spec {
            cosigned_at: 1_700_000_000,
            receipts: vec![(hz_court(), 3)],
            ..Spec::default()
        }),
    });
    out
}

/// Pretty JSON with a final newline: the corpus files' form.
pub fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON");
    s.push('\n');
    s
}
