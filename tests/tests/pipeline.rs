//! ARCHITECTURE.md's walkthrough as a test: one loan contract from a Kafka
//! topic to a proof a court can check offline, through every stage running
//! together on a real broker and a real PostgreSQL.
//!
//! ingest (Kafka → ledger) → batcher (blocks, signed checkpoints, a witness's
//! cosignature) → relay (anchors on the judicial-chain simulator) → verifier
//! (the proof bundle) → `verify_bundle`, offline.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use anchord_batcher::config::{BatcherConfig, WitnessPeer};
use anchord_batcher::witness::{self, Witness};
use anchord_core::bundle::{AnchorState, DeclaredKeys, TrustedKeys, verify_bundle};
use anchord_core::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, NoteSigner};
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ingest::IngestConfig;
use anchord_relay::config::{RelayConfig, TargetConfig, TargetKind};
use anchord_relay::sim::{self, Faults, SimConfig};
use anchord_testkit::TestDb;
use anchord_testkit::process::temp_dir;
use anchord_verifier::VerifierConfig;
use anchord_verifier::prover::Prover;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

const SUITE: HashSuite = HashSuite::Sha256;
const ORIGIN: &str = "anchord.test/pipeline";
const N: usize = 300;

fn contract(i: usize) -> Vec<u8> {
    format!("signed loan agreement no. {i}, 250000.00 CNY").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_contract_travels_from_kafka_to_an_offline_verified_anchored_proof() {
    let (_db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(SUITE).await.unwrap();
    let stop = CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();

    // A notary office's witness, with a database of its own.
    let _wdb = TestDb::new().await;
    let wstore = anchord_ledger::WitnessStore::connect(&_wdb.config()).unwrap();
    wstore.migrate().await.unwrap();
    let sealer = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[7; 32]).unwrap();
    let notary = NoteSigner::from_seed("notary.test", ALG_COSIGNATURE_V1, &[8; 32]).unwrap();
    let logs = HashMap::from([(ORIGIN.to_string(), (SUITE, vec![sealer.verifier()]))]);
    let (waddr, _w) = witness::start(
        Witness::new(wstore, notary.clone(), logs),
        "127.0.0.1:0".parse().unwrap(),
        stop.clone(),
    )
    .await
    .unwrap();

    // The court's judicial chain (simulated, on disk).
    let dir = temp_dir("anchord_pipeline");
    let (gateway_key, gateway_pub) = anchord_testkit::rsa_keypair(&dir);
    let gateway_pub = std::fs::read_to_string(gateway_pub).unwrap();
    let court = sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            "bank-001".into(),
            anchord_relay::gateway::load_public_key(&gateway_pub).unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults: Faults::default(),
    })
    .await
    .unwrap();

    // The bank's systems publish N contracts and one malformed message.
    let topic = anchord_testkit::kafka::topic("pipeline", 4).await;
    let dlq = format!("{topic}.dlq");
    anchord_testkit::kafka::create_topic(&dlq, 1).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", anchord_testkit::kafka::brokers())
        .create()
        .unwrap();
    let mut payloads: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "v": 1,
                "tenant": "icbc-sh",
                "external_id": format!("LOAN-2026-{i:06}"),
                "hash_alg": "sha256",
                "hash": hex::encode(EvidenceAlg::Sha256.hash(&contract(i))),
                "metadata": {"type": "loan-contract"},
                "produced_at": 1_795_000_000_000u64 + i as u64,
            }))
            .unwrap()
        })
        .collect();
    payloads.insert(N / 2, b"{\"v\":1,\"tenant\":".to_vec());
    for (i, p) in payloads.iter().enumerate() {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(p),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    // Every stage, in this process.
    let ingest = IngestConfig {
        brokers: anchord_testkit::kafka::brokers(),
        topic: topic.clone(),
        group_id: anchord_testkit::unique("g"),
        dead_letter_topic: dlq,
        tenants: vec!["icbc-sh".into()],
        batch_max: 100,
        batch_linger_ms: 10,
        ..IngestConfig::default()
    };
    let key_file = dir.join("sealer.key");
    std::fs::write(&key_file, sealer.private_key_text()).unwrap();
    let batcher = BatcherConfig {
        origin: ORIGIN.into(),
        signing_key: Some(key_file),
        block_interval_ms: 200,
        witnesses: vec![WitnessPeer {
            name: "notary.test".into(),
            url: format!("http://{waddr}"),
            vkey: notary.verifier().vkey(),
        }],
        quorum: Some(1),
        ..BatcherConfig::default()
    };
    let relay = RelayConfig {
        targets: vec![TargetConfig {
            name: "court".into(),
            kind: TargetKind::Judicial,
            request_timeout_ms: 5000,
            confirm_poll_ms: 100,
            url: Some(court.url()),
            account_id: Some("bank-001".into()),
            signing_key: Some(gateway_key),
            rpc_url: None,
            chain_id: None,
            confirmations: None,
            to: None,
        }],
        poll_ms: 50,
        ..RelayConfig::default()
    };
    let tasks = vec![
        tokio::spawn({
            let (l, s) = (ledger.clone(), stop.clone());
            async move {
                anchord_ingest::run(ingest, SUITE, l, s)
                    .await
                    .map_err(|e| e.to_string())
            }
        }),
        tokio::spawn({
            let (l, s) = (ledger.clone(), stop.clone());
            async move {
                anchord_batcher::run(batcher, SUITE, l, s)
                    .await
                    .map_err(|e| e.to_string())
            }
        }),
        tokio::spawn({
            let (l, s) = (ledger.clone(), stop.clone());
            async move {
                anchord_relay::run(relay, l, None, s)
                    .await
                    .map_err(|e| e.to_string())
            }
        }),
    ];

    anchord_testkit::wait_for("every contract sealed, witnessed and anchored", 120, || {
        let l = ledger.clone();
        async move {
            let s = l.summary().await.unwrap();
            s.entries == N as u64
                && s.sealed_entries == s.entries
                && s.final_checkpoint_size == s.checkpoint_size
                && s.anchors > 0
        }
    })
    .await;
    for t in &tasks {
        assert!(!t.is_finished(), "no stage stopped on its own");
    }
    let s = ledger.summary().await.unwrap();
    assert_eq!(
        s.dead_letters, 1,
        "the malformed message is a dead letter: {s:?}"
    );

    // A court asks for the proof of contract 42 and checks it offline.
    let hash = EvidenceAlg::Sha256.hash(&contract(42));
    let stored = ledger.entries_by_hash(&hash).await.unwrap().remove(0);
    assert_eq!(stored.entry.external_id, "LOAN-2026-000042");
    let prover = Prover::new(
        ledger.clone(),
        SUITE,
        DeclaredKeys {
            sealer: sealer.verifier().vkey(),
            witnesses: vec![notary.verifier().vkey()],
            quorum: 1,
        },
        &VerifierConfig {
            pending_cache_ttl_s: 0,
            anchored_cache_ttl_s: 0,
            anchor_view_ttl_ms: 0,
            ..VerifierConfig::default()
        },
    );
    // The relay anchors the newest final checkpoint; poll until the bundle
    // ends at an anchored one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let bundle = loop {
        let b = prover
            .bundle_for(&stored)
            .await
            .unwrap()
            .expect("a sealed entry has a bundle");
        if b.anchor.status == AnchorState::Anchored {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the contract's block was never anchored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let trusted = || TrustedKeys {
        sealers: vec![sealer.verifier()],
        witnesses: vec![notary.verifier()],
        quorum: 1,
        timestamps: None,
        from_bundle: false,
    };
    let report = verify_bundle(&bundle, &trusted(), Some(&hash));
    assert!(report.is_ok(), "the proof verifies offline: {report:?}");
    assert!(
        court.stats().accepted >= 1,
        "the anchor is on the court's chain: {:?}",
        court.stats()
    );

    // Online: the court's chain itself holds the anchor the receipt names,
    // and a receipt pointing at another block is caught.
    let http = anchord_verifier::online::client().unwrap();
    let chain = anchord_verifier::trust::TrustedChain {
        kind: "judicial".into(),
        chain_id: "sim-court".into(),
        endpoints: vec![court.url()],
    };
    let check = |r: anchord_core::bundle::AnchorReceipt| {
        let (http, chain) = (http.clone(), chain.clone());
        async move {
            anchord_verifier::online::check_receipt(
                &http,
                ORIGIN,
                &r,
                &chain,
                &chain.endpoints,
                300_000_000,
            )
            .await
        }
    };
    for r in &bundle.anchor.receipts {
        let ok = check(r.clone()).await;
        assert!(ok.is_ok(), "the anchor is on the chain: {ok:?}");
        let mut wrong = r.clone();
        wrong.tx_id = "00".repeat(32);
        let err = check(wrong).await;
        assert!(err.unwrap_err().to_string().contains("is not in the block"));
        let mut wrong = r.clone();
        wrong.checkpoint_size += 1;
        assert!(check(wrong).await.is_err());
    }

    // The same proof does not vouch for a contract with one byte changed.
    let mut forged = contract(42);
    forged[0] ^= 1;
    let other = EvidenceAlg::Sha256.hash(&forged);
    assert!(verify_bundle(&bundle, &trusted(), Some(&other)).is_err());

    stop.cancel();
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
        assert!(r.is_ok(), "a stage failed: {r:?}");
    }
}
