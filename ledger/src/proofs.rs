//! Queries the verifier needs to assemble proof bundles: the block holding a
//! sequence number, the block log's leaves, the anchored checkpoints and
//! their receipts (`docs/proof-format.md`).
//!
//! `anchor_receipts` / `anchor_jobs` are written by the relay; the column
//! meanings the verifier relies on (0001_init.sql): `target` the configured
//! target name, `checkpoint_size` the anchored checkpoint, `chain_kind`,
//! `chain_id`, `tx_id`, `block_number`, `block_hash`, `block_time_us` where
//! the chain recorded it, `receipt` the chain-specific raw receipt.
//! [`Ledger::record_anchor_receipt`] writes one (with its job) for tests and
//! tools until the relay lands.

use anchord_core::Digest32;
use anchord_core::filter::{FilterKind, evidence_hash_key};
use anchord_core::tiles::{Level0, TILE_WIDTH, TileHalf};
use std::sync::LazyLock;

use tokio_postgres::Client;

use crate::blocks::{StoredBlock, blocks_on, leaf_hashes_on};
use crate::evidence::{SELECT_ENTRY, stored_entry};
use crate::tiles::block_tiles_on;
use crate::{Ledger, LedgerError, StoredEntry};

/// What one proof needs from the ledger, read in one query
/// ([`Ledger::proof_by_hash`], [`Ledger::proof_by_identity`]): the entry,
/// where its sealed block is, and the entry's part of its level-0 tile in
/// that block's tree: the stored half holding it (schema version 9), or,
/// for a block sealed before version 9 and not yet back-filled, the whole
/// tile from the evidence rows (a second statement on the same
/// connection). Levels 1 and up of the block's tree, the header and the
/// block log come from the verifier's caches of immutable tiles.
#[derive(Clone, Debug)]
pub struct ProofRow {
    pub entry: StoredEntry,
    /// `(height, first_seq, last_seq)` of the sealed block holding the
    /// entry; `None` while it is not sealed.
    pub block: Option<(u64, u64, u64)>,
    /// The entry's level-0 data in its block (`None` when not sealed);
    /// checked to fit the entry's position and its tile's width.
    pub level0: Option<Level0>,
}

/// The entry (the FROM item `entry`, named `e`; `extra` adds columns at
/// the end), its block (index on `first_seq`) and the
/// stored half of its level-0 tile that holds it (`block_leaf_tiles`: at
/// most 4 KiB inline in its own heap page, one primary-key probe), in one
/// statement of plain joins. Measured with pgbench on a 1M-entry ledger,
/// this form ran 1.6x the rate of the earlier one (a CTE, both halves
/// aggregated with `string_agg`, and the evidence-row fallback as a
/// subplan that the generic plan initialised over every partition on every
/// execution). A block without stored tiles gives NULLs here and its tile
/// is read by [`with_leaves`].
fn proof_query(entry: &str, extra: &str) -> String {
    let w = TILE_WIDTH;
    let h = anchord_core::tiles::HALF_WIDTH;
    format!(
        "SELECT e.*, b.height, b.first_seq, b.last_seq, lt.half, lt.hashes, lt.sibling{extra} \
         FROM {entry} \
         LEFT JOIN LATERAL (SELECT height, first_seq, last_seq FROM blocks \
             WHERE first_seq <= e.seq ORDER BY first_seq DESC LIMIT 1) b ON b.last_seq >= e.seq \
         LEFT JOIN block_leaf_tiles lt ON lt.height = b.height \
             AND lt.idx = (e.seq - b.first_seq) / {w} \
             AND lt.half = ((e.seq - b.first_seq) % {w}) / {h}"
    )
}

/// The entry of one evidence hash (`$1`), the oldest, of tenant `$2` when
/// not NULL, with `seq` in `[$3, $4)`: the first range the closed
/// partitions' evidence-hash filters allow (filters.rs,
/// `FilterSet::first_candidate`). PostgreSQL prunes the partitions outside
/// it, so a lookup probes one partition's index, not every one's. When the
/// range holds no row (a filter's false positive, or the hash stored there
/// for another tenant only), the caller asks again from `$4` up.
const BY_HASH: &str = "WHERE e.evidence_hash = $1 AND ($2::text IS NULL OR e.tenant = $2) \
     AND e.seq >= $3 AND e.seq < $4 ORDER BY e.seq LIMIT 1";
/// The entry of one identity key (`$1`), looked for in `[$2, $3)` (the
/// identity filters' first candidate, as for [`BY_HASH`]).
const BY_IDENTITY: &str = "WHERE e.seq = (SELECT seq FROM evidence_identity \
     WHERE identity = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT 1)";

static PROOF_BY_HASH: LazyLock<String> =
    LazyLock::new(|| proof_query(&format!("({SELECT_ENTRY} {BY_HASH}) e"), ""));
static PROOF_BY_IDENTITY: LazyLock<String> =
    LazyLock::new(|| proof_query(&format!("({SELECT_ENTRY} {BY_IDENTITY}) e"), ""));

/// [`PROOF_BY_HASH`] for many hashes in one statement: `$1` the hashes,
/// `$2` the tenants (NULL: any), paired by position; each row ends with
/// its ask's 1-based position `k`. One statement's fixed cost (executor
/// set-up, a round trip, a context switch each way) shared by the batch:
/// with pgbench on a 1M-entry ledger, batches of 8 to 64 gave 2.0–2.7x
/// the proofs per second of single statements.
static PROOFS_BY_HASH: LazyLock<String> = LazyLock::new(|| {
    proof_query(
        &format!(
            "unnest($1::bytea[], $2::text[], $3::int8[], $4::int8[]) \
                 WITH ORDINALITY q(h, tenant, lo, hi, k) \
             CROSS JOIN LATERAL ({SELECT_ENTRY} \
                 WHERE e.evidence_hash = q.h AND (q.tenant IS NULL OR e.tenant = q.tenant) \
                 AND e.seq >= q.lo AND e.seq < q.hi ORDER BY e.seq LIMIT 1) e"
        ),
        ", q.k",
    )
});
/// [`PROOF_BY_IDENTITY`] for many identity keys (`$1`).
static PROOFS_BY_IDENTITY: LazyLock<String> = LazyLock::new(|| {
    proof_query(
        &format!(
            "unnest($1::bytea[], $2::int8[], $3::int8[]) WITH ORDINALITY q(id, lo, hi, k) \
             CROSS JOIN LATERAL (SELECT seq FROM evidence_identity \
                 WHERE identity = q.id AND seq >= q.lo AND seq < q.hi ORDER BY seq LIMIT 1) i \
             CROSS JOIN LATERAL ({SELECT_ENTRY} WHERE e.seq = i.seq) e"
        ),
        ", q.k",
    )
});

/// One proof to look up in [`Ledger::proofs`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProofKey {
    /// The oldest entry with this evidence hash, of this tenant when given.
    Hash {
        hash: Vec<u8>,
        tenant: Option<String>,
    },
    /// The entry (tenant, external id).
    Identity { tenant: String, external_id: String },
}

/// The outcome of one [`ProofKey`] in a batch: a row that does not read
/// as a proof (a corrupt stored half, say) fails its own ask only.
pub type ProofAnswer = Result<Option<ProofRow>, LedgerError>;

/// [`Ledger::proofs_with_blocks`]: the answers, and what else the caller
/// asked for of the blocks they fall in.
#[derive(Debug)]
pub struct ProofBatch {
    /// One per key, in the order asked.
    pub answers: Vec<ProofAnswer>,
    /// The blocks asked for (their headers and hashes, unchecked).
    pub blocks: Vec<StoredBlock>,
    /// Their stored tiles above level 0 (an empty set for a block without
    /// any), by height.
    pub block_tiles: Vec<(u64, anchord_core::tiles::TileSet)>,
}

/// Where the level-0 tile of `seq` starts in its block `(first, last)`,
/// and its width (256, or what the block's end leaves of the last one).
fn tile_span(seq: u64, (first, last): (u64, u64)) -> (u64, u64) {
    let start = first + (seq - first) / TILE_WIDTH * TILE_WIDTH;
    (start, (last + 1 - start).min(TILE_WIDTH))
}

fn proof_row(r: &tokio_postgres::Row) -> Result<ProofRow, LedgerError> {
    let entry = stored_entry(r)?;
    let seq = entry.entry.seq;
    // SELECT_ENTRY's 11 columns, then the block and its tile's half.
    let block = r.get::<_, Option<i64>>(11).map(|h| {
        (
            h as u64,
            r.get::<_, i64>(12) as u64,
            r.get::<_, i64>(13) as u64,
        )
    });
    let Some((height, first, last)) = block else {
        return Ok(ProofRow {
            entry,
            block,
            level0: None,
        });
    };
    let Some(half) = r.get::<_, Option<i16>>(14) else {
        return Ok(ProofRow {
            entry,
            block,
            level0: None,
        });
    };
    let corrupt = |what: String| {
        LedgerError::Corrupt(format!(
            "evidence {seq}: block {height}'s level-0 tile {}: {what}",
            (seq - first) / TILE_WIDTH
        ))
    };
    let hashes = anchord_core::tiles::tile_hashes(r.get(15))
        .map_err(|e| corrupt(format!("its stored half: {e}")))?;
    let sibling = r
        .get::<_, Option<&[u8]>>(16)
        .map(|s| {
            Digest32::try_from(s).map_err(|_| corrupt("its sibling root is not 32 bytes".into()))
        })
        .transpose()?;
    let level0 = Level0::Half(TileHalf {
        half: u8::try_from(half).unwrap_or(u8::MAX),
        hashes,
        sibling,
    });
    let (start, width) = tile_span(seq, (first, last));
    if !level0.fits(width, seq - start) {
        return Err(corrupt(format!(
            "its stored half does not fit a tile {width} wide"
        )));
    }
    Ok(ProofRow {
        entry,
        block,
        level0: Some(level0),
    })
}

/// A sealed entry's row without a stored half (its block awaits the
/// batcher's back-fill): its whole level-0 tile from the evidence rows,
/// on the same connection.
async fn with_leaves(c: &Client, mut row: ProofRow) -> Result<ProofRow, LedgerError> {
    let Some((height, first, last)) = row.block else {
        return Ok(row);
    };
    if row.level0.is_some() {
        return Ok(row);
    }
    let seq = row.entry.entry.seq;
    let (start, width) = tile_span(seq, (first, last));
    let tile = leaf_hashes_on(c, start, start + width).await?;
    if tile.len() as u64 != width {
        return Err(LedgerError::Corrupt(format!(
            "evidence {seq}: block {height}'s level-0 tile {} has {} leaves, not {width}",
            (seq - first) / TILE_WIDTH,
            tile.len()
        )));
    }
    row.level0 = Some(Level0::Tile(tile));
    Ok(row)
}

/// One row of `anchor_receipts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRow {
    pub target: String,
    pub checkpoint_size: u64,
    pub chain_kind: String,
    pub chain_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub block_hash: String,
    pub block_time_us: i64,
    /// The raw receipt, JSON text.
    pub receipt: String,
}

/// `evidence_identity` rows other than those of seqs from `$1` (the head an
/// audit began at) up to the head now.
const OUTSIDE_GROWTH: &str = "(seq < $1 OR seq >= (SELECT next_seq FROM ledger_head))";

impl Ledger {
    /// What the proof of the oldest entry with this evidence hash (of
    /// `tenant` when given) needs, in one prepared statement.
    pub async fn proof_by_hash(
        &self,
        hash: &[u8],
        tenant: Option<&str>,
    ) -> Result<Option<ProofRow>, LedgerError> {
        let c = self.pool().get().await?;
        let (lo, hi) = self
            .first_candidates(&c, FilterKind::EvidenceHash, &[evidence_hash_key(hash)])
            .await?;
        let st = c.prepare_cached(&PROOF_BY_HASH).await?;
        let mut row = c.query_opt(&st, &[&hash, &tenant, &lo[0], &hi[0]]).await?;
        if row.is_none() && hi[0] != i64::MAX {
            row = c
                .query_opt(&st, &[&hash, &tenant, &hi[0], &i64::MAX])
                .await?;
        }
        match row {
            Some(r) => Ok(Some(with_leaves(&c, proof_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// What the proof of the entry (tenant, external id) needs, in one
    /// prepared statement.
    pub async fn proof_by_identity(
        &self,
        tenant: &str,
        external_id: &str,
    ) -> Result<Option<ProofRow>, LedgerError> {
        let c = self.pool().get().await?;
        let st = c.prepare_cached(&PROOF_BY_IDENTITY).await?;
        let id = anchord_core::entry::identity_key(tenant, external_id);
        let (lo, hi) = self
            .first_candidates(&c, FilterKind::Identity, &[id])
            .await?;
        let mut row = c.query_opt(&st, &[&id.as_slice(), &lo[0], &hi[0]]).await?;
        if row.is_none() && hi[0] != i64::MAX {
            row = c
                .query_opt(&st, &[&id.as_slice(), &hi[0], &i64::MAX])
                .await?;
        }
        match row {
            Some(r) => Ok(Some(with_leaves(&c, proof_row(&r)?).await?)),
            None => Ok(None),
        }
    }

    /// What the proofs of `keys` need, in at most two statements (one per
    /// kind of key) on one connection, answers in the order asked: the
    /// same answer as [`Ledger::proof_by_hash`] or
    /// [`Ledger::proof_by_identity`] gives for each key alone. The
    /// verifier gathers concurrent cold requests into one call. An error
    /// of the whole call (the connection, the statement) is returned as
    /// such; a row that does not read as a proof fails its own key only.
    pub async fn proofs(&self, keys: &[ProofKey]) -> Result<Vec<ProofAnswer>, LedgerError> {
        Ok(self.proofs_with_blocks(keys, |_| false).await?.answers)
    }

    /// [`Ledger::proofs`], and for the sealed blocks the answers fall in
    /// that `want` picks (by height), their headers and stored upper tiles,
    /// two statements more on the same connection: the verifier's first
    /// proofs of a block need both, and on a ledger of many blocks almost
    /// every cold proof is a block's first (50M entries in 4,992 blocks:
    /// 2.09 statements per proof when each was read alone).
    pub async fn proofs_with_blocks(
        &self,
        keys: &[ProofKey],
        want: impl Fn(u64) -> bool,
    ) -> Result<ProofBatch, LedgerError> {
        let mut out: Vec<ProofAnswer> = keys.iter().map(|_| Ok(None)).collect();
        if keys.is_empty() {
            return Ok(ProofBatch {
                answers: out,
                blocks: Vec::new(),
                block_tiles: Vec::new(),
            });
        }
        let c = self.pool().get().await?;
        let (mut hashes, mut tenants, mut by_hash) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ids, mut by_id) = (Vec::new(), Vec::new());
        for (i, k) in keys.iter().enumerate() {
            match k {
                ProofKey::Hash { hash, tenant } => {
                    hashes.push(hash.as_slice());
                    tenants.push(tenant.as_deref());
                    by_hash.push(i);
                }
                ProofKey::Identity {
                    tenant,
                    external_id,
                } => {
                    ids.push(anchord_core::entry::identity_key(tenant, external_id));
                    by_id.push(i);
                }
            }
        }
        // Each key is looked for in the first range its kind's filters
        // allow; the keys that found nothing there and whose range was not
        // the open-ended last one are looked for again above it (a
        // filter's false positive, about 0.1%; a hash stored there for
        // another tenant only).
        let again = |first: &[tokio_postgres::Row], his: &[i64]| -> Vec<usize> {
            let answered: std::collections::HashSet<i64> =
                first.iter().map(|r| r.get::<_, i64>(17)).collect();
            (0..his.len())
                .filter(|&j| his[j] != i64::MAX && !answered.contains(&(j as i64 + 1)))
                .collect()
        };
        let mut rows: Vec<(Vec<tokio_postgres::Row>, Vec<usize>)> = Vec::new();
        if !by_hash.is_empty() {
            let keys: Vec<Digest32> = hashes.iter().map(|h| evidence_hash_key(h)).collect();
            let (los, his) = self
                .first_candidates(&c, FilterKind::EvidenceHash, &keys)
                .await?;
            let st = c.prepare_cached(&PROOFS_BY_HASH).await?;
            let first = c.query(&st, &[&hashes, &tenants, &los, &his]).await?;
            let more = again(&first, &his);
            rows.push((first, by_hash.clone()));
            if !more.is_empty() {
                let h: Vec<&[u8]> = more.iter().map(|&j| hashes[j]).collect();
                let t: Vec<Option<&str>> = more.iter().map(|&j| tenants[j]).collect();
                let lo: Vec<i64> = more.iter().map(|&j| his[j]).collect();
                let hi = vec![i64::MAX; more.len()];
                let index = more.iter().map(|&j| by_hash[j]).collect();
                rows.push((c.query(&st, &[&h, &t, &lo, &hi]).await?, index));
            }
        }
        if !by_id.is_empty() {
            let (los, his) = self
                .first_candidates(&c, FilterKind::Identity, &ids)
                .await?;
            let st = c.prepare_cached(&PROOFS_BY_IDENTITY).await?;
            let keys: Vec<&[u8]> = ids.iter().map(|i| i.as_slice()).collect();
            let first = c.query(&st, &[&keys, &los, &his]).await?;
            let more = again(&first, &his);
            rows.push((first, by_id.clone()));
            if !more.is_empty() {
                let k: Vec<&[u8]> = more.iter().map(|&j| keys[j]).collect();
                let lo: Vec<i64> = more.iter().map(|&j| his[j]).collect();
                let hi = vec![i64::MAX; more.len()];
                let index = more.iter().map(|&j| by_id[j]).collect();
                rows.push((c.query(&st, &[&k, &lo, &hi]).await?, index));
            }
        }
        for (rows, index) in rows {
            for r in rows {
                // `k` is the ask's 1-based position among its kind.
                let k: i64 = r.get(17);
                let Some(&i) = usize::try_from(k - 1).ok().and_then(|k| index.get(k)) else {
                    return Err(LedgerError::Corrupt(format!(
                        "a batched proof statement answered ask {k} of {}",
                        index.len()
                    )));
                };
                out[i] = match proof_row(&r) {
                    Ok(row) => with_leaves(&c, row).await.map(Some),
                    Err(e) => Err(e),
                };
            }
        }
        let heights: Vec<u64> = out
            .iter()
            .filter_map(|a| a.as_ref().ok()?.as_ref()?.block.map(|b| b.0))
            .collect::<std::collections::BTreeSet<u64>>()
            .into_iter()
            .filter(|&h| want(h))
            .collect();
        let (blocks, block_tiles) = if heights.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                blocks_on(&c, &heights).await?,
                block_tiles_on(&**c, &heights).await?,
            )
        };
        Ok(ProofBatch {
            answers: out,
            blocks,
            block_tiles,
        })
    }

    /// `EXPLAIN (ANALYZE, BUFFERS)` of [`Ledger::proof_by_hash`]'s statement
    /// for one hash: how many pages a proof reads (bench/proofs prints it).
    pub async fn explain_proof_by_hash(&self, hash: &[u8]) -> Result<String, LedgerError> {
        let c = self.pool().get().await?;
        let (lo, hi) = self
            .first_candidates(&c, FilterKind::EvidenceHash, &[evidence_hash_key(hash)])
            .await?;
        let q = format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {}", *PROOF_BY_HASH);
        let rows = c
            .query(&q, &[&hash, &None::<String>, &lo[0], &hi[0]])
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// The sequence number each of `identities` maps to in
    /// `evidence_identity` (absent ones are left out), one primary-key
    /// lookup each (`anchord audit`).
    pub async fn identity_seqs(
        &self,
        identities: &[Digest32],
    ) -> Result<std::collections::HashMap<Digest32, u64>, LedgerError> {
        let c = self.pool().get().await?;
        let ids: Vec<&[u8]> = identities.iter().map(|i| i.as_slice()).collect();
        let rows = c
            .query(
                "SELECT identity, seq FROM evidence_identity WHERE identity = ANY($1)",
                &[&ids],
            )
            .await?;
        let mut out = std::collections::HashMap::with_capacity(rows.len());
        for r in rows {
            let id: &[u8] = r.get(0);
            let seq: i64 = r.get(1);
            let id: Digest32 = id.try_into().map_err(|_| {
                LedgerError::Corrupt(format!("evidence_identity of seq {seq}: not 32 bytes"))
            })?;
            out.insert(id, seq as u64);
        }
        Ok(out)
    }

    /// Rows in `evidence_identity` outside the seqs `head..` the ledger
    /// head has reached since (read in the same statement): `anchord
    /// audit` counts the rows of the entries below `head` it has read,
    /// and the rows beyond the head no entry can have (the writer commits
    /// an entry's row with the head that covers it); the rows of entries
    /// appended meanwhile are left to the next audit.
    pub async fn identity_count(&self, head: u64) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("SELECT count(*) FROM evidence_identity WHERE {OUTSIDE_GROWTH}");
        let n: i64 = c.query_one(&q, &[&(head as i64)]).await?.get(0);
        Ok(n as u64)
    }

    /// Of the rows [`Ledger::identity_count`] counts, up to `limit`
    /// sequence numbers of rows that point at no entry, then up to `limit`
    /// that two rows point at (`anchord audit`, when the identity rows
    /// outnumber the entries).
    pub async fn identity_strays(
        &self,
        limit: u64,
        head: u64,
    ) -> Result<(Vec<u64>, Vec<u64>), LedgerError> {
        let c = self.pool().get().await?;
        let seqs = |rows: Vec<tokio_postgres::Row>| {
            rows.iter()
                .map(|r| r.get::<_, i64>(0) as u64)
                .collect::<Vec<_>>()
        };
        let (limit, head) = (limit as i64, head as i64);
        let orphans = c
            .query(
                &format!(
                    "SELECT i.seq FROM evidence_identity i WHERE {OUTSIDE_GROWTH} \
                     AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.seq = i.seq) \
                     ORDER BY i.seq LIMIT $2"
                ),
                &[&head, &limit],
            )
            .await?;
        let doubles = c
            .query(
                &format!(
                    "SELECT seq FROM evidence_identity WHERE {OUTSIDE_GROWTH} \
                     GROUP BY seq HAVING count(*) > 1 ORDER BY seq LIMIT $2"
                ),
                &[&head, &limit],
            )
            .await?;
        Ok((seqs(orphans), seqs(doubles)))
    }

    /// Rows in `log_tiles` (the block log's stored tiles).
    pub async fn log_tile_count(&self) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM log_tiles", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// The sealed block whose range holds `seq`, if it is sealed yet.
    pub async fn block_containing(&self, seq: u64) -> Result<Option<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let row = c
            .query_opt(
                "SELECT height FROM blocks WHERE first_seq <= $1 AND last_seq >= $1 \
                 ORDER BY first_seq DESC LIMIT 1",
                &[&(seq as i64)],
            )
            .await?;
        drop(c);
        match row {
            Some(r) => self.block(r.get::<_, i64>(0) as u64).await,
            None => Ok(None),
        }
    }

    /// Blocks of heights `from..` in height order (the verifier caches
    /// headers: they never change).
    pub async fn blocks_from(&self, from: u64) -> Result<Vec<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT height FROM blocks WHERE height >= $1 ORDER BY height",
                &[&(from as i64)],
            )
            .await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let h = r.get::<_, i64>(0) as u64;
            match self.block(h).await? {
                Some(b) => out.push(b),
                None => return Err(LedgerError::Corrupt(format!("block {h} vanished"))),
            }
        }
        Ok(out)
    }

    /// Block hashes of heights `from..` in height order: the block log's
    /// leaves (the verifier caches them and asks only for new ones).
    pub async fn block_hashes_from(&self, from: u64) -> Result<Vec<Digest32>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT height, block_hash FROM blocks WHERE height >= $1 ORDER BY height",
                &[&(from as i64)],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let h: i64 = r.get(0);
            if h as u64 != from + i as u64 {
                return Err(LedgerError::Corrupt(format!("block log gap at height {h}")));
            }
            let v: Vec<u8> = r.get(1);
            out.push(v.try_into().map_err(|_| {
                LedgerError::Corrupt(format!("block {h}: block_hash is not 32 bytes"))
            })?);
        }
        Ok(out)
    }

    /// The smallest checkpoint size that some target anchored and that
    /// covers block `height` (size > height).
    pub async fn first_anchored_size_covering(
        &self,
        height: u64,
    ) -> Result<Option<u64>, LedgerError> {
        let c = self.pool().get().await?;
        let v: Option<i64> = c
            .query_one(
                "SELECT min(checkpoint_size) FROM anchor_receipts WHERE checkpoint_size > $1",
                &[&(height as i64)],
            )
            .await?
            .get(0);
        Ok(v.map(|v| v as u64))
    }

    /// For every target, its receipt of the smallest anchored checkpoint of
    /// size >= `size`, by target name.
    pub async fn anchor_receipts_from(&self, size: u64) -> Result<Vec<ReceiptRow>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT DISTINCT ON (target) target, checkpoint_size, chain_kind, chain_id, tx_id, \
                 block_number, block_hash, block_time_us, receipt::text \
                 FROM anchor_receipts WHERE checkpoint_size >= $1 ORDER BY target, checkpoint_size",
                &[&(size as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ReceiptRow {
                target: r.get(0),
                checkpoint_size: r.get::<_, i64>(1) as u64,
                chain_kind: r.get(2),
                chain_id: r.get(3),
                tx_id: r.get(4),
                block_number: r.get::<_, i64>(5) as u64,
                block_hash: r.get(6),
                block_time_us: r.get(7),
                receipt: r.get(8),
            })
            .collect())
    }

    /// Record a confirmed anchor (job + receipt, one transaction). The relay
    /// has its own path; this is for tests and tools.
    pub async fn record_anchor_receipt(&self, r: &ReceiptRow) -> Result<(), LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        let size = r.checkpoint_size as i64;
        let job: i64 = tx
            .query_one(
                "INSERT INTO anchor_jobs (target, checkpoint_size, state, idempotency_key, tx_id) \
                 VALUES ($1, $2, 'confirmed', $3, $4) RETURNING id",
                &[
                    &r.target,
                    &size,
                    &format!("{}:{}", r.target, r.checkpoint_size),
                    &r.tx_id,
                ],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO anchor_receipts (target, checkpoint_size, job_id, chain_kind, chain_id, \
             tx_id, block_number, block_hash, block_time_us, receipt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb)",
            &[
                &r.target,
                &size,
                &job,
                &r.chain_kind,
                &r.chain_id,
                &r.tx_id,
                &(r.block_number as i64),
                &r.block_hash,
                &r.block_time_us,
                &r.receipt,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
