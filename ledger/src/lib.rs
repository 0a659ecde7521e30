//! Anchord's PostgreSQL ledger.
//!
//! Architecture invariant: this is the only crate that speaks SQL. Stages call
//! typed methods on [`Ledger`]; the schema lives in `migrations/` and the
//! invariants it enforces are listed at the top of `0001_init.sql`.

mod anchors;
mod batch;
mod blocks;
mod config;
mod evidence;
mod filters;
mod identities;
pub mod migrate;
pub mod plan;
mod proofs;
mod summary;
mod tiles;
mod witness;
mod workflow_queries;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use anchors::{
    AnchorHealth, AnchorJobState, AnchorReceipt, AnchorTimelineRow, ChainIdentity, ClaimedJob,
    Confirmed, CoverageRow, LossOutcome, NewReceipt,
};
pub use batch::{AppendBatch, ItemOutcome, NewEntry, Position, Rejection, Source};
pub use blocks::{
    BATCHER_LOCK_KEY, LeaderSession, NewSeal, SignatureRole, SignatureRow, StoredBlock,
    StoredCheckpoint, Tip,
};
pub use config::DatabaseConfig;
pub use evidence::{
    AppendHint, AppendOutcome, CommitTimings, Committed, DeadLetter, HeldHead, PredictionMiss,
    PrepareTimings, PreparedAppend, StoredEntry,
};
pub use filters::{ClosedFilter, FilterSet, FilterWork};
pub use identities::IdentityCheck;
pub use migrate::{MIGRATIONS, Migration, SchemaState};
pub use proofs::{ProofAnswer, ProofBatch, ProofKey, ProofRow, ReceiptRow};
pub use summary::{Summary, TargetHead};
pub use tiles::{LeafTile, StoredTile, TileData, leaf_tiles_of};
pub use witness::WitnessStore;
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
    /// A read-only opening found the schema not at the binary's version.
    #[error("{0}")]
    Schema(String),
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
    /// Identity filters of closed partitions, loaded once and shared by
    /// clones (identities.rs).
    filters: std::sync::Arc<filters::FilterCache>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("pool_status", &self.pool.status())
            .finish()
    }
}

/// The pool behind [`Ledger`] and [`WitnessStore`]. With `read_only`, every
/// session starts with `default_transaction_read_only = on`, so PostgreSQL
/// itself refuses any write (and a hot standby or a SELECT-only role works).
pub(crate) fn build_pool(config: &DatabaseConfig, read_only: bool) -> Result<Pool, LedgerError> {
    let mut pg = config.pg_config()?;
    if read_only {
        let opts = match pg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c default_transaction_read_only=on"),
            _ => "-c default_transaction_read_only=on".to_owned(),
        };
        pg.options(&opts);
    }
    let mgr = Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(config.max_connections)
        .wait_timeout(Some(config.acquire_timeout))
        .create_timeout(Some(config.connect_timeout))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| LedgerError::Config(e.to_string()))
}

impl Ledger {
    /// Build the pool. Connections are opened lazily; call [`Ledger::ping`]
    /// to check reachability.
    pub fn connect(config: &DatabaseConfig) -> Result<Self, LedgerError> {
        Ok(Ledger {
            pool: build_pool(config, false)?,
            filters: Default::default(),
        })
    }

    /// Build a pool whose sessions are read-only (for readers: the verifier,
    /// `audit`, `status`, `relay gaps`). Follow with
    /// [`Ledger::check_schema`]; a reader never migrates.
    pub fn connect_read_only(config: &DatabaseConfig) -> Result<Self, LedgerError> {
        Ok(Ledger {
            pool: build_pool(config, true)?,
            filters: Default::default(),
        })
    }

    /// Check, without writing, that the schema is the one this binary
    /// expects and that the recorded hash suite (if any) is `suite`. The
    /// error names the versions found and expected and what to run.
    pub async fn check_schema(&self, suite: anchord_core::HashSuite) -> Result<(), LedgerError> {
        let c = self.pool.get().await?;
        let expected = MIGRATIONS.last().map_or(0, |m| m.version);
        let hint = "run `anchord migrate` (as a role that may write) against the primary first";
        match migrate::state(&c, &migrate::LEDGER).await? {
            SchemaState::Current => {}
            SchemaState::Empty => {
                return Err(LedgerError::Schema(format!(
                    "the ledger schema is missing (expected version {expected}, found none): {hint}"
                )));
            }
            SchemaState::Behind { found, expected } => {
                return Err(LedgerError::Schema(format!(
                    "the ledger schema is at version {found}, this anchord expects version {expected}: {hint}"
                )));
            }
            SchemaState::Ahead { found, expected } => {
                return Err(LedgerError::Schema(format!(
                    "the ledger schema is at version {found}, newer than this anchord (version {expected}): upgrade anchord"
                )));
            }
            SchemaState::Changed { version } => {
                return Err(LedgerError::Schema(format!(
                    "ledger migration {version} was applied with a different text than this anchord's; \
                     the schema is not the one this binary knows (expected version {expected})"
                )));
            }
        }
        let stored = c
            .query_opt(
                "SELECT value FROM ledger_meta WHERE key = 'hash_suite'",
                &[],
            )
            .await?
            .map(|r| r.get::<_, String>(0));
        match stored {
            Some(stored) if stored != suite.name() => Err(LedgerError::SuiteMismatch {
                stored,
                configured: suite.name().into(),
            }),
            _ => Ok(()),
        }
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
