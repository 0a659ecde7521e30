//! The block log in memory: every block hash (for consistency proofs) plus a
//! compact range (the roots of the perfect subtrees along the right edge) so
//! that appending a block and computing the new root is O(log n).
//!
//! All hashes are kept: 32 bytes per block, about 1 GiB after a year of
//! one-second blocks. Fine for now; the next step is storing the compact
//! range (or tiles) in the ledger.

use anchord_core::merkle;
use anchord_core::{Digest32, HashSuite};

#[derive(Debug, Clone)]
pub struct BlockLog {
    suite: HashSuite,
    leaves: Vec<Digest32>,
    /// (subtree size, subtree root), sizes strictly decreasing powers of two.
    range: Vec<(u64, Digest32)>,
}

impl BlockLog {
    pub fn new(suite: HashSuite) -> Self {
        BlockLog {
            suite,
            leaves: Vec::new(),
            range: Vec::new(),
        }
    }

    pub fn from_leaves(suite: HashSuite, leaves: &[Digest32]) -> Self {
        let mut log = BlockLog::new(suite);
        for l in leaves {
            log.push(*l);
        }
        log
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    pub fn leaves(&self) -> &[Digest32] {
        &self.leaves
    }

    pub fn push(&mut self, leaf: Digest32) {
        self.leaves.push(leaf);
        let mut node = (1u64, leaf);
        while let Some(&(size, left)) = self.range.last() {
            if size != node.0 {
                break;
            }
            self.range.pop();
            node = (size * 2, self.suite.node_hash(&left, &node.1));
        }
        self.range.push(node);
    }

    /// The RFC 6962 root (`H("")` when empty).
    pub fn root(&self) -> Digest32 {
        let mut it = self.range.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return self.suite.empty_root();
        };
        for (_, left) in it {
            acc = self.suite.node_hash(left, &acc);
        }
        acc
    }

    /// The root with one more leaf, without appending it.
    pub fn root_with(&self, leaf: Digest32) -> Digest32 {
        let mut next = self.clone_range();
        next.push(leaf);
        next.root()
    }

    fn clone_range(&self) -> BlockLog {
        BlockLog {
            suite: self.suite,
            leaves: Vec::new(),
            range: self.range.clone(),
        }
    }

    /// RFC 9162 consistency proof from `size1` to the current size.
    pub fn consistency_proof(&self, size1: u64) -> Result<Vec<Digest32>, merkle::ProofError> {
        merkle::consistency_proof(self.suite, &self.leaves, size1)
    }

    /// The root at an earlier size.
    pub fn root_at(&self, size: u64) -> Option<Digest32> {
        let n = usize::try_from(size).ok()?;
        (n <= self.leaves.len()).then(|| merkle::root(self.suite, &self.leaves[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_range_root_matches_the_reference_for_every_size() {
        for suite in HashSuite::ALL {
            let leaves: Vec<Digest32> = (0..70u32)
                .map(|i| suite.leaf_hash(&i.to_be_bytes()))
                .collect();
            let mut log = BlockLog::new(suite);
            assert_eq!(log.root(), suite.empty_root());
            for (i, l) in leaves.iter().enumerate() {
                let predicted = log.root_with(*l);
                log.push(*l);
                assert_eq!(
                    log.root(),
                    merkle::root(suite, &leaves[..=i]),
                    "size {}",
                    i + 1
                );
                assert_eq!(predicted, log.root());
            }
            for size1 in 1..70u64 {
                let p = log.consistency_proof(size1).unwrap();
                merkle::verify_consistency(
                    suite,
                    size1,
                    70,
                    &log.root_at(size1).unwrap(),
                    &log.root(),
                    &p,
                )
                .unwrap();
            }
        }
    }
}
