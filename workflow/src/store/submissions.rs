//! Submissions: every SQL statement on `workflow.submissions`, the outbox
//! through which approved evidence reaches the ledger (`evidence.rs` runs
//! the loop that publishes and links them).

use tokio_postgres::{GenericClient, Transaction};

use super::StoreError;

/// Where a submission stands: written with its approval (`pending`), on the
/// evidence topic (`published`), in the ledger (`recorded`), in a sealed
/// block (`sealed`). The column holds these names (`workflow.submissions`
/// checks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmissionState {
    Pending,
    Published,
    Recorded,
    Sealed,
}

impl SubmissionState {
    pub const ALL: [SubmissionState; 4] = [
        SubmissionState::Pending,
        SubmissionState::Published,
        SubmissionState::Recorded,
        SubmissionState::Sealed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SubmissionState::Pending => "pending",
            SubmissionState::Published => "published",
            SubmissionState::Recorded => "recorded",
            SubmissionState::Sealed => "sealed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A new outbox row, its public id and metadata already made.
#[derive(Debug)]
pub struct NewRow<'a> {
    pub kind: &'a str,
    pub object_id: i64,
    pub tenant: &'a str,
    pub external_id: &'a str,
    pub hash_alg: &'a str,
    pub hash: &'a str,
    pub metadata: &'a serde_json::Value,
    pub salt: &'a [u8],
    pub record: &'a serde_json::Value,
}

/// Insert a submission in the caller's transaction; returns its id.
pub async fn insert(tx: &Transaction<'_>, s: &NewRow<'_>) -> Result<i64, StoreError> {
    let row = tx
        .query_one(
            "INSERT INTO workflow.submissions (kind, object_id, tenant, external_id, hash_alg, hash, metadata,
                                               salt, record, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &s.kind,
                &s.object_id,
                &s.tenant,
                &s.external_id,
                &s.hash_alg,
                &s.hash,
                &s.metadata,
                &s.salt,
                &s.record,
                &SubmissionState::Pending.as_str(),
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// A submission as stored.
#[derive(Debug, Clone)]
pub struct Submission {
    pub id: i64,
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: String,
    pub hash: String,
    pub state: SubmissionState,
    pub ledger_seq: Option<i64>,
    pub block_height: Option<i64>,
    pub published_at: Option<time::OffsetDateTime>,
    pub sealed_at: Option<time::OffsetDateTime>,
    pub last_error: Option<String>,
    pub salt: Option<Vec<u8>>,
    pub record: Option<serde_json::Value>,
}

pub async fn get<C: GenericClient + Sync>(
    c: &C,
    id: i64,
) -> Result<Option<Submission>, StoreError> {
    let Some(r) = c
        .query_opt(
            "SELECT id, tenant, external_id, hash_alg, hash, state, ledger_seq, block_height,
                    published_at, sealed_at, last_error, salt, record
               FROM workflow.submissions WHERE id = $1",
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let state: String = r.try_get(5)?;
    let state = SubmissionState::parse(&state).ok_or_else(|| {
        StoreError::Inconsistent(format!(
            "unknown submission state {state:?} in the database"
        ))
    })?;
    Ok(Some(Submission {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        external_id: r.try_get(2)?,
        hash_alg: r.try_get(3)?,
        hash: r.try_get(4)?,
        state,
        ledger_seq: r.try_get(6)?,
        block_height: r.try_get(7)?,
        published_at: r.try_get(8)?,
        sealed_at: r.try_get(9)?,
        last_error: r.try_get(10)?,
        salt: r.try_get(11)?,
        record: r.try_get(12)?,
    }))
}

/// A submission waiting to be published.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: String,
    pub hash: String,
    pub metadata: serde_json::Value,
}

/// The oldest pending submissions, at most `limit`.
pub async fn pending<C: GenericClient + Sync>(
    c: &C,
    limit: i64,
) -> Result<Vec<Pending>, StoreError> {
    let rows = c
        .query(
            "SELECT id, tenant, external_id, hash_alg, hash, metadata
               FROM workflow.submissions WHERE state = $1 ORDER BY id LIMIT $2",
            &[&SubmissionState::Pending.as_str(), &limit],
        )
        .await?;
    // A row the schema should never hold (a NULL where the table says NOT
    // NULL, after a change the code did not expect) panics the publisher
    // rather than failing every pass quietly: the service owns the loop and
    // stops with it, readiness naming it (tests/background.rs).
    Ok(rows
        .into_iter()
        .map(|r| Pending {
            id: r.get(0),
            tenant: r.get(1),
            external_id: r.get(2),
            hash_alg: r.get(3),
            hash: r.get(4),
            metadata: r.get(5),
        })
        .collect())
}

/// The broker acknowledged the message: pending -> published.
pub async fn mark_published<C: GenericClient + Sync>(c: &C, id: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.submissions SET state = $2, published_at = now(),
                attempts = attempts + 1, last_error = NULL
          WHERE id = $1 AND state = $3",
        &[
            &id,
            &SubmissionState::Published.as_str(),
            &SubmissionState::Pending.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// A publishing attempt failed: counted, with its error.
pub async fn publish_failed<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    error: &str,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.submissions SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
        &[&id, &error],
    )
    .await?;
    Ok(())
}

/// A published submission not yet in a sealed block.
#[derive(Debug, Clone)]
pub struct Unsealed {
    pub id: i64,
    pub kind: String,
    pub object_id: i64,
    pub tenant: String,
    pub external_id: String,
    pub hash: String,
    pub ledger_seq: Option<i64>,
}

/// The oldest published or recorded submissions, at most `limit`.
pub async fn unsealed<C: GenericClient + Sync>(
    c: &C,
    limit: i64,
) -> Result<Vec<Unsealed>, StoreError> {
    let rows = c
        .query(
            "SELECT id, kind, object_id, tenant, external_id, hash, ledger_seq
               FROM workflow.submissions WHERE state = ANY($1) ORDER BY id LIMIT $2",
            &[
                &vec![
                    SubmissionState::Published.as_str(),
                    SubmissionState::Recorded.as_str(),
                ],
                &limit,
            ],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Unsealed {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                object_id: r.try_get(2)?,
                tenant: r.try_get(3)?,
                external_id: r.try_get(4)?,
                hash: r.try_get(5)?,
                ledger_seq: r.try_get(6)?,
            })
        })
        .collect()
}

/// Why a submission cannot be linked (shown on the object's detail).
pub async fn set_error<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    error: &str,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.submissions SET last_error = $2 WHERE id = $1",
        &[&id, &error],
    )
    .await?;
    Ok(())
}

/// The ledger holds the entry: -> recorded, with its sequence number.
pub async fn mark_recorded<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    seq: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.submissions SET state = $3, ledger_seq = $2 WHERE id = $1",
        &[&id, &seq, &SubmissionState::Recorded.as_str()],
    )
    .await?;
    Ok(())
}

/// The entry's block is sealed: -> sealed. False when it already was (a
/// concurrent linker won; nothing else to do).
pub async fn mark_sealed(tx: &Transaction<'_>, id: i64, height: i64) -> Result<bool, StoreError> {
    let n = tx
        .execute(
            "UPDATE workflow.submissions SET state = $3, block_height = $2, sealed_at = now()
              WHERE id = $1 AND state <> $3",
            &[&id, &height, &SubmissionState::Sealed.as_str()],
        )
        .await?;
    Ok(n > 0)
}
