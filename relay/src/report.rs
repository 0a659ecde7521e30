//! `anchord relay gaps`: outage windows per target (runs of checkpoints
//! that were not anchored themselves) and the anchors that cover them.

use anchord_ledger::{Ledger, LedgerError};
use serde::Serialize;

/// A run of consecutive checkpoints without an anchor of their own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub first_size: u64,
    pub last_size: u64,
    pub checkpoints: u64,
    pub first_created_at_us: Option<i64>,
    pub last_created_at_us: Option<i64>,
    /// The covering anchor: (checkpoint size, tx id, block number), or
    /// `None` for the open gap still waiting for an anchor.
    pub covered_by: Option<Covering>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Covering {
    pub size: u64,
    pub tx_id: String,
    pub block_number: u64,
    pub confirmed_at_us: i64,
}

/// Every gap of `target`, oldest first; the open gap (final checkpoints
/// neither anchored nor covered yet) last.
pub async fn gaps(ledger: &Ledger, target: &str) -> Result<Vec<Gap>, LedgerError> {
    let mut out: Vec<Gap> = Vec::new();
    for r in ledger.anchor_coverage(target).await? {
        if let Some(g) = out.last_mut()
            && g.last_size + 1 == r.checkpoint_size
            && g.covered_by.as_ref().map(|c| c.size) == Some(r.covered_by_size)
        {
            g.last_size = r.checkpoint_size;
            g.checkpoints += 1;
            g.last_created_at_us = Some(r.checkpoint_created_at_us);
            continue;
        }
        out.push(Gap {
            first_size: r.checkpoint_size,
            last_size: r.checkpoint_size,
            checkpoints: 1,
            first_created_at_us: Some(r.checkpoint_created_at_us),
            last_created_at_us: Some(r.checkpoint_created_at_us),
            covered_by: Some(Covering {
                size: r.covered_by_size,
                tx_id: r.covering_tx_id,
                block_number: r.covering_block_number,
                confirmed_at_us: r.covering_confirmed_at_us,
            }),
        });
    }
    let open = ledger.anchor_uncovered(target, 0).await?;
    if let (Some(first), Some(last)) = (open.first(), open.last()) {
        let created = |s: u64| async move {
            ledger
                .checkpoint(s)
                .await
                .map(|c| c.map(|c| c.created_at_us))
        };
        out.push(Gap {
            first_size: *first,
            last_size: *last,
            checkpoints: open.len() as u64,
            first_created_at_us: created(*first).await?,
            last_created_at_us: created(*last).await?,
            covered_by: None,
        });
    }
    Ok(out)
}
