//! `anchord loadgen`: publish realistic bank evidence messages (format v1)
//! at a given rate or as fast as possible, with a progress line every second.
//!
//! Messages are deterministic per (run id, index): re-running with the same
//! `--run-id` re-publishes the same evidence (useful to exercise
//! idempotency). Keys are the external id, so one contract's evidence stays
//! on one partition, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anchord_core::EvidenceAlg;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use crate::message::MessageV1;
use crate::{IngestConfig, IngestError};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// How many messages to publish (0: until interrupted).
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Messages per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Tenants to draw from, comma-separated (default: ingest.tenants, or a
    /// built-in list of bank branch ids when that is empty).
    #[arg(long, value_delimiter = ',')]
    pub tenants: Vec<String>,
    /// Topic to publish to (default: ingest.topic).
    #[arg(long)]
    pub topic: Option<String>,
    /// Create the topic first (idempotent) with --partitions partitions.
    #[arg(long)]
    pub create_topic: bool,
    /// Partitions for --create-topic.
    #[arg(long, default_value_t = 16)]
    pub partitions: i32,
    /// Fraction of messages that re-send earlier evidence (duplicates).
    #[arg(long, default_value_t = 0.0)]
    pub dup_ratio: f64,
    /// Fraction of messages that are invalid (each dead-letter class in turn).
    #[arg(long, default_value_t = 0.0)]
    pub bad_ratio: f64,
    /// Prefix making external ids unique to this run (default: random).
    #[arg(long)]
    pub run_id: Option<String>,
}

/// What kind of message [`Generator::next`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// New, valid evidence.
    Good,
    /// A re-send of earlier evidence (same key, same hash).
    Duplicate,
    /// Invalid: the dead-letter reason it must get.
    Bad(&'static str),
}

/// One generated message.
#[derive(Debug, Clone)]
pub struct Generated {
    pub key: String,
    pub payload: Vec<u8>,
    pub kind: Kind,
}

const DOC_TYPES: [(&str, &str); 6] = [
    ("LOAN", "loan-contract"),
    ("MORT", "mortgage-deed"),
    ("TRF", "transfer-receipt"),
    ("KYC", "kyc-record"),
    ("CARD", "card-agreement"),
    ("CALL", "call-recording"),
];
const CHANNELS: [&str; 4] = ["branch", "mobile", "online", "call-center"];
const DEFAULT_TENANTS: [&str; 5] = ["icbc-sh", "ccb-bj", "boc-gd", "abc-zj", "cmb-sz"];

/// Deterministic generator of realistic evidence messages.
#[derive(Debug)]
pub struct Generator {
    run_id: String,
    tenants: Vec<String>,
    dup_ratio: f64,
    bad_ratio: f64,
    rng: StdRng,
    next_index: u64,
    bad_turn: usize,
}

impl Generator {
    pub fn new(run_id: &str, tenants: Vec<String>, dup_ratio: f64, bad_ratio: f64) -> Self {
        let seed = run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Generator {
            run_id: run_id.to_owned(),
            tenants: if tenants.is_empty() {
                DEFAULT_TENANTS.iter().map(|s| s.to_string()).collect()
            } else {
                tenants
            },
            dup_ratio,
            bad_ratio,
            rng: StdRng::seed_from_u64(seed),
            next_index: 0,
            bad_turn: 0,
        }
    }

    /// The valid message number `i` of this run.
    pub fn good(&self, i: u64) -> MessageV1 {
        let (prefix, doc_type) = DOC_TYPES[(i % DOC_TYPES.len() as u64) as usize];
        let tenant = &self.tenants[(i % self.tenants.len() as u64) as usize];
        // One in ten banks' systems hash with SM3 (GB/T 32905), the rest SHA-256.
        let alg = if i % 10 == 7 {
            EvidenceAlg::Sm3
        } else {
            EvidenceAlg::Sha256
        };
        let file = format!("{}:{}:{i}", self.run_id, doc_type);
        let amount = (i.wrapping_mul(2_654_435_761) % 5_000_000) as f64 / 100.0 + 100.0;
        MessageV1 {
            v: 1,
            tenant: tenant.clone(),
            external_id: format!("{prefix}-{}-{i:010}", self.run_id),
            hash_alg: alg.name().into(),
            hash: hex::encode(alg.hash(file.as_bytes())),
            metadata: Some(serde_json::json!({
                "type": doc_type,
                "branch": format!("{}-{:04}", &tenant[..tenant.len().min(3)].to_uppercase(), i % 997),
                "amount": format!("{amount:.2}"),
                "currency": "CNY",
                "channel": CHANNELS[(i % 4) as usize],
            })),
            produced_at: now_ms(),
        }
    }

    /// The next message: new evidence, a duplicate or an invalid one.
    pub fn next_message(&mut self) -> Generated {
        let roll: f64 = self.rng.random();
        if roll < self.bad_ratio {
            let (reason, payload) = self.bad();
            return Generated {
                key: format!("bad-{}", self.bad_turn),
                payload,
                kind: Kind::Bad(reason),
            };
        }
        if roll < self.bad_ratio + self.dup_ratio && self.next_index > 0 {
            let i = self.rng.random_range(0..self.next_index);
            let m = self.good(i);
            return Generated {
                key: m.external_id.clone(),
                payload: m.to_bytes(),
                kind: Kind::Duplicate,
            };
        }
        let m = self.good(self.next_index);
        self.next_index += 1;
        Generated {
            key: m.external_id.clone(),
            payload: m.to_bytes(),
            kind: Kind::Good,
        }
    }

    /// Valid messages generated so far.
    pub fn good_count(&self) -> u64 {
        self.next_index
    }

    fn bad(&mut self) -> (&'static str, Vec<u8>) {
        use crate::message::reason::*;
        self.bad_turn += 1;
        let mut m = self.good(u64::MAX - self.bad_turn as u64);
        m.external_id = format!("BAD-{}-{}", self.run_id, self.bad_turn);
        match self.bad_turn % 7 {
            0 => (MALFORMED_JSON, b"{\"v\":1,\"tenant\":".to_vec()),
            1 => {
                m.v = 2;
                (UNSUPPORTED_VERSION, m.to_bytes())
            }
            2 => {
                m.tenant = "no-such-bank".into();
                (UNKNOWN_TENANT, m.to_bytes())
            }
            3 => {
                m.hash = m.hash.replace(|c: char| c.is_ascii_digit(), "z");
                (BAD_HASH_HEX, m.to_bytes())
            }
            4 => {
                m.hash.truncate(62);
                (BAD_HASH_LENGTH, m.to_bytes())
            }
            5 => {
                m.hash_alg = "md5".into();
                (ALGORITHM_NOT_ACCEPTED, m.to_bytes())
            }
            _ => {
                let mut v = serde_json::to_value(&m).expect("serialises");
                v.as_object_mut().map(|o| o.remove("hash"));
                (MISSING_FIELD, serde_json::to_vec(&v).expect("serialises"))
            }
        }
    }
}

fn now_ms() -> i64 {
    anchord_core::time::unix_millis(SystemTime::now())
}

/// Counts deliveries.
#[derive(Debug, Default)]
pub struct DeliveryCounter {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

/// The producer context: shares a [`DeliveryCounter`].
#[derive(Debug, Clone)]
pub struct Counting(pub Arc<DeliveryCounter>);

impl ClientContext for Counting {}
impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Totals of a [`publish`] run.
#[derive(Debug, Clone, Copy)]
pub struct PublishStats {
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

/// A producer tuned for throughput against a local broker.
pub fn producer(
    brokers: &str,
) -> Result<(BaseProducer<Counting>, Arc<DeliveryCounter>), KafkaError> {
    let counter = Arc::new(DeliveryCounter::default());
    let p = BaseProducer::from_config_and_context(
        ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "anchord-loadgen")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("message.timeout.ms", "60000"),
        Counting(counter.clone()),
    )?;
    Ok((p, counter))
}

/// Publish `count` messages (0: until `stop`) from `gen` at `rate` per second
/// (0: as fast as possible), printing progress to stderr when `progress`.
/// Blocking; waits for every delivery before returning.
pub fn publish(
    brokers: &str,
    topic: &str,
    generator: &mut Generator,
    count: u64,
    rate: u64,
    progress: bool,
    stop: &dyn Fn() -> bool,
) -> Result<PublishStats, IngestError> {
    let (producer, counter) = producer(brokers)?;
    let started = Instant::now();
    let mut last_report = started;
    let mut last_sent = 0u64;
    let mut sent = 0u64;
    while (count == 0 || sent < count) && !stop() {
        if rate > 0 {
            // Pace: never ahead of `rate` messages per second since the start.
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            let elapsed = started.elapsed();
            if due > elapsed {
                producer.poll(Duration::ZERO);
                std::thread::sleep((due - elapsed).min(Duration::from_millis(50)));
                continue;
            }
        }
        let g = generator.next_message();
        let mut record = BaseRecord::to(topic).key(&g.key).payload(&g.payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        sent += 1;
        if sent.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
        if progress && last_report.elapsed() >= Duration::from_secs(1) {
            let dt = last_report.elapsed().as_secs_f64();
            eprintln!(
                "loadgen: sent {sent} ({:.0} msg/s), delivered {}, failed {}",
                (sent - last_sent) as f64 / dt,
                counter.delivered.load(Ordering::Relaxed),
                counter.failed.load(Ordering::Relaxed),
            );
            last_report = Instant::now();
            last_sent = sent;
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let stats = PublishStats {
        sent,
        delivered: counter.delivered.load(Ordering::Relaxed),
        failed: counter.failed.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    if progress {
        eprintln!(
            "loadgen: done: sent {}, delivered {}, failed {} in {:.2} s ({:.0} msg/s)",
            stats.sent,
            stats.delivered,
            stats.failed,
            stats.elapsed.as_secs_f64(),
            stats.sent as f64 / stats.elapsed.as_secs_f64().max(1e-9)
        );
    }
    Ok(stats)
}

pub use crate::topics::create_topic;

/// `anchord loadgen`.
pub async fn run(config: &IngestConfig, args: LoadgenArgs) -> Result<(), IngestError> {
    if !(0.0..=1.0).contains(&(args.dup_ratio + args.bad_ratio))
        || args.dup_ratio < 0.0
        || args.bad_ratio < 0.0
    {
        return Err(IngestError::Config(
            "--dup-ratio and --bad-ratio must be >= 0 and add up to at most 1".into(),
        ));
    }
    let topic = args.topic.clone().unwrap_or_else(|| config.topic.clone());
    if args.create_topic {
        create_topic(&config.brokers, &topic, args.partitions).await?;
    }
    let tenants = if args.tenants.is_empty() {
        config.tenants.clone()
    } else {
        args.tenants.clone()
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let n: u32 = rand::rng().random();
        format!("{n:08x}")
    });
    let brokers = config.brokers.clone();
    eprintln!(
        "loadgen: publishing {} to {topic} at {} (run id {run_id})",
        if args.count == 0 {
            "until interrupted".to_string()
        } else {
            format!("{} messages", args.count)
        },
        if args.rate == 0 {
            "full speed".to_string()
        } else {
            format!("{} msg/s", args.rate)
        },
    );
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let i = interrupted.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            i.store(true, Ordering::SeqCst);
        });
    }
    let stats = tokio::task::spawn_blocking(move || {
        let mut g = Generator::new(&run_id, tenants, args.dup_ratio, args.bad_ratio);
        publish(
            &brokers,
            &topic,
            &mut g,
            args.count,
            args.rate,
            true,
            &|| interrupted.load(Ordering::Relaxed),
        )
    })
    .await
    .map_err(|e| IngestError::Internal(format!("loadgen thread: {e}")))??;
    if stats.failed > 0 {
        return Err(IngestError::Internal(format!(
            "{} message(s) were not delivered",
            stats.failed
        )));
    }
    Ok(())
}
