//! The leader's identity-filter builder: for each closed ledger partition
//! without one, a Bloom filter of its identities (ledger schema version 10,
//! `anchord_ledger::Ledger::build_identity_filter`). Runs beside the seal
//! loop on its own pooled connection, owned by the leader's term: started
//! with it, cancelled and awaited when it ends.

use std::time::{Duration, Instant};

use anchord_ledger::Ledger;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How often the builder looks for a newly closed partition.
const POLL: Duration = Duration::from_secs(10);
/// The wait after a failed attempt.
const RETRY: Duration = Duration::from_secs(30);

pub(crate) async fn run(ledger: Ledger, stop: CancellationToken) {
    loop {
        // A build streams a whole partition (seconds): shutdown does not
        // wait for it (nothing is stored until its last statement).
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = step(&ledger) => r,
        };
        let wait = match result {
            Ok(true) => Duration::ZERO,
            Ok(false) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "identity filter: build failed; trying again later");
                RETRY
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Build one missing filter; false when none is missing.
pub(crate) async fn step(ledger: &Ledger) -> Result<bool, anchord_ledger::LedgerError> {
    let Some(work) = ledger.identity_filter_work().await? else {
        metrics::IDENTITY_FILTER_BACKLOG.set(0);
        return Ok(false);
    };
    metrics::IDENTITY_FILTER_BACKLOG.set(1);
    let started = Instant::now();
    let keys = ledger.build_identity_filter(work).await?;
    let took = started.elapsed();
    metrics::IDENTITY_FILTERS_BUILT.inc();
    metrics::IDENTITY_FILTER_SECONDS.observe(took.as_secs_f64());
    tracing::info!(
        lo = work.lo,
        hi = work.hi,
        identities = keys,
        seconds = took.as_secs_f64(),
        "identity filter of a closed partition stored"
    );
    Ok(true)
}
