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
    NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[7; 32]).expect("valid seed")
}

/// Witness `i`: `w{i}.test`, seed `(10+i)`×32.
pub fn witness(i: u8) -> NoteSigner {
    NoteSigner::from_seed(
        &format!("w{i}.test"),
        ALG_COSIGNATURE_V1,
        &[10u8.wrapping_add(i); 32],
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
        let entries: Vec<Entry> = (first..first + PER_BLOCK)
            .map(|s| entry(alg, s))
            .collect();
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
    let body = Checkpoint::new(ORIGIN, size, root).body();
    let mut note = SignedNote::new(body.clone());
    note.signatures
        .push(sealer().sign(&body).expect("sealer signs"));
    for &w in witnesses {
        note.signatures
            .push(witness(w).cosign(&body, COSIGNED_AT).expect("witness cosigns"));
    }
    note.format()
}

/// The simulator's transaction id (`docs/judicial-gateway-v1.md`).
pub fn sim_tx_id(account: &str, key: &str, origin: &str, size: u64, root_b64: &str, n: u64) -> String {
    let s = format!("anchord-sim-tx/v1\n{account}\n{key}\n{origin}\n{size}\n{root_b64}\n{n}");
    hex::encode(HashSuite::Sha256.digest(s.as_bytes()))
}

/// A receipt as the relay records it (`relay/src/worker.rs` `confirm`).
pub fn receipt(suite: HashSuite, log: &[Digest32], from: u64, chain: &Chain, size: u64) -> AnchorReceipt {
    let root = merkle::root(suite, &log[..size as usize]);
    let root_b64 = encode_hash(&root);
    let body = format!("{ORIGIN}\n{size}\n{root_b64}\n");
    let key_d = HashSuite::Sha256.digest_parts(&[
        b"anchord-anchor/v1\n",
        chain.target().as_bytes(),
        b"\n",
        body.as_bytes(),
    ]);
    let key = hex::encode(&key_d[..16]);
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
                "kind": "anchord.checkpoint/v1", "origin": ORIGIN, "size": size, "root": root_b64,
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
            ("judicial", chain_id, tx, block_hash, time_ms * 1000, details)
        }
        Chain::Evm { chain_id, rpc, .. } => {
            let mut payload = b"ANCHORD1".to_vec();
            payload.extend_from_slice(&size.to_be_bytes());
            payload.extend_from_slice(&root);
            payload.extend_from_slice(ORIGIN.as_bytes());
            let input = format!("0x{}", hex::encode(&payload));
            let tx = format!(
                "0x{}",
                hex::encode(HashSuite::Sha256.digest(input.as_bytes()))
            );
            let block_hash = format!(
                "0x{}",
                hex::encode(HashSuite::Sha256.digest(format!("evm block {block_number}").as_bytes()))
            );
            let details = serde_json::json!({
                "rpc": rpc,
                "from": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                "to": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                "nonce": size,
                "input": input,
                "confirmations": 1,
                "confirmedAtHead": block_number,
                "payloadFormat": "ANCHORD1 || u64be size || root(32) || origin utf-8",
            });
            let time_s = 1_764_000_200 + size as i64;
            ("evm", chain_id, tx, block_hash, time_s * 1_000_000, details)
        }
    };
    let raw = serde_json::json!({
        "version": 1,
        "target": chain.target(),
        "chainKind": kind,
        "chainId": chain_id,
        "txId": tx_id,
        "blockNumber": block_number,
        "blockHash": block_hash,
        "blockTimeUs": block_time_us,
        "idempotencyKey": key,
        "checkpoint": { "origin": ORIGIN, "size": size, "root": root_b64, "body": body },
        "details": details,
    });
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
        audit_path: merkle::inclusion_proof(spec.suite, &leaves, idx)
            .expect("inclusion proof"),
        block: BundleBlock::from_header(&headers[height as usize]),
        block_log_path: merkle::inclusion_proof(spec.suite, &log[..size as usize], height)
            .expect("inclusion proof"),
        checkpoint: BundleCheckpoint {
            size,
            root,
            origin: ORIGIN.into(),
            signed_note: signed_note(size, root, &spec.witnesses),
            timestamp_token: None,
        },
        keys: DeclaredKeys {
            sealer: sealer().verifier().vkey(),
            witnesses: spec
                .witnesses
                .iter()
                .map(|&w| witness(w).verifier().vkey())
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
