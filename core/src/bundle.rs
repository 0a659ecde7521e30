//! Proof bundles (`docs/proof-format.md`): one self-contained, versioned JSON
//! document per evidence item, and its offline verification.
//!
//! A bundle carries everything a court needs to check, without trusting
//! Anchord's operator, that an evidence hash was preserved, by whom, when,
//! and where it was anchored:
//!
//! ```text
//! entry ─leaf hash─▶ audit path ─▶ block merkle root ─▶ block header ─block hash─▶
//!   block-log inclusion path ─▶ checkpoint root ─▶ signed note (sealer + witnesses)
//!   ─▶ RFC 3161 token over SHA-256(checkpoint body) ─▶ anchor receipts
//! ```
//!
//! [`verify_bundle`] runs every check in that order and stops at the first
//! failure with a [`BundleError`] variant of its own, carrying the values
//! involved. No I/O: trusted keys are passed in, and RFC 3161 token checking
//! (which needs X.509) is delegated to a [`TimestampVerifier`] the caller
//! supplies.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{BlockHeader, Checkpoint, NoteError, NoteVerifier, SignedNote};
use crate::entry::{Entry, EntryError};
use crate::merkle::{self, ProofError};
use crate::suite::{Digest32, HashSuite};

/// The `format` field of every version-1 bundle.
pub const BUNDLE_FORMAT_V1: &str = "anchord.proof-bundle/v1";

/// One evidence item's proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT_V1`].
    pub format: String,
    /// The tree hash suite of the block trees and the block log.
    pub hash_suite: HashSuite,
    /// The evidence entry; its canonical encoding is the leaf. Parsed
    /// strictly: every field required, no unknown field, lowercase hex.
    #[serde(deserialize_with = "strict_entry::deserialize")]
    pub entry: Entry,
    /// `suite.leaf_hash(entry.encode())`, stated for convenience (checked).
    #[serde(with = "hex32")]
    pub leaf_hash: Digest32,
    /// The entry's index in its block's tree (`entry.seq - block.first_seq`).
    pub leaf_index: u64,
    /// RFC 9162 inclusion path of the leaf in the block tree, bottom-up.
    #[serde(with = "hex32_vec")]
    pub audit_path: Vec<Digest32>,
    /// The block header that commits to the block tree's root.
    pub block: BundleBlock,
    /// Inclusion of the block hash in the block log at `checkpoint.size`.
    #[serde(with = "hex32_vec")]
    pub block_log_path: Vec<Digest32>,
    /// The checkpoint the proof ends at (the anchored one when there is one).
    pub checkpoint: BundleCheckpoint,
    /// Keys the operator declares (advisory: a verifier should pass its own
    /// trusted keys; see [`TrustedKeys::from_bundle`]).
    pub keys: DeclaredKeys,
    /// Where the checkpoint was anchored.
    pub anchor: AnchorStatus,
}

/// A block header in JSON, with its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleBlock {
    pub height: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub leaf_count: u64,
    #[serde(with = "hex32")]
    pub merkle_root: Digest32,
    #[serde(with = "hex32")]
    pub prev_hash: Digest32,
    pub sealed_at_us: i64,
    /// `suite.leaf_hash(header encoding)`, stated (checked).
    #[serde(with = "hex32")]
    pub hash: Digest32,
}

impl BundleBlock {
    /// The JSON form of a header.
    pub fn from_header(h: &BlockHeader) -> Self {
        BundleBlock {
            height: h.height,
            first_seq: h.first_seq,
            last_seq: h.last_seq,
            leaf_count: h.leaf_count,
            merkle_root: h.merkle_root,
            prev_hash: h.prev_hash,
            sealed_at_us: h.sealed_at_us,
            hash: h.hash(),
        }
    }

    /// The header in a tree of `suite`.
    pub fn header(&self, suite: HashSuite) -> BlockHeader {
        BlockHeader {
            suite,
            height: self.height,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            leaf_count: self.leaf_count,
            merkle_root: self.merkle_root,
            prev_hash: self.prev_hash,
            sealed_at_us: self.sealed_at_us,
        }
    }
}

/// The checkpoint with every signature collected, and its RFC 3161 token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleCheckpoint {
    pub size: u64,
    #[serde(with = "hex32")]
    pub root: Digest32,
    pub origin: String,
    /// The C2SP signed note, verbatim (text, blank line, signature lines).
    pub signed_note: String,
    /// DER RFC 3161 TimeStampToken over SHA-256 of the checkpoint body, hex
    /// (required: `null` when there is none; never empty, exactly one DER
    /// value with nothing after it).
    #[serde(with = "opt_hex")]
    pub timestamp_token: Option<Vec<u8>>,
}

/// The keys the operator says signed the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredKeys {
    /// The sealer's vkey.
    pub sealer: String,
    /// The configured witnesses' vkeys (required; `[]` when none).
    pub witnesses: Vec<String>,
    /// How many witness cosignatures make a checkpoint final (required).
    pub quorum: usize,
}

/// Whether, and where, the bundle's checkpoint is anchored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorStatus {
    /// `anchored` (at least one receipt) or `pending`.
    pub status: AnchorState,
    /// For a pending bundle: when the operator expects the anchor,
    /// microseconds since the Unix epoch. Fetch the bundle again after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_at_us: Option<i64>,
    /// One receipt per target that anchored this checkpoint or a later one
    /// (required; `[]` when pending; at most one per target).
    pub receipts: Vec<AnchorReceipt>,
}

/// See [`AnchorStatus::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchorState {
    Anchored,
    Pending,
}

deserialize_from_string_only!(AnchorState {
    "anchored" => AnchorState::Anchored,
    "pending" => AnchorState::Pending,
});

/// A target chain's record of anchoring a checkpoint of the block log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorReceipt {
    /// The configured target name (e.g. `hz-court`).
    pub target: String,
    /// The kind of chain (e.g. `evm`, `hangzhou-court`).
    pub chain_kind: String,
    pub chain_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub block_hash: String,
    pub block_time_us: i64,
    /// The size of the anchored checkpoint (>= the bundle's checkpoint size).
    pub checkpoint_size: u64,
    /// The root of the anchored checkpoint.
    #[serde(with = "hex32")]
    pub checkpoint_root: Digest32,
    /// RFC 9162 consistency proof from the bundle's checkpoint to the
    /// anchored one (empty when they are the same).
    #[serde(with = "hex32_vec")]
    pub consistency_proof: Vec<Digest32>,
    /// The relay's raw receipt, verbatim (chain-specific).
    pub receipt: serde_json::Value,
}

/// Keys a verifier trusts, and how many witnesses it requires.
pub struct TrustedKeys {
    /// Any of these may have signed the checkpoint as the sealer.
    pub sealers: Vec<NoteVerifier>,
    /// Witness cosignature keys.
    pub witnesses: Vec<NoteVerifier>,
    /// Distinct witness cosignatures required (0: none required).
    pub quorum: usize,
    /// Checks RFC 3161 tokens; `None` skips the token (reported).
    pub timestamps: Option<Box<dyn TimestampVerifier + Send + Sync>>,
    /// True when the keys came from the bundle itself, not from the verifier.
    pub from_bundle: bool,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys")
            .field("sealers", &self.sealers)
            .field("witnesses", &self.witnesses)
            .field("quorum", &self.quorum)
            .field("timestamps", &self.timestamps.is_some())
            .field("from_bundle", &self.from_bundle)
            .finish()
    }
}

impl TrustedKeys {
    /// The keys the bundle declares. Checks then show only that the bundle is
    /// internally consistent, not that the operator's keys are the right
    /// ones; the report says so ([`Report::keys_from_bundle`]).
    pub fn from_bundle(b: &Bundle) -> Result<Self, BundleError> {
        let parse = |v: &str| NoteVerifier::parse(v).map_err(|e| BundleError::Keys(e.to_string()));
        Ok(TrustedKeys {
            sealers: vec![parse(&b.keys.sealer)?],
            witnesses: b
                .keys
                .witnesses
                .iter()
                .map(|v| parse(v))
                .collect::<Result<_, _>>()?,
            quorum: b.keys.quorum,
            timestamps: None,
            from_bundle: true,
        })
    }
}

/// Verifies an RFC 3161 token over a SHA-256 digest; returns genTime in
/// Unix seconds. Implemented outside `core` (X.509 and CMS parsing).
pub trait TimestampVerifier {
    fn verify(&self, token: &[u8], digest: &[u8; 32]) -> Result<i64, String>;
}

/// Why a bundle does not verify: one variant per check, in check order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("unsupported bundle format {0:?} (want {BUNDLE_FORMAT_V1:?})")]
    Format(String),
    /// The text is not a bundle at all (bad JSON, a missing or mistyped
    /// field); judged under the same check, `format`.
    #[error("not a proof bundle: {0}")]
    Parse(String),
    #[error("trusted keys: {0}")]
    Keys(String),
    #[error(
        "evidence mismatch: the file/hash is {given}, the bundle's entry preserves {preserved}"
    )]
    EvidenceMismatch { given: String, preserved: String },
    #[error("entry is not a valid evidence entry: {0}")]
    Entry(#[from] EntryError),
    #[error("leaf hash: the entry hashes to {computed}, the bundle states {stated}")]
    LeafHash { computed: String, stated: String },
    #[error(
        "leaf index {leaf_index} does not place seq {seq} in block {height} (seqs {first_seq}..={last_seq})"
    )]
    LeafIndex {
        leaf_index: u64,
        seq: u64,
        height: u64,
        first_seq: u64,
        last_seq: u64,
    },
    #[error("audit path (entry to block root) does not verify: {0}")]
    AuditPath(ProofError),
    #[error("block header: {0}")]
    BlockHeader(String),
    #[error(
        "block log path (block {height} to checkpoint of size {size}) does not verify: {source}"
    )]
    BlockLogPath {
        height: u64,
        size: u64,
        source: ProofError,
    },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("sealer signature on the checkpoint: {0}")]
    SealerSignature(NoteError),
    #[error("witness cosignature: {0}")]
    WitnessSignature(NoteError),
    #[error(
        "witness quorum not met: {have} of {need} required cosignatures (valid: {cosigned_by:?})"
    )]
    Quorum {
        have: usize,
        need: usize,
        cosigned_by: Vec<String>,
    },
    #[error("RFC 3161 timestamp token: {0}")]
    Timestamp(String),
    #[error("anchor receipt of target {target:?}: {reason}")]
    AnchorReceipt { target: String, reason: String },
    #[error("time order: {0}")]
    TimeOrder(String),
}

impl BundleError {
    /// A stable machine-readable name for the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            BundleError::Format(_) | BundleError::Parse(_) => "format",
            BundleError::Keys(_) => "trusted_keys",
            BundleError::EvidenceMismatch { .. } => "evidence_mismatch",
            BundleError::Entry(_) => "entry",
            BundleError::LeafHash { .. } => "leaf_hash",
            BundleError::LeafIndex { .. } => "leaf_index",
            BundleError::AuditPath(_) => "audit_path",
            BundleError::BlockHeader(_) => "block_header",
            BundleError::BlockLogPath { .. } => "block_log_path",
            BundleError::Checkpoint(_) => "checkpoint",
            BundleError::SealerSignature(_) => "sealer_signature",
            BundleError::WitnessSignature(_) => "witness_signature",
            BundleError::Quorum { .. } => "witness_quorum",
            BundleError::Timestamp(_) => "timestamp",
            BundleError::AnchorReceipt { .. } => "anchor_receipt",
            BundleError::TimeOrder(_) => "time_order",
        }
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub evidence_hash: String,
    pub hash_alg: String,
    pub tenant: String,
    pub external_id: String,
    pub seq: u64,
    pub received_at_us: i64,
    pub block_height: u64,
    pub checkpoint_size: u64,
    pub checkpoint_origin: String,
    /// Witnesses whose cosignatures verified.
    pub cosigned_by: Vec<String>,
    pub quorum: usize,
    /// genTime of the RFC 3161 token, Unix seconds, when one was checked.
    pub timestamp_unix: Option<i64>,
    /// True when a token is present but no timestamp verifier was supplied.
    pub timestamp_unchecked: bool,
    pub anchored: bool,
    /// `target: chain_kind chain_id tx tx_id block n` for each receipt.
    pub anchors: Vec<String>,
    /// True when the signatures were checked against the bundle's own keys.
    pub keys_from_bundle: bool,
}

/// How far apart two parties' clocks may be when a bundle's times are
/// compared (`docs/proof-format.md` §Time order): 10 minutes.
pub const CLOCK_TOLERANCE_US: i64 = 600_000_000;

/// The evidence hash a verifier was given: raw digest bytes.
pub type ExpectedHash<'a> = Option<&'a [u8]>;

/// Run every check of `docs/proof-format.md` §Verification, in order.
pub fn verify_bundle(
    b: &Bundle,
    keys: &TrustedKeys,
    expected: ExpectedHash<'_>,
) -> Result<Report, BundleError> {
    let suite = b.hash_suite;
    // 1. Format.
    if b.format != BUNDLE_FORMAT_V1 {
        return Err(BundleError::Format(b.format.chars().take(80).collect()));
    }
    if keys.sealers.is_empty() {
        return Err(BundleError::Keys("no trusted sealer key".into()));
    }
    // 2. The evidence itself.
    if let Some(given) = expected
        && given != b.entry.evidence_hash.as_slice()
    {
        return Err(BundleError::EvidenceMismatch {
            given: hex::encode(given),
            preserved: hex::encode(&b.entry.evidence_hash),
        });
    }
    // 3. The entry and its leaf hash.
    b.entry.validate()?;
    let leaf = b.entry.leaf_hash(suite);
    if leaf != b.leaf_hash {
        return Err(BundleError::LeafHash {
            computed: hex::encode(leaf),
            stated: hex::encode(b.leaf_hash),
        });
    }
    // 4. The entry's place in the block.
    let blk = &b.block;
    let in_range = b.entry.seq >= blk.first_seq && b.entry.seq <= blk.last_seq;
    if !in_range || b.leaf_index != b.entry.seq - blk.first_seq {
        return Err(BundleError::LeafIndex {
            leaf_index: b.leaf_index,
            seq: b.entry.seq,
            height: blk.height,
            first_seq: blk.first_seq,
            last_seq: blk.last_seq,
        });
    }
    // 5. Audit path to the block root.
    merkle::verify_inclusion(
        suite,
        b.leaf_index,
        blk.leaf_count,
        &leaf,
        &b.audit_path,
        &blk.merkle_root,
    )
    .map_err(BundleError::AuditPath)?;
    // 6. The header and its hash.
    let header = blk.header(suite);
    header
        .validate()
        .map_err(|e| BundleError::BlockHeader(e.to_string()))?;
    let block_hash = header.hash();
    if block_hash != blk.hash {
        return Err(BundleError::BlockHeader(format!(
            "the header hashes to {}, the bundle states {}",
            hex::encode(block_hash),
            hex::encode(blk.hash)
        )));
    }
    // 7. The checkpoint note matches the stated size and root.
    let cp = &b.checkpoint;
    let note =
        SignedNote::parse(&cp.signed_note).map_err(|e| BundleError::Checkpoint(e.to_string()))?;
    let body = Checkpoint::parse(&note.text).map_err(|e| BundleError::Checkpoint(e.to_string()))?;
    for (i, a) in note.signatures.iter().enumerate() {
        if note.signatures[..i]
            .iter()
            .any(|b| b.name == a.name && b.key_id == a.key_id)
        {
            return Err(BundleError::Checkpoint(format!(
                "two signature lines by key {} {}",
                a.name,
                hex::encode(a.key_id)
            )));
        }
    }
    if body.size != cp.size || body.root != cp.root || body.origin != cp.origin {
        return Err(BundleError::Checkpoint(format!(
            "the signed note says origin {:?} size {} root {}, the bundle states origin {:?} size {} root {}",
            body.origin,
            body.size,
            hex::encode(body.root),
            cp.origin,
            cp.size,
            hex::encode(cp.root)
        )));
    }
    // 8. Block log path to the checkpoint root.
    merkle::verify_inclusion(
        suite,
        blk.height,
        cp.size,
        &block_hash,
        &b.block_log_path,
        &cp.root,
    )
    .map_err(|source| BundleError::BlockLogPath {
        height: blk.height,
        size: cp.size,
        source,
    })?;
    // 9. Signatures: one trusted sealer, then the witness quorum.
    let mut sealer_err = None;
    let sealed = keys.sealers.iter().any(|k| match note.verify_by(k) {
        Ok(_) => true,
        Err(e) => {
            // Prefer "does not verify" over "missing" in the report.
            if sealer_err.is_none() || matches!(e, NoteError::BadSignature { .. }) {
                sealer_err = Some(e);
            }
            false
        }
    });
    if !sealed {
        return Err(BundleError::SealerSignature(
            sealer_err.unwrap_or(NoteError::Malformed("no sealer signature".into())),
        ));
    }
    // Nothing in the bundle may predate the sealing of its block by more
    // than the clock tolerance; the entry was received before it.
    let not_before = blk.sealed_at_us.saturating_sub(CLOCK_TOLERANCE_US);
    if b.entry.received_at_us > blk.sealed_at_us.saturating_add(CLOCK_TOLERANCE_US) {
        return Err(BundleError::TimeOrder(format!(
            "entry received at {} µs, after its block was sealed at {} µs",
            b.entry.received_at_us, blk.sealed_at_us
        )));
    }
    let mut cosigned_by = Vec::new();
    for w in &keys.witnesses {
        match note.verify_by(w) {
            Ok(t) => {
                if let Some(t) = t
                    && (t as i64).saturating_mul(1_000_000) < not_before
                {
                    return Err(BundleError::TimeOrder(format!(
                        "witness {} cosigned at {t} (Unix seconds), before block {} was sealed at {} µs",
                        w.name, blk.height, blk.sealed_at_us
                    )));
                }
                if !cosigned_by.contains(&w.name) {
                    cosigned_by.push(w.name.clone());
                }
            }
            Err(NoteError::MissingSignature { .. }) => {}
            Err(e) => return Err(BundleError::WitnessSignature(e)),
        }
    }
    if cosigned_by.len() < keys.quorum {
        return Err(BundleError::Quorum {
            have: cosigned_by.len(),
            need: keys.quorum,
            cosigned_by,
        });
    }
    // 10. The RFC 3161 token over SHA-256(checkpoint body).
    let mut timestamp_unix = None;
    let mut timestamp_unchecked = false;
    if let Some(token) = &cp.timestamp_token {
        match &keys.timestamps {
            Some(v) => {
                let digest = HashSuite::Sha256.digest(note.text.as_bytes());
                let t = v.verify(token, &digest).map_err(BundleError::Timestamp)?;
                if t.saturating_mul(1_000_000) < not_before {
                    return Err(BundleError::TimeOrder(format!(
                        "RFC 3161 genTime {t} (Unix seconds) is before block {} was sealed at {} µs",
                        blk.height, blk.sealed_at_us
                    )));
                }
                timestamp_unix = Some(t);
            }
            None => timestamp_unchecked = true,
        }
    }
    // 11. Anchor receipts: each anchors this checkpoint or a consistent
    // later one.
    let mut anchors = Vec::new();
    for (i, r) in b.anchor.receipts.iter().enumerate() {
        let bad = |reason: String| BundleError::AnchorReceipt {
            target: r.target.clone(),
            reason,
        };
        if b.anchor.receipts[..i].iter().any(|o| o.target == r.target) {
            return Err(bad("two receipts for the same target".into()));
        }
        if r.checkpoint_size < cp.size {
            return Err(bad(format!(
                "anchors checkpoint size {}, smaller than the bundle's {}",
                r.checkpoint_size, cp.size
            )));
        }
        merkle::verify_consistency(
            suite,
            cp.size,
            r.checkpoint_size,
            &cp.root,
            &r.checkpoint_root,
            &r.consistency_proof,
        )
        .map_err(|e| {
            bad(format!(
                "anchored checkpoint (size {}, root {}) is not consistent with the bundle's checkpoint: {e}",
                r.checkpoint_size,
                hex::encode(r.checkpoint_root)
            ))
        })?;
        if r.tx_id.is_empty() || r.chain_kind.is_empty() {
            return Err(bad("empty chain kind or transaction id".into()));
        }
        check_receipt_fields(r, &cp.origin).map_err(bad)?;
        check_raw_receipt(r, &cp.origin).map_err(bad)?;
        if r.block_time_us < not_before {
            return Err(BundleError::TimeOrder(format!(
                "target {}: anchored in a block of {} µs, before block {} was sealed at {} µs",
                r.target, r.block_time_us, blk.height, blk.sealed_at_us
            )));
        }
        anchors.push(format!(
            "{}: {} {} tx {} block {}",
            r.target, r.chain_kind, r.chain_id, r.tx_id, r.block_number
        ));
    }
    let anchored = !b.anchor.receipts.is_empty();
    if anchored && b.anchor.expected_at_us.is_some() {
        return Err(BundleError::AnchorReceipt {
            target: String::new(),
            reason: "an anchored bundle states an expected anchor time (expected_at_us is for pending bundles only)".into(),
        });
    }
    if anchored != (b.anchor.status == AnchorState::Anchored) {
        return Err(BundleError::AnchorReceipt {
            target: String::new(),
            reason: format!(
                "status {:?} but {} receipt(s)",
                b.anchor.status,
                b.anchor.receipts.len()
            ),
        });
    }
    Ok(Report {
        evidence_hash: hex::encode(&b.entry.evidence_hash),
        hash_alg: b.entry.hash_alg.name().into(),
        tenant: b.entry.tenant.clone(),
        external_id: b.entry.external_id.clone(),
        seq: b.entry.seq,
        received_at_us: b.entry.received_at_us,
        block_height: blk.height,
        checkpoint_size: cp.size,
        checkpoint_origin: cp.origin.clone(),
        cosigned_by,
        quorum: keys.quorum,
        timestamp_unix,
        timestamp_unchecked,
        anchored,
        anchors,
        keys_from_bundle: keys.from_bundle,
    })
}

/// The summary fields' shapes: an EVM transaction id and block hash are
/// `0x` and 64 lowercase hex digits; every text field is non-empty with no
/// whitespace.
fn check_receipt_fields(r: &AnchorReceipt, _origin: &str) -> Result<(), String> {
    for (name, v) in [
        ("target", &r.target),
        ("chain_kind", &r.chain_kind),
        ("chain_id", &r.chain_id),
        ("tx_id", &r.tx_id),
        ("block_hash", &r.block_hash),
    ] {
        if v.is_empty() || v.len() > 256 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{name} must be 1 to 256 characters without spaces"));
        }
    }
    if r.chain_kind == "evm" {
        for (name, v) in [("tx_id", &r.tx_id), ("block_hash", &r.block_hash)] {
            let ok = v
                .strip_prefix("0x")
                .is_some_and(|h| h.len() == 64 && decode_lower_hex(h).is_ok());
            if !ok {
                return Err(format!(
                    "{name} {v:?} of an evm receipt must be 0x and 64 lowercase hex digits"
                ));
            }
        }
        if r.chain_id.parse::<u64>().map(|n| n.to_string()) != Ok(r.chain_id.clone()) {
            return Err(format!(
                "chain_id {:?} of an evm receipt must be the decimal EIP-155 chain id",
                r.chain_id
            ));
        }
    }
    Ok(())
}

/// The raw receipt (`receipt`, as the relay recorded it,
/// `docs/proof-format.md` §Raw receipts) must not contradict the summary:
/// every field it carries is compared. A field it does not carry is not
/// checked (test receipts and early v1 bundles carry fewer).
pub fn check_raw_receipt(r: &AnchorReceipt, origin: &str) -> Result<(), String> {
    use serde_json::Value;
    let raw = r
        .receipt
        .as_object()
        .ok_or("the raw receipt is not a JSON object")?;
    let root_b64 = crate::checkpoint::encode_hash(&r.checkpoint_root);
    let root_hex = hex::encode(r.checkpoint_root);
    let contradicts = |what: &str, raw: &Value, summary: &dyn std::fmt::Display| {
        format!("the raw receipt's {what} is {raw}, the receipt says {summary}")
    };
    let str_eq = |key: &str, v: Option<&Value>, want: &str| -> Result<(), String> {
        match v {
            None => Ok(()),
            Some(Value::String(s)) if s == want => Ok(()),
            Some(other) => Err(contradicts(key, other, &want)),
        }
    };
    let u64_eq = |key: &str, v: Option<&Value>, want: u64| -> Result<(), String> {
        match v {
            None => Ok(()),
            Some(x) if x.as_u64() == Some(want) => Ok(()),
            Some(other) => Err(contradicts(key, other, &want)),
        }
    };
    let i64_eq = |key: &str, v: Option<&Value>, want: i64| -> Result<(), String> {
        match v {
            None => Ok(()),
            Some(x) if x.as_i64() == Some(want) => Ok(()),
            Some(other) => Err(contradicts(key, other, &want)),
        }
    };
    u64_eq("version", raw.get("version"), 1)?;
    str_eq("target", raw.get("target"), &r.target)?;
    str_eq("chainKind", raw.get("chainKind"), &r.chain_kind)?;
    str_eq("chainId", raw.get("chainId"), &r.chain_id)?;
    str_eq("txId", raw.get("txId"), &r.tx_id)?;
    u64_eq("blockNumber", raw.get("blockNumber"), r.block_number)?;
    str_eq("blockHash", raw.get("blockHash"), &r.block_hash)?;
    i64_eq("blockTimeUs", raw.get("blockTimeUs"), r.block_time_us)?;
    str_eq("checkpoint_root", raw.get("checkpoint_root"), &root_hex)?;
    let body = Checkpoint::new(origin, r.checkpoint_size, r.checkpoint_root).body();
    if let Some(c) = raw.get("checkpoint") {
        str_eq("checkpoint.origin", c.get("origin"), origin)?;
        u64_eq("checkpoint.size", c.get("size"), r.checkpoint_size)?;
        str_eq("checkpoint.root", c.get("root"), &root_b64)?;
        str_eq("checkpoint.body", c.get("body"), &body)?;
    }
    let details = raw.get("details");
    let d = |k: &str| details.and_then(|d| d.get(k));
    match r.chain_kind.as_str() {
        "judicial" => {
            if let Some(ev) = d("evidence") {
                str_eq("details.evidence.origin", ev.get("origin"), origin)?;
                u64_eq("details.evidence.size", ev.get("size"), r.checkpoint_size)?;
                str_eq("details.evidence.root", ev.get("root"), &root_b64)?;
            }
            if let Some(resp) = d("response") {
                str_eq("details.response.txId", resp.get("txId"), &r.tx_id)?;
                str_eq("details.response.chainId", resp.get("chainId"), &r.chain_id)?;
                u64_eq(
                    "details.response.blockHeight",
                    resp.get("blockHeight"),
                    r.block_number,
                )?;
                str_eq(
                    "details.response.blockHash",
                    resp.get("blockHash"),
                    &r.block_hash,
                )?;
                if let Some(t) = resp.get("blockTime")
                    && t.as_i64().map(|ms| ms.saturating_mul(1000)) != Some(r.block_time_us)
                {
                    return Err(contradicts(
                        "details.response.blockTime (ms)",
                        t,
                        &r.block_time_us,
                    ));
                }
                if let Some(ev) = resp.get("evidence") {
                    u64_eq(
                        "details.response.evidence.size",
                        ev.get("size"),
                        r.checkpoint_size,
                    )?;
                    str_eq("details.response.evidence.root", ev.get("root"), &root_b64)?;
                }
            }
        }
        "evm" => {
            let payload =
                crate::anchor::AnchorPayload::new(origin, r.checkpoint_size, r.checkpoint_root);
            str_eq("details.input", d("input"), &payload.to_hex_data())?;
        }
        _ => {}
    }
    Ok(())
}

/// Lowercase hex only (`docs/proof-format.md`: every hash and byte string
/// in a bundle is lowercase hex, so it has one spelling).
pub fn decode_lower_hex(s: &str) -> Result<Vec<u8>, String> {
    if let Some(i) = s.find(|c: char| !matches!(c, '0'..='9' | 'a'..='f')) {
        let c = s[i..].chars().next().unwrap_or(' ');
        return Err(if c.is_ascii_hexdigit() {
            format!("uppercase hex digit {c:?} at {i}: hex is lowercase")
        } else {
            format!("not hex: {c:?} at {i}")
        });
    }
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

/// The length of the one DER value at the start of `der` (tag, length,
/// contents), or why there is none. Definite lengths only (DER).
pub fn der_value_len(der: &[u8]) -> Result<usize, String> {
    let (&tag, rest) = der.split_first().ok_or("empty")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not used by RFC 3161 tokens".into());
    }
    let (&l0, rest) = rest.split_first().ok_or("no length")?;
    let (len, head) = if l0 < 0x80 {
        (l0 as usize, 2)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err("indefinite or oversized length (not DER)".into());
        }
        let bytes = rest.get(..n).ok_or("truncated length")?;
        if bytes[0] == 0 || (n == 1 && bytes[0] < 0x80) {
            return Err("length not in its shortest form (not DER)".into());
        }
        (
            bytes.iter().fold(0usize, |a, &b| (a << 8) | b as usize),
            2 + n,
        )
    };
    head.checked_add(len)
        .ok_or_else(|| "length overflows".to_string())
}

/// An RFC 3161 token's bytes: not empty, exactly one DER SEQUENCE
/// (ContentInfo), nothing after it.
pub fn check_token_der(token: &[u8]) -> Result<(), String> {
    if token.is_empty() {
        return Err("the timestamp token is empty (use null when there is none)".into());
    }
    if token[0] != 0x30 {
        return Err("the timestamp token is not a DER SEQUENCE (ContentInfo)".into());
    }
    let n = der_value_len(token).map_err(|e| format!("the timestamp token: {e}"))?;
    match n.cmp(&token.len()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(format!(
            "the timestamp token has {} trailing bytes after its DER value",
            token.len() - n
        )),
        std::cmp::Ordering::Greater => Err("the timestamp token is truncated".into()),
    }
}

/// Parse a bundle's JSON strictly (`docs/proof-format.md` §Parsing): every
/// field required, no unknown or duplicate field, lowercase hex, a
/// well-formed DER timestamp token. Failures are [`BundleError::Format`].
pub fn parse_bundle(json: &str) -> Result<Bundle, BundleError> {
    serde_json::from_str(json).map_err(|e| BundleError::Parse(e.to_string()))
}

mod strict_entry {
    use serde::{Deserialize, Deserializer};

    use crate::entry::{Entry, EvidenceAlg};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StrictEntry {
        seq: u64,
        received_at_us: i64,
        tenant: String,
        external_id: String,
        hash_alg: EvidenceAlg,
        evidence_hash: String,
        #[serde(deserialize_with = "required_nullable")]
        metadata: Option<String>,
    }

    fn required_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        let e = StrictEntry::deserialize(d)?;
        let evidence_hash = super::decode_lower_hex(&e.evidence_hash)
            .map_err(|m| serde::de::Error::custom(format!("entry.evidence_hash: {m}")))?;
        Ok(Entry {
            seq: e.seq,
            received_at_us: e.received_at_us,
            tenant: e.tenant,
            external_id: e.external_id,
            hash_alg: e.hash_alg,
            evidence_hash,
            metadata: e.metadata,
        })
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::suite::Digest32;

    pub fn serialize<S: Serializer>(v: &Digest32, s: S) -> Result<S::Ok, S::Error> {
        // `const-hex` into a stack buffer: `hex::encode` builds its String
        // a char at a time, which cold-proof profiles showed among the
        // verifier's top costs.
        s.serialize_str(const_hex::Buffer::<32>::new().format(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest32, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
    pub fn parse(s: &str) -> Result<Digest32, String> {
        let v = super::decode_lower_hex(s)?;
        v.try_into()
            .map_err(|_| "a hash must be 32 bytes (64 hex digits)".to_string())
    }
}

mod hex32_vec {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::suite::Digest32;

    pub fn serialize<S: Serializer>(v: &[Digest32], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        let mut buf = const_hex::Buffer::<32>::new();
        for h in v {
            seq.serialize_element(&*buf.format(h))?;
        }
        seq.end()
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Digest32>, D::Error> {
        let v = <Vec<String>>::deserialize(d)?;
        v.iter()
            .map(|s| super::hex32::parse(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&const_hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let v = <Option<String>>::deserialize(d)?;
        v.map(|s| {
            let b = super::decode_lower_hex(&s)
                .map_err(|m| serde::de::Error::custom(format!("timestamp_token: {m}")))?;
            super::check_token_der(&b).map_err(serde::de::Error::custom)?;
            Ok(b)
        })
        .transpose()
    }
}

pub mod corpus;

#[cfg(test)]
mod tests;
