//! One cheap read of where the ledger stands, for `anchord status`, the demo
//! and readiness pages.

use serde::Serialize;

use crate::{Ledger, LedgerError};

/// Counts and heads of every table the pipeline writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Entries in the ledger (the next sequence number).
    pub entries: u64,
    /// Sealed blocks.
    pub blocks: u64,
    /// Entries covered by sealed blocks.
    pub sealed_entries: u64,
    /// Size of the latest checkpoint of the block log (0: none yet).
    pub checkpoint_size: u64,
    /// Size of the latest checkpoint that reached its witness quorum.
    pub final_checkpoint_size: u64,
    /// Entries covered by that checkpoint (witnessed).
    pub witnessed_entries: u64,
    /// Dead letters recorded, and how many are not yet on the topic.
    pub dead_letters: u64,
    pub dead_letters_unpublished: u64,
    /// Confirmed anchor receipts, over all targets.
    pub anchors: u64,
    /// Per target that has confirmed at least one anchor: its head.
    pub targets: Vec<TargetHead>,
}

/// How far one anchoring target has got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TargetHead {
    pub target: String,
    /// Confirmed anchor receipts on this target.
    pub anchors: u64,
    /// Size of the largest checkpoint anchored (in blocks).
    pub checkpoint_size: u64,
    /// Entries covered by that checkpoint: every entry with a smaller
    /// sequence number is anchored on this target.
    pub entries: u64,
}

impl Ledger {
    /// Read the [`Summary`] in one round trip (index-only lookups; no scans
    /// of the evidence table).
    pub async fn summary(&self) -> Result<Summary, LedgerError> {
        let c = self.pool().get().await?;
        let r = c
            .query_one(
                "SELECT
                   (SELECT next_seq FROM ledger_head),
                   (SELECT coalesce(max(height) + 1, 0) FROM blocks),
                   (SELECT coalesce(max(last_seq) + 1, 0) FROM blocks),
                   (SELECT coalesce(max(size), 0) FROM checkpoints),
                   (SELECT coalesce(max(size), 0) FROM checkpoints WHERE final_at_us IS NOT NULL),
                   (SELECT count(*) FROM dead_letters),
                   (SELECT count(*) FROM dead_letters WHERE published_at IS NULL),
                   (SELECT count(*) FROM anchor_receipts),
                   (SELECT coalesce(max(b.last_seq) + 1, 0) FROM blocks b
                     WHERE b.height = (SELECT max(size) - 1 FROM checkpoints WHERE final_at_us IS NOT NULL))",
                &[],
            )
            .await?;
        let u = |i: usize| r.get::<_, i64>(i) as u64;
        Ok(Summary {
            entries: u(0),
            blocks: u(1),
            sealed_entries: u(2),
            checkpoint_size: u(3),
            final_checkpoint_size: u(4),
            dead_letters: u(5),
            dead_letters_unpublished: u(6),
            anchors: u(7),
            witnessed_entries: u(8),
            targets: self.target_heads(&c).await?,
        })
    }

    async fn target_heads(
        &self,
        c: &deadpool_postgres::Object,
    ) -> Result<Vec<TargetHead>, LedgerError> {
        let rows = c
            .query(
                "SELECT r.target, r.n, r.size, coalesce(b.last_seq + 1, 0)
                 FROM (SELECT target, count(*) AS n, max(checkpoint_size) AS size
                       FROM anchor_receipts GROUP BY target) r
                 LEFT JOIN blocks b ON b.height = r.size - 1
                 ORDER BY r.target",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TargetHead {
                target: r.get(0),
                anchors: r.get::<_, i64>(1) as u64,
                checkpoint_size: r.get::<_, i64>(2) as u64,
                entries: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }
}
