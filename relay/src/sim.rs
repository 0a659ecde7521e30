//! A judicial-chain simulator speaking `docs/judicial-gateway-v1.md`, for
//! tests and the demo (`anchord judicial-sim`).
//!
//! It keeps a real append-only chain ON DISK (`<data_dir>/chain.jsonl`, one
//! block per line, hash-chained and fsynced), reloads and re-verifies it on
//! start, and can misbehave on command: a full outage for a period, an error
//! rate (half of the injected errors are returned *after* the transaction
//! was accepted, so the caller cannot know), added latency (after
//! processing), transactions accepted but never confirmed (dropped from the
//! mempool), and duplicate detection by idempotency key (which can be
//! switched off, so that a client that resubmits blindly would anchor
//! twice — the tests use that to check the relay's own guarantee), and a
//! chain reset (`reset_chain`: the chain is thrown away and a new genesis
//! block cut, as when a gateway is rebuilt empty; every earlier anchor is
//! gone).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anchord_core::HashSuite;
use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::gateway::{
    EVIDENCE_KIND, ErrorBody, Evidence, MAX_SKEW_MS, QueryRequest, SubmitRequest, TxResponse,
    now_ms, verify,
};

/// Fault controls (`POST /sim/control` sets any subset).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Answer every API request with 503 for this long from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_ms: Option<u64>,
    /// Fraction of API requests that fail (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Delay added to every API response (after processing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Fraction of accepted transactions silently dropped instead of
    /// confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_rate: Option<f64>,
    /// Detect duplicate submissions by idempotency key (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<bool>,
    /// Throw the chain away (on disk too) and start a new one from a new
    /// genesis block; the mempool and every idempotency key are forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_chain: Option<bool>,
}

/// Counters (`GET /sim/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub submissions: u64,
    pub accepted: u64,
    /// Submissions whose idempotency key was already live (pending or in a
    /// block).
    pub duplicate_submissions: u64,
    pub queries: u64,
    pub dropped: u64,
    pub injected_unavailable: u64,
    pub injected_after_accept: u64,
    pub outage_rejections: u64,
    pub height: u64,
    /// Chain resets done (`reset_chain`).
    #[serde(default)]
    pub resets: u64,
}

/// Simulator settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub chain_id: String,
    /// Account id → RSA public key.
    pub accounts: Vec<(String, RsaPublicKey)>,
    /// A block is cut this often when transactions are waiting.
    pub block_ms: u64,
    /// How long a submission waits for its block before answering "pending".
    pub wait_ms: u64,
    pub faults: Faults,
}

/// One transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimTx {
    pub tx_id: String,
    pub account_id: String,
    pub idempotency_key: String,
    pub evidence: Evidence,
    pub received_at: i64,
}

/// One block, as stored (one JSON line) and served (`GET /v1/blocks/{h}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimBlock {
    pub height: u64,
    pub prev_hash: String,
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub txs: Vec<SimTx>,
    pub hash: String,
}

impl SimBlock {
    /// `hex(SHA-256("anchord-sim-block/v1\n" || height "\n" || prevHash "\n"
    /// || time "\n" || for each tx: txId "\n"))`.
    pub fn compute_hash(&self) -> String {
        let mut s = format!(
            "anchord-sim-block/v1\n{}\n{}\n{}\n",
            self.height, self.prev_hash, self.time
        );
        for t in &self.txs {
            s.push_str(&t.tx_id);
            s.push('\n');
        }
        hex::encode(HashSuite::Sha256.digest(s.as_bytes()))
    }
}

/// `hex(SHA-256("anchord-sim-tx/v1\n" || account "\n" || key "\n" ||
/// origin "\n" || size "\n" || root "\n" || submission number))`: core's
/// definition, which the published test bundles use too.
fn tx_id(account: &str, key: &str, e: &Evidence, n: u64) -> String {
    anchord_core::bundle::corpus::sim_tx_id(account, key, &e.origin, e.size, &e.root, n)
}

const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the simulator cannot load its chain or start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {source}")]
    Json {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
    #[error("{path}: block {height} does not verify (height, chaining or hash)")]
    BadBlock { path: String, height: usize },
    #[error("writing genesis: {0}")]
    Genesis(std::io::Error),
    #[error("binding {listen}: {source}")]
    Bind {
        listen: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Listener(std::io::Error),
}

/// Read and verify an on-disk chain: heights consecutive from 0, every hash
/// recomputed, every block chained to the previous one.
pub fn load_chain(dir: &Path) -> Result<Vec<SimBlock>, SimError> {
    let path = dir.join("chain.jsonl");
    let io = |source| SimError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut blocks: Vec<SimBlock> = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io)?;
        let b: SimBlock = serde_json::from_str(&line).map_err(|source| SimError::Json {
            path: path.display().to_string(),
            line: i + 1,
            source,
        })?;
        let prev = blocks.last().map_or(GENESIS_PREV, |p| p.hash.as_str());
        if b.height != i as u64 || b.prev_hash != prev || b.hash != b.compute_hash() {
            return Err(SimError::BadBlock {
                path: path.display().to_string(),
                height: i,
            });
        }
        blocks.push(b);
    }
    Ok(blocks)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Mempool,
    Block(u64),
    Dropped,
}

struct Inner {
    chain: Vec<SimBlock>,
    file: std::fs::File,
    mempool: Vec<SimTx>,
    loc: HashMap<String, Loc>,
    /// (account, idempotency key) → tx ids, oldest first.
    by_key: HashMap<(String, String), Vec<String>>,
    next_submission: u64,
    faults: Faults,
    outage_until: Option<Instant>,
    stats: Stats,
}

struct Shared {
    inner: Mutex<Inner>,
    accounts: HashMap<String, RsaPublicKey>,
    chain_id: String,
    wait: Duration,
    height: tokio::sync::watch::Sender<u64>,
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SimHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Apply fault settings (only the fields that are set).
    pub fn set_faults(&self, f: &Faults) {
        apply_faults(&mut lock(&self.shared), f);
    }

    pub fn stats(&self) -> Stats {
        let g = lock(&self.shared);
        let mut s = g.stats.clone();
        s.height = g.chain.len() as u64;
        s
    }

    /// The chain as held in memory.
    pub fn blocks(&self) -> Vec<SimBlock> {
        lock(&self.shared).chain.clone()
    }

    /// Stop serving and wait for the server to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.inner.lock().unwrap_or_else(|p| p.into_inner())
}

fn apply_faults(g: &mut Inner, f: &Faults) {
    if let Some(ms) = f.outage_ms {
        g.outage_until = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms));
    }
    if let Some(r) = f.error_rate {
        g.faults.error_rate = Some(r.clamp(0.0, 1.0));
    }
    if let Some(l) = f.latency_ms {
        g.faults.latency_ms = Some(l);
    }
    if let Some(r) = f.drop_rate {
        g.faults.drop_rate = Some(r.clamp(0.0, 1.0));
    }
    if let Some(d) = f.dedup {
        g.faults.dedup = Some(d);
    }
    if f.reset_chain == Some(true)
        && let Err(e) = reset_chain(g)
    {
        tracing::error!(error = %e, "judicial-sim: cannot reset the chain; exiting");
        std::process::exit(1);
    }
}

/// Forget the chain (truncating the file) and cut a new genesis block.
fn reset_chain(g: &mut Inner) -> std::io::Result<()> {
    g.file.set_len(0)?;
    g.file.sync_data()?;
    g.chain.clear();
    g.mempool.clear();
    g.loc.clear();
    g.by_key.clear();
    g.next_submission = 0;
    g.stats.resets += 1;
    // Another genesis than before: its time differs (wait out the
    // millisecond if needed).
    let old = now_ms();
    while now_ms() == old {
        std::thread::yield_now();
    }
    cut_block(g, Vec::new()).map(|_| ())
}

/// Load the chain from `data_dir` (creating the genesis block on first
/// start), bind and serve until the handle is stopped.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let io = |source| SimError::Io {
        path: config.data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(io)?;
    let chain = load_chain(&config.data_dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.data_dir.join("chain.jsonl"))
        .map_err(io)?;
    let mut loc = HashMap::new();
    let mut by_key: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut next_submission = 0;
    for b in &chain {
        for t in &b.txs {
            loc.insert(t.tx_id.clone(), Loc::Block(b.height));
            by_key
                .entry((t.account_id.clone(), t.idempotency_key.clone()))
                .or_default()
                .push(t.tx_id.clone());
            next_submission += 1;
        }
    }
    let mut inner = Inner {
        chain,
        file,
        mempool: Vec::new(),
        loc,
        by_key,
        next_submission,
        faults: Faults {
            dedup: Some(true),
            ..Faults::default()
        },
        outage_until: None,
        stats: Stats::default(),
    };
    apply_faults(&mut inner, &config.faults);
    if inner.chain.is_empty() {
        cut_block(&mut inner, Vec::new()).map_err(SimError::Genesis)?;
    }
    let height = inner.chain.len() as u64;
    let shared = Arc::new(Shared {
        inner: Mutex::new(inner),
        accounts: config.accounts.into_iter().collect(),
        chain_id: config.chain_id,
        wait: Duration::from_millis(config.wait_ms),
        height: tokio::sync::watch::channel(height).0,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            listen: config.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(SimError::Listener)?;
    let app = Router::new()
        .route("/v1/anchors", post(submit))
        .route("/v1/anchors/query", post(query))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/chain", get(chain_info))
        .route("/sim/control", post(control))
        .route("/sim/stats", get(stats))
        .with_state(shared.clone());
    let stop = CancellationToken::new();
    let s2 = stop.clone();
    let producer = shared.clone();
    let block_every = Duration::from_millis(config.block_ms.max(1));
    let task = tokio::spawn(async move {
        let p_stop = s2.clone();
        let produce = tokio::spawn(async move {
            let mut tick = tokio::time::interval(block_every);
            loop {
                tokio::select! {
                    _ = p_stop.cancelled() => return,
                    _ = tick.tick() => produce_block(&producer),
                }
            }
        });
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { s2.cancelled().await })
            .await;
        produce.abort();
    });
    Ok(SimHandle {
        addr,
        shared,
        stop,
        task,
    })
}

fn cut_block(g: &mut Inner, txs: Vec<SimTx>) -> std::io::Result<u64> {
    let prev = g
        .chain
        .last()
        .map_or(GENESIS_PREV.to_owned(), |b| b.hash.clone());
    let mut b = SimBlock {
        height: g.chain.len() as u64,
        prev_hash: prev,
        time: now_ms(),
        txs,
        hash: String::new(),
    };
    b.hash = b.compute_hash();
    let mut line = serde_json::to_vec(&b).map_err(std::io::Error::other)?;
    line.push(b'\n');
    g.file.write_all(&line)?;
    g.file.sync_data()?;
    for t in &b.txs {
        g.loc.insert(t.tx_id.clone(), Loc::Block(b.height));
    }
    let h = b.height;
    g.chain.push(b);
    Ok(h)
}

fn produce_block(s: &Shared) {
    let mut g = lock(s);
    if g.mempool.is_empty() {
        return;
    }
    let drop_rate = g.faults.drop_rate.unwrap_or(0.0);
    let pending = std::mem::take(&mut g.mempool);
    let mut rng = rand::rng();
    let mut txs = Vec::new();
    for t in pending {
        if drop_rate > 0.0 && rng.random_bool(drop_rate) {
            g.loc.insert(t.tx_id.clone(), Loc::Dropped);
            g.stats.dropped += 1;
        } else {
            txs.push(t);
        }
    }
    if txs.is_empty() {
        return;
    }
    match cut_block(&mut g, txs) {
        Ok(h) => {
            drop(g);
            s.height.send_replace(h + 1);
        }
        Err(e) => {
            // A simulator that cannot write its chain must not pretend.
            tracing::error!(error = %e, "judicial-sim: cannot append to the chain; exiting");
            std::process::exit(1);
        }
    }
}

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code.into(),
            message: message.into(),
        }),
    )
        .into_response()
}

/// Outage and injected errors, decided before processing. `Some(after)`:
/// proceed, and fail with 500 after processing when `after`.
fn gate(s: &Shared, submit: bool) -> Result<bool, Box<Response>> {
    let mut g = lock(s);
    if let Some(until) = g.outage_until {
        if Instant::now() < until {
            g.stats.outage_rejections += 1;
            return Err(Box::new(err(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "gateway outage",
            )));
        }
        g.outage_until = None;
    }
    let rate = g.faults.error_rate.unwrap_or(0.0);
    if rate > 0.0 && rand::rng().random_bool(rate) {
        if submit && rand::rng().random_bool(0.5) {
            g.stats.injected_after_accept += 1;
            return Ok(true);
        }
        g.stats.injected_unavailable += 1;
        return Err(Box::new(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected error",
        )));
    }
    Ok(false)
}

fn check_auth(s: &Shared, account: &str, ts: i64, message: &str, sig: &str) -> Option<Response> {
    let Some(key) = s.accounts.get(account) else {
        return Some(err(
            StatusCode::UNAUTHORIZED,
            "unknown_account",
            "unknown accountId",
        ));
    };
    if (now_ms() - ts).abs() > MAX_SKEW_MS {
        return Some(err(
            StatusCode::UNAUTHORIZED,
            "timestamp_skew",
            "timestamp outside ±5 minutes",
        ));
    }
    if !verify(key, message, sig) {
        return Some(err(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "signedData does not verify",
        ));
    }
    None
}

fn response_for(s: &Shared, g: &Inner, tx: &SimTx, duplicate: bool) -> TxResponse {
    let (status, block) = match g.loc.get(&tx.tx_id) {
        Some(Loc::Block(h)) => ("confirmed", g.chain.get(*h as usize)),
        _ => ("pending", None),
    };
    TxResponse {
        status: status.into(),
        chain_id: s.chain_id.clone(),
        tx_id: tx.tx_id.clone(),
        idempotency_key: tx.idempotency_key.clone(),
        evidence: tx.evidence.clone(),
        block_height: block.map(|b| b.height),
        block_hash: block.map(|b| b.hash.clone()),
        block_time: block.map(|b| b.time),
        duplicate,
    }
}

fn find_tx<'a>(g: &'a Inner, tx_id: &str) -> Option<&'a SimTx> {
    match g.loc.get(tx_id)? {
        Loc::Block(h) => g
            .chain
            .get(*h as usize)?
            .txs
            .iter()
            .find(|t| t.tx_id == tx_id),
        Loc::Mempool => g.mempool.iter().find(|t| t.tx_id == tx_id),
        Loc::Dropped => None,
    }
}

/// The live (not dropped) transaction of an idempotency key, preferring
/// one in a block.
fn live_by_key<'a>(g: &'a Inner, account: &str, key: &str) -> Option<&'a SimTx> {
    let ids = g.by_key.get(&(account.to_owned(), key.to_owned()))?;
    let mut best = None;
    for id in ids {
        match g.loc.get(id) {
            Some(Loc::Block(_)) => return find_tx(g, id),
            Some(Loc::Mempool) => best = best.or_else(|| find_tx(g, id)),
            _ => {}
        }
    }
    best
}

async fn delay(s: &Shared) {
    let ms = lock(s).faults.latency_ms.unwrap_or(0);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Put a new transaction in the mempool; its id.
fn accept(g: &mut Inner, req: &SubmitRequest) -> String {
    let n = g.next_submission;
    g.next_submission += 1;
    let tx = SimTx {
        tx_id: tx_id(&req.account_id, &req.idempotency_key, &req.evidence, n),
        account_id: req.account_id.clone(),
        idempotency_key: req.idempotency_key.clone(),
        evidence: req.evidence.clone(),
        received_at: now_ms(),
    };
    g.loc.insert(tx.tx_id.clone(), Loc::Mempool);
    g.by_key
        .entry((tx.account_id.clone(), tx.idempotency_key.clone()))
        .or_default()
        .push(tx.tx_id.clone());
    g.stats.accepted += 1;
    let id = tx.tx_id.clone();
    g.mempool.push(tx);
    id
}

async fn submit(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let fail_after = match gate(&s, true) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Ok(req) = serde_json::from_slice::<SubmitRequest>(&body) else {
        return err(StatusCode::BAD_REQUEST, "bad_request", "malformed request");
    };
    if let Some(r) = check_auth(
        &s,
        &req.account_id,
        req.timestamp,
        &req.signing_string(),
        &req.signed_data,
    ) {
        return r;
    }
    if req.evidence.kind != EVIDENCE_KIND
        || req.idempotency_key.is_empty()
        || req.idempotency_key.len() > 128
    {
        return err(StatusCode::BAD_REQUEST, "bad_request", "invalid evidence");
    }
    let accepted: Result<String, TxResponse> = {
        let mut g = lock(&s);
        g.stats.submissions += 1;
        let existing = live_by_key(&g, &req.account_id, &req.idempotency_key).cloned();
        if existing.is_some() {
            g.stats.duplicate_submissions += 1;
        }
        match existing {
            Some(tx) if g.faults.dedup.unwrap_or(true) => Err(response_for(&s, &g, &tx, true)),
            _ => Ok(accept(&mut g, &req)),
        }
    };
    let tx_id = match accepted {
        Ok(id) => id,
        Err(dup) => {
            delay(&s).await;
            return (StatusCode::OK, Json(dup)).into_response();
        }
    };
    // Wait (bounded) for the block that includes it.
    let mut rx = s.height.subscribe();
    let deadline = tokio::time::Instant::now() + s.wait;
    loop {
        if !matches!(lock(&s).loc.get(&tx_id), Some(Loc::Mempool)) {
            break;
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            break;
        }
    }
    delay(&s).await;
    if fail_after {
        return err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "injected error after accepting",
        );
    }
    let g = lock(&s);
    let r = match find_tx(&g, &tx_id) {
        Some(tx) => response_for(&s, &g, tx, false),
        None => {
            // Dropped: to the caller it looked accepted.
            TxResponse {
                status: "pending".into(),
                chain_id: s.chain_id.clone(),
                tx_id: tx_id.clone(),
                idempotency_key: req.idempotency_key.clone(),
                evidence: req.evidence.clone(),
                block_height: None,
                block_hash: None,
                block_time: None,
                duplicate: false,
            }
        }
    };
    (StatusCode::OK, Json(r)).into_response()
}

async fn query(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Err(r) = gate(&s, false) {
        return *r;
    }
    let Ok(req) = serde_json::from_slice::<QueryRequest>(&body) else {
        return err(StatusCode::BAD_REQUEST, "bad_request", "malformed request");
    };
    if let Some(r) = check_auth(
        &s,
        &req.account_id,
        req.timestamp,
        &req.signing_string(),
        &req.signed_data,
    ) {
        return r;
    }
    let r = {
        let mut g = lock(&s);
        g.stats.queries += 1;
        let tx = match (&req.tx_id, &req.idempotency_key) {
            (Some(id), _) => find_tx(&g, id).filter(|t| t.account_id == req.account_id),
            (None, Some(k)) => live_by_key(&g, &req.account_id, k),
            (None, None) => None,
        };
        tx.map(|t| response_for(&s, &g, t, false))
    };
    delay(&s).await;
    match r {
        Some(r) => (StatusCode::OK, Json(r)).into_response(),
        None => err(StatusCode::NOT_FOUND, "not_found", "no such transaction"),
    }
}

async fn block(State(s): State<Arc<Shared>>, UrlPath(height): UrlPath<u64>) -> Response {
    match lock(&s).chain.get(height as usize) {
        Some(b) => (StatusCode::OK, Json(b.clone())).into_response(),
        None => err(StatusCode::NOT_FOUND, "not_found", "no such block"),
    }
}

async fn chain_info(State(s): State<Arc<Shared>>) -> Response {
    let g = lock(&s);
    let head = g.chain.last().map(|b| b.hash.clone()).unwrap_or_default();
    Json(serde_json::json!({"chainId": s.chain_id, "height": g.chain.len(), "headHash": head}))
        .into_response()
}

async fn control(State(s): State<Arc<Shared>>, Json(f): Json<Faults>) -> Response {
    apply_faults(&mut lock(&s), &f);
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    let g = lock(&s);
    let mut st = g.stats.clone();
    st.height = g.chain.len() as u64;
    Json(st).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_tx_hashes_match_the_spec_example() {
        let e = Evidence {
            kind: EVIDENCE_KIND.into(),
            origin: "bank-a.example/ledger".into(),
            size: 1042,
            root: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        };
        let id = tx_id("anchord-bank-a", "09cccc17ee9f74bb7b5efa8e16054497", &e, 7);
        assert_eq!(
            id,
            "beec159037543f4f0946b6137c7dfe86db89ce83775a8e62f3f51c219233411c"
        );
        let b = SimBlock {
            height: 8,
            prev_hash: "9".repeat(64),
            time: 1_732_350_000_150,
            txs: vec![SimTx {
                tx_id: id,
                account_id: "anchord-bank-a".into(),
                idempotency_key: "09cccc17ee9f74bb7b5efa8e16054497".into(),
                evidence: e,
                received_at: 0,
            }],
            hash: String::new(),
        };
        assert_eq!(
            b.compute_hash(),
            "590b1ac6be53ca27e166498c6d377c6e4efe0c4a9bb79fae80a1776ad80dc146"
        );
    }
}
