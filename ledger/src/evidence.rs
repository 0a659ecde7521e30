//! Appending evidence: gap-free sequence numbers, idempotency by
//! (tenant, external id), consumer positions and dead letters in the same
//! transaction as the rows they cover.

// foldhash, not SipHash: see the workspace manifest.
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchord_core::{Digest32, Entry, EvidenceAlg, entry::identity_key};

use crate::filters::FilterSet;
use crate::identities::{self, IdentityCheck, Probe};
use anchord_core::filter::FilterKind;
use bytes::Bytes;
use deadpool_postgres::GenericClient;
use futures::{SinkExt, pin_mut};
use tokio_postgres::Statement;

use crate::batch::{AppendBatch, ItemOutcome, Position, Source};
use crate::plan::{self, LedgerState, StoredIdentity};
use crate::{Ledger, LedgerError};

/// A dead letter recorded in the ledger and not yet published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    pub source: Option<Source>,
    pub reason: String,
    pub detail: String,
    pub payload: Vec<u8>,
}

/// The result of [`Ledger::append`].
#[derive(Clone, Debug, Default)]
pub struct AppendOutcome {
    /// One outcome per entry, in the batch's order.
    pub items: Vec<ItemOutcome>,
    /// How many rejections were newly recorded (redelivered ones are not).
    pub rejections_recorded: usize,
    /// How many rejections were skipped as already committed.
    pub rejections_skipped: usize,
}

impl AppendOutcome {
    pub fn count(&self, f: impl Fn(&ItemOutcome) -> bool) -> usize {
        self.items.iter().filter(|i| f(i)).count()
    }
    pub fn accepted(&self) -> usize {
        self.count(|i| matches!(i, ItemOutcome::Accepted { .. }))
    }
}

/// An entry as stored, with what only the ledger knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub entry: Entry,
    pub leaf_hash: Digest32,
    pub source: Option<Source>,
}

/// The head row, locked: the next sequence number, the upper bound of the
/// partitions created so far, and the partition size.
const HEAD_LOCK: &str = "SELECT h.next_seq, h.partition_high, \
     (SELECT value FROM ledger_meta WHERE key = 'evidence_partition_size') \
     FROM ledger_head h WHERE singleton FOR UPDATE OF h";

const COPY_EVIDENCE: &str = "COPY evidence (seq, received_at_us, src_offset, src_partition, \
     src_topic_id, hash_alg, entry_version, tenant, external_id, evidence_hash, leaf_hash, \
     metadata) FROM STDIN BINARY";

const COPY_IDENTITY: &str = "COPY evidence_identity (seq, identity) FROM STDIN BINARY";

pub(crate) const SELECT_ENTRY: &str = "SELECT e.seq, e.tenant, e.external_id, e.hash_alg, e.evidence_hash, \
     e.metadata, e.received_at_us, e.leaf_hash, t.name, e.src_partition, e.src_offset \
     FROM evidence e LEFT JOIN kafka_topics t ON t.id = e.src_topic_id";

/// What the writer expects the ledger to hold when its next batch commits:
/// the outcome of the batches prepared before it, as if they committed as
/// planned. Lets [`Ledger::prepare_append`] plan a batch (identities, leaf
/// hashes, sequence numbers, the COPY data) while the previous one is still
/// being written. A wrong prediction costs time, never correctness:
/// [`Ledger::commit_prepared`] checks it under the locks and plans again.
#[derive(Clone, Debug, Default)]
pub struct AppendHint {
    /// The state after the previous prepared batch (None: read the ledger).
    predicted: Option<LedgerState>,
    /// Identities accepted by the last prepared batches, which may not be
    /// committed yet (so a lookup in the ledger would not see them).
    /// Shared, not copied: each hint keeps the last batches' maps.
    recent: Vec<Arc<Recent>>,
    /// Source topic ids (topics are never renamed or removed).
    topics: HashMap<String, i16>,
    /// Skip the lookup of the batch's identities among committed entries
    /// (the common case of fresh keys): the previous batch found none
    /// stored. The identity's unique index still catches a stored one when
    /// the rows are written; the commit then rolls back and plans again with
    /// the lookup under the lock ([`PredictionMiss::IdentityTaken`]).
    skip_lookup: bool,
}

/// How many prepared batches can be ahead of the last committed one.
const RECENT_BATCHES: usize = 3;

/// The identities one prepared batch accepts: each one's sequence number and
/// its place in the batch (the batch is kept, so that no evidence hash is
/// copied per entry for the rare lookup that finds one).
#[derive(Debug)]
struct Recent {
    batch: Arc<AppendBatch>,
    ids: HashMap<Digest32, (u64, usize)>,
}

impl Recent {
    fn get(&self, id: &Digest32) -> Option<StoredIdentity> {
        self.ids.get(id).map(|&(seq, index)| {
            let e = &self.batch.entries[index];
            StoredIdentity {
                seq,
                hash_alg: e.hash_alg.id() as i16,
                evidence_hash: e.evidence_hash.clone(),
            }
        })
    }
}

/// A batch planned against a predicted state, ready to commit.
#[derive(Debug)]
pub struct PreparedAppend {
    batch: Arc<AppendBatch>,
    ids: Vec<Digest32>,
    predicted: LedgerState,
    /// Identities in `predicted.existing` taken from the hint (not read from
    /// the ledger): checked under the lock.
    unverified: Vec<Digest32>,
    topics: HashMap<String, i16>,
    planned: Planned,
    /// Whether committed identities were looked up (false: left to the
    /// identity's unique index, see [`AppendHint`]).
    looked_up: bool,
    /// The identity filters the preparation used: the commit probes, under
    /// the head lock, every range of older partitions they do not cover.
    filters: FilterSet,
    check: IdentityCheck,
    timings: PrepareTimings,
}

/// Where [`Ledger::prepare_append`] spent its time.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrepareTimings {
    /// Source topic ids and, without a hint, the head and positions.
    pub state: Duration,
    /// The lookup of the batch's identities among committed entries (zero
    /// when skipped).
    pub lookup: Duration,
    /// Identity keys, classification, leaf hashes and the COPY data.
    pub plan: Duration,
}

/// Where one [`Ledger::commit_prepared`] transaction spent its time (the
/// last attempt when it was rolled back and written again).
#[derive(Clone, Copy, Debug, Default)]
pub struct CommitTimings {
    /// A pooled connection, `BEGIN`, the head lock and the group's positions
    /// (about nothing for a transaction begun with the previous `COMMIT`).
    pub lock: Duration,
    /// Checking the prediction (identities of batches in flight; every
    /// identity on the careful path) and planning again when it failed.
    pub verify: Duration,
    /// `COPY evidence_identity` (including the partitions created ahead).
    pub copy_identity: Duration,
    /// `COPY evidence`.
    pub copy_evidence: Duration,
    /// The head update, dead letters and the consumer positions.
    pub bookkeeping: Duration,
    /// `COMMIT` (the WAL flush), and, when chained, the next transaction's
    /// `BEGIN` and locks sent with it.
    pub commit: Duration,
    /// Time spent in an attempt that was rolled back
    /// ([`PredictionMiss::IdentityTaken`]).
    pub wasted: Duration,
}

/// Why a prepared batch was not written as prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictionMiss {
    /// The head, the group's positions or an identity of a batch in flight
    /// differed from the prediction: planned again under the lock before
    /// anything was written (costs only CPU).
    State,
    /// An identity of the batch was already stored although the prediction
    /// said it was fresh (a resubmission of an entry committed earlier, with
    /// the lookup skipped, or one taken by another writer meanwhile): the
    /// identity's unique index rejected the COPY, the transaction rolled back
    /// (leaving up to the batch's identity rows as dead tuples, never an
    /// evidence row)
    /// and the batch was written again with every identity looked up under
    /// the lock.
    IdentityTaken,
}

impl PredictionMiss {
    /// A label for metrics: `state` or `identity_taken`.
    pub fn as_str(self) -> &'static str {
        match self {
            PredictionMiss::State => "state",
            PredictionMiss::IdentityTaken => "identity_taken",
        }
    }
}

/// The owned part of a [`plan::Plan`] and its COPY data.
#[derive(Debug)]
struct Planned {
    items: Vec<ItemOutcome>,
    rows: Vec<plan::NewRow>,
    next_seq: u64,
    evidence: Option<Vec<Bytes>>,
    identities: Option<Vec<Bytes>>,
}

impl PreparedAppend {
    pub fn batch(&self) -> &AppendBatch {
        &self.batch
    }

    /// Where the preparation spent its time.
    pub fn timings(&self) -> PrepareTimings {
        self.timings
    }

    /// Whether committed identities were looked up while preparing (false:
    /// the lookup was skipped for fresh keys, see [`AppendHint`]).
    pub fn looked_up(&self) -> bool {
        self.looked_up
    }

    /// How the batch's identities were checked against closed partitions
    /// while preparing, and how many identity filters were in use.
    pub fn identity_check(&self) -> (IdentityCheck, usize) {
        (self.check, self.filters.len())
    }

    /// The hint for the batch after this one: as if this one committed as
    /// planned.
    pub fn hint_after(&self, previous: &AppendHint) -> AppendHint {
        let recent = Recent {
            batch: self.batch.clone(),
            ids: self
                .planned
                .rows
                .iter()
                .map(|r| (r.identity, (r.seq, r.index)))
                .collect(),
        };
        // The next batch looks its identities up afresh (this batch's are
        // in `recent`).
        let predicted = plan::predict_head_after(&self.predicted, &self.batch, &self.planned.rows);
        let mut all = vec![Arc::new(recent)];
        all.extend(previous.recent.iter().take(RECENT_BATCHES - 1).cloned());
        AppendHint {
            predicted: Some(predicted),
            recent: all,
            topics: self.topics.clone(),
            // Fresh keys are the rule: a batch that found none of its
            // identities stored (nor in the batches before it) predicts the
            // same of the next one. One that found some (a client resending)
            // has the next one looked up, so that a run of resubmissions
            // does not roll back batch after batch.
            skip_lookup: self.predicted.existing.is_empty(),
        }
    }
}

/// What [`Ledger::commit_prepared`] did.
#[derive(Clone, Debug)]
pub struct Committed {
    pub outcome: AppendOutcome,
    /// The prediction held: the prepared plan was written as it was.
    pub as_predicted: bool,
    /// Why it did not (None when it held).
    pub miss: Option<PredictionMiss>,
    /// Ranges of older partitions without an identity filter that were
    /// probed for every identity under the head lock (0 once the batcher
    /// has filtered every closed partition).
    pub unfiltered_ranges: u32,
    pub timings: CommitTimings,
}

impl Ledger {
    /// Write a batch in one transaction: new entries get consecutive sequence
    /// numbers, duplicates and redeliveries are recognised, conflicts and
    /// rejections become dead letters, and consumer positions advance.
    ///
    /// Idempotent: replaying the same batch (same sources and positions)
    /// changes nothing and reports every item as already committed.
    pub async fn append(&self, batch: &AppendBatch) -> Result<AppendOutcome, LedgerError> {
        let prepared = self
            .prepare_append(Arc::new(batch.clone()), &AppendHint::default())
            .await?;
        Ok(self.commit_prepared(&prepared).await?.outcome)
    }

    /// First half of [`Ledger::append`], without any lock: resolve the source
    /// topics, look the batch's identities up (committed rows only; `hint`
    /// adds the ones of batches still in flight), and plan the batch against
    /// the predicted state (`hint`, or the ledger as it is now).
    pub async fn prepare_append(
        &self,
        batch: Arc<AppendBatch>,
        hint: &AppendHint,
    ) -> Result<PreparedAppend, LedgerError> {
        if !batch.positions.is_empty() && batch.consumer_group.is_none() {
            return Err(LedgerError::Config(
                "positions given without a consumer group".into(),
            ));
        }
        let started = Instant::now();
        let c = self.pool().get().await?;
        let topics = resolve_topics(&c, &batch, &hint.topics).await?;
        let mut predicted = match &hint.predicted {
            Some(p) => p.clone(),
            None => {
                let next_seq: i64 = c
                    .query_one("SELECT next_seq FROM ledger_head", &[])
                    .await?
                    .get(0);
                LedgerState {
                    next_seq: next_seq as u64,
                    positions: read_positions(&c, batch.consumer_group.as_deref()).await?,
                    existing: HashMap::new(),
                }
            }
        };
        let state_done = Instant::now();
        let ids = plan::identities(&batch);
        let filters = self.filters.current(&c, FilterKind::Identity).await?;
        // Without a prediction (the first batch, or after a miss) the lookup
        // is never skipped. Skipped, it still covers the closed partitions
        // that have a filter (they never change, so the answer holds at
        // commit; their filters make it cheap): the unique index of the
        // partitions the rows land in only sees those partitions.
        let looked_up = !(hint.skip_lookup && hint.predicted.is_some());
        let (existing, check) = lookup_identities(
            &c,
            &filters,
            &ids,
            u64::MAX,
            if looked_up {
                Probe::All
            } else {
                Probe::FilteredOnly
            },
        )
        .await?;
        predicted.existing = existing;
        drop(c);
        let lookup_done = Instant::now();
        let mut unverified = Vec::new();
        for id in &ids {
            if predicted.existing.contains_key(id) {
                continue;
            }
            if let Some(s) = hint.recent.iter().find_map(|m| m.get(id)) {
                predicted.existing.insert(*id, s);
                unverified.push(*id);
            }
        }
        let planned = planned(&batch, &predicted, &ids, &topics)?;
        let timings = PrepareTimings {
            state: state_done - started,
            lookup: if looked_up {
                lookup_done - state_done
            } else {
                Duration::ZERO
            },
            plan: lookup_done.elapsed(),
        };
        Ok(PreparedAppend {
            batch,
            ids,
            predicted,
            unverified,
            topics,
            planned,
            looked_up,
            filters,
            check,
            timings,
        })
    }

    /// Second half of [`Ledger::append`]: under the head lock, check the
    /// prediction the batch was planned on; write the prepared rows when it
    /// holds, plan again from what the ledger holds when it does not. Safe to
    /// retry after an error (nothing is written unless it commits).
    pub async fn commit_prepared(&self, p: &PreparedAppend) -> Result<Committed, LedgerError> {
        Ok(self.commit_prepared_chained(p, None, &|| false).await?.0)
    }

    /// [`Ledger::commit_prepared`] for a writer with batches queued. When
    /// `chain()`, asked right before this transaction's `COMMIT`, says the
    /// next batch is ready, the next append transaction is begun, and the
    /// head and the group's positions locked for it, in the same round trip
    /// as the `COMMIT` (sent behind it, so it runs the moment this one has
    /// committed); pass the [`HeldHead`] it returns to the next call. Its
    /// two opening round trips then overlap the commit's WAL flush, and
    /// PostgreSQL does not wait for the writer between two transactions.
    /// Only chain when the next batch is ready: the head lock is held until
    /// it commits, and other writers wait for it. A `HeldHead` not used is
    /// given back with [`HeldHead::release`], or dropped with its
    /// connection (PostgreSQL rolls its transaction back either way).
    pub async fn commit_prepared_chained(
        &self,
        p: &PreparedAppend,
        held: Option<HeldHead>,
        chain: &(dyn Fn() -> bool + Sync),
    ) -> Result<(Committed, Option<HeldHead>), LedgerError> {
        let started = Instant::now();
        match self.commit_once(p, false, held, chain).await {
            // An identity already stored that the prediction took for fresh
            // (the lookup skipped, or written meanwhile by another writer):
            // the careful path reads every identity under the lock.
            Err(LedgerError::Db(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                tracing::debug!(
                    looked_up = p.looked_up,
                    "append: an identity of the batch is already stored; writing it again with every identity looked up"
                );
                let wasted = started.elapsed();
                let (mut c, next) = self.commit_once(p, true, None, chain).await?;
                c.miss = Some(PredictionMiss::IdentityTaken);
                c.timings.wasted = wasted;
                Ok((c, next))
            }
            other => other,
        }
    }

    async fn commit_once(
        &self,
        p: &PreparedAppend,
        careful: bool,
        held: Option<HeldHead>,
        chain: &(dyn Fn() -> bool + Sync),
    ) -> Result<(Committed, Option<HeldHead>), LedgerError> {
        let mut timings = CommitTimings::default();
        let t = Instant::now();
        let group = p.batch.consumer_group.as_deref();
        let (conn, held_locks) = match held {
            Some(h) if h.group.as_deref() == group => (h.conn, Some(h.locked)),
            other => {
                drop(other);
                (InTransaction(Some(self.pool().get().await?)), None)
            }
        };
        // Everything up to `COMMIT` (and the next transaction's locks when
        // chained); on an error the transaction is abandoned below, once.
        let done = async {
            let c = conn.client();
            // Every statement prepared once per pooled connection, and the
            // independent ones sent together (tokio-postgres pipelines
            // concurrent queries on one connection): a round trip costs the
            // most when the cores are busy, and the transaction is
            // PostgreSQL's critical path.
            let st = Statements::prepare(c).await?;
            let locked = match held_locks {
                Some(locked) => locked,
                None => begin_locked(c, &st, group).await?,
            };
            timings.lock = t.elapsed();
            let committed = self
                .write_locked(c, &st, p, careful, locked, &mut timings)
                .await?;
            let t = Instant::now();
            let next = if chain() {
                let (commit, begun) =
                    futures::join!(c.batch_execute("COMMIT"), begin_locked(c, &st, group));
                commit?;
                Some(begun)
            } else {
                c.batch_execute("COMMIT").await?;
                None
            };
            timings.commit = t.elapsed();
            Ok::<_, LedgerError>((committed, next))
        }
        .await;
        let (committed, next) = match done {
            Ok(done) => done,
            Err(e) => {
                conn.abandon().await;
                return Err(e);
            }
        };
        let held = match next {
            Some(Ok(locked)) => Some(HeldHead {
                conn,
                locked,
                group: group.map(str::to_owned),
            }),
            // This batch is committed; the next one begins on its own.
            Some(Err(e)) => {
                tracing::debug!(error = %e, "append: beginning the next transaction with this commit failed");
                conn.abandon().await;
                None
            }
            None => {
                drop(conn.ended());
                None
            }
        };
        Ok((
            Committed {
                timings,
                ..committed
            },
            held,
        ))
    }

    /// The transaction's work between the locks and `COMMIT`, on `c` with
    /// the transaction open and `locked` read under its locks.
    async fn write_locked(
        &self,
        c: &deadpool_postgres::Client,
        st: &Statements,
        p: &PreparedAppend,
        careful: bool,
        locked: Locked,
        timings: &mut CommitTimings,
    ) -> Result<Committed, LedgerError> {
        let batch = &p.batch;
        let mut t = Instant::now();
        let mut lap = |d: &mut Duration| {
            let now = Instant::now();
            *d = now - t;
            t = now;
        };
        let group = batch.consumer_group.as_deref().unwrap_or_default();
        let Locked {
            next_seq,
            partition_high,
            partition_size,
            positions,
        } = locked;
        let mut actual = LedgerState {
            next_seq: next_seq as u64,
            positions: positions
                .into_iter()
                .map(|(topic, partition, next)| ((topic, partition), next))
                .collect(),
            existing: HashMap::new(),
        };
        let size = partition_size_of(partition_size.as_deref())?;
        let mut unfiltered_ranges = 0;
        if careful {
            actual.existing = lookup_identities(c, &p.filters, &p.ids, u64::MAX, Probe::All)
                .await?
                .0;
        } else {
            // Rows read from the ledger stay true (it is append-only); rows
            // predicted from batches in flight are checked.
            actual.existing = p.predicted.existing.clone();
            for id in &p.unverified {
                actual.existing.remove(id);
            }
            if !p.unverified.is_empty() {
                actual.existing.extend(
                    lookup_identities(c, &p.filters, &p.unverified, u64::MAX, Probe::All)
                        .await?
                        .0,
                );
            }
            // The partitions below the one the batch's last row could land
            // in: another partition's unique index does not see them. The
            // filtered ones were checked while preparing (closed, they have
            // not changed); the others are probed now, under the lock
            // (usually none: the batcher filters a partition soon after it
            // closes, and the current one is the rows' own).
            if !batch.entries.is_empty() {
                let last = actual.next_seq + batch.entries.len() as u64 - 1;
                let below = self
                    .filters
                    .partition_lo_of(c, partition_high, last)
                    .await?;
                let (found, check) =
                    lookup_identities(c, &p.filters, &p.ids, below, Probe::GapsOnly).await?;
                actual.existing.extend(found);
                unfiltered_ranges = check.unfiltered_ranges;
            }
        }
        let as_predicted = !careful && plan::prediction_holds(batch, &p.ids, &p.predicted, &actual);
        let replanned;
        let planned = if as_predicted {
            &p.planned
        } else {
            tracing::debug!(
                predicted_head = p.predicted.next_seq,
                head = actual.next_seq,
                careful,
                "append: prediction did not hold, planning again"
            );
            replanned = planned(batch, &actual, &p.ids, &p.topics)?;
            &replanned
        };
        lap(&mut timings.verify);

        if let (Some(evidence), Some(identities)) = (&planned.evidence, &planned.identities) {
            let size = size as i64;
            // Partitions ahead of the head: one whole spare partition past
            // the batch, created in the appending transaction (rarely: once
            // per partition), for the entries and their identities.
            let want = planned.next_seq as i64 + size;
            if partition_high < want {
                // `blocks` references `evidence`: creating a partition
                // locks `blocks` too, after `evidence`. A seal locks
                // `blocks`, then `evidence` (its foreign-key checks), so
                // take `blocks` first, in the seal's order: otherwise each
                // waits for the other and PostgreSQL fails one of them.
                c.batch_execute("LOCK TABLE blocks IN SHARE ROW EXCLUSIVE MODE")
                    .await?;
                let mut lo = partition_high;
                while lo < want {
                    let hi = lo + size;
                    c.batch_execute(&format!(
                        "CREATE TABLE evidence_p{lo:012} PARTITION OF evidence \
                         FOR VALUES FROM ({lo}) TO ({hi}); \
                         CREATE TABLE evidence_identity_p{lo:012} PARTITION OF evidence_identity \
                         FOR VALUES FROM ({lo}) TO ({hi}); \
                         CREATE UNIQUE INDEX evidence_identity_p{lo:012}_key \
                         ON evidence_identity_p{lo:012} (identity)"
                    ))
                    .await?;
                    lo += size;
                }
                c.execute(
                    "UPDATE ledger_head SET partition_high = $1 WHERE singleton",
                    &[&lo],
                )
                .await?;
            }
            // Identities first: a stored one (the lookup skipped) aborts the
            // COPY before any evidence row is written.
            copy_in(c, &st.copy_identity, identities).await?;
            lap(&mut timings.copy_identity);
            copy_in(c, &st.copy_evidence, evidence).await?;
            lap(&mut timings.copy_evidence);
        }

        // Dead letters: validation rejections plus conflicts.
        let (letters, rejections_skipped) = plan::dead_letters(batch, &actual, &planned.items);
        let dl_topic: Vec<Option<&str>> = letters
            .iter()
            .map(|l| l.source.map(|s| s.topic.as_str()))
            .collect();
        let dl_part: Vec<Option<i32>> = letters
            .iter()
            .map(|l| l.source.map(|s| s.partition))
            .collect();
        let dl_off: Vec<Option<i64>> = letters.iter().map(|l| l.source.map(|s| s.offset)).collect();
        let dl_reason: Vec<&str> = letters.iter().map(|l| l.reason).collect();
        let dl_detail: Vec<&str> = letters.iter().map(|l| l.detail.as_str()).collect();
        let dl_payload: Vec<&[u8]> = letters.iter().map(|l| l.payload).collect();
        let topics: Vec<&str> = batch.positions.iter().map(|p| p.topic.as_str()).collect();
        let parts: Vec<i32> = batch.positions.iter().map(|p| p.partition).collect();
        let offs: Vec<i64> = batch.positions.iter().map(|p| p.next_offset).collect();
        let head_seq = planned.next_seq as i64;
        // The head, the dead letters and the positions: independent
        // statements, sent together (one round trip).
        let (_, rejections_recorded, _) = futures::try_join!(
            async {
                if planned.evidence.is_some() {
                    c.execute(&st.head_update, &[&head_seq]).await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            },
            async {
                if dl_reason.is_empty() {
                    return Ok(0);
                }
                c.execute(
                    &st.dead_letters,
                    &[
                        &dl_topic,
                        &dl_part,
                        &dl_off,
                        &dl_reason,
                        &dl_detail,
                        &dl_payload,
                    ],
                )
                .await
                .map(|n| n as usize)
            },
            async {
                if batch.consumer_group.is_some() && !batch.positions.is_empty() {
                    c.execute(&st.positions_store, &[&group, &topics, &parts, &offs])
                        .await?;
                }
                Ok(())
            },
        )?;
        lap(&mut timings.bookkeeping);
        Ok(Committed {
            outcome: AppendOutcome {
                items: planned.items.clone(),
                rejections_recorded,
                rejections_skipped,
            },
            as_predicted,
            unfiltered_ranges,
            miss: (!as_predicted).then_some(PredictionMiss::State),
            timings: *timings,
        })
    }

    /// The group's stored positions (the next offset to read per partition).
    pub async fn positions(&self, group: &str, topic: &str) -> Result<Vec<Position>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT topic, kafka_partition, next_offset FROM kafka_positions \
                 WHERE consumer_group = $1 AND topic = $2 ORDER BY kafka_partition",
                &[&group, &topic],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Position {
                topic: r.get(0),
                partition: r.get(1),
                next_offset: r.get(2),
            })
            .collect())
    }

    /// The next sequence number to be handed out (= the number of entries).
    pub async fn next_seq(&self) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let n: i64 = c
            .query_one("SELECT next_seq FROM ledger_head", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    pub async fn entry_by_seq(&self, seq: u64) -> Result<Option<StoredEntry>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_ENTRY} WHERE e.seq = $1");
        c.query_opt(&q, &[&(seq as i64)])
            .await?
            .map(|r| stored_entry(&r))
            .transpose()
    }

    pub async fn entry_by_identity(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Option<StoredEntry>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "{SELECT_ENTRY} WHERE e.seq = (SELECT seq FROM evidence_identity WHERE identity = $1)"
        );
        let id = identity_key(tenant, external_id);
        c.query_opt(&q, &[&id.as_slice()])
            .await?
            .map(|r| stored_entry(&r))
            .transpose()
    }

    /// Every entry with this evidence hash (several tenants may preserve the
    /// same file), oldest first.
    pub async fn entries_by_hash(&self, hash: &[u8]) -> Result<Vec<StoredEntry>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_ENTRY} WHERE e.evidence_hash = $1 ORDER BY e.seq");
        c.query(&q, &[&hash])
            .await?
            .iter()
            .map(stored_entry)
            .collect()
    }

    /// Entries `from..to` in sequence order.
    pub async fn entries_range(&self, from: u64, to: u64) -> Result<Vec<StoredEntry>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_ENTRY} WHERE e.seq >= $1 AND e.seq < $2 ORDER BY e.seq");
        c.query(&q, &[&(from as i64), &(to as i64)])
            .await?
            .iter()
            .map(stored_entry)
            .collect()
    }

    /// Dead letters not yet published, oldest first.
    pub async fn unpublished_dead_letters(
        &self,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT id, src_topic, src_partition, src_offset, reason, detail, payload \
                 FROM dead_letters WHERE published_at IS NULL ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                source: source(r.get(1), r.get(2), r.get(3)),
                reason: r.get(4),
                detail: r.get(5),
                payload: r.get(6),
            })
            .collect())
    }

    /// Mark dead letters as published to the dead-letter topic.
    pub async fn mark_dead_letters_published(&self, ids: &[i64]) -> Result<(), LedgerError> {
        let c = self.pool().get().await?;
        c.execute(
            "UPDATE dead_letters SET published_at = now() WHERE id = ANY($1) AND published_at IS NULL",
            &[&ids],
        )
        .await?;
        Ok(())
    }

    /// How many dead letters are recorded, by reason.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, i64)>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT reason, count(*) FROM dead_letters GROUP BY reason ORDER BY reason",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// Plan `batch` against `state` and encode its COPY data.
fn planned(
    batch: &AppendBatch,
    state: &LedgerState,
    ids: &[Digest32],
    topics: &HashMap<String, i16>,
) -> Result<Planned, LedgerError> {
    let plan = plan::plan_with_ids(batch, state, ids);
    let (evidence, identities) = if plan.rows.is_empty() {
        (None, None)
    } else {
        let mut ev = CopyBuffer::new();
        let mut id = CopyBuffer::new();
        for row in &plan.rows {
            let entry = row.entry(batch);
            let src = batch.entries[row.index].source.as_ref();
            ev.row(12);
            ev.i64(entry.seq as i64);
            ev.i64(entry.received_at_us);
            match src {
                Some(s) => {
                    let topic = topics.get(&s.topic).ok_or_else(|| {
                        LedgerError::Corrupt(format!("topic {:?} has no id", s.topic))
                    })?;
                    ev.i64(s.offset);
                    ev.i32(s.partition);
                    ev.i16(*topic);
                }
                None => {
                    ev.null();
                    ev.null();
                    ev.null();
                }
            }
            ev.i16(entry.hash_alg.id() as i16);
            ev.i16(1);
            ev.bytes(entry.tenant.as_bytes());
            ev.bytes(entry.external_id.as_bytes());
            ev.bytes(entry.evidence_hash);
            ev.bytes(&row.leaf);
            ev.opt_bytes(entry.metadata.map(str::as_bytes));
        }
        // Identities in key order: the primary key's inserts then walk its
        // leaf pages in order instead of at random (measured: about a quarter
        // less time for the identity COPY, 10,000-row batches).
        let mut order: Vec<&plan::NewRow> = plan.rows.iter().collect();
        order.sort_unstable_by_key(|r| r.identity);
        for row in order {
            id.row(2);
            id.i64(row.seq as i64);
            id.bytes(&row.identity);
        }
        (Some(ev.finish()), Some(id.finish()))
    };
    Ok(Planned {
        items: plan.items,
        rows: plan.rows,
        next_seq: plan.next_seq,
        evidence,
        identities,
    })
}

/// What an append transaction reads under its locks: the head row and the
/// group's stored positions.
#[derive(Debug)]
struct Locked {
    next_seq: i64,
    partition_high: i64,
    partition_size: Option<String>,
    positions: Vec<(String, i32, i64)>,
}

/// An append transaction begun by [`Ledger::commit_prepared_chained`]
/// together with the previous one's `COMMIT`, holding the head lock (and
/// the group's positions) on its pooled connection. Dropped unused, its
/// connection is closed and PostgreSQL rolls the transaction back.
#[derive(Debug)]
pub struct HeldHead {
    conn: InTransaction,
    locked: Locked,
    group: Option<String>,
}

/// A pooled connection with a transaction open (or about to be): it never
/// goes back to the pool that way. Dropped before the transaction ended
/// (an error, a cancelled future), the connection is taken out of the pool
/// and closed, and PostgreSQL rolls back.
#[derive(Debug)]
struct InTransaction(Option<deadpool_postgres::Client>);

impl InTransaction {
    fn client(&self) -> &deadpool_postgres::Client {
        self.0
            .as_ref()
            .expect("the connection is kept until the transaction ends")
    }

    /// The transaction has ended (committed): the connection may return to
    /// the pool.
    fn ended(mut self) -> deadpool_postgres::Client {
        self.0
            .take()
            .expect("the connection is kept until the transaction ends")
    }

    /// The transaction failed: rolled back and the connection returned to
    /// the pool; closed instead (by `Drop`) when even that fails or this
    /// future is dropped first.
    async fn abandon(mut self) {
        let rolled_back = match &self.0 {
            Some(c) => !c.is_closed() && c.batch_execute("ROLLBACK").await.is_ok(),
            None => false,
        };
        if rolled_back {
            drop(self.0.take());
        }
    }
}

impl HeldHead {
    /// Not needed after all (the writer has nothing more to commit): rolled
    /// back, and the connection returned to the pool.
    pub async fn release(self) {
        self.conn.abandon().await;
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            drop(deadpool_postgres::Object::take(c));
        }
    }
}

/// `BEGIN`, then the head and the group's stored positions locked for the
/// transaction: sent together (one round trip).
async fn begin_locked(
    c: &deadpool_postgres::Client,
    st: &Statements,
    group: Option<&str>,
) -> Result<Locked, LedgerError> {
    let (_, head, rows) = futures::try_join!(
        c.batch_execute("BEGIN"),
        c.query_one(&st.head_lock, &[]),
        async {
            match group {
                Some(group) => c.query(&st.positions_lock, &[&group]).await,
                None => Ok(Vec::new()),
            }
        }
    )?;
    Ok(Locked {
        next_seq: head.get(0),
        partition_high: head.get(1),
        partition_size: head.get(2),
        positions: rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
    })
}

/// The append transaction's statements, prepared once per pooled connection
/// (deadpool's statement cache).
struct Statements {
    head_lock: Statement,
    positions_lock: Statement,
    copy_identity: Statement,
    copy_evidence: Statement,
    head_update: Statement,
    dead_letters: Statement,
    positions_store: Statement,
}

impl Statements {
    async fn prepare(c: &impl GenericClient) -> Result<Self, LedgerError> {
        let (head_lock, positions_lock, copy_identity, copy_evidence) = futures::try_join!(
            c.prepare_cached(HEAD_LOCK),
            c.prepare_cached(
                "SELECT topic, kafka_partition, next_offset FROM kafka_positions \
                 WHERE consumer_group = $1 FOR UPDATE"
            ),
            c.prepare_cached(COPY_IDENTITY),
            c.prepare_cached(COPY_EVIDENCE),
        )?;
        let (head_update, dead_letters, positions_store) = futures::try_join!(
            c.prepare_cached("UPDATE ledger_head SET next_seq = $1 WHERE singleton"),
            c.prepare_cached(
                "INSERT INTO dead_letters (src_topic, src_partition, src_offset, reason, detail, payload) \
                 SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[], $6::bytea[]) \
                 ON CONFLICT (src_topic, src_partition, src_offset) DO NOTHING"
            ),
            c.prepare_cached(
                "INSERT INTO kafka_positions (consumer_group, topic, kafka_partition, next_offset) \
                 SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::int8[]) \
                 ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE \
                 SET next_offset = GREATEST(kafka_positions.next_offset, EXCLUDED.next_offset), \
                     updated_at = now()"
            ),
        )?;
        Ok(Statements {
            head_lock,
            positions_lock,
            copy_identity,
            copy_evidence,
            head_update,
            dead_letters,
            positions_store,
        })
    }
}

async fn copy_in(
    c: &tokio_postgres::Client,
    statement: &Statement,
    chunks: &[Bytes],
) -> Result<(), LedgerError> {
    let sink = c.copy_in(statement).await?;
    pin_mut!(sink);
    for chunk in chunks {
        sink.feed(chunk.clone()).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// The ids of the batch's source topics, adding the ones not yet known.
async fn resolve_topics(
    c: &tokio_postgres::Client,
    batch: &AppendBatch,
    known: &HashMap<String, i16>,
) -> Result<HashMap<String, i16>, LedgerError> {
    let mut topics = known.clone();
    let mut missing: Vec<&str> = batch
        .entries
        .iter()
        .filter_map(|e| e.source.as_ref())
        .map(|s| s.topic.as_str())
        .filter(|t| !topics.contains_key(*t))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(topics);
    }
    const SELECT: &str = "SELECT name, id FROM kafka_topics WHERE name = ANY($1)";
    let mut rows = c.query(SELECT, &[&missing]).await?;
    if rows.len() < missing.len() {
        c.execute(
            "INSERT INTO kafka_topics (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            &[&missing],
        )
        .await?;
        rows = c.query(SELECT, &[&missing]).await?;
    }
    for r in rows {
        topics.insert(r.get(0), r.get(1));
    }
    Ok(topics)
}

/// `ledger_meta.evidence_partition_size`, checked.
fn partition_size_of(v: Option<&str>) -> Result<u64, LedgerError> {
    v.and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            LedgerError::Corrupt(format!(
                "ledger_meta.evidence_partition_size is {v:?}, not a positive integer"
            ))
        })
}

/// The stored entries among these identities (committed ones only), with
/// `seq` below `hi`, in the partitions `probe` names.
async fn lookup_identities(
    c: &impl GenericClient,
    filters: &FilterSet,
    ids: &[Digest32],
    hi: u64,
    probe: Probe,
) -> Result<(HashMap<Digest32, StoredIdentity>, IdentityCheck), LedgerError> {
    let mut found = HashMap::new();
    if ids.is_empty() {
        return Ok((found, IdentityCheck::default()));
    }
    // Two steps, not a join: the identity partitions answer the batch
    // (usually no hit at all), then only the hits are read from the
    // evidence partitions (a join could be planned as a scan of every
    // partition).
    let (hits, check) = identities::find(c, filters, ids, 0, hi, probe).await?;
    if hits.is_empty() {
        return Ok((found, check));
    }
    let mut by_seq: HashMap<i64, Digest32> = hits.into_iter().map(|(id, seq)| (seq, id)).collect();
    let seqs: Vec<i64> = by_seq.keys().copied().collect();
    let by_seq_stmt = c
        .prepare_cached("SELECT seq, hash_alg, evidence_hash FROM evidence WHERE seq = ANY($1)")
        .await?;
    let rows = c.query(&by_seq_stmt, &[&seqs]).await?;
    for r in rows {
        let seq: i64 = r.get(0);
        if let Some(id) = by_seq.remove(&seq) {
            found.insert(
                id,
                StoredIdentity {
                    seq: seq as u64,
                    hash_alg: r.get(1),
                    evidence_hash: r.get(2),
                },
            );
        }
    }
    if let Some(seq) = by_seq.keys().next() {
        return Err(LedgerError::Corrupt(format!(
            "evidence_identity names seq {seq}, which has no evidence row"
        )));
    }
    Ok((found, check))
}

async fn read_positions(
    c: &tokio_postgres::Client,
    group: Option<&str>,
) -> Result<HashMap<(String, i32), i64>, LedgerError> {
    let mut positions = HashMap::new();
    if let Some(group) = group {
        let rows = c
            .query(
                "SELECT topic, kafka_partition, next_offset FROM kafka_positions \
                 WHERE consumer_group = $1",
                &[&group],
            )
            .await?;
        for r in rows {
            positions.insert((r.get(0), r.get(1)), r.get(2));
        }
    }
    Ok(positions)
}

fn source(topic: Option<String>, partition: Option<i32>, offset: Option<i64>) -> Option<Source> {
    match (topic, partition, offset) {
        (Some(topic), Some(partition), Some(offset)) => Some(Source {
            topic,
            partition,
            offset,
        }),
        _ => None,
    }
}

pub(crate) fn stored_entry(r: &tokio_postgres::Row) -> Result<StoredEntry, LedgerError> {
    let seq: i64 = r.get(0);
    let alg: i16 = r.get(3);
    let hash_alg = EvidenceAlg::from_id(alg as u8)
        .ok_or_else(|| LedgerError::Corrupt(format!("evidence {seq}: unknown hash_alg {alg}")))?;
    let leaf: Vec<u8> = r.get(7);
    let leaf_hash: Digest32 = leaf
        .try_into()
        .map_err(|_| LedgerError::Corrupt(format!("evidence {seq}: leaf hash is not 32 bytes")))?;
    Ok(StoredEntry {
        entry: Entry {
            seq: seq as u64,
            tenant: r.get(1),
            external_id: r.get(2),
            hash_alg,
            evidence_hash: r.get(4),
            metadata: r.get(5),
            received_at_us: r.get(6),
        },
        leaf_hash,
        source: source(r.get(8), r.get(9), r.get(10)),
    })
}

/// Rows in PostgreSQL's binary COPY format, written straight into buffers:
/// no per-value dynamic dispatch. Layout: the 11-byte signature, flags and
/// header-extension length, then per row a field count and per field a
/// length (-1 for NULL) and its bytes, then -1.
///
/// The stream is cut into chunks of about [`COPY_CHUNK`] bytes (a row may
/// straddle two: COPY data is a byte stream). A batch's COPY data in one
/// buffer (2.5 MB for 10,000 rows) was memory fresh from the operating
/// system every batch, paid in page faults (perf, issue 17); chunks this
/// size are reused by the allocator.
struct CopyBuffer {
    buf: bytes::BytesMut,
    chunks: Vec<Bytes>,
}

/// See [`CopyBuffer`]: with the slack for a row, below the sizes from which
/// allocators map memory afresh (mimalloc: 512 KiB; glibc: 128 KiB at first).
const COPY_CHUNK: usize = 112 * 1024;

impl CopyBuffer {
    fn new() -> Self {
        let mut b = CopyBuffer {
            buf: bytes::BytesMut::with_capacity(COPY_CHUNK + 8192),
            chunks: Vec::new(),
        };
        b.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        b.buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        b.buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        b
    }
    fn row(&mut self, fields: i16) {
        if self.buf.len() >= COPY_CHUNK {
            let full = std::mem::replace(
                &mut self.buf,
                bytes::BytesMut::with_capacity(COPY_CHUNK + 8192),
            );
            self.chunks.push(full.freeze());
        }
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }
    fn field(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(v);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.field(v);
    }
    fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.field(v),
            None => self.null(),
        }
    }
    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    fn i16(&mut self, v: i16) {
        self.field(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }
    fn finish(mut self) -> Vec<Bytes> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.chunks.push(self.buf.freeze());
        self.chunks
    }
}
