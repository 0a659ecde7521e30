//! The consumer side: one dedicated thread owns the librdkafka poll loop,
//! decodes and validates messages into the next batch, and hands full batches
//! to the writer through a bounded channel.
//!
//! Why a dedicated blocking thread (a `spawn_blocking` task) and not an
//! async stream: rebalance callbacks run on the thread that polls, and ours
//! must block — on assignment to read the group's positions from the ledger
//! (the truth; Kafka's committed offsets are only advisory), on revocation to
//! drain the batches in flight before the partitions are handed over. A plain
//! thread can block (`Handle::block_on`) without stalling the async runtime,
//! and the assignment is made with the ledger's offsets directly
//! (`assign` with offsets, no seek after the fact, so no message from a stale
//! offset is ever fetched).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anchord_ledger::{Ledger, NewEntry, Position, Rejection, Source};
use bytes::Bytes;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::limit::DeadLetterLimit;
use crate::message::{self, Rules};
use crate::{IngestConfig, IngestError, metrics};

/// What the consumer hands to the writer.
#[derive(Debug)]
pub(crate) enum Work {
    Batch(Pending),
    /// Acknowledged once every batch sent before it is committed.
    Barrier(std::sync::mpsc::SyncSender<()>),
}

/// A batch ready for the ledger.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub entries: Vec<NewEntry>,
    pub rejections: Vec<Rejection>,
    pub positions: Vec<Position>,
}

impl Pending {
    pub fn len(&self) -> usize {
        self.entries.len() + self.rejections.len()
    }
}

/// The batch being filled.
#[derive(Debug)]
pub(crate) struct Builder {
    topic: String,
    entries: Vec<NewEntry>,
    rejections: Vec<Rejection>,
    /// Next offset per partition covered by this batch.
    next: BTreeMap<i32, i64>,
    first_at: Option<Instant>,
    limit: DeadLetterLimit,
}

impl Builder {
    fn new(config: &IngestConfig) -> Self {
        Builder {
            topic: config.topic.clone(),
            entries: Vec::with_capacity(config.batch_max),
            rejections: Vec::new(),
            next: BTreeMap::new(),
            first_at: None,
            limit: DeadLetterLimit::new(
                config.dead_letter_max_ratio,
                config.dead_letter_window,
                config.dead_letter_max_consecutive,
            ),
        }
    }

    fn len(&self) -> usize {
        self.entries.len() + self.rejections.len()
    }

    /// Decode one message into the batch. `Err` is the dead-letter limit.
    fn push(
        &mut self,
        partition: i32,
        offset: i64,
        payload: &[u8],
        rules: &Rules,
    ) -> Result<(), String> {
        let source = Source {
            topic: self.topic.clone(),
            partition,
            offset,
        };
        let raw = Bytes::copy_from_slice(payload);
        let rejected = match message::decode(payload, rules) {
            Ok(d) => {
                self.entries.push(d.into_entry(source, raw));
                false
            }
            Err(r) => {
                self.rejections.push(Rejection {
                    source: Some(source),
                    reason: r.reason,
                    detail: r.detail,
                    payload: raw,
                });
                true
            }
        };
        let next = self.next.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        self.limit.record(rejected)
    }

    fn take(&mut self) -> Option<Pending> {
        if self.len() == 0 && self.next.is_empty() {
            return None;
        }
        self.first_at = None;
        let positions = std::mem::take(&mut self.next)
            .into_iter()
            .map(|(partition, next_offset)| Position {
                topic: self.topic.clone(),
                partition,
                next_offset,
            })
            .collect();
        let cap = self.entries.capacity();
        Some(Pending {
            entries: std::mem::replace(&mut self.entries, Vec::with_capacity(cap)),
            rejections: std::mem::take(&mut self.rejections),
            positions,
        })
    }

    /// Forget the batch being filled (nothing of it is committed).
    fn discard(&mut self) {
        self.entries.clear();
        self.rejections.clear();
        self.next.clear();
        self.first_at = None;
    }
}

/// State shared by the poll loop and the rebalance callbacks (both run on
/// the consumer thread; the mutex is never contended in practice).
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: IngestConfig,
    pub rules: Rules,
    pub ledger: Ledger,
    pub handle: tokio::runtime::Handle,
    pub tx: mpsc::Sender<Work>,
    pub builder: Mutex<Builder>,
    pub paused: AtomicBool,
    /// Set when the poll loop must not hand over anything more (the
    /// dead-letter limit tripped, the writer failed).
    pub halted: AtomicBool,
}

impl Shared {
    pub fn new(
        config: IngestConfig,
        rules: Rules,
        ledger: Ledger,
        handle: tokio::runtime::Handle,
        tx: mpsc::Sender<Work>,
    ) -> Self {
        let builder = Mutex::new(Builder::new(&config));
        Shared {
            config,
            rules,
            ledger,
            handle,
            tx,
            builder,
            paused: AtomicBool::new(false),
            halted: AtomicBool::new(false),
        }
    }

    fn builder(&self) -> MutexGuard<'_, Builder> {
        // A panic while holding the lock would already have ended the thread.
        self.builder.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.config.drain_timeout_ms)
    }

    /// Hand the batch being filled to the writer and wait until everything
    /// sent so far is committed, or `deadline`. Returns whether it drained.
    pub fn drain(&self, deadline: Instant) -> bool {
        if self.halted.load(Ordering::SeqCst) {
            return false;
        }
        let batch = self.builder().take();
        if let Some(b) = batch {
            if !self.send_until(Work::Batch(b), deadline) {
                return false;
            }
        }
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        if !self.send_until(Work::Barrier(ack_tx), deadline) {
            return false;
        }
        ack_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    fn send_until(&self, mut work: Work, deadline: Instant) -> bool {
        loop {
            match self.tx.try_send(work) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(w)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    work = w;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// The group's stored positions, from the ledger; `None` if the ledger
    /// cannot be read within a few seconds.
    fn ledger_positions(&self) -> Option<BTreeMap<i32, i64>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut delay = Duration::from_millis(100);
        loop {
            let read = self.handle.block_on(
                self.ledger
                    .positions(&self.config.group_id, &self.config.topic),
            );
            match read {
                Ok(ps) => {
                    return Some(
                        ps.into_iter()
                            .map(|p| (p.partition, p.next_offset))
                            .collect(),
                    );
                }
                Err(e) if e.is_transient() && Instant::now() + delay < deadline => {
                    tracing::warn!(error = %e, "reading consumer positions from the ledger; retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read consumer positions from the ledger");
                    return None;
                }
            }
        }
    }
}

/// The librdkafka context: rebalance hooks, statistics (lag), logs.
#[derive(Debug)]
pub(crate) struct IngestContext {
    pub shared: Arc<Shared>,
}

impl ClientContext for IngestContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.shared.config.topic) else {
            return;
        };
        for (p, part) in &topic.partitions {
            if *p >= 0 && part.desired && part.consumer_lag >= 0 {
                metrics::LAG
                    .with_label_values(&[&p.to_string()])
                    .set(part.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    /// Eager rebalancing (`partition.assignment.strategy = roundrobin`, set
    /// by us): every revocation is of the whole assignment.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let shared = &self.shared;
        let topic = shared.config.topic.clone();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // Resume from the ledger's positions. Without them (ledger
                // unreachable for 10 s) fall back to Kafka's committed
                // offsets: those are committed only after the ledger commit,
                // so they are never ahead of it, and the ledger skips what it
                // already covers — redelivery, never loss.
                let positions = shared.ledger_positions();
                let parts: Vec<i32> = tpl
                    .elements_for_topic(&topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                for p in &parts {
                    let offset = match &positions {
                        Some(map) => map.get(p).map_or(Offset::Beginning, |o| Offset::Offset(*o)),
                        None => Offset::Stored,
                    };
                    if let Err(e) = tpl.set_partition_offset(&topic, *p, offset) {
                        tracing::error!(partition = p, error = %e, "setting the start offset");
                    }
                }
                tracing::info!(
                    partitions = ?parts,
                    from = if positions.is_some() { "ledger" } else { "kafka (ledger unreachable)" },
                    "partitions assigned"
                );
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(error = %e, "assign failed");
                }
                shared.paused.store(false, Ordering::SeqCst);
                metrics::PAUSED.set(0);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Drain before handing over: the partly filled batch and the
                // ones queued for the writer are committed (positions
                // included) before the partitions go. If that cannot finish
                // in time (ledger down), the hand-over goes ahead anyway:
                // the new owner resumes from the ledger's positions and a
                // late commit of ours is skipped by the ledger as already
                // covered (offset below the stored position) — or, if ours
                // lands first, theirs is. Never both.
                let parts: Vec<i32> = tpl
                    .elements_for_topic(&topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                let drained = shared.drain(Instant::now() + shared.drain_timeout());
                if drained {
                    tracing::info!(partitions = ?parts, "partitions revoked after draining");
                } else if !shared.halted.load(Ordering::SeqCst) {
                    tracing::warn!(partitions = ?parts,
                        "partitions revoked before the batches in flight were committed; \
                         the ledger's position check keeps the hand-over exactly-once");
                }
                for p in parts {
                    let _ = metrics::LAG.remove_label_values(&[&p.to_string()]);
                }
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
                shared.paused.store(false, Ordering::SeqCst);
                metrics::PAUSED.set(0);
            }
            other => {
                tracing::error!(error = ?other, "rebalance error; unassigning");
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Advisory only: the ledger holds the positions.
            tracing::debug!(error = %e, "advisory Kafka offset commit failed");
        }
    }

    fn main_queue_min_poll_interval(&self) -> rdkafka::util::Timeout {
        rdkafka::util::Timeout::After(Duration::from_millis(100))
    }
}

pub(crate) type IngestConsumer = BaseConsumer<IngestContext>;

/// The poll loop. Returns when `shutdown` or `stop` is cancelled, the writer
/// is gone, or the dead-letter limit trips.
pub(crate) fn poll_loop(
    consumer: Arc<IngestConsumer>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    stop: CancellationToken,
) -> Result<(), IngestError> {
    let linger = Duration::from_millis(shared.config.batch_linger_ms);
    let batch_max = shared.config.batch_max;
    let mut result = Ok(());
    loop {
        if shutdown.is_cancelled() || stop.is_cancelled() {
            break;
        }
        // Hand over a full or lingering batch when the writer has room;
        // pause the partitions when the batch is full and it has none.
        {
            let mut b = shared.builder();
            let len = b.len();
            let ready = len >= batch_max
                || (len > 0 && b.first_at.is_some_and(|t| t.elapsed() >= linger));
            if ready {
                match shared.tx.try_reserve() {
                    Ok(permit) => {
                        if let Some(p) = b.take() {
                            permit.send(Work::Batch(p));
                        }
                        drop(b);
                        set_paused(&consumer, &shared, false);
                    }
                    Err(mpsc::error::TrySendError::Full(())) => {
                        drop(b);
                        if len >= batch_max {
                            set_paused(&consumer, &shared, true);
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(())) => break,
                }
            } else if len < batch_max {
                drop(b);
                if shared.paused.load(Ordering::Relaxed) {
                    set_paused(&consumer, &shared, false);
                }
            }
        }
        let timeout = if shared.paused.load(Ordering::Relaxed) {
            Duration::from_millis(50)
        } else {
            linger.clamp(Duration::from_millis(1), Duration::from_millis(50))
        };
        match consumer.poll(timeout) {
            None => {}
            Some(Ok(m)) => {
                metrics::CONSUMED.inc();
                let payload = m.payload().unwrap_or(&[]);
                let pushed =
                    shared
                        .builder()
                        .push(m.partition(), m.offset(), payload, &shared.rules);
                if let Err(limit) = pushed {
                    // Nothing of this batch is committed: not its entries,
                    // not its dead letters, not its positions.
                    shared.halted.store(true, Ordering::SeqCst);
                    shared.builder().discard();
                    tracing::error!("{limit}");
                    result = Err(IngestError::DeadLetterLimit(limit));
                    break;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error");
            }
        }
    }

    // Graceful stop: finish what was read, then leave the group (the
    // revocation that closing triggers finds nothing left to drain).
    if result.is_ok() && !stop.is_cancelled() {
        let deadline = Instant::now() + shared.drain_timeout();
        if shared.drain(deadline) {
            tracing::info!("batches in flight committed; leaving the group");
        } else {
            tracing::warn!(
                "shutdown: batches in flight not committed within ingest.drain_timeout_ms; \
                 nothing is lost (their positions were not stored), they are read again on restart"
            );
        }
    }
    shared.halted.store(true, Ordering::SeqCst);
    shared.builder().discard();
    close(&consumer);
    result
}

fn set_paused(consumer: &IngestConsumer, shared: &Shared, pause: bool) {
    if shared.paused.load(Ordering::Relaxed) == pause {
        return;
    }
    let assignment = match consumer.assignment() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "reading the assignment to pause/resume");
            return;
        }
    };
    let r = if pause {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    match r {
        Ok(()) => {
            shared.paused.store(pause, Ordering::SeqCst);
            metrics::PAUSED.set(pause as i64);
            tracing::debug!(paused = pause, "consumption {}", if pause { "paused" } else { "resumed" });
        }
        Err(e) => tracing::warn!(error = %e, pause, "pause/resume failed"),
    }
}

/// Leave the group: close the consumer queue and serve callbacks until done.
fn close(consumer: &IngestConsumer) {
    if let Err(e) = consumer.close_queue() {
        tracing::warn!(error = %e, "closing the consumer");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !consumer.closed() && Instant::now() < deadline {
        // Messages still arriving are dropped: their positions are not
        // stored, so they are read again by whoever owns the partition next.
        let _ = consumer.poll(Duration::from_millis(100));
    }
}
