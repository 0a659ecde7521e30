//! The decisions of [`Ledger::append`](crate::Ledger::append), apart from
//! its SQL: given a batch and what the ledger holds under the transaction's
//! locks (the head, the group's stored Kafka positions, and, on the careful
//! path, the rows already stored for the batch's identities), classify every
//! input and assign sequence numbers. No I/O; `evidence.rs` reads the state,
//! calls [`plan`] and writes what it returns.
//!
//! The rules (`ARCHITECTURE.md`, "Invariants of the data"):
//! - an input whose source offset is below its partition's stored position
//!   was covered by an earlier transaction: `AlreadyCommitted`, nothing
//!   written (rejections likewise, counted as skipped);
//! - an identity (tenant, external id) already stored, or accepted earlier in
//!   the same batch, is a `Duplicate` of it when the evidence (algorithm and
//!   hash) is the same and a `Conflict` with it otherwise; a conflict becomes
//!   a dead letter, never an overwrite;
//! - everything else is `Accepted` with the next sequence number, in batch
//!   order, gap-free from the head.

// foldhash, not SipHash: see the workspace manifest.
use foldhash::{HashMap, HashMapExt};

use anchord_core::entry::identity_key;
use anchord_core::{Digest32, EntryRef};

use crate::batch::{AppendBatch, ItemOutcome, NewEntry, Source};

/// An entry already in the ledger, as far as classifying matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredIdentity {
    pub seq: u64,
    /// `evidence.hash_alg` as stored.
    pub hash_alg: i16,
    pub evidence_hash: Vec<u8>,
}

/// What the ledger holds that the plan depends on, read under the
/// transaction's locks.
#[derive(Clone, Debug, Default)]
pub struct LedgerState {
    /// The next sequence number to hand out (`ledger_head.next_seq`).
    pub next_seq: u64,
    /// The consumer group's stored positions: (topic, partition) → the next
    /// offset to read.
    pub positions: HashMap<(String, i32), i64>,
    /// Stored entries by identity, for the batch's identities (empty on the
    /// fast path, which trusts the unique index to catch a duplicate).
    pub existing: HashMap<Digest32, StoredIdentity>,
}

impl LedgerState {
    /// Was this source covered by an earlier transaction?
    pub fn covers(&self, s: Option<&Source>) -> bool {
        Cover::new(self).covers(s)
    }
}

/// A state's stored positions keyed by borrowed (topic, partition), so that
/// checking a batch's sources allocates nothing per source (the owned key
/// of [`LedgerState::positions`] would need a `String` per lookup).
struct Cover<'s>(HashMap<(&'s str, i32), i64>);

impl<'s> Cover<'s> {
    fn new(state: &'s LedgerState) -> Self {
        Cover(
            state
                .positions
                .iter()
                .map(|((topic, partition), next)| ((topic.as_str(), *partition), *next))
                .collect(),
        )
    }

    fn covers(&self, s: Option<&Source>) -> bool {
        s.is_some_and(|s| {
            self.0
                .get(&(s.topic.as_str(), s.partition))
                .is_some_and(|next| s.offset < *next)
        })
    }
}

/// A row to write to `evidence`: the batch's entry `index` with its
/// sequence number (the entry's fields stay in the batch; [`NewRow::entry`]
/// borrows them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRow {
    /// Index of the input in `batch.entries`.
    pub index: usize,
    pub identity: Digest32,
    pub seq: u64,
    pub leaf: Digest32,
}

impl NewRow {
    /// The ledger entry this row writes, borrowed from `batch` (the batch
    /// it was planned from).
    pub fn entry<'a>(&self, batch: &'a AppendBatch) -> EntryRef<'a> {
        entry_ref(batch, &batch.entries[self.index], self.seq)
    }
}

fn entry_ref<'a>(batch: &AppendBatch, e: &'a NewEntry, seq: u64) -> EntryRef<'a> {
    EntryRef {
        seq,
        received_at_us: batch.received_at_us,
        tenant: &e.tenant,
        external_id: &e.external_id,
        hash_alg: e.hash_alg,
        evidence_hash: &e.evidence_hash,
        metadata: e.metadata.as_deref(),
    }
}

/// A row to write to `dead_letters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDeadLetter<'a> {
    pub source: Option<&'a Source>,
    pub reason: &'a str,
    pub detail: String,
    pub payload: &'a [u8],
}

/// Everything one append writes, decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<'a> {
    /// One outcome per entry, in the batch's order.
    pub items: Vec<ItemOutcome>,
    /// New entries, in sequence order (`rows[k].seq == head + k`).
    pub rows: Vec<NewRow>,
    /// The head after the batch.
    pub next_seq: u64,
    /// Validation rejections not yet covered, then conflicts in batch order.
    pub dead_letters: Vec<PlannedDeadLetter<'a>>,
    /// Rejections skipped as already committed.
    pub rejections_skipped: usize,
}

/// The identity keys of a batch's entries, in order.
pub fn identities(batch: &AppendBatch) -> Vec<Digest32> {
    batch
        .entries
        .iter()
        .map(|e| identity_key(&e.tenant, &e.external_id))
        .collect()
}

/// Classify every input of `batch` against `state` and assign sequence
/// numbers from `state.next_seq`.
pub fn plan<'a>(batch: &'a AppendBatch, state: &LedgerState) -> Plan<'a> {
    plan_with_ids(batch, state, &identities(batch))
}

/// [`plan`] with the batch's identity keys already computed (`ids[i]` is
/// entry `i`'s, as [`identities`] returns them).
pub fn plan_with_ids<'a>(
    batch: &'a AppendBatch,
    state: &LedgerState,
    ids: &[Digest32],
) -> Plan<'a> {
    let mut next = state.next_seq;
    let cover = Cover::new(state);
    let mut items = Vec::with_capacity(batch.entries.len());
    let mut rows: Vec<NewRow> = Vec::with_capacity(batch.entries.len());
    // Identity → (seq, index) of the entry accepted earlier in this batch.
    let mut in_batch: HashMap<Digest32, (u64, usize)> = HashMap::with_capacity(batch.entries.len());
    // Each row's encoding, for its leaf hash (one buffer for the batch).
    let mut scratch = Vec::new();
    for (i, e) in batch.entries.iter().enumerate() {
        if cover.covers(e.source.as_ref()) {
            items.push(ItemOutcome::AlreadyCommitted);
            continue;
        }
        let id = ids[i];
        let same = |alg: i16, hash: &[u8]| alg == e.hash_alg.id() as i16 && hash == e.evidence_hash;
        let earlier = match state.existing.get(&id) {
            Some(s) => Some((s.seq, same(s.hash_alg, &s.evidence_hash))),
            None => in_batch.get(&id).map(|&(seq, j)| {
                let first = &batch.entries[j];
                (seq, same(first.hash_alg.id() as i16, &first.evidence_hash))
            }),
        };
        match earlier {
            Some((seq, true)) => items.push(ItemOutcome::Duplicate { seq }),
            Some((seq, false)) => {
                items.push(ItemOutcome::Conflict { existing_seq: seq });
            }
            None => {
                let leaf = entry_ref(batch, e, next).leaf_hash_with(batch.suite, &mut scratch);
                items.push(ItemOutcome::Accepted { seq: next });
                in_batch.insert(id, (next, i));
                rows.push(NewRow {
                    index: i,
                    identity: id,
                    seq: next,
                    leaf,
                });
                next += 1;
            }
        }
    }

    let (dead_letters, rejections_skipped) = dead_letters(batch, state, &items);
    Plan {
        items,
        rows,
        next_seq: next,
        dead_letters,
        rejections_skipped,
    }
}

/// The dead letters a plan writes, given its outcomes (`items`, one per
/// entry): validation rejections not yet covered, then conflicts in batch
/// order; and how many rejections were skipped as already committed.
pub fn dead_letters<'a>(
    batch: &'a AppendBatch,
    state: &LedgerState,
    items: &[ItemOutcome],
) -> (Vec<PlannedDeadLetter<'a>>, usize) {
    let mut dead_letters = Vec::new();
    let mut rejections_skipped = 0;
    let cover = Cover::new(state);
    for r in &batch.rejections {
        if cover.covers(r.source.as_ref()) {
            rejections_skipped += 1;
            continue;
        }
        dead_letters.push(PlannedDeadLetter {
            source: r.source.as_ref(),
            reason: r.reason,
            detail: r.detail.clone(),
            payload: &r.payload,
        });
    }
    for (i, item) in items.iter().enumerate() {
        let ItemOutcome::Conflict { existing_seq } = *item else {
            continue;
        };
        let e = &batch.entries[i];
        dead_letters.push(PlannedDeadLetter {
            source: e.source.as_ref(),
            reason: "conflict",
            detail: format!(
                "tenant {:?} external id {:?} is already in the ledger at seq {existing_seq} \
                 with a different hash",
                e.tenant, e.external_id
            ),
            payload: &e.raw,
        });
    }
    (dead_letters, rejections_skipped)
}

/// Does a plan made against `predicted` (the state the writer expected when
/// it prepared the batch, before the previous batch had committed) equal the
/// plan against `actual` (what the transaction found under its locks)? It
/// does when the head is the same, every source is covered alike, and every
/// identity of the batch is stored alike (`ids` as [`identities`] returns
/// them; identities absent from both maps are absent from the ledger: the
/// identity's unique index checks that when the rows are written). The plan
/// reads nothing else, so then [`plan`] gives the same result for both.
pub fn prediction_holds(
    batch: &AppendBatch,
    ids: &[Digest32],
    predicted: &LedgerState,
    actual: &LedgerState,
) -> bool {
    // This runs under the head lock, with PostgreSQL waiting: equal maps
    // (the rule when the prediction holds) answer for every source and
    // identity at once, without a lookup per entry.
    let same_sources = predicted.positions == actual.positions || {
        let (p, a) = (Cover::new(predicted), Cover::new(actual));
        let same_cover = |s: Option<&Source>| p.covers(s) == a.covers(s);
        batch.entries.iter().all(|e| same_cover(e.source.as_ref()))
            && batch
                .rejections
                .iter()
                .all(|r| same_cover(r.source.as_ref()))
    };
    let same_identities = predicted.existing == actual.existing
        || ids
            .iter()
            .all(|id| predicted.existing.get(id) == actual.existing.get(id));
    predicted.next_seq == actual.next_seq && same_sources && same_identities
}

/// The state the ledger will hold once `batch`, planned against `state` into
/// `rows`, has committed: the head after its rows, the group's positions
/// advanced by the batch's, and its new identities stored.
pub fn predict_after(state: &LedgerState, batch: &AppendBatch, rows: &[NewRow]) -> LedgerState {
    let mut s = predict_head_after(state, batch, rows);
    s.existing = state.existing.clone();
    for r in rows {
        let e = &batch.entries[r.index];
        s.existing.insert(
            r.identity,
            StoredIdentity {
                seq: r.seq,
                hash_alg: e.hash_alg.id() as i16,
                evidence_hash: e.evidence_hash.clone(),
            },
        );
    }
    s
}

/// [`predict_after`] without the stored identities (`existing` left empty):
/// the head after the batch's rows and the group's positions advanced by
/// the batch's. The pipelined writer prepares the next batch against this
/// while the batch commits, and looks the next batch's identities up
/// afresh (the batch's own are in its hint's recent identities), so copying
/// the state's identities and adding the batch's would be wasted.
pub fn predict_head_after(
    state: &LedgerState,
    batch: &AppendBatch,
    rows: &[NewRow],
) -> LedgerState {
    let mut positions = state.positions.clone();
    for pos in &batch.positions {
        let n = positions
            .entry((pos.topic.clone(), pos.partition))
            .or_insert(pos.next_offset);
        *n = (*n).max(pos.next_offset);
    }
    LedgerState {
        next_seq: rows.last().map_or(state.next_seq, |r| r.seq + 1),
        positions,
        existing: HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::batch::{NewEntry, Position, Rejection};
    use anchord_core::{EvidenceAlg, HashSuite};
    use bytes::Bytes;
    use proptest::prelude::*;

    const TOPIC: &str = "evidence";

    fn entry(ext: &str, hash: u8, source: Option<(i32, i64)>) -> NewEntry {
        NewEntry {
            tenant: "t".into(),
            external_id: ext.into(),
            hash_alg: EvidenceAlg::Sha256,
            evidence_hash: vec![hash; 32],
            metadata: None,
            source: source.map(|(partition, offset)| Source {
                topic: TOPIC.into(),
                partition,
                offset,
            }),
            raw: Bytes::from(format!("raw {ext} {hash}")),
        }
    }

    fn batch(entries: Vec<NewEntry>, rejections: Vec<Rejection>) -> AppendBatch {
        // Positions as ingest sends them: past the last offset it consumed
        // on each partition.
        let mut next: HashMap<i32, i64> = HashMap::new();
        let sources = entries
            .iter()
            .filter_map(|e| e.source.as_ref())
            .chain(rejections.iter().filter_map(|r| r.source.as_ref()));
        for s in sources {
            let n = next.entry(s.partition).or_insert(0);
            *n = (*n).max(s.offset + 1);
        }
        AppendBatch {
            suite: HashSuite::Sha256,
            consumer_group: Some("g".into()),
            received_at_us: 1_764_000_000_000_000,
            entries,
            rejections,
            positions: next
                .into_iter()
                .map(|(partition, next_offset)| Position {
                    topic: TOPIC.into(),
                    partition,
                    next_offset,
                })
                .collect(),
        }
    }

    /// The state after `plan` committed: what the SQL executor writes.
    fn apply(state: &LedgerState, batch: &AppendBatch, p: &Plan) -> LedgerState {
        let mut s = state.clone();
        s.next_seq = p.next_seq;
        for r in &p.rows {
            let e = &batch.entries[r.index];
            s.existing.insert(
                r.identity,
                StoredIdentity {
                    seq: r.seq,
                    hash_alg: e.hash_alg.id() as i16,
                    evidence_hash: e.evidence_hash.clone(),
                },
            );
        }
        for pos in &batch.positions {
            let n = s
                .positions
                .entry((pos.topic.clone(), pos.partition))
                .or_insert(pos.next_offset);
            *n = (*n).max(pos.next_offset);
        }
        s
    }

    #[test]
    fn known_answer_a_small_batch() {
        let mut state = LedgerState {
            next_seq: 10,
            ..LedgerState::default()
        };
        state.existing.insert(
            identity_key("t", "old"),
            StoredIdentity {
                seq: 3,
                hash_alg: EvidenceAlg::Sha256.id() as i16,
                evidence_hash: vec![1; 32],
            },
        );
        state.positions.insert((TOPIC.into(), 0), 5);
        let b = batch(
            vec![
                entry("covered", 1, Some((0, 4))),
                entry("a", 1, Some((0, 5))),
                entry("old", 1, Some((0, 6))),
                entry("old", 2, Some((0, 7))),
                entry("a", 1, Some((1, 0))),
                entry("a", 9, None),
                entry("b", 1, None),
            ],
            vec![Rejection {
                source: Some(Source {
                    topic: TOPIC.into(),
                    partition: 0,
                    offset: 1,
                }),
                reason: "bad_json",
                detail: "x".into(),
                payload: Bytes::from_static(b"{"),
            }],
        );
        let p = plan(&b, &state);
        assert_eq!(
            p.items,
            vec![
                ItemOutcome::AlreadyCommitted,
                ItemOutcome::Accepted { seq: 10 },
                ItemOutcome::Duplicate { seq: 3 },
                ItemOutcome::Conflict { existing_seq: 3 },
                ItemOutcome::Duplicate { seq: 10 },
                ItemOutcome::Conflict { existing_seq: 10 },
                ItemOutcome::Accepted { seq: 11 },
            ]
        );
        assert_eq!(p.next_seq, 12);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].seq, 10);
        assert_eq!(p.rows[0].index, 1);
        // The borrowed encoding's leaf is the owned entry's.
        let owned = anchord_core::Entry {
            seq: 10,
            received_at_us: b.received_at_us,
            tenant: "t".into(),
            external_id: "a".into(),
            hash_alg: EvidenceAlg::Sha256,
            evidence_hash: vec![1; 32],
            metadata: None,
        };
        assert_eq!(p.rows[0].entry(&b).to_entry(), owned);
        assert_eq!(p.rows[0].leaf, owned.leaf_hash(HashSuite::Sha256));
        assert_eq!(p.rejections_skipped, 1);
        let reasons: Vec<&str> = p.dead_letters.iter().map(|d| d.reason).collect();
        assert_eq!(reasons, ["conflict", "conflict"]);
        assert_eq!(
            p.dead_letters[0].detail,
            "tenant \"t\" external id \"old\" is already in the ledger at seq 3 with a different hash"
        );
        assert_eq!(p.dead_letters[0].payload, b"raw old 2");
        assert_eq!(p.dead_letters[1].source, None);
    }

    fn arb_batch() -> impl Strategy<Value = AppendBatch> {
        // Few identities and hashes, so that duplicates and conflicts within
        // the batch are common; sources on two partitions, offsets in order.
        let item = (
            0u8..6,
            0u8..3,
            prop::option::weighted(0.8, 0i32..2),
            any::<bool>(),
        );
        prop::collection::vec(item, 0..24).prop_map(|items| {
            let mut offsets = [0i64; 2];
            let mut entries = Vec::new();
            let mut rejections = Vec::new();
            for (ext, hash, part, rejected) in items {
                let source = part.map(|p| {
                    offsets[p as usize] += 1;
                    (p, offsets[p as usize] - 1)
                });
                if rejected && ext == 0 {
                    rejections.push(Rejection {
                        source: source.map(|(partition, offset)| Source {
                            topic: TOPIC.into(),
                            partition,
                            offset,
                        }),
                        reason: "bad_json",
                        detail: "bad".into(),
                        payload: Bytes::from_static(b"{"),
                    });
                } else {
                    entries.push(entry(&format!("e{ext}"), hash, source));
                }
            }
            batch(entries, rejections)
        })
    }

    fn arb_state() -> impl Strategy<Value = LedgerState> {
        (
            0u64..1000,
            prop::collection::vec((0u8..6, 0u8..3), 0..4),
            prop::option::of(0i64..6),
        )
            .prop_map(|(head, stored, position)| {
                let mut s = LedgerState {
                    next_seq: head + stored.len() as u64,
                    ..LedgerState::default()
                };
                for (k, (ext, hash)) in stored.into_iter().enumerate() {
                    s.existing
                        .entry(identity_key("t", &format!("e{ext}")))
                        .or_insert(StoredIdentity {
                            seq: head + k as u64,
                            hash_alg: EvidenceAlg::Sha256.id() as i16,
                            evidence_hash: vec![hash; 32],
                        });
                }
                if let Some(p) = position {
                    s.positions.insert((TOPIC.into(), 0), p);
                }
                s
            })
    }

    proptest! {
        #[test]
        fn sequence_numbers_are_gap_free_from_the_head_and_never_shared(
            b in arb_batch(), state in arb_state()
        ) {
            let p = plan(&b, &state);
            prop_assert_eq!(p.items.len(), b.entries.len());
            let accepted: Vec<u64> = p.items.iter().filter_map(|i| match i {
                ItemOutcome::Accepted { seq } => Some(*seq),
                _ => None,
            }).collect();
            let want: Vec<u64> = (state.next_seq..p.next_seq).collect();
            prop_assert_eq!(&accepted, &want);
            prop_assert_eq!(p.rows.len(), accepted.len());
            for (k, r) in p.rows.iter().enumerate() {
                prop_assert_eq!(r.seq, state.next_seq + k as u64);
                prop_assert_eq!(p.items[r.index], ItemOutcome::Accepted { seq: r.seq });
                // The row's entry, copied out of the batch: its owned
                // encoding's leaf is the one planned.
                let entry = r.entry(&b).to_entry();
                let input = &b.entries[r.index];
                prop_assert_eq!(r.leaf, entry.leaf_hash(b.suite));
                prop_assert_eq!(r.identity, identity_key(&entry.tenant, &entry.external_id));
                prop_assert_eq!(entry.received_at_us, b.received_at_us);
                prop_assert_eq!((&entry.tenant, &entry.external_id), (&input.tenant, &input.external_id));
                prop_assert_eq!(&entry.evidence_hash, &input.evidence_hash);
                prop_assert_eq!(&entry.metadata, &input.metadata);
                prop_assert_eq!(entry.hash_alg, input.hash_alg);
            }
            // No stored identity is written again, and none twice.
            let mut seen = std::collections::HashSet::new();
            for r in &p.rows {
                prop_assert!(!state.existing.contains_key(&r.identity));
                prop_assert!(seen.insert(r.identity));
            }
        }

        #[test]
        fn duplicates_and_conflicts_are_classified_against_the_first_holder(
            b in arb_batch(), state in arb_state()
        ) {
            let p = plan(&b, &state);
            // A model: walk the batch, remembering who holds each identity.
            let mut holder: HashMap<Digest32, (u64, Vec<u8>)> = state
                .existing
                .iter()
                .map(|(k, v)| (*k, (v.seq, v.evidence_hash.clone())))
                .collect();
            let mut next = state.next_seq;
            let mut conflicts = 0;
            for (i, e) in b.entries.iter().enumerate() {
                let want = if state.covers(e.source.as_ref()) {
                    ItemOutcome::AlreadyCommitted
                } else {
                    let id = identity_key(&e.tenant, &e.external_id);
                    match holder.get(&id) {
                        Some((seq, h)) if *h == e.evidence_hash => ItemOutcome::Duplicate { seq: *seq },
                        Some((seq, _)) => {
                            conflicts += 1;
                            ItemOutcome::Conflict { existing_seq: *seq }
                        }
                        None => {
                            holder.insert(id, (next, e.evidence_hash.clone()));
                            next += 1;
                            ItemOutcome::Accepted { seq: next - 1 }
                        }
                    }
                };
                prop_assert_eq!(p.items[i], want, "item {}", i);
            }
            // Every conflict is a dead letter with its original bytes; every
            // uncovered rejection too; covered rejections are skipped.
            let uncovered = b.rejections.iter().filter(|r| !state.covers(r.source.as_ref())).count();
            prop_assert_eq!(p.rejections_skipped, b.rejections.len() - uncovered);
            prop_assert_eq!(p.dead_letters.len(), uncovered + conflicts);
            let conflict_letters: Vec<_> = p.dead_letters.iter().filter(|d| d.reason == "conflict").collect();
            prop_assert_eq!(conflict_letters.len(), conflicts);
            let conflict_items = b.entries.iter().zip(&p.items)
                .filter(|(_, o)| matches!(o, ItemOutcome::Conflict { .. }));
            for (d, (e, _)) in conflict_letters.iter().zip(conflict_items) {
                prop_assert_eq!(d.payload, &e.raw[..]);
                prop_assert_eq!(d.source, e.source.as_ref());
            }
        }

        #[test]
        fn replanning_a_committed_batch_writes_nothing_new(
            b in arb_batch(), state in arb_state()
        ) {
            let first = plan(&b, &state);
            let after = apply(&state, &b, &first);
            let again = plan(&b, &after);
            // A redelivered batch (after a crash between commit and the
            // Kafka offset commit, or a rebalance) takes no sequence number,
            // writes no entry, and records no dead letter that has a source
            // (the unique (topic, partition, offset) index would refuse
            // source-less ones' duplicates only by content, as before).
            prop_assert!(again.rows.is_empty());
            prop_assert_eq!(again.next_seq, after.next_seq);
            for (o1, o2) in first.items.iter().zip(&again.items) {
                match (o1, o2) {
                    (_, ItemOutcome::AlreadyCommitted) => {}
                    (ItemOutcome::Accepted { seq }, ItemOutcome::Duplicate { seq: s2 }) => prop_assert_eq!(seq, s2),
                    (ItemOutcome::Duplicate { seq }, ItemOutcome::Duplicate { seq: s2 }) => prop_assert_eq!(seq, s2),
                    (ItemOutcome::Conflict { existing_seq }, ItemOutcome::Conflict { existing_seq: s2 }) => prop_assert_eq!(existing_seq, s2),
                    (a, b) => prop_assert!(false, "{:?} then {:?}", a, b),
                }
            }
            prop_assert!(again.dead_letters.iter().all(|d| d.source.is_none()));
            // And planning it a third time changes nothing more.
            let after2 = apply(&after, &b, &again);
            prop_assert_eq!(plan(&b, &after2), again);
        }

        /// The pipelined writer plans a batch against a predicted state and
        /// writes that plan only when `prediction_holds`: then it must be
        /// exactly the plan against the state found under the locks. And a
        /// prediction that moved the head is never taken.
        #[test]
        fn a_plan_made_on_a_held_prediction_is_the_plan_on_the_actual_state(
            b in arb_batch(), predicted in arb_state(), actual in arb_state(), same in any::<bool>()
        ) {
            let ids = identities(&b);
            let actual = if same { predicted.clone() } else { actual };
            if prediction_holds(&b, &ids, &predicted, &actual) {
                prop_assert_eq!(plan(&b, &predicted), plan(&b, &actual));
            }
            if predicted.next_seq != actual.next_seq {
                prop_assert!(!prediction_holds(&b, &ids, &predicted, &actual));
            }
            prop_assert!(prediction_holds(&b, &ids, &predicted, &predicted.clone()));
            prop_assert_eq!(plan_with_ids(&b, &actual, &ids), plan(&b, &actual));
        }

        /// The next batch is predicted from the previous one's plan (as if it
        /// committed); when it did commit as planned, the prediction holds.
        #[test]
        fn predicting_from_the_previous_plan_holds_when_it_committed_as_planned(
            b1 in arb_batch(), b2 in arb_batch(), state in arb_state()
        ) {
            let p1 = plan(&b1, &state);
            let actual = apply(&state, &b1, &p1);
            let predicted = predict_after(&state, &b1, &p1.rows);
            let ids = identities(&b2);
            prop_assert!(prediction_holds(&b2, &ids, &predicted, &actual));
            prop_assert_eq!(plan(&b2, &predicted), plan(&b2, &actual));
            // The writer's hint: the same head and positions, no identities.
            let head = predict_head_after(&state, &b1, &p1.rows);
            prop_assert_eq!(head.next_seq, predicted.next_seq);
            prop_assert_eq!(&head.positions, &predicted.positions);
            prop_assert!(head.existing.is_empty());
            // Sources are covered alike through the borrowed index.
            for e in &b2.entries {
                let s = e.source.as_ref();
                let owned = s.is_some_and(|s| {
                    actual.positions.get(&(s.topic.clone(), s.partition)).is_some_and(|n| s.offset < *n)
                });
                prop_assert_eq!(actual.covers(s), owned);
            }
        }
    }
}
