//! OpenTimestamps (`.ots`) encoding of a proof bundle: the operations that
//! lead from the evidence hash to the bundle's checkpoint root, with the
//! judicial anchors as attestations (`docs/proof-format.md` §OpenTimestamps).
//!
//! Format (python-opentimestamps `core/timestamp.py`, `op.py`,
//! `notary.py`): header magic, version 1, file hash op `08` (SHA-256), the
//! 32-byte digest, then the timestamp tree. Here the tree is one chain of
//! operations, `f1` prepend / `f0` append (length-prefixed argument) and
//! `08` sha256, ending at the checkpoint root, where the attestations sit:
//! one [`ANCHOR_ATTESTATION_TAG`] per receipt of that exact checkpoint, or a
//! pending attestation with a URI when nothing is anchored yet.
//!
//! What the file timestamps ([`Subject`]): SHA-256 evidence is stamped as
//! itself (the file digest is the evidence hash). Evidence whose hash OTS
//! cannot express (SM3, SHA-512: OTS has no SM3 operation, and a SHA-512
//! digest cannot be a SHA-256 file digest) is stamped through its canonical
//! entry: the stamped file is the leaf input `0x00 ‖ entry encoding` (which
//! holds the evidence hash), written beside the `.ots` ([`leaf_input`]), so
//! the file digest is the leaf hash a SHA-256 tree carries. Only an SM3-tree
//! deployment cannot be expressed at all.

use crate::bundle::Bundle;
use crate::suite::{Digest32, HashSuite, LEAF_PREFIX, NODE_PREFIX};

/// The detached-timestamp file magic.
pub const MAGIC: &[u8; 31] = b"\x00OpenTimestamps\x00\x00Proof\x00\xbf\x89\xe2\xe8\x84\xe8\x92\x94";
/// Our attestation type tag: ASCII `ANCHORD1` (kept by OTS tools as an
/// unknown attestation). Payload: UTF-8 JSON of the anchor (see the docs).
pub const ANCHOR_ATTESTATION_TAG: [u8; 8] = *b"ANCHORD1";
/// OTS pending attestation tag (payload: length-prefixed URI).
pub const PENDING_TAG: [u8; 8] = [0x83, 0xdf, 0xe3, 0x0d, 0x2e, 0xf9, 0x0c, 0x8e];
/// Longest operation argument / result python-opentimestamps accepts.
pub const MAX_MSG: usize = 4096;

const OP_SHA256: u8 = 0x08;
const OP_APPEND: u8 = 0xf0;
const OP_PREPEND: u8 = 0xf1;

/// Why a bundle cannot be expressed as an `.ots` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtsError {
    #[error(
        "OpenTimestamps needs a SHA-256 deployment: this bundle's trees use {suite} (OTS has no {suite} operation), so no .ots can reach its checkpoint root"
    )]
    Unsupported { suite: String },
    #[error("an operation argument is {0} bytes, more than OpenTimestamps' {MAX_MSG}")]
    TooLong(usize),
    #[error("the bundle's proof paths are malformed: {0}")]
    Path(String),
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Sha256,
    Append(Vec<u8>),
    Prepend(Vec<u8>),
}

impl Op {
    /// Apply to a message (what an OTS verifier does).
    pub fn apply(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Op::Sha256 => HashSuite::Sha256.digest(msg).to_vec(),
            Op::Append(a) => [msg, a].concat(),
            Op::Prepend(p) => [p.as_slice(), msg].concat(),
        }
    }
}

/// What an `.ots` file of a bundle timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The evidence itself: the file digest is the SHA-256 evidence hash.
    Evidence,
    /// The canonical entry: the stamped file is [`leaf_input`] (`0x00 ‖
    /// entry encoding`, which holds the evidence hash), its SHA-256 the
    /// leaf hash; for evidence hashed with SM3 or SHA-512.
    Entry,
}

/// What the `.ots` of this bundle stamps; an error when the deployment's
/// trees are not SHA-256 (then nothing can be expressed).
pub fn subject(b: &Bundle) -> Result<Subject, OtsError> {
    if b.hash_suite != HashSuite::Sha256 {
        return Err(OtsError::Unsupported {
            suite: b.hash_suite.name().into(),
        });
    }
    Ok(if b.entry.hash_alg == crate::EvidenceAlg::Sha256 {
        Subject::Evidence
    } else {
        Subject::Entry
    })
}

/// The stamped file of [`Subject::Entry`]: the RFC 6962 leaf input of the
/// bundle's entry, `0x00 ‖ entry encoding` (`docs/entry-encoding.md`). Its
/// SHA-256 is the leaf hash in a SHA-256 deployment.
pub fn leaf_input(b: &Bundle) -> Vec<u8> {
    let mut v = vec![LEAF_PREFIX];
    v.extend_from_slice(&b.entry.encode());
    v
}

/// The `.ots` file digest: the evidence hash ([`Subject::Evidence`]) or the
/// SHA-256 of [`leaf_input`] ([`Subject::Entry`]).
pub fn file_digest(b: &Bundle) -> Result<Vec<u8>, OtsError> {
    Ok(match subject(b)? {
        Subject::Evidence => b.entry.evidence_hash.clone(),
        Subject::Entry => HashSuite::Sha256.digest(&leaf_input(b)).to_vec(),
    })
}

/// The chain of operations from the file digest ([`file_digest`]) to the
/// checkpoint root.
pub fn operations(b: &Bundle) -> Result<Vec<Op>, OtsError> {
    let mut ops = Vec::new();
    if subject(b)? == Subject::Evidence {
        // Leaf: H(0x00 || encoding), the evidence hash sits inside the
        // encoding. (For the entry subject the file digest is the leaf.)
        let enc = b.entry.encode();
        let n = b.entry.evidence_hash.len();
        let at = 32; // offset of evidence_hash in the v1 encoding
        let mut prefix = vec![LEAF_PREFIX];
        prefix.extend_from_slice(&enc[..at]);
        ops.push(Op::Prepend(prefix));
        ops.push(Op::Append(enc[at + n..].to_vec()));
        ops.push(Op::Sha256);
    }
    path_ops(&mut ops, b.leaf_index, b.block.leaf_count, &b.audit_path)?;
    // Block hash: H(0x00 || header), the merkle root at offset 47..79.
    let header = b.block.header(b.hash_suite).encode();
    let mut prefix = vec![LEAF_PREFIX];
    prefix.extend_from_slice(&header[..47]);
    ops.push(Op::Prepend(prefix));
    ops.push(Op::Append(header[79..].to_vec()));
    ops.push(Op::Sha256);
    path_ops(
        &mut ops,
        b.block.height,
        b.checkpoint.size,
        &b.block_log_path,
    )?;
    for op in &ops {
        if let Op::Append(a) | Op::Prepend(a) = op
            && a.len() > MAX_MSG
        {
            return Err(OtsError::TooLong(a.len()));
        }
    }
    Ok(ops)
}

/// The operations of an RFC 9162 inclusion path: at each step the running
/// hash is the right child (sibling prepended) or the left (sibling appended).
fn path_ops(ops: &mut Vec<Op>, index: u64, size: u64, path: &[Digest32]) -> Result<(), OtsError> {
    if index >= size {
        return Err(OtsError::Path(format!("index {index} >= size {size}")));
    }
    let (mut f, mut s) = (index, size - 1);
    for p in path {
        if s == 0 {
            return Err(OtsError::Path("path too long".into()));
        }
        if f & 1 == 1 || f == s {
            let mut pre = vec![NODE_PREFIX];
            pre.extend_from_slice(p);
            ops.push(Op::Prepend(pre));
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            ops.push(Op::Prepend(vec![NODE_PREFIX]));
            ops.push(Op::Append(p.to_vec()));
        }
        ops.push(Op::Sha256);
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(OtsError::Path("path too short".into()));
    }
    Ok(())
}

/// An attestation at the end of the chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attestation {
    pub tag: [u8; 8],
    /// The payload as serialized (for a pending attestation, itself a
    /// length-prefixed URI).
    pub payload: Vec<u8>,
}

impl Attestation {
    pub fn pending(uri: &str) -> Self {
        let mut payload = Vec::new();
        varbytes(&mut payload, uri.as_bytes());
        Attestation {
            tag: PENDING_TAG,
            payload,
        }
    }
}

/// The whole `.ots` file.
pub fn encode(b: &Bundle, attestations: &[Attestation]) -> Result<Vec<u8>, OtsError> {
    let ops = operations(b)?;
    let mut out = MAGIC.to_vec();
    out.push(0x01);
    out.push(OP_SHA256);
    out.extend_from_slice(&file_digest(b)?);
    for op in &ops {
        match op {
            Op::Sha256 => out.push(OP_SHA256),
            Op::Append(a) => {
                out.push(OP_APPEND);
                varbytes(&mut out, a);
            }
            Op::Prepend(p) => {
                out.push(OP_PREPEND);
                varbytes(&mut out, p);
            }
        }
    }
    let mut atts = attestations.to_vec();
    atts.sort();
    let last = atts.len().saturating_sub(1);
    for (i, a) in atts.iter().enumerate() {
        if i < last {
            out.push(0xff);
        }
        out.push(0x00);
        out.extend_from_slice(&a.tag);
        varbytes(&mut out, &a.payload);
    }
    Ok(out)
}

fn varuint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn varbytes(out: &mut Vec<u8>, b: &[u8]) {
    varuint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle;

    #[test]
    fn path_ops_reach_the_root_for_every_position() {
        let suite = HashSuite::Sha256;
        for n in 1..=40u64 {
            let leaves: Vec<Digest32> = (0..n).map(|i| suite.leaf_hash(&i.to_be_bytes())).collect();
            let root = merkle::root(suite, &leaves);
            for i in 0..n {
                let path = merkle::inclusion_proof(suite, &leaves, i).unwrap();
                let mut ops = Vec::new();
                path_ops(&mut ops, i, n, &path).unwrap();
                let got = ops
                    .iter()
                    .fold(leaves[i as usize].to_vec(), |m, op| op.apply(&m));
                assert_eq!(got, root.to_vec(), "n {n} i {i}");
            }
        }
    }

    #[test]
    fn varuint_is_leb128() {
        let mut v = Vec::new();
        varuint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
    }
}
