//! Stored files' bookkeeping: the release queue `workflow.file_gc` and the
//! question whether any row still references a file.

use tokio_postgres::GenericClient;

use super::StoreError;

/// Record that `sha256_hex` may have lost its last reference (in the
/// caller's transaction, or alone).
pub async fn release<C: GenericClient + Sync>(c: &C, sha256_hex: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO workflow.file_gc (sha256) VALUES ($1) ON CONFLICT (sha256) DO NOTHING",
        &[&sha256_hex],
    )
    .await?;
    Ok(())
}

/// Whether a preservation, a judicial certificate or a submission
/// references the file.
pub async fn referenced<C: GenericClient + Sync>(
    c: &C,
    sha256_hex: &str,
) -> Result<bool, StoreError> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM workflow.preservations WHERE file_sha256 = $1)
            OR EXISTS (SELECT 1 FROM workflow.judicial_requests WHERE certificate_sha256 = $1)
            OR EXISTS (SELECT 1 FROM workflow.judicial_requests WHERE evidence_sha256 = $1)
            OR EXISTS (SELECT 1 FROM workflow.submissions WHERE hash = $1)",
        &[&sha256_hex],
    )
    .await?
    .try_get(0)?)
}

/// The oldest `limit` released files.
pub async fn released<C: GenericClient + Sync>(
    c: &C,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    c.query(
        "SELECT sha256 FROM workflow.file_gc ORDER BY since LIMIT $1",
        &[&limit],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// Done with a released file (deleted, or referenced again).
pub async fn forget<C: GenericClient + Sync>(c: &C, sha256_hex: &str) -> Result<(), StoreError> {
    c.execute(
        "DELETE FROM workflow.file_gc WHERE sha256 = $1",
        &[&sha256_hex],
    )
    .await?;
    Ok(())
}
