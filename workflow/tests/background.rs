//! The workflow's background paths end to end: anchors from the relay (on
//! the judicial-chain simulator) reaching preservation details and the
//! system log; webhooks giving up after their attempts; the periodic
//! anchoring of the audit chain's head; the SM3 suite from approval to a
//! verified proof.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anchord_core::bundle::{Bundle, TrustedKeys, verify_bundle};
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_relay::config::{RelayConfig, TargetConfig, TargetKind};
use anchord_relay::sim::{self, Faults, SimConfig};
use common::Env;
use serde_json::{Value, json};

fn evidence_file() -> Vec<u8> {
    "通话录音 transcript, borrower 张三, 2026-01-05"
        .as_bytes()
        .to_vec()
}

/// Admin, a user and a reviewer of bank-a, a product, and a preservation
/// of `file` submitted and approved. Returns (admin, user, preservation
/// path).
async fn approved_preservation(e: &Env, file: &[u8]) -> (String, String, String) {
    let admin = e.admin().await;
    let bank = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", bank.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", bank).await;
    let product = e.product(&admin).await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "50000"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", p["id"]);
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "call.txt",
            file.to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    let v = e
        .ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    assert_eq!(v["status"], "approved");
    (admin, alice, pp)
}

fn judicial_target(name: &str, url: String, key: &std::path::Path) -> TargetConfig {
    TargetConfig {
        name: name.into(),
        kind: TargetKind::Judicial,
        request_timeout_ms: 2000,
        confirm_poll_ms: 100,
        url: Some(url),
        account_id: Some("bank-001".into()),
        signing_key: Some(key.to_path_buf()),
        rpc_url: None,
        chain_id: None,
        confirmations: None,
        to: None,
    }
}

/// (a) With the relay anchoring on the court's simulated chain (and a
/// second target that is down), an approved preservation's detail shows
/// its anchor, and the system log lists the anchor and the relay failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_reach_preservation_details_and_the_system_log() {
    let e = common::start(true, |_| {}).await;
    let dir = common::temp_dir("anchord_workflow_relay");
    let (gateway_key, gateway_pub) = anchord_testkit::rsa_keypair(&dir);
    let court = sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            "bank-001".into(),
            anchord_relay::gateway::load_public_key(
                &std::fs::read_to_string(&gateway_pub).unwrap(),
            )
            .unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults: Faults::default(),
    })
    .await
    .unwrap();
    // Nothing listens on a port just released.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let relay = RelayConfig {
        targets: vec![
            judicial_target("court", court.url(), &gateway_key),
            judicial_target("court-down", format!("http://{dead}"), &gateway_key),
        ],
        poll_ms: 50,
        backoff_initial_ms: 100,
        backoff_max_ms: 500,
        ..RelayConfig::default()
    };
    let relay_task = tokio::spawn({
        let (l, s) = (e.ledger.clone(), e.stop.clone());
        async move { anchord_relay::run(relay, l, None, s).await }
    });

    let file = evidence_file();
    let (admin, alice, pp) = approved_preservation(&e, &file).await;
    let v = e
        .wait_until(
            "the preservation on chain with its anchor",
            &pp,
            &alice,
            90,
            |v| {
                v["status"] == "on_chain"
                    && v["ledger"]["anchor_status"] == "anchored"
                    && v["ledger"]["anchors"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s.as_str().unwrap().contains("court")))
            },
        )
        .await;
    assert!(v["ledger"]["block_height"].is_i64(), "{v}");
    let anchors = v["ledger"]["anchors"].as_array().unwrap();
    assert!(
        anchors
            .iter()
            .all(|a| !a.as_str().unwrap().starts_with("court-down")),
        "the target that is down anchored nothing: {anchors:?}"
    );
    // The proof bundle carries the same anchor and verifies.
    let bundle = e
        .ok(200, "GET", &format!("{pp}/proof"), Some(&alice), None)
        .await;
    let b: Bundle = serde_json::from_value(bundle.clone()).unwrap();
    let keys = TrustedKeys::from_bundle(&b).unwrap();
    verify_bundle(&b, &keys, Some(&EvidenceAlg::Sha256.hash(&file))).unwrap();
    assert!(
        bundle["anchor"].to_string().contains("sim-court"),
        "{}",
        bundle["anchor"]
    );

    // The system log: the confirmed anchor and the failing target.
    let ev = e
        .wait_until(
            "anchor_confirmed and anchor_failed in the system log",
            "/v1/system/events",
            &admin,
            60,
            |v| {
                let has = |kind: &str, what: &str| {
                    v.as_array().unwrap().iter().any(|x| {
                        x["kind"] == kind && x["detail"].as_str().unwrap_or("").contains(what)
                    })
                };
                has("anchor_confirmed", "court") && has("anchor_failed", "court-down")
            },
        )
        .await;
    assert!(
        ev.as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "block_sealed"),
        "{ev}"
    );
    let failed = e
        .ok(
            200,
            "GET",
            "/v1/system/events?kind=anchor_failed",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["kind"] == "anchor_failed"),
        "{failed}"
    );
    // Only administrators read the system log.
    let (s, _) = e.call("GET", "/v1/system/events", Some(&alice), None).await;
    assert_eq!(s, 403);
    assert!(!relay_task.is_finished(), "the relay keeps running");
    drop(court);
}

/// (b) A receiver that never accepts: the delivery is retried up to
/// `webhook_max_attempts`, then `failed` with its last status and error,
/// and never attempted again; an unreachable receiver fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_exhausting_their_attempts_end_up_failed_and_visible() {
    let e = common::start(false, |c| {
        c.webhook_max_attempts = 3;
        c.webhook_backoff_initial_ms = 100;
        c.webhook_backoff_max_ms = 200;
        // A loopback receiver: allow-listed (egress.rs).
        c.webhook_allow = vec!["127.0.0.1/32".into()];
    })
    .await;
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(hits): axum::extract::State<Arc<AtomicUsize>>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "down for maintenance",
                    )
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };

    let admin = e.admin().await;
    let bank = json!({"tenant": "bank-a"});
    let rita = e.user(&admin, "rita", "reviewer", bank.clone()).await;
    let alice = e.user(&admin, "alice", "user", bank).await;
    let refusing = e
        .ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&rita),
            Some(json!({"url": format!("http://{addr}/hook")})),
        )
        .await;
    let unreachable = e
        .ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&rita),
            Some(json!({"url": format!("http://{dead}/hook")})),
        )
        .await;
    let product = e.product(&admin).await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "1"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", p["id"]);
    let (s, _) = e
        .upload("PUT", &format!("{pp}/file"), &alice, "f", b"x".to_vec())
        .await;
    assert_eq!(s, 200);
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;

    let failed = |v: &Value| v[0]["state"] == "failed";
    let d = e
        .wait_until(
            "the refused delivery marked failed",
            &format!("/v1/webhooks/{}/deliveries", refusing["id"]),
            &rita,
            30,
            failed,
        )
        .await;
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d[0]["event"], "preservation.submitted");
    assert_eq!(d[0]["attempts"], 3, "{d}");
    assert_eq!(d[0]["last_status"], 503, "{d}");
    assert!(d[0]["delivered_at"].is_null(), "{d}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    let d = e
        .wait_until(
            "the unreachable delivery marked failed",
            &format!("/v1/webhooks/{}/deliveries", unreachable["id"]),
            &rita,
            30,
            failed,
        )
        .await;
    assert_eq!(d[0]["attempts"], 3, "{d}");
    assert!(d[0]["last_status"].is_null(), "{d}");
    assert!(
        !d[0]["last_error"].as_str().unwrap_or("").is_empty(),
        "the error is recorded: {d}"
    );
    // Visible to administrators too; and never attempted again.
    let d = e
        .ok(
            200,
            "GET",
            &format!("/v1/webhooks/{}/deliveries", refusing["id"]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(d[0]["state"], "failed");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 3, "no attempt after failing");
}

/// (c) The timer (not `POST /audit/anchor`) publishes the audit chain's
/// head: it lands in the ledger under the audit tenant with the head's
/// hash, gets sealed, and verification checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_head_is_anchored_periodically() {
    let e = common::start(true, |c| c.audit_anchor_interval_s = 1).await;
    let admin = e.admin().await;
    e.user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let pool = e.ledger.workflow_pool();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (upto, head, entry) = loop {
        let c = pool.get().await.unwrap();
        let rows = c
            .query(
                "SELECT a.upto_id, a.head_hash, s.external_id
                   FROM workflow.audit_anchors a JOIN workflow.submissions s ON s.id = a.submission_id
                  ORDER BY a.upto_id",
                &[],
            )
            .await
            .unwrap();
        let mut found = None;
        for r in &rows {
            let upto: i64 = r.get(0);
            let head: Vec<u8> = r.get(1);
            let external_id: String = r.get(2);
            if let Some(s) = e
                .ledger
                .entry_by_identity("anchord-workflow", &external_id)
                .await
                .unwrap()
            {
                found = Some((upto, head, s));
                break;
            }
        }
        if let Some(f) = found {
            break f;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit head reached the ledger within 60 s (anchors: {})",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(entry.entry.tenant, "anchord-workflow");
    assert!(entry.entry.external_id.starts_with("wf-"));
    assert_eq!(entry.entry.evidence_hash, head);
    // The head is the hash of that audit row.
    let c = pool.get().await.unwrap();
    let row_hash: Vec<u8> = c
        .query_one(
            "SELECT row_hash FROM workflow.audit_log WHERE id = $1",
            &[&upto],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(row_hash, head);
    // It gets sealed like any evidence.
    let seq = entry.entry.seq;
    anchord_testkit::wait_for("the audit head sealed", 60, || {
        let l = e.ledger.clone();
        async move { l.summary().await.unwrap().sealed_entries > seq }
    })
    .await;
    let r = e
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["anchors_checked"].as_i64().unwrap() >= 1, "{r}");
}

/// (d) Under the SM3 suite an approved preservation is submitted as SM3
/// evidence, goes on chain, and its proof verifies against the file's SM3
/// digest (and not against another file's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sm3_preservation_goes_on_chain_and_its_proof_verifies() {
    let e = common::start_with(true, HashSuite::Sm3, |c| c.audit_anchor_interval_s = 1).await;
    assert_eq!(e.suite, HashSuite::Sm3);
    let file = evidence_file();
    let (admin, alice, pp) = approved_preservation(&e, &file).await;
    let sm3 = hex::encode(EvidenceAlg::Sm3.hash(&file));
    let v = e
        .wait_until("the sm3 preservation on chain", &pp, &alice, 90, |v| {
            v["status"] == "on_chain" && v["ledger"]["block_height"].is_i64()
        })
        .await;
    assert_eq!(v["file"]["sm3"], sm3, "{v}");
    assert_eq!(
        v["file"]["sha256"],
        hex::encode(EvidenceAlg::Sha256.hash(&file))
    );
    let stored = e
        .ledger
        .entry_by_identity("bank-a", v["ledger"]["external_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.entry.hash_alg, EvidenceAlg::Sm3);
    assert_eq!(hex::encode(&stored.entry.evidence_hash), sm3);
    let bundle = e
        .ok(200, "GET", &format!("{pp}/proof"), Some(&alice), None)
        .await;
    let b: Bundle = serde_json::from_value(bundle).unwrap();
    assert_eq!(b.hash_suite, HashSuite::Sm3);
    let keys = TrustedKeys::from_bundle(&b).unwrap();
    verify_bundle(&b, &keys, Some(&EvidenceAlg::Sm3.hash(&file))).unwrap();
    let mut other = file.clone();
    other[0] ^= 1;
    assert!(verify_bundle(&b, &keys, Some(&EvidenceAlg::Sm3.hash(&other))).is_err());
    // Listing by the SM3 digest finds it.
    let l = e
        .ok(
            200,
            "GET",
            &format!("/v1/preservations?hash={sm3}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
    // The audit chain's head is anchored under the sm3 suite too.
    let r = e
        .wait_until(
            "an anchored audit head",
            "/v1/audit/verify",
            &admin,
            60,
            |r| r["anchors_checked"].as_i64().unwrap_or(0) >= 1,
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    // ... and reaches the ledger (a SHA-256 digest under the SM3 tree).
    let pool = e.ledger.workflow_pool();
    anchord_testkit::wait_for("an audit head in the sm3 ledger", 60, || {
        let (pool, l) = (pool.clone(), e.ledger.clone());
        async move {
            let c = pool.get().await.unwrap();
            for r in c
                .query(
                    "SELECT s.external_id FROM workflow.audit_anchors a
                       JOIN workflow.submissions s ON s.id = a.submission_id",
                    &[],
                )
                .await
                .unwrap()
            {
                let external_id: String = r.get(0);
                if l.entry_by_identity("anchord-workflow", &external_id)
                    .await
                    .unwrap()
                    .is_some()
                {
                    return true;
                }
            }
            false
        }
    })
    .await;
}

/// A background loop that dies takes the service down with it (issue 15):
/// a submission row the evidence publisher cannot read (a NULL tenant,
/// after a schema change it did not expect) panics the publisher. Before,
/// the panic went unnoticed: approved evidence stopped reaching the ledger
/// while the API and readiness stayed green. Now readiness names the loop
/// and the service's future resolves with an error naming it.
#[tokio::test]
async fn a_panicking_evidence_publisher_fails_readiness_and_stops_the_service() {
    let mut e = common::start(false, |_| {}).await;
    assert_eq!(e.health.check(), Ok(()), "every background loop runs");
    let db = e.db.client().await;
    db.batch_execute(
        "ALTER TABLE workflow.submissions ALTER COLUMN tenant DROP NOT NULL;
         INSERT INTO workflow.submissions (kind, object_id, tenant, external_id, hash_alg, hash, metadata)
         VALUES ('preservation', 0, NULL, 'wf-broken', 'sha256', 'aa', '{}')",
    )
    .await
    .unwrap();
    let handle = e.handle.take().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("the service stops by itself when a loop dies")
        .expect("the service's task does not panic");
    match r {
        Err(anchord_workflow::WorkflowError::Task { task, reason }) => {
            assert_eq!(task, "evidence_publisher");
            assert!(reason.contains("panicked"), "{reason}");
        }
        other => panic!("expected the evidence publisher's failure, got {other:?}"),
    }
    let why = e.health.check().unwrap_err();
    assert!(why.contains("evidence_publisher failed: panicked"), "{why}");
    assert!(
        e.health.failure("evidence_publisher").is_some(),
        "readiness reports the failed loop"
    );
    // The API went down with it.
    let gone = e
        .http
        .get(format!("{}/v1/openapi.json", e.base))
        .send()
        .await;
    assert!(gone.is_err(), "the API stopped serving: {gone:?}");
}

/// Asked to stop, the service drains its loops and ends without error.
#[tokio::test]
async fn the_service_drains_its_loops_and_ends_cleanly_when_asked() {
    let mut e = common::start(false, |_| {}).await;
    assert_eq!(e.health.check(), Ok(()), "every background loop runs");
    e.stop.cancel();
    let handle = e.handle.take().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(30), handle)
        .await
        .expect("the service drains in time")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
    let why = e.health.check().unwrap_err();
    assert!(!why.contains("failed"), "{why}");
}
