//! Test harness: a fresh database and topic per test, the workflow API on
//! 127.0.0.1:0, and (for flows that reach the ledger) ingest and the batcher
//! running in this process, as in `tests/tests/pipeline.rs`.
#![allow(dead_code, clippy::unwrap_used)]

pub mod smtp;

use std::path::PathBuf;
use std::time::Duration;

use anchord_batcher::config::BatcherConfig;
use anchord_core::HashSuite;
use anchord_core::bundle::DeclaredKeys;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_ingest::IngestConfig;
use anchord_ledger::Ledger;
use anchord_testkit::TestDb;
use anchord_workflow::{Deps, WorkflowConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const SUITE: HashSuite = HashSuite::Sha256;
const ORIGIN: &str = "anchord.test/workflow";
pub const ADMIN: &str = "root";
pub const ADMIN_PASSWORD: &str = "root-password-1";

/// The workflow API's own connection pool in tests: `ANCHORD_TEST_WORKFLOW_POOL`
/// connections (default 2; the API, its background tasks and its proof
/// reads share them), with a 10 s wait. No request holds two connections
/// (`workflow/src/conn.rs`, which panics on a nested acquire in test
/// builds), so the whole suite runs on a pool of 1 or 2.
pub const POOL_VAR: &str = "ANCHORD_TEST_WORKFLOW_POOL";

pub fn pool_size() -> usize {
    std::env::var(POOL_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(2)
}

/// The password [`Env::user`] gives `name` (strong enough for the
/// password rules: zxcvbn score 3 or more, not a common password).
pub fn password_of(name: &str) -> String {
    format!("{name}-Qv7-staple-{}", name.len() * 7 + 3)
}

pub struct Env {
    pub db: TestDb,
    pub suite: HashSuite,
    pub ledger: Ledger,
    pub base: String,
    pub http: reqwest::Client,
    pub stop: CancellationToken,
    pub dir: PathBuf,
    pub topic: String,
    pub config: WorkflowConfig,
    /// The workflow API's pool size.
    pub pool: usize,
    /// The background loops' states (what readiness reports).
    pub health: anchord_workflow::Health,
    /// The service's future: the server and its background loops.
    pub handle: Option<tokio::task::JoinHandle<Result<(), anchord_workflow::WorkflowError>>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// 32 random bytes (test keys).
pub fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(anchord_testkit::unique(prefix));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Start everything. `pipeline`: also ingest and the batcher, so approved
/// evidence gets sealed.
pub async fn start(pipeline: bool, tweak: impl FnOnce(&mut WorkflowConfig)) -> Env {
    start_with(pipeline, SUITE, tweak).await
}

/// [`start`] under the tree hash suite `suite` (ledger, ingest, batcher and
/// the workflow API alike).
pub async fn start_with(
    pipeline: bool,
    suite: HashSuite,
    tweak: impl FnOnce(&mut WorkflowConfig),
) -> Env {
    start_pool(pipeline, suite, pool_size(), tweak).await
}

/// [`start_with`] with the workflow API on a pool of `pool` connections
/// (the pipeline's stages have their own).
pub async fn start_pool(
    pipeline: bool,
    suite: HashSuite,
    pool: usize,
    tweak: impl FnOnce(&mut WorkflowConfig),
) -> Env {
    start_full(pipeline, suite, pool, |_| {}, tweak).await
}

/// [`start_pool`] with the pipeline's batcher configured by `batcher` too
/// (a TSA, say).
pub async fn start_full(
    pipeline: bool,
    suite: HashSuite,
    pool: usize,
    batcher: impl FnOnce(&mut BatcherConfig),
    tweak: impl FnOnce(&mut WorkflowConfig),
) -> Env {
    let (db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(suite).await.unwrap();
    let stop = CancellationToken::new();
    let dir = temp_dir("anchord_workflow");
    let topic = anchord_testkit::kafka::topic("workflow", 1).await;
    let sealer = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[9; 32]).unwrap();
    if pipeline {
        let dlq = format!("{topic}.dlq");
        anchord_testkit::kafka::create_topic(&dlq, 1).await;
        let ingest = IngestConfig {
            brokers: anchord_testkit::kafka::brokers(),
            topic: topic.clone(),
            group_id: anchord_testkit::unique("g"),
            dead_letter_topic: dlq,
            tenants: vec!["bank-a".into(), "bank-b".into(), "anchord-workflow".into()],
            batch_max: 100,
            batch_linger_ms: 10,
            ..IngestConfig::default()
        };
        let key_file = dir.join("sealer.key");
        std::fs::write(&key_file, sealer.private_key_text()).unwrap();
        let mut batcher_config = BatcherConfig {
            origin: ORIGIN.into(),
            signing_key: Some(key_file),
            block_interval_ms: 200,
            ..BatcherConfig::default()
        };
        batcher(&mut batcher_config);
        tokio::spawn({
            let (l, s) = (ledger.clone(), stop.clone());
            async move {
                if let Err(e) = anchord_ingest::run(ingest, suite, l, s).await {
                    panic!("ingest stopped: {e}");
                }
            }
        });
        tokio::spawn({
            let (l, s) = (ledger.clone(), stop.clone());
            async move {
                if let Err(e) = anchord_batcher::run(batcher_config, suite, l, s).await {
                    panic!("batcher stopped: {e}");
                }
            }
        });
    }
    // A key-encryption key for platform-held signing keys (hex, as the
    // demo writes it with `openssl rand -hex 32`).
    let kek_file = dir.join("workflow-kek");
    std::fs::write(&kek_file, format!("{}\n", hex::encode(rand_bytes()))).unwrap();
    let mut config = WorkflowConfig {
        key_encryption_key_file: Some(kek_file),
        listen: "127.0.0.1:0".parse().unwrap(),
        storage_dir: dir.join("files"),
        max_upload_bytes: 64 * 1024,
        brokers: anchord_testkit::kafka::brokers(),
        evidence_topic: topic.clone(),
        link_poll_ms: 100,
        webhook_poll_ms: 100,
        webhook_backoff_initial_ms: 200,
        webhook_backoff_max_ms: 2000,
        webhook_timeout_ms: 2000,
        // Every test calls from 127.0.0.1: no rate limits unless a test
        // sets them (tests/security_auth.rs does).
        login_per_ip_per_min: 0,
        login_per_account_per_min: 0,
        writes_per_user_per_min: 0,
        writes_per_ip_per_min: 0,
        anonymous_per_ip_per_min: 0,
        ..WorkflowConfig::default()
    };
    tweak(&mut config);
    let wf_ledger = Ledger::connect(&anchord_ledger::DatabaseConfig {
        max_connections: pool,
        acquire_timeout: Duration::from_secs(10),
        ..db.config()
    })
    .unwrap();
    anchord_workflow::auth::create_admin(&wf_ledger, &config, ADMIN, ADMIN_PASSWORD)
        .await
        .unwrap();
    let deps = deps(wf_ledger, suite);
    let health = deps.health.clone();
    let (addr, handle) = anchord_workflow::start(config.clone(), deps, stop.clone())
        .await
        .unwrap();
    Env {
        db,
        suite,
        ledger,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        stop,
        dir,
        topic,
        config,
        pool,
        health,
        handle: Some(handle),
    }
}

/// The workflow API's dependencies on `ledger` (the test sealer's keys).
fn deps(ledger: Ledger, suite: HashSuite) -> Deps {
    let sealer = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[9; 32]).unwrap();
    Deps {
        ledger,
        suite,
        keys: DeclaredKeys {
            sealer: sealer.verifier().vkey(),
            witnesses: vec![],
            quorum: 0,
        },
        health: anchord_workflow::Health::new(),
    }
}

impl Env {
    /// A second workflow API on the same database and pipeline, configured
    /// as this one and then by `tweak`; stopped with this one. Returns its
    /// base URL (sessions are in the database: tokens work on both).
    pub async fn another_server(&self, tweak: impl FnOnce(&mut WorkflowConfig)) -> String {
        let mut config = self.config.clone();
        tweak(&mut config);
        let ledger = Ledger::connect(&anchord_ledger::DatabaseConfig {
            max_connections: self.pool,
            acquire_timeout: Duration::from_secs(10),
            ..self.db.config()
        })
        .unwrap();
        let (addr, _handle) =
            anchord_workflow::start(config, deps(ledger, self.suite), self.stop.clone())
                .await
                .unwrap();
        format!("http://{addr}")
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, v)
    }

    /// GET raw bytes: status, content type, body.
    pub async fn get_bytes(&self, path: &str, token: &str) -> (u16, String, Vec<u8>) {
        self.get_bytes_at(&self.base, path, token).await
    }

    /// [`Env::get_bytes`] from the server at `base`.
    pub async fn get_bytes_at(
        &self,
        base: &str,
        path: &str,
        token: &str,
    ) -> (u16, String, Vec<u8>) {
        let resp = self
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, ctype, resp.bytes().await.unwrap().to_vec())
    }

    /// The preservation certificate at `path`: a PDF whose text (read back
    /// with poppler's pdftotext, a test peer) names `evidence_hash`.
    pub async fn certificate_names(&self, path: &str, token: &str, evidence_hash: &str) {
        let text = self.pdf_at(path, token).await;
        assert!(text.contains("电子数据保全证书"), "{text}");
        assert!(
            text.contains(evidence_hash),
            "the certificate names {evidence_hash}:\n{text}"
        );
    }

    /// Call and insist on `want`; returns the body.
    pub async fn ok(
        &self,
        want: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.call(method, path, token, body).await;
        assert_eq!(s.as_u16(), want, "{method} {path}: {v}");
        v
    }

    pub async fn upload(
        &self,
        method: &str,
        path: &str,
        token: &str,
        name: &str,
        data: Vec<u8>,
    ) -> (StatusCode, Value) {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(data).file_name(name.to_owned()),
        );
        let resp = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let v = resp.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    pub async fn login(&self, user: &str, password: &str) -> String {
        let v = self
            .ok(
                200,
                "POST",
                "/v1/auth/login",
                None,
                Some(json!({"username": user, "password": password})),
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    pub async fn admin(&self) -> String {
        self.login(ADMIN, ADMIN_PASSWORD).await
    }

    /// Create a user (as `admin`) and log them in.
    pub async fn user(&self, admin: &str, name: &str, role: &str, extra: Value) -> String {
        let mut body = json!({"username": name, "password": password_of(name), "role": role});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.ok(201, "POST", "/v1/users", Some(admin), Some(body))
            .await;
        self.login(name, &password_of(name)).await
    }

    /// Poll GET `path` until `f` holds.
    pub async fn wait_until(
        &self,
        what: &str,
        path: &str,
        token: &str,
        secs: u64,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (s, v) = self.call("GET", path, Some(token), None).await;
            if s == StatusCode::OK && f(&v) {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out after {secs} s waiting for {what}: last answer {s} {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A standard product (as admin): returns its id.
    pub async fn product(&self, admin: &str) -> i64 {
        let v = self
            .ok(
                201,
                "POST",
                "/v1/products",
                Some(admin),
                Some(json!({
                    "name": "信用卡催收 credit-card collection",
                    "description": "evidence of collection calls",
                    "channels": ["notarization", "judicial_ruling"],
                    "fields": [
                        {"key": "borrower", "display_name": "借款人", "type": "text", "max_length": 20, "required": true},
                        {"key": "amount", "display_name": "金额", "type": "number", "max_length": 12, "required": true},
                        {"key": "card_no", "display_name": "卡号", "type": "text", "max_length": 19, "required": false}
                    ]
                })),
            )
            .await;
        v["id"].as_i64().unwrap()
    }
}

impl Env {
    /// Walk a paged list (`docs/workflow-api.md`, "Paging") from its first
    /// page, following `Anchord-Next-After`, and return every item's id in
    /// order. `path` already carries its query (at least `limit=`).
    pub async fn walk_pages(&self, path: &str, token: &str) -> Vec<i64> {
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        for _ in 0..10_000 {
            let q = match &after {
                Some(a) => format!("{path}&after={a}"),
                None => path.to_owned(),
            };
            let resp = self
                .http
                .get(format!("{}{q}", self.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{q}");
            after = resp
                .headers()
                .get("anchord-next-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let page: Vec<Value> = resp.json().await.unwrap();
            seen.extend(page.iter().map(|r| r["id"].as_i64().unwrap()));
            if after.is_none() {
                return seen;
            }
        }
        panic!("paging of {path} never ends: {seen:?}");
    }
}

/// The contract signature statement, built from the contract's JSON
/// exactly as docs/workflow-api.md describes it (independently of the
/// crate's own builder).
pub fn contract_statement(k: &Value, index: usize, public_key_hex: &str) -> String {
    let s = &k["signers"][index];
    format!(
        "anchord-contract-signature/v1\ncontract-id {}\ncontract-number {}\ntenant {}\nhash-alg {}\ncontract-hash {}\nsigner-index {}\nsigner-user-id {}\nsigner-username {}\npublic-key {}\n",
        k["id"],
        k["number"].as_str().unwrap(),
        k["tenant"].as_str().unwrap(),
        k["hash_alg"].as_str().unwrap(),
        k["contract_hash"].as_str().unwrap(),
        s["index"],
        s["user_id"],
        s["username"].as_str().unwrap(),
        public_key_hex,
    )
}

// --- set-up shared by the feature tests (organisations, search, contracts) --

/// The text of a PDF, read back with poppler's pdftotext (a test peer).
pub fn pdf_text(pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let dir = anchord_testkit::process::temp_dir("wf_pdf");
    let file = dir.join("doc.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new(anchord_testkit::process::peer("pdftotext"))
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftotext: {out:?}");
    let _ = std::fs::remove_dir_all(dir);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Env {
    /// GET `path` on the server at `base` (this one's or
    /// [`Env::another_server`]'s) as `token`: status and JSON body.
    pub async fn get_at(&self, base: &str, path: &str, token: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The text of the PDF at `path` (200, `application/pdf`).
    pub async fn pdf_at(&self, path: &str, token: &str) -> String {
        self.pdf_on(&self.base, path, token).await
    }

    /// [`Env::pdf_at`] from the server at `base`.
    pub async fn pdf_on(&self, base: &str, path: &str, token: &str) -> String {
        let (status, ctype, pdf) = self.get_bytes_at(base, path, token).await;
        assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&pdf));
        assert_eq!(ctype, "application/pdf");
        pdf_text(&pdf)
    }

    /// An organisation (as `admin`): returns its id.
    pub async fn organisation(&self, admin: &str, body: Value) -> i64 {
        self.ok(201, "POST", "/v1/organisations", Some(admin), Some(body))
            .await["id"]
            .as_i64()
            .unwrap()
    }

    /// Create a user of organisation `org` as `creator` (an administrator,
    /// or the organisation's administrator) and log them in; returns (id,
    /// token).
    pub async fn member(
        &self,
        creator: &str,
        org: i64,
        name: &str,
        role: &str,
        extra: Value,
    ) -> (i64, String) {
        let mut body = json!({"username": name, "password": password_of(name), "role": role});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let v = self
            .ok(
                201,
                "POST",
                &format!("/v1/organisations/{org}/users"),
                Some(creator),
                Some(body),
            )
            .await;
        assert_eq!(v["organisation_id"], org, "{v}");
        let token = self.login(name, &password_of(name)).await;
        (v["id"].as_i64().unwrap(), token)
    }

    /// A contract type with `template` (as `admin`): returns its id.
    pub async fn contract_type(&self, admin: &str, template: &str) -> i64 {
        self.ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(admin),
            Some(json!({"name": "借款合同 loan", "template_text": template})),
        )
        .await["id"]
            .as_i64()
            .unwrap()
    }

    /// A contract of type `tid` created by `creator` with `signers` (the
    /// `signers` of `POST /v1/contracts`): its JSON.
    pub async fn contract(
        &self,
        creator: &str,
        tid: i64,
        variables: Value,
        signers: Value,
    ) -> Value {
        self.ok(
            201,
            "POST",
            "/v1/contracts",
            Some(creator),
            Some(
                json!({"contract_type_id": tid, "title": "借款合同", "variables": variables,
                        "signers": signers}),
            ),
        )
        .await
    }

    /// Put contract `k` on chain the way the linker records one (a sealed
    /// submission, then the status moves through review to on chain),
    /// without its signing flow (the contracts feature's tests walk that).
    /// Returns the submission id.
    pub async fn contract_on_chain(&self, k: &Value) -> i64 {
        let db = self.db.client().await;
        let id = k["id"].as_i64().unwrap();
        let sub: i64 = db
            .query_one(
                "INSERT INTO workflow.submissions (kind, object_id, tenant, external_id, hash_alg, hash, metadata, state)
                 VALUES ('contract', $1, $2, $3, 'sha256', $4, '{}', 'sealed') RETURNING id",
                &[
                    &id,
                    &k["tenant"].as_str().unwrap(),
                    &format!("wf-test-contract-{id}"),
                    &k["contract_hash"].as_str().unwrap(),
                ],
            )
            .await
            .unwrap()
            .get(0);
        for to in ["awaiting_review", "approved", "on_chain"] {
            db.execute(
                "UPDATE workflow.contracts SET status = $2, submission_id = $3 WHERE id = $1",
                &[&id, &to, &sub],
            )
            .await
            .unwrap();
        }
        sub
    }

    /// A preservation of `product` by `token` with `fields`, its file
    /// `name` (`data`) uploaded, submitted: the upload's answer (`id`,
    /// `number`, `file`).
    pub async fn submitted_preservation(
        &self,
        token: &str,
        product: i64,
        fields: Value,
        name: &str,
        data: Vec<u8>,
    ) -> Value {
        let p = self
            .ok(
                201,
                "POST",
                "/v1/preservations",
                Some(token),
                Some(json!({"product_id": product, "fields": fields})),
            )
            .await;
        let pp = format!("/v1/preservations/{}", p["id"]);
        let (s, v) = self
            .upload("PUT", &format!("{pp}/file"), token, name, data)
            .await;
        assert_eq!(s, 200, "{v}");
        self.ok(200, "POST", &format!("{pp}/submit"), Some(token), None)
            .await;
        v
    }

    /// [`Env::submitted_preservation`], approved by `reviewer` and waited
    /// for until on chain (the pipeline runs): the upload's answer.
    pub async fn on_chain_preservation(
        &self,
        token: &str,
        reviewer: &str,
        product: i64,
        fields: Value,
        name: &str,
        data: Vec<u8>,
    ) -> Value {
        let v = self
            .submitted_preservation(token, product, fields, name, data)
            .await;
        let pp = format!("/v1/preservations/{}", v["id"]);
        self.ok(200, "POST", &format!("{pp}/approve"), Some(reviewer), None)
            .await;
        self.wait_until("the preservation on chain", &pp, token, 90, |v| {
            v["status"] == "on_chain"
        })
        .await;
        v
    }
}
