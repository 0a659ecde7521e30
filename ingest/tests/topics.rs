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
