//! Where the writer's time goes, summed since the process started: the
//! preparing and committing stages' busy and idle time and the phases of the
//! ledger transaction. Read by `bench/ingest` to show whether PostgreSQL or
//! the writer is the limit; deliberately not exported as metrics (the
//! operator-facing figures are `anchord_ingest_write_seconds` and
//! `anchord_ingest_prediction_misses_total`, `docs/metrics.md`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anchord_ledger::{Committed, PreparedAppend};

macro_rules! counters {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        $($(#[$m])* pub static $name: AtomicU64 = AtomicU64::new(0);)*
        /// Every counter, by name, in nanoseconds (counts for `*_BATCHES`,
        /// `*_HANDOVERS` and `*_MESSAGES`).
        pub fn snapshot() -> Vec<(&'static str, u64)> {
            vec![$((stringify!($name), $name.load(Ordering::Relaxed))),*]
        }
    };
}

counters! {
    /// Batches the consumer handed over full (`batch_max` messages).
    FULL_HANDOVERS,
    /// Batches the consumer handed over before they were full: the writer
    /// had room and the batch's first message was `batch_linger_ms` old
    /// (the writer was waiting for the consumer), or a drain.
    PARTIAL_HANDOVERS,
    /// Messages in the batches handed over.
    HANDED_OVER_MESSAGES,
    /// Batches prepared.
    PREPARED_BATCHES,
    /// Batches prepared with their identities looked up among committed
    /// entries (the others left it to the unique index).
    LOOKED_UP_BATCHES,
    /// Preparing stage: whole `prepare_append` calls.
    PREPARE_BUSY,
    /// ... of which the head, positions and topic ids.
    PREPARE_STATE,
    /// ... of which the identity lookup.
    PREPARE_LOOKUP,
    /// ... of which identity keys, plan, leaf hashes and COPY data.
    PREPARE_PLAN,
    /// Preparing stage blocked handing a batch to the committing stage.
    PREPARE_BLOCKED,
    /// Batches committed.
    COMMITTED_BATCHES,
    /// Batches whose transaction began with the previous batch's `COMMIT`
    /// (`Ledger::commit_prepared_chained`).
    CHAINED_BATCHES,
    /// Committing stage: whole `commit_prepared` calls.
    COMMIT_BUSY,
    /// Committing stage waiting for a prepared batch.
    COMMIT_IDLE,
    /// ... connection, BEGIN, head lock, positions.
    COMMIT_LOCK,
    /// ... checking the prediction (and planning again).
    COMMIT_VERIFY,
    /// ... COPY evidence_identity.
    COMMIT_COPY_IDENTITY,
    /// ... COPY evidence.
    COMMIT_COPY_EVIDENCE,
    /// ... head, dead letters, positions.
    COMMIT_BOOKKEEPING,
    /// ... COMMIT.
    COMMIT_COMMIT,
    /// ... attempts rolled back on a stored identity.
    COMMIT_WASTED,
}

pub fn add(c: &AtomicU64, d: Duration) {
    c.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

/// A batch of `len` messages handed from the consumer to the writer.
pub(crate) fn handed_over(len: usize, batch_max: usize) {
    if len >= batch_max {
        FULL_HANDOVERS.fetch_add(1, Ordering::Relaxed);
    } else {
        PARTIAL_HANDOVERS.fetch_add(1, Ordering::Relaxed);
    }
    HANDED_OVER_MESSAGES.fetch_add(len as u64, Ordering::Relaxed);
}

pub(crate) fn prepared(total: Duration, p: &PreparedAppend) {
    let t = p.timings();
    PREPARED_BATCHES.fetch_add(1, Ordering::Relaxed);
    if p.looked_up() {
        LOOKED_UP_BATCHES.fetch_add(1, Ordering::Relaxed);
    }
    add(&PREPARE_BUSY, total);
    add(&PREPARE_STATE, t.state);
    add(&PREPARE_LOOKUP, t.lookup);
    add(&PREPARE_PLAN, t.plan);
    let (check, filters) = p.identity_check();
    crate::metrics::IDENTITY_FILTERS.set(filters as i64);
    crate::metrics::IDENTITY_FILTER_MAYBE.inc_by(check.maybe);
}

pub(crate) fn committed(total: Duration, c: &Committed) {
    let t = c.timings;
    COMMITTED_BATCHES.fetch_add(1, Ordering::Relaxed);
    add(&COMMIT_BUSY, total);
    add(&COMMIT_LOCK, t.lock);
    add(&COMMIT_VERIFY, t.verify);
    add(&COMMIT_COPY_IDENTITY, t.copy_identity);
    add(&COMMIT_COPY_EVIDENCE, t.copy_evidence);
    add(&COMMIT_BOOKKEEPING, t.bookkeeping);
    add(&COMMIT_COMMIT, t.commit);
    add(&COMMIT_WASTED, t.wasted);
    crate::metrics::IDENTITY_UNFILTERED_PROBES.inc_by(c.unfiltered_ranges as u64);
}
