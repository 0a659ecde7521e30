//! Readiness: can the brokers be reached, and do they know the evidence
//! topic? One metadata request, the same one a consumer makes at start. And
//! is an ingest instance of this process stuck outside its consumer group's
//! assignment ([`crate::membership`])?

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::{IngestConfig, IngestError};

/// A long-lived client used only for metadata requests (no group, no
/// subscription), so a readiness probe does not open a connection per call.
#[derive(Clone)]
pub struct BrokerProbe {
    client: Arc<BaseConsumer>,
    brokers: String,
    topic: String,
    group: String,
}

impl std::fmt::Debug for BrokerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerProbe")
            .field("topic", &self.topic)
            .finish()
    }
}

impl BrokerProbe {
    pub fn new(config: &IngestConfig) -> Result<Self, IngestError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &config.brokers)
            .set("client.id", "anchord-readiness")
            .set("allow.auto.create.topics", "false");
        for (k, v) in &config.librdkafka {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                c.set(k, v);
            }
        }
        Ok(BrokerProbe {
            client: Arc::new(c.create()?),
            brokers: config.brokers.clone(),
            topic: config.topic.clone(),
            group: config.group_id.clone(),
        })
    }

    /// `Ok` when a broker answered within `timeout`, the evidence topic
    /// exists with at least one partition, and no ingest instance of this
    /// process (same group and topic) is stuck without the partitions that
    /// hold waiting evidence (see `ingest.assignment_grace_ms`); otherwise
    /// what is wrong.
    pub async fn check(&self, timeout: Duration) -> Result<(), String> {
        if let Some(why) = crate::membership::stuck_reason(&self.group, &self.topic) {
            return Err(why);
        }
        let client = self.client.clone();
        let topic = self.topic.clone();
        let brokers = self.brokers.clone();
        tokio::task::spawn_blocking(move || {
            let md = client.fetch_metadata(Some(&topic), timeout).map_err(|e| {
                crate::topics::diagnose(&brokers, &e)
                    .unwrap_or_else(|| format!("brokers unreachable: {e}"))
            })?;
            match md.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
                Some(t) => Err(format!(
                    "topic {topic:?} unavailable: {:?}",
                    t.error().map(rdkafka::error::RDKafkaErrorCode::from)
                )),
                None => Err(format!("topic {topic:?} not found")),
            }
        })
        .await
        .map_err(|e| format!("probe task failed: {e}"))?
    }
}
