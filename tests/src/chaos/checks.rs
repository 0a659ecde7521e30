//! The suite's checks, all from the outside: SQL on the ledger, JSON-RPC on
//! anvil, the judicial simulator's HTTP API, the producer's own manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// One JSON-RPC call; the `result`, or the error.
pub async fn rpc(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let v: Value = http
        .post(url)
        .timeout(Duration::from_secs(10))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .map_err(|e| format!("{method}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    match v.get("result") {
        Some(r) => Ok(r.clone()),
        None => Err(format!("{method}: {v}")),
    }
}

/// What the independent producer says it sent.
#[derive(Debug, Default)]
pub struct Manifest {
    /// Valid messages the broker acknowledged: (tenant, external id) → hash.
    pub acked_valid: BTreeMap<(String, String), String>,
    /// Every (tenant, external id) the producer used for a valid message,
    /// acknowledged or not (an unacknowledged one may still have landed).
    pub any_valid: BTreeSet<(String, String)>,
    /// Acknowledged malformed messages and conflicts: payload → reason.
    pub acked_bad: Vec<(Option<Vec<u8>>, String)>,
    /// Every malformed/conflict payload sent (acknowledged or not) → reason.
    pub any_bad: HashMap<Vec<u8>, String>,
    pub sent: u64,
    pub unacked: u64,
}

pub fn read_manifest(path: &Path) -> Result<Manifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut m = Manifest::default();
    let b64 = base64::engine::general_purpose::STANDARD;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("manifest: {e}: {line}"))?;
        m.sent += 1;
        let acked = v["acked"].as_bool() == Some(true);
        if !acked {
            m.unacked += 1;
        }
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        match v["kind"].as_str() {
            Some("valid") => {
                let key = (s("tenant"), s("external_id"));
                m.any_valid.insert(key.clone());
                if acked {
                    m.acked_valid.insert(key, s("hash"));
                }
            }
            Some("malformed") | Some("conflict") => {
                let payload = match v["payload"].as_str() {
                    Some(p) => Some(b64.decode(p).map_err(|e| format!("manifest: {e}"))?),
                    None => None,
                };
                m.any_bad
                    .insert(payload.clone().unwrap_or_default(), s("reason"));
                if acked {
                    m.acked_bad.push((payload, s("reason")));
                }
            }
            _ => {} // resends: duplicates, nothing to see
        }
    }
    Ok(m)
}

/// The ledger as SQL shows it.
#[derive(Debug, Default)]
pub struct LedgerView {
    /// seq → (tenant, external id, hash hex).
    pub entries: Vec<(i64, String, String, String)>,
    pub next_seq: i64,
    /// (reason, payload).
    pub dead_letters: Vec<(String, Vec<u8>)>,
    pub blocks: i64,
    pub blocks_last_seq: Option<i64>,
    /// (size, final).
    pub checkpoints: Vec<(i64, bool)>,
    /// target → size → (tx id, block hash).
    pub receipts: BTreeMap<String, BTreeMap<i64, (String, String)>>,
    /// target → size → covering size.
    pub coverage: BTreeMap<String, BTreeMap<i64, i64>>,
    /// (target, state, count).
    pub jobs: Vec<(String, String, i64)>,
    /// Receipts marked lost (re-verification found them gone).
    pub lost_receipts: i64,
}

pub async fn ledger_view(url: &str) -> Result<LedgerView, String> {
    let c = super::services::connect(url).await?;
    let e = |e: tokio_postgres::Error| e.to_string();
    let mut v = LedgerView::default();
    for r in c
        .query(
            "SELECT seq, tenant, external_id, encode(evidence_hash, 'hex') FROM evidence ORDER BY seq",
            &[],
        )
        .await
        .map_err(e)?
    {
        v.entries.push((r.get(0), r.get(1), r.get(2), r.get(3)));
    }
    v.next_seq = c
        .query_one("SELECT next_seq FROM ledger_head", &[])
        .await
        .map_err(e)?
        .get(0);
    for r in c
        .query("SELECT reason, payload FROM dead_letters ORDER BY id", &[])
        .await
        .map_err(e)?
    {
        v.dead_letters.push((r.get(0), r.get(1)));
    }
    let b = c
        .query_one("SELECT count(*), max(last_seq) FROM blocks", &[])
        .await
        .map_err(e)?;
    v.blocks = b.get(0);
    v.blocks_last_seq = b.get(1);
    for r in c
        .query(
            "SELECT size, final_at_us IS NOT NULL FROM checkpoints ORDER BY size",
            &[],
        )
        .await
        .map_err(e)?
    {
        v.checkpoints.push((r.get(0), r.get(1)));
    }
    for r in c
        .query(
            "SELECT target, checkpoint_size, tx_id, block_hash FROM anchor_receipts",
            &[],
        )
        .await
        .map_err(e)?
    {
        v.receipts
            .entry(r.get(0))
            .or_default()
            .insert(r.get(1), (r.get(2), r.get(3)));
    }
    for r in c
        .query(
            "SELECT target, checkpoint_size, covered_by_size FROM anchor_coverage WHERE lost_at IS NULL",
            &[],
        )
        .await
        .map_err(e)?
    {
        v.coverage
            .entry(r.get(0))
            .or_default()
            .insert(r.get(1), r.get(2));
    }
    for r in c
        .query(
            "SELECT target, state, count(*) FROM anchor_jobs GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(e)?
    {
        v.jobs.push((r.get(0), r.get(1), r.get(2)));
    }
    v.lost_receipts = c
        .query_one(
            "SELECT count(*) FROM anchor_receipt_log WHERE lost_at IS NOT NULL",
            &[],
        )
        .await
        .map_err(e)?
        .get(0);
    Ok(v)
}

/// Evidence lost, doubled and other problems, from the manifest and the
/// ledger. `final_check` adds the problems that only count at the end.
#[derive(Debug, Default)]
pub struct EvidenceVerdict {
    pub lost: u64,
    pub doubled: u64,
    pub dead_letter_missing: u64,
    pub problems: Vec<String>,
}

pub fn check_evidence(m: &Manifest, v: &LedgerView) -> EvidenceVerdict {
    let mut out = EvidenceVerdict::default();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for (i, (seq, tenant, ext, hash)) in v.entries.iter().enumerate() {
        if *seq != i as i64 {
            out.problems
                .push(format!("sequence gap: entry {i} has seq {seq}"));
            break;
        }
        let key = (tenant.clone(), ext.clone());
        *seen.entry(key.clone()).or_default() += 1;
        if let Some(h) = m.acked_valid.get(&key)
            && h != hash
        {
            out.problems
                .push(format!("{tenant}/{ext} sealed with hash {hash}, sent {h}"));
        }
        if !m.any_valid.contains(&key) {
            out.problems.push(format!(
                "{tenant}/{ext} (seq {seq}) was never sent as a valid message"
            ));
        }
    }
    if v.next_seq != v.entries.len() as i64 {
        out.problems.push(format!(
            "ledger_head.next_seq {} but {} entries",
            v.next_seq,
            v.entries.len()
        ));
    }
    for (key, n) in &seen {
        if *n > 1 {
            out.doubled += n - 1;
            out.problems
                .push(format!("{}/{} recorded {n} times", key.0, key.1));
        }
    }
    for key in m.acked_valid.keys() {
        if !seen.contains_key(key) {
            out.lost += 1;
            if out.lost <= 5 {
                out.problems.push(format!(
                    "acknowledged {}/{} is not in the ledger",
                    key.0, key.1
                ));
            }
        }
    }
    // Dead letters: every acknowledged malformed message with its reason,
    // and nothing else dead-lettered.
    let mut by_payload: HashMap<&[u8], Vec<&str>> = HashMap::new();
    for (reason, payload) in &v.dead_letters {
        by_payload
            .entry(payload.as_slice())
            .or_default()
            .push(reason.as_str());
        match m.any_bad.get(payload.as_slice()) {
            Some(want) if want == reason => {}
            Some(want) => out.problems.push(format!(
                "dead letter with reason {reason}, expected {want}: {}",
                String::from_utf8_lossy(&payload[..payload.len().min(120)])
            )),
            None => out.problems.push(format!(
                "a message the producer did not send as malformed was dead-lettered ({reason}): {}",
                String::from_utf8_lossy(&payload[..payload.len().min(120)])
            )),
        }
    }
    for (payload, reason) in &m.acked_bad {
        let p = payload.as_deref().unwrap_or_default();
        let ok = by_payload
            .get(p)
            .is_some_and(|rs| rs.iter().any(|r| r == reason));
        if !ok {
            out.dead_letter_missing += 1;
            if out.dead_letter_missing <= 5 {
                out.problems.push(format!(
                    "acknowledged malformed message not dead-lettered as {reason}: {}",
                    String::from_utf8_lossy(&p[..p.len().min(120)])
                ));
            }
        }
    }
    out
}

/// Anchors on a chain: checkpoint size → the transactions carrying it.
pub type ChainAnchors = BTreeMap<u64, Vec<String>>;

/// Every anchor of `origin` on the EVM chain at `url` (raw JSON-RPC: each
/// block's transactions, data decoded as the relay's tagged payload).
pub async fn evm_anchors(
    http: &reqwest::Client,
    url: &str,
    origin: &str,
) -> Result<(ChainAnchors, BTreeMap<String, String>), String> {
    let head = rpc(http, url, "eth_blockNumber", json!([])).await?;
    let head = u64::from_str_radix(head.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)
        .map_err(|e| format!("eth_blockNumber: {e}"))?;
    let mut anchors = ChainAnchors::new();
    // tx hash → block hash
    let mut blocks = BTreeMap::new();
    for n in 0..=head {
        let b = rpc(
            http,
            url,
            "eth_getBlockByNumber",
            json!([format!("0x{n:x}"), true]),
        )
        .await?;
        for tx in b["transactions"].as_array().into_iter().flatten() {
            let input = tx["input"].as_str().unwrap_or_default();
            if let Ok(p) = anchord_core::anchor::AnchorPayload::decode_hex_data(input)
                && p.origin == origin
            {
                let size = p.size;
                let h = tx["hash"].as_str().unwrap_or_default().to_owned();
                blocks.insert(h.clone(), b["hash"].as_str().unwrap_or_default().to_owned());
                anchors.entry(size).or_default().push(h);
            }
        }
    }
    Ok((anchors, blocks))
}

/// Every anchor on the judicial simulator's chain (its public block API),
/// by idempotency key → transactions, and tx id → block hash.
pub async fn court_anchors(
    http: &reqwest::Client,
    url: &str,
) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, String>), String> {
    let info: Value = http
        .get(format!("{url}/v1/chain"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let height = info["height"].as_u64().unwrap_or(0);
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut blocks = BTreeMap::new();
    for h in 0..height {
        let b: Value = http
            .get(format!("{url}/v1/blocks/{h}"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        for tx in b["txs"].as_array().into_iter().flatten() {
            let id = tx["txId"].as_str().unwrap_or_default().to_owned();
            let key = tx["idempotencyKey"].as_str().unwrap_or_default().to_owned();
            blocks.insert(
                id.clone(),
                b["hash"].as_str().unwrap_or_default().to_owned(),
            );
            by_key.entry(key).or_default().push(id);
        }
    }
    Ok((by_key, blocks))
}
