//! The evidence and dead-letter topics: checked (or created) before ingest
//! joins its group, so a missing topic is a clear start-up error and not a
//! silent stall or an ever-growing pile of unpublished dead letters.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::{IngestConfig, IngestError};

/// Create `topic` with `partitions` partitions unless it exists.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), IngestError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(15)));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for r in admin.create_topics([&new], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(IngestError::Config(format!(
                    "creating topic {t}: {}",
                    KafkaError::AdminOp(code)
                )));
            }
        }
    }
    Ok(())
}

/// With `create_topics`, create what is missing; otherwise fail naming the
/// key of the first topic the broker does not know.
pub async fn ensure(config: &IngestConfig) -> Result<(), IngestError> {
    if config.create_topics {
        create_topic(&config.brokers, &config.topic, config.topic_partitions).await?;
        create_topic(&config.brokers, &config.dead_letter_topic, 1).await?;
        return Ok(());
    }
    for (key, topic) in [
        ("topic", &config.topic),
        ("dead_letter_topic", &config.dead_letter_topic),
    ] {
        if !exists(&config.brokers, topic).await? {
            return Err(IngestError::Config(format!(
                "ingest.{key}: topic {topic:?} does not exist on {}; create it, or set \
                 ingest.create_topics = true",
                config.brokers
            )));
        }
    }
    Ok(())
}

async fn exists(brokers: &str, topic: &str) -> Result<bool, IngestError> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("allow.auto.create.topics", "false")
            .create()?;
        let md = probe.fetch_metadata(Some(&topic), Duration::from_secs(15))?;
        Ok(md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await
    .map_err(|e| IngestError::Config(format!("checking topic: {e}")))?
}
