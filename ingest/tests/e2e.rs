//! Ingest end to end through the broker into the ledger: exactly N entries,
//! matching hashes and positions; every bad-input class dead-lettered with
//! its reason while the good messages around it are ingested; the
//! dead-letter limit stops a misconfigured deployment without committing.
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anchord_ingest::dlq::DeadLetterEnvelope;
use anchord_ingest::message::MessageV1;
use anchord_testkit::TestDb;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_becomes_exactly_one_entry_with_its_hash_and_position() {
    const N: usize = 6000;
    const PARTS: i32 = 4;
    let (db, ledger) = TestDb::migrated().await;
    let topic = topics("e2e", PARTS).await;
    let (_g, msgs) = generator(N);
    let expected: HashMap<String, MessageV1> = msgs
        .iter()
        .map(|m| {
            let v: MessageV1 = serde_json::from_slice(&m.payload).unwrap();
            (v.external_id.clone(), v)
        })
        .collect();
    produce(
        &topic,
        msgs.iter()
            .map(|m| (m.key.clone(), m.payload.clone(), None))
            .collect(),
    )
    .await;

    let config = config(&topic);
    let group = config.group_id.clone();
    let (h, token) = start(config, ledger.clone());
    wait_until(
        Duration::from_secs(120),
        "all entries in the ledger",
        || {
            let l = ledger.clone();
            async move { l.next_seq().await.unwrap() >= N as u64 }
        },
    )
    .await;
    stop(h, token).await;

    assert_eq!(
        ledger.next_seq().await.unwrap(),
        N as u64,
        "exactly N entries"
    );
    let entries = ledger.entries_range(0, N as u64).await.unwrap();
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.entry.seq, i as u64, "gap-free sequence numbers");
        let m = &expected[&e.entry.external_id];
        assert_eq!(e.entry.tenant, m.tenant);
        assert_eq!(hex::encode(&e.entry.evidence_hash), m.hash);
        assert_eq!(e.entry.hash_alg.name(), m.hash_alg);
        let src = e.source.as_ref().expect("source recorded");
        assert_eq!(src.topic, topic);
        per_partition
            .entry(src.partition)
            .or_default()
            .push(src.offset);
    }
    let positions = positions(&ledger, &group, &topic).await;
    assert_eq!(
        positions.len(),
        PARTS as usize,
        "messages spread over every partition"
    );
    for (p, offsets) in &mut per_partition {
        offsets.sort_unstable();
        let want: Vec<i64> = (0..positions[p]).collect();
        assert_eq!(
            *offsets, want,
            "partition {p}: each offset once, up to the stored position"
        );
    }
    assert!(ledger.dead_letter_counts().await.unwrap().is_empty());
    // Kafka's committed offsets are advisory copies, never ahead of the ledger.
    let committed = kafka_committed(&group, &topic, PARTS).await;
    for (p, o) in committed {
        assert!(
            o <= positions[&p],
            "partition {p}: Kafka {o} ahead of ledger {}",
            positions[&p]
        );
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_class_is_dead_lettered_and_the_good_ones_around_it_are_ingested() {
    let (_db, ledger) = TestDb::migrated().await;
    let topic = topics("bad", 2).await;
    let (g, _) = generator(0);
    let good = |i: u64| g.good(i);
    let mut config = config(&topic);
    config.max_message_bytes = 2048;
    config.accepted_algs = vec![
        anchord_core::EvidenceAlg::Sha256,
        anchord_core::EvidenceAlg::Sm3,
    ];

    // (payload, expected reason or None for accepted/duplicate)
    let mut cases: Vec<(Vec<u8>, Option<&str>)> = Vec::new();
    let mutate = |i: u64, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = serde_json::to_value(good(i)).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    let mut i = 0u64;
    let mut next_good = |cases: &mut Vec<(Vec<u8>, Option<&str>)>| {
        let m = g.good(i);
        i += 1;
        cases.push((m.to_bytes(), None));
    };
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (mutate(1000, &|v| v["v"] = 2.into()), "unsupported_version"),
        (
            b"{\"v\":1,\"tenant\":\"icbc-sh\"".to_vec(),
            "malformed_json",
        ),
        (b"\xff\xfe not json".to_vec(), "malformed_json"),
        (
            mutate(1001, &|v| {
                v.as_object_mut().unwrap().remove("external_id");
            }),
            "missing_field",
        ),
        (mutate(1002, &|v| v["external_id"] = 17.into()), "bad_field"),
        (
            mutate(1003, &|v| v["metadata"] = "not an object".into()),
            "bad_field",
        ),
        (
            mutate(1004, &|v| {
                v["hash"] = format!("{}xy", &v["hash"].as_str().unwrap()[..62]).into()
            }),
            "bad_hash_hex",
        ),
        (
            mutate(1005, &|v| {
                v["hash"] = v["hash"].as_str().unwrap()[..40].into()
            }),
            "bad_hash_length",
        ),
        (
            mutate(1006, &|v| v["hash_alg"] = "sha512".into()),
            "algorithm_not_accepted",
        ),
        (
            mutate(1007, &|v| {
                v["metadata"] = serde_json::json!({"pad": "x".repeat(3000)})
            }),
            "oversized",
        ),
        (
            mutate(1008, &|v| v["tenant"] = "unknown-bank".into()),
            "unknown_tenant",
        ),
        (
            mutate(3, &|v| v["hash"] = "ab".repeat(32).into()),
            "conflict",
        ),
    ];
    for (payload, reason) in bad {
        next_good(&mut cases);
        cases.push((payload, Some(reason)));
    }
    next_good(&mut cases);
    // A resubmission of good message 0: a duplicate, not an entry, not a dead letter.
    cases.push((good(0).to_bytes(), None));
    let good_count = i;

    // Everything on partition 0 in this order (the conflict must follow the
    // original), plus some good traffic on partition 1.
    let mut msgs: Vec<(String, Vec<u8>, Option<i32>)> = cases
        .iter()
        .enumerate()
        .map(|(k, (p, _))| (format!("k{k}"), p.clone(), Some(0)))
        .collect();
    for j in 0..20u64 {
        msgs.push((format!("p1-{j}"), good(5000 + j).to_bytes(), Some(1)));
    }
    produce(&topic, msgs).await;
    let n_bad = cases.iter().filter(|c| c.1.is_some()).count();

    let dlq = config.dead_letter_topic.clone();
    let group = config.group_id.clone();
    let (h, token) = start(config, ledger.clone());
    let want_entries = good_count + 20;
    wait_until(Duration::from_secs(60), "good messages ingested", || {
        let l = ledger.clone();
        async move { l.next_seq().await.unwrap() >= want_entries }
    })
    .await;
    let dl = read_all(&dlq, 1, n_bad, Duration::from_secs(60)).await;
    stop(h, token).await;
    assert_eq!(
        ledger.next_seq().await.unwrap(),
        want_entries,
        "no bad message became an entry"
    );

    assert_eq!(dl.len(), n_bad, "one dead-letter record per bad message");
    let mut by_offset: HashMap<i64, DeadLetterEnvelope> = HashMap::new();
    for (key, body) in dl {
        let env: DeadLetterEnvelope = serde_json::from_slice(&body).unwrap();
        let src = env.source.clone().unwrap();
        assert_eq!(
            key.as_deref(),
            Some(format!("{}/{}/{}", src.topic, src.partition, src.offset).as_bytes())
        );
        assert_eq!((src.topic.as_str(), src.partition), (topic.as_str(), 0));
        by_offset.insert(src.offset, env);
    }
    for (offset, (payload, reason)) in cases.iter().enumerate() {
        let env = by_offset.get(&(offset as i64));
        match reason {
            Some(r) => {
                let env =
                    env.unwrap_or_else(|| panic!("offset {offset} ({r}) was not dead-lettered"));
                assert_eq!(env.reason, *r, "offset {offset}: {}", env.detail);
                assert_eq!(&env.payload().unwrap(), payload, "original bytes kept");
                assert_eq!(env.payload_bytes, payload.len());
                assert!(!env.detail.is_empty());
            }
            None => assert!(env.is_none(), "offset {offset} should not be dead-lettered"),
        }
    }
    // The ledger agrees, and the positions moved past the poison messages.
    let counts: BTreeMap<String, i64> = ledger
        .dead_letter_counts()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counts.values().sum::<i64>(), n_bad as i64);
    assert_eq!(counts["malformed_json"], 2);
    assert!(
        ledger
            .unpublished_dead_letters(10)
            .await
            .unwrap()
            .is_empty(),
        "all published"
    );
    let group_positions = positions(&ledger, &group, &topic).await;
    assert_eq!(group_positions[&0], cases.len() as i64);
    assert_eq!(group_positions[&1], 20);
    // The conflicting message did not overwrite the original.
    let original = good(3);
    let kept = ledger
        .entry_by_identity(&original.tenant, &original.external_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hex::encode(kept.entry.evidence_hash), original.hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfiguration_that_dead_letters_everything_stops_without_committing() {
    let (_db, ledger) = TestDb::migrated().await;
    let topic = topics("limit", 1).await;
    let (_g, msgs) = generator(300);
    produce(
        &topic,
        msgs.iter()
            .map(|m| (m.key.clone(), m.payload.clone(), None))
            .collect(),
    )
    .await;
    let mut config = config(&topic);
    // The operator forgot the real tenants.
    config.tenants = vec!["some-other-bank".into()];
    config.dead_letter_max_ratio = 0.5;
    config.dead_letter_window = 100;
    config.dead_letter_max_consecutive = 0;
    config.batch_max = 1000;
    config.batch_linger_ms = 2000;
    let group = config.group_id.clone();
    let (h, _token) = start(config, ledger.clone());
    let result = tokio::time::timeout(Duration::from_secs(60), h)
        .await
        .expect("ingest stops by itself")
        .unwrap();
    let err = result.expect_err("the dead-letter limit trips").to_string();
    assert!(err.contains("ingest.dead_letter_max_ratio"), "{err}");
    assert!(
        positions(&ledger, &group, &topic).await.is_empty(),
        "no position committed"
    );
    assert!(
        ledger.dead_letter_counts().await.unwrap().is_empty(),
        "no dead letter recorded"
    );
    assert_eq!(ledger.next_seq().await.unwrap(), 0);
}
