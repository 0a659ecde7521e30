//! Anchord's PostgreSQL ledger.
//!
//! Architecture invariant: this is the only crate that speaks SQL. Stages call
//! typed methods on [`Ledger`]; the schema lives in `migrations/` and the
//! invariants it enforces are listed at the top of `0001_init.sql`.

mod anchors;
mod blocks;
mod config;
mod evidence;
pub mod migrate;
mod proofs;
mod summary;
mod workflow_queries;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use anchors::{
    AnchorHealth, AnchorJobState, AnchorReceipt, AnchorTimelineRow, ChainIdentity, ClaimedJob,
    Confirmed, CoverageRow, LossOutcome, NewReceipt,
};
pub use blocks::{
    BATCHER_LOCK_KEY, LeaderSession, NewSeal, SignatureRole, SignatureRow, StoredBlock,
    StoredCheckpoint, Tip,
};
pub use config::DatabaseConfig;
pub use evidence::{
    AppendBatch, AppendOutcome, DeadLetter, ItemOutcome, NewEntry, Position, Rejection, Source,
    StoredEntry,
};
pub use migrate::{MIGRATIONS, Migration};
pub use proofs::ReceiptRow;
pub use summary::{Summary, TargetHead};
pub use workflow_queries::ChainEvent;

/// Everything that can go wrong talking to the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("could not get a PostgreSQL connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error("migration {version} ({name}): {reason}")]
    Migration {
        version: i32,
        name: &'static str,
        reason: String,
    },
    #[error(
        "this ledger was created with hash suite {stored}, but the deployment is configured for {configured}; \
         a tree never mixes suites"
    )]
    SuiteMismatch { stored: String, configured: String },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl LedgerError {
    /// True when retrying later may succeed (connection trouble, a
    /// serialisation failure, the server shutting down), false for errors a
    /// retry cannot fix (constraint violations, bad configuration, corruption).
    pub fn is_transient(&self) -> bool {
        match self {
            LedgerError::Pool(_) => true,
            LedgerError::Db(e) => match e.code() {
                None => true, // I/O or protocol: the connection is gone
                Some(code) => {
                    let c = code.code();
                    // 08: connection exception, 40: transaction rollback
                    // (serialisation, deadlock), 53: insufficient resources,
                    // 57P: operator intervention (shutdown, cancel).
                    c.starts_with("08")
                        || c.starts_with("40")
                        || c.starts_with("53")
                        || c.starts_with("57P")
                }
            },
            _ => false,
        }
    }
}

/// A handle on the ledger: a connection pool plus typed queries.
#[derive(Clone)]
pub struct Ledger {
    pool: Pool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("pool_status", &self.pool.status())
            .finish()
    }
}

impl Ledger {
    /// Build the pool. Connections are opened lazily; call [`Ledger::ping`]
    /// to check reachability.
    pub fn connect(config: &DatabaseConfig) -> Result<Self, LedgerError> {
        let pg = config.pg_config()?;
        let mgr = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(config.max_connections)
            .wait_timeout(Some(config.acquire_timeout))
            .create_timeout(Some(config.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| LedgerError::Config(e.to_string()))?;
        Ok(Ledger { pool })
    }

    /// Round-trip a trivial query.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        let c = self.pool.get().await?;
        c.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Apply pending migrations (idempotent; safe to run from several
    /// processes at once).
    pub async fn migrate(&self) -> Result<Vec<&'static Migration>, LedgerError> {
        let mut c = self.pool.get().await?;
        migrate::apply(&mut c, &migrate::LEDGER).await
    }

    /// Record the deployment's hash suite on first use; refuse a different
    /// one later.
    pub async fn ensure_suite(&self, suite: anchord_core::HashSuite) -> Result<(), LedgerError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('hash_suite', $1) ON CONFLICT (key) DO NOTHING",
            &[&suite.name()],
        )
        .await?;
        let row = c
            .query_one(
                "SELECT value FROM ledger_meta WHERE key = 'hash_suite'",
                &[],
            )
            .await?;
        let stored: String = row.get(0);
        if stored != suite.name() {
            return Err(LedgerError::SuiteMismatch {
                stored,
                configured: suite.name().into(),
            });
        }
        Ok(())
    }

    /// The pool, for crates in this workspace that extend the ledger's
    /// queries in their own modules of this crate.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }
}
