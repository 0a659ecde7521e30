//! Two ingest instances in one consumer group: every message is ingested
//! exactly once across the rebalances caused by the second instance joining
//! and the first one leaving.
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anchord_testkit::TestDb;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_ingest_everything_once_across_joins_and_leaves() {
    const PARTS: i32 = 4;
    const CHUNK: usize = 3000;
    let (_db, ledger) = TestDb::migrated().await;
    let topic = topics("rebal", PARTS).await;
    let (_g, msgs) = generator(3 * CHUNK);
    let chunk = |k: usize| -> Vec<(String, Vec<u8>, Option<i32>)> {
        msgs[k * CHUNK..(k + 1) * CHUNK]
            .iter()
            .map(|m| (m.key.clone(), m.payload.clone(), None))
            .collect()
    };
    let a_config = config(&topic);
    let group = a_config.group_id.clone();
    let mut b_config = a_config.clone();
    b_config.batch_max = 300;

    produce(&topic, chunk(0)).await;
    let (a, a_stop) = start(a_config, ledger.clone());
    wait_until(
        Duration::from_secs(60),
        "instance A to make progress",
        || {
            let l = ledger.clone();
            async move { l.next_seq().await.unwrap() > 0 }
        },
    )
    .await;

    // B joins mid-stream: a rebalance while A has batches in flight.
    let (b, b_stop) = start(b_config, ledger.clone());
    produce(&topic, chunk(1)).await;
    wait_until(Duration::from_secs(120), "the first two chunks", || {
        let l = ledger.clone();
        async move { l.next_seq().await.unwrap() >= 2 * CHUNK as u64 }
    })
    .await;

    // A leaves: B takes every partition over from the ledger's positions.
    stop(a, a_stop).await;
    produce(&topic, chunk(2)).await;
    wait_until(Duration::from_secs(120), "all three chunks", || {
        let l = ledger.clone();
        async move { l.next_seq().await.unwrap() >= 3 * CHUNK as u64 }
    })
    .await;
    stop(b, b_stop).await;

    let n = ledger.next_seq().await.unwrap();
    assert_eq!(n, 3 * CHUNK as u64, "exactly one entry per message");
    let entries = ledger.entries_range(0, n).await.unwrap();
    let ids: HashSet<&str> = entries
        .iter()
        .map(|e| e.entry.external_id.as_str())
        .collect();
    assert_eq!(ids.len(), 3 * CHUNK, "no (tenant, external id) twice");
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for e in &entries {
        let s = e.source.as_ref().unwrap();
        per_partition.entry(s.partition).or_default().push(s.offset);
    }
    let positions = positions(&ledger, &group, &topic).await;
    for (p, offs) in &mut per_partition {
        offs.sort_unstable();
        assert_eq!(
            *offs,
            (0..positions[p]).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
}
