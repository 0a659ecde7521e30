//! The relay against the judicial-chain simulator and a real PostgreSQL:
//! outages, error rates with latency, several instances, no double anchor.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use anchord_relay::sim::Faults;
use common::*;
use tokio_util::sync::CancellationToken;

fn spawn_relay(
    config: anchord_relay::RelayConfig,
    ledger: &anchord_ledger::Ledger,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), anchord_relay::RelayError>>,
) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(anchord_relay::run(
        config,
        ledger.clone(),
        None,
        stop.clone(),
    ));
    (stop, task)
}

async fn stop_relay(
    r: (
        CancellationToken,
        tokio::task::JoinHandle<Result<(), anchord_relay::RelayError>>,
    ),
) {
    r.0.cancel();
    tokio::time::timeout(Duration::from_secs(30), r.1)
        .await
        .expect("relay stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery_covers_every_checkpoint_and_anchors_none_twice() {
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        dedup: Some(false),
        ..Faults::default()
    })
    .await;
    let relay = spawn_relay(
        relay_config(vec![judicial_target("court", &sim, 3000)]),
        &c.ledger,
    );
    for _ in 0..3 {
        c.seal().await;
    }
    wait_for("the first checkpoints anchored", 30, || {
        settled(&c.ledger, "court")
    })
    .await;
    let before = c.ledger.anchor_receipts(Some("court")).await.unwrap();
    assert!(!before.is_empty());

    // Down for 2.5 s while 10 checkpoints are sealed.
    sim.handle.set_faults(&Faults {
        outage_ms: Some(2500),
        ..Faults::default()
    });
    let first_in_outage = c.seal().await;
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        c.seal().await;
    }
    let last = c.seal().await;
    wait_for("every checkpoint covered after the outage", 60, || {
        settled(&c.ledger, "court")
    })
    .await;
    assert!(
        sim.handle.stats().outage_rejections > 0,
        "the outage was felt"
    );
    check_against_chain(&c.ledger, "court", &sim).await;
    // Coalescing: far fewer anchors than checkpoints during the outage.
    let receipts = c.ledger.anchor_receipts(Some("court")).await.unwrap();
    let during = receipts
        .iter()
        .filter(|r| r.checkpoint_size >= first_in_outage)
        .count();
    assert!(
        during < (last - first_in_outage + 1) as usize,
        "{during} anchors for {} checkpoints",
        last - first_in_outage + 1
    );
    let gaps = anchord_relay::report::gaps(&c.ledger, "court")
        .await
        .unwrap();
    assert!(
        gaps.iter().any(|g| g.covered_by.is_some()
            && g.first_size >= first_in_outage
            && g.checkpoints >= 3),
        "an outage window with its covering anchor: {gaps:?}"
    );
    assert!(gaps.iter().all(|g| g.covered_by.is_some()), "{gaps:?}");
    assert_eq!(sim.handle.stats().duplicate_submissions, 0);
    stop_relay(relay).await;
    sim.handle.stop().await;

    // The metrics saw it: failures by class, retries, covered checkpoints,
    // the seal-to-anchor histogram, the breaker and the backlog.
    let families = prometheus::gather();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let f = families
            .iter()
            .find(|f| f.name() == name)
            .unwrap_or_else(|| panic!("metric {name} missing"));
        f.get_metric()
            .iter()
            .filter(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| match f.get_field_type() {
                prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
                prometheus::proto::MetricType::GAUGE => m.get_gauge().get_value(),
                _ => m.get_histogram().get_sample_count() as f64,
            })
            .sum()
    };
    let court = [("target", "court")];
    assert!(value("anchord_relay_submissions_total", &court) >= 2.0);
    assert!(value("anchord_relay_confirmations_total", &court) >= 2.0);
    assert!(value("anchord_relay_retries_total", &court) >= 1.0);
    assert!(
        value(
            "anchord_relay_failures_total",
            &[("target", "court"), ("class", "unavailable")]
        ) >= 1.0
    );
    assert!(value("anchord_relay_covered_checkpoints_total", &court) >= 3.0);
    assert!(value("anchord_relay_seal_to_anchor_seconds", &court) >= 2.0);
    assert_eq!(value("anchord_relay_backlog_checkpoints", &court), 0.0);
    assert!(
        families
            .iter()
            .any(|f| f.name() == "anchord_relay_breaker_state")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_latency_and_drops_with_two_relays_still_anchor_each_checkpoint_at_most_once() {
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        dedup: Some(false),
        error_rate: Some(0.3),
        latency_ms: Some(2000),
        drop_rate: Some(0.1),
        ..Faults::default()
    })
    .await;
    let config = relay_config(vec![judicial_target("court", &sim, 6000)]);
    let a = spawn_relay(config.clone(), &c.ledger);
    let b = spawn_relay(config, &c.ledger);
    // Keep sealing until the simulator has injected at least one error (the
    // error draw is random and coalescing keeps submissions few), bounded:
    // with a 30% rate, 100 seals without one error is about 1e-4 likely.
    let injected = |s: &anchord_relay::sim::Stats| s.injected_after_accept + s.injected_unavailable;
    let mut seals = 0;
    while seals < 12 || (injected(&sim.handle.stats()) == 0 && seals < 100) {
        c.seal().await;
        seals += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    wait_for("every checkpoint covered", 150, || {
        settled(&c.ledger, "court")
    })
    .await;
    let stats = sim.handle.stats();
    assert!(
        stats.injected_after_accept + stats.injected_unavailable > 0,
        "errors were injected: {stats:?}"
    );
    check_against_chain(&c.ledger, "court", &sim).await;
    assert_eq!(
        stats.duplicate_submissions, 0,
        "the relay resubmitted a live transaction: {stats:?}"
    );
    stop_relay(a).await;
    stop_relay(b).await;
    sim.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_in_sending_is_looked_up_not_resent() {
    // Simulates a relay that died after sending and before recording: the
    // transaction is on chain, the job is still 'sending'.
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        dedup: Some(false),
        ..Faults::default()
    })
    .await;
    let size = c.seal().await;
    let cp = c.ledger.checkpoint(size).await.unwrap().unwrap();
    let key = anchord_relay::target::idempotency_key("court", &cp);
    assert!(c.ledger.enqueue_anchor("court", size, &key).await.unwrap());
    let job = c
        .ledger
        .claim_anchor_job("court", 1000)
        .await
        .unwrap()
        .unwrap();
    // Send it by hand, as the dead relay did.
    use anchord_relay::target::{AnchorPayload, Target};
    let t = anchord_relay::judicial::JudicialTarget::new(&judicial_target("court", &sim, 3000))
        .unwrap();
    let p = AnchorPayload::new("court", &cp);
    let prepared = t.prepare(&p).await.unwrap();
    c.ledger
        .record_anchor_prepared(&job, None, &serde_json::to_string(&prepared).unwrap())
        .await
        .unwrap();
    t.send(&p, &prepared).await.unwrap();
    // Lease runs out (1 s); a fresh relay takes over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let relay = spawn_relay(
        relay_config(vec![judicial_target("court", &sim, 3000)]),
        &c.ledger,
    );
    wait_for("the job resolved", 30, || settled(&c.ledger, "court")).await;
    stop_relay(relay).await;
    check_against_chain(&c.ledger, "court", &sim).await;
    assert_eq!(sim.handle.stats().accepted, 1, "sent once, by hand");
    sim.handle.stop().await;
}
