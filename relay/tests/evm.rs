//! The `evm` target against a real node: anvil (Foundry), installed by
//! `scripts/test-peers`. Anchor, confirm after N blocks, read the payload
//! back from the chain.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anchord_relay::config::{TargetConfig, TargetKind};
use anchord_relay::target::AnchorPayload;
use common::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// anvil's first dev account (a published, test-only key).
const ANVIL_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn anvil_path() -> PathBuf {
    let p = match std::env::var_os("ANCHORD_ANVIL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.anchord/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
    };
    assert!(
        p.exists(),
        "anvil not found at {} — run scripts/test-peers (npm @foundry-rs/anvil) or set ANCHORD_ANVIL",
        p.display()
    );
    p
}

struct Anvil {
    child: Child,
    url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_anvil() -> Anvil {
    start_anvil_at(0, &["--block-time", "1"])
}

/// anvil on `port` (0: any) with `extra` arguments.
fn start_anvil_at(port: u16, extra: &[&str]) -> Anvil {
    let port = port.to_string();
    let mut child = Command::new(anvil_path())
        .args(["--host", "127.0.0.1", "--port", &port])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    for line in out.lines().take(200) {
        let line = line.unwrap();
        if let Some(a) = line.trim().strip_prefix("Listening on ") {
            url = Some(format!("http://{a}"));
            break;
        }
    }
    let url = url.expect("anvil printed its address");
    Anvil { child, url }
}

async fn rpc(url: &str, method: &str, params: Value) -> Value {
    let v: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_anchor_confirms_on_anvil_and_the_payload_reads_back() {
    init_logs();
    let anvil = start_anvil();
    let mut c = Chainlet::new().await;
    let target = TargetConfig {
        confirmations: Some(2),
        ..evm_target(&anvil, &temp_dir("anchord_evm"))
    };
    let stop = CancellationToken::new();
    let relay = tokio::spawn(anchord_relay::run(
        relay_config(vec![target]),
        c.ledger.clone(),
        None,
        stop.clone(),
    ));
    c.seal().await;
    c.seal().await;
    wait_for("anchors confirmed on anvil", 90, || {
        settled(&c.ledger, "anvil")
    })
    .await;
    let third = c.seal().await;
    wait_for("the next anchor", 90, || async {
        settled(&c.ledger, "anvil").await
            && c.ledger
                .anchor_receipts(Some("anvil"))
                .await
                .unwrap()
                .iter()
                .any(|r| r.checkpoint_size == third)
    })
    .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), relay)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let receipts = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert!(!receipts.is_empty());
    let head = rpc(&anvil.url, "eth_blockNumber", json!([])).await;
    let head = u64::from_str_radix(head.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let mut nonces = Vec::new();
    for r in &receipts {
        assert_eq!(r.chain_kind, "evm");
        assert_eq!(r.chain_id, "31337");
        assert!(head + 1 >= r.block_number + 2, "two confirmations");
        // Independently: the transaction, its block and its payload.
        let tx = rpc(&anvil.url, "eth_getTransactionByHash", json!([r.tx_id])).await;
        assert_eq!(
            tx["blockHash"].as_str(),
            Some(r.block_hash.as_str()),
            "{tx}"
        );
        let block = rpc(
            &anvil.url,
            "eth_getBlockByNumber",
            json!([format!("{:#x}", r.block_number), false]),
        )
        .await;
        assert_eq!(block["hash"].as_str(), Some(r.block_hash.as_str()));
        let input = hex::decode(tx["input"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        let anchord_core::anchor::AnchorPayload { origin, size, root } =
            anchord_core::anchor::AnchorPayload::decode(&input).expect("tagged payload");
        let cp = c
            .ledger
            .checkpoint(r.checkpoint_size)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(origin, ORIGIN);
        assert_eq!(size, r.checkpoint_size);
        assert_eq!(root, cp.root);
        nonces.push(tx["nonce"].as_str().unwrap().to_owned());
        let json: Value = serde_json::from_str(&r.receipt_json).unwrap();
        assert_eq!(json["details"]["confirmations"], 2);
        // What `anchord verify --online` does with this receipt in a bundle.
        let mut ar = anchord_core::bundle::AnchorReceipt {
            target: r.target.clone(),
            chain_kind: r.chain_kind.clone(),
            chain_id: r.chain_id.clone(),
            tx_id: r.tx_id.clone(),
            block_number: r.block_number,
            block_hash: r.block_hash.clone(),
            block_time_us: r.block_time_us,
            checkpoint_size: r.checkpoint_size,
            checkpoint_root: cp.root,
            consistency_proof: vec![],
            receipt: json,
        };
        // Looked up at the endpoint the court trusts (its own node), never
        // at the one the receipt recorded.
        let chain = anchord_verifier::trust::TrustedChain {
            kind: "evm".into(),
            chain_id: r.chain_id.clone(),
            endpoints: vec![anvil.url.clone()],
        };
        let http = anchord_verifier::online::client().unwrap();
        let check = |ar: anchord_core::bundle::AnchorReceipt| {
            let (http, chain) = (http.clone(), chain.clone());
            async move {
                anchord_verifier::online::check_receipt(
                    &http,
                    ORIGIN,
                    &ar,
                    &chain,
                    &chain.endpoints,
                    300_000_000,
                )
                .await
            }
        };
        let ok = check(ar.clone()).await;
        assert!(ok.is_ok(), "online lookup confirms the anchor: {ok:?}");
        let mut backdated = ar.clone();
        backdated.block_time_us -= 365 * 86_400_000_000;
        let err = check(backdated).await.unwrap_err();
        assert!(
            matches!(
                err,
                anchord_verifier::online::OnlineError::Contradicted { .. }
            ) && err.to_string().contains("has time"),
            "{err}"
        );
        let mut other_chain = ar.clone();
        other_chain.chain_id = "1".into();
        assert!(check(other_chain).await.is_err());
        ar.checkpoint_root[0] ^= 1;
        let err = check(ar.clone()).await;
        let err = err.unwrap_err();
        assert!(
            !err.is_unconfirmed() && err.to_string().contains("does not carry this checkpoint"),
            "{err}"
        );
    }
    // One transaction per anchor: the account's nonce equals the receipts.
    let count = rpc(
        &anvil.url,
        "eth_getTransactionCount",
        json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]),
    )
    .await;
    let count = u64::from_str_radix(count.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(count as usize, receipts.len(), "no extra transactions");
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), receipts.len());
}

fn evm_target(anvil: &Anvil, dir: &std::path::Path) -> TargetConfig {
    let key = dir.join("evm.key");
    std::fs::write(&key, ANVIL_KEY).unwrap();
    TargetConfig {
        name: "anvil".into(),
        kind: TargetKind::Evm,
        request_timeout_ms: 5000,
        confirm_poll_ms: 200,
        url: None,
        account_id: None,
        signing_key: Some(key),
        rpc_url: Some(anvil.url.clone()),
        chain_id: Some(31337),
        confirmations: Some(1),
        to: None,
    }
}

/// A relay died after recording a signed transaction (state `sending`).
/// Returns the recorded transaction hash.
async fn die_after_recording(c: &Chainlet, t: &TargetConfig) -> String {
    use anchord_relay::target::Target;
    let size = c
        .ledger
        .latest_final_checkpoint()
        .await
        .unwrap()
        .unwrap()
        .size;
    let cp = c.ledger.checkpoint(size).await.unwrap().unwrap();
    let key = anchord_relay::target::idempotency_key("anvil", &cp);
    assert!(c.ledger.enqueue_anchor("anvil", size, &key).await.unwrap());
    let job = c
        .ledger
        .claim_anchor_job("anvil", 1000)
        .await
        .unwrap()
        .unwrap();
    let target = anchord_relay::evm::EvmTarget::new(t).unwrap();
    let prepared = target
        .prepare(&AnchorPayload::new("anvil", &cp))
        .await
        .unwrap();
    assert!(
        c.ledger
            .record_anchor_prepared(
                &job,
                prepared.tx_id.as_deref(),
                &serde_json::to_string(&prepared).unwrap()
            )
            .await
            .unwrap()
    );
    prepared.tx_id.unwrap()
}

async fn run_until_settled(c: &Chainlet, t: TargetConfig) {
    // Let the dead relay's 1 s lease run out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(anchord_relay::run(
        relay_config(vec![t]),
        c.ledger.clone(),
        None,
        stop.clone(),
    ));
    wait_for("the job resolved", 60, || settled(&c.ledger, "anvil")).await;
    stop.cancel();
    relay.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_recorded_transaction_is_resent_byte_for_byte_after_a_crash() {
    init_logs();
    let anvil = start_anvil();
    let mut c = Chainlet::new().await;
    let t = evm_target(&anvil, &temp_dir("anchord_evm"));
    c.seal().await;
    let recorded = die_after_recording(&c, &t).await;
    run_until_settled(&c, t).await;
    let receipts = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        receipts[0].tx_id, recorded,
        "the recorded transaction, not a new one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_recorded_transaction_whose_nonce_was_taken_is_re_signed_once() {
    init_logs();
    let anvil = start_anvil();
    let mut c = Chainlet::new().await;
    let t = evm_target(&anvil, &temp_dir("anchord_evm"));
    c.seal().await;
    let recorded = die_after_recording(&c, &t).await;
    // Something else uses the account's nonce 0 meanwhile (anvil's dev
    // account is unlocked node-side; the relay itself never uses that).
    let from = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    let other = rpc(
        &anvil.url,
        "eth_sendTransaction",
        json!([{"from": from, "to": from, "value": "0x1"}]),
    )
    .await;
    assert!(other.is_string(), "{other}");
    wait_for("the other transaction mined", 30, || async {
        !rpc(&anvil.url, "eth_getTransactionReceipt", json!([other]))
            .await
            .is_null()
    })
    .await;
    run_until_settled(&c, t).await;
    let receipts = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_ne!(receipts[0].tx_id, recorded, "re-signed at a fresh nonce");
    let tx = rpc(
        &anvil.url,
        "eth_getTransactionByHash",
        json!([receipts[0].tx_id]),
    )
    .await;
    assert_eq!(tx["nonce"], "0x1");
    assert!(
        rpc(&anvil.url, "eth_getTransactionByHash", json!([recorded]))
            .await
            .is_null(),
        "the stale transaction is nowhere"
    );
    let count = rpc(
        &anvil.url,
        "eth_getTransactionCount",
        json!([from, "latest"]),
    )
    .await;
    assert_eq!(count, "0x2", "the other transaction and one anchor");
}

fn spawn_relay(
    c: &Chainlet,
    t: TargetConfig,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), anchord_relay::RelayError>>,
) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(anchord_relay::run(
        relay_config(vec![t]),
        c.ledger.clone(),
        None,
        stop.clone(),
    ));
    (stop, task)
}

async fn stop_relay(
    r: (
        CancellationToken,
        tokio::task::JoinHandle<Result<(), anchord_relay::RelayError>>,
    ),
) {
    r.0.cancel();
    tokio::time::timeout(Duration::from_secs(30), r.1)
        .await
        .expect("relay stops")
        .unwrap()
        .unwrap();
}

fn quantity(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Every anchoring transaction on the chain (checkpoint size, tx hash,
/// block hash), read block by block over raw JSON-RPC.
async fn anchors_on_chain(url: &str) -> Vec<(u64, String, String)> {
    let head = quantity(&rpc(url, "eth_blockNumber", json!([])).await);
    let mut out = Vec::new();
    for n in 0..=head {
        let b = rpc(
            url,
            "eth_getBlockByNumber",
            json!([format!("{n:#x}"), true]),
        )
        .await;
        for tx in b["transactions"].as_array().unwrap() {
            let input =
                hex::decode(tx["input"].as_str().unwrap().trim_start_matches("0x")).unwrap();
            if let Ok(p) = anchord_core::anchor::AnchorPayload::decode(&input) {
                out.push((
                    p.size,
                    tx["hash"].as_str().unwrap().to_owned(),
                    b["hash"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

/// The relay's account's transaction count on the chain.
async fn sent_count(url: &str) -> u64 {
    quantity(
        &rpc(
            url,
            "eth_getTransactionCount",
            json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]),
        )
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_chain_reset_marks_anchors_lost_and_anchors_again_once_never_replaying_old_transactions()
 {
    init_logs();
    let port = anchord_testkit::process::free_port();
    let anvil = start_anvil_at(port, &["--block-time", "1"]);
    let mut c = Chainlet::new().await;
    let t = evm_target(&anvil, &temp_dir("anchord_evm"));
    let relay = spawn_relay(&c, t.clone());
    for _ in 0..3 {
        c.seal().await;
        wait_for("anchored", 60, || settled(&c.ledger, "anvil")).await;
    }
    stop_relay(relay).await;
    let old = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert_eq!(old.len(), 3);
    // A relay signed (and recorded) the next anchor for this chain and died
    // before sending it.
    c.seal().await;
    let stale = die_after_recording(&c, &t).await;

    // The chain is restarted empty, and mines nothing for now.
    drop(anvil);
    let anvil = start_anvil_at(port, &["--no-mining"]);
    let relay = spawn_relay(&c, t.clone());
    wait_for("the loss detected", 30, || async {
        c.ledger
            .anchor_lost_receipts(Some("anvil"))
            .await
            .unwrap()
            .len()
            == 3
    })
    .await;
    // The window: every anchor lost, all four checkpoints waiting, and it
    // shows in status, gaps and metrics.
    let health = c.ledger.anchor_health("anvil").await.unwrap();
    assert_eq!(health.lost_receipts, 3, "{health:?}");
    assert_eq!(health.live_receipts, 0, "{health:?}");
    assert_eq!(health.chain_resets, 1, "{health:?}");
    assert_eq!(health.uncovered_checkpoints, 4, "{health:?}");
    assert!(
        health
            .last_lost_reason
            .as_deref()
            .unwrap()
            .contains("chain reset")
    );
    let report = anchord_relay::report::gaps(&c.ledger, "anvil", 60_000, i64::MAX / 2)
        .await
        .unwrap();
    assert_eq!(report.lost.len(), 3, "{report:?}");
    let open = report.windows.last().unwrap();
    assert_eq!((open.first_size, open.last_size), (1, 4), "{report:?}");
    assert!(open.covered_by.is_none());
    let lost_metric: f64 = prometheus::gather()
        .iter()
        .filter(|f| f.name() == "anchord_relay_anchors_lost_total")
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
        .sum();
    assert!(lost_metric >= 3.0);
    // The stale transaction never reached the new chain.
    wait_for("a fresh transaction signed and sent", 30, || async {
        c.ledger
            .anchor_job_counts("anvil")
            .await
            .unwrap()
            .iter()
            .any(|(s, _)| s == "submitted")
    })
    .await;
    assert!(
        rpc(&anvil.url, "eth_getTransactionByHash", json!([stale]))
            .await
            .is_null(),
        "the transaction signed for the old chain was sent to the new one"
    );

    // Mining resumes: anchored again, each checkpoint at most once.
    rpc(&anvil.url, "evm_setIntervalMining", json!([1])).await;
    wait_for("anchored again", 60, || settled(&c.ledger, "anvil")).await;
    // A few more blocks and re-verification passes: nothing else is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_relay(relay).await;
    let on_chain = anchors_on_chain(&anvil.url).await;
    let mut sizes: Vec<u64> = on_chain.iter().map(|a| a.0).collect();
    sizes.sort_unstable();
    let n = sizes.len();
    sizes.dedup();
    assert_eq!(sizes.len(), n, "a checkpoint anchored twice: {on_chain:?}");
    let live = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert_eq!(live.len(), on_chain.len(), "{live:?} vs {on_chain:?}");
    assert_eq!(sent_count(&anvil.url).await as usize, live.len());
    for r in &live {
        assert!(
            on_chain
                .iter()
                .any(|(s, tx, b)| *s == r.checkpoint_size && *tx == r.tx_id && *b == r.block_hash),
            "receipt {r:?} not on the new chain"
        );
    }
    for tx in old.iter().map(|r| r.tx_id.clone()).chain([stale.clone()]) {
        assert!(
            rpc(&anvil.url, "eth_getTransactionByHash", json!([tx]))
                .await
                .is_null(),
            "old-chain transaction {tx} was replayed on the new chain"
        );
    }
    // Nothing was deleted: the lost receipts are kept, marked.
    let lost = c.ledger.anchor_lost_receipts(Some("anvil")).await.unwrap();
    assert_eq!(
        lost.iter().map(|r| r.tx_id.clone()).collect::<Vec<_>>(),
        old.iter().map(|r| r.tx_id.clone()).collect::<Vec<_>>()
    );
    let report = anchord_relay::report::gaps(&c.ledger, "anvil", 60_000, i64::MAX / 2)
        .await
        .unwrap();
    assert!(
        report.lost.iter().all(|l| l.now_anchored_by.is_some()),
        "{report:?}"
    );
    // The stale submission is kept for audit, discarded.
    let discarded: Value =
        c.db.client()
            .await
            .query_one(
                "SELECT discarded_submissions::text FROM anchor_jobs \
             WHERE target = 'anvil' AND checkpoint_size = 4",
                &[],
            )
            .await
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
            .unwrap();
    assert_eq!(
        discarded[0]["submission"]["tx_id"],
        json!(stale),
        "{discarded}"
    );
    assert!(
        discarded[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("chain")),
        "{discarded}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_reorg_past_the_anchor_block_re_pends_the_anchor_and_it_lands_once() {
    init_logs();
    let anvil = start_anvil();
    let mut c = Chainlet::new().await;
    let t = evm_target(&anvil, &temp_dir("anchord_evm"));
    let snapshot = rpc(&anvil.url, "evm_snapshot", json!([])).await;
    let relay = spawn_relay(&c, t);
    let size = c.seal().await;
    wait_for("anchored", 60, || settled(&c.ledger, "anvil")).await;
    let first = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert_eq!(first.len(), 1);
    // Reorganise the chain back to before the anchor's block.
    let reverted = rpc(&anvil.url, "evm_revert", json!([snapshot])).await;
    assert_eq!(reverted, json!(true));
    wait_for("the loss detected", 30, || async {
        c.ledger
            .anchor_lost_receipts(Some("anvil"))
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    wait_for("anchored again", 60, || async {
        settled(&c.ledger, "anvil").await
            && !c
                .ledger
                .anchor_receipts(Some("anvil"))
                .await
                .unwrap()
                .is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_relay(relay).await;
    let lost = c.ledger.anchor_lost_receipts(Some("anvil")).await.unwrap();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].block_hash, first[0].block_hash);
    let live = c.ledger.anchor_receipts(Some("anvil")).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].checkpoint_size, size);
    assert_ne!(live[0].block_hash, first[0].block_hash, "confirmed anew");
    let on_chain = anchors_on_chain(&anvil.url).await;
    assert_eq!(on_chain.len(), 1, "anchored once: {on_chain:?}");
    assert_eq!(on_chain[0].1, live[0].tx_id);
    assert_eq!(on_chain[0].2, live[0].block_hash);
    assert_eq!(sent_count(&anvil.url).await, 1);
    let jobs = c.ledger.anchor_job_counts("anvil").await.unwrap();
    assert_eq!(
        jobs,
        vec![("confirmed".to_string(), 1), ("lost".to_string(), 1)],
        "the lost job kept, a new one confirmed"
    );
}
