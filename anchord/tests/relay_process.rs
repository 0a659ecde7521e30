//! The relay as operators run it: `anchord relay` SIGKILLed between sending
//! an anchor and recording it, restarted, anchoring nothing twice; `relay
//! gaps` and `relay replay`; `anchord judicial-sim` keeping its chain on
//! disk across restarts.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use anchord_testkit::evidence;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anchord_batcher::BatcherConfig;
use anchord_core::HashSuite;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_ledger::Ledger;
use anchord_relay::sim::{self, Faults, SimConfig};
use anchord_testkit::TestDb;
use anchord_testkit::process::{Proc, free_port, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_anchord");
const ORIGIN: &str = "anchord.test/relay-process";
const ACCOUNT: &str = "bank-a";

use anchord_testkit::rsa_keypair as rsa_keys;

/// Append two entries and seal them (no witnesses: final at once).
async fn seal(ledger: &Ledger, batcher: &BatcherConfig, n: usize) -> u64 {
    let entries = (0..2)
        .map(|i| {
            let hash = HashSuite::Sha256
                .digest(format!("{n}-{i}").as_bytes())
                .to_vec();
            evidence::entry("bank-a", format!("loan-{n}-{i}"), hash)
        })
        .collect();
    evidence::append(ledger, HashSuite::Sha256, evidence::RECEIVED_AT_US, entries).await;
    // The previous seal's lock connection may still be closing on the
    // server side (the advisory lock goes with it): retry, bounded.
    for _ in 0..200 {
        if let Some(r) = anchord_batcher::seal_once(batcher, HashSuite::Sha256, ledger)
            .await
            .unwrap()
        {
            return r.height + 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("could not seal: the sealer lock stayed taken");
}

fn batcher_config(dir: &Path) -> BatcherConfig {
    let p = dir.join("sealer.key");
    let key = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[5; 32]).unwrap();
    std::fs::write(&p, key.private_key_text()).unwrap();
    BatcherConfig {
        origin: ORIGIN.into(),
        signing_key: Some(p),
        ..BatcherConfig::default()
    }
}

fn write_config(dir: &Path, db: &TestDb, sim_url: &str, key: &Path) -> PathBuf {
    let p = dir.join("anchord.toml");
    std::fs::write(
        &p,
        format!(
            r#"[database]
url = "{}"
[admin]
listen = "127.0.0.1:{}"
[relay]
poll_ms = 50
lease_ms = 3000
backoff_initial_ms = 50
backoff_max_ms = 300
[[relay.targets]]
name = "court"
kind = "judicial"
url = "{sim_url}"
account_id = "{ACCOUNT}"
signing_key = "{}"
request_timeout_ms = 2500
confirm_poll_ms = 100
[relay.finality.court]
reverify_ms = 200
"#,
            db.url(),
            free_port(),
            key.display()
        ),
    )
    .unwrap();
    p
}

fn anchord(config: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ANCHORD_LOG", "info")
        .arg("--config")
        .arg(config);
    c
}

use anchord_testkit::wait_for;

async fn settled(ledger: &Ledger) -> bool {
    ledger
        .anchor_uncovered("court", 0)
        .await
        .unwrap()
        .is_empty()
        && ledger
            .anchor_job_counts("court")
            .await
            .unwrap()
            .iter()
            .all(|(s, _)| !matches!(s.as_str(), "pending" | "sending" | "submitted"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_send_and_record_then_restart_anchors_nothing_twice() {
    let dir = temp_dir("anchord_relay_proc");
    let (db, ledger) = TestDb::migrated().await;
    let batcher = batcher_config(&dir);
    let (key, public) = rsa_keys(&dir);
    // The gateway accepts at once but answers only after 4 s: the relay is
    // killed while it waits, i.e. after sending and before recording.
    let gw = sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            ACCOUNT.into(),
            anchord_relay::gateway::load_public_key(&std::fs::read_to_string(&public).unwrap())
                .unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults: Faults {
            latency_ms: Some(4000),
            dedup: Some(false),
            ..Faults::default()
        },
    })
    .await
    .unwrap();
    let config = write_config(&dir, &db, &gw.url(), &key);
    let size = seal(&ledger, &batcher, 0).await;

    let mut relay = Proc(
        anchord(&config)
            .arg("relay")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the gateway to accept the anchor", 30, || async {
        gw.stats().accepted >= 1
    })
    .await;
    relay.0.kill().unwrap();
    relay.0.wait().unwrap();
    let jobs = ledger.anchor_job_counts("court").await.unwrap();
    assert_eq!(
        jobs,
        vec![("sending".to_string(), 1)],
        "killed between send and record"
    );
    assert!(
        ledger
            .anchor_receipts(Some("court"))
            .await
            .unwrap()
            .is_empty()
    );

    // More checkpoints while it is down; then restart it.
    for n in 1..4 {
        seal(&ledger, &batcher, n).await;
    }
    gw.set_faults(&Faults {
        latency_ms: Some(0),
        ..Faults::default()
    });
    let _relay = Proc(
        anchord(&config)
            .arg("relay")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("every checkpoint anchored or covered", 60, || {
        settled(&ledger)
    })
    .await;
    let stats = gw.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    let blocks = sim::load_chain(&dir.join("chain")).unwrap();
    let mut sizes: Vec<u64> = blocks
        .iter()
        .flat_map(|b| b.txs.iter().map(|t| t.evidence.size))
        .collect();
    sizes.sort_unstable();
    let mut dedup = sizes.clone();
    dedup.dedup();
    assert_eq!(sizes, dedup, "a checkpoint is on chain twice: {sizes:?}");
    assert!(sizes.contains(&size), "the first anchor landed: {sizes:?}");
    let receipts = ledger.anchor_receipts(Some("court")).await.unwrap();
    assert_eq!(
        receipts
            .iter()
            .map(|r| r.checkpoint_size)
            .collect::<Vec<_>>(),
        sizes,
        "receipts match the chain"
    );

    // A relay started now confirms nothing new, yet its anchored-size gauge
    // reports the ledger's newest anchor, not 0.
    let admin = free_port();
    let _observer = Proc(
        anchord(&config)
            .env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
            .arg("relay")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let newest = *sizes.last().unwrap();
    let want = format!("anchord_relay_anchored_checkpoint_size{{target=\"court\"}} {newest}");
    let url = format!("http://127.0.0.1:{admin}/metrics");
    let mut seen = String::new();
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(&url).await {
            seen = r.text().await.unwrap_or_default();
            if seen.lines().any(|l| l == want) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gauge: Vec<&str> = seen
        .lines()
        .filter(|l| l.starts_with("anchord_relay_anchored_checkpoint_size"))
        .collect();
    assert!(gauge.contains(&want.as_str()), "want {want}; got {gauge:?}");

    // `relay gaps` lists the coalesced checkpoints with their anchor.
    let out = anchord(&config).args(["relay", "gaps"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("target court:"), "{text}");
    assert!(!text.contains("OPEN"), "{text}");

    // `relay replay` with nothing to do says so and succeeds.
    let out = anchord(&config)
        .args([
            "relay",
            "replay",
            "--target",
            "court",
            "--from",
            "0",
            "--timeout-s",
            "30",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 checkpoint(s)"),
        "{out:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_replay_re_drives_a_target_that_never_ran() {
    let dir = temp_dir("anchord_relay_replay");
    let (db, ledger) = TestDb::migrated().await;
    let batcher = batcher_config(&dir);
    let (key, public) = rsa_keys(&dir);
    let gw = sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            ACCOUNT.into(),
            anchord_relay::gateway::load_public_key(&std::fs::read_to_string(&public).unwrap())
                .unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults: Faults::default(),
    })
    .await
    .unwrap();
    let config = write_config(&dir, &db, &gw.url(), &key);
    for n in 0..5 {
        seal(&ledger, &batcher, n).await;
    }
    let out = anchord(&config).args(["relay", "gaps"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OPEN"),
        "{out:?}"
    );
    let out = anchord(&config)
        .args([
            "relay",
            "replay",
            "--target",
            "court",
            "--from",
            "2",
            "--timeout-s",
            "60",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // One anchor (the newest) covers everything.
    let receipts = ledger.anchor_receipts(Some("court")).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].checkpoint_size, 5);
    assert!(
        ledger
            .anchor_uncovered("court", 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Threshold 0 lists every coalesced checkpoint; the default (60 s)
    // none of these, which were anchored within seconds.
    let out = anchord(&config)
        .args(["relay", "gaps", "--json", "--late-after-s", "0"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &v["court"]["windows"];
    assert_eq!(w[0]["first_size"], 1, "{v}");
    assert_eq!(w[0]["last_size"], 4, "{v}");
    assert_eq!(w[0]["covered_by"]["size"], 5, "{v}");
    let out = anchord(&config)
        .args(["relay", "gaps", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["court"]["windows"], serde_json::json!([]), "{v}");
    assert_eq!(v["court"]["lost"], serde_json::json!([]), "{v}");
    gw.stop().await;
}

#[test]
fn judicial_sim_subcommand_keeps_its_chain_on_disk_across_restarts() {
    let dir = temp_dir("anchord_sim_proc");
    let (_key, public) = rsa_keys(&dir);
    let start = || {
        let mut child = Command::new(BIN)
            .args(["judicial-sim", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("chain"))
            .arg("--account")
            .arg(format!("{ACCOUNT}={}", public.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("judicial-sim listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        (Proc(child), addr)
    };
    let get = |addr: &str, path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let (p, addr) = start();
    let r = get(&addr, "/v1/chain");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("\"chainId\":\"sim-judicial-chain\""), "{r}");
    let genesis = get(&addr, "/v1/blocks/0");
    assert!(genesis.contains("\"height\":0"), "{genesis}");
    drop(p);
    let chain = sim::load_chain(&dir.join("chain")).unwrap();
    assert_eq!(chain.len(), 1);
    // Restarted, it reloads (and re-verifies) the same chain.
    let (_p, addr) = start();
    let again = get(&addr, "/v1/blocks/0");
    let hash = |s: &str| s.split("\"hash\":\"").nth(1).map(|h| h[..64].to_owned());
    assert_eq!(hash(&again), hash(&genesis));
    assert!(get(&addr, "/v1/blocks/1").starts_with("HTTP/1.1 404"));
    // A corrupted chain file is refused at start.
    drop(_p);
    let path = dir.join("chain").join("chain.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"height\":0", "\"height\":1")).unwrap();
    let out = Command::new(BIN)
        .args(["judicial-sim", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("chain"))
        .arg("--account")
        .arg(format!("{ACCOUNT}={}", public.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not verify"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_status_and_metrics_show_anchors_lost_to_a_reset_gateway() {
    let dir = temp_dir("anchord_relay_lost");
    let (db, ledger) = TestDb::migrated().await;
    let batcher = batcher_config(&dir);
    let (key, public) = rsa_keys(&dir);
    let gw = sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            ACCOUNT.into(),
            anchord_relay::gateway::load_public_key(&std::fs::read_to_string(&public).unwrap())
                .unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults: Faults::default(),
    })
    .await
    .unwrap();
    let config = write_config(&dir, &db, &gw.url(), &key);
    let admin = free_port();
    let _relay = Proc(
        anchord(&config)
            .env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
            .arg("relay")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for n in 0..2 {
        seal(&ledger, &batcher, n).await;
        wait_for("anchored", 60, || settled(&ledger)).await;
    }
    assert_eq!(
        ledger.anchor_receipts(Some("court")).await.unwrap().len(),
        2
    );

    // The gateway is rebuilt empty and, for now, confirms nothing.
    gw.set_faults(&Faults {
        reset_chain: Some(true),
        drop_rate: Some(1.0),
        ..Faults::default()
    });
    wait_for("the loss detected", 30, || async {
        ledger
            .anchor_lost_receipts(Some("court"))
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let out = anchord(&config).args(["relay", "gaps"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 anchor(s) lost"), "{text}");
    assert!(text.contains("LOST anchor of checkpoint 1"), "{text}");
    assert!(text.contains("PENDING AGAIN"), "{text}");
    assert!(text.contains("OPEN"), "{text}");
    assert!(text.contains("chain reset"), "{text}");
    let out = anchord(&config).args(["status"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("anchoring court: 0 live anchor(s)"), "{text}");
    assert!(text.contains("LOST 2 anchor(s)"), "{text}");
    assert!(text.contains("1 chain reset(s)"), "{text}");
    let out = anchord(&config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["anchoring"][0]["target"], "court", "{v}");
    assert_eq!(v["anchoring"][0]["lost_receipts"], 2, "{v}");
    assert_eq!(v["anchoring"][0]["uncovered_checkpoints"], 2, "{v}");
    assert_eq!(
        v["anchors"], 0,
        "lost anchors are not counted as anchors: {v}"
    );
    let url = format!("http://127.0.0.1:{admin}/metrics");
    let wants = [
        "anchord_relay_anchors_lost_total{target=\"court\"} 2",
        "anchord_relay_chain_resets_total{target=\"court\"} 1",
        "anchord_relay_backlog_checkpoints{target=\"court\"} 2",
        "anchord_relay_anchored_checkpoint_size{target=\"court\"} 0",
    ];
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if wants.iter().all(|w| metrics.lines().any(|l| l == *w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let relay_lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("anchord_relay_") && l.contains("court"))
        .collect();
    for want in wants {
        assert!(
            metrics.lines().any(|l| l == want),
            "{want} in {relay_lines:#?}"
        );
    }

    // Confirming again: anchored anew, the loss kept on record.
    gw.set_faults(&Faults {
        drop_rate: Some(0.0),
        ..Faults::default()
    });
    wait_for("anchored again", 60, || settled(&ledger)).await;
    let out = anchord(&config)
        .args(["relay", "gaps", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lost = v["court"]["lost"].as_array().unwrap();
    assert_eq!(lost.len(), 2, "{v}");
    assert!(
        lost.iter().all(|l| l["now_anchored_by"]["size"] == 2),
        "{v}"
    );
    let chain = sim::load_chain(&dir.join("chain")).unwrap();
    let sizes: Vec<u64> = chain
        .iter()
        .flat_map(|b| b.txs.iter().map(|t| t.evidence.size))
        .collect();
    assert_eq!(sizes, vec![2], "anchored once on the new chain");
    gw.stop().await;
}
