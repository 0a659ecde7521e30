//! End-to-end ingest throughput, with the raw limits measured in the same
//! run (not a timed test; run it with `bench/ingest`).
//!
//! 1. Publish N realistic messages over P partitions (loadgen, untimed).
//! 2. Bare consumer: drain the topic with the same librdkafka fetch settings,
//!    doing nothing with the messages — first message to last.
//! 3. Raw COPY: the same rows (decoded, sequence numbers, identities and leaf
//!    hashes computed beforehand, untimed) COPYed in batches of B rows, one
//!    transaction per batch, into an empty ledger's `evidence_identity` (in
//!    key order, as the writer sends them) and `evidence` tables (partitions
//!    created beforehand, every index and constraint of the real schema) —
//!    no ingest logic. The source partition/offset columns are synthetic.
//! 4. Ingest: `anchord_ingest::run` on an empty ledger, from the first
//!    message consumed to the last row committed (metrics polled every ms);
//!    then the ledger's bytes per entry (heap, TOAST and indexes of the
//!    evidence partitions and the identity table) beside the average message
//!    payload; where the writer's time went per batch (`ingest::profile`);
//!    and CPU time per entry, of PostgreSQL's backends in the raw COPY and
//!    in ingest and of this process during ingest (from `/proc`: on a shared
//!    machine rates move with the other load, CPU per entry much less), and
//!    the share of each phase PostgreSQL's backends spent waiting for a
//!    core (`/proc/<pid>/schedstat`: what the broker and this process took
//!    from PostgreSQL; raw COPY has the machine to itself).
//!
//! Environment: BENCH_N (1000000), BENCH_PARTITIONS (16), BENCH_BATCH (10000).
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anchord_core::{HashSuite, entry::identity_key};
use anchord_ingest::loadgen::Generator;
use anchord_ingest::message::{self, Rules};
use anchord_ingest::{IngestConfig, metrics};
use anchord_testkit::TestDb;
use futures::pin_mut;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// The allocator the `anchord` binary uses (`anchord/src/main.rs`), so that
/// the client CPU measured here is the deployed one's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TENANTS: [&str; 5] = ["icbc-sh", "ccb-bj", "boc-gd", "abc-zj", "cmb-sz"];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench());
}

async fn bench() {
    let n = env("BENCH_N", 1_000_000);
    let parts = env("BENCH_PARTITIONS", 16) as i32;
    let batch = env("BENCH_BATCH", 10_000);
    let brokers = anchord_testkit::kafka::brokers();
    println!("bench/ingest: {n} messages, {parts} partitions, batches of {batch} rows");

    // 1. Publish.
    let topic = anchord_testkit::kafka::topic("bench", parts).await;
    anchord_testkit::kafka::create_topic(&format!("{topic}.dlq"), 1).await;
    let run_id = anchord_testkit::unique("b");
    let tenants: Vec<String> = TENANTS.iter().map(|s| s.to_string()).collect();
    let stats = {
        let (brokers, topic, run_id, tenants) = (
            brokers.clone(),
            topic.clone(),
            run_id.clone(),
            tenants.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut g = Generator::new(&run_id, tenants, 0.0, 0.0);
            anchord_ingest::loadgen::publish(&brokers, &topic, &mut g, n as u64, 0, false, &|| {
                false
            })
        })
        .await
        .unwrap()
        .expect("publish")
    };
    assert_eq!(stats.failed, 0);
    println!(
        "published            {:>10.0} msg/s   ({n} in {:.2} s, untimed setup)",
        n as f64 / stats.elapsed.as_secs_f64(),
        stats.elapsed.as_secs_f64()
    );

    // 2. Bare consumer.
    let consume = {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || bare_consumer(&brokers, &topic, parts, n))
            .await
            .unwrap()
    };
    let consumer_rate = n as f64 / consume.as_secs_f64();
    println!(
        "bare consumer        {consumer_rate:>10.0} msg/s   ({:.2} s)",
        consume.as_secs_f64()
    );

    // 3. Raw COPY.
    let (copy_db, _) = TestDb::migrated().await;
    let (copy_time, payload_bytes, copy_pg) =
        raw_copy(&copy_db, &run_id, &tenants, &topic, parts, n, batch).await;
    let copy_rate = n as f64 / copy_time.as_secs_f64();
    println!(
        "raw COPY             {copy_rate:>10.0} rows/s  ({:.2} s)",
        copy_time.as_secs_f64()
    );
    drop(copy_db);

    // 4. Ingest.
    let (ingest_db, ledger) = TestDb::migrated().await;
    ledger.ensure_suite(HashSuite::Sha256).await.unwrap();
    let config = IngestConfig {
        brokers: brokers.clone(),
        topic: topic.clone(),
        group_id: anchord_testkit::unique("bench"),
        dead_letter_topic: format!("{topic}.dlq"),
        tenants: tenants.clone(),
        batch_max: batch,
        ..IngestConfig::default()
    };
    metrics::init();
    let consumed0 = metrics::CONSUMED.get();
    let accepted0 = metrics::ACCEPTED.get();
    let profile0 = anchord_ingest::profile::snapshot();
    let token = tokio_util::sync::CancellationToken::new();
    let pg_before = backend_usage(&ingest_db).await;
    let pg_window = Instant::now();
    let own_before = proc_cpu(std::process::id());
    let handle = tokio::spawn(anchord_ingest::run(
        config,
        HashSuite::Sha256,
        ledger.clone(),
        token.clone(),
    ));
    let mut first: Option<Instant> = None;
    let mut last_report = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    let done = loop {
        let consumed = metrics::CONSUMED.get() - consumed0;
        let accepted = metrics::ACCEPTED.get() - accepted0;
        if first.is_none() && consumed > 0 {
            first = Some(Instant::now());
        }
        if accepted >= n as u64 {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not finish within 600 s ({accepted} of {n})"
        );
        assert!(!handle.is_finished(), "ingest stopped early");
        if last_report.elapsed() >= Duration::from_secs(2) {
            println!("  ingest progress: {accepted} committed, {consumed} consumed");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let first = first.expect("something was consumed");
    let ingest_pg = usage_delta(&pg_before, &backend_usage(&ingest_db).await);
    let pg_window = pg_window.elapsed();
    let own_cpu = proc_cpu(std::process::id())
        .zip(own_before)
        .map(|(a, b)| a - b);
    token.cancel();
    handle.await.unwrap().expect("ingest stops cleanly");
    assert_eq!(ledger.next_seq().await.unwrap(), n as u64);
    let ingest_time = done - first;
    let ingest_rate = n as f64 / ingest_time.as_secs_f64();
    let batches = metrics::BATCH_ROWS.get_sample_count();
    println!(
        "ingest end to end    {ingest_rate:>10.0} evidence/s ({:.2} s, {batches} transactions, mean write {:.1} ms)",
        ingest_time.as_secs_f64(),
        1000.0 * metrics::WRITE_SECONDS.get_sample_sum()
            / metrics::WRITE_SECONDS.get_sample_count().max(1) as f64,
    );
    print_profile(&profile0);
    // CPU time per entry: unlike rates, barely moved by other processes on
    // the machine (contention adds waiting, not work).
    let us = |cpu: Option<f64>| cpu.map_or(f64::NAN, |c| c * 1e6 / n as f64);
    let (pg_copy_us, pg_ingest_us, client_us) = (
        us(copy_pg.map(|u| u.cpu)),
        us(ingest_pg.map(|u| u.cpu)),
        us(own_cpu),
    );
    println!(
        "CPU per entry: PostgreSQL {pg_copy_us:.1} µs in raw COPY, {pg_ingest_us:.1} µs in ingest ({:.2}x); \
         the ingest process (consumer, decoding, writer) {client_us:.1} µs",
        pg_ingest_us / pg_copy_us
    );
    // Time PostgreSQL's backends were ready to run but waited for a core
    // (the run queue), as a share of each phase: what the other processes
    // on the machine (the broker, the consumer, the writer's client side)
    // took from it. Raw COPY has the machine to itself.
    let pct = |u: Option<Usage>, over: Duration| {
        u.map_or(f64::NAN, |u| 100.0 * u.wait / over.as_secs_f64())
    };
    let (wait_copy_pct, wait_ingest_pct) = (pct(copy_pg, copy_time), pct(ingest_pg, pg_window));
    println!(
        "PostgreSQL's backends waited for a core {wait_copy_pct:.1}% of raw COPY's time, \
         {wait_ingest_pct:.1}% of ingest's (the run queue, /proc/<pid>/schedstat)"
    );
    println!(
        "ratio ingest / raw COPY       {:.2}",
        ingest_rate / copy_rate
    );
    println!(
        "ratio ingest / bare consumer  {:.2}",
        ingest_rate / consumer_rate
    );
    let sizes = evidence_bytes(&ingest_db).await;
    let total: i64 = sizes.iter().map(|(_, b)| b).sum();
    let per_entry = total as f64 / n as f64;
    for (what, b) in &sizes {
        println!("  {what:<18} {:>8.1} bytes/entry", *b as f64 / n as f64);
    }
    println!(
        "ledger bytes/entry   {per_entry:>10.1} (heap + TOAST + indexes) for {payload_bytes:.1} bytes of \
         message payload: {:.2}x (goal <= 2x)",
        per_entry / payload_bytes
    );
    println!(
        "RESULT n={n} partitions={parts} batch={batch} ingest_per_s={ingest_rate:.0} copy_per_s={copy_rate:.0} \
         consumer_per_s={consumer_rate:.0} ratio_copy={:.3} ratio_consumer={:.3} bytes_per_entry={per_entry:.1} \
         payload_bytes={payload_bytes:.1} pg_cpu_copy_us={pg_copy_us:.1} pg_cpu_ingest_us={pg_ingest_us:.1} \
         client_cpu_us={client_us:.1} pg_wait_copy_pct={wait_copy_pct:.1} \
         pg_wait_ingest_pct={wait_ingest_pct:.1}",
        ingest_rate / copy_rate,
        ingest_rate / consumer_rate,
    );
    drop(ingest_db);
}

/// The writer's time during the ingest run, per batch: the preparing
/// stage's work and blocking, the committing stage's idle time and the
/// phases of its transaction.
fn print_profile(before: &[(&'static str, u64)]) {
    let now = anchord_ingest::profile::snapshot();
    let delta = |name: &str| {
        let get = |v: &[(&str, u64)]| v.iter().find(|(n, _)| *n == name).map_or(0, |(_, x)| *x);
        get(&now) - get(before)
    };
    let prepared = delta("PREPARED_BATCHES").max(1);
    let committed = delta("COMMITTED_BATCHES").max(1);
    println!(
        "writer, mean per batch ({} prepared, {} with the identity lookup; {committed} committed, {} begun with the previous commit; misses: state {}, identity_taken {}):",
        delta("PREPARED_BATCHES"),
        delta("LOOKED_UP_BATCHES"),
        delta("CHAINED_BATCHES"),
        metrics::PREDICTION_MISSES
            .with_label_values(&["state"])
            .get(),
        metrics::PREDICTION_MISSES
            .with_label_values(&["identity_taken"])
            .get(),
    );
    let (full, partial) = (delta("FULL_HANDOVERS"), delta("PARTIAL_HANDOVERS"));
    println!(
        "  batches handed over by the consumer: {full} full, {partial} before full (the writer had room: it waited for the consumer), mean {:.0} messages",
        delta("HANDED_OVER_MESSAGES") as f64 / (full + partial).max(1) as f64,
    );
    let ms = |name: &str, n: u64| delta(name) as f64 / n as f64 / 1e6;
    println!(
        "  prepare {:>6.1} ms (state {:.1}, lookup {:.1}, plan {:.1}), blocked handing over {:.1} ms",
        ms("PREPARE_BUSY", prepared),
        ms("PREPARE_STATE", prepared),
        ms("PREPARE_LOOKUP", prepared),
        ms("PREPARE_PLAN", prepared),
        ms("PREPARE_BLOCKED", prepared),
    );
    println!(
        "  commit  {:>6.1} ms (lock {:.1}, verify {:.1}, COPY identity {:.1}, COPY evidence {:.1}, bookkeeping {:.1}, COMMIT {:.1}, rolled back {:.1}), idle waiting for a batch {:.1} ms",
        ms("COMMIT_BUSY", committed),
        ms("COMMIT_LOCK", committed),
        ms("COMMIT_VERIFY", committed),
        ms("COMMIT_COPY_IDENTITY", committed),
        ms("COMMIT_COPY_EVIDENCE", committed),
        ms("COMMIT_BOOKKEEPING", committed),
        ms("COMMIT_COMMIT", committed),
        ms("COMMIT_WASTED", committed),
        ms("COMMIT_IDLE", committed),
    );
}

fn bare_consumer(brokers: &str, topic: &str, parts: i32, n: usize) -> Duration {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", anchord_testkit::unique("bare"))
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "5")
        .set("fetch.wait.max.ms", "50")
        .set("max.partition.fetch.bytes", "4194304")
        .set("fetch.max.bytes", "67108864")
        .set("queued.min.messages", "50000")
        .set("queued.max.messages.kbytes", "16384")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut first = None;
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while count < n {
        assert!(Instant::now() < deadline, "bare consumer: {count} of {n}");
        if let Some(Ok(_m)) = c.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    first.map(|f| f.elapsed()).unwrap_or_default()
}

const COPY_EVIDENCE: &str = "COPY evidence (seq, received_at_us, src_offset, src_partition, \
     src_topic_id, hash_alg, entry_version, tenant, external_id, evidence_hash, leaf_hash, \
     metadata) FROM STDIN BINARY";
const COPY_IDENTITY: &str = "COPY evidence_identity (seq, identity) FROM STDIN BINARY";

async fn raw_copy(
    db: &TestDb,
    run_id: &str,
    tenants: &[String],
    topic: &str,
    parts: i32,
    n: usize,
    batch: usize,
) -> (Duration, f64, Option<Usage>) {
    // Untimed: the rows, exactly as ingest would write them.
    let rules = Rules {
        tenants: tenants.iter().cloned().collect(),
        accepted_algs: vec![
            anchord_core::EvidenceAlg::Sha256,
            anchord_core::EvidenceAlg::Sm3,
        ],
        max_message_bytes: 16 * 1024,
    };
    let g = Generator::new(run_id, tenants.to_vec(), 0.0, 0.0);
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let mut payload_total = 0usize;
    struct Row {
        seq: i64,
        identity: Vec<u8>,
        tenant: String,
        external_id: String,
        alg: i16,
        hash: Vec<u8>,
        metadata: Option<String>,
        leaf: Vec<u8>,
        partition: i32,
        offset: i64,
    }
    let rows: Vec<Row> = (0..n)
        .map(|i| {
            let raw = g.good(i as u64).to_bytes();
            payload_total += raw.len();
            let d = message::decode(&raw, &rules).expect("valid");
            let entry = anchord_core::Entry {
                seq: i as u64,
                received_at_us: now_us,
                tenant: d.tenant.clone(),
                external_id: d.external_id.clone(),
                hash_alg: d.hash_alg,
                evidence_hash: d.hash.clone(),
                metadata: d.metadata.clone(),
            };
            Row {
                seq: i as i64,
                identity: identity_key(&d.tenant, &d.external_id).to_vec(),
                leaf: entry.leaf_hash(HashSuite::Sha256).to_vec(),
                tenant: d.tenant,
                external_id: d.external_id,
                alg: d.hash_alg.id() as i16,
                hash: d.hash,
                metadata: d.metadata,
                partition: i as i32 % parts,
                offset: i as i64 / parts as i64,
            }
        })
        .collect();
    // The same tables and partitions the ledger writes (partitions created
    // untimed, as the writer creates them ahead of the head).
    let c = db.client().await;
    let size: i64 = c
        .query_one(
            "SELECT value::int8 FROM ledger_meta WHERE key = 'evidence_partition_size'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut lo = 0i64;
    while lo < n as i64 + size {
        // The same partitions and indexes as the writer creates
        // (ledger/src/evidence.rs).
        c.batch_execute(&format!(
            "CREATE TABLE evidence_p{lo:012} PARTITION OF evidence FOR VALUES FROM ({lo}) TO ({hi}); \
             CREATE TABLE evidence_identity_p{lo:012} PARTITION OF evidence_identity \
             FOR VALUES FROM ({lo}) TO ({hi}); \
             CREATE UNIQUE INDEX evidence_identity_p{lo:012}_key ON evidence_identity_p{lo:012} (identity)",
            hi = lo + size
        ))
        .await
        .unwrap();
        lo += size;
    }
    let topic_id: i16 = c
        .query_one(
            "INSERT INTO kafka_topics (name) VALUES ($1) RETURNING id",
            &[&topic],
        )
        .await
        .unwrap()
        .get(0);
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT4,
        Type::INT2,
        Type::INT2,
        Type::INT2,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
        Type::BYTEA,
        Type::TEXT,
    ];
    // Each batch's identities in key order, as the writer COPYs them (the
    // index inserts are cheaper in order): the limit is the best COPY of
    // the same rows, not a slower one.
    let by_identity: Vec<Vec<usize>> = rows
        .chunks(batch)
        .map(|chunk| {
            let mut order: Vec<usize> = (0..chunk.len()).collect();
            order.sort_unstable_by(|a, b| chunk[*a].identity.cmp(&chunk[*b].identity));
            order
        })
        .collect();
    let mut client = db.client().await;
    let pg_before = backend_usage(db).await;
    let started = Instant::now();
    for (chunk, order) in rows.chunks(batch).zip(&by_identity) {
        let tx = client.transaction().await.unwrap();
        let sink = tx.copy_in(COPY_IDENTITY).await.unwrap();
        let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::BYTEA]);
        pin_mut!(writer);
        for r in order.iter().map(|k| &chunk[*k]) {
            writer.as_mut().write(&[&r.seq, &r.identity]).await.unwrap();
        }
        writer.finish().await.unwrap();
        let sink = tx.copy_in(COPY_EVIDENCE).await.unwrap();
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for r in chunk {
            let row: [&(dyn ToSql + Sync); 12] = [
                &r.seq,
                &now_us,
                &r.offset,
                &r.partition,
                &topic_id,
                &r.alg,
                &1i16,
                &r.tenant,
                &r.external_id,
                &r.hash,
                &r.leaf,
                &r.metadata,
            ];
            writer.as_mut().write(&row).await.unwrap();
        }
        writer.finish().await.unwrap();
        tx.commit().await.unwrap();
    }
    let elapsed = started.elapsed();
    let pg = usage_delta(&pg_before, &backend_usage(db).await);
    (elapsed, payload_total as f64 / n as f64, pg)
}

/// CPU time (user + system, seconds) of a local process, from
/// `/proc/<pid>/stat`; None where that cannot be read.
fn proc_cpu(pid: u32) -> Option<f64> {
    static TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name's closing parenthesis start at field 3
    // (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / *TICKS)
}

/// What a process spent, seconds: CPU time, and time it was ready to run
/// but waited for a core.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu: f64,
    wait: f64,
}

/// Time a local process waited on a run queue, seconds (the second field of
/// `/proc/<pid>/schedstat`); None where that cannot be read.
fn proc_wait(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: f64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(ns / 1e9)
}

/// CPU and run-queue time of every server process connected to the
/// database (PostgreSQL on this machine), by pid, except the asking
/// connection's.
async fn backend_usage(db: &TestDb) -> Option<std::collections::HashMap<u32, Usage>> {
    let c = db.client().await;
    let rows = c
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .ok()?;
    rows.iter()
        .map(|r| {
            let pid = r.get::<_, i32>(0) as u32;
            Some((
                pid,
                Usage {
                    cpu: proc_cpu(pid)?,
                    wait: proc_wait(pid)?,
                },
            ))
        })
        .collect()
}

/// What the processes in `after` spent since `before` (a process absent
/// from `before` started since: all of its time counts).
fn usage_delta(
    before: &Option<std::collections::HashMap<u32, Usage>>,
    after: &Option<std::collections::HashMap<u32, Usage>>,
) -> Option<Usage> {
    let (before, after) = (before.as_ref()?, after.as_ref()?);
    Some(after.iter().fold(Usage::default(), |sum, (pid, u)| {
        let b = before.get(pid).copied().unwrap_or_default();
        Usage {
            cpu: sum.cpu + u.cpu - b.cpu,
            wait: sum.wait + u.wait - b.wait,
        }
    }))
}

/// On-disk size of the ledger's evidence (heap, TOAST and every index of
/// the evidence partitions, the identity table and the topic table), by part.
async fn evidence_bytes(db: &TestDb) -> Vec<(String, i64)> {
    let c = db.client().await;
    c.execute("CHECKPOINT", &[]).await.unwrap();
    let rows = c
        .query(
            "WITH parts AS (
                 SELECT inhrelid AS oid FROM pg_inherits WHERE inhparent = 'evidence'::regclass),
                  id_parts AS (
                 SELECT inhrelid AS oid FROM pg_inherits WHERE inhparent = 'evidence_identity'::regclass)
             SELECT 'evidence heap', coalesce(sum(pg_table_size(oid)), 0)::int8 FROM parts
             UNION ALL SELECT 'evidence indexes', coalesce(sum(pg_indexes_size(oid)), 0)::int8 FROM parts
             UNION ALL SELECT 'identity heap', coalesce(sum(pg_table_size(oid)), 0)::int8 FROM id_parts
             UNION ALL SELECT 'identity index', coalesce(sum(pg_indexes_size(oid)), 0)::int8 FROM id_parts
             UNION ALL SELECT 'partition filters', (pg_total_relation_size('identity_filters')
                 + pg_total_relation_size('evidence_hash_filters'))::int8
             UNION ALL SELECT 'topics', pg_total_relation_size('kafka_topics')::int8",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}
