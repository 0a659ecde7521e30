//! The batcher, the audit and the witness against a real PostgreSQL: one
//! fresh database per test (and per witness).

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use anchord_testkit::evidence;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anchord_batcher::audit::{AuditKeys, audit};
use anchord_batcher::config::{BatcherConfig, WitnessPeer};
use anchord_batcher::cosign::add_checkpoint_body;
use anchord_batcher::witness::{Witness, start};
use anchord_core::checkpoint::{
    ALG_COSIGNATURE_V1, ALG_ED25519, Checkpoint, NoteSigner, NoteVerifier, SignedNote,
};
use anchord_core::tiles::{self, Level0};
use anchord_core::{HashSuite, merkle};
use anchord_ledger::Ledger;
use anchord_testkit::TestDb;
use tokio_util::sync::CancellationToken;

const SUITE: HashSuite = HashSuite::Sha256;
const ORIGIN: &str = "anchord.test/ledger";

fn sealer_key() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[42; 32]).unwrap()
}

fn witness_key(i: u8) -> NoteSigner {
    NoteSigner::from_seed(
        &format!("witness-{i}.test"),
        ALG_COSIGNATURE_V1,
        &[100 + i; 32],
    )
    .unwrap()
}

/// Write the sealer key to a private temp file.
fn key_file(signer: &NoteSigner) -> PathBuf {
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_keys"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("sealer.key");
    std::fs::write(&p, signer.private_key_text()).unwrap();
    p
}

fn config(max: u64, interval_ms: u64) -> BatcherConfig {
    BatcherConfig {
        block_max_entries: max,
        block_interval_ms: interval_ms,
        origin: ORIGIN.into(),
        signing_key: Some(key_file(&sealer_key())),
        standby_poll_ms: 50,
        request_timeout_ms: 2000,
        ..BatcherConfig::default()
    }
}

async fn append(ledger: &Ledger, tag: &str, n: usize) {
    evidence::append(
        ledger,
        SUITE,
        evidence::RECEIVED_AT_US,
        evidence::entries(tag, n),
    )
    .await;
}

/// Poll (bounded) until `f` holds.
async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), anchord_batcher::BatcherError>>,
}

impl Running {
    async fn stop(self) -> Result<(), anchord_batcher::BatcherError> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("batcher stops")
            .unwrap()
    }
}

fn spawn(config: BatcherConfig, ledger: &Ledger) -> Running {
    let stop = CancellationToken::new();
    let task = tokio::spawn(anchord_batcher::run(
        config,
        SUITE,
        ledger.clone(),
        stop.clone(),
    ));
    Running { stop, task }
}

fn keys() -> AuditKeys {
    AuditKeys {
        sealer: sealer_key().verifier(),
        witnesses: vec![],
        quorum: 0,
        tsa_cert: None,
    }
}

/// Blocks are contiguous, gap-free, never empty, and cover `0..n`.
async fn assert_ranges(ledger: &Ledger, n: u64) -> Vec<u64> {
    let blocks = ledger.blocks().await.unwrap();
    let mut next = 0;
    let mut sizes = vec![];
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(b.header.height, i as u64);
        assert_eq!(b.header.first_seq, next, "gap or overlap at block {i}");
        assert!(b.header.leaf_count > 0, "empty block {i}");
        next = b.header.last_seq + 1;
        sizes.push(b.header.leaf_count);
    }
    assert_eq!(next, n, "sealed up to {next}, want {n}");
    sizes
}

#[tokio::test]
async fn seals_by_size_into_contiguous_signed_blocks() {
    let (_db, ledger) = TestDb::migrated().await;
    append(&ledger, "a", 25).await;
    // A long interval: only the size limit can seal.
    let b = spawn(config(10, 600_000), &ledger);
    wait_for("two full blocks", || async {
        ledger.blocks().await.unwrap().len() >= 2
    })
    .await;
    b.stop().await.unwrap();
    let blocks = ledger.blocks().await.unwrap();
    assert_eq!(
        blocks.len(),
        2,
        "the 5 remaining entries wait for the interval"
    );
    assert_eq!(assert_ranges(&ledger, 20).await, vec![10, 10]);
    // Block roots match the leaf hashes; checkpoints are signed and final
    // (no witnesses configured).
    let leaves = ledger.leaf_hashes(0, 10).await.unwrap();
    assert_eq!(blocks[0].header.merkle_root, merkle::root(SUITE, &leaves));
    let cps = ledger.checkpoints().await.unwrap();
    assert_eq!(cps.iter().map(|c| c.size).collect::<Vec<_>>(), vec![1, 2]);
    let hashes: Vec<_> = blocks.iter().map(|b| b.block_hash).collect();
    for cp in &cps {
        let note = SignedNote::parse(&cp.signed_note).unwrap();
        note.verify_by(&sealer_key().verifier()).unwrap();
        let body = Checkpoint::parse(&note.text).unwrap();
        assert_eq!(body.origin, ORIGIN);
        assert_eq!(body.root, merkle::root(SUITE, &hashes[..cp.size as usize]));
        assert!(cp.final_at_us.is_some());
    }
    // Consistency between the two checkpoints.
    let proof = merkle::consistency_proof(SUITE, &hashes, 1).unwrap();
    merkle::verify_consistency(SUITE, 1, 2, &cps[0].root, &cps[1].root, &proof).unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries_unsealed, 5);
}

#[tokio::test]
async fn seals_by_interval_and_never_seals_an_empty_block() {
    let (_db, ledger) = TestDb::migrated().await;
    let b = spawn(config(1000, 100), &ledger);
    append(&ledger, "a", 3).await;
    wait_for("the first block", || async {
        !ledger.blocks().await.unwrap().is_empty()
    })
    .await;
    append(&ledger, "b", 2).await;
    wait_for("the second block", || async {
        ledger.blocks().await.unwrap().len() >= 2
    })
    .await;
    // Several intervals with nothing pending: still two blocks.
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.stop().await.unwrap();
    assert_eq!(assert_ranges(&ledger, 5).await, vec![3, 2]);
}

#[tokio::test]
async fn a_restart_continues_the_chain_and_the_block_log() {
    let (_db, ledger) = TestDb::migrated().await;
    append(&ledger, "a", 7).await;
    let b = spawn(config(4, 50), &ledger);
    wait_for("7 sealed", || async {
        ledger
            .blocks()
            .await
            .unwrap()
            .last()
            .map(|b| b.header.last_seq)
            == Some(6)
    })
    .await;
    b.stop().await.unwrap();
    append(&ledger, "b", 3).await;
    let b = spawn(config(4, 50), &ledger);
    wait_for("10 sealed", || async {
        ledger
            .blocks()
            .await
            .unwrap()
            .last()
            .map(|b| b.header.last_seq)
            == Some(9)
    })
    .await;
    b.stop().await.unwrap();
    assert_ranges(&ledger, 10).await;
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
}

/// Seal 3 blocks of 4 (entries 0..12), then stop.
async fn sealed_ledger() -> (TestDb, Ledger) {
    let (db, ledger) = TestDb::migrated().await;
    append(&ledger, "a", 12).await;
    let b = spawn(config(4, 600_000), &ledger);
    wait_for("3 blocks", || async {
        ledger.blocks().await.unwrap().len() == 3
    })
    .await;
    b.stop().await.unwrap();
    (db, ledger)
}

async fn start_error(ledger: &Ledger) -> String {
    let b = spawn(config(4, 600_000), ledger);
    let r = tokio::time::timeout(Duration::from_secs(20), b.task)
        .await
        .expect("refuses promptly")
        .unwrap();
    b.stop.cancel();
    r.expect_err("start-up must refuse").to_string()
}

#[tokio::test]
async fn tampering_with_an_evidence_row_is_caught_by_startup_and_audit() {
    let (db, ledger) = sealed_ledger().await;
    // The latest block: the start-up check recomputes it from the entries.
    db.client()
        .await
        .execute(
            "UPDATE evidence SET evidence_hash = $1 WHERE seq = 9",
            &[&vec![0u8; 32]],
        )
        .await
        .unwrap();
    let err = start_error(&ledger).await;
    assert!(err.contains("evidence seq 9"), "{err}");
    assert!(
        err.contains("stored leaf hash") && err.contains("recomputes"),
        "{err}"
    );
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("evidence seq 9 (block 2)")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn tampering_with_an_old_evidence_row_is_caught_by_audit() {
    let (db, ledger) = sealed_ledger().await;
    // Rewrite entry 1 *and* its leaf hash consistently: only the block root
    // can tell.
    let c = db.client().await;
    let mut e = ledger.entry_by_seq(1).await.unwrap().unwrap().entry;
    e.evidence_hash = vec![7u8; 32];
    c.execute(
        "UPDATE evidence SET evidence_hash = $1, leaf_hash = $2 WHERE seq = 1",
        &[&e.evidence_hash, &e.leaf_hash(SUITE).to_vec()],
    )
    .await
    .unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("block 0: stored merkle root")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn tampering_with_a_block_root_is_caught_by_startup_and_audit() {
    let (db, ledger) = sealed_ledger().await;
    db.client()
        .await
        .execute(
            "UPDATE blocks SET merkle_root = $1 WHERE height = 1",
            &[&vec![1u8; 32]],
        )
        .await
        .unwrap();
    let err = start_error(&ledger).await;
    assert!(
        err.contains("block 1: stored block hash") && err.contains("header recomputes"),
        "{err}"
    );
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    let p = &report.problems;
    assert!(
        p.iter()
            .any(|p| p.starts_with("block 1: stored block hash")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("block 1: stored merkle root")),
        "{p:?}"
    );
}

#[tokio::test]
async fn tampering_with_a_checkpoint_is_caught_by_startup_and_audit() {
    let (db, ledger) = sealed_ledger().await;
    let c = db.client().await;
    // Latest checkpoint: a different root (and a note re-signed by an
    // attacker's key).
    let attacker = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[9; 32]).unwrap();
    let body = Checkpoint::new(ORIGIN, 3, [5; 32]).body();
    let mut note = SignedNote::new(body.clone());
    note.signatures.push(attacker.sign(&body).unwrap());
    c.execute(
        "UPDATE checkpoints SET root = $1, signed_note = $2 WHERE size = 3",
        &[&vec![5u8; 32], &note.format()],
    )
    .await
    .unwrap();
    let err = start_error(&ledger).await;
    assert!(err.contains("checkpoint 3: stored block-log root"), "{err}");
    // An older checkpoint's note only: a byte of its signature.
    let cp1 = ledger.checkpoint(1).await.unwrap().unwrap();
    let mut n1 = SignedNote::parse(&cp1.signed_note).unwrap();
    n1.signatures[0].payload[0] ^= 1;
    c.execute(
        "UPDATE checkpoints SET signed_note = $1 WHERE size = 1",
        &[&n1.format()],
    )
    .await
    .unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    let p = &report.problems;
    assert!(
        p.iter()
            .any(|p| p.starts_with("checkpoint 3: stored block-log root")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("checkpoint 1: sealer signature")),
        "{p:?}"
    );
}

// ---------------------------------------------------------------------------
// Witnesses
// ---------------------------------------------------------------------------

struct TestWitness {
    _db: TestDb,
    url: String,
    key: NoteSigner,
    stop: CancellationToken,
}

async fn witness(i: u8) -> TestWitness {
    // A witness has a database of its own, with only the witness schema.
    let db = TestDb::new().await;
    let store = anchord_ledger::WitnessStore::connect(&db.config()).unwrap();
    store.migrate().await.unwrap();
    let key = witness_key(i);
    let logs = HashMap::from([(ORIGIN.to_string(), (SUITE, vec![sealer_key().verifier()]))]);
    let stop = CancellationToken::new();
    let (addr, _task) = start(
        Witness::new(store, key.clone(), logs),
        "127.0.0.1:0".parse().unwrap(),
        stop.clone(),
    )
    .await
    .unwrap();
    TestWitness {
        _db: db,
        url: format!("http://{addr}"),
        key,
        stop,
    }
}

fn peer(w: &TestWitness) -> WitnessPeer {
    WitnessPeer {
        name: w.key.name().into(),
        url: w.url.clone(),
        vkey: w.key.verifier().vkey(),
    }
}

fn signed(size: u64, root: [u8; 32], signer: &NoteSigner) -> String {
    let body = Checkpoint::new(ORIGIN, size, root).body();
    let mut note = SignedNote::new(body.clone());
    note.signatures.push(signer.sign(&body).unwrap());
    note.format()
}

async fn post(url: &str, body: String) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn witness_protocol_status_codes() {
    let w = witness(1).await;
    let s = sealer_key();
    let leaves: Vec<[u8; 32]> = (0..8u8).map(|i| SUITE.leaf_hash(&[i])).collect();
    let root = |n: usize| merkle::root(SUITE, &leaves[..n]);

    // First checkpoint: old 0, no proof.
    let (st, _, body) = post(&w.url, add_checkpoint_body(0, &[], &signed(3, root(3), &s))).await;
    assert_eq!(st, 200, "{body}");
    let line = body.lines().next().unwrap();
    let sig = anchord_core::checkpoint::NoteSignature::parse_line(line).unwrap();
    let t = w
        .key
        .verifier()
        .verify(&Checkpoint::new(ORIGIN, 3, root(3)).body(), &sig)
        .unwrap();
    assert!(t.unwrap() > 1_600_000_000);

    // Unknown origin: 404.
    let other = {
        let body = Checkpoint::new("someone.else/log", 3, root(3)).body();
        let mut n = SignedNote::new(body.clone());
        n.signatures.push(s.sign(&body).unwrap());
        n.format()
    };
    assert_eq!(
        post(&w.url, add_checkpoint_body(0, &[], &other)).await.0,
        404
    );
    // Not signed by a trusted key: 403.
    let stranger = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[1; 32]).unwrap();
    let proof = merkle::consistency_proof(SUITE, &leaves[..5], 3).unwrap();
    assert_eq!(
        post(
            &w.url,
            add_checkpoint_body(3, &proof, &signed(5, root(5), &stranger))
        )
        .await
        .0,
        403
    );
    // A trusted key's signature that does not verify: 403.
    let mut forged = SignedNote::parse(&signed(5, root(5), &s)).unwrap();
    forged.signatures[0].payload[3] ^= 1;
    assert_eq!(
        post(&w.url, add_checkpoint_body(3, &proof, &forged.format()))
            .await
            .0,
        403
    );
    // Old size greater than the checkpoint: 400.
    assert_eq!(
        post(&w.url, add_checkpoint_body(6, &[], &signed(5, root(5), &s)))
            .await
            .0,
        400
    );
    // Old size is not the witness's size: 409 with its size.
    let (st, ct, body) = post(&w.url, add_checkpoint_body(2, &[], &signed(5, root(5), &s))).await;
    assert_eq!(
        (st, ct.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "3\n")
    );
    // A wrong proof: 422. A fork (same sizes, different leaves): 422.
    let mut bad = proof.clone();
    bad[0][0] ^= 1;
    assert_eq!(
        post(
            &w.url,
            add_checkpoint_body(3, &bad, &signed(5, root(5), &s))
        )
        .await
        .0,
        422
    );
    let mut forked = leaves.clone();
    forked[4] = SUITE.leaf_hash(b"rewritten");
    let fork_root = merkle::root(SUITE, &forked[..5]);
    let fork_proof = merkle::consistency_proof(SUITE, &forked[..5], 3).unwrap();
    assert_eq!(
        post(
            &w.url,
            add_checkpoint_body(3, &fork_proof, &signed(5, fork_root, &s))
        )
        .await
        .0,
        200,
        "a fork of only the new part is consistent: nothing cosigned was rewritten"
    );
    // Now the witness is at 5 with fork_root; the honest 5 conflicts.
    let (st, _, _) = post(&w.url, add_checkpoint_body(5, &[], &signed(5, root(5), &s))).await;
    assert_eq!(st, 409, "same size, different root");
    // And a rewrite of a cosigned leaf can never be proven consistent.
    let mut rewritten = forked.clone();
    rewritten[1] = SUITE.leaf_hash(b"history");
    let p = merkle::consistency_proof(SUITE, &rewritten[..8], 5).unwrap();
    assert_eq!(
        post(
            &w.url,
            add_checkpoint_body(5, &p, &signed(8, merkle::root(SUITE, &rewritten), &s))
        )
        .await
        .0,
        422
    );
    w.stop.cancel();
}

#[tokio::test]
async fn concurrent_add_checkpoints_never_roll_the_witness_back() {
    let w = witness(2).await;
    let s = sealer_key();
    let leaves: Vec<[u8; 32]> = (0..20u8).map(|i| SUITE.leaf_hash(&[i])).collect();
    assert_eq!(
        post(
            &w.url,
            add_checkpoint_body(0, &[], &signed(2, merkle::root(SUITE, &leaves[..2]), &s))
        )
        .await
        .0,
        200
    );
    // Ten requests from the same old size race; exactly one may win.
    let mut tasks = vec![];
    for n in 3..13usize {
        let proof = merkle::consistency_proof(SUITE, &leaves[..n], 2).unwrap();
        let body = add_checkpoint_body(
            2,
            &proof,
            &signed(n as u64, merkle::root(SUITE, &leaves[..n]), &s),
        );
        let url = w.url.clone();
        tasks.push(tokio::spawn(async move { post(&url, body).await.0 }));
    }
    let mut codes = vec![];
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
}

#[tokio::test]
async fn k_of_n_witnesses_decide_finality() {
    let (_db, ledger) = TestDb::migrated().await;
    let ws = [witness(1).await, witness(2).await, witness(3).await];
    // Witness 3 goes away: 2 of 3 can still cosign.
    ws[2].stop.cancel();
    append(&ledger, "a", 6).await;
    let mut c = config(3, 600_000);
    c.witnesses = ws.iter().map(peer).collect();
    c.quorum = Some(2);
    c.witness_attempts = 2;
    let b = spawn(c.clone(), &ledger);
    wait_for("checkpoint 2 final with 2 of 3", || async {
        ledger
            .checkpoint(2)
            .await
            .unwrap()
            .is_some_and(|c| c.final_at_us.is_some())
    })
    .await;
    b.stop().await.unwrap();
    let cp = ledger.checkpoint(2).await.unwrap().unwrap();
    let note = SignedNote::parse(&cp.signed_note).unwrap();
    for w in &ws[..2] {
        note.verify_by(&w.key.verifier()).unwrap();
    }
    assert!(note.verify_by(&ws[2].key.verifier()).is_err());
    let verifiers: Vec<NoteVerifier> = ws.iter().map(|w| w.key.verifier()).collect();
    let v =
        anchord_core::checkpoint::verify_checkpoint(&note, &sealer_key().verifier(), &verifiers, 2)
            .unwrap();
    assert!(v.is_final);
    let report = audit(
        &ledger,
        SUITE,
        &AuditKeys {
            sealer: sealer_key().verifier(),
            witnesses: verifiers.clone(),
            quorum: 2,
            tsa_cert: None,
        },
        false,
    )
    .await
    .unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    // Requiring all three: new checkpoints are signed but never final.
    append(&ledger, "b", 3).await;
    c.quorum = Some(3);
    let b = spawn(c, &ledger);
    wait_for("checkpoint 3", || async {
        ledger.checkpoint(3).await.unwrap().is_some()
    })
    .await;
    // Let the cosigner finish its attempts, then stop.
    wait_for("two cosignatures on checkpoint 3", || async {
        let cp = ledger.checkpoint(3).await.unwrap().unwrap();
        SignedNote::parse(&cp.signed_note).unwrap().signatures.len() == 3
    })
    .await;
    b.stop().await.unwrap();
    let cp = ledger.checkpoint(3).await.unwrap().unwrap();
    assert!(cp.final_at_us.is_none(), "2 of 3 is not a 3-quorum");
}

/// Tuples of `blocks` read so far in this database (sequential and index
/// scans), as the statistics collector counts them. Backends report when
/// they go idle or exit, so poll until the count has settled.
async fn blocks_rows_read(db: &TestDb) -> i64 {
    let c = db.client().await;
    let mut last = -1;
    for _ in 0..20 {
        c.batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .unwrap();
        let n: i64 = c
            .query_one(
                "SELECT (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::int8 \
                 FROM pg_stat_user_tables WHERE relname = 'blocks'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == last {
            return n;
        }
        last = n;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    last
}

/// Take the lead once on a fresh pool (the batcher's start-up check, then a
/// seal if anything is pending), close the pool; rows of `blocks` read.
async fn one_start(db: &TestDb, what: &str) -> (i64, f64) {
    let before = blocks_rows_read(db).await;
    // The previous start's lock connection is gone (else seal_once would
    // stand by and check nothing).
    let c = db.client().await;
    wait_for("the sealer lock to be free", || async {
        c.query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
            == 0
    })
    .await;
    let ledger = db.ledger();
    let started = std::time::Instant::now();
    if let Err(e) = anchord_batcher::seal_once(&config(10, 600_000), SUITE, &ledger).await {
        panic!("{what}: {e}");
    }
    let secs = started.elapsed().as_secs_f64();
    drop(ledger);
    (blocks_rows_read(db).await - before, secs)
}

/// A ledger of `n` one-entry blocks written straight into the tables (as an
/// old batcher without tiles would have left it), with the latest
/// checkpoint signed by the sealer key.
async fn large_ledger(n: u64) -> (TestDb, Ledger) {
    let (db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(SUITE).await.unwrap();
    for chunk in 0..n.div_ceil(50_000) {
        let count = (n - chunk * 50_000).min(50_000) as usize;
        append(&ledger, &format!("big{chunk}"), count).await;
    }
    let leaves = ledger.leaf_hashes(0, n).await.unwrap();
    let mut prev = anchord_core::checkpoint::GENESIS_PREV_HASH;
    // (height, merkle root, prev hash, block hash)
    type Row = (i64, Vec<u8>, Vec<u8>, Vec<u8>);
    let mut rows: Vec<Row> = Vec::new();
    let mut hashes = Vec::new();
    for h in 0..n {
        let header = anchord_core::checkpoint::BlockHeader {
            suite: SUITE,
            height: h,
            first_seq: h,
            last_seq: h,
            leaf_count: 1,
            merkle_root: leaves[h as usize],
            prev_hash: prev,
            sealed_at_us: 1_764_000_000_000_000 + h as i64,
        };
        prev = header.hash();
        hashes.push(prev);
        rows.push((
            h as i64,
            leaves[h as usize].to_vec(),
            header.prev_hash.to_vec(),
            prev.to_vec(),
        ));
    }
    let c = db.client().await;
    for part in rows.chunks(20_000) {
        let heights: Vec<i64> = part.iter().map(|r| r.0).collect();
        let roots: Vec<&[u8]> = part.iter().map(|r| r.1.as_slice()).collect();
        let prevs: Vec<&[u8]> = part.iter().map(|r| r.2.as_slice()).collect();
        let bh: Vec<&[u8]> = part.iter().map(|r| r.3.as_slice()).collect();
        c.execute(
            "INSERT INTO blocks (height, hash_suite, first_seq, last_seq, leaf_count, merkle_root, \
             prev_hash, block_hash, sealed_at_us) \
             SELECT h, 1, h, h, 1, r, p, b, 1764000000000000 + h \
             FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::bytea[]) AS t(h, r, p, b)",
            &[&heights, &roots, &prevs, &bh],
        )
        .await
        .unwrap();
    }
    let root = merkle::root(SUITE, &hashes);
    let body = Checkpoint::new(ORIGIN, n, root).body();
    let mut note = SignedNote::new(body.clone());
    note.signatures.push(sealer_key().sign(&body).unwrap());
    c.execute(
        "INSERT INTO checkpoints (size, root, origin, signed_note, created_at_us, final_at_us) \
         VALUES ($1, $2, $3, $4, 1, 1)",
        &[&(n as i64), &root.as_slice(), &ORIGIN, &note.format()],
    )
    .await
    .unwrap();
    (db, ledger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batcher_resumes_on_a_large_ledger_without_reading_every_block() {
    const N: u64 = 100_000;
    let (db, ledger) = large_ledger(N).await;
    // First start after the upgrade: the block-log tiles of the blocks
    // sealed before tiles are computed, reading each block hash once.
    let (first, first_s) = one_start(&db, "catching up").await;
    assert!(first >= N as i64, "the catch-up read {first} block rows");
    let stored = ledger.all_tiles().await.unwrap();
    let hashes = ledger.block_hashes_between(0, N).await.unwrap();
    let reference = anchord_core::tiles::build_tiles(SUITE, &hashes);
    let log: Vec<_> = stored.iter().filter(|t| t.height.is_none()).collect();
    assert_eq!(log.len(), reference.len());
    for (t, h) in &reference {
        assert!(
            log.iter().any(|s| s.level == t.level
                && s.index == t.index
                && s.bytes == anchord_core::tiles::tile_bytes(h)),
            "tile {t}"
        );
    }
    // Every later start reads a constant number of block rows (the last
    // two), not the chain; and it still seals.
    append(&ledger, "next", 1).await;
    let (second, second_s) = one_start(&db, "resuming").await;
    assert!(
        second <= 10,
        "the start-up check read {second} block rows of {N}"
    );
    let (third, _) = one_start(&db, "idle restart").await;
    assert!(third <= 10, "the start-up check read {third} block rows");
    assert_eq!(
        ledger.latest_checkpoint().await.unwrap().unwrap().size,
        N + 1
    );
    eprintln!(
        "large-ledger restart ({N} blocks, debug build, shared CPU): catch-up {first} rows {first_s:.2} s; \
         resume {second} rows {second_s:.2} s"
    );
    // The tiles the catch-up and the seal wrote are the reference tiles.
    let hashes = ledger.block_hashes_between(0, N + 1).await.unwrap();
    let set = ledger
        .log_tiles(&anchord_core::tiles::tiles_for_size(N + 1))
        .await
        .unwrap();
    assert_eq!(
        anchord_core::tiles::root_from(SUITE, &set, N + 1).unwrap(),
        merkle::root(SUITE, &hashes)
    );
}

#[tokio::test]
async fn a_tampered_tile_is_caught_by_audit_naming_the_tile() {
    let (db, ledger) = TestDb::migrated().await;
    // Block 0 has 300 entries (its tree has a level-1 tile); then 5 blocks
    // of one: a block log of 6.
    append(&ledger, "t", 300).await;
    anchord_batcher::seal_once(&config(300, 600_000), SUITE, &ledger)
        .await
        .unwrap()
        .unwrap();
    append(&ledger, "u", 5).await;
    for _ in 0..5 {
        loop {
            if anchord_batcher::seal_once(&config(1, 600_000), SUITE, &ledger)
                .await
                .unwrap()
                .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let clean = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(clean.ok(), "{:?}", clean.problems);
    let c = db.client().await;
    // The schema itself refuses to rewrite a tile in place.
    let err = c
        .execute(
            "UPDATE log_tiles SET hashes = set_byte(hashes, 70, get_byte(hashes, 70) # 1) \
             WHERE level = 0 AND idx = 0",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("can only grow"), "{err:?}");
    let err = c
        .execute(
            "UPDATE block_tiles SET hashes = hashes WHERE height = 0",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("immutable"), "{err:?}");
    // Someone with the rights to bypass triggers flips a byte anyway: in
    // hash 2 of the block log's level-0 tile, and in block 0's level-1 tile.
    c.batch_execute(
        "SET session_replication_role = replica; \
         UPDATE log_tiles SET hashes = set_byte(hashes, 70, get_byte(hashes, 70) # 1) \
         WHERE level = 0 AND idx = 0; \
         UPDATE block_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) \
         WHERE height = 0 AND level = 1 AND idx = 0; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    let p = &report.problems;
    assert!(
        p.iter()
            .any(|p| p.starts_with("block-log tile tile/0/000.p/6: hash 2 is ")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p == "block 0: tile tile/1/000.p/1 does not match its entries"),
        "{p:?}"
    );
    // Block 0's level-0 tiles: immutable, and a flipped byte (in hash 3 of
    // its partial tile 1, 44 hashes) is named by the audit.
    let err = c
        .execute(
            "UPDATE block_leaf_tiles SET hashes = hashes WHERE height = 0",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("immutable"), "{err:?}");
    c.batch_execute(
        "SET session_replication_role = replica; \
         UPDATE block_leaf_tiles SET hashes = set_byte(hashes, 3 * 32, get_byte(hashes, 3 * 32) # 1) \
         WHERE height = 0 AND idx = 1 AND half = 0; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(
        report.problems.iter().any(|p| p
            == "block 0: level-0 tile tile/0/001.p/44 (half 0) does not match its entries' \
                leaf hashes (44 hashes stored, 44 expected; first difference at hash 3)"),
        "{:?}",
        report.problems
    );
    // The latest block's level-0 tile is one the start-up check compares
    // with its entries.
    c.batch_execute(
        "SET session_replication_role = replica; \
         UPDATE block_leaf_tiles SET hashes = sha256(hashes) WHERE height = 5; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    append(&ledger, "w", 1).await;
    let err = start_error(&ledger).await;
    assert!(
        err.contains("latest block 5: its stored level-0 tiles do not match its entries"),
        "{err}"
    );
    c.batch_execute(
        "SET session_replication_role = replica; \
         DELETE FROM block_leaf_tiles WHERE height = 5; \
         INSERT INTO block_leaf_tiles (height, idx, half, hashes) \
         SELECT 5, 0, 0, leaf_hash FROM evidence WHERE seq = 304; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    // The last block-log hash is what the start-up check compares.
    c.batch_execute(
        "SET session_replication_role = replica; \
         UPDATE log_tiles SET hashes = set_byte(hashes, 5 * 32, get_byte(hashes, 5 * 32) # 1) \
         WHERE level = 0 AND idx = 0; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    append(&ledger, "v", 1).await;
    let err = start_error(&ledger).await;
    assert!(
        err.contains("block-log tile tile/0/000.p/6: last leaf"),
        "{err}"
    );
    // Damage below the schema's checks (a tile row that does not read as
    // hashes) fails the read of its whole group of blocks: the audit reads
    // that group's tiles again block by block, names the block, and goes
    // on with the rest of the group.
    c.batch_execute(
        "ALTER TABLE block_tiles DROP CONSTRAINT block_tiles_hashes_check; \
         SET session_replication_role = replica; \
         UPDATE block_tiles SET hashes = hashes || '\\x00'::bytea WHERE height = 0 AND level = 1; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    let p = &report.problems;
    assert!(p.iter().any(|p| p.starts_with("block 0: tiles: ")), "{p:?}");
    assert!(
        p.iter().any(|p| p.starts_with(
            "block 0: level-0 tile tile/0/001.p/44 (half 0) does not match its entries'"
        )),
        "{p:?}"
    );
    assert_eq!(report.blocks, 6, "{p:?}");
}

#[tokio::test]
async fn audit_checks_every_entry_against_its_identity_row_and_back() {
    let (db, ledger) = sealed_ledger().await;
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let c = db.client().await;
    // Entry 5's identity row points elsewhere: its (tenant, external id)
    // would no longer be idempotent (a resubmission would get a new seq).
    c.batch_execute(
        "SET session_replication_role = replica; \
         UPDATE evidence_identity SET seq = 100 WHERE seq = 5; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    let p = audit(&ledger, SUITE, &keys(), false)
        .await
        .unwrap()
        .problems;
    assert!(
        p.iter().any(|p| p
            == "evidence seq 5: the identity row of its (tenant, external id) points at seq 100"),
        "{p:?}"
    );
    assert!(
        !p.iter().any(|p| p.starts_with("evidence_identity has")),
        "{p:?}"
    );
    // A stray row (an identity no entry has) pointing at entry 3.
    c.execute(
        "INSERT INTO evidence_identity (seq, identity) VALUES (3, $1)",
        &[&vec![7u8; 32]],
    )
    .await
    .unwrap();
    let p = audit(&ledger, SUITE, &keys(), false)
        .await
        .unwrap()
        .problems;
    assert!(
        p.iter().any(|p| p
            == "evidence_identity has 13 rows for 12 entries; rows point at seqs with no entry: 100; \
                seqs with several rows: 3"),
        "{p:?}"
    );
    // An entry without its row.
    c.batch_execute(
        "SET session_replication_role = replica; \
         DELETE FROM evidence_identity WHERE seq = 8; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    let p = audit(&ledger, SUITE, &keys(), false)
        .await
        .unwrap()
        .problems;
    assert!(
        p.iter()
            .any(|p| p == "evidence seq 8: no evidence_identity row for its (tenant, external id)"),
        "{p:?}"
    );
    // Unsealed entries are checked too.
    append(&ledger, "tail", 2).await;
    c.batch_execute(
        "SET session_replication_role = replica; \
         DELETE FROM evidence_identity WHERE seq = 13; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    let r = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert_eq!(r.entries_unsealed, 2);
    assert!(
        r.problems.iter().any(|p| p
            == "evidence seq 13: no evidence_identity row for its (tenant, external id)"),
        "{:?}",
        r.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_memory_does_not_grow_with_the_chain() {
    // 10,000 one-entry blocks: an audit holding every block header, block
    // hash and block-log tile (as before) peaks at several MiB here; one
    // walking pages of blocks and the tiles' right edge stays well under.
    const N: u64 = 10_000;
    let (db, ledger) = large_ledger(N).await;
    // The batcher's first start writes the block-log tiles.
    anchord_batcher::seal_once(&config(10, 600_000), SUITE, &ledger)
        .await
        .unwrap();
    drop(ledger);
    let url = db.url().to_owned();
    let (peak, report) = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ledger = Ledger::connect(&anchord_ledger::DatabaseConfig::from_url(&url)).unwrap();
        // Connect before measuring (the pool's first connection).
        rt.block_on(ledger.next_seq()).unwrap();
        let mut report = None;
        // Counts this thread's allocations: the runtime, the pool's
        // connection and the audit all run on it.
        let info = allocation_counter::measure(|| {
            report = Some(rt.block_on(audit(&ledger, SUITE, &keys(), false)).unwrap());
        });
        (info.bytes_max, report.unwrap())
    })
    .join()
    .unwrap();
    assert_eq!(report.blocks, N);
    assert_eq!(report.entries_sealed, N);
    // The ledger has one checkpoint (size N), so only the count is off.
    assert!(
        report.problems.iter().all(|p| p.contains("checkpoint")),
        "{:?}",
        report.problems
    );
    eprintln!("audit of {N} blocks: peak {} KiB allocated", peak / 1024);
    // Measured: 8,505 KiB before (every header, hash and tile in memory),
    // 1,277 KiB with pages of 1,024 blocks; pages are now 256.
    assert!(
        peak < 2048 * 1024,
        "the audit of {N} blocks peaked at {} KiB",
        peak / 1024
    );
}

/// A ledger of many small blocks (the batcher seals one a second by
/// default: 86,400 a day) is audited a group of blocks at a time: a few
/// statements per group, not four per block (each block's entries, its
/// identity rows, its upper tiles and its level-0 tiles read alone, as
/// before: 1,005 blocks/s in `bench/audit`, 8.7 hours for a year of
/// blocks). Counted as PostgreSQL counts them: each statement outside a
/// transaction is one committed transaction of the audit's sessions.
#[tokio::test]
async fn an_audit_reads_groups_of_small_blocks_not_each_block_alone() {
    const N: u64 = 2_000;
    let (db, ledger) = large_ledger(N).await;
    // The batcher's first start writes the block-log tiles.
    anchord_batcher::seal_once(&config(10, 600_000), SUITE, &ledger)
        .await
        .unwrap();
    drop(ledger);
    let admin = db.client().await;
    let sessions = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // Every client session of the database but this one gone: a session's
    // counters reach pg_stat_database when it ends (autovacuum's few
    // transactions, if any, count too: far below the bound).
    let quiet = || async {
        for _ in 0..500 {
            if sessions().await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sessions().await, 0, "sessions left on the test database");
        admin
            .query_one(
                "SELECT pg_stat_clear_snapshot()::text, xact_commit FROM pg_stat_database \
                 WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(1)
    };
    let before = quiet().await;
    let ledger = Ledger::connect(&anchord_ledger::DatabaseConfig::from_url(db.url())).unwrap();
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    drop(ledger);
    let statements = quiet().await - before;
    assert_eq!(report.blocks, N);
    assert!(
        report.problems.iter().all(|p| p.contains("checkpoint")),
        "{:?}",
        report.problems
    );
    eprintln!("audit of {N} one-entry blocks: {statements} statements");
    // 4 per block before (8,000 and more); about 4 per group of 256
    // blocks, plus the pages of blocks, checkpoints and block-log tiles.
    assert!(
        statements < (N / 10) as i64,
        "{statements} statements to audit {N} blocks"
    );
}

#[tokio::test]
async fn the_start_up_check_recomputes_the_latest_root_from_the_stored_tile_edge() {
    // Not only the last leaf: every hash of the block log's right edge
    // (here the first of the partial level-0 tile) feeds the root that the
    // start-up check compares with the latest signed checkpoint.
    let (db, ledger) = sealed_ledger().await;
    db.client()
        .await
        .batch_execute(
            "SET session_replication_role = replica; \
             UPDATE log_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) \
             WHERE level = 0 AND idx = 0; \
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    append(&ledger, "w", 1).await;
    let err = start_error(&ledger).await;
    assert!(
        err.contains("checkpoint 3: stored block-log root") && err.contains("recompute"),
        "{err}"
    );
}

/// The level-0 tile halves of each block against the in-memory reference
/// (`core::tiles`): the halves concatenate to the C2SP tile, each carries
/// its sibling's root, for every block of the ledger.
async fn assert_leaf_tiles_are_the_reference(ledger: &Ledger) {
    for b in ledger.blocks().await.unwrap() {
        let h = &b.header;
        let leaves = ledger
            .leaf_hashes(h.first_seq, h.last_seq + 1)
            .await
            .unwrap();
        let stored = ledger.block_leaf_tiles(h.height).await.unwrap();
        assert_eq!(
            stored,
            anchord_ledger::leaf_tiles_of(SUITE, &leaves),
            "block {}",
            h.height
        );
        for (t, want) in anchord_core::tiles::build_tiles(SUITE, &leaves)
            .into_iter()
            .filter(|(t, _)| t.level == 0)
        {
            let got: Vec<_> = stored
                .iter()
                .filter(|(i, _)| *i == t.index)
                .flat_map(|(_, half)| half.hashes.clone())
                .collect();
            assert_eq!(got, want, "block {} tile {t}", h.height);
        }
    }
}

/// Proof rows of entries at and around the tile and half boundaries of
/// every block: (seq, block, level-0 data, the entry's path in its tile
/// from that data).
type BoundaryRow = (u64, Option<(u64, u64, u64)>, Option<Level0>, Vec<[u8; 32]>);

async fn boundary_proof_rows(ledger: &Ledger) -> Vec<BoundaryRow> {
    let mut out = Vec::new();
    for b in ledger.blocks().await.unwrap() {
        let h = &b.header;
        for pos in [
            0u64,
            1,
            127,
            128,
            129,
            255,
            256,
            257,
            511,
            512,
            h.leaf_count - 1,
        ] {
            if pos >= h.leaf_count {
                continue;
            }
            let e = ledger
                .entry_by_seq(h.first_seq + pos)
                .await
                .unwrap()
                .unwrap();
            let row = ledger
                .proof_by_identity(&e.entry.tenant, &e.entry.external_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.entry.entry.seq, h.first_seq + pos);
            let level0 = row.level0.clone().expect("a sealed entry's level-0 data");
            let path = level0.path(SUITE, pos % 256).unwrap();
            out.push((row.entry.entry.seq, row.block, row.level0, path));
        }
    }
    out
}

/// Issue 17 (cold proofs): the batcher stores each block's level-0 tiles in
/// the sealing transaction, equal to the RFC 6962 reference for block
/// sizes at the 128/256 boundaries and random ones; a proof reads the
/// stored tile (a flipped stored byte shows in the proof row), and gives
/// exactly what the fallback (the evidence rows) gives; a ledger whose
/// blocks have no level-0 rows (as sealed before schema version 9) gets
/// them back-filled by the batcher while it keeps sealing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level0_tiles_are_stored_read_by_proofs_and_back_filled() {
    let (db, ledger) = TestDb::migrated().await;
    let mut sizes = vec![1u64, 127, 128, 129, 255, 256, 257, 513];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    for _ in 0..3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sizes.push(1 + x % 1200);
    }
    for (i, &n) in sizes.iter().enumerate() {
        append(&ledger, &format!("l{i}"), n as usize).await;
        let r = anchord_batcher::seal_once(&config(n, 600_000), SUITE, &ledger)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.entries, n, "block sizes {sizes:?}");
    }
    assert_leaf_tiles_are_the_reference(&ledger).await;
    let stored = boundary_proof_rows(&ledger).await;
    // Each row holds the stored half of the reference tile holding the
    // entry (the other half's root beside it), and the path inside the
    // tile is the start of the entry's path in the whole block.
    for (seq, block, level0, inner) in &stored {
        let (_, first, last) = block.unwrap();
        let leaves = ledger.leaf_hashes(first, last + 1).await.unwrap();
        let pos = seq - first;
        let t0 = (pos / 256 * 256) as usize;
        let tile = &leaves[t0..(t0 + 256).min(leaves.len())];
        let halves = tiles::tile_halves(SUITE, tile);
        assert_eq!(
            level0.as_ref(),
            Some(&Level0::Half(halves[(pos % 256) as usize / 128].clone())),
            "seq {seq}"
        );
        assert_eq!(
            inner,
            &merkle::inclusion_proof(SUITE, tile, pos % 256).unwrap()
        );
        let whole = merkle::inclusion_proof(SUITE, &leaves, pos).unwrap();
        assert_eq!(inner[..], whole[..inner.len()], "seq {seq}");
    }
    let c = db.client().await;
    // The proof reads the stored tile, not the evidence rows: flip a byte
    // of block 7's (513 entries) tile 2 and its proof row shows it.
    let flip = "SET session_replication_role = replica; \
         UPDATE block_leaf_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) \
         WHERE height = 7 AND idx = 2; SET session_replication_role = origin;";
    c.batch_execute(flip).await.unwrap();
    let b7 = ledger.block(7).await.unwrap().unwrap().header;
    let e = ledger
        .entry_by_seq(b7.first_seq + 512)
        .await
        .unwrap()
        .unwrap();
    let row = ledger
        .proof_by_identity(&e.entry.tenant, &e.entry.external_id)
        .await
        .unwrap()
        .unwrap();
    let Some(Level0::Half(half)) = &row.level0 else {
        panic!("block 7's stored half is read: {:?}", row.level0)
    };
    assert_eq!(
        half.hashes[0][0],
        e.leaf_hash[0] ^ 1,
        "the stored tile is read"
    );
    c.batch_execute(flip).await.unwrap();

    // As a ledger sealed before version 9: no level-0 rows. Proofs fall
    // back to the evidence rows and give the same tiles.
    let err = c
        .execute("DELETE FROM block_leaf_tiles", &[])
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("immutable"), "{err:?}");
    c.batch_execute(
        "SET session_replication_role = replica; DELETE FROM block_leaf_tiles; \
         SET session_replication_role = origin;",
    )
    .await
    .unwrap();
    // The same paths, from whole tiles read from the evidence rows.
    let fallback = boundary_proof_rows(&ledger).await;
    assert_eq!(fallback.len(), stored.len());
    for (f, s) in fallback.iter().zip(&stored) {
        assert!(
            matches!(f.2, Some(Level0::Tile(_))),
            "seq {}: {:?}",
            f.0,
            f.2
        );
        assert_eq!((f.0, f.1, &f.3), (s.0, s.1, &s.3));
    }
    let blocks = sizes.len() as u64;
    assert_eq!(
        ledger.leaf_tile_backlog().await.unwrap(),
        (blocks, sizes.iter().sum())
    );
    let before = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(before.ok(), "{:?}", before.problems);
    assert_eq!(before.blocks_without_leaf_tiles, blocks);

    // The batcher back-fills them, and seals what arrives meanwhile.
    let running = spawn(config(1000, 50), &ledger);
    append(&ledger, "after", 300).await;
    wait_for("the back-fill and the new entries sealed", || async {
        ledger.leaf_tile_backlog().await.unwrap() == (0, 0)
            && ledger
                .latest_checkpoint()
                .await
                .unwrap()
                .is_some_and(|cp| cp.size > blocks)
            && ledger
                .blocks()
                .await
                .unwrap()
                .last()
                .unwrap()
                .header
                .last_seq
                + 1
                == sizes.iter().sum::<u64>() + 300
    })
    .await;
    running.stop().await.unwrap();
    assert_leaf_tiles_are_the_reference(&ledger).await;
    let after = boundary_proof_rows(&ledger).await;
    assert_eq!(after[..stored.len()], stored[..]);
    let report = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.blocks_without_leaf_tiles, 0);
}

/// The back-fill walks a long chain of old blocks in bounded steps (256
/// blocks a step here) and leaves every block with its level-0 tile, except
/// one whose stored leaf hash no longer gives its root: that one gets no
/// (immutable) tile, and sealing goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_fill_covers_a_long_chain_of_old_blocks_in_steps() {
    const N: u64 = 700;
    let (db, ledger) = large_ledger(N).await;
    assert_eq!(ledger.leaf_tile_backlog().await.unwrap(), (N, N));
    db.client()
        .await
        .batch_execute(
            "SET session_replication_role = replica; \
             UPDATE evidence SET leaf_hash = sha256(leaf_hash) WHERE seq = 300; \
             SET session_replication_role = origin;",
        )
        .await
        .unwrap();
    let running = spawn(config(1000, 50), &ledger);
    append(&ledger, "new", 1).await;
    wait_for("the back-fill and the new entry sealed", || async {
        ledger.leaf_tile_backlog().await.unwrap() == (1, 1)
            && ledger.latest_checkpoint().await.unwrap().unwrap().size == N + 1
    })
    .await;
    running.stop().await.unwrap();
    assert!(ledger.block_leaf_tiles(300).await.unwrap().is_empty());
    for h in [0, 255, 256, 299, 301, 511, 512, N - 1, N] {
        let leaf = ledger.leaf_hashes(h, h + 1).await.unwrap();
        assert_eq!(
            ledger.block_leaf_tiles(h).await.unwrap(),
            anchord_ledger::leaf_tiles_of(SUITE, &leaf),
            "block {h}"
        );
    }
}

/// Ledger schema version 10: the leader builds the identity filter of each
/// closed partition (the writer's idempotency check across partitions
/// rests on them), and `anchord audit` checks every stored filter: its
/// digest, and that it holds the identity of each entry of its partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_filters_closed_partitions_and_audit_checks_each_filter() {
    let (db, ledger) = TestDb::migrated().await;
    let c = db.client().await;
    db.set_partition_size(10).await;
    append(&ledger, "a", 25).await;
    let filters = || async {
        c.query("SELECT lo, hi, keys FROM identity_filters ORDER BY lo", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)))
            .collect::<Vec<_>>()
    };
    let hash_filters = || async {
        c.query_one("SELECT count(*) FROM evidence_hash_filters", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let b = spawn(config(8, 50), &ledger);
    wait_for("the two closed partitions' filters", || async {
        filters().await.len() == 2 && hash_filters().await == 2
    })
    .await;
    assert_eq!(filters().await, [(0, 10, 10), (10, 20, 10)]);
    let r = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    b.stop().await.unwrap();

    // A damaged filter: refused (the writer probes its partition instead)
    // and reported.
    c.execute(
        "UPDATE identity_filters SET bits = set_byte(bits, 2, get_byte(bits, 2) # 1) \
         WHERE lo = 0",
        &[],
    )
    .await
    .unwrap();
    // A filter rewritten consistently (its digest recomputed) but empty:
    // the writer would trust it and accept a second entry for any identity
    // of its partition (an evidence-hash filter: a proof by hash would miss
    // the partition's entries). Only its content can show that.
    use anchord_core::filter::{FilterKind, filter_digest};
    let empty = vec![0u8; 64];
    for (kind, table, lo) in [
        (FilterKind::Identity, "identity_filters", 10i64),
        (FilterKind::EvidenceHash, "evidence_hash_filters", 0),
    ] {
        let digest = filter_digest(kind, lo as u64, lo as u64 + 10, 10, &empty);
        c.execute(
            &format!("UPDATE {table} SET bits = $1, digest = $2 WHERE lo = $3"),
            &[&empty, &digest.as_slice(), &lo],
        )
        .await
        .unwrap();
    }
    let p = audit(&ledger, SUITE, &keys(), false)
        .await
        .unwrap()
        .problems;
    assert!(
        p.iter().any(|p| p
            == "evidence-hash filter of seqs [0, 10) lacks the key of seq 0: a proof by that evidence hash would not find it"),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p
            == "identity filter of seqs [0, 10): its digest does not match its content (lookups do not use it)"),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p
            == "identity filter of seqs [10, 20) lacks the key of seq 10: the writer would accept a second entry with that (tenant, external id)"),
        "{p:?}"
    );
    assert_eq!(
        db.ledger()
            .filters(anchord_core::filter::FilterKind::Identity)
            .await
            .unwrap()
            .len(),
        1,
        "a writer that starts now loads only the filter that checks"
    );
}

/// `anchord audit` on a ledger that ingest and the batcher keep writing:
/// it checks the ledger as it stood when it began (the blocks, entries and
/// filters up to that point) and reads what was added meanwhile as growth,
/// not as damage. Each audit here overlaps appends, seals, block-log tile
/// rewrites and filter builds; every one must come back clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_of_a_ledger_that_grows_meanwhile_reports_no_problem() {
    let (db, ledger) = TestDb::migrated().await;
    db.set_partition_size(40).await;
    append(&ledger, "before", 30).await;
    let b = spawn(config(25, 5), &ledger);
    let stop = CancellationToken::new();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (ledger, stop, written) = (ledger.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                append(&ledger, &format!("live{i}"), 1 + i % 5).await;
                i += 1;
                written.store(i, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            i
        })
    };
    let mut audits = 0;
    let mut grew = 0;
    let began = std::time::Instant::now();
    // At least 12 audits, over at least 40 appended batches (so across
    // several seals and partitions, however fast the audits run).
    while audits < 12 || grew < 6 || written.load(std::sync::atomic::Ordering::Relaxed) < 40 {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the audits and appends did not finish in time"
        );
        let before = ledger.next_seq().await.unwrap();
        let r = audit(&ledger, SUITE, &keys(), false).await.unwrap();
        assert!(r.ok(), "audit {audits}: {:?}", r.problems);
        if ledger.next_seq().await.unwrap() > before {
            grew += 1;
        }
        audits += 1;
    }
    stop.cancel();
    let batches = writer.await.unwrap();
    assert!(
        batches >= 40,
        "the writer kept appending ({batches} batches)"
    );
    assert!(
        grew >= 6,
        "at least 6 audits overlapped appends ({grew} of {audits})"
    );
    let n = ledger.next_seq().await.unwrap();
    wait_for("every entry sealed", || async {
        ledger
            .blocks()
            .await
            .unwrap()
            .last()
            .map(|b| b.header.last_seq + 1)
            == Some(n)
    })
    .await;
    wait_for("the closed partitions' filters", || async {
        ledger
            .stored_filters(anchord_core::filter::FilterKind::Identity)
            .await
            .unwrap()
            .len() as u64
            == n / 40
    })
    .await;
    b.stop().await.unwrap();
    // Still and complete, the same ledger audits clean and whole.
    let r = audit(&ledger, SUITE, &keys(), false).await.unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!((r.entries_sealed, r.entries_unsealed), (n, 0));
    assert_eq!(r.checkpoints, r.blocks);
    assert_eq!(r.blocks_added_meanwhile, 0);

    // What growth cannot explain is still damage: a filter past the head,
    // and, with the last block deleted, a checkpoint and a block-log tile
    // that reach past the block log.
    use anchord_core::filter::{FilterKind, filter_digest};
    let c = db.client().await;
    let lo = n.next_multiple_of(40) as i64 + 40;
    let bits = vec![0u8; 64];
    let digest = filter_digest(FilterKind::Identity, lo as u64, lo as u64 + 40, 0, &bits);
    c.execute(
        "INSERT INTO identity_filters (lo, hi, keys, format, bits, digest) \
         SELECT $1::bigint, $1::bigint + 40, 0, format, $2, $3 FROM identity_filters LIMIT 1",
        &[&lo, &bits, &digest.as_slice()],
    )
    .await
    .unwrap();
    let last = r.blocks - 1;
    c.batch_execute(&format!(
        "SET session_replication_role = replica; \
         DELETE FROM blocks WHERE height = {last}; \
         SET session_replication_role = origin;"
    ))
    .await
    .unwrap();
    let p = audit(&ledger, SUITE, &keys(), false)
        .await
        .unwrap()
        .problems;
    let has = |prefix: String| p.iter().any(|p| p.starts_with(&prefix));
    assert!(
        has(format!(
            "identity filter of seqs [{lo}, {}): reaches past the ledger head {n}",
            lo + 40
        )),
        "{p:?}"
    );
    assert!(
        has(format!("checkpoint {}: no block has it", r.blocks)),
        "{p:?}"
    );
    assert!(has("block-log tile tile/0/".into()), "{p:?}");
}

/// A one-shot leader (`seal_once`) gives the leader lock back before it
/// returns, so the next leader takes it at once; a dropped session's lock
/// would stay held until the server noticed the closed connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_once_gives_the_leader_lock_back_before_it_returns() {
    let (_db, ledger) = TestDb::migrated().await;
    for i in 0..40 {
        append(&ledger, &format!("s{i}"), 1).await;
        let sealed = anchord_batcher::seal_once(&config(10, 600_000), SUITE, &ledger)
            .await
            .unwrap();
        assert!(sealed.is_some(), "seal {i}");
        let mut next = ledger.leader_session().await.unwrap();
        assert!(
            next.try_acquire().await.unwrap(),
            "the lock is free after seal {i}"
        );
        next.release().await.unwrap();
        // Nothing to seal: it gives the lock back as well.
        let none = anchord_batcher::seal_once(&config(10, 600_000), SUITE, &ledger)
            .await
            .unwrap();
        assert!(none.is_none());
        let mut next = ledger.leader_session().await.unwrap();
        assert!(
            next.try_acquire().await.unwrap(),
            "the lock is free after an empty seal {i}"
        );
        next.release().await.unwrap();
    }
}
