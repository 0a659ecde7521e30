//! The admin listener: `/metrics` (Prometheus text format), `/livez`,
//! `/readyz` (PostgreSQL reachable). Kept off the public API port.

use std::net::SocketAddr;

use anchord_ledger::Ledger;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Bind and serve until `shutdown`; binding errors are returned at once.
pub async fn serve(
    addr: SocketAddr,
    ledger: Ledger,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(ledger);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen {addr}: {e}"))?;
    tracing::info!(%addr, "admin listener (metrics, livez, readyz)");
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    }))
}

async fn metrics() -> impl IntoResponse {
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode_to_string(&prometheus::gather()) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn ready(State(ledger): State<Ledger>) -> impl IntoResponse {
    match ledger.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "postgres unreachable\n"),
    }
}
