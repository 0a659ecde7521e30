//! `bench/proofs`: proof lookups over HTTP on loopback against a ledger of
//! ANCHORD_BENCH_ENTRIES (default 10,000,000) entries in 100,000-entry
//! blocks, from a separate load generator (Debian's `wrk`), cold (bundle
//! cache off: every request assembles its bundle from PostgreSQL) and warm
//! (bundle cache on, working set fetched once); then the same response bytes
//! served by nginx from files, same wrk settings, and the ratio.
//!
//! Needs PostgreSQL (`scripts/services up`), `wrk` and `nginx`
//! (`scripts/test-peers`). Loading 10M entries takes minutes: run it once.
//! The size is the first numeric argument (`bench/proofs 1000000`).
//! Proofs come from tiles (`core::tiles`, migration 0006): a verifier just
//! restarted answers from a few indexed reads per proof, which the first
//! 500 proofs after a restart, timed one by one, show.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anchord_batcher::config::BatcherConfig;
use anchord_core::bundle::DeclaredKeys;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ledger::{AppendBatch, Ledger, NewEntry};
use anchord_verifier::VerifierConfig;
use anchord_verifier::prover::Prover;

const SUITE: HashSuite = HashSuite::Sha256;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn evidence(i: u64) -> Vec<u8> {
    EvidenceAlg::Sha256.hash(format!("proof-bench-{i}").as_bytes())
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is missing: run scripts/test-peers (installs nginx and wrk)");
}

fn main() {
    let wrk = tool("wrk");
    let nginx = tool("nginx");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(&wrk, &nginx));
}

async fn load(ledger: &Ledger, n: u64, out: &Path) {
    let batch = 50_000u64;
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let m = batch.min(n - i);
        let entries = (i..i + m)
            .map(|k| NewEntry {
                tenant: "bank-a".into(),
                external_id: format!("EV-{k:010}"),
                hash_alg: EvidenceAlg::Sha256,
                evidence_hash: evidence(k),
                metadata: None,
                source: None,
                raw: bytes::Bytes::new(),
            })
            .collect();
        let o = ledger
            .append(&AppendBatch {
                suite: SUITE,
                consumer_group: None,
                received_at_us: 1_764_000_000_000_000 + i as i64,
                entries,
                rejections: vec![],
                positions: vec![],
            })
            .await
            .expect("append");
        assert_eq!(o.accepted() as u64, m);
        i += m;
        if i % 1_000_000 == 0 {
            eprintln!(
                "loaded {i} entries ({:.0}/s)",
                i as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "load:   {n} entries in {secs:.1} s ({:.0} rows/s)",
        n as f64 / secs
    );
    let key = out.join("sealer.key");
    let signer = NoteSigner::from_seed("anchord.bench/ledger", ALG_ED25519, &[9; 32]).expect("key");
    std::fs::write(&key, signer.private_key_text()).expect("key file");
    let bc = BatcherConfig {
        block_max_entries: 100_000,
        origin: "anchord.bench/ledger".into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let t = Instant::now();
    let (mut sealed, mut tries) = (0u64, 0);
    while sealed < n {
        match anchord_batcher::seal_once(&bc, SUITE, ledger)
            .await
            .expect("seal")
        {
            Some(r) => sealed += r.entries,
            None => {
                tries += 1;
                assert!(tries < 2000, "sealer lock never free");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    println!(
        "seal:   {} blocks in {:.1} s",
        n.div_ceil(100_000),
        t.elapsed().as_secs_f64()
    );
}

async fn serve(ledger: &Ledger, cache: bool) -> (String, Arc<Prover>) {
    let signer = NoteSigner::from_seed("anchord.bench/ledger", ALG_ED25519, &[9; 32]).expect("key");
    let config = VerifierConfig {
        rate_per_second: 10_000_000,
        rate_burst: 10_000_000,
        bundle_cache_entries: if cache { 1_000_000 } else { 0 },
        anchored_cache_ttl_s: 3600,
        pending_cache_ttl_s: if cache { 3600 } else { 0 },
        ..VerifierConfig::default()
    };
    let keys = DeclaredKeys {
        sealer: signer.verifier().vkey(),
        witnesses: vec![],
        quorum: 0,
    };
    let prover = Arc::new(Prover::new(ledger.clone(), SUITE, keys, &config));
    let app = anchord_verifier::api::router(prover.clone(), &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (format!("http://{addr}"), prover)
}

/// Requests/s and p99 latency (ms) from `wrk --latency` output.
fn parse_wrk(out: &str) -> (f64, f64) {
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| {
            let v = v.trim();
            let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
            let n: f64 = num.parse().unwrap_or(f64::NAN);
            match unit {
                "us" => n / 1000.0,
                "ms" => n,
                "s" => n * 1000.0,
                _ => f64::NAN,
            }
        })
        .unwrap_or(f64::NAN);
    (rps, p99)
}

async fn run_wrk(wrk: &Path, base: &str, script: &Path, what: &str) -> (f64, f64) {
    let secs = env_or("ANCHORD_BENCH_SECONDS", 10);
    let conns = env_or("ANCHORD_BENCH_CONNECTIONS", 64);
    let out = tokio::process::Command::new(wrk)
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(base)
        .output()
        .await
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let (rps, p99) = parse_wrk(&text);
    let non2xx: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .map(str::trim)
        .collect();
    let non2xx = non2xx.join("; ");
    println!("{what:<28} {rps:>10.0} proofs/s   p99 {p99:>7.2} ms  {non2xx}");
    (rps, p99)
}

/// The ledger size: the first numeric command-line argument
/// (`bench/proofs 1000000`), else ANCHORD_BENCH_ENTRIES, else 10,000,000.
fn size_arg() -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.replace(['_', ','], "").parse().ok())
        .unwrap_or_else(|| env_or("ANCHORD_BENCH_ENTRIES", 10_000_000))
}

/// Tiles the verifier read so far: (from PostgreSQL, from its caches).
fn tile_reads() -> (u64, u64) {
    let m = &anchord_verifier::metrics::TILE_READS;
    let db = m.with_label_values(&["log", "db"]).get()
        + m.with_label_values(&["block", "db"]).get()
        + m.with_label_values(&["block", "level0"]).get();
    let cache = m.with_label_values(&["log", "cache"]).get()
        + m.with_label_values(&["block", "cache"]).get();
    (db, cache)
}

/// Right after a verifier (re)start: the first `k` distinct proofs, one at
/// a time, each timed (nothing cached in the verifier).
async fn first_proofs(base: &str, paths: &[String], k: usize) {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let mut ms = Vec::with_capacity(k);
    for p in paths.iter().take(k) {
        let s = Instant::now();
        let r = http.get(format!("{base}{p}")).send().await.expect("proof");
        assert!(r.status().is_success(), "{p}: {}", r.status());
        r.bytes().await.expect("body");
        ms.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let total = t.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    let q = |f: f64| ms[((ms.len() as f64 * f) as usize).min(ms.len() - 1)];
    println!(
        "first {k} proofs after a verifier restart, one client: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({:.0} proofs/s)",
        q(0.5),
        q(0.99),
        q(1.0),
        k as f64 / total
    );
}

async fn run(wrk: &Path, nginx: &Path) {
    let n = size_arg();
    let sample = env_or("ANCHORD_BENCH_SAMPLE", 20_000);
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/out/proofs");
    std::fs::create_dir_all(&out).expect("bench/out");
    println!("bench/proofs: {n} entries, {sample} distinct proofs per run, 2 wrk threads");
    let (db, _) = anchord_testkit::TestDb::migrated().await;
    let mut dbc = anchord_ledger::DatabaseConfig::from_url(db.url());
    dbc.max_connections = 16;
    let ledger = Ledger::connect(&dbc).expect("ledger");
    ledger.ensure_suite(SUITE).await.expect("suite");
    load(&ledger, n, &out).await;

    // The requests: a fixed random sample of evidence hashes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let picks: Vec<u64> = (0..sample)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect();
    let paths: Vec<String> = picks
        .iter()
        .map(|&i| format!("/v1/proofs/{}", hex::encode(evidence(i))))
        .collect();
    std::fs::write(out.join("paths.txt"), paths.join("\n") + "\n").expect("paths");
    let script = out.join("paths.lua");
    std::fs::write(
        &script,
        format!(
            "local paths = {{}}\nfor l in io.lines(\"{}\") do paths[#paths + 1] = l end\n\
             local i = math.random(#paths)\n\
             request = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
            out.join("paths.txt").display()
        ),
    )
    .expect("lua");

    // Cold: a verifier just started (every cache empty) with the bundle
    // cache off, so every request assembles its bundle from tiles read in
    // PostgreSQL. PostgreSQL itself is not restarted: the bench runs on the
    // shared cluster of scripts/services, whose buffer cache is warm from
    // the load (reported as such).
    let (first_base, _) = serve(&ledger, false).await;
    first_proofs(&first_base, &paths[paths.len() / 2..], 500).await;
    let (cold_base, _) = serve(&ledger, false).await;
    let before = tile_reads();
    let cold = run_wrk(wrk, &cold_base, &script, "verifier, cold (no cache)").await;
    let after = tile_reads();
    println!(
        "cold run tile reads: {} from PostgreSQL, {} from the verifier's caches",
        after.0 - before.0,
        after.1 - before.1
    );
    // Warm: bundle cache on, the working set fetched once.
    let (warm_base, _) = serve(&ledger, true).await;
    let http = reqwest::Client::new();
    let www = out.join("www");
    let _ = std::fs::remove_dir_all(&www);
    std::fs::create_dir_all(www.join("v1/proofs")).expect("www");
    let t = Instant::now();
    for p in &paths {
        let body = http
            .get(format!("{warm_base}{p}"))
            .send()
            .await
            .expect("prefetch")
            .bytes()
            .await
            .expect("body");
        std::fs::write(www.join(&p[1..]), &body).expect("nginx file");
    }
    println!(
        "prefetch: {} bundles sequentially in {:.1} s (one client, one at a time)",
        paths.len(),
        t.elapsed().as_secs_f64()
    );
    let warm = run_wrk(wrk, &warm_base, &script, "verifier, warm (bundle cache)").await;

    // nginx serving the same bytes from files.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let conf = out.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2;\ndaemon off;\npid {o}/nginx.pid;\nerror_log {o}/nginx-error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  default_type application/json;\n  keepalive_requests 1000000;\n\
               server {{\n    listen 127.0.0.1:{port};\n    root {o}/www;\n    location / {{ try_files $uri =404; }}\n  }}\n}}\n",
            o = out.display()
        ),
    )
    .expect("nginx.conf");
    let mut ng = Command::new(nginx)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx");
    let nginx_base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if http
            .get(format!("{nginx_base}{}", paths[0]))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ngx = run_wrk(wrk, &nginx_base, &script, "nginx, same bytes from files").await;
    // Stop the master with its own signal handling so its workers exit too
    // (SIGKILL on the master would orphan them).
    let _ = Command::new(nginx)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(&out)
        .args(["-s", "stop"])
        .status();
    let _ = ng.wait();
    println!(
        "ratio verifier/nginx: warm {:.2}, cold {:.2} (throughput); targets >= 20,000 proofs/s, p99 < 10 ms",
        warm.0 / ngx.0,
        cold.0 / ngx.0
    );
}
