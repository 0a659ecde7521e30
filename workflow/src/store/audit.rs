//! The audit log's rows: append under the chain's advisory lock, read back
//! for queries and for the chain's verification. The hashing (what a row
//! hash covers) is `audit.rs`'s.

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;

/// Advisory lock serialising appends to the chain (and the anchoring of
/// its head).
pub const AUDIT_LOCK: i64 = 0x616e_6368_6175_6474;

/// One row as stored (the hashed columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub at_us: i64,
    pub user_id: Option<i64>,
    pub username: String,
    pub action: String,
    pub object: String,
    pub result: String,
    pub detail: String,
}

fn row(r: &tokio_postgres::Row) -> Result<Row, StoreError> {
    Ok(Row {
        id: r.try_get(0)?,
        at_us: r.try_get(1)?,
        user_id: r.try_get(2)?,
        username: r.try_get(3)?,
        action: r.try_get(4)?,
        object: r.try_get(5)?,
        result: r.try_get(6)?,
        detail: r.try_get(7)?,
    })
}

const COLUMNS: &str = "id, at_us, user_id, username, action, object, result, detail";

/// Take the chain's lock until the transaction ends.
pub async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .await?;
    Ok(())
}

/// The last row's id and hash (under the lock).
pub async fn head<C: GenericClient + Sync>(c: &C) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    c.query_opt(
        "SELECT id, row_hash FROM workflow.audit_log ORDER BY id DESC LIMIT 1",
        &[],
    )
    .await?
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .transpose()
}

/// Append `row` with its chain hashes (under the lock).
pub async fn insert(
    tx: &Transaction<'_>,
    row: &Row,
    prev: &[u8],
    hash: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO workflow.audit_log
            (id, at_us, user_id, username, action, object, result, detail, prev_hash, row_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &row.id,
            &row.at_us,
            &row.user_id,
            &row.username,
            &row.action,
            &row.object,
            &row.result,
            &row.detail,
            &prev,
            &hash,
        ],
    )
    .await?;
    Ok(())
}

/// Every row with its stored `prev_hash` and `row_hash`, in chain order.
pub async fn chain<C: GenericClient + Sync>(
    c: &C,
) -> Result<Vec<(Row, Vec<u8>, Vec<u8>)>, StoreError> {
    c.query(
        &format!("SELECT {COLUMNS}, prev_hash, row_hash FROM workflow.audit_log ORDER BY id"),
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((row(r)?, r.try_get(8)?, r.try_get(9)?)))
    .collect()
}

/// Every anchored head: (last row id, head hash).
pub async fn anchored_heads<C: GenericClient + Sync>(
    c: &C,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    c.query("SELECT upto_id, head_hash FROM workflow.audit_anchors", &[])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// What a query of the log selects (every filter optional).
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub result: Option<&'a str>,
    pub username: Option<&'a str>,
    /// Action prefix (compared literally: no pattern).
    pub action: Option<&'a str>,
    pub limit: i64,
    /// Rows below this id (keyset paging).
    pub after: Option<i64>,
}

/// Rows matching `f`, newest first.
pub async fn list<C: GenericClient + Sync>(c: &C, f: &Filter<'_>) -> Result<Vec<Row>, StoreError> {
    c.query(
        &format!(
            "SELECT {COLUMNS} FROM workflow.audit_log
              WHERE ($1::bigint IS NULL OR at_us >= $1) AND ($2::bigint IS NULL OR at_us < $2)
                AND ($3::text IS NULL OR result = $3) AND ($4::text IS NULL OR username = $4)
                AND ($5::text IS NULL OR left(action, length($5)) = $5)
                AND ($7::bigint IS NULL OR id < $7)
              ORDER BY id DESC LIMIT $6"
        ),
        &[
            &f.from_us,
            &f.to_us,
            &f.result,
            &f.username,
            &f.action,
            &f.limit,
            &f.after,
        ],
    )
    .await?
    .iter()
    .map(row)
    .collect()
}
