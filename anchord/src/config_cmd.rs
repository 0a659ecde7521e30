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
    },
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
    let ConfigCommand::Check { json } = args.command;
    match Config::load(path) {
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
