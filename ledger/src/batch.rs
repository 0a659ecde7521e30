//! What one ingest transaction carries, and what became of each entry: pure
//! data shared by the append plan (`plan.rs`, no I/O) and its execution
//! (`evidence.rs`), so neither imports the other's types.

use anchord_core::{EvidenceAlg, HashSuite};
use bytes::Bytes;

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
