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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anchord_core::bundle::{
    AnchorReceipt, AnchorState, AnchorStatus, BUNDLE_FORMAT_V1, Bundle, BundleBlock,
    BundleCheckpoint, DeclaredKeys,
};
use anchord_core::checkpoint::BlockHeader;
use anchord_core::{Digest32, HashSuite, merkle, tiles};
use anchord_ledger::{Ledger, LedgerError, StoredCheckpoint, StoredEntry};

use crate::VerifierConfig;

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
    log: RwLock<Arc<Vec<Digest32>>>,
    /// Every block header by height (immutable once sealed).
    headers: RwLock<Arc<Vec<BlockHeader>>>,
    /// Per block: its chunk roots, computed once (single flight).
    chunk_roots: RwLock<HashMap<u64, ChunkCell>>,
    /// Per block: the checkpoint its bundles end at and the receipts, for
    /// `anchor_view_ttl` (anchors arrive; headers do not change).
    anchor_views: RwLock<HashMap<u64, (Instant, Arc<AnchorView>)>>,
    bundles: RwLock<HashMap<String, CacheSlot>>,
}

#[derive(Debug)]
struct AnchorView {
    checkpoint: StoredCheckpoint,
    anchored: bool,
    receipts: Vec<AnchorReceipt>,
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
            log: RwLock::new(Arc::new(Vec::new())),
            headers: RwLock::new(Arc::new(Vec::new())),
            chunk_roots: RwLock::new(HashMap::new()),
            anchor_views: RwLock::new(HashMap::new()),
            bundles: RwLock::new(HashMap::new()),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn suite(&self) -> HashSuite {
        self.suite
    }

    /// The bundle of the oldest entry with this evidence hash (of `tenant`
    /// when given).
    pub async fn by_hash(&self, hash: &[u8], tenant: Option<&str>) -> Result<Lookup, ProveError> {
        let key = format!("h{}/{}", hex::encode(hash), tenant.unwrap_or(""));
        if let Some(s) = self.cached(&key) {
            return Ok(Lookup::Found(s));
        }
        let entries = self.ledger.entries_by_hash(hash).await?;
        let found = entries
            .into_iter()
            .find(|e| tenant.is_none_or(|t| e.entry.tenant == t));
        self.lookup(key, found).await
    }

    /// The bundle of the entry (tenant, external id).
    pub async fn by_identity(&self, tenant: &str, external_id: &str) -> Result<Lookup, ProveError> {
        let key = format!("i{tenant}\n{external_id}");
        if let Some(s) = self.cached(&key) {
            return Ok(Lookup::Found(s));
        }
        let found = self.ledger.entry_by_identity(tenant, external_id).await?;
        self.lookup(key, found).await
    }

    fn cached(&self, key: &str) -> Option<Arc<Served>> {
        let map = self.bundles.read().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.served.clone())
    }

    async fn lookup(&self, key: String, found: Option<StoredEntry>) -> Result<Lookup, ProveError> {
        let Some(se) = found else {
            return Ok(Lookup::NotFound);
        };
        let Some(bundle) = self.bundle_for(&se).await? else {
            return Ok(Lookup::NotSealed { seq: se.entry.seq });
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
        let roots = self.chunk_roots(h).await?;
        let c = leaf_index / self.chunk;
        let from = h.first_seq + c * self.chunk;
        let to = (from + self.chunk).min(h.last_seq + 1);
        let chunk_leaves = self.ledger.leaf_hashes(from, to).await?;
        let audit_path = tiles::inclusion_proof(
            suite,
            h.leaf_count,
            leaf_index,
            self.chunk,
            &chunk_leaves,
            &roots,
        )
        .map_err(|e| ProveError::Corrupt(format!("block {} audit path: {e}", h.height)))?;

        // The anchored checkpoint covering the block, else the latest.
        let view = self.anchor_view(h.height).await?;
        let cp = &view.checkpoint;
        let receipts = view.receipts.clone();
        let log = self.log_upto(cp.size).await?;
        let block_log_path = merkle::inclusion_proof(suite, &log[..cp.size as usize], h.height)
            .map_err(|e| ProveError::Corrupt(format!("block log path: {e}")))?;
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
            let log = self.log_upto(r.checkpoint_size).await?;
            let upto = &log[..r.checkpoint_size as usize];
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
                checkpoint_root: merkle::root(self.suite, upto),
                consistency_proof: merkle::consistency_proof(self.suite, upto, size)
                    .map_err(|e| ProveError::Corrupt(format!("consistency: {e}")))?,
                receipt,
            });
        }
        Ok(out)
    }

    /// The header of the sealed block holding `seq`, from the cache
    /// (refreshed when `seq` is beyond the last cached block).
    async fn header_containing(&self, seq: u64) -> Result<Option<BlockHeader>, ProveError> {
        let find = |hs: &[BlockHeader]| {
            let i = hs.partition_point(|h| h.first_seq <= seq);
            (i > 0 && hs[i - 1].last_seq >= seq).then(|| hs[i - 1].clone())
        };
        let have = self
            .headers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = find(&have) {
            return Ok(Some(h));
        }
        let more = self.ledger.blocks_from(have.len() as u64).await?;
        if more.is_empty() {
            return Ok(None);
        }
        let mut w = self.headers.write().unwrap_or_else(|p| p.into_inner());
        if w.len() == have.len() {
            let mut v = (**w).clone();
            for b in more {
                if b.header.height != v.len() as u64 || b.header.hash() != b.block_hash {
                    return Err(ProveError::Corrupt(format!(
                        "block {}: stored hash does not match its header",
                        b.header.height
                    )));
                }
                v.push(b.header);
            }
            *w = Arc::new(v);
        }
        Ok(find(&w))
    }

    /// Which checkpoint a block's bundles end at, and its receipts.
    async fn anchor_view(&self, height: u64) -> Result<Arc<AnchorView>, ProveError> {
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
            None => self.ledger.latest_checkpoint().await?,
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
        let v = Arc::new(AnchorView {
            checkpoint: cp,
            anchored: anchored.is_some(),
            receipts,
        });
        let mut w = self.anchor_views.write().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.clear();
        }
        w.insert(height, (Instant::now(), v.clone()));
        Ok(v)
    }

    /// The block log's leaves, at least `size` of them.
    pub async fn log_upto(&self, size: u64) -> Result<Arc<Vec<Digest32>>, ProveError> {
        let have = self.log.read().unwrap_or_else(|p| p.into_inner()).clone();
        if have.len() as u64 >= size {
            return Ok(have);
        }
        let more = self.ledger.block_hashes_from(have.len() as u64).await?;
        let mut map = self.log.write().unwrap_or_else(|p| p.into_inner());
        if map.len() == have.len() {
            let mut v = (**map).clone();
            v.extend(more);
            *map = Arc::new(v);
        }
        let log = map.clone();
        if (log.len() as u64) < size {
            return Err(ProveError::Corrupt(format!(
                "block log has {} blocks, a checkpoint of size {size} needs more",
                log.len()
            )));
        }
        Ok(log)
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
        let Some(latest) = self.ledger.latest_checkpoint().await? else {
            return Ok(None);
        };
        if size2 > latest.size {
            return Ok(None);
        }
        let log = self.log_upto(size2).await?;
        let l2 = &log[..size2 as usize];
        let proof = merkle::consistency_proof(self.suite, l2, size1)
            .map_err(|e| ProveError::Corrupt(format!("consistency: {e}")))?;
        Ok(Some((
            merkle::root(self.suite, &l2[..size1 as usize]),
            merkle::root(self.suite, l2),
            proof,
        )))
    }
}

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
