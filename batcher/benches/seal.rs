//! `bench/seal`: sealing a 1,000,000-entry block end to end (leaf hashes
//! already in the ledger) and the Merkle computation alone, against the raw
//! SHA-256 limit of this CPU measured in the same run.
//!
//! A 1M-leaf RFC 6962 tree has 999,999 interior nodes, each `H(0x01 || l ||
//! r)` over 65 bytes = 2 SHA-256 compressions: ~2M compressions. The raw
//! limit is 2M single-compression hashes (32-byte inputs) back to back.
//! Medians of several runs; needs PostgreSQL (`scripts/services up`).

use std::hint::black_box;
use std::time::Instant;

use anchord_batcher::BatcherConfig;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_core::{Digest32, EvidenceAlg, HashSuite, merkle};
use anchord_ledger::{AppendBatch, NewEntry};
use sha2::Digest as _;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let n = env_or("ANCHORD_BENCH_ENTRIES", 1_000_000);
    let runs = env_or("ANCHORD_BENCH_RUNS", 5);
    let suite = HashSuite::Sha256;
    println!("bench/seal: {n} entries, {runs} runs each, medians");

    // Raw SHA-256 limit: 2(n-1) one-compression hashes.
    let compressions = 2 * (n.max(2) - 1);
    let mut input = [0u8; 32];
    let raw = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..compressions {
                    // Chain outputs so nothing can be skipped or batched away.
                    input = sha2::Sha256::digest(black_box(&input)).into();
                }
                black_box(&input);
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!(
        "raw SHA-256:  {compressions} compressions in {raw:.4} s ({:.2} M/s)",
        compressions as f64 / raw / 1e6
    );

    // Merkle root alone over n leaf hashes.
    let leaves: Vec<Digest32> = (0..n as u64)
        .map(|i| suite.leaf_hash(&i.to_be_bytes()))
        .collect();
    let merkle_t = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                black_box(merkle::root(suite, black_box(&leaves)));
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!(
        "Merkle root:  {n} leaves in {merkle_t:.4} s; ratio to the raw limit {:.2}x (target <= 1.5x)",
        merkle_t / raw
    );
    drop(leaves);

    // Whole seal: entries already in the ledger.
    let (db, ledger) = anchord_testkit::TestDb::migrated().await;
    ledger.ensure_suite(suite).await.expect("suite");
    let t = Instant::now();
    let chunk = 50_000;
    let mut done = 0;
    while done < n {
        let k = chunk.min(n - done);
        let entries = (done..done + k)
            .map(|i| NewEntry {
                tenant: "bench-bank".into(),
                external_id: format!("LOAN-{i:09}"),
                hash_alg: EvidenceAlg::Sha256,
                evidence_hash: suite.digest(&(i as u64).to_be_bytes()).to_vec(),
                metadata: None,
                source: None,
                raw: Default::default(),
            })
            .collect();
        ledger
            .append(&AppendBatch {
                suite,
                consumer_group: None,
                received_at_us: 1_764_000_000_000_000,
                entries,
                rejections: vec![],
                positions: vec![],
            })
            .await
            .expect("append");
        done += k;
    }
    println!(
        "(ledger filled with {n} entries in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_bench"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("sealer.key");
    let signer = NoteSigner::from_seed("anchord.bench/ledger", ALG_ED25519, &[1; 32]).expect("key");
    std::fs::write(&key, signer.private_key_text()).expect("key file");
    let config = BatcherConfig {
        block_max_entries: n as u64,
        origin: "anchord.bench/ledger".into(),
        signing_key: Some(key),
        ..BatcherConfig::default()
    };
    let admin = db.client().await;
    let mut seals = Vec::new();
    for _ in 0..runs {
        admin
            .batch_execute(
                "DELETE FROM checkpoint_signatures; DELETE FROM checkpoints; \
                 TRUNCATE log_tiles, block_tiles, block_leaf_tiles; DELETE FROM blocks;",
            )
            .await
            .expect("reset");
        let r = anchord_batcher::seal_once(&config, suite, &ledger)
            .await
            .expect("seal")
            .expect("something to seal");
        assert_eq!(r.entries, n as u64);
        seals.push(r.seconds);
    }
    let seal = median(seals);
    println!(
        "Whole seal:   {n}-entry block end to end in {seal:.4} s (target < 1 s): {}",
        if seal < 1.0 { "OK" } else { "OVER" }
    );
    println!(
        "summary: raw_sha256_s={raw:.4} merkle_s={merkle_t:.4} ratio={:.2} seal_s={seal:.4}",
        merkle_t / raw
    );
    let _ = std::fs::remove_dir_all(dir);
}
