//! Leadership, the start-up check and the seal loop.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anchord_core::checkpoint::{BlockHeader, Checkpoint, NoteSigner, NoteVerifier, SignedNote};
use anchord_core::{HashSuite, merkle};
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

/// Recompute the chain, the latest block's root (from the entries
/// themselves, not just their stored leaf hashes) and the block-log root,
/// and compare them with what is stored. Returns the verified block log.
pub(crate) async fn startup_check(
    ledger: &Ledger,
    suite: HashSuite,
    sealer: &NoteVerifier,
) -> Result<BlockLog, BatcherError> {
    let blocks = ledger.blocks().await?;
    let mut log = BlockLog::new(suite);
    let mut prev = anchord_core::checkpoint::GENESIS_PREV_HASH;
    for b in &blocks {
        check_block_header(b, suite, log.size(), &prev)?;
        prev = b.block_hash;
        log.push(b.block_hash);
    }
    if let Some(last) = blocks.last() {
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
    }
    let latest = ledger.latest_checkpoint().await?;
    match latest {
        None if blocks.is_empty() => {}
        None => {
            return Err(BatcherError::Integrity(format!(
                "{} blocks but no checkpoint",
                blocks.len()
            )));
        }
        Some(cp) => {
            check_checkpoint(&cp, &log, sealer, &[])?;
        }
    }
    if let Some(cp) = ledger.latest_checkpoint().await?
        && cp.size != log.size()
    {
        return Err(BatcherError::Integrity(format!(
            "latest checkpoint has size {} but there are {} blocks",
            cp.size,
            log.size()
        )));
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

/// A stored checkpoint against the block log recomputed from the blocks:
/// root column, note body, sealer signature, and (when witnesses are given)
/// each witness cosignature present in the note.
pub(crate) fn check_checkpoint(
    cp: &StoredCheckpoint,
    log: &BlockLog,
    sealer: &NoteVerifier,
    witnesses: &[NoteVerifier],
) -> Result<Vec<String>, BatcherError> {
    let fail = |s: String| {
        Err(BatcherError::Integrity(format!(
            "checkpoint {}: {s}",
            cp.size
        )))
    };
    let Some(recomputed) = log.root_at(cp.size) else {
        return fail(format!("there are only {} blocks", log.size()));
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
    log: Arc<RwLock<BlockLog>>,
    cosign: &watch::Sender<u64>,
    shutdown: &CancellationToken,
) -> Result<(), BatcherError> {
    let mut tip = session.tip().await?;
    {
        let log = log.read().expect("block log lock");
        if tip.next_height != log.size() {
            return Err(BatcherError::Integrity(format!(
                "the chain tip moved during the start-up check ({} blocks, expected {})",
                tip.next_height,
                log.size()
            )));
        }
    }
    let poll = (s.interval / 10).clamp(Duration::from_millis(5), Duration::from_millis(100));
    let mut pending_since: Option<Instant> = None;
    let mut backlog = false;
    loop {
        if !backlog {
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
        tip = seal_one(s, session, &log, tip, n).await?;
        cosign.send_replace(tip.next_height);
        backlog = pending > n;
        pending_since = backlog.then(Instant::now);
    }
}

/// Seal entries `tip.next_seq .. tip.next_seq + n` as block `tip.next_height`.
pub(crate) async fn seal_one(
    s: &Sealer,
    session: &mut LeaderSession,
    log: &RwLock<BlockLog>,
    tip: Tip,
    n: u64,
) -> Result<Tip, BatcherError> {
    let started = Instant::now();
    let first = tip.next_seq;
    let leaves = session.leaf_hashes(first, first + n).await?;
    let merkle_root = merkle::root(s.suite, &leaves);
    drop(leaves);
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
    let (size, log_root) = {
        let log = log.read().expect("block log lock");
        (log.size() + 1, log.root_with(block_hash))
    };
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
    };
    session.seal(&seal).await?;
    let committed_at_us = now_us();
    log.write().expect("block log lock").push(block_hash);

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
    Ok(Tip {
        next_height: tip.next_height + 1,
        next_seq: first + n,
        prev_hash: block_hash,
    })
}

/// Whether an error means "the lock's connection is gone": back to standby.
pub(crate) fn lost_leadership(e: &BatcherError) -> bool {
    matches!(e, BatcherError::Ledger(l) if l.is_transient())
        || matches!(e, BatcherError::Ledger(LedgerError::Db(d)) if d.is_closed())
}
