//! The relay's outbox, receipts and coverage (`anchor_jobs`,
//! `anchor_receipts`, `anchor_coverage`; migrations 0001 and 0003).
//!
//! A job is one (target, checkpoint). Its life:
//!
//! ```text
//! pending ──claim──▶ sending ──send ok──▶ submitted ──poll──▶ confirmed
//!    ▲                 │  │                    │
//!    └─ not accepted ──┘  └─ permanent ─▶ failed
//! pending ──a newer job was enqueued──▶ covered   (never sent: superseded)
//! sending/submitted ──not on chain, a newer anchor confirmed──▶ covered
//! ```
//!
//! Claiming takes the row with `FOR UPDATE SKIP LOCKED` and leases it by
//! moving `next_attempt_at` past the lease; `attempts` is incremented and
//! serves as the fencing token: every later write names the attempt it
//! belongs to and is ignored once another relay instance has re-claimed the
//! job after the lease ran out.

use tokio_postgres::Row;

use crate::{Ledger, LedgerError, StoredCheckpoint};

/// A job's state (the CHECK constraint's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorJobState {
    Pending,
    Sending,
    Submitted,
    Confirmed,
    Covered,
    Failed,
}

impl AnchorJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorJobState::Pending => "pending",
            AnchorJobState::Sending => "sending",
            AnchorJobState::Submitted => "submitted",
            AnchorJobState::Confirmed => "confirmed",
            AnchorJobState::Covered => "covered",
            AnchorJobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, LedgerError> {
        Ok(match s {
            "pending" => AnchorJobState::Pending,
            "sending" => AnchorJobState::Sending,
            "submitted" => AnchorJobState::Submitted,
            "confirmed" => AnchorJobState::Confirmed,
            "covered" => AnchorJobState::Covered,
            "failed" => AnchorJobState::Failed,
            other => return Err(LedgerError::Corrupt(format!("unknown job state {other:?}"))),
        })
    }

    /// True when a request for this job may have reached the target.
    pub fn maybe_sent(self) -> bool {
        matches!(self, AnchorJobState::Sending | AnchorJobState::Submitted)
    }
}

/// A job this relay instance holds the lease on.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    pub id: i64,
    pub target: String,
    /// The state before this claim: `Sending`/`Submitted` mean an earlier
    /// attempt may be on chain, so the target must be asked first.
    pub prev_state: AnchorJobState,
    pub idempotency_key: String,
    /// The fencing token of this claim.
    pub attempts: i32,
    pub tx_id: Option<String>,
    /// What an earlier attempt recorded before sending (JSON text).
    pub submission: Option<String>,
    pub checkpoint: StoredCheckpoint,
}

/// A confirmed anchor to record.
#[derive(Clone, Debug)]
pub struct NewReceipt {
    pub chain_kind: String,
    pub chain_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub block_hash: String,
    pub block_time_us: i64,
    /// Everything a verifier needs to look the anchor up (JSON object text).
    pub receipt_json: String,
}

/// A stored receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorReceipt {
    pub target: String,
    pub checkpoint_size: u64,
    pub job_id: i64,
    pub chain_kind: String,
    pub chain_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub block_hash: String,
    pub block_time_us: i64,
    pub receipt_json: String,
    pub confirmed_at_us: i64,
}

/// One checkpoint that was not anchored itself, with what covers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverageRow {
    pub checkpoint_size: u64,
    pub checkpoint_created_at_us: i64,
    pub covered_by_size: u64,
    pub covering_tx_id: String,
    pub covering_block_number: u64,
    pub covering_confirmed_at_us: i64,
}

/// What confirming a job recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirmed {
    /// Earlier checkpoints newly recorded as covered by this anchor.
    pub covered: u64,
}

const SELECT_RECEIPT: &str = "SELECT target, checkpoint_size, job_id, chain_kind, chain_id, tx_id, \
     block_number, block_hash, block_time_us, receipt::text, \
     (extract(epoch FROM confirmed_at) * 1000000)::bigint FROM anchor_receipts";

fn receipt_row(r: &Row) -> AnchorReceipt {
    AnchorReceipt {
        target: r.get(0),
        checkpoint_size: r.get::<_, i64>(1) as u64,
        job_id: r.get(2),
        chain_kind: r.get(3),
        chain_id: r.get(4),
        tx_id: r.get(5),
        block_number: r.get::<_, i64>(6) as u64,
        block_hash: r.get(7),
        block_time_us: r.get(8),
        receipt_json: r.get(9),
        confirmed_at_us: r.get(10),
    }
}

impl Ledger {
    /// The largest checkpoint that reached its witness quorum.
    pub async fn latest_final_checkpoint(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_opt(
                "SELECT size FROM checkpoints WHERE final_at_us IS NOT NULL ORDER BY size DESC LIMIT 1",
                &[],
            )
            .await?;
        drop(c);
        match r {
            Some(r) => self.checkpoint(r.get::<_, i64>(0) as u64).await,
            None => Ok(None),
        }
    }

    /// Add a job for checkpoint `size` on `target` unless a job for it or a
    /// newer checkpoint exists; older jobs that were never sent are marked
    /// `covered` (superseded: the new anchor will cover them). True when a
    /// job was added.
    pub async fn enqueue_anchor(
        &self,
        target: &str,
        size: u64,
        idempotency_key: &str,
    ) -> Result<bool, LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        let n = tx
            .execute(
                "INSERT INTO anchor_jobs (target, checkpoint_size, idempotency_key) \
                 SELECT $1, $2, $3 WHERE NOT EXISTS \
                   (SELECT 1 FROM anchor_jobs WHERE target = $1 AND checkpoint_size >= $2) \
                 ON CONFLICT DO NOTHING",
                &[&target, &(size as i64), &idempotency_key],
            )
            .await?;
        if n == 1 {
            tx.execute(
                "UPDATE anchor_jobs SET state = 'covered', updated_at = now() \
                 WHERE target = $1 AND checkpoint_size < $2 AND state = 'pending'",
                &[&target, &(size as i64)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Claim the newest due job of `target` (`FOR UPDATE SKIP LOCKED`) and
    /// lease it for `lease_ms`: a `pending` job becomes `sending` — recorded
    /// before anything is sent.
    pub async fn claim_anchor_job(
        &self,
        target: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>, LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_opt(
                "WITH due AS ( \
                   SELECT id, state FROM anchor_jobs \
                   WHERE target = $1 AND state IN ('pending', 'sending', 'submitted') \
                     AND next_attempt_at <= now() \
                   ORDER BY checkpoint_size DESC LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 UPDATE anchor_jobs j SET attempts = j.attempts + 1, \
                   next_attempt_at = now() + $2::bigint * interval '1 millisecond', \
                   state = CASE WHEN j.state = 'pending' THEN 'sending' ELSE j.state END, \
                   updated_at = now() \
                 FROM due WHERE j.id = due.id \
                 RETURNING j.id, due.state, j.idempotency_key, j.attempts, j.tx_id, \
                   j.submission::text, j.checkpoint_size",
                &[&target, &lease_ms],
            )
            .await?;
        let Some(r) = r else { return Ok(None) };
        drop(c);
        let size = r.get::<_, i64>(6) as u64;
        let checkpoint = self.checkpoint(size).await?.ok_or_else(|| {
            LedgerError::Corrupt(format!("anchor job for missing checkpoint {size}"))
        })?;
        Ok(Some(ClaimedJob {
            id: r.get(0),
            target: target.to_owned(),
            prev_state: AnchorJobState::parse(r.get(1))?,
            idempotency_key: r.get(2),
            attempts: r.get(3),
            tx_id: r.get(4),
            submission: r.get(5),
            checkpoint,
        }))
    }

    /// Record what is about to be sent (before sending). False when the
    /// claim was lost.
    pub async fn record_anchor_prepared(
        &self,
        job: &ClaimedJob,
        tx_id: Option<&str>,
        submission_json: &str,
    ) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        let n = c
            .execute(
                "UPDATE anchor_jobs SET state = 'sending', tx_id = COALESCE($3, tx_id), \
                 submission = $4::text::jsonb, sent_at = now(), updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts, &tx_id, &submission_json],
            )
            .await?;
        Ok(n == 1)
    }

    /// The target accepted the transaction; poll it again after `poll_ms`.
    pub async fn record_anchor_submitted(
        &self,
        job: &ClaimedJob,
        tx_id: &str,
        poll_ms: i64,
    ) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        let n = c
            .execute(
                "UPDATE anchor_jobs SET state = 'submitted', tx_id = $3, last_error = NULL, \
                 last_error_class = NULL, \
                 next_attempt_at = now() + $4::bigint * interval '1 millisecond', updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts, &tx_id, &poll_ms],
            )
            .await?;
        Ok(n == 1)
    }

    /// A retriable failure: try again after `delay_ms`. `maybe_sent` keeps
    /// the job in `sending` (the target must be asked before a resubmission);
    /// otherwise it goes back to `pending` (and may be superseded).
    pub async fn record_anchor_retry(
        &self,
        job: &ClaimedJob,
        maybe_sent: bool,
        error: &str,
        delay_ms: i64,
    ) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        let n = c
            .execute(
                "UPDATE anchor_jobs SET \
                 state = CASE WHEN $3 OR state = 'submitted' THEN state ELSE 'pending' END, \
                 last_error = $4, last_error_class = 'retriable', \
                 next_attempt_at = now() + $5::bigint * interval '1 millisecond', updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts, &maybe_sent, &error, &delay_ms],
            )
            .await?;
        Ok(n == 1)
    }

    /// A permanent failure: the job stops; a later checkpoint's anchor will
    /// cover this one.
    pub async fn record_anchor_failed(
        &self,
        job: &ClaimedJob,
        error: &str,
    ) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        let n = c
            .execute(
                "UPDATE anchor_jobs SET state = 'failed', last_error = $3, \
                 last_error_class = 'permanent', updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts, &error],
            )
            .await?;
        Ok(n == 1)
    }

    /// The target does not have this job's transaction and a newer anchor
    /// already covers its checkpoint: stop without sending.
    pub async fn record_anchor_superseded(&self, job: &ClaimedJob) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        let n = c
            .execute(
                "UPDATE anchor_jobs SET state = 'covered', updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts],
            )
            .await?;
        Ok(n == 1)
    }

    /// True when `target` has a confirmed anchor of a checkpoint newer than
    /// `size`.
    pub async fn anchor_superseded(&self, target: &str, size: u64) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.query_one(
            "SELECT EXISTS (SELECT 1 FROM anchor_receipts WHERE target = $1 AND checkpoint_size > $2)",
            &[&target, &(size as i64)],
        )
        .await?
        .get(0))
    }

    /// In one transaction: the job becomes `confirmed`, its receipt is
    /// stored, every earlier checkpoint without an anchor of its own (back
    /// to the previous anchor) is recorded as covered by this one, and
    /// earlier jobs never sent become `covered`. `None` when the claim was
    /// lost (another instance owns the job now).
    pub async fn record_anchor_confirmed(
        &self,
        job: &ClaimedJob,
        receipt: &NewReceipt,
    ) -> Result<Option<Confirmed>, LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        let size = job.checkpoint.size as i64;
        let n = tx
            .execute(
                "UPDATE anchor_jobs SET state = 'confirmed', tx_id = $3, last_error = NULL, \
                 last_error_class = NULL, updated_at = now() \
                 WHERE id = $1 AND attempts = $2 AND state IN ('sending', 'submitted')",
                &[&job.id, &job.attempts, &receipt.tx_id],
            )
            .await?;
        if n != 1 {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO anchor_receipts (target, checkpoint_size, job_id, chain_kind, chain_id, \
             tx_id, block_number, block_hash, block_time_us, receipt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb)",
            &[
                &job.target,
                &size,
                &job.id,
                &receipt.chain_kind,
                &receipt.chain_id,
                &receipt.tx_id,
                &(receipt.block_number as i64),
                &receipt.block_hash,
                &receipt.block_time_us,
                &receipt.receipt_json,
            ],
        )
        .await?;
        let covered = tx
            .execute(
                "INSERT INTO anchor_coverage (target, checkpoint_size, covered_by_size) \
                 SELECT $1, c.size, $2 FROM checkpoints c \
                 WHERE c.size < $2 \
                   AND c.size > COALESCE((SELECT max(checkpoint_size) FROM anchor_receipts \
                                          WHERE target = $1 AND checkpoint_size < $2), 0) \
                   AND NOT EXISTS (SELECT 1 FROM anchor_receipts r \
                                   WHERE r.target = $1 AND r.checkpoint_size = c.size) \
                 ON CONFLICT DO NOTHING",
                &[&job.target, &size],
            )
            .await?;
        tx.execute(
            "UPDATE anchor_jobs SET state = 'covered', updated_at = now() \
             WHERE target = $1 AND checkpoint_size < $2 AND state = 'pending'",
            &[&job.target, &size],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Confirmed { covered }))
    }

    /// Final checkpoints newer than `target`'s newest anchor (the relay's
    /// backlog for that target).
    pub async fn anchor_backlog(&self, target: &str) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM checkpoints WHERE final_at_us IS NOT NULL AND size > \
                 COALESCE((SELECT max(checkpoint_size) FROM anchor_receipts WHERE target = $1), 0)",
                &[&target],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Final checkpoints with neither a receipt nor a coverage row on
    /// `target`, from size `from` on, in order.
    pub async fn anchor_uncovered(&self, target: &str, from: u64) -> Result<Vec<u64>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT c.size FROM checkpoints c WHERE c.final_at_us IS NOT NULL AND c.size >= $2 \
                 AND NOT EXISTS (SELECT 1 FROM anchor_receipts r WHERE r.target = $1 AND r.checkpoint_size = c.size) \
                 AND NOT EXISTS (SELECT 1 FROM anchor_coverage v WHERE v.target = $1 AND v.checkpoint_size = c.size) \
                 ORDER BY c.size",
                &[&target, &(from as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    /// Size of the largest checkpoint confirmed on `target` (0: none yet).
    /// One index lookup.
    pub async fn anchored_size(&self, target: &str) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_one(
                "SELECT coalesce(max(checkpoint_size), 0) FROM anchor_receipts WHERE target = $1",
                &[&target],
            )
            .await?;
        Ok(r.get::<_, i64>(0) as u64)
    }

    /// Receipts, by target then checkpoint size (`None`: every target).
    pub async fn anchor_receipts(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<AnchorReceipt>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "{SELECT_RECEIPT} WHERE $1::text IS NULL OR target = $1 ORDER BY target, checkpoint_size"
        );
        Ok(c.query(&q, &[&target])
            .await?
            .iter()
            .map(receipt_row)
            .collect())
    }

    /// Coverage rows of `target` with the covering anchor, by size.
    pub async fn anchor_coverage(&self, target: &str) -> Result<Vec<CoverageRow>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT v.checkpoint_size, c.created_at_us, v.covered_by_size, r.tx_id, r.block_number, \
                 (extract(epoch FROM r.confirmed_at) * 1000000)::bigint \
                 FROM anchor_coverage v \
                 JOIN checkpoints c ON c.size = v.checkpoint_size \
                 JOIN anchor_receipts r ON r.target = v.target AND r.checkpoint_size = v.covered_by_size \
                 WHERE v.target = $1 ORDER BY v.checkpoint_size",
                &[&target],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| CoverageRow {
                checkpoint_size: r.get::<_, i64>(0) as u64,
                checkpoint_created_at_us: r.get(1),
                covered_by_size: r.get::<_, i64>(2) as u64,
                covering_tx_id: r.get(3),
                covering_block_number: r.get::<_, i64>(4) as u64,
                covering_confirmed_at_us: r.get(5),
            })
            .collect())
    }

    /// Jobs of `target` by state name and count (for status output and
    /// tests).
    pub async fn anchor_job_counts(&self, target: &str) -> Result<Vec<(String, u64)>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT state, count(*) FROM anchor_jobs WHERE target = $1 GROUP BY state ORDER BY state",
                &[&target],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Re-drive anchoring of `target` from checkpoint size `from`: failed
    /// jobs there go back to `pending`, due now. Returns how many.
    pub async fn requeue_failed_anchors(
        &self,
        target: &str,
        from: u64,
    ) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.execute(
            "UPDATE anchor_jobs SET state = 'pending', next_attempt_at = now(), updated_at = now() \
             WHERE target = $1 AND checkpoint_size >= $2 AND state = 'failed'",
            &[&target, &(from as i64)],
        )
        .await?)
    }
}
