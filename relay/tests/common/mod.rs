//! Shared helpers: a ledger with final checkpoints (sealed by the batcher's
//! own seal path, no witnesses: final at once), RSA keys from openssl, the
//! simulator, and checks against its on-disk chain.

#![allow(clippy::unwrap_used, dead_code)]

use anchord_testkit::evidence;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anchord_batcher::BatcherConfig;
use anchord_core::HashSuite;
use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
use anchord_ledger::Ledger;
use anchord_relay::config::{FinalityConfig, RelayConfig, TargetConfig, TargetKind};
use anchord_relay::sim::{self, Faults, SimConfig, SimHandle};
use anchord_testkit::TestDb;

pub const SUITE: HashSuite = HashSuite::Sha256;
pub const ORIGIN: &str = "anchord.test/relay";
pub const ACCOUNT: &str = "anchord-test-bank";

/// Relay logs in the test output (shown for failing tests); ANCHORD_LOG
/// filters them.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANCHORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("anchord_relay=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(anchord_testkit::unique(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A ledger whose checkpoints we make one by one.
pub struct Chainlet {
    pub db: TestDb,
    pub ledger: Ledger,
    batcher: BatcherConfig,
    n: usize,
}

impl Chainlet {
    pub async fn new() -> Chainlet {
        let (db, ledger) = TestDb::migrated().await;
        let key = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[9; 32]).unwrap();
        let p = temp_dir("anchord_relay_keys").join("sealer.key");
        std::fs::write(&p, key.private_key_text()).unwrap();
        Chainlet {
            db,
            ledger,
            batcher: BatcherConfig {
                origin: ORIGIN.into(),
                signing_key: Some(p),
                ..BatcherConfig::default()
            },
            n: 0,
        }
    }

    /// Append two entries and seal them: one more final checkpoint. Its size.
    pub async fn seal(&mut self) -> u64 {
        let entries = (0..2)
            .map(|_| {
                self.n += 1;
                let hash = SUITE.digest(format!("e{}", self.n).as_bytes()).to_vec();
                evidence::entry("bank-a", format!("loan-{}", self.n), hash)
            })
            .collect();
        evidence::append(&self.ledger, SUITE, evidence::RECEIVED_AT_US, entries).await;
        // The previous seal's lock connection may still be closing on the
        // server side (the advisory lock goes with it): retry, bounded.
        for _ in 0..200 {
            if let Some(r) = anchord_batcher::seal_once(&self.batcher, SUITE, &self.ledger)
                .await
                .unwrap()
            {
                return r.height + 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("could not seal: the sealer lock stayed taken");
    }
}

pub struct Sim {
    pub handle: SimHandle,
    pub dir: PathBuf,
    pub key: PathBuf,
}

/// Start the simulator on a loopback port with `faults`.
pub async fn start_sim(faults: Faults) -> Sim {
    let dir = temp_dir("anchord_sim");
    let (key, public) = anchord_testkit::rsa_keypair(&dir);
    let public = std::fs::read_to_string(public).unwrap();
    let handle = sim::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("chain"),
        chain_id: "sim-court".into(),
        accounts: vec![(
            ACCOUNT.into(),
            anchord_relay::gateway::load_public_key(&public).unwrap(),
        )],
        block_ms: 20,
        wait_ms: 1000,
        faults,
    })
    .await
    .unwrap();
    Sim { handle, dir, key }
}

pub fn judicial_target(name: &str, sim: &Sim, timeout_ms: u64) -> TargetConfig {
    TargetConfig {
        name: name.into(),
        kind: TargetKind::Judicial,
        request_timeout_ms: timeout_ms,
        confirm_poll_ms: 100,
        url: Some(sim.handle.url()),
        account_id: Some(ACCOUNT.into()),
        signing_key: Some(sim.key.clone()),
        rpc_url: None,
        chain_id: None,
        confirmations: None,
        to: None,
    }
}

/// Fast retry settings for tests.
pub fn relay_config(targets: Vec<TargetConfig>) -> RelayConfig {
    RelayConfig {
        poll_ms: 50,
        lease_ms: 15_000,
        backoff_initial_ms: 50,
        backoff_max_ms: 400,
        backoff_jitter: 0.3,
        breaker_failures: 3,
        breaker_open_ms: 100,
        breaker_open_max_ms: 400,
        // Re-verify recorded anchors every 200 ms.
        finality: targets_finality(&targets),
        targets,
    }
}

/// Fast re-verification for every target.
pub fn targets_finality(
    targets: &[TargetConfig],
) -> std::collections::BTreeMap<String, FinalityConfig> {
    targets
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                FinalityConfig {
                    reverify_ms: 200,
                    ..FinalityConfig::default()
                },
            )
        })
        .collect()
}

pub use anchord_testkit::wait_for;

/// Every final checkpoint anchored or covered, and no job in flight.
pub async fn settled(ledger: &Ledger, target: &str) -> bool {
    ledger.anchor_uncovered(target, 0).await.unwrap().is_empty()
        && ledger
            .anchor_job_counts(target)
            .await
            .unwrap()
            .iter()
            .all(|(s, _)| !matches!(s.as_str(), "pending" | "sending" | "submitted"))
}

/// The guarantees, checked against the simulator's on-disk chain:
/// - every final checkpoint has a receipt or a coverage row;
/// - no checkpoint is on chain twice;
/// - the chain's anchors and the receipts are the same set, and every
///   receipt's block height, block hash and transaction are on disk.
pub async fn check_against_chain(ledger: &Ledger, target: &str, sim: &Sim) {
    assert_eq!(
        ledger.anchor_uncovered(target, 0).await.unwrap(),
        Vec::<u64>::new(),
        "uncovered checkpoints"
    );
    let blocks = sim::load_chain(&sim.dir.join("chain")).expect("the on-disk chain verifies");
    let mut on_chain: HashMap<u64, (String, u64, String)> = HashMap::new();
    for b in &blocks {
        for t in &b.txs {
            assert_eq!(t.evidence.origin, ORIGIN);
            if let Some(prev) =
                on_chain.insert(t.evidence.size, (t.tx_id.clone(), b.height, b.hash.clone()))
            {
                panic!(
                    "checkpoint {} anchored twice: tx {} and tx {}",
                    t.evidence.size, prev.0, t.tx_id
                );
            }
        }
    }
    let receipts = ledger.anchor_receipts(Some(target)).await.unwrap();
    assert_eq!(
        receipts.len(),
        on_chain.len(),
        "receipts {:?} vs on chain {:?}",
        receipts
            .iter()
            .map(|r| r.checkpoint_size)
            .collect::<Vec<_>>(),
        on_chain.keys().collect::<Vec<_>>()
    );
    for r in &receipts {
        let (tx, h, hash) = on_chain
            .get(&r.checkpoint_size)
            .unwrap_or_else(|| panic!("receipt for {} not on chain", r.checkpoint_size));
        assert_eq!(&r.tx_id, tx);
        assert_eq!(r.block_number, *h);
        assert_eq!(&r.block_hash, hash);
        let cp = ledger.checkpoint(r.checkpoint_size).await.unwrap().unwrap();
        let tx = blocks[*h as usize]
            .txs
            .iter()
            .find(|t| &t.tx_id == tx)
            .unwrap();
        assert_eq!(
            tx.evidence.root,
            anchord_core::checkpoint::encode_hash(&cp.root)
        );
        let json: serde_json::Value = serde_json::from_str(&r.receipt_json).unwrap();
        assert_eq!(json["checkpoint"]["size"].as_u64(), Some(r.checkpoint_size));
        assert_eq!(json["chainId"], "sim-court");
    }
}
