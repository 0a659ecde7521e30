//! The block log as the sealer holds it: only the right edge of its tiles
//! (`core::tiles::TileEdge`, at most 255 hashes per tile level), never the
//! block hashes themselves. Appending a block computes the new root and the
//! tiles to write in the sealing transaction; everything else (consistency
//! proofs, older roots) reads O(log n) tiles from the ledger. Memory and
//! start-up time no longer grow with the chain.

use anchord_core::tiles::{self, TileEdge};
use anchord_core::{Digest32, HashSuite};
use anchord_ledger::TileData;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLog {
    edge: TileEdge,
}

impl BlockLog {
    pub fn new(suite: HashSuite) -> Self {
        BlockLog {
            edge: TileEdge::new(suite),
        }
    }

    pub fn from_edge(edge: TileEdge) -> Self {
        BlockLog { edge }
    }

    pub fn size(&self) -> u64 {
        self.edge.size()
    }

    /// The RFC 6962 root (`H("")` when empty).
    pub fn root(&self) -> Digest32 {
        self.edge.root()
    }

    /// The log with one more block, and the tiles that block changes (to
    /// write in its sealing transaction); `self` is unchanged until the seal
    /// commits.
    pub fn with(&self, leaf: Digest32) -> (BlockLog, Vec<TileData>) {
        let mut next = self.clone();
        let changed = next.edge.push(leaf);
        (next, changed)
    }

    /// Append several blocks (catching up on blocks sealed before tiles);
    /// returns the final contents of each tile they changed.
    pub fn extend(&mut self, leaves: &[Digest32]) -> Vec<TileData> {
        self.edge.extend(leaves)
    }

    /// The rightmost tile of each level, as a reader.
    pub fn edge_tiles(&self) -> tiles::TileSet {
        self.edge.tile_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchord_core::merkle;

    #[test]
    fn appends_match_the_reference_root_and_tiles_for_every_size() {
        for suite in HashSuite::ALL {
            let leaves: Vec<Digest32> = (0..600u32)
                .map(|i| suite.leaf_hash(&i.to_be_bytes()))
                .collect();
            let mut log = BlockLog::new(suite);
            assert_eq!(log.root(), suite.empty_root());
            let mut stored = tiles::TileSet::new();
            for (i, l) in leaves.iter().enumerate() {
                let (next, changed) = log.with(*l);
                assert_eq!(log.size(), i as u64, "unchanged until committed");
                for (t, h) in changed {
                    stored.insert(t.level, t.index, h);
                }
                log = next;
                assert_eq!(
                    log.root(),
                    merkle::root(suite, &leaves[..=i]),
                    "size {}",
                    i + 1
                );
                // The stored tiles alone reproduce the log.
                let size = i as u64 + 1;
                let again = TileEdge::from_tiles(suite, &stored, size).unwrap();
                assert_eq!(BlockLog::from_edge(again), log);
                assert_eq!(tiles::root_from(suite, &stored, size).unwrap(), log.root());
            }
        }
    }
}
