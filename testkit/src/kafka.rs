//! Kafka topics per test on the dev broker.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Bootstrap servers of the test broker.
pub const BROKERS_VAR: &str = "ANCHORD_TEST_KAFKA_BROKERS";
/// The dev services' broker, used when the variable is unset.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:59092";

pub fn brokers() -> String {
    std::env::var(BROKERS_VAR).unwrap_or_else(|_| DEFAULT_BROKERS.to_owned())
}

/// Create a topic with a unique name and `partitions` partitions. Panics with
/// instructions when the broker is unreachable.
pub async fn topic(prefix: &str, partitions: i32) -> String {
    let name = crate::unique(prefix);
    create_topic(&name, partitions).await;
    name
}

/// Create a topic with the given name (idempotent).
pub async fn create_topic(name: &str, partitions: i32) {
    let brokers = brokers();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("socket.timeout.ms", "10000")
        .create()
        .expect("admin client config is valid");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(15)));
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = tokio::time::timeout(Duration::from_secs(20), admin.create_topics([&new], &opts))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the Kafka broker at {brokers} did not answer within 20 s; start the test services \
                 with `scripts/services up`, or set {BROKERS_VAR}"
            )
        })
        .unwrap_or_else(|e| panic!("creating topic {name} on {brokers}: {e}"));
    for r in res {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => panic!("creating topic {t} on {brokers}: {code}"),
        }
    }
}
