//! Group membership health: notice when this instance is assigned nothing
//! (or fewer partitions than the topic has) while evidence waits on
//! partitions that nobody consumes, rejoin the group with a fresh member, and
//! say so in readiness and metrics.
//!
//! Why: a consumer group can leave a live member without partitions — the
//! broker's coordinator still counts a SIGKILLed predecessor until its
//! session times out, or misbehaves outright (tansu 0.6 kept a restarted
//! ingest at `partitions assigned partitions=[]` for minutes while a SIGTERM
//! and restart recovered at once). Ingest cannot tell the causes apart from
//! the outside, so it judges by the effect, which it can measure: a
//! partition it does not own has records past the ledger's stored position
//! for the group (the truth; Kafka's committed offsets are only advisory)
//! and that position has not moved for `ingest.assignment_grace_ms`. A
//! healthy owner moves it within seconds; a member that holds partitions but
//! never consumes them does not.
//!
//! The remedy is what an operator's restart does: drain, leave the group,
//! and join again as a new consumer (a new member id). It is repeated at
//! most once per grace period while the condition lasts; `/readyz` fails and
//! `anchord_ingest_assignment_stuck` is 1 meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use anchord_ledger::Ledger;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_util::sync::CancellationToken;

use crate::{IngestConfig, IngestError, metrics};

/// What the consumer thread and the watchdog share.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// Partitions of the evidence topic this instance owns right now
    /// (maintained by the rebalance callback).
    assigned: Mutex<BTreeSet<i32>>,
    /// Set by the watchdog; the poll loop drains, leaves and rejoins.
    rejoin: AtomicBool,
    /// Why this instance is not ready, while it is stuck beyond the grace
    /// period.
    stuck: Mutex<Option<String>>,
    rejoins: AtomicU64,
}

impl Membership {
    pub fn set_assigned(&self, parts: impl IntoIterator<Item = i32>) {
        let mut a = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
        *a = parts.into_iter().collect();
        metrics::ASSIGNED_PARTITIONS.set(a.len() as i64);
    }

    pub fn assigned(&self) -> BTreeSet<i32> {
        self.assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a rejoin was requested (and clear the request).
    pub fn take_rejoin(&self) -> bool {
        self.rejoin.swap(false, Ordering::SeqCst)
    }

    pub fn rejoined(&self) {
        self.rejoins.fetch_add(1, Ordering::SeqCst);
        metrics::GROUP_REJOINS.inc();
    }

    fn set_stuck(&self, why: Option<String>) {
        metrics::ASSIGNMENT_STUCK.set(why.is_some() as i64);
        *self.stuck.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    fn stuck(&self) -> Option<String> {
        self.stuck.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Running ingest instances of this process, for `/readyz`
/// ([`crate::probe::BrokerProbe`] looks its group and topic up here).
static REGISTRY: LazyLock<Mutex<Vec<Registered>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// (group, topic, the instance's membership).
type Registered = (String, String, Weak<Membership>);

pub(crate) fn register(group: &str, topic: &str, m: &Arc<Membership>) {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.retain(|(_, _, w)| w.strong_count() > 0);
    r.push((group.to_owned(), topic.to_owned(), Arc::downgrade(m)));
}

/// Why an ingest instance of `group` on `topic` in this process is stuck
/// without partitions beyond its grace period, if one is.
pub fn stuck_reason(group: &str, topic: &str) -> Option<String> {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.iter()
        .filter(|(g, t, _)| g == group && t == topic)
        .filter_map(|(_, _, w)| w.upgrade())
        .find_map(|m| m.stuck())
}

/// One look at the group's topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The topic's partition count.
    pub partitions: i32,
    /// Partitions this instance owns.
    pub assigned: BTreeSet<i32>,
    /// `(low, high)` watermarks of the partitions this instance does not own.
    pub ends: BTreeMap<i32, (i64, i64)>,
    /// The ledger's stored positions of the group (next offset to read).
    pub positions: BTreeMap<i32, i64>,
}

/// What the watchdog concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition is ours, or none that is not ours has waiting records.
    Healthy,
    /// Partitions not ours have waiting records that did not move yet for
    /// the whole grace period.
    Waiting(Vec<i32>),
    /// Partitions not ours have had waiting records and no progress for the
    /// grace period or longer; `rejoin` says whether to rejoin now (at most
    /// once per grace period).
    Stuck {
        stalled: Vec<i32>,
        longest: Duration,
        rejoin: bool,
    },
}

/// The detection logic, free of I/O: feed it observations, it says when
/// this instance is stuck.
#[derive(Debug)]
pub struct StallTracker {
    grace: Duration,
    /// Per partition not ours with waiting records: the stored position
    /// last seen, and since when it has not moved.
    since: BTreeMap<i32, (i64, Instant)>,
    /// This instance's assignment at the last observation: any change (a
    /// rebalance) restarts every clock, since the other members' shares
    /// changed too and they need time to start.
    assigned: Option<BTreeSet<i32>>,
    last_rejoin: Option<Instant>,
    /// The wait before the next rejoin: the grace period, doubled after
    /// each rejoin that did not help (a join can take a session timeout or
    /// more), at most [`MAX_REJOIN_BACKOFF_FACTOR`] times the grace period.
    backoff: Duration,
}

/// Repeated rejoins back off to at most this many grace periods apart.
pub const MAX_REJOIN_BACKOFF_FACTOR: u32 = 8;

impl StallTracker {
    pub fn new(grace: Duration) -> Self {
        StallTracker {
            grace,
            since: BTreeMap::new(),
            assigned: None,
            last_rejoin: None,
            backoff: grace,
        }
    }

    /// Forget what was seen (the broker or the ledger could not be read: a
    /// stall is only judged over consecutive successful observations).
    pub fn reset(&mut self) {
        self.since.clear();
    }

    pub fn observe(&mut self, now: Instant, o: &Observation) -> Verdict {
        if self.assigned.as_ref() != Some(&o.assigned) {
            self.since.clear();
            self.assigned = Some(o.assigned.clone());
        }
        let mut waiting = BTreeMap::new();
        for p in 0..o.partitions {
            if o.assigned.contains(&p) {
                continue;
            }
            let Some(&(low, high)) = o.ends.get(&p) else {
                continue;
            };
            let position = o.positions.get(&p).copied().unwrap_or(low).max(low);
            if high > position {
                waiting.insert(p, position);
            }
        }
        self.since.retain(|p, _| waiting.contains_key(p));
        for (p, position) in &waiting {
            match self.since.get(p) {
                Some((seen, _)) if seen == position => {}
                _ => {
                    self.since.insert(*p, (*position, now));
                }
            }
        }
        if self.since.is_empty() {
            self.backoff = self.grace;
            return Verdict::Healthy;
        }
        let stalled: Vec<i32> = self
            .since
            .iter()
            .filter(|(_, (_, t))| now.duration_since(*t) >= self.grace)
            .map(|(p, _)| *p)
            .collect();
        if stalled.is_empty() {
            return Verdict::Waiting(self.since.keys().copied().collect());
        }
        let longest = self
            .since
            .values()
            .map(|(_, t)| now.duration_since(*t))
            .max()
            .unwrap_or_default();
        let rejoin = self
            .last_rejoin
            .is_none_or(|t| now.duration_since(t) >= self.backoff);
        if rejoin {
            if self.last_rejoin.is_some() {
                self.backoff = (self.backoff * 2).min(self.grace * MAX_REJOIN_BACKOFF_FACTOR);
            }
            self.last_rejoin = Some(now);
        }
        Verdict::Stuck {
            stalled,
            longest,
            rejoin,
        }
    }
}

/// How often the watchdog looks: a fifth of the grace period, between
/// 250 ms and 5 s.
fn interval(grace: Duration) -> Duration {
    (grace / 5).clamp(Duration::from_millis(250), Duration::from_secs(5))
}

/// The watchdog: runs until `done` is cancelled.
pub(crate) async fn watch(
    config: IngestConfig,
    ledger: Ledger,
    membership: Arc<Membership>,
    done: CancellationToken,
) {
    let grace = Duration::from_millis(config.assignment_grace_ms);
    let client = match metadata_client(&config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "assignment watchdog not started");
            return;
        }
    };
    let mut tracker = StallTracker::new(grace);
    let every = interval(grace);
    loop {
        tokio::select! {
            _ = done.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let Some(o) = observe(&config, &ledger, &client, &membership).await else {
            tracker.reset();
            continue;
        };
        match tracker.observe(Instant::now(), &o) {
            Verdict::Healthy | Verdict::Waiting(_) => {
                if membership.stuck().is_some() {
                    tracing::info!(assigned = ?o.assigned, "no longer stuck: nothing waits beyond the grace period");
                }
                membership.set_stuck(None);
            }
            Verdict::Stuck {
                stalled,
                longest,
                rejoin,
            } => {
                let why = format!(
                    "ingest: assigned {} of {} partition(s) of {} while partition(s) {stalled:?} \
                     have waiting evidence and no progress for {} s (ingest.assignment_grace_ms \
                     = {}); {} rejoin(s) so far",
                    o.assigned.len(),
                    o.partitions,
                    config.topic,
                    longest.as_secs(),
                    config.assignment_grace_ms,
                    membership.rejoins.load(Ordering::SeqCst) + rejoin as u64,
                );
                if rejoin {
                    tracing::warn!(assigned = ?o.assigned, stalled = ?stalled,
                        "{why}: rejoining the consumer group as a new member");
                    membership.rejoin.store(true, Ordering::SeqCst);
                }
                membership.set_stuck(Some(why));
            }
        }
    }
    membership.set_stuck(None);
}

fn metadata_client(config: &IngestConfig) -> Result<BaseConsumer, IngestError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("client.id", "anchord-ingest-watchdog")
        .set("allow.auto.create.topics", "false");
    for (k, v) in &config.librdkafka {
        if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
            c.set(k, v);
        }
    }
    Ok(c.create()?)
}

/// Read the topic's partitions, the ends of those not ours, and the ledger's
/// positions; `None` when any of them cannot be read.
async fn observe(
    config: &IngestConfig,
    ledger: &Ledger,
    client: &Arc<BaseConsumer>,
    membership: &Membership,
) -> Option<Observation> {
    let assigned = membership.assigned();
    let (client, topic) = (client.clone(), config.topic.clone());
    let mine = assigned.clone();
    let read = tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let md = client.fetch_metadata(Some(&topic), timeout).ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        if t.error().is_some() {
            return None;
        }
        let partitions = t.partitions().len() as i32;
        let mut ends = BTreeMap::new();
        if (mine.len() as i32) < partitions {
            for p in t.partitions().iter().map(|p| p.id()) {
                if !mine.contains(&p) {
                    ends.insert(p, client.fetch_watermarks(&topic, p, timeout).ok()?);
                }
            }
        }
        Some((partitions, ends))
    })
    .await
    .ok()??;
    let (partitions, ends) = read;
    let positions = if ends.is_empty() {
        BTreeMap::new()
    } else {
        ledger
            .positions(&config.group_id, &config.topic)
            .await
            .ok()?
            .into_iter()
            .map(|p| (p.partition, p.next_offset))
            .collect()
    };
    Some(Observation {
        partitions,
        assigned,
        ends,
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(
        partitions: i32,
        assigned: &[i32],
        ends: &[(i32, i64)],
        pos: &[(i32, i64)],
    ) -> Observation {
        Observation {
            partitions,
            assigned: assigned.iter().copied().collect(),
            ends: ends.iter().map(|&(p, h)| (p, (0, h))).collect(),
            positions: pos.iter().copied().collect(),
        }
    }

    #[test]
    fn nothing_assigned_with_lag_beyond_the_grace_period_is_stuck_and_rejoins_once_per_period() {
        let g = Duration::from_secs(30);
        let mut t = StallTracker::new(g);
        let t0 = Instant::now();
        let o = obs(2, &[], &[(0, 10), (1, 0)], &[(0, 4)]);
        assert_eq!(t.observe(t0, &o), Verdict::Waiting(vec![0]));
        assert_eq!(t.observe(t0 + g / 2, &o), Verdict::Waiting(vec![0]));
        assert_eq!(
            t.observe(t0 + g, &o),
            Verdict::Stuck {
                stalled: vec![0],
                longest: g,
                rejoin: true
            }
        );
        // Still stuck, but the next rejoin waits for another grace period,
        // then two, four, ... at most eight.
        assert!(matches!(
            t.observe(t0 + g + g / 2, &o),
            Verdict::Stuck { rejoin: false, .. }
        ));
        let mut at = t0 + g;
        for wait in [1, 2, 4, 8, 8, 8] {
            assert!(matches!(
                t.observe(at + g * wait - Duration::from_millis(1), &o),
                Verdict::Stuck { rejoin: false, .. }
            ));
            at += g * wait;
            assert!(
                matches!(t.observe(at, &o), Verdict::Stuck { rejoin: true, .. }),
                "rejoin {wait} grace periods after the last"
            );
        }
        // Assigned everything: healthy at once.
        assert_eq!(
            t.observe(t0 + 2 * g, &obs(2, &[0, 1], &[], &[])),
            Verdict::Healthy
        );
    }

    #[test]
    fn a_partition_whose_position_moves_is_owned_by_someone_alive() {
        let g = Duration::from_secs(10);
        let mut t = StallTracker::new(g);
        let t0 = Instant::now();
        for i in 0..10u32 {
            // Another member consumes partition 1: its position keeps moving.
            let o = obs(2, &[0], &[(1, 1000)], &[(1, 100 * i as i64)]);
            assert_eq!(t.observe(t0 + g / 2 * i, &o), Verdict::Waiting(vec![1]));
        }
        // Caught up: nothing waits.
        assert_eq!(
            t.observe(t0 + 6 * g, &obs(2, &[0], &[(1, 1000)], &[(1, 1000)])),
            Verdict::Healthy
        );
    }

    #[test]
    fn no_lag_is_healthy_and_an_unreadable_observation_restarts_the_clock() {
        let g = Duration::from_secs(10);
        let mut t = StallTracker::new(g);
        let t0 = Instant::now();
        assert_eq!(
            t.observe(t0, &obs(4, &[], &[(0, 0), (1, 5)], &[(1, 5)])),
            Verdict::Healthy
        );
        // Never consumed: the position is the low watermark.
        let o = Observation {
            partitions: 1,
            assigned: BTreeSet::new(),
            ends: [(0, (7, 9))].into_iter().collect(),
            positions: BTreeMap::new(),
        };
        assert_eq!(t.observe(t0, &o), Verdict::Waiting(vec![0]));
        t.reset();
        assert_eq!(t.observe(t0 + g, &o), Verdict::Waiting(vec![0]));
        assert!(matches!(t.observe(t0 + 2 * g, &o), Verdict::Stuck { .. }));
        // A reported end below the stored position (tansu) is no lag.
        assert_eq!(
            t.observe(t0 + 3 * g, &obs(1, &[], &[(0, 3)], &[(0, 9)])),
            Verdict::Healthy
        );
    }

    #[test]
    fn a_rebalance_restarts_the_clock() {
        let g = Duration::from_secs(10);
        let mut t = StallTracker::new(g);
        let t0 = Instant::now();
        let before = obs(4, &[0, 1], &[(2, 9), (3, 9)], &[]);
        assert_eq!(t.observe(t0, &before), Verdict::Waiting(vec![2, 3]));
        // Our share changed at t0 + 9 s: the others just got theirs.
        let after = obs(4, &[0], &[(1, 9), (2, 9), (3, 9)], &[]);
        assert_eq!(
            t.observe(t0 + g - Duration::from_secs(1), &after),
            Verdict::Waiting(vec![1, 2, 3])
        );
        assert_eq!(t.observe(t0 + g, &after), Verdict::Waiting(vec![1, 2, 3]));
        assert!(matches!(
            t.observe(t0 + 2 * g, &after),
            Verdict::Stuck { .. }
        ));
    }
}
