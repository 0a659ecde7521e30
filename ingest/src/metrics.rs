//! Ingest metrics, registered once in the `prometheus` default registry that
//! the admin listener serves. Names follow the instrumentation rules of
//! STYLE.md: counters end in `_total`, units in names, labels from fixed sets
//! (`reason` from [`crate::message::reason::ALL`], `partition` bounded by the
//! topic's partition count).

use std::sync::LazyLock;

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

pub static DEAD_LETTERS_PUBLISHED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "anchord_ingest_dead_letters_published_total",
        "Dead letters published to the dead-letter topic."
    )
    .expect("metric registers once")
});

/// Register everything up front so that `/metrics` shows every series from
/// the start (zeros included).
pub fn init() {
    LazyLock::force(&CONSUMED);
    LazyLock::force(&ACCEPTED);
    LazyLock::force(&DUPLICATE);
    LazyLock::force(&DEAD_LETTERS);
    LazyLock::force(&BATCH_ROWS);
    LazyLock::force(&WRITE_SECONDS);
    LazyLock::force(&LAG);
    LazyLock::force(&PAUSED);
    LazyLock::force(&LEDGER_RETRIES);
    LazyLock::force(&DEAD_LETTERS_PUBLISHED);
}
