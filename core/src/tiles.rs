//! Inclusion proofs from stored chunk roots ("tiles"), so that a proof for
//! one leaf of a large block never rebuilds the block's whole tree.
//!
//! Split a tree's `n` leaves into aligned chunks of `C` leaves (`C` a power
//! of two; the last chunk may be shorter). Every split point of RFC 6962's
//! left-balanced tree above the chunks is a multiple of `C`: for `n > C` the
//! split `k` (largest power of two below `n`) is at least `C`, and `k / C`
//! is the largest power of two below `ceil(n / C)`. So the tree over the
//! leaves is the tree over the chunk roots, each chunk a subtree; and the
//! inclusion path of leaf `i` is its path inside its chunk followed by the
//! chunk's path among the chunk roots. Checked against [`merkle`] for every
//! size up to 300 with small chunks.

use crate::merkle::{self, ProofError};
use crate::suite::{Digest32, HashSuite};

/// Roots of the aligned `chunk`-leaf chunks of `leaves` (`chunk` a power of two).
pub fn chunk_roots(suite: HashSuite, leaves: &[Digest32], chunk: usize) -> Vec<Digest32> {
    debug_assert!(chunk.is_power_of_two());
    leaves
        .chunks(chunk)
        .map(|c| merkle::root(suite, c))
        .collect()
}

/// The inclusion path of leaf `index` of a tree of `size` leaves, from the
/// leaves of its chunk (`chunk_leaves`, chunk number `index / chunk`) and the
/// roots of every chunk.
pub fn inclusion_proof(
    suite: HashSuite,
    size: u64,
    index: u64,
    chunk: u64,
    chunk_leaves: &[Digest32],
    roots: &[Digest32],
) -> Result<Vec<Digest32>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let c = index / chunk;
    let want_leaves = chunk.min(size - c * chunk);
    let want_roots = size.div_ceil(chunk);
    if chunk_leaves.len() as u64 != want_leaves || roots.len() as u64 != want_roots {
        return Err(ProofError::WrongProofLength {
            got: chunk_leaves.len(),
            want: want_leaves as usize,
        });
    }
    let mut path = merkle::inclusion_proof(suite, chunk_leaves, index % chunk)?;
    path.extend(merkle::inclusion_proof(suite, roots, c)?);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiled_paths_equal_whole_tree_paths() {
        let suite = HashSuite::Sha256;
        let leaves: Vec<Digest32> = (0..300u32)
            .map(|i| suite.leaf_hash(&i.to_be_bytes()))
            .collect();
        for chunk in [1u64, 2, 4, 16, 64] {
            for n in 1..=leaves.len() {
                let t = &leaves[..n];
                let roots = chunk_roots(suite, t, chunk as usize);
                assert_eq!(merkle::root(suite, &roots), merkle::root(suite, t));
                for i in (0..n as u64).step_by(7).chain([n as u64 - 1]) {
                    let c = (i / chunk) as usize;
                    let cl = &t[c * chunk as usize..((c + 1) * chunk as usize).min(n)];
                    let got = inclusion_proof(suite, n as u64, i, chunk, cl, &roots).unwrap();
                    assert_eq!(
                        got,
                        merkle::inclusion_proof(suite, t, i).unwrap(),
                        "n {n} i {i} chunk {chunk}"
                    );
                }
            }
        }
    }
}
