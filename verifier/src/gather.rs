//! Gathering cold proof lookups into shared statements.
//!
//! A cold proof's statement is cheap to execute and dear to start:
//! PostgreSQL's executor set-up, a round trip, a context switch each way.
//! Profiles of cold runs showed PostgreSQL's share dominated by that fixed
//! cost. So requests that miss the bundle cache hand their key to one
//! loop, which sends up to `proof_batch_max` of them as one statement
//! ([`Ledger::proofs`]), with at most `proof_batches_in_flight` statements
//! running at once. Nothing waits for a batch to fill: a request that
//! finds a statement slot free goes at once, alone if it is alone; the
//! ones that arrive while every slot is busy make up the next statement.
//! Under load batches grow by themselves, and idle, latency is one
//! statement's.
//!
//! Every answer is the one the key would get alone (`Ledger::proofs`
//! says so and its test checks it). When the loop is not running (a
//! prover used without [`crate::run`]) or has stopped,
//! callers look their key up alone.

use std::sync::{Arc, OnceLock};

use std::future::Future;

use anchord_ledger::{LedgerError, ProofAnswer, ProofKey, ProofRow};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// One key's answer: a failure of its own row, or of its whole batch
/// (shared by every key of the batch).
pub type Answer = Result<Option<ProofRow>, Arc<LedgerError>>;

struct Ask {
    key: ProofKey,
    reply: oneshot::Sender<Answer>,
}

/// The asks waiting for the loop: a bounded queue (requests beyond it wait
/// to enqueue).
const QUEUE: usize = 8192;

#[derive(Debug)]
pub struct Gather {
    tx: OnceLock<mpsc::Sender<Ask>>,
    max: usize,
    in_flight: usize,
}

impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ask").field("key", &self.key).finish()
    }
}

impl Gather {
    /// How many gathered statements run at once.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn new(max: usize, in_flight: usize) -> Self {
        Gather {
            tx: OnceLock::new(),
            max: max.max(1),
            in_flight: in_flight.max(1),
        }
    }

    /// `key`'s answer from a gathered statement; `None` when no loop runs
    /// (the caller then asks alone).
    pub async fn ask(&self, key: &ProofKey) -> Option<Answer> {
        let tx = self.tx.get()?;
        let (reply, answer) = oneshot::channel();
        tx.send(Ask {
            key: key.clone(),
            reply,
        })
        .await
        .ok()?;
        // A dropped reply: the loop stopped, or its statement task failed.
        answer.await.ok()
    }

    /// Gather asks into batches until `shutdown`, then answer what is
    /// queued and wait for every batch started (owned, drained). `batch`
    /// answers one batch's keys, in order ([`Ledger::proofs`]).
    ///
    /// [`Ledger::proofs`]: anchord_ledger::Ledger::proofs
    pub async fn run<F, Fut>(&self, batch: F, shutdown: CancellationToken)
    where
        F: Fn(Vec<ProofKey>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ProofAnswer>, LedgerError>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        if self.tx.set(tx).is_err() {
            tracing::warn!("a proof-gathering loop already runs for this prover");
            return;
        }
        let slots = Arc::new(Semaphore::new(self.in_flight));
        let batch_fn = Arc::new(batch);
        let mut running = JoinSet::new();
        let mut stopping = false;
        loop {
            let first = if stopping {
                // Draining: what was queued before the close.
                match rx.recv().await {
                    Some(a) => a,
                    None => break,
                }
            } else {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        stopping = true;
                        rx.close();
                        continue;
                    }
                    a = rx.recv() => match a {
                        Some(a) => a,
                        None => break,
                    },
                }
            };
            // Wait for a slot first: asks arriving meanwhile join this batch.
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let mut batch = vec![first];
            while batch.len() < self.max {
                match rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
            while let Some(done) = running.try_join_next() {
                log_failed(done);
            }
            let batch_fn = batch_fn.clone();
            running.spawn(async move {
                metrics::PROOF_BATCHES_RUNNING.inc();
                metrics::PROOF_BATCH_SIZE.observe(batch.len() as f64);
                answer(&*batch_fn, batch).await;
                metrics::PROOF_BATCHES_RUNNING.dec();
                drop(slot);
            });
        }
        while let Some(done) = running.join_next().await {
            log_failed(done);
        }
    }
}

fn log_failed(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a gathered proof statement's task failed");
    }
}

/// One statement for `batch`, each ask answered (an error of the whole
/// statement goes to every ask).
async fn answer<F, Fut>(batch_fn: &F, batch: Vec<Ask>)
where
    F: Fn(Vec<ProofKey>) -> Fut,
    Fut: Future<Output = Result<Vec<ProofAnswer>, LedgerError>>,
{
    let (keys, replies): (Vec<ProofKey>, Vec<_>) =
        batch.into_iter().map(|a| (a.key, a.reply)).unzip();
    match batch_fn(keys).await {
        Ok(answers) => {
            for (reply, a) in replies.into_iter().zip(answers) {
                // A requester that went away does not take its answer.
                let _ = reply.send(a.map_err(Arc::new));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
