//! Ingest metrics, registered once in the `prometheus` default registry that
//! the admin listener serves. Names follow `docs/metrics.md` (the spec a test
//! checks this module against): counters end in `_total`, units in names, labels from fixed sets
//! (`reason` from [`crate::message::reason::ALL`], `partition` bounded by the
//! topic's partition count).

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::{
    Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, exponential_buckets,
    histogram_opts, opts, register_histogram, register_int_counter, register_int_counter_vec,
    register_int_gauge, register_int_gauge_vec,
};

pub static CONSUMED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_messages_consumed_total",
        "Messages read from the evidence topic (redeliveries included)."
    )
    .expect("metric registers once")
});

pub static ACCEPTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_entries_accepted_total",
        "Entries committed to the ledger with a new sequence number."
    )
    .expect("metric registers once")
});

pub static DUPLICATE: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_entries_duplicate_total",
        "Messages whose (tenant, external id, hash) was already in the ledger."
    )
    .expect("metric registers once")
});

pub static DEAD_LETTERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = register_int_counter_vec!(
        opts!(
            "anchord_ingest_dead_letters_total",
            "Messages recorded as dead letters, by machine-readable reason."
        ),
        &["reason"]
    )
    .expect("metric registers once");
    for r in crate::message::reason::ALL {
        c.with_label_values(&[r]);
    }
    c
});

pub static BATCH_ROWS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "anchord_ingest_batch_rows",
        "Messages per ledger transaction.",
        exponential_buckets(1.0, 4.0, 9).expect("valid buckets")
    ))
    .expect("metric registers once")
});

pub static WRITE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "anchord_ingest_write_seconds",
        "Duration of one successful ledger append transaction.",
        exponential_buckets(0.001, 2.0, 14).expect("valid buckets")
    ))
    .expect("metric registers once")
});

pub static LAG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "anchord_ingest_consumer_lag_messages",
            "High watermark minus the group's committed offset, per assigned partition \
             (from librdkafka statistics, refreshed every few seconds)."
        ),
        &["partition"]
    )
    .expect("metric registers once")
});

/// Buckets shared by every pipeline-latency histogram
/// (`anchord_*_time_to_*_seconds`, in every crate).
pub const PIPELINE_LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

/// Pipeline latency, stage `sequenced`: per accepted entry.
pub static TIME_TO_SEQUENCED: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(histogram_opts!(
        "anchord_ingest_time_to_sequenced_seconds",
        "Ledger commit time minus the message's produced_at (the producer's clock), per \
         accepted entry.",
        PIPELINE_LATENCY_BUCKETS.to_vec()
    ))
    .expect("metric registers once")
});

pub static PAUSED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_ingest_paused",
        "1 while consumption is paused because the ledger cannot keep up or is unreachable."
    )
    .expect("metric registers once")
});

pub static LEDGER_RETRIES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_ledger_retries_total",
        "Ledger appends retried after a transient error."
    )
    .expect("metric registers once")
});

pub static IDENTITY_FILTERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_ingest_identity_filters",
        "Identity filters of closed ledger partitions the writer uses (one per closed partition once the batcher has built it)."
    )
    .expect("metric registers once")
});

pub static IDENTITY_FILTER_MAYBE: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_identity_filter_maybe_total",
        "Identities a closed partition's filter may hold, each probed in that partition's index \
         (false positives, about 0.1% of identities per filter, plus resubmissions)."
    )
    .expect("metric registers once")
});

pub static IDENTITY_UNFILTERED_PROBES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_identity_unfiltered_probes_total",
        "Ranges of closed partitions without an identity filter yet, probed for every identity of a batch under the head lock."
    )
    .expect("metric registers once")
});

/// Batches not written as prepared, by why (`anchord_ledger::PredictionMiss`).
pub static PREDICTION_MISSES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = register_int_counter_vec!(
        opts!(
            "anchord_ingest_prediction_misses_total",
            "Batches the writer prepared against a prediction that did not hold, by reason: \
             state (planned again under the lock, nothing written twice) or identity_taken \
             (an identity predicted fresh was already stored: the transaction rolled back and \
             was written again with every identity looked up)."
        ),
        &["reason"]
    )
    .expect("metric registers once");
    for r in PREDICTION_MISS_REASONS {
        c.with_label_values(&[r]);
    }
    c
});

/// Values of the `reason` label of `anchord_ingest_prediction_misses_total`.
pub const PREDICTION_MISS_REASONS: [&str; 2] = ["state", "identity_taken"];

pub static DEAD_LETTERS_PUBLISHED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_dead_letters_published_total",
        "Dead letters published to the dead-letter topic."
    )
    .expect("metric registers once")
});

pub static ASSIGNED_PARTITIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_ingest_assigned_partitions",
        "Partitions of the evidence topic assigned to this instance by the consumer group."
    )
    .expect("metric registers once")
});

pub static GROUP_REJOINS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_group_rejoins_total",
        "Times this instance left and rejoined the consumer group as a new member because \
         partitions it does not own had waiting evidence and no progress for \
         ingest.assignment_grace_ms."
    )
    .expect("metric registers once")
});

pub static ASSIGNMENT_STUCK: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_ingest_assignment_stuck",
        "1 while partitions this instance does not own have had waiting evidence and no \
         progress for longer than ingest.assignment_grace_ms (readiness fails meanwhile)."
    )
    .expect("metric registers once")
});

pub static BROKERS_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_ingest_brokers_up",
        "Broker connections in state UP (librdkafka statistics, refreshed every few \
         seconds); 0 while no broker of the cluster can be reached."
    )
    .expect("metric registers once")
});

/// Every ingest metric, registering each on first use.
pub fn collectors() -> Vec<&'static dyn Collector> {
    vec![
        &*CONSUMED,
        &*ACCEPTED,
        &*DUPLICATE,
        &*DEAD_LETTERS,
        &*BATCH_ROWS,
        &*WRITE_SECONDS,
        &*TIME_TO_SEQUENCED,
        &*LAG,
        &*PAUSED,
        &*LEDGER_RETRIES,
        &*PREDICTION_MISSES,
        &*IDENTITY_FILTERS,
        &*IDENTITY_FILTER_MAYBE,
        &*IDENTITY_UNFILTERED_PROBES,
        &*DEAD_LETTERS_PUBLISHED,
        &*ASSIGNED_PARTITIONS,
        &*GROUP_REJOINS,
        &*ASSIGNMENT_STUCK,
        &*BROKERS_UP,
    ]
}

/// Register everything up front so that `/metrics` shows every series from
/// the start (zeros included; `partition` values come with assignments).
pub fn init() {
    let _ = collectors();
}
