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
//! Environment: ANCHORD_SCALE_ENTRIES (50000000), ANCHORD_SCALE_BATCH (10000),
//! ANCHORD_SCALE_BLOCK (100000 entries per block).
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
use anchord_testkit::TestDb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SUITE: HashSuite = HashSuite::Sha256;
const TOPIC: &str = "bench.scale";
const PARTITIONS: u64 = 16;
const TENANTS: [&str; 5] = ["icbc-sh", "ccb-bj", "boc-gd", "abc-zj", "cmb-sz"];

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
    let (db, _) = TestDb::migrated().await;
    let mut dbc = anchord_ledger::DatabaseConfig::from_url(db.url());
    dbc.max_connections = 8;
    let ledger = Ledger::connect(&dbc).expect("ledger");
    ledger.ensure_suite(SUITE).await.expect("suite");

    // The batcher, sealing along.
    let dir = std::env::temp_dir().join(anchord_testkit::unique("scale"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("sealer.key");
    let signer = NoteSigner::from_seed("anchord.bench/scale", ALG_ED25519, &[7; 32]).unwrap();
    std::fs::write(&key, signer.private_key_text()).unwrap();
    let bc = BatcherConfig {
        block_max_entries: block,
        origin: "anchord.bench/scale".into(),
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
    let (prep_tx, mut prep_rx) = mpsc::channel(1);
    let preparer = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            let mut hint = AppendHint::default();
            while let Some(b) = batch_rx.recv().await {
                let p = ledger.prepare_append(b, &hint).await.expect("prepare");
                hint = p.hint_after(&hint);
                if prep_tx.send(p).await.is_err() {
                    return;
                }
            }
        })
    };

    let started = Instant::now();
    let mut seg_start = Instant::now();
    let mut done = 0u64;
    let mut next_mark = segment;
    let mut rates = Vec::new();
    let mut missed = 0u64;
    while let Some(p) = prep_rx.recv().await {
        let c = ledger.commit_prepared(&p).await.expect("commit");
        if !c.as_predicted {
            missed += 1;
        }
        done += c.outcome.accepted() as u64;
        if done >= next_mark || done == n {
            let secs = seg_start.elapsed().as_secs_f64();
            let seg_n = done - (next_mark - segment);
            let rate = seg_n as f64 / secs;
            rates.push(rate);
            let s = sealed.load(Ordering::SeqCst);
            println!(
                "segment {:>2}: up to {done:>11} entries  {rate:>9.0} evidence/s  ({secs:>6.1} s)  \
                 sealed {s:>11}  batcher lag {:>9}",
                rates.len(),
                done - s.min(done)
            );
            seg_start = Instant::now();
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
    if let (Some(first), Some(last)) = (rates.first(), rates.last()) {
        println!(
            "last segment / first segment: {:.2} (goal >= 0.8)",
            last / first
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
    println!(
        "batcher: caught up {:.1} s after the last commit; {blocks} blocks, {:.1} ms per block \
         of up to {block} entries",
        t.elapsed().as_secs_f64(),
        1000.0 * seal_secs / blocks.max(1) as f64
    );

    // Disk.
    let c = db.client().await;
    c.batch_execute("CHECKPOINT").await.unwrap();
    let rows = c
        .query(
            "WITH parts AS (
                 SELECT inhrelid AS oid FROM pg_inherits WHERE inhparent = 'evidence'::regclass)
             SELECT 'evidence heap + TOAST', coalesce(sum(pg_table_size(oid)), 0)::int8 FROM parts
             UNION ALL SELECT 'evidence indexes', coalesce(sum(pg_indexes_size(oid)), 0)::int8 FROM parts
             UNION ALL SELECT 'identity heap', pg_table_size('evidence_identity')::int8
             UNION ALL SELECT 'identity index', pg_indexes_size('evidence_identity')::int8
             UNION ALL SELECT 'blocks and tiles', (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                 WHERE s.nspname = 'public' AND c.relkind = 'r'
                   AND (c.relname IN ('blocks', 'checkpoints', 'checkpoint_signatures')
                        OR c.relname LIKE '%tile%'))::int8
             UNION ALL SELECT 'database total', pg_database_size(current_database())::int8",
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
    println!(
        "RESULT n={n} seconds={total:.1} rate={:.0} first_segment={:.0} last_segment={:.0} \
         bytes_per_entry={per_entry:.1} payload_bytes={payload:.1}",
        n as f64 / total,
        rates.first().copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop(db);
}
