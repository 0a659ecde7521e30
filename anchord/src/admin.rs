//! The admin listener: `/metrics` (Prometheus text format), `/livez`,
//! `/readyz`. Kept off the public API port.
//!
//! Readiness reflects what the process depends on: PostgreSQL always; the
//! brokers and the evidence topic for stages that consume or produce
//! (ingest); each anchoring target's endpoint for the relay. `/readyz`
//! answers 200 with one `ok` line per check, or 503 naming each failing
//! check and why.
//!
//! Each scrape of `/metrics` first refreshes the probes (`crate::probes`):
//! `SELECT 1` on the service's own pool (`anchord_admin_postgres_up`) and
//! the free space of the data directories the service writes
//! (`anchord_admin_disk_*`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anchord_ingest::probe::BrokerProbe;
use anchord_ledger::{Ledger, WitnessStore};
use anchord_relay::config::RelayConfig;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// How long one readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The database a service depends on.
#[derive(Clone, Debug)]
enum Db {
    Ledger(Ledger),
    Witness(WitnessStore),
}

/// What `/readyz` checks.
#[derive(Clone, Debug)]
pub struct Readiness {
    db: Db,
    broker: Option<BrokerProbe>,
    relay: Option<Arc<RelayConfig>>,
    /// The workflow service's background loops.
    workflow_tasks: Option<anchord_workflow::Health>,
    /// Data directories watched for free space (metrics only, not readiness).
    disks: Arc<Vec<crate::probes::Disk>>,
}

impl Readiness {
    /// PostgreSQL only.
    pub fn new(ledger: Ledger) -> Self {
        Readiness {
            db: Db::Ledger(ledger),
            broker: None,
            relay: None,
            workflow_tasks: None,
            disks: Arc::default(),
        }
    }

    /// The witness's own database only.
    pub fn witness(store: WitnessStore) -> Self {
        Readiness {
            db: Db::Witness(store),
            broker: None,
            relay: None,
            workflow_tasks: None,
            disks: Arc::default(),
        }
    }

    /// Also the brokers and the evidence topic.
    pub fn with_broker(mut self, probe: BrokerProbe) -> Self {
        self.broker = Some(probe);
        self
    }

    /// Also every configured anchoring target's endpoint.
    pub fn with_targets(mut self, relay: &RelayConfig) -> Self {
        self.relay = Some(Arc::new(relay.clone()));
        self
    }

    /// Also the workflow's background loops (each running; one that stopped
    /// unasked fails readiness while the service drains).
    pub fn with_workflow_tasks(mut self, health: anchord_workflow::Health) -> Self {
        self.workflow_tasks = Some(health);
        self
    }

    /// Also export the free space of `dir`, a data directory this service
    /// writes, as `volume` (a fixed name); `low_free` is
    /// `admin.disk_low_free_bytes`.
    pub fn with_disk(mut self, volume: &'static str, dir: PathBuf, low_free: Option<u64>) -> Self {
        Arc::make_mut(&mut self.disks).push(crate::probes::Disk {
            volume,
            dir,
            low_free,
        });
        self
    }

    /// `SELECT 1` on the service's own pool.
    async fn ping(&self) -> Result<(), anchord_ledger::LedgerError> {
        match &self.db {
            Db::Ledger(l) => l.ping().await,
            Db::Witness(w) => w.ping().await,
        }
    }

    /// Refresh the probes' gauges (at each scrape of `/metrics`).
    async fn refresh_probes(&self) {
        let up = matches!(
            tokio::time::timeout(crate::probes::POSTGRES_TIMEOUT, self.ping()).await,
            Ok(Ok(()))
        );
        crate::probes::record_postgres(up);
        crate::probes::refresh_disks(&self.disks).await;
    }

    /// Run every check concurrently: `(all ok, one line per check)`.
    pub async fn check(&self) -> (bool, Vec<String>) {
        let pg = async {
            match tokio::time::timeout(CHECK_TIMEOUT, self.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("postgres: {e}")),
                Err(_) => Err(format!("postgres: no answer within {CHECK_TIMEOUT:?}")),
            }
        };
        let kafka = async {
            match &self.broker {
                Some(p) => Some(
                    p.check(CHECK_TIMEOUT)
                        .await
                        .map_err(|e| format!("kafka: {e}")),
                ),
                None => None,
            }
        };
        let targets = async {
            match &self.relay {
                Some(r) => Some(anchord_relay::probe::unreachable_targets(r, CHECK_TIMEOUT).await),
                None => None,
            }
        };
        let (pg, kafka, targets) = tokio::join!(pg, kafka, targets);
        let mut ok = true;
        let mut lines = Vec::new();
        let mut push = |name: &str, r: Result<(), String>| match r {
            Ok(()) => lines.push(format!("{name} ok")),
            Err(e) => {
                ok = false;
                lines.push(format!("FAIL {e}"));
            }
        };
        push("postgres", pg);
        if let Some(k) = kafka {
            push("kafka", k);
        }
        if let Some(h) = &self.workflow_tasks {
            push(
                "workflow tasks",
                h.check().map_err(|e| format!("workflow tasks: {e}")),
            );
        }
        if let Some(failed) = targets {
            if failed.is_empty() {
                push("targets", Ok(()));
            }
            for f in failed {
                push("target", Err(f));
            }
        }
        (ok, lines)
    }
}

/// Bind and serve until `shutdown`; binding errors are returned at once.
pub async fn serve_ready(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    crate::probes::init(&readiness.disks);
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen {addr}: {e}"))?;
    tracing::info!(%addr, "admin listener (metrics, livez, readyz)");
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    }))
}

async fn metrics(State(readiness): State<Readiness>) -> impl IntoResponse {
    readiness.refresh_probes().await;
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode_to_string(&prometheus::gather()) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let (ok, lines) = readiness.check().await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, lines.join("\n") + "\n")
}
