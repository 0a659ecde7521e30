//! `bench/proofs`: proof lookups over HTTP on loopback against a ledger of
//! ANCHORD_BENCH_ENTRIES (default 10,000,000) entries in 100,000-entry
//! blocks, from a separate load generator (Debian's `wrk`), cold (bundle
//! cache off: every request assembles its bundle from PostgreSQL) and warm
//! (bundle cache on, working set fetched once); then the same response bytes
//! served by nginx from files, same wrk settings, and the ratio.
//!
//! Needs PostgreSQL (`scripts/services up`), `wrk` and `nginx`
//! (`scripts/test-peers`). Loading 10M entries takes minutes: with
//! ANCHORD_BENCH_DB the loaded ledger is kept and reused.
//! The size is the first numeric argument (`bench/proofs 1000000`).
//! Proofs come from tiles (`core::tiles`, migration 0006), one statement
//! per proof (`Ledger::proof_by_hash`). Cold means: the verifier just
//! started and, when `bench/proofs` runs its own cluster
//! (ANCHORD_BENCH_RESTART), PostgreSQL restarted with its files evicted from
//! the OS page cache; the first 500 proofs after that, timed one by one,
//! and the plan of one cold proof (pages read) are printed, then a wrk run
//! over distinct entries never asked before.

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
    write_key(out);
    let have = ledger.next_seq().await.expect("next_seq");
    if have == n {
        println!("load:   {n} entries already in the kept database (ANCHORD_BENCH_DB)");
    } else {
        assert_eq!(
            have, 0,
            "the kept database holds {have} entries, not {n}: drop it or pick another ANCHORD_BENCH_DB"
        );
        append_all(ledger, n).await;
    }
    seal_all(ledger, n, out).await;
}

async fn append_all(ledger: &Ledger, n: u64) {
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
}

async fn seal_all(ledger: &Ledger, n: u64, out: &Path) {
    let key = out.join("sealer.key");
    let bc = BatcherConfig {
        block_max_entries: 100_000,
        origin: "anchord.bench/ledger".into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let t = Instant::now();
    let mut tries = 0;
    let done = || async {
        ledger
            .block_containing(n - 1)
            .await
            .expect("block")
            .is_some()
    };
    if done().await {
        return;
    }
    loop {
        match anchord_batcher::seal_once(&bc, SUITE, ledger)
            .await
            .expect("seal")
        {
            Some(_) if done().await => break,
            Some(_) => {}
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

fn write_key(out: &Path) {
    let signer = NoteSigner::from_seed("anchord.bench/ledger", ALG_ED25519, &[9; 32]).expect("key");
    std::fs::write(out.join("sealer.key"), signer.private_key_text()).expect("key file");
}

/// The bench's database: a fresh one dropped at the end, or the kept
/// database ANCHORD_BENCH_DB (created when missing).
async fn database() -> (Option<anchord_testkit::TestDb>, String) {
    let Ok(name) = std::env::var("ANCHORD_BENCH_DB") else {
        let (db, _) = anchord_testkit::TestDb::migrated().await;
        let url = db.url().to_owned();
        return (Some(db), url);
    };
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "ANCHORD_BENCH_DB: letters, digits and _ only"
    );
    let admin = std::env::var(anchord_testkit::PG_URL_VAR)
        .unwrap_or_else(|_| anchord_testkit::DEFAULT_PG_URL.to_owned());
    let c = pg_client(&admin).await;
    let exists = c
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("pg_database")
        .is_some();
    if !exists {
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the kept database");
    }
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("{admin}: not a postgres:// URL"),
    };
    let ledger = Ledger::connect(&anchord_ledger::DatabaseConfig::from_url(&url)).expect("ledger");
    ledger.migrate().await.expect("migrate the kept database");
    (None, url)
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(conn);
    c
}

/// Disk use of the ledger (the database, and its largest parts).
async fn disk_use(url: &str, n: u64) {
    let c = pg_client(url).await;
    let total: i64 = c
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .expect("size")
        .get(0);
    let parts = c
        .query(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
             ORDER BY 2 DESC LIMIT 5",
            &[],
        )
        .await
        .expect("sizes");
    let parts: Vec<String> = parts
        .iter()
        .map(|r| {
            let b: i64 = r.get(1);
            format!("{} {:.0} MB", r.get::<_, String>(0), b as f64 / 1e6)
        })
        .collect();
    println!(
        "disk:   {:.2} GB for {n} entries ({:.0} bytes/entry; {})",
        total as f64 / 1e9,
        total as f64 / n.max(1) as f64,
        parts.join(", ")
    );
}

/// What one cold proof reads: the plan of its one statement, with buffers.
async fn explain(ledger: &Ledger, hash: &[u8]) {
    let plan = ledger.explain_proof_by_hash(hash).await.expect("explain");
    let buffers: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("Buffers:") || l.contains("Execution Time"))
        .map(str::trim)
        .collect();
    println!(
        "one cold proof, one statement (EXPLAIN ANALYZE, BUFFERS; read = from the OS or disk): {}",
        buffers.first().copied().unwrap_or("?")
    );
    if std::env::var_os("ANCHORD_BENCH_PLAN").is_some() {
        println!("{plan}");
    } else if let Some(t) = buffers.last() {
        println!("  {t} (ANCHORD_BENCH_PLAN=1 prints the whole plan)");
    }
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

/// A wrk script walking the paths of `file` from a random start.
fn wrk_script(out: &Path, name: &str, paths: &[String]) -> PathBuf {
    let file = out.join(format!("{name}.txt"));
    std::fs::write(&file, paths.join("\n") + "\n").expect("paths");
    let script = out.join(format!("{name}.lua"));
    std::fs::write(
        &script,
        format!(
            "local paths = {{}}\nfor l in io.lines(\"{}\") do paths[#paths + 1] = l end\n\
             local i = math.random(#paths)\n\
             request = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n",
            file.display()
        ),
    )
    .expect("lua");
    script
}

/// `k` pseudo-random entries of `0..n` from `seed` (xorshift).
fn picks(n: u64, k: u64, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..k)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect()
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
    let cold_sample = env_or("ANCHORD_BENCH_COLD_SAMPLE", 300_000);
    println!(
        "bench/proofs: {n} entries; cold: {cold_sample} distinct entries, warm: {sample}; 2 wrk threads"
    );
    let (_db, url) = database().await;
    let connect = || {
        let mut dbc = anchord_ledger::DatabaseConfig::from_url(&url);
        dbc.max_connections = 16;
        Ledger::connect(&dbc).expect("ledger")
    };
    let ledger = connect();
    ledger.ensure_suite(SUITE).await.expect("suite");
    load(&ledger, n, &out).await;
    disk_use(&url, n).await;

    // The requests: fixed random samples of evidence hashes (the cold one
    // from another seed: entries no earlier request touched).
    let path = |i: u64| format!("/v1/proofs/{}", hex::encode(evidence(i)));
    let paths: Vec<String> = picks(n, sample, 0x9e37_79b9_7f4a_7c15)
        .into_iter()
        .map(path)
        .collect();
    let cold_paths: Vec<String> = picks(n, cold_sample, 0x2545_f491_4f6c_dd1d)
        .into_iter()
        .map(path)
        .collect();
    let script = wrk_script(&out, "paths", &paths);
    let cold_script = wrk_script(&out, "cold-paths", &cold_paths);

    // Cold: PostgreSQL restarted with its files out of the page cache (when
    // the bench runs its own cluster), a verifier just started (every cache
    // empty), the bundle cache off: every request assembles its bundle from
    // what PostgreSQL reads.
    drop(ledger);
    let ledger = match std::env::var("ANCHORD_BENCH_RESTART") {
        Ok(cmd) => {
            let st = Command::new("bash")
                .args(["-c", &cmd])
                .status()
                .expect("restart command");
            assert!(st.success(), "{cmd}: {st}");
            println!(
                "cold:   PostgreSQL restarted, its files evicted from the OS page cache (fsync + POSIX_FADV_DONTNEED), verifier started"
            );
            connect()
        }
        Err(_) => {
            println!(
                "cold:   verifier started; PostgreSQL NOT restarted (shared cluster: its buffer cache and the OS page cache are warm from the load)"
            );
            connect()
        }
    };
    let probe = picks(n, 1, 0x1234_5678_9abc_def1)[0];
    explain(&ledger, &evidence(probe)).await;
    let first: Vec<String> = picks(n, 500, 0x0bad_cafe_f00d_d00d)
        .into_iter()
        .map(path)
        .collect();
    let (first_base, _) = serve(&ledger, false).await;
    first_proofs(&first_base, &first, 500).await;
    let (cold_base, _) = serve(&ledger, false).await;
    let before = tile_reads();
    let cold = run_wrk(
        wrk,
        &cold_base,
        &cold_script,
        "verifier, cold (distinct entries)",
    )
    .await;
    let after = tile_reads();
    println!(
        "cold run tile reads: {} from PostgreSQL, {} from the verifier's caches",
        after.0 - before.0,
        after.1 - before.1
    );
    // The same requests again on a fresh verifier: PostgreSQL now holds
    // what the cold run read (up to its buffers), the verifier nothing. The
    // difference to the cold run is what reading from disk costs; the rest
    // is assembling bundles (CPU, shared with wrk and PostgreSQL).
    let (again_base, _) = serve(&ledger, false).await;
    run_wrk(
        wrk,
        &again_base,
        &cold_script,
        "verifier, no bundle cache, PostgreSQL warm",
    )
    .await;
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
