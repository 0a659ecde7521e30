//! Prometheus metrics (default registry). Counters end in `_total`, units
//! are in the names; the `target` label takes configured target names
//! (bounded by the configuration), `class` a fixed set.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, register_histogram_vec,
    register_int_counter_vec, register_int_gauge_vec,
};

/// Buckets shared by every pipeline-latency histogram
/// (`anchord_*_time_to_*_seconds`, in every crate).
pub const PIPELINE_LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];
/// Values of `anchord_relay_failures_total{class}`.
pub const FAILURE_CLASSES: &[&str] = &["unavailable", "ambiguous", "permanent"];

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register_int_counter_vec!(Opts::new(name, help), labels).expect("metric registers once")
}
fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register_int_gauge_vec!(Opts::new(name, help), labels).expect("metric registers once")
}

pub static SUBMISSIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_submissions_total",
        "Anchoring transactions sent (first sends and resends).",
        &["target"],
    )
});
pub static CONFIRMATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_confirmations_total",
        "Anchors confirmed and recorded.",
        &["target"],
    )
});
pub static COVERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_covered_checkpoints_total",
        "Checkpoints recorded as covered by a later anchor (coalescing).",
        &["target"],
    )
});
pub static RETRIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_retries_total",
        "Jobs scheduled for another attempt after a retriable failure.",
        &["target"],
    )
});
pub static FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_failures_total",
        "Failed target requests by class (unavailable, ambiguous, permanent).",
        &["target", "class"],
    )
});
pub static LOOKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_lookups_total",
        "Target lookups made before a resubmission or while awaiting confirmation.",
        &["target"],
    )
});
pub static BACKLOG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "anchord_relay_backlog_checkpoints",
        "Final checkpoints neither anchored nor covered by a live anchor on the target (computed \
         from the ledger at every tick; includes checkpoints whose anchor was lost).",
        &["target"],
    )
});
pub static BREAKER: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "anchord_relay_breaker_state",
        "Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
        &["target"],
    )
});
pub static SEAL_TO_ANCHOR: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        HistogramOpts::new(
            "anchord_relay_seal_to_anchor_seconds",
            "Time from a checkpoint's creation to its confirmed anchor being recorded."
        )
        .buckets(vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0
        ]),
        &["target"]
    )
    .expect("metric registers once")
});
/// Pipeline latency, stage `anchored`, per target.
pub static TIME_TO_ANCHORED: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        HistogramOpts::new(
            "anchord_relay_time_to_anchored_seconds",
            "Confirmed anchor recorded minus the ledger received time of the first entry of \
             the anchored checkpoint's newest block."
        )
        .buckets(PIPELINE_LATENCY_BUCKETS.to_vec()),
        &["target"]
    )
    .expect("metric registers once")
});
pub static ANCHORED_SIZE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "anchord_relay_anchored_checkpoint_size",
        "Size of the newest checkpoint with a live anchor on the target (read from the ledger \
         at every tick; it goes down when an anchor is lost).",
        &["target"],
    )
});

pub static ANCHORS_LOST: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_anchors_lost_total",
        "Recorded anchors found no longer on their chain (reorganised away, chain reset) and \
         marked lost; their checkpoints are anchored again.",
        &["target"],
    )
});
pub static CHAIN_RESETS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_chain_resets_total",
        "Times the target was found serving another chain (another genesis block or chain id).",
        &["target"],
    )
});
pub static DISCARDED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_discarded_submissions_total",
        "Recorded submissions signed for another chain than the target's, discarded unsent.",
        &["target"],
    )
});
pub static REVERIFIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_relay_reverified_total",
        "Recorded anchors looked up again on their chain and found in place.",
        &["target"],
    )
});
pub static UNFINAL: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "anchord_relay_unfinal_anchors",
        "Recorded anchors not yet re-verified at the target's final confirmations.",
        &["target"],
    )
});
pub static REVERIFY_AGE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "anchord_relay_reverify_age_seconds",
        "Seconds since the last complete re-verification pass on the target (chain identity \
         and a batch of receipts).",
        &["target"],
    )
});

/// Every relay metric, registering each on first use.
pub fn collectors() -> Vec<&'static dyn Collector> {
    vec![
        &*SUBMISSIONS,
        &*CONFIRMATIONS,
        &*COVERED,
        &*RETRIES,
        &*FAILURES,
        &*LOOKUPS,
        &*BACKLOG,
        &*BREAKER,
        &*SEAL_TO_ANCHOR,
        &*TIME_TO_ANCHORED,
        &*ANCHORED_SIZE,
        &*ANCHORS_LOST,
        &*CHAIN_RESETS,
        &*DISCARDED,
        &*REVERIFIED,
        &*UNFINAL,
        &*REVERIFY_AGE,
    ]
}

/// Register every relay metric (label values come per target: see
/// [`init_target`]).
pub fn register() {
    let _ = collectors();
}

/// Create every series of target `name` (zeros), so that `/metrics` shows
/// them before the first anchor.
pub fn init_target(name: &str) {
    for c in [
        &*SUBMISSIONS,
        &*CONFIRMATIONS,
        &*COVERED,
        &*RETRIES,
        &*LOOKUPS,
        &*ANCHORS_LOST,
        &*CHAIN_RESETS,
        &*DISCARDED,
        &*REVERIFIED,
    ] {
        c.with_label_values(&[name]);
    }
    for class in FAILURE_CLASSES {
        FAILURES.with_label_values(&[name, class]);
    }
    BACKLOG.with_label_values(&[name]);
    BREAKER.with_label_values(&[name]);
    ANCHORED_SIZE.with_label_values(&[name]);
    UNFINAL.with_label_values(&[name]);
    REVERIFY_AGE.with_label_values(&[name]);
    SEAL_TO_ANCHOR.with_label_values(&[name]);
    TIME_TO_ANCHORED.with_label_values(&[name]);
}
