//! Verifier metrics in the `prometheus` default registry (served on the admin
//! listener). `route` is the matched route template (a fixed set, never a raw
//! path) and `status` the response's status class, so labels stay bounded.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    HistogramVec, IntCounterVec, exponential_buckets, histogram_opts, opts, register_histogram_vec,
    register_int_counter_vec,
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
    vec![&*REQUESTS, &*REQUEST_SECONDS, &*TILE_READS]
}

/// Register every verifier metric (so they are exported before traffic;
/// label values come with the first request of each route).
pub fn init() {
    let _ = collectors();
    for (tree, source) in TILE_READ_LABELS {
        TILE_READS.with_label_values(&[tree, source]);
    }
}

/// The label for a request's route: its template, or `unmatched`.
fn route_label(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// Middleware: count and time every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = route_label(&req);
    let start = Instant::now();
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    REQUESTS.with_label_values(&[route.as_str(), class]).inc();
    REQUEST_SECONDS
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    resp
}
