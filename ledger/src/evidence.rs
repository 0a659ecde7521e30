//! Appending evidence: gap-free sequence numbers, idempotency by
//! (tenant, external id), consumer positions and dead letters in the same
//! transaction as the rows they cover.

use anchord_core::{Digest32, Entry, EvidenceAlg, HashSuite, entry::identity_key};
use bytes::Bytes;
use futures::{SinkExt, pin_mut};

use crate::plan::{self, LedgerState, StoredIdentity};
use crate::{Ledger, LedgerError};

/// Where an input came from on the broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A validated piece of evidence waiting for its sequence number.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: EvidenceAlg,
    pub evidence_hash: Vec<u8>,
    /// RFC 8785 canonical JSON object, already validated.
    pub metadata: Option<String>,
    pub source: Option<Source>,
    /// The original message bytes, kept for the dead-letter record should the
    /// entry turn out to conflict with an earlier one.
    pub raw: Bytes,
}

/// An input that was rejected before reaching the ledger (validation).
#[derive(Clone, Debug)]
pub struct Rejection {
    pub source: Option<Source>,
    /// Machine-readable reason, `[a-z_]+` (see docs/kafka-message-v1.md).
    pub reason: &'static str,
    /// Human-readable detail.
    pub detail: String,
    pub payload: Bytes,
}

/// The next offset to consume on one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
}

/// Everything one ingest transaction writes.
#[derive(Clone, Debug)]
pub struct AppendBatch {
    /// The deployment's tree suite: leaf hashes are computed with it.
    pub suite: HashSuite,
    /// The consumer group whose positions `positions` are (required when
    /// `positions` is not empty).
    pub consumer_group: Option<String>,
    /// The acceptance time recorded in every entry of the batch.
    pub received_at_us: i64,
    pub entries: Vec<NewEntry>,
    pub rejections: Vec<Rejection>,
    pub positions: Vec<Position>,
}

/// What happened to one entry of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written with this sequence number.
    Accepted { seq: u64 },
    /// The same (tenant, external id, hash) was already in the ledger.
    Duplicate { seq: u64 },
    /// The same (tenant, external id) is in the ledger with another hash:
    /// recorded as a dead letter, never overwritten.
    Conflict { existing_seq: u64 },
    /// Its source offset is below the group's stored position: an earlier
    /// transaction already covered it (redelivery after a crash or rebalance).
    AlreadyCommitted,
}

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

const HEAD_LOCK: &str = "SELECT next_seq FROM ledger_head WHERE singleton FOR UPDATE";

const COPY_EVIDENCE: &str = "COPY evidence (seq, identity, tenant, external_id, hash_alg, \
     evidence_hash, metadata, received_at_us, entry_version, leaf_hash, src_topic, \
     src_partition, src_offset) FROM STDIN BINARY";

const SELECT_ENTRY: &str = "SELECT seq, tenant, external_id, hash_alg, evidence_hash, metadata, \
     received_at_us, leaf_hash, src_topic, src_partition, src_offset FROM evidence";

impl Ledger {
    /// Write a batch in one transaction: new entries get consecutive sequence
    /// numbers, duplicates and redeliveries are recognised, conflicts and
    /// rejections become dead letters, and consumer positions advance.
    ///
    /// Idempotent: replaying the same batch (same sources and positions)
    /// changes nothing and reports every item as already committed.
    pub async fn append(&self, batch: &AppendBatch) -> Result<AppendOutcome, LedgerError> {
        if !batch.positions.is_empty() && batch.consumer_group.is_none() {
            return Err(LedgerError::Config(
                "positions given without a consumer group".into(),
            ));
        }
        // Fast path: no lookup of existing identities, trusting the unique
        // index to catch the rare duplicate; then redo carefully.
        match self.append_once(batch, false).await {
            Err(LedgerError::Db(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                self.append_once(batch, true).await
            }
            other => other,
        }
    }

    /// One attempt: read the state under the locks, [`plan::plan`] the
    /// batch (every decision is there, without I/O), write the plan.
    async fn append_once(
        &self,
        batch: &AppendBatch,
        lookup_existing: bool,
    ) -> Result<AppendOutcome, LedgerError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let head: i64 = tx.query_one(HEAD_LOCK, &[]).await?.get(0);
        let mut state = LedgerState {
            next_seq: head as u64,
            ..LedgerState::default()
        };

        // Stored positions of this group, locked for the transaction.
        if let Some(group) = &batch.consumer_group {
            let rows = tx
                .query(
                    "SELECT topic, kafka_partition, next_offset FROM kafka_positions \
                     WHERE consumer_group = $1 FOR UPDATE",
                    &[group],
                )
                .await?;
            for r in rows {
                state.positions.insert((r.get(0), r.get(1)), r.get(2));
            }
        }

        // Existing rows for these identities (slow path only).
        if lookup_existing {
            let identities = plan::identities(batch);
            let ids: Vec<&[u8]> = identities.iter().map(|i| i.as_slice()).collect();
            let rows = tx
                .query(
                    "SELECT identity, seq, hash_alg, evidence_hash FROM evidence \
                     WHERE identity = ANY($1)",
                    &[&ids],
                )
                .await?;
            for r in rows {
                let id: Vec<u8> = r.get(0);
                let id: Digest32 = id
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt("identity is not 32 bytes".into()))?;
                state.existing.insert(
                    id,
                    StoredIdentity {
                        seq: r.get::<_, i64>(1) as u64,
                        hash_alg: r.get(2),
                        evidence_hash: r.get(3),
                    },
                );
            }
        }

        let plan = plan::plan(batch, &state);

        if !plan.rows.is_empty() {
            let mut buf = CopyBuffer::with_rows(plan.rows.len());
            for row in &plan.rows {
                let entry = &row.entry;
                let src = batch.entries[row.index].source.as_ref();
                buf.row(13);
                buf.i64(entry.seq as i64);
                buf.bytes(&row.identity);
                buf.bytes(entry.tenant.as_bytes());
                buf.bytes(entry.external_id.as_bytes());
                buf.i16(entry.hash_alg.id() as i16);
                buf.bytes(&entry.evidence_hash);
                buf.opt_bytes(entry.metadata.as_deref().map(str::as_bytes));
                buf.i64(entry.received_at_us);
                buf.i16(1);
                buf.bytes(&row.leaf);
                buf.opt_bytes(src.map(|s| s.topic.as_bytes()));
                match src {
                    Some(s) => {
                        buf.i32(s.partition);
                        buf.i64(s.offset);
                    }
                    None => {
                        buf.null();
                        buf.null();
                    }
                }
            }
            let sink = tx.copy_in(COPY_EVIDENCE).await?;
            pin_mut!(sink);
            sink.send(buf.finish()).await?;
            sink.finish().await?;
            tx.execute(
                "UPDATE ledger_head SET next_seq = $1 WHERE singleton",
                &[&(plan.next_seq as i64)],
            )
            .await?;
        }

        // Dead letters: validation rejections plus conflicts.
        let letters = &plan.dead_letters;
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
        let mut rejections_recorded = 0;
        if !dl_reason.is_empty() {
            rejections_recorded = tx
                .execute(
                    "INSERT INTO dead_letters (src_topic, src_partition, src_offset, reason, detail, payload) \
                     SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[], $6::bytea[]) \
                     ON CONFLICT (src_topic, src_partition, src_offset) DO NOTHING",
                    &[&dl_topic, &dl_part, &dl_off, &dl_reason, &dl_detail, &dl_payload],
                )
                .await? as usize;
        }

        if let Some(group) = &batch.consumer_group
            && !batch.positions.is_empty()
        {
            let topics: Vec<&str> = batch.positions.iter().map(|p| p.topic.as_str()).collect();
            let parts: Vec<i32> = batch.positions.iter().map(|p| p.partition).collect();
            let offs: Vec<i64> = batch.positions.iter().map(|p| p.next_offset).collect();
            tx.execute(
                "INSERT INTO kafka_positions (consumer_group, topic, kafka_partition, next_offset) \
                 SELECT $1, * FROM unnest($2::text[], $3::int4[], $4::int8[]) \
                 ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE \
                 SET next_offset = GREATEST(kafka_positions.next_offset, EXCLUDED.next_offset), \
                     updated_at = now()",
                &[group, &topics, &parts, &offs],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(AppendOutcome {
            items: plan.items,
            rejections_recorded,
            rejections_skipped: plan.rejections_skipped,
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
        let q = format!("{SELECT_ENTRY} WHERE seq = $1");
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
        let q = format!("{SELECT_ENTRY} WHERE identity = $1");
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
        let q = format!("{SELECT_ENTRY} WHERE evidence_hash = $1 ORDER BY seq");
        c.query(&q, &[&hash])
            .await?
            .iter()
            .map(stored_entry)
            .collect()
    }

    /// Entries `from..to` in sequence order.
    pub async fn entries_range(&self, from: u64, to: u64) -> Result<Vec<StoredEntry>, LedgerError> {
        let c = self.pool().get().await?;
        let q = format!("{SELECT_ENTRY} WHERE seq >= $1 AND seq < $2 ORDER BY seq");
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

fn stored_entry(r: &tokio_postgres::Row) -> Result<StoredEntry, LedgerError> {
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

/// Rows in PostgreSQL's binary COPY format, written straight into one buffer:
/// no per-value dynamic dispatch, one send per batch. Layout: the 11-byte
/// signature, flags and header-extension length, then per row a field count
/// and per field a length (-1 for NULL) and its bytes, then -1.
struct CopyBuffer(bytes::BytesMut);

impl CopyBuffer {
    fn with_rows(rows: usize) -> Self {
        let mut b = bytes::BytesMut::with_capacity(19 + rows * 320 + 2);
        b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        b.extend_from_slice(&0i32.to_be_bytes()); // flags
        b.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuffer(b)
    }
    fn row(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }
    fn field(&mut self, v: &[u8]) {
        self.0.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.0.extend_from_slice(v);
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
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
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
    fn finish(mut self) -> bytes::Bytes {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0.freeze()
    }
}
