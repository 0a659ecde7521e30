//! Helpers shared by the ingest integration tests (real broker, real
//! PostgreSQL; see anchord_testkit).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anchord_core::HashSuite;
use anchord_ingest::IngestConfig;
use anchord_ingest::loadgen::{Generated, Generator};
use anchord_ledger::Ledger;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TENANTS: [&str; 3] = ["icbc-sh", "ccb-bj", "boc-gd"];

/// Log to the test's captured output (`ANCHORD_LOG` filters, default info).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANCHORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub fn config(topic: &str) -> IngestConfig {
    init_logs();
    IngestConfig {
        brokers: anchord_testkit::kafka::brokers(),
        topic: topic.to_owned(),
        group_id: anchord_testkit::unique("g"),
        dead_letter_topic: format!("{topic}.dlq"),
        tenants: TENANTS.iter().map(|s| s.to_string()).collect(),
        batch_max: 500,
        batch_linger_ms: 10,
        drain_timeout_ms: 20_000,
        ..IngestConfig::default()
    }
}

/// A unique topic and its dead-letter topic.
pub async fn topics(prefix: &str, partitions: i32) -> String {
    let t = anchord_testkit::kafka::topic(prefix, partitions).await;
    anchord_testkit::kafka::create_topic(&format!("{t}.dlq"), 1).await;
    t
}

pub fn generator(n: usize) -> (Generator, Vec<Generated>) {
    let mut g = Generator::new(
        &anchord_testkit::unique("run"),
        TENANTS.iter().map(|s| s.to_string()).collect(),
        0.0,
        0.0,
    );
    let msgs = (0..n).map(|_| g.next_message()).collect();
    (g, msgs)
}

/// Publish (key, payload) pairs, to `partition` when given; waits for every
/// delivery.
pub async fn produce(topic: &str, msgs: Vec<(String, Vec<u8>, Option<i32>)>) {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let (p, counter) = anchord_ingest::loadgen::producer(&anchord_testkit::kafka::brokers())
            .expect("producer");
        for (k, v, part) in &msgs {
            let mut r = BaseRecord::to(&topic).key(k).payload(v);
            if let Some(part) = part {
                r = r.partition(*part);
            }
            let mut r = Some(r);
            while let Some(rec) = r.take() {
                if let Err((_, back)) = p.send(rec) {
                    r = Some(back);
                    p.poll(Duration::from_millis(5));
                }
            }
        }
        p.flush(Duration::from_secs(60)).expect("flush");
        let failed = counter.failed.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(failed, 0, "{failed} messages were not delivered");
    })
    .await
    .unwrap();
}

/// Cancels the ingest run when dropped, so that a failing test does not
/// leave the consumer thread (and the test runtime) running forever.
pub struct StopOnDrop(pub CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl std::ops::Deref for StopOnDrop {
    type Target = CancellationToken;
    fn deref(&self) -> &CancellationToken {
        &self.0
    }
}

pub fn start(
    config: IngestConfig,
    ledger: Ledger,
) -> (
    JoinHandle<Result<(), anchord_ingest::IngestError>>,
    StopOnDrop,
) {
    let token = CancellationToken::new();
    let t = token.clone();
    let h = tokio::spawn(anchord_ingest::run(config, HashSuite::Sha256, ledger, t));
    (h, StopOnDrop(token))
}

/// Poll `check` every 100 ms until it returns true; panic after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn stop(h: JoinHandle<Result<(), anchord_ingest::IngestError>>, token: StopOnDrop) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(60), h)
        .await
        .expect("ingest stops within 60 s of shutdown")
        .expect("ingest task did not panic")
        .expect("ingest stopped cleanly");
}

/// Positions of the group in the ledger, by partition.
pub async fn positions(ledger: &Ledger, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    ledger
        .positions(group, topic)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.next_offset))
        .collect()
}

/// Read every record of `topic` (all partitions) from the beginning until
/// `n` were read or `timeout`.
pub async fn read_all(
    topic: &str,
    partitions: i32,
    n: usize,
    timeout: Duration,
) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", anchord_testkit::kafka::brokers())
            .set("group.id", anchord_testkit::unique("reader"))
            .set("enable.auto.commit", "false")
            .set("fetch.queue.backoff.ms", "10")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push((
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or(&[]).to_vec(),
                ));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Kafka's committed offsets of `group` (advisory copies of the ledger's).
pub async fn kafka_committed(group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", anchord_testkit::kafka::brokers())
            .set("group.id", &group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    })
    .await
    .unwrap()
}
