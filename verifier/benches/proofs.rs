//! `bench/proofs`: proof lookups over HTTP on loopback against a ledger of
//! ANCHORD_BENCH_ENTRIES (default 10,000,000) entries in 100,000-entry
//! blocks, from a separate load generator (Debian's `wrk`), and the same
//! response bytes served by nginx from files, in one run:
//!
//! - the disk's random-read limit where the cluster keeps its files (8 KiB
//!   O_DIRECT reads at random offsets of its largest files, as many threads
//!   as wrk has connections): the raw limit of a disk-cold proof;
//! - cold, "restart": PostgreSQL and the verifier restarted, the OS page
//!   cache kept (the wording), bundle cache off, entries never
//!   asked before; ANCHORD_BENCH_RUNS (3) runs, each after its own restart;
//! - cold, "disk-cold": the same with the cluster's files evicted from the
//!   page cache before each run, with the pages one proof's statement reads
//!   (`EXPLAIN (ANALYZE, BUFFERS)`) and what that makes of the disk's limit;
//!   one more run with a pool of 16 connections (the pool's share);
//! - warm (bundle cache on, working set fetched once) and nginx, run by run
//!   interleaved, with the ratio of the medians.
//!
//! Each wrk run lasts ANCHORD_BENCH_SECONDS (5); figures are medians of the
//! runs. Needs PostgreSQL (`scripts/services up`), `wrk` and `nginx`
//! (`scripts/test-peers`); `bench/proofs` runs its own cluster so that it
//! can restart it. Loading 10M entries takes minutes: with ANCHORD_BENCH_DB
//! the loaded ledger is kept and reused. The size is the first numeric
//! argument (`bench/proofs 1000000`).

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
use tokio_util::sync::CancellationToken;

const SUITE: HashSuite = HashSuite::Sha256;

/// The anchord binary's allocator (`anchord/src/main.rs`), so that the
/// verifier here allocates as it does in the service.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

async fn load(ledger: &Ledger, n: u64, out: &Path) -> bool {
    write_key(out);
    let have = ledger.next_seq().await.expect("next_seq");
    let fresh = have != n;
    if !fresh {
        println!("load:   {n} entries already in the kept database (ANCHORD_BENCH_DB)");
    } else {
        assert_eq!(
            have, 0,
            "the kept database holds {have} entries, not {n}: drop it or pick another ANCHORD_BENCH_DB"
        );
        append_all(ledger, n).await;
    }
    seal_all(ledger, n, out).await;
    // The filters of the closed partitions, as the batcher's leader builds
    // them (proofs start at the first partition that may hold their key).
    let t = std::time::Instant::now();
    let mut built = 0;
    while anchord_batcher::build_partition_filter_once(ledger)
        .await
        .expect("partition filter")
    {
        built += 1;
    }
    if built > 0 {
        println!(
            "filters: {built} of closed partitions built in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    fresh
}

/// VACUUM (ANALYZE) the ledger, as autovacuum does to an insert-only
/// table in time: tuples get their hint bits and pages their visibility,
/// so that a cold read does not write (set hint bits, log the page) as
/// the first read after a bulk load does.
async fn vacuum(url: &str) {
    let t = Instant::now();
    pg_client(url)
        .await
        .batch_execute("VACUUM (ANALYZE)")
        .await
        .expect("vacuum");
    println!(
        "vacuum: VACUUM (ANALYZE) in {:.1} s (hint bits and visibility set, as autovacuum would)",
        t.elapsed().as_secs_f64()
    );
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

/// The evidence hashes of entries `seqs` of the ledger at `url`.
async fn ledger_hashes(url: &str, mut seqs: Vec<u64>) -> std::collections::HashMap<u64, Vec<u8>> {
    seqs.sort_unstable();
    seqs.dedup();
    let ids: Vec<i64> = seqs.iter().map(|&s| s as i64).collect();
    let rows = pg_client(url)
        .await
        .query(
            "SELECT seq, evidence_hash FROM evidence WHERE seq = ANY($1)",
            &[&ids],
        )
        .await
        .expect("evidence hashes");
    assert_eq!(
        rows.len(),
        ids.len(),
        "ANCHORD_BENCH_HASHES=ledger: entries missing"
    );
    println!(
        "hashes: {} read from the ledger by sequence number (ANCHORD_BENCH_HASHES=ledger)",
        rows.len()
    );
    rows.iter()
        .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
        .collect()
}

/// What one cold proof reads: the plan of its one statement, with
/// buffers; returns the pages it touched (hit, read: read = from the OS
/// page cache or the disk).
async fn explain(ledger: &Ledger, hash: &[u8]) -> (u64, u64) {
    let plan = ledger.explain_proof_by_hash(hash).await.expect("explain");
    let buffers: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("Buffers:") || l.contains("Execution Time"))
        .map(str::trim)
        .collect();
    let first = buffers.first().copied().unwrap_or("?");
    let count = |what: &str| {
        first
            .split_whitespace()
            .find_map(|w| w.strip_prefix(what))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    if std::env::var_os("ANCHORD_BENCH_PLAN").is_some() {
        println!("{plan}");
    }
    (count("hit="), count("read="))
}

/// Server-side latencies of one verifier's requests: (when it began, how
/// long it took), to tell a start-up transient from the steady state.
#[derive(Default)]
struct Latencies(std::sync::Mutex<Vec<(Instant, std::time::Duration)>>);

impl Latencies {
    /// The p99 over time windows of `window` ms, and after the first second.
    fn report(&self, window_ms: u64) -> String {
        let samples = self.0.lock().expect("latencies").clone();
        let Some(t0) = samples.iter().map(|s| s.0).min() else {
            return "no requests".into();
        };
        let p99 = |mut v: Vec<f64>| {
            if v.is_empty() {
                return f64::NAN;
            }
            v.sort_by(f64::total_cmp);
            v[(v.len() * 99 / 100).min(v.len() - 1)]
        };
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let mut windows: Vec<Vec<f64>> = Vec::new();
        for (at, took) in &samples {
            let w = (ms(*at - t0) as u64 / window_ms) as usize;
            if windows.len() <= w {
                windows.resize(w + 1, Vec::new());
            }
            windows[w].push(ms(*took));
        }
        let later: Vec<f64> = samples
            .iter()
            .filter(|s| s.0 - t0 >= std::time::Duration::from_secs(1))
            .map(|s| ms(s.1))
            .collect();
        let all: Vec<f64> = samples.iter().map(|s| ms(s.1)).collect();
        let by_window: Vec<String> = windows
            .into_iter()
            .map(|w| format!("{}:{:.1}", w.len(), p99(w)))
            .collect();
        format!(
            "server-side p99 {:.2} ms, after the first second {:.2} ms; per {window_ms} ms (requests:p99 ms): {}",
            p99(all),
            p99(later),
            by_window.join(" ")
        )
    }
}

async fn serve(ledger: &Ledger, cache: bool) -> (String, Arc<Prover>) {
    let (base, prover, _) = serve_timed(ledger, cache).await;
    (base, prover)
}

async fn serve_timed(ledger: &Ledger, cache: bool) -> (String, Arc<Prover>, Arc<Latencies>) {
    let signer = NoteSigner::from_seed("anchord.bench/ledger", ALG_ED25519, &[9; 32]).expect("key");
    let config = VerifierConfig {
        rate_per_second: 10_000_000,
        rate_burst: 10_000_000,
        bundle_cache_entries: if cache { 1_000_000 } else { 0 },
        anchored_cache_ttl_s: 3600,
        pending_cache_ttl_s: if cache { 3600 } else { 0 },
        proof_batch_max: env_or("ANCHORD_BENCH_BATCH_MAX", 64) as usize,
        proof_batches_in_flight: env_or(
            "ANCHORD_BENCH_IN_FLIGHT",
            VerifierConfig::default().proof_batches_in_flight as u64,
        ) as usize,
        ..VerifierConfig::default()
    };
    let keys = DeclaredKeys {
        sealer: signer.verifier().vkey(),
        witnesses: vec![],
        quorum: 0,
    };
    let prover = Arc::new(Prover::new(ledger.clone(), SUITE, keys, &config));
    // As `anchord_verifier::run` starts it: the latest checkpoint, the
    // anchors and the block log's right edge read before the first
    // request, then refreshed in the background (until the bench exits).
    prover.preload().await.expect("preload");
    tokio::spawn(prover.clone().refresh_loop(CancellationToken::new()));
    tokio::spawn(prover.clone().gather_loop(CancellationToken::new()));
    let latencies = Arc::new(Latencies::default());
    let recorder = latencies.clone();
    let app =
        anchord_verifier::api::router(prover.clone(), &config).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let recorder = recorder.clone();
                async move {
                    let at = Instant::now();
                    let response = next.run(req).await;
                    recorder
                        .0
                        .lock()
                        .expect("latencies")
                        .push((at, at.elapsed()));
                    response
                }
            },
        ));
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
    (format!("http://{addr}"), prover, latencies)
}

/// The machine's CPU times from /proc/stat (user, nice, system, idle,
/// iowait, irq, softirq, steal), in ticks.
fn cpu_times() -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() == 8).then_some(v)
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

async fn run_wrk(wrk: &Path, base: &str, script: &Path, what: &str, secs: u64) -> (f64, f64) {
    let conns = connections();
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
    println!("  {what:<44} {rps:>8.0} proofs/s   p99 {p99:>8.2} ms  {non2xx}");
    (rps, p99)
}

/// wrk's connections (and the verifier's pool: one statement per cold
/// proof, so as many connections as concurrent requests).
fn connections() -> u64 {
    env_or("ANCHORD_BENCH_CONNECTIONS", 64)
}

/// The median of a few runs' (proofs/s, p99 ms), each taken separately.
fn median(runs: &[(f64, f64)]) -> (f64, f64) {
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (
        mid(runs.iter().map(|r| r.0).collect()),
        mid(runs.iter().map(|r| r.1).collect()),
    )
}

/// The disk's random-read limit where the cluster keeps its files: 8 KiB
/// reads at random 8 KiB-aligned offsets of the cluster's largest data
/// files, O_DIRECT (no page cache), from `threads` threads at once (wrk's
/// connections) for `secs` seconds. Returns (reads/s, p50 ms, p99 ms).
fn disk_limit(dir: &Path, threads: u64, secs: u64) -> Option<(f64, f64, f64)> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(p);
            } else if m.len() >= 64 << 20 {
                files.push((m.len(), p));
            }
        }
    }
    files.sort_unstable_by(|a, b| b.cmp(a));
    files.truncate(8);
    if files.is_empty() {
        return None;
    }
    const O_DIRECT: i32 = 0o40000; // Linux x86_64 and aarch64: libc::O_DIRECT
    let opened: Vec<(u64, std::fs::File)> = files
        .iter()
        .filter_map(|(len, p)| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(O_DIRECT)
                .open(p)
                .ok()
                .map(|f| (len / 8192, f))
        })
        .collect();
    let opened = Arc::new(opened);
    let stop = Instant::now() + std::time::Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let opened = opened.clone();
            std::thread::spawn(move || {
                // An 8 KiB buffer aligned to 4 KiB (O_DIRECT needs it).
                let mut raw = vec![0u8; 8192 + 4096];
                let off = raw.as_ptr().align_offset(4096);
                let buf = &mut raw[off..off + 8192];
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1).wrapping_mul(0xff51_afd7_ed55_8ccd);
                let mut lat = Vec::new();
                while Instant::now() < stop {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (pages, f) = &opened[(x % opened.len() as u64) as usize];
                    let page = (x >> 8) % pages;
                    let s = Instant::now();
                    if f.read_at(buf, page * 8192).is_err() {
                        return Vec::new();
                    }
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect();
    if all.is_empty() {
        return None;
    }
    all.sort_by(f64::total_cmp);
    let q = |f: f64| all[((all.len() as f64 * f) as usize).min(all.len() - 1)];
    Some((all.len() as f64 / secs as f64, q(0.5), q(0.99)))
}

/// Restart the bench's own PostgreSQL: with its files evicted from the OS
/// page cache (`evict`), or keeping it. False without a private cluster.
fn restart_postgres(evict: bool) -> bool {
    let Ok(cmd) = std::env::var("ANCHORD_BENCH_RESTART") else {
        return false;
    };
    let cmd = if evict {
        cmd
    } else {
        format!("{cmd} keep-cache")
    };
    let st = Command::new("bash")
        .args(["-c", &cmd])
        .status()
        .expect("restart command");
    assert!(st.success(), "{cmd}: {st}");
    true
}

/// The ledger size: the first numeric command-line argument
/// (`bench/proofs 1000000`), else ANCHORD_BENCH_ENTRIES, else 10,000,000.
fn size_arg() -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.replace(['_', ','], "").parse().ok())
        .unwrap_or_else(|| env_or("ANCHORD_BENCH_ENTRIES", 10_000_000))
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
    let cold_sample = env_or("ANCHORD_BENCH_COLD_SAMPLE", 200_000);
    println!(
        "bench/proofs: {n} entries; cold: {cold_sample} distinct entries per run, warm: {sample}; wrk: 2 threads, {} connections; verifier pool: {} connections",
        connections(),
        connections()
    );
    let (_db, url) = anchord_testkit::bench_database().await;
    let connect = || {
        let mut dbc = anchord_ledger::DatabaseConfig::from_url(&url);
        dbc.max_connections = connections() as usize;
        Ledger::connect(&dbc).expect("ledger")
    };
    let ledger = connect();
    ledger.ensure_suite(SUITE).await.expect("suite");
    let fresh = load(&ledger, n, &out).await;
    // After a fresh load, or when asked (ANCHORD_BENCH_VACUUM=1; =0 never).
    match std::env::var("ANCHORD_BENCH_VACUUM").as_deref() {
        Ok("0") => {}
        Ok("1") => vacuum(&url).await,
        _ if fresh => vacuum(&url).await,
        _ => {}
    }
    disk_use(&url, n).await;

    // The requests: fixed random samples of evidence hashes (the cold one
    // from another seed: entries no earlier request touched).
    // ANCHORD_BENCH_HASHES=ledger: any kept ledger (bench/scale's), the
    // hashes read from it by sequence number instead of `evidence(i)`.
    let from_ledger = std::env::var("ANCHORD_BENCH_HASHES").is_ok_and(|v| v == "ledger");
    let hashes = if from_ledger {
        let mut seqs = picks(n, sample, 0x9e37_79b9_7f4a_7c15);
        for seed in cold_seeds() {
            seqs.extend(picks(n, cold_sample, seed));
        }
        seqs.extend(picks(n, 500, 0x0bad_cafe_f00d_d00d));
        seqs.extend(picks(n, 5, 0x1234_5678_9abc_def1));
        ledger_hashes(&url, seqs).await
    } else {
        Default::default()
    };
    let evidence = |i: u64| match hashes.get(&i) {
        Some(h) => h.clone(),
        None => evidence(i),
    };
    let path = |i: u64| format!("/v1/proofs/{}", hex::encode(evidence(i)));
    let paths: Vec<String> = picks(n, sample, 0x9e37_79b9_7f4a_7c15)
        .into_iter()
        .map(path)
        .collect();
    let script = wrk_script(&out, "paths", &paths);
    // One set of distinct entries per cold run, none asked before.
    let cold_scripts: Vec<PathBuf> = cold_seeds()
        .iter()
        .enumerate()
        .map(|(k, &seed)| {
            let p: Vec<String> = picks(n, cold_sample, seed).into_iter().map(path).collect();
            wrk_script(&out, &format!("cold-paths-{k}"), &p)
        })
        .collect();
    let probes: Vec<Vec<u8>> = picks(n, 5, 0x1234_5678_9abc_def1)
        .into_iter()
        .map(evidence)
        .collect();
    let runs = env_or("ANCHORD_BENCH_RUNS", 3).clamp(1, 4) as usize;
    let secs = env_or("ANCHORD_BENCH_SECONDS", 5);
    let conns = connections();

    // (a) The disk's random-read limit, where the cluster keeps its files.
    let disk = std::env::var("ANCHORD_PG_DIR")
        .ok()
        .and_then(|d| disk_limit(Path::new(&d), conns, 5));
    match disk {
        Some((iops, p50, p99)) => println!(
            "disk:   {iops:.0} random 8 KiB reads/s (O_DIRECT, {conns} threads, 5 s, the cluster's largest files), p50 {p50:.2} ms, p99 {p99:.2} ms: the raw limit of a disk-cold proof"
        ),
        None => println!("disk:   random-read limit not measured (no private cluster directory)"),
    }

    // (b) Cold, twice over: "restart" = PostgreSQL and the verifier
    // restarted, the OS page cache kept (the wording); "disk-cold"
    // = the same with the cluster's files evicted from the page cache.
    // Every run: a fresh restart, a fresh verifier (bundle cache off:
    // every request assembles its bundle), entries never asked before.
    drop(ledger);
    let private = std::env::var("ANCHORD_BENCH_RESTART").is_ok();
    if !private {
        println!(
            "cold:   PostgreSQL NOT restarted (shared cluster: its buffer cache and the OS page cache are warm from the load)"
        );
    }
    let mut restart_runs = Vec::new();
    let mut disk_runs = Vec::new();
    let mut per_proof = Vec::new();
    let mut pages = Vec::new();
    for (k, cold_script) in cold_scripts.iter().enumerate().take(2 * runs) {
        let evict = k >= runs;
        let what = if evict { "disk-cold" } else { "restart" };
        restart_postgres(evict);
        let ledger = connect();
        if evict {
            // What one proof reads with nothing cached (before wrk: the
            // plan's pages come from the disk).
            let (hit, read) = explain(&ledger, &probes[k % probes.len()]).await;
            pages.push((hit, read));
        }
        if evict && k == runs {
            let first: Vec<String> = picks(n, 500, 0x0bad_cafe_f00d_d00d)
                .into_iter()
                .map(path)
                .collect();
            let (first_base, _) = serve(&ledger, false).await;
            first_proofs(&first_base, &first, 500).await;
        }
        let (base, prover, latencies) = serve_timed(&ledger, false).await;
        let cpu_before = cpu_times();
        let r = run_wrk(
            wrk,
            &base,
            cold_script,
            &format!("verifier, cold ({what}) run {}", k % runs + 1),
            secs,
        )
        .await;
        println!("    {}", latencies.report(500));
        if let (Some(a), Some(b)) = (cpu_before, cpu_times()) {
            let total: u64 = b.iter().zip(&a).map(|(b, a)| b - a).sum();
            let share = |i: usize| 100.0 * (b[i] - a[i]) as f64 / total.max(1) as f64;
            println!(
                "    machine during the run: user {:.0}%, system {:.0}%, idle {:.0}%, iowait {:.0}%, steal {:.0}% (the hypervisor's)",
                share(0) + share(1),
                share(2) + share(5) + share(6),
                share(3),
                share(4),
                share(7)
            );
        }
        let c = prover.counts();
        let proofs = c.proofs.load(std::sync::atomic::Ordering::Relaxed);
        let all = c.queries.load(std::sync::atomic::Ordering::Relaxed);
        let gathered = c.proof_queries.load(std::sync::atomic::Ordering::Relaxed);
        per_proof.push((proofs, all, gathered));
        if evict {
            disk_runs.push(r);
        } else {
            restart_runs.push(r);
        }
    }
    let (proofs, all, gathered) = per_proof
        .iter()
        .fold((0, 0, 0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
    println!(
        "cold statements: {all} for {proofs} proofs ({:.4} per proof), of which {gathered} proof statements ({:.1} proofs gathered per statement; at most {} per statement, {} statements at once); the others: first proofs of a block and the periodic refresh",
        all as f64 / proofs.max(1) as f64,
        proofs as f64 / gathered.max(1) as f64,
        env_or("ANCHORD_BENCH_BATCH_MAX", 64),
        env_or(
            "ANCHORD_BENCH_IN_FLIGHT",
            VerifierConfig::default().proof_batches_in_flight as u64
        ),
    );
    let restart = median(&restart_runs);
    let disk_cold = median(&disk_runs);
    if !pages.is_empty() {
        let mut reads: Vec<u64> = pages.iter().map(|p| p.1).collect();
        reads.sort_unstable();
        let read = reads[reads.len() / 2];
        let hit = pages.iter().map(|p| p.0).sum::<u64>() / pages.len() as u64;
        println!(
            "pages:  one disk-cold proof's statement (EXPLAIN (ANALYZE, BUFFERS), median of {}): {read} pages read from the OS/disk, about {hit} hit in PostgreSQL's buffers",
            pages.len()
        );
        if let Some((iops, _, _)) = disk {
            println!(
                "        disk-cold {:.0} proofs/s x {read} pages = {:.0} reads/s = {:.2} of the disk's random-read limit ({iops:.0}/s; bound: {:.0} proofs/s)",
                disk_cold.0,
                disk_cold.0 * read as f64,
                disk_cold.0 * read as f64 / iops,
                iops / read.max(1) as f64
            );
        }
    }
    // The pool's share: one more disk-cold run with a pool of 16.
    if private && env_or("ANCHORD_BENCH_POOL_COMPARE", 1) == 1 && cold_scripts.len() > 2 * runs {
        restart_postgres(true);
        let mut dbc = anchord_ledger::DatabaseConfig::from_url(&url);
        dbc.max_connections = 16;
        let small = Ledger::connect(&dbc).expect("ledger");
        let (base, _) = serve(&small, false).await;
        run_wrk(
            wrk,
            &base,
            &cold_scripts[2 * runs],
            "verifier, cold (disk-cold), pool of 16",
            secs,
        )
        .await;
    }
    // The last cold entries again on a fresh verifier: PostgreSQL now
    // holds what that run read; the difference is the disk's share.
    let ledger = connect();
    let (again_base, _) = serve(&ledger, false).await;
    run_wrk(
        wrk,
        &again_base,
        &cold_scripts[2 * runs - 1],
        "verifier, no bundle cache, PostgreSQL warm",
        secs,
    )
    .await;

    // (c) Warm (bundle cache on, the working set fetched once) and nginx
    // serving the same bytes from files, interleaved run by run.
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
    let mut warm_runs = Vec::new();
    let mut nginx_runs = Vec::new();
    for k in 1..=runs {
        warm_runs.push(
            run_wrk(
                wrk,
                &warm_base,
                &script,
                &format!("verifier, warm (bundle cache) run {k}"),
                secs,
            )
            .await,
        );
        nginx_runs.push(
            run_wrk(
                wrk,
                &nginx_base,
                &script,
                &format!("nginx, same bytes from files run {k}"),
                secs,
            )
            .await,
        );
    }
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
    let warm = median(&warm_runs);
    let ngx = median(&nginx_runs);
    let pairs: Vec<String> = warm_runs
        .iter()
        .zip(&nginx_runs)
        .map(|(w, x)| format!("{:.2}", w.0 / x.0))
        .collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "summary (medians of {runs} runs of {secs} s, wrk -t2 -c{conns}; load average {}):",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  cold, restart (PostgreSQL + verifier restarted, page cache kept): {:.0} proofs/s, p99 {:.2} ms",
        restart.0, restart.1
    );
    println!(
        "  cold, disk-cold (the same, the cluster's files evicted):          {:.0} proofs/s, p99 {:.2} ms",
        disk_cold.0, disk_cold.1
    );
    println!(
        "  warm: {:.0} proofs/s, p99 {:.2} ms; nginx: {:.0}/s, p99 {:.2} ms; warm/nginx {:.2} (run by run: {})",
        warm.0,
        warm.1,
        ngx.0,
        ngx.1,
        warm.0 / ngx.0,
        pairs.join(", ")
    );
    println!("  targets: cold >= 20,000 proofs/s with p99 < 10 ms; warm >= 0.8 of nginx");
}

/// Seeds of the cold runs' entry sets: `runs` restart runs, `runs`
/// disk-cold runs, one with a small pool (up to 4 runs each).
fn cold_seeds() -> Vec<u64> {
    let runs = env_or("ANCHORD_BENCH_RUNS", 3).clamp(1, 4);
    (0..2 * runs + 1)
        .map(|k| 0x2545_f491_4f6c_dd1d_u64.wrapping_add(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
        .collect()
}
