//! The evidence and dead-letter topics: checked (or created) before ingest
//! joins its group, so a missing topic is a clear start-up error and not a
//! silent stall or an ever-growing pile of unpublished dead letters.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use crate::{IngestConfig, IngestError};

/// What a failed metadata request means, when librdkafka only says
/// `BrokerTransportFailure` / `AllBrokersDown`: whether anything accepts TCP
/// connections at the bootstrap addresses. A broker that accepts and then
/// closes every connection without answering has failed internally — tansu
/// 0.6 with sqlite storage does this after an idempotent producer resuming
/// across a broker restart made it panic (`idempotent_message_check: more or
/// less than one row`; ARCHITECTURE.md, "Known faults of the local broker")
/// — and only a broker restart helps; retrying, or restarting ingest, does
/// not. `None` for other errors.
pub fn diagnose(brokers: &str, e: &KafkaError) -> Option<String> {
    let code = e.rdkafka_error_code()?;
    if !matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown
    ) {
        return None;
    }
    let accepting: Vec<&str> = brokers
        .split(',')
        .map(str::trim)
        .filter(|b| {
            use std::net::ToSocketAddrs as _;
            b.to_socket_addrs().is_ok_and(|mut a| {
                a.any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
            })
        })
        .collect();
    Some(if accepting.is_empty() {
        format!(
            "nothing accepts connections at {brokers} ({code:?}): the brokers are down or unreachable"
        )
    } else {
        format!(
            "the broker at {} accepts connections but closes them without answering ({code:?}): \
             it has failed internally and needs a restart (restarting ingest does not help). \
             tansu 0.6 on sqlite storage does this after an idempotent producer resumed across a \
             broker restart (ARCHITECTURE.md, known faults of the local broker)",
            accepting.join(", ")
        )
    })
}

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
        let md = probe
            .fetch_metadata(Some(&topic), Duration::from_secs(15))
            .map_err(|e| match diagnose(&brokers, &e) {
                Some(why) => IngestError::Broker(why),
                None => IngestError::Kafka(e),
            })?;
        Ok(md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await
    .map_err(|e| IngestError::Config(format!("checking topic: {e}")))?
}

/// Whether the partition holds a record at offset `position - 1` or later,
/// reading from `from` with a throwaway consumer (no group membership).
/// `false` when the partition's end comes first (or nothing arrives within
/// 10 s).
pub fn records_reach(
    config: &IngestConfig,
    topic: &str,
    partition: i32,
    from: i64,
    position: i64,
) -> KafkaResult<bool> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", "anchord-ingest-end-check")
        .set("client.id", "anchord-ingest-end-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    for (k, v) in &config.librdkafka {
        if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
            c.set(k, v);
        }
    }
    let probe: BaseConsumer = c.create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
    probe.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match probe.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.offset() + 1 >= position => return Ok(true),
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(false),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback "broker" that accepts every connection and closes it at
    /// once, as tansu did after its idempotent-producer check panicked.
    fn closing_listener() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
        addr
    }

    fn config(brokers: String) -> IngestConfig {
        IngestConfig {
            brokers,
            topic: "t".into(),
            dead_letter_topic: "t.dlq".into(),
            ..IngestConfig::default()
        }
    }

    #[tokio::test]
    async fn a_broker_that_closes_every_connection_is_named_as_failed_not_a_bare_transport_error() {
        let brokers = closing_listener();
        let err = ensure(&config(brokers.clone()))
            .await
            .expect_err("no broker answered");
        let IngestError::Broker(msg) = &err else {
            panic!("expected a broker diagnosis, got {err}");
        };
        assert!(
            msg.contains(&brokers)
                && msg.contains("closes them without answering")
                && msg.contains("restart"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn brokers_nobody_listens_at_are_named_as_down() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let err = ensure(&config(format!("127.0.0.1:{port}")))
            .await
            .expect_err("no broker");
        assert!(
            matches!(&err, IngestError::Broker(m) if m.contains("nothing accepts connections")),
            "{err}"
        );
    }
}
