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
    // The process metrics (CPU, memory, open files, start time), with
    // plausible values.
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} sample in /metrics"))
            .trim()
            .parse()
            .unwrap()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(
        started > now - 3600.0 && started <= now + 1.0,
        "process_start_time_seconds {started}, now {now}"
    );
    // Whole seconds (the prometheus crate's resolution): may still be 0.
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    // The combined exposition is valid for Prometheus, and every family in
    // it is in the spec with its type.
    promtool_check(&metrics, "anchord run's exposition");
    let spec = anchord_testkit::metrics_spec::load();
    for line in metrics.lines() {
        let rest = line
            .strip_prefix("# TYPE anchord_")
            .map(|r| format!("anchord_{r}"))
            .or_else(|| {
                line.strip_prefix("# TYPE process_")
                    .map(|r| format!("process_{r}"))
            });
        if let Some(rest) = rest {
            let (name, kind) = rest.split_once(' ').unwrap();
            let name = name.to_owned();
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

/// Run `anchord <args>` to completion (bounded) with `config` and extra
/// environment; returns (exit code, stderr).
fn run_to_exit(config: &Path, args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ANCHORD_LOG", "info,librdkafka=warn")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Proc(cmd.spawn().expect("the anchord binary starts"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read as _;
            child
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (s.code(), err);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "anchord {args:?} still running after 60 s with a bad configuration"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_subcommand_exits_2_on_bad_configuration_before_binding_or_migrating() {
    let dir = temp_dir("anchord_badconf");
    // A real, empty database: a service that got as far as opening the
    // ledger would migrate it (or the witness's schema) and leave tables.
    let db = TestDb::new().await;
    let (rsa, _) = anchord_testkit::rsa_keypair(&dir);
    let (config, ports) = write_config(&dir, &db, "unused-topic", "http://127.0.0.1:9", &rsa);
    // Hold the admin port: a service that binds before validating fails
    // there instead (exit 1, "admin.listen … in use").
    let _held = std::net::TcpListener::bind(("127.0.0.1", ports.admin)).unwrap();
    let wkey = NoteSigner::from_seed(
        "witness.test",
        anchord_core::checkpoint::ALG_COSIGNATURE_V1,
        &[3; 32],
    )
    .unwrap();
    let wkey_path = dir.join("witness.key");
    std::fs::write(&wkey_path, wkey.private_key_text()).unwrap();
    let missing = dir.join("no-such-key").display().to_string();
    let sealer_vkey = NoteSigner::from_seed("anchord.test/run", ALG_ED25519, &[9; 32])
        .unwrap()
        .verifier()
        .vkey();
    let witness_ok = [
        (
            "ANCHORD__WITNESS__SIGNING_KEY",
            wkey_path.display().to_string(),
        ),
        (
            "ANCHORD__WITNESS__LOGS",
            format!(r#"[{{origin = "anchord.test/run", vkeys = ["{sealer_vkey}"]}}]"#),
        ),
        (
            "ANCHORD__WITNESS__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        ),
    ];
    let no_tenants = ("ANCHORD__INGEST__TENANTS", "[]".to_string());
    let no_sealer_key = ("ANCHORD__BATCHER__SIGNING_KEY", missing.clone());
    let bad_target = (
        "ANCHORD__RELAY__TARGETS",
        format!(
            r#"[{{name = "court", kind = "judicial", url = "http://127.0.0.1:9", account_id = "bank-a", signing_key = "{missing}"}}]"#
        ),
    );
    // (arguments, environment, what the error must name)
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (&["ingest"], vec![no_tenants.clone()], "ingest.tenants"),
        (&["run"], vec![no_tenants.clone()], "ingest.tenants"),
        (&["batcher"], vec![no_sealer_key.clone()], "no-such-key"),
        (&["verifier"], vec![no_sealer_key.clone()], "no-such-key"),
        (&["workflow"], vec![no_sealer_key.clone()], "no-such-key"),
        // `config check --service S` runs S's own validation.
        (
            &["config", "check", "--service", "batcher"],
            vec![no_sealer_key.clone()],
            "no-such-key",
        ),
        (
            &["config", "check", "--service", "run"],
            vec![no_tenants.clone()],
            "ingest.tenants",
        ),
        // Commands that serve nothing answer the same way.
        (
            &["audit", "--no-progress"],
            vec![no_sealer_key.clone()],
            "no-such-key",
        ),
        (
            &["trust", "export", "--out", "-"],
            vec![no_sealer_key.clone()],
            "no-such-key",
        ),
        (&["run"], vec![no_sealer_key.clone()], "no-such-key"),
        (
            &["witness"],
            vec![witness_ok[1].clone(), witness_ok[2].clone()],
            "witness.signing_key",
        ),
        (
            &["witness"],
            vec![
                ("ANCHORD__WITNESS__SIGNING_KEY", missing.clone()),
                witness_ok[1].clone(),
                witness_ok[2].clone(),
            ],
            "no-such-key",
        ),
        (&["relay"], vec![bad_target.clone()], "no-such-key"),
        (
            &["run", "--stages", "relay"],
            vec![bad_target.clone()],
            "no-such-key",
        ),
        (
            &["relay", "run", "--target", "nowhere"],
            vec![],
            "no target named \"nowhere\"",
        ),
    ];
    let mut problems = Vec::new();
    // The configuration itself is good for every service.
    for service in ["ingest", "batcher", "relay", "verifier", "workflow", "run"] {
        let (code, stderr) = run_to_exit(&config, &["config", "check", "--service", service], &[]);
        if code != Some(0) {
            problems.push(format!(
                "config check --service {service}: exit {code:?}:\n{stderr}"
            ));
        }
    }
    for (args, env, names) in &cases {
        let (code, stderr) = run_to_exit(&config, args, env);
        if code != Some(2) {
            problems.push(format!(
                "anchord {args:?}: exit {code:?}, want 2:\n{stderr}"
            ));
            continue;
        }
        if stderr.contains("admin.listen") || stderr.contains("admin listener") {
            problems.push(format!(
                "anchord {args:?} reached the admin listener:\n{stderr}"
            ));
        }
        if !stderr.contains("configuration error") || !stderr.contains(names) {
            problems.push(format!(
                "anchord {args:?}: the error does not name {names:?}:\n{stderr}"
            ));
        }
    }
    // Nothing was migrated: no ledger and no witness bookkeeping table.
    let c = db.client().await;
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    if tables != 0 {
        problems.push(format!(
            "{tables} table(s) created in the database by commands with a bad configuration"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `anchord workflow` whose evidence publisher dies (a submission row it
/// cannot read panics it) stops with a non-zero exit naming the loop, after
/// its readiness had reported every loop running (issue 15). Before, the
/// loop died silently and the process served on with `/readyz` green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_workflow_loop_stops_anchord_workflow_with_an_error() {
    let dir = temp_dir("anchord_wf_task");
    let (db, _ledger) = TestDb::migrated().await;
    let topic = anchord_testkit::kafka::topic("wftask", 1).await;
    let (rsa, _) = anchord_testkit::rsa_keypair(&dir);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (config, ports) = write_config(&dir, &db, &topic, &dead, &rsa);
    let log = dir.join("workflow.log");
    let mut wf = Proc(
        Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ANCHORD_LOG", "info,librdkafka=warn")
            .arg("--config")
            .arg(&config)
            .arg("workflow")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let readyz = format!("http://127.0.0.1:{}/readyz", ports.admin);
    wait_for("the workflow service to be ready", 60, || async {
        matches!(get(&readyz).await, Some((200, _)))
    })
    .await;
    let (_, body) = get(&readyz).await.unwrap();
    assert!(body.contains("workflow tasks ok"), "{body}");

    db.client()
        .await
        .batch_execute(
            "ALTER TABLE workflow.submissions ALTER COLUMN tenant DROP NOT NULL;
             INSERT INTO workflow.submissions (kind, object_id, tenant, external_id, hash_alg, hash, metadata)
             VALUES ('preservation', 0, NULL, 'wf-broken', 'sha256', 'aa', '{}')",
        )
        .await
        .unwrap();
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = wf.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("a dead evidence publisher did not stop anchord workflow within 60 s:\n{stderr}")
    });
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("background task evidence_publisher panicked"),
        "{stderr}"
    );
}
