//! The witness's own store (`anchord witness`): per log origin, the latest
//! checkpoint it cosigned, in schema `anchord_witness` of the witness's own
//! database (migration set [`crate::migrate::WITNESS`]). A witness belongs to
//! another organisation; its database holds no ledger table.

use anchord_core::Digest32;
use deadpool_postgres::Pool;

use crate::{DatabaseConfig, LedgerError, Migration, migrate};

/// A handle on a witness's state: a connection pool plus its two queries.
#[derive(Clone)]
pub struct WitnessStore {
    pool: Pool,
}

impl std::fmt::Debug for WitnessStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessStore")
            .field("pool_status", &self.pool.status())
            .finish()
    }
}

impl WitnessStore {
    /// Build the pool (connections open lazily).
    pub fn connect(config: &DatabaseConfig) -> Result<Self, LedgerError> {
        Ok(WitnessStore {
            pool: crate::build_pool(config, false)?,
        })
    }

    /// Apply the witness's pending migrations (and only those).
    pub async fn migrate(&self) -> Result<Vec<&'static Migration>, LedgerError> {
        let mut c = self.pool.get().await?;
        migrate::apply(&mut c, &migrate::WITNESS).await
    }

    /// Round-trip a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let c = self.pool.get().await?;
        c.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The latest cosigned (size, root) for `origin`.
    pub async fn latest(&self, origin: &str) -> Result<Option<(u64, Digest32)>, LedgerError> {
        let c = self.pool.get().await?;
        c.query_opt(
            "SELECT size, root FROM anchord_witness.checkpoints WHERE origin = $1",
            &[&origin],
        )
        .await?
        .map(|r| {
            let size: i64 = r.get(0);
            let root: Vec<u8> = r.get(1);
            let root = Digest32::try_from(root.as_slice()).map_err(|_| {
                LedgerError::Corrupt(format!("witness root of {origin}: not 32 bytes"))
            })?;
            Ok((size as u64, root))
        })
        .transpose()
    }

    /// Compare-and-swap the state of `origin` from `old` (None: no row yet)
    /// to (`size`, `root`). False when someone else moved it first.
    pub async fn swap(
        &self,
        origin: &str,
        old: Option<(u64, Digest32)>,
        size: u64,
        root: &Digest32,
        checkpoint: &str,
        now_us: i64,
    ) -> Result<bool, LedgerError> {
        let c = self.pool.get().await?;
        let n = match old {
            None => {
                c.execute(
                    "INSERT INTO anchord_witness.checkpoints (origin, size, root, checkpoint, updated_at_us) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (origin) DO NOTHING",
                    &[&origin, &(size as i64), &root.as_slice(), &checkpoint, &now_us],
                )
                .await?
            }
            Some((old_size, old_root)) => {
                c.execute(
                    "UPDATE anchord_witness.checkpoints \
                     SET size = $2, root = $3, checkpoint = $4, updated_at_us = $5 \
                     WHERE origin = $1 AND size = $6 AND root = $7",
                    &[
                        &origin,
                        &(size as i64),
                        &root.as_slice(),
                        &checkpoint,
                        &now_us,
                        &(old_size as i64),
                        &old_root.as_slice(),
                    ],
                )
                .await?
            }
        };
        Ok(n == 1)
    }
}
