//! The `evm` target: an Ethereum-compatible chain over JSON-RPC.
//!
//! Each anchor is an EIP-1559 transaction signed locally (never a node-side
//! unlocked account) whose data field carries the tagged checkpoint payload
//! ([`anchord_core::anchor::AnchorPayload`]): `ANCHORD1 || size || root || origin`. The
//! signed raw transaction, its hash and nonce are recorded before it is
//! broadcast; a resend broadcasts the very same bytes, and the nonce makes
//! two versions of one anchor mutually exclusive on chain. An anchor counts
//! once `confirmations` blocks are on top of it (inclusion block included),
//! and its data field is read back from the chain and compared.
//!
//! A signed transaction is bound to one chain: the recorded submission
//! carries the chain id and the genesis block hash it was signed for, and
//! is never sent to a node whose genesis differs (a reset chain): it is
//! discarded and a fresh one signed at the new chain's nonce. Receipts carry
//! the genesis hash too, and are re-verified by block hash.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256};
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};

use crate::RelayError;
use crate::config::TargetConfig;
use crate::target::{
    AnchorPayload, ChainReceipt, Prepared, Status, Target, TargetError, Verification,
};
use anchord_ledger::{AnchorReceipt, ChainIdentity};

/// An EVM chain client with a local signing key.
pub struct EvmTarget {
    name: String,
    rpc_url: String,
    chain_id: u64,
    confirmations: u64,
    key: SigningKey,
    from: Address,
    to: Address,
    http: reqwest::Client,
}

impl std::fmt::Debug for EvmTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmTarget")
            .field("name", &self.name)
            .field("rpc_url", &self.rpc_url)
            .field("chain_id", &self.chain_id)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

fn hex_u128(v: &Value) -> Option<u128> {
    u128::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

impl EvmTarget {
    pub fn new(c: &TargetConfig) -> Result<Self, RelayError> {
        let cfg = |k: &str, why: String| {
            RelayError::Config(format!("relay.targets ({}).{k}: {why}", c.name))
        };
        let rpc_url = c
            .rpc_url
            .clone()
            .ok_or_else(|| cfg("rpc_url", "missing".into()))?;
        let chain_id = c
            .chain_id
            .ok_or_else(|| cfg("chain_id", "missing".into()))?;
        let path = c
            .signing_key
            .as_ref()
            .ok_or_else(|| cfg("signing_key", "missing".into()))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| cfg("signing_key", format!("{}: {e}", path.display())))?;
        let key = hex::decode(text.trim().trim_start_matches("0x"))
            .ok()
            .and_then(|b| SigningKey::from_slice(&b).ok())
            .ok_or_else(|| {
                cfg(
                    "signing_key",
                    format!("{}: not a hex secp256k1 private key", path.display()),
                )
            })?;
        let from = Address::from_public_key(key.verifying_key());
        let to = match &c.to {
            Some(a) => a
                .parse()
                .map_err(|e| cfg("to", format!("not an address ({e})")))?,
            None => from,
        };
        let http = c.http_client(&rpc_url)?;
        Ok(EvmTarget {
            name: c.name.clone(),
            rpc_url,
            chain_id,
            confirmations: c.confirmations.unwrap_or(1).max(1),
            key,
            from,
            to,
            http,
        })
    }

    /// The sending address.
    pub fn address(&self) -> Address {
        self.from
    }

    /// One JSON-RPC call. Transport failures before sending are
    /// `unavailable`; after, `ambiguous`; JSON-RPC errors are returned as
    /// `Ok(Err(message))` for the caller to classify.
    async fn rpc(&self, method: &str, params: Value) -> Result<Result<Value, String>, TargetError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self
            .http
            .post(&self.rpc_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| TargetError::from_reqwest(method, &e))?;
        let status = resp.status();
        if status.as_u16() == 429 || status.as_u16() == 503 {
            return Err(TargetError::unavailable(format!("{method}: HTTP {status}")));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| TargetError::ambiguous(format!("{method}: unreadable response ({e})")))?;
        if let Some(err) = v.get("error") {
            return Ok(Err(err["message"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned()));
        }
        Ok(Ok(v.get("result").cloned().unwrap_or(Value::Null)))
    }

    /// A read-only call: any JSON-RPC error is retriable.
    async fn read(&self, method: &str, params: Value) -> Result<Value, TargetError> {
        self.rpc(method, params)
            .await?
            .map_err(|m| TargetError::unavailable(format!("{method}: {m}")))
    }

    async fn check_chain(&self) -> Result<(), TargetError> {
        let id = self.read("eth_chainId", json!([])).await?;
        match hex_u64(&id) {
            Some(id) if id == self.chain_id => Ok(()),
            other => Err(TargetError::permanent(format!(
                "node reports chain id {other:?}, configured {}",
                self.chain_id
            ))),
        }
    }

    /// The node's chain: its id (must be the configured one) and the hash
    /// of its genesis block.
    async fn chain_identity(&self) -> Result<ChainIdentity, TargetError> {
        self.check_chain().await?;
        let genesis = self
            .read("eth_getBlockByNumber", json!(["0x0", false]))
            .await?;
        let hash = genesis["hash"]
            .as_str()
            .filter(|h| h.len() == 66 && h.starts_with("0x"))
            .ok_or_else(|| TargetError::unavailable("eth_getBlockByNumber(0): no block hash"))?;
        Ok(ChainIdentity {
            chain_id: self.chain_id.to_string(),
            genesis_hash: hash.to_ascii_lowercase(),
        })
    }

    fn bound(prepared: &Prepared, id: &ChainIdentity) -> bool {
        let d = &prepared.data;
        d["chainId"].as_u64().map(|c| c.to_string()).as_deref() == Some(id.chain_id.as_str())
            && d["genesis"]
                .as_str()
                .is_some_and(|g| g.eq_ignore_ascii_case(&id.genesis_hash))
    }

    fn recorded(prepared: &Prepared) -> Result<(String, u64, String), TargetError> {
        let d = &prepared.data;
        match (d["raw"].as_str(), d["nonce"].as_u64(), d["hash"].as_str()) {
            (Some(raw), Some(nonce), Some(hash)) => Ok((raw.to_owned(), nonce, hash.to_owned())),
            _ => Err(TargetError::permanent(
                "recorded EVM submission lacks raw, nonce or hash",
            )),
        }
    }

    /// Sign a fresh transaction for `p` at the account's pending nonce.
    async fn sign_new(&self, p: &AnchorPayload) -> Result<Prepared, TargetError> {
        let identity = self.chain_identity().await?;
        let from = self.from;
        let nonce = hex_u64(
            &self
                .read(
                    "eth_getTransactionCount",
                    json!([from.to_string(), "pending"]),
                )
                .await?,
        )
        .ok_or_else(|| TargetError::unavailable("eth_getTransactionCount: not a quantity"))?;
        let gas_price = hex_u128(&self.read("eth_gasPrice", json!([])).await?)
            .ok_or_else(|| TargetError::unavailable("eth_gasPrice: not a quantity"))?;
        let tip = match self.rpc("eth_maxPriorityFeePerGas", json!([])).await? {
            Ok(v) => hex_u128(&v).unwrap_or(1_000_000_000),
            Err(_) => 1_000_000_000,
        };
        let data = p.tagged().encode();
        // Ask the node (calldata pricing differs between hard forks, e.g.
        // the EIP-7623 floor), with a margin.
        let gas = hex_u64(
            &self
                .read(
                    "eth_estimateGas",
                    json!([{"from": from.to_string(), "to": self.to.to_string(),
                            "data": format!("0x{}", hex::encode(&data))}]),
                )
                .await?,
        )
        .ok_or_else(|| TargetError::unavailable("eth_estimateGas: not a quantity"))?;
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit: gas + gas / 5,
            max_fee_per_gas: gas_price.saturating_mul(2).max(tip + 1),
            max_priority_fee_per_gas: tip.min(gas_price.saturating_mul(2)),
            to: TxKind::Call(self.to),
            value: U256::ZERO,
            access_list: Default::default(),
            input: Bytes::from(data),
        };
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(tx.signature_hash().as_slice())
            .map_err(|e| TargetError::permanent(format!("signing: {e}")))?;
        let sig = Signature::from_signature_and_parity(sig, recid.is_y_odd());
        let signed = tx.into_signed(sig);
        let hash = format!("{:#x}", signed.hash());
        let raw = TxEnvelope::from(signed).encoded_2718();
        Ok(Prepared {
            tx_id: Some(hash.clone()),
            data: json!({
                "rpc": self.rpc_url,
                "chainId": self.chain_id,
                "genesis": identity.genesis_hash,
                "from": from.to_string(),
                "to": self.to.to_string(),
                "nonce": nonce,
                "hash": hash,
                "raw": format!("0x{}", hex::encode(raw)),
            }),
        })
    }
}

impl Target for EvmTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prepare(&self, p: &AnchorPayload) -> Result<Prepared, TargetError> {
        self.sign_new(p).await
    }

    async fn refresh(
        &self,
        p: &AnchorPayload,
        prepared: &Prepared,
    ) -> Result<Option<Prepared>, TargetError> {
        // The recorded transaction is not on chain (the worker looked it up
        // first). If its nonce has been used by another transaction it can
        // never land: sign a new one.
        let (_, nonce, _) = Self::recorded(prepared)?;
        let from = self.from;
        let mined = hex_u64(
            &self
                .read(
                    "eth_getTransactionCount",
                    json!([from.to_string(), "latest"]),
                )
                .await?,
        )
        .ok_or_else(|| TargetError::unavailable("eth_getTransactionCount: not a quantity"))?;
        if mined > nonce {
            return self.sign_new(p).await.map(Some);
        }
        Ok(None)
    }

    async fn send(&self, _p: &AnchorPayload, prepared: &Prepared) -> Result<Status, TargetError> {
        let (raw, _, hash) = Self::recorded(prepared)?;
        // Never broadcast a transaction signed for another chain (the node
        // was reset, or points elsewhere): nothing is sent; the worker
        // discards it and signs anew.
        let id = self.chain_identity().await?;
        if !Self::bound(prepared, &id) {
            return Err(TargetError::unavailable(format!(
                "transaction {hash} was signed for another chain than the node's \
                 (chain {}, genesis {}); not sent",
                id.chain_id, id.genesis_hash
            )));
        }
        match self.rpc("eth_sendRawTransaction", json!([raw])).await? {
            Ok(_) => Ok(Status::Pending { tx_id: hash }),
            Err(m) => {
                let l = m.to_lowercase();
                if l.contains("already known") || l.contains("already imported") {
                    Ok(Status::Pending { tx_id: hash })
                } else if l.contains("nonce too low")
                    || l.contains("insufficient funds")
                    || l.contains("underpriced")
                {
                    // Rejected outright: nothing is pending. The next
                    // attempt looks up, then re-signs if the nonce is gone.
                    Err(TargetError::unavailable(format!(
                        "eth_sendRawTransaction: {m}"
                    )))
                } else {
                    Err(TargetError::ambiguous(format!(
                        "eth_sendRawTransaction: {m}"
                    )))
                }
            }
        }
    }

    async fn lookup(
        &self,
        p: &AnchorPayload,
        prepared: Option<&Prepared>,
    ) -> Result<Status, TargetError> {
        let Some(prepared) = prepared else {
            return Ok(Status::NotFound);
        };
        let (_, nonce, hash) = Self::recorded(prepared)?;
        let receipt = self
            .read("eth_getTransactionReceipt", json!([hash]))
            .await?;
        if receipt.is_null() {
            let tx = self.read("eth_getTransactionByHash", json!([hash])).await?;
            return Ok(if tx.is_null() {
                Status::NotFound
            } else {
                Status::Pending { tx_id: hash }
            });
        }
        let bn = hex_u64(&receipt["blockNumber"])
            .ok_or_else(|| TargetError::unavailable("receipt without block number"))?;
        if hex_u64(&receipt["status"]) != Some(1) {
            return Err(TargetError::permanent(format!(
                "anchoring transaction {hash} failed on chain (status {})",
                receipt["status"]
            )));
        }
        let head = hex_u64(&self.read("eth_blockNumber", json!([])).await?)
            .ok_or_else(|| TargetError::unavailable("eth_blockNumber: not a quantity"))?;
        if head + 1 < bn + self.confirmations {
            return Ok(Status::Pending { tx_id: hash });
        }
        let block = self
            .read("eth_getBlockByNumber", json!([format!("{bn:#x}"), false]))
            .await?;
        let block_hash = block["hash"].as_str().unwrap_or_default().to_owned();
        if block_hash.is_empty() || receipt["blockHash"].as_str() != Some(block_hash.as_str()) {
            // Reorganised since the receipt was read: ask again later.
            return Ok(Status::Pending { tx_id: hash });
        }
        let time = hex_u64(&block["timestamp"])
            .ok_or_else(|| TargetError::unavailable("block without timestamp"))?;
        let genesis = self.chain_identity().await?.genesis_hash;
        // Read the payload back from the chain and compare.
        let tx = self.read("eth_getTransactionByHash", json!([hash])).await?;
        let input = tx["input"].as_str().unwrap_or_default();
        if !p.tagged().matches_hex_data(input) {
            return Err(TargetError::permanent(format!(
                "transaction {hash} on chain does not carry this checkpoint's payload"
            )));
        }
        Ok(Status::Confirmed(ChainReceipt {
            chain_kind: "evm".into(),
            chain_id: self.chain_id.to_string(),
            tx_id: hash.clone(),
            block_number: bn,
            block_hash,
            block_time_us: (time as i64).saturating_mul(1_000_000),
            genesis_hash: Some(genesis.clone()),
            details: json!({
                "rpc": self.rpc_url,
                "genesisHash": genesis,
                "from": prepared.data["from"],
                "to": prepared.data["to"],
                "nonce": nonce,
                "input": input,
                "confirmations": self.confirmations,
                "confirmedAtHead": head,
                "payloadFormat": anchord_core::anchor::PAYLOAD_FORMAT,
            }),
        }))
    }

    async fn identity(&self) -> Result<ChainIdentity, TargetError> {
        self.chain_identity().await
    }

    fn binds_chain(&self) -> bool {
        true
    }

    fn bound_to(&self, prepared: &Prepared, id: &ChainIdentity) -> bool {
        Self::bound(prepared, id)
    }

    async fn verify_receipt(&self, r: &AnchorReceipt) -> Result<Verification, TargetError> {
        let head = hex_u64(&self.read("eth_blockNumber", json!([])).await?)
            .ok_or_else(|| TargetError::unavailable("eth_blockNumber: not a quantity"))?;
        if head < r.block_number {
            return Ok(Verification::Lost(format!(
                "chain head {head} is below the anchor's block {}",
                r.block_number
            )));
        }
        let block = self
            .read(
                "eth_getBlockByNumber",
                json!([format!("{:#x}", r.block_number), false]),
            )
            .await?;
        let Some(hash) = block["hash"].as_str() else {
            return Ok(Verification::Lost(format!(
                "no block {} on the chain",
                r.block_number
            )));
        };
        if !hash.eq_ignore_ascii_case(&r.block_hash) {
            return Ok(Verification::Lost(format!(
                "block {} is now {hash}, not {} (reorganised)",
                r.block_number, r.block_hash
            )));
        }
        let holds = block["transactions"].as_array().is_some_and(|txs| {
            txs.iter()
                .any(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case(&r.tx_id)))
        });
        if !holds {
            return Ok(Verification::Lost(format!(
                "block {} ({hash}) does not hold transaction {}",
                r.block_number, r.tx_id
            )));
        }
        Ok(Verification::InPlace {
            depth: head - r.block_number + 1,
        })
    }
}
