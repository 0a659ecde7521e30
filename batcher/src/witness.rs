//! `anchord witness`: a consortium member's cosigning service, speaking
//! c2sp.org/tlog-witness (`POST /add-checkpoint`) and answering with
//! c2sp.org/tlog-cosignature (cosignature/v1) signature lines.
//!
//! Per origin it keeps the latest checkpoint it cosigned (table
//! `anchord_witness.checkpoints` in the witness's own database, through
//! [`WitnessStore`]; no ledger schema there). A new checkpoint is cosigned
//! only if it carries a valid signature by a trusted log key and a valid
//! consistency proof from that stored checkpoint; the check and the update are one compare-and-swap
//! on (size, root), so two concurrent requests can never roll the state back.
//! See `docs/witness-protocol.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anchord_core::checkpoint::{
    ALG_COSIGNATURE_V1, Checkpoint, NoteError, NoteSigner, NoteVerifier,
};
use anchord_core::{HashSuite, merkle};
use anchord_ledger::WitnessStore;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio_util::sync::CancellationToken;

use crate::config::WitnessConfig;
use crate::{BatcherError, keys, metrics, now_us};

/// A running witness's fixed state.
#[derive(Debug)]
pub struct Witness {
    store: WitnessStore,
    signer: NoteSigner,
    logs: HashMap<String, (HashSuite, Vec<NoteVerifier>)>,
}

/// Check a witness configuration without the network or a database: the
/// rules of `[witness]` and its cosignature key file. Returns the key.
pub fn check_config(config: &WitnessConfig) -> Result<NoteSigner, BatcherError> {
    config.validate()?;
    let path = config
        .signing_key
        .as_ref()
        .ok_or_else(|| BatcherError::Config("witness.signing_key is required".into()))?;
    keys::load_signer(path, ALG_COSIGNATURE_V1)
}

impl Witness {
    /// Build from configuration; reads the cosignature key file.
    pub fn from_config(config: &WitnessConfig, store: WitnessStore) -> Result<Self, BatcherError> {
        let signer = check_config(config)?;
        let mut logs = HashMap::new();
        for l in &config.logs {
            let keys = l
                .vkeys
                .iter()
                .map(|k| NoteVerifier::parse(k))
                .collect::<Result<Vec<_>, _>>()?;
            logs.insert(l.origin.clone(), (l.hash_suite, keys));
        }
        Ok(Witness {
            store,
            signer,
            logs,
        })
    }

    /// Build directly (tests, embedding).
    pub fn new(
        store: WitnessStore,
        signer: NoteSigner,
        logs: HashMap<String, (HashSuite, Vec<NoteVerifier>)>,
    ) -> Self {
        Witness {
            store,
            signer,
            logs,
        }
    }

    pub fn verifier(&self) -> NoteVerifier {
        self.signer.verifier()
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .with_state(self)
    }
}

/// Bind `addr` and serve until `shutdown`. Returns the bound address (use
/// port 0 in tests) and the server task.
pub async fn start(
    witness: Witness,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BatcherError> {
    metrics::register_witness();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BatcherError::Io(format!("witness.listen {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| BatcherError::Io(e.to_string()))?;
    tracing::info!(addr = %local, vkey = %witness.verifier().vkey(), "witness listening");
    let app = Arc::new(witness).router();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok((local, task))
}

/// The `add-checkpoint` request and its parser: core's one definition.
pub use anchord_core::witness::{AddCheckpoint, parse_add_checkpoint};

fn reply(status: StatusCode, msg: &str) -> Response {
    metrics::WITNESS_SERVED
        .with_label_values(&[status.as_str()])
        .inc();
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn conflict(size: u64) -> Response {
    metrics::WITNESS_SERVED.with_label_values(&["409"]).inc();
    (
        StatusCode::CONFLICT,
        [(header::CONTENT_TYPE, "text/x.tlog.size")],
        format!("{size}\n"),
    )
        .into_response()
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(body) = std::str::from_utf8(&body) else {
        return reply(StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    let req = match parse_add_checkpoint(body) {
        Ok(r) => r,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &format!("malformed request: {e}")),
    };
    let cp = match Checkpoint::parse(&req.note.text) {
        Ok(c) => c,
        Err(e) => return reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let Some((suite, keys)) = w.logs.get(&cp.origin) else {
        return reply(StatusCode::NOT_FOUND, "unknown origin");
    };
    let mut trusted = false;
    for k in keys {
        match req.note.verify_by(k) {
            Ok(_) => trusted = true,
            Err(NoteError::MissingSignature { .. }) => {}
            Err(_) => {
                return reply(
                    StatusCode::FORBIDDEN,
                    "a signature by a trusted key does not verify",
                );
            }
        }
    }
    if !trusted {
        return reply(StatusCode::FORBIDDEN, "no signature by a trusted log key");
    }
    if req.old_size > cp.size {
        return reply(
            StatusCode::BAD_REQUEST,
            "old size is greater than the checkpoint size",
        );
    }
    let state = match w.store.latest(&cp.origin).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "witness state");
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let stored_size = state.map_or(0, |s| s.0);
    if req.old_size != stored_size {
        return conflict(stored_size);
    }
    if let Some((size, root)) = state
        && size == cp.size
        && root != cp.root
    {
        tracing::error!(origin = %cp.origin, size, "two different roots for the same size: split view");
        return conflict(stored_size);
    }
    let consistent = match state {
        None => req.proof.is_empty(),
        Some((size, root)) => {
            merkle::verify_consistency(*suite, size, cp.size, &root, &cp.root, &req.proof).is_ok()
        }
    };
    if !consistent {
        tracing::warn!(origin = %cp.origin, old = stored_size, new = cp.size, "inconsistent checkpoint refused");
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            "consistency proof does not verify",
        );
    }
    let now = now_us();
    match w
        .store
        .swap(
            &cp.origin,
            state,
            cp.size,
            &cp.root,
            &req.note.format(),
            now,
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            // Someone else moved the state between our read and our write.
            let size = w
                .store
                .latest(&cp.origin)
                .await
                .ok()
                .flatten()
                .map_or(0, |s| s.0);
            return conflict(size);
        }
        Err(e) => {
            tracing::error!(error = %e, "witness state update");
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    }
    let t = (now / 1_000_000) as u64;
    match w.signer.cosign(&req.note.text, t) {
        Ok(sig) => {
            metrics::WITNESS_SERVED.with_label_values(&["200"]).inc();
            metrics::WITNESS_COSIGNED.inc();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                sig.line(),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cosigning");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Run `anchord witness` until shutdown.
pub async fn run(
    config: WitnessConfig,
    store: WitnessStore,
    shutdown: CancellationToken,
) -> Result<(), BatcherError> {
    let listen = config.listen;
    let w = Witness::from_config(&config, store)?;
    let (_, task) = start(w, listen, shutdown).await?;
    let _ = task.await;
    Ok(())
}
