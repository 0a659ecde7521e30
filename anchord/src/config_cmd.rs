//! `anchord config check`: load and validate the configuration (the file
//! plus every `ANCHORD__SECTION__KEY` override) exactly as each service does
//! at start, without touching the database, the broker or any port, and
//! print how long each stage may take to drain on SIGTERM.
//!
//! Deployment tooling uses it: the Helm chart's test runs it on the rendered
//! ConfigMap with each container's environment, and compares the drain times
//! with the pods' `terminationGracePeriodSeconds`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration (file and environment): exit 0 and print
    /// each stage's drain time, or exit 2 naming the key at fault.
    Check {
        /// Print JSON: {"ok":true,"drain_seconds":{…}} or {"ok":false,"error":…}.
        #[arg(long)]
        json: bool,
        /// Also run this service's own start-up validation (key and
        /// certificate files, relay targets, ingest tenants), as the
        /// service does before binding any port; `run` checks every stage.
        #[arg(long, value_enum)]
        service: Option<ServiceName>,
    },
}

/// A service `config check --service` can validate for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ServiceName {
    Ingest,
    Batcher,
    Witness,
    Relay,
    Verifier,
    Workflow,
    Run,
}

/// `service`'s own validation (the same code its start-up runs).
fn validate_for(config: &Config, service: ServiceName) -> anyhow::Result<()> {
    use crate::service::Service as _;
    match service {
        ServiceName::Ingest => crate::IngestService.validate(config).map(drop),
        ServiceName::Batcher => crate::batcher_cmd::BatcherService.validate(config),
        ServiceName::Witness => crate::batcher_cmd::WitnessService.validate(config),
        ServiceName::Relay => crate::relay_cmd::validate(config, None),
        ServiceName::Verifier => crate::verify_cmd::VerifierService
            .validate(config)
            .map(drop),
        ServiceName::Workflow => crate::workflow_cmd::WorkflowService
            .validate(config)
            .map(drop),
        ServiceName::Run => crate::run_cmd::RunService::all().validate(config).map(drop),
    }
}

/// The longest a stage keeps working after SIGTERM before it returns, from
/// the code's shutdown paths and the configured timeouts, in whole seconds
/// (rounded up). The HTTP services (verifier, witness) drain in-flight
/// requests without a configured bound and are not listed.
#[derive(Debug, PartialEq)]
pub struct DrainSeconds {
    /// `ingest.drain_timeout_ms`: the consumer and the writer each wait at
    /// most this long for the batches in flight to commit.
    pub ingest: u64,
    /// The seal in progress (allowed 1 s) plus the cosigning round in
    /// progress, which is awaited: the TSA request, then every witness asked
    /// concurrently, `witness_attempts` times, each bounded by
    /// `request_timeout_ms`, with 100 ms << attempt between attempts.
    pub batcher: u64,
    /// The job in progress: a lookup (or refresh), a prepare and a send, each
    /// bounded by the target's `request_timeout_ms`; the slowest target counts.
    pub relay: u64,
}

pub fn drain_seconds(config: &Config) -> DrainSeconds {
    let ceil_s = |ms: u64| ms.div_ceil(1000);
    let b = &config.batcher;
    let backoff_ms: u64 = (1..b.witness_attempts).map(|a| 100u64 << a.min(6)).sum();
    let batcher_ms = (1 + u64::from(b.witness_attempts)) * b.request_timeout_ms + backoff_ms + 1000;
    let relay_ms = config
        .relay
        .targets
        .iter()
        .map(|t| 3 * t.request_timeout_ms)
        .max()
        .unwrap_or(0);
    DrainSeconds {
        ingest: ceil_s(config.ingest.drain_timeout_ms),
        batcher: ceil_s(batcher_ms),
        relay: ceil_s(relay_ms),
    }
}

pub fn run(path: Option<&Path>, args: &ConfigArgs) -> ExitCode {
    let ConfigCommand::Check { json, service } = args.command;
    let loaded = Config::load(path).and_then(|c| {
        if let Some(s) = service {
            validate_for(&c, s)?;
        }
        Ok(c)
    });
    match loaded {
        Ok(config) => {
            let d = drain_seconds(&config);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "drain_seconds": {"ingest": d.ingest, "batcher": d.batcher, "relay": d.relay},
                    })
                );
            } else {
                println!("configuration OK");
                println!(
                    "drain on SIGTERM: ingest {} s, batcher {} s, relay {} s",
                    d.ingest, d.batcher, d.relay
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
            } else {
                eprintln!("configuration error: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}
