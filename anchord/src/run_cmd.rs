//! `anchord run`: every pipeline stage in one process, for small
//! deployments and the demo. Each stage is the same code `anchord ingest`,
//! `anchord batcher`, `anchord workflow`, … run alone; here they share one ledger pool, one admin
//! listener and one shutdown token. A stage that fails stops the others
//! (after they drain), and the process exits non-zero naming it.
//!
//! Witnesses are not part of `run`: a witness belongs to another party (a
//! notary office, a court) with its own key and database; run it with
//! `anchord witness`.

use std::fmt;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::config::Config;
use crate::service::Service;

/// A stage `anchord run` can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Ingest,
    Batcher,
    Relay,
    Verifier,
    Workflow,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Ingest => "ingest",
            Stage::Batcher => "batcher",
            Stage::Relay => "relay",
            Stage::Verifier => "verifier",
            Stage::Workflow => "workflow",
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The stages to run, comma-separated (default: all of them).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,batcher,relay,verifier,workflow"
    )]
    pub stages: Vec<Stage>,
}

/// `anchord run`, through the same skeleton as each stage alone: every
/// stage's validation first (exit 2 on a bad configuration, before any port
/// is bound), one writer pool, one admin listener.
pub struct RunService {
    stages: Vec<Stage>,
}

impl RunService {
    pub fn new(args: RunArgs) -> Self {
        RunService {
            stages: dedup(&args.stages),
        }
    }

    /// Every stage (the default of `--stages`).
    pub fn all() -> Self {
        RunService {
            stages: vec![
                Stage::Ingest,
                Stage::Batcher,
                Stage::Relay,
                Stage::Verifier,
                Stage::Workflow,
            ],
        }
    }

    fn has(&self, s: Stage) -> bool {
        self.stages.contains(&s)
    }
}

/// What validation hands to the run.
pub struct Prepared {
    verifier_keys: Option<anchord_core::bundle::DeclaredKeys>,
    workflow: Option<(
        anchord_core::bundle::DeclaredKeys,
        anchord_ingest::probe::BrokerProbe,
        anchord_workflow::Health,
    )>,
    ingest_probe: Option<anchord_ingest::probe::BrokerProbe>,
}

impl Service for RunService {
    type Prepared = Prepared;
    type Db = anchord_ledger::Ledger;

    fn validate(&self, config: &Config) -> anyhow::Result<Prepared> {
        // Each stage's own validation, the same code its subcommand runs.
        let mut ingest_probe = None;
        if self.has(Stage::Ingest) {
            ingest_probe = Some(crate::IngestService.validate(config)?);
        }
        if self.has(Stage::Batcher) {
            crate::batcher_cmd::BatcherService
                .validate(config)
                .context("batcher (needed by the batcher stage)")?;
        }
        if self.has(Stage::Relay) {
            crate::relay_cmd::validate(config, None)
                .context("relay (needed by the relay stage)")?;
        }
        let verifier_keys = if self.has(Stage::Verifier) {
            Some(crate::verify_cmd::VerifierService.validate(config)?)
        } else {
            None
        };
        let workflow = if self.has(Stage::Workflow) {
            Some(crate::workflow_cmd::WorkflowService.validate(config)?)
        } else {
            None
        };
        Ok(Prepared {
            verifier_keys,
            workflow,
            ingest_probe,
        })
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<Self::Db> {
        crate::service::open_writer(config).await
    }

    fn readiness(
        &self,
        config: &Config,
        p: &Prepared,
        ledger: &Self::Db,
    ) -> anyhow::Result<Readiness> {
        let mut readiness = Readiness::new(ledger.clone());
        if let Some(probe) = &p.ingest_probe {
            readiness = readiness.with_broker(probe.clone());
        } else if let Some((_, probe, _)) = &p.workflow {
            readiness = readiness.with_broker(probe.clone());
        }
        if let Some((_, _, health)) = &p.workflow {
            readiness = readiness.with_workflow_tasks(health.clone());
        }
        if self.has(Stage::Relay) {
            readiness = readiness.with_targets(&config.relay);
        }
        Ok(readiness)
    }

    async fn run(
        self,
        config: Config,
        p: Prepared,
        ledger: Self::Db,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        run_stages(&config, &self.stages, p, ledger, shutdown).await
    }
}

async fn run_stages(
    config: &Config,
    stages: &[Stage],
    p: Prepared,
    ledger: anchord_ledger::Ledger,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let verifier_keys = p.verifier_keys;
    let (workflow_keys, workflow_health) = match p.workflow {
        Some((k, _, h)) => (Some(k), h),
        None => (None, anchord_workflow::Health::new()),
    };
    let suite = config.hash_suite;
    let mut tasks: JoinSet<(Stage, anyhow::Result<()>)> = JoinSet::new();
    for &stage in stages {
        let ledger = ledger.clone();
        let token = shutdown.clone();
        let span = tracing::info_span!("stage", stage = %stage);
        match stage {
            Stage::Ingest => {
                let c = config.ingest.clone();
                tasks.spawn(
                    async move {
                        let r = anchord_ingest::run(c, suite, ledger, token).await;
                        (stage, r.map_err(Into::into))
                    }
                    .instrument(span),
                );
            }
            Stage::Batcher => {
                let c = config.batcher.clone();
                tasks.spawn(
                    async move {
                        let r = anchord_batcher::run(c, suite, ledger, token).await;
                        (stage, r.map_err(Into::into))
                    }
                    .instrument(span),
                );
            }
            Stage::Relay => {
                let c = config.relay.clone();
                tasks.spawn(
                    async move {
                        let r = anchord_relay::run(c, ledger, None, token).await;
                        (stage, r.map_err(Into::into))
                    }
                    .instrument(span),
                );
            }
            Stage::Verifier => {
                let c = config.verifier.clone();
                let keys = verifier_keys.clone().context("verifier keys")?;
                tasks.spawn(
                    async move {
                        let r = anchord_verifier::run(c, suite, keys, ledger, token).await;
                        (stage, r.map_err(Into::into))
                    }
                    .instrument(span),
                );
            }
            Stage::Workflow => {
                let c = crate::workflow_cmd::effective_config(config);
                let deps = anchord_workflow::Deps {
                    ledger,
                    suite,
                    keys: workflow_keys.clone().context("workflow keys")?,
                    health: workflow_health.clone(),
                };
                tasks.spawn(
                    async move {
                        let r = anchord_workflow::serve(c, deps, token).await;
                        (stage, r.map_err(Into::into))
                    }
                    .instrument(span),
                );
            }
        }
        tracing::info!(%stage, "stage started");
    }

    // The first stage to fail, or to stop while nobody asked it to, stops
    // the others; they drain as on a signal.
    let mut first_error: Option<anyhow::Error> = None;
    while let Some(joined) = tasks.join_next().await {
        let (stage, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                shutdown.cancel();
                first_error.get_or_insert(anyhow::anyhow!("a stage panicked: {e}"));
                continue;
            }
        };
        match result {
            Ok(()) if shutdown.is_cancelled() => tracing::info!(%stage, "stage stopped"),
            Ok(()) => {
                tracing::error!(%stage, "stage stopped on its own; stopping the others");
                shutdown.cancel();
                first_error.get_or_insert(anyhow::anyhow!("stage {stage} stopped on its own"));
            }
            Err(e) => {
                tracing::error!(%stage, "stage failed: {e:#}; stopping the others");
                shutdown.cancel();
                first_error.get_or_insert(e.context(format!("stage {stage}")));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn dedup(stages: &[Stage]) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    for s in stages {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}
