//! The batcher stage: seal ledger entries into signed blocks, keep the block
//! log, publish C2SP checkpoints, collect witness cosignatures and RFC 3161
//! timestamps (`docs/checkpoint-format.md`, `docs/witness-protocol.md`).
//!
//! Lifecycle (Tessera's words): ingest *sequences*; the batcher *integrates*
//! (block Merkle roots, block log) and *publishes* (signed checkpoints).
//!
//! - Exactly one sealer: a session-level PostgreSQL advisory lock held on a
//!   dedicated connection; every seal runs on that connection, so losing it
//!   stops sealing at once. Standbys poll the lock.
//! - On taking the lead the stored chain, the latest block's root (from the
//!   entries themselves) and the block-log root are recomputed; any mismatch
//!   stops the process with both values.
//! - [`audit`] re-verifies everything; [`witness`] is the cosigning service
//!   other consortium members run.

use anchord_core::HashSuite;
use anchord_core::checkpoint::{ALG_ED25519, NoteError, NoteVerifier};
use anchord_ledger::{Ledger, LedgerError};
use tokio_util::sync::CancellationToken;

pub mod audit;
pub mod blocklog;
pub mod config;
pub mod cosign;
mod filters;
pub mod keys;
pub mod metrics;
mod sealer;
pub mod tsa;
pub mod witness;

pub use config::{BatcherConfig, WitnessConfig, WitnessPeer, WitnessedLog};

/// Everything that stops the batcher, the witness or an audit.
#[derive(Debug, thiserror::Error)]
pub enum BatcherError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("key: {0}")]
    Key(String),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("note: {0}")]
    Note(#[from] NoteError),
    #[error("timestamp authority: {0}")]
    Tsa(String),
    #[error("{0}")]
    Io(String),
}

/// Microseconds since the Unix epoch, now.
/// The batcher's clock reading, in core's representation.
pub(crate) fn now_us() -> i64 {
    anchord_core::time::unix_micros(std::time::SystemTime::now())
}

/// The sealer's verifier: `sealer_vkey` if configured, else derived from
/// the signing key file.
pub fn sealer_verifier(config: &BatcherConfig) -> Result<NoteVerifier, BatcherError> {
    if let Some(v) = &config.sealer_vkey {
        return NoteVerifier::parse(v)
            .map_err(|e| BatcherError::Config(format!("batcher.sealer_vkey: {e}")));
    }
    let path = config.signing_key.as_ref().ok_or_else(|| {
        BatcherError::Config("batcher.sealer_vkey or batcher.signing_key is required".into())
    })?;
    Ok(keys::load_signer(path, ALG_ED25519)?.verifier())
}

/// Run the batcher until `shutdown`: stand by until this process holds the
/// sealer lock, check the stored state, seal; lose the lock's connection and
/// it goes back to standing by.
pub async fn run(
    config: BatcherConfig,
    suite: HashSuite,
    ledger: Ledger,
    shutdown: CancellationToken,
) -> Result<(), BatcherError> {
    config.validate()?;
    let key_path = config
        .signing_key
        .as_ref()
        .ok_or_else(|| BatcherError::Config("batcher.signing_key is required to seal".into()))?;
    let signer = keys::load_signer(key_path, ALG_ED25519)?;
    let witnesses = config.witness_verifiers()?;
    let tsa = match (&config.tsa_url, &config.tsa_cert) {
        (Some(url), Some(cert)) => Some(tsa::Tsa::new(url, cert, config.request_timeout())?),
        _ => None,
    };
    // Witnesses are reached only at their configured addresses (no
    // redirects, no proxies, never a metadata address: anchord-egress).
    let witness_urls: Vec<&str> = config.witnesses.iter().map(|w| w.url.as_str()).collect();
    let http = anchord_egress::Policy::pinned_client(
        &witness_urls,
        "batcher.witnesses",
        config.request_timeout(),
        config.request_timeout(),
    )
    .map_err(|e| BatcherError::Config(format!("batcher.witnesses: {e}")))?;
    let s = sealer::Sealer {
        suite,
        origin: config.origin.clone(),
        max_entries: config.block_max_entries,
        interval: config.block_interval(),
        signer: signer.clone(),
        quorum: config.effective_quorum(),
    };
    tracing::info!(vkey = %signer.verifier().vkey(), origin = %s.origin, "batcher starting");
    metrics::register();
    metrics::IS_LEADER.set(0);
    loop {
        let Some(mut session) = sealer::acquire(&ledger, config.standby_poll(), &shutdown).await?
        else {
            return Ok(());
        };
        metrics::IS_LEADER.set(1);
        tracing::info!("holding the sealer lock; checking stored state");
        let log = sealer::startup_check(&ledger, &mut session, suite, &signer.verifier()).await?;
        metrics::BLOCK_HEIGHT.set(log.size() as i64 - 1);
        metrics::CHECKPOINT_SIZE.set(log.size() as i64);
        tracing::info!(blocks = log.size(), root = %hex::encode(log.root()), "stored state verified; sealing");
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let cosign_stop = shutdown.child_token();
        let cosigner = cosign::Cosigner {
            ledger: ledger.clone(),
            suite,
            peers: config
                .witnesses
                .iter()
                .zip(&witnesses)
                .map(|(c, v)| cosign::Peer {
                    config: c.clone(),
                    verifier: v.clone(),
                    known_size: 0,
                })
                .collect(),
            quorum: s.quorum,
            http: http.clone(),
            attempts: config.witness_attempts,
            tsa: tsa.clone(),
        };
        let cosign_task = tokio::spawn(cosigner.run(rx, cosign_stop.clone()));
        // Owned by this term like the cosigner: cancelled and awaited below.
        let filter_task = tokio::spawn(filters::run(ledger.clone(), cosign_stop.clone()));
        if let Some(cp) = ledger.latest_unfinal_checkpoint().await? {
            tx.send_replace(cp.size);
        } else if tsa.is_some()
            && let Some(cp) = ledger.latest_checkpoint().await?
            && cp.timestamp_token.is_none()
        {
            tx.send_replace(cp.size);
        }
        let result = sealer::seal_loop(&s, &mut session, log, &tx, &shutdown).await;
        cosign_stop.cancel();
        let _ = cosign_task.await;
        let _ = filter_task.await;
        metrics::IS_LEADER.set(0);
        drop(session);
        match result {
            Ok(()) => return Ok(()),
            Err(e) if sealer::lost_leadership(&e) => {
                tracing::warn!(error = %e, "lost the sealer lock's connection; standing by");
            }
            Err(e) => return Err(e),
        }
    }
}

/// The RFC 9162 consistency proof of the block log from `size1` to `size2`
/// (`size2` sealed), from the O(log n) stored tiles it needs, in one read.
pub async fn consistency_proof(
    ledger: &Ledger,
    suite: HashSuite,
    size1: u64,
    size2: u64,
) -> Result<Vec<anchord_core::Digest32>, BatcherError> {
    let bad = |e: anchord_core::tiles::TileError| {
        BatcherError::Integrity(format!("block-log tiles: {e}"))
    };
    let need = anchord_core::tiles::consistency_tiles(size1, size2).map_err(bad)?;
    let set = ledger.log_tiles(&need).await?;
    metrics::TILES_READ.inc_by(set.len() as u64);
    anchord_core::tiles::consistency_proof_from(suite, &set, size1, size2).map_err(bad)
}

/// Build and store one missing filter of a closed ledger partition (what
/// the leader does in the background); false when none is missing. For
/// tools and benchmarks.
pub async fn build_partition_filter_once(ledger: &Ledger) -> Result<bool, BatcherError> {
    Ok(filters::step(ledger).await?)
}

/// What [`seal_once`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SealReport {
    pub height: u64,
    pub entries: u64,
    /// Wall time of the seal itself: read leaf hashes, Merkle root, header,
    /// block-log root, sign, commit.
    pub seconds: f64,
}

/// Take the sealer lock, run the start-up check and seal one block of up to
/// `block_max_entries` pending entries (`None` if nothing is pending or
/// another batcher leads). For tools and benchmarks; no witnesses asked.
pub async fn seal_once(
    config: &BatcherConfig,
    suite: HashSuite,
    ledger: &Ledger,
) -> Result<Option<SealReport>, BatcherError> {
    config.validate()?;
    let key_path = config
        .signing_key
        .as_ref()
        .ok_or_else(|| BatcherError::Config("batcher.signing_key is required to seal".into()))?;
    let signer = keys::load_signer(key_path, ALG_ED25519)?;
    let mut session = ledger.leader_session().await?;
    if !session.try_acquire().await? {
        return Ok(None);
    }
    let log = sealer::startup_check(ledger, &mut session, suite, &signer.verifier()).await?;
    let s = sealer::Sealer {
        suite,
        origin: config.origin.clone(),
        max_entries: config.block_max_entries,
        interval: config.block_interval(),
        signer,
        quorum: config.effective_quorum(),
    };
    let tip = session.tip().await?;
    let pending = session.next_seq().await?.saturating_sub(tip.next_seq);
    if pending == 0 {
        session.release().await?;
        return Ok(None);
    }
    let n = pending.min(s.max_entries);
    let started = std::time::Instant::now();
    sealer::seal_one(&s, &mut session, &log, tip, n).await?;
    session.release().await?;
    Ok(Some(SealReport {
        height: tip.next_height,
        entries: n,
        seconds: started.elapsed().as_secs_f64(),
    }))
}
