//! An ingest instance left without the partitions that hold waiting
//! evidence notices it, says so (readiness, metrics), rejoins its group as a
//! new member once per grace period, and takes everything over once the
//! member that held them is gone.
//!
//! Deterministic on any broker: a second member of the group (a plain
//! librdkafka consumer with the same assignment strategy) takes its share of
//! the partitions and never consumes them, like a member the coordinator
//! keeps although it is dead. Alone in its own test binary: the metrics are
//! process-global.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anchord_ingest::metrics;
use anchord_ingest::probe::BrokerProbe;
use anchord_testkit::TestDb;
use common::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// A group member that holds partitions and never consumes them.
fn silent_member(topic: &str, group: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", anchord_testkit::kafka::brokers())
        .set("group.id", group)
        .set("client.id", "silent-member")
        .set("partition.assignment.strategy", "roundrobin")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    std::thread::spawn(move || {
        // Polling serves heartbeats and rebalances; the messages are dropped
        // and nothing is ever committed.
        while !stop.load(Ordering::SeqCst) {
            let _ = c.poll(Duration::from_millis(50));
        }
        c.unsubscribe();
        drop(c);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_held_by_a_member_that_never_consumes_make_ingest_unready_and_rejoin_until_it_goes()
 {
    const PARTS: i32 = 4;
    // Above the session timeout (10 s): a join may wait that long for a member
    // that went away.
    const GRACE_MS: u64 = 11_000;
    let (_db, ledger) = TestDb::migrated().await;
    let topic = topics("silent", PARTS).await;
    let mut config = config(&topic);
    config.assignment_grace_ms = GRACE_MS;
    let group = config.group_id.clone();
    let probe = BrokerProbe::new(&config).unwrap();

    // The silent member joins first and owns everything.
    let stop_member = Arc::new(AtomicBool::new(false));
    let member = silent_member(&topic, &group, stop_member.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Evidence keeps arriving on every partition, so whichever half the
    // silent member holds (round robin may swap halves on each rejoin)
    // always has some waiting.
    let (_g, msgs) = generator(20_000);
    let msgs = Arc::new(msgs);
    let produced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop_producing = Arc::new(AtomicBool::new(false));
    let producer = {
        let (topic, msgs, produced, stop) = (
            topic.clone(),
            msgs.clone(),
            produced.clone(),
            stop_producing.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let from = produced.load(Ordering::SeqCst);
                let chunk: Vec<_> = (from..from + 40)
                    .map(|i| {
                        let m = &msgs[i];
                        (m.key.clone(), m.payload.clone(), Some(i as i32 % PARTS))
                    })
                    .collect();
                produce(&topic, chunk).await;
                produced.store(from + 40, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let (h, token) = start(config, ledger.clone());
    // After the grace period ingest is not ready and says why; it rejoins
    // (once per grace period) and keeps ingesting what it owns meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let why = loop {
        if let Err(why) = probe.check(Duration::from_secs(2)).await {
            let seq = ledger.next_seq().await.unwrap();
            assert!(
                (seq as usize) < produced.load(Ordering::SeqCst),
                "evidence waits while ingest is stuck"
            );
            break why;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readiness never failed while half the partitions were held by a silent member"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(why.contains("assigned 2 of 4 partition(s)"), "{why}");
    assert!(why.contains("waiting evidence"), "{why}");
    wait_until(Duration::from_secs(40), "a rejoin", || async {
        metrics::GROUP_REJOINS.get() >= 1
    })
    .await;
    assert!(
        ledger.next_seq().await.unwrap() > 0,
        "ingest consumes the partitions it owns"
    );
    // The rejoin completes (the new member holds its share again) before the
    // silent member leaves. tansu 0.6.0 keeps a forming group's leader when
    // that leader leaves before its SyncGroup (its Forming `leave` removes
    // the member but not the leader, and only a missed heartbeat of a member
    // still listed clears it), so every later join waits for a leader that is
    // gone and the group never forms again: a broker fault (a Kafka
    // coordinator drops the departed leader and rebalances), which failed
    // this test in a CI run whose timing let the silent member leave
    // mid-rebalance.
    wait_until(
        Duration::from_secs(40),
        "the rejoined member's assignment",
        || async { metrics::ASSIGNED_PARTITIONS.get() > 0 },
    )
    .await;

    // The silent member leaves: ingest owns all four, ingests everything
    // exactly once, and is ready again.
    stop_member.store(true, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || member.join().unwrap())
        .await
        .unwrap();
    stop_producing.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let total = produced.load(Ordering::SeqCst) as u64;
    wait_until(Duration::from_secs(60), "all the evidence", || {
        let l = ledger.clone();
        async move { l.next_seq().await.unwrap() >= total }
    })
    .await;
    wait_until(Duration::from_secs(30), "readiness to recover", || {
        let p = probe.clone();
        async move { p.check(Duration::from_secs(2)).await.is_ok() }
    })
    .await;
    assert_eq!(metrics::ASSIGNED_PARTITIONS.get(), 4);
    assert_eq!(metrics::ASSIGNMENT_STUCK.get(), 0);
    stop(h, token).await;
    assert_eq!(ledger.next_seq().await.unwrap(), total, "nothing doubled");
    let positions = positions(&ledger, &group, &topic).await;
    assert_eq!(
        positions.values().sum::<i64>(),
        total as i64,
        "{positions:?}"
    );
}
