//! The `anchord ingest` process against the real broker and PostgreSQL:
//! SIGKILL mid-stream and restart loses nothing and duplicates nothing;
//! SIGTERM finishes the batch in flight, stores positions and exits 0.
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anchord_ingest::loadgen::Generator;
use anchord_ledger::Ledger;
use anchord_testkit::TestDb;

const TENANTS: &str = r#"["icbc-sh","ccb-bj","boc-gd"]"#;

fn spawn_ingest(db: &TestDb, topic: &str, group: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_anchord"))
        .arg("ingest")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url())
        .env("KAFKA_BROKERS", anchord_testkit::kafka::brokers())
        .env("ANCHORD__INGEST__TOPIC", topic)
        .env("ANCHORD__INGEST__GROUP_ID", group)
        .env("ANCHORD__INGEST__DEAD_LETTER_TOPIC", format!("{topic}.dlq"))
        .env("ANCHORD__INGEST__TENANTS", TENANTS)
        // Small batches: many transactions, so the kill lands between and
        // inside them.
        .env("ANCHORD__INGEST__BATCH_MAX", "400")
        .env("ANCHORD__INGEST__BATCH_LINGER_MS", "5")
        .env("ANCHORD__ADMIN__LISTEN", "127.0.0.1:0")
        .env("ANCHORD_LOG", "info,librdkafka=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the anchord binary starts")
}

async fn produce(topic: &str, n: usize) {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut g = Generator::new(
            &anchord_testkit::unique("run"),
            serde_json::from_str(TENANTS).unwrap(),
            0.0,
            0.0,
        );
        let stats = anchord_ingest::loadgen::publish(
            &anchord_testkit::kafka::brokers(),
            &topic,
            &mut g,
            n as u64,
            0,
            false,
            &|| false,
        )
        .expect("publishing");
        assert_eq!(stats.failed, 0);
    })
    .await
    .unwrap();
}

async fn wait_for_entries(ledger: &Ledger, n: u64, timeout: Duration, child: &mut Child) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = ledger.next_seq().await.unwrap();
        if got >= n {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("anchord ingest exited early ({status}) with {got} of {n} entries");
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {got} of {n} entries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Exactly one entry per offset up to each stored position, nothing else.
async fn assert_exactly_once(ledger: &Ledger, group: &str, topic: &str, n: usize) {
    assert_eq!(
        ledger.next_seq().await.unwrap(),
        n as u64,
        "exactly N entries"
    );
    let entries = ledger.entries_range(0, n as u64).await.unwrap();
    let ids: HashSet<&str> = entries
        .iter()
        .map(|e| e.entry.external_id.as_str())
        .collect();
    assert_eq!(ids.len(), n, "no evidence twice");
    let mut per: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.entry.seq, i as u64);
        let s = e.source.as_ref().unwrap();
        per.entry(s.partition).or_default().push(s.offset);
    }
    let positions: BTreeMap<i32, i64> = ledger
        .positions(group, topic)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, p.next_offset))
        .collect();
    for (p, offs) in &mut per {
        offs.sort_unstable();
        assert_eq!(
            *offs,
            (0..positions[p]).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    assert!(ledger.dead_letter_counts().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_loses_nothing_and_duplicates_nothing() {
    const N: usize = 40_000;
    let (db, ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("crash", 4).await;
    anchord_testkit::kafka::create_topic(&format!("{topic}.dlq"), 1).await;
    let group = anchord_testkit::unique("g");
    produce(&topic, N).await;

    for kill_at in [3_000u64, 15_000] {
        let mut child = spawn_ingest(&db, &topic, &group);
        wait_for_entries(&ledger, kill_at, Duration::from_secs(120), &mut child).await;
        // SIGKILL: no drain, no commit of the batch in flight.
        child.kill().unwrap();
        child.wait().unwrap();
        let at = ledger.next_seq().await.unwrap();
        assert!(
            at < N as u64,
            "the kill must land mid-stream (got {at} of {N})"
        );
    }
    let mut child = spawn_ingest(&db, &topic, &group);
    wait_for_entries(&ledger, N as u64, Duration::from_secs(180), &mut child).await;
    terminate(&mut child);
    assert_exactly_once(&ledger, &group, &topic, N).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batch_in_flight_stores_positions_and_exits_zero() {
    const N: usize = 20_000;
    let (db, ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("term", 2).await;
    anchord_testkit::kafka::create_topic(&format!("{topic}.dlq"), 1).await;
    let group = anchord_testkit::unique("g");
    produce(&topic, N).await;
    let mut child = spawn_ingest(&db, &topic, &group);
    wait_for_entries(&ledger, 2_000, Duration::from_secs(120), &mut child).await;
    let status = terminate(&mut child);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    // Whatever was ingested is consistent with the stored positions.
    let n = ledger.next_seq().await.unwrap() as usize;
    assert!(n < N, "stopped mid-stream");
    assert_exactly_once(&ledger, &group, &topic, n).await;
    // And a restart finishes the rest.
    let mut child = spawn_ingest(&db, &topic, &group);
    wait_for_entries(&ledger, N as u64, Duration::from_secs(180), &mut child).await;
    terminate(&mut child);
    assert_exactly_once(&ledger, &group, &topic, N).await;
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "anchord ingest did not exit within 60 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
