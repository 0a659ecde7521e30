//! The writer's identity check across partitions (schema version 10).
//!
//! `evidence_identity` is partitioned by `seq` range like `evidence`, with a
//! unique index on `identity` in each partition, so an append only touches
//! the index of the partitions its rows land in. Uniqueness across
//! partitions is checked explicitly by the writer (ledger/src/evidence.rs)
//! with [`find`]: a closed partition's index is probed only for the
//! identities its filter (filters.rs) may hold, every other partition for
//! all of them.

// foldhash, not SipHash: see the workspace manifest.
use foldhash::{HashMap, HashMapExt};

use anchord_core::Digest32;
use deadpool_postgres::GenericClient;

use crate::LedgerError;
use crate::filters::FilterSet;

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

/// Which partitions [`find`] probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Every partition (the filtered ones only for what their filter may
    /// hold).
    All,
    /// Only the filtered (closed) partitions.
    FilteredOnly,
    /// Only the ranges no filter covers.
    GapsOnly,
}

/// The sequence numbers of those of `ids` stored with `seq` in `[lo, hi)`,
/// in the partitions `probe` names: in a range no filter of `filters`
/// covers, every identity is probed; in a filtered partition, only those
/// its filter may hold. One statement per range probed, pipelined on `c`.
pub(crate) async fn find(
    c: &impl GenericClient,
    filters: &FilterSet,
    ids: &[Digest32],
    lo: u64,
    hi: u64,
    probe: Probe,
) -> Result<(HashMap<Digest32, i64>, IdentityCheck), LedgerError> {
    let mut found = HashMap::new();
    let mut check = IdentityCheck::default();
    if ids.is_empty() || lo >= hi {
        return Ok((found, check));
    }
    let all: Vec<&[u8]> = ids.iter().map(|i| i.as_slice()).collect();
    let mut probes: Vec<(Vec<&[u8]>, i64, i64)> = Vec::new();
    if probe != Probe::FilteredOnly {
        probes.extend(
            filters
                .gaps(lo, hi)
                .into_iter()
                .map(|(a, b)| (all.clone(), a as i64, b.min(i64::MAX as u64) as i64)),
        );
    }
    check.unfiltered_ranges = probes.len() as u32;
    for f in filters
        .overlapping(lo, hi)
        .filter(|_| probe != Probe::GapsOnly)
    {
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
