//! Bundle assembly from the ledger, with the caches that keep a proof
//! lookup to a few indexed queries.
//!
//! Per cold request: one prepared statement (the entry, its block, its
//! level-0 tile), shared with the cold requests of the same moment when
//! [`Prover::gather_loop`] runs ([`crate::gather`]). Cached, because it never changes: block headers, each
//! block's tiles above level 0 and its tree over its chunk roots, full
//! block-log tiles. Cached until the ledger moves: the latest checkpoint
//! and the anchors (looked up at most once per `anchor_view_ttl_ms`, by a
//! background task when [`Prover::refresh_loop`] runs, else by the first
//! request after that time), each block's anchor view, and serialized
//! bundles in a bounded cache ([`quick_cache`], S3-FIFO, weighed in
//! bytes). Every cached view and bundle records the *epochs* it was built
//! at: the checkpoint epoch moves when the latest checkpoint changes (a
//! new one, a cosignature, a timestamp token), the anchor epoch when the
//! anchors do (a new receipt, a lost one). A pending bundle (it ends at
//! the latest checkpoint) is served only while both epochs are unchanged,
//! an anchored one while the anchor epoch is; a warm request is a cache
//! lookup and two integer comparisons, no database round trip.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use anchord_core::bundle::{
    AnchorReceipt, AnchorState, AnchorStatus, BUNDLE_FORMAT_V1, Bundle, BundleBlock,
    BundleCheckpoint, DeclaredKeys,
};
use anchord_core::checkpoint::BlockHeader;
use anchord_core::tiles::{self, Level0, Tile, TileSet};
use anchord_core::{Digest32, HashSuite, merkle};
use anchord_ledger::{Ledger, LedgerError, ProofKey, ProofRow, StoredCheckpoint, StoredEntry};

use crate::gather::Gather;
use crate::{VerifierConfig, metrics};

/// Why a bundle could not be assembled (never shown to clients).
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// A gathered statement's failure (of the lookup's own row, or of the
    /// whole statement, the same for every lookup in it).
    #[error("ledger: {0}")]
    Shared(Arc<LedgerError>),
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
    /// The entry exists but its block is not sealed yet, or not yet in the
    /// latest checkpoint this prover has looked up.
    NotSealed {
        seq: u64,
    },
    NotFound,
}

/// A full block-log tile's hashes (never changes).
type FullTile = Arc<Vec<Digest32>>;

/// A block's chunk roots, filled once by the first request that needs them.
type ChunkCell = Arc<tokio::sync::OnceCell<Arc<Vec<Digest32>>>>;

/// What cached views and bundles were built from: they stay valid while
/// these do (see the module comment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Epochs {
    /// Moves when the latest checkpoint changes (size, note, token).
    checkpoint: u64,
    /// Moves when the live anchors change (count or head of any target).
    anchors: u64,
}

impl Epochs {
    /// Is something built at `self` still valid now (`now`)? Anchored
    /// bundles and views do not depend on the latest checkpoint.
    fn still(&self, now: Epochs, anchored: bool) -> bool {
        self.anchors == now.anchors && (anchored || self.checkpoint == now.checkpoint)
    }
}

/// The anchors as far as bundles can see: per target, live receipts and
/// the largest anchored size (a new receipt or a lost one changes it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct AnchorHeads {
    total: u64,
    targets: Vec<(String, u64, u64)>,
    /// [`Ledger::anchor_log_mark`]: moves on every receipt recorded or
    /// lost, also where the counts above come back to what they were.
    mark: (i64, i64),
}

impl AnchorHeads {
    /// The largest anchored checkpoint size over every target (0: none):
    /// no anchor covers a block at this height or above.
    fn max_size(&self) -> u64 {
        self.targets.iter().map(|t| t.2).max().unwrap_or(0)
    }
}

/// The ledger's moving parts as last looked up.
#[derive(Debug, Default)]
struct Fresh {
    epochs: Epochs,
    latest: Option<StoredCheckpoint>,
    anchors: AnchorHeads,
    checked: Option<Instant>,
}

/// A snapshot of [`Fresh`] for one request.
#[derive(Clone, Debug)]
struct Now {
    epochs: Epochs,
    latest: Option<StoredCheckpoint>,
    anchored_max: u64,
}

/// What a bundle cache lookup found.
#[derive(Clone, Copy, Debug)]
enum Cached {
    Hit,
    Miss,
    Stale,
}

/// This prover's own counts (the metrics add up every prover of the
/// process): bundle cache lookups and statements sent to PostgreSQL.
#[derive(Debug, Default)]
pub struct Counts {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    /// Statements sent to PostgreSQL, every kind.
    pub queries: AtomicU64,
    /// Of which proof statements (`Ledger::proof_by_hash`, `…_identity`,
    /// and gathered ones, `Ledger::proofs`).
    pub proof_queries: AtomicU64,
    /// Proof lookups sent to the ledger (alone or gathered).
    pub proofs: AtomicU64,
    /// Of the statements, those reading block headers and block tiles.
    pub block_queries: AtomicU64,
    /// Anchor views built (each: the anchor covering a block, its
    /// checkpoint and receipts, the block's path in the block log).
    pub anchor_views_built: AtomicU64,
    /// Bundles built (cache misses that went on to assemble one).
    pub bundles_built: AtomicU64,
}

/// A cached bundle with the epochs it was built at.
struct CacheSlot {
    served: Arc<Served>,
    epochs: Epochs,
    anchored: bool,
    expires: Instant,
}

impl CacheSlot {
    /// Whether the bundle may still be served at `epochs`: before its
    /// backstop, with nothing it shows changed since it was built.
    fn holds_at(&self, epochs: Epochs) -> bool {
        self.expires > Instant::now() && self.epochs.still(epochs, self.anchored)
    }
}

/// Weighs a cached bundle: its JSON twice (the parsed [`Bundle`] is kept
/// beside it) plus its key and bookkeeping.
#[derive(Clone)]
struct SlotWeight;

impl quick_cache::Weighter<Box<[u8]>, Arc<CacheSlot>> for SlotWeight {
    fn weight(&self, key: &Box<[u8]>, slot: &Arc<CacheSlot>) -> u64 {
        (key.len() + 2 * slot.served.json.len() + 256) as u64
    }
}

type BundleCache = quick_cache::sync::Cache<Box<[u8]>, Arc<CacheSlot>, SlotWeight>;

/// The bundle cache's key for a lookup by evidence hash (and tenant).
fn hash_key(hash: &[u8], tenant: Option<&str>) -> Vec<u8> {
    let t = tenant.map_or(&[][..], str::as_bytes);
    let mut k = Vec::with_capacity(3 + hash.len() + t.len());
    k.push(b'h');
    k.push(hash.len().min(255) as u8);
    k.extend_from_slice(hash);
    k.push(u8::from(tenant.is_some()));
    k.extend_from_slice(t);
    k
}

/// The bundle cache's key for a lookup by (tenant, external id).
fn identity_key(tenant: &str, external_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + tenant.len() + external_id.len());
    k.push(b'i');
    k.extend_from_slice(&(tenant.len() as u32).to_le_bytes());
    k.extend_from_slice(tenant.as_bytes());
    k.extend_from_slice(external_id.as_bytes());
    k
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
    /// Per block: the checkpoint its bundles end at and the receipts,
    /// while the epochs they were built at hold.
    anchor_views: RwLock<HashMap<u64, Arc<AnchorView>>>,
    /// The blocks whose anchor view a request is building ([`Turn`]).
    view_builds: Turns<u64>,
    /// The lookup keys whose bundle a request is building ([`Turn`]).
    bundle_builds: Turns<Box<[u8]>>,
    /// Serialized bundles (`None`: caching off).
    bundles: Option<BundleCache>,
    /// The latest checkpoint and the anchors' heads, looked up at most once
    /// per `anchor_view_ttl` (the tile API, consistency proofs, views and
    /// cached bundles read them).
    fresh: RwLock<Fresh>,
    /// One lookup of [`Fresh`] at a time.
    refreshing: tokio::sync::Mutex<()>,
    /// Cold lookups gathered into shared statements ([`crate::gather`]).
    gather: Gather,
    counts: Counts,
}

#[derive(Debug)]
struct AnchorView {
    epochs: Epochs,
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
            log_tiles: RwLock::new(HashMap::new()),
            block_tails: RwLock::new(HashMap::new()),
            headers: RwLock::new(BTreeMap::new()),
            block_tiles: RwLock::new(HashMap::new()),
            upper_trees: RwLock::new(HashMap::new()),
            chunk_roots: RwLock::new(HashMap::new()),
            anchor_views: RwLock::new(HashMap::new()),
            view_builds: Turns::default(),
            bundle_builds: Turns::default(),
            bundles: (c.bundle_cache_entries > 0 && c.bundle_cache_bytes > 0).then(|| {
                BundleCache::with_weighter(c.bundle_cache_entries, c.bundle_cache_bytes, SlotWeight)
            }),
            fresh: RwLock::new(Fresh::default()),
            refreshing: tokio::sync::Mutex::new(()),
            gather: Gather::new(c.proof_batch_max, c.proof_batches_in_flight),
            counts: Counts::default(),
        }
    }

    /// This prover's bundle cache lookups and statements so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn queried(&self, what: &str, n: u64) {
        metrics::LEDGER_QUERIES.with_label_values(&[what]).inc_by(n);
        self.counts.queries.fetch_add(n, Ordering::Relaxed);
        if what == "proof" {
            self.counts.proof_queries.fetch_add(n, Ordering::Relaxed);
        }
        if what == "block" || what == "block_tiles" {
            self.counts.block_queries.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn looked_up(&self, c: Cached) {
        let (i, n) = match c {
            Cached::Hit => (0, &self.counts.hits),
            Cached::Miss => (1, &self.counts.misses),
            Cached::Stale => (2, &self.counts.stale),
        };
        metrics::BUNDLE_CACHE_RESULTS[i].inc();
        n.fetch_add(1, Ordering::Relaxed);
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
        Ok(self.now().await?.latest)
    }

    /// The epochs as last looked up, if that was less than
    /// `anchor_view_ttl` ago (the warm path: no allocation).
    fn current_epochs(&self) -> Option<Epochs> {
        let f = self.fresh.read().unwrap_or_else(|p| p.into_inner());
        f.checked
            .filter(|t| t.elapsed() < self.anchor_view_ttl)
            .map(|_| f.epochs)
    }

    /// [`Prover::current_epochs`] with the latest checkpoint.
    fn current(&self) -> Option<Now> {
        let f = self.fresh.read().unwrap_or_else(|p| p.into_inner());
        f.checked
            .filter(|t| t.elapsed() < self.anchor_view_ttl)
            .map(|_| Now {
                epochs: f.epochs,
                latest: f.latest.clone(),
                anchored_max: f.anchors.max_size(),
            })
    }

    /// The epochs now: as last looked up when that is recent enough, else
    /// looked up (one caller at a time; the others wait for its answer).
    async fn now(&self) -> Result<Now, ProveError> {
        if let Some(n) = self.current() {
            return Ok(n);
        }
        let _one = self.refreshing.lock().await;
        if let Some(n) = self.current() {
            return Ok(n);
        }
        self.refresh_now().await?;
        let f = self.fresh.read().unwrap_or_else(|p| p.into_inner());
        Ok(Now {
            epochs: f.epochs,
            latest: f.latest.clone(),
            anchored_max: f.anchors.max_size(),
        })
    }

    /// Look the latest checkpoint and the anchors' heads up and move the
    /// epochs of whatever changed (callers hold `refreshing`).
    async fn refresh_now(&self) -> Result<(), ProveError> {
        self.queried("refresh", 3);
        let latest = self.ledger.latest_checkpoint().await?;
        let s = self.ledger.summary().await?;
        let mark = self.ledger.anchor_log_mark().await?;
        let anchors = AnchorHeads {
            mark,
            total: s.anchors,
            targets: s
                .targets
                .into_iter()
                .map(|t| (t.target, t.anchors, t.checkpoint_size))
                .collect(),
        };
        let changed_cp;
        let changed_anchors;
        {
            let mut f = self.fresh.write().unwrap_or_else(|p| p.into_inner());
            let same_cp = match (&f.latest, &latest) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    a.size == b.size
                        && a.root == b.root
                        && a.signed_note == b.signed_note
                        && a.timestamp_token == b.timestamp_token
                }
                _ => false,
            };
            changed_cp = !same_cp;
            changed_anchors = f.anchors != anchors;
            if changed_cp {
                f.epochs.checkpoint += 1;
            }
            if changed_anchors {
                f.epochs.anchors += 1;
            }
            f.latest = latest;
            f.anchors = anchors;
            f.checked = Some(Instant::now());
        }
        if changed_cp {
            metrics::INVALIDATIONS
                .with_label_values(&["checkpoint"])
                .inc();
        }
        if changed_anchors {
            metrics::INVALIDATIONS.with_label_values(&["anchors"]).inc();
        }
        if changed_cp || changed_anchors {
            // Views built at older epochs are never served again: drop them.
            let now = self.fresh.read().unwrap_or_else(|p| p.into_inner()).epochs;
            self.anchor_views
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, v| v.epochs.still(now, v.anchored));
        }
        Ok(())
    }

    /// Look the latest checkpoint and the anchors up now, and read the
    /// block-log tiles of the latest checkpoint's right edge (every
    /// pending block's path ends there), so that the first proofs after a
    /// start go to PostgreSQL for nothing but their own statement.
    pub async fn preload(&self) -> Result<(), ProveError> {
        {
            let _one = self.refreshing.lock().await;
            self.refresh_now().await?;
        }
        // The closed partitions' filters (about 20 MB per kind and
        // 10,000,000 entries): loaded before the first request, not by it.
        let started = std::time::Instant::now();
        for kind in anchord_core::filter::FilterKind::ALL {
            let n = self.ledger.filters(kind).await?.len();
            tracing::info!(
                kind = kind.name(),
                filters = n,
                seconds = started.elapsed().as_secs_f64(),
                "filters of closed partitions loaded"
            );
        }
        // The connections the gathered statements will run on, each with
        // both statements planned once (a fresh PostgreSQL session first
        // loads the catalog entries of every partition and index they
        // touch): done here, not by the first requests after a restart.
        let none = [
            ProofKey::Hash {
                hash: vec![0; 32],
                tenant: None,
            },
            ProofKey::Identity {
                tenant: String::new(),
                external_id: String::new(),
            },
        ];
        let warm = (0..self.gather.in_flight()).map(|_| self.ledger.proofs(&none));
        futures::future::try_join_all(warm).await?;
        let Some(cp) = self.latest_checkpoint().await? else {
            return Ok(());
        };
        let need = tiles::inclusion_tiles(cp.size, cp.size - 1).map_err(tile_err)?;
        self.log_tiles_for(&need, cp.size).await?;
        self.preload_blocks(cp.size).await
    }

    /// The newest blocks' headers, stored upper tiles and trees over their
    /// tile roots, and the block-log tiles of their paths (at most
    /// [`PRELOAD_BLOCKS`] of the `size` first): read
    /// before the first request, not by the first proof of each block (two
    /// or three statements each, all in the first second after a start,
    /// which made that second's slowest proofs the slowest of a run).
    async fn preload_blocks(&self, size: u64) -> Result<(), ProveError> {
        let started = std::time::Instant::now();
        let heights: Vec<u64> = (size.saturating_sub(PRELOAD_BLOCKS)..size).collect();
        // Their paths in the block log: a few tiles (about one per 256
        // blocks and level).
        let mut need = std::collections::BTreeSet::new();
        for &h in &heights {
            need.extend(tiles::inclusion_tiles(size, h).map_err(tile_err)?);
        }
        self.log_tiles_for(&need.into_iter().collect::<Vec<_>>(), size)
            .await?;
        let mut loaded = 0;
        for chunk in heights.chunks(512) {
            let (blocks, sets) = self.ledger.blocks_with_tiles(chunk).await?;
            for (h, set) in sets {
                self.keep_block_tiles(h, Arc::new(set));
            }
            let mut headers = Vec::with_capacity(blocks.len());
            for b in blocks {
                // A header that does not check is left to the request that
                // needs it, which reports it.
                match self.keep_header(b) {
                    Ok(h) => headers.push(h),
                    Err(e) => tracing::error!(error = %e, "a block read at start"),
                }
            }
            loaded += headers.len();
            let big: Vec<&BlockHeader> = headers
                .iter()
                .filter(|h| h.leaf_count > tiles::TILE_WIDTH)
                .collect();
            for some in big.chunks(self.gather.in_flight()) {
                futures::future::try_join_all(some.iter().map(|h| self.preload_tree(h))).await?;
            }
        }
        tracing::info!(
            blocks = loaded,
            seconds = started.elapsed().as_secs_f64(),
            "the newest blocks' headers and tiles loaded"
        );
        Ok(())
    }

    /// Block `h`'s tree over its tile roots, built from its stored tiles.
    /// A block whose stored data do not check is left to the request that
    /// needs it, which reports it; the warm-up goes on.
    async fn preload_tree(&self, h: &BlockHeader) -> Result<(), ProveError> {
        let built = async {
            let stored = self.block_tiles_of(h.height).await?;
            if !stored.is_empty() {
                self.upper_tree(h, &stored).await?;
            }
            Ok(())
        };
        match built.await {
            Err(ProveError::Corrupt(e)) => {
                tracing::error!(height = h.height, error = %e, "a block read at start");
                Ok(())
            }
            other => other,
        }
    }

    /// Keep the epochs fresh until `shutdown`: look the latest checkpoint
    /// and the anchors up twice per `anchor_view_ttl_ms`, so that requests
    /// never wait for that lookup (without this task, the first request
    /// after the period does it). Owned by [`crate::run`], which awaits it.
    pub async fn refresh_loop(self: Arc<Self>, shutdown: CancellationToken) {
        if self.anchor_view_ttl.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval(self.anchor_view_ttl / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let _one = self.refreshing.lock().await;
            if let Err(e) = self.refresh_now().await {
                tracing::warn!(error = %e, "looking up the latest checkpoint and anchors");
            }
        }
    }

    /// Bytes and entries in the bundle cache.
    pub fn bundle_cache_size(&self) -> (u64, usize) {
        self.bundles
            .as_ref()
            .map_or((0, 0), |c| (c.weight(), c.len()))
    }

    /// The bundle of the oldest entry with this evidence hash (of `tenant`
    /// when given).
    pub async fn by_hash(&self, hash: &[u8], tenant: Option<&str>) -> Result<Lookup, ProveError> {
        let key = hash_key(hash, tenant);
        if let Some(s) = self.cached(&key).await {
            return Ok(Lookup::Found(s));
        }
        let now = self.now().await?;
        let found = self
            .fetch(ProofKey::Hash {
                hash: hash.to_vec(),
                tenant: tenant.map(str::to_owned),
            })
            .await?;
        self.lookup(key, now, found).await
    }

    /// The bundle of the entry (tenant, external id).
    pub async fn by_identity(&self, tenant: &str, external_id: &str) -> Result<Lookup, ProveError> {
        let key = identity_key(tenant, external_id);
        if let Some(s) = self.cached(&key).await {
            return Ok(Lookup::Found(s));
        }
        let now = self.now().await?;
        let found = self
            .fetch(ProofKey::Identity {
                tenant: tenant.to_owned(),
                external_id: external_id.to_owned(),
            })
            .await?;
        self.lookup(key, now, found).await
    }

    /// What `key`'s proof needs from the ledger: through the gathering
    /// loop when it runs ([`Prover::gather_loop`]), else alone.
    async fn fetch(&self, key: ProofKey) -> Result<Option<ProofRow>, ProveError> {
        self.counts.proofs.fetch_add(1, Ordering::Relaxed);
        if let Some(answer) = self.gather.ask(&key).await {
            return answer.map_err(ProveError::Shared);
        }
        self.queried("proof", 1);
        Ok(match &key {
            ProofKey::Hash { hash, tenant } => {
                self.ledger.proof_by_hash(hash, tenant.as_deref()).await?
            }
            ProofKey::Identity {
                tenant,
                external_id,
            } => self.ledger.proof_by_identity(tenant, external_id).await?,
        })
    }

    /// Gather cold lookups into shared statements until `shutdown`
    /// ([`crate::gather`]), then drain. Owned by [`crate::run`], which
    /// awaits it after the server has answered its last request.
    pub async fn gather_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let p = self.clone();
        self.gather
            .run(
                move |keys| {
                    let p = p.clone();
                    async move { p.answer_batch(keys).await }
                },
                shutdown,
            )
            .await;
    }

    /// One gathered statement's answers; the headers and upper tiles of
    /// the blocks they fall in that the caches lack come with them (on a
    /// ledger of many blocks, most cold proofs are their block's first).
    async fn answer_batch(
        &self,
        keys: Vec<ProofKey>,
    ) -> Result<Vec<anchord_ledger::ProofAnswer>, LedgerError> {
        self.queried("proof", 1);
        let b = self
            .ledger
            .proofs_with_blocks(&keys, |h| !self.knows_block(h))
            .await?;
        if !b.block_tiles.is_empty() {
            self.queried("block", 1);
            self.queried("block_tiles", 1);
        }
        for blk in b.blocks {
            // A header that does not check is left out: the request that
            // needs it reads it again and reports it.
            if let Err(e) = self.keep_header(blk) {
                tracing::error!(error = %e, "a block read with gathered proofs");
            }
        }
        for (h, set) in b.block_tiles {
            self.keep_block_tiles(h, Arc::new(set));
        }
        Ok(b.answers)
    }

    /// Whether block `height`'s upper tiles (read with its header) are
    /// cached.
    fn knows_block(&self, height: u64) -> bool {
        self.block_tiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&height)
    }

    fn keep_block_tiles(&self, height: u64, s: Arc<TileSet>) {
        let mut w = self.block_tiles.write().unwrap_or_else(|p| p.into_inner());
        if w.len() >= BLOCK_TILE_CACHE {
            w.clear();
        }
        w.insert(height, s);
    }

    /// A cached bundle still valid at the current epochs.
    async fn cached(&self, key: &[u8]) -> Option<Arc<Served>> {
        let cache = self.bundles.as_ref()?;
        let Some(slot) = cache.get(key) else {
            self.looked_up(Cached::Miss);
            return None;
        };
        let epochs = match self.current_epochs() {
            Some(e) => e,
            None => match self.now().await {
                Ok(n) => n.epochs,
                Err(e) => {
                    // The ledger is unreachable: what was valid at the last
                    // lookup is served until its backstop expires.
                    tracing::warn!(error = %e, "looking up the latest checkpoint and anchors");
                    self.fresh.read().unwrap_or_else(|p| p.into_inner()).epochs
                }
            },
        };
        if slot.holds_at(epochs) {
            self.looked_up(Cached::Hit);
            Some(slot.served.clone())
        } else {
            self.looked_up(Cached::Stale);
            None
        }
    }

    /// The cached bundle of `key` if it still holds at `epochs`, without
    /// counting a lookup (a request that waited for another's build).
    fn kept_bundle(&self, key: &[u8], epochs: Epochs) -> Option<Arc<Served>> {
        let slot = self.bundles.as_ref()?.get(key)?;
        slot.holds_at(epochs).then(|| slot.served.clone())
    }

    async fn lookup(
        &self,
        key: Vec<u8>,
        now: Now,
        found: Option<ProofRow>,
    ) -> Result<Lookup, ProveError> {
        let Some(row) = found else {
            return Ok(Lookup::NotFound);
        };
        if row.block.is_none() {
            return Ok(Lookup::NotSealed {
                seq: row.entry.entry.seq,
            });
        }
        // One build per key at a time when bundles are kept: concurrent
        // requests for one entry (a link many open at once) wait for the
        // first one's bundle. Requests for absent or unsealed entries
        // never wait here.
        let keeps = self.bundles.is_some()
            && !self.anchor_view_ttl.is_zero()
            && !self.anchored_ttl.is_zero()
            && !self.pending_ttl.is_zero();
        let _one = if keeps {
            let one = Turn::take(&self.bundle_builds, key.clone().into_boxed_slice()).await;
            if let Some(s) = self.kept_bundle(&key, now.epochs) {
                return Ok(Lookup::Found(s));
            }
            Some(one)
        } else {
            None
        };
        self.counts.bundles_built.fetch_add(1, Ordering::Relaxed);
        let Some((bundle, epochs)) = self
            .bundle_at(&row.entry, row.level0.as_ref(), row.block, Some(now))
            .await?
        else {
            return Ok(Lookup::NotSealed {
                seq: row.entry.entry.seq,
            });
        };
        let json = serde_json::to_vec_pretty(&bundle)
            .map_err(|e| ProveError::Corrupt(format!("serializing a bundle: {e}")))?;
        let anchored = bundle.anchor.status == AnchorState::Anchored;
        let ttl = if anchored {
            self.anchored_ttl
        } else {
            self.pending_ttl
        };
        let served = Arc::new(Served {
            bundle,
            json: json.into(),
        });
        if let Some(cache) = &self.bundles
            && !ttl.is_zero()
            && !self.anchor_view_ttl.is_zero()
        {
            cache.insert(
                key.into_boxed_slice(),
                Arc::new(CacheSlot {
                    served: served.clone(),
                    epochs,
                    anchored,
                    expires: Instant::now() + ttl,
                }),
            );
            metrics::BUNDLE_CACHE_BYTES.set(cache.weight() as i64);
            metrics::BUNDLE_CACHE_ENTRIES.set(cache.len() as i64);
        }
        Ok(Lookup::Found(served))
    }

    /// Assemble the bundle of a stored entry; `None` while its block is not
    /// sealed.
    pub async fn bundle_for(&self, se: &StoredEntry) -> Result<Option<Bundle>, ProveError> {
        Ok(self.bundle_at(se, None, None, None).await?.map(|(b, _)| b))
    }

    /// [`Prover::bundle_for`], with the entry's level-0 data and block
    /// when the caller read them already (the one-query path), and the
    /// epochs the bundle was built at (looked up before anything else).
    async fn bundle_at(
        &self,
        se: &StoredEntry,
        level0: Option<&Level0>,
        block: Option<(u64, u64, u64)>,
        now: Option<Now>,
    ) -> Result<Option<(Bundle, Epochs)>, ProveError> {
        let suite = self.suite;
        let seq = se.entry.seq;
        let now = match now {
            Some(n) => n,
            None => self.now().await?,
        };
        let header = match block {
            Some((height, first, last)) if first <= seq && seq <= last => {
                self.header_of(height, seq).await?
            }
            _ => self.header_containing(seq).await?,
        };
        let Some(header) = header else {
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
        let Some(view) = self.anchor_view(h, &now).await? else {
            // Sealed, but not yet in the checkpoint this verifier last
            // looked up (it looks again within anchor_view_ttl_ms): the
            // client is told to retry, as for an unsealed entry.
            return Ok(None);
        };
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
        let epochs = view.epochs;
        Ok(Some((
            Bundle {
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
            },
            epochs,
        )))
    }

    /// Each target's receipt of the smallest anchored checkpoint >= `size`,
    /// with a consistency proof from `size`.
    async fn receipts(&self, size: u64) -> Result<Vec<AnchorReceipt>, ProveError> {
        self.queried("anchors", 1);
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
        self.queried("block", 1);
        let Some(b) = self.ledger.block_containing(seq).await? else {
            return Ok(None);
        };
        self.keep_header(b).map(Some)
    }

    /// The header of sealed block `height`, which holds `seq`: from the
    /// cache, else one query by its height.
    async fn header_of(&self, height: u64, seq: u64) -> Result<Option<BlockHeader>, ProveError> {
        {
            let hs = self.headers.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, h)) = hs.range(..=seq).next_back()
                && h.last_seq >= seq
                && h.height == height
            {
                return Ok(Some(h.clone()));
            }
        }
        self.queried("block", 1);
        let Some(b) = self.ledger.block(height).await? else {
            return Ok(None);
        };
        if !(b.header.first_seq <= seq && seq <= b.header.last_seq) {
            return Err(ProveError::Corrupt(format!(
                "block {height} does not hold entry {seq}"
            )));
        }
        self.keep_header(b).map(Some)
    }

    /// Check a block read from the ledger and cache its header.
    fn keep_header(&self, b: anchord_ledger::StoredBlock) -> Result<BlockHeader, ProveError> {
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
        Ok(b.header)
    }

    /// The audit path of leaf `index` of block `h`: from the block's tiles
    /// (a level-0 tile is a 256-row range of the evidence table; levels 1
    /// and up are stored with the block), a handful of reads; for a block
    /// sealed before tiles, from chunk roots computed once from its leaves.
    async fn audit_path(
        &self,
        h: &BlockHeader,
        index: u64,
        level0: Option<&Level0>,
    ) -> Result<Vec<Digest32>, ProveError> {
        let n = h.leaf_count;
        let corrupt = |e: merkle::ProofError| {
            ProveError::Corrupt(format!("block {} audit path: {e}", h.height))
        };
        // The entry's level-0 data read with it (one stored half, or the
        // whole tile for a block not yet back-filled), when it fits: the
        // path inside the tile, then, in a block of more than one tile, the
        // tile's path in the block's tree over its tile roots (kept per
        // block; see `core::tiles`' module comment for why the two paths
        // concatenate).
        let (c, pos) = (index / tiles::TILE_WIDTH, index % tiles::TILE_WIDTH);
        if let (Some(l0), Some(width)) = (level0, tiles::tile_width(n, 0, c))
            && l0.fits(u64::from(width), pos)
        {
            let upper = if n > tiles::TILE_WIDTH {
                let stored = self.block_tiles_of(h.height).await?;
                if stored.is_empty() {
                    None
                } else {
                    Some(Some(self.upper_tree(h, &stored).await?))
                }
            } else {
                Some(None)
            };
            if let Some(upper) = upper {
                metrics::TILE_READS
                    .with_label_values(&["block", "level0"])
                    .inc();
                let mut path = l0.path(self.suite, pos).map_err(corrupt)?;
                if let Some(upper) = upper {
                    path.extend(upper.inclusion_proof(c).map_err(corrupt)?);
                }
                return Ok(path);
            }
        }
        let stored = self.block_tiles_of(h.height).await?;
        if n > tiles::TILE_WIDTH && stored.is_empty() {
            return self.audit_path_from_chunks(h, index).await;
        }
        if n > tiles::TILE_WIDTH {
            let width = tiles::tile_width(n, 0, c).ok_or_else(|| {
                ProveError::Corrupt(format!("block {}: no leaf {index}", h.height))
            })?;
            let chunk = self.level0_tile(h, c, width).await?;
            let upper = self.upper_tree(h, &stored).await?;
            let mut path = merkle::inclusion_proof(self.suite, &chunk, pos)
                .and_then(|mut p| {
                    p.extend(upper.inclusion_proof(c)?);
                    Ok(p)
                })
                .map_err(corrupt)?;
            path.shrink_to_fit();
            return Ok(path);
        }
        let mut set = TileSet::new();
        for t in tiles::inclusion_tiles(n, index).map_err(tile_err)? {
            if t.level == 0 {
                let l = self.level0_tile(h, t.index, t.width).await?;
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

    /// Level-0 tile `c` (`width` leaves) of block `h`: the block's partial
    /// last tile from its cache, else a 256-row range of leaf hashes.
    async fn level0_tile(
        &self,
        h: &BlockHeader,
        c: u64,
        width: u16,
    ) -> Result<Vec<Digest32>, ProveError> {
        let tail = u64::from(width) < tiles::TILE_WIDTH;
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
        self.queried("leaves", 1);
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
            let tail = self.level0_tile(h, full, rest).await?;
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
        self.queried("block_tiles", 1);
        let s = Arc::new(self.ledger.block_tiles(height).await?);
        metrics::TILE_READS
            .with_label_values(&["block", "db"])
            .inc();
        self.keep_block_tiles(height, s.clone());
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
        self.queried("log_tiles", 1);
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
        self.queried("log_tiles", 1);
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
    /// The anchor view of block `h`; `None` while no checkpoint this
    /// verifier has seen covers it (a block sealed after the last look).
    async fn anchor_view(
        &self,
        h: &BlockHeader,
        now: &Now,
    ) -> Result<Option<Arc<AnchorView>>, ProveError> {
        let height = h.height;
        let kept = || {
            self.anchor_views
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&height)
                .filter(|v| v.epochs.still(now.epochs, v.anchored))
                .cloned()
        };
        if let Some(v) = kept() {
            return Ok(Some(v));
        }
        // One build per block at a time: the concurrent first proofs of a
        // block (a court checking a whole contract) wait for the first
        // one's view instead of each asking for the anchor, checkpoint and
        // receipts again. Views are kept only with a TTL, so without one
        // there is nothing to wait for.
        let _one = if self.anchor_view_ttl.is_zero() {
            None
        } else {
            let one = Turn::take(&self.view_builds, height).await;
            if let Some(v) = kept() {
                return Ok(Some(v));
            }
            Some(one)
        };
        self.counts
            .anchor_views_built
            .fetch_add(1, Ordering::Relaxed);
        // No anchor at or above the block: pending, without asking.
        let anchored = if height >= now.anchored_max {
            None
        } else {
            self.queried("anchors", 1);
            self.ledger.first_anchored_size_covering(height).await?
        };
        let cp = match anchored {
            Some(size) => {
                self.queried("checkpoint", 1);
                self.ledger.checkpoint(size).await?.ok_or_else(|| {
                    ProveError::Corrupt(format!("anchored checkpoint {size} is missing"))
                })?
            }
            None => match &now.latest {
                Some(cp) if cp.size > height => cp.clone(),
                // Sealed after the latest checkpoint seen: not yet provable.
                _ => return Ok(None),
            },
        };
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
            epochs: now.epochs,
            checkpoint: cp,
            anchored: anchored.is_some(),
            receipts,
            block_log_path,
        });
        if !self.anchor_view_ttl.is_zero() {
            let mut w = self.anchor_views.write().unwrap_or_else(|p| p.into_inner());
            if w.len() > 100_000 {
                w.clear();
            }
            w.insert(height, v.clone());
        }
        Ok(Some(v))
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
        self.queried("leaves", 1);
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
        self.queried("leaves", 1);
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
/// How many of the newest blocks [`Prover::preload`] reads.
const PRELOAD_BLOCKS: u64 = 1024;

/// Per key, the lock of the request doing some one-off work for it (entries
/// exist only while some request holds or waits for one): the single
/// flight of anchor views (per block) and bundles (per lookup key).
type Turns<K> = Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>;

/// A request's turn at `key`'s work: requests for the same key take turns,
/// other keys' do not wait. Dropped, it removes the key's entry unless
/// another request holds or waits for a turn.
struct Turn<'a, K: std::hash::Hash + Eq + Clone> {
    turns: &'a Turns<K>,
    key: K,
    lock: Arc<tokio::sync::Mutex<()>>,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl<'a, K: std::hash::Hash + Eq + Clone> Turn<'a, K> {
    async fn take(turns: &'a Turns<K>, key: K) -> Turn<'a, K> {
        let lock = turns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _held = lock.clone().lock_owned().await;
        Turn {
            turns,
            key,
            lock,
            _held,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        let mut m = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference, this one and the guard's: nobody else has
        // the lock, and nobody can take it without the map's mutex.
        if Arc::strong_count(&self.lock) == 3 {
            m.remove(&self.key);
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_are_taken_per_key_and_leave_no_entry() {
        let builds = Turns::<u64>::default();
        let first = Turn::take(&builds, 7).await;
        // Another block's build does not wait.
        let other = tokio::time::timeout(Duration::from_secs(1), Turn::take(&builds, 8))
            .await
            .expect("another block's turn is free");
        // The same block's waits for the first to end.
        let second = Turn::take(&builds, 7);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "a second build of block 7 started while the first ran"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("the second build of block 7 starts once the first ends");
        // Block 7's entry stays while its second build runs; block 8's goes.
        drop(other);
        assert_eq!(
            builds.lock().unwrap().keys().copied().collect::<Vec<_>>(),
            [7]
        );
        drop(second);
        assert!(builds.lock().unwrap().is_empty());
    }
}
