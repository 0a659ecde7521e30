//! The `anchord` binary as operators run it: keygen, two batchers with one
//! killed mid-stream (failover without gap or overlap), audit exit codes and
//! the start-up check refusing a tampered ledger.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use anchord_testkit::evidence;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anchord_core::HashSuite;
use anchord_ledger::Ledger;
use anchord_testkit::TestDb;
use anchord_testkit::process::{Proc, free_port, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_anchord");

fn command(db: &TestDb, key: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ANCHORD_LOG", "info")
        .env("DATABASE_URL", db.url())
        .env("ANCHORD__BATCHER__SIGNING_KEY", key)
        .env("ANCHORD__BATCHER__ORIGIN", "anchord.test/ledger")
        .env("ANCHORD__BATCHER__BLOCK_MAX_ENTRIES", "5")
        .env("ANCHORD__BATCHER__BLOCK_INTERVAL_MS", "50")
        .env("ANCHORD__BATCHER__STANDBY_POLL_MS", "100")
        .env(
            "ANCHORD__ADMIN__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        );
    c
}

fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("sealer.key");
    let out = Command::new(BIN)
        .args(["keygen", "--name", "anchord.test/ledger", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let vkey = String::from_utf8(out.stdout).unwrap();
    assert!(vkey.starts_with("anchord.test/ledger+"), "{vkey}");
    assert_eq!(
        std::fs::read_to_string(dir.join("sealer.key.pub"))
            .unwrap()
            .trim(),
        vkey.trim()
    );
    key
}

fn spawn_batcher(db: &TestDb, key: &Path) -> Proc {
    Proc(
        command(db, key)
            .arg("batcher")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn audit(db: &TestDb, key: &Path) -> Output {
    command(db, key)
        .args(["audit", "--no-progress"])
        .output()
        .unwrap()
}

async fn append(ledger: &Ledger, tag: &str, n: usize) {
    evidence::append(
        ledger,
        HashSuite::Sha256,
        evidence::RECEIVED_AT_US,
        evidence::entries(tag, n),
    )
    .await;
}

async fn sealed_through(ledger: &Ledger) -> Option<u64> {
    ledger
        .blocks()
        .await
        .unwrap()
        .last()
        .map(|b| b.header.last_seq)
}

async fn wait_sealed(ledger: &Ledger, last_seq: u64) {
    for _ in 0..600 {
        if sealed_through(ledger).await == Some(last_seq) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for seq {last_seq} to be sealed (at {:?})",
        sealed_through(ledger).await
    );
}

#[tokio::test]
async fn killing_the_leader_hands_over_to_the_standby_without_gap_or_overlap() {
    let (db, ledger) = TestDb::migrated().await;
    let dir = temp_dir("anchord_proc");
    let key = keygen(&dir);
    ledger.ensure_suite(HashSuite::Sha256).await.unwrap();

    let mut leader = spawn_batcher(&db, &key);
    append(&ledger, "a", 12).await;
    wait_sealed(&ledger, 11).await;
    // The standby starts while the leader holds the lock.
    let _standby = spawn_batcher(&db, &key);
    append(&ledger, "b", 8).await;
    wait_sealed(&ledger, 19).await;

    // Kill the leader outright (SIGKILL: no graceful shutdown).
    leader.0.kill().unwrap();
    leader.0.wait().unwrap();
    for round in 0..5 {
        append(&ledger, &format!("c{round}"), 7).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    wait_sealed(&ledger, 54).await;

    let blocks = ledger.blocks().await.unwrap();
    let mut next = 0;
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(b.header.height, i as u64);
        assert_eq!(b.header.first_seq, next, "gap or overlap at block {i}");
        assert!(b.header.leaf_count > 0 && b.header.leaf_count <= 5);
        next = b.header.last_seq + 1;
    }
    assert_eq!(next, 55);
    let out = audit(&db, &key);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: OK"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn audit_and_startup_refuse_a_tampered_ledger() {
    let (db, ledger) = TestDb::migrated().await;
    let dir = temp_dir("anchord_proc");
    let key = keygen(&dir);
    ledger.ensure_suite(HashSuite::Sha256).await.unwrap();
    append(&ledger, "a", 15).await;
    {
        let _b = spawn_batcher(&db, &key);
        wait_sealed(&ledger, 14).await;
    }
    let out = audit(&db, &key);
    assert!(out.status.success(), "{out:?}");

    // Tamper with one evidence row of the latest block.
    db.client()
        .await
        .execute(
            "UPDATE evidence SET external_id = 'forged' WHERE seq = 12",
            &[],
        )
        .await
        .unwrap();
    let out = audit(&db, &key);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("INCONSISTENT: evidence seq 12 (block 2)"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: FAILED"), "{stdout}");

    // The batcher refuses to start, naming both values.
    let out = command(&db, &key)
        .arg("batcher")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("evidence seq 12: stored leaf hash") && stderr.contains("recomputes"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The tables (schema-qualified) of a database, outside the catalogs.
async fn tables(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_keeps_only_its_own_schema_in_its_database_and_carries_old_state_over() {
    use anchord_core::checkpoint::{
        ALG_COSIGNATURE_V1, ALG_ED25519, Checkpoint, NoteSigner, SignedNote,
    };
    const ORIGIN: &str = "anchord.test/ledger";
    let dir = temp_dir("anchord_witness_db");
    let sealer = NoteSigner::from_seed(ORIGIN, ALG_ED25519, &[5; 32]).unwrap();
    let notary = NoteSigner::from_seed("notary.test", ALG_COSIGNATURE_V1, &[6; 32]).unwrap();
    let key = dir.join("witness.key");
    std::fs::write(&key, notary.private_key_text()).unwrap();
    let signed = |size: u64, root: [u8; 32]| {
        let body = Checkpoint::new(ORIGIN, size, root).body();
        let mut note = SignedNote::new(body.clone());
        note.signatures.push(sealer.sign(&body).unwrap());
        anchord_batcher::cosign::add_checkpoint_body(0, &[], &note.format())
    };
    let spawn = |db: &TestDb, log: &Path| {
        let (listen, admin) = (free_port(), free_port());
        let child = Proc(
            Command::new(BIN)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", db.url())
                .env("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
                .env("ANCHORD__WITNESS__LISTEN", format!("127.0.0.1:{listen}"))
                .env("ANCHORD__WITNESS__SIGNING_KEY", &key)
                .env(
                    "ANCHORD__WITNESS__LOGS",
                    format!(
                        r#"[{{origin = "{ORIGIN}", vkeys = ["{}"]}}]"#,
                        sealer.verifier().vkey()
                    ),
                )
                .arg("witness")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap(),
        );
        (child, listen, admin)
    };
    let http = reqwest::Client::new();
    let add = |port: u16, body: String| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("http://127.0.0.1:{port}/add-checkpoint"))
                .body(body)
                .send()
                .await
                .ok()?;
            Some((r.status().as_u16(), r.text().await.unwrap_or_default()))
        }
    };
    let ready = |port: u16| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    };

    // A fresh database: the witness creates its schema and nothing else.
    let db = TestDb::new().await;
    let log = dir.join("witness.log");
    let (mut w, listen, admin) = spawn(&db, &log);
    for _ in 0..300 {
        if ready(admin).await {
            break;
        }
        assert!(
            w.0.try_wait().unwrap().is_none(),
            "the witness exited:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = add(listen, signed(1, [7; 32])).await.unwrap();
    assert_eq!(status, 200, "{body}");
    drop(w);
    assert_eq!(
        tables(&db).await,
        [
            "anchord_witness.checkpoints",
            "anchord_witness.schema_migrations"
        ]
    );

    // A witness database from before: the ledger schema's
    // witness_checkpoints holds what it cosigned (size 3). The upgraded
    // witness carries that over and refuses to start again from 0.
    let old = TestDb::migrated().await.0;
    let root3 = [9u8; 32];
    old.client()
        .await
        .execute(
            "INSERT INTO witness_checkpoints (origin, size, root, checkpoint, updated_at_us) \
             VALUES ($1, 3, $2, 'old', 0)",
            &[&ORIGIN, &root3.as_slice()],
        )
        .await
        .unwrap();
    let log = dir.join("witness-old.log");
    let (mut w, listen, admin) = spawn(&old, &log);
    for _ in 0..300 {
        if ready(admin).await {
            break;
        }
        assert!(
            w.0.try_wait().unwrap().is_none(),
            "the witness exited:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = add(listen, signed(1, [7; 32])).await.unwrap();
    assert_eq!((status, body.as_str()), (409, "3\n"), "state carried over");
}
