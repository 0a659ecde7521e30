//! The workflow layer (`docs/workflow-api.md`): how people use Anchord.
//!
//! Platform administrators define products (preservation service types with
//! field templates) and contract types; a bank's users preserve evidence and
//! start multi-party e-contracts; the bank's reviewers approve what goes on
//! chain; notary offices and courts process notarization and ruling
//! requests. Approved evidence enters the ledger through **the same path as
//! bank streams**: a Kafka evidence message v1 on the evidence topic
//! (`evidence.rs`), then is linked back to its ledger entry, block and proof
//! bundle (built by the verifier's [`Prover`]).
//!
//! - [`api`]: the axum router and the OpenAPI document.
//! - `auth`: login, users, argon2id passwords, opaque session tokens
//!   (SHA-256 stored), lockout.
//! - `authz`: roles and the [`authz::Caller`] / [`authz::Require`]
//!   extractors every handler authorises with.
//! - `audit`: the hash-chained application log and its verification;
//!   `audit_anchor`: the periodic anchoring of its head.
//! - `evidence`: the submission outbox, the Kafka producer and the linker.
//! - `events`: how features notify subscribers (the webhook outbox);
//!   `webhooks`: the signed deliveries with exponential backoff.
//!
//! The crate owns the PostgreSQL schema `workflow` (its own migrations,
//! `migrate.rs`); it reads the ledger only through `anchord-ledger`'s API.

pub mod api;
pub mod audit;
pub mod audit_anchor;
pub mod auth;
pub mod authz;
mod certificates;
pub mod config;
pub mod conn;
pub mod console;
pub mod contracts;
pub use anchord_egress as egress;
pub mod error;
pub mod events;
pub mod evidence;
pub mod files;
pub mod inbox;
pub mod judicial;
pub mod keyseal;
pub mod limits;
pub mod mailer;
pub mod metrics;
pub mod migrate;
pub mod monitor;
pub mod orgs;
pub mod paging;
pub mod preservations;
pub mod products;
pub mod proofs;
pub mod search;
pub mod sms;
pub mod status;
pub(crate) mod store;
#[cfg(test)]
mod structure;
pub mod tasks;
pub mod text;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use anchord_core::bundle::DeclaredKeys;
use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ledger::Ledger;
use anchord_verifier::prover::Prover;
use deadpool_postgres::Pool;
use rdkafka::producer::FutureProducer;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::WorkflowConfig;
pub use error::ApiError;
pub use tasks::Health;

/// Everything that stops the workflow service (or its set-up).
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(std::io::Error),
    #[error("database: {0}")]
    Db(String),
    #[error("kafka producer: {0}")]
    Kafka(String),
    #[error("storage directory {path}: {source}")]
    Storage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A background loop stopped while nobody asked it to (`tasks.rs`).
    #[error("background task {task} {reason}")]
    Task { task: &'static str, reason: String },
}

impl From<tokio_postgres::Error> for WorkflowError {
    fn from(e: tokio_postgres::Error) -> Self {
        WorkflowError::Db(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for WorkflowError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        WorkflowError::Db(e.to_string())
    }
}

/// What the service needs besides its own configuration.
#[derive(Clone, Debug)]
pub struct Deps {
    pub ledger: Ledger,
    /// The deployment's tree hash suite (`hash_suite`): under `sm3`, files
    /// are also hashed with SM3 and evidence is submitted as SM3.
    pub suite: HashSuite,
    /// The sealer's and witnesses' keys, declared in proof bundles.
    pub keys: DeclaredKeys,
    /// The background loops' states, for the caller's readiness
    /// (`tasks.rs`); `Health::default()` when nobody reads them.
    pub health: Health,
}

/// Shared state of every request and background task.
pub struct Workflow {
    pub(crate) pool: Pool,
    pub(crate) ledger: Ledger,
    pub(crate) config: WorkflowConfig,
    pub(crate) suite: HashSuite,
    pub(crate) prover: Arc<Prover>,
    pub(crate) producer: FutureProducer,
    /// Wakes the submission publisher (an approval just committed).
    pub(crate) submissions_kick: Notify,
    /// Wakes the webhook deliverer.
    pub(crate) webhooks_kick: Notify,
    /// Webhook deliveries: connects only where `egress` permits.
    pub(crate) http: reqwest::Client,
    /// The outbound address policy (`workflow.webhook_allow`).
    pub(crate) egress: Arc<egress::Policy>,
    /// Seals platform-held signing keys (`workflow.key_encryption_key_file`).
    pub(crate) kek: Option<keyseal::Kek>,
    /// Preservation certificates (`workflow.certificate_font`).
    pub(crate) certificates: anchord_verifier::certificate::Issuer,
    /// The TSA certificates certificates verify timestamps with
    /// (`workflow.tsa_certs`).
    pub(crate) tsa_certs: certificates::TrustedTsas,
    /// Password hashing and verification: bounded concurrency off the
    /// async threads, the dummy hash of unknown users, the blocklist.
    pub(crate) passwords: auth::Passwords,
    /// Rate limits and the aggregated anonymous-noise counters.
    pub(crate) limits: limits::Limits,
    /// The service instances' last scrapes (`monitor.rs`).
    pub(crate) instances: monitor::Instances,
    /// The notification outbox's SMTP relay and SMS gateway (`mailer.rs`).
    pub(crate) senders: mailer::Senders,
    /// Pool connections the public invitation routes may hold at once (one
    /// fewer than the pool: a flood of them never starves signed-in users;
    /// `contracts.rs`).
    pub(crate) invitation_slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("suite", &self.suite)
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl Workflow {
    /// The evidence algorithm submissions use: SM3 under the sm3 suite,
    /// SHA-256 otherwise.
    pub fn evidence_alg(&self) -> EvidenceAlg {
        match self.suite {
            HashSuite::Sm3 => EvidenceAlg::Sm3,
            _ => EvidenceAlg::Sha256,
        }
    }

    /// A pool connection; a request or background task never holds two
    /// (`conn.rs`: a nested acquire panics in test builds).
    #[track_caller]
    pub(crate) fn db(
        &self,
    ) -> impl std::future::Future<Output = Result<conn::Conn, ApiError>> + Send + '_ {
        let get = conn::get(&self.pool);
        async move { Ok(get.await?) }
    }
}

/// Build the shared state: check the configuration, apply the workflow
/// migrations, prepare the storage directory and the Kafka producer, create
/// the bootstrap administrator.
pub async fn prepare(
    mut config: WorkflowConfig,
    deps: Deps,
) -> Result<Arc<Workflow>, WorkflowError> {
    config.validate()?;
    if config.proof_url.is_empty() {
        config.proof_url = format!(
            "{}/v1/proofs",
            anchord_verifier::VerifierConfig::default().public_url
        );
    }
    if config.brokers.is_empty() || config.evidence_topic.is_empty() {
        return Err(WorkflowError::Config(
            "workflow.brokers and workflow.evidence_topic must be set (they default to ingest.brokers and ingest.topic)".into(),
        ));
    }
    let kek = match &config.key_encryption_key_file {
        Some(p) => {
            let k = keyseal::Kek::load(p)?;
            tracing::info!(kek_id = %k.id_hex(), "platform-held signing keys are sealed at rest");
            Some(k)
        }
        None => None,
    };
    std::fs::create_dir_all(config.storage_dir.join("tmp")).map_err(|source| {
        WorkflowError::Storage {
            path: config.storage_dir.clone(),
            source,
        }
    })?;
    let pool = deps.ledger.workflow_pool();
    {
        let mut c = pool.get().await?;
        migrate::run(&mut c).await?;
        // Whether events queue e-mail, and the links' base (store/notify.rs).
        let client: &tokio_postgres::Client = &c;
        store::notify::configure(
            client,
            config.smtp.enabled(),
            &config.smtp.link_base,
            config.sms.enabled(),
            config.sms.link_base(&config.smtp),
        )
        .await
        .map_err(|e| WorkflowError::Db(e.to_string()))?;
    }
    let producer = evidence::producer(&config)?;
    let verifier_config = anchord_verifier::VerifierConfig {
        // Workflow pages want fresh anchors; keep bundle caching short.
        anchored_cache_ttl_s: 5,
        pending_cache_ttl_s: 1,
        bundle_cache_entries: 10_000,
        ..Default::default()
    };
    let prover = Arc::new(Prover::new(
        deps.ledger.clone(),
        deps.suite,
        deps.keys,
        &verifier_config,
    ));
    let egress = Arc::new(
        egress::Policy::new(&config.webhook_allow)
            .map(|p| p.hint("workflow.webhook_allow"))
            .map_err(|e| WorkflowError::Config(format!("workflow.webhook_allow: {e}")))?,
    );
    let http = egress
        .client(
            std::time::Duration::from_millis(config.webhook_connect_timeout_ms),
            std::time::Duration::from_millis(config.webhook_timeout_ms),
        )
        .map_err(|e| WorkflowError::Config(format!("webhook HTTP client: {e}")))?;
    let certificates = anchord_verifier::certificate::Issuer::new(config.certificate_font.clone());
    let tsa_certs = certificates::TrustedTsas::load(&config.tsa_certs)?;
    let passwords = auth::Passwords::new(&config).await?;
    let limits = limits::Limits::new(&config);
    let config_instances = config.monitor.instances.clone();
    let senders = mailer::Senders::load(&config).await?;
    let invitation_slots =
        tokio::sync::Semaphore::new(pool.status().max_size.saturating_sub(1).max(1));
    let wf = Arc::new(Workflow {
        pool,
        ledger: deps.ledger,
        config,
        suite: deps.suite,
        prover,
        producer,
        submissions_kick: Notify::new(),
        webhooks_kick: Notify::new(),
        http,
        egress,
        kek,
        certificates,
        tsa_certs,
        passwords,
        limits,
        instances: monitor::Instances::new(&config_instances),
        senders,
        invitation_slots,
    });
    auth::bootstrap_admin(&wf).await?;
    metrics::init();
    Ok(wf)
}

/// Bind `config.listen`, start the background tasks (submission publisher
/// and linker, audit anchoring, webhook delivery) and serve until
/// `shutdown`. Returns the bound address and the serving task.
pub async fn start(
    config: WorkflowConfig,
    deps: Deps,
    shutdown: CancellationToken,
) -> Result<
    (
        SocketAddr,
        tokio::task::JoinHandle<Result<(), WorkflowError>>,
    ),
    WorkflowError,
> {
    let listen = config.listen;
    let health = deps.health.clone();
    let wf = prepare(config, deps).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| WorkflowError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(WorkflowError::Serve)?;
    tracing::info!(%addr, "workflow API listening");
    // The service's own stop: the caller's shutdown, or the failure of a
    // background loop or of the server (tasks.rs).
    let stop = shutdown.child_token();
    let mut tasks = tasks::Tasks::new(health, stop.clone());
    tasks.spawn(
        tasks::EVIDENCE_PUBLISHER,
        evidence::run(wf.clone(), stop.clone()),
    );
    tasks.spawn(
        tasks::AUDIT_ANCHORING,
        audit_anchor::run_anchoring(wf.clone(), stop.clone()),
    );
    tasks.spawn(
        tasks::WEBHOOK_DELIVERY,
        webhooks::run(wf.clone(), stop.clone()),
    );
    // Collection of unreferenced stored files (files.rs).
    tasks.spawn(tasks::FILE_GC, files::run_gc(wf.clone(), stop.clone()));
    // Session purge, limiter upkeep, anonymous-noise summaries.
    tasks.spawn(
        tasks::HOUSEKEEPING,
        limits::run_housekeeping(wf.clone(), stop.clone()),
    );
    // The notification e-mail outbox (mailer.rs).
    tasks.spawn(tasks::MAILER, mailer::run(wf.clone(), stop.clone()));
    // Scrapes of the service instances for the monitoring page (monitor.rs).
    tasks.spawn(
        tasks::INSTANCE_SCRAPER,
        monitor::run_scraper(wf.clone(), stop.clone()),
    );
    let app = api::router(wf);
    let handle = tokio::spawn(async move {
        let server = async {
            let r = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await
            .map_err(WorkflowError::Serve);
            // However the server ends, the loops stop with it.
            stop.cancel();
            r
        };
        let (served, supervised) = tokio::join!(server, tasks.supervise());
        // A failed loop is the cause; the server only stopped because of it.
        supervised.and(served)
    });
    Ok((addr, handle))
}

/// Serve the workflow API until `shutdown` (the entry point of `anchord
/// workflow` and of the all-in-one `anchord run`).
pub async fn serve(
    config: WorkflowConfig,
    deps: Deps,
    shutdown: CancellationToken,
) -> Result<(), WorkflowError> {
    let (_, handle) = start(config, deps, shutdown).await?;
    match handle.await {
        Ok(r) => r,
        Err(e) => Err(WorkflowError::Serve(std::io::Error::other(e.to_string()))),
    }
}

/// RFC 3339 UTC text of a timestamp.
pub(crate) fn ts(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn ts_opt(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.map(ts)
}

/// Hex SHA-256 through the core crate (the one place hashing is defined).
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    HashSuite::Sha256.digest(data)
}

/// 32 random bytes from the operating system.
pub(crate) fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random source works");
    b
}
