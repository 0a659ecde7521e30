//! The verifier stage: proof bundles (`docs/proof-format.md`), the public
//! HTTP API (`docs/http-api.md`), offline verification and exports.
//!
//! - [`prover`]: assembles a [`Bundle`](anchord_core::bundle::Bundle) per
//!   evidence item from the ledger. Proofs never rebuild a block's whole
//!   tree per request: a proof reads a few tiles ([`anchord_core::tiles`],
//!   migration 0006): one or two 256-leaf ranges and the tiles above them
//!   (full ones cached). Serialized bundles are cached for a short time.
//! - [`api`]: the axum router: proofs, verify, checkpoints, OpenAPI, and
//!   the block log as a C2SP tlog-tiles log (`/checkpoint`, `/tile/…`);
//!   structured errors that never carry internal error text, body limits
//!   and a per-client rate limit.
//! - [`trust`]: trusted keys files and RFC 3161 token checking for
//!   [`anchord_core::bundle::verify_bundle`].
//! - [`ots`], [`tlog_proof`]: OpenTimestamps and C2SP tlog-proof exports.
//! - [`certificate`]: the PDF preservation certificate (电子数据保全证书).

pub mod api;
pub mod certificate;
pub mod config;
pub mod gather;
pub mod metrics;
pub mod online;
pub mod ots;
pub mod prover;
pub mod tlog_proof;
pub mod trust;

use std::sync::Arc;

use anchord_core::HashSuite;
use anchord_core::bundle::DeclaredKeys;
use anchord_ledger::Ledger;
use tokio_util::sync::CancellationToken;

pub use config::VerifierConfig;

/// Everything that stops the verifier service.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("listen {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Bind `config.listen` and serve the API until `shutdown`.
pub async fn run(
    config: VerifierConfig,
    suite: HashSuite,
    keys: DeclaredKeys,
    ledger: Ledger,
    shutdown: CancellationToken,
) -> Result<(), VerifierError> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| VerifierError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(VerifierError::Serve)?;
    tracing::info!(%addr, "verifier API listening");
    let prover = Arc::new(prover::Prover::new(ledger, suite, keys, &config));
    // The latest checkpoint, the anchors and the block log's right edge
    // before the first request (a failure is logged: requests retry).
    if let Err(e) = prover.preload().await {
        tracing::warn!(error = %e, "preloading the latest checkpoint and block-log tiles");
    }
    let stop = shutdown.child_token();
    let refresher = tokio::spawn(prover.clone().refresh_loop(stop.clone()));
    // Not a child of `shutdown`: requests still being answered during the
    // graceful shutdown keep their gathered statements.
    let gather_stop = CancellationToken::new();
    let gatherer = tokio::spawn(prover.clone().gather_loop(gather_stop.clone()));
    let app = api::router(prover, &config);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
    .map_err(VerifierError::Serve);
    // The refresher stops with the token, or here after a serve error; the
    // gatherer here, after the server answered its last request (or
    // failed): it answers what is queued, then returns.
    stop.cancel();
    gather_stop.cancel();
    if let Err(e) = refresher.await {
        tracing::warn!(error = %e, "the verifier's refresh task failed");
    }
    if let Err(e) = gatherer.await {
        tracing::warn!(error = %e, "the verifier's proof-gathering task failed");
    }
    served
}
