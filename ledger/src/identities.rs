//! Identities across partitions (schema version 10).
//!
//! `evidence_identity` is partitioned by `seq` range like `evidence`, with a
//! unique index on `identity` in each partition, so an append only touches
//! the index of the partitions its rows land in. Uniqueness across
//! partitions is checked explicitly by the writer: a *closed* partition
//! (every sequence number of it committed) never changes again, and the
//! batcher stores a Bloom filter of its identities in `identity_filters`
//! (core/src/filter.rs). A lookup probes a filtered partition's index only
//! for the identities its filter may hold, and every other partition (not
//! closed, not filtered yet, or whose filter failed its digest) for all of
//! them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchord_core::Digest32;
use anchord_core::filter::{FORMAT_VERSION, IdentityFilter, filter_digest};
use deadpool_postgres::GenericClient;
use futures::TryStreamExt;

use crate::{Ledger, LedgerError};

/// How long a loaded set of filters is used before `identity_filters` is
/// read again for new ones.
const REFRESH: Duration = Duration::from_secs(5);

/// The filter of one closed partition, `seq` in `[lo, hi)`.
#[derive(Debug)]
pub struct ClosedFilter {
    pub lo: u64,
    pub hi: u64,
    pub keys: u64,
    pub filter: IdentityFilter,
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
    fn overlapping(&self, lo: u64, hi: u64) -> impl Iterator<Item = &ClosedFilter> {
        self.filters
            .iter()
            .map(|f| f.as_ref())
            .filter(move |f| f.lo < hi && f.hi > lo)
    }
}

/// The filters loaded by one [`Ledger`] (shared by its clones), and the
/// identity partitions' bounds.
#[derive(Default)]
pub(crate) struct FilterCache {
    state: tokio::sync::Mutex<CacheState>,
    /// `ledger_head.partition_high` when the bounds were read, and the
    /// partitions' lower bounds, sorted.
    bounds: tokio::sync::Mutex<(i64, Vec<u64>)>,
}

#[derive(Default)]
struct CacheState {
    set: FilterSet,
    /// `lo` of filters whose digest or format did not check: not used, not
    /// read again by this process.
    refused: HashSet<u64>,
    checked: Option<Instant>,
}

impl FilterCache {
    /// The lower bound of the identity partition holding `seq`, read from
    /// the catalog (cached while `partition_high`, read under the head
    /// lock, does not change): the partitions' real bounds, so that a
    /// partition size changed after partitions exist cannot make the
    /// writer's check skip one.
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

    /// The filters stored so far, read again at most every [`REFRESH`].
    pub(crate) async fn current(&self, c: &impl GenericClient) -> Result<FilterSet, LedgerError> {
        let mut st = self.state.lock().await;
        if st.checked.is_some_and(|t| t.elapsed() < REFRESH) {
            return Ok(st.set.clone());
        }
        let stored: Vec<i64> = c
            .query("SELECT lo FROM identity_filters ORDER BY lo", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let known: HashSet<u64> = st
            .set
            .filters
            .iter()
            .map(|f| f.lo)
            .chain(st.refused.iter().copied())
            .collect();
        let new: Vec<i64> = stored
            .into_iter()
            .filter(|lo| !known.contains(&(*lo as u64)))
            .collect();
        if !new.is_empty() {
            let rows = c
                .query(
                    "SELECT lo, hi, keys, format, bits, digest FROM identity_filters \
                     WHERE lo = ANY($1)",
                    &[&new],
                )
                .await?;
            let mut all: Vec<Arc<ClosedFilter>> = st.set.filters.to_vec();
            for r in rows {
                let (lo, hi, keys): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
                match check_stored(lo, hi, keys, r.get(3), r.get(4), r.get(5)) {
                    Ok(f) => all.push(Arc::new(f)),
                    Err(why) => {
                        tracing::error!(
                            lo,
                            hi,
                            %why,
                            "identity filter refused; its partition's index answers instead (run `anchord audit`)"
                        );
                        st.refused.insert(lo as u64);
                    }
                }
            }
            all.sort_by_key(|f| f.lo);
            st.set = FilterSet {
                filters: all.into(),
            };
        }
        st.checked = Some(Instant::now());
        Ok(st.set.clone())
    }
}

/// A stored filter, checked: its format, its length and its digest.
pub(crate) fn check_stored(
    lo: i64,
    hi: i64,
    keys: i64,
    format: i16,
    bits: &[u8],
    digest: &[u8],
) -> Result<ClosedFilter, String> {
    if lo < 0 || hi <= lo || keys < 0 {
        return Err(format!("bounds [{lo}, {hi}) with {keys} identities"));
    }
    let (lo, hi, keys) = (lo as u64, hi as u64, keys as u64);
    if filter_digest(lo, hi, keys, bits).as_slice() != digest {
        return Err("its digest does not match its content".into());
    }
    let filter = IdentityFilter::from_bytes(format, bits).map_err(|e| e.to_string())?;
    Ok(ClosedFilter {
        lo,
        hi,
        keys,
        filter,
    })
}

/// The lower bounds of the identity partitions, from their names
/// (`evidence_identity_pNNNNNNNNNNNN`, `NNN…` = the lower bound, as the
/// writer and migration 0010 create them), sorted.
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

const PROBE: &str = "SELECT identity, seq FROM evidence_identity \
     WHERE identity = ANY($1) AND seq >= $2 AND seq < $3";

/// What one [`find`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdentityCheck {
    /// Identities a filter may hold (each one probed in that partition).
    pub maybe: u64,
    /// Ranges probed for every identity (no filter covers them).
    pub unfiltered_ranges: u32,
}

/// The sequence numbers of those of `ids` stored with `seq` in `[lo, hi)`:
/// with `gaps`, every identity probed in the ranges no filter of `filters`
/// covers; with `filtered`, in each filtered partition only those its
/// filter may hold. One statement per range probed, pipelined on `c`.
pub(crate) async fn find(
    c: &impl GenericClient,
    filters: &FilterSet,
    ids: &[Digest32],
    lo: u64,
    hi: u64,
    gaps: bool,
    filtered: bool,
) -> Result<(HashMap<Digest32, i64>, IdentityCheck), LedgerError> {
    let mut found = HashMap::new();
    let mut check = IdentityCheck::default();
    if ids.is_empty() || lo >= hi {
        return Ok((found, check));
    }
    let all: Vec<&[u8]> = ids.iter().map(|i| i.as_slice()).collect();
    let mut probes: Vec<(Vec<&[u8]>, i64, i64)> = Vec::new();
    if gaps {
        probes.extend(
            filters
                .gaps(lo, hi)
                .into_iter()
                .map(|(a, b)| (all.clone(), a as i64, b.min(i64::MAX as u64) as i64)),
        );
    }
    check.unfiltered_ranges = probes.len() as u32;
    for f in filters.overlapping(lo, hi).filter(|_| filtered) {
        let hits: Vec<&[u8]> = ids
            .iter()
            .filter(|id| f.filter.may_contain(id))
            .map(|i| i.as_slice())
            .collect();
        check.maybe += hits.len() as u64;
        if !hits.is_empty() {
            probes.push((hits, f.lo.max(lo) as i64, f.hi.min(hi) as i64));
        }
    }
    if probes.is_empty() {
        return Ok((found, check));
    }
    let st = c.prepare_cached(PROBE).await?;
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 3]> = probes
        .iter()
        .map(|(keys, a, b)| [keys as _, a as _, b as _])
        .collect();
    let answers =
        futures::future::try_join_all(params.iter().map(|p| c.query(&st, p.as_slice()))).await?;
    for r in answers.iter().flatten() {
        let id: &[u8] = r.get(0);
        let id: Digest32 = id
            .try_into()
            .map_err(|_| LedgerError::Corrupt("identity is not 32 bytes".into()))?;
        found.insert(id, r.get(1));
    }
    Ok((found, check))
}

/// A closed partition without a stored filter, for the batcher to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterWork {
    pub lo: u64,
    pub hi: u64,
}

impl Ledger {
    /// The identity filters this ledger handle uses (loaded or refreshed as
    /// needed).
    pub async fn identity_filters(&self) -> Result<FilterSet, LedgerError> {
        let c = self.pool().get().await?;
        self.filters.current(&c).await
    }

    /// The lowest closed partition (all its sequence numbers committed)
    /// without a stored identity filter.
    pub async fn identity_filter_work(&self) -> Result<Option<FilterWork>, LedgerError> {
        let c = self.pool().get().await?;
        let row = c
            .query_one(
                "SELECT h.next_seq, h.partition_high, ARRAY(SELECT lo FROM identity_filters) \
                 FROM ledger_head h",
                &[],
            )
            .await?;
        let (next, high): (i64, i64) = (row.get(0), row.get(1));
        let done: HashSet<i64> = row.get::<_, Vec<i64>>(2).into_iter().collect();
        let los = partition_los(&c).await?;
        let his = los.iter().skip(1).copied().chain([high as u64]);
        for (lo, hi) in los.iter().copied().zip(his) {
            if hi > next as u64 {
                break;
            }
            if !done.contains(&(lo as i64)) {
                return Ok(Some(FilterWork { lo, hi }));
            }
        }
        Ok(None)
    }

    /// Build and store the filter of closed partition `w` (streams its
    /// identities; idempotent: a filter stored meanwhile is kept). Returns
    /// the number of identities.
    pub async fn build_identity_filter(&self, w: FilterWork) -> Result<u64, LedgerError> {
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
        let keys: i64 = c
            .query_one(
                "SELECT count(*) FROM evidence_identity WHERE seq >= $1 AND seq < $2",
                &[&lo, &hi],
            )
            .await?
            .get(0);
        let mut filter = IdentityFilter::with_capacity(keys as u64);
        let mut seen = 0u64;
        let rows = c
            .query_raw(
                "SELECT identity FROM evidence_identity WHERE seq >= $1 AND seq < $2",
                [&lo, &hi],
            )
            .await?;
        futures::pin_mut!(rows);
        while let Some(r) = rows.try_next().await? {
            let id: &[u8] = r.get(0);
            let id: Digest32 = id
                .try_into()
                .map_err(|_| LedgerError::Corrupt("identity is not 32 bytes".into()))?;
            filter.insert(&id);
            seen += 1;
        }
        if seen != keys as u64 {
            return Err(LedgerError::Corrupt(format!(
                "partition [{lo}, {hi}) counted {keys} identities, then streamed {seen}"
            )));
        }
        let bits = filter.to_bytes();
        let digest = filter_digest(w.lo, w.hi, seen, &bits);
        c.execute(
            "INSERT INTO identity_filters (lo, hi, keys, format, bits, digest) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (lo) DO NOTHING",
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

    /// Every stored filter as stored, checked or not (`anchord audit`):
    /// `(lo, hi, Ok(filter) | Err(why it is refused))`.
    pub async fn stored_identity_filters(
        &self,
    ) -> Result<Vec<(u64, u64, Result<ClosedFilter, String>)>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT lo, hi, keys, format, bits, digest FROM identity_filters ORDER BY lo",
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
                    check_stored(lo, hi, keys, r.get(3), r.get(4), r.get(5)),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> FilterSet {
        FilterSet {
            filters: ranges
                .iter()
                .map(|&(lo, hi)| {
                    Arc::new(ClosedFilter {
                        lo,
                        hi,
                        keys: 0,
                        filter: IdentityFilter::with_capacity(1),
                    })
                })
                .collect::<Vec<_>>()
                .into(),
        }
    }

    #[test]
    fn gaps_are_the_ranges_no_filter_covers() {
        let s = set(&[(0, 10), (20, 30), (30, 40)]);
        assert_eq!(s.gaps(0, 50), vec![(10, 20), (40, 50)]);
        assert_eq!(s.gaps(0, 40), vec![(10, 20)]);
        assert_eq!(s.gaps(5, 25), vec![(10, 20)]);
        assert_eq!(s.gaps(0, 10), vec![]);
        assert_eq!(s.gaps(40, u64::MAX), vec![(40, u64::MAX)]);
        assert_eq!(set(&[]).gaps(0, 30), vec![(0, 30)]);
        assert_eq!(set(&[(10, 20)]).gaps(0, 30), vec![(0, 10), (20, 30)]);
        let over: Vec<u64> = s.overlapping(5, 25).map(|f| f.lo).collect();
        assert_eq!(over, vec![0, 20]);
        let over: Vec<u64> = s.overlapping(10, 20).map(|f| f.lo).collect();
        assert!(over.is_empty());
    }
}
