//! Preservations: every SQL statement on `workflow.preservations` and its
//! status transitions (through [`crate::status::transition`]).

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;
use crate::status::{self, Actor, Change, PreservationStatus, Status};

/// The states a preservation is edited, re-filed and submitted from.
pub const EDITABLE: &[PreservationStatus] =
    &[PreservationStatus::Saved, PreservationStatus::Rejected];
/// The state a preservation is reviewed in.
pub const SUBMITTED: &[PreservationStatus] = &[PreservationStatus::Submitted];

pub(super) const COLUMNS: &str = "id, number, tenant, product_id, status, fields, file_name, file_size, file_sha256,
    file_sm3, reject_reason, created_by, reviewed_by, created_at, updated_at, submitted_at, reviewed_at,
    submission_id";

/// The stored file of a preservation.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub name: String,
    pub size: i64,
    pub sha256: String,
    pub sm3: Option<String>,
}

/// A preservation as stored.
#[derive(Debug, Clone)]
pub struct Preservation {
    pub id: i64,
    pub number: String,
    pub tenant: String,
    pub product_id: i64,
    pub status: PreservationStatus,
    pub fields: serde_json::Value,
    pub file: Option<StoredFile>,
    pub reject_reason: Option<String>,
    pub created_by: i64,
    pub reviewed_by: Option<i64>,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
    pub submitted_at: Option<time::OffsetDateTime>,
    pub reviewed_at: Option<time::OffsetDateTime>,
    /// Its evidence submission, once approved.
    pub submission_id: Option<i64>,
}

pub(super) fn from_row(r: &tokio_postgres::Row) -> Result<Preservation, StoreError> {
    let status: String = r.try_get(4)?;
    let status = PreservationStatus::parse(&status).ok_or_else(|| {
        StoreError::Inconsistent(format!("unknown preservation status {status:?}"))
    })?;
    let file = match r.try_get::<_, Option<String>>(8)? {
        Some(sha256) => Some(StoredFile {
            name: r.try_get::<_, Option<String>>(6)?.unwrap_or_default(),
            size: r.try_get::<_, Option<i64>>(7)?.unwrap_or(0),
            sha256,
            sm3: r.try_get(9)?,
        }),
        None => None,
    };
    Ok(Preservation {
        id: r.try_get(0)?,
        number: r.try_get(1)?,
        tenant: r.try_get(2)?,
        product_id: r.try_get(3)?,
        status,
        fields: r.try_get(5)?,
        file,
        reject_reason: r.try_get(10)?,
        created_by: r.try_get(11)?,
        reviewed_by: r.try_get(12)?,
        created_at: r.try_get(13)?,
        updated_at: r.try_get(14)?,
        submitted_at: r.try_get(15)?,
        reviewed_at: r.try_get(16)?,
        submission_id: r.try_get(17)?,
    })
}

/// The preservation `id`.
pub async fn get<C: GenericClient + Sync>(c: &C, id: i64) -> Result<Preservation, StoreError> {
    let r = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM workflow.preservations WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(StoreError::NotFound("preservation"))?;
    from_row(&r)
}

/// A new preservation (status `saved`); returns its id.
pub async fn create<C: GenericClient + Sync>(
    c: &C,
    tenant: &str,
    product_id: i64,
    created_by: i64,
    fields: &serde_json::Value,
) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "INSERT INTO workflow.preservations (tenant, product_id, created_by, fields)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&tenant, &product_id, &created_by, fields],
    )
    .await?
    .get(0))
}

/// 409 for `action` unless the preservation is in one of `allowed`.
pub async fn require_status<C: GenericClient + Sync>(
    c: &C,
    p: &Preservation,
    action: &str,
    allowed: &[PreservationStatus],
) -> Result<(), StoreError> {
    if allowed.contains(&p.status) {
        Ok(())
    } else {
        Err(status::conflict_error(c, p.id, action, allowed).await)
    }
}

/// New field values (while editable; the preservation becomes `saved`),
/// guarded in SQL.
pub async fn edit_fields<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    fields: &serde_json::Value,
) -> Result<(), StoreError> {
    let moved = c
        .query_opt(
            "UPDATE workflow.preservations SET fields = $2, status = $4, updated_at = now()
              WHERE id = $1 AND status = ANY($3) RETURNING status",
            &[
                &id,
                fields,
                &status::strs(EDITABLE),
                &PreservationStatus::Saved.as_str(),
            ],
        )
        .await?;
    match moved {
        Some(_) => Ok(()),
        None => Err(status::conflict_error(c, id, "editing", EDITABLE).await),
    }
}

/// Lock an editable preservation for a file change: `Ok(Some(current
/// file hash))`, or `Ok(None)` when it is no longer editable.
pub async fn lock_for_file(
    tx: &Transaction<'_>,
    id: i64,
) -> Result<Option<Option<String>>, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT file_sha256 FROM workflow.preservations
              WHERE id = $1 AND status = ANY($2) FOR UPDATE",
            &[&id, &status::strs(EDITABLE)],
        )
        .await?
        .map(|r| r.get(0)))
}

/// Set the file of a preservation locked by [`lock_for_file`] (it
/// becomes `saved`).
pub async fn set_file(tx: &Transaction<'_>, id: i64, f: &StoredFile) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workflow.preservations SET file_name = $2, file_size = $3, file_sha256 = $4, file_sm3 = $5,
                status = $6, updated_at = now()
          WHERE id = $1",
        &[
            &id,
            &f.name,
            &f.size,
            &f.sha256,
            &f.sm3,
            &PreservationStatus::Saved.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// `saved`/`rejected` → `submitted` (needs a file), audited.
pub async fn submit(tx: &Transaction<'_>, by: Actor<'_>, id: i64) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        EDITABLE,
        PreservationStatus::Submitted,
        "submitting",
        Change {
            set: ", submitted_at = now()",
            guard: " AND file_sha256 IS NOT NULL",
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}

/// `submitted` → `approved` by `reviewer`, only while the file is still
/// `file_sha256` (the one the reviewer saw), audited.
pub async fn approve(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    reviewer: i64,
    file_sha256: &str,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        SUBMITTED,
        PreservationStatus::Approved,
        "approval",
        Change {
            set: ", reviewed_by = $4, reviewed_at = now(), reject_reason = NULL",
            guard: " AND file_sha256 = $5",
            params: &[&reviewer, &file_sha256],
            note: None,
        },
    )
    .await?;
    Ok(())
}

/// Link an approved preservation to its evidence submission.
pub async fn set_submission(
    tx: &Transaction<'_>,
    id: i64,
    submission: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workflow.preservations SET submission_id = $2 WHERE id = $1",
        &[&id, &submission],
    )
    .await?;
    Ok(())
}

/// `submitted` → `rejected` with a reason, audited.
pub async fn reject(
    tx: &Transaction<'_>,
    by: Actor<'_>,
    id: i64,
    reviewer: i64,
    reason: &str,
) -> Result<(), StoreError> {
    status::transition(
        tx,
        by,
        id,
        SUBMITTED,
        PreservationStatus::Rejected,
        "rejection",
        Change {
            set: ", reject_reason = $4, reviewed_by = $5, reviewed_at = now()",
            params: &[&reason, &reviewer],
            ..Change::default()
        },
    )
    .await?;
    Ok(())
}
