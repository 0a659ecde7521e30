//! `anchord audit`: recompute every leaf hash from its entry, every block
//! root, the block chain, the block log and every checkpoint from the
//! ledger; check every entry's identity row; verify every signature.
//! Reports every problem with its location instead of stopping at the first.
//!
//! Constant memory whatever the ledger's size: blocks, checkpoints and
//! their signatures are read a page at a time, entries and the blocks'
//! stored tiles a group of consecutive blocks at a time (up to
//! [`GROUP_ENTRIES`] entries: a few statements per group, so that a ledger
//! of a block a second is not a few statements per second of its life; or
//! one page of the unsealed tail), and the block log is recomputed as
//! the right edge of its tiles (`core::tiles::TileEdge`, at most 255
//! hashes per level), each stored block-log tile being compared when the
//! recomputation completes it. Only the problems found are kept (those
//! about entries' identity rows listed up to [`LISTED`], then counted).
//!
//! The ledger may grow while it is audited (ingest appends, the batcher
//! seals, rewrites the partial block-log tiles and builds filters). The
//! audit checks the ledger as it stood when it began: the blocks sealed
//! then, the entries below the head then, the filters of partitions closed
//! then. What was added meanwhile is told apart from damage by what the
//! writers commit together: an entry with its identity row and the head
//! that covers it; a block with its checkpoint and the block-log tiles it
//! completes. So a row beyond the head, a checkpoint beyond the blocks, or
//! a tile wider than the block log is damage whenever it is read, and the
//! rest of what was added is checked by the next audit.

use std::collections::{HashMap, VecDeque};

use anchord_core::checkpoint::NoteVerifier;
use anchord_core::filter::{FilterKind, evidence_hash_key};
use anchord_core::tiles::{Tile, TileEdge, TileSet};
use anchord_core::{Digest32, HashSuite, merkle, tiles};
use anchord_ledger::{
    LeafTile, Ledger, SignatureRole, SignatureRow, StoredBlock, StoredCheckpoint, StoredEntry,
};

use crate::BatcherError;
use crate::sealer::{check_block_header, check_checkpoint};

/// Blocks and checkpoints read per query (the unsealed tail: 16 times as
/// many entries).
const PAGE: u64 = 256;
/// Entries read per statement while checking blocks: consecutive blocks
/// are read together up to this many (a larger block alone).
const GROUP_ENTRIES: u64 = 50_000;
/// Completed block-log tiles compared per query.
const TILE_BATCH: usize = 64;
/// Identity problems listed one by one; the rest are counted.
pub const LISTED: u64 = 100;

/// What an audit found.
#[derive(Debug, Default, Clone)]
pub struct AuditReport {
    pub blocks: u64,
    pub entries_sealed: u64,
    pub entries_unsealed: u64,
    pub checkpoints: u64,
    pub final_checkpoints: u64,
    pub timestamped_checkpoints: u64,
    /// Blocks sealed before ledger schema version 9 whose level-0 tiles
    /// the batcher has not back-filled yet (not a problem: proofs read
    /// their leaves from the evidence rows).
    pub blocks_without_leaf_tiles: u64,
    /// Each inconsistency, saying where (block height, seq, checkpoint size).
    pub problems: Vec<String>,
    /// Blocks sealed while the audit ran (not checked: the next audit
    /// does).
    pub blocks_added_meanwhile: u64,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(e: BatcherError) -> String {
    match e {
        BatcherError::Integrity(s) => s,
        other => other.to_string(),
    }
}

/// Keys and rules an audit checks against.
#[derive(Debug, Clone)]
pub struct AuditKeys {
    pub sealer: NoteVerifier,
    pub witnesses: Vec<NoteVerifier>,
    pub quorum: usize,
    /// The TSA certificate (DER), to verify stored timestamp tokens.
    pub tsa_cert: Option<Vec<u8>>,
}

/// Run the audit. `progress` draws a progress bar on stderr.
pub async fn audit(
    ledger: &Ledger,
    suite: HashSuite,
    keys: &AuditKeys,
    progress: bool,
) -> Result<AuditReport, BatcherError> {
    let mut r = AuditReport::default();
    // What this audit checks: the blocks sealed now (read first: their
    // entries lie below the head read next).
    let block_count = ledger.block_count().await?;
    let head = ledger.next_seq().await?;
    let bar = if progress {
        let b = indicatif::ProgressBar::new(head);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} auditing [{bar:40}] {pos}/{len} entries ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };

    let mut ids = Identities::start(ledger, head, &mut r).await?;
    let mut log = LogTiles::new(suite);
    let mut cps = Checkpoints::new(ledger);
    let mut prev = anchord_core::checkpoint::GENESIS_PREV_HASH;
    let mut expected_first = 0u64;
    let mut from = 0u64;
    while from < block_count {
        let page = ledger.blocks_page(from, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = last.header.height + 1;
        let page: Vec<&StoredBlock> = page
            .iter()
            .take_while(|b| b.header.height < block_count)
            .collect();
        for group in groups(&page) {
            let g = Group::read(ledger, group).await?;
            ids.check(ledger, &g.entries, &mut r).await?;
            for b in group {
                let h = &b.header;
                bar.set_message(format!("block {}", h.height));
                if let Err(e) = check_block_header(b, suite, r.blocks, &prev) {
                    r.problems.push(problem(e));
                }
                if h.first_seq != expected_first {
                    r.problems.push(format!(
                        "block {}: starts at seq {} but should start at {expected_first}",
                        h.height, h.first_seq
                    ));
                }
                let entries = g.entries_of(h.first_seq, h.last_seq);
                if let Err(e) = h.check_leaf_count(entries.len()) {
                    r.problems.push(e.to_string());
                }
                let mut leaves = Vec::with_capacity(entries.len());
                for e in entries {
                    match e.entry.check_leaf_hash(suite, &e.leaf_hash) {
                        Ok(leaf) => leaves.push(leaf),
                        Err(m) => {
                            r.problems.push(m.clone().in_block(h.height).to_string());
                            leaves.push(m.recomputed);
                        }
                    }
                }
                if let Err(e) = h.check_root(merkle::root(suite, &leaves)) {
                    r.problems.push(e.to_string());
                }
                match g.block_tiles(ledger, h.height).await {
                    Ok(stored) => {
                        if let Err(e) = check_block_tiles(&stored, suite, h.height, &leaves) {
                            r.problems.push(e);
                        }
                    }
                    Err(e) => r.problems.push(e),
                }
                let stored_leaves: Vec<Digest32> = entries.iter().map(|e| e.leaf_hash).collect();
                match g.leaf_tiles(ledger, h.height).await {
                    Ok(stored) => {
                        match check_leaf_tiles(&stored, suite, h.height, &stored_leaves) {
                            Ok(true) => {}
                            Ok(false) => r.blocks_without_leaf_tiles += 1,
                            Err(e) => r.problems.push(e),
                        }
                    }
                    Err(e) => r.problems.push(e),
                }
                prev = b.block_hash;
                expected_first = h.last_seq.saturating_add(1);
                r.blocks += 1;
                r.entries_sealed = expected_first;
                log.push(ledger, h.hash(), &mut r).await?;
                // The checkpoint of this size, against the recomputed root.
                while let Some(cp) = cps.next_up_to(log.edge.size()).await? {
                    let root = (cp.size == log.edge.size()).then(|| log.edge.root());
                    check_one_checkpoint(&cp, root, r.blocks, keys, &mut cps, &mut r);
                }
                bar.inc(h.leaf_count);
            }
        }
    }
    r.entries_unsealed = head.saturating_sub(r.entries_sealed);

    bar.set_message("unsealed entries");
    let mut at = r.entries_sealed;
    while at < head {
        let to = head.min(at + PAGE * 16);
        let entries = ledger.entries_range(at, to).await?;
        ids.check(ledger, &entries, &mut r).await?;
        bar.inc(to - at);
        at = to;
    }
    ids.finish(ledger, head, &mut r).await?;

    bar.set_message("block-log tiles");
    let now = log.finish(ledger, &mut r).await?;
    r.blocks_added_meanwhile = now.saturating_sub(r.blocks);

    bar.set_message("checkpoints");
    let beyond = ledger.checkpoints_beyond_blocks(LISTED).await?;
    for size in beyond {
        r.problems.push(format!(
            "checkpoint {size}: no block has it (the block log is shorter)"
        ));
    }
    if r.checkpoints != r.blocks {
        r.problems.push(format!(
            "{} blocks but {} checkpoints (one per block expected)",
            r.blocks, r.checkpoints
        ));
    }
    bar.finish_and_clear();
    Ok(r)
}

/// Consecutive blocks of a page read together: at most [`GROUP_ENTRIES`]
/// entries (a larger block alone), so that a ledger of many small blocks
/// (one a second by default) costs a few statements per group, not per
/// block, in constant memory.
fn groups<'a, 'b>(page: &'b [&'a StoredBlock]) -> Vec<&'b [&'a StoredBlock]> {
    let mut out = Vec::new();
    let (mut start, mut entries) = (0, 0u64);
    for (i, b) in page.iter().enumerate() {
        let n = b.header.leaf_count;
        if i > start && entries.saturating_add(n) > GROUP_ENTRIES {
            out.push(&page[start..i]);
            (start, entries) = (i, 0);
        }
        entries = entries.saturating_add(n);
    }
    if start < page.len() {
        out.push(&page[start..]);
    }
    out
}

/// What a group of blocks is checked against: its entries (one range, in
/// sequence order) and its blocks' stored tiles, each read in one
/// statement. A group's tiles that do not read (a damaged row) are read
/// again block by block, so that the problem names its block.
struct Group {
    entries: Vec<StoredEntry>,
    block_tiles: Option<HashMap<u64, TileSet>>,
    leaf_tiles: Option<HashMap<u64, Vec<LeafTile>>>,
}

impl Group {
    async fn read(ledger: &Ledger, blocks: &[&StoredBlock]) -> Result<Self, BatcherError> {
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Ok(Group {
                entries: Vec::new(),
                block_tiles: Some(HashMap::new()),
                leaf_tiles: Some(HashMap::new()),
            });
        };
        // The group's range; a block whose header lies outside it (damage,
        // reported with the header) is checked against what the range has.
        let from = first.header.first_seq;
        let to = last.header.last_seq.saturating_add(1).max(from);
        let heights: Vec<u64> = blocks.iter().map(|b| b.header.height).collect();
        let entries = ledger.entries_range(from, to).await?;
        let block_tiles = ledger
            .block_tiles_at(&heights)
            .await
            .ok()
            .map(|v| v.into_iter().collect());
        let leaf_tiles = ledger.block_leaf_tiles_at(&heights).await.ok();
        Ok(Group {
            entries,
            block_tiles,
            leaf_tiles,
        })
    }

    /// The group's entries `first..=last`.
    fn entries_of(&self, first: u64, last: u64) -> &[StoredEntry] {
        let lo = self.entries.partition_point(|e| e.entry.seq < first);
        let hi = self.entries.partition_point(|e| e.entry.seq <= last);
        &self.entries[lo..hi.max(lo)]
    }

    async fn block_tiles(&self, ledger: &Ledger, height: u64) -> Result<TileSet, String> {
        match &self.block_tiles {
            Some(m) => Ok(m.get(&height).cloned().unwrap_or_default()),
            None => ledger
                .block_tiles(height)
                .await
                .map_err(|e| format!("block {height}: tiles: {e}")),
        }
    }

    async fn leaf_tiles(&self, ledger: &Ledger, height: u64) -> Result<Vec<LeafTile>, String> {
        match &self.leaf_tiles {
            Some(m) => Ok(m.get(&height).cloned().unwrap_or_default()),
            None => ledger
                .block_leaf_tiles(height)
                .await
                .map_err(|e| format!("block {height}: level-0 tiles: {e}")),
        }
    }
}

/// One checkpoint: its size in sequence, its root, note and signatures,
/// its timestamp token, and its signature rows against its note.
fn check_one_checkpoint(
    cp: &StoredCheckpoint,
    recomputed: Option<Digest32>,
    blocks: u64,
    keys: &AuditKeys,
    cps: &mut Checkpoints<'_>,
    r: &mut AuditReport,
) {
    r.checkpoints += 1;
    if cp.size != cps.expected_size {
        r.problems.push(format!(
            "checkpoint {}: expected the next checkpoint to have size {}",
            cp.size, cps.expected_size
        ));
    }
    cps.expected_size = cp.size + 1;
    match check_checkpoint(cp, recomputed, blocks, &keys.sealer, &keys.witnesses) {
        Ok(cosigned) => {
            let reached = keys.witnesses.is_empty() || cosigned.len() >= keys.quorum;
            if cp.final_at_us.is_some() {
                if reached {
                    r.final_checkpoints += 1;
                } else {
                    r.problems.push(format!(
                        "checkpoint {}: marked final with {} of the {} cosignatures needed",
                        cp.size,
                        cosigned.len(),
                        keys.quorum
                    ));
                }
            }
        }
        Err(e) => r.problems.push(problem(e)),
    }
    if let (Some(token), Some(cert)) = (&cp.timestamp_token, &keys.tsa_cert) {
        let text = anchord_core::checkpoint::SignedNote::parse(&cp.signed_note)
            .map(|n| n.text)
            .unwrap_or_default();
        match crate::tsa::verify_token(token, &HashSuite::Sha256.digest(text.as_bytes()), cert) {
            Ok(_) => r.timestamped_checkpoints += 1,
            Err(e) => r
                .problems
                .push(format!("checkpoint {}: timestamp token: {e}", cp.size)),
        }
    }
    // Signature rows must be the signatures in the note.
    let note = anchord_core::checkpoint::SignedNote::parse(&cp.signed_note).ok();
    for s in cps.signatures.remove(&cp.size).unwrap_or_default() {
        let in_note = note.as_ref().is_some_and(|n| {
            n.signatures
                .iter()
                .any(|x| x.name == s.key_name && x.key_id == s.key_id && x.payload == s.signature)
        });
        if !in_note {
            r.problems.push(format!(
                "checkpoint {}: the {} signature row of {} is not in the signed note",
                s.size,
                match s.role {
                    SignatureRole::Sealer => "sealer",
                    SignatureRole::Witness => "witness",
                },
                s.key_name
            ));
        }
    }
}

/// Checkpoints by size, a page at a time, with their signature rows.
struct Checkpoints<'a> {
    ledger: &'a Ledger,
    buf: VecDeque<StoredCheckpoint>,
    /// Signature rows of the buffered page, by checkpoint size.
    signatures: HashMap<u64, Vec<SignatureRow>>,
    from: u64,
    exhausted: bool,
    expected_size: u64,
}

impl<'a> Checkpoints<'a> {
    fn new(ledger: &'a Ledger) -> Self {
        Checkpoints {
            ledger,
            buf: VecDeque::new(),
            signatures: HashMap::new(),
            from: 0,
            exhausted: false,
            expected_size: 1,
        }
    }

    /// The next checkpoint if its size is at most `size`.
    async fn next_up_to(&mut self, size: u64) -> Result<Option<StoredCheckpoint>, BatcherError> {
        if self.buf.is_empty() && !self.exhausted {
            let page = self.ledger.checkpoints_page(self.from, PAGE).await?;
            match (page.first(), page.last()) {
                (Some(first), Some(last)) => {
                    let rows = self
                        .ledger
                        .checkpoint_signatures_between(first.size, last.size)
                        .await?;
                    self.signatures.clear();
                    for s in rows {
                        self.signatures.entry(s.size).or_default().push(s);
                    }
                    self.from = last.size + 1;
                }
                _ => self.exhausted = true,
            }
            self.buf.extend(page);
        }
        Ok(match self.buf.front() {
            Some(cp) if cp.size <= size => self.buf.pop_front(),
            _ => None,
        })
    }
}

/// The block log recomputed as the right edge of its tiles; each tile the
/// recomputation completes is compared with the stored one.
struct LogTiles {
    edge: TileEdge,
    pending: Vec<(Tile, Vec<Digest32>)>,
    compared: u64,
}

impl LogTiles {
    fn new(suite: HashSuite) -> Self {
        LogTiles {
            edge: TileEdge::new(suite),
            pending: Vec::new(),
            compared: 0,
        }
    }

    async fn push(
        &mut self,
        ledger: &Ledger,
        block_hash: Digest32,
        r: &mut AuditReport,
    ) -> Result<(), BatcherError> {
        for (t, h) in self.edge.push(block_hash) {
            if t.is_full() {
                self.pending.push((t, h));
            }
        }
        if self.pending.len() >= TILE_BATCH {
            self.compare(ledger, r).await?;
        }
        Ok(())
    }

    async fn compare(&mut self, ledger: &Ledger, r: &mut AuditReport) -> Result<(), BatcherError> {
        let (want, stored) = self.take_pending(ledger).await?;
        self.judge(&want, &stored, None, r);
        Ok(())
    }

    /// The pending tiles, with the stored ones of the same keys.
    async fn take_pending(
        &mut self,
        ledger: &Ledger,
    ) -> Result<(Vec<(Tile, Vec<Digest32>)>, TileSet), BatcherError> {
        let want = std::mem::take(&mut self.pending);
        if want.is_empty() {
            return Ok((want, TileSet::new()));
        }
        let keys: Vec<Tile> = want.iter().map(|(t, _)| *t).collect();
        let stored = ledger.log_tiles(&keys).await?;
        Ok((want, stored))
    }

    /// Each wanted tile against the stored one. With `grown_to` (the block
    /// log's size read after `stored`), a partial tile stored wider than
    /// wanted is the same tile grown by blocks sealed meanwhile: its
    /// prefix must match, and the log must be that long.
    fn judge(
        &mut self,
        want: &[(Tile, Vec<Digest32>)],
        stored: &TileSet,
        grown_to: Option<u64>,
        r: &mut AuditReport,
    ) {
        for (t, want) in want {
            self.compared += 1;
            let Some(got) = stored.get(t.level, t.index) else {
                r.problems.push(format!("block-log tile {t}: missing"));
                continue;
            };
            let grown = grown_to
                .and_then(|n| tiles::tile_width(n, t.level, t.index))
                .is_some_and(|w| got.len() > want.len() && got.len() <= usize::from(w));
            let got = if grown { &got[..want.len()] } else { got };
            let path = Tile {
                width: got.len().clamp(1, 256) as u16,
                ..*t
            }
            .path();
            if got.len() != want.len() {
                r.problems.push(format!(
                    "block-log tile {path}: {} hashes stored, the blocks give {}",
                    got.len(),
                    want.len()
                ));
            } else if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
                r.problems.push(format!(
                    "block-log tile {path}: hash {i} is {} but the blocks recompute {}",
                    hex::encode(got[i]),
                    hex::encode(want[i])
                ));
            }
        }
    }

    /// The last full tiles, then the partial tile of each level, then no
    /// stored tile beyond the block log. Returns the block log's size at
    /// the end (blocks sealed meanwhile included).
    async fn finish(&mut self, ledger: &Ledger, r: &mut AuditReport) -> Result<u64, BatcherError> {
        let size = self.edge.size();
        let partial = self.edge.tile_set();
        for level in 0..=tiles::MAX_LEVEL {
            let n = tiles::level_len(size, level);
            if n == 0 {
                break;
            }
            let w = n % tiles::TILE_WIDTH;
            if w != 0 {
                let t = Tile {
                    level,
                    index: n / tiles::TILE_WIDTH,
                    width: w as u16,
                };
                let h = partial.get(level, t.index).unwrap_or_default().to_vec();
                self.pending.push((t, h));
            }
        }
        let (want, tiles) = self.take_pending(ledger).await?;
        let stored = ledger.log_tile_count().await?;
        // Read last: each tile read above came with its block.
        let now = ledger.block_count().await?;
        self.judge(&want, &tiles, Some(now), r);
        let give = tile_count(now.max(size));
        if stored > give {
            r.problems.push(format!(
                "{stored} block-log tiles stored but the {} blocks give {give}: a stored tile lies beyond the block log",
                now.max(size)
            ));
        }
        Ok(now)
    }
}

/// The number of tiles (full and partial, every level) of a log of `size`.
fn tile_count(size: u64) -> u64 {
    (0..=tiles::MAX_LEVEL)
        .map(|level| tiles::level_len(size, level).div_ceil(tiles::TILE_WIDTH))
        .sum()
}

/// Every stored filter of one kind: it checks (digest, format), holds the
/// key of every entry of its partition, and was built over as many keys
/// as the partition holds.
struct FilterAudit {
    kind: FilterKind,
    /// The filters that checked, by `lo`, with the entries seen in range.
    filters: Vec<(anchord_ledger::ClosedFilter, u64)>,
    /// Filters that checked but reach past the head the audit began at:
    /// built meanwhile (checked by the next audit), unless they reach past
    /// the head at the end too.
    later: Vec<(u64, u64)>,
    misses: u64,
}

impl FilterAudit {
    async fn start(
        ledger: &Ledger,
        kind: FilterKind,
        head: u64,
        r: &mut AuditReport,
    ) -> Result<Self, BatcherError> {
        let (mut filters, mut later) = (Vec::new(), Vec::new());
        for (lo, hi, f) in ledger.stored_filters(kind).await? {
            match f {
                Ok(_) if hi > head => later.push((lo, hi)),
                Ok(f) => filters.push((f, 0)),
                Err(why) => r.problems.push(format!(
                    "{} filter of seqs [{lo}, {hi}): {why} (lookups do not use it)",
                    kind.name()
                )),
            }
        }
        Ok(FilterAudit {
            kind,
            filters,
            later,
            misses: 0,
        })
    }

    fn check(&mut self, seq: u64, key: &Digest32, r: &mut AuditReport) {
        let at = self.filters.partition_point(|(f, _)| f.hi <= seq);
        let Some((f, seen)) = self.filters.get_mut(at).filter(|(f, _)| f.lo <= seq) else {
            return;
        };
        *seen += 1;
        if !f.filter.may_contain(key) {
            self.misses += 1;
            if self.misses <= LISTED {
                let what = match self.kind {
                    FilterKind::Identity => {
                        "the writer would accept a second entry with that (tenant, external id)"
                    }
                    FilterKind::EvidenceHash => "a proof by that evidence hash would not find it",
                };
                r.problems.push(format!(
                    "{} filter of seqs [{}, {}) lacks the key of seq {seq}: {what}",
                    self.kind.name(),
                    f.lo,
                    f.hi
                ));
            }
        }
    }

    /// `head_now`: the head read after the filters.
    fn finish(&self, head_now: u64, r: &mut AuditReport) {
        for &(lo, hi) in self.later.iter().filter(|(_, hi)| *hi > head_now) {
            r.problems.push(format!(
                "{} filter of seqs [{lo}, {hi}): reaches past the ledger head {head_now}, so no closed partition holds it",
                self.kind.name()
            ));
        }
        if self.misses > LISTED {
            r.problems.push(format!(
                "{} more entries missing from their partition's {} filter",
                self.misses - LISTED,
                self.kind.name()
            ));
        }
        for (f, seen) in &self.filters {
            if f.keys != *seen {
                r.problems.push(format!(
                    "{} filter of seqs [{}, {}) was built over {} keys, the partition holds {seen} entries",
                    self.kind.name(),
                    f.lo,
                    f.hi,
                    f.keys
                ));
            }
        }
    }
}

/// Every entry's identity row: it exists and points at the entry; and no
/// other row exists. Each stored filter (identities, evidence hashes)
/// checks and holds its partition's keys.
struct Identities {
    entries: u64,
    bad: u64,
    by_identity: FilterAudit,
    by_hash: FilterAudit,
}

impl Identities {
    async fn start(ledger: &Ledger, head: u64, r: &mut AuditReport) -> Result<Self, BatcherError> {
        Ok(Identities {
            entries: 0,
            bad: 0,
            by_identity: FilterAudit::start(ledger, FilterKind::Identity, head, r).await?,
            by_hash: FilterAudit::start(ledger, FilterKind::EvidenceHash, head, r).await?,
        })
    }

    async fn check(
        &mut self,
        ledger: &Ledger,
        entries: &[StoredEntry],
        r: &mut AuditReport,
    ) -> Result<(), BatcherError> {
        for chunk in entries.chunks(10_000) {
            let ids: Vec<Digest32> = chunk.iter().map(|e| e.entry.identity()).collect();
            let found = ledger.identity_seqs(&ids).await?;
            for (e, id) in chunk.iter().zip(&ids) {
                let seq = e.entry.seq;
                self.by_identity.check(seq, id, r);
                self.by_hash
                    .check(seq, &evidence_hash_key(&e.entry.evidence_hash), r);
                let msg = match found.get(id) {
                    Some(&s) if s == seq => continue,
                    Some(&s) => format!(
                        "evidence seq {seq}: the identity row of its (tenant, external id) points at seq {s}"
                    ),
                    None => format!(
                        "evidence seq {seq}: no evidence_identity row for its (tenant, external id)"
                    ),
                };
                self.bad += 1;
                if self.bad <= LISTED {
                    r.problems.push(msg);
                }
            }
        }
        self.entries += entries.len() as u64;
        Ok(())
    }

    /// Every entry below `head` has its row (checked above), so the rows
    /// are the entries' exactly when there are as many, counting the rows
    /// below `head` and those beyond the head now (which no entry has).
    async fn finish(
        &self,
        ledger: &Ledger,
        head: u64,
        r: &mut AuditReport,
    ) -> Result<(), BatcherError> {
        let head_now = ledger.next_seq().await?;
        self.by_identity.finish(head_now, r);
        self.by_hash.finish(head_now, r);
        if self.bad > LISTED {
            r.problems.push(format!(
                "{} more entries with a missing or misdirected identity row",
                self.bad - LISTED
            ));
        }
        let rows = ledger.identity_count(head).await?;
        if rows != self.entries {
            let (orphans, doubles) = ledger.identity_strays(LISTED, head).await?;
            let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
            let mut msg = format!(
                "evidence_identity has {rows} rows for {} entries",
                self.entries
            );
            if !orphans.is_empty() {
                msg += &format!("; rows point at seqs with no entry: {}", list(&orphans));
            }
            if !doubles.is_empty() {
                msg += &format!("; seqs with several rows: {}", list(&doubles));
            }
            r.problems.push(msg);
        }
        Ok(())
    }
}

/// A block's stored tiles (levels 1 and up) against those its leaves give.
/// A block sealed before tiles has none (the verifier recomputes its tree),
/// but a block that has some must have all, each exactly.
fn check_block_tiles(
    stored: &TileSet,
    suite: HashSuite,
    height: u64,
    leaves: &[Digest32],
) -> Result<(), String> {
    if stored.is_empty() {
        return Ok(());
    }
    let reference: Vec<_> = tiles::build_tiles(suite, leaves)
        .into_iter()
        .filter(|(t, _)| t.level > 0)
        .collect();
    if stored.len() != reference.len() {
        return Err(format!(
            "block {height}: {} tiles stored, its {} entries give {}",
            stored.len(),
            leaves.len(),
            reference.len()
        ));
    }
    for (t, want) in &reference {
        match stored.get(t.level, t.index) {
            Some(got) if got == want.as_slice() => {}
            Some(_) => {
                return Err(format!(
                    "block {height}: tile {t} does not match its entries"
                ));
            }
            None => return Err(format!("block {height}: tile {t} is missing")),
        }
    }
    Ok(())
}

/// A block's stored level-0 tiles (`block_leaf_tiles`) against the evidence
/// rows' stored leaf hashes: every tile, as halves, with each half's
/// sibling root. `Ok(false)`: the block has none yet (sealed before schema
/// version 9, not back-filled). A block that has some must have all.
fn check_leaf_tiles(
    stored: &[LeafTile],
    suite: HashSuite,
    height: u64,
    leaves: &[Digest32],
) -> Result<bool, String> {
    if stored.is_empty() {
        return Ok(false);
    }
    let reference = anchord_ledger::leaf_tiles_of(suite, leaves);
    let name = |idx: u64, half: u8| {
        let width = tiles::tile_width(leaves.len() as u64, 0, idx).unwrap_or(0);
        let t = Tile {
            level: 0,
            index: idx,
            width: width.max(1),
        };
        format!("{t} (half {half})")
    };
    for (idx, want) in &reference {
        match stored.iter().find(|(i, h)| i == idx && h.half == want.half) {
            None => {
                return Err(format!(
                    "block {height}: level-0 tile {} is missing",
                    name(*idx, want.half)
                ));
            }
            Some((_, got)) if got.hashes != want.hashes => {
                let i = (0..got.hashes.len().min(want.hashes.len()))
                    .find(|&i| got.hashes[i] != want.hashes[i])
                    .unwrap_or(got.hashes.len().min(want.hashes.len()));
                return Err(format!(
                    "block {height}: level-0 tile {} does not match its entries' leaf hashes \
                     ({} hashes stored, {} expected; first difference at hash {i})",
                    name(*idx, want.half),
                    got.hashes.len(),
                    want.hashes.len()
                ));
            }
            Some((_, got)) if got.sibling != want.sibling => {
                return Err(format!(
                    "block {height}: level-0 tile {}: the stored root of the other half does not match its entries",
                    name(*idx, want.half)
                ));
            }
            Some(_) => {}
        }
    }
    if stored.len() != reference.len() {
        return Err(format!(
            "block {height}: {} level-0 tile halves stored, its {} entries give {}",
            stored.len(),
            leaves.len(),
            reference.len()
        ));
    }
    Ok(true)
}
