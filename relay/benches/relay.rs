//! Relay benchmark against the judicial-chain simulator (20 ms added
//! latency) and a real PostgreSQL, with the relay's default timing
//! configuration (poll 500 ms, breaker 0.5 s doubling to 2 s):
//!
//! 1. Recovery: the gateway is down while OUTAGE_CHECKPOINTS checkpoints are
//!    sealed (default 600: a 10-minute outage at one checkpoint a second,
//!    compressed in time); then it comes back. Measured: time from recovery
//!    until every final checkpoint is covered by a confirmed anchor.
//! 2. Steady state: one checkpoint a second for STEADY_SECONDS; measured:
//!    seal → confirmed anchor per checkpoint (its own anchor, or the one
//!    that covers it).
//!
//! Run with `bench/relay` (services, release build, medians).

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use anchord_relay::RelayConfig;
use anchord_relay::sim::Faults;
use common::*;
use tokio_util::sync::CancellationToken;

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

fn production_timing(sim: &Sim) -> RelayConfig {
    RelayConfig {
        targets: vec![judicial_target("court", sim, 10_000)],
        ..RelayConfig::default()
    }
}

async fn recovery_run(outage_checkpoints: u64) -> (f64, u64, usize) {
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        latency_ms: Some(20),
        ..Faults::default()
    })
    .await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(anchord_relay::run(
        production_timing(&sim),
        c.ledger.clone(),
        None,
        stop.clone(),
    ));
    c.seal().await;
    wait_for("first anchor", 60, || settled(&c.ledger, "court")).await;
    let before = c.ledger.anchor_receipts(Some("court")).await.unwrap().len();
    sim.handle.set_faults(&Faults {
        outage_ms: Some(24 * 3600 * 1000),
        ..Faults::default()
    });
    for _ in 0..outage_checkpoints {
        c.seal().await;
    }
    // Recovery.
    sim.handle.set_faults(&Faults {
        outage_ms: Some(0),
        ..Faults::default()
    });
    let t0 = Instant::now();
    wait_for("every checkpoint covered", 120, || async {
        c.ledger
            .anchor_uncovered("court", 0)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let secs = t0.elapsed().as_secs_f64();
    let after = c.ledger.anchor_receipts(Some("court")).await.unwrap().len();
    let rejected = sim.handle.stats().outage_rejections;
    stop.cancel();
    relay.await.unwrap().unwrap();
    sim.handle.stop().await;
    (secs, rejected, after - before)
}

async fn steady_run(seconds: u64) -> Vec<f64> {
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        latency_ms: Some(20),
        ..Faults::default()
    })
    .await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(anchord_relay::run(
        production_timing(&sim),
        c.ledger.clone(),
        None,
        stop.clone(),
    ));
    let mut next = tokio::time::Instant::now();
    for _ in 0..seconds {
        c.seal().await;
        next += Duration::from_secs(1);
        tokio::time::sleep_until(next).await;
    }
    wait_for("settled", 60, || settled(&c.ledger, "court")).await;
    stop.cancel();
    relay.await.unwrap().unwrap();
    sim.handle.stop().await;
    // Seal → confirmed anchor, per checkpoint.
    let receipts = c.ledger.anchor_receipts(Some("court")).await.unwrap();
    let confirmed: std::collections::HashMap<u64, i64> = receipts
        .iter()
        .map(|r| (r.checkpoint_size, r.confirmed_at_us))
        .collect();
    let covered: std::collections::HashMap<u64, u64> = c
        .ledger
        .anchor_coverage("court")
        .await
        .unwrap()
        .iter()
        .map(|v| (v.checkpoint_size, v.covered_by_size))
        .collect();
    let mut out = Vec::new();
    for cp in c.ledger.checkpoints().await.unwrap() {
        let anchor = confirmed
            .get(&cp.size)
            .or_else(|| covered.get(&cp.size).and_then(|s| confirmed.get(s)));
        if let Some(at) = anchor {
            out.push((*at - cp.created_at_us) as f64 / 1e6);
        }
    }
    out
}

fn main() {
    let runs = env_u64("ANCHORD_BENCH_RUNS", 3);
    let outage = env_u64("ANCHORD_BENCH_OUTAGE_CHECKPOINTS", 600);
    let steady = env_u64("ANCHORD_BENCH_STEADY_SECONDS", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rec = Vec::new();
        for i in 0..runs {
            let (s, rejected, anchors) = recovery_run(outage).await;
            println!(
                "recovery run {}: {outage} checkpoints sealed during the outage ({rejected} requests refused); \
                 all covered {s:.3} s after recovery by {anchors} anchor(s)",
                i + 1
            );
            rec.push(s);
        }
        let mut lat = steady_run(steady).await;
        let n = lat.len();
        let med = median(&mut lat);
        let p90 = lat.get(n * 9 / 10).copied().unwrap_or(f64::NAN);
        println!(
            "relay recovery after a {outage}-checkpoint outage: median {:.3} s over {runs} run(s) (target < 5 s)",
            median(&mut rec)
        );
        println!(
            "relay steady state, 1 checkpoint/s for {steady} s: seal -> confirmed anchor median {med:.3} s, p90 {p90:.3} s ({n} checkpoints)"
        );
    });
}
