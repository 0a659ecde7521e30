//! The relay's outbox, receipts and coverage (`anchor_jobs`,
//! `anchor_receipt_log` and its live view `anchor_receipts`,
//! `anchor_coverage`, `anchor_chains`; migrations 0001, 0003 and 0005).
//!
//! A job is one (target, checkpoint). Its life:
//!
//! ```text
//! pending ──prepared (recorded before sending)──▶ sending ──send ok──▶ submitted ──poll──▶ confirmed
//!    ▲                                              │  │                   │                  │
//!    └──── failed before anything was recorded      │  └─ permanent ─▶ failed                 │
//!                                                   └── lookups until the target answers     │
//! pending ──a newer job was enqueued──▶ covered   (never sent: superseded)                  │
//! sending/submitted ──not on chain, a newer anchor confirmed──▶ covered                     │
//! confirmed ──its receipt is no longer on the chain (reorg, reset)──▶ lost ◀────────────────┘
//!            (a new job for the checkpoint re-pends the same submission after a reorg;
//!             after a chain reset the newest final checkpoint is anchored again)
//! ```
//!
//! Claiming does not change the state: a job is `sending` only once its
//! submission is recorded, so a job whose attempt failed before that is
//! plainly `pending` (nothing can be on chain). Claiming takes the row with
//! `FOR UPDATE SKIP LOCKED` and leases it by moving `next_attempt_at` past
//! the lease; `attempts` is incremented and serves as the fencing token:
//! every later write names the attempt it belongs to and is ignored once
//! another relay instance has re-claimed the job after the lease ran out.
//! Jobs that may be on chain (`sending`, `submitted`) are claimed before new
//! ones, so they keep being looked up (with backoff) while faults go on; a
//! job is `pending` again only when no attempt can have reached the target.
//!
//! Receipts are never deleted: a lost one is marked (`lost_at`,
//! `lost_reason`) and drops out of the `anchor_receipts` view that every
//! reader uses; so do the coverage rows that relied on it.

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
    /// Confirmed, then its anchor was no longer on the chain.
    Lost,
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
            AnchorJobState::Lost => "lost",
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
            "lost" => AnchorJobState::Lost,
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
    /// Hash of the chain's genesis block (binds the receipt to one chain).
    pub genesis_hash: Option<String>,
    /// Everything a verifier needs to look the anchor up (JSON object text).
    pub receipt_json: String,
}

/// A stored receipt (live or lost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorReceipt {
    /// Surrogate id (`anchor_receipt_log.id`).
    pub id: i64,
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
    pub genesis_hash: Option<String>,
    /// When the relay found the anchor gone (`None`: it stands).
    pub lost_at_us: Option<i64>,
    pub lost_reason: Option<String>,
    /// The last re-verification on the chain and the confirmations then.
    pub verified_at_us: Option<i64>,
    pub verified_depth: Option<u64>,
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

/// A chain as a target last saw it: its id and its genesis block's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainIdentity {
    pub chain_id: String,
    pub genesis_hash: String,
}

/// What marking anchors lost did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossOutcome {
    /// Receipts marked lost.
    pub receipts_lost: u64,
    /// Coverage rows that relied on them, marked lost.
    pub coverage_lost: u64,
    /// Submissions of jobs in flight that were signed for the old chain,
    /// discarded unsent (the jobs go back to `pending`).
    pub submissions_discarded: u64,
    /// Jobs created to anchor a checkpoint again.
    pub jobs_created: u64,
    /// Checkpoints covered again by a later anchor that still stands.
    pub recovered: u64,
}

/// One checkpoint's anchoring on a target, for `relay gaps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorTimelineRow {
    pub size: u64,
    pub created_at_us: i64,
    pub final_at_us: Option<i64>,
    /// Its own live receipt: (tx id, block number, confirmed at).
    pub own: Option<(String, u64, i64)>,
    /// The live anchor covering it: (size, tx id, block number, confirmed at).
    pub covered_by: Option<(u64, String, u64, i64)>,
    /// Receipts of this checkpoint that were lost: (tx id, lost at, reason).
    pub lost: Vec<(String, i64, String)>,
}

/// Where anchoring on one target stands, for `anchord status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnchorHealth {
    pub target: String,
    /// Receipts that stand, and how many of those were never re-verified.
    pub live_receipts: u64,
    pub unverified_receipts: u64,
    /// Smallest confirmation depth seen at the last re-verification of a
    /// live receipt (finality progress).
    pub min_verified_depth: Option<u64>,
    /// Receipts marked lost (reorg, chain reset), ever.
    pub lost_receipts: u64,
    pub last_lost_at_us: Option<i64>,
    pub last_lost_reason: Option<String>,
    /// Final checkpoints neither anchored nor covered by a live anchor.
    pub uncovered_checkpoints: u64,
    /// Chain resets detected on this target.
    pub chain_resets: u64,
    pub chain_id: Option<String>,
    pub genesis_hash: Option<String>,
    /// Jobs by state.
    pub jobs: Vec<(String, u64)>,
}

const SELECT_RECEIPT: &str = "SELECT id, target, checkpoint_size, job_id, chain_kind, chain_id, tx_id, \
     block_number, block_hash, block_time_us, receipt::text, \
     (extract(epoch FROM confirmed_at) * 1000000)::bigint, genesis_hash, \
     (extract(epoch FROM lost_at) * 1000000)::bigint, lost_reason, \
     (extract(epoch FROM verified_at) * 1000000)::bigint, verified_depth \
     FROM anchor_receipt_log";

fn receipt_row(r: &Row) -> AnchorReceipt {
    AnchorReceipt {
        id: r.get(0),
        target: r.get(1),
        checkpoint_size: r.get::<_, i64>(2) as u64,
        job_id: r.get(3),
        chain_kind: r.get(4),
        chain_id: r.get(5),
        tx_id: r.get(6),
        block_number: r.get::<_, i64>(7) as u64,
        block_hash: r.get(8),
        block_time_us: r.get(9),
        receipt_json: r.get(10),
        confirmed_at_us: r.get(11),
        genesis_hash: r.get(12),
        lost_at_us: r.get(13),
        lost_reason: r.get(14),
        verified_at_us: r.get(15),
        verified_depth: r.get::<_, Option<i64>>(16).map(|d| d as u64),
    }
}

/// Inside a transaction: every checkpoint of `target` without a live receipt
/// or live coverage, below some live receipt, is recorded as covered by the
/// smallest live receipt above it (its block log includes theirs).
/// The first key of the transaction-level advisory lock that orders the
/// transactions changing one target's anchors ("anch" as an int4; the
/// second key is the target's `hashtext`). Two-key advisory locks do not
/// share the one-key space of the sealer's and the migrations' locks.
const ANCHOR_LOCK_CLASS: i32 = 0x616e_6368;

/// Inside a transaction: wait for the other transactions changing
/// `target`'s receipts or coverage to commit, and hold them off until this
/// one does. Each of them computes coverage from the receipts it sees: a
/// confirmation that still sees an anchor as live while a reset marks it
/// lost (and the reset not yet seeing the new receipt) would otherwise
/// leave the lost anchor's checkpoint covered by neither, with no job to
/// anchor it again (found in CI: a relay test waiting 30 s for it).
async fn lock_target(
    tx: &deadpool_postgres::Transaction<'_>,
    target: &str,
) -> Result<(), LedgerError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&ANCHOR_LOCK_CLASS, &target],
    )
    .await?;
    Ok(())
}

async fn recover_coverage(
    tx: &deadpool_postgres::Transaction<'_>,
    target: &str,
) -> Result<u64, LedgerError> {
    Ok(tx
        .execute(
            "INSERT INTO anchor_coverage (target, checkpoint_size, covered_by_size, covering_receipt_id) \
             SELECT $1, c.size, r.checkpoint_size, r.id FROM checkpoints c \
             CROSS JOIN LATERAL (SELECT checkpoint_size, id FROM anchor_receipt_log \
                 WHERE target = $1 AND lost_at IS NULL AND checkpoint_size > c.size \
                 ORDER BY checkpoint_size LIMIT 1) r \
             WHERE NOT EXISTS (SELECT 1 FROM anchor_receipt_log o WHERE o.target = $1 \
                   AND o.checkpoint_size = c.size AND o.lost_at IS NULL) \
               AND NOT EXISTS (SELECT 1 FROM anchor_coverage v WHERE v.target = $1 \
                   AND v.checkpoint_size = c.size AND v.lost_at IS NULL) \
             ON CONFLICT DO NOTHING",
            &[&target],
        )
        .await?)
}

/// Inside a transaction: mark the live receipts matched by `filter` (SQL
/// over `anchor_receipt_log`, `$1` the target, `$2` the reason) lost, with
/// the coverage rows relying on them; their jobs become `lost`. Returns
/// (receipts, coverage rows, lost job ids).
async fn mark_lost(
    tx: &deadpool_postgres::Transaction<'_>,
    target: &str,
    reason: &str,
    filter: &str,
    extra: Option<&(dyn tokio_postgres::types::ToSql + Sync)>,
) -> Result<(u64, u64, Vec<i64>), LedgerError> {
    let q = format!(
        "UPDATE anchor_receipt_log SET lost_at = now(), lost_reason = $2 \
         WHERE target = $1 AND lost_at IS NULL AND ({filter}) RETURNING id, job_id"
    );
    let rows = match extra {
        Some(x) => tx.query(&q, &[&target, &reason, x]).await?,
        None => tx.query(&q, &[&target, &reason]).await?,
    };
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let jobs: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
    if ids.is_empty() {
        return Ok((0, 0, jobs));
    }
    let coverage = tx
        .execute(
            "UPDATE anchor_coverage SET lost_at = now() \
             WHERE covering_receipt_id = ANY($1) AND lost_at IS NULL",
            &[&ids],
        )
        .await?;
    tx.execute(
        "UPDATE anchor_jobs SET state = 'lost', last_error = $2, last_error_class = NULL, \
         updated_at = now() WHERE id = ANY($1)",
        &[&jobs, &reason],
    )
    .await?;
    Ok((ids.len() as u64, coverage, jobs))
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

    /// Add a job for checkpoint `size` on `target` unless a live job (not
    /// `lost`) for it or a newer checkpoint exists; older jobs that were
    /// never sent are marked `covered` (superseded: the new anchor will
    /// cover them). True when a job was added.
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
                   (SELECT 1 FROM anchor_jobs WHERE target = $1 AND checkpoint_size >= $2 \
                      AND state <> 'lost') \
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

    /// Claim a due job of `target` (`FOR UPDATE SKIP LOCKED`) and lease it
    /// for `lease_ms`. Jobs that may be on chain (`sending`, `submitted`)
    /// come first, then the newest. The state is not changed: a job becomes
    /// `sending` only when its submission is recorded
    /// ([`Ledger::record_anchor_prepared`]).
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
                   ORDER BY (state IN ('sending', 'submitted')) DESC, checkpoint_size DESC \
                   LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 UPDATE anchor_jobs j SET attempts = j.attempts + 1, \
                   next_attempt_at = now() + $2::bigint * interval '1 millisecond', \
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

    /// Record what is about to be sent (before sending): the job becomes
    /// `sending`. A different submission recorded earlier is kept in
    /// `discarded_submissions` (it is never sent again). False when the
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
                "UPDATE anchor_jobs SET state = 'sending', tx_id = $3, \
                 discarded_submissions = CASE \
                   WHEN submission IS NULL OR submission = $4::text::jsonb THEN discarded_submissions \
                   ELSE discarded_submissions || jsonb_build_array(jsonb_build_object( \
                     'submission', submission, 'discardedAt', now(), 'reason', 'replaced')) END, \
                 submission = $4::text::jsonb, sent_at = now(), updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts, &tx_id, &submission_json],
            )
            .await?;
        Ok(n == 1)
    }

    /// The recorded submission can never land where the target now is (it
    /// was signed for a chain that is gone): keep it in
    /// `discarded_submissions` with `reason`, clear it, and put the job back
    /// to `pending` (still leased by this claim). False when the claim was
    /// lost.
    pub async fn discard_anchor_submission(
        &self,
        job: &ClaimedJob,
        reason: &str,
    ) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        let n = c
            .execute(
                "UPDATE anchor_jobs SET state = 'pending', tx_id = NULL, submission = NULL, \
                 discarded_submissions = discarded_submissions || jsonb_build_array(jsonb_build_object( \
                   'submission', submission, 'discardedAt', now(), 'reason', $3::text)), \
                 updated_at = now() \
                 WHERE id = $1 AND attempts = $2 AND submission IS NOT NULL",
                &[&job.id, &job.attempts, &reason],
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

    /// A retriable failure: try again after `delay_ms`. `maybe_sent` (this
    /// or an earlier attempt may have reached the target) keeps the job
    /// `sending`/`submitted`; otherwise nothing of it was ever sent and it
    /// is `pending` (and may be superseded). A recorded submission is kept
    /// either way and looked up before anything is resent.
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
    /// already covers its checkpoint: stop without sending. In one
    /// transaction the checkpoint is also recorded as covered by the nearest
    /// live anchor above it, unless it has a live receipt or live coverage
    /// already. (A loss and a newer confirmation committed concurrently can
    /// each miss the other: the confirmation then covers nothing below it,
    /// the loss re-covers nothing, and without this row the checkpoint would
    /// stay uncovered with no job left to anchor it.)
    pub async fn record_anchor_superseded(&self, job: &ClaimedJob) -> Result<bool, LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        lock_target(&tx, &job.target).await?;
        let size = job.checkpoint.size as i64;
        let n = tx
            .execute(
                "UPDATE anchor_jobs SET state = 'covered', updated_at = now() \
                 WHERE id = $1 AND attempts = $2",
                &[&job.id, &job.attempts],
            )
            .await?;
        if n != 1 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO anchor_coverage (target, checkpoint_size, covered_by_size, covering_receipt_id) \
             SELECT $1, $2, r.checkpoint_size, r.id FROM anchor_receipt_log r \
             WHERE r.target = $1 AND r.checkpoint_size > $2 AND r.lost_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM anchor_coverage v WHERE v.target = $1 \
                               AND v.checkpoint_size = $2 AND v.lost_at IS NULL) \
               AND NOT EXISTS (SELECT 1 FROM anchor_receipt_log x WHERE x.target = $1 \
                               AND x.checkpoint_size = $2 AND x.lost_at IS NULL) \
             ORDER BY r.checkpoint_size LIMIT 1 \
             ON CONFLICT DO NOTHING",
            &[&job.target, &size],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// True when `target` has a live anchor of a checkpoint newer than
    /// `size`.
    pub async fn anchor_superseded(&self, target: &str, size: u64) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.query_one(
            "SELECT EXISTS (SELECT 1 FROM anchor_receipt_log WHERE target = $1 \
             AND checkpoint_size > $2 AND lost_at IS NULL)",
            &[&target, &(size as i64)],
        )
        .await?
        .get(0))
    }

    /// In one transaction: the job becomes `confirmed`, its receipt is
    /// stored, every earlier checkpoint without a live anchor or live
    /// coverage (back to the previous live anchor) is recorded as covered by
    /// this one, and earlier jobs never sent become `covered`. `None` when
    /// the claim was lost (another instance owns the job now).
    pub async fn record_anchor_confirmed(
        &self,
        job: &ClaimedJob,
        receipt: &NewReceipt,
    ) -> Result<Option<Confirmed>, LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        lock_target(&tx, &job.target).await?;
        let size = job.checkpoint.size as i64;
        let n = tx
            .execute(
                "UPDATE anchor_jobs SET state = 'confirmed', tx_id = $3, last_error = NULL, \
                 last_error_class = NULL, updated_at = now() \
                 WHERE id = $1 AND attempts = $2 AND state IN ('pending', 'sending', 'submitted')",
                &[&job.id, &job.attempts, &receipt.tx_id],
            )
            .await?;
        if n != 1 {
            return Ok(None);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO anchor_receipt_log (target, checkpoint_size, job_id, chain_kind, chain_id, \
                 tx_id, block_number, block_hash, block_time_us, receipt, genesis_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11) RETURNING id",
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
                    &receipt.genesis_hash,
                ],
            )
            .await?
            .get(0);
        let covered = tx
            .execute(
                "INSERT INTO anchor_coverage (target, checkpoint_size, covered_by_size, covering_receipt_id) \
                 SELECT $1, c.size, $2, $3 FROM checkpoints c \
                 WHERE c.size < $2 \
                   AND c.size > COALESCE((SELECT max(checkpoint_size) FROM anchor_receipt_log \
                                          WHERE target = $1 AND checkpoint_size < $2 \
                                            AND lost_at IS NULL), 0) \
                   AND NOT EXISTS (SELECT 1 FROM anchor_coverage v WHERE v.target = $1 \
                                   AND v.checkpoint_size = c.size AND v.lost_at IS NULL) \
                 ON CONFLICT DO NOTHING",
                &[&job.target, &size, &id],
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

    /// Final checkpoints with neither a live receipt nor live coverage on
    /// `target`: what the relay still has to anchor (its backlog, including
    /// checkpoints whose anchor was lost). Computed from the ledger.
    pub async fn anchor_backlog(&self, target: &str) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM checkpoints c WHERE c.final_at_us IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM anchor_receipt_log r WHERE r.target = $1 \
                     AND r.checkpoint_size = c.size AND r.lost_at IS NULL) \
                 AND NOT EXISTS (SELECT 1 FROM anchor_coverage v WHERE v.target = $1 \
                     AND v.checkpoint_size = c.size AND v.lost_at IS NULL)",
                &[&target],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Final checkpoints with neither a live receipt nor live coverage on
    /// `target`, from size `from` on, in order.
    pub async fn anchor_uncovered(&self, target: &str, from: u64) -> Result<Vec<u64>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT c.size FROM checkpoints c WHERE c.final_at_us IS NOT NULL AND c.size >= $2 \
                 AND NOT EXISTS (SELECT 1 FROM anchor_receipt_log r WHERE r.target = $1 \
                     AND r.checkpoint_size = c.size AND r.lost_at IS NULL) \
                 AND NOT EXISTS (SELECT 1 FROM anchor_coverage v WHERE v.target = $1 \
                     AND v.checkpoint_size = c.size AND v.lost_at IS NULL) \
                 ORDER BY c.size",
                &[&target, &(from as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    /// Size of the largest checkpoint with a live anchor on `target` (0:
    /// none). One index lookup.
    pub async fn anchored_size(&self, target: &str) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_one(
                "SELECT coalesce(max(checkpoint_size), 0) FROM anchor_receipt_log \
                 WHERE target = $1 AND lost_at IS NULL",
                &[&target],
            )
            .await?;
        Ok(r.get::<_, i64>(0) as u64)
    }

    /// Live receipts (anchors that stand), by target then checkpoint size
    /// (`None`: every target).
    pub async fn anchor_receipts(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<AnchorReceipt>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "{SELECT_RECEIPT} WHERE ($1::text IS NULL OR target = $1) AND lost_at IS NULL \
             ORDER BY target, checkpoint_size"
        );
        Ok(c.query(&q, &[&target])
            .await?
            .iter()
            .map(receipt_row)
            .collect())
    }

    /// Receipts marked lost, by target then checkpoint size then loss time.
    pub async fn anchor_lost_receipts(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<AnchorReceipt>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "{SELECT_RECEIPT} WHERE ($1::text IS NULL OR target = $1) AND lost_at IS NOT NULL \
             ORDER BY target, checkpoint_size, lost_at"
        );
        Ok(c.query(&q, &[&target])
            .await?
            .iter()
            .map(receipt_row)
            .collect())
    }

    /// Live coverage rows of `target` with the covering anchor, by size.
    /// Checkpoints that have a live anchor of their own are left out (a
    /// late own anchor can follow a coverage row).
    pub async fn anchor_coverage(&self, target: &str) -> Result<Vec<CoverageRow>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT v.checkpoint_size, c.created_at_us, r.checkpoint_size, r.tx_id, r.block_number, \
                 (extract(epoch FROM r.confirmed_at) * 1000000)::bigint \
                 FROM anchor_coverage v \
                 JOIN checkpoints c ON c.size = v.checkpoint_size \
                 JOIN anchor_receipt_log r ON r.id = v.covering_receipt_id \
                 WHERE v.target = $1 AND v.lost_at IS NULL AND r.lost_at IS NULL \
                   AND NOT EXISTS (SELECT 1 FROM anchor_receipt_log o WHERE o.target = $1 \
                       AND o.checkpoint_size = v.checkpoint_size AND o.lost_at IS NULL) \
                 ORDER BY v.checkpoint_size",
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

    /// Every checkpoint with how it is anchored on `target` (own live
    /// receipt, live coverage, lost receipts), by size.
    pub async fn anchor_timeline(
        &self,
        target: &str,
    ) -> Result<Vec<AnchorTimelineRow>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT c.size, c.created_at_us, c.final_at_us, \
                   o.tx_id, o.block_number, (extract(epoch FROM o.confirmed_at) * 1000000)::bigint, \
                   r.checkpoint_size, r.tx_id, r.block_number, \
                   (extract(epoch FROM r.confirmed_at) * 1000000)::bigint \
                 FROM checkpoints c \
                 LEFT JOIN anchor_receipt_log o ON o.target = $1 AND o.checkpoint_size = c.size \
                   AND o.lost_at IS NULL \
                 LEFT JOIN anchor_coverage v ON v.target = $1 AND v.checkpoint_size = c.size \
                   AND v.lost_at IS NULL \
                 LEFT JOIN anchor_receipt_log r ON r.id = v.covering_receipt_id AND r.lost_at IS NULL \
                 ORDER BY c.size",
                &[&target],
            )
            .await?;
        let lost = c
            .query(
                "SELECT checkpoint_size, tx_id, (extract(epoch FROM lost_at) * 1000000)::bigint, \
                 lost_reason FROM anchor_receipt_log WHERE target = $1 AND lost_at IS NOT NULL \
                 ORDER BY checkpoint_size, lost_at",
                &[&target],
            )
            .await?;
        let mut lost_by: std::collections::HashMap<u64, Vec<(String, i64, String)>> =
            std::collections::HashMap::new();
        for r in &lost {
            lost_by.entry(r.get::<_, i64>(0) as u64).or_default().push((
                r.get(1),
                r.get(2),
                r.get(3),
            ));
        }
        Ok(rows
            .iter()
            .map(|r| {
                let size = r.get::<_, i64>(0) as u64;
                AnchorTimelineRow {
                    size,
                    created_at_us: r.get(1),
                    final_at_us: r.get(2),
                    own: r
                        .get::<_, Option<String>>(3)
                        .map(|tx| (tx, r.get::<_, i64>(4) as u64, r.get::<_, i64>(5))),
                    covered_by: r.get::<_, Option<i64>>(6).map(|s| {
                        (
                            s as u64,
                            r.get::<_, String>(7),
                            r.get::<_, i64>(8) as u64,
                            r.get::<_, i64>(9),
                        )
                    }),
                    lost: lost_by.remove(&size).unwrap_or_default(),
                }
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

    /// The chain identity `target` last saw (`None`: never recorded).
    pub async fn anchor_chain(&self, target: &str) -> Result<Option<ChainIdentity>, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.query_opt(
            "SELECT chain_id, genesis_hash FROM anchor_chains WHERE target = $1",
            &[&target],
        )
        .await?
        .map(|r| ChainIdentity {
            chain_id: r.get(0),
            genesis_hash: r.get(1),
        }))
    }

    /// Record the chain identity of `target` when none is recorded yet.
    /// Returns what is recorded afterwards (another relay may have been
    /// first).
    pub async fn record_anchor_chain(
        &self,
        target: &str,
        id: &ChainIdentity,
    ) -> Result<ChainIdentity, LedgerError> {
        let c = self.pool().get().await?;
        c.execute(
            "INSERT INTO anchor_chains (target, chain_id, genesis_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (target) DO NOTHING",
            &[&target, &id.chain_id, &id.genesis_hash],
        )
        .await?;
        drop(c);
        self.anchor_chain(target)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("anchor_chains row of {target} vanished")))
    }

    /// `target` now serves a different chain than `old` (a reset: another
    /// genesis block). In one transaction, only if `old` is still the
    /// recorded identity: every live receipt not on the new chain is marked
    /// lost with its coverage, its job `lost`; jobs in flight whose
    /// submission was signed for another chain (it names that chain's
    /// genesis, as an EVM transaction does) get it discarded unsent (back to
    /// `pending`, fenced against the relay holding them); a submission that
    /// binds no chain (judicial: account and idempotency key) is kept, so the
    /// relay looks it up by key before sending anything (it may have reached
    /// the new chain before the reset was noticed); older
    /// never-sent jobs are superseded by the newest live one; checkpoints
    /// below an anchor that still stands are covered by it again; the new
    /// identity is recorded. `None` when another relay recorded the reset
    /// first.
    pub async fn record_chain_reset(
        &self,
        target: &str,
        old: &ChainIdentity,
        new: &ChainIdentity,
    ) -> Result<Option<LossOutcome>, LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        lock_target(&tx, target).await?;
        let n = tx
            .execute(
                "UPDATE anchor_chains SET chain_id = $4, genesis_hash = $5, seen_at = now(), \
                 resets = resets + 1 \
                 WHERE target = $1 AND chain_id = $2 AND genesis_hash = $3",
                &[
                    &target,
                    &old.chain_id,
                    &old.genesis_hash,
                    &new.chain_id,
                    &new.genesis_hash,
                ],
            )
            .await?;
        if n != 1 {
            return Ok(None);
        }
        let reason = format!(
            "chain reset: {} genesis {} is now {} genesis {}",
            old.chain_id, old.genesis_hash, new.chain_id, new.genesis_hash
        );
        let (receipts_lost, coverage_lost, _) = mark_lost(
            &tx,
            target,
            &reason,
            "genesis_hash IS DISTINCT FROM $3",
            Some(&new.genesis_hash),
        )
        .await?;
        let submissions_discarded = tx
            .execute(
                "UPDATE anchor_jobs SET state = 'pending', tx_id = NULL, submission = NULL, \
                 attempts = attempts + 1, next_attempt_at = now(), \
                 discarded_submissions = discarded_submissions || jsonb_build_array(jsonb_build_object( \
                   'submission', submission, 'discardedAt', now(), 'reason', $2::text)), \
                 updated_at = now() \
                 WHERE target = $1 AND state IN ('pending', 'sending', 'submitted') \
                   AND submission IS NOT NULL \
                   AND submission->'data'->>'genesis' IS NOT NULL \
                   AND submission->'data'->>'genesis' <> $3",
                &[&target, &reason, &new.genesis_hash],
            )
            .await?;
        tx.execute(
            "UPDATE anchor_jobs SET state = 'covered', updated_at = now() \
             WHERE target = $1 AND state = 'pending' AND submission IS NULL \
               AND checkpoint_size < (SELECT max(checkpoint_size) FROM anchor_jobs \
                   WHERE target = $1 AND state IN ('pending', 'sending', 'submitted', 'confirmed'))",
            &[&target],
        )
        .await?;
        let recovered = recover_coverage(&tx, target).await?;
        tx.commit().await?;
        Ok(Some(LossOutcome {
            receipts_lost,
            coverage_lost,
            submissions_discarded,
            jobs_created: 0,
            recovered,
        }))
    }

    /// Live receipts of `target` to re-verify: those never verified or
    /// verified at fewer than `final_depth` confirmations, least recently
    /// verified first, at most `limit`.
    pub async fn anchor_receipts_to_verify(
        &self,
        target: &str,
        final_depth: u64,
        limit: i64,
    ) -> Result<Vec<AnchorReceipt>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "{SELECT_RECEIPT} WHERE target = $1 AND lost_at IS NULL \
             AND (verified_depth IS NULL OR verified_depth < $2) \
             ORDER BY verified_at NULLS FIRST, checkpoint_size LIMIT $3"
        );
        Ok(c.query(&q, &[&target, &(final_depth as i64), &limit])
            .await?
            .iter()
            .map(receipt_row)
            .collect())
    }

    /// Live receipts of `target` not yet verified at `final_depth`
    /// confirmations (finality progress).
    pub async fn anchor_receipts_unfinal(
        &self,
        target: &str,
        final_depth: u64,
    ) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM anchor_receipt_log WHERE target = $1 AND lost_at IS NULL \
                 AND (verified_depth IS NULL OR verified_depth < $2)",
                &[&target, &(final_depth as i64)],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// A receipt was found in place on its chain with `depth` confirmations.
    pub async fn record_receipt_verified(&self, id: i64, depth: u64) -> Result<(), LedgerError> {
        let c = self.pool().get().await?;
        c.execute(
            "UPDATE anchor_receipt_log SET verified_at = now(), verified_depth = $2 \
             WHERE id = $1 AND lost_at IS NULL",
            &[&id, &(depth as i64)],
        )
        .await?;
        Ok(())
    }

    /// A mark of the anchor receipt log that moves whenever a receipt is
    /// recorded or lost: (the largest receipt id, how many are lost).
    /// Receipts are never deleted and a lost one stays lost, so neither
    /// number ever goes back, and a reader comparing marks sees every change,
    /// also a loss followed by a new receipt for the same target and
    /// checkpoint, which leaves every count of live receipts as it was.
    pub async fn anchor_log_mark(&self) -> Result<(i64, i64), LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_one(
                "SELECT coalesce(max(id), 0)::bigint, count(lost_at) FROM anchor_receipt_log",
                &[],
            )
            .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Receipt `id` is no longer on its chain (its block was reorganised
    /// away, or the transaction is not in it). In one transaction: the
    /// receipt is marked lost with its coverage rows, its job `lost`, and a
    /// new job for the same checkpoint re-pends the same submission
    /// (`submitted`, due now: the transaction is looked up again, may be
    /// mined anew, and is resent or re-signed only if it cannot be);
    /// checkpoints below an anchor that still stands are covered by it
    /// again. `None` when the receipt was already lost.
    pub async fn record_anchor_lost(
        &self,
        id: i64,
        reason: &str,
    ) -> Result<Option<LossOutcome>, LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        let Some(target) = tx
            .query_opt(
                "SELECT target FROM anchor_receipt_log WHERE id = $1 AND lost_at IS NULL",
                &[&id],
            )
            .await?
            .map(|r| r.get::<_, String>(0))
        else {
            return Ok(None);
        };
        // The target's lock before the receipt's row lock, in the order of
        // every other transaction taking both.
        lock_target(&tx, &target).await?;
        if tx
            .query_opt(
                "SELECT 1 FROM anchor_receipt_log WHERE id = $1 AND lost_at IS NULL FOR UPDATE",
                &[&id],
            )
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let (receipts_lost, coverage_lost, jobs) =
            mark_lost(&tx, &target, reason, "id = $3", Some(&id)).await?;
        let jobs_created = tx
            .execute(
                "INSERT INTO anchor_jobs (target, checkpoint_size, state, idempotency_key, tx_id, \
                 submission, sent_at, last_error, last_error_class) \
                 SELECT target, checkpoint_size, \
                   CASE WHEN submission IS NULL THEN 'pending' ELSE 'submitted' END, \
                   idempotency_key, tx_id, submission, sent_at, $2, 'retriable' \
                 FROM anchor_jobs j WHERE id = ANY($1) \
                   AND NOT EXISTS (SELECT 1 FROM anchor_jobs k WHERE k.target = j.target \
                       AND k.checkpoint_size = j.checkpoint_size AND k.state <> 'lost') \
                 ON CONFLICT DO NOTHING",
                &[&jobs, &reason],
            )
            .await?;
        let recovered = recover_coverage(&tx, &target).await?;
        tx.commit().await?;
        Ok(Some(LossOutcome {
            receipts_lost,
            coverage_lost,
            submissions_discarded: 0,
            jobs_created,
            recovered,
        }))
    }

    /// Where anchoring on `target` stands (for `anchord status`).
    pub async fn anchor_health(&self, target: &str) -> Result<AnchorHealth, LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_one(
                "SELECT \
                   (SELECT count(*) FROM anchor_receipt_log WHERE target = $1 AND lost_at IS NULL), \
                   (SELECT count(*) FROM anchor_receipt_log WHERE target = $1 AND lost_at IS NULL \
                      AND verified_at IS NULL), \
                   (SELECT min(verified_depth) FROM anchor_receipt_log WHERE target = $1 \
                      AND lost_at IS NULL), \
                   (SELECT count(*) FROM anchor_receipt_log WHERE target = $1 AND lost_at IS NOT NULL), \
                   (SELECT (extract(epoch FROM max(lost_at)) * 1000000)::bigint \
                      FROM anchor_receipt_log WHERE target = $1), \
                   (SELECT lost_reason FROM anchor_receipt_log WHERE target = $1 \
                      AND lost_at IS NOT NULL ORDER BY lost_at DESC, id DESC LIMIT 1), \
                   (SELECT resets FROM anchor_chains WHERE target = $1), \
                   (SELECT chain_id FROM anchor_chains WHERE target = $1), \
                   (SELECT genesis_hash FROM anchor_chains WHERE target = $1)",
                &[&target],
            )
            .await?;
        drop(c);
        Ok(AnchorHealth {
            target: target.to_owned(),
            live_receipts: r.get::<_, i64>(0) as u64,
            unverified_receipts: r.get::<_, i64>(1) as u64,
            min_verified_depth: r.get::<_, Option<i64>>(2).map(|d| d as u64),
            lost_receipts: r.get::<_, i64>(3) as u64,
            last_lost_at_us: r.get(4),
            last_lost_reason: r.get(5),
            chain_resets: r.get::<_, Option<i64>>(6).unwrap_or(0) as u64,
            chain_id: r.get(7),
            genesis_hash: r.get(8),
            uncovered_checkpoints: self.anchor_backlog(target).await?,
            jobs: self.anchor_job_counts(target).await?,
        })
    }
}
