//! Prometheus metrics (default registry). Counters end in `_total`, units are
//! in the names, label values come from fixed sets.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, register_histogram,
    register_int_counter, register_int_counter_vec, register_int_gauge,
};

fn counter(name: &str, help: &str) -> IntCounter {
    register_int_counter!(name, help).expect("metric registers once")
}
fn gauge(name: &str, help: &str) -> IntGauge {
    register_int_gauge!(name, help).expect("metric registers once")
}
fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    register_histogram!(HistogramOpts::new(name, help).buckets(buckets))
        .expect("metric registers once")
}
fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register_int_counter_vec!(Opts::new(name, help), labels).expect("metric registers once")
}

pub static BLOCKS_SEALED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "anchord_batcher_blocks_sealed_total",
        "Blocks sealed by this process.",
    )
});
pub static BLOCK_ENTRIES: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_block_entries",
        "Entries per sealed block.",
        prometheus::exponential_buckets(1.0, 4.0, 11).expect("valid buckets"),
    )
});
pub static SEAL_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_seal_seconds",
        "Time to seal one block: read leaf hashes, Merkle root, sign, commit.",
        prometheus::exponential_buckets(0.001, 2.0, 14).expect("valid buckets"),
    )
});
pub static TIME_TO_SEALED: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_time_to_sealed_seconds",
        "Seal time minus the received time of the block's first entry.",
        prometheus::exponential_buckets(0.01, 2.0, 14).expect("valid buckets"),
    )
});
pub static BLOCK_HEIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_block_height",
        "Height of the last block sealed or verified at start.",
    )
});
pub static CHECKPOINT_SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_checkpoint_size",
        "Size of the latest checkpoint of the block log.",
    )
});
pub static FINAL_CHECKPOINT_SIZE: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_final_checkpoint_size",
        "Size of the latest checkpoint with its witness quorum.",
    )
});
pub static IS_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_is_leader",
        "1 while this process holds the sealer lock.",
    )
});
/// `result`: ok, conflict, rejected, error.
pub static WITNESS_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_batcher_witness_requests_total",
        "add-checkpoint requests to witnesses, by result.",
        &["result"],
    )
});
/// `result`: ok, error.
pub static TSA_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_batcher_tsa_requests_total",
        "RFC 3161 timestamp requests, by result.",
        &["result"],
    )
});
/// `status`: the HTTP status class answered (200, 400, 403, 404, 409, 422, 500).
pub static WITNESS_SERVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_witness_add_checkpoint_requests_total",
        "add-checkpoint requests served by this witness, by status code.",
        &["status"],
    )
});
pub static WITNESS_COSIGNED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "anchord_witness_cosignatures_total",
        "Checkpoints this witness cosigned.",
    )
});
