//! Persistent tiles (migrations 0006 and 0009, `core::tiles`): the block
//! log's tiles (`log_tiles`), each block's tree above level 0
//! (`block_tiles`) and its level-0 tiles, stored as halves
//! (`block_leaf_tiles`, [`LeafTile`]). One definition of the SQL;
//! the sealer writes tiles inside its sealing transaction
//! ([`crate::LeaderSession::seal`]).

use anchord_core::Digest32;
use anchord_core::tiles::{self, Tile, TileSet};
use std::collections::HashMap;
use tokio_postgres::GenericClient;

use crate::{Ledger, LedgerError};

/// A tile with its hashes, as written.
pub type TileData = (Tile, Vec<Digest32>);

/// One stored tile row, bytes as stored (for audit and the tile API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTile {
    /// The block for a block tile, `None` for the block log.
    pub height: Option<u64>,
    pub level: u8,
    pub index: u64,
    pub bytes: Vec<u8>,
}

fn corrupt_tile(what: &str, level: i16, idx: i64, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("{what} tile ({level}, {idx}): {e}"))
}

fn to_set(rows: &[tokio_postgres::Row], what: &str) -> Result<TileSet, LedgerError> {
    let mut set = TileSet::new();
    for r in rows {
        let (level, idx, bytes): (i16, i64, &[u8]) = (r.get(0), r.get(1), r.get(2));
        let hashes = tiles::tile_hashes(bytes).map_err(|e| corrupt_tile(what, level, idx, e))?;
        set.insert(level as u8, idx as u64, hashes);
    }
    Ok(set)
}

/// The stored tiles above level 0 of blocks `heights`, on `c`, by height:
/// every height asked for, with an empty set for a block without any (as
/// [`Ledger::block_tiles`] gives it).
pub(crate) async fn block_tiles_on(
    c: &impl GenericClient,
    heights: &[u64],
) -> Result<Vec<(u64, TileSet)>, LedgerError> {
    let hs: Vec<i64> = heights.iter().map(|&h| h as i64).collect();
    let rows = c
        .query(
            "SELECT level, idx, hashes, height FROM block_tiles WHERE height = ANY($1) \
             ORDER BY height",
            &[&hs],
        )
        .await?;
    let mut sets: std::collections::HashMap<u64, TileSet> = rows
        .chunk_by(|a, b| a.get::<_, i64>(3) == b.get::<_, i64>(3))
        .map(|run| {
            let h = run[0].get::<_, i64>(3) as u64;
            to_set(run, &format!("block {h}")).map(|s| (h, s))
        })
        .collect::<Result<_, _>>()?;
    Ok(heights
        .iter()
        .map(|&h| (h, sets.remove(&h).unwrap_or_default()))
        .collect())
}

fn keys(ts: &[Tile]) -> (Vec<i16>, Vec<i64>) {
    ts.iter()
        .map(|t| (i16::from(t.level), t.index as i64))
        .unzip()
}

/// Read the block-log tiles `ts` (whatever width each has grown to).
pub(crate) async fn read_log_tiles(
    c: &impl GenericClient,
    ts: &[Tile],
) -> Result<TileSet, LedgerError> {
    if ts.is_empty() {
        return Ok(TileSet::new());
    }
    let (levels, idxs) = keys(ts);
    let rows = c
        .query(
            "SELECT t.level, t.idx, t.hashes FROM log_tiles t \
             JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, idx) \
             ON t.level = k.level AND t.idx = k.idx",
            &[&levels, &idxs],
        )
        .await?;
    to_set(&rows, "log")
}

/// Upsert block-log tiles (each one's full new contents; the schema refuses
/// anything but growth by appending).
pub(crate) async fn write_log_tiles(
    c: &impl GenericClient,
    ts: &[TileData],
) -> Result<(), LedgerError> {
    if ts.is_empty() {
        return Ok(());
    }
    let (levels, idxs) = keys(&ts.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    let bytes: Vec<Vec<u8>> = ts.iter().map(|(_, h)| tiles::tile_bytes(h)).collect();
    c.execute(
        "INSERT INTO log_tiles (level, idx, hashes) \
         SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) \
         ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes \
         WHERE log_tiles.hashes IS DISTINCT FROM EXCLUDED.hashes",
        &[&levels, &idxs, &bytes],
    )
    .await?;
    Ok(())
}

/// Insert a block's tiles (levels 1 and up).
pub(crate) async fn write_block_tiles(
    c: &impl GenericClient,
    height: u64,
    ts: &[TileData],
) -> Result<(), LedgerError> {
    if ts.is_empty() {
        return Ok(());
    }
    let (levels, idxs) = keys(&ts.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    let bytes: Vec<Vec<u8>> = ts.iter().map(|(_, h)| tiles::tile_bytes(h)).collect();
    c.execute(
        "INSERT INTO block_tiles (height, level, idx, hashes) \
         SELECT $1, * FROM unnest($2::smallint[], $3::bigint[], $4::bytea[])",
        &[&(height as i64), &levels, &idxs, &bytes],
    )
    .await?;
    Ok(())
}

/// One stored half of a block's level-0 tile (`block_leaf_tiles`, schema
/// version 9): the tile's index in the block's tree and the half.
pub type LeafTile = (u64, tiles::TileHalf);

/// The stored halves of every level-0 tile of a block over `leaves`.
pub fn leaf_tiles_of(suite: anchord_core::HashSuite, leaves: &[Digest32]) -> Vec<LeafTile> {
    leaves
        .chunks(tiles::TILE_WIDTH as usize)
        .enumerate()
        .flat_map(|(i, t)| {
            tiles::tile_halves(suite, t)
                .into_iter()
                .map(move |h| (i as u64, h))
        })
        .collect()
}

/// Insert blocks' level-0 tile halves, one statement.
pub(crate) async fn write_leaf_tiles(
    c: &impl GenericClient,
    blocks: &[(u64, &[LeafTile])],
) -> Result<(), LedgerError> {
    let n: usize = blocks.iter().map(|(_, r)| r.len()).sum();
    if n == 0 {
        return Ok(());
    }
    let (mut heights, mut idxs, mut halves) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut bytes, mut siblings) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (height, rows) in blocks {
        for (idx, h) in rows.iter() {
            heights.push(*height as i64);
            idxs.push(*idx as i64);
            halves.push(i16::from(h.half));
            bytes.push(tiles::tile_bytes(&h.hashes));
            siblings.push(h.sibling.map(|s| s.to_vec()));
        }
    }
    c.execute(
        "INSERT INTO block_leaf_tiles (height, idx, half, hashes, sibling) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::bytea[], $5::bytea[])",
        &[&heights, &idxs, &halves, &bytes, &siblings],
    )
    .await?;
    Ok(())
}

/// The tree size the stored level-0 block-log tiles cover (0 if none).
pub(crate) async fn log_tiles_size_on(c: &impl GenericClient) -> Result<u64, LedgerError> {
    let row = c
        .query_opt(
            "SELECT idx, octet_length(hashes) FROM log_tiles WHERE level = 0 \
             ORDER BY idx DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(match row {
        None => 0,
        Some(r) => {
            let (idx, len): (i64, i32) = (r.get(0), r.get(1));
            idx as u64 * tiles::TILE_WIDTH + (len as u64) / 32
        }
    })
}

/// Blocks without level-0 tile rows: (count, entries).
pub(crate) async fn leaf_tile_backlog_on(
    c: &impl GenericClient,
) -> Result<(u64, u64), LedgerError> {
    let r = c
        .query_one(
            "SELECT count(*), coalesce(sum(leaf_count), 0)::bigint FROM blocks b \
             WHERE NOT EXISTS (SELECT 1 FROM block_leaf_tiles t WHERE t.height = b.height)",
            &[],
        )
        .await?;
    Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
}

/// Block hashes of heights `from..to`, in order; fails on a gap.
pub(crate) async fn block_hashes_between_on(
    c: &impl GenericClient,
    from: u64,
    to: u64,
) -> Result<Vec<Digest32>, LedgerError> {
    let rows = c
        .query(
            "SELECT height, block_hash FROM blocks WHERE height >= $1 AND height < $2 \
             ORDER BY height",
            &[&(from as i64), &(to as i64)],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let h: i64 = r.get(0);
        if h as u64 != from + i as u64 {
            return Err(LedgerError::Corrupt(format!("block log gap at height {h}")));
        }
        let v: &[u8] = r.get(1);
        out.push(
            v.try_into().map_err(|_| {
                LedgerError::Corrupt(format!("block {h}: block_hash is not 32 bytes"))
            })?,
        );
    }
    if out.len() as u64 != to.saturating_sub(from) {
        return Err(LedgerError::Corrupt(format!(
            "blocks {from}..{to}: {} found",
            out.len()
        )));
    }
    Ok(out)
}

impl Ledger {
    /// Block-log tiles `ts`, one query.
    pub async fn log_tiles(&self, ts: &[Tile]) -> Result<TileSet, LedgerError> {
        let c = self.pool().get().await?;
        read_log_tiles(&**c, ts).await
    }

    /// One block-log tile's stored bytes (as long as it has grown).
    pub async fn log_tile_bytes(
        &self,
        level: u8,
        index: u64,
    ) -> Result<Option<Vec<u8>>, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.query_opt(
            "SELECT hashes FROM log_tiles WHERE level = $1 AND idx = $2",
            &[&i16::from(level), &(index as i64)],
        )
        .await?
        .map(|r| r.get(0)))
    }

    /// The tree size the stored block-log tiles cover.
    pub async fn log_tiles_size(&self) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        log_tiles_size_on(&**c).await
    }

    /// Every tile of block `height`'s tree above level 0 (empty for a block
    /// sealed before tiles, or of fewer than 256 entries).
    pub async fn block_tiles(&self, height: u64) -> Result<TileSet, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT level, idx, hashes FROM block_tiles WHERE height = $1",
                &[&(height as i64)],
            )
            .await?;
        to_set(&rows, &format!("block {height}"))
    }

    /// Whether block `height` has its tiles stored.
    pub async fn has_block_tiles(&self, height: u64) -> Result<bool, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.query_one(
            "SELECT EXISTS (SELECT 1 FROM block_tiles WHERE height = $1)",
            &[&(height as i64)],
        )
        .await?
        .get(0))
    }

    /// Block `height`'s stored level-0 tile halves, by tile then half
    /// (empty for a block sealed before schema version 9 and not yet
    /// back-filled).
    pub async fn block_leaf_tiles(&self, height: u64) -> Result<Vec<LeafTile>, LedgerError> {
        Ok(self
            .block_leaf_tiles_at(&[height])
            .await?
            .remove(&height)
            .unwrap_or_default())
    }

    /// [`Ledger::block_leaf_tiles`] of each of `heights`, in one statement
    /// (a height without any is left out).
    pub async fn block_leaf_tiles_at(
        &self,
        heights: &[u64],
    ) -> Result<HashMap<u64, Vec<LeafTile>>, LedgerError> {
        let c = self.pool().get().await?;
        let hs: Vec<i64> = heights.iter().map(|&h| h as i64).collect();
        let rows = c
            .query(
                "SELECT idx, half, hashes, sibling, height FROM block_leaf_tiles \
                 WHERE height = ANY($1) ORDER BY height, idx, half",
                &[&hs],
            )
            .await?;
        let mut out: HashMap<u64, Vec<LeafTile>> = HashMap::new();
        for r in &rows {
            let (idx, half, height): (i64, i16, i64) = (r.get(0), r.get(1), r.get(4));
            let bad = |e: String| {
                LedgerError::Corrupt(format!(
                    "block {height}: level-0 tile {idx} half {half}: {e}"
                ))
            };
            let hashes = tiles::tile_hashes(r.get(2)).map_err(|e| bad(e.to_string()))?;
            let sibling = r
                .get::<_, Option<&[u8]>>(3)
                .map(|s| Digest32::try_from(s).map_err(|_| bad("sibling is not 32 bytes".into())))
                .transpose()?;
            out.entry(height as u64).or_default().push((
                idx as u64,
                tiles::TileHalf {
                    half: half as u8,
                    hashes,
                    sibling,
                },
            ));
        }
        Ok(out)
    }

    /// The stored upper tiles (levels 1 and up) of each of `heights`, in
    /// one statement (an empty set for a block without).
    pub async fn block_tiles_at(
        &self,
        heights: &[u64],
    ) -> Result<Vec<(u64, TileSet)>, LedgerError> {
        let c = self.pool().get().await?;
        block_tiles_on(&**c, heights).await
    }

    /// Blocks without stored level-0 tiles (sealed before schema version 9
    /// and not yet back-filled): how many, and their entries.
    pub async fn leaf_tile_backlog(&self) -> Result<(u64, u64), LedgerError> {
        let c = self.pool().get().await?;
        leaf_tile_backlog_on(&**c).await
    }

    /// Every stored tile row, block log first (for `anchord audit`).
    pub async fn all_tiles(&self) -> Result<Vec<StoredTile>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT NULL::bigint, level, idx, hashes FROM log_tiles \
                 UNION ALL SELECT height, level, idx, hashes FROM block_tiles \
                 ORDER BY 1 NULLS FIRST, 2, 3",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StoredTile {
                height: r.get::<_, Option<i64>>(0).map(|h| h as u64),
                level: r.get::<_, i16>(1) as u8,
                index: r.get::<_, i64>(2) as u64,
                bytes: r.get(3),
            })
            .collect())
    }

    /// Block hashes of heights `from..to` (exactly those), in order.
    pub async fn block_hashes_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Digest32>, LedgerError> {
        let c = self.pool().get().await?;
        block_hashes_between_on(&**c, from, to).await
    }
}
