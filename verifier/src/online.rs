//! `anchord verify --online`: look each anchor up on its chain, at the
//! endpoints the court's trust policy lists for the receipt's target (never
//! at an endpoint the bundle names, unless the user explicitly allows it),
//! and compare everything: chain id, transaction, block number, block hash,
//! block time (within the policy's tolerance) and the anchored checkpoint
//! (origin, size, root). The only part of verification that uses the
//! network.
//!
//! - `judicial` (`docs/judicial-gateway-v1.md`): `GET <endpoint>/v1/chain`
//!   (`chainId`), then `GET <endpoint>/v1/blocks/<block_number>`: height,
//!   hash, `time` (ms) and the transaction, whose evidence is the anchored
//!   checkpoint.
//! - `evm`: `eth_chainId`; `eth_getTransactionByHash` (block number and
//!   hash, input `ANCHORD1 || u64 BE size || root || origin`);
//!   `eth_getTransactionReceipt` (status 1, same block);
//!   `eth_getBlockByNumber` (hash, timestamp).

use std::time::Duration;

use anchord_core::anchor::AnchorPayload;
use anchord_core::bundle::AnchorReceipt;
use anchord_core::checkpoint::encode_hash;
use serde_json::{Value, json};

use crate::trust::TrustedChain;

/// What the chain confirmed, and where.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Confirmed {
    pub target: String,
    /// The endpoint that answered.
    pub endpoint: String,
    /// When the lookup was made, µs since the epoch.
    pub checked_at_us: i64,
    /// What it confirmed, for people.
    pub summary: String,
}

/// Why a lookup failed: `Unreachable` endpoints are skipped for the next
/// one; a `Mismatch` is the chain contradicting the receipt.
#[derive(Debug)]
enum LookupError {
    Unreachable(String),
    Mismatch(String),
}

/// Why an anchor could not be confirmed online.
#[derive(Clone, Debug, thiserror::Error)]
pub enum OnlineError {
    /// The receipt names another chain than the trust policy's entry.
    #[error(
        "the receipt says {receipt_kind} chain {receipt_chain:?}, the trust policy says {policy_kind} chain {policy_chain:?}"
    )]
    NotThePolicysChain {
        receipt_kind: String,
        receipt_chain: String,
        policy_kind: String,
        policy_chain: String,
    },
    #[error("the trust policy lists no endpoint for target {0:?} (chains.{0}.endpoints)")]
    NoEndpoint(String),
    #[error("no online lookup for chain kind {0:?}")]
    UnknownKind(String),
    /// The chain contradicts the receipt: the anchor is not what it claims.
    #[error("{endpoint}: {message}")]
    Contradicted { endpoint: String, message: String },
    /// No endpoint could be asked (each one's failure).
    #[error("no trusted endpoint answered: {}", .0.join("; "))]
    Unreachable(Vec<String>),
    /// One endpoint's answer could not be used (`chain_id_of`).
    #[error("{endpoint}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("HTTP client: {0}")]
    Client(String),
    /// The trusted endpoints did not answer and the bundle's own endpoint
    /// was refused by the egress policy.
    #[error("{first}; the bundle's endpoint {endpoint} was not contacted: {refused}")]
    BundleEndpointRefused {
        first: Box<OnlineError>,
        endpoint: String,
        refused: String,
    },
}

impl OnlineError {
    /// True when nothing contradicted the receipt, it just could not be
    /// checked (no endpoint listed, none answered): the verdict stays what
    /// offline verification said, marked unconfirmed.
    pub fn is_unconfirmed(&self) -> bool {
        matches!(
            self,
            OnlineError::NoEndpoint(_)
                | OnlineError::Unreachable(_)
                | OnlineError::Client(_)
                | OnlineError::BundleEndpointRefused { .. }
        )
    }
}

/// The endpoint a receipt recorded (used only with the user's explicit
/// permission, `--allow-bundle-endpoints`).
pub fn bundle_endpoint(r: &AnchorReceipt) -> Option<String> {
    let d = &r.receipt["details"];
    match r.chain_kind.as_str() {
        "judicial" => d["gateway"].as_str().map(str::to_owned),
        "evm" => d["rpc"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// Look one receipt up at `endpoints` (in order; an unreachable one is
/// skipped, a contradiction fails at once). `origin` is the bundle's
/// checkpoint origin; `chain` the trust policy's entry for the target.
pub async fn check_receipt(
    http: &reqwest::Client,
    origin: &str,
    r: &AnchorReceipt,
    chain: &TrustedChain,
    endpoints: &[String],
    tolerance_us: i64,
) -> Result<Confirmed, OnlineError> {
    if chain.kind != r.chain_kind || chain.chain_id != r.chain_id {
        return Err(OnlineError::NotThePolicysChain {
            receipt_kind: r.chain_kind.clone(),
            receipt_chain: r.chain_id.clone(),
            policy_kind: chain.kind.clone(),
            policy_chain: chain.chain_id.clone(),
        });
    }
    if endpoints.is_empty() {
        return Err(OnlineError::NoEndpoint(r.target.clone()));
    }
    let mut unreachable = Vec::new();
    for ep in endpoints {
        let ep = ep.trim_end_matches('/');
        let res = match r.chain_kind.as_str() {
            "judicial" => judicial(http, ep, origin, r, chain, tolerance_us).await,
            "evm" => evm(http, ep, origin, r, chain, tolerance_us).await,
            other => return Err(OnlineError::UnknownKind(other.to_owned())),
        };
        match res {
            Ok(summary) => {
                return Ok(Confirmed {
                    target: r.target.clone(),
                    endpoint: ep.to_owned(),
                    checked_at_us: anchord_core::time::unix_micros(std::time::SystemTime::now()),
                    summary,
                });
            }
            Err(LookupError::Mismatch(message)) => {
                return Err(OnlineError::Contradicted {
                    endpoint: ep.to_owned(),
                    message,
                });
            }
            Err(LookupError::Unreachable(m)) => unreachable.push(format!("{ep}: {m}")),
        }
    }
    Err(OnlineError::Unreachable(unreachable))
}

fn time_ok(chain_us: i64, r: &AnchorReceipt, tolerance_us: i64) -> Result<(), LookupError> {
    if chain_us.abs_diff(r.block_time_us) > tolerance_us.unsigned_abs() {
        return Err(LookupError::Mismatch(format!(
            "block {} has time {chain_us} µs, the receipt says {} µs (tolerance {} s)",
            r.block_number,
            r.block_time_us,
            tolerance_us / 1_000_000
        )));
    }
    Ok(())
}

async fn judicial(
    http: &reqwest::Client,
    ep: &str,
    origin: &str,
    r: &AnchorReceipt,
    chain: &TrustedChain,
    tolerance_us: i64,
) -> Result<String, LookupError> {
    let mismatch = LookupError::Mismatch;
    let info = get_json(http.get(format!("{ep}/v1/chain"))).await?;
    if info["chainId"].as_str() != Some(chain.chain_id.as_str()) {
        return Err(mismatch(format!(
            "the gateway serves chain {}, the trust policy says {:?}",
            info["chainId"], chain.chain_id
        )));
    }
    let url = format!("{ep}/v1/blocks/{}", r.block_number);
    let block = get_json(http.get(&url)).await?;
    if block["height"].as_u64() != Some(r.block_number) {
        return Err(mismatch(format!(
            "block height {} ≠ receipt's {}",
            block["height"], r.block_number
        )));
    }
    if block["hash"].as_str() != Some(r.block_hash.as_str()) {
        return Err(mismatch(format!(
            "block {} has hash {}, the receipt says {}",
            r.block_number, block["hash"], r.block_hash
        )));
    }
    let time_ms = block["time"]
        .as_i64()
        .ok_or_else(|| mismatch(format!("block {} has no time", r.block_number)))?;
    time_ok(time_ms.saturating_mul(1000), r, tolerance_us)?;
    let tx = block["txs"]
        .as_array()
        .and_then(|txs| txs.iter().find(|t| t["txId"].as_str() == Some(&r.tx_id)))
        .ok_or_else(|| {
            mismatch(format!(
                "transaction {} is not in the block (block {})",
                r.tx_id, r.block_number
            ))
        })?;
    let ev = &tx["evidence"];
    let want_root = encode_hash(&r.checkpoint_root);
    if ev["origin"].as_str() != Some(origin)
        || ev["size"].as_u64() != Some(r.checkpoint_size)
        || ev["root"].as_str() != Some(want_root.as_str())
    {
        return Err(mismatch(format!(
            "transaction {} carries {ev}, not checkpoint {origin} size {} root {want_root}",
            r.tx_id, r.checkpoint_size
        )));
    }
    Ok(format!(
        "chain {} block {} {} (time {time_ms} ms) holds tx {} anchoring checkpoint {}",
        chain.chain_id, r.block_number, r.block_hash, r.tx_id, r.checkpoint_size
    ))
}

fn quantity(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|n| n.strip_prefix("0x"))
        .and_then(|n| u64::from_str_radix(n, 16).ok())
}

async fn rpc(
    http: &reqwest::Client,
    ep: &str,
    method: &str,
    params: Value,
) -> Result<Value, LookupError> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let resp = get_json(http.post(ep).json(&body)).await?;
    if let Some(e) = resp.get("error") {
        return Err(LookupError::Unreachable(format!("{method}: {e}")));
    }
    Ok(resp["result"].clone())
}

async fn evm(
    http: &reqwest::Client,
    ep: &str,
    origin: &str,
    r: &AnchorReceipt,
    chain: &TrustedChain,
    tolerance_us: i64,
) -> Result<String, LookupError> {
    let mismatch = LookupError::Mismatch;
    let id = quantity(&rpc(http, ep, "eth_chainId", json!([])).await?);
    if id.map(|n| n.to_string()).as_deref() != Some(chain.chain_id.as_str()) {
        return Err(mismatch(format!(
            "the node serves chain id {id:?}, the trust policy says {}",
            chain.chain_id
        )));
    }
    let tx = rpc(http, ep, "eth_getTransactionByHash", json!([r.tx_id])).await?;
    if tx.is_null() {
        return Err(mismatch(format!("transaction {} not found", r.tx_id)));
    }
    if quantity(&tx["blockNumber"]) != Some(r.block_number)
        || tx["blockHash"].as_str() != Some(r.block_hash.as_str())
    {
        return Err(mismatch(format!(
            "transaction {} is in block {} {}, the receipt says {} {}",
            r.tx_id, tx["blockNumber"], tx["blockHash"], r.block_number, r.block_hash
        )));
    }
    let payload = AnchorPayload::new(origin, r.checkpoint_size, r.checkpoint_root);
    if !tx["input"]
        .as_str()
        .is_some_and(|i| payload.matches_hex_data(i))
    {
        return Err(mismatch(format!(
            "transaction {} does not carry this checkpoint ({origin} size {})",
            r.tx_id, r.checkpoint_size
        )));
    }
    let receipt = rpc(http, ep, "eth_getTransactionReceipt", json!([r.tx_id])).await?;
    if quantity(&receipt["status"]) != Some(1) {
        return Err(mismatch(format!(
            "transaction {} did not succeed (status {})",
            r.tx_id, receipt["status"]
        )));
    }
    let block = rpc(
        http,
        ep,
        "eth_getBlockByNumber",
        json!([format!("{:#x}", r.block_number), false]),
    )
    .await?;
    if block["hash"].as_str() != Some(r.block_hash.as_str()) {
        return Err(mismatch(format!(
            "block {} has hash {}, the receipt says {}",
            r.block_number, block["hash"], r.block_hash
        )));
    }
    let secs = quantity(&block["timestamp"])
        .ok_or_else(|| mismatch(format!("block {} has no timestamp", r.block_number)))?;
    time_ok((secs as i64).saturating_mul(1_000_000), r, tolerance_us)?;
    Ok(format!(
        "chain {} block {} {} (time {secs} s) holds tx {} anchoring checkpoint {}",
        chain.chain_id, r.block_number, r.block_hash, r.tx_id, r.checkpoint_size
    ))
}

/// A client for [`check_receipt`]: bounded timeouts, no redirects, no
/// proxy from the environment.
pub fn client() -> Result<reqwest::Client, OnlineError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| OnlineError::Client(e.to_string()))
}

async fn get_json(req: reqwest::RequestBuilder) -> Result<Value, LookupError> {
    let resp = req
        .send()
        .await
        .map_err(|e| LookupError::Unreachable(format!("lookup failed: {e}")))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(LookupError::Mismatch(
            "the chain answered 404 not found".into(),
        ));
    }
    if !status.is_success() {
        return Err(LookupError::Unreachable(format!(
            "lookup answered HTTP {status}"
        )));
    }
    resp.json()
        .await
        .map_err(|e| LookupError::Unreachable(format!("lookup answered no JSON: {e}")))
}

/// The chain id an endpoint serves (for `anchord trust export`).
pub async fn chain_id_of(
    http: &reqwest::Client,
    kind: &str,
    ep: &str,
) -> Result<String, OnlineError> {
    let ep = ep.trim_end_matches('/');
    let at = |message: String| OnlineError::Endpoint {
        endpoint: ep.to_owned(),
        message,
    };
    let e = |e: LookupError| match e {
        LookupError::Unreachable(m) | LookupError::Mismatch(m) => at(m),
    };
    match kind {
        "judicial" => {
            let info = get_json(http.get(format!("{ep}/v1/chain")))
                .await
                .map_err(e)?;
            info["chainId"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| at("/v1/chain: no chainId".into()))
        }
        _ => {
            let v = rpc(http, ep, "eth_chainId", json!([])).await.map_err(e)?;
            quantity(&v)
                .map(|n| n.to_string())
                .ok_or_else(|| at("eth_chainId is not a quantity".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn receipt() -> AnchorReceipt {
        AnchorReceipt {
            target: "court".into(),
            chain_kind: "judicial".into(),
            chain_id: "c1".into(),
            tx_id: "tx1".into(),
            block_number: 1,
            block_hash: "h1".into(),
            block_time_us: 1_000_000,
            checkpoint_size: 3,
            checkpoint_root: [7; 32],
            consistency_proof: Vec::new(),
            receipt: Value::Null,
        }
    }

    fn chain() -> TrustedChain {
        TrustedChain {
            kind: "judicial".into(),
            chain_id: "c1".into(),
            endpoints: Vec::new(),
        }
    }

    /// A gateway that answers for chain `c1` with block 1 holding `tx1`
    /// whose evidence is `evidence`.
    async fn gateway(evidence: Value) -> String {
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/v1/chain",
                get(|| async { axum::Json(json!({"chainId": "c1"})) }),
            )
            .route(
                "/v1/blocks/1",
                get(move || {
                    let evidence = evidence.clone();
                    async move {
                        axum::Json(json!({"height": 1, "hash": "h1", "time": 1000,
                            "txs": [{"txId": "tx1", "evidence": evidence}]}))
                    }
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_contradiction_stays_invalid_whatever_text_the_chain_sends() {
        // The old string errors were classified by their text ("lists no
        // endpoint", "no trusted endpoint answered"); a gateway could put
        // that text into the evidence it returns and turn a contradiction
        // (INVALID) into UNCONFIRMED. The type decides now.
        let ep = gateway(
            json!({"origin": "the trust policy lists no endpoint for target",
            "size": 3, "root": "no trusted endpoint answered"}),
        )
        .await;
        let e = check_receipt(
            &client().unwrap(),
            "o",
            &receipt(),
            &chain(),
            &[ep],
            1_000_000,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, OnlineError::Contradicted { .. }), "{e:?}");
        assert!(!e.is_unconfirmed());
        assert!(e.to_string().contains("lists no endpoint"));
    }

    #[tokio::test]
    async fn the_anchored_checkpoint_confirms_and_nothing_answering_is_unconfirmed() {
        let ev = json!({"origin": "o", "size": 3, "root": encode_hash(&[7; 32])});
        let ep = gateway(ev).await;
        let ok = check_receipt(
            &client().unwrap(),
            "o",
            &receipt(),
            &chain(),
            &[ep],
            1_000_000,
        )
        .await
        .unwrap();
        assert_eq!(ok.target, "court");

        let e = check_receipt(
            &client().unwrap(),
            "o",
            &receipt(),
            &chain(),
            &[],
            1_000_000,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, OnlineError::NoEndpoint(_)) && e.is_unconfirmed());
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let e = check_receipt(
            &client().unwrap(),
            "o",
            &receipt(),
            &chain(),
            &[closed],
            1_000_000,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, OnlineError::Unreachable(_)) && e.is_unconfirmed(),
            "{e:?}"
        );
        let other = TrustedChain {
            chain_id: "c2".into(),
            ..chain()
        };
        let e = check_receipt(&client().unwrap(), "o", &receipt(), &other, &[], 1_000_000)
            .await
            .unwrap_err();
        assert!(matches!(e, OnlineError::NotThePolicysChain { .. }) && !e.is_unconfirmed());
    }
}
