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
    let mut child = Command::new(anvil_path())
        .args(["--host", "127.0.0.1", "--port", "0", "--block-time", "1"])
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
        let (origin, size, root) = AnchorPayload::parse_tagged(&input).expect("tagged payload");
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
        let http = anchord_verifier::online::client().unwrap();
        let ok = anchord_verifier::online::check_receipt(&http, ORIGIN, &ar).await;
        assert!(ok.is_ok(), "online lookup confirms the anchor: {ok:?}");
        ar.checkpoint_root[0] ^= 1;
        let err = anchord_verifier::online::check_receipt(&http, ORIGIN, &ar).await;
        assert!(err.unwrap_err().contains("does not carry this checkpoint"));
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
