//! Queries the verifier needs to assemble proof bundles: the block holding a
//! sequence number, the block log's leaves, the anchored checkpoints and
//! their receipts (`docs/proof-format.md`).
//!
//! `anchor_receipts` / `anchor_jobs` are written by the relay; the column
//! meanings the verifier relies on (0001_init.sql): `target` the configured
//! target name, `checkpoint_size` the anchored checkpoint, `chain_kind`,
//! `chain_id`, `tx_id`, `block_number`, `block_hash`, `block_time_us` where
//! the chain recorded it, `receipt` the chain-specific raw receipt.
//! [`Ledger::record_anchor_receipt`] writes one (with its job) for tests and
//! tools until the relay lands.

use anchord_core::Digest32;

use crate::blocks::StoredBlock;
use crate::{Ledger, LedgerError};

/// One row of `anchor_receipts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRow {
    pub target: String,
    pub checkpoint_size: u64,
    pub chain_kind: String,
    pub chain_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub block_hash: String,
    pub block_time_us: i64,
    /// The raw receipt, JSON text.
    pub receipt: String,
}

impl Ledger {
    /// The sealed block whose range holds `seq`, if it is sealed yet.
    pub async fn block_containing(&self, seq: u64) -> Result<Option<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let row = c
            .query_opt(
                "SELECT height FROM blocks WHERE first_seq <= $1 AND last_seq >= $1 \
                 ORDER BY first_seq DESC LIMIT 1",
                &[&(seq as i64)],
            )
            .await?;
        drop(c);
        match row {
            Some(r) => self.block(r.get::<_, i64>(0) as u64).await,
            None => Ok(None),
        }
    }

    /// Blocks of heights `from..` in height order (the verifier caches
    /// headers: they never change).
    pub async fn blocks_from(&self, from: u64) -> Result<Vec<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT height FROM blocks WHERE height >= $1 ORDER BY height",
                &[&(from as i64)],
            )
            .await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let h = r.get::<_, i64>(0) as u64;
            match self.block(h).await? {
                Some(b) => out.push(b),
                None => return Err(LedgerError::Corrupt(format!("block {h} vanished"))),
            }
        }
        Ok(out)
    }

    /// Block hashes of heights `from..` in height order: the block log's
    /// leaves (the verifier caches them and asks only for new ones).
    pub async fn block_hashes_from(&self, from: u64) -> Result<Vec<Digest32>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT height, block_hash FROM blocks WHERE height >= $1 ORDER BY height",
                &[&(from as i64)],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let h: i64 = r.get(0);
            if h as u64 != from + i as u64 {
                return Err(LedgerError::Corrupt(format!("block log gap at height {h}")));
            }
            let v: Vec<u8> = r.get(1);
            out.push(v.try_into().map_err(|_| {
                LedgerError::Corrupt(format!("block {h}: block_hash is not 32 bytes"))
            })?);
        }
        Ok(out)
    }

    /// The smallest checkpoint size that some target anchored and that
    /// covers block `height` (size > height).
    pub async fn first_anchored_size_covering(
        &self,
        height: u64,
    ) -> Result<Option<u64>, LedgerError> {
        let c = self.pool().get().await?;
        let v: Option<i64> = c
            .query_one(
                "SELECT min(checkpoint_size) FROM anchor_receipts WHERE checkpoint_size > $1",
                &[&(height as i64)],
            )
            .await?
            .get(0);
        Ok(v.map(|v| v as u64))
    }

    /// For every target, its receipt of the smallest anchored checkpoint of
    /// size >= `size`, by target name.
    pub async fn anchor_receipts_from(&self, size: u64) -> Result<Vec<ReceiptRow>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT DISTINCT ON (target) target, checkpoint_size, chain_kind, chain_id, tx_id, \
                 block_number, block_hash, block_time_us, receipt::text \
                 FROM anchor_receipts WHERE checkpoint_size >= $1 ORDER BY target, checkpoint_size",
                &[&(size as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ReceiptRow {
                target: r.get(0),
                checkpoint_size: r.get::<_, i64>(1) as u64,
                chain_kind: r.get(2),
                chain_id: r.get(3),
                tx_id: r.get(4),
                block_number: r.get::<_, i64>(5) as u64,
                block_hash: r.get(6),
                block_time_us: r.get(7),
                receipt: r.get(8),
            })
            .collect())
    }

    /// Record a confirmed anchor (job + receipt, one transaction). The relay
    /// has its own path; this is for tests and tools.
    pub async fn record_anchor_receipt(&self, r: &ReceiptRow) -> Result<(), LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        let size = r.checkpoint_size as i64;
        let job: i64 = tx
            .query_one(
                "INSERT INTO anchor_jobs (target, checkpoint_size, state, idempotency_key, tx_id) \
                 VALUES ($1, $2, 'confirmed', $3, $4) RETURNING id",
                &[
                    &r.target,
                    &size,
                    &format!("{}:{}", r.target, r.checkpoint_size),
                    &r.tx_id,
                ],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO anchor_receipts (target, checkpoint_size, job_id, chain_kind, chain_id, \
             tx_id, block_number, block_hash, block_time_us, receipt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb)",
            &[
                &r.target,
                &size,
                &job,
                &r.chain_kind,
                &r.chain_id,
                &r.tx_id,
                &(r.block_number as i64),
                &r.block_hash,
                &r.block_time_us,
                &r.receipt,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
