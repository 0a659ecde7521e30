//! `anchord workflow` (the workflow API, docs/workflow-api.md) and
//! `anchord workflow create-admin` (bootstrap a platform administrator).

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct WorkflowArgs {
    #[command(subcommand)]
    pub action: Option<WorkflowAction>,
}

#[derive(Debug, clap::Subcommand)]
pub enum WorkflowAction {
    /// Create a platform administrator (applies the workflow migrations).
    CreateAdmin {
        #[arg(long)]
        username: String,
        /// File whose first line is the password (at least 8 characters,
        /// not a common one, zxcvbn strength `workflow.password_min_score`).
        #[arg(long)]
        password_file: PathBuf,
    },
    /// Print the API's OpenAPI document (what `GET /v1/openapi.json`
    /// serves), e.g. to regenerate docs/workflow-openapi.json, which the web
    /// console's typed client is generated from.
    Openapi,
}

pub async fn run(config: Config, args: WorkflowArgs) -> anyhow::Result<()> {
    match args.action {
        None => crate::service::run(config, WorkflowService).await,
        Some(WorkflowAction::Openapi) => {
            print_openapi();
            Ok(())
        }
        Some(WorkflowAction::CreateAdmin {
            username,
            password_file,
        }) => {
            let text = std::fs::read_to_string(&password_file)
                .with_context(|| format!("reading {}", password_file.display()))?;
            let password = text.lines().next().unwrap_or("").to_owned();
            if password.is_empty() {
                bail!("{} holds no password", password_file.display());
            }
            let ledger = crate::service::open_writer(&config).await?;
            // The same password rules as the API (strength, blocklist); the
            // creation is written to the audit log.
            let id = anchord_workflow::auth::create_admin(
                &ledger,
                &effective_config(&config),
                &username,
                &password,
            )
            .await?;
            println!("created administrator {username} (id {id})");
            Ok(())
        }
    }
}

/// `anchord workflow openapi`: the API's OpenAPI document on stdout.
pub fn print_openapi() -> std::process::ExitCode {
    let doc = anchord_workflow::api::openapi_document();
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => {
            println!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// The workflow configuration with the Kafka settings defaulted from
/// `[ingest]` (the same evidence topic as the bank streams) and the proof
/// URL on certificates from `verifier.public_url`.
pub fn effective_config(config: &Config) -> anchord_workflow::WorkflowConfig {
    let mut wf = config.workflow.clone();
    if wf.brokers.is_empty() {
        wf.brokers = config.ingest.brokers.clone();
    }
    if wf.evidence_topic.is_empty() {
        wf.evidence_topic = config.ingest.topic.clone();
    }
    if wf.proof_url.is_empty() {
        wf.proof_url = format!(
            "{}/v1/proofs",
            config.verifier.public_url.trim_end_matches('/')
        );
    }
    wf
}

/// Readiness for the workflow API: PostgreSQL, and the brokers and evidence
/// topic approvals publish to.
pub fn broker_probe(config: &Config) -> anyhow::Result<anchord_ingest::probe::BrokerProbe> {
    let wf = effective_config(config);
    let mut ingest = config.ingest.clone();
    ingest.brokers = wf.brokers;
    ingest.topic = wf.evidence_topic;
    Ok(anchord_ingest::probe::BrokerProbe::new(&ingest)?)
}

/// `anchord workflow`: a writer (its own `workflow` schema beside the
/// ledger's), with the brokers approvals publish to in its readiness.
pub struct WorkflowService;

impl crate::service::Service for WorkflowService {
    type Prepared = (
        anchord_core::bundle::DeclaredKeys,
        anchord_ingest::probe::BrokerProbe,
        // The background loops' states, in readiness (workflow/src/tasks.rs).
        anchord_workflow::Health,
    );
    type Db = anchord_ledger::Ledger;

    fn validate(&self, config: &Config) -> anyhow::Result<Self::Prepared> {
        let keys = crate::verify_cmd::declared_keys(config)?;
        effective_config(config)
            .validate()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((keys, broker_probe(config)?, anchord_workflow::Health::new()))
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<Self::Db> {
        crate::service::open_writer(config).await
    }

    fn readiness(
        &self,
        config: &Config,
        (_, probe, health): &Self::Prepared,
        ledger: &Self::Db,
    ) -> anyhow::Result<crate::admin::Readiness> {
        Ok(crate::admin::Readiness::new(ledger.clone())
            .with_broker(probe.clone())
            .with_workflow_tasks(health.clone())
            // The uploads' file store: the one data directory Anchord writes.
            .with_disk(
                "workflow_storage",
                config.workflow.storage_dir.clone(),
                config.admin.disk_low_free_bytes,
            ))
    }

    async fn run(
        self,
        config: Config,
        (keys, _, health): Self::Prepared,
        ledger: Self::Db,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        let deps = anchord_workflow::Deps {
            ledger,
            suite: config.hash_suite,
            keys,
            health,
        };
        Ok(anchord_workflow::serve(effective_config(&config), deps, shutdown).await?)
    }
}
