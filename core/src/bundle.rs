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
    /// The evidence entry; its canonical encoding is the leaf.
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
    /// DER RFC 3161 TimeStampToken over SHA-256 of the checkpoint body, hex.
    #[serde(default, with = "opt_hex")]
    pub timestamp_token: Option<Vec<u8>>,
}

/// The keys the operator says signed the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredKeys {
    /// The sealer's vkey.
    pub sealer: String,
    /// The configured witnesses' vkeys.
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// How many witness cosignatures make a checkpoint final.
    #[serde(default)]
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
    /// One receipt per target that anchored this checkpoint or a later one.
    #[serde(default)]
    pub receipts: Vec<AnchorReceipt>,
}

/// See [`AnchorStatus::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchorState {
    Anchored,
    Pending,
}

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
}

impl BundleError {
    /// A stable machine-readable name for the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            BundleError::Format(_) => "format",
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
    let mut cosigned_by = Vec::new();
    for w in &keys.witnesses {
        match note.verify_by(w) {
            Ok(_) => {
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
                timestamp_unix = Some(v.verify(token, &digest).map_err(BundleError::Timestamp)?);
            }
            None => timestamp_unchecked = true,
        }
    }
    // 11. Anchor receipts: each anchors this checkpoint or a consistent
    // later one.
    let mut anchors = Vec::new();
    for r in &b.anchor.receipts {
        let bad = |reason: String| BundleError::AnchorReceipt {
            target: r.target.clone(),
            reason,
        };
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
        if let Some(root) = r.receipt.get("checkpoint_root").and_then(|v| v.as_str())
            && !root.eq_ignore_ascii_case(&hex::encode(r.checkpoint_root))
        {
            return Err(bad(format!(
                "the chain receipt records root {root}, the bundle states {}",
                hex::encode(r.checkpoint_root)
            )));
        }
        if r.tx_id.is_empty() || r.chain_kind.is_empty() {
            return Err(bad("empty chain kind or transaction id".into()));
        }
        anchors.push(format!(
            "{}: {} {} tx {} block {}",
            r.target, r.chain_kind, r.chain_id, r.tx_id, r.block_number
        ));
    }
    let anchored = !b.anchor.receipts.is_empty();
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

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::suite::Digest32;

    pub fn serialize<S: Serializer>(v: &Digest32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest32, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
    pub fn parse(s: &str) -> Result<Digest32, String> {
        let v = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
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
        for h in v {
            seq.serialize_element(&hex::encode(h))?;
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
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let v = <Option<String>>::deserialize(d)?;
        v.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

pub mod corpus;

#[cfg(test)]
mod tests;
