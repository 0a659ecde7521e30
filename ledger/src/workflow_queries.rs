//! Queries the workflow layer (`anchord-workflow`) needs from the ledger:
//! the chain events of its system log view, and the connection pool for its
//! own `workflow` schema (it never touches the ledger's tables directly).

use serde::Serialize;

use crate::{Ledger, LedgerError};

/// One event of the chain's history, newest first in
/// [`Ledger::chain_events`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainEvent {
    /// `block_sealed`, `checkpoint_signed`, `checkpoint_final`,
    /// `anchor_confirmed` or `anchor_failed`.
    pub kind: String,
    /// When it happened, Unix microseconds.
    pub at_us: i64,
    /// Block height or checkpoint size the event is about.
    pub subject: i64,
    /// A short human-readable description (target, tx id, error).
    pub detail: String,
}

impl Ledger {
    /// The connection pool, for the workflow crate's own `workflow` schema
    /// (its migrations and tables). Ledger tables are read only through the
    /// typed methods of this crate.
    pub fn workflow_pool(&self) -> deadpool_postgres::Pool {
        self.pool().clone()
    }

    /// The newest `limit` chain events: sealed blocks, signed and final
    /// checkpoints, confirmed anchors and anchor jobs that failed or are
    /// retrying with an error.
    pub async fn chain_events(
        &self,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ChainEvent>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "(SELECT 'block_sealed', sealed_at_us, height,
                         'entries ' || first_seq || '..' || last_seq
                    FROM blocks WHERE $2::text IS NULL OR $2 = 'block_sealed'
                   ORDER BY height DESC LIMIT $1)
                 UNION ALL
                 (SELECT 'checkpoint_signed', created_at_us, size, origin
                    FROM checkpoints WHERE $2::text IS NULL OR $2 = 'checkpoint_signed'
                   ORDER BY size DESC LIMIT $1)
                 UNION ALL
                 (SELECT 'checkpoint_final', final_at_us, size, origin
                    FROM checkpoints
                   WHERE final_at_us IS NOT NULL AND ($2::text IS NULL OR $2 = 'checkpoint_final')
                   ORDER BY size DESC LIMIT $1)
                 UNION ALL
                 (SELECT 'anchor_confirmed',
                         (extract(epoch FROM confirmed_at) * 1000000)::bigint, checkpoint_size,
                         target || ' ' || chain_kind || ' ' || chain_id || ' tx ' || tx_id
                    FROM anchor_receipts WHERE $2::text IS NULL OR $2 = 'anchor_confirmed'
                   ORDER BY confirmed_at DESC LIMIT $1)
                 UNION ALL
                 (SELECT 'anchor_failed',
                         (extract(epoch FROM updated_at) * 1000000)::bigint, checkpoint_size,
                         target || ' ' || state || ': ' || coalesce(last_error, '')
                    FROM anchor_jobs
                   WHERE (state = 'failed' OR last_error IS NOT NULL)
                     AND ($2::text IS NULL OR $2 = 'anchor_failed')
                   ORDER BY updated_at DESC LIMIT $1)
                 ORDER BY 2 DESC, 3 DESC LIMIT $1",
                &[&limit, &kind],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ChainEvent {
                kind: r.get::<_, String>(0),
                at_us: r.get(1),
                subject: r.get(2),
                detail: r.get(3),
            })
            .collect())
    }
}
