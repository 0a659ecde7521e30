//! The application audit log: every action (time, user, action, object,
//! result), hash-chained so that an edited, deleted or reordered row is
//! detectable. Its head is anchored in the ledger like evidence by
//! `audit_anchor.rs` (apart, so the log itself depends on no feature).
//!
//! Row hash (`docs/workflow-api.md` §Audit chain):
//!
//! ```text
//! row_hash = SHA-256(prev_hash || JCS({"action","at_us","detail","id","object","result","user_id","username"}))
//! ```
//!
//! with `prev_hash` of the first row = 32 zero bytes and JCS the RFC 8785
//! canonical JSON. Rows are appended under a transaction-scoped advisory
//! lock with consecutive ids, so the chain order is the id order.

use std::sync::Arc;

use axum::extract::State;
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Workflow;
use crate::authz::{Require, roles};
use crate::error::{ApiError, Query};
use crate::store::audit as store;

/// One row, as hashed and as served.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    /// Unix microseconds.
    pub at_us: i64,
    pub user_id: Option<i64>,
    pub username: String,
    pub action: String,
    pub object: String,
    /// `ok`, `denied` or `failed`.
    pub result: String,
    pub detail: String,
}

impl AuditRow {
    /// The canonical encoding that is hashed (RFC 8785 JSON).
    pub fn canonical(&self) -> String {
        serde_json_canonicalizer::to_string(self).expect("a struct of strings and integers encodes")
    }

    /// `SHA-256(prev || canonical)`.
    pub fn hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        anchord_core::HashSuite::Sha256.digest_parts(&[prev, self.canonical().as_bytes()])
    }
}

impl From<store::Row> for AuditRow {
    fn from(r: store::Row) -> Self {
        AuditRow {
            id: r.id,
            at_us: r.at_us,
            user_id: r.user_id,
            username: r.username,
            action: r.action,
            object: r.object,
            result: r.result,
            detail: r.detail,
        }
    }
}

impl From<AuditRow> for store::Row {
    fn from(r: AuditRow) -> Self {
        store::Row {
            id: r.id,
            at_us: r.at_us,
            user_id: r.user_id,
            username: r.username,
            action: r.action,
            object: r.object,
            result: r.result,
            detail: r.detail,
        }
    }
}

fn now_us() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

/// Append a row; returns it with its hash.
pub async fn append(
    pool: &Pool,
    user_id: Option<i64>,
    username: &str,
    action: &str,
    object: &str,
    result: &str,
    detail: &str,
) -> Result<(AuditRow, [u8; 32]), ApiError> {
    let mut c = crate::conn::get(pool).await?;
    let tx = c.transaction().await?;
    let out = append_tx(&tx, user_id, username, action, object, result, detail).await?;
    tx.commit().await?;
    count(result);
    Ok(out)
}

fn count(result: &str) {
    crate::metrics::AUDIT_ROWS
        .with_label_values(&[match result {
            "ok" => "ok",
            "denied" => "denied",
            _ => "failed",
        }])
        .inc();
}

/// Append a row inside the caller's transaction (so that an action and its
/// audit row commit together, on the one connection the request holds).
/// The chain's advisory lock is held until that transaction ends: append
/// last, and commit soon.
pub async fn append_in(
    tx: &tokio_postgres::Transaction<'_>,
    user_id: Option<i64>,
    username: &str,
    action: &str,
    object: &str,
    result: &str,
    detail: &str,
) -> Result<(), ApiError> {
    append_tx(tx, user_id, username, action, object, result, detail).await?;
    count(result);
    Ok(())
}

async fn append_tx(
    tx: &tokio_postgres::Transaction<'_>,
    user_id: Option<i64>,
    username: &str,
    action: &str,
    object: &str,
    result: &str,
    detail: &str,
) -> Result<(AuditRow, [u8; 32]), ApiError> {
    store::lock(tx).await?;
    let (id, prev) = match store::head(tx).await? {
        Some((id, h)) => (id + 1, to32(&h)),
        None => (1, [0u8; 32]),
    };
    let row = AuditRow {
        id,
        at_us: now_us(),
        user_id,
        username: username.chars().take(200).collect(),
        action: action.chars().take(200).collect(),
        object: object.chars().take(500).collect(),
        result: result.into(),
        detail: detail.chars().take(1000).collect(),
    };
    let hash = row.hash(&prev);
    store::insert(tx, &row.clone().into(), &prev, &hash).await?;
    Ok((row, hash))
}

/// What the audit layer records as a request's object, when the handler
/// knows better than the path (put it in the response's extensions), e.g.
/// `preservation/17` for the row a POST created.
#[derive(Clone, Debug)]
pub struct AuditObject(pub String);

/// Append, logging (not returning) a failure: auditing never turns a
/// completed action into an error response.
pub async fn record(
    wf: &Workflow,
    user_id: Option<i64>,
    username: &str,
    action: &str,
    object: &str,
    result: &str,
    detail: &str,
) {
    if let Err(e) = append(&wf.pool, user_id, username, action, object, result, detail).await {
        tracing::error!(action, object, error = ?e, "could not append to the audit log");
    }
}

fn to32(v: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    if v.len() == 32 {
        a.copy_from_slice(v);
    }
    a
}

/// What [`verify_chain`] found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainReport {
    /// True when every row and every anchored head recomputes.
    pub ok: bool,
    /// Rows checked.
    pub rows: i64,
    /// Hex hash of the last row.
    pub head: Option<String>,
    /// The first row that does not recompute (edited, deleted, reordered).
    pub first_bad_id: Option<i64>,
    pub problem: Option<String>,
    /// Anchored heads checked against the recomputed chain.
    pub anchors_checked: i64,
}

/// Recompute the whole chain, and every anchored head against it.
pub async fn verify_chain(pool: &Pool) -> Result<ChainReport, ApiError> {
    let c = crate::conn::get(pool).await?;
    let rows = store::chain(c.client()).await?;
    let anchors: std::collections::HashMap<i64, Vec<u8>> = store::anchored_heads(c.client())
        .await?
        .into_iter()
        .collect();
    let mut prev = [0u8; 32];
    let mut anchors_checked = 0;
    let bad = |id: i64, problem: String, n: i64, checked: i64| ChainReport {
        ok: false,
        rows: n,
        head: None,
        first_bad_id: Some(id),
        problem: Some(problem),
        anchors_checked: checked,
    };
    for (expect_id, (n, (r, stored_prev, stored))) in (1i64..).zip(rows.iter().enumerate()) {
        let row = AuditRow::from(r.clone());
        let n = n as i64 + 1;
        if row.id != expect_id {
            return Ok(bad(
                row.id,
                format!("row {expect_id} is missing (next row is {})", row.id),
                n,
                anchors_checked,
            ));
        }
        if *stored_prev != prev {
            return Ok(bad(
                row.id,
                "prev_hash does not equal the previous row's hash".into(),
                n,
                anchors_checked,
            ));
        }
        let h = row.hash(&prev);
        if *stored != h {
            return Ok(bad(
                row.id,
                format!(
                    "the row's content hashes to {}, the stored hash is {}",
                    hex::encode(h),
                    hex::encode(stored)
                ),
                n,
                anchors_checked,
            ));
        }
        if let Some(head) = anchors.get(&row.id) {
            anchors_checked += 1;
            if *head != h {
                return Ok(bad(
                    row.id,
                    "the chain differs from the head anchored in the ledger".into(),
                    n,
                    anchors_checked,
                ));
            }
        }
        prev = h;
    }
    Ok(ChainReport {
        ok: true,
        rows: rows.len() as i64,
        head: (!rows.is_empty()).then(|| hex::encode(prev)),
        first_bad_id: None,
        problem: None,
        anchors_checked,
    })
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// From (inclusive), RFC 3339.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// To (exclusive), RFC 3339.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `ok`, `denied` or `failed`.
    #[param(pattern = "^(ok|denied|failed)$")]
    pub result: Option<String>,
    /// Username.
    pub user: Option<String>,
    /// Action prefix, e.g. `POST /v1/preservations`.
    pub action: Option<String>,
    /// At most this many rows, newest first (default 500).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    /// Continue after the row with this id (the `Anchord-Next-After` header
    /// of the previous, full page).
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

fn parse_time_us(s: &Option<String>, key: &str) -> Result<Option<i64>, ApiError> {
    match s {
        None => Ok(None),
        Some(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some((t.unix_timestamp_nanos() / 1000) as i64))
            .map_err(|_| ApiError::field(key, "an RFC 3339 time, e.g. 2026-01-31T00:00:00Z")),
    }
}

/// Query the audit log (administrators).
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery), responses(
    (status = 200, body = [AuditRow]),
    (status = 403, body = crate::error::ErrorBody),
))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Query(q): Query<AuditQuery>,
) -> Result<crate::paging::Paged<AuditRow>, ApiError> {
    let from = parse_time_us(&q.from, "from")?;
    let to = parse_time_us(&q.to, "to")?;
    crate::error::one_of("result", &q.result, &["ok", "denied", "failed"])?;
    crate::error::in_range("limit", q.limit, 1, 10_000)?;
    let limit = q.limit.unwrap_or(500);
    crate::error::in_range("after", q.after, 1, i64::MAX)?;
    let c = wf.db().await?;
    let rows = store::list(
        c.client(),
        &store::Filter {
            from_us: from,
            to_us: to,
            result: q.result.as_deref(),
            username: q.user.as_deref(),
            action: q.action.as_deref(),
            limit,
            after: q.after,
        },
    )
    .await?;
    let page = crate::paging::Checked {
        limit,
        after: q.after,
    };
    Ok(crate::paging::Paged::new(
        rows.into_iter().map(AuditRow::from).collect(),
        page,
        |r| r.id,
    ))
}

/// Recompute the audit chain (administrators).
#[utoipa::path(get, path = "/v1/audit/verify", responses(
    (status = 200, description = "`ok` says whether the chain is intact", body = ChainReport),
))]
pub async fn verify(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
) -> Result<axum::Json<ChainReport>, ApiError> {
    Ok(axum::Json(verify_chain(&wf.pool).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256;

    #[test]
    fn the_row_hash_covers_every_column_and_the_previous_hash() {
        let row = AuditRow {
            id: 1,
            at_us: 1_700_000_000_000_000,
            user_id: Some(3),
            username: "alice".into(),
            action: "POST /v1/preservations".into(),
            object: "/v1/preservations".into(),
            result: "ok".into(),
            detail: "201".into(),
        };
        assert_eq!(
            row.canonical(),
            r#"{"action":"POST /v1/preservations","at_us":1700000000000000,"detail":"201","id":1,"object":"/v1/preservations","result":"ok","user_id":3,"username":"alice"}"#
        );
        let h = row.hash(&[0; 32]);
        let mut pre = vec![0u8; 32];
        pre.extend_from_slice(row.canonical().as_bytes());
        assert_eq!(h, sha256(&pre));
        let mut edited = row.clone();
        edited.result = "denied".into();
        assert_ne!(edited.hash(&[0; 32]), h);
        assert_ne!(row.hash(&[1; 32]), h);
    }
}
