//! `bench/audit`: `anchord audit` over a ledger of many small blocks (the
//! default batcher seals a block a second: a bank's day is 86,400 blocks),
//! against the raw limit measured in the same run: reading the same
//! entries, blocks and tiles in pages, without checking anything.
//!
//! Knobs: ANCHORD_BENCH_BLOCKS (10,000), ANCHORD_BENCH_BLOCK_ENTRIES (10),
//! ANCHORD_BENCH_RUNS (3; medians), ANCHORD_BENCH_DB (keep the sealed
//! ledger in this database and reuse it next time). Needs PostgreSQL
//! (`scripts/services up`).

use std::time::Instant;

use anchord_batcher::BatcherConfig;
use anchord_batcher::audit::{AuditKeys, audit};
use anchord_core::HashSuite;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_ledger::{DatabaseConfig, Ledger};
use anchord_testkit::evidence;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let blocks = env_or("ANCHORD_BENCH_BLOCKS", 10_000);
    let per = env_or("ANCHORD_BENCH_BLOCK_ENTRIES", 10).max(1);
    let runs = env_or("ANCHORD_BENCH_RUNS", 3).max(1) as usize;
    let n = blocks * per;
    let suite = HashSuite::Sha256;
    println!("bench/audit: {blocks} blocks of {per} entries ({n} entries), {runs} runs, medians");
    let (_db, url) = anchord_testkit::bench_database().await;
    let ledger = Ledger::connect(&DatabaseConfig::from_url(&url)).expect("ledger");
    ledger.ensure_suite(suite).await.expect("suite");
    let signer = NoteSigner::from_seed("anchord.bench/ledger", ALG_ED25519, &[1; 32]).expect("key");
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_bench"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("sealer.key");
    std::fs::write(&key, signer.private_key_text()).expect("key file");

    // The ledger: appended, then sealed block by block (untimed; kept with
    // ANCHORD_BENCH_DB).
    let have = ledger.next_seq().await.expect("head");
    if have < n {
        let t = Instant::now();
        let mut done = have;
        while done < n {
            let k = (n - done).min(50_000);
            let entries = (done..done + k)
                .map(|i| {
                    let hash = suite.digest(&i.to_be_bytes()).to_vec();
                    evidence::entry("bench-bank", format!("LOAN-{i:09}"), hash)
                })
                .collect();
            evidence::append(&ledger, suite, evidence::RECEIVED_AT_US, entries).await;
            done += k;
        }
        println!(
            "(appended {} entries in {:.1} s)",
            n - have,
            t.elapsed().as_secs_f64()
        );
    }
    let config = BatcherConfig {
        block_max_entries: per,
        origin: "anchord.bench/ledger".into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let t = Instant::now();
    let mut sealed = 0;
    while anchord_batcher::seal_once(&config, suite, &ledger)
        .await
        .expect("seal")
        .is_some()
    {
        sealed += 1;
        if sealed % 1000 == 0 {
            println!(
                "  sealed {sealed} blocks ({:.0}/s)",
                sealed as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    if sealed > 0 {
        println!(
            "(sealed {sealed} blocks in {:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
    let count = ledger.block_count().await.expect("blocks");
    assert_eq!(
        count, blocks,
        "a kept ledger of another shape: drop ANCHORD_BENCH_DB"
    );

    // The raw limit: the same rows read in pages, nothing checked.
    let raw = median(
        futures_runs(runs, || async {
            let t = Instant::now();
            let mut from = 0;
            while from < count {
                let page = ledger.blocks_page(from, 256).await.expect("blocks");
                let Some(last) = page.last() else { break };
                from = last.header.height + 1;
                let first_seq = page[0].header.first_seq;
                let end = last.header.last_seq + 1;
                std::hint::black_box(ledger.entries_range(first_seq, end).await.expect("entries"));
            }
            t.elapsed().as_secs_f64()
        })
        .await,
    );
    println!(
        "raw read:  {count} blocks and their entries in pages of 256 blocks: {raw:.2} s ({:.0} blocks/s)",
        count as f64 / raw
    );
    let keys = AuditKeys {
        sealer: signer.verifier(),
        witnesses: vec![],
        quorum: 0,
        tsa_cert: None,
    };
    let full = median(
        futures_runs(runs, || async {
            let t = Instant::now();
            let r = audit(&ledger, suite, &keys, false).await.expect("audit");
            assert!(r.ok(), "the audit found problems: {:?}", r.problems);
            assert_eq!(r.blocks, count);
            t.elapsed().as_secs_f64()
        })
        .await,
    );
    println!(
        "audit:     {count} blocks, {n} entries: {full:.2} s ({:.0} blocks/s, {:.0} entries/s); {:.2}x the raw read",
        count as f64 / full,
        n as f64 / full,
        full / raw
    );
    println!(
        "           a year of one block a second (31,536,000 blocks) at this rate: {:.1} h",
        31_536_000.0 / (count as f64 / full) / 3600.0
    );
}

async fn futures_runs<F, Fut>(runs: usize, f: F) -> Vec<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        out.push(f().await);
    }
    out
}
