//! PostgreSQL goes away mid-stream (every connection cut, new ones refused)
//! and comes back: ingest waits, retries and loses nothing, duplicates
//! nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use anchord_ledger::{DatabaseConfig, Ledger};
use anchord_testkit::TestDb;
use anchord_testkit::chaos::{ChaosProxy, reroute_postgres_url};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_pauses_ingest_and_loses_nothing() {
    const N: usize = 4000;
    let (db, direct) = TestDb::migrated().await;
    // Ingest reaches PostgreSQL only through the proxy; the test's own
    // checks use a direct connection.
    let (target, _) = reroute_postgres_url(db.url(), "127.0.0.1:1".parse().unwrap());
    let proxy = ChaosProxy::start(target).await;
    let (_, via_proxy) = reroute_postgres_url(db.url(), proxy.addr());
    let mut cfg = DatabaseConfig::from_url(via_proxy);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.acquire_timeout = Duration::from_secs(2);
    let ledger = Ledger::connect(&cfg).unwrap();

    let topic = topics("outage", 4).await;
    let (_g, msgs) = generator(N);
    let (first, second) = msgs.split_at(N / 2);
    produce(
        &topic,
        first
            .iter()
            .map(|m| (m.key.clone(), m.payload.clone(), None))
            .collect(),
    )
    .await;

    let config = config(&topic);
    let group = config.group_id.clone();
    let (h, token) = start(config, ledger);
    wait_until(
        Duration::from_secs(120),
        "some entries before the outage",
        || {
            let l = direct.clone();
            async move { l.next_seq().await.unwrap() > 0 }
        },
    )
    .await;

    // The outage: cut everything, publish the rest meanwhile, hold it a while.
    proxy.break_all();
    let at_cut = direct.next_seq().await.unwrap();
    produce(
        &topic,
        second
            .iter()
            .map(|m| (m.key.clone(), m.payload.clone(), None))
            .collect(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = direct.next_seq().await.unwrap();
    assert!(
        during <= N as u64 / 2 + 500,
        "nothing from after the cut could be written while the database was unreachable \
         (at cut {at_cut}, during {during})"
    );
    assert!(
        !h.is_finished(),
        "ingest must wait for the database, not exit"
    );
    proxy.restore();

    wait_until(
        Duration::from_secs(120),
        "every entry after the outage",
        || {
            let l = direct.clone();
            async move { l.next_seq().await.unwrap() >= N as u64 }
        },
    )
    .await;
    stop(h, token).await;

    assert_eq!(
        direct.next_seq().await.unwrap(),
        N as u64,
        "no loss, no duplicate"
    );
    let entries = direct.entries_range(0, N as u64).await.unwrap();
    let mut ids: Vec<&str> = entries
        .iter()
        .map(|e| e.entry.external_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), N, "every external id exactly once");
    let pos = positions(&direct, &group, &topic).await;
    let covered: i64 = pos.values().sum();
    assert_eq!(covered, N as i64, "positions cover every message");
}
