//! The anchorings of the audit chain's head (`workflow.audit_anchors`).

use tokio_postgres::Transaction;

use super::StoreError;

/// Whether a head at or past row `upto` was anchored already.
pub async fn anchored_since(tx: &Transaction<'_>, upto: i64) -> Result<bool, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM workflow.audit_anchors WHERE upto_id >= $1",
            &[&upto],
        )
        .await?
        .is_some())
}

/// Record an anchoring of the head `head` (row `upto`) as `submission`.
pub async fn record(
    tx: &Transaction<'_>,
    upto: i64,
    head: &[u8],
    submission: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO workflow.audit_anchors (upto_id, head_hash, submission_id) VALUES ($1, $2, $3)",
        &[&upto, &head, &submission],
    )
    .await?;
    Ok(())
}
