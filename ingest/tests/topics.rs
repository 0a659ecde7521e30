//! A missing evidence or dead-letter topic stops ingest at start with an
//! error naming the key; `create_topics` creates them instead.
#![allow(clippy::unwrap_used)]

mod common;

use anchord_ingest::IngestError;
use anchord_testkit::TestDb;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_topic_is_a_start_up_error_naming_the_key() {
    let (_db, ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("topics", 2).await; // no .dlq companion
    let (h, _token) = start(config(&topic), ledger);
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), h)
        .await
        .expect("ingest returns promptly")
        .unwrap()
        .unwrap_err();
    match err {
        IngestError::Config(msg) => {
            assert!(msg.starts_with("ingest.dead_letter_topic:"), "{msg}");
            assert!(msg.contains(&format!("{topic}.dlq")), "{msg}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_creates_both_topics() {
    let topic = anchord_testkit::unique("created");
    let mut c = config(&topic);
    c.create_topics = true;
    c.topic_partitions = 3;
    anchord_ingest::topics::ensure(&c).await.unwrap();
    // Now the plain check passes for both.
    c.create_topics = false;
    anchord_ingest::topics::ensure(&c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_position_past_the_end_of_a_recreated_topic_stops_ingest_loudly() {
    let (_db, ledger) = TestDb::migrated().await;
    let topic = topics("recreated", 1).await;
    let c = config(&topic);
    // The ledger remembers consuming 100 messages of partition 0; the topic
    // (as if deleted and recreated) is empty.
    ledger
        .append(&anchord_ledger::AppendBatch {
            suite: anchord_core::HashSuite::Sha256,
            consumer_group: Some(c.group_id.clone()),
            received_at_us: 1_700_000_000_000_000,
            entries: vec![],
            rejections: vec![],
            positions: vec![anchord_ledger::Position {
                topic: topic.clone(),
                partition: 0,
                next_offset: 100,
            }],
        })
        .await
        .unwrap();
    let (h, _token) = start(c, ledger);
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), h)
        .await
        .expect("ingest stops on its own")
        .unwrap()
        .unwrap_err();
    match err {
        IngestError::PositionBeyondLog(msg) => {
            assert!(msg.contains("offset 100"), "{msg}");
            assert!(msg.contains("ingest.group_id"), "{msg}");
        }
        other => panic!("expected PositionBeyondLog, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_reads_the_partition_itself_not_the_reported_end() {
    let topic = anchord_testkit::kafka::topic("reach", 1).await;
    let c = config(&topic);
    let t = topic.clone();
    tokio::task::spawn_blocking(move || {
        let mut g =
            anchord_ingest::loadgen::Generator::new("reach", vec!["icbc-sh".to_string()], 0.0, 0.0);
        let stats = anchord_ingest::loadgen::publish(
            &anchord_testkit::kafka::brokers(),
            &t,
            &mut g,
            25,
            0,
            false,
            &|| false,
        )
        .unwrap();
        assert_eq!(stats.failed, 0);
    })
    .await
    .unwrap();
    let reach = |from: i64, position: i64| {
        let c = c.clone();
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            anchord_ingest::topics::records_reach(&c, &topic, 0, from, position).unwrap()
        })
    };
    // Offsets 0..=24 exist: a ledger position of 25 is covered. (Reading
    // starts at a batch boundary: tansu answers a fetch from inside a batch
    // with the later batches only, which is why ingest reads from
    // `resume_lookback_messages` before the reported end.)
    let t0 = std::time::Instant::now();
    assert!(reach(0, 25).await.unwrap());
    assert!(reach(0, 1).await.unwrap());
    // Position 26 would need offset 25: the partition's end comes first,
    // and says so at once rather than after the 10 s bound.
    assert!(!reach(0, 26).await.unwrap());
    assert!(!reach(0, 1000).await.unwrap());
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t0.elapsed()
    );
}
