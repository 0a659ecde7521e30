//! RFC 6962 / RFC 9162 Merkle trees: roots, inclusion and consistency proofs.
//!
//! Definitions (RFC 6962 §2.1, RFC 9162 §2.1.1), over leaf *hashes* `D[n]`:
//!
//! - `MTH({}) = H("")`, `MTH({d}) = d` (already `H(0x00 || data)`),
//!   `MTH(D[n]) = H(0x01 || MTH(D[0:k]) || MTH(D[k:n]))` with `k` the largest
//!   power of two smaller than `n`.
//! - An inclusion proof is `PATH(m, D[n])`, ordered from the leaf's sibling up
//!   to the root's child (RFC 9162 §2.1.3.1).
//! - A consistency proof is `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`
//!   (RFC 9162 §2.1.4.1).
//!
//! Three ways in:
//!
//! - [`root`]: the fast path used when sealing (no per-node allocation).
//! - [`MerkleTree`]: a whole tree kept in memory, built with `rs_merkle`
//!   through the domain-separating hashers [`Rfc6962Sha256`] and
//!   [`Rfc6962Sm3`], serving inclusion and consistency proofs.
//! - [`verify_inclusion`] / [`verify_consistency`]: the RFC 9162 §2.1.3.2 and
//!   §2.1.4.2 verification algorithms, returning a [`ProofError`] that names
//!   the check that failed and the values involved.
//!
//! An inclusion proof does not bind the tree size on its own (leaf 5's path in
//! a 13-leaf tree also verifies against the same root for size 14): the size
//! must come from a signed checkpoint.

use crate::suite::{Digest32, HashSuite};

// ---------------------------------------------------------------------------
// rs_merkle hashers
// ---------------------------------------------------------------------------

macro_rules! rfc6962_hasher {
    ($(#[$doc:meta])* $name:ident, $suite:expr) => {
        $(#[$doc])*
        ///
        /// `hash(data)` is the RFC 6962 leaf hash `H(0x00 || data)`;
        /// `concat_and_hash(l, Some(r))` is the interior node hash
        /// `H(0x01 || l || r)`; `concat_and_hash(l, None)` returns `l`
        /// unchanged, which is exactly RFC 6962's tree shape: the lone node at
        /// the right edge of a level is promoted, never paired with itself.
        ///
        /// Why not rs_merkle's own hashers: `rs_merkle::algorithms::Sha256`
        /// hashes leaves and interior nodes as plain `H(data)` and
        /// `H(left || right)`, with no 0x00/0x01 prefixes. Without that
        /// domain separation an interior node is also the hash of a valid
        /// 64-byte leaf, so a proof can pass off a subtree as a leaf (a second
        /// preimage), and the roots match no other RFC 6962 log or verifier.
        /// It must never be used for Anchord trees.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl $name {
            /// The hash suite this hasher implements.
            pub const SUITE: HashSuite = $suite;
        }

        impl rs_merkle::Hasher for $name {
            type Hash = Digest32;

            fn hash(data: &[u8]) -> Digest32 {
                Self::SUITE.leaf_hash(data)
            }

            fn concat_and_hash(left: &Digest32, right: Option<&Digest32>) -> Digest32 {
                match right {
                    Some(right) => Self::SUITE.node_hash(left, right),
                    None => *left,
                }
            }

            fn hash_size() -> usize {
                32
            }
        }
    };
}

rfc6962_hasher!(
    /// `rs_merkle` hasher for RFC 6962 trees over SHA-256.
    Rfc6962Sha256,
    HashSuite::Sha256
);

rfc6962_hasher!(
    /// `rs_merkle` hasher for RFC 6962 trees over SM3.
    Rfc6962Sm3,
    HashSuite::Sm3
);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a proof could not be produced or did not verify. Every variant carries
/// the values that failed the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the claimed position and
    /// tree size(s).
    #[error("wrong proof length: got {got} hashes, want {want}")]
    WrongProofLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the index and size(s) call for.
        want: usize,
    },
    /// The root computed from an inclusion proof is not the expected root.
    #[error("root mismatch: proof computes {computed}, expected {expected}")]
    RootMismatch {
        /// Hex of the root computed from the leaf hash and the proof.
        computed: String,
        /// Hex of the root the caller expected.
        expected: String,
    },
    /// The old (size1) root computed from a consistency proof is not root1.
    #[error("old root mismatch: proof computes {computed}, root1 is {expected}")]
    OldRootMismatch {
        /// Hex of the old root computed from the proof.
        computed: String,
        /// Hex of the supplied root1.
        expected: String,
    },
    /// The new (size2) root computed from a consistency proof is not root2.
    #[error("new root mismatch: proof computes {computed}, root2 is {expected}")]
    NewRootMismatch {
        /// Hex of the new root computed from the proof.
        computed: String,
        /// Hex of the supplied root2.
        expected: String,
    },
    /// A consistency proof was asked for, or checked, from a larger tree to a
    /// smaller one.
    #[error("size1 {size1} is greater than size2 {size2}")]
    Size1GreaterThanSize2 {
        /// The old tree size.
        size1: u64,
        /// The new tree size.
        size2: u64,
    },
    /// Two trees of the same size are consistent only with an empty proof.
    #[error("size1 = size2 = {size}, but the proof has {len} hashes (want none)")]
    NonEmptyProofForEqualSizes {
        /// The common tree size.
        size: u64,
        /// Hashes in the proof.
        len: usize,
    },
    /// Two trees of the same size with different roots are not consistent.
    #[error("size1 = size2 = {size}, but root1 {root1} differs from root2 {root2}")]
    RootsDifferForEqualSizes {
        /// The common tree size.
        size: u64,
        /// Hex of root1.
        root1: String,
        /// Hex of root2.
        root2: String,
    },
    /// Every tree is consistent with the empty tree, with an empty proof.
    #[error("size1 is 0, but the proof has {len} hashes (want none)")]
    NonEmptyProofForEmptyOldTree {
        /// Hashes in the proof.
        len: usize,
    },
    /// size1 < size2 needs at least one proof hash (RFC 9162 §2.1.4.2 step 1).
    #[error("empty consistency proof from size {size1} to size {size2}")]
    EmptyConsistencyProof {
        /// The old tree size.
        size1: u64,
        /// The new tree size.
        size2: u64,
    },
}

fn hex32(d: &Digest32) -> String {
    hex::encode(d)
}

// ---------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------

/// The RFC 6962 Merkle tree hash of `leaves` (leaf hashes, `H(0x00 || data)`);
/// the empty tree's root is `H("")`.
///
/// This is the sealing hot path. It reduces the tree level by level, bottom
/// up, in one buffer allocated once (half the leaf count): each level's
/// parents overwrite the front of the same buffer, and the lone right-edge
/// node of an odd level is promoted unchanged, which yields exactly RFC
/// 6962's left-balanced shape. No allocation per node and no `Vec<u8>`
/// round trips: each interior node costs one 65-byte hash, that is two calls
/// of the compression function. `rs_merkle` builds the same root but
/// allocates per layer, keeps index tuples and converts every node to and
/// from `Vec<u8>`: about 3x slower on a million leaves, which is why this
/// function exists (`cargo bench -p anchord-core --bench merkle_root`).
/// Its equality with `rs_merkle` and with a recursive reference is tested for
/// every size up to 512.
pub fn root(suite: HashSuite, leaves: &[Digest32]) -> Digest32 {
    match suite {
        HashSuite::Sha256 => reduce(suite, leaves, |l, r| HashSuite::Sha256.node_hash(l, r)),
        HashSuite::Sm3 => reduce(suite, leaves, |l, r| HashSuite::Sm3.node_hash(l, r)),
    }
}

/// The level-by-level reduction behind [`root`], monomorphised per suite.
#[inline(always)]
fn reduce(
    suite: HashSuite,
    leaves: &[Digest32],
    node_hash: impl Fn(&Digest32, &Digest32) -> Digest32,
) -> Digest32 {
    match leaves {
        [] => return suite.empty_root(),
        [only] => return *only,
        _ => {}
    }
    // First level straight from the input, so the leaves are never copied.
    let mut level: Vec<Digest32> = Vec::with_capacity(leaves.len().div_ceil(2));
    let mut pairs = leaves.chunks_exact(2);
    for pair in &mut pairs {
        level.push(node_hash(&pair[0], &pair[1]));
    }
    level.extend_from_slice(pairs.remainder());
    let mut len = level.len();
    while len > 1 {
        let half = len / 2;
        for i in 0..half {
            level[i] = node_hash(&level[2 * i], &level[2 * i + 1]);
        }
        if len % 2 == 1 {
            level[half] = level[len - 1];
        }
        len = len.div_ceil(2);
    }
    level[0]
}

/// The largest power of two strictly smaller than `n` (`n >= 2`): RFC 6962's
/// split point `k`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

fn to_usize(v: u64) -> usize {
    // Callers only pass values bounded by a slice length.
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The RFC 9162 §2.1.3.1 inclusion proof `PATH(index, leaves)`, computed
/// from subtree roots with [`root`] (linear in the tree size, no tree kept).
pub fn inclusion_proof(
    suite: HashSuite,
    leaves: &[Digest32],
    index: u64,
) -> Result<Vec<Digest32>, ProofError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk down from the root; PATH lists hashes bottom-up, so reverse.
    let (mut lo, mut hi) = (0u64, size);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            path.push(root(suite, &leaves[to_usize(mid)..to_usize(hi)]));
            hi = mid;
        } else {
            path.push(root(suite, &leaves[to_usize(lo)..to_usize(mid)]));
            lo = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// The RFC 9162 §2.1.4.1 consistency proof `PROOF(size1, leaves)` from the
/// tree of the first `size1` leaves to the tree of all of them.
///
/// `size1 == 0` and `size1 == leaves.len()` give an empty proof (see
/// [`verify_consistency`]); `size1 > leaves.len()` is an error.
pub fn consistency_proof(
    suite: HashSuite,
    leaves: &[Digest32],
    size1: u64,
) -> Result<Vec<Digest32>, ProofError> {
    let size2 = leaves.len() as u64;
    if size1 > size2 {
        return Err(ProofError::Size1GreaterThanSize2 { size1, size2 });
    }
    if size1 == 0 || size1 == size2 {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled; m is relative to lo.
    let (mut lo, mut hi, mut m, mut whole_old_tree) = (0u64, size2, size1, true);
    let mut proof = Vec::new();
    loop {
        let n = hi - lo;
        if m == n {
            if !whole_old_tree {
                proof.push(root(suite, &leaves[to_usize(lo)..to_usize(hi)]));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(root(suite, &leaves[to_usize(lo + k)..to_usize(hi)]));
            hi = lo + k;
        } else {
            proof.push(root(suite, &leaves[to_usize(lo)..to_usize(lo + k)]));
            lo += k;
            m -= k;
            whole_old_tree = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

// ---------------------------------------------------------------------------
// The in-memory tree
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Backend {
    Sha256(rs_merkle::MerkleTree<Rfc6962Sha256>),
    Sm3(rs_merkle::MerkleTree<Rfc6962Sm3>),
}

/// A whole RFC 6962 tree in memory, built with `rs_merkle` through the
/// domain-separating hashers, serving roots and proofs.
#[derive(Clone)]
pub struct MerkleTree {
    suite: HashSuite,
    leaves: Vec<Digest32>,
    backend: Backend,
}

impl std::fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("suite", &self.suite)
            .field("size", &self.size())
            .field("root", &hex32(&self.root()))
            .finish()
    }
}

impl MerkleTree {
    /// Builds the tree over `leaves` (leaf hashes, `H(0x00 || data)`).
    pub fn new(suite: HashSuite, leaves: Vec<Digest32>) -> Self {
        let backend = match suite {
            HashSuite::Sha256 => Backend::Sha256(rs_merkle::MerkleTree::from_leaves(&leaves)),
            HashSuite::Sm3 => Backend::Sm3(rs_merkle::MerkleTree::from_leaves(&leaves)),
        };
        Self {
            suite,
            leaves,
            backend,
        }
    }

    /// The tree's hash suite.
    pub fn suite(&self) -> HashSuite {
        self.suite
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Digest32] {
        &self.leaves
    }

    /// The leaf hash at `index`, if inside the tree.
    pub fn leaf(&self, index: u64) -> Option<Digest32> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .copied()
    }

    /// The tree's root (`H("")` when empty).
    pub fn root(&self) -> Digest32 {
        let root = match &self.backend {
            Backend::Sha256(tree) => tree.root(),
            Backend::Sm3(tree) => tree.root(),
        };
        root.unwrap_or_else(|| self.suite.empty_root())
    }

    /// The RFC 9162 inclusion proof (`PATH`) of the leaf at `index`, from
    /// `rs_merkle` (its helper nodes come bottom-up, as `PATH` does).
    pub fn inclusion_proof(&self, index: u64) -> Result<Vec<Digest32>, ProofError> {
        let size = self.size();
        let i = usize::try_from(index)
            .ok()
            .filter(|&i| i < self.leaves.len())
            .ok_or(ProofError::IndexOutOfRange { index, size })?;
        Ok(match &self.backend {
            Backend::Sha256(tree) => tree.proof(&[i]).proof_hashes().to_vec(),
            Backend::Sm3(tree) => tree.proof(&[i]).proof_hashes().to_vec(),
        })
    }

    /// The RFC 9162 consistency proof (`PROOF`) from the tree of the first
    /// `size1` leaves to this tree. See [`consistency_proof`].
    pub fn consistency_proof(&self, size1: u64) -> Result<Vec<Digest32>, ProofError> {
        consistency_proof(self.suite, &self.leaves, size1)
    }
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

/// The number of hashes in the inclusion proof of `index` in a tree of
/// `size` (`index < size`): the levels below the point where the leaf's path
/// and the tree's right edge diverge ("inner"), plus one per left-hand
/// subtree above it ("border").
fn inclusion_proof_len(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    // `inner` is 64 when bit 63 differs (a hostile size): shifted out, not a panic.
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// The root that an inclusion proof computes for `leaf_hash` at `index` in a
/// tree of `size`: RFC 9162 §2.1.3.2 steps 1 to 4.
///
/// Fails if the index is out of range or the proof has the wrong length.
pub fn root_from_inclusion_proof(
    suite: HashSuite,
    index: u64,
    size: u64,
    leaf_hash: &Digest32,
    proof: &[Digest32],
) -> Result<Digest32, ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The RFC loop detects a wrong length only as "sn reached 0 too early"
    // or "sn is not 0 at the end"; check it up front to report both numbers.
    let (inner, border) = inclusion_proof_len(index, size);
    let want = inner + border;
    let wrong_length = ProofError::WrongProofLength {
        got: proof.len(),
        want,
    };
    if proof.len() != want {
        return Err(wrong_length);
    }
    // Steps 2 to 4.
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            r = suite.node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = suite.node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 5, first half.
    if s != 0 {
        return Err(wrong_length);
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is the leaf at `index` in the tree of `size`
/// leaves with root `root` (RFC 9162 §2.1.3.2).
///
/// Note that this does not bind `size` by itself: some proofs also verify
/// for other sizes. Take the size from a signed checkpoint.
pub fn verify_inclusion(
    suite: HashSuite,
    index: u64,
    size: u64,
    leaf_hash: &Digest32,
    proof: &[Digest32],
    root: &Digest32,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(suite, index, size, leaf_hash, proof)?;
    if &computed != root {
        return Err(ProofError::RootMismatch {
            computed: hex32(&computed),
            expected: hex32(root),
        });
    }
    Ok(())
}

/// Verifies that the tree of `size2` leaves with root `root2` extends the
/// tree of `size1` leaves with root `root1` (RFC 9162 §2.1.4.2).
///
/// Edge cases, as in transparency-dev/merkle's `VerifyConsistency`:
/// `size1 > size2` fails; `size1 == size2` needs an empty proof and equal
/// roots; `size1 == 0` needs an empty proof and then verifies whatever the
/// roots (every tree extends the empty tree).
pub fn verify_consistency(
    suite: HashSuite,
    size1: u64,
    size2: u64,
    root1: &Digest32,
    root2: &Digest32,
    proof: &[Digest32],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::Size1GreaterThanSize2 { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyProofForEqualSizes {
                size: size1,
                len: proof.len(),
            });
        }
        if root1 != root2 {
            return Err(ProofError::RootsDifferForEqualSizes {
                size: size1,
                root1: hex32(root1),
                root2: hex32(root2),
            });
        }
        return Ok(());
    }
    if size1 == 0 {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyProofForEmptyOldTree { len: proof.len() });
        }
        return Ok(());
    }
    // Step 1.
    if proof.is_empty() {
        return Err(ProofError::EmptyConsistencyProof { size1, size2 });
    }
    // Step 2: when size1 is a power of two the old root is itself a node of
    // the new tree and is not sent; seed with root1 instead of prepending it.
    let size1_is_pow2 = size1.is_power_of_two();
    let (seed, rest) = if size1_is_pow2 {
        (root1, proof)
    } else {
        (&proof[0], &proof[1..])
    };
    // Length check up front, for evidence (see root_from_inclusion_proof):
    // the proof is the old tree's last leaf's inclusion path in the new tree,
    // minus the levels below the old tree's largest full subtree, plus that
    // subtree's root unless it is root1.
    let (inner, border) = inclusion_proof_len(size1 - 1, size2);
    let inner = inner - size1.trailing_zeros() as usize;
    let want = inner + border + usize::from(!size1_is_pow2);
    let wrong_length = ProofError::WrongProofLength {
        got: proof.len(),
        want,
    };
    if proof.len() != want {
        return Err(wrong_length);
    }
    // Steps 3 and 4.
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    // Steps 5 and 6.
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            fr = suite.node_hash(c, &fr);
            sr = suite.node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = suite.node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    // Step 7.
    if s != 0 {
        return Err(wrong_length);
    }
    if &fr != root1 {
        return Err(ProofError::OldRootMismatch {
            computed: hex32(&fr),
            expected: hex32(root1),
        });
    }
    if &sr != root2 {
        return Err(ProofError::NewRootMismatch {
            computed: hex32(&sr),
            expected: hex32(root2),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reference implementation (tests only)
// ---------------------------------------------------------------------------

/// A deliberately naive implementation written straight from the RFC 6962
/// §2.1 definitions (MTH, PATH, PROOF/SUBPROOF), recursion and all, used only
/// to check the code above. Verification is the definitions run backwards:
/// peel the last proof hash off at each split.
#[cfg(test)]
pub(crate) mod reference {
    use std::collections::HashMap;

    use crate::suite::{Digest32, HashSuite};

    /// k: the largest power of two smaller than n.
    fn k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// A tree's leaves plus a cache of MTH by range, so that computing every
    /// leaf's PATH stays linear per tree. The cache changes nothing but
    /// speed: `mth` is still the recursive definition.
    pub(crate) struct Tree<'a> {
        suite: HashSuite,
        d: &'a [Digest32],
        memo: HashMap<(usize, usize), Digest32>,
    }

    impl<'a> Tree<'a> {
        pub(crate) fn new(suite: HashSuite, d: &'a [Digest32]) -> Self {
            Self {
                suite,
                d,
                memo: HashMap::new(),
            }
        }

        /// MTH(D[lo:hi]).
        pub(crate) fn mth(&mut self, lo: usize, hi: usize) -> Digest32 {
            let n = hi - lo;
            if n == 0 {
                return self.suite.empty_root();
            }
            if n == 1 {
                return self.d[lo];
            }
            if let Some(h) = self.memo.get(&(lo, hi)) {
                return *h;
            }
            let split = lo + k(n);
            let left = self.mth(lo, split);
            let right = self.mth(split, hi);
            let h = self.suite.node_hash(&left, &right);
            self.memo.insert((lo, hi), h);
            h
        }

        /// PATH(m, D[lo:hi]), m relative to lo.
        pub(crate) fn path(&mut self, m: usize, lo: usize, hi: usize) -> Vec<Digest32> {
            let n = hi - lo;
            if n == 1 {
                return Vec::new();
            }
            let split = k(n);
            if m < split {
                let mut p = self.path(m, lo, lo + split);
                p.push(self.mth(lo + split, hi));
                p
            } else {
                let mut p = self.path(m - split, lo + split, hi);
                p.push(self.mth(lo, lo + split));
                p
            }
        }

        /// PROOF(m, D[0:n]) for 0 < m <= n.
        pub(crate) fn proof(&mut self, m: usize, n: usize) -> Vec<Digest32> {
            self.subproof(m, 0, n, true)
        }

        /// SUBPROOF(m, D[lo:hi], b).
        fn subproof(&mut self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Digest32> {
            let n = hi - lo;
            if m == n {
                return if b {
                    Vec::new()
                } else {
                    vec![self.mth(lo, hi)]
                };
            }
            let split = k(n);
            if m <= split {
                let mut p = self.subproof(m, lo, lo + split, b);
                p.push(self.mth(lo + split, hi));
                p
            } else {
                let mut p = self.subproof(m - split, lo + split, hi, false);
                p.push(self.mth(lo, lo + split));
                p
            }
        }
    }

    /// MTH of all of `d`.
    pub(crate) fn mth(suite: HashSuite, d: &[Digest32]) -> Digest32 {
        Tree::new(suite, d).mth(0, d.len())
    }

    /// Inverse of PATH: the root `proof` yields for `leaf` at `m` of `n`.
    fn root_from_path(
        suite: HashSuite,
        m: u64,
        n: u64,
        leaf: &Digest32,
        proof: &[Digest32],
    ) -> Option<Digest32> {
        if m >= n {
            return None;
        }
        if n == 1 {
            return proof.is_empty().then_some(*leaf);
        }
        let (last, rest) = proof.split_last()?;
        let split = k(n as usize) as u64;
        if m < split {
            let left = root_from_path(suite, m, split, leaf, rest)?;
            Some(suite.node_hash(&left, last))
        } else {
            let right = root_from_path(suite, m - split, n - split, leaf, rest)?;
            Some(suite.node_hash(last, &right))
        }
    }

    /// Does `proof` show `leaf` at `m` in a tree of `n` leaves with `root`?
    pub(crate) fn verify_inclusion(
        suite: HashSuite,
        m: u64,
        n: u64,
        leaf: &Digest32,
        proof: &[Digest32],
        root: &Digest32,
    ) -> bool {
        root_from_path(suite, m, n, leaf, proof).as_ref() == Some(root)
    }

    /// Inverse of SUBPROOF: the (old, new) roots `proof` yields.
    fn roots_from_subproof(
        suite: HashSuite,
        m: u64,
        n: u64,
        proof: &[Digest32],
        b: bool,
        root1: &Digest32,
    ) -> Option<(Digest32, Digest32)> {
        if m == n {
            return if b {
                proof.is_empty().then_some((*root1, *root1))
            } else {
                match proof {
                    [only] => Some((*only, *only)),
                    _ => None,
                }
            };
        }
        let (last, rest) = proof.split_last()?;
        let split = k(n as usize) as u64;
        if m <= split {
            let (old, new) = roots_from_subproof(suite, m, split, rest, b, root1)?;
            Some((old, suite.node_hash(&new, last)))
        } else {
            let (old, new) = roots_from_subproof(suite, m - split, n - split, rest, false, root1)?;
            Some((suite.node_hash(last, &old), suite.node_hash(last, &new)))
        }
    }

    /// Does `proof` show the tree (n, root2) extends the tree (m, root1)?
    /// Edge cases as documented on `merkle::verify_consistency`.
    pub(crate) fn verify_consistency(
        suite: HashSuite,
        m: u64,
        n: u64,
        root1: &Digest32,
        root2: &Digest32,
        proof: &[Digest32],
    ) -> bool {
        if m > n {
            return false;
        }
        if m == n {
            return proof.is_empty() && root1 == root2;
        }
        if m == 0 {
            return proof.is_empty();
        }
        roots_from_subproof(suite, m, n, proof, true, root1)
            .is_some_and(|(old, new)| &old == root1 && &new == root2)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn h(s: &str) -> Digest32 {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// Deterministic leaves: leaf i = H(0x00 || i as 8 bytes big-endian).
    fn leaves(suite: HashSuite, n: usize) -> Vec<Digest32> {
        (0..n as u64)
            .map(|i| suite.leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    /// The certificate-transparency / transparency-dev 8-leaf test tree.
    const CT_LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    /// Published RFC 6962 SHA-256 roots of the CT test tree's prefixes.
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn ct_leaves() -> Vec<Digest32> {
        CT_LEAVES
            .iter()
            .map(|d| HashSuite::Sha256.leaf_hash(d))
            .collect()
    }

    fn flip(mut d: Digest32, bit: usize) -> Digest32 {
        d[bit / 8 % 32] ^= 1 << (bit % 8);
        d
    }

    #[test]
    fn ct_test_tree_roots_match_published_values() {
        let leaves = ct_leaves();
        for (i, want) in CT_ROOTS.iter().enumerate() {
            let prefix = &leaves[..=i];
            let want = h(want);
            assert_eq!(
                reference::mth(HashSuite::Sha256, prefix),
                want,
                "reference, size {}",
                i + 1
            );
            assert_eq!(
                root(HashSuite::Sha256, prefix),
                want,
                "root(), size {}",
                i + 1
            );
            let tree = MerkleTree::new(HashSuite::Sha256, prefix.to_vec());
            assert_eq!(tree.root(), want, "MerkleTree, size {}", i + 1);
        }
        assert_eq!(
            root(HashSuite::Sha256, &[]),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn ct_test_tree_leaf0_path_and_consistency_1_to_8_match_published_values() {
        // transparency-dev/merkle testdata: inclusion of leaf 0 in the 8-leaf
        // tree, and consistency from size 1 to 8 (the same three hashes).
        let want = [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ];
        let tree = MerkleTree::new(HashSuite::Sha256, ct_leaves());
        assert_eq!(tree.inclusion_proof(0).unwrap(), want);
        assert_eq!(tree.consistency_proof(1).unwrap(), want);
        let root8 = h(CT_ROOTS[7]);
        let root1 = h(CT_ROOTS[0]);
        verify_inclusion(HashSuite::Sha256, 0, 8, &tree.leaves()[0], &want, &root8).unwrap();
        verify_consistency(HashSuite::Sha256, 1, 8, &root1, &root8, &want).unwrap();
    }

    #[test]
    fn leaf5_of_13_also_verifies_for_sizes_9_to_16_but_not_8_or_17() {
        // NOTES.md: an inclusion proof alone does not bind the tree size.
        // Leaf 5's path in any tree of 9 to 16 leaves is PATH(5, D[0:8])
        // followed by the root of the right subtree, which the proof itself
        // supplies: the same proof and root verify for all of those sizes.
        let s = HashSuite::Sha256;
        let d = leaves(s, 13);
        let proof = inclusion_proof(s, &d, 5).unwrap();
        let r = root(s, &d);
        for size in 9..=16 {
            verify_inclusion(s, 5, size, &d[5], &proof, &r).unwrap();
            assert!(reference::verify_inclusion(s, 5, size, &d[5], &proof, &r));
        }
        for size in [6, 8, 17, 26, 32] {
            assert!(
                verify_inclusion(s, 5, size, &d[5], &proof, &r).is_err(),
                "size {size}"
            );
            assert!(!reference::verify_inclusion(s, 5, size, &d[5], &proof, &r));
        }
    }

    /// Every tree size up to `max_size`: roots, every leaf's inclusion proof
    /// and consistency proofs against the reference; `all_pairs_up_to`:
    /// every size1 for size2 up to this, sampled size1 beyond.
    fn known_answer_sweep(suite: HashSuite, max_size: usize, all_pairs_up_to: usize) {
        let all = leaves(suite, max_size);
        for n in 0..=max_size {
            let d = &all[..n];
            let mut reference = reference::Tree::new(suite, d);
            let want_root = reference.mth(0, n);
            assert_eq!(root(suite, d), want_root, "{suite} root(), size {n}");
            let tree = MerkleTree::new(suite, d.to_vec());
            assert_eq!(tree.size(), n as u64);
            assert_eq!(tree.root(), want_root, "{suite} MerkleTree root, size {n}");

            for m in 0..n {
                let want = reference.path(m, 0, n);
                let got = tree.inclusion_proof(m as u64).unwrap();
                assert_eq!(got, want, "{suite} PATH({m}, {n}) from rs_merkle");
                // The free function recomputes subtrees: check it on every
                // leaf of small trees and a spread of leaves beyond.
                if n <= 128 || m % 37 == 0 || m + 1 == n {
                    let free = inclusion_proof(suite, d, m as u64).unwrap();
                    assert_eq!(free, want, "{suite} PATH({m}, {n}) from inclusion_proof()");
                }
                verify_inclusion(suite, m as u64, n as u64, &d[m], &got, &want_root)
                    .unwrap_or_else(|e| panic!("{suite} PATH({m}, {n}) does not verify: {e}"));
                assert!(reference::verify_inclusion(
                    suite, m as u64, n as u64, &d[m], &got, &want_root
                ));
            }
            assert_eq!(
                tree.inclusion_proof(n as u64),
                Err(ProofError::IndexOutOfRange {
                    index: n as u64,
                    size: n as u64
                })
            );

            for m in 0..=n {
                if n > all_pairs_up_to
                    && !(m < 4 || m + 4 > n || m % 29 == 0 || m.is_power_of_two())
                {
                    continue;
                }
                let got = tree.consistency_proof(m as u64).unwrap();
                let want = if m == 0 {
                    Vec::new()
                } else {
                    reference.proof(m, n)
                };
                assert_eq!(got, want, "{suite} PROOF({m}, {n})");
                let old_root = reference.mth(0, m);
                verify_consistency(suite, m as u64, n as u64, &old_root, &want_root, &got)
                    .unwrap_or_else(|e| panic!("{suite} PROOF({m}, {n}) does not verify: {e}"));
                assert!(reference::verify_consistency(
                    suite, m as u64, n as u64, &old_root, &want_root, &got
                ));
            }
            assert_eq!(
                tree.consistency_proof(n as u64 + 1),
                Err(ProofError::Size1GreaterThanSize2 {
                    size1: n as u64 + 1,
                    size2: n as u64
                })
            );
        }
    }

    #[test]
    fn known_answers_sha256_every_size_0_to_512() {
        known_answer_sweep(HashSuite::Sha256, 512, 64);
    }

    #[test]
    fn known_answers_sm3_every_size_0_to_512() {
        known_answer_sweep(HashSuite::Sm3, 512, 64);
    }

    #[test]
    fn rs_merkle_hashers_are_domain_separated() {
        use rs_merkle::Hasher as _;
        let l = Rfc6962Sha256::hash(b"L");
        let r = Rfc6962Sha256::hash(b"R");
        assert_eq!(l, HashSuite::Sha256.leaf_hash(b"L"));
        assert_ne!(l, HashSuite::Sha256.digest(b"L"));
        assert_eq!(
            Rfc6962Sha256::concat_and_hash(&l, Some(&r)),
            HashSuite::Sha256.node_hash(&l, &r)
        );
        assert_eq!(Rfc6962Sha256::concat_and_hash(&l, None), l);
        // rs_merkle's default hasher has no prefixes: its root differs.
        let plain = rs_merkle::MerkleTree::<rs_merkle::algorithms::Sha256>::from_leaves(&[l, r]);
        assert_ne!(plain.root().unwrap(), root(HashSuite::Sha256, &[l, r]));
        assert_eq!(Rfc6962Sm3::hash(b"L"), HashSuite::Sm3.leaf_hash(b"L"));
        assert_eq!(
            Rfc6962Sm3::concat_and_hash(&l, Some(&r)),
            HashSuite::Sm3.node_hash(&l, &r)
        );
    }

    #[test]
    fn sm3_tree_differs_from_sha256_tree() {
        let d = leaves(HashSuite::Sha256, 5);
        assert_ne!(root(HashSuite::Sha256, &d), root(HashSuite::Sm3, &d));
        assert_eq!(root(HashSuite::Sm3, &[]), HashSuite::Sm3.empty_root());
    }

    /// Sizes whose top bit differs from the index's (hostile bundles): a
    /// wrong-length error, never a shift-overflow panic (found by the
    /// TypeScript cross-verifier's mutations, issue 16).
    #[test]
    fn proofs_for_sizes_near_u64_max_fail_cleanly() {
        let s = HashSuite::Sha256;
        let d = leaves(s, 5);
        let r = root(s, &d);
        let proof = inclusion_proof(s, &d, 2).unwrap();
        for size in [u64::MAX, 1 << 63, (1 << 63) + 1] {
            assert!(matches!(
                verify_inclusion(s, 2, size, &d[2], &proof, &r),
                Err(ProofError::WrongProofLength { .. })
            ));
            assert!(matches!(
                verify_consistency(s, 3, size, &r, &r, &proof),
                Err(ProofError::WrongProofLength { .. })
            ));
        }
    }

    #[test]
    fn errors_carry_their_evidence() {
        let s = HashSuite::Sha256;
        let d = leaves(s, 7);
        let r = root(s, &d);
        let proof = inclusion_proof(s, &d, 3).unwrap();
        assert_eq!(
            verify_inclusion(s, 7, 7, &d[3], &proof, &r),
            Err(ProofError::IndexOutOfRange { index: 7, size: 7 })
        );
        assert_eq!(
            verify_inclusion(s, 3, 7, &d[3], &proof[..2], &r),
            Err(ProofError::WrongProofLength { got: 2, want: 3 })
        );
        let bad = flip(r, 0);
        let err = verify_inclusion(s, 3, 7, &d[3], &proof, &bad).unwrap_err();
        assert_eq!(
            err,
            ProofError::RootMismatch {
                computed: hex::encode(r),
                expected: hex::encode(bad)
            }
        );
        assert!(err.to_string().contains(&hex::encode(bad)), "{err}");

        let r3 = root(s, &d[..3]);
        let cproof = consistency_proof(s, &d, 3).unwrap();
        assert_eq!(
            verify_consistency(s, 7, 3, &r, &r3, &cproof),
            Err(ProofError::Size1GreaterThanSize2 { size1: 7, size2: 3 })
        );
        assert_eq!(
            verify_consistency(s, 7, 7, &r, &r, &cproof),
            Err(ProofError::NonEmptyProofForEqualSizes {
                size: 7,
                len: cproof.len()
            })
        );
        assert_eq!(
            verify_consistency(s, 7, 7, &r, &r3, &[]),
            Err(ProofError::RootsDifferForEqualSizes {
                size: 7,
                root1: hex::encode(r),
                root2: hex::encode(r3)
            })
        );
        assert_eq!(
            verify_consistency(s, 0, 7, &r3, &r, &cproof),
            Err(ProofError::NonEmptyProofForEmptyOldTree { len: cproof.len() })
        );
        assert_eq!(verify_consistency(s, 0, 7, &r3, &r, &[]), Ok(()));
        assert_eq!(
            verify_consistency(s, 3, 7, &r3, &r, &[]),
            Err(ProofError::EmptyConsistencyProof { size1: 3, size2: 7 })
        );
        assert!(matches!(
            verify_consistency(s, 3, 7, &flip(r3, 9), &r, &cproof),
            Err(ProofError::OldRootMismatch { .. })
        ));
        assert!(matches!(
            verify_consistency(s, 3, 7, &r3, &flip(r, 9), &cproof),
            Err(ProofError::NewRootMismatch { .. })
        ));
        assert_eq!(
            verify_consistency(s, 3, 7, &r3, &r, &cproof[1..]),
            Err(ProofError::WrongProofLength {
                got: cproof.len() - 1,
                want: cproof.len()
            })
        );
    }

    fn inclusion_case() -> impl Strategy<Value = (HashSuite, u64, u64)> {
        (prop::sample::select(HashSuite::ALL.to_vec()), 1u64..=300)
            .prop_flat_map(|(suite, size)| (Just(suite), 0..size, Just(size)))
    }

    fn consistency_case() -> impl Strategy<Value = (HashSuite, u64, u64)> {
        (prop::sample::select(HashSuite::ALL.to_vec()), 1u64..=200)
            .prop_flat_map(|(suite, size2)| (Just(suite), 0..=size2, Just(size2)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn inclusion_every_mutation_fails_iff_the_reference_rejects_it(
            (suite, index, size) in inclusion_case(),
            bit in 0usize..256,
            which in any::<prop::sample::Index>(),
        ) {
            let d = leaves(suite, size as usize);
            let leaf = d[index as usize];
            let proof = inclusion_proof(suite, &d, index).unwrap();
            let r = root(suite, &d);
            prop_assert_eq!(verify_inclusion(suite, index, size, &leaf, &proof, &r), Ok(()));

            // Flipping any bit of the leaf, the root or a proof hash fails.
            prop_assert!(verify_inclusion(suite, index, size, &flip(leaf, bit), &proof, &r).is_err());
            prop_assert!(verify_inclusion(suite, index, size, &leaf, &proof, &flip(r, bit)).is_err());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let i = which.index(bad.len());
                bad[i] = flip(bad[i], bit);
                prop_assert!(verify_inclusion(suite, index, size, &leaf, &bad, &r).is_err());
                prop_assert!(!reference::verify_inclusion(suite, index, size, &leaf, &bad, &r));
            }

            // An extra or a missing hash fails.
            let mut longer = proof.clone();
            longer.push(r);
            prop_assert!(verify_inclusion(suite, index, size, &leaf, &longer, &r).is_err());
            if let Some((_, shorter)) = proof.split_last() {
                prop_assert!(verify_inclusion(suite, index, size, &leaf, shorter, &r).is_err());
            }

            // Index and size changes fail exactly when the reference says the
            // proof is not a valid PATH for them (some sizes legitimately
            // verify: the proof alone does not bind the size).
            let moves = [
                (index.wrapping_sub(1), size),
                (index + 1, size),
                (index, size * 2),
                (index, size + 1),
                (index, size - 1),
                (index ^ 1, size),
            ];
            for (i, n) in moves {
                let got = verify_inclusion(suite, i, n, &leaf, &proof, &r);
                let want = reference::verify_inclusion(suite, i, n, &leaf, &proof, &r);
                prop_assert_eq!(got.is_ok(), want, "index {} size {} -> {} {}: {:?}", index, size, i, n, got);
                if i != index {
                    // A leaf never proves at another position of a tree.
                    prop_assert!(got.is_err());
                }
            }
        }

        #[test]
        fn inclusion_verifier_agrees_with_reference_on_foreign_proofs(
            (suite, index, size) in inclusion_case(),
            (other_index, other_size) in (1u64..=300).prop_flat_map(|n| (0..n, Just(n))),
        ) {
            // A proof for some other position, checked at (index, size).
            let n = size.max(other_size) as usize;
            let d = leaves(suite, n);
            let proof = inclusion_proof(suite, &d[..other_size as usize], other_index).unwrap();
            let r = root(suite, &d[..other_size as usize]);
            let leaf = d[other_index as usize];
            let got = verify_inclusion(suite, index, size, &leaf, &proof, &r);
            let want = reference::verify_inclusion(suite, index, size, &leaf, &proof, &r);
            prop_assert_eq!(got.is_ok(), want, "{:?}", got);
        }

        #[test]
        fn consistency_every_mutation_fails_iff_the_reference_rejects_it(
            (suite, size1, size2) in consistency_case(),
            bit in 0usize..256,
            which in any::<prop::sample::Index>(),
        ) {
            let d = leaves(suite, size2 as usize);
            let r1 = root(suite, &d[..size1 as usize]);
            let r2 = root(suite, &d);
            let proof = consistency_proof(suite, &d, size1).unwrap();
            prop_assert_eq!(verify_consistency(suite, size1, size2, &r1, &r2, &proof), Ok(()));
            prop_assert!(reference::verify_consistency(suite, size1, size2, &r1, &r2, &proof));

            if !proof.is_empty() {
                let mut bad = proof.clone();
                let i = which.index(bad.len());
                bad[i] = flip(bad[i], bit);
                prop_assert!(verify_consistency(suite, size1, size2, &r1, &r2, &bad).is_err());
                prop_assert!(verify_consistency(suite, size1, size2, &r1, &r2, &bad[1..]).is_err());
                prop_assert!(verify_consistency(suite, size1, size2, &r1, &r2, &proof[..proof.len() - 1]).is_err());
            }
            let mut longer = proof.clone();
            longer.push(r2);
            prop_assert!(verify_consistency(suite, size1, size2, &r1, &r2, &longer).is_err());
            if size1 > 0 {
                // With size1 = 0 neither root is looked at.
                prop_assert!(verify_consistency(suite, size1, size2, &flip(r1, bit), &r2, &proof).is_err());
                prop_assert!(verify_consistency(suite, size1, size2, &r1, &flip(r2, bit), &proof).is_err());
            }

            let moves = [
                (size1.wrapping_sub(1), size2, r1, r2),
                (size1 + 1, size2, r1, r2),
                (size1, size2 - 1, r1, r2),
                (size1, size2 + 1, r1, r2),
                (size1, size2 * 2, r1, r2),
                (size2, size1, r2, r1),
                (size1, size2, r2, r1),
            ];
            for (m, n, a, b) in moves {
                let got = verify_consistency(suite, m, n, &a, &b, &proof);
                let want = reference::verify_consistency(suite, m, n, &a, &b, &proof);
                prop_assert_eq!(got.is_ok(), want, "({}, {}) -> ({}, {}): {:?}", size1, size2, m, n, got);
            }
        }

        #[test]
        fn consistency_verifier_agrees_with_reference_on_foreign_proofs(
            (suite, size1, size2) in consistency_case(),
            (other1, other2) in (1u64..=200).prop_flat_map(|n| (0..=n, Just(n))),
        ) {
            let n = size2.max(other2) as usize;
            let d = leaves(suite, n);
            let proof = consistency_proof(suite, &d[..other2 as usize], other1).unwrap();
            let r1 = root(suite, &d[..other1 as usize]);
            let r2 = root(suite, &d[..other2 as usize]);
            let got = verify_consistency(suite, size1, size2, &r1, &r2, &proof);
            let want = reference::verify_consistency(suite, size1, size2, &r1, &r2, &proof);
            prop_assert_eq!(got.is_ok(), want, "{:?}", got);
        }
    }
}
