//! The verifier against a real ledger: entries appended, blocks sealed by
//! the batcher's own code, the API served on loopback, bundles fetched and
//! verified offline.

#![allow(clippy::unwrap_used)]

use anchord_testkit::evidence;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anchord_batcher::config::BatcherConfig;
use anchord_core::bundle::{AnchorState, Bundle, DeclaredKeys, TrustedKeys, verify_bundle};
use anchord_core::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, NoteSigner, SignedNote};
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ledger::{Ledger, ReceiptRow};
use anchord_testkit::TestDb;
use anchord_verifier::VerifierConfig;
use anchord_verifier::prover::Prover;

const SUITE: HashSuite = HashSuite::Sha256;
const ORIGIN: &str = "anchord.test/ledger";

fn sealer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[42; 32]).unwrap()
}

fn file(i: usize) -> Vec<u8> {
    format!("借款合同 LOAN-{i:04} signed by both parties").into_bytes()
}

struct Env {
    _db: TestDb,
    ledger: Ledger,
    base: String,
    http: reqwest::Client,
}

fn key_file() -> PathBuf {
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_verifier_keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("sealer.key");
    std::fs::write(&p, sealer().private_key_text()).unwrap();
    p
}

/// 10 entries in blocks of at most 4, served with `config`.
async fn env(config: VerifierConfig) -> Env {
    let (db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(SUITE).await.unwrap();
    let entries = (0..10)
        .map(|i| {
            evidence::entry(
                "bank-a",
                format!("LOAN-{i:04}"),
                EvidenceAlg::Sha256.hash(&file(i)),
            )
        })
        .collect();
    let out = evidence::append(&ledger, SUITE, 1_764_000_000_000_000, entries).await;
    assert_eq!(out.accepted(), 10);
    let bc = BatcherConfig {
        block_max_entries: 4,
        origin: ORIGIN.into(),
        signing_key: Some(key_file()),
        ..BatcherConfig::default()
    };
    // seal_once returns None while the previous call's lock connection is
    // still closing: retry, bounded.
    let mut sealed = 0;
    for _ in 0..200 {
        if sealed == 3 {
            break;
        }
        match anchord_batcher::seal_once(&bc, SUITE, &ledger)
            .await
            .unwrap()
        {
            Some(_) => sealed += 1,
            None => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    assert_eq!(sealed, 3, "10 entries in blocks of 4");
    let base = serve(&ledger, config).await;
    Env {
        _db: db,
        ledger,
        base,
        http: reqwest::Client::new(),
    }
}

fn declared() -> DeclaredKeys {
    DeclaredKeys {
        sealer: sealer().verifier().vkey(),
        witnesses: vec![],
        quorum: 0,
    }
}

async fn serve(ledger: &Ledger, config: VerifierConfig) -> String {
    let prover = Arc::new(Prover::new(ledger.clone(), SUITE, declared(), &config));
    let app = anchord_verifier::api::router(prover, &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

fn no_cache() -> VerifierConfig {
    VerifierConfig {
        pending_cache_ttl_s: 0,
        anchored_cache_ttl_s: 0,
        anchor_view_ttl_ms: 0,
        chunk_leaves: 2,
        ..VerifierConfig::default()
    }
}

fn trusted() -> TrustedKeys {
    TrustedKeys {
        sealers: vec![sealer().verifier()],
        witnesses: vec![],
        quorum: 0,
        timestamps: None,
        from_bundle: false,
    }
}

async fn get_bundle(e: &Env, i: usize) -> Bundle {
    let h = hex::encode(EvidenceAlg::Sha256.hash(&file(i)));
    let r = e
        .http
        .get(format!("{}/v1/proofs/{h}", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    (status, v["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_fresh_bundle_verifies_offline_and_is_pending_until_anchored() {
    let e = env(no_cache()).await;
    for i in 0..10 {
        let b = get_bundle(&e, i).await;
        let r = verify_bundle(&b, &trusted(), Some(&EvidenceAlg::Sha256.hash(&file(i)))).unwrap();
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.block_height, i as u64 / 4);
        assert_eq!(b.anchor.status, AnchorState::Pending);
        assert!(b.anchor.expected_at_us.is_some());
        assert_eq!(b.checkpoint.size, 3, "latest checkpoint while not anchored");
    }
    // Anchor checkpoint 2 on one target and 3 on another: block 0 and 1
    // entries now end at checkpoint 2, with target b's receipt proven
    // consistent; block 2 entries end at 3.
    let cp2 = e.ledger.checkpoint(2).await.unwrap().unwrap();
    for (target, size) in [("court-a", 2u64), ("chain-b", 3)] {
        e.ledger
            .record_anchor_receipt(&ReceiptRow {
                target: target.into(),
                checkpoint_size: size,
                chain_kind: "evm".into(),
                chain_id: "31337".into(),
                // Shaped as an EVM chain's (0x and 64 lowercase hex
                // digits), anchored after the blocks were sealed (now).
                tx_id: format!("0x{}", hex::encode(SUITE.digest(target.as_bytes()))),
                block_number: 7,
                block_hash: format!("0x{}", "ab".repeat(32)),
                block_time_us: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_micros() as i64,
                receipt: "{}".into(),
            })
            .await
            .unwrap();
    }
    let b = get_bundle(&e, 1).await;
    assert_eq!(b.anchor.status, AnchorState::Anchored);
    assert_eq!(b.checkpoint.size, 2);
    assert_eq!(b.checkpoint.root, cp2.root);
    assert_eq!(b.anchor.receipts.len(), 2);
    let r = verify_bundle(&b, &trusted(), None).unwrap();
    assert!(r.anchored);
    let b9 = get_bundle(&e, 9).await;
    assert_eq!(b9.checkpoint.size, 3);
    assert_eq!(b9.anchor.receipts.len(), 1);
    verify_bundle(&b9, &trusted(), None).unwrap();
    // The tlog-proof export checks against its own checkpoint.
    let t = anchord_verifier::tlog_proof::export(&b);
    let (extra, index, _) = anchord_verifier::tlog_proof::check(&t, SUITE).unwrap();
    assert_eq!(index, 0);
    assert_eq!(SUITE.leaf_hash(&extra), b.block.hash);
}

#[tokio::test]
async fn lookups_by_id_unknown_and_malformed_hashes() {
    let e = env(VerifierConfig::default()).await;
    let r = e
        .http
        .get(format!("{}/v1/proofs/by-id/bank-a/LOAN-0003", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Bundle = r.json().await.unwrap();
    assert_eq!(b.entry.seq, 3);
    let unknown = hex::encode([7u8; 32]);
    let r = e
        .http
        .get(format!("{}/v1/proofs/{unknown}", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    for bad in ["xyz", "00", &"g".repeat(64)] {
        let r = e
            .http
            .get(format!("{}/v1/proofs/{bad}", e.base))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await, (400, "bad_hash".into()), "{bad}");
    }
    let r = e
        .http
        .get(format!("{}/v1/proofs/by-id/bank-a/NOPE", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    let r = e
        .http
        .get(format!("{}/v2/nothing", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
}

async fn verify_file(e: &Env, bytes: Vec<u8>, id: Option<&str>) -> serde_json::Value {
    let mut form = reqwest::multipart::Form::new();
    if let Some(id) = id {
        form = form
            .text("tenant", "bank-a")
            .text("external_id", id.to_owned());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("f.pdf"),
    );
    let r = e
        .http
        .post(format!("{}/v1/verify", e.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn verify_a_file_or_a_hash() {
    let e = env(VerifierConfig::default()).await;
    let v = verify_file(&e, file(5), None).await;
    assert_eq!(v["result"], "match");
    assert_eq!(v["message"], "结果一致，数据未篡改");
    assert_eq!(v["bundle"]["entry"]["external_id"], "LOAN-0005");
    let mut changed = file(5);
    changed[3] ^= 1;
    let v = verify_file(&e, changed.clone(), Some("LOAN-0005")).await;
    assert_eq!(v["result"], "mismatch");
    assert_eq!(v["bundle"]["entry"]["external_id"], "LOAN-0005");
    let v = verify_file(&e, changed, None).await;
    assert_eq!(v["result"], "not_found");
    let v: serde_json::Value = e
        .http
        .post(format!("{}/v1/verify", e.base))
        .json(&serde_json::json!({"hash": hex::encode(EvidenceAlg::Sha256.hash(&file(2)))}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["result"], "match");
    let r = e
        .http
        .post(format!("{}/v1/verify", e.base))
        .body("hash=00")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    let r = e
        .http
        .post(format!("{}/v1/verify", e.base))
        .header("content-type", "application/json")
        .body("{\"hash\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_json".into()));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let e = env(VerifierConfig {
        max_body_bytes: 4096,
        ..VerifierConfig::default()
    })
    .await;
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(vec![0u8; 100_000]));
    let r = e
        .http
        .post(format!("{}/v1/verify", e.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (413, "too_large".into()));
}

#[tokio::test]
async fn clients_over_their_rate_get_429() {
    let e = env(VerifierConfig {
        rate_per_second: 1,
        rate_burst: 3,
        ..VerifierConfig::default()
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = e
            .http
            .get(format!("{}/v1/checkpoints/latest", e.base))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
    let r = e
        .http
        .get(format!("{}/v1/checkpoints/latest", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_code(r).await, (429, "rate_limited".into()));
}

#[tokio::test]
async fn checkpoints_consistency_and_openapi() {
    let e = env(VerifierConfig::default()).await;
    let v: serde_json::Value = e
        .http
        .get(format!("{}/v1/checkpoints/latest", e.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["size"], 3);
    let r = e
        .http
        .get(format!("{}/v1/checkpoints/2", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = e
        .http
        .get(format!("{}/v1/checkpoints/9", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    let r = e
        .http
        .get(format!("{}/v1/checkpoints/0", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_size".into()));
    let c: serde_json::Value = e
        .http
        .get(format!("{}/v1/checkpoints/consistency?from=1&to=3", e.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hx = |v: &serde_json::Value| -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let proof: Vec<[u8; 32]> = c["proof"].as_array().unwrap().iter().map(hx).collect();
    anchord_core::merkle::verify_consistency(
        SUITE,
        1,
        3,
        &hx(&c["from_root"]),
        &hx(&c["to_root"]),
        &proof,
    )
    .unwrap();
    let r = e
        .http
        .get(format!("{}/v1/checkpoints/consistency?from=3&to=1", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "bad_size".into()));
    let doc: serde_json::Value = e
        .http
        .get(format!("{}/v1/openapi.json", e.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/proofs/{evidence_hash}"]["get"].is_object());
    assert!(doc["paths"]["/v1/verify"]["post"].is_object());
}

/// The running service against its own OpenAPI document: schemathesis
/// (PyPI, installed by scripts/test-peers) generates requests for every
/// operation, valid and invalid, and checks status codes, content types,
/// response schemas and server errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_conforms_to_its_openapi_document() {
    let st = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.anchord/peers/venv/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: run scripts/test-peers (installs schemathesis from PyPI)",
        st.display()
    );
    let e = env(VerifierConfig {
        rate_per_second: 100_000,
        rate_burst: 100_000,
        max_body_bytes: 1 << 20,
        ..VerifierConfig::default()
    })
    .await;
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        tokio::process::Command::new(&st)
            .env("SCHEMATHESIS_HOOKS", "")
            .args([
                "run",
                "--checks",
                "all",
                "--hypothesis-max-examples",
                "40",
                "--hypothesis-derandomize",
                "--request-timeout",
                "5000",
                "--no-color",
                "--experimental=openapi-3.1",
            ])
            .arg(format!("{}/v1/openapi.json", e.base))
            // Hypothesis keeps a `.hypothesis` directory in the working
            // directory: not the source tree.
            .current_dir(std::env::temp_dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("schemathesis finishes within 300 s")
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The certificate's text, as `pdftotext` (Debian poppler-utils, installed
/// by scripts/test-peers) extracts it: Chinese rendered with the embedded
/// subsetted CJK font and mapped back to Unicode.
#[tokio::test]
async fn the_certificate_pdf_carries_the_facts_in_chinese() {
    assert!(
        std::process::Command::new("pdftotext")
            .arg("-v")
            .output()
            .is_ok(),
        "pdftotext is missing: run scripts/test-peers (installs poppler-utils)"
    );
    let e = env(VerifierConfig {
        public_url: "https://proofs.bank-a.example".into(),
        ..VerifierConfig::default()
    })
    .await;
    let h = hex::encode(EvidenceAlg::Sha256.hash(&file(6)));
    let r = e
        .http
        .get(format!("{}/v1/proofs/{h}/certificate.pdf", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(
        pdf.len() < 200_000,
        "the font is subsetted: {} bytes",
        pdf.len()
    );
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_cert"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "电子数据保全证书",
        "提交方 Submitter: bank-a",
        "业务编号 External ID: LOAN-0006",
        &h,
        "区块高度 Block height: 1",
        "保全时间 Preserved at: 2025-11-25 00:00:00 (北京时间) / 2025-11-24 16:00:00 UTC",
        "待锚定",
        &format!("https://proofs.bank-a.example/v1/proofs/{h}"),
        // Issued only after verification, saying against what; the court's
        // command names its own trust file.
        "核验 Verified",
        "against this deployment's configured keys",
        "anchord verify --trust trust.toml --bundle bundle.json",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let r = e
        .http
        .get(format!(
            "{}/v1/proofs/{}/certificate.pdf",
            e.base,
            "ab".repeat(32)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
}

/// Seal everything pending in blocks of at most `max` entries, one
/// `seal_once` per block; returns the number of blocks sealed.
async fn seal_all(ledger: &Ledger, max: u64, blocks: usize) {
    let bc = BatcherConfig {
        block_max_entries: max,
        origin: ORIGIN.into(),
        signing_key: Some(key_file()),
        ..BatcherConfig::default()
    };
    let mut sealed = 0;
    for _ in 0..blocks * 50 {
        if sealed == blocks {
            break;
        }
        match anchord_batcher::seal_once(&bc, SUITE, ledger)
            .await
            .unwrap()
        {
            Some(_) => sealed += 1,
            None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    assert_eq!(sealed, blocks);
}

/// Remove every stored level-0 half, as on a ledger awaiting the batcher's
/// back-fill (TRUNCATE: the triggers refuse row deletes).
async fn drop_leaf_tiles(e: &Env) {
    e._db
        .client()
        .await
        .batch_execute("TRUNCATE block_leaf_tiles")
        .await
        .unwrap();
}

/// 600 entries in block 0 (its tree has tiles at levels 1 and 2), then 299
/// blocks of one entry: a block log of 300 (one full level-0 tile, a
/// partial one of 44, a level-1 tile of 1).
async fn tiled_env() -> Env {
    let (db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(SUITE).await.unwrap();
    let entries = (0..899)
        .map(|i| {
            evidence::entry(
                "bank-a",
                format!("LOAN-{i:04}"),
                EvidenceAlg::Sha256.hash(&file(i)),
            )
        })
        .collect();
    let out = evidence::append(&ledger, SUITE, 1_764_000_000_000_000, entries).await;
    assert_eq!(out.accepted(), 899);
    seal_all(&ledger, 600, 1).await;
    seal_all(&ledger, 1, 299).await;
    let base = serve(&ledger, no_cache()).await;
    Env {
        _db: db,
        ledger,
        base,
        http: reqwest::Client::new(),
    }
}

/// Run an independent tlog-tiles reader (`program [script] <prefix> <vkey>
/// <args>…`): whether it succeeded, its stdout and its stderr.
fn run_reader(
    program: &std::path::Path,
    script: Option<&std::path::Path>,
    base: &str,
    vkey: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = std::process::Command::new(program)
        .args(script)
        .arg(base)
        .arg(vkey)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Go tlog-tiles reader (tests/tlog_go), built once per test process
/// with Debian's Go and golang.org/x/mod (scripts/test-peers installs
/// both), in GOPATH mode: nothing is fetched.
fn go_tlog_client() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let gopath = std::path::Path::new("/usr/share/gocode");
            assert!(
                gopath.join("src/golang.org/x/mod/sumdb/tlog").is_dir(),
                "{} has no golang.org/x/mod: run scripts/test-peers (Debian's golang-go and golang-golang-x-mod-dev)",
                gopath.display()
            );
            let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
            let bin = tmp.join("tlog_go");
            let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tlog_go/main.go");
            let out = std::process::Command::new("go")
                .arg("build")
                .arg("-o")
                .arg(&bin)
                .arg(&src)
                .env("GO111MODULE", "off")
                .env("GOPATH", gopath)
                .env("GOCACHE", tmp.join("go-cache"))
                .env("GOPROXY", "off")
                .env("GOFLAGS", "")
                .output()
                .unwrap_or_else(|e| panic!("go: {e}: run scripts/test-peers (Debian's golang-go)"));
            assert!(
                out.status.success(),
                "go build: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            bin
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tlog_tiles_api_serves_the_block_log_to_a_client_written_from_the_spec() {
    let e = tiled_env().await;
    let get = |path: &str| {
        let url = format!("{}{path}", e.base);
        let http = e.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let cc = r
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (r.status().as_u16(), cc, ct, r.bytes().await.unwrap())
        }
    };
    // The checkpoint: the signed note, as text.
    let (s, _, ct, body) = get("/checkpoint").await;
    assert_eq!((s, ct.as_str()), (200, "text/plain; charset=utf-8"));
    let note = String::from_utf8(body.to_vec()).unwrap();
    assert!(note.starts_with(&format!("{ORIGIN}\n300\n")), "{note}");
    // Full tiles are immutable; partial ones short-lived; absent ones 404;
    // malformed paths 400.
    let (s, cc, ct, body) = get("/tile/0/000").await;
    assert_eq!((s, body.len()), (200, 8192));
    assert_eq!(cc, "public, max-age=31536000, immutable");
    assert_eq!(ct, "application/octet-stream");
    let (s, cc, _, body) = get("/tile/0/001.p/44").await;
    assert_eq!(
        (s, body.len(), cc.as_str()),
        (200, 44 * 32, "public, max-age=60")
    );
    let (s, _, _, small) = get("/tile/0/001.p/3").await;
    assert_eq!(
        (s, &small[..]),
        (200, &body[..3 * 32]),
        "an older size's tile is a prefix"
    );
    assert_eq!(get("/tile/1/000.p/1").await.0, 200);
    let (s, _, _, bundle) = get("/tile/entries/001.p/44").await;
    assert_eq!((s, bundle.len()), (200, 44 * (2 + 119)));
    for missing in [
        "/tile/0/001",
        "/tile/0/001.p/45",
        "/tile/0/002.p/1",
        "/tile/1/000",
        "/tile/2/000.p/1",
        "/tile/entries/001",
    ] {
        assert_eq!(get(missing).await.0, 404, "{missing}");
    }
    for bad in [
        "/tile/0/x000/001",
        "/tile/64/000",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/00/000",
        "/tile/0/1",
        "/tile/entries/000.p/x",
        "/tile/0/000/",
    ] {
        let r = e.http.get(format!("{}{bad}", e.base)).send().await.unwrap();
        let (status, code) = error_code(r).await;
        assert_eq!((status, code.as_str()), (400, "bad_tile_path"), "{bad}");
    }

    // The independent client: signature, root from tiles, entry bundle,
    // inclusion proof, for an entry in the full tile and one in the partial.
    let py =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.anchord/peers/venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/test-peers (the tlog-tiles client needs python with pycryptodomex)",
        py.display()
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tlog_client.py");
    for entry in ["0", "255", "257", "299"] {
        let (ok, stdout, stderr) = run_reader(
            &py,
            Some(&script),
            &e.base,
            &sealer().verifier().vkey(),
            &[entry],
        );
        assert!(
            ok && stdout.starts_with("OK size=300 "),
            "client: {stdout}{stderr}"
        );
    }
    // Another key's checkpoint is refused by the client.
    let other = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[7; 32]).unwrap();
    let (ok, stdout, _) = run_reader(
        &py,
        Some(&script),
        &e.base,
        &other.verifier().vkey(),
        &["0"],
    );
    assert!(!ok, "{stdout}");

    // The Go project's own tlog code (golang.org/x/mod/sumdb/note and
    // tlog, tests/tlog_go): the note opened with the sealer's vkey, every
    // tile it loads checked against the signed root, the root recomputed,
    // consistency with older sizes (inside the full tile, at its edge, in
    // the partial one), and inclusion of entries in the full bundle and the
    // partial one.
    let go = go_tlog_client();
    for (old, entries) in [
        ("1", &["0", "1"][..]),
        ("255", &["255", "256"][..]),
        ("256", &["0", "299"][..]),
        ("257", &["128", "298"][..]),
        ("300", &["257"][..]),
    ] {
        let args: Vec<&str> = std::iter::once(old)
            .chain(entries.iter().copied())
            .collect();
        let (ok, stdout, stderr) =
            run_reader(&go, None, &e.base, &sealer().verifier().vkey(), &args);
        assert!(
            ok && stdout.starts_with("OK size=300 "),
            "Go client, old size {old}: {stdout}{stderr}"
        );
    }
    let (ok, stdout, _) = run_reader(&go, None, &e.base, &other.verifier().vkey(), &["0"]);
    assert!(
        !ok && stdout.starts_with("FAIL checkpoint note"),
        "{stdout}"
    );

    // Bundles from tiles: an entry deep in the 600-entry block and one in a
    // late block verify offline, and their paths are the in-memory ones.
    // Chunk edges (255/256, 511/512), the stored halves' edges (127/128,
    // 383/384) and the partial last chunk (512..600, one half). Then the
    // same with the level-0 rows gone (a block awaiting the back-fill):
    // each proof reads its whole tile from the evidence rows instead.
    let all = e.ledger.leaf_hashes(0, 600).await.unwrap();
    let picks = [
        0usize, 127, 128, 129, 255, 256, 299, 383, 384, 511, 512, 513, 555, 599, 600, 898,
    ];
    for pass in ["stored halves", "evidence rows"] {
        for i in picks {
            let b = get_bundle(&e, i).await;
            verify_bundle(&b, &trusted(), Some(&EvidenceAlg::Sha256.hash(&file(i))))
                .unwrap_or_else(|err| panic!("{pass}, entry {i}: {err}"));
            if i < 600 {
                assert_eq!(
                    b.audit_path,
                    anchord_core::merkle::inclusion_proof(SUITE, &all, i as u64).unwrap(),
                    "{pass}, entry {i}"
                );
            }
        }
        drop_leaf_tiles(&e).await;
    }

    // A witness's cosignature (c2sp.org/tlog-cosignature, a key neither
    // reader is given) on the checkpoint: both still open the note with the
    // sealer's key alone, the Go one through note.Open's unverified
    // signatures.
    let cp = e.ledger.latest_checkpoint().await.unwrap().unwrap();
    let mut note = SignedNote::parse(&cp.signed_note).unwrap();
    let witness =
        NoteSigner::from_seed("witness.example/w1", ALG_COSIGNATURE_V1, &[9; 32]).unwrap();
    note.signatures
        .push(witness.cosign(&note.text, 1_764_000_100).unwrap());
    e.ledger
        .add_cosignatures(cp.size, &[], &note.format(), None)
        .await
        .unwrap();
    let (s, _, _, body) = get("/checkpoint").await;
    assert_eq!(s, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("\n\u{2014} witness.example/w1 "),
        "the served note carries the cosignature"
    );
    let (ok, stdout, _) = run_reader(
        &go,
        None,
        &e.base,
        &sealer().verifier().vkey(),
        &["299", "298"],
    );
    assert!(
        ok && stdout.starts_with("OK size=300 "),
        "Go client, cosigned note: {stdout}"
    );
    let (ok, stdout, _) = run_reader(
        &py,
        Some(&script),
        &e.base,
        &sealer().verifier().vkey(),
        &["299"],
    );
    assert!(
        ok && stdout.starts_with("OK size=300 "),
        "client, cosigned note: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_sealed_before_tiles_still_serves_proofs() {
    let e = tiled_env().await;
    // As a ledger migrated to 0006 whose batcher has not started since:
    // no tiles at all (TRUNCATE: the triggers refuse row deletes).
    e._db
        .client()
        .await
        .batch_execute("TRUNCATE log_tiles, block_tiles")
        .await
        .unwrap();
    let all = e.ledger.leaf_hashes(0, 600).await.unwrap();
    for i in [0usize, 513, 599, 898] {
        let b = get_bundle(&e, i).await;
        verify_bundle(&b, &trusted(), Some(&EvidenceAlg::Sha256.hash(&file(i)))).unwrap();
        if i < 600 {
            assert_eq!(
                b.audit_path,
                anchord_core::merkle::inclusion_proof(SUITE, &all, i as u64).unwrap()
            );
        }
    }
    let r = e
        .http
        .get(format!("{}/tile/0/000", e.base))
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(r).await;
    assert_eq!((status, code.as_str()), (503, "tiles_unavailable"));
}

// ---------------------------------------------------------------------------
// The bundle cache: invalidated by a new checkpoint or a change of anchors,
// bounded in bytes, warm requests without a statement.
// ---------------------------------------------------------------------------

/// Caching on, with long backstops: only the refresh (every 100 ms) can
/// make a cached bundle change.
fn caching() -> VerifierConfig {
    VerifierConfig {
        anchored_cache_ttl_s: 3600,
        pending_cache_ttl_s: 3600,
        anchor_view_ttl_ms: 100,
        ..VerifierConfig::default()
    }
}

async fn serve_prover(ledger: &Ledger, config: VerifierConfig) -> (String, Arc<Prover>) {
    let prover = Arc::new(Prover::new(ledger.clone(), SUITE, declared(), &config));
    let app = anchord_verifier::api::router(prover.clone(), &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), prover)
}

async fn fetch(http: &reqwest::Client, base: &str, i: usize) -> (Bundle, usize) {
    let h = hex::encode(EvidenceAlg::Sha256.hash(&file(i)));
    let r = http
        .get(format!("{base}/v1/proofs/{h}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    (serde_json::from_slice(&body).unwrap(), body.len())
}

/// Entry `i`'s bundle once `done` holds, fetched every 20 ms for at most
/// 5 s (the refresh runs every 100 ms).
async fn fetch_until(
    http: &reqwest::Client,
    base: &str,
    i: usize,
    what: &str,
    done: impl Fn(&Bundle) -> bool,
) -> Bundle {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (b, _) = fetch(http, base, i).await;
        if done(&b) {
            return b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "entry {i}: still not {what} after 5 s: checkpoint {}, status {:?}, receipts {:?}",
            b.checkpoint.size,
            b.anchor.status,
            b.anchor
                .receipts
                .iter()
                .map(|r| (&r.target, r.checkpoint_size))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn receipt(target: &str, size: u64) -> ReceiptRow {
    ReceiptRow {
        target: target.into(),
        checkpoint_size: size,
        chain_kind: "evm".into(),
        chain_id: "31337".into(),
        tx_id: format!("0x{}", hex::encode(SUITE.digest(target.as_bytes()))),
        block_number: 7,
        block_hash: format!("0x{}", "ab".repeat(32)),
        block_time_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
        receipt: "{}".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_pending_bundle_ends_at_a_newly_sealed_checkpoint() {
    let e = env(no_cache()).await;
    let (base, prover) = serve_prover(&e.ledger, caching()).await;
    let (b, _) = fetch(&e.http, &base, 9).await;
    assert_eq!(b.checkpoint.size, 3);
    assert_eq!(b.anchor.status, AnchorState::Pending);
    // Served again from the cache: no statement.
    let q = prover
        .counts()
        .queries
        .load(std::sync::atomic::Ordering::Relaxed);
    let (again, _) = fetch(&e.http, &base, 9).await;
    assert_eq!(again.checkpoint.size, 3);
    assert_eq!(
        prover
            .counts()
            .queries
            .load(std::sync::atomic::Ordering::Relaxed),
        q,
        "a warm request sent a statement"
    );
    assert!(
        prover
            .counts()
            .hits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // A new block and checkpoint: the cached bundle (pending, so it ends
    // at the latest checkpoint) is rebuilt within the refresh period,
    // although its backstop is an hour.
    let more = (10..12)
        .map(|i| {
            evidence::entry(
                "bank-a",
                format!("LOAN-{i:04}"),
                EvidenceAlg::Sha256.hash(&file(i)),
            )
        })
        .collect();
    evidence::append(&e.ledger, SUITE, 1_764_000_000_100_000, more).await;
    seal_all(&e.ledger, 4, 1).await;
    let b = fetch_until(&e.http, &base, 9, "at checkpoint 4", |b| {
        b.checkpoint.size == 4
    })
    .await;
    verify_bundle(&b, &trusted(), Some(&EvidenceAlg::Sha256.hash(&file(9)))).unwrap();
    assert!(
        prover
            .counts()
            .stale
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let cp = e
        .http
        .get(format!("{base}/checkpoint"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(cp.lines().nth(1), Some("4"), "{cp}");
}

/// A ledger whose checkpoint 2 (blocks 0 and 1) is anchored at
/// `court-a`, served by a prover that caches bundles and anchor views.
async fn anchored_caching_prover() -> (Env, String, Arc<Prover>) {
    let e = env(no_cache()).await;
    e.ledger
        .record_anchor_receipt(&receipt("court-a", 2))
        .await
        .unwrap();
    let (base, prover) = serve_prover(&e.ledger, caching()).await;
    (e, base, prover)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_proofs_of_an_anchored_block_build_its_anchor_view_and_bundles_once() {
    let (e, base, prover) = anchored_caching_prover().await;
    // Every entry of blocks 0 and 1 (anchored by checkpoint 2), each asked
    // three times, all at once: a court checking a whole old contract.
    let asked = (0..8).flat_map(|i| [i, i, i]);
    let bundles = futures::future::join_all(asked.map(|i| fetch(&e.http, &base, i))).await;
    for (b, _) in &bundles {
        assert_eq!(b.anchor.status, AnchorState::Anchored);
        assert_eq!(b.checkpoint.size, 2);
    }
    let built = prover
        .counts()
        .anchor_views_built
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(built, 2, "one anchor view per block, not one per request");
    let built = prover
        .counts()
        .bundles_built
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(built, 8, "one bundle per entry, not one per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_anchored_bundle_shows_a_new_target_and_drops_a_lost_anchor() {
    let (e, base, prover) = anchored_caching_prover().await;
    let (b, _) = fetch(&e.http, &base, 1).await;
    assert_eq!(b.anchor.status, AnchorState::Anchored);
    assert_eq!(b.checkpoint.size, 2);
    assert_eq!(b.anchor.receipts.len(), 1);
    let (_, _) = fetch(&e.http, &base, 1).await;
    assert!(
        prover
            .counts()
            .hits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // Another target anchors checkpoint 3: its receipt joins the cached
    // anchored bundle (backstop: an hour).
    e.ledger
        .record_anchor_receipt(&receipt("chain-b", 3))
        .await
        .unwrap();
    let b = fetch_until(&e.http, &base, 1, "showing chain-b", |b| {
        b.anchor.receipts.len() == 2
    })
    .await;
    verify_bundle(&b, &trusted(), None).unwrap();

    // court-a's anchor is lost (its block was reorganised away): no
    // bundle may still show it.
    let lost = e
        .ledger
        .anchor_receipts(Some("court-a"))
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    e.ledger.record_anchor_lost(lost.id, "reorg").await.unwrap();
    let b = fetch_until(&e.http, &base, 1, "without court-a", |b| {
        b.anchor.receipts.iter().all(|r| r.target != "court-a")
    })
    .await;
    assert_eq!(b.checkpoint.size, 3, "now anchored by chain-b's checkpoint");
    assert_eq!(b.anchor.receipts.len(), 1);
    verify_bundle(&b, &trusted(), None).unwrap();
}

/// A reorganisation: the anchor is lost and its transaction mined again in
/// another block, both between two looks at the anchors (no request came
/// in between, so no look). Every count of live receipts is then what it
/// was; the cached bundle must still move to the new block, or a court
/// checking it online is sent to a block the chain no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_bundle_follows_an_anchor_lost_and_mined_again_between_two_looks() {
    let e = env(no_cache()).await;
    let first = receipt("court-a", 2);
    e.ledger.record_anchor_receipt(&first).await.unwrap();
    let (base, _prover) = serve_prover(&e.ledger, caching()).await;
    let (b, _) = fetch(&e.http, &base, 1).await;
    assert_eq!(b.anchor.receipts.len(), 1);
    assert_eq!(b.anchor.receipts[0].block_number, first.block_number);

    let lost = e
        .ledger
        .anchor_receipts(Some("court-a"))
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    e.ledger.record_anchor_lost(lost.id, "reorg").await.unwrap();
    let job = e
        .ledger
        .claim_anchor_job("court-a", 60_000)
        .await
        .unwrap()
        .expect("the loss re-pends the checkpoint's job");
    let again = anchord_ledger::NewReceipt {
        chain_kind: first.chain_kind.clone(),
        chain_id: first.chain_id.clone(),
        tx_id: first.tx_id.clone(),
        block_number: first.block_number + 2,
        block_hash: format!("0x{}", "cd".repeat(32)),
        block_time_us: first.block_time_us + 2_000_000,
        genesis_hash: None,
        receipt_json: "{}".into(),
    };
    e.ledger
        .record_anchor_confirmed(&job, &again)
        .await
        .unwrap()
        .expect("confirmed again");

    let b = fetch_until(
        &e.http,
        &base,
        1,
        "showing the block it was mined in again",
        |b| {
            b.anchor
                .receipts
                .iter()
                .any(|r| r.block_number == again.block_number && r.block_hash == again.block_hash)
        },
    )
    .await;
    assert_eq!(b.anchor.receipts.len(), 1, "the lost receipt is gone");
    verify_bundle(&b, &trusted(), None).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_cache_is_bounded_in_bytes_and_keeps_what_is_asked_often() {
    let e = env(no_cache()).await;
    let (_, len) = fetch(&e.http, &e.base, 0).await;
    // Room for about four bundles (each weighs its JSON twice and its key).
    let bound = 4 * (2 * len as u64 + 300);
    let (base, prover) = serve_prover(
        &e.ledger,
        VerifierConfig {
            bundle_cache_entries: 8,
            bundle_cache_bytes: bound,
            ..caching()
        },
    )
    .await;
    for _ in 0..3 {
        for i in 1..10 {
            fetch(&e.http, &base, 0).await;
            fetch(&e.http, &base, i).await;
            let (bytes, entries) = prover.bundle_cache_size();
            assert!(bytes <= bound, "{bytes} bytes cached, bound {bound}");
            assert!(entries <= 4, "{entries} bundles cached");
        }
    }
    // Entry 0, asked for every other request, stayed: no statement.
    let q = prover
        .counts()
        .proof_queries
        .load(std::sync::atomic::Ordering::Relaxed);
    fetch(&e.http, &base, 0).await;
    assert_eq!(
        prover
            .counts()
            .proof_queries
            .load(std::sync::atomic::Ordering::Relaxed),
        q,
        "the often-asked bundle was evicted"
    );
    // Every other entry was evicted at least once (10 bundles, room for 4).
    assert!(q > 10, "{q} proof statements for 54 requests");
}

// ---------------------------------------------------------------------------
// Cold lookups gathered into shared statements (`Ledger::proofs`, the
// prover's gathering loop).
// ---------------------------------------------------------------------------

/// Each key's answer from one batch, as text (ProofRow has no PartialEq):
/// the same as the key asked alone.
async fn alone(ledger: &Ledger, k: &anchord_ledger::ProofKey) -> String {
    use anchord_ledger::ProofKey;
    let r = match k {
        ProofKey::Hash { hash, tenant } => ledger.proof_by_hash(hash, tenant.as_deref()).await,
        ProofKey::Identity {
            tenant,
            external_id,
        } => ledger.proof_by_identity(tenant, external_id).await,
    };
    format!("{:?}", r.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_proof_lookups_answers_each_key_as_it_would_be_answered_alone() {
    use anchord_ledger::ProofKey;
    let e = tiled_env().await;
    // Not sealed: bank-b's copy of file 5's hash, and a new bank-a entry.
    let more = vec![
        evidence::entry(
            "bank-b",
            "B-0005".to_string(),
            EvidenceAlg::Sha256.hash(&file(5)),
        ),
        evidence::entry(
            "bank-a",
            "LOAN-9999".to_string(),
            EvidenceAlg::Sha256.hash(&file(9999)),
        ),
    ];
    let out = evidence::append(&e.ledger, SUITE, 1_764_000_100_000_000, more).await;
    assert_eq!(out.accepted(), 2);
    let hash = |i: usize, tenant: Option<&str>| ProofKey::Hash {
        hash: EvidenceAlg::Sha256.hash(&file(i)),
        tenant: tenant.map(str::to_owned),
    };
    let id = |t: &str, x: &str| ProofKey::Identity {
        tenant: t.into(),
        external_id: x.into(),
    };
    let mut keys: Vec<ProofKey> = [0, 127, 128, 129, 255, 256, 383, 384, 513, 599, 600, 898]
        .into_iter()
        .map(|i| hash(i, None))
        .collect();
    keys.extend([
        hash(5, Some("bank-a")),
        hash(5, Some("bank-b")),
        hash(5, Some("nobody")),
        hash(9999, None),
        hash(123_456, None),
        ProofKey::Hash {
            hash: vec![7; 64],
            tenant: None,
        },
        id("bank-a", "LOAN-0007"),
        id("bank-a", "LOAN-0599"),
        id("bank-b", "B-0005"),
        id("bank-a", "LOAN-9999"),
        id("bank-a", "no such loan"),
        hash(0, None),
        id("bank-a", "LOAN-0007"),
    ]);
    // Mixed, then each kind alone, then from the evidence rows (the
    // stored halves truncated, as on a ledger awaiting the back-fill).
    for round in 0..2 {
        if round == 1 {
            drop_leaf_tiles(&e).await;
        }
        let batch = e.ledger.proofs(&keys).await.unwrap();
        assert_eq!(batch.len(), keys.len());
        let mut sealed = 0;
        for (k, got) in keys.iter().zip(&batch) {
            let got = got.as_ref().unwrap();
            sealed += usize::from(got.as_ref().is_some_and(|r| r.level0.is_some()));
            assert_eq!(format!("{got:?}"), alone(&e.ledger, k).await, "{k:?}");
        }
        assert_eq!(sealed, 12 + 1 + 2 + 1 + 1, "round {round}");
        for kind in [&keys[..12], &keys[18..23]] {
            let batch = e.ledger.proofs(kind).await.unwrap();
            for (k, got) in kind.iter().zip(batch) {
                assert_eq!(format!("{:?}", got.unwrap()), alone(&e.ledger, k).await);
            }
        }
    }
    assert!(e.ledger.proofs(&[]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_lookups_share_statements_and_get_the_bundles_they_would_alone() {
    use std::sync::atomic::Ordering::Relaxed;
    let e = tiled_env().await;
    // No bundle cache; the latest checkpoint looked up once a second (with
    // 0, every request would look it up first, one at a time).
    let config = VerifierConfig {
        proof_batches_in_flight: 1,
        bundle_cache_entries: 0,
        ..VerifierConfig::default()
    };
    let prover = Arc::new(Prover::new(e.ledger.clone(), SUITE, declared(), &config));
    // As `run` starts it: the latest checkpoint and the block log's right
    // edge first, then the loop.
    prover.preload().await.unwrap();
    let before = prover.counts().block_queries.load(Relaxed);
    let stop = tokio_util::sync::CancellationToken::new();
    let gatherer = tokio::spawn(prover.clone().gather_loop(stop.clone()));
    // Let the loop start (it installs its queue first thing).
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let alone = Arc::new(Prover::new(e.ledger.clone(), SUITE, declared(), &config));
    let n = 60;
    let asks: Vec<_> = (0..n)
        .map(|i| {
            let p = prover.clone();
            tokio::spawn(async move {
                let h = EvidenceAlg::Sha256.hash(&file(i * 15));
                if i % 3 == 0 {
                    p.by_identity("bank-a", &format!("LOAN-{:04}", i * 15))
                        .await
                } else {
                    p.by_hash(&h, None).await
                }
            })
        })
        .collect();
    let mut got_all = Vec::new();
    for a in asks {
        got_all.push(a.await.unwrap().unwrap());
    }
    // Block statements so far (before the comparisons below ask more).
    let blocks = prover.counts().block_queries.load(Relaxed) - before;
    for (i, got) in got_all.into_iter().enumerate() {
        let want = alone
            .by_hash(&EvidenceAlg::Sha256.hash(&file(i * 15)), None)
            .await
            .unwrap();
        match (got, want) {
            (
                anchord_verifier::prover::Lookup::Found(g),
                anchord_verifier::prover::Lookup::Found(w),
            ) => assert_eq!(g.json, w.json, "entry {}", i * 15),
            other => panic!("entry {}: {other:?}", i * 15),
        }
    }
    let c = prover.counts();
    assert_eq!(c.proofs.load(Relaxed), n as u64);
    let statements = c.proof_queries.load(Relaxed);
    assert!(
        statements <= n as u64 / 3,
        "{statements} proof statements for {n} concurrent lookups"
    );
    // The lookups fall in 21 blocks (0, and 20 of one entry each): their
    // headers and upper tiles came with the gathered statements, two
    // statements per batch, not one or two per block or per lookup (100 when
    // each request read its block alone).
    assert!(
        blocks <= 2 * statements,
        "{blocks} statements read blocks for {statements} gathered ones"
    );
    // Stopped: it drains and returns; lookups then go alone.
    stop.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), gatherer)
        .await
        .expect("the gathering loop stops")
        .unwrap();
    let found = prover
        .by_hash(&EvidenceAlg::Sha256.hash(&file(7)), None)
        .await
        .unwrap();
    assert!(matches!(found, anchord_verifier::prover::Lookup::Found(_)));
    assert_eq!(c.proof_queries.load(Relaxed), statements + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gathered_statement_fails_each_of_its_lookups_and_the_next_one_runs() {
    use std::sync::atomic::Ordering::Relaxed;
    let e = tiled_env().await;
    // The prover's connections give up on a statement after 300 ms.
    let sep = if e._db.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20statement_timeout%3D300", e._db.url());
    let ledger = Ledger::connect(&anchord_ledger::DatabaseConfig::from_url(&url)).unwrap();
    let config = VerifierConfig {
        proof_batches_in_flight: 1,
        bundle_cache_entries: 0,
        anchor_view_ttl_ms: 60_000,
        ..VerifierConfig::default()
    };
    let prover = Arc::new(Prover::new(ledger, SUITE, declared(), &config));
    prover.preload().await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let gatherer = tokio::spawn(prover.clone().gather_loop(stop.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // Every proof statement now waits for this lock, and times out.
    let locker = e._db.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE block_leaf_tiles IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let n = 12;
    let asks: Vec<_> = (0..n)
        .map(|i| {
            let p = prover.clone();
            tokio::spawn(async move {
                p.by_hash(&EvidenceAlg::Sha256.hash(&file(i * 50)), None)
                    .await
            })
        })
        .collect();
    for a in asks {
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), a)
            .await
            .expect("every lookup is answered")
            .unwrap();
        assert!(r.is_err(), "a lookup succeeded under the lock: {r:?}");
    }
    let statements = prover.counts().proof_queries.load(Relaxed);
    assert!(statements < n as u64, "{statements} statements for {n}");
    locker.batch_execute("ROLLBACK").await.unwrap();
    // The loop goes on: the next lookups are answered.
    for i in [3, 600, 898] {
        let found = prover
            .by_hash(&EvidenceAlg::Sha256.hash(&file(i)), None)
            .await
            .unwrap();
        assert!(matches!(found, anchord_verifier::prover::Lookup::Found(_)));
    }
    stop.cancel();
    gatherer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_sealed_after_the_last_checkpoint_seen_is_retry_later_not_an_error() {
    let e = env(no_cache()).await;
    // The latest checkpoint looked up once a minute: this verifier keeps
    // seeing the checkpoint of the 3 blocks sealed so far.
    let (base, _) = serve_prover(
        &e.ledger,
        VerifierConfig {
            anchor_view_ttl_ms: 60_000,
            bundle_cache_entries: 0,
            ..VerifierConfig::default()
        },
    )
    .await;
    fetch(&e.http, &base, 0).await;
    let more = vec![evidence::entry(
        "bank-a",
        "LOAN-0100".to_string(),
        EvidenceAlg::Sha256.hash(&file(100)),
    )];
    let out = evidence::append(&e.ledger, SUITE, 1_764_000_200_000_000, more).await;
    assert_eq!(out.accepted(), 1);
    seal_all(&e.ledger, 4, 1).await;
    // Sealed into block 3, checkpoint 4 written; the verifier has not looked
    // yet: 202 with Retry-After, not a 500.
    let h = hex::encode(EvidenceAlg::Sha256.hash(&file(100)));
    let r = e
        .http
        .get(format!("{base}/v1/proofs/{h}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.headers().contains_key("retry-after"));
    // A verifier that looks every time proves it.
    let (b, _) = fetch(&e.http, &e.base, 100).await;
    assert_eq!(b.block.height, 3);
}

/// Issue 17: after a start, the first proof of each block read the block's
/// header, its upper tiles and (for a block of more than one tile) its
/// partial last tile: two or three statements per block, all in the
/// first second, which made that second's proofs the slowest of a cold
/// run. The warm-up reads the newest blocks' beforehand: the first proofs
/// of every block then cost their own statement and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_warm_up_the_first_proof_of_each_block_reads_only_its_entry() {
    use std::sync::atomic::Ordering::Relaxed;
    let e = tiled_env().await;
    // No bundle cache; the latest checkpoint looked up at most once a
    // second (with 0, every request would look it up first).
    let config = VerifierConfig {
        bundle_cache_entries: 0,
        ..VerifierConfig::default()
    };
    let prover = Prover::new(e.ledger.clone(), SUITE, declared(), &config);
    prover.preload().await.unwrap();
    let c = prover.counts();
    let (queries, proofs) = (c.queries.load(Relaxed), c.proof_queries.load(Relaxed));
    // Block 0 (600 entries: two full tiles and a partial one, upper
    // tiles), then blocks of one entry each.
    let seqs = [0, 255, 256, 599, 600, 601, 750, 898];
    for &i in &seqs {
        match prover
            .by_hash(&EvidenceAlg::Sha256.hash(&file(i)), None)
            .await
            .unwrap()
        {
            anchord_verifier::prover::Lookup::Found(s) => {
                assert_eq!(s.bundle.entry.seq, i as u64);
                verify_bundle(
                    &s.bundle,
                    &trusted(),
                    Some(&EvidenceAlg::Sha256.hash(&file(i))),
                )
                .expect("a bundle that verifies");
            }
            other => panic!("entry {i}: {other:?}"),
        }
    }
    let c = prover.counts();
    assert_eq!(
        c.proof_queries.load(Relaxed) - proofs,
        seqs.len() as u64,
        "one proof statement per lookup"
    );
    assert_eq!(
        c.queries.load(Relaxed) - queries,
        seqs.len() as u64,
        "no statement but the proofs' own (blocks: {})",
        c.block_queries.load(Relaxed)
    );

    // A block whose stored tiles do not check stops neither the warm-up
    // nor the others' proofs; its own proofs report it.
    e._db
        .client()
        .await
        .batch_execute(
            "SET session_replication_role = replica; \
             UPDATE block_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) \
             WHERE height = 0; \
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let prover = Prover::new(e.ledger.clone(), SUITE, declared(), &config);
    prover
        .preload()
        .await
        .expect("the warm-up goes on past a damaged block");
    let c = prover.counts();
    let queries = c.queries.load(Relaxed);
    assert!(matches!(
        prover
            .by_hash(&EvidenceAlg::Sha256.hash(&file(750)), None)
            .await,
        Ok(anchord_verifier::prover::Lookup::Found(_))
    ));
    assert_eq!(
        c.queries.load(Relaxed) - queries,
        1,
        "block 151 was warmed up"
    );
    let damaged = prover
        .by_hash(&EvidenceAlg::Sha256.hash(&file(3)), None)
        .await;
    assert!(
        matches!(
            damaged,
            Err(anchord_verifier::prover::ProveError::Corrupt(_))
        ),
        "{damaged:?}"
    );
}
