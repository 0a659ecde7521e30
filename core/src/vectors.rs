//! The conformance kit: Merkle proof test vectors in the
//! transparency-dev/merkle `testdata/` layout, checked and generated.
//!
//! A vector is one JSON file:
//!
//! - `inclusion/<n>/<case>.json`: `leafIdx`, `treeSize`, `root`, `leafHash`,
//!   `proof` (base64 hashes), `desc`, `wantErr`;
//! - `consistency/<n>/<case>.json`: `size1`, `size2`, `root1`, `root2`,
//!   `proof`, `desc`, `wantErr`.
//!
//! A vector passes when the verifier's verdict matches `wantErr`: it rejects
//! the proof iff `wantErr` is true. Parsing is lenient so that third-party
//! sets in the same layout load as they are: unknown fields are ignored,
//! `proof` may be `null` or absent (empty), `desc` may be absent, `wantErr`
//! defaults to false (as Go's decoder does), and hashes of the wrong length
//! are not parse errors but verification failures (sets use them as
//! "garbage" cases). Our one extension is an optional top-level
//! `"hashSuite": "sm3"` (default `"sha256"`). See `docs/conformance.md`.
//!
//! No I/O here: the caller reads the files (`anchord conformance DIR`) and
//! writes them (`core/examples/gen_vectors.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::merkle::{self, ProofError};
use crate::suite::{Digest32, HashSuite};

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn decode<E: serde::de::Error>(s: &str) -> Result<Vec<u8>, E> {
        STANDARD
            .decode(s)
            .map_err(|e| E::custom(format!("invalid base64 {s:?}: {e}")))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        decode(&s)
    }

    /// A list of base64 strings; `null` is the empty list.
    pub(super) mod list {
        use super::*;

        pub(in super::super) fn serialize<S: Serializer>(
            list: &[Vec<u8>],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_seq(list.iter().map(|b| STANDARD.encode(b)))
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            let list = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
            list.iter()
                .enumerate()
                .map(|(i, s)| {
                    decode::<D::Error>(s).map_err(|e| D::Error::custom(format!("proof[{i}]: {e}")))
                })
                .collect()
        }
    }
}

/// An inclusion proof vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionVector {
    /// Our extension: the hash suite (absent means SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_suite: Option<HashSuite>,
    /// Zero-based index of the leaf.
    pub leaf_idx: u64,
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// The tree's root (should be 32 bytes).
    #[serde(with = "b64")]
    pub root: Vec<u8>,
    /// The leaf hash `H(0x00 || data)` (should be 32 bytes).
    #[serde(with = "b64")]
    pub leaf_hash: Vec<u8>,
    /// The inclusion path, bottom-up.
    #[serde(default, with = "b64::list")]
    pub proof: Vec<Vec<u8>>,
    /// What the case is about.
    #[serde(default)]
    pub desc: String,
    /// Whether verification must fail.
    #[serde(default)]
    pub want_err: bool,
}

/// A consistency proof vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyVector {
    /// Our extension: the hash suite (absent means SHA-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_suite: Option<HashSuite>,
    /// The old tree size.
    pub size1: u64,
    /// The new tree size.
    pub size2: u64,
    /// The old tree's root.
    #[serde(with = "b64")]
    pub root1: Vec<u8>,
    /// The new tree's root.
    #[serde(with = "b64")]
    pub root2: Vec<u8>,
    /// The consistency proof.
    #[serde(default, with = "b64::list")]
    pub proof: Vec<Vec<u8>>,
    /// What the case is about.
    #[serde(default)]
    pub desc: String,
    /// Whether verification must fail.
    #[serde(default)]
    pub want_err: bool,
}

/// Either kind of vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vector {
    /// An inclusion proof vector.
    Inclusion(InclusionVector),
    /// A consistency proof vector.
    Consistency(ConsistencyVector),
}

/// The two kinds of vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorKind {
    /// `inclusion/…`
    Inclusion,
    /// `consistency/…`
    Consistency,
}

impl VectorKind {
    /// `"inclusion"` or `"consistency"`: also the top directory name.
    pub const fn name(self) -> &'static str {
        match self {
            VectorKind::Inclusion => "inclusion",
            VectorKind::Consistency => "consistency",
        }
    }
}

impl fmt::Display for VectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A file that is not a usable vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorFileError {
    /// Not JSON at all.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// An object with neither kind's fields.
    #[error(
        "neither an inclusion vector (leafIdx, treeSize, root, leafHash) \
         nor a consistency vector (size1, size2, root1, root2)"
    )]
    UnknownKind,
    /// An object with fields of both kinds.
    #[error("has fields of both an inclusion vector and a consistency vector")]
    AmbiguousKind,
    /// The kind is clear but a field is missing or malformed.
    #[error("invalid {kind} vector: {reason}")]
    Invalid {
        /// The detected kind.
        kind: VectorKind,
        /// serde's description, naming the field.
        reason: String,
    },
}

/// Why a vector's proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorVerifyError {
    /// A hash the verifier needs is not 32 bytes.
    #[error("{field} is {len} bytes, want 32")]
    BadHashLength {
        /// The field, e.g. `root1` or `proof[2]`.
        field: String,
        /// Its decoded length.
        len: usize,
    },
    /// The RFC 9162 verifier rejected the proof.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

fn digest(field: &str, bytes: &[u8]) -> Result<Digest32, VectorVerifyError> {
    bytes
        .try_into()
        .map_err(|_| VectorVerifyError::BadHashLength {
            field: field.to_owned(),
            len: bytes.len(),
        })
}

fn proof_digests(proof: &[Vec<u8>]) -> Result<Vec<Digest32>, VectorVerifyError> {
    proof
        .iter()
        .enumerate()
        .map(|(i, p)| digest(&format!("proof[{i}]"), p))
        .collect()
}

impl InclusionVector {
    /// The vector's hash suite (SHA-256 unless `hashSuite` says otherwise).
    pub fn suite(&self) -> HashSuite {
        self.hash_suite.unwrap_or(HashSuite::Sha256)
    }

    /// Runs [`merkle::verify_inclusion`] on the vector.
    pub fn verify(&self) -> Result<(), VectorVerifyError> {
        let leaf = digest("leafHash", &self.leaf_hash)?;
        let root = digest("root", &self.root)?;
        let proof = proof_digests(&self.proof)?;
        merkle::verify_inclusion(
            self.suite(),
            self.leaf_idx,
            self.tree_size,
            &leaf,
            &proof,
            &root,
        )?;
        Ok(())
    }
}

impl ConsistencyVector {
    /// The vector's hash suite (SHA-256 unless `hashSuite` says otherwise).
    pub fn suite(&self) -> HashSuite {
        self.hash_suite.unwrap_or(HashSuite::Sha256)
    }

    /// Runs [`merkle::verify_consistency`] on the vector.
    ///
    /// From size 0 to a larger size the verifier looks at neither root, so
    /// neither root's length is checked either (as transparency-dev/merkle).
    pub fn verify(&self) -> Result<(), VectorVerifyError> {
        let roots_unused = self.size1 == 0 && self.size2 > 0;
        let root = |field: &str, bytes: &[u8]| {
            if roots_unused {
                Ok(bytes.try_into().unwrap_or([0; 32]))
            } else {
                digest(field, bytes)
            }
        };
        let root1 = root("root1", &self.root1)?;
        let root2 = root("root2", &self.root2)?;
        let proof = proof_digests(&self.proof)?;
        merkle::verify_consistency(self.suite(), self.size1, self.size2, &root1, &root2, &proof)?;
        Ok(())
    }
}

impl Vector {
    /// Parses a vector file, detecting its kind by its fields.
    pub fn from_json(bytes: &[u8]) -> Result<Vector, VectorFileError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| VectorFileError::Json(e.to_string()))?;
        let object = value.as_object().ok_or(VectorFileError::NotAnObject)?;
        let has = |keys: &[&str]| keys.iter().any(|k| object.contains_key(*k));
        let inclusion = has(&["leafIdx", "treeSize", "leafHash"]);
        let consistency = has(&["size1", "size2", "root1", "root2"]);
        let kind = match (inclusion, consistency) {
            (true, false) => VectorKind::Inclusion,
            (false, true) => VectorKind::Consistency,
            (true, true) => return Err(VectorFileError::AmbiguousKind),
            (false, false) => return Err(VectorFileError::UnknownKind),
        };
        let invalid = |e: serde_json::Error| VectorFileError::Invalid {
            kind,
            reason: e.to_string(),
        };
        Ok(match kind {
            VectorKind::Inclusion => {
                Vector::Inclusion(serde_json::from_value(value).map_err(invalid)?)
            }
            VectorKind::Consistency => {
                Vector::Consistency(serde_json::from_value(value).map_err(invalid)?)
            }
        })
    }

    /// The vector's kind.
    pub fn kind(&self) -> VectorKind {
        match self {
            Vector::Inclusion(_) => VectorKind::Inclusion,
            Vector::Consistency(_) => VectorKind::Consistency,
        }
    }

    /// The vector's hash suite.
    pub fn suite(&self) -> HashSuite {
        match self {
            Vector::Inclusion(v) => v.suite(),
            Vector::Consistency(v) => v.suite(),
        }
    }

    /// The vector's `desc`.
    pub fn desc(&self) -> &str {
        match self {
            Vector::Inclusion(v) => &v.desc,
            Vector::Consistency(v) => &v.desc,
        }
    }

    /// The vector's `wantErr`.
    pub fn want_err(&self) -> bool {
        match self {
            Vector::Inclusion(v) => v.want_err,
            Vector::Consistency(v) => v.want_err,
        }
    }

    /// Runs the verifier on the vector.
    pub fn verify(&self) -> Result<(), VectorVerifyError> {
        match self {
            Vector::Inclusion(v) => v.verify(),
            Vector::Consistency(v) => v.verify(),
        }
    }

    /// Runs the verifier and compares its verdict with `wantErr`.
    pub fn check(&self) -> VectorOutcome {
        let verifier_error = self.verify().err().map(|e| e.to_string());
        let want_err = self.want_err();
        VectorOutcome {
            kind: self.kind(),
            suite: self.suite(),
            desc: self.desc().to_owned(),
            want_err,
            matched: verifier_error.is_some() == want_err,
            verifier_error,
        }
    }

    /// The vector as a pretty-printed JSON file (with a final newline).
    pub fn to_json(&self) -> String {
        let mut json = match self {
            Vector::Inclusion(v) => serde_json::to_string_pretty(v),
            Vector::Consistency(v) => serde_json::to_string_pretty(v),
        }
        .expect("vectors always serialise");
        json.push('\n');
        json
    }
}

/// The result of checking one vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorOutcome {
    /// The vector's kind.
    pub kind: VectorKind,
    /// The vector's hash suite.
    pub suite: HashSuite,
    /// The vector's `desc`.
    pub desc: String,
    /// The vector's `wantErr`: whether verification was expected to fail.
    pub want_err: bool,
    /// The verifier's error, or `None` if the proof verified.
    pub verifier_error: Option<String>,
    /// Whether the verdict matched `wantErr`: the vector passed.
    pub matched: bool,
}

impl VectorOutcome {
    /// One line on what happened, naming the expectation and the verdict.
    pub fn explanation(&self) -> String {
        match (&self.verifier_error, self.want_err) {
            (None, false) => "verified, as expected".to_owned(),
            (Some(e), true) => format!("rejected, as expected: {e}"),
            (Some(e), false) => format!("expected wantErr=false, verifier said: {e}"),
            (None, true) => "expected wantErr=true, but the proof verified".to_owned(),
        }
    }
}

/// Parses and checks one vector file: passes iff the verifier's verdict
/// (rejected or not) equals `wantErr`.
pub fn check_vector_json(bytes: &[u8]) -> Result<VectorOutcome, VectorFileError> {
    Ok(Vector::from_json(bytes)?.check())
}

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// Tree sizes and leaf indices of the generated inclusion vectors.
const INCLUSION_CASES: &[(u64, &[u64])] = &[
    (1, &[0]),
    (2, &[0, 1]),
    (3, &[0, 2]),
    (7, &[0, 3, 6]),
    (8, &[0, 5, 7]),
    (9, &[0, 8]),
    (13, &[5]),
    (16, &[0, 15]),
    (31, &[0, 17, 30]),
    (64, &[0, 63]),
    (100, &[0, 37, 99]),
];

/// (size1, size2) of the generated consistency vectors.
const CONSISTENCY_CASES: &[(u64, u64)] = &[
    (0, 7),
    (1, 1),
    (1, 2),
    (1, 8),
    (2, 3),
    (3, 7),
    (4, 8),
    (6, 8),
    (7, 8),
    (8, 9),
    (9, 16),
    (16, 31),
    (31, 64),
    (37, 100),
    (64, 100),
    (100, 100),
];

/// The generator's leaves: leaf `i` is `H(0x00 || i as 8 bytes big-endian)`.
pub fn generator_leaf(suite: HashSuite, i: u64) -> Digest32 {
    suite.leaf_hash(&i.to_be_bytes())
}

fn flip_bit(hash: &[u8]) -> Vec<u8> {
    let mut h = hash.to_vec();
    h[0] ^= 0x08;
    h
}

/// Collects one scenario's cases: the happy path always, a negative case
/// only if the verifier really rejects it (so `wantErr` is truthful).
struct Scenario<'a> {
    out: &'a mut Vec<(String, String)>,
    dir: String,
    what: String,
}

impl Scenario<'_> {
    fn emit(&mut self, case: &str, desc: &str, mut vector: Vector, want_err: bool) {
        let full_desc = format!("{}: {desc}", self.what);
        match &mut vector {
            Vector::Inclusion(v) => {
                v.desc = full_desc;
                v.want_err = want_err;
            }
            Vector::Consistency(v) => {
                v.desc = full_desc;
                v.want_err = want_err;
            }
        }
        let outcome = vector.check();
        if want_err && !outcome.matched {
            // The "mutation" still verifies: not a negative case.
            return;
        }
        assert!(
            outcome.matched,
            "generator bug: {}/{case}: {}",
            self.dir,
            outcome.explanation()
        );
        self.out
            .push((format!("{}/{case}.json", self.dir), vector.to_json()));
    }
}

/// Generates the conformance vector set for `suite`, deterministically: the
/// returned paths are relative to the suite's directory
/// (`inclusion/<n>/<case>.json`, `consistency/<n>/<case>.json`), sorted.
///
/// Each scenario has a happy path and mutated negatives (wrong leaf, flipped
/// bits, index and size changes, extra and missing hashes, wrong roots,
/// garbage), each emitted only if the verifier rejects it. SM3 files carry
/// `"hashSuite": "sm3"`; SHA-256 files omit the field.
pub fn generate(suite: HashSuite) -> Vec<(String, String)> {
    let max = 256;
    let leaves: Vec<Digest32> = (0..max).map(|i| generator_leaf(suite, i)).collect();
    let root_of = |n: u64| merkle::root(suite, &leaves[..n as usize]).to_vec();
    let hash_suite = (suite != HashSuite::Sha256).then_some(suite);
    let mut out = Vec::new();

    let mut number = 0;
    for &(size, indices) in INCLUSION_CASES {
        for &index in indices {
            number += 1;
            let d = &leaves[..size as usize];
            let proof: Vec<Vec<u8>> = merkle::inclusion_proof(suite, d, index)
                .expect("index in range")
                .iter()
                .map(|h| h.to_vec())
                .collect();
            let happy = InclusionVector {
                hash_suite,
                leaf_idx: index,
                tree_size: size,
                root: root_of(size),
                leaf_hash: leaves[index as usize].to_vec(),
                proof: proof.clone(),
                desc: String::new(),
                want_err: false,
            };
            let mut sc = Scenario {
                out: &mut out,
                dir: format!("inclusion/{number}"),
                what: format!("leaf {index} of a {size}-leaf tree"),
            };
            let with = |f: &dyn Fn(&mut InclusionVector)| {
                let mut v = happy.clone();
                f(&mut v);
                Vector::Inclusion(v)
            };
            sc.emit("happy-path", "happy path", with(&|_| {}), false);
            sc.emit(
                "wrong-leaf",
                "the leaf hash of a leaf not in the tree",
                with(&|v| v.leaf_hash = leaves[size as usize].to_vec()),
                true,
            );
            sc.emit(
                "leafHash-without-prefix",
                "leaf hash computed without the 0x00 prefix",
                with(&|v| v.leaf_hash = suite.digest(&index.to_be_bytes()).to_vec()),
                true,
            );
            sc.emit(
                "leafHash-bit-flipped",
                "one bit of the leaf hash flipped",
                with(&|v| v.leaf_hash = flip_bit(&v.leaf_hash)),
                true,
            );
            sc.emit(
                "leafHash-trailing-garbage",
                "a garbage byte appended to the leaf hash",
                with(&|v| v.leaf_hash.push(0)),
                true,
            );
            let mut flips = vec![0, proof.len() / 2, proof.len().saturating_sub(1)];
            flips.dedup();
            for i in flips.into_iter().filter(|&i| i < proof.len()) {
                sc.emit(
                    &format!("proof-{i}-bit-flipped"),
                    &format!("one bit of proof[{i}] flipped"),
                    with(&|v| v.proof[i] = flip_bit(&v.proof[i])),
                    true,
                );
            }
            sc.emit(
                "leafIdx-minus-1",
                "leafIdx - 1",
                with(&|v| v.leaf_idx = v.leaf_idx.wrapping_sub(1)),
                true,
            );
            sc.emit(
                "leafIdx-plus-1",
                "leafIdx + 1",
                with(&|v| v.leaf_idx += 1),
                true,
            );
            sc.emit(
                "treeSize-times-2",
                "treeSize * 2",
                with(&|v| v.tree_size *= 2),
                true,
            );
            sc.emit(
                "treeSize-plus-1",
                "treeSize + 1",
                with(&|v| v.tree_size += 1),
                true,
            );
            sc.emit(
                "treeSize-minus-1",
                "treeSize - 1",
                with(&|v| v.tree_size -= 1),
                true,
            );
            sc.emit(
                "extra-proof-element",
                "the root appended to the proof",
                with(&|v| v.proof.push(v.root.clone())),
                true,
            );
            sc.emit(
                "preceding-garbage",
                "an empty element before the proof",
                with(&|v| v.proof.insert(0, Vec::new())),
                true,
            );
            sc.emit(
                "last-proof-element-removed",
                "the last proof element removed",
                with(&|v| {
                    v.proof.pop();
                }),
                true,
            );
            sc.emit(
                "root-of-other-size",
                &format!("the root of the {}-leaf tree", size + 1),
                with(&|v| v.root = root_of(size + 1)),
                true,
            );
            sc.emit(
                "empty-root",
                "the empty tree's root",
                with(&|v| v.root = suite.empty_root().to_vec()),
                true,
            );
            sc.emit(
                "root-bit-flipped",
                "one bit of the root flipped",
                with(&|v| v.root = flip_bit(&v.root)),
                true,
            );
            if (size, index) == (13, 5) {
                sc.emit(
                    "treeSize-not-bound",
                    "the same proof and root also verify for treeSize 14: \
                     an inclusion proof does not bind the tree size",
                    with(&|v| v.tree_size = 14),
                    false,
                );
            }
        }
    }

    for (number, &(size1, size2)) in CONSISTENCY_CASES.iter().enumerate() {
        let proof: Vec<Vec<u8>> =
            merkle::consistency_proof(suite, &leaves[..size2 as usize], size1)
                .expect("size1 <= size2")
                .iter()
                .map(|h| h.to_vec())
                .collect();
        let happy = ConsistencyVector {
            hash_suite,
            size1,
            size2,
            root1: root_of(size1),
            root2: root_of(size2),
            proof: proof.clone(),
            desc: String::new(),
            want_err: false,
        };
        let mut sc = Scenario {
            out: &mut out,
            dir: format!("consistency/{}", number + 1),
            what: format!("from {size1} to {size2} leaves"),
        };
        let with = |f: &dyn Fn(&mut ConsistencyVector)| {
            let mut v = happy.clone();
            f(&mut v);
            Vector::Consistency(v)
        };
        sc.emit("happy-path", "happy path", with(&|_| {}), false);
        sc.emit(
            "size1-minus-1",
            "size1 - 1",
            with(&|v| v.size1 = v.size1.wrapping_sub(1)),
            true,
        );
        sc.emit("size1-plus-1", "size1 + 1", with(&|v| v.size1 += 1), true);
        sc.emit("size2-minus-1", "size2 - 1", with(&|v| v.size2 -= 1), true);
        sc.emit("size2-plus-1", "size2 + 1", with(&|v| v.size2 += 1), true);
        sc.emit(
            "size1-greater-than-size2",
            "size1 and size2 swapped, with their roots",
            with(&|v| {
                std::mem::swap(&mut v.size1, &mut v.size2);
                std::mem::swap(&mut v.root1, &mut v.root2);
            }),
            true,
        );
        sc.emit(
            "swapped-roots",
            "root1 and root2 swapped",
            with(&|v| std::mem::swap(&mut v.root1, &mut v.root2)),
            true,
        );
        sc.emit(
            "root1-bit-flipped",
            "one bit of root1 flipped",
            with(&|v| v.root1 = flip_bit(&v.root1)),
            true,
        );
        sc.emit(
            "root2-bit-flipped",
            "one bit of root2 flipped",
            with(&|v| v.root2 = flip_bit(&v.root2)),
            true,
        );
        let mut flips = vec![0, proof.len() / 2, proof.len().saturating_sub(1)];
        flips.dedup();
        for i in flips.into_iter().filter(|&i| i < proof.len()) {
            sc.emit(
                &format!("proof-{i}-bit-flipped"),
                &format!("one bit of proof[{i}] flipped"),
                with(&|v| v.proof[i] = flip_bit(&v.proof[i])),
                true,
            );
        }
        sc.emit(
            "truncated-proof",
            "the last proof element removed",
            with(&|v| {
                v.proof.pop();
            }),
            !proof.is_empty(),
        );
        sc.emit(
            "empty-proof",
            "an empty proof",
            with(&|v| v.proof.clear()),
            !proof.is_empty(),
        );
        sc.emit(
            "extra-proof-element",
            "root2 appended to the proof",
            with(&|v| v.proof.push(v.root2.clone())),
            true,
        );
        sc.emit(
            "preceding-garbage",
            "an empty element before the proof",
            with(&|v| v.proof.insert(0, Vec::new())),
            true,
        );
        sc.emit(
            "equal-sizes-non-empty-proof",
            "size1 = size2 with a non-empty proof",
            with(&|v| {
                v.size1 = v.size2;
                v.root1 = v.root2.clone();
                if v.proof.is_empty() {
                    v.proof.push(v.root2.clone());
                }
            }),
            true,
        );
        if size1 == 0 {
            sc.emit(
                "any-root1-from-size-0",
                "from size 0 the roots are not examined: every tree extends the empty tree",
                with(&|v| v.root1 = flip_bit(&v.root1)),
                false,
            );
        }
    }

    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::reference;

    fn digests(v: &[Vec<u8>]) -> Option<Vec<Digest32>> {
        v.iter().map(|h| h.as_slice().try_into().ok()).collect()
    }

    /// The generated set's `wantErr` agrees with the recursive reference,
    /// not just with the verifier that chose the cases.
    #[test]
    fn generated_want_err_agrees_with_the_reference() {
        for suite in HashSuite::ALL {
            let files = generate(suite);
            assert!(files.len() > 400, "{suite}: only {} vectors", files.len());
            for (path, json) in &files {
                let vector = Vector::from_json(json.as_bytes()).unwrap();
                assert_eq!(vector.suite(), suite, "{path}");
                let reference_ok = match &vector {
                    Vector::Inclusion(v) => {
                        match (
                            <[u8; 32]>::try_from(v.leaf_hash.as_slice()),
                            <[u8; 32]>::try_from(v.root.as_slice()),
                            digests(&v.proof),
                        ) {
                            (Ok(leaf), Ok(root), Some(proof)) => reference::verify_inclusion(
                                suite,
                                v.leaf_idx,
                                v.tree_size,
                                &leaf,
                                &proof,
                                &root,
                            ),
                            _ => false,
                        }
                    }
                    Vector::Consistency(v) => {
                        match (
                            <[u8; 32]>::try_from(v.root1.as_slice()),
                            <[u8; 32]>::try_from(v.root2.as_slice()),
                            digests(&v.proof),
                        ) {
                            (Ok(r1), Ok(r2), Some(proof)) => reference::verify_consistency(
                                suite, v.size1, v.size2, &r1, &r2, &proof,
                            ),
                            _ => false,
                        }
                    }
                };
                assert_eq!(
                    !reference_ok,
                    vector.want_err(),
                    "{path}: {}",
                    vector.desc()
                );
                assert!(vector.check().matched, "{path}");
            }
        }
    }

    #[test]
    fn generate_is_deterministic_and_covers_the_listed_mutations() {
        let a = generate(HashSuite::Sha256);
        assert_eq!(a, generate(HashSuite::Sha256));
        let names: std::collections::BTreeSet<&str> = a
            .iter()
            .map(|(p, _)| p.rsplit('/').next().unwrap())
            .collect();
        for want in [
            "happy-path.json",
            "wrong-leaf.json",
            "proof-0-bit-flipped.json",
            "leafIdx-minus-1.json",
            "leafIdx-plus-1.json",
            "treeSize-times-2.json",
            "treeSize-plus-1.json",
            "extra-proof-element.json",
            "last-proof-element-removed.json",
            "root-of-other-size.json",
            "leafHash-trailing-garbage.json",
            "size1-minus-1.json",
            "size1-plus-1.json",
            "size2-minus-1.json",
            "size2-plus-1.json",
            "swapped-roots.json",
            "truncated-proof.json",
            "size1-greater-than-size2.json",
            "equal-sizes-non-empty-proof.json",
            "treeSize-not-bound.json",
        ] {
            assert!(names.contains(want), "no {want}");
        }
        // SHA-256 files look exactly like upstream's; SM3 files say so.
        assert!(!a[0].1.contains("hashSuite"));
        let sm3 = generate(HashSuite::Sm3);
        assert!(
            sm3.iter()
                .all(|(_, j)| j.contains("\"hashSuite\": \"sm3\""))
        );
        assert_ne!(a, sm3);
    }

    const HAPPY_8: &str = r#"{"leafIdx":0,"treeSize":8,
        "root":"XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
        "leafHash":"bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
        "proof":["lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                 "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                 "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ="],
        "desc":"CT test tree","wantErr":false,"somethingElse":[1,2]}"#;

    #[test]
    fn parses_upstream_style_vectors_leniently() {
        // The certificate-transparency 8-leaf test tree, upstream style,
        // with an unknown field.
        let outcome = check_vector_json(HAPPY_8.as_bytes()).unwrap();
        assert_eq!(outcome.kind, VectorKind::Inclusion);
        assert_eq!(outcome.suite, HashSuite::Sha256);
        assert_eq!(outcome.desc, "CT test tree");
        assert!(outcome.matched, "{}", outcome.explanation());
        assert_eq!(outcome.verifier_error, None);

        // Claiming it must fail is reported as a mismatch.
        let lie = HAPPY_8.replace("\"wantErr\":false", "\"wantErr\":true");
        let outcome = check_vector_json(lie.as_bytes()).unwrap();
        assert!(!outcome.matched);
        assert_eq!(
            outcome.explanation(),
            "expected wantErr=true, but the proof verified"
        );

        // Same root, claimed to be SM3: the verifier rejects it.
        let sm3 = HAPPY_8.replace("{\"leafIdx\"", "{\"hashSuite\":\"sm3\",\"leafIdx\"");
        let outcome = check_vector_json(sm3.as_bytes()).unwrap();
        assert_eq!(outcome.suite, HashSuite::Sm3);
        assert!(!outcome.matched);
        assert!(
            outcome
                .explanation()
                .starts_with("expected wantErr=false, verifier said: root mismatch"),
            "{}",
            outcome.explanation()
        );

        // proof null or absent = empty; desc and wantErr optional.
        let root1 = "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=";
        for proof in ["\"proof\":null,", ""] {
            let json = format!(
                r#"{{"size1":1,"size2":1,"root1":"{root1}","root2":"{root1}",{proof}"x":1}}"#
            );
            let outcome = check_vector_json(json.as_bytes()).unwrap();
            assert_eq!(outcome.kind, VectorKind::Consistency);
            assert!(outcome.matched && !outcome.want_err, "{proof}: {outcome:?}");
        }

        // Garbage hashes are verification failures, not file errors.
        let json = format!(
            r#"{{"size1":1,"size2":1,"root1":"{root1}","root2":"{root1}","proof":[""],"wantErr":true}}"#
        );
        let outcome = check_vector_json(json.as_bytes()).unwrap();
        assert!(outcome.matched);
        assert_eq!(
            outcome.verifier_error.as_deref(),
            Some("proof[0] is 0 bytes, want 32")
        );
    }

    #[test]
    fn bad_files_are_errors_that_say_why() {
        assert!(matches!(
            check_vector_json(b"{"),
            Err(VectorFileError::Json(_))
        ));
        assert_eq!(check_vector_json(b"[1]"), Err(VectorFileError::NotAnObject));
        assert_eq!(
            check_vector_json(b"{\"desc\":\"x\"}"),
            Err(VectorFileError::UnknownKind)
        );
        assert_eq!(
            check_vector_json(b"{\"leafIdx\":1,\"size1\":1}"),
            Err(VectorFileError::AmbiguousKind)
        );
        let err = check_vector_json(b"{\"leafIdx\":1,\"treeSize\":2,\"root\":\"\"}").unwrap_err();
        assert!(err.to_string().contains("leafHash"), "{err}");
        let err =
            check_vector_json(HAPPY_8.replace("XcnaeacG", "Xc!aeacG").as_bytes()).unwrap_err();
        assert!(err.to_string().contains("invalid base64"), "{err}");
        let err = check_vector_json(
            HAPPY_8
                .replace("{\"leafIdx\"", "{\"hashSuite\":\"sha512\",\"leafIdx\"")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("sha512"), "{err}");
        let err = check_vector_json(
            HAPPY_8
                .replace("\"leafIdx\":0", "\"leafIdx\":-1")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                VectorFileError::Invalid {
                    kind: VectorKind::Inclusion,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn vectors_round_trip_through_json() {
        for (path, json) in generate(HashSuite::Sm3).iter().take(50) {
            let v = Vector::from_json(json.as_bytes()).unwrap();
            assert_eq!(&v.to_json(), json, "{path}");
        }
    }
}
