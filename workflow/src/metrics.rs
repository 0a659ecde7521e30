//! Workflow metrics in the `prometheus` default registry (served on the
//! admin listener). Labels come from fixed sets: `route` is the matched
//! route template, never a raw path.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, exponential_buckets, histogram_opts,
    opts, register_histogram_vec, register_int_counter, register_int_counter_vec,
    register_int_gauge_vec,
};

pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_requests_total",
            "HTTP requests answered, by route template and status class."
        ),
        &["route", "status"]
    )
    .expect("metric registers once")
});

pub static REQUEST_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        histogram_opts!(
            "anchord_workflow_request_seconds",
            "Time to answer an HTTP request, by route template.",
            exponential_buckets(0.0005, 2.0, 16).expect("valid buckets")
        ),
        &["route"]
    )
    .expect("metric registers once")
});

pub static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_logins_total",
            "Login attempts, by outcome (ok, failed, locked)."
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static UPLOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_uploads_total",
            "File uploads, by outcome (ok, too_large)."
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static UPLOAD_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "anchord_workflow_upload_bytes_total",
        "Bytes of files stored."
    ))
    .expect("metric registers once")
});

pub static EVIDENCE_PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_evidence_messages_total",
            "Evidence messages sent to the evidence topic, by outcome (ok, error)."
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static EVIDENCE_SEALED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(opts!(
        "anchord_workflow_evidence_sealed_total",
        "Workflow submissions found sealed in a ledger block."
    ))
    .expect("metric registers once")
});

pub static AUDIT_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_audit_rows_total",
            "Rows appended to the audit chain, by result (ok, denied, failed)."
        ),
        &["result"]
    )
    .expect("metric registers once")
});

pub static WEBHOOK_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_webhook_attempts_total",
            "Webhook delivery attempts, by outcome (delivered, retry, failed)."
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static MAIL_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_mail_attempts_total",
            "Notification e-mail send attempts, by outcome (sent, retry, failed)."
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static MAIL_PENDING: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    prometheus::register_int_gauge!(opts!(
        "anchord_workflow_mail_pending",
        "Notification e-mails waiting in the outbox (as the mailer last counted)."
    ))
    .expect("metric registers once")
});

pub static SMS_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        opts!(
            "anchord_workflow_sms_attempts_total",
            "SMS send attempts through the SMS gateway, by outcome (sent, retry, failed)."
        ),
        &["outcome"]
    )
    .expect("metric registers once")
});

/// The notification outbox by `channel` (email, sms) and `state` (pending,
/// sent, failed), as the outbox loop last counted (every purge round).
pub static OUTBOX_MESSAGES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "anchord_workflow_outbox_messages",
            "Notification outbox rows by channel (email, sms) and state (pending, sent, failed), as the outbox loop last counted."
        ),
        &["channel", "state"]
    )
    .expect("metric registers once")
});

/// The workflow's background loops, in the order `tasks` names them (the
/// `task` label of [`TASK_UP`]).
pub const TASKS: [&str; 7] = [
    "evidence_publisher",
    "audit_anchoring",
    "webhook_delivery",
    "file_gc",
    "housekeeping",
    "instance_scraper",
    "mailer",
];

/// Labelled by `tasks.rs` as it starts each loop.
pub static TASK_UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        opts!(
            "anchord_workflow_task_up",
            "1 while the background loop runs, 0 once it has stopped (a failure unless the service is stopping)."
        ),
        &["task"]
    )
    .expect("metric registers once")
});

/// Every workflow metric, registering each on first use.
pub fn collectors() -> Vec<&'static dyn prometheus::core::Collector> {
    vec![
        &*REQUESTS,
        &*REQUEST_SECONDS,
        &*LOGINS,
        &*UPLOADS,
        &*UPLOAD_BYTES,
        &*EVIDENCE_PUBLISHED,
        &*EVIDENCE_SEALED,
        &*AUDIT_ROWS,
        &*WEBHOOK_ATTEMPTS,
        &*MAIL_ATTEMPTS,
        &*MAIL_PENDING,
        &*SMS_ATTEMPTS,
        &*OUTBOX_MESSAGES,
        &*TASK_UP,
    ]
}

/// Register every workflow metric and create every fixed label set, so each
/// series is exported (at 0) before the first event: `rate()` and alerts
/// see the first login failure, not only the second.
pub fn init() {
    let _ = collectors();
    for o in ["ok", "failed", "locked"] {
        LOGINS.with_label_values(&[o]);
    }
    for o in ["ok", "too_large"] {
        UPLOADS.with_label_values(&[o]);
    }
    for o in ["ok", "error"] {
        EVIDENCE_PUBLISHED.with_label_values(&[o]);
    }
    for r in ["ok", "denied", "failed"] {
        AUDIT_ROWS.with_label_values(&[r]);
    }
    for o in ["delivered", "retry", "failed"] {
        WEBHOOK_ATTEMPTS.with_label_values(&[o]);
    }
    for o in ["sent", "retry", "failed"] {
        MAIL_ATTEMPTS.with_label_values(&[o]);
        SMS_ATTEMPTS.with_label_values(&[o]);
    }
    for c in ["email", "sms"] {
        for s in ["pending", "sent", "failed"] {
            OUTBOX_MESSAGES.with_label_values(&[c, s]);
        }
    }
    // 0 until the service starts each loop.
    for t in TASKS {
        TASK_UP.with_label_values(&[t]);
    }
}

/// Middleware: count and time every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    REQUESTS.with_label_values(&[&route, class]).inc();
    REQUEST_SECONDS
        .with_label_values(&[&route])
        .observe(start.elapsed().as_secs_f64());
    resp
}
