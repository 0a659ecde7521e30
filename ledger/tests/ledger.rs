//! The ledger against a real PostgreSQL: one fresh database per test.

use anchord_core::tiles::Level0;
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ledger::{
    AppendBatch, ItemOutcome, LedgerError, MIGRATIONS, NewEntry, Position, Rejection, Source,
};
use anchord_testkit::TestDb;
use bytes::Bytes;

fn entry(tenant: &str, ext: &str, hash_byte: u8, offset: Option<i64>) -> NewEntry {
    NewEntry {
        tenant: tenant.into(),
        external_id: ext.into(),
        hash_alg: EvidenceAlg::Sha256,
        evidence_hash: vec![hash_byte; 32],
        metadata: None,
        source: offset.map(|o| Source {
            topic: "t".into(),
            partition: 0,
            offset: o,
        }),
        raw: Bytes::from(format!("raw {tenant}/{ext}")),
    }
}

fn batch(entries: Vec<NewEntry>) -> AppendBatch {
    AppendBatch {
        suite: HashSuite::Sha256,
        consumer_group: None,
        received_at_us: 1_700_000_000_000_000,
        entries,
        rejections: vec![],
        positions: vec![],
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let db = TestDb::new().await;
    let ledger = db.ledger();
    let mut runs = Vec::new();
    for _ in 0..4 {
        let l = ledger.clone();
        runs.push(tokio::spawn(
            async move { l.migrate().await.map(|v| v.len()) },
        ));
    }
    let mut applied = 0;
    for r in runs {
        applied += r.await.unwrap().unwrap();
    }
    assert_eq!(
        applied,
        MIGRATIONS.len(),
        "each migration applied exactly once"
    );
    assert!(ledger.migrate().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_changed_migration_is_refused_with_both_checksums() {
    let (db, ledger) = TestDb::migrated().await;
    db.client()
        .await
        .execute(
            "UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = ledger.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("migration 1 (init)") && err.contains("deadbeef"),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let (db, ledger) = TestDb::migrated().await;
    db.client()
        .await
        .execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')",
            &[],
        )
        .await
        .unwrap();
    let err = ledger.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("9999") && err.contains("newer than this binary"),
        "{err}"
    );
}

#[tokio::test]
async fn the_hash_suite_is_pinned_on_first_use() {
    let (_db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(HashSuite::Sm3).await.unwrap();
    ledger.ensure_suite(HashSuite::Sm3).await.unwrap();
    match ledger.ensure_suite(HashSuite::Sha256).await {
        Err(LedgerError::SuiteMismatch { stored, configured }) => {
            assert_eq!((stored.as_str(), configured.as_str()), ("sm3", "sha256"));
        }
        other => panic!("expected a suite mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn sequence_numbers_are_gap_free_and_leaves_commit_to_the_entry() {
    let (_db, ledger) = TestDb::migrated().await;
    let a = ledger
        .append(&batch(vec![
            entry("b1", "x1", 1, None),
            entry("b1", "x2", 2, None),
        ]))
        .await;
    let a = a.unwrap();
    assert_eq!(
        a.items,
        vec![
            ItemOutcome::Accepted { seq: 0 },
            ItemOutcome::Accepted { seq: 1 }
        ]
    );
    let b = ledger
        .append(&batch(vec![entry("b2", "x1", 3, None)]))
        .await
        .unwrap();
    assert_eq!(b.items, vec![ItemOutcome::Accepted { seq: 2 }]);
    assert_eq!(ledger.next_seq().await.unwrap(), 3);

    let stored = ledger.entry_by_seq(1).await.unwrap().unwrap();
    assert_eq!(stored.entry.external_id, "x2");
    assert_eq!(stored.leaf_hash, stored.entry.leaf_hash(HashSuite::Sha256));
    stored.entry.validate().unwrap();
    let by_id = ledger.entry_by_identity("b2", "x1").await.unwrap().unwrap();
    assert_eq!(by_id.entry.seq, 2);
    let by_hash = ledger.entries_by_hash(&[3; 32]).await.unwrap();
    assert_eq!(by_hash.len(), 1);
    assert!(ledger.entries_by_hash(&[9; 32]).await.unwrap().is_empty());
}

#[tokio::test]
async fn resubmission_is_a_duplicate_and_a_different_hash_is_a_recorded_conflict() {
    let (_db, ledger) = TestDb::migrated().await;
    ledger
        .append(&batch(vec![entry("b1", "loan-1", 1, None)]))
        .await
        .unwrap();
    let out = ledger
        .append(&batch(vec![
            entry("b1", "loan-1", 1, Some(10)), // same key, same hash: duplicate
            entry("b1", "loan-1", 7, Some(11)), // same key, other hash: conflict
            entry("b1", "loan-2", 2, Some(12)), // new
            entry("b1", "loan-2", 2, Some(13)), // duplicate inside the batch
            entry("b1", "loan-2", 8, Some(14)), // conflict inside the batch
        ]))
        .await
        .unwrap();
    assert_eq!(
        out.items,
        vec![
            ItemOutcome::Duplicate { seq: 0 },
            ItemOutcome::Conflict { existing_seq: 0 },
            ItemOutcome::Accepted { seq: 1 },
            ItemOutcome::Duplicate { seq: 1 },
            ItemOutcome::Conflict { existing_seq: 1 },
        ]
    );
    assert_eq!(
        ledger.next_seq().await.unwrap(),
        2,
        "no sequence number was burnt"
    );
    let dl = ledger.unpublished_dead_letters(10).await.unwrap();
    assert_eq!(dl.len(), 2);
    assert!(dl.iter().all(|d| d.reason == "conflict"));
    assert_eq!(dl[0].payload, b"raw b1/loan-1");
    assert_eq!(dl[0].source.as_ref().unwrap().offset, 11);
    assert!(dl[0].detail.contains("seq 0"), "{}", dl[0].detail);
    // The stored entry was not overwritten.
    let kept = ledger
        .entry_by_identity("b1", "loan-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.entry.evidence_hash, vec![1; 32]);

    ledger
        .mark_dead_letters_published(&[dl[0].id])
        .await
        .unwrap();
    assert_eq!(ledger.unpublished_dead_letters(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn replaying_a_batch_with_its_positions_changes_nothing() {
    let (_db, ledger) = TestDb::migrated().await;
    let mut b = batch(vec![
        entry("b1", "a", 1, Some(0)),
        entry("b1", "b", 2, Some(2)),
    ]);
    b.consumer_group = Some("g".into());
    b.rejections = vec![Rejection {
        source: Some(Source {
            topic: "t".into(),
            partition: 0,
            offset: 1,
        }),
        reason: "malformed_json",
        detail: "expected value at line 1".into(),
        payload: Bytes::from_static(b"{nope"),
    }];
    b.positions = vec![Position {
        topic: "t".into(),
        partition: 0,
        next_offset: 3,
    }];
    let first = ledger.append(&b).await.unwrap();
    assert_eq!(first.accepted(), 2);
    assert_eq!(first.rejections_recorded, 1);

    let again = ledger.append(&b).await.unwrap();
    assert_eq!(again.items, vec![ItemOutcome::AlreadyCommitted; 2]);
    assert_eq!(
        (again.rejections_recorded, again.rejections_skipped),
        (0, 1)
    );
    assert_eq!(ledger.next_seq().await.unwrap(), 2);
    assert_eq!(
        ledger.dead_letter_counts().await.unwrap(),
        vec![("malformed_json".into(), 1)]
    );

    // A stale writer (rebalanced away) cannot move the position backwards.
    let mut stale = batch(vec![]);
    stale.consumer_group = Some("g".into());
    stale.positions = vec![Position {
        topic: "t".into(),
        partition: 0,
        next_offset: 1,
    }];
    ledger.append(&stale).await.unwrap();
    assert_eq!(ledger.positions("g", "t").await.unwrap()[0].next_offset, 3);
}

#[tokio::test]
async fn concurrent_appenders_never_share_or_skip_a_sequence_number() {
    let (_db, ledger) = TestDb::migrated().await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let l = ledger.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..10 {
                let es = (0..25)
                    .map(|i| entry("bank", &format!("w{w}-b{b}-{i}"), 1, None))
                    .collect();
                l.append(&batch(es)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = ledger.next_seq().await.unwrap();
    assert_eq!(n, 4 * 10 * 25);
    let all = ledger.entries_range(0, n).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e.entry.seq).collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_schema_refuses_gapped_overlapping_or_dangling_blocks() {
    let (db, ledger) = TestDb::migrated().await;
    let es = (0..10)
        .map(|i| entry("bank", &format!("e{i}"), 1, None))
        .collect();
    ledger.append(&batch(es)).await.unwrap();
    let c = db.client().await;
    let insert = |h: i64, first: i64, last: i64| {
        let c = &c;
        async move {
            let hash = vec![h as u8 + 1; 32];
            c.execute(
                "INSERT INTO blocks (height, hash_suite, first_seq, last_seq, leaf_count, merkle_root, \
                 prev_hash, block_hash, sealed_at_us) VALUES ($1, 1, $2, $3, $4, $5, $5, $6, 0)",
                &[&h, &first, &last, &(last - first + 1), &vec![0u8; 32], &hash],
            )
            .await
        }
    };
    assert!(
        insert(0, 1, 3).await.is_err(),
        "block 0 must start at seq 0"
    );
    insert(0, 0, 3).await.unwrap();
    assert!(insert(1, 5, 6).await.is_err(), "gap between blocks");
    assert!(insert(1, 3, 6).await.is_err(), "overlap between blocks");
    assert!(insert(2, 4, 6).await.is_err(), "height gap");
    assert!(
        insert(1, 4, 12).await.is_err(),
        "range past the last evidence"
    );
    insert(1, 4, 9).await.unwrap();
}

#[tokio::test]
async fn summary_counts_entries_and_dead_letters() {
    let (_db, ledger) = TestDb::migrated().await;
    assert_eq!(
        ledger.summary().await.unwrap(),
        anchord_ledger::Summary::default()
    );
    let mut b = batch(vec![
        entry("b1", "a", 1, Some(0)),
        entry("b1", "a", 2, Some(1)),
    ]);
    b.consumer_group = Some("g".into());
    ledger.append(&b).await.unwrap();
    let s = ledger.summary().await.unwrap();
    assert_eq!(
        (
            s.entries,
            s.blocks,
            s.dead_letters,
            s.dead_letters_unpublished
        ),
        (1, 0, 1, 1)
    );
}

#[tokio::test]
async fn a_read_only_ledger_refuses_writes_and_names_the_schema_it_finds() {
    use anchord_ledger::{Ledger, LedgerError};
    // An empty database: the reader migrates nothing and says what to run.
    let db = TestDb::new().await;
    let reader = Ledger::connect_read_only(&db.config()).unwrap();
    let err = reader
        .check_schema(HashSuite::Sha256)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing") && err.contains("anchord migrate"),
        "{err}"
    );
    assert!(
        reader.migrate().await.is_err(),
        "a read-only session migrated"
    );
    let tables: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);

    // Migrated: the check passes; even as the superuser the session
    // refuses a write (SQLSTATE 25006, read_only_sql_transaction).
    db.ledger().migrate().await.unwrap();
    reader.check_schema(HashSuite::Sha256).await.unwrap();
    match reader.ensure_suite(HashSuite::Sha256).await {
        Err(LedgerError::Db(e)) => assert_eq!(e.code().map(|c| c.code()), Some("25006"), "{e}"),
        other => panic!("a read-only session wrote: {other:?}"),
    }
    // A suite recorded by a writer is checked.
    db.ledger().ensure_suite(HashSuite::Sm3).await.unwrap();
    assert!(matches!(
        reader.check_schema(HashSuite::Sha256).await,
        Err(LedgerError::SuiteMismatch { .. })
    ));

    // Newer than the binary: upgrade anchord.
    db.client()
        .await
        .batch_execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')",
        )
        .await
        .unwrap();
    let err = reader
        .check_schema(HashSuite::Sm3)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("version 999") && err.contains("upgrade anchord"),
        "{err}"
    );
}

/// Issue 17's free-space mystery: a batch holding one resubmission used to
/// be COPYed whole, hit the identity's unique index, rolled back and written
/// again, so every such batch left a batch of dead rows behind (after VACUUM:
/// free space with no dead tuples). No evidence row may be written twice.
#[tokio::test]
async fn batches_with_resubmissions_write_every_row_once() {
    let (db, ledger) = TestDb::migrated().await;
    let c = db.client().await;
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .await
        .unwrap();
    let mut expected = 0u64;
    for b in 0..20u32 {
        let mut entries: Vec<NewEntry> = (0..100u32)
            .map(|i| entry("bank", &format!("e{b}-{i}"), (i % 200) as u8, None))
            .collect();
        if b > 0 {
            // A resubmission of the previous batch's first entry.
            entries.insert(50, entry("bank", &format!("e{}-0", b - 1), 0, None));
        }
        let out = ledger.append(&batch(entries)).await.unwrap();
        assert_eq!(out.accepted(), 100);
        if b > 0 {
            assert!(matches!(out.items[50], ItemOutcome::Duplicate { .. }));
        }
        expected += 100;
    }
    assert_eq!(ledger.next_seq().await.unwrap(), expected);
    let (live, dead): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT coalesce(sum((pgstattuple(c.oid)).tuple_count), 0)::int8, \
                        coalesce(sum((pgstattuple(c.oid)).dead_tuple_count), 0)::int8 \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'evidence%'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(dead, 0, "rows written and rolled back (live rows: {live})");
}

/// Issue 17: evidence is partitioned by sequence range; the writer creates
/// partitions ahead of the head (a batch may span several), and every
/// lookup (by seq, range, identity, hash) reaches every partition; the
/// identity check stays global across partitions.
#[tokio::test]
async fn partitions_are_created_ahead_and_every_lookup_spans_them() {
    let (db, ledger) = TestDb::migrated().await;
    let c = db.client().await;
    db.set_partition_size(100).await;
    let partitions = || async {
        let r = c
            .query(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'evidence'::regclass ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        r.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()
    };
    assert!(
        partitions().await.is_empty(),
        "an empty ledger has none yet"
    );
    // One batch of 250: three partitions for its rows and one spare ahead.
    let first: Vec<NewEntry> = (0..250u32)
        .map(|i| entry("bank", &format!("a{i}"), (i % 251) as u8, Some(i as i64)))
        .collect();
    assert_eq!(ledger.append(&batch(first)).await.unwrap().accepted(), 250);
    assert_eq!(
        partitions().await,
        [
            "evidence_p000000000000",
            "evidence_p000000000100",
            "evidence_p000000000200",
            "evidence_p000000000300"
        ]
    );
    // Smaller batches cross the next boundaries; a resubmission of the very
    // first entry (partition 0) is still recognised.
    for b in 0..4u32 {
        let mut es: Vec<NewEntry> = (0..40u32)
            .map(|i| entry("bank", &format!("b{b}-{i}"), 7, None))
            .collect();
        es.push(entry("bank", "a0", 0, None));
        let out = ledger.append(&batch(es)).await.unwrap();
        assert_eq!(out.accepted(), 40);
        assert_eq!(out.items[40], ItemOutcome::Duplicate { seq: 0 });
    }
    assert_eq!(ledger.next_seq().await.unwrap(), 410);
    assert_eq!(partitions().await.len(), 6, "up to 600: 410 plus one spare");
    let conflict = ledger
        .append(&batch(vec![entry("bank", "a1", 99, None)]))
        .await
        .unwrap();
    assert_eq!(
        conflict.items,
        vec![ItemOutcome::Conflict { existing_seq: 1 }]
    );

    let range = ledger.entries_range(90, 320).await.unwrap();
    assert_eq!(range.len(), 230);
    assert!(
        range
            .iter()
            .enumerate()
            .all(|(k, e)| e.entry.seq == 90 + k as u64)
    );
    let old = ledger
        .entry_by_identity("bank", "a5")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.entry.seq, 5);
    assert_eq!(
        old.source,
        Some(Source {
            topic: "t".into(),
            partition: 0,
            offset: 5
        })
    );
    assert_eq!(old.leaf_hash, old.entry.leaf_hash(HashSuite::Sha256));
    let late = ledger.entry_by_seq(405).await.unwrap().unwrap();
    assert_eq!(late.entry.external_id, "b3-35");
    assert_eq!(late.source, None);
    // Hash 7 was used in partition 0 (entry a7) and by every b entry.
    assert_eq!(ledger.entries_by_hash(&[7; 32]).await.unwrap().len(), 161);
    // One topic row, however many entries name it.
    let topics: i64 = c
        .query_one("SELECT count(*) FROM kafka_topics", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(topics, 1);
}

/// The pipelined writer prepares a batch against a prediction; when the
/// prediction is wrong (another writer moved the head, a batch it counted on
/// never committed, an identity was taken meanwhile) the commit plans again
/// under the lock and the result is what a plain append would have done.
#[tokio::test]
async fn a_wrong_prediction_is_caught_under_the_lock_and_planned_again() {
    use anchord_ledger::AppendHint;
    use std::sync::Arc;
    let (_db, ledger) = TestDb::migrated().await;

    // 1. The head moved: another writer appended after the prepare.
    let p = ledger
        .prepare_append(
            Arc::new(batch(vec![entry("b", "x", 1, None)])),
            &AppendHint::default(),
        )
        .await
        .unwrap();
    ledger
        .append(&batch(vec![entry("b", "other", 2, None)]))
        .await
        .unwrap();
    let c = ledger.commit_prepared(&p).await.unwrap();
    assert!(!c.as_predicted);
    assert_eq!(c.outcome.items, vec![ItemOutcome::Accepted { seq: 1 }]);

    // 2. A hint counting on a batch that never committed: its identity is
    // not a duplicate after all.
    let never = ledger
        .prepare_append(
            Arc::new(batch(vec![entry("b", "y", 3, None)])),
            &AppendHint::default(),
        )
        .await
        .unwrap();
    let hint = never.hint_after(&AppendHint::default());
    let p = ledger
        .prepare_append(Arc::new(batch(vec![entry("b", "y", 3, None)])), &hint)
        .await
        .unwrap();
    drop(never);
    let c = ledger.commit_prepared(&p).await.unwrap();
    assert!(!c.as_predicted);
    assert_eq!(c.outcome.items, vec![ItemOutcome::Accepted { seq: 2 }]);

    // 3. The same identity taken by another writer between prepare and
    // commit: caught by the identity index, then a duplicate of it.
    let p = ledger
        .prepare_append(
            Arc::new(batch(vec![
                entry("b", "z", 4, None),
                entry("b", "w", 5, None),
            ])),
            &AppendHint::default(),
        )
        .await
        .unwrap();
    ledger
        .append(&batch(vec![entry("b", "z", 4, None)]))
        .await
        .unwrap();
    let c = ledger.commit_prepared(&p).await.unwrap();
    assert_eq!(
        c.outcome.items,
        vec![
            ItemOutcome::Duplicate { seq: 3 },
            ItemOutcome::Accepted { seq: 4 }
        ]
    );

    // 4. A prediction that holds is written as prepared, and a pipeline of
    // hints carries resubmissions across batches still in flight.
    let p1 = ledger
        .prepare_append(
            Arc::new(batch(vec![entry("b", "v", 6, None)])),
            &AppendHint::default(),
        )
        .await
        .unwrap();
    let h1 = p1.hint_after(&AppendHint::default());
    let p2 = ledger
        .prepare_append(
            Arc::new(batch(vec![
                entry("b", "v", 6, None),
                entry("b", "u", 7, None),
            ])),
            &h1,
        )
        .await
        .unwrap();
    let c1 = ledger.commit_prepared(&p1).await.unwrap();
    let c2 = ledger.commit_prepared(&p2).await.unwrap();
    assert!(c1.as_predicted && c2.as_predicted);
    assert_eq!(c1.outcome.items, vec![ItemOutcome::Accepted { seq: 5 }]);
    assert_eq!(
        c2.outcome.items,
        vec![
            ItemOutcome::Duplicate { seq: 5 },
            ItemOutcome::Accepted { seq: 6 }
        ]
    );
    assert_eq!(ledger.next_seq().await.unwrap(), 7);
}

/// Migration 0007 moves an existing ledger's entries into the partitioned
/// table: every entry, its source, identity and leaf hash survive, blocks
/// keep their foreign keys, and appends continue from the head.
#[tokio::test]
async fn a_ledger_from_before_0007_keeps_its_entries_and_blocks() {
    let db = TestDb::new().await;
    let c = db.client().await;
    c.batch_execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, \
         checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .unwrap();
    for m in MIGRATIONS.iter().filter(|m| m.version < 7) {
        c.batch_execute(m.sql).await.unwrap();
        c.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[
                &m.version,
                &m.name,
                &anchord_ledger::migrate::checksum(m.sql),
            ],
        )
        .await
        .unwrap();
    }
    // 30 entries the way versions before 7 stored them.
    for i in 0..30i64 {
        let e = anchord_core::Entry {
            seq: i as u64,
            received_at_us: 1_700_000_000_000_000,
            tenant: "bank".into(),
            external_id: format!("old{i}"),
            hash_alg: EvidenceAlg::Sha256,
            evidence_hash: vec![i as u8; 32],
            metadata: (i % 2 == 0).then(|| "{\"k\":1}".to_owned()),
        };
        let id = anchord_core::entry::identity_key("bank", &e.external_id);
        let leaf = e.leaf_hash(HashSuite::Sha256);
        let topic = (i % 3 != 0).then_some("evidence.v1");
        c.execute(
            "INSERT INTO evidence (seq, identity, tenant, external_id, hash_alg, evidence_hash, \
             metadata, received_at_us, entry_version, leaf_hash, src_topic, src_partition, src_offset) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, 1, $8, $9, $10, $11)",
            &[
                &i,
                &id.as_slice(),
                &e.tenant,
                &e.external_id,
                &e.evidence_hash,
                &e.metadata,
                &e.received_at_us,
                &leaf.as_slice(),
                &topic,
                &topic.map(|_| 2i32),
                &topic.map(|_| 100 + i),
            ],
        )
        .await
        .unwrap();
    }
    c.batch_execute(
        "UPDATE ledger_head SET next_seq = 30; \
         INSERT INTO blocks (height, hash_suite, first_seq, last_seq, leaf_count, merkle_root, \
         prev_hash, block_hash, sealed_at_us) VALUES (0, 1, 0, 19, 20, sha256('r'), sha256('p'), \
         sha256('b'), 1)",
    )
    .await
    .unwrap();

    let ledger = db.ledger();
    let applied = ledger.migrate().await.unwrap();
    assert_eq!(
        applied.len(),
        MIGRATIONS.iter().filter(|m| m.version >= 7).count()
    );
    for i in 0..30u64 {
        let s = ledger
            .entry_by_identity("bank", &format!("old{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.entry.seq, i);
        assert_eq!(s.leaf_hash, s.entry.leaf_hash(HashSuite::Sha256));
        assert_eq!(s.entry.metadata.is_some(), i % 2 == 0);
        assert_eq!(
            s.source,
            (i % 3 != 0).then(|| Source {
                topic: "evidence.v1".into(),
                partition: 2,
                offset: 100 + i as i64
            })
        );
    }
    // Blocks still refer to existing evidence: a block past the entries is
    // refused.
    let dangling = c
        .execute(
            "INSERT INTO blocks (height, hash_suite, first_seq, last_seq, leaf_count, merkle_root, \
             prev_hash, block_hash, sealed_at_us) VALUES (1, 1, 20, 99, 80, sha256('r'), \
             sha256('b'), sha256('c'), 2)",
            &[],
        )
        .await;
    assert!(dangling.is_err(), "blocks keep their foreign keys");
    // Version 9 on a ledger with a sealed block: the block has no level-0
    // tile rows yet (the batcher back-fills them), and its proofs read the
    // tile from the evidence rows meanwhile.
    assert!(ledger.block_leaf_tiles(0).await.unwrap().is_empty());
    assert_eq!(ledger.leaf_tile_backlog().await.unwrap(), (1, 20));
    let row = ledger
        .proof_by_identity("bank", "old13")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.block, Some((0, 0, 19)));
    assert_eq!(
        row.level0,
        Some(Level0::Tile(ledger.leaf_hashes(0, 20).await.unwrap()))
    );
    let unsealed = ledger
        .proof_by_identity("bank", "old23")
        .await
        .unwrap()
        .unwrap();
    assert!(unsealed.block.is_none() && unsealed.level0.is_none());
    let out = ledger
        .append(&batch(vec![
            entry("bank", "old3", 3, None),
            entry("bank", "new", 1, None),
        ]))
        .await
        .unwrap();
    assert_eq!(
        out.items,
        vec![
            ItemOutcome::Duplicate { seq: 3 },
            ItemOutcome::Accepted { seq: 30 }
        ]
    );
    assert!(ledger.migrate().await.unwrap().is_empty());
}

/// Live and dead tuples of the evidence partitions and of the identity table.
async fn evidence_tuples(c: &tokio_postgres::Client) -> ((i64, i64), (i64, i64)) {
    c.batch_execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .await
        .expect("pgstattuple");
    let count = |filter: &'static str| async move {
        let r = c
            .query_one(
                &format!(
                    "SELECT coalesce(sum((pgstattuple(c.oid)).tuple_count), 0)::int8, \
                            coalesce(sum((pgstattuple(c.oid)).dead_tuple_count), 0)::int8 \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = 'public' AND c.relkind = 'r' AND {filter}"
                ),
                &[],
            )
            .await
            .expect("tuple counts");
        (r.get(0), r.get(1))
    };
    (
        count("c.relname LIKE 'evidence_p%'").await,
        count("c.relname LIKE 'evidence\\_identity\\_p%'").await,
    )
}

fn grouped(entries: Vec<NewEntry>, next_offset: i64) -> AppendBatch {
    AppendBatch {
        consumer_group: Some("g".into()),
        positions: vec![Position {
            topic: "t".into(),
            partition: 0,
            next_offset,
        }],
        ..batch(entries)
    }
}

/// Issue 17: while batches find none of their identities stored (fresh
/// keys), the pipelined writer skips looking them up and leaves a stored one
/// to the identity's unique index. A batch mixing redelivered messages, a
/// resubmission of an entry committed long before, a conflict with one, a
/// resubmission of the batch still in flight and fresh keys must then roll
/// back and come out exactly as a plain append (lookup first) writes it: no
/// second entry for an identity, no gap, the conflict dead-lettered once,
/// the positions stored; only the batch's identity rows (at most) are left
/// dead, never an evidence row. The next batch looks its identities up.
#[tokio::test]
async fn a_skipped_identity_lookup_falls_back_to_what_a_plain_append_writes() {
    use anchord_ledger::{AppendHint, PredictionMiss};
    use std::sync::Arc;
    let old = grouped(
        (0..100)
            .map(|i| entry("bank", &format!("old{i}"), 1, Some(i)))
            .collect(),
        100,
    );
    let b1 = grouped(
        (100..200)
            .map(|i| entry("bank", &format!("new{i}"), 2, Some(i)))
            .collect(),
        200,
    );
    let mut mixed: Vec<NewEntry> = (190..200)
        .map(|i| entry("bank", &format!("new{i}"), 2, Some(i)))
        .collect();
    mixed.push(entry("bank", "f200", 3, Some(200)));
    mixed.push(entry("bank", "old5", 1, Some(201)));
    mixed.push(entry("bank", "f202", 3, Some(202)));
    mixed.push(entry("bank", "old7", 9, Some(203)));
    mixed.push(entry("bank", "new150", 2, Some(204)));
    mixed.extend((205..300).map(|i| entry("bank", &format!("f{i}"), 3, Some(i))));
    let b2 = grouped(mixed, 300);
    let b3 = grouped(vec![entry("bank", "f300", 3, Some(300))], 301);

    // The oracle: plain appends, every identity looked up first.
    let (_twin_db, twin) = TestDb::migrated().await;
    let mut want = Vec::new();
    for b in [&old, &b1, &b2, &b3] {
        want.push(twin.append(b).await.unwrap().items);
    }
    assert_eq!(
        want[2][10..14],
        [
            ItemOutcome::Accepted { seq: 200 },
            ItemOutcome::Duplicate { seq: 5 },
            ItemOutcome::Accepted { seq: 201 },
            ItemOutcome::Conflict { existing_seq: 7 },
        ]
    );

    let (db, ledger) = TestDb::migrated().await;
    assert_eq!(ledger.append(&old).await.unwrap().items, want[0]);
    // The pipelined writer: batch 2 prepared while batch 1 is in flight.
    let p1 = ledger
        .prepare_append(Arc::new(b1), &AppendHint::default())
        .await
        .unwrap();
    assert!(
        p1.looked_up(),
        "no prediction yet: the first batch looks up"
    );
    let h1 = p1.hint_after(&AppendHint::default());
    let p2 = ledger.prepare_append(Arc::new(b2), &h1).await.unwrap();
    assert!(
        !p2.looked_up(),
        "batch 1 found no stored identity: batch 2 skips the lookup"
    );
    let h2 = p2.hint_after(&h1);
    let c1 = ledger.commit_prepared(&p1).await.unwrap();
    assert!(c1.as_predicted && c1.miss.is_none());
    assert_eq!(c1.outcome.items, want[1]);
    let (_, identity_before) = evidence_tuples(&db.client().await).await;
    let c2 = ledger.commit_prepared(&p2).await.unwrap();
    assert_eq!(c2.miss, Some(PredictionMiss::IdentityTaken));
    assert!(!c2.as_predicted);
    assert_eq!(c2.outcome.items, want[2]);
    assert_eq!(c2.outcome.rejections_recorded, 1, "the conflict, once");
    let p3 = ledger.prepare_append(Arc::new(b3), &h2).await.unwrap();
    assert!(
        p3.looked_up(),
        "batch 2 held stored identities: batch 3 looks its identities up"
    );
    assert_eq!(
        ledger.commit_prepared(&p3).await.unwrap().outcome.items,
        want[3]
    );

    // The same ledger as the oracle's, entry for entry.
    assert_eq!(
        ledger.next_seq().await.unwrap(),
        twin.next_seq().await.unwrap()
    );
    let n = ledger.next_seq().await.unwrap();
    let key = |e: &anchord_ledger::StoredEntry| {
        (
            e.entry.seq,
            e.entry.external_id.clone(),
            e.entry.evidence_hash.clone(),
            e.source.clone(),
        )
    };
    let got: Vec<_> = ledger
        .entries_range(0, n)
        .await
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let expected: Vec<_> = twin
        .entries_range(0, n)
        .await
        .unwrap()
        .iter()
        .map(key)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len() as u64, n, "gap-free");
    assert_eq!(
        ledger.dead_letter_counts().await.unwrap(),
        vec![("conflict".to_string(), 1)]
    );
    assert_eq!(
        ledger.positions("g", "t").await.unwrap()[0].next_offset,
        301
    );
    let ((live, dead), (id_live, id_dead)) = evidence_tuples(&db.client().await).await;
    assert_eq!((live, dead), (n as i64, 0), "no evidence row written twice");
    assert_eq!(id_live, n as i64);
    // The rolled-back COPY stopped at the first stored identity, but COPY
    // writes its rows in buffers of up to 1,000 before checking the index:
    // at most the prepared batch's 99 identity rows are dead (f200, old5,
    // f202, old7, f205..f299), and none of them in evidence.
    assert!(
        id_dead - identity_before.1 <= 99,
        "identity rows left dead by the fallback: {}",
        id_dead - identity_before.1
    );
}

/// A run of batches that each resubmit an entry committed earlier (a client
/// resending) costs no rollback: every batch after one that found stored
/// identities looks its own up, so nothing is written twice.
#[tokio::test]
async fn a_run_of_resubmissions_looks_up_instead_of_rolling_back() {
    use anchord_ledger::AppendHint;
    use std::sync::Arc;
    let (db, ledger) = TestDb::migrated().await;
    let old: Vec<NewEntry> = (0..50)
        .map(|i| entry("bank", &format!("old{i}"), 1, None))
        .collect();
    ledger.append(&batch(old)).await.unwrap();
    let mut hint = AppendHint::default();
    let mut looked_up = 0;
    for b in 0..8u32 {
        let mut es: Vec<NewEntry> = (0..50)
            .map(|i| entry("bank", &format!("b{b}-{i}"), 2, None))
            .collect();
        es.insert(25, entry("bank", &format!("old{b}"), 1, None));
        let p = ledger
            .prepare_append(Arc::new(batch(es)), &hint)
            .await
            .unwrap();
        looked_up += p.looked_up() as u32;
        hint = p.hint_after(&hint);
        let c = ledger.commit_prepared(&p).await.unwrap();
        assert_eq!(c.miss, None, "batch {b}");
        assert_eq!(
            c.outcome.items[25],
            ItemOutcome::Duplicate { seq: b as u64 }
        );
        assert_eq!(c.outcome.accepted(), 50);
    }
    assert_eq!(looked_up, 8);
    let ((_, dead), (_, id_dead)) = evidence_tuples(&db.client().await).await;
    assert_eq!((dead, id_dead), (0, 0));
}

/// How the closed partitions' identities are known to the writer in
/// [`identities_in_closed_partitions_are_never_written_again`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Filters {
    /// None built yet: the writer probes every older partition.
    None,
    /// Built for both closed partitions.
    Built,
    /// Built, then the first one damaged: it is refused and its partition
    /// probed as if it had none.
    Damaged,
    /// None built, and `evidence_partition_size` raised after the
    /// partitions were created: the check follows the partitions' real
    /// bounds, not the configured size.
    Resized,
}

/// Issue 17, schema version 10: identities are partitioned like the
/// entries, each partition's unique index only sees its own rows, and the
/// pipelined writer skips the lookup of fresh-looking batches. An identity
/// stored in an older partition (closed and filtered, closed and not, or
/// the open one below a batch that crosses into the next) must still come
/// back as the duplicate or conflict a plain append reports, and no
/// identity may be stored twice.
#[tokio::test]
async fn identities_in_closed_partitions_are_never_written_again() {
    for mode in [
        Filters::None,
        Filters::Built,
        Filters::Damaged,
        Filters::Resized,
    ] {
        closed_partition_scenario(mode).await;
    }
}

#[allow(clippy::unwrap_used)] // a test's helper: a failed unwrap fails the test
async fn closed_partition_scenario(mode: Filters) {
    use anchord_ledger::AppendHint;
    use std::sync::Arc;
    // 250 entries: partitions [0, 100) and [100, 200) closed, [200, 300)
    // open.
    let old = grouped(
        (0..250)
            .map(|i| entry("bank", &format!("o{i}"), 1, Some(i)))
            .collect(),
        250,
    );
    let b1 = grouped(
        (250..280)
            .map(|i| entry("bank", &format!("n{i}"), 2, Some(i)))
            .collect(),
        280,
    );
    // 30 fresh rows from seq 280 cross into [300, 400); among them a
    // duplicate from each closed partition and the open one, and a
    // conflict.
    let mut mixed: Vec<NewEntry> = (280..300)
        .map(|i| entry("bank", &format!("f{i}"), 3, Some(i)))
        .collect();
    mixed.push(entry("bank", "o5", 1, Some(300)));
    mixed.push(entry("bank", "o150", 9, Some(301)));
    mixed.push(entry("bank", "o220", 1, Some(302)));
    mixed.extend((303..313).map(|i| entry("bank", &format!("f{i}"), 3, Some(i))));
    let b2 = grouped(mixed, 313);

    let (_twin_db, twin) = TestDb::migrated().await;
    _twin_db.set_partition_size(100).await;
    let mut want = Vec::new();
    for b in [&old, &b1, &b2] {
        want.push(twin.append(b).await.unwrap().items);
    }
    assert_eq!(
        want[2][20..23],
        [
            ItemOutcome::Duplicate { seq: 5 },
            ItemOutcome::Conflict { existing_seq: 150 },
            ItemOutcome::Duplicate { seq: 220 },
        ],
        "{mode:?}"
    );

    let (db, setup) = TestDb::migrated().await;
    db.set_partition_size(100).await;
    let c = db.client().await;
    assert_eq!(setup.append(&old).await.unwrap().items, want[0]);
    if mode == Filters::Resized {
        db.set_partition_size(1000).await;
    }
    if mode == Filters::Built || mode == Filters::Damaged {
        let mut built = Vec::new();
        while let Some(w) = setup.filter_work().await.unwrap() {
            assert_eq!(setup.build_filter(w).await.unwrap(), 100);
            built.push((w.kind, w.lo, w.hi));
        }
        use anchord_core::filter::FilterKind::{EvidenceHash, Identity};
        assert_eq!(
            built,
            [
                (Identity, 0, 100),
                (Identity, 100, 200),
                (EvidenceHash, 0, 100),
                (EvidenceHash, 100, 200)
            ],
            "only closed partitions"
        );
    }
    if mode == Filters::Damaged {
        c.execute(
            "UPDATE identity_filters SET bits = set_byte(bits, 0, get_byte(bits, 0) # 1) \
             WHERE lo = 0",
            &[],
        )
        .await
        .unwrap();
        let stored = setup
            .stored_filters(anchord_core::filter::FilterKind::Identity)
            .await
            .unwrap();
        assert!(stored[0].2.is_err() && stored[1].2.is_ok(), "{mode:?}");
    }
    // A writer that starts now (and loads the filters stored so far).
    let ledger = db.ledger();
    let p1 = ledger
        .prepare_append(Arc::new(b1), &AppendHint::default())
        .await
        .unwrap();
    let h1 = p1.hint_after(&AppendHint::default());
    assert_eq!(
        ledger.commit_prepared(&p1).await.unwrap().outcome.items,
        want[1]
    );
    let p2 = ledger.prepare_append(Arc::new(b2), &h1).await.unwrap();
    assert!(!p2.looked_up(), "{mode:?}: a fresh batch before it");
    let (check, filters) = p2.identity_check();
    let c2 = ledger.commit_prepared(&p2).await.unwrap();
    assert_eq!(c2.outcome.items, want[2], "{mode:?}");
    match mode {
        Filters::None | Filters::Resized => {
            assert_eq!((filters, check.maybe), (0, 0));
            assert_eq!(c2.unfiltered_ranges, 1, "[0, 300) under the lock");
        }
        Filters::Built => {
            assert_eq!(filters, 2);
            assert!(check.maybe >= 2, "o5 and o150 are in their filters");
            assert_eq!(c2.unfiltered_ranges, 1, "[200, 300) under the lock");
        }
        Filters::Damaged => {
            assert_eq!(filters, 1, "the damaged filter is refused");
            assert_eq!(c2.unfiltered_ranges, 2, "[0, 100) and [200, 300)");
        }
    }
    assert_eq!(
        ledger.next_seq().await.unwrap(),
        twin.next_seq().await.unwrap()
    );
    let doubled: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT identity FROM evidence_identity \
             GROUP BY identity HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(doubled, 0, "{mode:?}: an identity stored twice");
    assert_eq!(
        ledger.dead_letter_counts().await.unwrap(),
        vec![("conflict".to_string(), 1)]
    );
}

/// Issue 17, schema version 11: proofs by evidence hash and by identity
/// start at the first partition whose filter may hold their key, so a
/// lookup no longer probes every partition's index; the answers are the
/// ones of a lookup over every partition (the oldest entry with a hash, of
/// a tenant when asked), and a filter that fails its digest is not used.
#[tokio::test]
async fn proof_lookups_skip_the_closed_partitions_their_filters_rule_out() {
    use anchord_core::filter::FilterKind;
    use anchord_ledger::ProofKey;
    let (db, setup) = TestDb::migrated().await;
    db.set_partition_size(100).await;
    let c = db.client().await;
    // Hash 1 at seq 5 (tenant a) and 150 (tenant b); hash 2 only at 250
    // (the open partition); identity b/x at 120.
    let es: Vec<NewEntry> = (0..260u32)
        .map(|i| match i {
            5 => entry("bank-a", "first", 1, None),
            120 => entry("bank-b", "x", 7, None),
            150 => entry("bank-b", "second", 1, None),
            250 => entry("bank-a", "late", 2, None),
            _ => entry("bank-a", &format!("e{i}"), 9, None),
        })
        .collect();
    assert_eq!(
        setup.append(&batch(es)).await.expect("append").accepted(),
        260
    );
    let want = |ledger: anchord_ledger::Ledger| async move {
        let by_hash = |h: u8, t: Option<&'static str>| {
            let ledger = ledger.clone();
            async move {
                ledger
                    .proof_by_hash(&[h; 32], t)
                    .await
                    .expect("proof")
                    .map(|r| r.entry.entry.seq)
            }
        };
        assert_eq!(by_hash(1, None).await, Some(5), "the oldest");
        assert_eq!(by_hash(1, Some("bank-b")).await, Some(150));
        assert_eq!(by_hash(2, None).await, Some(250));
        assert_eq!(by_hash(3, None).await, None);
        let x = ledger
            .proof_by_identity("bank-b", "x")
            .await
            .expect("proof")
            .map(|r| r.entry.entry.seq);
        assert_eq!(x, Some(120));
        let keys = [
            ProofKey::Hash {
                hash: vec![1; 32],
                tenant: None,
            },
            ProofKey::Hash {
                hash: vec![1; 32],
                tenant: Some("bank-b".into()),
            },
            ProofKey::Hash {
                hash: vec![2; 32],
                tenant: None,
            },
            ProofKey::Hash {
                hash: vec![3; 32],
                tenant: None,
            },
            ProofKey::Identity {
                tenant: "bank-b".into(),
                external_id: "x".into(),
            },
            ProofKey::Identity {
                tenant: "bank-b".into(),
                external_id: "nobody".into(),
            },
        ];
        let got: Vec<Option<u64>> = ledger
            .proofs(&keys)
            .await
            .expect("proofs")
            .into_iter()
            .map(|a| a.expect("answer").map(|r| r.entry.entry.seq))
            .collect();
        assert_eq!(got, [Some(5), Some(150), Some(250), None, Some(120), None]);
        ledger
    };
    // Without filters, then with both partitions' filters (a handle that
    // starts now loads them).
    want(db.ledger()).await;
    while let Some(w) = setup.filter_work().await.expect("work") {
        setup.build_filter(w).await.expect("build");
    }
    let filtered = want(db.ledger()).await;
    assert_eq!(
        filtered
            .filters(FilterKind::EvidenceHash)
            .await
            .expect("filters")
            .len(),
        2
    );
    // The statement of hash 2 no longer reaches the closed partitions;
    // hash 1's starts at the first.
    let plan = filtered
        .explain_proof_by_hash(&[2; 32])
        .await
        .expect("explain");
    assert!(
        !plan.contains("evidence_p000000000000") && !plan.contains("evidence_p000000000100"),
        "{plan}"
    );
    assert!(plan.contains("evidence_p000000000200"), "{plan}");
    let plan = filtered
        .explain_proof_by_hash(&[1; 32])
        .await
        .expect("explain");
    assert!(plan.contains("evidence_p000000000000"), "{plan}");
    // A damaged filter is not used: the lookups read the partition again.
    c.execute(
        "UPDATE evidence_hash_filters SET bits = set_byte(bits, 0, get_byte(bits, 0) # 1) \
         WHERE lo = 0",
        &[],
    )
    .await
    .expect("damage");
    let damaged = want(db.ledger()).await;
    assert_eq!(
        damaged
            .filters(FilterKind::EvidenceHash)
            .await
            .expect("filters")
            .len(),
        1
    );
}

/// A new partition of `evidence` is created in an appending transaction;
/// `blocks` references `evidence`, so creating one also locks `blocks`.
/// A seal in progress holds `blocks` and then checks its foreign keys
/// against `evidence`. The writer takes `blocks` before `evidence`, the
/// sealer's order, so the two wait for each other in turn instead of
/// deadlocking (which PostgreSQL resolves by failing one of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_partition_while_a_block_is_sealed_does_not_deadlock() {
    let (db, ledger) = TestDb::migrated().await;
    let c = db.client().await;
    db.set_partition_size(100).await;
    let first: Vec<NewEntry> = (0..150u32)
        .map(|i| entry("bank", &format!("a{i}"), (i % 251) as u8, None))
        .collect();
    ledger.append(&batch(first)).await.unwrap();
    // The sealer's transaction, as far as its insert into `blocks`.
    let mut sealer = db.client().await;
    let tx = sealer.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE blocks IN ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    // An append that needs a new partition (the head passes 100 + 100).
    let appending = {
        let ledger = ledger.clone();
        let next: Vec<NewEntry> = (0..60u32)
            .map(|i| entry("bank", &format!("b{i}"), (i % 251) as u8, None))
            .collect();
        tokio::spawn(async move { ledger.append(&batch(next)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The seal's foreign-key check reads `evidence`.
    let checked = tx
        .query_one("SELECT count(*) FROM evidence WHERE seq = 0", &[])
        .await;
    tx.commit().await.unwrap();
    let appended = appending.await.unwrap();
    assert_eq!(
        checked
            .map(|r| r.get::<_, i64>(0))
            .map_err(|e| e.to_string()),
        Ok(1),
        "the seal went on"
    );
    let out = appended.expect("the append went on");
    assert_eq!(out.accepted(), 60);
    let partitions: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'evidence'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(partitions, 4, "the append created the partition ahead");
}

/// Sessions of the test's database idle inside a transaction, once none is
/// left (or after 5 s, the count then).
async fn sessions_in_transaction(admin: &tokio_postgres::Client) -> i64 {
    let mut n = i64::MAX;
    for _ in 0..50 {
        n = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND state LIKE 'idle in transaction%'",
                &[],
            )
            .await
            .expect("reading pg_stat_activity")
            .get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    n
}

/// The chained commit: the next transaction begins, and takes the head lock,
/// with the previous one's `COMMIT`. Both batches commit as planned; a held
/// transaction that is never used, dropped or released, is rolled back (the
/// head lock freed, no connection left idle in a transaction, nothing of it
/// written); a held transaction for another consumer group is not used.
#[tokio::test]
async fn a_chained_commit_begins_the_next_transaction_and_an_unused_one_is_rolled_back() {
    use anchord_ledger::{AppendHint, PreparedAppend};
    use std::sync::Arc;
    use std::time::Duration;

    let (db, ledger) = TestDb::migrated().await;
    let admin = db.client().await;
    let ledger = &ledger;
    let prepare = |b: AppendBatch, hint: AppendHint| async move {
        ledger.prepare_append(Arc::new(b), &hint).await.unwrap()
    };
    // A plain append by another writer, which must not wait for the head
    // lock (`why` says who would be holding it).
    let append_soon = |ext: &'static str, hash: u8, why: &'static str| async move {
        let other = batch(vec![entry("o", ext, hash, None)]);
        tokio::time::timeout(Duration::from_secs(10), ledger.append(&other))
            .await
            .expect(why)
            .unwrap()
            .items
    };
    // A batch committed with a chain asked for; the transaction it began.
    let commit_chaining = |p: PreparedAppend| async move {
        let (c, held) = ledger
            .commit_prepared_chained(&p, None, &|| true)
            .await
            .unwrap();
        (c, held.expect("the next transaction begun with the commit"))
    };

    let p1 = prepare(
        grouped(vec![entry("b", "c1", 1, Some(0))], 1),
        AppendHint::default(),
    )
    .await;
    let h1 = p1.hint_after(&AppendHint::default());
    let p2 = prepare(
        grouped(
            vec![entry("b", "c1", 1, Some(1)), entry("b", "c2", 2, Some(2))],
            3,
        ),
        h1.clone(),
    )
    .await;
    let h2 = p2.hint_after(&h1);
    let p3 = prepare(grouped(vec![entry("b", "c3", 3, Some(3))], 4), h2).await;

    // 1. p1 commits and begins p2's transaction; p2 commits in it.
    let (c1, held) = commit_chaining(p1).await;
    assert!(c1.as_predicted);
    assert_eq!(c1.outcome.items, vec![ItemOutcome::Accepted { seq: 0 }]);
    let (c2, held) = ledger
        .commit_prepared_chained(&p2, Some(held), &|| true)
        .await
        .unwrap();
    assert!(
        c2.as_predicted,
        "planned against the head read with p1's commit"
    );
    assert_eq!(
        c2.outcome.items,
        vec![
            ItemOutcome::Duplicate { seq: 0 },
            ItemOutcome::Accepted { seq: 1 }
        ]
    );
    let held = held.expect("p3's transaction begun with p2's commit");

    // 2. Dropped unused, the held transaction is rolled back with its
    // connection: another writer gets the head lock, and no session is left
    // idle in a transaction.
    drop(held);
    let items = append_soon(
        "x",
        9,
        "the head lock of a dropped held transaction is released",
    )
    .await;
    assert_eq!(items, vec![ItemOutcome::Accepted { seq: 2 }]);
    assert_eq!(sessions_in_transaction(&admin).await, 0);

    // 3. p3, prepared before the other writer's row, is checked under the
    // lock and written after it.
    let (c3, none) = ledger
        .commit_prepared_chained(&p3, None, &|| false)
        .await
        .unwrap();
    assert!(none.is_none(), "no chain asked for");
    assert!(!c3.as_predicted);
    assert_eq!(c3.outcome.items, vec![ItemOutcome::Accepted { seq: 3 }]);
    let positions = ledger.positions("g", "t").await.unwrap();
    assert_eq!(positions.len(), 1);
    assert_eq!(positions[0].next_offset, 4);

    // 4. A transaction held for group "g" is not used for another group's
    // batch (whose positions it did not lock): that batch begins its own.
    let p4 = prepare(
        grouped(vec![entry("b", "c4", 4, Some(4))], 5),
        AppendHint::default(),
    )
    .await;
    let (_, held) = commit_chaining(p4).await;
    let mut b5 = grouped(vec![entry("b", "c5", 5, Some(0))], 1);
    b5.consumer_group = Some("h".into());
    let p5 = prepare(b5, AppendHint::default()).await;
    let (c5, _) = tokio::time::timeout(
        Duration::from_secs(10),
        ledger.commit_prepared_chained(&p5, Some(held), &|| false),
    )
    .await
    .expect("the other group's held transaction is dropped, not waited for")
    .unwrap();
    assert_eq!(c5.outcome.items, vec![ItemOutcome::Accepted { seq: 5 }]);
    assert_eq!(ledger.positions("h", "t").await.unwrap()[0].next_offset, 1);

    // 5. Released, a held transaction is rolled back and its connection
    // reused: the next append neither waits nor finds itself inside it.
    let p6 = prepare(
        grouped(vec![entry("b", "c6", 6, Some(5))], 6),
        AppendHint::default(),
    )
    .await;
    let (_, held) = commit_chaining(p6).await;
    held.release().await;
    let items = append_soon("y", 8, "a released transaction frees the head lock").await;
    assert_eq!(items, vec![ItemOutcome::Accepted { seq: 7 }]);
    assert_eq!(sessions_in_transaction(&admin).await, 0);
}
