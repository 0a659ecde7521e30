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
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use anchord_ledger::{Ledger, NewEntry, Position, Rejection, Source};
use bytes::{Bytes, BytesMut};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::limit::DeadLetterLimit;
use crate::membership::Membership;
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
    /// Each entry's `produced_at` (Unix ms), for the sequencing latency.
    pub produced_at_ms: Vec<i64>,
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
    produced_at_ms: Vec<i64>,
    rejections: Vec<Rejection>,
    /// Next offset per partition covered by this batch.
    next: BTreeMap<i32, i64>,
    first_at: Option<Instant>,
    limit: DeadLetterLimit,
    /// The messages' bytes, copied one after the other into shared chunks
    /// (each entry's `raw` is a slice of one): one allocation per chunk
    /// instead of one per message.
    arena: BytesMut,
}

/// Size of the chunks the messages' bytes are copied into (a message larger
/// than this gets a chunk of its own size).
const ARENA_CHUNK: usize = 256 * 1024;

impl Builder {
    fn new(config: &IngestConfig) -> Self {
        Builder {
            topic: config.topic.clone(),
            entries: Vec::with_capacity(config.batch_max),
            produced_at_ms: Vec::with_capacity(config.batch_max),
            rejections: Vec::new(),
            next: BTreeMap::new(),
            first_at: None,
            limit: DeadLetterLimit::new(
                config.dead_letter_max_ratio,
                config.dead_letter_window,
                config.dead_letter_max_consecutive,
            ),
            arena: BytesMut::new(),
        }
    }

    /// A copy of a message's bytes, sharing a chunk with its neighbours.
    fn copy(&mut self, payload: &[u8]) -> Bytes {
        if self.arena.capacity() < payload.len() {
            self.arena = BytesMut::with_capacity(ARENA_CHUNK.max(payload.len()));
        }
        self.arena.extend_from_slice(payload);
        self.arena.split().freeze()
    }

    fn len(&self) -> usize {
        self.entries.len() + self.rejections.len()
    }

    /// Decode one message into the batch. `Err` is the dead-letter limit.
    fn push(
        &mut self,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
        rules: &Rules,
    ) -> Result<(), String> {
        let source = Source {
            topic: self.topic.clone(),
            partition,
            offset,
        };
        let raw = self.copy(payload.unwrap_or_default());
        let rejected = match message::decode_record(payload, rules) {
            Ok(d) => {
                self.produced_at_ms.push(d.produced_at_ms);
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
            produced_at_ms: std::mem::replace(&mut self.produced_at_ms, Vec::with_capacity(cap)),
            rejections: std::mem::take(&mut self.rejections),
            positions,
        })
    }

    /// Forget the batch being filled (nothing of it is committed).
    fn discard(&mut self) {
        self.entries.clear();
        self.produced_at_ms.clear();
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
    /// The current consumer, for splitting partition queues in callbacks and
    /// for the writer's advisory commits (replaced when ingest rejoins its
    /// group as a new member).
    pub consumer: Mutex<Weak<IngestConsumer>>,
    /// Assignment health, shared with the watchdog ([`crate::membership`]).
    pub membership: Arc<Membership>,
    /// One queue per assigned partition (see [`poll_loop`]).
    pub queues: Mutex<Vec<PartQueue>>,
    /// Set by the assignment callback when a stored position is past the end
    /// of its partition; the poll loop stops with it.
    pub fatal: Mutex<Option<String>>,
}

/// An assigned partition's own message queue and where it must resume.
pub(crate) struct PartQueue {
    queue: PartitionQueue<IngestContext>,
    state: PartState,
}

#[derive(Debug)]
struct PartState {
    partition: i32,
    /// Messages below this offset are already in the ledger: dropped here.
    skip_below: i64,
    /// The offset the fetch was started from (`None`: the beginning).
    fetched_from: Option<i64>,
    /// Whether the first message since the (re)start was checked for a gap.
    checked: bool,
}

impl std::fmt::Debug for PartQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartQueue")
            .field("state", &self.state)
            .finish()
    }
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
            consumer: Mutex::new(Weak::new()),
            membership: Arc::new(Membership::default()),
            queues: Mutex::new(Vec::new()),
            fatal: Mutex::new(None),
        }
    }

    fn builder(&self) -> MutexGuard<'_, Builder> {
        // A panic while holding the lock would already have ended the thread.
        self.builder.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queues(&self) -> MutexGuard<'_, Vec<PartQueue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_consumer(&self, c: &Arc<IngestConsumer>) {
        *self.consumer.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(c);
    }

    pub fn current_consumer(&self) -> Option<Arc<IngestConsumer>> {
        self.consumer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
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
            crate::profile::handed_over(b.len(), self.config.batch_max);
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
        let up = statistics
            .brokers
            .values()
            .filter(|b| b.source != "internal" && b.state == "UP")
            .count();
        metrics::BROKERS_UP.set(up as i64);
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
                let lookback = shared.config.resume_lookback_messages as i64;
                let parts: Vec<i32> = tpl
                    .elements_for_topic(&topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                let mut plan = Vec::with_capacity(parts.len());
                for p in &parts {
                    let stored = positions.as_ref().and_then(|m| m.get(p).copied());
                    let (offset, fetched_from) = match (&positions, stored) {
                        (Some(_), Some(o)) => {
                            let from = (o - lookback).max(0);
                            (Offset::Offset(from), Some(from))
                        }
                        (Some(_), None) => (Offset::Beginning, None),
                        (None, _) => (Offset::Stored, None),
                    };
                    if let Err(e) = tpl.set_partition_offset(&topic, *p, offset) {
                        tracing::error!(partition = p, error = %e, "setting the start offset");
                    }
                    plan.push((*p, stored.unwrap_or(0), fetched_from));
                    // A stored position past the partition's end means the
                    // topic was deleted and recreated (or truncated): its
                    // offsets restarted, and reading on would treat new
                    // evidence as already committed. Stop, loudly.
                    if let Some(o) = stored
                        && let Some(high) =
                            partition_end_below(consumer, &shared.config, &topic, *p, o)
                    {
                        let msg = format!(
                            "partition {p} of {topic}: the ledger has consumed up to offset {o} but \
                             the partition ends at {high}; the topic was recreated or truncated. \
                             If that was deliberate, start a new consumer group (ingest.group_id): \
                             evidence already in the ledger is recognised by its identity"
                        );
                        tracing::error!("{msg}");
                        shared
                            .fatal
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(msg);
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
                // Each partition gets its own queue (split after `assign`,
                // which resets forwarding), so that backpressure can stop
                // taking messages without stopping the consumer queue, which
                // carries rebalances and keeps max.poll.interval.ms served.
                shared.membership.set_assigned(parts.iter().copied());
                let me = shared.current_consumer();
                let mut queues = shared.queues();
                queues.clear();
                if let Some(me) = me {
                    for (p, skip_below, fetched_from) in plan {
                        match me.split_partition_queue(&topic, p) {
                            Some(queue) => queues.push(PartQueue {
                                queue,
                                state: PartState {
                                    partition: p,
                                    skip_below,
                                    fetched_from,
                                    checked: false,
                                },
                            }),
                            None => {
                                tracing::error!(partition = p, "cannot split the partition queue")
                            }
                        }
                    }
                }
                drop(queues);
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
                shared.membership.set_assigned([]);
                shared.queues().clear();
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
                shared.paused.store(false, Ordering::SeqCst);
                metrics::PAUSED.set(0);
            }
            other => {
                tracing::error!(error = ?other, "rebalance error; unassigning");
                shared.membership.set_assigned([]);
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

/// How [`poll_loop`] ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Shutdown (or the writer stopped): the consumer left the group.
    Done,
    /// The watchdog asked for a fresh membership: the batches in flight were
    /// drained and the consumer left the group; create a new one.
    Rejoin,
}

/// The poll loop. Returns when `shutdown` or `stop` is cancelled, the writer
/// is gone, the dead-letter limit trips, or the watchdog asks for a rejoin.
///
/// Backpressure: when the batch being filled is full and the writer has no
/// room, the loop stops taking messages from the partition queues but keeps
/// polling the consumer queue (rebalances, `max.poll.interval.ms`);
/// librdkafka stops fetching once its per-partition queue is full
/// (`queued.max.messages.kbytes`). We deliberately do not use
/// `rd_kafka_pause`: resuming rewinds the fetch to the last delivered offset,
/// usually inside a record batch, and the tansu broker used in development
/// and tests (0.6) answers a fetch from inside a batch with the *next* batch
/// only — silently skipping the rest of the current one.
pub(crate) fn poll_loop(
    consumer: Arc<IngestConsumer>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    stop: CancellationToken,
) -> Result<Exit, IngestError> {
    let linger = Duration::from_millis(shared.config.batch_linger_ms);
    let batch_max = shared.config.batch_max;
    let mut result = Ok(());
    let mut rejoin = false;
    'outer: loop {
        if shutdown.is_cancelled() || stop.is_cancelled() {
            break;
        }
        if shared.membership.take_rejoin() {
            rejoin = true;
            break;
        }
        let fatal = shared
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(msg) = fatal {
            shared.halted.store(true, Ordering::SeqCst);
            shared.builder().discard();
            result = Err(IngestError::PositionBeyondLog(msg));
            break;
        }
        // Hand over a full or lingering batch when the writer has room.
        let blocked = {
            let mut b = shared.builder();
            let len = b.len();
            let ready =
                len >= batch_max || (len > 0 && b.first_at.is_some_and(|t| t.elapsed() >= linger));
            if ready {
                match shared.tx.try_reserve() {
                    Ok(permit) => {
                        if let Some(p) = b.take() {
                            crate::profile::handed_over(p.len(), batch_max);
                            permit.send(Work::Batch(p));
                        }
                        false
                    }
                    Err(mpsc::error::TrySendError::Full(())) => len >= batch_max,
                    Err(mpsc::error::TrySendError::Closed(())) => break,
                }
            } else {
                false
            }
        };
        set_paused(&shared, blocked);

        let mut got = 0usize;
        if !blocked {
            let mut queues = shared.queues();
            for q in queues.iter_mut() {
                for _ in 0..512 {
                    let Some(polled) = q.queue.poll(Duration::ZERO) else {
                        break;
                    };
                    match polled {
                        Ok(m) => {
                            got += 1;
                            if let Err(limit) = accept(&consumer, &shared, &mut q.state, &m) {
                                result = Err(limit);
                                break 'outer;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(partition = q.state.partition, error = %e, "consumer error")
                        }
                    }
                    if shared.builder().len() >= batch_max {
                        break;
                    }
                }
            }
        }
        // Serve the consumer queue (rebalances, commits, statistics); wait a
        // little when there was nothing to do.
        let timeout = if got > 0 {
            Duration::ZERO
        } else if blocked {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(5)
        };
        match consumer.poll(timeout) {
            None => {}
            Some(Ok(m)) => {
                // Only possible for a partition whose queue was not split.
                tracing::warn!(
                    partition = m.partition(),
                    offset = m.offset(),
                    "message on the consumer queue; processing it in order"
                );
                let mut b = shared.builder();
                metrics::CONSUMED.inc();
                if let Err(limit) = b.push(m.partition(), m.offset(), m.payload(), &shared.rules) {
                    drop(b);
                    result = Err(trip(&shared, limit));
                    break;
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
        }
    }
    if let Err(IngestError::DeadLetterLimit(limit)) = &result {
        tracing::error!("{limit}");
    }

    // Graceful stop (or rejoin): finish what was read, then leave the group
    // (the revocation that closing triggers finds nothing left to drain).
    if result.is_ok() && !stop.is_cancelled() {
        let deadline = Instant::now() + shared.drain_timeout();
        if shared.drain(deadline) {
            tracing::info!("batches in flight committed; leaving the group");
        } else {
            tracing::warn!(
                "batches in flight not committed within ingest.drain_timeout_ms; \
                 nothing is lost (their positions were not stored), they are read again"
            );
        }
    }
    let rejoin = rejoin && result.is_ok() && !stop.is_cancelled() && !shutdown.is_cancelled();
    if !rejoin {
        shared.halted.store(true, Ordering::SeqCst);
    }
    shared.builder().discard();
    shared.queues().clear();
    close(&consumer);
    shared.membership.set_assigned([]);
    result.map(|()| if rejoin { Exit::Rejoin } else { Exit::Done })
}

/// The dead-letter limit tripped: nothing of the current batch is committed
/// (not its entries, not its dead letters, not its positions).
fn trip(shared: &Shared, limit: String) -> IngestError {
    shared.halted.store(true, Ordering::SeqCst);
    shared.builder().discard();
    IngestError::DeadLetterLimit(limit)
}

/// One message from a partition queue: drop what the ledger already covers,
/// detect a fetch that started past the wanted offset, decode the rest.
fn accept(
    consumer: &IngestConsumer,
    shared: &Shared,
    q: &mut PartState,
    m: &rdkafka::message::BorrowedMessage<'_>,
) -> Result<(), IngestError> {
    metrics::CONSUMED.inc();
    let offset = m.offset();
    if !q.checked {
        q.checked = true;
        if let Some(from) = q.fetched_from
            && offset > from
            && offset > q.skip_below
        {
            {
                // The broker answered from past the wanted offset. Apache
                // Kafka never does that for an uncompacted topic; tansu does
                // when the offset is inside a record batch. Fetch again from
                // further back (the messages below `skip_below` are dropped
                // here, so this costs reads, never duplicates).
                if from > 0 {
                    let back = ((q.skip_below - from).max(1000)) * 10;
                    let again = (q.skip_below - back).max(0);
                    tracing::warn!(
                        partition = q.partition,
                        wanted = q.skip_below,
                        fetched_from = from,
                        first = offset,
                        refetch_from = again,
                        "the broker skipped past the wanted offset; fetching again from further back"
                    );
                    match consumer.seek(
                        &shared.config.topic,
                        q.partition,
                        Offset::Offset(again),
                        Duration::from_secs(10),
                    ) {
                        Ok(()) => {
                            q.fetched_from = Some(again);
                            q.checked = false;
                            return Ok(());
                        }
                        Err(e) => {
                            tracing::error!(partition = q.partition, error = %e, "seek failed")
                        }
                    }
                } else {
                    tracing::error!(
                        partition = q.partition,
                        wanted = q.skip_below,
                        first = offset,
                        "messages between the stored position and the first available offset \
                         are gone from the broker (retention?)"
                    );
                }
            }
        }
    }
    if offset < q.skip_below {
        return Ok(());
    }
    let pushed = shared
        .builder()
        .push(q.partition, offset, m.payload(), &shared.rules);
    pushed.map_err(|limit| trip(shared, limit))
}

fn set_paused(shared: &Shared, paused: bool) {
    if shared.paused.swap(paused, Ordering::Relaxed) != paused {
        metrics::PAUSED.set(paused as i64);
        tracing::debug!(
            "consumption {}",
            if paused {
                "paused (writer busy)"
            } else {
                "resumed"
            }
        );
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

/// The partition's end offset when the partition really ends below
/// `position` (the ledger's next offset); `None` when records reach it (or
/// the broker cannot be asked).
///
/// Apache Kafka's high watermark is exact, so a lower one means the topic
/// was recreated or truncated. tansu 0.6 reports an end that can fall inside
/// the last record batch (seen 2 and 57 offsets short of records already
/// consumed), so a low reading is confirmed by reading the records
/// themselves: from `resume_lookback_messages` before the reported end (the
/// same allowance ingest uses when it resumes on such a broker) up to
/// `position - 1`. Reaching the partition's end first confirms it.
fn partition_end_below(
    consumer: &BaseConsumer<IngestContext>,
    config: &IngestConfig,
    topic: &str,
    partition: i32,
    position: i64,
) -> Option<i64> {
    let high = match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
        Ok((_, h)) if h < position => h,
        _ => return None,
    };
    let from = (high - config.resume_lookback_messages as i64).max(0);
    match crate::topics::records_reach(config, topic, partition, from, position) {
        Ok(true) => {
            tracing::info!(
                partition,
                reported_end = high,
                position,
                "the broker reported an end offset below records it holds; not a recreated topic"
            );
            None
        }
        Ok(false) => Some(high),
        Err(e) => {
            tracing::warn!(partition, error = %e, "could not confirm the partition's end; carrying on");
            None
        }
    }
}
