//! Prometheus metrics (default registry). Counters end in `_total`, units are
//! in the names, label values come from fixed sets.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, register_histogram,
    register_int_counter, register_int_counter_vec, register_int_gauge,
};

/// Buckets shared by every pipeline-latency histogram (`anchord_*_time_to_*_seconds`
/// in every crate), so that stages compare bucket for bucket.
pub const PIPELINE_LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

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
/// Pipeline latency, stage `sealed`: per block.
pub static TIME_TO_SEALED: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_time_to_sealed_seconds",
        "Block seal time minus the ledger received time of the block's first (oldest) entry.",
        PIPELINE_LATENCY_BUCKETS.to_vec(),
    )
});
/// Pipeline latency, stage `checkpointed`: per checkpoint.
pub static TIME_TO_CHECKPOINTED: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_time_to_checkpointed_seconds",
        "Commit of the signed checkpoint (block, checkpoint and signature in one transaction) \
         minus the received time of its newest block's first entry.",
        PIPELINE_LATENCY_BUCKETS.to_vec(),
    )
});
/// Pipeline latency, stage `witnessed`: per checkpoint made final.
pub static TIME_TO_WITNESSED: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_time_to_witnessed_seconds",
        "Witness quorum recorded (checkpoint final) minus the received time of the \
         checkpoint's newest block's first entry.",
        PIPELINE_LATENCY_BUCKETS.to_vec(),
    )
});
pub static LEDGER_ENTRIES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_ledger_entries",
        "Entries in the ledger (its next sequence number), as last read by the leading sealer.",
    )
});
pub static SEALED_ENTRIES: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_sealed_entries",
        "Entries sealed into blocks (the next sequence number to seal).",
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
/// `result`: [`WITNESS_RESULTS`].
pub static WITNESS_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_batcher_witness_requests_total",
        "add-checkpoint requests to witnesses, by result.",
        &["result"],
    )
});
/// `result`: [`TSA_RESULTS`].
pub static TSA_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "anchord_batcher_tsa_requests_total",
        "RFC 3161 timestamp requests, by result.",
        &["result"],
    )
});
/// `status`: the HTTP status code answered ([`WITNESS_STATUSES`]).
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

pub static TILES_WRITTEN: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "anchord_batcher_tiles_written_total",
        "Tiles written (block-log tiles and block-tree tiles), in sealing transactions and when catching up on blocks sealed before tiles.",
    )
});
pub static LEAF_TILE_BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_leaf_tile_backfill_blocks",
        "Blocks sealed before ledger schema version 9 whose level-0 tiles the leader has still to back-fill (0 when done).",
    )
});
pub static PARTITION_FILTERS_BUILT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = counter_vec(
        "anchord_batcher_partition_filters_built_total",
        "Filters of closed ledger partitions built and stored by this process, by kind (identity, evidence_hash).",
        &["kind"],
    );
    for k in ["identity", "evidence_hash"] {
        c.with_label_values(&[k]);
    }
    c
});
pub static PARTITION_FILTER_BACKLOG: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "anchord_batcher_partition_filter_backlog",
        "1 while a closed ledger partition lacks a filter (its index is then probed for every key: the writer's identity check, proofs), else 0.",
    )
});
pub static PARTITION_FILTER_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    histogram(
        "anchord_batcher_partition_filter_build_seconds",
        "Time to build and store one filter of a closed partition.",
        prometheus::exponential_buckets(0.01, 2.0, 14).expect("valid buckets"),
    )
});
pub static TILES_READ: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "anchord_batcher_tiles_read_total",
        "Block-log tiles read (start-up check, consistency proofs for witnesses).",
    )
});

/// Values of `anchord_batcher_witness_requests_total{result}`.
pub const WITNESS_RESULTS: &[&str] = &["ok", "conflict", "rejected", "error"];
/// Values of `anchord_batcher_tsa_requests_total{result}`.
pub const TSA_RESULTS: &[&str] = &["ok", "error"];
/// Values of `anchord_witness_add_checkpoint_requests_total{status}`.
pub const WITNESS_STATUSES: &[&str] = &["200", "400", "403", "404", "409", "422", "500"];

/// Every batcher (sealer) metric, registering each on first use.
pub fn collectors() -> Vec<&'static dyn Collector> {
    vec![
        &*BLOCKS_SEALED,
        &*BLOCK_ENTRIES,
        &*SEAL_SECONDS,
        &*TIME_TO_SEALED,
        &*TIME_TO_CHECKPOINTED,
        &*TIME_TO_WITNESSED,
        &*LEDGER_ENTRIES,
        &*SEALED_ENTRIES,
        &*BLOCK_HEIGHT,
        &*CHECKPOINT_SIZE,
        &*FINAL_CHECKPOINT_SIZE,
        &*IS_LEADER,
        &*WITNESS_REQUESTS,
        &*TSA_REQUESTS,
        &*TILES_WRITTEN,
        &*TILES_READ,
        &*LEAF_TILE_BACKLOG,
        &*PARTITION_FILTERS_BUILT,
        &*PARTITION_FILTER_BACKLOG,
        &*PARTITION_FILTER_SECONDS,
    ]
}

/// Every witness-service metric (`anchord witness`), registering each.
pub fn witness_collectors() -> Vec<&'static dyn Collector> {
    vec![&*WITNESS_SERVED, &*WITNESS_COSIGNED]
}

/// Register every batcher metric, label values of the fixed sets included,
/// so that `/metrics` shows every series from the start (zeros included).
pub fn register() {
    let _ = collectors();
    for r in WITNESS_RESULTS {
        WITNESS_REQUESTS.with_label_values(&[r]);
    }
    for r in TSA_RESULTS {
        TSA_REQUESTS.with_label_values(&[r]);
    }
}

/// Register every witness-service metric (see [`register`]).
pub fn register_witness() {
    let _ = witness_collectors();
    for s in WITNESS_STATUSES {
        WITNESS_SERVED.with_label_values(&[s]);
    }
}
