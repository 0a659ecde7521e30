//! The relay against the judicial-chain simulator and a real PostgreSQL:
//! outages, error rates with latency, several instances, no double anchor.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use anchord_relay::sim::Faults;
use common::*;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A metric's value in the default registry (this process's relays).
fn metric(name: &str, target: &str) -> f64 {
    prometheus::gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| {
            let kind = f.get_field_type();
            f.get_metric()
                .iter()
                .filter(|m| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == "target" && l.value() == target)
                })
                .map(move |m| match kind {
                    prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
                    _ => m.get_gauge().get_value(),
                })
                .collect::<Vec<_>>()
        })
        .sum()
}

/// The attempts counter of a job (each claim adds one).
async fn job_attempts(db: &anchord_testkit::TestDb, target: &str, size: u64) -> i32 {
    db.client()
        .await
        .query_one(
            "SELECT attempts FROM anchor_jobs WHERE target = $1 AND checkpoint_size = $2 \
             AND state <> 'lost'",
            &[&target, &(size as i64)],
        )
        .await
        .unwrap()
        .get(0)
}

/// Claim, record and send an anchor of checkpoint `size` by hand, as a relay
/// that died right after sending would have. The job is left `sending`.
async fn sent_by_a_dead_relay(c: &Chainlet, sim: &Sim, target: &str, size: u64) {
    use anchord_relay::target::{AnchorPayload, Target};
    let cp = c.ledger.checkpoint(size).await.unwrap().unwrap();
    let key = anchord_relay::target::idempotency_key(target, &cp);
    assert!(c.ledger.enqueue_anchor(target, size, &key).await.unwrap());
    let job = c
        .ledger
        .claim_anchor_job(target, 1000)
        .await
        .unwrap()
        .unwrap();
    let t =
        anchord_relay::judicial::JudicialTarget::new(&judicial_target(target, sim, 3000)).unwrap();
    let p = AnchorPayload::new(target, &cp);
    let prepared = t.prepare(&p).await.unwrap();
    assert!(
        c.ledger
            .record_anchor_prepared(&job, None, &serde_json::to_string(&prepared).unwrap())
            .await
            .unwrap()
    );
    t.send(&p, &prepared).await.unwrap();
}
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
        relay_config(vec![judicial_target("outage", &sim, 3000)]),
        &c.ledger,
    );
    for _ in 0..3 {
        c.seal().await;
    }
    wait_for("the first checkpoints anchored", 30, || {
        settled(&c.ledger, "outage")
    })
    .await;
    let before = c.ledger.anchor_receipts(Some("outage")).await.unwrap();
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
        settled(&c.ledger, "outage")
    })
    .await;
    assert!(
        sim.handle.stats().outage_rejections > 0,
        "the outage was felt"
    );
    check_against_chain(&c.ledger, "outage", &sim).await;
    // Coalescing: far fewer anchors than checkpoints during the outage.
    let receipts = c.ledger.anchor_receipts(Some("outage")).await.unwrap();
    let during = receipts
        .iter()
        .filter(|r| r.checkpoint_size >= first_in_outage)
        .count();
    assert!(
        during < (last - first_in_outage + 1) as usize,
        "{during} anchors for {} checkpoints",
        last - first_in_outage + 1
    );
    // The outage view: with a 1 s threshold, the outage is one window with
    // its covering anchor; the coalescing before it is not reported.
    let now = now_us();
    let report = anchord_relay::report::gaps(&c.ledger, "outage", 1000, now)
        .await
        .unwrap();
    let gaps = &report.windows;
    assert!(
        gaps.iter().any(|g| g.covered_by.is_some()
            && g.first_size >= first_in_outage
            && g.checkpoints >= 3
            && g.max_delay_ms > 1000),
        "an outage window with its covering anchor: {gaps:?}"
    );
    assert!(
        gaps.iter()
            .all(|g| g.covered_by.is_some() && g.first_size >= first_in_outage),
        "only the outage: {gaps:?}"
    );
    // Nothing waited a minute: no window at the default threshold.
    let quiet = anchord_relay::report::gaps(
        &c.ledger,
        "outage",
        anchord_relay::report::DEFAULT_LATE_AFTER_MS,
        now,
    )
    .await
    .unwrap();
    assert!(quiet.windows.is_empty(), "{quiet:?}");
    assert!(quiet.lost.is_empty(), "{quiet:?}");
    assert_eq!(sim.handle.stats().duplicate_submissions, 0);
    wait_for("the backlog gauge at 0", 10, || async {
        metric("anchord_relay_backlog_checkpoints", "outage") == 0.0
    })
    .await;
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
    let court = [("target", "outage")];
    assert!(value("anchord_relay_submissions_total", &court) >= 2.0);
    assert!(value("anchord_relay_confirmations_total", &court) >= 2.0);
    assert!(value("anchord_relay_retries_total", &court) >= 1.0);
    assert!(
        value(
            "anchord_relay_failures_total",
            &[("target", "outage"), ("class", "unavailable")]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_never_list_a_checkpoint_that_has_its_own_anchor() {
    // Checkpoint 2's anchor is slow: checkpoint 4's lands first and records
    // 1..3 as covered; then 2's own anchor is confirmed too. Checkpoint 2 is
    // anchored, not a gap.
    let mut c = Chainlet::new().await;
    for _ in 0..4 {
        c.seal().await;
    }
    let receipt = |size: u64| anchord_ledger::NewReceipt {
        chain_kind: "judicial".into(),
        chain_id: "sim-court".into(),
        tx_id: format!("tx-{size}"),
        block_number: size,
        block_hash: format!("hash-{size}"),
        block_time_us: 0,
        genesis_hash: Some("genesis".into()),
        receipt_json: "{}".into(),
    };
    let claim = |size: u64| {
        let ledger = c.ledger.clone();
        async move {
            let cp = ledger.checkpoint(size).await.unwrap().unwrap();
            let key = anchord_relay::target::idempotency_key("court", &cp);
            assert!(ledger.enqueue_anchor("court", size, &key).await.unwrap());
            let job = ledger
                .claim_anchor_job("court", 60_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(job.checkpoint.size, size);
            assert!(
                ledger
                    .record_anchor_prepared(&job, None, "{}")
                    .await
                    .unwrap()
            );
            job
        }
    };
    let slow = claim(2).await;
    let fast = claim(4).await;
    let covered = c
        .ledger
        .record_anchor_confirmed(&fast, &receipt(4))
        .await
        .unwrap();
    assert_eq!(covered.unwrap().covered, 3);
    assert!(
        c.ledger
            .record_anchor_confirmed(&slow, &receipt(2))
            .await
            .unwrap()
            .is_some()
    );
    let report = anchord_relay::report::gaps(&c.ledger, "court", 0, now_us())
        .await
        .unwrap();
    let runs: Vec<(u64, u64)> = report
        .windows
        .iter()
        .map(|g| (g.first_size, g.last_size))
        .collect();
    assert_eq!(runs, vec![(1, 1), (3, 3)], "{report:?}");
    let coverage: Vec<u64> = c
        .ledger
        .anchor_coverage("court")
        .await
        .unwrap()
        .iter()
        .map(|r| r.checkpoint_size)
        .collect();
    assert_eq!(coverage, vec![1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_gauge_follows_the_ledger_while_the_worker_is_busy() {
    // Every request takes 1.5 s: the worker is never idle while checkpoints
    // keep coming, and the gauge must still say how many wait.
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults::default()).await;
    let relay = spawn_relay(
        relay_config(vec![judicial_target("busy", &sim, 8000)]),
        &c.ledger,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.handle.set_faults(&Faults {
        latency_ms: Some(1500),
        ..Faults::default()
    });
    c.seal().await;
    wait_for("the first anchor in flight", 10, || async {
        sim.handle.stats().submissions >= 1
    })
    .await;
    for _ in 0..5 {
        c.seal().await;
    }
    // While the worker sends the next anchor, the gauge equals the ledger's
    // count of final checkpoints not anchored or covered.
    wait_for("the second anchor in flight", 20, || async {
        sim.handle.stats().submissions >= 2
    })
    .await;
    let mut seen = Vec::new();
    let mut matched = false;
    for _ in 0..10 {
        let want = c.ledger.anchor_backlog("busy").await.unwrap() as f64;
        let got = metric("anchord_relay_backlog_checkpoints", "busy");
        seen.push((want, got));
        if want >= 4.0 && got == want {
            matched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matched, "gauge vs ledger while busy: {seen:?}");
    sim.handle.set_faults(&Faults {
        latency_ms: Some(0),
        ..Faults::default()
    });
    wait_for("settled", 60, || settled(&c.ledger, "busy")).await;
    wait_for("the gauge at 0", 10, || async {
        metric("anchord_relay_backlog_checkpoints", "busy") == 0.0
    })
    .await;
    stop_relay(relay).await;
    sim.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_attempts_fail_before_anything_is_sent_is_pending_not_sending() {
    // A relay claimed the job and died before recording anything; the
    // gateway is down. Nothing was ever sent: the job must read `pending`
    // (and may be superseded), not `sending`.
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults::default()).await;
    let size = c.seal().await;
    let cp = c.ledger.checkpoint(size).await.unwrap().unwrap();
    let key = anchord_relay::target::idempotency_key("down", &cp);
    assert!(c.ledger.enqueue_anchor("down", size, &key).await.unwrap());
    c.ledger
        .claim_anchor_job("down", 1000)
        .await
        .unwrap()
        .unwrap();
    sim.handle.set_faults(&Faults {
        outage_ms: Some(60_000),
        ..Faults::default()
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let relay = spawn_relay(
        relay_config(vec![judicial_target("down", &sim, 3000)]),
        &c.ledger,
    );
    wait_for("the outage felt", 20, || async {
        sim.handle.stats().outage_rejections >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let jobs = c.ledger.anchor_job_counts("down").await.unwrap();
    assert_eq!(jobs, vec![("pending".to_string(), 1)], "{jobs:?}");
    // Back up: anchored once.
    sim.handle.set_faults(&Faults {
        outage_ms: Some(0),
        ..Faults::default()
    });
    wait_for("anchored", 30, || settled(&c.ledger, "down")).await;
    stop_relay(relay).await;
    assert_eq!(sim.handle.stats().accepted, 1);
    sim.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_job_keeps_being_looked_up_while_faults_continue() {
    // Checkpoint 1 was sent by a relay that died; then the gateway goes
    // down while new checkpoints keep coming. The sent job must keep being
    // looked up (with backoff), not starve behind each newest checkpoint.
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        dedup: Some(false),
        ..Faults::default()
    })
    .await;
    let size = c.seal().await;
    sent_by_a_dead_relay(&c, &sim, "flaky", size).await;
    let before = job_attempts(&c.db, "flaky", size).await;
    sim.handle.set_faults(&Faults {
        outage_ms: Some(6000),
        ..Faults::default()
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let relay = spawn_relay(
        relay_config(vec![judicial_target("flaky", &sim, 3000)]),
        &c.ledger,
    );
    // New checkpoints as fast as they can be sealed, for 3.5 s of the
    // outage: there is nearly always a newer job due than the sent one.
    let until = std::time::Instant::now() + Duration::from_millis(3500);
    while std::time::Instant::now() < until {
        c.seal().await;
    }
    let during = job_attempts(&c.db, "flaky", size).await;
    assert!(
        during >= before + 3,
        "the sent job was looked up {} time(s) during the outage",
        during - before
    );
    wait_for("settled", 60, || settled(&c.ledger, "flaky")).await;
    stop_relay(relay).await;
    check_against_chain(&c.ledger, "flaky", &sim).await;
    assert!(
        c.ledger
            .anchor_receipts(Some("flaky"))
            .await
            .unwrap()
            .iter()
            .any(|r| r.checkpoint_size == size),
        "the dead relay's anchor was found and recorded"
    );
    sim.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_gateway_loses_its_anchors_and_every_checkpoint_is_anchored_again_once() {
    init_logs();
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        dedup: Some(false),
        ..Faults::default()
    })
    .await;
    let relay = spawn_relay(
        relay_config(vec![judicial_target("reset-court", &sim, 3000)]),
        &c.ledger,
    );
    for _ in 0..3 {
        c.seal().await;
        wait_for("anchored", 30, || settled(&c.ledger, "reset-court")).await;
    }
    let before = c.ledger.anchor_receipts(Some("reset-court")).await.unwrap();
    assert_eq!(before.len(), 3);
    // Re-verified in place.
    wait_for("receipts re-verified", 20, || async {
        c.ledger
            .anchor_health("reset-court")
            .await
            .unwrap()
            .unverified_receipts
            == 0
    })
    .await;
    assert_eq!(
        metric("anchord_relay_anchors_lost_total", "reset-court"),
        0.0
    );

    // The gateway is rebuilt empty, and drops whatever it accepts for now:
    // the loss must show while nothing is anchored again.
    sim.handle.set_faults(&Faults {
        reset_chain: Some(true),
        drop_rate: Some(1.0),
        ..Faults::default()
    });
    wait_for("the loss detected", 20, || async {
        c.ledger
            .anchor_lost_receipts(Some("reset-court"))
            .await
            .unwrap()
            .len()
            == 3
    })
    .await;
    let lost = c
        .ledger
        .anchor_lost_receipts(Some("reset-court"))
        .await
        .unwrap();
    assert!(
        lost.iter()
            .all(|r| r.lost_reason.as_deref().unwrap().contains("chain reset")),
        "{lost:?}"
    );
    assert!(
        c.ledger
            .anchor_receipts(Some("reset-court"))
            .await
            .unwrap()
            .is_empty()
    );
    let health = c.ledger.anchor_health("reset-court").await.unwrap();
    assert_eq!(health.lost_receipts, 3);
    assert_eq!(health.chain_resets, 1);
    assert_eq!(health.uncovered_checkpoints, 3, "{health:?}");
    let report = anchord_relay::report::gaps(&c.ledger, "reset-court", 60_000, now_us())
        .await
        .unwrap();
    assert_eq!(report.lost.len(), 3, "{report:?}");
    assert!(report.lost.iter().all(|l| l.now_anchored_by.is_none()));
    let open = report.windows.last().expect("an open window");
    assert!(open.covered_by.is_none());
    assert_eq!(
        (open.first_size, open.last_size, open.lost_anchors),
        (1, 3, 3)
    );
    assert!(metric("anchord_relay_anchors_lost_total", "reset-court") >= 3.0);
    assert_eq!(
        metric("anchord_relay_chain_resets_total", "reset-court"),
        1.0
    );
    wait_for("the backlog gauge shows it", 10, || async {
        metric("anchord_relay_backlog_checkpoints", "reset-court") == 3.0
    })
    .await;

    // The gateway works again: anchored again, each checkpoint at most once
    // on the new chain, everything anchored or covered.
    sim.handle.set_faults(&Faults {
        drop_rate: Some(0.0),
        ..Faults::default()
    });
    wait_for("anchored again", 60, || settled(&c.ledger, "reset-court")).await;
    stop_relay(relay).await;
    check_against_chain(&c.ledger, "reset-court", &sim).await;
    let report = anchord_relay::report::gaps(&c.ledger, "reset-court", 60_000, now_us())
        .await
        .unwrap();
    assert!(
        report.lost.iter().all(|l| l.now_anchored_by.is_some()),
        "{report:?}"
    );
    assert_eq!(sim.handle.stats().resets, 1);
    sim.handle.stop().await;
}

/// Found by the chaos suite (issue 14): a judicial submission sent to the
/// gateway's NEW chain just before a relay noticed the reset was discarded
/// as "signed for another chain" (judicial submissions name no genesis), the
/// job went back to pending without a submission, and the relay sent a
/// second one without asking first: the checkpoint anchored twice on a
/// gateway without duplicate detection. A judicial submission binds no
/// chain: it is kept, and the relay looks it up by idempotency key first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_sent_to_the_new_chain_before_the_reset_is_noticed_is_looked_up_not_sent_again()
 {
    init_logs();
    let mut c = Chainlet::new().await;
    let sim = start_sim(Faults {
        dedup: Some(false),
        ..Faults::default()
    })
    .await;
    // The relay knows the chain (its identity is recorded) and anchors one.
    let relay = spawn_relay(
        relay_config(vec![judicial_target("court", &sim, 3000)]),
        &c.ledger,
    );
    c.seal().await;
    wait_for("anchored", 30, || settled(&c.ledger, "court")).await;
    stop_relay(relay).await;

    // The gateway is rebuilt; before any relay notices, one sends the next
    // checkpoint's anchor to the new chain and dies (job left `sending`).
    sim.handle.set_faults(&Faults {
        reset_chain: Some(true),
        ..Faults::default()
    });
    let size = c.seal().await;
    sent_by_a_dead_relay(&c, &sim, "court", size).await;
    wait_for("the hand-sent anchor in a block", 20, || async {
        sim.handle.blocks().iter().any(|b| !b.txs.is_empty())
    })
    .await;
    let accepted = sim.handle.stats().accepted;
    tokio::time::sleep(Duration::from_millis(1100)).await; // its lease runs out

    let relay = spawn_relay(
        relay_config(vec![judicial_target("court", &sim, 3000)]),
        &c.ledger,
    );
    wait_for("the reset noticed", 20, || async {
        c.ledger.anchor_health("court").await.unwrap().chain_resets == 1
    })
    .await;
    wait_for("every checkpoint anchored again", 30, || {
        settled(&c.ledger, "court")
    })
    .await;
    stop_relay(relay).await;
    let on_chain: Vec<u64> = sim
        .handle
        .blocks()
        .iter()
        .flat_map(|b| b.txs.iter().map(|t| t.evidence.size))
        .collect();
    assert_eq!(
        on_chain.iter().filter(|s| **s == size).count(),
        1,
        "checkpoint {size} on the new chain: {on_chain:?}"
    );
    // At most checkpoint 1 (lost with the old chain; or covered by 2's
    // anchor) was sent again; checkpoint 2 never.
    assert!(sim.handle.stats().accepted <= accepted + 1);
    check_against_chain(&c.ledger, "court", &sim).await;
    sim.handle.stop().await;
}

/// Found in CI: the relay's job loop confirms checkpoint 2's anchor (looked
/// up on the new chain) while its re-verification loop records the chain
/// reset that loses checkpoint 1's. Each transaction computed coverage from
/// what it saw: the confirmation still saw 1's anchor live (so it covered
/// nothing below it), the reset did not yet see 2's (so it re-covered
/// nothing), and checkpoint 1 was left with neither an anchor nor a job
/// until a newer checkpoint came. The transactions changing a target's
/// anchors now take the target's lock first; committed at the same moment,
/// in either order, checkpoint 1 ends covered by 2's anchor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_racing_a_chain_reset_leaves_no_checkpoint_uncovered() {
    use anchord_ledger::{ChainIdentity, NewReceipt};
    let mut c = Chainlet::new().await;
    let s1 = c.seal().await;
    let s2 = c.seal().await;
    let old = ChainIdentity {
        chain_id: "sim-court".into(),
        genesis_hash: "aa".repeat(32),
    };
    let new = ChainIdentity {
        chain_id: "sim-court".into(),
        genesis_hash: "bb".repeat(32),
    };
    let receipt = |tx: String, chain: &ChainIdentity| NewReceipt {
        chain_kind: "judicial".into(),
        chain_id: chain.chain_id.clone(),
        tx_id: tx,
        block_number: 1,
        block_hash: "cc".repeat(32),
        block_time_us: 1_764_000_000_000_000,
        genesis_hash: Some(chain.genesis_hash.clone()),
        receipt_json: "{}".into(),
    };
    for k in 0..40 {
        let t = format!("race-{k}");
        let l = &c.ledger;
        l.record_anchor_chain(&t, &old).await.unwrap();
        assert!(l.enqueue_anchor(&t, s1, &format!("{t}/1")).await.unwrap());
        let j1 = l.claim_anchor_job(&t, 60_000).await.unwrap().unwrap();
        l.record_anchor_confirmed(&j1, &receipt(format!("{t}/tx1"), &old))
            .await
            .unwrap()
            .unwrap();
        assert!(l.enqueue_anchor(&t, s2, &format!("{t}/2")).await.unwrap());
        let j2 = l.claim_anchor_job(&t, 60_000).await.unwrap().unwrap();
        assert_eq!(j2.checkpoint.size, s2);
        let r2 = receipt(format!("{t}/tx2"), &new);
        let (reset, confirmed) = tokio::join!(
            l.record_chain_reset(&t, &old, &new),
            l.record_anchor_confirmed(&j2, &r2)
        );
        assert!(reset.unwrap().is_some(), "{t}: the reset is recorded");
        assert!(confirmed.unwrap().is_some(), "{t}: 2's anchor is recorded");
        assert_eq!(
            l.anchor_uncovered(&t, 0).await.unwrap(),
            Vec::<u64>::new(),
            "{t}: a checkpoint left without an anchor or a job"
        );
    }
}
