//! `anchord run` as a small deployment runs it: every stage in one process
//! against the real broker, PostgreSQL and a judicial-chain simulator;
//! readiness naming what is unreachable; a failing stage stopping the rest.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_ingest::loadgen::Generator;
use anchord_relay::sim::{self, Faults, SimConfig};
use anchord_testkit::process::{Proc, free_port, promtool_check, temp_dir};
use anchord_testkit::{TestDb, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_anchord");
const TENANTS: &str = r#"["icbc-sh","ccb-bj"]"#;

struct Ports {
    admin: u16,
    verifier: u16,
    workflow: u16,
}

fn write_config(
    dir: &Path,
    db: &TestDb,
    topic: &str,
    target_url: &str,
    rsa_key: &Path,
) -> (PathBuf, Ports) {
    let sealer = dir.join("sealer.key");
    let key = NoteSigner::from_seed("anchord.test/run", ALG_ED25519, &[9; 32]).unwrap();
    std::fs::write(&sealer, key.private_key_text()).unwrap();
    let ports = Ports {
        admin: free_port(),
        verifier: free_port(),
        workflow: free_port(),
    };
    let p = dir.join("anchord.toml");
    std::fs::write(
        &p,
        format!(
            r#"[database]
url = "{db}"
[admin]
listen = "127.0.0.1:{admin}"
[ingest]
brokers = "{brokers}"
topic = "{topic}"
dead_letter_topic = "{topic}.dlq"
group_id = "{topic}.group"
tenants = {TENANTS}
create_topics = true
batch_linger_ms = 5
[batcher]
origin = "anchord.test/run"
signing_key = "{sealer}"
block_interval_ms = 200
[relay]
poll_ms = 50
[[relay.targets]]
name = "court"
kind = "judicial"
url = "{target_url}"
account_id = "bank-a"
signing_key = "{rsa}"
confirm_poll_ms = 100
[verifier]
listen = "127.0.0.1:{verifier}"
[workflow]
listen = "127.0.0.1:{workflow}"
storage_dir = "{files}"
"#,
            db = db.url(),
            admin = ports.admin,
            brokers = anchord_testkit::kafka::brokers(),
            sealer = sealer.display(),
            rsa = rsa_key.display(),
            verifier = ports.verifier,
            workflow = ports.workflow,
            files = dir.join("files").display(),
        ),
    )
    .unwrap();
    (p, ports)
}

fn spawn_run(config: &Path, extra: &[&str], stderr: Stdio) -> Proc {
    Proc(
        Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ANCHORD_LOG", "info,librdkafka=warn")
            .arg("--config")
            .arg(config)
            .arg("run")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the anchord binary starts"),
    )
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

async fn sim_for(dir: &Path, public: &Path) -> sim::SimHandle {
    sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            "bank-a".into(),
            anchord_relay::gateway::load_public_key(&std::fs::read_to_string(public).unwrap())
                .unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults: Faults::default(),
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_takes_evidence_from_kafka_to_an_anchored_proof_and_drains_on_sigterm() {
    const N: u64 = 400;
    let dir = temp_dir("anchord_run_proc");
    let (db, ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("run", 2).await;
    let (rsa, public) = anchord_testkit::rsa_keypair(&dir);
    let gw = sim_for(&dir, &public).await;
    let (config, ports) = write_config(&dir, &db, &topic, &gw.url(), &rsa);
    let mut run = spawn_run(&config, &[], Stdio::inherit());

    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    for _ in 0..600 {
        assert!(
            run.0.try_wait().unwrap().is_none(),
            "anchord run exited early"
        );
        if matches!(get(&readyz).await, Some((200, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = get(&readyz).await.unwrap();
    for check in ["postgres ok", "kafka ok", "targets ok"] {
        assert!(body.contains(check), "readyz lacks {check:?}: {body}");
    }

    let t = topic.clone();
    tokio::task::spawn_blocking(move || {
        let mut g = Generator::new("run", serde_json::from_str(TENANTS).unwrap(), 0.0, 0.0);
        let stats = anchord_ingest::loadgen::publish(
            &anchord_testkit::kafka::brokers(),
            &t,
            &mut g,
            N,
            0,
            false,
            &|| false,
        )
        .unwrap();
        assert_eq!(stats.failed, 0);
    })
    .await
    .unwrap();

    for _ in 0..1200 {
        assert!(
            run.0.try_wait().unwrap().is_none(),
            "anchord run exited early"
        );
        let s = ledger.summary().await.unwrap();
        if s.entries == N
            && s.targets
                .iter()
                .any(|t| t.target == "court" && t.entries == N)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = ledger.summary().await.unwrap();
    assert!(
        s.entries == N && s.targets.iter().any(|t| t.entries == N),
        "not every entry sealed and anchored within 120 s: {s:?}"
    );
    // No witnesses configured: every checkpoint is final at once.
    assert_eq!(s.sealed_entries, N);
    assert_eq!(s.witnessed_entries, N);

    // The verifier in the same process serves an anchored proof.
    let entry = ledger.entry_by_seq(N / 2).await.unwrap().unwrap();
    let url = format!(
        "http://127.0.0.1:{}/v1/proofs/{}",
        ports.verifier,
        hex::encode(&entry.entry.evidence_hash)
    );
    wait_for("an anchored proof bundle", 30, || async {
        matches!(get(&url).await, Some((200, b)) if b.contains("\"anchored\""))
    })
    .await;

    // The workflow API runs in the same process.
    let (status, _) = get(&format!(
        "http://127.0.0.1:{}/v1/openapi.json",
        ports.workflow
    ))
    .await
    .unwrap();
    assert_eq!(status, 200, "workflow API document");

    // One exposition carries every stage's metrics.
    let (status, metrics) = get(&format!("http://127.0.0.1:{}/metrics", ports.admin))
        .await
        .unwrap();
    assert_eq!(status, 200);
    for prefix in [
        "anchord_ingest_",
        "anchord_batcher_",
        "anchord_relay_",
        "anchord_verifier_",
    ] {
        assert!(metrics.contains(prefix), "no {prefix}* metric in /metrics");
    }
    // The combined exposition is valid for Prometheus, and every family in
    // it is in the spec with its type.
    promtool_check(&metrics, "anchord run's exposition");
    let spec = anchord_testkit::metrics_spec::load();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE anchord_") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let name = format!("anchord_{name}");
            let s = spec
                .get(&name)
                .unwrap_or_else(|| panic!("anchord run exports {name}, not in docs/metrics.md"));
            assert_eq!(s.kind, kind, "{name}'s type");
        }
    }

    Command::new("kill")
        .args(["-TERM", &run.0.id().to_string()])
        .status()
        .unwrap();
    let mut exited = None;
    for _ in 0..300 {
        if let Some(s) = run.0.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = exited.expect("anchord run drains and exits within 30 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_eq!(
        ledger.summary().await.unwrap().entries,
        N,
        "nothing lost or duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_an_unreachable_target_and_a_failing_stage_stops_the_process() {
    let dir = temp_dir("anchord_run_fail");
    let (db, _ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("runfail", 1).await;
    let (rsa, _) = anchord_testkit::rsa_keypair(&dir);
    // Nothing listens on this port.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (config, ports) = write_config(&dir, &db, &topic, &dead, &rsa);

    let _run = spawn_run(&config, &["--stages", "ingest,relay"], Stdio::null());
    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    wait_for("readyz to answer", 60, || async {
        get(&readyz).await.is_some()
    })
    .await;
    let (status, body) = get(&readyz).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("postgres ok"), "{body}");
    assert!(body.contains("kafka ok"), "{body}");
    assert!(body.contains("FAIL target court:"), "{body}");

    // A missing evidence topic (and create_topics off) fails the ingest
    // stage at start: the process stops every stage and names it.
    let log = dir.join("failing-run.log");
    let mut failing = Proc(
        Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ANCHORD__INGEST__TOPIC", anchord_testkit::unique("missing"))
            .env("ANCHORD__INGEST__CREATE_TOPICS", "false")
            .env("ANCHORD__ADMIN__LISTEN", "127.0.0.1:0")
            .arg("--config")
            .arg(&config)
            .args(["run", "--stages", "batcher,ingest"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // Bounded: a process whose other stages did not stop would hang here.
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = failing.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("a failing stage did not stop the process within 60 s:\n{stderr}")
    });
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stage ingest"), "{stderr}");
    assert!(
        stderr.contains("stage stopped"),
        "the batcher drained: {stderr}"
    );
}
