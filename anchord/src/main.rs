//! `anchord`: parse the command line, load and validate the configuration,
//! set up logging, hand over to a stage library, wait for shutdown.
//!
//! Exit codes: 0 success, 1 failure (or a check that found a problem),
//! 2 usage or configuration error (before anything was started).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod admin;
mod batcher_cmd;
mod config;
mod config_cmd;
mod conformance;
mod probes;
mod relay_cmd;
mod run_cmd;
mod service;
mod shutdown;
mod times;
mod verify_cmd;
mod watch;
mod workflow_cmd;

use config::Config;

/// mimalloc rather than the C library's allocator: ingest allocates per
/// message on three threads (consumer, preparing and committing stages), and
/// glibc's malloc and free took about a third of its CPU (perf, issue 17).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "anchord",
    version,
    about = "Court-ready evidence ledger: ingest, seal, anchor, prove"
)]
struct Cli {
    /// Configuration file (TOML); every key can also come from ANCHORD__SECTION__KEY.
    #[arg(long, short, global = true, env = "ANCHORD_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, default_value = "human", value_parser = ["human", "json"], env = "ANCHORD_LOG_FORMAT")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending database migrations and exit (the ledger's; with
    /// --witness, the witness's own schema instead, in a witness's database).
    Migrate {
        /// Migrate a witness's database (schema `anchord_witness` only).
        #[arg(long)]
        witness: bool,
    },
    /// Print where the ledger stands (entries, blocks, checkpoints, dead letters, anchors).
    Status {
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        #[command(flatten)]
        watch: watch::WatchArgs,
    },
    /// Check every Merkle test vector file under DIR (transparency-dev layout).
    Conformance {
        /// Directory holding inclusion/ and consistency/ vector files.
        dir: PathBuf,
    },
    /// Consume evidence from Kafka into the ledger.
    Ingest,
    /// Publish realistic bank evidence messages to Kafka.
    Loadgen(anchord_ingest::loadgen::LoadgenArgs),
    /// Seal ledger entries into signed blocks and checkpoints (one active
    /// sealer through a PostgreSQL lock; other instances stand by).
    Batcher,
    /// Generate an Ed25519 key file: a sealer note key, or with --witness a
    /// cosignature/v1 key. Prints the public key (vkey).
    Keygen(batcher_cmd::KeygenArgs),
    /// Serve the witness (c2sp.org/tlog-witness) for the configured logs.
    Witness,
    /// Recompute and verify every block, the block log, the checkpoints and
    /// their signatures; exit 1 on any inconsistency.
    Audit(batcher_cmd::AuditArgs),
    /// Anchor final checkpoints on external chains (`relay gaps`, `relay replay`).
    Relay(relay_cmd::RelayArgs),
    /// Serve the judicial-chain simulator (tests and the demo).
    JudicialSim(relay_cmd::SimArgs),
    /// Verify a proof bundle against the court's trust policy (--trust):
    /// exit 0 valid, 1 invalid (with the failed check), 2 usage error,
    /// 3 untrusted (signer, origin or chain not in the policy, or no
    /// policy), 4 unconfirmed online. No network unless --online.
    Verify(verify_cmd::VerifyArgs),
    /// Export a proof bundle as an OpenTimestamps (.ots) or C2SP tlog-proof
    /// file, or a preservation certificate (pdf, verified first against --trust).
    Export(verify_cmd::ExportArgs),
    /// This deployment's trust policy for courts (`trust export`).
    Trust(verify_cmd::TrustArgs),
    /// Serve the proof API (bundles, verify, checkpoints, OpenAPI).
    Verifier,
    /// Serve the workflow API (docs/workflow-api.md): products, preservations,
    /// e-contracts, judicial requests, audit, webhooks. `workflow create-admin`
    /// bootstraps an administrator.
    Workflow(workflow_cmd::WorkflowArgs),
    /// Validate the configuration without starting anything (`config check`).
    Config(config_cmd::ConfigArgs),
    /// Run every pipeline stage (ingest, batcher, relay, verifier) in one
    /// process, or the subset given with --stages.
    Run(run_cmd::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    match cli.command {
        Command::Conformance { dir } => match conformance::run(&dir) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Keygen(args) => batcher_cmd::keygen(&args),
        Command::Config(args) => config_cmd::run(cli.config.as_deref(), &args),
        Command::JudicialSim(args) => relay_cmd::judicial_sim(args),
        Command::Verify(args) => verify_cmd::verify(&args),
        Command::Export(args) => verify_cmd::export(&args),
        // The OpenAPI document needs no configuration.
        Command::Workflow(workflow_cmd::WorkflowArgs {
            action: Some(workflow_cmd::WorkflowAction::Openapi),
        }) => workflow_cmd::print_openapi(),
        command => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: starting the runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            rt.block_on(run_service(cli.config, command))
        }
    }
}

async fn run_service(config_path: Option<PathBuf>, command: Command) -> ExitCode {
    // Configuration is loaded and validated before any port is bound.
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Migrate { witness: false } => migrate(&config).await,
        Command::Migrate { witness: true } => migrate_witness(&config).await,
        Command::Status { json, watch } => status(&config, json, &watch).await,
        Command::Ingest => service::run(config, IngestService).await,
        Command::Loadgen(args) => anchord_ingest::loadgen::run(&config.ingest, args)
            .await
            .map_err(anyhow::Error::from),
        Command::Batcher => service::run(config, batcher_cmd::BatcherService).await,
        Command::Witness => service::run(config, batcher_cmd::WitnessService).await,
        Command::Audit(args) => batcher_cmd::audit(config, args).await,
        Command::Relay(args) => relay_cmd::relay(config, args).await,
        Command::Verifier => service::run(config, verify_cmd::VerifierService).await,
        Command::Trust(args) => verify_cmd::trust(&config, &args).await,
        Command::Workflow(args) => workflow_cmd::run(config, args).await,
        Command::Run(args) => service::run(config, run_cmd::RunService::new(args)).await,
        Command::Verify(_) | Command::Export(_) => {
            unreachable!("handled before the runtime starts")
        }
        Command::Conformance { .. }
        | Command::Keygen(_)
        | Command::JudicialSim(_)
        | Command::Config(_) => {
            unreachable!("handled before the runtime starts")
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The same bad configuration exits 2 from every subcommand, found
        // before any port is bound (service::run validates first).
        Err(e) if service::is_config_error(&e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// `anchord status`: a reader (read-only sessions, no migration).
async fn status(config: &Config, json: bool, watch: &watch::WatchArgs) -> anyhow::Result<()> {
    let ledger = service::open_reader(config).await?;
    if watch.watch {
        return watch::watch(&ledger, watch).await;
    }
    let s = ledger.summary().await?;
    if !json {
        println!(
            "entries {}  sealed {} in {} blocks  checkpoint {} (final {})  dead letters {} ({} unpublished)  anchors {}",
            s.entries,
            s.sealed_entries,
            s.blocks,
            s.checkpoint_size,
            s.final_checkpoint_size,
            s.dead_letters,
            s.dead_letters_unpublished,
            s.anchors
        );
        for t in &s.targets {
            println!(
                "  target {}: {} anchors, checkpoint {} anchored ({} entries)",
                t.target, t.anchors, t.checkpoint_size, t.entries
            );
        }
    }
    anchor_health(config, &ledger, json, &s).await
}

/// `anchord status`, anchoring part: per configured target, lost anchors,
/// chain resets, what waits to be anchored, re-verification progress.
async fn anchor_health(
    config: &Config,
    ledger: &anchord_ledger::Ledger,
    json: bool,
    s: &anchord_ledger::Summary,
) -> anyhow::Result<()> {
    let mut health = Vec::new();
    for t in &config.relay.targets {
        health.push(ledger.anchor_health(&t.name).await?);
    }
    if json {
        let mut v = serde_json::to_value(s)?;
        v["anchoring"] = serde_json::to_value(&health)?;
        println!("{v}");
        return Ok(());
    }
    for h in &health {
        let mut line = format!(
            "  anchoring {}: {} live anchor(s) ({} not yet re-verified), {} final checkpoint(s) waiting",
            h.target, h.live_receipts, h.unverified_receipts, h.uncovered_checkpoints
        );
        if h.lost_receipts > 0 {
            line.push_str(&format!(
                "; LOST {} anchor(s), last: {}",
                h.lost_receipts,
                h.last_lost_reason.as_deref().unwrap_or("?")
            ));
        }
        if h.chain_resets > 0 {
            line.push_str(&format!("; {} chain reset(s)", h.chain_resets));
        }
        println!("{line}");
    }
    Ok(())
}

async fn migrate_witness(config: &Config) -> anyhow::Result<()> {
    let store = anchord_ledger::WitnessStore::connect(&config.database)?;
    let applied = store.migrate().await?;
    println!(
        "{} witness migration(s) applied; witness schema at version {}",
        applied.len(),
        anchord_ledger::migrate::WITNESS_MIGRATIONS
            .last()
            .map_or(0, |m| m.version)
    );
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let ledger = anchord_ledger::Ledger::connect(&config.database)?;
    let applied = ledger.migrate().await?;
    ledger.ensure_suite(config.hash_suite).await?;
    println!(
        "{} migration(s) applied; schema at version {}",
        applied.len(),
        anchord_ledger::MIGRATIONS.last().map_or(0, |m| m.version)
    );
    Ok(())
}

/// `anchord ingest`: a writer; `ingest.tenants` and the rest of the
/// section checked before anything is bound.
pub(crate) struct IngestService;

impl service::Service for IngestService {
    type Prepared = anchord_ingest::probe::BrokerProbe;
    type Db = anchord_ledger::Ledger;

    fn validate(&self, config: &Config) -> anyhow::Result<Self::Prepared> {
        config
            .ingest
            .validate_for_ingest()
            .context("ingest (needed by the ingest stage)")?;
        Ok(anchord_ingest::probe::BrokerProbe::new(&config.ingest)?)
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<Self::Db> {
        service::open_writer(config).await
    }

    fn readiness(
        &self,
        _: &Config,
        probe: &Self::Prepared,
        ledger: &Self::Db,
    ) -> anyhow::Result<admin::Readiness> {
        Ok(admin::Readiness::new(ledger.clone()).with_broker(probe.clone()))
    }

    async fn run(
        self,
        config: Config,
        _: Self::Prepared,
        ledger: Self::Db,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        Ok(anchord_ingest::run(config.ingest, config.hash_suite, ledger, shutdown).await?)
    }
}

fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ANCHORD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
