//! The chaos suite (issue 14): the whole pipeline as separate `anchord`
//! processes — ingest ×2 (one consumer group), batcher and a standby, two
//! witnesses (quorum 2), an RFC 3161 TSA, the judicial simulator, anvil,
//! relay ×2, verifier, workflow — on a PostgreSQL and a broker of its own
//! (`scripts/services`, own ports and data directory, sqlite broker
//! storage), under load from an independent producer (Python
//! confluent-kafka, written from docs/kafka-message-v1.md), while a seeded
//! scheduler kills and restarts stages, restarts PostgreSQL and the broker,
//! takes witnesses, the TSA and each chain down, injects latency and errors,
//! and resets both chains. At the end everything is checked from the
//! outside: [`checks`].
//!
//! `scripts/chaos` runs the long form; tests/tests/chaos.rs the short one.

pub mod checks;
pub mod procs;
pub mod services;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anchord_testkit::chaos::ChaosProxy;
use anchord_testkit::process::free_port;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use procs::{Managed, Ready};
use services::Services;

const ORIGIN: &str = "anchord.chaos/ledger";
const ACCOUNT: &str = "bank-chaos";
/// anvil's first dev account (a published, test-only key).
const ANVIL_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const PRODUCER: &str = include_str!("producer.py");
const TSA: &str = include_str!("tsa.py");

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub rounds: u32,
    pub seed: u64,
    /// Messages per second from the producer.
    pub rate: u32,
    /// How long each round's faults last.
    pub round_ms: u64,
    /// Quiet time after each round's faults are healed.
    pub settle_ms: u64,
    /// How long the pipeline may take to catch up at the end.
    pub converge_secs: u64,
    /// Proofs fetched from the verifier and verified offline and online.
    pub samples: usize,
    /// The `anchord` binary.
    pub bin: PathBuf,
    /// Keep the work directory (logs) afterwards.
    pub keep: bool,
}

impl Options {
    pub fn short(seed: u64) -> Options {
        Options {
            rounds: 2,
            seed,
            rate: 60,
            round_ms: 6000,
            settle_ms: 2000,
            converge_secs: 150,
            samples: 3,
            bin: anchord_bin(),
            keep: false,
        }
    }
}

/// The `anchord` binary next to this executable's target directory
/// (`target/<profile>/anchord`), or `ANCHORD_BIN`.
pub fn anchord_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ANCHORD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    for dir in exe.ancestors().skip(1) {
        let c = dir.join("anchord");
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "the anchord binary was not found next to {} (build it: cargo build -p anchord, \
         or set ANCHORD_BIN)",
        exe.display()
    )
}

/// The Python with confluent-kafka (`scripts/test-peers`).
fn python() -> PathBuf {
    std::env::var_os("ANCHORD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../.anchord/peers/venv/bin/python")
        })
}

fn anvil_bin() -> PathBuf {
    std::env::var_os("ANCHORD_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.anchord/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
        })
}

/// The outcome.
#[derive(Debug, Default)]
pub struct Summary {
    pub rounds: u32,
    pub kills: u32,
    pub restarts: u32,
    pub sent: u64,
    /// Messages the broker never acknowledged (after the producer's own
    /// retries): not counted as lost, but a broker fault.
    pub unacked: u64,
    pub accepted: u64,
    pub dead_letters: u64,
    pub checkpoints: u64,
    pub lost: u64,
    pub doubled: u64,
    pub double_anchors: u64,
    pub audit_clean: bool,
    pub proofs_verified: u64,
    /// Checkpoints with their own receipt and a coverage row (see
    /// `check_chains`): counted, not a failure.
    pub anchored_and_covered: u64,
    pub wall_s: f64,
    pub problems: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.doubled == 0
            && self.double_anchors == 0
            && self.audit_clean
            && self.problems.is_empty()
    }

    /// The final line: `rounds=.. kills=.. restarts=.. lost=0 doubled=0
    /// double_anchors=0 audit=clean` and the figures behind it.
    pub fn line(&self) -> String {
        format!(
            "rounds={} kills={} restarts={} lost={} doubled={} double_anchors={} audit={} \
             sent={} unacked={} accepted={} dead_letters={} checkpoints={} anchored_and_covered={} \
             proofs_verified={} problems={} wall_s={:.0}",
            self.rounds,
            self.kills,
            self.restarts,
            self.lost,
            self.doubled,
            self.double_anchors,
            if self.audit_clean { "clean" } else { "FAILED" },
            self.sent,
            self.unacked,
            self.accepted,
            self.dead_letters,
            self.checkpoints,
            self.anchored_and_covered,
            self.proofs_verified,
            self.problems.len(),
            self.wall_s
        )
    }
}

/// The faults a round can bring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL one stage process, restart it shortly after.
    Kill,
    /// PostgreSQL stopped (immediate = as a crash) and started.
    Postgres { immediate: bool },
    /// The broker stopped and started on the same storage.
    Broker,
    /// One witness down for the round.
    Witness,
    /// The TSA down for the round.
    Tsa,
    /// The court gateway fails 30% of requests, answers 2 s late and drops
    /// 20% of accepted transactions, for the round.
    CourtFaults,
    /// The court's simulator killed and restarted.
    CourtKill,
    /// The court chain thrown away (a new genesis).
    CourtReset,
    /// Every connection to anvil cut and refused for the round.
    AnvilPartition,
    /// anvil restarted empty (a lost chain).
    AnvilReset,
}

const ROTATION: [Fault; 10] = [
    Fault::Broker,
    Fault::Postgres { immediate: true },
    Fault::AnvilReset,
    Fault::Witness,
    Fault::CourtFaults,
    Fault::Tsa,
    Fault::AnvilPartition,
    Fault::CourtReset,
    Fault::Postgres { immediate: false },
    Fault::CourtKill,
];

/// Every process and peer of one run.
struct World {
    opts: Options,
    dir: PathBuf,
    config: PathBuf,
    services: Services,
    http: reqwest::Client,
    ledger_url: String,
    /// Stage processes, by name.
    stages: BTreeMap<String, Managed>,
    anvil: Managed,
    anvil_port: u16,
    proxy: ChaosProxy,
    court: Managed,
    court_url: String,
    tsa: Managed,
    verifier_port: u16,
    kills: u32,
    restarts: u32,
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A self-signed TSA certificate (critical EKU timeStamping) and the
/// `openssl ts` configuration `tsa.py` answers with.
fn make_tsa(dir: &Path) -> Result<PathBuf, String> {
    let key = dir.join("tsa.key");
    let crt = dir.join("tsa.crt");
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=Anchord chaos TSA",
            ])
            .args([
                "-addext",
                "extendedKeyUsage=critical,timeStamping",
                "-addext",
                "keyUsage=critical,digitalSignature",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt),
        "openssl req (TSA certificate)",
    )?;
    std::fs::write(dir.join("serial"), "01\n").map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = chaos\n\n[ chaos ]\nserial = {}\ncrypto_device = builtin\n\
             signer_cert = {}\nsigner_key = {}\nsigner_digest = sha256\n\
             default_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\n\
             clock_precision_digits = 3\nordering = no\ntsa_name = yes\n\
             ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir.join("serial").display(),
            crt.display(),
            key.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("tsa.py"), TSA).map_err(|e| e.to_string())?;
    Ok(crt)
}

/// A one-shot `anchord` command with a clean environment: only what the
/// suite sets reaches it. (`scripts/test` exports `DATABASE_URL`, which
/// anchord reads too: an inherited one sent `migrate` and `audit` to the
/// test cluster's default database instead of the suite's.)
fn anchord(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ANCHORD_LOG", "warn");
    if let Ok(tz) = std::env::var("TZ") {
        c.env("TZ", tz);
    }
    c
}

fn keygen(
    bin: &Path,
    dir: &Path,
    name: &str,
    file: &str,
    witness: bool,
) -> Result<(PathBuf, String), String> {
    let key = dir.join(file);
    let mut c = anchord(bin);
    c.args(["keygen", "--name", name, "--out"]).arg(&key);
    if witness {
        c.arg("--witness");
    }
    let vkey = run_ok(&mut c, "anchord keygen")?;
    Ok((key, vkey.trim().to_owned()))
}

impl World {
    async fn start(opts: &Options, say: &(dyn Fn(&str) + Sync)) -> Result<World, String> {
        let dir = anchord_testkit::process::temp_dir("anchord_chaos");
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        services::become_subreaper();
        say(&format!("chaos: work directory {}", dir.display()));
        let services = Services::up(&dir.join("services"), "sqlite")?;
        let admin = services.admin_url();
        for db in ["chaos_ledger", "chaos_w1", "chaos_w2"] {
            services::create_database(&admin, db).await?;
        }
        let ledger_url = services.db_url("chaos_ledger");
        let bin = opts.bin.clone();

        let (sealer, sealer_vkey) = keygen(&bin, &dir, ORIGIN, "sealer.key", false)?;
        let (w1_key, w1_vkey) = keygen(&bin, &dir, "w1.chaos", "w1.key", true)?;
        let (w2_key, w2_vkey) = keygen(&bin, &dir, "w2.chaos", "w2.key", true)?;
        let (rsa, rsa_pub) = anchord_testkit::rsa_keypair(&dir);
        let evm_key = dir.join("evm.key");
        std::fs::write(&evm_key, ANVIL_KEY).map_err(|e| e.to_string())?;
        let tsa_dir = dir.join("tsa");
        std::fs::create_dir_all(&tsa_dir).map_err(|e| e.to_string())?;
        let tsa_cert = make_tsa(&tsa_dir)?;

        let (w1, w2, court_port, tsa_port, anvil_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let (verifier_port, workflow_port) = (free_port(), free_port());
        let anvil_addr = std::net::SocketAddr::from(([127, 0, 0, 1], anvil_port));
        let proxy = ChaosProxy::start(anvil_addr).await;
        let court_url = format!("http://127.0.0.1:{court_port}");
        let config = dir.join("anchord.toml");
        std::fs::write(
            &config,
            format!(
                r#"[database]
url = "{ledger_url}"
max_connections = 4
[ingest]
brokers = "{brokers}"
topic = "chaos.evidence"
dead_letter_topic = "chaos.evidence.dlq"
group_id = "chaos-ingest"
tenants = ["icbc-sh", "ccb-bj"]
create_topics = true
topic_partitions = 4
batch_linger_ms = 20
assignment_grace_ms = 5000
[batcher]
origin = "{ORIGIN}"
signing_key = "{sealer}"
block_interval_ms = 300
witnesses = [
  {{ name = "w1.chaos", url = "http://127.0.0.1:{w1}", vkey = "{w1_vkey}" }},
  {{ name = "w2.chaos", url = "http://127.0.0.1:{w2}", vkey = "{w2_vkey}" }},
]
quorum = 2
request_timeout_ms = 2000
tsa_url = "http://127.0.0.1:{tsa_port}/"
tsa_cert = "{tsa_cert}"
standby_poll_ms = 300
[witness]
listen = "127.0.0.1:{w1}"
signing_key = "{w1_key}"
logs = [{{ origin = "{ORIGIN}", vkeys = ["{sealer_vkey}"] }}]
[relay]
poll_ms = 100
lease_ms = 8000
backoff_initial_ms = 100
backoff_max_ms = 1000
finality = {{ court = {{ reverify_ms = 1000 }}, anvil = {{ reverify_ms = 1000, final_confirmations = 2 }} }}
targets = [
  {{ name = "court", kind = "judicial", url = "{court_url}", account_id = "{ACCOUNT}", signing_key = "{rsa}", request_timeout_ms = 5000, confirm_poll_ms = 200 }},
  {{ name = "anvil", kind = "evm", rpc_url = "http://{proxy_addr}", chain_id = 31337, signing_key = "{evm_key}", confirmations = 1, request_timeout_ms = 5000, confirm_poll_ms = 300 }},
]
[verifier]
listen = "127.0.0.1:{verifier_port}"
public_url = "http://127.0.0.1:{verifier_port}"
anchored_cache_ttl_s = 1
pending_cache_ttl_s = 1
[workflow]
listen = "127.0.0.1:{workflow_port}"
storage_dir = "{files}"
"#,
                brokers = services.brokers(),
                sealer = sealer.display(),
                tsa_cert = tsa_cert.display(),
                w1_key = w1_key.display(),
                rsa = rsa.display(),
                evm_key = evm_key.display(),
                proxy_addr = proxy.addr(),
                files = dir.join("files").display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let cfg = config.to_string_lossy().into_owned();
        for db in ["chaos_ledger", "chaos_w1", "chaos_w2"] {
            run_ok(
                anchord(&bin)
                    .args(["--config", &cfg, "migrate"])
                    .env("ANCHORD__DATABASE__URL", services.db_url(db)),
                "anchord migrate",
            )?;
        }

        let mut stages = BTreeMap::new();
        let mut stage = |name: &str, cmd: &str, env: Vec<(&str, String)>| {
            let admin = free_port();
            let mut env = env;
            env.push(("ANCHORD__ADMIN__LISTEN", format!("127.0.0.1:{admin}")));
            let m = Managed::new(
                name,
                &bin,
                &["--config", &cfg, cmd],
                &env,
                &logs,
                Ready::Admin(admin),
            );
            stages.insert(name.to_owned(), m);
        };
        stage(
            "witness-1",
            "witness",
            vec![("ANCHORD__DATABASE__URL", services.db_url("chaos_w1"))],
        );
        stage(
            "witness-2",
            "witness",
            vec![
                ("ANCHORD__DATABASE__URL", services.db_url("chaos_w2")),
                ("ANCHORD__WITNESS__LISTEN", format!("127.0.0.1:{w2}")),
                (
                    "ANCHORD__WITNESS__SIGNING_KEY",
                    w2_key.display().to_string(),
                ),
            ],
        );
        for s in ["ingest-a", "ingest-b"] {
            stage(s, "ingest", vec![]);
        }
        for s in ["batcher-a", "batcher-b"] {
            stage(s, "batcher", vec![]);
        }
        for s in ["relay-a", "relay-b"] {
            stage(s, "relay", vec![]);
        }
        stage("verifier", "verifier", vec![]);
        stage("workflow", "workflow", vec![]);

        let anvil_port_s = anvil_port.to_string();
        let anvil = Managed::new(
            "anvil",
            &anvil_bin(),
            &[
                "--host",
                "127.0.0.1",
                "--port",
                &anvil_port_s,
                "--block-time",
                "1",
            ],
            &[],
            &logs,
            Ready::JsonRpc(format!("http://127.0.0.1:{anvil_port}")),
        );
        let account = format!("{ACCOUNT}={}", rsa_pub.display());
        let chain_dir = dir.join("court-chain").display().to_string();
        let listen = format!("127.0.0.1:{court_port}");
        let court = Managed::new(
            "court",
            &bin,
            &[
                "judicial-sim",
                "--listen",
                &listen,
                "--data-dir",
                &chain_dir,
                "--account",
                &account,
                "--chain-id",
                "chaos-court",
                "--block-ms",
                "100",
                // The chain itself must show any double anchor.
                "--no-dedup",
            ],
            &[],
            &logs,
            Ready::Http(format!("{court_url}/v1/chain")),
        );
        let tsa = Managed::new(
            "tsa",
            &python(),
            &[
                &tsa_dir.join("tsa.py").display().to_string(),
                &tsa_port.to_string(),
                &tsa_dir.display().to_string(),
            ],
            &[],
            &logs,
            Ready::Port(tsa_port),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        let mut w = World {
            opts: opts.clone(),
            dir,
            config,
            services,
            http,
            ledger_url,
            stages,
            anvil,
            anvil_port,
            proxy,
            court,
            court_url,
            tsa,
            verifier_port,
            kills: 0,
            restarts: 0,
        };
        for p in [&mut w.anvil, &mut w.court, &mut w.tsa] {
            p.start()?;
            p.wait_ready(&w.http, 60).await?;
        }
        let names: Vec<String> = w.stages.keys().cloned().collect();
        for n in &names {
            if let Some(s) = w.stages.get_mut(n) {
                s.start()?;
            }
        }
        for n in &names {
            // A standby batcher is not ready until it leads: start only.
            if n == "batcher-b" {
                continue;
            }
            if let Some(s) = w.stages.get_mut(n) {
                s.wait_ready(&w.http, 90).await?;
            }
        }
        Ok(w)
    }

    /// Start everything that is not running (after a round).
    async fn heal(&mut self) -> Result<(), String> {
        self.proxy.restore();
        let _ = self
            .court_control(json!({"error_rate": 0.0, "latency_ms": 0, "drop_rate": 0.0}))
            .await;
        for p in [&mut self.anvil, &mut self.court, &mut self.tsa] {
            if !p.running() {
                p.start()?;
                self.restarts += 1;
                p.wait_ready(&self.http, 60).await?;
            }
        }
        for s in self.stages.values_mut() {
            if !s.running() {
                s.start()?;
                self.restarts += 1;
            }
        }
        Ok(())
    }

    async fn court_control(&self, faults: Value) -> Result<(), String> {
        self.http
            .post(format!("{}/sim/control", self.court_url))
            .json(&faults)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Apply one fault; returns what it did and whether it heals at the
    /// end of the round (else it healed already).
    async fn apply(&mut self, f: Fault, rng: &mut StdRng) -> Result<String, String> {
        Ok(match f {
            Fault::Kill => {
                let names: Vec<String> = self.stages.keys().cloned().collect();
                let n = names[rng.random_range(0..names.len())].clone();
                let delay = Duration::from_millis(rng.random_range(200..2000));
                let s = self.stages.get_mut(&n).ok_or("no such stage")?;
                if s.kill() {
                    self.kills += 1;
                }
                tokio::time::sleep(delay).await;
                s.start()?;
                self.restarts += 1;
                format!("kill -9 {n} (back after {} ms)", delay.as_millis())
            }
            Fault::Postgres { immediate } => {
                let t = Instant::now();
                self.services.restart_postgres(immediate)?;
                self.restarts += 1;
                format!(
                    "postgres restart ({}, {:.1} s)",
                    if immediate { "immediate" } else { "fast" },
                    t.elapsed().as_secs_f64()
                )
            }
            Fault::Broker => {
                let t = Instant::now();
                self.services.restart_kafka()?;
                self.restarts += 1;
                format!("broker restart ({:.1} s)", t.elapsed().as_secs_f64())
            }
            Fault::Witness => {
                let n = if rng.random_bool(0.5) {
                    "witness-1"
                } else {
                    "witness-2"
                };
                if let Some(s) = self.stages.get_mut(n)
                    && s.kill()
                {
                    self.kills += 1;
                }
                format!("{n} down")
            }
            Fault::Tsa => {
                if self.tsa.kill() {
                    self.kills += 1;
                }
                "TSA down".into()
            }
            Fault::CourtFaults => {
                self.court_control(
                    json!({"error_rate": 0.3, "latency_ms": 2000, "drop_rate": 0.2}),
                )
                .await?;
                "court 30% errors, 2 s latency, 20% dropped".into()
            }
            Fault::CourtKill => {
                if self.court.kill() {
                    self.kills += 1;
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..2000))).await;
                self.court.start()?;
                self.restarts += 1;
                self.court.wait_ready(&self.http, 30).await?;
                "kill -9 court simulator".into()
            }
            Fault::CourtReset => {
                self.court_control(json!({"reset_chain": true})).await?;
                "court chain reset".into()
            }
            Fault::AnvilPartition => {
                self.proxy.break_all();
                "anvil partitioned".into()
            }
            Fault::AnvilReset => {
                if self.anvil.kill() {
                    self.kills += 1;
                }
                self.anvil.start()?;
                self.restarts += 1;
                self.anvil.wait_ready(&self.http, 30).await?;
                "anvil restarted empty".into()
            }
        })
    }

    /// Stop every process (the services go with [`Services`]' drop).
    fn stop_all(&mut self) {
        for s in self.stages.values_mut() {
            s.kill();
        }
        self.anvil.kill();
        self.court.kill();
        self.tsa.kill();
    }
}

/// The producer process and its files.
struct Producer {
    child: Child,
    manifest: PathBuf,
    stop: PathBuf,
}

impl Producer {
    fn start(dir: &Path, brokers: &str, seed: u64, rate: u32) -> Result<Producer, String> {
        let script = dir.join("producer.py");
        std::fs::write(&script, PRODUCER).map_err(|e| e.to_string())?;
        let manifest = dir.join("manifest.jsonl");
        let stop = dir.join("producer.stop");
        let log =
            std::fs::File::create(dir.join("logs/producer.log")).map_err(|e| e.to_string())?;
        let child = Command::new(python())
            .arg(&script)
            .args([brokers, "chaos.evidence"])
            .arg(&manifest)
            .arg(&stop)
            .args([seed.to_string(), rate.to_string()])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!(
                    "starting the producer ({}): {e}; run scripts/test-peers (confluent-kafka)",
                    python().display()
                )
            })?;
        Ok(Producer {
            child,
            manifest,
            stop,
        })
    }

    /// Ask it to stop, wait for its flush.
    async fn finish(mut self, secs: u64) -> Result<String, String> {
        std::fs::write(&self.stop, "").map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().map_err(|e| e.to_string())? {
                let mut out = String::new();
                if let Some(mut o) = self.child.stdout.take() {
                    use std::io::Read as _;
                    let _ = o.read_to_string(&mut out);
                }
                if !st.success() {
                    return Err(format!("the producer exited with {st}: {out}"));
                }
                return Ok(out);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("the producer did not flush within {secs} s"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Progress figures for a round line.
async fn progress(url: &str) -> String {
    match checks::ledger_view(url).await {
        Ok(v) => {
            let mut s = format!(
                "entries={} dead_letters={} checkpoints={} final={}",
                v.entries.len(),
                v.dead_letters.len(),
                v.checkpoints.len(),
                v.checkpoints.iter().filter(|c| c.1).count()
            );
            for (t, r) in &v.receipts {
                let _ = write!(s, " {t}={}", r.len());
            }
            s
        }
        Err(e) => format!("(ledger unreadable: {e})"),
    }
}

/// Whether the pipeline has caught up with everything the producer sent.
fn converged(m: &checks::Manifest, v: &checks::LedgerView) -> Result<(), String> {
    let verdict = checks::check_evidence(m, v);
    if verdict.lost > 0 {
        return Err(format!(
            "{} acknowledged messages not yet in the ledger",
            verdict.lost
        ));
    }
    if verdict.dead_letter_missing > 0 {
        return Err(format!(
            "{} malformed messages not yet dead-lettered",
            verdict.dead_letter_missing
        ));
    }
    let last = v.entries.len() as i64 - 1;
    if v.blocks_last_seq.unwrap_or(-1) != last {
        return Err(format!(
            "sealed up to {:?} of {} entries",
            v.blocks_last_seq,
            v.entries.len()
        ));
    }
    match v.checkpoints.last() {
        Some((size, true)) if *size == v.blocks => {}
        other => {
            return Err(format!(
                "latest checkpoint {other:?}, {} blocks: not final yet",
                v.blocks
            ));
        }
    }
    for (t, state, n) in &v.jobs {
        if matches!(state.as_str(), "pending" | "sending" | "submitted") {
            return Err(format!("{n} {t} jobs {state}"));
        }
    }
    for target in ["court", "anvil"] {
        for (size, fin) in &v.checkpoints {
            if !fin {
                continue;
            }
            let anchored = v.receipts.get(target).is_some_and(|r| r.contains_key(size));
            let covered = v.coverage.get(target).is_some_and(|c| c.contains_key(size));
            if !anchored && !covered {
                return Err(format!(
                    "checkpoint {size} not anchored or covered on {target}"
                ));
            }
        }
    }
    Ok(())
}

/// Run the suite; `say` gets one line per round and progress notes.
pub async fn run(opts: &Options, say: &(dyn Fn(&str) + Sync)) -> Result<Summary, String> {
    let started = Instant::now();
    let mut w = World::start(opts, say).await?;
    let result = run_in(&mut w, say).await;
    w.stop_all();
    let keep = opts.keep || !result.as_ref().is_ok_and(Summary::ok);
    let dir = w.dir.clone();
    if keep {
        w.services.save_logs(&dir.join("logs"));
    }
    drop(w);
    if keep {
        say(&format!(
            "chaos: logs kept in {}",
            dir.join("logs").display()
        ));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|mut s| {
        s.wall_s = started.elapsed().as_secs_f64();
        s
    })
}

async fn run_in(w: &mut World, say: &(dyn Fn(&str) + Sync)) -> Result<Summary, String> {
    let opts = w.opts.clone();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let producer = Producer::start(&w.dir, &w.services.brokers(), opts.seed, opts.rate)?;
    say(&format!(
        "chaos: pipeline up (15 processes), producer at {} msg/s, {} rounds, seed {}",
        opts.rate, opts.rounds, opts.seed
    ));
    tokio::time::sleep(Duration::from_millis(opts.settle_ms)).await;
    for round in 1..=opts.rounds {
        let t = Instant::now();
        // One fault from the rotation (every kind comes up within ten
        // rounds), a stage kill, and sometimes one more at random.
        let mut faults = vec![
            ROTATION[(round as usize - 1 + opts.seed as usize) % ROTATION.len()],
            Fault::Kill,
        ];
        if rng.random_bool(0.5) {
            faults.push(ROTATION[rng.random_range(0..ROTATION.len())]);
        }
        let mut did = Vec::new();
        for f in faults {
            did.push(w.apply(f, &mut rng).await?);
        }
        let elapsed = t.elapsed().as_millis() as u64;
        tokio::time::sleep(Duration::from_millis(opts.round_ms.saturating_sub(elapsed))).await;
        w.heal().await?;
        tokio::time::sleep(Duration::from_millis(opts.settle_ms)).await;
        say(&format!(
            "round {round}/{}: {} | {} | {:.1} s",
            opts.rounds,
            did.join(", "),
            progress(&w.ledger_url).await,
            t.elapsed().as_secs_f64()
        ));
    }

    // Stop the load, let everything catch up.
    let manifest_path = producer.manifest.clone();
    let flushed = producer.finish(300).await?;
    w.heal().await?;
    let manifest = checks::read_manifest(&manifest_path)?;
    say(&format!(
        "chaos: producer done {} ({} messages, {} unacknowledged); waiting for the pipeline",
        flushed.trim(),
        manifest.sent,
        manifest.unacked
    ));
    let t = Instant::now();
    let deadline = t + Duration::from_secs(opts.converge_secs);
    let mut last_err = String::new();
    loop {
        last_err = match checks::ledger_view(&w.ledger_url).await {
            Ok(v) => match converged(&manifest, &v) {
                Ok(()) => break,
                Err(e) => e,
            },
            Err(e) => e,
        };
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut s = Summary {
        rounds: opts.rounds,
        kills: w.kills,
        restarts: w.restarts,
        sent: manifest.sent,
        unacked: manifest.unacked,
        ..Summary::default()
    };
    if Instant::now() > deadline {
        s.problems.push(format!(
            "not caught up {} s after the load stopped: {last_err}",
            opts.converge_secs
        ));
        let mut status = String::new();
        for m in w.stages.values_mut() {
            let up = if m.running() { "up" } else { "DOWN" };
            let _ = write!(status, " {}={up}", m.name);
        }
        say(&format!("chaos: processes:{status}"));
    } else {
        say(&format!(
            "chaos: caught up in {:.1} s",
            t.elapsed().as_secs_f64()
        ));
    }

    // The checks, from the outside.
    let v = checks::ledger_view(&w.ledger_url).await?;
    let verdict = checks::check_evidence(&manifest, &v);
    s.lost = verdict.lost;
    s.doubled = verdict.doubled;
    s.problems.extend(verdict.problems);
    s.accepted = v.entries.len() as u64;
    s.dead_letters = v.dead_letters.len() as u64;
    s.checkpoints = v.checkpoints.len() as u64;
    let non_final = v.checkpoints.iter().filter(|c| !c.1).count();
    if non_final > 0 {
        say(&format!(
            "chaos: {non_final} of {} checkpoints were skipped by the witnesses (a later final checkpoint covers them, docs/witness-protocol.md)",
            v.checkpoints.len()
        ));
    }
    check_chains(w, &v, &mut s).await;

    // anchord audit.
    let cfg = w.config.to_string_lossy().into_owned();
    let audit = anchord(&opts.bin)
        .args(["--config", &cfg, "audit", "--no-progress"])
        .output()
        .map_err(|e| e.to_string())?;
    s.audit_clean = audit.status.success();
    if !s.audit_clean {
        s.problems.push(format!(
            "anchord audit: {}{}",
            String::from_utf8_lossy(&audit.stdout),
            String::from_utf8_lossy(&audit.stderr)
        ));
    }

    // Sampled proofs, offline and online, against the exported trust policy.
    let trust = w.dir.join("trust.toml");
    run_ok(
        anchord(&opts.bin)
            .args(["--config", &cfg, "trust", "export", "--out"])
            .arg(&trust),
        "anchord trust export",
    )?;
    let hashes: Vec<&String> = manifest.acked_valid.values().collect();
    for i in 0..opts.samples.min(hashes.len()) {
        let h = hashes[i * hashes.len() / opts.samples.max(1)];
        match verify_sample(w, &trust, h).await {
            Ok(()) => s.proofs_verified += 1,
            Err(e) => s.problems.push(e),
        }
    }
    for p in &s.problems {
        say(&format!("chaos: PROBLEM: {p}"));
    }
    Ok(s)
}

/// On-chain truth for both targets: no checkpoint anchored twice on the
/// current chain, every live receipt on the chain in the recorded block,
/// every anchor on the chain recorded, every final checkpoint anchored or
/// covered exactly once.
async fn check_chains(w: &World, v: &checks::LedgerView, s: &mut Summary) {
    let empty = BTreeMap::new();
    // anvil, by checkpoint size.
    let anvil_url = format!("http://127.0.0.1:{}", w.anvil_port);
    match checks::evm_anchors(&w.http, &anvil_url, ORIGIN).await {
        Ok((anchors, blocks)) => {
            let receipts = v.receipts.get("anvil").unwrap_or(&empty);
            for (size, txs) in &anchors {
                if txs.len() > 1 {
                    s.double_anchors += txs.len() as u64 - 1;
                    s.problems.push(format!(
                        "anvil: checkpoint {size} anchored {} times: {txs:?}",
                        txs.len()
                    ));
                }
                if !receipts.contains_key(&(*size as i64)) {
                    s.double_anchors += 1;
                    s.problems.push(format!(
                        "anvil: checkpoint {size} anchored on the chain ({txs:?}) but the ledger records no receipt for it"
                    ));
                }
            }
            for (size, (tx, block)) in receipts {
                match blocks.get(&tx.to_lowercase()).or_else(|| blocks.get(tx)) {
                    Some(b) if b.eq_ignore_ascii_case(block) => {}
                    Some(b) => s.problems.push(format!(
                        "anvil: receipt of checkpoint {size} names block {block}, the chain has {tx} in {b}"
                    )),
                    None => s.problems.push(format!(
                        "anvil: receipt of checkpoint {size} names {tx}, not on the chain"
                    )),
                }
            }
        }
        Err(e) => s.problems.push(format!("reading anvil: {e}")),
    }
    // The court, by idempotency key (one per checkpoint and target).
    match checks::court_anchors(&w.http, &w.court_url).await {
        Ok((by_key, blocks)) => {
            let receipts = v.receipts.get("court").unwrap_or(&empty);
            let recorded: std::collections::HashSet<&str> =
                receipts.values().map(|(tx, _)| tx.as_str()).collect();
            for (key, txs) in &by_key {
                if txs.len() > 1 {
                    s.double_anchors += txs.len() as u64 - 1;
                    s.problems.push(format!(
                        "court: idempotency key {key} anchored {} times: {txs:?}",
                        txs.len()
                    ));
                }
                for tx in txs {
                    if !recorded.contains(tx.as_str()) {
                        s.double_anchors += 1;
                        s.problems.push(format!(
                            "court: {tx} ({key}) on the chain but recorded nowhere"
                        ));
                    }
                }
            }
            for (size, (tx, block)) in receipts {
                match blocks.get(tx) {
                    Some(b) if b == block => {}
                    Some(b) => s.problems.push(format!(
                        "court: receipt of checkpoint {size} names block {block}, the chain has {tx} in {b}"
                    )),
                    None => s.problems.push(format!(
                        "court: receipt of checkpoint {size} names {tx}, not on the chain"
                    )),
                }
            }
        }
        Err(e) => s.problems.push(format!("reading the court chain: {e}")),
    }
    // Exactly once per final checkpoint and target.
    for target in ["court", "anvil"] {
        let receipts = v.receipts.get(target).unwrap_or(&empty);
        let coverage = v.coverage.get(target);
        for (size, fin) in &v.checkpoints {
            if !fin {
                continue;
            }
            let a = receipts.contains_key(size);
            let c = coverage.and_then(|c| c.get(size));
            match (a, c) {
                (true, None) => {}
                (false, Some(by)) if receipts.contains_key(by) => {}
                (false, Some(by)) => s.problems.push(format!(
                    "{target}: checkpoint {size} covered by {by}, which has no live receipt"
                )),
                // Its own anchor confirmed after a later one had covered
                // it while it was in flight (both on the chain once each;
                // the ledger keeps both rows and proofs use its own).
                (true, Some(_)) => s.anchored_and_covered += 1,
                (false, None) => s.problems.push(format!(
                    "{target}: final checkpoint {size} neither anchored nor covered"
                )),
            }
        }
    }
}

/// One proof: the verifier's bundle for `hash`, verified by `anchord
/// verify` offline and online against the exported trust policy.
async fn verify_sample(w: &World, trust: &Path, hash: &str) -> Result<(), String> {
    let verifier = format!("127.0.0.1:{}", w.verifier_port);
    let r = w
        .http
        .get(format!("http://{verifier}/v1/proofs/{hash}"))
        .send()
        .await
        .map_err(|e| format!("proof {hash}: {e}"))?;
    let status = r.status();
    let body = r.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("proof {hash}: verifier answered {status}: {body}"));
    }
    let file = w.dir.join(format!("bundle-{hash}.json"));
    std::fs::write(&file, &body).map_err(|e| e.to_string())?;
    for online in [false, true] {
        let mut c = anchord(&w.opts.bin);
        c.arg("verify")
            .arg("--bundle")
            .arg(&file)
            .args(["--hash", hash])
            .arg("--trust")
            .arg(trust);
        if online {
            c.arg("--online");
        }
        let out = c.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "anchord verify{} of {hash}: {}: {}{}",
                if online { " --online" } else { "" },
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}
