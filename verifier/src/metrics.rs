//! Verifier metrics in the `prometheus` default registry (served on the admin
//! listener). `route` is the matched route template (a fixed set, never a raw
//! path) and `status` the response's status class, so labels stay bounded.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    HistogramVec, IntCounterVec, IntGauge, exponential_buckets, histogram_opts, opts,
    register_histogram_vec, register_int_counter_vec, register_int_gauge,
};

pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_verifier_requests_total",
            "HTTP requests answered, by route template and status class."
        ),
        &["route", "status"]
    )
    .expect("metric registers once")
});

pub static REQUEST_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        histogram_opts!(
            "anchord_verifier_request_seconds",
            "Time to answer an HTTP request, by route template.",
            exponential_buckets(0.0001, 2.0, 16).expect("valid buckets")
        ),
        &["route"]
    )
    .expect("metric registers once")
});

pub static TILE_READS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_verifier_tile_reads_total",
            "Tiles read for proofs and the tlog-tiles API, by tree and source."
        ),
        &["tree", "source"]
    )
    .expect("metric registers once")
});

pub static LEDGER_QUERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_verifier_ledger_queries_total",
            "Statements the prover sent to PostgreSQL, by what they read."
        ),
        &["query"]
    )
    .expect("metric registers once")
});

/// Values of `anchord_verifier_ledger_queries_total{query}`.
pub const LEDGER_QUERY_LABELS: &[&str] = &[
    "proof",
    "block",
    "block_tiles",
    "leaves",
    "log_tiles",
    "anchors",
    "checkpoint",
    "refresh",
];

pub static BUNDLE_CACHE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_verifier_bundle_cache_lookups_total",
            "Bundle cache lookups: hit, miss, or stale (cached before a new checkpoint or anchor)."
        ),
        &["result"]
    )
    .expect("metric registers once")
});

/// `BUNDLE_CACHE`'s three series, resolved once (the warm path counts
/// without hashing labels).
pub static BUNDLE_CACHE_RESULTS: LazyLock<[prometheus::IntCounter; 3]> =
    LazyLock::new(|| ["hit", "miss", "stale"].map(|r| BUNDLE_CACHE.with_label_values(&[r])));

pub static BUNDLE_CACHE_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "anchord_verifier_bundle_cache_bytes",
        "Weight of the bundle cache (bytes, as bounded by verifier.bundle_cache_bytes)."
    ))
    .expect("metric registers once")
});

pub static BUNDLE_CACHE_ENTRIES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(opts!(
        "anchord_verifier_bundle_cache_entries",
        "Bundles in the bundle cache."
    ))
    .expect("metric registers once")
});

pub static INVALIDATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_verifier_cache_invalidations_total",
            "Times cached bundles and views were invalidated, by cause: a new or changed latest checkpoint, changed anchors."
        ),
        &["cause"]
    )
    .expect("metric registers once")
});

/// Values of `anchord_verifier_tile_reads_total{tree, source}`.
pub const TILE_READ_LABELS: &[(&str, &str)] = &[
    ("log", "cache"),
    ("log", "db"),
    ("block", "cache"),
    ("block", "db"),
    ("block", "level0"),
];

/// Every verifier metric, registering each on first use.
pub fn collectors() -> Vec<&'static dyn prometheus::core::Collector> {
    vec![
        &*REQUESTS,
        &*REQUEST_SECONDS,
        &*TILE_READS,
        &*LEDGER_QUERIES,
        &*BUNDLE_CACHE,
        &*BUNDLE_CACHE_BYTES,
        &*BUNDLE_CACHE_ENTRIES,
        &*INVALIDATIONS,
        &*PROOF_BATCH_SIZE,
        &*PROOF_BATCHES_RUNNING,
    ]
}

/// Register every verifier metric (so they are exported before traffic;
/// label values come with the first request of each route).
pub fn init() {
    let _ = collectors();
    for (tree, source) in TILE_READ_LABELS {
        TILE_READS.with_label_values(&[tree, source]);
    }
    for q in LEDGER_QUERY_LABELS {
        LEDGER_QUERIES.with_label_values(&[q]);
    }
    for r in ["hit", "miss", "stale"] {
        BUNDLE_CACHE.with_label_values(&[r]);
    }
    for c in ["checkpoint", "anchors"] {
        INVALIDATIONS.with_label_values(&[c]);
    }
}

/// Middleware: count and time every request.
pub async fn track(req: Request, next: Next) -> Response {
    // The matched template (a shared string: no copy per request).
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let start = Instant::now();
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    REQUESTS.with_label_values(&[route, class]).inc();
    REQUEST_SECONDS
        .with_label_values(&[route])
        .observe(start.elapsed().as_secs_f64());
    resp
}

pub static PROOF_BATCH_SIZE: LazyLock<prometheus::Histogram> = LazyLock::new(|| {
    prometheus::register_histogram!(histogram_opts!(
        "anchord_verifier_proof_batch_size",
        "Cold proof lookups answered by one gathered statement.",
        exponential_buckets(1.0, 2.0, 11).expect("valid buckets")
    ))
    .expect("metric registers once")
});

pub static PROOF_BATCHES_RUNNING: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_verifier_proof_batches_running",
        "Gathered proof statements running now (at most verifier.proof_batches_in_flight)."
    )
    .expect("metric registers once")
});
