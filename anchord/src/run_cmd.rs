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

use crate::config::Config;

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

pub async fn run(config: Config, args: RunArgs) -> anyhow::Result<()> {
    let has = |s: Stage| args.stages.contains(&s);
    // Everything that can be checked without the network is checked before
    // any port is bound or any stage starts.
    if has(Stage::Ingest) {
        config
            .ingest
            .validate_for_ingest()
            .context("ingest (needed by the ingest stage)")?;
    }
    let verifier_keys = if has(Stage::Verifier) {
        Some(crate::verify_cmd::declared_keys(&config)?)
    } else {
        None
    };

    let ledger = crate::open_ledger(&config).await?;
    let workflow_deps = if has(Stage::Workflow) {
        Some(crate::workflow_cmd::deps(&config, ledger.clone())?)
    } else {
        None
    };
    let shutdown = crate::shutdown::on_signal();
    let mut readiness = crate::admin::Readiness::new(ledger.clone());
    if has(Stage::Ingest) {
        readiness = readiness.with_broker(anchord_ingest::probe::BrokerProbe::new(&config.ingest)?);
    }
    if has(Stage::Workflow) && !has(Stage::Ingest) {
        readiness = readiness.with_broker(crate::workflow_cmd::broker_probe(&config)?);
    }
    if has(Stage::Relay) {
        readiness = readiness.with_targets(&config.relay);
    }
    let admin = crate::admin::serve_ready(config.admin.listen, readiness, shutdown.clone()).await?;

    let suite = config.hash_suite;
    let mut tasks: JoinSet<(Stage, anyhow::Result<()>)> = JoinSet::new();
    for stage in dedup(&args.stages) {
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
                let c = crate::workflow_cmd::effective_config(&config);
                let deps = workflow_deps.clone().context("workflow dependencies")?;
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
    shutdown.cancel();
    let _ = admin.await;
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
