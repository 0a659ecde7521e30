//! The leader's filter builder: for each closed ledger partition, Bloom
//! filters of its identities and of its evidence hashes (ledger schema
//! versions 10 and 11, `anchord_ledger::Ledger::build_filter`). Runs beside the seal
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
                tracing::warn!(error = %e, "partition filter: build failed; trying again later");
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
    let Some(work) = ledger.filter_work().await? else {
        metrics::PARTITION_FILTER_BACKLOG.set(0);
        return Ok(false);
    };
    metrics::PARTITION_FILTER_BACKLOG.set(1);
    let started = Instant::now();
    let keys = ledger.build_filter(work).await?;
    let took = started.elapsed();
    let label = match work.kind {
        anchord_core::filter::FilterKind::Identity => "identity",
        anchord_core::filter::FilterKind::EvidenceHash => "evidence_hash",
    };
    metrics::PARTITION_FILTERS_BUILT
        .with_label_values(&[label])
        .inc();
    metrics::PARTITION_FILTER_SECONDS.observe(took.as_secs_f64());
    tracing::info!(
        kind = work.kind.name(),
        lo = work.lo,
        hi = work.hi,
        keys,
        seconds = took.as_secs_f64(),
        "filter of a closed partition stored"
    );
    Ok(true)
}
