//! The one skeleton every long-running subcommand (`ingest`, `batcher`,
//! `witness`, `relay`, `verifier`, `workflow`, `run`) goes through:
//!
//! 1. **validate**: everything that can be checked without the network
//!    (the stage's own rules, key and certificate files, target names) is
//!    checked before anything is connected or bound; a failure is a
//!    [`ConfigError`] and the process exits 2, the same code `Config::load`
//!    gives, whatever the subcommand;
//! 2. **connect**: the database, as a writer (migrations applied, hash suite
//!    recorded), a reader (read-only sessions, schema version checked, no
//!    writes) or the witness's own store;
//! 3. **serve**: signals become one cancellation token, the admin listener
//!    (`/metrics`, `/livez`, `/readyz`) is bound, the service runs;
//! 4. **drain**: on a signal or when the service returns, the token is
//!    cancelled, the admin listener is awaited, the service's result returned.

use std::fmt;
use std::future::Future;

use anchord_ledger::{Ledger, WitnessStore};
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::config::Config;

/// A configuration problem found before anything started: exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub anyhow::Error);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {:#}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Mark a validation failure as a configuration error (exit 2).
pub fn config_error(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(ConfigError(e.into()))
}

/// True when `e` (or an error it wraps) is a [`ConfigError`].
pub fn is_config_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<ConfigError>())
}

/// Open the ledger as a writer: apply pending migrations, record or check
/// the hash suite. For ingest, batcher, relay, workflow, `run`, `migrate`.
pub async fn open_writer(config: &Config) -> anyhow::Result<Ledger> {
    let ledger = Ledger::connect(&config.database)?;
    ledger.migrate().await?;
    ledger.ensure_suite(config.hash_suite).await?;
    Ok(ledger)
}

/// Open the ledger as a reader: read-only sessions (PostgreSQL refuses any
/// write; a hot standby or a SELECT-only role is enough), no migrations, and
/// a clear error when the schema is not the one this binary expects. For
/// the verifier, `audit`, `status`, `relay gaps`.
pub async fn open_reader(config: &Config) -> anyhow::Result<Ledger> {
    let ledger = Ledger::connect_read_only(&config.database)?;
    ledger.check_schema(config.hash_suite).await?;
    Ok(ledger)
}

/// Open the witness's own store (its schema only, migrated).
pub async fn open_witness_store(config: &Config) -> anyhow::Result<WitnessStore> {
    let store = WitnessStore::connect(&config.database)?;
    store.migrate().await?;
    Ok(store)
}

/// A long-running subcommand, as the skeleton drives it.
pub trait Service {
    /// What validation produces for the run (loaded keys, …).
    type Prepared;
    /// What the service works on (the ledger, the witness's store).
    type Db: Clone;

    /// Check everything that can be checked without the network; no port
    /// is bound and no connection opened before this succeeds.
    fn validate(&self, config: &Config) -> anyhow::Result<Self::Prepared>;

    /// Open the database as this service needs it.
    fn connect(&self, config: &Config) -> impl Future<Output = anyhow::Result<Self::Db>> + Send;

    /// What `/readyz` checks.
    fn readiness(
        &self,
        config: &Config,
        prepared: &Self::Prepared,
        db: &Self::Db,
    ) -> anyhow::Result<Readiness>;

    /// Run until `shutdown` is cancelled (or until failure).
    fn run(
        self,
        config: Config,
        prepared: Self::Prepared,
        db: Self::Db,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Validate, connect, bind the admin listener, run, drain.
pub async fn run<S: Service>(config: Config, service: S) -> anyhow::Result<()> {
    let prepared = service.validate(&config).map_err(config_error)?;
    let db = service.connect(&config).await?;
    let readiness = service.readiness(&config, &prepared, &db)?;
    let shutdown = crate::shutdown::on_signal();
    let admin = crate::admin::serve_ready(config.admin.listen, readiness, shutdown.clone()).await?;
    let result = service.run(config, prepared, db, shutdown.clone()).await;
    shutdown.cancel();
    let _ = admin.await;
    result
}
