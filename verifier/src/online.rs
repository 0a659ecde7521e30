//! `anchord verify --online`: look each anchor up on its chain, at the
//! endpoints its receipt recorded, and check that the chain really carries
//! the anchored checkpoint. The only part of verification that uses the
//! network.
//!
//! - `judicial`: `GET <block URL>` (the gateway's public block endpoint,
//!   docs/judicial-gateway-v1.md): the block at the receipt's height must
//!   have the receipt's hash and contain the receipt's transaction, whose
//!   evidence is the anchored checkpoint (origin, size, root).
//! - `evm`: `eth_getTransactionByHash` on the recorded JSON-RPC endpoint: the
//!   transaction must be in the receipt's block, and its data must be
//!   `ANCHORD1 || size || root || origin` of the anchored checkpoint.

use std::time::Duration;

use anchord_core::bundle::AnchorReceipt;
use anchord_core::checkpoint::encode_hash;
use serde_json::{Value, json};

/// What the chain confirmed, for the report.
pub type Confirmed = String;

/// Look one receipt up. `origin` is the bundle's checkpoint origin.
pub async fn check_receipt(
    http: &reqwest::Client,
    origin: &str,
    r: &AnchorReceipt,
) -> Result<Confirmed, String> {
    let details = &r.receipt["details"];
    match r.chain_kind.as_str() {
        "judicial" => {
            let url = details["block"].as_str().map(str::to_owned).or_else(|| {
                details["gateway"]
                    .as_str()
                    .map(|g| format!("{}/v1/blocks/{}", g.trim_end_matches('/'), r.block_number))
            });
            let url = url.ok_or("the receipt records no block URL")?;
            let block: Value = get_json(http.get(&url)).await?;
            if block["height"].as_u64() != Some(r.block_number) {
                return Err(format!(
                    "{url}: block height {} ≠ receipt's {}",
                    block["height"], r.block_number
                ));
            }
            if !block["hash"]
                .as_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&r.block_hash))
            {
                return Err(format!(
                    "{url}: block hash {} ≠ receipt's {}",
                    block["hash"], r.block_hash
                ));
            }
            let tx = block["txs"]
                .as_array()
                .and_then(|txs| txs.iter().find(|t| t["txId"].as_str() == Some(&r.tx_id)))
                .ok_or_else(|| format!("{url}: transaction {} is not in the block", r.tx_id))?;
            let ev = &tx["evidence"];
            let want_root = encode_hash(&r.checkpoint_root);
            if ev["origin"].as_str() != Some(origin)
                || ev["size"].as_u64() != Some(r.checkpoint_size)
                || ev["root"].as_str() != Some(want_root.as_str())
            {
                return Err(format!(
                    "{url}: transaction {} carries {ev}, not checkpoint {origin} size {} root {want_root}",
                    r.tx_id, r.checkpoint_size
                ));
            }
            Ok(format!(
                "block {} {} holds tx {}",
                r.block_number, r.block_hash, r.tx_id
            ))
        }
        "evm" => {
            let rpc = details["rpc"]
                .as_str()
                .ok_or("the receipt records no JSON-RPC endpoint")?;
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionByHash", "params": [r.tx_id]});
            let resp: Value = get_json(http.post(rpc).json(&body)).await?;
            let tx = &resp["result"];
            if tx.is_null() {
                return Err(format!("{rpc}: transaction {} not found", r.tx_id));
            }
            let number = tx["blockNumber"]
                .as_str()
                .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok());
            if number != Some(r.block_number)
                || !tx["blockHash"]
                    .as_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&r.block_hash))
            {
                return Err(format!(
                    "{rpc}: transaction {} is in block {} {}, the receipt says {} {}",
                    r.tx_id, tx["blockNumber"], tx["blockHash"], r.block_number, r.block_hash
                ));
            }
            let mut payload = b"ANCHORD1".to_vec();
            payload.extend_from_slice(&r.checkpoint_size.to_be_bytes());
            payload.extend_from_slice(&r.checkpoint_root);
            payload.extend_from_slice(origin.as_bytes());
            let want = format!("0x{}", hex::encode(payload));
            if !tx["input"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(&want))
            {
                return Err(format!(
                    "{rpc}: transaction {} does not carry this checkpoint",
                    r.tx_id
                ));
            }
            Ok(format!(
                "block {} {} holds tx {}",
                r.block_number, r.block_hash, r.tx_id
            ))
        }
        other => Err(format!("no online lookup for chain kind {other:?}")),
    }
}

/// A client for [`check_receipt`]: bounded timeouts, no redirects.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

async fn get_json(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let resp = req
        .send()
        .await
        .map_err(|e| format!("lookup failed: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("lookup answered HTTP {status}"));
    }
    resp.json()
        .await
        .map_err(|e| format!("lookup answered no JSON: {e}"))
}
