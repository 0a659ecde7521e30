//! One worker per target: enqueue the newest final checkpoint, claim due
//! jobs from the PostgreSQL outbox, ask the target before any resubmission,
//! send, record; back off on retriable errors; stop hammering a target that
//! is down (circuit breaker).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anchord_ledger::{ClaimedJob, Ledger, LedgerError, NewReceipt};
use backoff::backoff::Backoff;
use tokio_util::sync::CancellationToken;

use crate::RelayError;
use crate::config::{Finality, RelayConfig};
use crate::metrics;
use crate::target::{
    AnchorPayload, ChainReceipt, ErrorClass, Prepared, Status, Target, TargetError, Verification,
    idempotency_key,
};
use anchord_core::time::unix_micros;
use std::time::SystemTime;

/// Breaker states (metric values 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

/// A per-target circuit breaker: `failures` consecutive failures open it
/// for `open_for`; then one probe is let through (half-open); a failed
/// probe re-opens it for twice as long (up to the max), a success closes it.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    base: Duration,
    max: Duration,
    failures: u32,
    state: BreakerState,
    open_for: Duration,
    open_until: Instant,
}

impl Breaker {
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Self {
        Breaker {
            threshold,
            base,
            max,
            failures: 0,
            state: BreakerState::Closed,
            open_for: base,
            open_until: Instant::now(),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// May a request go out now? Moves Open → HalfOpen once the period is
    /// over. `Err(wait)` says how long until the next probe.
    pub fn allow(&mut self, now: Instant) -> Result<(), Duration> {
        if self.state == BreakerState::Open {
            if now < self.open_until {
                return Err(self.open_until - now);
            }
            self.state = BreakerState::HalfOpen;
        }
        Ok(())
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.state = BreakerState::Closed;
        self.open_for = self.base;
    }

    pub fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        match self.state {
            BreakerState::HalfOpen => {
                self.open_for = (self.open_for * 2).min(self.max);
                self.state = BreakerState::Open;
                self.open_until = now + self.open_for;
            }
            BreakerState::Closed if self.failures >= self.threshold => {
                self.state = BreakerState::Open;
                self.open_until = now + self.open_for;
            }
            _ => {}
        }
    }
}

/// The delay before attempt `attempts + 1`: exponential with jitter, from
/// the `backoff` crate.
pub fn retry_delay(c: &RelayConfig, attempts: i32) -> Duration {
    let mut b = backoff::ExponentialBackoffBuilder::new()
        .with_initial_interval(Duration::from_millis(c.backoff_initial_ms))
        .with_max_interval(Duration::from_millis(c.backoff_max_ms))
        .with_randomization_factor(c.backoff_jitter)
        .with_multiplier(2.0)
        .with_max_elapsed_time(None)
        .build();
    let mut d = Duration::from_millis(c.backoff_initial_ms);
    for _ in 0..attempts.clamp(1, 32) {
        d = b
            .next_backoff()
            .unwrap_or(Duration::from_millis(c.backoff_max_ms));
    }
    d
}

/// What one job's processing said about the target's health.
enum Health {
    Ok,
    Failed,
    /// The claim was lost or nothing was asked of the target.
    Neutral,
}

pub(crate) struct Worker<T: Target> {
    pub target: Arc<T>,
    pub ledger: Ledger,
    pub config: RelayConfig,
    pub confirm_poll_ms: u64,
    pub finality: Finality,
    pub breaker: Breaker,
}

impl<T: Target> Worker<T> {
    fn name(&self) -> &str {
        self.target.name()
    }

    /// Run until `shutdown`: the job loop, and beside it the upkeep loop
    /// (the backlog gauge from the ledger at every tick; the re-verification
    /// of recorded anchors). Both are owned here and drained before return.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RelayError> {
        let name = self.name().to_owned();
        tracing::info!(target_name = %name, "relay worker starting");
        metrics::init_target(&name);
        metrics::BREAKER.with_label_values(&[&name]).set(0);
        // The gauge starts from what the ledger holds, not 0, so a restart
        // does not look like an anchoring regression on dashboards.
        if let Ok(size) = self.ledger.anchored_size(&name).await {
            metrics::ANCHORED_SIZE
                .with_label_values(&[&name])
                .set(size as i64);
        }
        let upkeep = Upkeep {
            target: self.target.clone(),
            ledger: self.ledger.clone(),
            poll: self.config.poll(),
            finality: self.finality,
        };
        let stop = shutdown.child_token();
        let (jobs, upkept) = tokio::join!(
            async {
                let r = self.jobs(stop.clone()).await;
                stop.cancel();
                r
            },
            async {
                upkeep.run(stop.clone()).await;
                stop.cancel();
            }
        );
        let () = upkept;
        tracing::info!(target_name = %name, "relay worker stopped");
        jobs
    }

    async fn jobs(mut self, shutdown: CancellationToken) -> Result<(), RelayError> {
        let name = self.name().to_owned();
        while !shutdown.is_cancelled() {
            let idle = match self.step().await {
                Ok(idle) => idle,
                Err(e) if e.is_transient() => {
                    tracing::warn!(target_name = %name, error = %e, "ledger unavailable; retrying");
                    Some(self.config.poll())
                }
                Err(e) => return Err(e.into()),
            };
            metrics::BREAKER
                .with_label_values(&[&name])
                .set(match self.breaker.state() {
                    crate::worker::BreakerState::Closed => 0,
                    crate::worker::BreakerState::HalfOpen => 1,
                    crate::worker::BreakerState::Open => 2,
                });
            if let Some(wait) = idle {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        Ok(())
    }

    /// One round: enqueue, maybe claim and process one job. Returns how long
    /// to sleep (`None`: go again at once).
    async fn step(&mut self) -> Result<Option<Duration>, LedgerError> {
        let name = self.name().to_owned();
        if let Some(cp) = self.ledger.latest_final_checkpoint().await?
            && self
                .ledger
                .enqueue_anchor(&name, cp.size, &idempotency_key(&name, &cp))
                .await?
        {
            tracing::debug!(target_name = %name, size = cp.size, "anchor job enqueued");
        }
        if let Err(wait) = self.breaker.allow(Instant::now()) {
            return Ok(Some(wait.min(self.config.poll())));
        }
        let Some(job) = self
            .ledger
            .claim_anchor_job(&name, self.config.lease_ms as i64)
            .await?
        else {
            return Ok(Some(self.config.poll()));
        };
        match self.process(&job).await? {
            Health::Ok => self.breaker.success(),
            Health::Failed => self.breaker.failure(Instant::now()),
            Health::Neutral => {}
        }
        Ok(None)
    }

    /// Pipeline latency, stage `anchored`: now minus the received time of
    /// the first entry of checkpoint `size`'s newest block (best effort).
    async fn observe_anchored(&self, size: u64) {
        let Some(height) = size.checked_sub(1) else {
            return;
        };
        if let Ok(Some(block)) = self.ledger.block(height).await
            && let Ok(Some(received)) = self.ledger.received_at(block.header.first_seq).await
        {
            metrics::TIME_TO_ANCHORED
                .with_label_values(&[self.name()])
                .observe((unix_micros(SystemTime::now()) - received).max(0) as f64 / 1e6);
        }
    }

    async fn process(&self, job: &ClaimedJob) -> Result<Health, LedgerError> {
        let name = self.name();
        let payload = AnchorPayload::new(name, &job.checkpoint);
        if payload.idempotency_key != job.idempotency_key {
            return Err(LedgerError::Corrupt(format!(
                "job {} on {name}: stored idempotency key {} does not match checkpoint {} ({})",
                job.id, job.idempotency_key, job.checkpoint.size, payload.idempotency_key
            )));
        }
        let mut recorded: Option<Prepared> = match &job.submission {
            Some(s) => Some(serde_json::from_str(s).map_err(|e| {
                LedgerError::Corrupt(format!("job {}: recorded submission: {e}", job.id))
            })?),
            None => None,
        };
        // A submission is recorded before anything is sent: with none,
        // nothing of this job can be on chain. With one, ask first.
        if let Some(rec) = &recorded {
            metrics::LOOKUPS.with_label_values(&[name]).inc();
            match self.target.lookup(&payload, Some(rec)).await {
                Ok(Status::Confirmed(r)) => return self.confirm(job, &payload, r).await,
                Ok(Status::Pending { tx_id }) => {
                    tracing::debug!(target_name = %name, size = job.checkpoint.size, tx = %tx_id, "still pending");
                    self.ledger
                        .record_anchor_submitted(job, &tx_id, self.confirm_poll_ms as i64)
                        .await?;
                    return Ok(Health::Ok);
                }
                Ok(Status::NotFound) => {
                    if self
                        .ledger
                        .anchor_superseded(name, job.checkpoint.size)
                        .await?
                    {
                        tracing::info!(target_name = %name, size = job.checkpoint.size,
                            "not on chain and covered by a newer anchor; not resending");
                        self.ledger.record_anchor_superseded(job).await?;
                        return Ok(Health::Ok);
                    }
                }
                Err(e) => return self.failed(job, e, true).await,
            }
            // Not on chain. A submission signed for one chain is sent again
            // only to that chain: after a reset it is discarded, unsent.
            if self.target.binds_chain() {
                let id = match self.target.identity().await {
                    Ok(id) => id,
                    Err(e) => return self.failed(job, e, true).await,
                };
                if !self.target.bound_to(rec, &id) {
                    let why = format!(
                        "signed for another chain than the target's now (chain {}, genesis {}): \
                         discarded unsent",
                        id.chain_id, id.genesis_hash
                    );
                    tracing::warn!(target_name = %name, size = job.checkpoint.size,
                        tx = ?rec.tx_id, "recorded submission {why}; signing a new one");
                    metrics::DISCARDED.with_label_values(&[name]).inc();
                    if !self.ledger.discard_anchor_submission(job, &why).await? {
                        return Ok(Health::Neutral);
                    }
                    recorded = None;
                }
            }
        }
        // Resend the recorded submission unless it can never land; else
        // prepare a new one and record it before sending.
        let new = match &recorded {
            Some(r) => match self.target.refresh(&payload, r).await {
                Ok(n) => n,
                Err(e) => return self.failed(job, e, false).await,
            },
            None => match self.target.prepare(&payload).await {
                Ok(p) => Some(p),
                Err(e) => return self.failed(job, e, false).await,
            },
        };
        let prepared = match (new, recorded) {
            // A new submission, or the recorded one sent again: recorded
            // (the job is `sending`) before anything goes out.
            (Some(p), _) | (None, Some(p)) => {
                let json = serde_json::to_string(&p).map_err(|e| {
                    LedgerError::Corrupt(format!("job {}: submission: {e}", job.id))
                })?;
                if !self
                    .ledger
                    .record_anchor_prepared(job, p.tx_id.as_deref(), &json)
                    .await?
                {
                    return Ok(Health::Neutral);
                }
                p
            }
            // Not reached: prepare always yields a submission.
            (None, None) => return Ok(Health::Neutral),
        };
        metrics::SUBMISSIONS.with_label_values(&[name]).inc();
        tracing::debug!(target_name = %name, size = job.checkpoint.size, attempt = job.attempts, "sending");
        match self.target.send(&payload, &prepared).await {
            Ok(Status::Confirmed(r)) => self.confirm(job, &payload, r).await,
            Ok(Status::Pending { tx_id }) => {
                tracing::debug!(target_name = %name, size = job.checkpoint.size, tx = %tx_id, "accepted; awaiting confirmation");
                self.ledger
                    .record_anchor_submitted(job, &tx_id, self.confirm_poll_ms as i64)
                    .await?;
                Ok(Health::Ok)
            }
            Ok(Status::NotFound) => {
                let e = TargetError::ambiguous("target answered a submission with not-found");
                self.failed(job, e, true).await
            }
            Err(e) => {
                let maybe_sent = e.class == ErrorClass::Ambiguous;
                self.failed(job, e, maybe_sent).await
            }
        }
    }

    async fn failed(
        &self,
        job: &ClaimedJob,
        e: TargetError,
        maybe_sent: bool,
    ) -> Result<Health, LedgerError> {
        let name = self.name();
        // A job an earlier attempt may have sent stays so, whatever this
        // attempt's failure.
        let maybe_sent = maybe_sent || job.prev_state.maybe_sent();
        metrics::FAILURES
            .with_label_values(&[name, e.class.label()])
            .inc();
        if e.class == ErrorClass::Permanent {
            tracing::error!(target_name = %name, size = job.checkpoint.size, error = %e,
                "permanent anchoring error; job failed (a later anchor will cover it)");
            self.ledger.record_anchor_failed(job, &e.message).await?;
        } else {
            let delay = retry_delay(&self.config, job.attempts);
            tracing::warn!(target_name = %name, size = job.checkpoint.size, error = %e,
                class = e.class.label(), retry_in_ms = delay.as_millis() as u64, "anchoring attempt failed");
            metrics::RETRIES.with_label_values(&[name]).inc();
            self.ledger
                .record_anchor_retry(job, maybe_sent, &e.message, delay.as_millis() as i64)
                .await?;
        }
        Ok(Health::Failed)
    }

    async fn confirm(
        &self,
        job: &ClaimedJob,
        payload: &AnchorPayload,
        r: ChainReceipt,
    ) -> Result<Health, LedgerError> {
        let name = self.name();
        let receipt_json = anchord_core::anchor::RawReceipt {
            target: name,
            chain_kind: &r.chain_kind,
            chain_id: &r.chain_id,
            tx_id: &r.tx_id,
            block_number: r.block_number,
            block_hash: &r.block_hash,
            block_time_us: r.block_time_us,
            genesis_hash: r.genesis_hash.as_deref(),
            idempotency_key: &payload.idempotency_key,
            checkpoint: &payload.checkpoint,
            details: &r.details,
        }
        .to_json();
        let new = NewReceipt {
            genesis_hash: r.genesis_hash.clone(),
            chain_kind: r.chain_kind.clone(),
            chain_id: r.chain_id.clone(),
            tx_id: r.tx_id.clone(),
            block_number: r.block_number,
            block_hash: r.block_hash.clone(),
            block_time_us: r.block_time_us,
            receipt_json: receipt_json.to_string(),
        };
        match self.ledger.record_anchor_confirmed(job, &new).await? {
            Some(c) => {
                metrics::CONFIRMATIONS.with_label_values(&[name]).inc();
                metrics::COVERED
                    .with_label_values(&[name])
                    .inc_by(c.covered);
                let secs = (unix_micros(SystemTime::now()) - job.checkpoint.created_at_us).max(0)
                    as f64
                    / 1e6;
                metrics::SEAL_TO_ANCHOR
                    .with_label_values(&[name])
                    .observe(secs);
                let gauge = metrics::ANCHORED_SIZE.with_label_values(&[name]);
                gauge.set(gauge.get().max(job.checkpoint.size as i64));
                self.observe_anchored(job.checkpoint.size).await;
                tracing::info!(target_name = %name, size = payload.checkpoint.size, tx = %r.tx_id,
                    block = r.block_number, covered = c.covered, "anchor confirmed");
                Ok(Health::Ok)
            }
            None => Ok(Health::Neutral),
        }
    }
}

/// The worker's second loop: keeps the backlog gauge true to the ledger at
/// every tick, whatever the job loop is busy with, and re-verifies recorded
/// anchors on the chain (the finality policy): the chain's identity every
/// `reverify` period (another genesis block or chain id is a reset: every
/// anchor on the old chain is marked lost, stale submissions discarded),
/// then a batch of not-yet-final receipts by block hash (a reorganised one
/// is marked lost and its checkpoint re-pended).
struct Upkeep<T: Target> {
    target: Arc<T>,
    ledger: Ledger,
    poll: Duration,
    finality: Finality,
}

impl<T: Target> Upkeep<T> {
    async fn run(self, shutdown: CancellationToken) {
        let name = self.target.name().to_owned();
        let mut next_reverify = Instant::now();
        let mut last_pass = Instant::now();
        while !shutdown.is_cancelled() {
            if let Err(e) = self.gauges().await {
                tracing::warn!(target_name = %name, error = %e, "relay gauges: ledger unavailable");
            }
            if Instant::now() >= next_reverify {
                next_reverify = Instant::now() + self.finality.reverify;
                let done = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = self.reverify() => r,
                };
                match done {
                    Ok(true) => last_pass = Instant::now(),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(target_name = %name, error = %e, "re-verification: ledger unavailable")
                    }
                }
                metrics::REVERIFY_AGE
                    .with_label_values(&[&name])
                    .set(last_pass.elapsed().as_secs() as i64);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    async fn gauges(&self) -> Result<(), LedgerError> {
        let name = self.target.name();
        let n = self.ledger.anchor_backlog(name).await?;
        metrics::BACKLOG.with_label_values(&[name]).set(n as i64);
        // The newest anchor that stands (it goes down when one is lost).
        let size = self.ledger.anchored_size(name).await?;
        metrics::ANCHORED_SIZE
            .with_label_values(&[name])
            .set(size as i64);
        Ok(())
    }

    /// One pass. True when it completed (the target answered throughout).
    async fn reverify(&self) -> Result<bool, LedgerError> {
        let name = self.target.name();
        let id = match self.target.identity().await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(target_name = %name, error = %e, "re-verification: cannot read the chain's identity");
                return Ok(false);
            }
        };
        let known = self.ledger.record_anchor_chain(name, &id).await?;
        if known != id {
            tracing::error!(target_name = %name, old_chain = %known.chain_id,
                old_genesis = %known.genesis_hash, chain = %id.chain_id, genesis = %id.genesis_hash,
                "CHAIN RESET: the target serves another chain; anchors on the old one are lost");
            if let Some(o) = self.ledger.record_chain_reset(name, &known, &id).await? {
                metrics::CHAIN_RESETS.with_label_values(&[name]).inc();
                metrics::ANCHORS_LOST
                    .with_label_values(&[name])
                    .inc_by(o.receipts_lost);
                tracing::error!(target_name = %name, receipts_lost = o.receipts_lost,
                    coverage_lost = o.coverage_lost, submissions_discarded = o.submissions_discarded,
                    recovered = o.recovered, "anchors marked lost; anchoring again on the new chain");
            }
        }
        let batch = self
            .ledger
            .anchor_receipts_to_verify(
                name,
                self.finality.final_depth,
                i64::from(self.finality.reverify_batch),
            )
            .await?;
        for r in batch {
            let first = match self.target.verify_receipt(&r).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(target_name = %name, error = %e, "re-verification: target unavailable");
                    return Ok(false);
                }
            };
            let v = match first {
                // Ask twice before calling an anchor lost.
                Verification::Lost(_) => match self.target.verify_receipt(&r).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(target_name = %name, error = %e, "re-verification: target unavailable");
                        return Ok(false);
                    }
                },
                v => v,
            };
            match v {
                Verification::InPlace { depth } => {
                    self.ledger.record_receipt_verified(r.id, depth).await?;
                    metrics::REVERIFIED.with_label_values(&[name]).inc();
                }
                Verification::Lost(why) => {
                    if let Some(o) = self.ledger.record_anchor_lost(r.id, &why).await? {
                        metrics::ANCHORS_LOST
                            .with_label_values(&[name])
                            .inc_by(o.receipts_lost);
                        tracing::error!(target_name = %name, size = r.checkpoint_size, tx = %r.tx_id,
                            block = r.block_number, reason = %why,
                            "ANCHOR LOST: marked lost; its checkpoint is pending again");
                    }
                }
            }
        }
        let unfinal = self
            .ledger
            .anchor_receipts_unfinal(name, self.finality.final_depth)
            .await?;
        metrics::UNFINAL
            .with_label_values(&[name])
            .set(unfinal as i64);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, Duration::from_millis(100), Duration::from_millis(400));
        for _ in 0..2 {
            b.failure(t0);
        }
        assert_eq!(b.allow(t0), Ok(()));
        b.failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.allow(t0 + Duration::from_millis(50)).is_err());
        assert_eq!(b.allow(t0 + Duration::from_millis(100)), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let t1 = t0 + Duration::from_millis(100);
        b.failure(t1);
        assert_eq!(
            b.allow(t1 + Duration::from_millis(150)),
            Err(Duration::from_millis(50)),
            "a failed probe doubles the open period"
        );
        assert_eq!(b.allow(t1 + Duration::from_millis(200)), Ok(()));
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let c = RelayConfig {
            backoff_jitter: 0.0,
            ..RelayConfig::default()
        };
        assert_eq!(retry_delay(&c, 1), Duration::from_millis(200));
        assert_eq!(retry_delay(&c, 3), Duration::from_millis(800));
        assert_eq!(retry_delay(&c, 30), Duration::from_millis(5000));
    }
}
