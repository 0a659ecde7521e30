//! The `judicial` target: an HTTPS + JSON gateway of the kind internet
//! courts' judicial chains expose (`docs/judicial-gateway-v1.md`).

use reqwest::StatusCode;
use rsa::RsaPrivateKey;
use serde_json::json;

use crate::RelayError;
use crate::config::TargetConfig;
use crate::gateway::{
    EVIDENCE_KIND, ErrorBody, Evidence, QueryRequest, SubmitRequest, TxResponse, now_ms, sign,
};
use crate::target::{
    AnchorPayload, ChainReceipt, Prepared, Status, Target, TargetError, Verification,
};
use anchord_ledger::{AnchorReceipt, ChainIdentity};

/// A judicial gateway client.
pub struct JudicialTarget {
    name: String,
    base: String,
    account_id: String,
    key: RsaPrivateKey,
    http: reqwest::Client,
}

impl std::fmt::Debug for JudicialTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudicialTarget")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl JudicialTarget {
    pub fn new(c: &TargetConfig) -> Result<Self, RelayError> {
        let cfg = |k: &str| RelayError::Config(format!("relay.targets ({}): {k} missing", c.name));
        let base = c.url.clone().ok_or_else(|| cfg("url"))?;
        let account_id = c.account_id.clone().ok_or_else(|| cfg("account_id"))?;
        let path = c.signing_key.as_ref().ok_or_else(|| cfg("signing_key"))?;
        let pem = std::fs::read_to_string(path).map_err(|e| {
            RelayError::Config(format!(
                "relay.targets ({}).signing_key {}: {e}",
                c.name,
                path.display()
            ))
        })?;
        let key = crate::gateway::load_private_key(&pem).map_err(|e| {
            RelayError::Config(format!(
                "relay.targets ({}).signing_key {}: {e}",
                c.name,
                path.display()
            ))
        })?;
        let http = c.http_client(&base)?;
        Ok(JudicialTarget {
            name: c.name.clone(),
            base: base.trim_end_matches('/').to_owned(),
            account_id,
            key,
            http,
        })
    }

    fn evidence(p: &AnchorPayload) -> Evidence {
        Evidence {
            kind: EVIDENCE_KIND.into(),
            origin: p.checkpoint.origin.clone(),
            size: p.checkpoint.size,
            root: p.root_base64(),
        }
    }

    async fn post<T: serde::Serialize>(&self, path: &str, body: &T) -> Result<Status, TargetError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|e| TargetError::from_reqwest(path, &e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TargetError::ambiguous(format!("{path}: reading the response: {e}")))?;
        if status.is_success() {
            let tx: TxResponse = serde_json::from_slice(&bytes).map_err(|e| {
                TargetError::ambiguous(format!("{path}: unreadable response ({e})"))
            })?;
            let raw: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return match self.status_of(tx, raw)? {
                // Bind the receipt to the chain it is on.
                Status::Confirmed(mut r) => {
                    r.genesis_hash = Some(
                        self.block(0)
                            .await?
                            .ok_or_else(|| {
                                TargetError::unavailable("the gateway has no genesis block")
                            })?
                            .hash,
                    );
                    Ok(Status::Confirmed(r))
                }
                other => Ok(other),
            };
        }
        if status == StatusCode::NOT_FOUND && path.ends_with("/query") {
            return Ok(Status::NotFound);
        }
        let err: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let msg = format!(
            "{path}: HTTP {status}{}",
            err.map(|e| format!(" {}: {}", e.error, e.message))
                .unwrap_or_default()
        );
        Err(match status.as_u16() {
            429 | 503 => TargetError::unavailable(msg),
            500..=599 | 408 => TargetError::ambiguous(msg),
            _ => TargetError::permanent(msg),
        })
    }

    /// `GET /v1/blocks/{height}` (public): `None` when there is no such
    /// block.
    async fn block(&self, height: u64) -> Result<Option<crate::sim::SimBlock>, TargetError> {
        let path = format!("/v1/blocks/{height}");
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| TargetError::from_reqwest(&path, &e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(TargetError::unavailable(format!(
                "{path}: HTTP {}",
                resp.status()
            )));
        }
        resp.json()
            .await
            .map(Some)
            .map_err(|e| TargetError::unavailable(format!("{path}: unreadable block ({e})")))
    }

    /// `GET /v1/chain`: (chain id, height).
    async fn chain(&self) -> Result<(String, u64), TargetError> {
        let resp = self
            .http
            .get(format!("{}/v1/chain", self.base))
            .send()
            .await
            .map_err(|e| TargetError::from_reqwest("/v1/chain", &e))?;
        if !resp.status().is_success() {
            return Err(TargetError::unavailable(format!(
                "/v1/chain: HTTP {}",
                resp.status()
            )));
        }
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| TargetError::unavailable(format!("/v1/chain: unreadable ({e})")))?;
        match (v["chainId"].as_str(), v["height"].as_u64()) {
            (Some(id), Some(h)) => Ok((id.to_owned(), h)),
            _ => Err(TargetError::unavailable(
                "/v1/chain: chainId or height missing",
            )),
        }
    }

    fn status_of(&self, tx: TxResponse, raw: serde_json::Value) -> Result<Status, TargetError> {
        match tx.status.as_str() {
            "pending" => Ok(Status::Pending { tx_id: tx.tx_id }),
            "confirmed" => {
                let (Some(h), Some(hash), Some(t)) =
                    (tx.block_height, tx.block_hash.clone(), tx.block_time)
                else {
                    return Err(TargetError::ambiguous(
                        "confirmed response without block height, hash and time",
                    ));
                };
                Ok(Status::Confirmed(ChainReceipt {
                    chain_kind: "judicial".into(),
                    chain_id: tx.chain_id.clone(),
                    tx_id: tx.tx_id.clone(),
                    block_number: h,
                    block_hash: hash,
                    block_time_us: t.saturating_mul(1000),
                    genesis_hash: None,
                    details: json!({
                        "gateway": self.base,
                        "query": format!("{}/v1/anchors/query", self.base),
                        "block": format!("{}/v1/blocks/{h}", self.base),
                        "accountId": self.account_id,
                        "idempotencyKey": tx.idempotency_key,
                        "evidence": tx.evidence,
                        "response": raw,
                    }),
                }))
            }
            other => Err(TargetError::ambiguous(format!(
                "unknown transaction status {other:?}"
            ))),
        }
    }
}

impl Target for JudicialTarget {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prepare(&self, p: &AnchorPayload) -> Result<Prepared, TargetError> {
        Ok(Prepared {
            tx_id: None,
            data: json!({"gateway": self.base, "accountId": self.account_id,
                         "idempotencyKey": p.idempotency_key}),
        })
    }

    async fn send(&self, p: &AnchorPayload, _prepared: &Prepared) -> Result<Status, TargetError> {
        let mut req = SubmitRequest {
            account_id: self.account_id.clone(),
            timestamp: now_ms(),
            idempotency_key: p.idempotency_key.clone(),
            evidence: Self::evidence(p),
            signed_data: String::new(),
        };
        req.signed_data = sign(&self.key, &req.signing_string())
            .map_err(|e| TargetError::permanent(format!("signing: {e}")))?;
        self.post("/v1/anchors", &req).await
    }

    async fn lookup(
        &self,
        p: &AnchorPayload,
        _prepared: Option<&Prepared>,
    ) -> Result<Status, TargetError> {
        let mut req = QueryRequest {
            account_id: self.account_id.clone(),
            timestamp: now_ms(),
            tx_id: None,
            idempotency_key: Some(p.idempotency_key.clone()),
            signed_data: String::new(),
        };
        req.signed_data = sign(&self.key, &req.signing_string())
            .map_err(|e| TargetError::permanent(format!("signing: {e}")))?;
        let st = self.post("/v1/anchors/query", &req).await?;
        // The gateway must answer for the payload that was asked about.
        if let Status::Confirmed(r) = &st
            && r.details["evidence"]["size"].as_u64() != Some(p.checkpoint.size)
        {
            return Err(TargetError::permanent(format!(
                "gateway returned transaction {} for a different checkpoint",
                r.tx_id
            )));
        }
        Ok(st)
    }

    async fn identity(&self) -> Result<ChainIdentity, TargetError> {
        let (chain_id, _) = self.chain().await?;
        let genesis = self
            .block(0)
            .await?
            .ok_or_else(|| TargetError::unavailable("the gateway has no genesis block"))?;
        Ok(ChainIdentity {
            chain_id,
            genesis_hash: genesis.hash,
        })
    }

    async fn verify_receipt(&self, r: &AnchorReceipt) -> Result<Verification, TargetError> {
        let (_, height) = self.chain().await?;
        let Some(b) = self.block(r.block_number).await? else {
            return Ok(Verification::Lost(format!(
                "the gateway has no block {} (height {height})",
                r.block_number
            )));
        };
        if b.hash != r.block_hash {
            return Ok(Verification::Lost(format!(
                "block {} is now {}, not {}",
                r.block_number, b.hash, r.block_hash
            )));
        }
        if !b.txs.iter().any(|t| t.tx_id == r.tx_id) {
            return Ok(Verification::Lost(format!(
                "block {} does not hold transaction {}",
                r.block_number, r.tx_id
            )));
        }
        Ok(Verification::InPlace {
            depth: height.saturating_sub(r.block_number).max(1),
        })
    }
}
