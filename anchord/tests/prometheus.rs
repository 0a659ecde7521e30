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
//!   from `docs/metrics.md`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anchord_testkit::TestDb;
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
    let t = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut g = anchord_ingest::loadgen::Generator::new(
            &anchord_testkit::unique("run"),
            serde_json::from_str(TENANTS).unwrap(),
            0.0,
            0.05,
        );
        let stats = anchord_ingest::loadgen::publish(
            &anchord_testkit::kafka::brokers(),
            &t,
            &mut g,
            n,
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
    for (job, port) in &jobs {
        scrape.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ));
    }
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
    drop(procs);
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
