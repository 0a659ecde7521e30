//! Filters of closed partitions (schema versions 10 and 11).
//!
//! A *closed* partition (every sequence number of it committed) never
//! changes again. For each one the batcher's leader stores two Bloom
//! filters (format: core/src/filter.rs): of its identities, in
//! `identity_filters`, and of its evidence hashes, in
//! `evidence_hash_filters`. With them a lookup skips every closed partition
//! that cannot hold its key: the writer's idempotency check across
//! partitions (identities.rs) and the verifier's proofs by identity or by
//! hash (proofs.rs) probe O(1) partitions instead of all of them.
//!
//! A filter whose digest or format does not check is logged at error level
//! and not used: its partition is then treated as unfiltered (probed for
//! every key), and `anchord audit` reports it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchord_core::Digest32;
use anchord_core::filter::{
    FORMAT_VERSION, FilterKind, KeyFilter, evidence_hash_key, filter_digest,
};
use deadpool_postgres::GenericClient;
use futures::TryStreamExt;

use crate::{Ledger, LedgerError};

/// How long a loaded set of filters is used before the table is read
/// again for new ones.
const REFRESH: Duration = Duration::from_secs(5);

/// The table holding one kind's filters.
fn table(kind: FilterKind) -> &'static str {
    match kind {
        FilterKind::Identity => "identity_filters",
        FilterKind::EvidenceHash => "evidence_hash_filters",
    }
}

/// The filter of one closed partition, `seq` in `[lo, hi)`.
#[derive(Debug)]
pub struct ClosedFilter {
    pub lo: u64,
    pub hi: u64,
    pub keys: u64,
    pub filter: KeyFilter,
}

/// The filters a lookup uses, sorted by `lo` (a snapshot: filters never
/// change once stored, new ones are added).
#[derive(Clone, Debug, Default)]
pub struct FilterSet {
    filters: Arc<[Arc<ClosedFilter>]>,
}

impl FilterSet {
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The ranges of `[lo, hi)` no filter covers, in order.
    pub(crate) fn gaps(&self, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = lo;
        for f in self.filters.iter() {
            if f.hi <= at {
                continue;
            }
            if f.lo >= hi {
                break;
            }
            if f.lo > at {
                out.push((at, f.lo));
            }
            at = f.hi;
        }
        if at < hi {
            out.push((at, hi));
        }
        out
    }

    /// The filters overlapping `[lo, hi)`.
    pub(crate) fn overlapping(&self, lo: u64, hi: u64) -> impl Iterator<Item = &ClosedFilter> {
        self.filters
            .iter()
            .map(|f| f.as_ref())
            .filter(move |f| f.lo < hi && f.hi > lo)
    }

    /// The first range of `seq` that may hold `key`: a filtered partition
    /// whose filter may hold it, or a range no filter covers (the last one
    /// open-ended: `u64::MAX`). Every entry with that key has a `seq` at or
    /// above its start; the oldest is in it unless the filter's answer was
    /// a false positive (then it is above its end).
    pub fn first_candidate(&self, key: &Digest32) -> (u64, u64) {
        let mut at = 0;
        for f in self.filters.iter() {
            if f.lo > at {
                return (at, f.lo);
            }
            if f.filter.may_contain(key) {
                return (f.lo, f.hi);
            }
            at = f.hi;
        }
        (at, u64::MAX)
    }
}

/// The filters loaded by one [`Ledger`] (shared by its clones), and the
/// identity partitions' bounds.
#[derive(Default)]
pub(crate) struct FilterCache {
    /// Per kind, what lookups use now and when it was read.
    published: [std::sync::RwLock<(FilterSet, Option<Instant>)>; 2],
    /// Per kind, held by the one task reading the table again (with the
    /// filters it refused); the others go on with the published set (fewer
    /// filters: more probes, the same answers) instead of waiting for a
    /// load of many megabytes.
    refreshing: [tokio::sync::Mutex<HashSet<u64>>; 2],
    /// `ledger_head.partition_high` when the bounds were read, and the
    /// partitions' lower bounds, sorted.
    bounds: tokio::sync::Mutex<(i64, Vec<u64>)>,
}

impl FilterCache {
    /// The lower bound of the partition holding `seq`, read from the
    /// catalog (cached while `partition_high`, read under the head lock,
    /// does not change): the partitions' real bounds, so that a partition
    /// size changed after partitions exist cannot make the writer's check
    /// skip one.
    pub(crate) async fn partition_lo_of(
        &self,
        c: &impl GenericClient,
        partition_high: i64,
        seq: u64,
    ) -> Result<u64, LedgerError> {
        let mut b = self.bounds.lock().await;
        if b.0 != partition_high || b.1.is_empty() {
            *b = (partition_high, partition_los(c).await?);
        }
        Ok(b.1
            .iter()
            .rev()
            .find(|lo| **lo <= seq)
            .copied()
            .unwrap_or(0))
    }

    /// The `kind` filters stored so far, read again at most every
    /// [`REFRESH`]. Only the first callers (at start) wait for the load;
    /// while one task reads the table again, the others get the set
    /// published before.
    pub(crate) async fn current(
        &self,
        c: &impl GenericClient,
        kind: FilterKind,
    ) -> Result<FilterSet, LedgerError> {
        let fresh = |checked: Option<Instant>| checked.is_some_and(|t| t.elapsed() < REFRESH);
        let published = |this: &Self| {
            this.published[kind as usize]
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        };
        let before = published(self);
        if fresh(before.1) {
            return Ok(before.0);
        }
        // `refused`: the `lo` of filters whose digest or format did not
        // check (not used, not read again by this process).
        let mut refused = match self.refreshing[kind as usize].try_lock() {
            Ok(r) => r,
            Err(_) if before.1.is_some() => return Ok(before.0),
            // Nothing loaded yet: wait for the first load.
            Err(_) => self.refreshing[kind as usize].lock().await,
        };
        // Another task may have refreshed while this one waited.
        let (mut set, checked) = published(self);
        if fresh(checked) {
            return Ok(set);
        }
        let stored: Vec<i64> = c
            .query(&format!("SELECT lo FROM {}", table(kind)), &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let known: HashSet<u64> = set
            .filters
            .iter()
            .map(|f| f.lo)
            .chain(refused.iter().copied())
            .collect();
        let new: Vec<i64> = stored
            .into_iter()
            .filter(|lo| !known.contains(&(*lo as u64)))
            .collect();
        if !new.is_empty() {
            let rows = c
                .query(
                    &format!(
                        "SELECT lo, hi, keys, format, bits, digest FROM {} WHERE lo = ANY($1)",
                        table(kind)
                    ),
                    &[&new],
                )
                .await?;
            let mut all: Vec<Arc<ClosedFilter>> = set.filters.to_vec();
            for r in rows {
                let (lo, hi, keys): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
                match check_stored(kind, lo, hi, keys, r.get(3), r.get(4), r.get(5)) {
                    Ok(f) => all.push(Arc::new(f)),
                    Err(why) => {
                        tracing::error!(
                            kind = kind.name(),
                            lo,
                            hi,
                            %why,
                            "filter of a closed partition refused; the partition's index answers instead (run `anchord audit`)"
                        );
                        refused.insert(lo as u64);
                    }
                }
            }
            all.sort_by_key(|f| f.lo);
            set = FilterSet {
                filters: all.into(),
            };
        }
        *self.published[kind as usize]
            .write()
            .unwrap_or_else(|e| e.into_inner()) = (set.clone(), Some(Instant::now()));
        Ok(set)
    }
}

/// A stored filter, checked: its bounds, format, length and digest.
pub(crate) fn check_stored(
    kind: FilterKind,
    lo: i64,
    hi: i64,
    keys: i64,
    format: i16,
    bits: &[u8],
    digest: &[u8],
) -> Result<ClosedFilter, String> {
    if lo < 0 || hi <= lo || keys < 0 {
        return Err(format!("bounds [{lo}, {hi}) with {keys} keys"));
    }
    let (lo, hi, keys) = (lo as u64, hi as u64, keys as u64);
    if filter_digest(kind, lo, hi, keys, bits).as_slice() != digest {
        return Err("its digest does not match its content".into());
    }
    let filter = KeyFilter::from_bytes(format, bits).map_err(|e| e.to_string())?;
    Ok(ClosedFilter {
        lo,
        hi,
        keys,
        filter,
    })
}

/// The lower bounds of the partitions, from the identity partitions' names
/// (`evidence_identity_pNNNNNNNNNNNN`, `NNN…` = the lower bound, as the
/// writer and migration 0010 create them, beside `evidence_pNNN…` of the
/// same bounds), sorted.
pub(crate) async fn partition_los(c: &impl GenericClient) -> Result<Vec<u64>, LedgerError> {
    let rows = c
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'evidence_identity'::regclass",
            &[],
        )
        .await?;
    let mut los = rows
        .iter()
        .map(|r| {
            let name: &str = r.get(0);
            name.strip_prefix("evidence_identity_p")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "identity partition {name} is not named evidence_identity_p<lower bound>"
                    ))
                })
        })
        .collect::<Result<Vec<u64>, _>>()?;
    los.sort_unstable();
    Ok(los)
}

/// A closed partition without a stored filter of `kind`, for the batcher
/// to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterWork {
    pub kind: FilterKind,
    pub lo: u64,
    pub hi: u64,
}

impl Ledger {
    /// The `kind` filters this ledger handle uses (loaded or refreshed as
    /// needed).
    pub async fn filters(&self, kind: FilterKind) -> Result<FilterSet, LedgerError> {
        let c = self.pool().get().await?;
        self.filters.current(&c, kind).await
    }

    /// The lowest closed partition (all its sequence numbers committed)
    /// without a stored filter, identities first.
    pub async fn filter_work(&self) -> Result<Option<FilterWork>, LedgerError> {
        let c = self.pool().get().await?;
        let row = c
            .query_one(
                "SELECT h.next_seq, h.partition_high, \
                 ARRAY(SELECT lo FROM identity_filters), \
                 ARRAY(SELECT lo FROM evidence_hash_filters) \
                 FROM ledger_head h",
                &[],
            )
            .await?;
        let (next, high): (i64, i64) = (row.get(0), row.get(1));
        let los = partition_los(&c).await?;
        for (kind, col) in [(FilterKind::Identity, 2), (FilterKind::EvidenceHash, 3)] {
            let done: HashSet<i64> = row.get::<_, Vec<i64>>(col).into_iter().collect();
            let his = los.iter().skip(1).copied().chain([high as u64]);
            for (lo, hi) in los.iter().copied().zip(his) {
                if hi > next as u64 {
                    break;
                }
                if !done.contains(&(lo as i64)) {
                    return Ok(Some(FilterWork { kind, lo, hi }));
                }
            }
        }
        Ok(None)
    }

    /// Build and store filter `w` of a closed partition (streams the
    /// partition's keys on one connection; idempotent: a filter stored
    /// meanwhile is kept). Returns the number of keys.
    pub async fn build_filter(&self, w: FilterWork) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let next: i64 = c
            .query_one("SELECT next_seq FROM ledger_head", &[])
            .await?
            .get(0);
        if (next as u64) < w.hi {
            return Err(LedgerError::Config(format!(
                "partition [{}, {}) is not closed (next seq {next})",
                w.lo, w.hi
            )));
        }
        let (lo, hi) = (w.lo as i64, w.hi as i64);
        let (count, stream) = match w.kind {
            FilterKind::Identity => (
                "SELECT count(*) FROM evidence_identity WHERE seq >= $1 AND seq < $2",
                "SELECT identity FROM evidence_identity WHERE seq >= $1 AND seq < $2",
            ),
            FilterKind::EvidenceHash => (
                "SELECT count(*) FROM evidence WHERE seq >= $1 AND seq < $2",
                "SELECT evidence_hash FROM evidence WHERE seq >= $1 AND seq < $2",
            ),
        };
        let keys: i64 = c.query_one(count, &[&lo, &hi]).await?.get(0);
        let mut filter = KeyFilter::with_capacity(keys as u64);
        let mut seen = 0u64;
        let rows = c.query_raw(stream, [&lo, &hi]).await?;
        futures::pin_mut!(rows);
        while let Some(r) = rows.try_next().await? {
            let v: &[u8] = r.get(0);
            let key: Digest32 = match w.kind {
                FilterKind::Identity => v
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt("identity is not 32 bytes".into()))?,
                FilterKind::EvidenceHash => evidence_hash_key(v),
            };
            filter.insert(&key);
            seen += 1;
        }
        if seen != keys as u64 {
            return Err(LedgerError::Corrupt(format!(
                "partition [{lo}, {hi}) counted {keys} keys, then streamed {seen}"
            )));
        }
        let bits = filter.to_bytes();
        let digest = filter_digest(w.kind, w.lo, w.hi, seen, &bits);
        c.execute(
            &format!(
                "INSERT INTO {} (lo, hi, keys, format, bits, digest) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (lo) DO NOTHING",
                table(w.kind)
            ),
            &[
                &lo,
                &hi,
                &(seen as i64),
                &FORMAT_VERSION,
                &bits,
                &digest.as_slice(),
            ],
        )
        .await?;
        Ok(seen)
    }

    /// Every stored `kind` filter as stored, checked or not (`anchord
    /// audit`): `(lo, hi, Ok(filter) | Err(why it is refused))`, by `lo`.
    pub async fn stored_filters(
        &self,
        kind: FilterKind,
    ) -> Result<Vec<(u64, u64, Result<ClosedFilter, String>)>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT lo, hi, keys, format, bits, digest FROM {} ORDER BY lo",
                    table(kind)
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let (lo, hi, keys): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
                (
                    lo.max(0) as u64,
                    hi.max(0) as u64,
                    check_stored(kind, lo, hi, keys, r.get(3), r.get(4), r.get(5)),
                )
            })
            .collect())
    }

    /// For each key, the first range of `seq` that may hold it by the
    /// `kind` filters ([`FilterSet::first_candidate`]), as SQL bounds
    /// (`i64::MAX` for open-ended).
    pub(crate) async fn first_candidates(
        &self,
        c: &impl GenericClient,
        kind: FilterKind,
        keys: &[Digest32],
    ) -> Result<(Vec<i64>, Vec<i64>), LedgerError> {
        let set = self.filters.current(c, kind).await?;
        Ok(keys
            .iter()
            .map(|k| {
                let (lo, hi) = set.first_candidate(k);
                (lo as i64, hi.min(i64::MAX as u64) as i64)
            })
            .unzip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64, &[Digest32])]) -> FilterSet {
        FilterSet {
            filters: ranges
                .iter()
                .map(|&(lo, hi, keys)| {
                    let mut filter = KeyFilter::with_capacity(1000);
                    for k in keys {
                        filter.insert(k);
                    }
                    Arc::new(ClosedFilter {
                        lo,
                        hi,
                        keys: keys.len() as u64,
                        filter,
                    })
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    #[test]
    fn gaps_are_the_ranges_no_filter_covers() {
        let s = set(&[(0, 10, &[]), (20, 30, &[]), (30, 40, &[])]);
        assert_eq!(s.gaps(0, 50), vec![(10, 20), (40, 50)]);
        assert_eq!(s.gaps(0, 40), vec![(10, 20)]);
        assert_eq!(s.gaps(5, 25), vec![(10, 20)]);
        assert_eq!(s.gaps(0, 10), vec![]);
        assert_eq!(s.gaps(40, u64::MAX), vec![(40, u64::MAX)]);
        assert_eq!(set(&[]).gaps(0, 30), vec![(0, 30)]);
        assert_eq!(set(&[(10, 20, &[])]).gaps(0, 30), vec![(0, 10), (20, 30)]);
        let over: Vec<u64> = s.overlapping(5, 25).map(|f| f.lo).collect();
        assert_eq!(over, vec![0, 20]);
        let over: Vec<u64> = s.overlapping(10, 20).map(|f| f.lo).collect();
        assert!(over.is_empty());
    }

    #[test]
    fn the_first_candidate_is_the_first_range_that_may_hold_the_key() {
        // Keys as the filters get them: uniform (SHA-256 values).
        let k = |i: u8| evidence_hash_key(&[i]);
        let (a, b, c) = (k(1), k(2), k(3));
        let s = set(&[(0, 10, &[a]), (10, 20, &[b]), (30, 40, &[c, a])]);
        assert_eq!(s.first_candidate(&a), (0, 10));
        assert_eq!(s.first_candidate(&b), (10, 20));
        // Not in [0, 20): the unfiltered [20, 30) comes first.
        assert_eq!(s.first_candidate(&c), (20, 30));
        let d = k(4);
        assert_eq!(s.first_candidate(&d), (20, 30));
        let s = set(&[(0, 10, &[a]), (10, 20, &[b])]);
        assert_eq!(s.first_candidate(&d), (20, u64::MAX), "past every filter");
        assert_eq!(set(&[]).first_candidate(&d), (0, u64::MAX));
        assert_eq!(
            set(&[(5, 10, &[])]).first_candidate(&d),
            (0, 5),
            "[0, 5) unfiltered"
        );
    }
}
