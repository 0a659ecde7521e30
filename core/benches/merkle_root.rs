//! How close `merkle::root` gets to the raw SHA-256 compression limit, and how
//! it compares with building the same tree with `rs_merkle`.
//!
//! ```text
//! cargo bench -p anchord-core --bench merkle_root            # 1,000,000 leaves
//! ANCHORD_BENCH_LEAVES=100000 cargo bench -p anchord-core --bench merkle_root
//! ```
//!
//! Every interior node of an RFC 6962 tree hashes 65 bytes, which pads to two
//! 64-byte blocks: a tree of n leaves costs at least 2(n-1) calls of the
//! SHA-256 compression function. The "limit" line times exactly that many
//! calls on cached data; `root` should stay within about 1.5x of it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anchord_core::HashSuite;
use anchord_core::merkle::{self, Rfc6962Sha256, Rfc6962Sm3};

fn median_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = black_box(f());
        times.push(start.elapsed());
        out = Some(v);
    }
    times.sort();
    (times[times.len() / 2], out.expect("runs > 0"))
}

fn main() {
    let n: usize = std::env::var("ANCHORD_BENCH_LEAVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs = 5;
    println!("{n} leaves, median of {runs} runs");

    // The limit: 2(n-1) compressions, 64 blocks (4 KiB, in L1) at a time.
    let blocks = [[0x5au8; 64]; 64];
    let calls = 2 * (n - 1);
    let (limit, _) = median_of(runs, || {
        let mut state = [0u32; 8];
        for _ in 0..calls / blocks.len() {
            sha2::block_api::compress256(&mut state, black_box(&blocks));
        }
        sha2::block_api::compress256(&mut state, &blocks[..calls % blocks.len()]);
        state
    });
    println!(
        "sha256 compression limit: {:>8.1} ms ({:.0} ns/node)",
        limit.as_secs_f64() * 1e3,
        limit.as_secs_f64() * 1e9 / (n - 1) as f64
    );

    for suite in HashSuite::ALL {
        let leaves: Vec<_> = (0..n as u64)
            .map(|i| suite.leaf_hash(&i.to_be_bytes()))
            .collect();
        let (fast, fast_root) = median_of(runs, || merkle::root(suite, &leaves));
        let (slow, slow_root) = median_of(runs, || match suite {
            HashSuite::Sha256 => {
                rs_merkle::MerkleTree::<Rfc6962Sha256>::from_leaves(&leaves).root()
            }
            HashSuite::Sm3 => rs_merkle::MerkleTree::<Rfc6962Sm3>::from_leaves(&leaves).root(),
        });
        assert_eq!(Some(fast_root), slow_root, "{suite}: roots differ");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        print!(
            "{suite:>6}: merkle::root {:>8.1} ms, rs_merkle {:>8.1} ms ({:.2}x slower)",
            ms(fast),
            ms(slow),
            slow.as_secs_f64() / fast.as_secs_f64()
        );
        if suite == HashSuite::Sha256 {
            print!(
                ", {:.2}x the compression limit",
                fast.as_secs_f64() / limit.as_secs_f64()
            );
        }
        println!();
    }
}
