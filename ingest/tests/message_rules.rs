//! The rules of `docs/kafka-message-v1.md` that only show end to end: what
//! the ledger seals and what it dead-letters for repeated member names,
//! tombstones, other versions, resends in another case and the same hex
//! under another algorithm; and a missing evidence topic.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use anchord_ingest::IngestError;
use anchord_ingest::dlq::DeadLetterEnvelope;
use anchord_ingest::message::TOMBSTONE_DETAIL;
use anchord_testkit::TestDb;
use common::*;
use rdkafka::producer::{BaseRecord, Producer};

const H: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn msg(id: &str, alg: &str, hash: &str, rest: &str) -> Vec<u8> {
    format!(
        r#"{{"v":1,"tenant":"icbc-sh","external_id":"{id}","hash_alg":"{alg}","hash":"{hash}","produced_at":1764000000123{rest}}}"#
    )
    .into_bytes()
}

async fn produce_tombstone(topic: &str) {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let (p, _) = anchord_ingest::loadgen::producer(&anchord_testkit::kafka::brokers()).unwrap();
        p.send(BaseRecord::<str, [u8]>::to(&topic).key("gone").partition(0))
            .map_err(|(e, _)| e)
            .unwrap();
        p.flush(Duration::from_secs(30)).unwrap();
    })
    .await
    .unwrap();
}

/// A record value (`None`: a tombstone) and the expected dead letter.
type Case = (Option<Vec<u8>>, Option<(&'static str, &'static str)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_as_sent_or_dead_lettered_with_the_documented_reason() {
    let (_db, ledger) = TestDb::migrated().await;
    let topic = topics("rules", 1).await;
    let config = config(&topic);
    let dlq = config.dead_letter_topic.clone();
    // (payload or a tombstone, the dead-letter reason and a detail fragment,
    // or None when it must not be dead-lettered)
    let cases: Vec<Case> = vec![
        // 0: accepted; its metadata sealed as sent.
        (
            Some(msg("A", "sha256", H, r#","metadata":{"a":1,"b":{"a":2}}"#)),
            None,
        ),
        // 1: a repeated name inside metadata: not last-wins.
        (
            Some(msg("B", "sha256", H, r#","metadata":{"a":1,"a":2}"#)),
            Some(("malformed_json", "duplicate key \"a\"")),
        ),
        // 2: deeper, and in a field ingest ignores.
        (
            Some(msg(
                "C",
                "sha256",
                H,
                r#","metadata":{"x":[{"k":1,"k":1}]}"#,
            )),
            Some(("malformed_json", "duplicate key \"k\"")),
        ),
        (
            Some(msg("D", "sha256", H, r#","trace":"1","trace":"2""#)),
            Some(("malformed_json", "duplicate key \"trace\"")),
        ),
        // 4: a tombstone.
        (None, Some(("malformed_json", TOMBSTONE_DETAIL))),
        // 5: negative and huge versions are versions.
        (
            Some(br#"{"v":-1,"tenant":"icbc-sh"}"#.to_vec()),
            Some(("unsupported_version", "-1")),
        ),
        (
            Some(br#"{"v":18446744073709551616}"#.to_vec()),
            Some(("unsupported_version", "18446744073709551616")),
        ),
        // 7: the accepted message again with its hex in upper case: a duplicate.
        (Some(msg("A", "sha256", &H.to_uppercase(), "")), None),
        // 8: the same hex under another algorithm: another claim, a conflict.
        (Some(msg("A", "sm3", H, "")), Some(("conflict", "seq 0"))),
        // 9: an empty hash.
        (
            Some(msg("E", "sha256", "", "")),
            Some(("bad_hash_length", "got 0")),
        ),
        // 10: microseconds instead of milliseconds.
        (
            Some(
                String::from_utf8(msg("F", "sha256", H, ""))
                    .unwrap()
                    .replace("1764000000123", "1764000000123000")
                    .into_bytes(),
            ),
            Some(("bad_field", "produced_at")),
        ),
    ];
    for (k, (payload, _)) in cases.iter().enumerate() {
        match payload {
            Some(p) => produce(&topic, vec![(format!("k{k}"), p.clone(), Some(0))]).await,
            None => produce_tombstone(&topic).await,
        }
    }
    let n_bad = cases.iter().filter(|c| c.1.is_some()).count();
    let (h, token) = start(config, ledger.clone());
    let dl = read_all(&dlq, 1, n_bad, Duration::from_secs(60)).await;
    stop(h, token).await;

    assert_eq!(
        ledger.next_seq().await.unwrap(),
        1,
        "only message 0 is an entry"
    );
    let e = ledger.entry_by_seq(0).await.unwrap().unwrap();
    assert_eq!(e.entry.external_id, "A");
    assert_eq!(
        e.entry.metadata.as_deref(),
        Some(r#"{"a":1,"b":{"a":2}}"#),
        "sealed as sent"
    );
    assert_eq!(dl.len(), n_bad, "one dead letter per rejected message");
    let by_offset: HashMap<i64, DeadLetterEnvelope> = dl
        .into_iter()
        .map(|(_, body)| {
            let env: DeadLetterEnvelope = serde_json::from_slice(&body).unwrap();
            (env.source.clone().unwrap().offset, env)
        })
        .collect();
    for (offset, (_, want)) in cases.iter().enumerate() {
        let got = by_offset.get(&(offset as i64));
        match want {
            None => assert!(got.is_none(), "offset {offset} must not be dead-lettered"),
            Some((reason, detail)) => {
                let env = got.unwrap_or_else(|| panic!("offset {offset} not dead-lettered"));
                assert_eq!(env.reason, *reason, "offset {offset}: {}", env.detail);
                assert!(
                    env.detail.contains(detail),
                    "offset {offset}: {:?} lacks {detail:?}",
                    env.detail
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_evidence_topic_is_a_start_up_error_naming_the_key() {
    let (_db, ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::unique("absent");
    anchord_testkit::kafka::create_topic(&format!("{topic}.dlq"), 1).await;
    let (h, _token) = start(config(&topic), ledger.clone());
    let err = tokio::time::timeout(Duration::from_secs(60), h)
        .await
        .expect("ingest returns promptly")
        .unwrap()
        .unwrap_err();
    match err {
        IngestError::Config(msg) => {
            assert!(msg.starts_with("ingest.topic:"), "{msg}");
            assert!(
                msg.contains(&topic) && msg.contains("create_topics"),
                "{msg}"
            );
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    assert_eq!(ledger.next_seq().await.unwrap(), 0);
}
