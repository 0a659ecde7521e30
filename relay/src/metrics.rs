//! Prometheus metrics (default registry). Counters end in `_total`, units
//! are in the names; the `target` label takes configured target names
//! (bounded by the configuration), `class` a fixed set.

use std::sync::LazyLock;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, register_histogram_vec,
    register_int_counter_vec, register_int_gauge_vec,
};

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
        "Final checkpoints newer than the target's newest confirmed anchor.",
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
