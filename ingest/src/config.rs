//! `[ingest]` configuration: typed, defaulted, validated before anything is
//! started. Every error names the key at fault.

use std::collections::BTreeMap;

use anchord_core::EvidenceAlg;
use anchord_core::entry::validate_tenant;
use serde::Deserialize;

use crate::IngestError;

/// Ingest configuration (`[ingest]` in the configuration file; every key can
/// also come from `ANCHORD__INGEST__<KEY>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Kafka bootstrap servers (`host:port,host:port`). `KAFKA_BROKERS` also sets it.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// The evidence topic (message format v1, `docs/kafka-message-v1.md`).
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Consumer group shared by every ingest instance of the deployment.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where rejected messages go, with their reason and original bytes.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// The tenants (banks) this deployment accepts evidence from. Required
    /// (non-empty) for `anchord ingest`; `anchord loadgen` uses it as its
    /// default tenant list.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Evidence hash algorithms this deployment accepts.
    #[serde(default = "default_accepted_algs")]
    pub accepted_algs: Vec<EvidenceAlg>,
    /// Largest accepted message value, in bytes (larger ones are dead-lettered
    /// as `oversized`).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most messages (entries plus rejections) per ledger transaction.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// How long a partly filled batch may wait for more messages before it is
    /// written, in milliseconds.
    #[serde(default = "default_batch_linger_ms")]
    pub batch_linger_ms: u64,
    /// Stop when more than this fraction of the last `dead_letter_window`
    /// messages were rejected (1.0 disables the check).
    #[serde(default = "default_dead_letter_max_ratio")]
    pub dead_letter_max_ratio: f64,
    /// The window, in messages, over which `dead_letter_max_ratio` is measured;
    /// the ratio is checked once the window is full.
    #[serde(default = "default_dead_letter_window")]
    pub dead_letter_window: usize,
    /// Stop after this many rejections in a row (0 disables the check).
    #[serde(default = "default_dead_letter_max_consecutive")]
    pub dead_letter_max_consecutive: usize,
    /// How long a partition revocation or a shutdown waits for the batches in
    /// flight to be committed, in milliseconds.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// On (re)assignment, start fetching this many messages before the
    /// ledger's stored position and drop the covered ones locally. 0 fetches
    /// from the exact position (right for Apache Kafka); the default covers
    /// brokers that cannot serve a fetch from inside a record batch (tansu
    /// 0.6, used in development and tests).
    #[serde(default = "default_resume_lookback_messages")]
    pub resume_lookback_messages: u64,
    /// How long partitions this instance does not own may hold waiting
    /// evidence without any progress (the ledger's stored position for the
    /// group not moving) before the instance counts as stuck: `/readyz`
    /// fails and it leaves and rejoins the consumer group as a new member
    /// (again at most once per period while the condition lasts), in
    /// milliseconds. Keep it above the brokers' session timeout plus a
    /// rebalance (a dead member holds its partitions that long).
    #[serde(default = "default_assignment_grace_ms")]
    pub assignment_grace_ms: u64,
    /// Create the evidence and dead-letter topics at start when they are
    /// missing. Off by default: in production the platform team provisions
    /// topics, and a missing one stops ingest at start with an error naming
    /// the key, instead of dead letters piling up unpublished.
    #[serde(default)]
    pub create_topics: bool,
    /// Partitions of the evidence topic when `create_topics` creates it.
    #[serde(default = "default_topic_partitions")]
    pub topic_partitions: i32,
    /// Extra librdkafka settings for the consumer (and the dead-letter
    /// producer), e.g. `{ "security.protocol" = "ssl" }`. They override
    /// anchord's defaults, except the ones exactly-once depends on
    /// (`enable.auto.commit`, `enable.auto.offset.store`, `group.id`,
    /// `partition.assignment.strategy`), which are refused.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

fn default_brokers() -> String {
    "127.0.0.1:59092".into()
}
fn default_topic() -> String {
    "anchord.evidence.v1".into()
}
fn default_group_id() -> String {
    "anchord-ingest".into()
}
fn default_dead_letter_topic() -> String {
    "anchord.evidence.dlq.v1".into()
}
fn default_accepted_algs() -> Vec<EvidenceAlg> {
    vec![EvidenceAlg::Sha256, EvidenceAlg::Sm3]
}
fn default_max_message_bytes() -> usize {
    16 * 1024
}
fn default_batch_max() -> usize {
    10_000
}
fn default_batch_linger_ms() -> u64 {
    20
}
fn default_dead_letter_max_ratio() -> f64 {
    0.5
}
fn default_dead_letter_window() -> usize {
    1000
}
fn default_dead_letter_max_consecutive() -> usize {
    200
}
fn default_resume_lookback_messages() -> u64 {
    20_000
}
fn default_assignment_grace_ms() -> u64 {
    30_000
}
fn default_drain_timeout_ms() -> u64 {
    30_000
}

/// librdkafka keys anchord sets itself because correctness depends on them.
const RESERVED_KEYS: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "partition.assignment.strategy",
    "bootstrap.servers",
];

fn default_topic_partitions() -> i32 {
    16
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            brokers: default_brokers(),
            topic: default_topic(),
            group_id: default_group_id(),
            dead_letter_topic: default_dead_letter_topic(),
            tenants: Vec::new(),
            accepted_algs: default_accepted_algs(),
            max_message_bytes: default_max_message_bytes(),
            batch_max: default_batch_max(),
            batch_linger_ms: default_batch_linger_ms(),
            dead_letter_max_ratio: default_dead_letter_max_ratio(),
            dead_letter_window: default_dead_letter_window(),
            dead_letter_max_consecutive: default_dead_letter_max_consecutive(),
            drain_timeout_ms: default_drain_timeout_ms(),
            resume_lookback_messages: default_resume_lookback_messages(),
            assignment_grace_ms: default_assignment_grace_ms(),
            create_topics: false,
            topic_partitions: default_topic_partitions(),
            librdkafka: BTreeMap::new(),
        }
    }
}

fn bad(key: &str, why: impl std::fmt::Display) -> IngestError {
    IngestError::Config(format!("ingest.{key}: {why}"))
}

impl IngestConfig {
    /// Checks every command needs (loadgen included). Tenants may be empty
    /// here; [`IngestConfig::validate_for_ingest`] requires them.
    pub fn validate(&self) -> Result<(), IngestError> {
        if self.brokers.trim().is_empty() {
            return Err(bad("brokers", "must not be empty"));
        }
        for (key, v) in [
            ("topic", &self.topic),
            ("group_id", &self.group_id),
            ("dead_letter_topic", &self.dead_letter_topic),
        ] {
            if v.trim().is_empty() {
                return Err(bad(key, "must not be empty"));
            }
        }
        if self.dead_letter_topic == self.topic {
            return Err(bad(
                "dead_letter_topic",
                format!("must differ from ingest.topic ({:?})", self.topic),
            ));
        }
        for t in &self.tenants {
            validate_tenant(t).map_err(|e| bad("tenants", e))?;
        }
        if self.accepted_algs.is_empty() {
            return Err(bad("accepted_algs", "must name at least one algorithm"));
        }
        if !(256..=1024 * 1024).contains(&self.max_message_bytes) {
            return Err(bad(
                "max_message_bytes",
                format!("must be 256 ..= 1048576, got {}", self.max_message_bytes),
            ));
        }
        if !(1..=100_000).contains(&self.batch_max) {
            return Err(bad(
                "batch_max",
                format!("must be 1 ..= 100000, got {}", self.batch_max),
            ));
        }
        if self.batch_linger_ms > 10_000 {
            return Err(bad("batch_linger_ms", "must be at most 10000"));
        }
        if !(self.dead_letter_max_ratio > 0.0 && self.dead_letter_max_ratio <= 1.0) {
            return Err(bad(
                "dead_letter_max_ratio",
                format!("must be in (0, 1], got {}", self.dead_letter_max_ratio),
            ));
        }
        if !(1_000..=3_600_000).contains(&self.assignment_grace_ms) {
            return Err(bad(
                "assignment_grace_ms",
                format!("must be 1000 ..= 3600000, got {}", self.assignment_grace_ms),
            ));
        }
        if self.dead_letter_window == 0 {
            return Err(bad("dead_letter_window", "must be at least 1"));
        }
        for k in self.librdkafka.keys() {
            if RESERVED_KEYS.contains(&k.as_str()) {
                return Err(bad(
                    &format!("librdkafka.{k:?}"),
                    "is set by anchord (exactly-once depends on it); use ingest.brokers / \
                     ingest.group_id instead, or drop it",
                ));
            }
        }
        Ok(())
    }

    /// [`IngestConfig::validate`] plus what only `anchord ingest` needs.
    pub fn validate_for_ingest(&self) -> Result<(), IngestError> {
        self.validate()?;
        if self.tenants.is_empty() {
            return Err(bad(
                "tenants",
                "no tenants configured: every message would be rejected as unknown_tenant; \
                 list the accepted tenant ids, e.g. tenants = [\"icbc-sh\"]",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_for_loadgen_but_ingest_needs_tenants() {
        let c = IngestConfig::default();
        c.validate().unwrap();
        let err = c.validate_for_ingest().unwrap_err().to_string();
        assert!(err.contains("ingest.tenants"), "{err}");
    }

    type Mutation = Box<dyn Fn(&mut IngestConfig)>;

    #[test]
    fn errors_name_the_key() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("ingest.batch_max", Box::new(|c| c.batch_max = 0)),
            (
                "ingest.tenants",
                Box::new(|c| c.tenants = vec!["-bad".into()]),
            ),
            (
                "ingest.dead_letter_topic",
                Box::new(|c| c.dead_letter_topic = c.topic.clone()),
            ),
            (
                "ingest.dead_letter_max_ratio",
                Box::new(|c| c.dead_letter_max_ratio = 0.0),
            ),
            (
                "ingest.assignment_grace_ms",
                Box::new(|c| c.assignment_grace_ms = 10),
            ),
            (
                "ingest.accepted_algs",
                Box::new(|c| c.accepted_algs.clear()),
            ),
            (
                "enable.auto.commit",
                Box::new(|c| {
                    c.librdkafka
                        .insert("enable.auto.commit".into(), "true".into());
                }),
            ),
        ];
        for (key, f) in cases {
            let mut c = IngestConfig {
                tenants: vec!["icbc-sh".into()],
                ..IngestConfig::default()
            };
            f(&mut c);
            let err = c.validate_for_ingest().unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<IngestConfig>("batch_maxx = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_maxx"), "{err}");
    }
}
