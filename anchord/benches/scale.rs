//! `bench/scale`: sustained ingest from an empty ledger to N entries (default
//! 50,000,000), the rate printed per segment (5,000,000 entries, or N/10 for
//! smaller runs) with the batcher sealing along and its lag, then the time
//! the batcher needs to catch up, bytes per entry and the disk use. The proof
//! figures at that size come from `bench/proofs` (the script runs it next).
//!
//! The writer is the ingest stage's, without Kafka: realistic messages from
//! the load generator are decoded and validated as the consumer does
//! (`message::decode`), and written through the same two-stage pipeline
//! (`Ledger::prepare_append` for the next batch while `commit_prepared`
//! writes the previous one). The broker's throughput does not depend on the
//! ledger's size and is measured by `bench/ingest`; this measures what does.
//!
//! Per segment it prints, besides the wall-clock rate, the CPU time per entry
//! of PostgreSQL (the whole cluster: every server process, from `/proc`,
//! when ANCHORD_PG_DIR names the cluster's directory, as `bench/scale` sets
//! it; else the processes in `pg_stat_activity`) and of this process, and
//! the load average: on shared cores the wall-clock rate follows the
//! contention, CPU per entry follows the ledger. "No cliff" is judged on
//! both ratios, last segment / first.
//!
//! Environment: ANCHORD_SCALE_ENTRIES (50000000), ANCHORD_SCALE_BATCH (10000),
//! ANCHORD_SCALE_BLOCK (100000 entries per block), ANCHORD_SCALE_PARTITION
//! (the ledger's partition size, default the ledger's 10000000), ANCHORD_BENCH_DB (keep the
//! ledger in this database, created when missing and required empty, for
//! `bench/proofs` to reuse: it seals with the proof bench's key and origin).
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed unwrap is a failed run

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anchord_batcher::config::BatcherConfig;
use anchord_core::HashSuite;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_ingest::loadgen::Generator;
use anchord_ingest::message::{self, Rules};
use anchord_ledger::{AppendBatch, AppendHint, Ledger, Source};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SUITE: HashSuite = HashSuite::Sha256;
const TOPIC: &str = "bench.scale";
const PARTITIONS: u64 = 16;
const TENANTS: [&str; 5] = ["icbc-sh", "ccb-bj", "boc-gd", "abc-zj", "cmb-sz"];
/// The sealing key and origin of `verifier/benches/proofs.rs`, so that a kept
/// ledger serves its proofs (the verifier there declares this sealer key).
const ORIGIN: &str = "anchord.bench/ledger";
const SEAL_SEED: [u8; 32] = [9; 32];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let n = env_or("ANCHORD_SCALE_ENTRIES", 50_000_000);
    let batch = env_or("ANCHORD_SCALE_BATCH", 10_000);
    let block = env_or("ANCHORD_SCALE_BLOCK", 100_000);
    let segment = if n >= 50_000_000 {
        5_000_000
    } else {
        (n / 10).max(1)
    };
    println!(
        "bench/scale: {n} entries from empty, batches of {batch}, blocks of {block}, \
         rate per {segment}-entry segment"
    );
    let (db, url) = anchord_testkit::bench_database().await;
    let mut dbc = anchord_ledger::DatabaseConfig::from_url(&url);
    dbc.max_connections = 8;
    let ledger = Ledger::connect(&dbc).expect("ledger");
    ledger.ensure_suite(SUITE).await.expect("suite");
    let have = ledger.next_seq().await.expect("next_seq");
    assert_eq!(
        have, 0,
        "the ledger holds {have} entries: bench/scale starts from empty (drop ANCHORD_BENCH_DB)"
    );
    let admin = pg_client(&url).await;
    if let Ok(size) = std::env::var("ANCHORD_SCALE_PARTITION") {
        let size: u64 = size.parse().expect("ANCHORD_SCALE_PARTITION: entries");
        admin
            .execute(
                "UPDATE ledger_meta SET value = $1 WHERE key = 'evidence_partition_size'",
                &[&size.to_string()],
            )
            .await
            .unwrap();
    }
    println!(
        "partitions of {} entries",
        admin
            .query_one(
                "SELECT value FROM ledger_meta WHERE key = 'evidence_partition_size'",
                &[]
            )
            .await
            .unwrap()
            .get::<_, String>(0)
    );
    let postmaster = postmaster_pid();
    println!(
        "PostgreSQL CPU: {}",
        match postmaster {
            Some(pid) =>
                format!("the whole cluster (postmaster {pid}, its children and reaped children)"),
            None => "the processes in pg_stat_activity (ANCHORD_PG_DIR not set)".into(),
        }
    );

    // The batcher, sealing along.
    let dir = std::env::temp_dir().join(anchord_testkit::unique("scale"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("sealer.key");
    let signer = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &SEAL_SEED).unwrap();
    std::fs::write(&key, signer.private_key_text()).unwrap();
    let bc = BatcherConfig {
        block_max_entries: block,
        origin: ORIGIN.into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let sealed = Arc::new(AtomicU64::new(0));
    let stop_sealing = CancellationToken::new();
    let sealer = {
        let (ledger, sealed, stop) = (ledger.clone(), sealed.clone(), stop_sealing.clone());
        tokio::spawn(async move {
            let mut seal_secs = 0.0;
            let mut blocks = 0u64;
            while !stop.is_cancelled() {
                match anchord_batcher::seal_once(&bc, SUITE, &ledger)
                    .await
                    .expect("seal")
                {
                    Some(r) => {
                        sealed.fetch_add(r.entries, Ordering::SeqCst);
                        seal_secs += r.seconds;
                        blocks += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            (blocks, seal_secs)
        })
    };

    // The leader's partition filters (ledger schema 10, 11), built as
    // partitions close, as `anchord batcher` does beside its seal loop.
    let filters_built = Arc::new(AtomicU64::new(0));
    let filterer = {
        let (ledger, built, stop) = (ledger.clone(), filters_built.clone(), stop_sealing.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let t = Instant::now();
                if anchord_batcher::build_partition_filter_once(&ledger)
                    .await
                    .expect("identity filter")
                {
                    built.fetch_add(1, Ordering::SeqCst);
                    println!(
                        "partition filter {} built in {:.1} s",
                        built.load(Ordering::SeqCst),
                        t.elapsed().as_secs_f64()
                    );
                } else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    };

    // Messages -> decoded batches (the consumer's work) -> prepare -> commit.
    let rules = Rules {
        tenants: TENANTS.iter().map(|t| t.to_string()).collect(),
        accepted_algs: vec![
            anchord_core::EvidenceAlg::Sha256,
            anchord_core::EvidenceAlg::Sm3,
        ],
        max_message_bytes: 16 * 1024,
    };
    let payload = Arc::new(AtomicU64::new(0));
    let (batch_tx, mut batch_rx) = mpsc::channel::<Arc<AppendBatch>>(1);
    let feeder = {
        let payload = payload.clone();
        tokio::spawn(async move {
            let tenants = TENANTS.iter().map(|t| t.to_string()).collect();
            let g = Generator::new(&anchord_testkit::unique("s"), tenants, 0.0, 0.0);
            let mut i = 0u64;
            while i < n {
                let m = batch.min(n - i);
                let (b, bytes) = tokio::task::block_in_place(|| {
                    let mut bytes = 0u64;
                    let entries = (i..i + m)
                        .map(|k| {
                            let raw = bytes::Bytes::from(g.good(k).to_bytes());
                            bytes += raw.len() as u64;
                            let d = message::decode(&raw, &rules).expect("valid");
                            d.into_entry(
                                Source {
                                    topic: TOPIC.into(),
                                    partition: (k % PARTITIONS) as i32,
                                    offset: (k / PARTITIONS) as i64,
                                },
                                raw,
                            )
                        })
                        .collect();
                    let b = AppendBatch {
                        suite: SUITE,
                        consumer_group: None,
                        received_at_us: anchord_core::time::unix_micros(
                            std::time::SystemTime::now(),
                        ),
                        entries,
                        rejections: vec![],
                        positions: vec![],
                    };
                    (b, bytes)
                });
                payload.fetch_add(bytes, Ordering::Relaxed);
                if batch_tx.send(Arc::new(b)).await.is_err() {
                    return;
                }
                i += m;
            }
        })
    };
    let maybe = Arc::new(AtomicU64::new(0));
    let (prep_tx, mut prep_rx) = mpsc::channel(1);
    let preparer = {
        let (ledger, maybe) = (ledger.clone(), maybe.clone());
        tokio::spawn(async move {
            let mut hint = AppendHint::default();
            while let Some(b) = batch_rx.recv().await {
                let p = ledger.prepare_append(b, &hint).await.expect("prepare");
                maybe.fetch_add(p.identity_check().0.maybe, Ordering::Relaxed);
                hint = p.hint_after(&hint);
                if prep_tx.send(p).await.is_err() {
                    return;
                }
            }
        })
    };

    let started = Instant::now();
    let mut seg_start = Instant::now();
    let mut seg_cpu = (
        pg_cpu(&admin, postmaster).await,
        proc_cpu(std::process::id()),
    );
    let mut load = LoadSampler::default();
    let mut max_lag = 0u64;
    let mut done = 0u64;
    let mut next_mark = segment;
    let mut segs: Vec<Segment> = Vec::new();
    let mut missed = 0u64;
    let mut unfiltered = 0u64;
    while let Some(p) = prep_rx.recv().await {
        let c = ledger.commit_prepared(&p).await.expect("commit");
        if !c.as_predicted {
            missed += 1;
        }
        unfiltered += c.unfiltered_ranges as u64;
        done += c.outcome.accepted() as u64;
        max_lag = max_lag.max(done.saturating_sub(sealed.load(Ordering::SeqCst)));
        load.sample();
        if done >= next_mark || done == n {
            let secs = seg_start.elapsed().as_secs_f64();
            let seg_n = done - (next_mark - segment);
            let now_cpu = (
                pg_cpu(&admin, postmaster).await,
                proc_cpu(std::process::id()),
            );
            let per = |a: Option<f64>, b: Option<f64>| {
                a.zip(b)
                    .map(|(a, b)| 1e6 * (b - a) / seg_n as f64)
                    .unwrap_or(f64::NAN)
            };
            let seg = Segment {
                rate: seg_n as f64 / secs,
                pg_us: per(seg_cpu.0, now_cpu.0),
                own_us: per(seg_cpu.1, now_cpu.1),
                load: load.take(),
            };
            let s = sealed.load(Ordering::SeqCst);
            let (db_bytes, wal_bytes) = sizes(&admin).await;
            println!(
                "segment {:>2}: up to {done:>11} entries  {:>8.0} evidence/s ({secs:>6.1} s)  CPU/entry: \
                 PostgreSQL {:>5.1} us, bench {:>5.1} us  load avg {:>5.1} (max {:>5.1})  \
                 batcher lag {:>7} now, {max_lag:>7} max  database {:>6.2} GB, WAL {:>5.2} GB  \
                 partition filters {}, identity filter maybes {}, unfiltered probes {unfiltered}",
                segs.len() + 1,
                seg.rate,
                seg.pg_us,
                seg.own_us,
                seg.load.0,
                seg.load.1,
                done - s.min(done),
                db_bytes as f64 / 1e9,
                wal_bytes as f64 / 1e9,
                filters_built.load(Ordering::SeqCst),
                maybe.swap(0, Ordering::Relaxed),
            );
            unfiltered = 0;
            segs.push(seg);
            seg_start = Instant::now();
            seg_cpu = now_cpu;
            max_lag = 0;
            next_mark += segment;
        }
    }
    let total = started.elapsed().as_secs_f64();
    feeder.await.unwrap();
    preparer.await.unwrap();
    assert_eq!(done, n, "every entry accepted");
    assert_eq!(ledger.next_seq().await.unwrap(), n);
    println!(
        "ingest: {n} entries in {total:.1} s, {:.0} evidence/s overall; {missed} batch(es) planned again \
         under the lock",
        n as f64 / total
    );
    if let (Some(first), Some(last)) = (segs.first(), segs.last()) {
        println!(
            "last segment / first segment: wall-clock rate {:.2} (goal >= 0.8; load avg {:.1} -> {:.1}); \
             CPU per entry (first / last, >= 0.8 = no cliff): PostgreSQL {:.2}, bench {:.2}",
            last.rate / first.rate,
            first.load.0,
            last.load.0,
            first.pg_us / last.pg_us,
            first.own_us / last.own_us
        );
    }

    // Let the batcher catch up.
    let t = Instant::now();
    while sealed.load(Ordering::SeqCst) < n {
        assert!(
            t.elapsed() < Duration::from_secs(3600),
            "the batcher did not catch up within an hour"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_sealing.cancel();
    let (blocks, seal_secs) = sealer.await.unwrap();
    filterer.await.unwrap();
    println!(
        "batcher: caught up {:.1} s after the last commit; {blocks} blocks, {:.1} ms per block \
         of up to {block} entries",
        t.elapsed().as_secs_f64(),
        1000.0 * seal_secs / blocks.max(1) as f64
    );

    // Disk.
    let c = &admin;
    c.batch_execute("CHECKPOINT").await.unwrap();
    let rows = c
        .query(
            "WITH parts AS (
                 SELECT inhrelid AS oid FROM pg_inherits WHERE inhparent = 'evidence'::regclass),
                  id_parts AS (
                 SELECT inhrelid AS oid FROM pg_inherits WHERE inhparent = 'evidence_identity'::regclass)
             SELECT 'evidence heap + TOAST', coalesce(sum(pg_table_size(oid)), 0)::int8 FROM parts
             UNION ALL SELECT 'evidence indexes', coalesce(sum(pg_indexes_size(oid)), 0)::int8 FROM parts
             UNION ALL SELECT 'identity heap', coalesce(sum(pg_table_size(oid)), 0)::int8 FROM id_parts
             UNION ALL SELECT 'identity index', coalesce(sum(pg_indexes_size(oid)), 0)::int8 FROM id_parts
             UNION ALL SELECT 'partition filters', (pg_total_relation_size('identity_filters')
                 + pg_total_relation_size('evidence_hash_filters'))::int8
             UNION ALL SELECT 'blocks and tiles', (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                 WHERE s.nspname = 'public' AND c.relkind = 'r'
                   AND (c.relname IN ('blocks', 'checkpoints', 'checkpoint_signatures')
                        OR c.relname LIKE '%tile%'))::int8
             UNION ALL SELECT 'database total', pg_database_size(current_database())::int8
             UNION ALL SELECT 'WAL (pg_wal)', (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())::int8",
            &[],
        )
        .await
        .unwrap();
    let payload = payload.load(Ordering::Relaxed) as f64 / n as f64;
    let mut entries_bytes = 0i64;
    for r in &rows {
        let (what, b): (String, i64) = (r.get(0), r.get(1));
        if what.starts_with("evidence") || what.starts_with("identity") {
            entries_bytes += b;
        }
        println!(
            "disk: {what:<22} {:>10.1} MiB  {:>7.1} bytes/entry",
            b as f64 / 1048576.0,
            b as f64 / n as f64
        );
    }
    let per_entry = entries_bytes as f64 / n as f64;
    println!(
        "ledger bytes/entry {per_entry:.1} for {payload:.1} bytes of message payload: {:.2}x (goal <= 2x)",
        per_entry / payload
    );
    let (first, last) = (segs.first().unwrap(), segs.last().unwrap());
    println!(
        "RESULT n={n} seconds={total:.1} rate={:.0} first_segment={:.0} last_segment={:.0} \
         pg_cpu_us_first={:.1} pg_cpu_us_last={:.1} bench_cpu_us_first={:.1} bench_cpu_us_last={:.1} \
         bytes_per_entry={per_entry:.1} payload_bytes={payload:.1}",
        n as f64 / total,
        first.rate,
        last.rate,
        first.pg_us,
        last.pg_us,
        first.own_us,
        last.own_us
    );
    let _ = std::fs::remove_dir_all(&dir);
    match db {
        Some(db) => drop(db),
        None => println!("kept: the ledger stays in {url} (ANCHORD_BENCH_DB) for bench/proofs"),
    }
}

/// One segment's figures: wall-clock entries/s, CPU microseconds per entry
/// of PostgreSQL and of this process, load average (mean, max).
struct Segment {
    rate: f64,
    pg_us: f64,
    own_us: f64,
    load: (f64, f64),
}

/// The 1-minute load average, sampled at most once a second.
#[derive(Default)]
struct LoadSampler {
    last: Option<Instant>,
    sum: f64,
    max: f64,
    count: u32,
}

impl LoadSampler {
    fn sample(&mut self) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(Instant::now());
        if let Some(l) = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        {
            self.sum += l;
            self.max = self.max.max(l);
            self.count += 1;
        }
    }

    /// (mean, max) since the last take.
    fn take(&mut self) -> (f64, f64) {
        let r = (self.sum / self.count.max(1) as f64, self.max);
        *self = LoadSampler::default();
        r
    }
}

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(conn);
    c
}

/// The database's size and the WAL directory's, in bytes.
async fn sizes(c: &tokio_postgres::Client) -> (i64, i64) {
    let r = c
        .query_one(
            "SELECT pg_database_size(current_database())::int8, \
             (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())::int8",
            &[],
        )
        .await
        .expect("sizes");
    (r.get(0), r.get(1))
}

/// Clock ticks per second (`getconf CLK_TCK`).
fn ticks() -> f64 {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    *TICKS
}

/// The fields of `/proc/<pid>/stat` after the command name (field 3 on).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// CPU seconds (user + system) of a process; with `children`, plus those
/// of its reaped children (cutime, cstime).
fn proc_cpu_of(pid: u32, children: bool) -> Option<f64> {
    let f = stat_fields(pid)?;
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime, stime, cutime, cstime are fields 14-17: indexes 11-14 here.
    let mut t = field(11)? + field(12)?;
    if children {
        t += field(13)? + field(14)?;
    }
    Some(t / ticks())
}

fn proc_cpu(pid: u32) -> Option<f64> {
    proc_cpu_of(pid, false)
}

/// The private cluster's postmaster, from `$ANCHORD_PG_DIR/data/postmaster.pid`.
fn postmaster_pid() -> Option<u32> {
    let dir = std::env::var_os("ANCHORD_PG_DIR")?;
    let text =
        std::fs::read_to_string(std::path::Path::new(&dir).join("data/postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    stat_fields(pid).map(|_| pid)
}

/// CPU seconds used so far by PostgreSQL: with the postmaster known, the
/// postmaster, its live children and its reaped ones (backends, checkpointer,
/// WAL writer, autovacuum workers that came and went); else the processes
/// `pg_stat_activity` lists now (exited ones are then missed).
async fn pg_cpu(c: &tokio_postgres::Client, postmaster: Option<u32>) -> Option<f64> {
    if let Some(pm) = postmaster {
        let mut t = proc_cpu_of(pm, true)?;
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(pid)
                && f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pm)
            {
                t += proc_cpu(pid).unwrap_or(0.0);
            }
        }
        return Some(t);
    }
    let rows = c
        .query("SELECT pid FROM pg_stat_activity", &[])
        .await
        .ok()?;
    Some(
        rows.iter()
            .filter_map(|r| proc_cpu(r.get::<_, i32>(0) as u32))
            .sum(),
    )
}
