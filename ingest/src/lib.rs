//! The ingest stage (being written): Kafka → ledger, exactly once.

use anchord_core::HashSuite;
use anchord_ledger::Ledger;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub mod loadgen;

/// Ingest configuration (`[ingest]` in the configuration file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    #[serde(default = "default_brokers")]
    pub brokers: String,
    #[serde(default = "default_topic")]
    pub topic: String,
}

fn default_brokers() -> String {
    "127.0.0.1:59092".into()
}
fn default_topic() -> String {
    "anchord.evidence.v1".into()
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            brokers: default_brokers(),
            topic: default_topic(),
        }
    }
}

impl IngestConfig {
    pub fn validate(&self) -> Result<(), IngestError> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ledger: {0}")]
    Ledger(#[from] anchord_ledger::LedgerError),
}

pub async fn run(
    _config: IngestConfig,
    _suite: HashSuite,
    _ledger: Ledger,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    shutdown.cancelled().await;
    Ok(())
}
