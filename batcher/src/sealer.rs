//! Leadership, the start-up check and the seal loop.

use std::time::{Duration, Instant};

use anchord_core::checkpoint::{BlockHeader, Checkpoint, NoteSigner, NoteVerifier, SignedNote};
use anchord_core::tiles::{self, TileEdge, TileReader};
use anchord_core::{Digest32, HashSuite, merkle};
use anchord_ledger::{
    LeaderSession, Ledger, LedgerError, NewSeal, SignatureRole, SignatureRow, StoredBlock,
    StoredCheckpoint, Tip,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::blocklog::BlockLog;
use crate::metrics;
use crate::{BatcherError, now_us};

/// Everything the seal loop needs, fixed for the process.
#[derive(Debug)]
pub(crate) struct Sealer {
    pub suite: HashSuite,
    pub origin: String,
    pub max_entries: u64,
    pub interval: Duration,
    pub signer: NoteSigner,
    /// Cosignatures needed for finality (0: the sealer's signature is final).
    pub quorum: usize,
}

/// Wait until this process holds the sealer lock (or shutdown: `None`).
pub(crate) async fn acquire(
    ledger: &Ledger,
    poll: Duration,
    shutdown: &CancellationToken,
) -> Result<Option<LeaderSession>, BatcherError> {
    let mut session: Option<LeaderSession> = None;
    let mut logged = false;
    loop {
        let attempt = async {
            let s = match session.as_mut() {
                Some(s) => s,
                None => session.insert(ledger.leader_session().await?),
            };
            s.try_acquire().await
        };
        match attempt.await {
            Ok(true) => return Ok(session),
            Ok(false) => {
                if !logged {
                    tracing::info!("another batcher is sealing; standing by");
                    logged = true;
                }
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "standby: database unavailable; retrying");
                session = None;
            }
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Blocks of block-log tiles computed per transaction when catching up on
/// blocks sealed before tiles existed.
const CATCH_UP_BATCH: u64 = 65_536;

/// Check the stored state on taking the lead, reading a constant number of
/// rows whatever the chain's length: the last two block headers (hash,
/// height, link), the latest block's root from the entries themselves (not
/// just their stored leaf hashes), the block-log tiles' right edge (their
/// last leaf is the latest block hash, their root the latest checkpoint's)
/// and the latest checkpoint's signature. Blocks sealed before tiles get
/// their block-log tiles first. Returns the verified block log.
pub(crate) async fn startup_check(
    ledger: &Ledger,
    session: &mut LeaderSession,
    suite: HashSuite,
    sealer: &NoteVerifier,
) -> Result<BlockLog, BatcherError> {
    let n = session.tip().await?.next_height;
    let mut latest_hash = None;
    if n > 0 {
        let missing = |h: u64| BatcherError::Integrity(format!("block {h} is missing"));
        let last = ledger.block(n - 1).await?.ok_or_else(|| missing(n - 1))?;
        let prev = if n >= 2 {
            let p = ledger.block(n - 2).await?.ok_or_else(|| missing(n - 2))?;
            check_block_header(&p, suite, n - 2, &p.header.prev_hash)?;
            p.block_hash
        } else {
            anchord_core::checkpoint::GENESIS_PREV_HASH
        };
        check_block_header(&last, suite, n - 1, &prev)?;
        let h = &last.header;
        let entries = ledger.entries_range(h.first_seq, h.last_seq + 1).await?;
        let latest = |e: &dyn std::fmt::Display| BatcherError::Integrity(format!("latest {e}"));
        h.check_leaf_count(entries.len()).map_err(|e| latest(&e))?;
        let leaves = entries
            .iter()
            .map(|e| e.entry.check_leaf_hash(suite, &e.leaf_hash))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BatcherError::Integrity(e.to_string()))?;
        h.check_root(merkle::root(suite, &leaves))
            .map_err(|e| latest(&e))?;
        // Its stored level-0 tiles (none if sealed before schema version 9
        // and not back-filled yet) are what its entries give.
        let stored = ledger.block_leaf_tiles(h.height).await?;
        if !stored.is_empty() && stored != anchord_ledger::leaf_tiles_of(suite, &leaves) {
            return Err(BatcherError::Integrity(format!(
                "latest block {}: its stored level-0 tiles do not match its entries",
                h.height
            )));
        }
        latest_hash = Some(last.block_hash);
    }
    let log = tiled_log(session, suite, n).await?;
    if let Some(want) = latest_hash {
        let t = tiles::tile_for(n, 0, n - 1).expect("a tree of n > 0 leaves has leaf n - 1");
        let set = session.log_tiles(&[t]).await?;
        metrics::TILES_READ.inc_by(set.len() as u64);
        let got = set
            .read(t)
            .map_err(|e| BatcherError::Integrity(format!("block-log tiles: {e}")))?
            [((n - 1) % tiles::TILE_WIDTH) as usize];
        if got != want {
            return Err(BatcherError::Integrity(format!(
                "block-log tile {t}: last leaf {} but block {} has hash {}",
                hex::encode(got),
                n - 1,
                hex::encode(want)
            )));
        }
    }
    match ledger.latest_checkpoint().await? {
        None if n == 0 => {}
        None => {
            return Err(BatcherError::Integrity(format!(
                "{n} blocks but no checkpoint"
            )));
        }
        Some(cp) if cp.size != n => {
            return Err(BatcherError::Integrity(format!(
                "latest checkpoint has size {} but there are {n} blocks",
                cp.size
            )));
        }
        Some(cp) => {
            check_checkpoint(&cp, Some(log.root()), n, sealer, &[])?;
        }
    }
    Ok(log)
}

/// The block log of `n` blocks from its stored tiles (the right edge: one
/// tile per level), first computing the tiles of blocks sealed before
/// tiles existed, `CATCH_UP_BATCH` blocks per transaction.
async fn tiled_log(
    session: &mut LeaderSession,
    suite: HashSuite,
    n: u64,
) -> Result<BlockLog, BatcherError> {
    let have = session.log_tiles_size().await?;
    if have > n {
        return Err(BatcherError::Integrity(format!(
            "the block-log tiles cover {have} blocks but there are {n}"
        )));
    }
    let edge_tiles = tiles::edge_tiles(have);
    let set = session.log_tiles(&edge_tiles).await?;
    metrics::TILES_READ.inc_by(set.len() as u64);
    let edge = TileEdge::from_tiles(suite, &set, have)
        .map_err(|e| BatcherError::Integrity(format!("block-log tiles: {e}")))?;
    let mut log = BlockLog::from_edge(edge);
    if have < n {
        tracing::info!(
            from = have,
            to = n,
            "computing the block-log tiles of blocks sealed before tiles"
        );
        let mut at = have;
        while at < n {
            let to = (at + CATCH_UP_BATCH).min(n);
            let hashes = session.block_hashes_between(at, to).await?;
            let changed = log.extend(&hashes);
            session.write_log_tiles(&changed).await?;
            metrics::TILES_WRITTEN.inc_by(changed.len() as u64);
            at = to;
            tracing::info!(done = at, of = n, "block-log tiles");
        }
    }
    Ok(log)
}

/// A block row against its own header, its height and its predecessor.
pub(crate) fn check_block_header(
    b: &StoredBlock,
    suite: HashSuite,
    expected_height: u64,
    prev: &anchord_core::Digest32,
) -> Result<(), BatcherError> {
    let h = &b.header;
    let fail = |s: String| Err(BatcherError::Integrity(format!("block {}: {s}", h.height)));
    if h.height != expected_height {
        return fail(format!("expected height {expected_height}"));
    }
    if h.suite != suite {
        return fail(format!(
            "hash suite {} but the deployment uses {suite}",
            h.suite
        ));
    }
    if let Err(e) = h.validate() {
        return fail(e.to_string());
    }
    let recomputed = h.hash();
    if recomputed != b.block_hash {
        return fail(format!(
            "stored block hash {} but the header recomputes {}",
            hex::encode(b.block_hash),
            hex::encode(recomputed)
        ));
    }
    if &h.prev_hash != prev {
        return fail(format!(
            "prev_hash {} but block {} has hash {}",
            hex::encode(h.prev_hash),
            h.height.wrapping_sub(1),
            hex::encode(prev)
        ));
    }
    Ok(())
}

/// A stored checkpoint against the block-log root recomputed for its size
/// (`None`: the log has fewer than `cp.size` of its `blocks` blocks): root
/// column, note body, sealer signature, and (when witnesses are given) each
/// witness cosignature present in the note.
pub(crate) fn check_checkpoint(
    cp: &StoredCheckpoint,
    recomputed: Option<Digest32>,
    blocks: u64,
    sealer: &NoteVerifier,
    witnesses: &[NoteVerifier],
) -> Result<Vec<String>, BatcherError> {
    let fail = |s: String| {
        Err(BatcherError::Integrity(format!(
            "checkpoint {}: {s}",
            cp.size
        )))
    };
    let Some(recomputed) = recomputed else {
        return fail(format!("there are only {blocks} blocks"));
    };
    if recomputed != cp.root {
        return fail(format!(
            "stored block-log root {} but the blocks recompute {}",
            hex::encode(cp.root),
            hex::encode(recomputed)
        ));
    }
    let note = match SignedNote::parse(&cp.signed_note) {
        Ok(n) => n,
        Err(e) => return fail(format!("signed note: {e}")),
    };
    let body = match Checkpoint::parse(&note.text) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    if body.size != cp.size || body.root != recomputed || body.origin != cp.origin {
        return fail(format!(
            "the signed note says size {} root {} origin {:?}; expected size {} root {} origin {:?}",
            body.size,
            hex::encode(body.root),
            body.origin,
            cp.size,
            hex::encode(recomputed),
            cp.origin
        ));
    }
    if let Err(e) = note.verify_by(sealer) {
        return fail(format!("sealer signature: {e}"));
    }
    let mut cosigned = Vec::new();
    for w in witnesses {
        match note.verify_by(w) {
            Ok(_) => cosigned.push(w.name.clone()),
            Err(anchord_core::checkpoint::NoteError::MissingSignature { .. }) => {}
            Err(e) => return fail(format!("witness cosignature: {e}")),
        }
    }
    Ok(cosigned)
}

/// Seal until shutdown (`Ok`) or until the lock's connection fails (`Err`,
/// transient: the caller goes back to standby).
pub(crate) async fn seal_loop(
    s: &Sealer,
    session: &mut LeaderSession,
    mut log: BlockLog,
    cosign: &watch::Sender<u64>,
    shutdown: &CancellationToken,
) -> Result<(), BatcherError> {
    let mut tip = session.tip().await?;
    if tip.next_height != log.size() {
        return Err(BatcherError::Integrity(format!(
            "the chain tip moved during the start-up check ({} blocks, expected {})",
            tip.next_height,
            log.size()
        )));
    }
    let poll = (s.interval / 10).clamp(Duration::from_millis(5), Duration::from_millis(100));
    let mut pending_since: Option<Instant> = None;
    let mut backlog = false;
    let mut backfill = LeafBackfill::start(session).await?;
    loop {
        // Between seals, one bounded step of the level-0 tile back-fill
        // (blocks sealed before schema version 9); sealing waits at most
        // one step.
        if backfill.remaining() && !backlog {
            backfill.step(s.suite, session).await?;
            if shutdown.is_cancelled() {
                return Ok(());
            }
        } else if !backlog {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            }
        } else if shutdown.is_cancelled() {
            return Ok(());
        }
        let head = session.next_seq().await?;
        metrics::LEDGER_ENTRIES.set(head as i64);
        metrics::SEALED_ENTRIES.set(tip.next_seq as i64);
        let pending = head.saturating_sub(tip.next_seq);
        if pending == 0 {
            pending_since = None;
            backlog = false;
            continue;
        }
        let since = *pending_since.get_or_insert_with(Instant::now);
        if pending < s.max_entries && since.elapsed() < s.interval {
            backlog = false;
            continue;
        }
        let n = pending.min(s.max_entries);
        (tip, log) = seal_one(s, session, &log, tip, n).await?;
        cosign.send_replace(tip.next_height);
        backlog = pending > n;
        pending_since = backlog.then(Instant::now);
    }
}

/// Entries whose level-0 tiles one back-fill step writes (whole blocks, at
/// least one; one transaction).
const BACKFILL_ENTRIES: u64 = 65_536;

/// The back-fill of level-0 tiles for blocks sealed before schema version
/// 9: a cursor over heights, one bounded step at a time between seals.
/// Each block's stored leaf hashes are checked against its Merkle root
/// before its tiles are written (a tile is immutable once written).
pub(crate) struct LeafBackfill {
    from: u64,
    blocks_left: u64,
    entries_left: u64,
    done: bool,
}

impl LeafBackfill {
    pub(crate) async fn start(session: &LeaderSession) -> Result<Self, BatcherError> {
        let (blocks_left, entries_left) = session.leaf_tile_backlog().await?;
        metrics::LEAF_TILE_BACKLOG.set(blocks_left as i64);
        if blocks_left > 0 {
            tracing::info!(
                blocks = blocks_left,
                entries = entries_left,
                "back-filling the level-0 tiles of blocks sealed before schema version 9"
            );
        }
        Ok(LeafBackfill {
            from: 0,
            blocks_left,
            entries_left,
            done: blocks_left == 0,
        })
    }

    pub(crate) fn remaining(&self) -> bool {
        !self.done
    }

    /// Write the level-0 tiles of the next blocks without them, up to
    /// [`BACKFILL_ENTRIES`] entries (at least one block).
    pub(crate) async fn step(
        &mut self,
        suite: HashSuite,
        session: &mut LeaderSession,
    ) -> Result<(), BatcherError> {
        let started = Instant::now();
        let blocks = session.blocks_without_leaf_tiles(self.from, 256).await?;
        let mut rows = Vec::new();
        let (mut entries, mut tiles_n, mut examined) = (0u64, 0u64, 0u64);
        let mut last = None;
        for b in &blocks {
            let h = &b.header;
            if last.is_some() && entries + h.leaf_count > BACKFILL_ENTRIES {
                break;
            }
            last = Some(h.height);
            examined += 1;
            entries += h.leaf_count;
            // Tiles are immutable once written: only leaves that give the
            // block's Merkle root become tiles. A block whose stored leaves
            // do not is left without tiles (its proofs fail the verifier's
            // root check as before, `anchord audit` names it) and sealing
            // goes on: an old inconsistency must not stop new seals.
            let leaves = match session.leaf_hashes(h.first_seq, h.last_seq + 1).await {
                Ok(l) => l,
                Err(LedgerError::Corrupt(e)) => {
                    tracing::error!(height = h.height, error = %e, "level-0 back-fill: the block's leaves are not readable; its tiles are not written (run anchord audit)");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let checked = h
                .check_leaf_count(leaves.len())
                .and_then(|()| h.check_root(merkle::root(suite, &leaves)));
            if let Err(e) = checked {
                tracing::error!(height = h.height, error = %e, "level-0 back-fill: the block's stored leaf hashes do not give its header; its tiles are not written (run anchord audit)");
                continue;
            }
            tiles_n += h.leaf_count.div_ceil(tiles::TILE_WIDTH);
            rows.push((h.height, anchord_ledger::leaf_tiles_of(suite, &leaves)));
        }
        let Some(last) = last else {
            self.done = true;
            metrics::LEAF_TILE_BACKLOG.set(0);
            tracing::info!("level-0 tiles: back-fill done");
            return Ok(());
        };
        session.write_leaf_tiles(&rows).await?;
        self.from = last + 1;
        self.blocks_left = self.blocks_left.saturating_sub(examined);
        self.entries_left = self.entries_left.saturating_sub(entries);
        metrics::TILES_WRITTEN.inc_by(tiles_n);
        metrics::LEAF_TILE_BACKLOG.set(self.blocks_left as i64);
        tracing::info!(
            through_height = last,
            blocks = rows.len(),
            entries,
            blocks_left = self.blocks_left,
            entries_left = self.entries_left,
            seconds = started.elapsed().as_secs_f64(),
            "level-0 tiles back-filled"
        );
        Ok(())
    }
}

/// Seal entries `tip.next_seq .. tip.next_seq + n` as block `tip.next_height`.
pub(crate) async fn seal_one(
    s: &Sealer,
    session: &mut LeaderSession,
    log: &BlockLog,
    tip: Tip,
    n: u64,
) -> Result<(Tip, BlockLog), BatcherError> {
    let started = Instant::now();
    let first = tip.next_seq;
    let leaves = session.leaf_hashes(first, first + n).await?;
    // The block's own tree as tiles (level 0 is the evidence rows): its
    // root is the root over the level-1 tile hashes plus the partial tail.
    let all = tiles::build_tiles(s.suite, &leaves);
    let mut set = tiles::TileSet::new();
    for (t, h) in &all {
        set.insert(t.level, t.index, h.clone());
    }
    let merkle_root = tiles::root_from(s.suite, &set, n)
        .map_err(|e| BatcherError::Integrity(format!("block tiles: {e}")))?;
    // Level 0 is stored too (schema version 9), as halves: a proof reads
    // its tile with one index probe instead of up to 256 evidence rows.
    let leaf_tiles = anchord_ledger::leaf_tiles_of(s.suite, &leaves);
    drop((leaves, set));
    let block_tiles: Vec<_> = all.into_iter().filter(|(t, _)| t.level > 0).collect();
    let sealed_at_us = now_us();
    let header = BlockHeader {
        suite: s.suite,
        height: tip.next_height,
        first_seq: first,
        last_seq: first + n - 1,
        leaf_count: n,
        merkle_root,
        prev_hash: tip.prev_hash,
        sealed_at_us,
    };
    let block_hash = header.hash();
    let (next_log, log_tiles) = log.with(block_hash);
    let (size, log_root) = (next_log.size(), next_log.root());
    let tiles_written =
        (block_tiles.len() + log_tiles.len()) as u64 + n.div_ceil(tiles::TILE_WIDTH);
    let body = Checkpoint::new(s.origin.clone(), size, log_root).body();
    let sig = s.signer.sign(&body)?;
    let mut note = SignedNote::new(body);
    note.signatures.push(sig.clone());
    let seal = NewSeal {
        block: StoredBlock { header, block_hash },
        checkpoint: StoredCheckpoint {
            size,
            root: log_root,
            origin: s.origin.clone(),
            signed_note: note.format(),
            created_at_us: sealed_at_us,
            timestamp_token: None,
            final_at_us: (s.quorum == 0).then_some(sealed_at_us),
        },
        sealer_signature: SignatureRow {
            size,
            key_name: sig.name.clone(),
            key_id: sig.key_id,
            role: SignatureRole::Sealer,
            signature: sig.payload.clone(),
            signed_at_us: sealed_at_us,
        },
        log_tiles,
        block_tiles,
        leaf_tiles,
    };
    session.seal(&seal).await?;
    let committed_at_us = now_us();
    metrics::TILES_WRITTEN.inc_by(tiles_written);

    let elapsed = started.elapsed().as_secs_f64();
    metrics::BLOCKS_SEALED.inc();
    metrics::BLOCK_ENTRIES.observe(n as f64);
    metrics::SEAL_SECONDS.observe(elapsed);
    metrics::BLOCK_HEIGHT.set(tip.next_height as i64);
    metrics::CHECKPOINT_SIZE.set(size as i64);
    if s.quorum == 0 {
        metrics::FINAL_CHECKPOINT_SIZE.set(size as i64);
    }
    metrics::SEALED_ENTRIES.set((first + n) as i64);
    if let Ok(Some(received)) = session.received_at(first).await {
        let secs = |at: i64| (at - received).max(0) as f64 / 1e6;
        metrics::TIME_TO_SEALED.observe(secs(sealed_at_us));
        metrics::TIME_TO_CHECKPOINTED.observe(secs(committed_at_us));
        if s.quorum == 0 {
            // Final when written: witnessed at the same instant.
            metrics::TIME_TO_WITNESSED.observe(secs(committed_at_us));
        }
    }
    tracing::info!(
        height = tip.next_height,
        first_seq = first,
        last_seq = first + n - 1,
        entries = n,
        seconds = elapsed,
        "sealed block"
    );
    Ok((
        Tip {
            next_height: tip.next_height + 1,
            next_seq: first + n,
            prev_hash: block_hash,
        },
        next_log,
    ))
}

/// Whether an error means "the lock's connection is gone": back to standby.
pub(crate) fn lost_leadership(e: &BatcherError) -> bool {
    matches!(e, BatcherError::Ledger(l) if l.is_transient())
        || matches!(e, BatcherError::Ledger(LedgerError::Db(d)) if d.is_closed())
}
