//! Blocks, checkpoints and their signatures; the batcher's leadership lock;
//! the witness's compare-and-swap state.
//!
//! The sealer writes only through a [`LeaderSession`]: a dedicated
//! connection, taken out of the pool, that holds a session-level advisory
//! lock. Every seal runs on that same connection, so losing the connection
//! loses the lock *and* aborts any seal in flight; a standby that takes the
//! lock over can never interleave with a half-finished seal. The schema
//! (0001: PK on height, unique first_seq, the chaining foreign key) rejects
//! overlapping or gapped ranges on its own as well.

use anchord_core::checkpoint::BlockHeader;
use anchord_core::{Digest32, HashSuite};
use futures::StreamExt;
use tokio_postgres::Client;

use crate::{Ledger, LedgerError};

/// The block log's size: one past the highest height, 0 when none is
/// sealed.
const BLOCK_COUNT: &str = "SELECT coalesce(max(height) + 1, 0) FROM blocks";

/// Advisory lock key of the sealer role: "anchord batcher" folded into an i64.
pub const BATCHER_LOCK_KEY: i64 = 0x616e_6368_6261_7463;

/// A sealed block as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    pub header: BlockHeader,
    /// The stored `block_hash` column (which should equal `header.hash()`).
    pub block_hash: Digest32,
}

/// Who made a checkpoint signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureRole {
    Sealer,
    Witness,
}

impl SignatureRole {
    fn as_str(self) -> &'static str {
        match self {
            SignatureRole::Sealer => "sealer",
            SignatureRole::Witness => "witness",
        }
    }
    fn parse(s: &str) -> Result<Self, LedgerError> {
        match s {
            "sealer" => Ok(SignatureRole::Sealer),
            "witness" => Ok(SignatureRole::Witness),
            other => Err(LedgerError::Corrupt(format!(
                "unknown signature role {other:?}"
            ))),
        }
    }
}

/// One row of `checkpoint_signatures`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureRow {
    pub size: u64,
    pub key_name: String,
    pub key_id: [u8; 4],
    pub role: SignatureRole,
    /// The signature line's bytes after the key id (64 bytes for the
    /// sealer; 8-byte timestamp + 64 for a cosignature).
    pub signature: Vec<u8>,
    pub signed_at_us: i64,
}

/// One row of `checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Digest32,
    pub origin: String,
    /// The C2SP signed note, with every signature collected so far.
    pub signed_note: String,
    pub created_at_us: i64,
    pub timestamp_token: Option<Vec<u8>>,
    pub final_at_us: Option<i64>,
}

/// What one seal writes, in one transaction.
#[derive(Clone, Debug)]
pub struct NewSeal {
    pub block: StoredBlock,
    pub checkpoint: StoredCheckpoint,
    pub sealer_signature: SignatureRow,
    /// The block-log tiles this block changes, with their new contents.
    pub log_tiles: Vec<crate::tiles::TileData>,
    /// The block's own tree above level 0 (`core::tiles`, levels >= 1).
    pub block_tiles: Vec<crate::tiles::TileData>,
    /// The block's level-0 tiles as stored halves
    /// ([`crate::tiles::leaf_tiles_of`] of its leaves).
    pub leaf_tiles: Vec<crate::tiles::LeafTile>,
}

/// The chain tip as the sealer needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// Height the next block gets.
    pub next_height: u64,
    /// First sequence number of the next block.
    pub next_seq: u64,
    /// `prev_hash` of the next block.
    pub prev_hash: Digest32,
}

fn d32(v: Vec<u8>, what: &str) -> Result<Digest32, LedgerError> {
    v.try_into()
        .map_err(|_| LedgerError::Corrupt(format!("{what} is not 32 bytes")))
}

pub(crate) const SELECT_BLOCK: &str = "SELECT height, hash_suite, first_seq, last_seq, leaf_count, merkle_root, \
     prev_hash, block_hash, sealed_at_us FROM blocks";

/// Blocks `heights` (those that exist), on `c`.
pub(crate) async fn blocks_on(
    c: &Client,
    heights: &[u64],
) -> Result<Vec<StoredBlock>, LedgerError> {
    let hs: Vec<i64> = heights.iter().map(|&h| h as i64).collect();
    let q = format!("{SELECT_BLOCK} WHERE height = ANY($1)");
    c.query(&q, &[&hs])
        .await?
        .iter()
        .map(stored_block)
        .collect()
}

pub(crate) fn stored_block(r: &tokio_postgres::Row) -> Result<StoredBlock, LedgerError> {
    let height: i64 = r.get(0);
    let suite_id: i16 = r.get(1);
    let suite = HashSuite::from_id(suite_id as u8).ok_or_else(|| {
        LedgerError::Corrupt(format!("block {height}: unknown hash suite {suite_id}"))
    })?;
    let at = |what: &str| format!("block {height}: {what}");
    Ok(StoredBlock {
        header: BlockHeader {
            suite,
            height: height as u64,
            first_seq: r.get::<_, i64>(2) as u64,
            last_seq: r.get::<_, i64>(3) as u64,
            leaf_count: r.get::<_, i64>(4) as u64,
            merkle_root: d32(r.get(5), &at("merkle_root"))?,
            prev_hash: d32(r.get(6), &at("prev_hash"))?,
            sealed_at_us: r.get(8),
        },
        block_hash: d32(r.get(7), &at("block_hash"))?,
    })
}

const SELECT_CHECKPOINT: &str = "SELECT size, root, origin, signed_note, created_at_us, \
     timestamp_token, final_at_us FROM checkpoints";

fn stored_checkpoint(r: &tokio_postgres::Row) -> Result<StoredCheckpoint, LedgerError> {
    let size: i64 = r.get(0);
    Ok(StoredCheckpoint {
        size: size as u64,
        root: d32(r.get(1), &format!("checkpoint {size}: root"))?,
        origin: r.get(2),
        signed_note: r.get(3),
        created_at_us: r.get(4),
        timestamp_token: r.get(5),
        final_at_us: r.get(6),
    })
}

/// Leaf hashes of `from..to` in sequence order, through `COPY … BINARY`
/// (one 38-byte tuple per row, no per-row allocation on the client); fails
/// unless exactly the rows `from..to` exist.
pub(crate) async fn leaf_hashes_on(
    c: &Client,
    from: u64,
    to: u64,
) -> Result<Vec<Digest32>, LedgerError> {
    if to <= from {
        return Ok(Vec::new());
    }
    let q = format!(
        "COPY (SELECT seq, leaf_hash FROM evidence WHERE seq >= {from} AND seq < {to} ORDER BY seq) \
         TO STDOUT (FORMAT binary)"
    );
    let stream = c.copy_out(q.as_str()).await?;
    futures::pin_mut!(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(((to - from) as usize) * 38 + 32);
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
    }
    parse_copy_leaf_hashes(&buf, from, to)
}

/// Parse PostgreSQL's binary COPY format for rows `(int8 seq, bytea(32))`.
fn parse_copy_leaf_hashes(buf: &[u8], from: u64, to: u64) -> Result<Vec<Digest32>, LedgerError> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let corrupt = |s: String| LedgerError::Corrupt(format!("leaf hashes {from}..{to}: {s}"));
    if buf.len() < 19 || &buf[..11] != SIGNATURE {
        return Err(corrupt("not a binary COPY stream".into()));
    }
    let ext = u32::from_be_bytes(buf[15..19].try_into().expect("4 bytes")) as usize;
    let mut p = 19 + ext;
    let want = (to - from) as usize;
    let mut out = Vec::with_capacity(want);
    let mut expect_seq = from;
    loop {
        let Some(fields) = buf.get(p..p + 2) else {
            return Err(corrupt("truncated".into()));
        };
        let fields = i16::from_be_bytes([fields[0], fields[1]]);
        p += 2;
        if fields == -1 {
            break;
        }
        // 2 fields: int4 len 8, int8 seq, int4 len 32, 32 bytes.
        let row = buf
            .get(p..p + 4 + 8 + 4 + 32)
            .filter(|_| fields == 2)
            .ok_or_else(|| corrupt("bad tuple".into()))?;
        if row[..4] != 8i32.to_be_bytes() || row[12..16] != 32i32.to_be_bytes() {
            return Err(corrupt(format!(
                "seq {expect_seq}: leaf hash is not 32 bytes"
            )));
        }
        let seq = u64::from_be_bytes(row[4..12].try_into().expect("8 bytes"));
        if seq != expect_seq {
            return Err(corrupt(format!(
                "gap: expected seq {expect_seq}, found {seq}"
            )));
        }
        out.push(row[16..48].try_into().expect("32 bytes"));
        expect_seq += 1;
        p += 48;
    }
    if out.len() != want {
        return Err(corrupt(format!("{} rows, expected {want}", out.len())));
    }
    Ok(out)
}

impl Ledger {
    /// A connection taken out of the pool for good, to hold the sealer's
    /// advisory lock ([`LeaderSession::try_acquire`]). A standby keeps one
    /// and retries on it.
    pub async fn leader_session(&self) -> Result<LeaderSession, LedgerError> {
        let obj = self.pool().get().await?;
        Ok(LeaderSession {
            client: deadpool_postgres::Object::take(obj),
            held: false,
        })
    }

    /// Every block, by height (fine while the chain is in the millions).
    pub async fn blocks(&self) -> Result<Vec<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_BLOCK} ORDER BY height");
        c.query(&q, &[]).await?.iter().map(stored_block).collect()
    }

    /// The number of blocks (the block log's size): one past the highest
    /// height, 0 when none is sealed.
    pub async fn block_count(&self) -> Result<u64, LedgerError> {
        let c = self.pool().get().await?;
        let n: i64 = c.query_one(BLOCK_COUNT, &[]).await?.get(0);
        Ok(n as u64)
    }

    /// Up to `limit` sizes of checkpoints larger than the block log, read
    /// in the same statement: checkpoints no block has (the sealer commits
    /// each block with its checkpoint).
    pub async fn checkpoints_beyond_blocks(&self, limit: u64) -> Result<Vec<u64>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "SELECT size FROM checkpoints WHERE size > ({BLOCK_COUNT}) ORDER BY size LIMIT $1"
        );
        Ok(c.query(&q, &[&(limit as i64)])
            .await?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u64)
            .collect())
    }

    /// The headers and stored upper tiles (levels 1 and up; an empty set
    /// for a block without) of blocks `heights`: two statements on one
    /// connection. The verifier's warm-up reads the newest blocks' so.
    pub async fn blocks_with_tiles(
        &self,
        heights: &[u64],
    ) -> Result<(Vec<StoredBlock>, Vec<(u64, anchord_core::tiles::TileSet)>), LedgerError> {
        let c = self.pool().get().await?;
        Ok((
            blocks_on(&c, heights).await?,
            crate::tiles::block_tiles_on(&**c, heights).await?,
        ))
    }

    /// The block at `height`.
    pub async fn block(&self, height: u64) -> Result<Option<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_BLOCK} WHERE height = $1");
        c.query_opt(&q, &[&(height as i64)])
            .await?
            .map(|r| stored_block(&r))
            .transpose()
    }

    /// Stored leaf hashes of sequence numbers `from..to`, in order.
    pub async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Digest32>, LedgerError> {
        let c = self.pool().get().await?;
        leaf_hashes_on(&c, from, to).await
    }

    /// Every checkpoint, by size.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_CHECKPOINT} ORDER BY size");
        c.query(&q, &[])
            .await?
            .iter()
            .map(stored_checkpoint)
            .collect()
    }

    /// The checkpoint of `size`.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_CHECKPOINT} WHERE size = $1");
        c.query_opt(&q, &[&(size as i64)])
            .await?
            .map(|r| stored_checkpoint(&r))
            .transpose()
    }

    /// The largest checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_CHECKPOINT} ORDER BY size DESC LIMIT 1");
        c.query_opt(&q, &[])
            .await?
            .map(|r| stored_checkpoint(&r))
            .transpose()
    }

    /// Up to `limit` blocks of heights `from..`, by height (`anchord
    /// audit` walks the chain a page at a time, in constant memory).
    pub async fn blocks_page(
        &self,
        from: u64,
        limit: u64,
    ) -> Result<Vec<StoredBlock>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_BLOCK} WHERE height >= $1 ORDER BY height LIMIT $2");
        c.query(&q, &[&(from as i64), &(limit as i64)])
            .await?
            .iter()
            .map(stored_block)
            .collect()
    }

    /// Up to `limit` checkpoints of sizes `from..`, by size.
    pub async fn checkpoints_page(
        &self,
        from: u64,
        limit: u64,
    ) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_CHECKPOINT} WHERE size >= $1 ORDER BY size LIMIT $2");
        c.query(&q, &[&(from as i64), &(limit as i64)])
            .await?
            .iter()
            .map(stored_checkpoint)
            .collect()
    }

    /// Every signature row, by checkpoint size then key name.
    pub async fn checkpoint_signatures(&self) -> Result<Vec<SignatureRow>, LedgerError> {
        self.checkpoint_signatures_between(0, i64::MAX as u64).await
    }

    /// The signature rows of checkpoints of sizes `from..=to`, by size then
    /// key name.
    pub async fn checkpoint_signatures_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<SignatureRow>, LedgerError> {
        let c = self.pool().get().await?;
        let rows = c
            .query(
                "SELECT size, key_name, key_id, role, signature, signed_at_us \
                 FROM checkpoint_signatures WHERE size >= $1 AND size <= $2 \
                 ORDER BY size, key_name",
                &[&(from as i64), &(to.min(i64::MAX as u64) as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let size: i64 = r.get(0);
                let key_id: Vec<u8> = r.get(2);
                let role: String = r.get(3);
                Ok(SignatureRow {
                    size: size as u64,
                    key_name: r.get(1),
                    key_id: key_id.try_into().map_err(|_| {
                        LedgerError::Corrupt(format!("checkpoint {size}: key id is not 4 bytes"))
                    })?,
                    role: SignatureRole::parse(&role)?,
                    signature: r.get(4),
                    signed_at_us: r.get(5),
                })
            })
            .collect()
    }

    /// Record witness cosignatures on checkpoint `size`, replace its signed
    /// note with one carrying them, and mark it final if `final_at_us`.
    /// Idempotent per (size, key name).
    pub async fn add_cosignatures(
        &self,
        size: u64,
        rows: &[SignatureRow],
        signed_note: &str,
        final_at_us: Option<i64>,
    ) -> Result<(), LedgerError> {
        let mut c = self.pool().get().await?;
        let tx = c.transaction().await?;
        for r in rows {
            tx.execute(
                "INSERT INTO checkpoint_signatures (size, key_name, key_id, role, signature, signed_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (size, key_name) DO NOTHING",
                &[
                    &(size as i64),
                    &r.key_name,
                    &r.key_id.as_slice(),
                    &r.role.as_str(),
                    &r.signature,
                    &r.signed_at_us,
                ],
            )
            .await?;
        }
        tx.execute(
            "UPDATE checkpoints SET signed_note = $2, \
             final_at_us = COALESCE(final_at_us, $3) WHERE size = $1",
            &[&(size as i64), &signed_note, &final_at_us],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Attach an RFC 3161 timestamp token to checkpoint `size`.
    pub async fn set_timestamp_token(&self, size: u64, token: &[u8]) -> Result<(), LedgerError> {
        let c = self.pool().get().await?;
        c.execute(
            "UPDATE checkpoints SET timestamp_token = $2 WHERE size = $1",
            &[&(size as i64), &token],
        )
        .await?;
        Ok(())
    }

    /// The newest non-final checkpoint, if any.
    pub async fn latest_unfinal_checkpoint(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_CHECKPOINT} WHERE final_at_us IS NULL ORDER BY size DESC LIMIT 1");
        c.query_opt(&q, &[])
            .await?
            .map(|r| stored_checkpoint(&r))
            .transpose()
    }

    /// The first `received_at_us` of entry `seq`.
    pub async fn received_at(&self, seq: u64) -> Result<Option<i64>, LedgerError> {
        let c = self.pool().get().await?;
        Ok(c.query_opt(
            "SELECT received_at_us FROM evidence WHERE seq = $1",
            &[&(seq as i64)],
        )
        .await?
        .map(|r| r.get(0)))
    }
}

/// The sealer's dedicated connection, holding the advisory lock. Dropping
/// it closes the connection, which releases the lock.
pub struct LeaderSession {
    client: deadpool_postgres::ClientWrapper,
    held: bool,
}

impl std::fmt::Debug for LeaderSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderSession")
            .field("closed", &self.client.is_closed())
            .field("held", &self.held)
            .finish()
    }
}

impl LeaderSession {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn client_mut(&mut self) -> &mut deadpool_postgres::ClientWrapper {
        &mut self.client
    }

    /// Try the session-level advisory lock; true once this session holds it.
    pub async fn try_acquire(&mut self) -> Result<bool, LedgerError> {
        if !self.held {
            self.held = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&BATCHER_LOCK_KEY])
                .await?
                .get(0);
        }
        Ok(self.held)
    }

    /// Give the lock up now. Dropping the session also releases it, but
    /// only once the server has noticed the closed connection: a one-shot
    /// leader (`seal_once`) releases it here, so the next one (another
    /// command, or the next call) can take it at once.
    pub async fn release(mut self) -> Result<(), LedgerError> {
        if std::mem::take(&mut self.held) {
            self.client
                .query_one("SELECT pg_advisory_unlock($1)", &[&BATCHER_LOCK_KEY])
                .await?;
        }
        Ok(())
    }

    /// Whether this session holds the lock (as far as it knows).
    pub fn is_held(&self) -> bool {
        self.held && !self.client.is_closed()
    }

    /// A round trip on the lock's connection: fails once the connection
    /// (and so the lock) is gone.
    pub async fn check(&self) -> Result<(), LedgerError> {
        self.client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Where the chain stands.
    pub async fn tip(&self) -> Result<Tip, LedgerError> {
        let q = format!("{SELECT_BLOCK} ORDER BY height DESC LIMIT 1");
        Ok(match self.client.query_opt(&q, &[]).await? {
            None => Tip {
                next_height: 0,
                next_seq: 0,
                prev_hash: anchord_core::checkpoint::GENESIS_PREV_HASH,
            },
            Some(r) => {
                let b = stored_block(&r)?;
                Tip {
                    next_height: b.header.height + 1,
                    next_seq: b.header.last_seq + 1,
                    prev_hash: b.block_hash,
                }
            }
        })
    }

    /// The ledger head: the next sequence number ingest will hand out.
    pub async fn next_seq(&self) -> Result<u64, LedgerError> {
        let n: i64 = self
            .client
            .query_one("SELECT next_seq FROM ledger_head", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    /// Leaf hashes of `from..to`.
    pub async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Digest32>, LedgerError> {
        leaf_hashes_on(&self.client, from, to).await
    }

    /// `received_at_us` of entry `seq`.
    pub async fn received_at(&self, seq: u64) -> Result<Option<i64>, LedgerError> {
        Ok(self
            .client
            .query_opt(
                "SELECT received_at_us FROM evidence WHERE seq = $1",
                &[&(seq as i64)],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// Write a block, its checkpoint and the sealer's signature in one
    /// transaction on the lock's connection.
    pub async fn seal(&mut self, s: &NewSeal) -> Result<(), LedgerError> {
        if !self.held {
            return Err(LedgerError::Config(
                "sealing without holding the sealer lock".into(),
            ));
        }
        let h = &s.block.header;
        let cp = &s.checkpoint;
        let sig = &s.sealer_signature;
        let tx = self.client.transaction().await?;
        tx.execute(
            "INSERT INTO blocks (height, hash_suite, first_seq, last_seq, leaf_count, merkle_root, \
             prev_hash, block_hash, sealed_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &(h.height as i64),
                &(h.suite.id() as i16),
                &(h.first_seq as i64),
                &(h.last_seq as i64),
                &(h.leaf_count as i64),
                &h.merkle_root.as_slice(),
                &h.prev_hash.as_slice(),
                &s.block.block_hash.as_slice(),
                &h.sealed_at_us,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO checkpoints (size, root, origin, signed_note, created_at_us, final_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &(cp.size as i64),
                &cp.root.as_slice(),
                &cp.origin,
                &cp.signed_note,
                &cp.created_at_us,
                &cp.final_at_us,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO checkpoint_signatures (size, key_name, key_id, role, signature, signed_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &(cp.size as i64),
                &sig.key_name,
                &sig.key_id.as_slice(),
                &sig.role.as_str(),
                &sig.signature,
                &sig.signed_at_us,
            ],
        )
        .await?;
        crate::tiles::write_block_tiles(&*tx, h.height, &s.block_tiles).await?;
        crate::tiles::write_leaf_tiles(&*tx, &[(h.height, &s.leaf_tiles)]).await?;
        crate::tiles::write_log_tiles(&*tx, &s.log_tiles).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Block headers read for the block log (its tiles' entries).
impl Ledger {
    /// Block headers' canonical encodings for heights `from..to` (the block
    /// log's entries), in order.
    pub async fn block_headers_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<anchord_core::checkpoint::BlockHeader>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!(
            "{} WHERE height >= $1 AND height < $2 ORDER BY height",
            SELECT_BLOCK
        );
        let rows = c.query(&q, &[&(from as i64), &(to as i64)]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let b = stored_block(r)?;
            if b.header.height != from + i as u64 {
                return Err(LedgerError::Corrupt(format!(
                    "block log gap at height {}",
                    from + i as u64
                )));
            }
            out.push(b.header);
        }
        Ok(out)
    }
}

/// The block log's tiles, on the sealer lock's connection.
impl LeaderSession {
    /// Block-log tiles `ts`, on the lock's connection.
    pub async fn log_tiles(
        &self,
        ts: &[anchord_core::tiles::Tile],
    ) -> Result<anchord_core::tiles::TileSet, LedgerError> {
        crate::tiles::read_log_tiles(self.client(), ts).await
    }

    /// The tree size the stored block-log tiles cover.
    pub async fn log_tiles_size(&self) -> Result<u64, LedgerError> {
        crate::tiles::log_tiles_size_on(self.client()).await
    }

    /// Block hashes of heights `from..to`.
    pub async fn block_hashes_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Digest32>, LedgerError> {
        crate::tiles::block_hashes_between_on(self.client(), from, to).await
    }

    /// Up to `limit` blocks of heights `from..` without stored level-0
    /// tiles (sealed before schema version 9), by height.
    pub async fn blocks_without_leaf_tiles(
        &self,
        from: u64,
        limit: u64,
    ) -> Result<Vec<StoredBlock>, LedgerError> {
        blocks_without_leaf_tiles_on(self.client(), from, limit).await
    }

    /// Blocks without stored level-0 tiles: (count, entries).
    pub async fn leaf_tile_backlog(&self) -> Result<(u64, u64), LedgerError> {
        crate::tiles::leaf_tile_backlog_on(self.client()).await
    }

    /// Write the level-0 tiles of blocks sealed before schema version 9
    /// (the batcher's back-fill), in one transaction.
    pub async fn write_leaf_tiles(
        &mut self,
        blocks: &[(u64, Vec<crate::tiles::LeafTile>)],
    ) -> Result<(), LedgerError> {
        if !self.is_held() {
            return Err(LedgerError::Config(
                "writing tiles without holding the sealer lock".into(),
            ));
        }
        let rows: Vec<(u64, &[crate::tiles::LeafTile])> =
            blocks.iter().map(|(h, r)| (*h, r.as_slice())).collect();
        let tx = self.client_mut().transaction().await?;
        crate::tiles::write_leaf_tiles(&*tx, &rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Write block-log tiles computed for blocks sealed before tiles
    /// existed (the batcher's catch-up), in one transaction.
    pub async fn write_log_tiles(
        &mut self,
        ts: &[crate::tiles::TileData],
    ) -> Result<(), LedgerError> {
        if !self.is_held() {
            return Err(LedgerError::Config(
                "writing tiles without holding the sealer lock".into(),
            ));
        }
        let tx = self.client_mut().transaction().await?;
        crate::tiles::write_log_tiles(&*tx, ts).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Up to `limit` blocks of heights `from..` that have no level-0 tile rows,
/// by height.
async fn blocks_without_leaf_tiles_on(
    c: &impl tokio_postgres::GenericClient,
    from: u64,
    limit: u64,
) -> Result<Vec<StoredBlock>, LedgerError> {
    let q = format!(
        "{} b WHERE b.height >= $1 AND NOT EXISTS \
         (SELECT 1 FROM block_leaf_tiles t WHERE t.height = b.height) ORDER BY b.height LIMIT $2",
        SELECT_BLOCK
    );
    c.query(&q, &[&(from as i64), &(limit as i64)])
        .await?
        .iter()
        .map(stored_block)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_stream(rows: &[(u64, [u8; 32])]) -> Vec<u8> {
        let mut b = b"PGCOPY\n\xff\r\n\0".to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        for (seq, h) in rows {
            b.extend_from_slice(&2i16.to_be_bytes());
            b.extend_from_slice(&8i32.to_be_bytes());
            b.extend_from_slice(&seq.to_be_bytes());
            b.extend_from_slice(&32i32.to_be_bytes());
            b.extend_from_slice(h);
        }
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b
    }

    #[test]
    fn copy_parser_checks_order_gaps_and_count() {
        let ok = copy_stream(&[(5, [1; 32]), (6, [2; 32])]);
        assert_eq!(
            parse_copy_leaf_hashes(&ok, 5, 7).unwrap(),
            vec![[1; 32], [2; 32]]
        );
        let gap = copy_stream(&[(5, [1; 32]), (7, [2; 32])]);
        assert!(parse_copy_leaf_hashes(&gap, 5, 7).is_err());
        assert!(parse_copy_leaf_hashes(&ok, 5, 8).is_err(), "missing row");
        assert!(parse_copy_leaf_hashes(&ok[..ok.len() - 3], 5, 7).is_err());
    }
}
