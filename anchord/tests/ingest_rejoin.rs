//! `anchord ingest` restarted after a SIGKILL mid-stream gets its partitions
//! back and sequences the waiting evidence within a bound, round after
//! round: when the consumer group leaves it without partitions while
//! evidence waits (tansu 0.6 does this after a SIGKILLed predecessor, for
//! minutes: `partitions assigned partitions=[]`; seen in about one run in two
//! of this test with the watchdog disabled through
//! `ANCHORD_TEST_ASSIGNMENT_GRACE_MS=3600000`), it notices, rejoins as a new
//! member, and shows its state in `/metrics` and `/readyz`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anchord_ingest::loadgen::Generator;
use anchord_ledger::Ledger;
use anchord_testkit::TestDb;
use anchord_testkit::process::{Proc, free_port};

const TENANTS: &str = r#"["icbc-sh","ccb-bj","boc-gd"]"#;
/// The grace period given to ingest in this test (the default is 30 s).
const GRACE_MS: u64 = 20_000;
/// How long one restart may take to sequence the evidence produced after it:
/// the dead predecessor's session (10 s), a rebalance, and one or two
/// grace period with a rejoin. tansu left restarts idle for 60–240 s.
const ROUND_BOUND: Duration = Duration::from_secs(60);

fn spawn_ingest(db: &TestDb, topic: &str, group: &str, admin: u16) -> Proc {
    Proc(
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
            .env("ANCHORD__INGEST__BATCH_LINGER_MS", "5")
            .env(
                "ANCHORD__INGEST__ASSIGNMENT_GRACE_MS",
                std::env::var("ANCHORD_TEST_ASSIGNMENT_GRACE_MS")
                    .unwrap_or_else(|_| GRACE_MS.to_string()),
            )
            .env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
            .env("ANCHORD_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the anchord binary starts"),
    )
}

async fn produce(topic: &str, g: &mut Generator, n: u64) {
    let topic = topic.to_owned();
    let mut gen_ = std::mem::replace(g, Generator::new("x", vec!["icbc-sh".into()], 0.0, 0.0));
    let gen_ = tokio::task::spawn_blocking(move || {
        let stats = anchord_ingest::loadgen::publish(
            &anchord_testkit::kafka::brokers(),
            &topic,
            &mut gen_,
            n,
            0,
            false,
            &|| false,
        )
        .expect("publishing");
        assert_eq!(stats.failed, 0);
        gen_
    })
    .await
    .unwrap();
    *g = gen_;
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// A sample's value from a Prometheus text exposition.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn wait_seq(ledger: &Ledger, n: u64, bound: Duration, child: &mut Proc) -> Duration {
    let started = Instant::now();
    loop {
        let got = ledger.next_seq().await.unwrap();
        if got >= n {
            return started.elapsed();
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("anchord ingest exited early ({status}) with {got} of {n} entries");
        }
        assert!(
            started.elapsed() < bound,
            "{got} of {n} entries sequenced after {bound:?}: the restarted ingest sits idle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_sigkill_gets_partitions_back_and_sequences_within_a_bound() {
    const ROUNDS: u64 = 6;
    const PER_ROUND: u64 = 20_000;
    let (db, ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("rejoin", 4).await;
    anchord_testkit::kafka::create_topic(&format!("{topic}.dlq"), 1).await;
    let group = anchord_testkit::unique("g");
    let mut g = Generator::new(
        &anchord_testkit::unique("run"),
        serde_json::from_str(TENANTS).unwrap(),
        0.0,
        0.0,
    );
    let mut took = Vec::new();
    let mut admin = free_port();
    let mut child = spawn_ingest(&db, &topic, &group, admin);
    for round in 1..=ROUNDS {
        produce(&topic, &mut g, PER_ROUND).await;
        // Each restart must get going within the bound; the kill lands
        // mid-stream, with batches in flight.
        let target = if round == ROUNDS {
            ROUNDS * PER_ROUND
        } else {
            (round - 1) * PER_ROUND + PER_ROUND / 2
        };
        took.push(wait_seq(&ledger, target, ROUND_BOUND, &mut child).await);
        eprintln!("round {round}: sequenced in {:?}", took.last().unwrap());
        if round == ROUNDS {
            break;
        }
        // SIGKILL: the group still counts this member until its session
        // times out; the successor joins at once.
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        admin = free_port();
        child = spawn_ingest(&db, &topic, &group, admin);
    }
    assert_eq!(
        ledger.next_seq().await.unwrap(),
        ROUNDS * PER_ROUND,
        "nothing doubled"
    );

    // The last instance owns every partition, says so, and is ready.
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    let readyz = format!("http://127.0.0.1:{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = get(&metrics).await.unwrap_or_default();
        let ready = get(&readyz).await.is_some_and(|(s, _)| s == 200);
        if sample(&body, "anchord_ingest_assigned_partitions") == Some(4.0)
            && sample(&body, "anchord_ingest_assignment_stuck") == Some(0.0)
            && ready
        {
            eprintln!(
                "rounds took {took:?}; the last instance rejoined {} time(s)",
                sample(&body, "anchord_ingest_group_rejoins_total").unwrap()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last instance does not report 4 assigned partitions, not stuck, ready:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
