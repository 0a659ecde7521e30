//! `anchord relay` (run, gaps, replay) and `anchord judicial-sim`: thin
//! wrappers over the relay crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anchord_ledger::Ledger;
use anchord_relay::config::TargetKind;
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::config::Config;
use crate::service::Service;

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RelayCommand {
    /// Anchor final checkpoints on every configured target (the default).
    Run {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// The outage view per target: windows where anchoring was late (final
    /// checkpoints that waited longer than --late-after-s for an anchor of
    /// their own or a covering one), the open window nothing covers yet, and
    /// anchors found lost (reorganised away, chain reset).
    Gaps {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// A checkpoint counts as late when it waited longer than this
        /// (0: list every coalesced checkpoint).
        #[arg(long, default_value_t = 60)]
        late_after_s: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Re-drive anchoring of one target from block height H: failed jobs
    /// there are retried, the newest final checkpoint is anchored if needed,
    /// and the command runs that target until every final checkpoint of
    /// block-log size > H is anchored or covered.
    Replay {
        #[arg(long)]
        target: String,
        /// Block height; checkpoints of size H+1 and later are re-driven.
        #[arg(long)]
        from: u64,
        /// Give up after this many seconds (exit 1).
        #[arg(long, default_value_t = 300)]
        timeout_s: u64,
    },
}

pub async fn relay(config: Config, args: RelayArgs) -> anyhow::Result<()> {
    match args.command.unwrap_or(RelayCommand::Run { target: None }) {
        RelayCommand::Run { target } => run(config, target).await,
        RelayCommand::Gaps {
            target,
            late_after_s,
            json,
        } => gaps(config, target, late_after_s, json).await,
        RelayCommand::Replay {
            target,
            from,
            timeout_s,
        } => replay(config, target, from, timeout_s).await,
    }
}

async fn run(config: Config, target: Option<String>) -> anyhow::Result<()> {
    crate::service::run(config, RelayService { only: target }).await
}

/// Check the relay section as a run needs it, without the network: the
/// section's rules, `only` naming a configured target, every target's
/// endpoint and key file (each target client is built and dropped).
pub fn validate(config: &Config, only: Option<&str>) -> anyhow::Result<()> {
    config.relay.validate()?;
    if let Some(n) = only
        && !config.relay.targets.iter().any(|t| t.name == n)
    {
        anyhow::bail!("no target named {n:?} in relay.targets");
    }
    for t in &config.relay.targets {
        match t.kind {
            TargetKind::Judicial => {
                anchord_relay::judicial::JudicialTarget::new(t)?;
            }
            TargetKind::Evm => {
                anchord_relay::evm::EvmTarget::new(t)?;
            }
        }
    }
    Ok(())
}

/// `anchord relay [run]`.
pub struct RelayService {
    pub only: Option<String>,
}

impl Service for RelayService {
    type Prepared = ();
    type Db = Ledger;

    fn validate(&self, config: &Config) -> anyhow::Result<()> {
        validate(config, self.only.as_deref())
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<Ledger> {
        crate::service::open_writer(config).await
    }

    fn readiness(&self, config: &Config, _: &(), ledger: &Ledger) -> anyhow::Result<Readiness> {
        Ok(Readiness::new(ledger.clone()).with_targets(&config.relay))
    }

    async fn run(
        self,
        config: Config,
        _: (),
        ledger: Ledger,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        Ok(anchord_relay::run(config.relay, ledger, self.only, shutdown).await?)
    }
}

/// RFC 3339 in UTC and in the deployment's zone; `?` when unknown.
fn fmt_time(us: Option<i64>) -> String {
    us.map_or_else(|| "?".into(), crate::times::human)
}

async fn gaps(
    config: Config,
    target: Option<String>,
    late_after_s: u64,
    json: bool,
) -> anyhow::Result<()> {
    config
        .relay
        .validate()
        .map_err(crate::service::config_error)?;
    let ledger = crate::service::open_reader(&config).await?;
    let names: Vec<String> = match target {
        Some(t) => vec![t],
        None => config
            .relay
            .targets
            .iter()
            .map(|t| t.name.clone())
            .collect(),
    };
    let late_ms = late_after_s.saturating_mul(1000);
    let now_us = anchord_core::time::unix_micros(std::time::SystemTime::now());
    let mut all = serde_json::Map::new();
    for name in names {
        let report = anchord_relay::report::gaps(&ledger, &name, late_ms, now_us).await?;
        if json {
            all.insert(name, serde_json::to_value(&report)?);
            continue;
        }
        println!(
            "target {name}: {} window(s) late by more than {late_after_s} s; {} anchor(s) lost",
            report.windows.len(),
            report.lost.len()
        );
        for g in report.windows {
            let window = format!(
                "checkpoints {}..={} ({} checkpoint(s), sealed {} .. {}, waited up to {:.1} s{})",
                g.first_size,
                g.last_size,
                g.checkpoints,
                fmt_time(g.first_created_at_us),
                fmt_time(g.last_created_at_us),
                g.max_delay_ms as f64 / 1000.0,
                if g.lost_anchors > 0 {
                    format!(", {} lost anchor(s)", g.lost_anchors)
                } else {
                    String::new()
                }
            );
            match g.covered_by {
                Some(c) => println!(
                    "  {window}  covered by anchor of size {} tx {} block {} (confirmed {})",
                    c.size,
                    c.tx_id,
                    c.block_number,
                    fmt_time(Some(c.confirmed_at_us))
                ),
                None => println!("  {window}  OPEN: not yet covered by any anchor"),
            }
        }
        for l in report.lost {
            let now = match l.now_anchored_by {
                Some(c) => format!(
                    "now anchored by checkpoint {} tx {} block {}",
                    c.size, c.tx_id, c.block_number
                ),
                None => "PENDING AGAIN: not anchored".into(),
            };
            println!(
                "  LOST anchor of checkpoint {} tx {} (marked lost {}: {}); {now}",
                l.size,
                l.tx_id,
                fmt_time(Some(l.lost_at_us)),
                l.reason
            );
        }
    }
    if json {
        println!("{}", serde_json::Value::Object(all));
    }
    Ok(())
}

async fn replay(config: Config, target: String, from: u64, timeout_s: u64) -> anyhow::Result<()> {
    validate(&config, Some(&target)).map_err(crate::service::config_error)?;
    let ledger = crate::service::open_writer(&config).await?;
    let from_size = from + 1;
    let requeued = ledger.requeue_failed_anchors(&target, from_size).await?;
    let uncovered = ledger.anchor_uncovered(&target, from_size).await?;
    println!(
        "target {target}: {requeued} failed job(s) requeued; {} checkpoint(s) of size >= {from_size} not yet anchored or covered",
        uncovered.len()
    );
    if uncovered.is_empty() {
        return Ok(());
    }
    let shutdown = crate::shutdown::on_signal();
    let stop = shutdown.child_token();
    let worker = tokio::spawn(anchord_relay::run(
        config.relay,
        ledger.clone(),
        Some(target.clone()),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    let outcome = loop {
        if worker.is_finished() {
            break Err(anyhow::anyhow!(
                "the relay stopped before the replay finished"
            ));
        }
        let left = ledger.anchor_uncovered(&target, from_size).await?;
        if left.is_empty() {
            break Ok(());
        }
        if tokio::time::Instant::now() >= deadline || shutdown.is_cancelled() {
            break Err(anyhow::anyhow!(
                "{} checkpoint(s) still uncovered (first {})",
                left.len(),
                left[0]
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.cancel();
    worker.await.context("relay task")??;
    outcome?;
    println!(
        "target {target}: every final checkpoint of size >= {from_size} is anchored or covered"
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Listen address (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8600")]
    pub listen: SocketAddr,
    /// Where the chain is kept (chain.jsonl); reloaded and verified on start.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// An account: ID=PATH of its RSA public key (SPKI PEM). Repeatable.
    #[arg(long = "account", required = true)]
    pub accounts: Vec<String>,
    #[arg(long, default_value = "sim-judicial-chain")]
    pub chain_id: String,
    /// Cut a block this often when transactions wait.
    #[arg(long, default_value_t = 100)]
    pub block_ms: u64,
    /// How long a submission waits for its block before answering pending.
    #[arg(long, default_value_t = 2000)]
    pub wait_ms: u64,
    /// Fraction of requests that fail (half of submit failures after accepting).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Delay added to every response.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of accepted transactions never confirmed.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Start with a full outage of this length.
    #[arg(long, default_value_t = 0)]
    pub outage_ms: u64,
    /// Do not detect duplicate submissions by idempotency key.
    #[arg(long)]
    pub no_dedup: bool,
}

pub fn judicial_sim(args: SimArgs) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(sim(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let mut accounts = Vec::new();
    for a in &args.accounts {
        let (id, path) = a
            .split_once('=')
            .with_context(|| format!("--account {a}: expected ID=PATH"))?;
        let pem = std::fs::read_to_string(path).with_context(|| format!("--account {a}"))?;
        let key = anchord_relay::gateway::load_public_key(&pem)
            .map_err(|e| anyhow::anyhow!("--account {a}: {e}"))?;
        accounts.push((id.to_owned(), key));
    }
    let handle = anchord_relay::sim::start(anchord_relay::sim::SimConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        chain_id: args.chain_id,
        accounts,
        block_ms: args.block_ms,
        wait_ms: args.wait_ms,
        faults: anchord_relay::sim::Faults {
            outage_ms: (args.outage_ms > 0).then_some(args.outage_ms),
            error_rate: Some(args.error_rate),
            latency_ms: Some(args.latency_ms),
            drop_rate: Some(args.drop_rate),
            dedup: Some(!args.no_dedup),
            reset_chain: None,
        },
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    // Tests and scripts read the bound address from this line.
    println!("judicial-sim listening on {}", handle.addr);
    tracing::info!(addr = %handle.addr, "judicial-sim serving");
    let shutdown = crate::shutdown::on_signal();
    shutdown.cancelled().await;
    handle.stop().await;
    Ok(())
}
