//! Metrics checked by the real thing. A small pipeline runs as operators run
//! it (`anchord witness`, `judicial-sim`, `ingest`, `batcher`, `relay`,
//! `verifier`, one process each with its own admin listener) on the real
//! broker and PostgreSQL; a real Prometheus server (Debian's `prometheus`,
//! installed by `scripts/test-peers`) scrapes every admin listener each
//! second. Then:
//!
//! - `promtool check metrics` passes on every service's exposition;
//! - Prometheus answers queries about the pipeline: every job up, entries
//!   accepted, dead letters by reason, a sample in every per-stage latency
//!   histogram, confirmed anchors;
//! - every Grafana dashboard under `dashboards/` is well formed (unique uids,
//!   a Prometheus `datasource` variable, schemaVersion), and every panel
//!   query evaluates on this Prometheus without error and names only metrics
//!   from `docs/metrics.md`;
//! - the alert rules (`dashboards/alerts.yml`, with `for:` and range windows
//!   shortened for the test) are loaded, and the test breaks the pipeline so
//!   that every one of them fires on real conditions: dead letters (the
//!   generator's malformed messages), the court's judicial-sim stopped
//!   (anchors lagging, circuit breaker open), the witness stopped (quorum not
//!   reached), the batcher stopped (sealing stalled), the court's gateway
//!   back with another key for the bank (relay `permanent` failures), a
//!   batcher started with an unreachable TSA (TSA failing). Beside that
//!   sequence, on infrastructure of their own: an ingest process on a
//!   private broker (a tansu of its own) whose database sits behind a proxy
//!   the test cuts (its `anchord_admin_postgres_up` goes 0: PostgreSQL
//!   unreachable; consumption stops while a producer keeps publishing:
//!   ingest lag above 10000 and growing; then back to 1 when the proxy is
//!   restored), then that broker killed (broker unreachable); and a workflow
//!   service whose file store's file system the test fills
//!   (`admin.disk_low_free_bytes` set just below the free space: disk
//!   filling). At the end, every rule of the file has fired.
//!   On synthetic series only (`dashboards/alerts.test.yml`, run by
//!   `the_alert_rules_pass_promtool_and_name_only_spec_metrics`): relay
//!   `ambiguous` failures, the ledger-retries leg of the PostgreSQL rule and
//!   the kubelet leg of the disk rule.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anchord_testkit::TestDb;
use anchord_testkit::chaos::{ChaosProxy, reroute_postgres_url};
use anchord_testkit::metrics_spec::{self, SpecMetric};
use anchord_testkit::process::{free_port, peer, promtool_check};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_anchord");
const ORIGIN: &str = "anchord.test/prometheus";
const TENANTS: &str = r#"["icbc-sh","ccb-bj"]"#;
/// Evidence messages published (the generator makes some of them malformed).
const N: u64 = 300;

/// A child process killed (SIGKILL) and reaped when dropped.
struct Proc(Child, &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn assert_running(&mut self, logs: &Path) {
        if let Some(status) = self.0.try_wait().unwrap() {
            let log =
                std::fs::read_to_string(logs.join(format!("{}.log", self.1))).unwrap_or_default();
            panic!("{} exited early ({status}); its log:\n{log}", self.1);
        }
    }
}

/// A directory removed when dropped (the disk filler, even when the test
/// fails half-way).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal HTTP/1.0 GET (no client dependency): status and body.
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Prometheus HTTP API's answer to an instant query (the whole JSON).
fn query(prom: &str, q: &str) -> Value {
    let (status, body) = http_get(prom, &format!("/api/v1/query?query={}", urlencode(q)))
        .unwrap_or_else(|e| panic!("querying Prometheus at {prom}: {e}"));
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("Prometheus answered {status} with non-JSON ({e}): {body}"))
}

/// The values of an instant vector query (empty when it has no series).
fn values(prom: &str, q: &str) -> Vec<f64> {
    let v = query(prom, q);
    assert_eq!(v["status"], "success", "query {q}: {v}");
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|s| s["value"][1].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A Prometheus HTTP API answer (the whole JSON) for a path.
fn query_path(prom: &str, path: &str) -> Value {
    let (status, body) =
        http_get(prom, path).unwrap_or_else(|e| panic!("querying Prometheus at {prom}: {e}"));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Wait until `q` returns at least one series with every value > 0.
async fn wait_positive(prom: &str, q: &str, secs: u64, procs: &mut [Proc], logs: &Path) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = values(prom, q);
        if !v.is_empty() && v.iter().all(|x| *x > 0.0) {
            return;
        }
        for p in procs.iter_mut() {
            p.assert_running(logs);
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for Prometheus to answer `{q}` with values > 0 \
             (last answer {v:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Publish `n` generated evidence messages (5% malformed) to `topic`.
async fn publish(topic: &str, n: u64) {
    publish_to(&anchord_testkit::kafka::brokers(), topic, n, 0.05).await;
}

/// Publish `n` generated evidence messages (`bad` of them malformed) to
/// `topic` on `brokers`.
async fn publish_to(brokers: &str, topic: &str, n: u64, bad: f64) {
    let (b, t) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut g = anchord_ingest::loadgen::Generator::new(
            &anchord_testkit::unique("run"),
            serde_json::from_str(TENANTS).unwrap(),
            0.0,
            bad,
        );
        let stats = anchord_ingest::loadgen::publish(&b, &t, &mut g, n, 0, false, &|| false)
            .expect("publishing");
        assert_eq!(stats.failed, 0);
    })
    .await
    .unwrap();
}

/// The tansu broker `scripts/services` runs (`ANCHORD_TANSU`, `PATH`, or
/// cargo's bin directory), for a private broker this test may kill.
fn tansu_bin() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    std::env::var("ANCHORD_TANSU")
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|d| Path::new(d).join("tansu")),
        )
        .chain([Path::new(&home).join(".cargo/bin/tansu")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the tansu broker is missing: run `scripts/services install` (or set ANCHORD_TANSU)"
            )
        })
}

/// Bytes available on the file system holding `dir` (`df`).
fn df_avail(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "df: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df printed {out:?}"))
}

/// Wait until the admin listener at `port` answers `/readyz` with 200.
async fn wait_ready(job: &str, port: u16, secs: u64, procs: &mut [Proc], logs: &Path) {
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !matches!(http_get(&addr, "/readyz"), Ok((200, _))) {
        for p in procs.iter_mut() {
            p.assert_running(logs);
        }
        assert!(
            Instant::now() < deadline,
            "{job}'s admin listener {addr} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn keygen(dir: &Path, name: &str, file: &str, witness: bool) -> (PathBuf, String) {
    let key = dir.join(file);
    let mut c = Command::new(BIN);
    c.args(["keygen", "--name", name, "--out"]).arg(&key);
    if witness {
        c.arg("--witness");
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_running_pipeline_and_every_dashboard_query_evaluates() {
    let prometheus = peer("prometheus");
    let promtool = peer("promtool");
    let spec = metrics_spec::load();
    let dashboards = load_dashboards();

    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_prom"));
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (db, _ledger) = TestDb::migrated().await;
    let (wdb, _wledger) = TestDb::migrated().await;
    let (sealer_key, sealer_vkey) = keygen(&dir, ORIGIN, "sealer.key", false);
    let (witness_key, witness_vkey) = keygen(&dir, "notary.test", "witness.key", true);
    let (gateway_key, gateway_pub) = anchord_testkit::rsa_keypair(&dir);
    let topic = anchord_testkit::kafka::topic("prom", 2).await;
    let dlq = format!("{topic}.dlq");
    anchord_testkit::kafka::create_topic(&dlq, 1).await;

    let witness_port = free_port();
    let court_port = free_port();
    let verifier_port = free_port();
    let config = dir.join("anchord.toml");
    std::fs::write(
        &config,
        format!(
            r#"[database]
url = "{db}"
[ingest]
brokers = "{brokers}"
topic = "{topic}"
dead_letter_topic = "{dlq}"
group_id = "{group}"
tenants = {TENANTS}
batch_linger_ms = 10
[batcher]
origin = "{ORIGIN}"
signing_key = "{sealer}"
block_interval_ms = 200
witnesses = [{{ name = "notary.test", url = "http://127.0.0.1:{witness_port}", vkey = "{witness_vkey}" }}]
quorum = 1
[relay]
poll_ms = 50
targets = [{{ name = "court", kind = "judicial", url = "http://127.0.0.1:{court_port}", account_id = "bank-001", signing_key = "{gateway}", confirm_poll_ms = 100 }}]
[verifier]
listen = "127.0.0.1:{verifier_port}"
public_url = "http://127.0.0.1:{verifier_port}"
[witness]
listen = "127.0.0.1:{witness_port}"
signing_key = "{witness}"
logs = [{{ origin = "{ORIGIN}", vkeys = ["{sealer_vkey}"] }}]
"#,
            db = db.url(),
            brokers = anchord_testkit::kafka::brokers(),
            group = anchord_testkit::unique("g"),
            sealer = sealer_key.display(),
            gateway = gateway_key.display(),
            witness = witness_key.display(),
        ),
    )
    .unwrap();

    // Every service, as a process; `admin` is where its /metrics is.
    let spawn = |name: &'static str, args: &[&str], admin: Option<u16>, db_url: Option<&str>| {
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ANCHORD_LOG", "info,librdkafka=warn")
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(port) = admin {
            c.env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{port}"));
        }
        if let Some(url) = db_url {
            c.env("ANCHORD__DATABASE__URL", url);
        }
        Proc(c.spawn().unwrap(), name)
    };
    // A process with extra environment (configuration overrides).
    let spawn_env = |name: &'static str, args: &[&str], envs: &[(&str, String)]| {
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ANCHORD_LOG", "info,librdkafka=warn")
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in envs {
            c.env(k, v);
        }
        Proc(c.spawn().unwrap(), name)
    };
    let jobs: Vec<(&'static str, u16)> = ["witness", "ingest", "batcher", "relay", "verifier"]
        .into_iter()
        .map(|j| (j, free_port()))
        .collect();
    let admin = |job: &str| jobs.iter().find(|(j, _)| *j == job).unwrap().1;
    let account = format!("bank-001={}", gateway_pub.display());
    let chain = dir.join("chain");
    let mut procs = vec![
        spawn(
            "judicial-sim",
            &[
                "judicial-sim",
                "--listen",
                &format!("127.0.0.1:{court_port}"),
                "--data-dir",
                chain.to_str().unwrap(),
                "--account",
                &account,
            ],
            None,
            None,
        ),
        spawn(
            "witness",
            &["witness"],
            Some(admin("witness")),
            Some(wdb.url()),
        ),
        spawn("ingest", &["ingest"], Some(admin("ingest")), None),
        spawn("batcher", &["batcher"], Some(admin("batcher")), None),
        spawn("relay", &["relay"], Some(admin("relay")), None),
        spawn("verifier", &["verifier"], Some(admin("verifier")), None),
    ];
    for (job, port) in &jobs {
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http_get(&addr, "/readyz"), Ok((200, _))) {
            for p in procs.iter_mut() {
                p.assert_running(&logs);
            }
            assert!(
                Instant::now() < deadline,
                "{job}'s admin listener {addr} never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A real Prometheus scraping every admin listener each second.
    let prom_port = free_port();
    let prom = format!("127.0.0.1:{prom_port}");
    let mut scrape = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    // Started later: a second batcher with an unreachable TSA, an ingest on
    // a private broker, a workflow service.
    let tsa_admin = free_port();
    let private_admin = free_port();
    let workflow_admin = free_port();
    let later = [
        ("batcher_tsa", tsa_admin),
        ("ingest_private", private_admin),
        ("workflow", workflow_admin),
    ];
    for (job, port) in jobs.iter().chain(later.iter()) {
        scrape.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ));
    }
    let rules = dir.join("alerts.yml");
    std::fs::write(
        &rules,
        rules_for_test(&std::fs::read_to_string(dashboards_dir().join("alerts.yml")).unwrap()),
    )
    .unwrap();
    scrape.push_str(&format!("rule_files:\n  - {}\n", rules.display()));
    std::fs::write(dir.join("prometheus.yml"), &scrape).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "config"])
        .arg(dir.join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(check.status.success(), "promtool check config: {check:?}");
    let prom_log = std::fs::File::create(logs.join("prometheus.log")).unwrap();
    procs.push(Proc(
        Command::new(&prometheus)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(prom_log)
            .spawn()
            .unwrap(),
        "prometheus",
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(http_get(&prom, "/-/ready"), Ok((200, _))) {
        procs.last_mut().unwrap().assert_running(&logs);
        assert!(Instant::now() < deadline, "Prometheus never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Banks publish evidence (a few malformed: dead letters), in two rounds:
    // the second after Prometheus has seen the first anchor, so that every
    // stage observes latencies while it scrapes (rates need two samples).
    publish(&topic, N / 2).await;
    let confirmed = r#"anchord_relay_confirmations_total{job="relay",target="court"}"#;
    wait_positive(&prom, confirmed, 120, &mut procs, &logs).await;
    let first = values(&prom, confirmed)[0];
    publish(&topic, N - N / 2).await;
    wait_positive(
        &prom,
        &format!("{confirmed} > {first}"),
        120,
        &mut procs,
        &logs,
    )
    .await;

    // Some verifier traffic: a checkpoint (2xx) and an unknown proof (4xx).
    let verifier = format!("127.0.0.1:{verifier_port}");
    for _ in 0..3 {
        let (s, body) = http_get(&verifier, "/v1/checkpoints/latest").unwrap();
        assert_eq!(s, 200, "{body}");
        let (s, _) = http_get(&verifier, &format!("/v1/proofs/{}", "ab".repeat(32))).unwrap();
        assert_eq!(s, 404);
    }

    // promtool check metrics on every service's own exposition.
    for (job, port) in &jobs {
        let (status, body) = http_get(&format!("127.0.0.1:{port}"), "/metrics").unwrap();
        assert_eq!(status, 200, "{job} /metrics");
        assert!(
            body.contains("# TYPE anchord_"),
            "{job} exports no metrics:\n{body}"
        );
        promtool_check(&body, &format!("{job}'s exposition"));
        // Every service exports the process metrics (docs/metrics.md, stage
        // `process`).
        for m in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                body.contains(&format!("# TYPE {m} ")),
                "{job} does not export {m}"
            );
        }
        // Every service probes its PostgreSQL at each scrape.
        assert!(
            body.contains("# TYPE anchord_admin_postgres_up gauge")
                && body.lines().any(|l| l == "anchord_admin_postgres_up 1"),
            "{job} does not export anchord_admin_postgres_up 1:\n{body}"
        );
        // And every exported anchord family is in the spec, with its type.
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                let s = spec
                    .get(name)
                    .unwrap_or_else(|| panic!("{job} exports {name}, not in docs/metrics.md"));
                assert_eq!(s.kind, kind, "{job}: {name}'s type");
            }
        }
    }

    // Prometheus answers questions about the pipeline.
    for (job, _) in &jobs {
        wait_positive(
            &prom,
            &format!(r#"up{{job="{job}"}}"#),
            30,
            &mut procs,
            &logs,
        )
        .await;
    }
    for q in [
        r#"anchord_ingest_entries_accepted_total{job="ingest"}"#,
        r#"sum(anchord_ingest_dead_letters_total{job="ingest"})"#,
        r#"anchord_ingest_time_to_sequenced_seconds_count"#,
        r#"anchord_batcher_time_to_sealed_seconds_count"#,
        r#"anchord_batcher_time_to_checkpointed_seconds_count"#,
        r#"anchord_batcher_time_to_witnessed_seconds_count"#,
        r#"anchord_relay_time_to_anchored_seconds_count{target="court"}"#,
        r#"anchord_batcher_blocks_sealed_total"#,
        r#"anchord_batcher_block_height + 1"#,
        r#"anchord_batcher_final_checkpoint_size"#,
        r#"anchord_relay_anchored_checkpoint_size{target="court"}"#,
        r#"anchord_witness_cosignatures_total"#,
        r#"sum(anchord_verifier_requests_total{status="4xx"})"#,
        // Consumer lag comes from librdkafka statistics (every 5 s); lag
        // itself may be 0, so count the series.
        r#"count(anchord_ingest_consumer_lag_messages)"#,
        r#"histogram_quantile(0.99, sum by (le) (rate(anchord_relay_time_to_anchored_seconds_bucket[1m])))"#,
    ] {
        wait_positive(&prom, q, 30, &mut procs, &logs).await;
    }
    // Every message is accounted for: an entry or a dead letter.
    wait_positive(
        &prom,
        &format!(
            "sum(anchord_ingest_entries_accepted_total) + sum(anchord_ingest_dead_letters_total) >= {N}"
        ),
        60,
        &mut procs,
        &logs,
    )
    .await;
    let accepted = values(&prom, "sum(anchord_ingest_entries_accepted_total)")[0];
    assert!(accepted <= N as f64, "accepted {accepted} of {N}");

    // Every dashboard query evaluates here and names only spec metrics.
    let names: BTreeSet<String> = {
        let (s, body) = http_get(&prom, "/api/v1/label/__name__/values").unwrap();
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let mut problems = Vec::new();
    let mut evaluated = 0;
    for (file, d) in &dashboards {
        for (panel, expr) in panel_queries(d) {
            let q = substitute(&expr);
            let v = query(&prom, &q);
            if v["status"] != "success" {
                problems.push(format!("{file} / {panel}: `{q}`: {}", v["error"]));
            }
            for m in metric_names(&q) {
                match spec_metric(&spec, &m) {
                    None => {
                        problems.push(format!("{file} / {panel}: `{m}` is not in docs/metrics.md"))
                    }
                    Some(_) if !names.contains(&m) => problems.push(format!(
                        "{file} / {panel}: `{m}` has no series in Prometheus after the pipeline ran"
                    )),
                    Some(_) => {}
                }
            }
            evaluated += 1;
        }
    }
    assert!(evaluated >= 20, "only {evaluated} panel queries found");
    assert!(
        problems.is_empty(),
        "dashboard queries:\n  {}",
        problems.join("\n  ")
    );

    // The alert rules, loaded and healthy, then fired by breaking the
    // pipeline one stage at a time.
    let loaded = query_path(&prom, "/api/v1/rules?type=alert");
    let loaded: BTreeSet<String> = loaded["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| {
            assert_eq!(r["health"], "ok", "rule {r}");
            r["name"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = alert_rules().into_iter().map(|r| r.name).collect();
    assert_eq!(loaded, expected, "Prometheus loaded every alert rule");
    wait_positive(
        &prom,
        "min(anchord_ingest_brokers_up)",
        30,
        &mut procs,
        &logs,
    )
    .await;
    // While the pipeline was healthy, nothing fired but the dead letters the
    // generator makes on purpose: each alert below fires because of the
    // failure the test then causes.
    let healthy =
        r#"max_over_time(ALERTS{alertstate="firing",alertname!="AnchordDeadLetters"}[30m])"#;
    assert!(
        values(&prom, healthy).is_empty(),
        "alerts fired on a healthy pipeline: {}",
        query(&prom, healthy)["data"]["result"]
    );
    let fired = |alert: &str, labels: &str| {
        format!(r#"max_over_time(ALERTS{{alertname="{alert}",alertstate="firing"{labels}}}[30m])"#)
    };
    // The pipeline's own failures, one after the other (each needs the
    // previous state), and beside them, on infrastructure of their own, the
    // database, broker and disk failures: all three at once.
    let pipeline = async {
        // The generator's malformed messages (5%), published now that every
        // dead-letter series has samples to rise from.
        publish(&topic, 200).await;
        wait_positive(
            &prom,
            &fired("AnchordDeadLetters", ""),
            60,
            &mut procs,
            &logs,
        )
        .await;
        // Stop the court's chain: the relay fails, opens its breaker, and final
        // checkpoints wait.
        procs.retain(|p| p.1 != "judicial-sim");
        publish(&topic, 20).await;
        for alert in ["AnchordCircuitBreakerOpen", "AnchordAnchorsLagging"] {
            wait_positive(
                &prom,
                &fired(alert, r#",target="court""#),
                180,
                &mut procs,
                &logs,
            )
            .await;
        }
        // The court's gateway back, but no longer trusting the bank's key:
        // every request is refused for good (HTTP 4xx: `permanent`).
        let other = dir.join("other-key");
        std::fs::create_dir_all(&other).unwrap();
        let (_, other_pub) = anchord_testkit::rsa_keypair(&other);
        let wrong_account = format!("bank-001={}", other_pub.display());
        procs.push(spawn(
            "judicial-sim-rekeyed",
            &[
                "judicial-sim",
                "--listen",
                &format!("127.0.0.1:{court_port}"),
                "--data-dir",
                chain.to_str().unwrap(),
                "--account",
                &wrong_account,
            ],
            None,
            None,
        ));
        wait_positive(
            &prom,
            &fired(
                "AnchordRelayJobsFailed",
                r#",target="court",class="permanent""#,
            ),
            180,
            &mut procs,
            &logs,
        )
        .await;
        // Stop the witness: new checkpoints never become final.
        procs.retain(|p| p.1 != "witness");
        publish(&topic, 20).await;
        wait_positive(
            &prom,
            &fired("AnchordWitnessQuorumNotReached", ""),
            120,
            &mut procs,
            &logs,
        )
        .await;
        // Stop the batcher: entries are accepted, nothing is sealed.
        procs.retain(|p| p.1 != "batcher");
        for _ in 0..3 {
            publish(&topic, 10).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        wait_positive(
            &prom,
            &fired("AnchordSealingStalled", ""),
            120,
            &mut procs,
            &logs,
        )
        .await;
        // A batcher whose TSA does not answer: it takes the sealer lock and
        // every timestamp request fails.
        let tsa_cert = dir.join("tsa.pem");
        let ok = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=unreachable test TSA"])
            .args(["-addext", "extendedKeyUsage=critical,timeStamping"])
            .arg("-keyout")
            .arg(dir.join("tsa.key"))
            .arg("-out")
            .arg(&tsa_cert)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl req (a TSA certificate)");
        let log = std::fs::File::create(logs.join("batcher_tsa.log")).unwrap();
        procs.push(Proc(
            Command::new(BIN)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("ANCHORD_LOG", "info")
                .env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{tsa_admin}"))
                .env(
                    "ANCHORD__BATCHER__TSA_URL",
                    format!("http://127.0.0.1:{}/tsa", free_port()),
                )
                .env("ANCHORD__BATCHER__TSA_CERT", &tsa_cert)
                .arg("--config")
                .arg(&config)
                .arg("batcher")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
            "batcher_tsa",
        ));
        // New checkpoints (each one a timestamp request) once Prometheus has
        // seen the counters from zero.
        wait_positive(&prom, r#"up{job="batcher_tsa"}"#, 30, &mut procs, &logs).await;
        for _ in 0..2 {
            publish(&topic, 10).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        wait_positive(
            &prom,
            &fired("AnchordTsaFailing", ""),
            120,
            &mut procs,
            &logs,
        )
        .await;
    };
    // An ingest on a private broker (a tansu of its own, which the test may
    // kill without touching the shared one), its database behind a proxy
    // the test can cut.
    let private_ingest = async {
        let mut procs: Vec<Proc> = Vec::new();
        let pbrokers = format!("127.0.0.1:{}", free_port());
        let tansu_log = std::fs::File::create(logs.join("tansu-private.log")).unwrap();
        procs.push(Proc(
            Command::new(tansu_bin())
                .current_dir("/")
                .arg("broker")
                .arg("--listener-url")
                .arg(format!("tcp://{pbrokers}"))
                .arg("--advertised-listener-url")
                .arg(format!("tcp://{pbrokers}"))
                .arg("--storage-engine")
                .arg("memory://tansu/")
                .stdout(Stdio::null())
                .stderr(tansu_log)
                .spawn()
                .unwrap(),
            "tansu-private",
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&pbrokers).is_err() {
            procs[0].assert_running(&logs);
            assert!(
                Instant::now() < deadline,
                "the private tansu never listened"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ptopic = anchord_testkit::unique("prom_private");
        for (t, partitions) in [(ptopic.clone(), 2), (format!("{ptopic}.dlq"), 1)] {
            anchord_ingest::topics::create_topic(&pbrokers, &t, partitions)
                .await
                .unwrap_or_else(|e| panic!("creating {t} on the private broker: {e}"));
        }
        let (pdb, _pledger) = TestDb::migrated().await;
        let (pg, _) = reroute_postgres_url(pdb.url(), "127.0.0.1:1".parse().unwrap());
        let proxy = ChaosProxy::start(pg).await;
        let (_, proxied) = reroute_postgres_url(pdb.url(), proxy.addr());
        procs.push(spawn_env(
            "ingest_private",
            &["ingest"],
            &[
                (
                    "ANCHORD__ADMIN__LISTEN",
                    format!("127.0.0.1:{private_admin}"),
                ),
                ("ANCHORD__DATABASE__URL", proxied),
                ("ANCHORD__INGEST__BROKERS", pbrokers.clone()),
                ("ANCHORD__INGEST__TOPIC", ptopic.clone()),
                (
                    "ANCHORD__INGEST__DEAD_LETTER_TOPIC",
                    format!("{ptopic}.dlq"),
                ),
                ("ANCHORD__INGEST__GROUP_ID", anchord_testkit::unique("g")),
            ],
        ));
        wait_ready("ingest_private", private_admin, 60, &mut procs, &logs).await;
        // Healthy first: it consumes, commits, reports its lag, reaches its
        // database.
        publish_to(&pbrokers, &ptopic, 100, 0.0).await;
        for q in [
            r#"anchord_ingest_entries_accepted_total{job="ingest_private"}"#,
            r#"anchord_admin_postgres_up{job="ingest_private"}"#,
            r#"anchord_ingest_brokers_up{job="ingest_private"}"#,
            r#"count(anchord_ingest_consumer_lag_messages{job="ingest_private"})"#,
        ] {
            wait_positive(&prom, q, 90, &mut procs, &logs).await;
        }
        // Its database lost (every connection cut, new ones refused): the
        // probe answers 0, appends fail, consumption stops, and the banks
        // keep publishing.
        proxy.break_all();
        publish_to(&pbrokers, &ptopic, 10_500, 0.0).await;
        let lag = fired("AnchordIngestLagGrowing", "");
        let pg_lost = fired("AnchordPostgresUnreachable", r#",job="ingest_private""#);
        let deadline = Instant::now() + Duration::from_secs(180);
        while values(&prom, &lag).is_empty() || values(&prom, &pg_lost).is_empty() {
            publish_to(&pbrokers, &ptopic, 300, 0.0).await;
            for p in procs.iter_mut() {
                p.assert_running(&logs);
            }
            assert!(
                Instant::now() < deadline,
                "AnchordIngestLagGrowing ({:?}) and AnchordPostgresUnreachable for ingest_private \
                 ({:?}) did not both fire within 180 s; lag {:?}, postgres_up {:?}",
                values(&prom, &lag),
                values(&prom, &pg_lost),
                values(
                    &prom,
                    r#"sum(anchord_ingest_consumer_lag_messages{job="ingest_private"})"#
                ),
                values(&prom, r#"anchord_admin_postgres_up{job="ingest_private"}"#),
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            values(
                &prom,
                r#"min_over_time(anchord_admin_postgres_up{job="ingest_private"}[10m])"#
            ),
            vec![0.0],
            "the probe went 0 while the database was cut"
        );
        // The database back: the probe answers 1 again.
        proxy.restore();
        wait_positive(
            &prom,
            r#"anchord_admin_postgres_up{job="ingest_private"}"#,
            60,
            &mut procs,
            &logs,
        )
        .await;
        // Its only broker killed: no broker connection up.
        procs.retain(|p| p.1 != "tansu-private");
        wait_positive(
            &prom,
            &fired("AnchordBrokerUnreachable", r#",job="ingest_private""#),
            120,
            &mut procs,
            &logs,
        )
        .await;
        drop(procs);
        drop(proxy);
    };
    // A workflow service whose file store is nearly at its threshold
    // (`admin.disk_low_free_bytes` just below the free space now), then the
    // test fills that file system (beside the store, not in it: the file
    // collector must not delete the filler).
    let disk = async {
        let mut procs: Vec<Proc> = Vec::new();
        let files = dir.join("workflow-files");
        let filler = dir.join("filler");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::create_dir_all(&filler).unwrap();
        let _filler_removed = RemoveOnDrop(filler.clone());
        let low = df_avail(&files).saturating_sub(64 << 20);
        procs.push(spawn_env(
            "workflow",
            &["workflow"],
            &[
                (
                    "ANCHORD__ADMIN__LISTEN",
                    format!("127.0.0.1:{workflow_admin}"),
                ),
                ("ANCHORD__ADMIN__DISK_LOW_FREE_BYTES", low.to_string()),
                (
                    "ANCHORD__WORKFLOW__LISTEN",
                    format!("127.0.0.1:{}", free_port()),
                ),
                (
                    "ANCHORD__WORKFLOW__STORAGE_DIR",
                    files.to_str().unwrap().to_owned(),
                ),
            ],
        ));
        wait_ready("workflow", workflow_admin, 90, &mut procs, &logs).await;
        let volume = r#"{job="workflow",volume="workflow_storage"}"#;
        wait_positive(
            &prom,
            &format!("anchord_admin_disk_free_bytes{volume}"),
            30,
            &mut procs,
            &logs,
        )
        .await;
        assert_eq!(
            values(&prom, &format!("anchord_admin_disk_low_free_bytes{volume}")),
            vec![low as f64],
            "the configured threshold is exported"
        );
        // The workflow's own exposition: well formed, and its probes in the
        // spec with their types.
        let (status, body) = http_get(&format!("127.0.0.1:{workflow_admin}"), "/metrics").unwrap();
        assert_eq!(status, 200, "workflow /metrics");
        promtool_check(&body, "workflow's exposition");
        for m in [
            "anchord_admin_postgres_up",
            "anchord_admin_disk_free_bytes",
            "anchord_admin_disk_size_bytes",
            "anchord_admin_disk_low_free_bytes",
        ] {
            assert!(
                body.contains(&format!("# TYPE {m} gauge")) && spec[m].kind == "gauge",
                "workflow does not export {m} as the spec's gauge:\n{body}"
            );
        }
        let filling = fired(
            "AnchordDiskFilling",
            r#",job="workflow",volume="workflow_storage""#,
        );
        let chunk = vec![0x5a_u8; 8 << 20];
        let (mut written, mut i) = (0u64, 0u32);
        let deadline = Instant::now() + Duration::from_secs(180);
        while values(&prom, &filling).is_empty() {
            let mut f = std::fs::File::create(filler.join(format!("{i}"))).unwrap();
            f.write_all(&chunk).unwrap();
            f.sync_all().unwrap();
            i += 1;
            written += chunk.len() as u64;
            for p in procs.iter_mut() {
                p.assert_running(&logs);
            }
            assert!(
                written < 4 << 30 && Instant::now() < deadline,
                "AnchordDiskFilling did not fire after {written} bytes written; free {:?}, \
                 threshold {low}",
                values(&prom, &format!("anchord_admin_disk_free_bytes{volume}")),
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        drop(procs);
    };
    tokio::join!(pipeline, private_ingest, disk);

    // Every rule of the file fired at least once.
    let all = query(&prom, r#"max_over_time(ALERTS{alertstate="firing"}[30m])"#);
    let fired_names: BTreeSet<String> = all["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["metric"]["alertname"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        fired_names, expected,
        "every alert rule fired on the real pipeline"
    );
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `anchord_admin_postgres_up` on the two other kinds of pool the services
/// use: a reader's (the verifier: read-only sessions, no migrations) and the
/// witness's own store. Each runs with its database behind a proxy; cutting
/// it (every connection reset, new ones refused) turns the probe to 0 at the
/// next scrape, restoring it turns it back to 1. (The big test above does
/// the same for a writer, ingest, through a real Prometheus.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_probe_of_a_reader_and_of_a_witness_follows_a_lost_database() {
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_pgprobe"));
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (rdb, _ledger) = TestDb::migrated().await;
    let wdb = TestDb::new().await;
    let (sealer_key, sealer_vkey) = keygen(&dir, ORIGIN, "sealer.key", false);
    let (witness_key, _) = keygen(&dir, "notary.test", "witness.key", true);
    let config = dir.join("anchord.toml");
    std::fs::write(
        &config,
        format!(
            r#"[database]
url = "postgres://unused@127.0.0.1:1/unused"
[batcher]
origin = "{ORIGIN}"
signing_key = "{sealer}"
[verifier]
listen = "127.0.0.1:{verifier}"
[witness]
listen = "127.0.0.1:{witness}"
signing_key = "{witness_key}"
logs = [{{ origin = "{ORIGIN}", vkeys = ["{sealer_vkey}"] }}]
"#,
            sealer = sealer_key.display(),
            verifier = free_port(),
            witness = free_port(),
            witness_key = witness_key.display(),
        ),
    )
    .unwrap();
    for (job, db) in [("verifier", rdb.url()), ("witness", wdb.url())] {
        let (pg, _) = reroute_postgres_url(db, "127.0.0.1:1".parse().unwrap());
        let proxy = ChaosProxy::start(pg).await;
        let (_, proxied) = reroute_postgres_url(db, proxy.addr());
        let admin = free_port();
        let log = std::fs::File::create(logs.join(format!("{job}.log"))).unwrap();
        let mut procs = vec![Proc(
            Command::new(BIN)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("ANCHORD_LOG", "info")
                .env("ANCHORD__DATABASE__URL", &proxied)
                .env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
                .arg("--config")
                .arg(&config)
                .arg(job)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
            job,
        )];
        wait_ready(job, admin, 60, &mut procs, &logs).await;
        let addr = format!("127.0.0.1:{admin}");
        let probe = || {
            let (status, body) = http_get(&addr, "/metrics").unwrap();
            assert_eq!(status, 200, "{job} /metrics");
            body.lines()
                .find_map(|l| l.strip_prefix("anchord_admin_postgres_up "))
                .unwrap_or_else(|| panic!("{job} exports no anchord_admin_postgres_up:\n{body}"))
                .to_owned()
        };
        let mut wait_for = async |want: &str, what: &str| {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = probe();
                if got == want {
                    return;
                }
                procs[0].assert_running(&logs);
                assert!(
                    Instant::now() < deadline,
                    "{job}: anchord_admin_postgres_up stayed {got} for 30 s {what}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        wait_for("1", "with its database reachable").await;
        proxy.break_all();
        wait_for("0", "after its database was cut").await;
        proxy.restore();
        wait_for("1", "after its database came back").await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dashboards directory.
fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("dashboards")
}

/// Load and structurally check every dashboard: unique uids and titles, a
/// schemaVersion, a `datasource` variable of type prometheus that every
/// panel and target uses, unique panel ids, at least one query per panel.
fn load_dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut uids = BTreeSet::new();
    for e in std::fs::read_dir(dashboards_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(
            !uid.is_empty() && uid.len() <= 40 && uids.insert(uid.to_owned()),
            "{file}: uid {uid:?} empty, too long or not unique"
        );
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{file}: title"
        );
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
            "{file}: schemaVersion"
        );
        assert!(
            d.get("id").is_none_or(Value::is_null),
            "{file}: id must be null (Grafana assigns it)"
        );
        let vars = d["templating"]["list"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: templating.list"));
        assert!(
            vars.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: needs a `datasource` template variable of type datasource, query prometheus"
        );
        let mut ids = BTreeSet::new();
        for panel in all_panels(&d) {
            let title = panel["title"].as_str().unwrap_or("?");
            assert!(
                ids.insert(
                    panel["id"]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{file}: panel {title} has no id"))
                ),
                "{file}: panel id of {title} not unique"
            );
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file} / {title}: datasource"
            );
            let targets = panel["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{file} / {title}: no targets"));
            assert!(!targets.is_empty(), "{file} / {title}: no targets");
            for t in targets {
                assert_eq!(
                    t["datasource"]["uid"], "${datasource}",
                    "{file} / {title}: target datasource"
                );
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{file} / {title}: target without expr"
                );
            }
        }
        out.push((file, d));
    }
    // Grafana provisioning: a Prometheus datasource, a file provider.
    let prov = dashboards_dir().join("provisioning");
    let ds = std::fs::read_to_string(prov.join("datasources/anchord.yaml")).unwrap();
    assert!(
        ds.contains("apiVersion: 1") && ds.contains("type: prometheus") && ds.contains("url: "),
        "provisioning/datasources/anchord.yaml:\n{ds}"
    );
    let dp = std::fs::read_to_string(prov.join("dashboards/anchord.yaml")).unwrap();
    assert!(
        dp.contains("apiVersion: 1") && dp.contains("type: file") && dp.contains("path: "),
        "provisioning/dashboards/anchord.yaml:\n{dp}"
    );
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 3,
        "expected the three dashboards, found {}",
        out.len()
    );
    out
}

/// Every panel, rows' nested panels included.
fn all_panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

/// (panel title, expr) for every target of every panel.
fn panel_queries(d: &Value) -> Vec<(String, String)> {
    all_panels(d)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| Some((title.clone(), t["expr"].as_str()?.to_owned())))
        })
        .collect()
}

/// Grafana's variables, replaced as Grafana would for a query over the last
/// few minutes; dashboard variables become match-everything regexes.
fn substitute(expr: &str) -> String {
    let mut q = expr.to_owned();
    for (var, value) in [
        ("$__rate_interval", "1m"),
        ("${__rate_interval}", "1m"),
        ("$__interval", "15s"),
        ("${__interval}", "15s"),
        ("$__range", "5m"),
        ("${__range}", "5m"),
        ("${target:regex}", ".*"),
        ("${target}", ".*"),
        ("$target", ".*"),
        ("${route:regex}", ".*"),
        ("${route}", ".*"),
        ("$route", ".*"),
    ] {
        q = q.replace(var, value);
    }
    assert!(!q.contains('$'), "unknown Grafana variable left in `{q}`");
    q
}

/// The `anchord_*` metric names a PromQL expression mentions.
fn metric_names(q: &str) -> BTreeSet<String> {
    // Drop string literals (label values, regexes) first.
    let mut bare = String::new();
    let mut in_str = false;
    for c in q.chars() {
        if c == '"' {
            in_str = !in_str;
            bare.push(' ');
        } else if !in_str {
            bare.push(c);
        }
    }
    bare.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("anchord_"))
        .map(str::to_owned)
        .collect()
}

/// The spec metric a series name belongs to (histograms export `_bucket`,
/// `_sum` and `_count`).
fn spec_metric<'a>(spec: &'a BTreeMap<String, SpecMetric>, series: &str) -> Option<&'a str> {
    if let Some((name, _)) = spec.get_key_value(series) {
        return (spec[series].kind != "histogram").then_some(name.as_str());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = series.strip_suffix(suffix)?;
        let (name, m) = spec.get_key_value(base)?;
        (m.kind == "histogram").then_some(name.as_str())
    })
}

/// One alert rule of `dashboards/alerts.yml`.
struct AlertRule {
    name: String,
    expr: String,
    runbook_url: String,
}

/// A YAML file as JSON, read with PyYAML from the test venv
/// (`scripts/test-peers`; the workspace has no YAML crate).
fn yaml_as_json(path: &Path) -> Value {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.anchord/peers/venv/bin/python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/test-peers", python.display()));
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The alert rules of `dashboards/alerts.yml`.
fn alert_rules() -> Vec<AlertRule> {
    let doc = yaml_as_json(&dashboards_dir().join("alerts.yml"));
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| AlertRule {
            name: r["alert"].as_str().expect("only alerting rules").to_owned(),
            expr: r["expr"].as_str().unwrap().to_owned(),
            runbook_url: r["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

/// The rules file as the real-Prometheus test loads it: every `for:` ten
/// seconds (long enough that a healthy pipeline's normal moments, a
/// checkpoint waiting a second for its witness or its anchor, do not fire)
/// and every range window (`[10m]`, `[6h]`, subquery `[10m:1m]`)
/// twenty seconds (its step two), so that a broken pipeline fires them
/// within the test's minutes. Expressions and thresholds are unchanged.
fn rules_for_test(text: &str) -> String {
    let is_duration = |s: &str| {
        let s = s.trim();
        !s.is_empty()
            && s.chars()
                .last()
                .is_some_and(|c| matches!(c, 's' | 'm' | 'h' | 'd'))
            && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit())
    };
    let mut out = String::new();
    for line in text.lines() {
        if let Some((indent, _)) = line.split_once("for: ")
            && indent.trim().is_empty()
        {
            out.push_str(&format!("{indent}for: 10s\n"));
            continue;
        }
        let mut rest = line;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find(']') {
                Some(close) => {
                    let inner = &after[..close];
                    let window = match inner.split_once(':') {
                        Some((w, step)) if is_duration(w) && is_duration(step) => "20s:2s",
                        None if is_duration(inner) => "20s",
                        _ => inner,
                    };
                    out.push_str(&format!("[{window}]"));
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('[');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

#[test]
fn rules_for_test_shortens_only_durations() {
    let t = "      - alert: A\n        expr: rate(x[10m]) > 0 and delta(y[10m:1m]) > 0 and z{a=~\"[ab]\"}\n        for: 15m\n";
    assert_eq!(
        rules_for_test(t),
        "      - alert: A\n        expr: rate(x[20s]) > 0 and delta(y[20s:2s]) > 0 and z{a=~\"[ab]\"}\n        for: 10s\n"
    );
}

/// Metric names outside `docs/metrics.md` that the alert rules may use:
/// the kubelet's volume statistics (the disk rule; Anchord's processes do
/// not see the database's disk, `docs/operations.md`).
const EXTERNAL_METRICS: &[&str] = &[
    "kubelet_volume_stats_available_bytes",
    "kubelet_volume_stats_capacity_bytes",
];

/// Identifiers in a PromQL expression that can only be metric names: they
/// contain `_`, are not followed by `(` (functions) and are not inside a
/// string, a selector's braces, a range's brackets or a
/// `by`/`without`/`on`/`ignoring`/`group_*` label list.
fn expr_metric_names(q: &str) -> BTreeSet<String> {
    // (identifier, the next non-space character), outside strings, braces
    // and brackets.
    let mut idents: Vec<(String, Option<char>)> = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let (mut i, mut in_str, mut nest) = (0, false, 0i32);
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            in_str = c != '"';
            i += 1;
        } else if c == '"' {
            in_str = true;
            i += 1;
        } else if c == '{' || c == '[' {
            nest += 1;
            i += 1;
        } else if c == '}' || c == ']' {
            nest -= 1;
            i += 1;
        } else if nest == 0 && (c.is_ascii_alphabetic() || c == '_') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            let next = chars[i..].iter().copied().find(|c| !c.is_whitespace());
            idents.push((chars[start..i].iter().collect(), next));
        } else {
            i += 1;
        }
    }
    let mut out = BTreeSet::new();
    let mut in_label_list = false;
    for (ident, next) in idents {
        if in_label_list {
            // Labels up to the list's closing parenthesis.
            in_label_list = next == Some(',');
            continue;
        }
        let modifier = matches!(
            ident.as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        );
        if modifier && next == Some('(') {
            in_label_list = true;
            continue;
        }
        if next != Some('(') && ident.contains('_') {
            out.insert(ident);
        }
    }
    out
}

/// The alert rules on their own (no services): `promtool check rules`, the
/// synthetic unit tests of `dashboards/alerts.test.yml` (each alert has a
/// case where it fires), metric names from the spec only, a runbook section
/// in `docs/operations.md` for each alert.
#[test]
fn the_alert_rules_pass_promtool_and_name_only_spec_metrics() {
    let promtool = peer("promtool");
    let dir = dashboards_dir();
    let out = Command::new(&promtool)
        .args(["check", "rules", "alerts.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool check rules: {out:?}");
    let out = Command::new(&promtool)
        .args(["test", "rules", "alerts.test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules alerts.test.yml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let spec = metrics_spec::load();
    let rules = alert_rules();
    assert!(rules.len() >= 11, "only {} alert rules", rules.len());
    let tests = yaml_as_json(&dir.join("alerts.test.yml"));
    let fires_in_a_test: BTreeSet<String> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap().iter())
        .filter(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|c| c["alertname"].as_str().unwrap().to_owned())
        .collect();
    let runbooks = std::fs::read_to_string(dir.join("../docs/operations.md")).unwrap();
    let mut problems = Vec::new();
    for r in &rules {
        for m in expr_metric_names(&r.expr) {
            let known = if m.starts_with("anchord_") {
                spec_metric(&spec, &m).is_some()
            } else {
                EXTERNAL_METRICS.contains(&m.as_str())
            };
            if !known {
                problems.push(format!("{}: `{m}` is not in docs/metrics.md", r.name));
            }
        }
        if expr_metric_names(&r.expr).is_empty() {
            problems.push(format!("{}: names no metric", r.name));
        }
        if !fires_in_a_test.contains(&r.name) {
            problems.push(format!("{}: no case in alerts.test.yml fires it", r.name));
        }
        let anchor = r.name.to_lowercase();
        if !r
            .runbook_url
            .ends_with(&format!("docs/operations.md#{anchor}"))
        {
            problems.push(format!(
                "{}: runbook_url {:?} is not docs/operations.md#{anchor}",
                r.name, r.runbook_url
            ));
        }
        if !runbooks.lines().any(|l| l == format!("### {}", r.name)) {
            problems.push(format!(
                "{}: no `### {}` section in docs/operations.md",
                r.name, r.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "alert rules:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn expr_metric_names_finds_metrics_and_skips_functions_labels_and_strings() {
    let got = expr_metric_names(
        r#"sum by (target, class) (increase(anchord_relay_failures_total{class=~"permanent|x_y"}[15m])) > 0 and on(job_name) kubelet_volume_stats_available_bytes / up"#,
    );
    let want: BTreeSet<String> = [
        "anchord_relay_failures_total",
        "kubelet_volume_stats_available_bytes",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}
