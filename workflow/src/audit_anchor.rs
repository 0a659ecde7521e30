//! Anchoring the audit chain's head in the ledger like evidence: every
//! `workflow.audit_anchor_interval_s` (a background loop) and on demand
//! (`POST /v1/audit/anchor`). Apart from the audit log (`audit.rs`), which
//! every module writes to, so that the log depends on no feature module.

use std::sync::Arc;

use axum::extract::State;
use tokio_util::sync::CancellationToken;

use crate::Workflow;
use crate::authz::{Require, roles};
use crate::error::ApiError;
use crate::evidence::{self, NewSubmission};
use crate::store::audit;
use crate::store::audit_anchor as store;

/// Publish the chain's head as evidence (when it moved since the last
/// anchoring). Returns the submission id, if one was made.
pub async fn anchor_head(wf: &Workflow) -> Result<Option<i64>, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    audit::lock(&tx).await?;
    let Some((upto, head)) = audit::head(&*tx).await? else {
        return Ok(None);
    };
    if store::anchored_since(&tx, upto).await? {
        return Ok(None);
    }
    let sub = evidence::enqueue(
        &tx,
        &NewSubmission {
            kind: "audit_head",
            object_id: upto,
            tenant: wf.config.audit_tenant.clone(),
            hash_alg: "sha256",
            hash: hex::encode(&head),
            record: serde_json::json!({
                "source": "anchord-workflow",
                "kind": "audit_head",
                "upto_id": upto,
            }),
        },
    )
    .await?;
    store::record(&tx, upto, &head, sub).await?;
    tx.commit().await?;
    wf.submissions_kick.notify_one();
    Ok(Some(sub))
}

/// Background task: anchor the head every `audit_anchor_interval_s`.
pub async fn run_anchoring(wf: Arc<Workflow>, shutdown: CancellationToken) {
    let every = std::time::Duration::from_secs(wf.config.audit_anchor_interval_s);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match anchor_head(&wf).await {
            Ok(Some(id)) => tracing::info!(submission = id, "anchoring the audit chain's head"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = ?e, "could not anchor the audit chain's head"),
        }
    }
}

/// Anchor the chain's head now (administrators); otherwise it happens every
/// `workflow.audit_anchor_interval_s`.
#[utoipa::path(post, path = "/v1/audit/anchor", responses(
    (status = 200, body = Object),
))]
pub async fn anchor_now(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let sub = anchor_head(&wf).await?;
    Ok(axum::Json(serde_json::json!({ "submission_id": sub })))
}
