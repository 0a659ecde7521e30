//! The relay stage: anchor FINAL checkpoints (witness quorum reached) on
//! the external chains a deployment is configured for, record receipts, and
//! never lose or double an anchor however a target behaves.
//!
//! - **Outbox** in PostgreSQL (`anchor_jobs`, one job per checkpoint and
//!   target), claimed with `FOR UPDATE SKIP LOCKED` under a lease, so any
//!   number of relay instances can run.
//! - **No double anchoring:** a job is marked `sending` and its submission
//!   recorded *before* anything is sent; a job found in `sending` or
//!   `submitted` state is looked up on the target (by idempotency key, or by
//!   the recorded transaction hash) before anything is resent, and a resend
//!   reuses the recorded submission.
//! - **Coalescing:** only the newest final checkpoint gets a job; when it is
//!   confirmed, every older checkpoint without an anchor of its own is
//!   recorded in `anchor_coverage` as covered by it (its blocks are in the
//!   anchored block log). After an outage one anchor catches up.
//! - **Retries** classified (unavailable / ambiguous / permanent), with
//!   exponential backoff and jitter, and a circuit breaker per target.
//! - **Finality:** an anchor is recorded after `confirmations` blocks, then
//!   re-verified on its chain (by block hash) until it is final; the chain's
//!   identity (chain id, genesis block hash) is checked all along. A lost
//!   anchor (reorg, chain reset) is marked lost in the ledger — never
//!   deleted — and its checkpoint anchored again; a transaction signed for
//!   a chain that is gone is discarded, never sent to another.

use std::sync::Arc;

use anchord_ledger::{Ledger, LedgerError};
use tokio_util::sync::CancellationToken;

pub mod config;
pub mod evm;
pub mod gateway;
pub mod judicial;
pub mod metrics;
pub mod probe;
pub mod report;
pub mod sim;
pub mod target;
pub mod worker;

pub use config::{RelayConfig, TargetConfig, TargetKind};

/// Everything that stops the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("target {target}: {message}")]
    Target { target: String, message: String },
}

/// Run a worker for every configured target (or only `only`, by name)
/// until `shutdown`. Targets are built (keys loaded, chains checked) before
/// any worker starts.
pub async fn run(
    config: RelayConfig,
    ledger: Ledger,
    only: Option<String>,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    config.validate()?;
    metrics::register();
    let targets: Vec<&TargetConfig> = config
        .targets
        .iter()
        .filter(|t| only.as_ref().is_none_or(|n| *n == t.name))
        .collect();
    if let Some(n) = &only
        && targets.is_empty()
    {
        return Err(RelayError::Config(format!(
            "no target named {n:?} in relay.targets"
        )));
    }
    if targets.is_empty() {
        tracing::warn!("relay.targets is empty: nothing to anchor on; idling until shutdown");
        shutdown.cancelled().await;
        return Ok(());
    }
    // Workers stop on shutdown, or when one of them fails.
    let stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    for t in targets {
        let breaker = worker::Breaker::new(
            config.breaker_failures,
            std::time::Duration::from_millis(config.breaker_open_ms),
            std::time::Duration::from_millis(config.breaker_open_max_ms),
        );
        match t.kind {
            TargetKind::Judicial => {
                let w = worker::Worker {
                    target: Arc::new(judicial::JudicialTarget::new(t)?),
                    ledger: ledger.clone(),
                    config: config.clone(),
                    confirm_poll_ms: t.confirm_poll_ms,
                    finality: config.finality_of(t),
                    breaker,
                };
                tasks.spawn(w.run(stop.clone()));
            }
            TargetKind::Evm => {
                let w = worker::Worker {
                    target: Arc::new(evm::EvmTarget::new(t)?),
                    ledger: ledger.clone(),
                    config: config.clone(),
                    confirm_poll_ms: t.confirm_poll_ms,
                    finality: config.finality_of(t),
                    breaker,
                };
                tasks.spawn(w.run(stop.clone()));
            }
        }
    }
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap_or_else(|e| {
            Err(RelayError::Target {
                target: "?".into(),
                message: format!("worker panicked: {e}"),
            })
        });
        if let Err(e) = r {
            stop.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}
