//! Bundle assembly from the ledger, with the caches that keep a proof
//! lookup to a few indexed queries.
//!
//! Per request: the entry (index on the evidence hash or the identity), the
//! block holding its seq (index on `first_seq`), one chunk of leaf hashes
//! (primary-key range), the checkpoint and receipts. Cached: every block's
//! chunk roots (computed once per block from its leaf hashes, after checking
//! them against the block's stored Merkle root), the block log's leaves
//! (block hashes, extended as blocks are sealed) and serialized bundles
//! (short TTLs, so that an anchor or a new target's receipt shows up).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anchord_core::bundle::{
    AnchorReceipt, AnchorState, AnchorStatus, BUNDLE_FORMAT_V1, Bundle, BundleBlock,
    BundleCheckpoint, DeclaredKeys,
};
use anchord_core::checkpoint::BlockHeader;
use anchord_core::tiles::{self, Tile, TileSet};
use anchord_core::{Digest32, HashSuite, merkle};
use anchord_ledger::{Ledger, LedgerError, ProofRow, StoredCheckpoint, StoredEntry};

use crate::{VerifierConfig, metrics};

/// Why a bundle could not be assembled (never shown to clients).
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A block's stored leaves do not reproduce its header.
    #[error("stored data is inconsistent: {0}")]
    BlockRoot(#[from] anchord_core::checkpoint::BlockRootError),
}

/// A bundle ready to serve.
#[derive(Debug)]
pub struct Served {
    pub bundle: Bundle,
    /// The bundle as pretty JSON, exactly as served.
    pub json: bytes::Bytes,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Found(Arc<Served>),
    /// The entry exists but its block is not sealed yet.
    NotSealed {
        seq: u64,
    },
    NotFound,
}

/// A full block-log tile's hashes (never changes).
type FullTile = Arc<Vec<Digest32>>;

/// A block's chunk roots, filled once by the first request that needs them.
type ChunkCell = Arc<tokio::sync::OnceCell<Arc<Vec<Digest32>>>>;

struct CacheSlot {
    served: Arc<Served>,
    expires: Instant,
}

/// Assembles bundles; shared by every request.
pub struct Prover {
    ledger: Ledger,
    suite: HashSuite,
    keys: DeclaredKeys,
    chunk: u64,
    anchor_interval_us: i64,
    anchored_ttl: Duration,
    pending_ttl: Duration,
    anchor_view_ttl: Duration,
    cache_cap: usize,
    /// Block-log tiles by (level, index), as wide as last read (a tile
    /// only grows by appending, so a prefix of it never changes).
    log_tiles: RwLock<HashMap<(u8, u64), FullTile>>,
    /// Per block: its last, partial level-0 tile (immutable once sealed;
    /// most paths in the block need it).
    block_tails: RwLock<HashMap<u64, FullTile>>,
    /// Block headers by first sequence number (immutable once sealed),
    /// filled one block at a time as proofs need them.
    headers: RwLock<BTreeMap<u64, BlockHeader>>,
    /// Per block: its tree's tiles above level 0 (immutable), as stored.
    block_tiles: RwLock<HashMap<u64, Arc<TileSet>>>,
    /// Per block with tiles: its tree over its chunk roots (immutable).
    upper_trees: RwLock<HashMap<u64, Arc<merkle::MerkleTree>>>,
    /// Per block sealed before tiles: its chunk roots, computed once from
    /// all its leaves (single flight).
    chunk_roots: RwLock<HashMap<u64, ChunkCell>>,
    /// Per block: the checkpoint its bundles end at and the receipts, for
    /// `anchor_view_ttl` (anchors arrive; headers do not change).
    anchor_views: RwLock<HashMap<u64, (Instant, Arc<AnchorView>)>>,
    bundles: RwLock<HashMap<String, CacheSlot>>,
    /// The latest checkpoint, for `anchor_view_ttl` (the tile API, the
    /// consistency proofs and pending bundles read it; a new one appears
    /// at most once per block).
    latest: RwLock<Option<(Instant, Option<StoredCheckpoint>)>>,
}

#[derive(Debug)]
struct AnchorView {
    checkpoint: StoredCheckpoint,
    anchored: bool,
    receipts: Vec<AnchorReceipt>,
    /// The block's inclusion path in the block log at the checkpoint's
    /// size, checked against its root.
    block_log_path: Vec<Digest32>,
}

/// A block's cached tiles (levels 1 and up) with the level-0 tiles one
/// proof read, without copying the cached ones.
struct Layered<'a> {
    cached: &'a TileSet,
    level0: TileSet,
}

impl tiles::TileReader for Layered<'_> {
    fn read(&self, t: Tile) -> Result<Vec<Digest32>, tiles::TileError> {
        if t.level == 0 {
            self.level0.read(t)
        } else {
            self.cached.read(t)
        }
    }
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prover")
            .field("suite", &self.suite)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl Prover {
    pub fn new(ledger: Ledger, suite: HashSuite, keys: DeclaredKeys, c: &VerifierConfig) -> Self {
        Prover {
            ledger,
            suite,
            keys,
            chunk: c.chunk_leaves,
            anchor_interval_us: (c.anchor_interval_s as i64).saturating_mul(1_000_000),
            anchored_ttl: Duration::from_secs(c.anchored_cache_ttl_s),
            pending_ttl: Duration::from_secs(c.pending_cache_ttl_s),
            anchor_view_ttl: Duration::from_millis(c.anchor_view_ttl_ms),
            cache_cap: c.bundle_cache_entries,
            log_tiles: RwLock::new(HashMap::new()),
            block_tails: RwLock::new(HashMap::new()),
            headers: RwLock::new(BTreeMap::new()),
            block_tiles: RwLock::new(HashMap::new()),
            upper_trees: RwLock::new(HashMap::new()),
            chunk_roots: RwLock::new(HashMap::new()),
            anchor_views: RwLock::new(HashMap::new()),
            bundles: RwLock::new(HashMap::new()),
            latest: RwLock::new(None),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn suite(&self) -> HashSuite {
        self.suite
    }

    /// The latest checkpoint, at most `anchor_view_ttl_ms` old (one query
    /// per period, not one per request; 0 reads it every time).
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, ProveError> {
        if let Some((at, cp)) = &*self.latest.read().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < self.anchor_view_ttl
        {
            return Ok(cp.clone());
        }
        let cp = self.ledger.latest_checkpoint().await?;
        if !self.anchor_view_ttl.is_zero() {
            *self.latest.write().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), cp.clone()));
        }
        Ok(cp)
    }

    /// The bundle of the oldest entry with this evidence hash (of `tenant`
    /// when given).
    pub async fn by_hash(&self, hash: &[u8], tenant: Option<&str>) -> Result<Lookup, ProveError> {
        let key = format!("h{}/{}", hex::encode(hash), tenant.unwrap_or(""));
        if let Some(s) = self.cached(&key) {
            return Ok(Lookup::Found(s));
        }
        let found = self.ledger.proof_by_hash(hash, tenant).await?;
        self.lookup(key, found).await
    }

    /// The bundle of the entry (tenant, external id).
    pub async fn by_identity(&self, tenant: &str, external_id: &str) -> Result<Lookup, ProveError> {
        let key = format!("i{tenant}\n{external_id}");
        if let Some(s) = self.cached(&key) {
            return Ok(Lookup::Found(s));
        }
        let found = self.ledger.proof_by_identity(tenant, external_id).await?;
        self.lookup(key, found).await
    }

    fn cached(&self, key: &str) -> Option<Arc<Served>> {
        let map = self.bundles.read().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.served.clone())
    }

    async fn lookup(&self, key: String, found: Option<ProofRow>) -> Result<Lookup, ProveError> {
        let Some(row) = found else {
            return Ok(Lookup::NotFound);
        };
        if row.block.is_none() {
            return Ok(Lookup::NotSealed {
                seq: row.entry.entry.seq,
            });
        }
        let Some(bundle) = self.bundle_with(&row.entry, Some(&row.tile)).await? else {
            return Ok(Lookup::NotSealed {
                seq: row.entry.entry.seq,
            });
        };
        let json = serde_json::to_vec_pretty(&bundle)
            .map_err(|e| ProveError::Corrupt(format!("serializing a bundle: {e}")))?;
        let ttl = match bundle.anchor.status {
            AnchorState::Anchored => self.anchored_ttl,
            AnchorState::Pending => self.pending_ttl,
        };
        let served = Arc::new(Served {
            bundle,
            json: json.into(),
        });
        if self.cache_cap > 0 && !ttl.is_zero() {
            let mut map = self.bundles.write().unwrap_or_else(|p| p.into_inner());
            if map.len() >= self.cache_cap {
                let now = Instant::now();
                map.retain(|_, s| s.expires > now);
                if map.len() >= self.cache_cap {
                    map.clear();
                }
            }
            map.insert(
                key,
                CacheSlot {
                    served: served.clone(),
                    expires: Instant::now() + ttl,
                },
            );
        }
        Ok(Lookup::Found(served))
    }

    /// Assemble the bundle of a stored entry; `None` while its block is not
    /// sealed.
    pub async fn bundle_for(&self, se: &StoredEntry) -> Result<Option<Bundle>, ProveError> {
        self.bundle_with(se, None).await
    }

    /// [`Prover::bundle_for`], with the entry's level-0 tile when the
    /// caller read it already (the one-query path).
    async fn bundle_with(
        &self,
        se: &StoredEntry,
        level0: Option<&[Digest32]>,
    ) -> Result<Option<Bundle>, ProveError> {
        let suite = self.suite;
        let seq = se.entry.seq;
        let Some(header) = self.header_containing(seq).await? else {
            return Ok(None);
        };
        let h = &header;
        if h.suite != suite {
            return Err(ProveError::Corrupt(format!(
                "block {} is {} but the deployment is {}",
                h.height, h.suite, suite
            )));
        }
        let leaf_index = seq - h.first_seq;
        let audit_path = self.audit_path(h, leaf_index, level0).await?;
        let recomputed = merkle::root_from_inclusion_proof(
            suite,
            leaf_index,
            h.leaf_count,
            &se.leaf_hash,
            &audit_path,
        )
        .map_err(|e| ProveError::Corrupt(format!("block {} audit path: {e}", h.height)))?;
        if recomputed != h.merkle_root {
            return Err(ProveError::Corrupt(format!(
                "block {}: the stored leaves and tiles give root {} but the header says {}",
                h.height,
                hex::encode(recomputed),
                hex::encode(h.merkle_root)
            )));
        }

        // The anchored checkpoint covering the block, else the latest, with
        // the block's path in the block log (the same for every entry of
        // the block: computed once per view).
        let view = self.anchor_view(h).await?;
        let cp = &view.checkpoint;
        let receipts = view.receipts.clone();
        let block_log_path = view.block_log_path.clone();
        let anchor = if !view.anchored {
            AnchorStatus {
                status: AnchorState::Pending,
                expected_at_us: Some(cp.created_at_us.saturating_add(self.anchor_interval_us)),
                receipts,
            }
        } else {
            AnchorStatus {
                status: AnchorState::Anchored,
                expected_at_us: None,
                receipts,
            }
        };
        Ok(Some(Bundle {
            format: BUNDLE_FORMAT_V1.into(),
            hash_suite: suite,
            entry: se.entry.clone(),
            leaf_hash: se.leaf_hash,
            leaf_index,
            audit_path,
            block: BundleBlock::from_header(h),
            block_log_path,
            checkpoint: bundle_checkpoint(cp),
            keys: self.keys.clone(),
            anchor,
        }))
    }

    /// Each target's receipt of the smallest anchored checkpoint >= `size`,
    /// with a consistency proof from `size`.
    async fn receipts(&self, size: u64) -> Result<Vec<AnchorReceipt>, ProveError> {
        let rows = self.ledger.anchor_receipts_from(size).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let need = tiles::consistency_tiles(size, r.checkpoint_size).map_err(tile_err)?;
            let log = self.log_tiles_for(&need, r.checkpoint_size).await?;
            let receipt: serde_json::Value = serde_json::from_str(&r.receipt)
                .map_err(|e| ProveError::Corrupt(format!("receipt {}: {e}", r.target)))?;
            out.push(AnchorReceipt {
                target: r.target,
                chain_kind: r.chain_kind,
                chain_id: r.chain_id,
                tx_id: r.tx_id,
                block_number: r.block_number,
                block_hash: r.block_hash,
                block_time_us: r.block_time_us,
                checkpoint_size: r.checkpoint_size,
                checkpoint_root: tiles::root_from(self.suite, &log, r.checkpoint_size)
                    .map_err(tile_err)?,
                consistency_proof: tiles::consistency_proof_from(
                    self.suite,
                    &log,
                    size,
                    r.checkpoint_size,
                )
                .map_err(|e| ProveError::Corrupt(format!("consistency: {e}")))?,
                receipt,
            });
        }
        Ok(out)
    }

    /// The header of the sealed block holding `seq`: from the cache, else
    /// one indexed lookup (never the whole chain).
    async fn header_containing(&self, seq: u64) -> Result<Option<BlockHeader>, ProveError> {
        {
            let hs = self.headers.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, h)) = hs.range(..=seq).next_back()
                && h.last_seq >= seq
            {
                return Ok(Some(h.clone()));
            }
        }
        let Some(b) = self.ledger.block_containing(seq).await? else {
            return Ok(None);
        };
        if b.header.hash() != b.block_hash {
            return Err(ProveError::Corrupt(format!(
                "block {}: stored hash does not match its header",
                b.header.height
            )));
        }
        let mut w = self.headers.write().unwrap_or_else(|p| p.into_inner());
        if w.len() >= HEADER_CACHE {
            w.clear();
        }
        w.insert(b.header.first_seq, b.header.clone());
        Ok(Some(b.header))
    }

    /// The audit path of leaf `index` of block `h`: from the block's tiles
    /// (a level-0 tile is a 256-row range of the evidence table; levels 1
    /// and up are stored with the block), a handful of reads; for a block
    /// sealed before tiles, from chunk roots computed once from its leaves.
    async fn audit_path(
        &self,
        h: &BlockHeader,
        index: u64,
        level0: Option<&[Digest32]>,
    ) -> Result<Vec<Digest32>, ProveError> {
        let n = h.leaf_count;
        let level0 = level0.map(|l| (index / tiles::TILE_WIDTH, l));
        let stored = self.block_tiles_of(h.height).await?;
        if n > tiles::TILE_WIDTH && stored.is_empty() {
            return self.audit_path_from_chunks(h, index).await;
        }
        if n > tiles::TILE_WIDTH {
            // The path inside the entry's 256-leaf chunk (its level-0 tile),
            // then the chunk's path in the block's tree over its chunk
            // roots, from that tree kept per block (no hashing per proof
            // above the chunk; see `core::tiles`' module comment for why
            // the two paths concatenate).
            let c = index / tiles::TILE_WIDTH;
            let width = tiles::tile_width(n, 0, c).ok_or_else(|| {
                ProveError::Corrupt(format!("block {}: no leaf {index}", h.height))
            })?;
            let chunk = self.level0_tile(h, c, width, level0).await?;
            let upper = self.upper_tree(h, &stored).await?;
            let mut path = merkle::inclusion_proof(self.suite, &chunk, index % tiles::TILE_WIDTH)
                .and_then(|mut p| {
                    p.extend(upper.inclusion_proof(c)?);
                    Ok(p)
                })
                .map_err(|e| ProveError::Corrupt(format!("block {} audit path: {e}", h.height)))?;
            path.shrink_to_fit();
            return Ok(path);
        }
        let mut set = TileSet::new();
        for t in tiles::inclusion_tiles(n, index).map_err(tile_err)? {
            if t.level == 0 {
                let l = self.level0_tile(h, t.index, t.width, level0).await?;
                set.insert(0, t.index, l);
            }
        }
        let reader = Layered {
            cached: &stored,
            level0: set,
        };
        tiles::inclusion_proof_from(self.suite, &reader, n, index)
            .map_err(|e| ProveError::Corrupt(format!("block {} audit path: {e}", h.height)))
    }

    /// Level-0 tile `c` (`width` leaves) of block `h`: `level0` (a tile's
    /// index and leaves, read with the entry) when it is this one, the block's partial last tile from its
    /// cache, else a 256-row range of leaf hashes.
    async fn level0_tile(
        &self,
        h: &BlockHeader,
        c: u64,
        width: u16,
        level0: Option<(u64, &[Digest32])>,
    ) -> Result<Vec<Digest32>, ProveError> {
        let tail = u64::from(width) < tiles::TILE_WIDTH;
        if let Some((own, l)) = level0
            && own == c
            && l.len() == usize::from(width)
        {
            metrics::TILE_READS
                .with_label_values(&["block", "level0"])
                .inc();
            return Ok(l.to_vec());
        }
        if tail
            && let Some(l) = self
                .block_tails
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&h.height)
        {
            metrics::TILE_READS
                .with_label_values(&["block", "cache"])
                .inc();
            return Ok((**l).clone());
        }
        let from = h.first_seq + c * tiles::TILE_WIDTH;
        let leaves = self
            .ledger
            .leaf_hashes(from, from + u64::from(width))
            .await?;
        metrics::TILE_READS
            .with_label_values(&["block", "level0"])
            .inc();
        if tail {
            let mut w = self.block_tails.write().unwrap_or_else(|p| p.into_inner());
            if w.len() >= BLOCK_TILE_CACHE {
                w.clear();
            }
            w.insert(h.height, Arc::new(leaves.clone()));
        }
        Ok(leaves)
    }

    /// Block `h`'s tree over its 256-leaf chunk roots (the level-1 hashes of
    /// its stored tiles, then the root of its partial last chunk), built
    /// once per block and checked against the block's Merkle root.
    async fn upper_tree(
        &self,
        h: &BlockHeader,
        stored: &TileSet,
    ) -> Result<Arc<merkle::MerkleTree>, ProveError> {
        if let Some(t) = self
            .upper_trees
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h.height)
        {
            return Ok(t.clone());
        }
        let n = h.leaf_count;
        let full = n / tiles::TILE_WIDTH;
        let mut roots = Vec::with_capacity(full as usize + 1);
        let mut k = 0;
        while (roots.len() as u64) < full {
            let t = stored.get(1, k).ok_or_else(|| {
                ProveError::Corrupt(format!("block {}: level-1 tile {k} is missing", h.height))
            })?;
            let want = (full - roots.len() as u64).min(tiles::TILE_WIDTH) as usize;
            if t.len() < want {
                return Err(ProveError::Corrupt(format!(
                    "block {}: level-1 tile {k} has {} hashes, not {want}",
                    h.height,
                    t.len()
                )));
            }
            roots.extend_from_slice(&t[..want]);
            k += 1;
        }
        let rest = (n % tiles::TILE_WIDTH) as u16;
        if rest > 0 {
            let tail = self.level0_tile(h, full, rest, None).await?;
            roots.push(merkle::root(self.suite, &tail));
        }
        let tree = Arc::new(merkle::MerkleTree::new(self.suite, roots));
        if tree.root() != h.merkle_root {
            return Err(ProveError::Corrupt(format!(
                "block {}: its tiles give root {} but the header says {}",
                h.height,
                hex::encode(tree.root()),
                hex::encode(h.merkle_root)
            )));
        }
        let mut w = self.upper_trees.write().unwrap_or_else(|p| p.into_inner());
        if w.len() >= BLOCK_TILE_CACHE {
            w.clear();
        }
        w.insert(h.height, tree.clone());
        Ok(tree)
    }

    /// Block `height`'s stored tiles (levels 1 and up), cached.
    async fn block_tiles_of(&self, height: u64) -> Result<Arc<TileSet>, ProveError> {
        if let Some(s) = self
            .block_tiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&height)
        {
            metrics::TILE_READS
                .with_label_values(&["block", "cache"])
                .inc();
            return Ok(s.clone());
        }
        let s = Arc::new(self.ledger.block_tiles(height).await?);
        metrics::TILE_READS
            .with_label_values(&["block", "db"])
            .inc();
        let mut w = self.block_tiles.write().unwrap_or_else(|p| p.into_inner());
        if w.len() >= BLOCK_TILE_CACHE {
            w.clear();
        }
        w.insert(height, s.clone());
        Ok(s)
    }

    /// Block-log tiles: full ones from the cache when there, the rest (and
    /// every partial tile: it grows) in one query.
    /// Until the batcher has written the block-log tiles of a ledger sealed
    /// before tiles (its first start after migration 0006), proofs come
    /// from the block hashes themselves, as before (linear, logged).
    async fn log_tiles_for(&self, need: &[Tile], size: u64) -> Result<TileSet, ProveError> {
        match self.stored_log_tiles(need).await {
            Err(ProveError::Corrupt(e)) if self.ledger.log_tiles_size().await? < size => {
                tracing::warn!(
                    size,
                    error = %e,
                    "block-log tiles not written yet (the batcher writes them at its next start); proving from the block hashes"
                );
                let hashes = self.ledger.block_hashes_between(0, size).await?;
                let mut set = TileSet::new();
                for (t, h) in tiles::build_tiles(self.suite, &hashes) {
                    set.insert(t.level, t.index, h);
                }
                Ok(set)
            }
            other => other,
        }
    }

    async fn stored_log_tiles(&self, need: &[Tile]) -> Result<TileSet, ProveError> {
        let mut set = TileSet::new();
        let mut missing = Vec::new();
        {
            let cache = self.log_tiles.read().unwrap_or_else(|p| p.into_inner());
            for t in need {
                // A tile only grows by appending (enforced by the schema), so
                // a cached tile at least as wide is this tile.
                match cache.get(&(t.level, t.index)) {
                    Some(h) if h.len() >= usize::from(t.width) => {
                        set.insert(t.level, t.index, (**h).clone())
                    }
                    _ => missing.push(*t),
                }
            }
        }
        metrics::TILE_READS
            .with_label_values(&["log", "cache"])
            .inc_by((need.len() - missing.len()) as u64);
        if missing.is_empty() {
            return Ok(set);
        }
        let got = self.ledger.log_tiles(&missing).await?;
        metrics::TILE_READS
            .with_label_values(&["log", "db"])
            .inc_by(missing.len() as u64);
        let mut cache = self.log_tiles.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= LOG_TILE_CACHE {
            cache.clear();
        }
        for t in missing {
            let h = got
                .get(t.level, t.index)
                .ok_or_else(|| ProveError::Corrupt(format!("block-log tile {t} is missing")))?;
            let wider = cache
                .get(&(t.level, t.index))
                .is_none_or(|c| c.len() < h.len());
            if wider {
                cache.insert((t.level, t.index), Arc::new(h.to_vec()));
            }
            set.insert(t.level, t.index, h.to_vec());
        }
        Ok(set)
    }

    /// The raw bytes of block-log tile `t` as the tlog-tiles API serves it
    /// (its first `t.width` hashes), if the log has grown that far.
    pub async fn log_tile(&self, t: Tile) -> Result<Option<Vec<u8>>, ProveError> {
        if t.is_full()
            && let Some(h) = self
                .log_tiles
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(t.level, t.index))
        {
            metrics::TILE_READS
                .with_label_values(&["log", "cache"])
                .inc();
            return Ok(Some(tiles::tile_bytes(h)));
        }
        let Some(bytes) = self.ledger.log_tile_bytes(t.level, t.index).await? else {
            return Ok(None);
        };
        metrics::TILE_READS.with_label_values(&["log", "db"]).inc();
        let want = usize::from(t.width) * 32;
        if bytes.len() < want {
            return Ok(None);
        }
        Ok(Some(bytes[..want].to_vec()))
    }

    /// Which checkpoint a block's bundles end at, its receipts and the
    /// block's path in the block log.
    async fn anchor_view(&self, h: &BlockHeader) -> Result<Arc<AnchorView>, ProveError> {
        let height = h.height;
        if let Some((at, v)) = self
            .anchor_views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&height)
            && at.elapsed() < self.anchor_view_ttl
        {
            return Ok(v.clone());
        }
        let anchored = self.ledger.first_anchored_size_covering(height).await?;
        let cp = match anchored {
            Some(size) => self.ledger.checkpoint(size).await?,
            None => self.latest_checkpoint().await?,
        }
        .ok_or_else(|| ProveError::Corrupt(format!("no checkpoint covers block {height}")))?;
        if cp.size <= height {
            return Err(ProveError::Corrupt(format!(
                "latest checkpoint {} does not cover block {height}",
                cp.size
            )));
        }
        let receipts = match anchored {
            Some(size) => self.receipts(size).await?,
            None => Vec::new(),
        };
        let suite = self.suite;
        let log = self
            .log_tiles_for(
                &tiles::inclusion_tiles(cp.size, height).map_err(tile_err)?,
                cp.size,
            )
            .await?;
        let block_log_path = tiles::inclusion_proof_from(suite, &log, cp.size, height)
            .map_err(|e| ProveError::Corrupt(format!("block log path: {e}")))?;
        let log_root =
            merkle::root_from_inclusion_proof(suite, height, cp.size, &h.hash(), &block_log_path)
                .map_err(|e| ProveError::Corrupt(format!("block log path: {e}")))?;
        if log_root != cp.root {
            return Err(ProveError::Corrupt(format!(
                "block-log tiles give root {} for size {} but the checkpoint says {}",
                hex::encode(log_root),
                cp.size,
                hex::encode(cp.root)
            )));
        }
        let v = Arc::new(AnchorView {
            checkpoint: cp,
            anchored: anchored.is_some(),
            receipts,
            block_log_path,
        });
        let mut w = self.anchor_views.write().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.clear();
        }
        w.insert(height, (Instant::now(), v.clone()));
        Ok(v)
    }

    /// The audit path of a block sealed before tiles (migration 0006):
    /// chunk roots computed once from all its leaves, then one chunk.
    async fn audit_path_from_chunks(
        &self,
        h: &BlockHeader,
        leaf_index: u64,
    ) -> Result<Vec<Digest32>, ProveError> {
        let roots = self.chunk_roots(h).await?;
        let c = leaf_index / self.chunk;
        let from = h.first_seq + c * self.chunk;
        let to = (from + self.chunk).min(h.last_seq + 1);
        let chunk_leaves = self.ledger.leaf_hashes(from, to).await?;
        tiles::inclusion_proof(
            self.suite,
            h.leaf_count,
            leaf_index,
            self.chunk,
            &chunk_leaves,
            &roots,
        )
        .map_err(|e| ProveError::Corrupt(format!("block {} audit path: {e}", h.height)))
    }

    /// Chunk roots of a block, from its leaf hashes on first use; the
    /// leaves must reproduce the stored Merkle root.
    async fn chunk_roots(&self, h: &BlockHeader) -> Result<Arc<Vec<Digest32>>, ProveError> {
        let cell = {
            let map = self.chunk_roots.read().unwrap_or_else(|p| p.into_inner());
            map.get(&h.height).cloned()
        };
        let cell = match cell {
            Some(c) => c,
            None => self
                .chunk_roots
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(h.height)
                .or_default()
                .clone(),
        };
        cell.get_or_try_init(|| self.compute_chunk_roots(h))
            .await
            .cloned()
    }

    async fn compute_chunk_roots(&self, h: &BlockHeader) -> Result<Arc<Vec<Digest32>>, ProveError> {
        let leaves = self.ledger.leaf_hashes(h.first_seq, h.last_seq + 1).await?;
        let suite = self.suite;
        let chunk = self.chunk as usize;
        let header = h.clone();
        let roots =
            tokio::task::spawn_blocking(move || header.check_leaves_chunked(suite, &leaves, chunk))
                .await
                .map_err(|e| ProveError::Corrupt(format!("chunk roots task: {e}")))??;
        Ok(Arc::new(roots))
    }

    /// A consistency proof between two checkpoint sizes, with both roots.
    pub async fn consistency(
        &self,
        size1: u64,
        size2: u64,
    ) -> Result<Option<(Digest32, Digest32, Vec<Digest32>)>, ProveError> {
        if size1 > size2 {
            return Ok(None);
        }
        let Some(latest) = self.latest_checkpoint().await? else {
            return Ok(None);
        };
        if size2 > latest.size {
            return Ok(None);
        }
        let need = tiles::consistency_tiles(size1, size2).map_err(tile_err)?;
        let log = self.log_tiles_for(&need, size2).await?;
        let proof = tiles::consistency_proof_from(self.suite, &log, size1, size2)
            .map_err(|e| ProveError::Corrupt(format!("consistency: {e}")))?;
        Ok(Some((
            tiles::root_from(self.suite, &log, size1).map_err(tile_err)?,
            tiles::root_from(self.suite, &log, size2).map_err(tile_err)?,
            proof,
        )))
    }
}

fn tile_err(e: tiles::TileError) -> ProveError {
    ProveError::Corrupt(format!("tiles: {e}"))
}

/// Cache bounds (entries; cleared when reached): headers and block tiles
/// are a few hundred bytes to a few KiB each, full log tiles 8 KiB.
const HEADER_CACHE: usize = 1 << 20;
const BLOCK_TILE_CACHE: usize = 1 << 16;
const LOG_TILE_CACHE: usize = 1 << 14;

/// The bundle form of a stored checkpoint.
pub fn bundle_checkpoint(cp: &StoredCheckpoint) -> BundleCheckpoint {
    BundleCheckpoint {
        size: cp.size,
        root: cp.root,
        origin: cp.origin.clone(),
        signed_note: cp.signed_note.clone(),
        timestamp_token: cp.timestamp_token.clone(),
    }
}
