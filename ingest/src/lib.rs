//! The ingest stage: evidence messages from Kafka into the ledger, exactly
//! once.
//!
//! ```text
//!  Kafka ──poll──▶ consumer thread ──bounded──▶ preparing stage ──bounded──▶ committing stage
//!  (group)         decode + validate  (1 batch)  identities, lookup,  (1 batch)  Ledger::commit_prepared
//!                  fill the next batch           predicted seqs, leaf            (1 in flight: checks the
//!                  while one is written          hashes, COPY data               prediction under the lock;
//!                                                (Ledger::prepare_append)        entries, dead letters and
//!                                                                                positions, one transaction)
//!                                                                                   │ after commit
//!                                                                                   ├─▶ advisory Kafka commit
//!                                                                                   └─▶ dead-letter publisher ──▶ DLQ topic
//! ```
//!
//! Exactly-once rests on the ledger, not on Kafka: each transaction stores
//! the group's next offset per partition together with the rows those
//! offsets cover; on assignment the consumer starts from those positions; and
//! the ledger skips any message whose offset is below the stored position
//! (a redelivery after a crash or a rebalance), while (tenant, external id)
//! idempotency turns a resubmission into a duplicate, never a second entry.
//!
//! Backpressure: each channel holds one batch, the preparing stage one more
//! and the committing stage one in its transaction; when all are busy and the
//! next batch is full, the consumer stops taking
//! messages from its per-partition queues (librdkafka then stops fetching)
//! but keeps polling the consumer queue, so group membership and
//! `max.poll.interval.ms` are safe, until the writer catches up. A transient
//! ledger error (PostgreSQL down or restarting) is retried with exponential
//! backoff, never dropped; any other ledger error stops the stage loudly.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anchord_core::HashSuite;
use anchord_core::time::unix_micros;
use anchord_ledger::{
    AppendBatch, AppendHint, HeldHead, ItemOutcome, Ledger, LedgerError, PreparedAppend,
};
use backoff::backoff::Backoff as _;
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

mod config;
mod consumer;
pub mod dlq;
pub mod ijson;
mod limit;
pub mod loadgen;
pub mod membership;
pub mod message;
pub mod metrics;
pub mod probe;
pub mod profile;
pub mod topics;

pub use config::IngestConfig;
use consumer::{IngestConsumer, IngestContext, Shared, Work};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The brokers could not be used at all (see [`topics::diagnose`]).
    #[error("brokers: {0}")]
    Broker(String),
    #[error("dead-letter limit exceeded; stopped without committing the current batch: {0}")]
    DeadLetterLimit(String),
    #[error("the ledger and the topic disagree; stopped without skipping anything: {0}")]
    PositionBeyondLog(String),
    #[error("shutdown: {0}")]
    Shutdown(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// librdkafka settings for the ingest consumer. `fetch.queue.backoff.ms`
/// low (its 1 s default stalls a consumer whose queue filled once), large
/// fetches, a bounded prefetch per partition.
fn consumer_config(config: &IngestConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("client.id", "anchord-ingest")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "roundrobin")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.queue.backoff.ms", "5")
        .set("fetch.wait.max.ms", "50")
        .set("fetch.min.bytes", "1")
        .set("max.partition.fetch.bytes", "4194304")
        .set("fetch.max.bytes", "67108864")
        .set("queued.min.messages", "50000")
        .set("queued.max.messages.kbytes", "16384")
        .set("statistics.interval.ms", "5000");
    for (k, v) in &config.librdkafka {
        c.set(k, v);
    }
    c
}

fn producer_config(config: &IngestConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("client.id", "anchord-ingest-dlq")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5");
    for (k, v) in &config.librdkafka {
        // Consumer-only keys would only produce warnings on a producer.
        if !k.starts_with("fetch.") && !k.starts_with("queued.") && !k.starts_with("session.") {
            c.set(k, v);
        }
    }
    c
}

/// Run the stage until `shutdown` is cancelled (then finish the batch in
/// flight, store positions and leave the group) or a fatal error.
pub async fn run(
    config: IngestConfig,
    suite: HashSuite,
    ledger: Ledger,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    config.validate_for_ingest()?;
    metrics::init();
    topics::ensure(&config).await?;
    let rules = message::Rules {
        tenants: config.tenants.iter().cloned().collect::<HashSet<_>>(),
        accepted_algs: config.accepted_algs.clone(),
        max_message_bytes: config.max_message_bytes,
    };

    // Dead letters recorded before a crash are published first thing.
    let producer: FutureProducer = producer_config(&config).create()?;
    let dlq_notify = Arc::new(Notify::new());
    let dlq_done = CancellationToken::new();
    let publisher = tokio::spawn(dlq::publish_loop(
        ledger.clone(),
        producer,
        config.dead_letter_topic.clone(),
        dlq_notify.clone(),
        dlq_done.clone(),
    ));

    let (tx, rx) = mpsc::channel::<Work>(1);
    let shared = Arc::new(Shared::new(
        config.clone(),
        rules,
        ledger.clone(),
        tokio::runtime::Handle::current(),
        tx,
    ));
    membership::register(&config.group_id, &config.topic, &shared.membership);
    let consumer = new_consumer(&config, &shared)?;
    tracing::info!(topic = %config.topic, group = %config.group_id, brokers = %config.brokers,
        tenants = config.tenants.len(), batch_max = config.batch_max, "ingest started");

    // `stop` ends the poll loop when the writer fails; `consumer_done` tells
    // the writer no more work will come.
    let stop = CancellationToken::new();
    let consumer_done = CancellationToken::new();
    let writer = tokio::spawn(write_loop(
        rx,
        WriterDeps {
            ledger: ledger.clone(),
            suite,
            group: config.group_id.clone(),
            topic: config.topic.clone(),
            shared: shared.clone(),
            dlq_notify: dlq_notify.clone(),
            shutdown: shutdown.clone(),
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
        },
        stop.clone(),
        consumer_done.clone(),
    ));
    let watchdog = tokio::spawn(membership::watch(
        config.clone(),
        ledger.clone(),
        shared.membership.clone(),
        consumer_done.clone(),
    ));
    let poller = {
        let (shared, shutdown, stop) = (shared.clone(), shutdown.clone(), stop.clone());
        tokio::task::spawn_blocking(move || poll_until_done(consumer, shared, shutdown, stop))
    };
    let polled = poller
        .await
        .map_err(|e| IngestError::Internal(format!("consumer thread: {e}")));
    consumer_done.cancel();
    let _ = watchdog.await;
    let polled = polled?;
    let written = writer
        .await
        .map_err(|e| IngestError::Internal(format!("writer task: {e}")))?;
    dlq_done.cancel();
    let _ = publisher.await;
    shared.halted.store(true, Ordering::SeqCst);
    drop(shared);
    // The writer's error is the cause when both failed (the poll loop only
    // stopped because of it).
    written?;
    polled?;
    tracing::info!("ingest stopped");
    Ok(())
}

/// A consumer for the group, subscribed to the evidence topic (a new
/// member: librdkafka joins with an empty member id).
fn new_consumer(
    config: &IngestConfig,
    shared: &Arc<Shared>,
) -> Result<Arc<IngestConsumer>, IngestError> {
    let consumer = Arc::new(IngestConsumer::from_config_and_context(
        &consumer_config(config),
        IngestContext {
            shared: shared.clone(),
        },
    )?);
    shared.set_consumer(&consumer);
    consumer.subscribe(&[&config.topic])?;
    Ok(consumer)
}

/// The consumer thread: poll until done, replacing the consumer with a new
/// member whenever the assignment watchdog asks for a rejoin.
fn poll_until_done(
    mut consumer: Arc<IngestConsumer>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    stop: CancellationToken,
) -> Result<(), IngestError> {
    loop {
        match consumer::poll_loop(consumer, shared.clone(), shutdown.clone(), stop.clone())? {
            consumer::Exit::Done => return Ok(()),
            consumer::Exit::Rejoin => {
                shared.membership.rejoined();
                consumer = new_consumer(&shared.config, &shared)?;
                tracing::info!(group = %shared.config.group_id, "rejoined the consumer group as a new member");
            }
        }
    }
}

struct WriterDeps {
    ledger: Ledger,
    suite: HashSuite,
    group: String,
    topic: String,
    /// For the current consumer (advisory commits).
    shared: Arc<Shared>,
    dlq_notify: Arc<Notify>,
    shutdown: CancellationToken,
    drain_timeout: Duration,
}

/// A batch planned for the ledger, with what is reported once it commits.
struct Staged {
    prepared: PreparedAppend,
    rows: usize,
    reasons: Vec<&'static str>,
    produced_at_ms: Vec<i64>,
}

/// What the preparing stage hands the committing stage, in order.
enum Stage {
    Batch(Box<Staged>),
    Barrier(std::sync::mpsc::SyncSender<()>),
}

/// The writer: two stages joined by a bounded channel (one batch). The
/// preparing stage turns the next batch into its plan (identities, the
/// lookup of resubmissions, predicted sequence numbers, leaf hashes, the COPY
/// data) while the committing stage has the previous one in its transaction,
/// so PostgreSQL never waits for the writer's CPU work. The committing stage
/// checks each prediction under the head lock and plans again when it does
/// not hold; positions are stored in the same transaction as before and
/// batches commit in the order they were consumed, one at a time (appends
/// serialise on the head lock anyway).
async fn write_loop(
    rx: mpsc::Receiver<Work>,
    deps: WriterDeps,
    stop: CancellationToken,
    consumer_done: CancellationToken,
) -> Result<(), IngestError> {
    let deps = Arc::new(deps);
    let (stage_tx, stage_rx) = mpsc::channel::<Stage>(1);
    let missed = Arc::new(AtomicBool::new(false));
    let preparer = tokio::spawn(prepare_loop(
        rx,
        deps.clone(),
        stage_tx,
        stop.clone(),
        consumer_done,
        missed.clone(),
    ));
    let committed = commit_loop(stage_rx, &deps, &missed).await;
    if let Err(e) = &committed {
        tracing::error!(error = %e, "ingest writer stopped");
        stop.cancel();
    }
    // The preparer ends with the consumer, or as soon as its channel to the
    // committing stage (dropped with `commit_loop`) is closed.
    let prepared = preparer
        .await
        .map_err(|e| IngestError::Internal(format!("writer's preparing stage: {e}")))?;
    committed?;
    if let Err(e) = &prepared {
        tracing::error!(error = %e, "ingest writer stopped");
        stop.cancel();
    }
    prepared
}

async fn prepare_loop(
    mut rx: mpsc::Receiver<Work>,
    deps: Arc<WriterDeps>,
    stage_tx: mpsc::Sender<Stage>,
    stop: CancellationToken,
    consumer_done: CancellationToken,
    missed: Arc<AtomicBool>,
) -> Result<(), IngestError> {
    let mut hint = AppendHint::default();
    loop {
        let work = tokio::select! {
            biased;
            w = rx.recv() => w,
            _ = consumer_done.cancelled() => rx.try_recv().ok(),
        };
        let Some(work) = work else { return Ok(()) };
        let stage = match work {
            Work::Barrier(ack) => Stage::Barrier(ack),
            Work::Batch(p) => {
                // A batch that did not commit as predicted: predict the next
                // ones from the ledger again.
                if missed.swap(false, Ordering::SeqCst) {
                    hint = AppendHint::default();
                }
                let rows = p.len();
                let reasons: Vec<&'static str> = p.rejections.iter().map(|r| r.reason).collect();
                let batch = Arc::new(AppendBatch {
                    suite: deps.suite,
                    consumer_group: Some(deps.group.clone()),
                    received_at_us: unix_micros(SystemTime::now()),
                    entries: p.entries,
                    rejections: p.rejections,
                    positions: p.positions,
                });
                let size = batch.entries.len() + batch.rejections.len();
                let started = Instant::now();
                let prepared = match with_retry(&deps, size, || {
                    deps.ledger.prepare_append(batch.clone(), &hint)
                })
                .await
                {
                    Ok(prepared) => prepared,
                    // The committing stage failed: its error is the cause.
                    Err(_) if stop.is_cancelled() => return Ok(()),
                    Err(e) => return Err(e),
                };
                hint = prepared.hint_after(&hint);
                profile::prepared(started.elapsed(), &prepared);
                Stage::Batch(Box::new(Staged {
                    prepared,
                    rows,
                    reasons,
                    produced_at_ms: p.produced_at_ms,
                }))
            }
        };
        let waiting = Instant::now();
        if stage_tx.send(stage).await.is_err() {
            return Ok(());
        }
        profile::add(&profile::PREPARE_BLOCKED, waiting.elapsed());
    }
}

/// Commits the staged batches in order. When the next batch is already
/// staged as one is about to commit, its transaction begins (and takes the
/// head lock) in the same round trip as that `COMMIT`
/// ([`anchord_ledger::Ledger::commit_prepared_chained`]): PostgreSQL then
/// goes from one batch's commit to the next one's rows without waiting for
/// the writer to wake up twice. If what was staged is a barrier, or the
/// stage closes, the held transaction is released before anything else, so
/// the head lock is never held while the writer waits.
async fn commit_loop(
    mut stage_rx: mpsc::Receiver<Stage>,
    deps: &WriterDeps,
    missed: &AtomicBool,
) -> Result<(), IngestError> {
    let mut held: Option<HeldHead> = None;
    loop {
        let waiting = Instant::now();
        let stage = stage_rx.recv().await;
        profile::add(&profile::COMMIT_IDLE, waiting.elapsed());
        match stage {
            Some(Stage::Batch(s)) => {
                let ready = || !stage_rx.is_empty();
                held = commit_batch(deps, *s, missed, held.take(), &ready).await?;
            }
            other => {
                if let Some(h) = held.take() {
                    h.release().await;
                }
                match other {
                    Some(Stage::Barrier(ack)) => {
                        let _ = ack.send(());
                    }
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// Commit one staged batch (in `held`, the transaction begun with the
/// previous commit, if any) and report it; when `chain()` says the next
/// batch is ready, the next transaction is begun with this commit and
/// returned.
async fn commit_batch(
    deps: &WriterDeps,
    s: Staged,
    missed: &AtomicBool,
    held: Option<HeldHead>,
    chain: &(dyn Fn() -> bool + Sync),
) -> Result<Option<HeldHead>, IngestError> {
    let Staged {
        prepared,
        rows,
        mut reasons,
        produced_at_ms,
    } = s;
    let batch = prepared.batch();
    let size = batch.entries.len() + batch.rejections.len();
    let started = Instant::now();
    if held.is_some() {
        profile::CHAINED_BATCHES.fetch_add(1, Ordering::Relaxed);
    }
    // The held transaction serves the first attempt only; a retry begins
    // its own.
    let mut held = held;
    let (committed, next) = with_retry(deps, size, || {
        deps.ledger
            .commit_prepared_chained(&prepared, held.take(), chain)
    })
    .await?;
    metrics::WRITE_SECONDS.observe(started.elapsed().as_secs_f64());
    profile::committed(started.elapsed(), &committed);
    if let Some(miss) = committed.miss {
        metrics::PREDICTION_MISSES
            .with_label_values(&[miss.as_str()])
            .inc();
    }
    if !committed.as_predicted {
        missed.store(true, Ordering::SeqCst);
    }
    let out = committed.outcome;
    let committed_ms = unix_micros(SystemTime::now()) / 1000;

    metrics::BATCH_ROWS.observe(rows as f64);
    let mut accepted = 0u64;
    let mut duplicate = 0u64;
    let mut conflicts = 0u64;
    let mut seqs: Option<(u64, u64)> = None;
    // Observed into a local copy and added to the shared histogram once:
    // this runs between two transactions, with PostgreSQL waiting.
    let time_to_sequenced = metrics::TIME_TO_SEQUENCED.local();
    for (k, i) in out.items.iter().enumerate() {
        match i {
            ItemOutcome::Accepted { seq } => {
                accepted += 1;
                seqs = Some(seqs.map_or((*seq, *seq), |(a, b)| (a.min(*seq), b.max(*seq))));
                // `items` follows `entries`; `produced_at` is the producer's clock.
                if let Some(produced) = produced_at_ms.get(k) {
                    time_to_sequenced.observe((committed_ms - produced).max(0) as f64 / 1e3);
                }
            }
            ItemOutcome::Duplicate { .. } => duplicate += 1,
            ItemOutcome::Conflict { existing_seq } => {
                conflicts += 1;
                tracing::warn!(
                    existing_seq,
                    "conflict: same tenant and external id with another hash; dead-lettered"
                );
            }
            ItemOutcome::AlreadyCommitted => {}
        }
    }
    time_to_sequenced.flush();
    let (first_seq, last_seq) = seqs.unzip();
    tracing::debug!(
        first_seq,
        last_seq,
        accepted,
        duplicate,
        conflicts,
        rejected = out.rejections_recorded,
        as_predicted = committed.as_predicted,
        "batch committed"
    );
    metrics::ACCEPTED.inc_by(accepted);
    metrics::DUPLICATE.inc_by(duplicate);
    if conflicts > 0 {
        metrics::DEAD_LETTERS
            .with_label_values(&[message::reason::CONFLICT])
            .inc_by(conflicts);
    }
    // Rejections skipped as already committed were counted by whoever
    // committed them first; only count by reason when none was skipped.
    if out.rejections_skipped == 0 {
        reasons.sort_unstable();
        for r in reasons {
            metrics::DEAD_LETTERS.with_label_values(&[r]).inc();
        }
    }
    if conflicts > 0 || out.rejections_recorded > 0 {
        deps.dlq_notify.notify_one();
    }

    // Advisory commit to Kafka, after the ledger commit: never ahead of it.
    if !batch.positions.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for pos in &batch.positions {
            let _ = tpl.add_partition_offset(
                &deps.topic,
                pos.partition,
                Offset::Offset(pos.next_offset),
            );
        }
        if let Some(consumer) = deps.shared.current_consumer()
            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::debug!(error = %e, "advisory Kafka offset commit not sent");
        }
    }
    Ok(next)
}

/// Run a ledger call until it succeeds, retrying transient errors (the
/// ledger down or restarting) with exponential backoff; past the drain
/// timeout after shutdown, give up with the batch unwritten (it is read
/// again on restart).
async fn with_retry<T, F, Fut>(
    deps: &WriterDeps,
    size: usize,
    mut call: F,
) -> Result<T, IngestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LedgerError>>,
{
    let mut backoff = backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(100),
        max_interval: Duration::from_secs(5),
        multiplier: 2.0,
        max_elapsed_time: None,
        ..Default::default()
    };
    let mut shutdown_seen: Option<Instant> = None;
    loop {
        match call().await {
            Ok(out) => return Ok(out),
            Err(e) if e.is_transient() => {
                if deps.shutdown.is_cancelled() {
                    let seen = *shutdown_seen.get_or_insert_with(Instant::now);
                    if seen.elapsed() >= deps.drain_timeout {
                        return Err(IngestError::Shutdown(format!(
                            "the ledger stayed unreachable ({e}); a batch of {size} message(s) was \
                             not written and its positions were not stored: it is read again \
                             on restart"
                        )));
                    }
                }
                metrics::LEDGER_RETRIES.inc();
                let delay = backoff.next_backoff().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                    "ledger append failed (transient); consumption pauses until it succeeds");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
