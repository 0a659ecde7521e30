//! The monitoring summary and the system log view (chain events from the
//! ledger), for administrators.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Workflow;
use crate::authz::{Require, roles};
use crate::error::{ApiError, Query};
use crate::store::monitor as store;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// PostgreSQL answers.
    pub database: bool,
    /// Workflow submissions not yet on the evidence topic, and the oldest
    /// one's age in seconds (a stuck producer shows here).
    pub submissions_unpublished: i64,
    pub oldest_unpublished_s: Option<f64>,
    /// Published but not yet sealed in a block (ingest or batcher behind).
    pub submissions_unsealed: i64,
    /// Webhook deliveries waiting, and failed for good.
    pub webhooks_pending: i64,
    pub webhooks_failed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    /// Height of the newest sealed block (null: none yet).
    pub block_height: Option<u64>,
    pub ledger_entries: u64,
    pub checkpoint_size: u64,
    pub anchors: u64,
    /// Preservations by status.
    #[schema(value_type = Object)]
    pub preservations: std::collections::BTreeMap<String, i64>,
    /// Contracts by status.
    #[schema(value_type = Object)]
    pub contracts: std::collections::BTreeMap<String, i64>,
    /// Users by role.
    #[schema(value_type = Object)]
    pub users: std::collections::BTreeMap<String, i64>,
    pub judicial_requests: i64,
    pub health: Health,
}

/// Block height, counts, service health (administrators).
#[utoipa::path(get, path = "/v1/monitoring/summary", responses((status = 200, body = Summary)))]
pub async fn summary(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
) -> Result<axum::Json<Summary>, ApiError> {
    let s = wf.ledger.summary().await?;
    let c = wf.db().await?;
    let n = store::counts(c.client()).await?;
    Ok(axum::Json(Summary {
        block_height: s.blocks.checked_sub(1),
        ledger_entries: s.entries,
        checkpoint_size: s.checkpoint_size,
        anchors: s.anchors,
        preservations: n.preservations,
        contracts: n.contracts,
        users: n.users,
        judicial_requests: n.judicial_requests,
        health: Health {
            database: true,
            submissions_unpublished: n.submissions_unpublished,
            oldest_unpublished_s: n.oldest_unpublished_s,
            submissions_unsealed: n.submissions_unsealed,
            webhooks_pending: n.webhooks_pending,
            webhooks_failed: n.webhooks_failed,
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// At most this many (default 200).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<i64>,
    /// Only this kind: `block_sealed`, `checkpoint_signed`,
    /// `checkpoint_final`, `anchor_confirmed`, `anchor_failed`.
    #[param(
        pattern = "^(block_sealed|checkpoint_signed|checkpoint_final|anchor_confirmed|anchor_failed)$"
    )]
    pub kind: Option<String>,
}

/// One chain event (`anchord_ledger::ChainEvent`).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ChainEventJson {
    /// `block_sealed`, `checkpoint_signed`, `checkpoint_final`,
    /// `anchor_confirmed` or `anchor_failed`.
    pub kind: String,
    /// When it happened, Unix microseconds.
    pub at_us: i64,
    /// Block height or checkpoint size the event is about.
    pub subject: i64,
    /// A short description (target, transaction id, error).
    pub detail: String,
}

const EVENT_KINDS: &[&str] = &[
    "block_sealed",
    "checkpoint_signed",
    "checkpoint_final",
    "anchor_confirmed",
    "anchor_failed",
];

/// Chain events: blocks, checkpoints, anchors, relay failures (administrators).
#[utoipa::path(get, path = "/v1/system/events", params(EventsQuery),
    responses((status = 200, body = [ChainEventJson])))]
pub async fn events(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
    Query(q): Query<EventsQuery>,
) -> Result<axum::Json<Vec<anchord_ledger::ChainEvent>>, ApiError> {
    crate::error::in_range("limit", q.limit, 1, 5000)?;
    crate::error::one_of("kind", &q.kind, EVENT_KINDS)?;
    let limit = q.limit.unwrap_or(200);
    // The kind filters inside the query, so `limit` counts matching events.
    let ev = wf.ledger.chain_events(q.kind.as_deref(), limit).await?;
    Ok(axum::Json(ev))
}

// ---------------------------------------------------------------------------
// Service instances (the manual's monitoring page): address, up/down,
// readiness, CPU and memory, scraped by an owned background loop.

/// One instance as last scraped.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InstanceJson {
    /// The configured admin address (`workflow.monitor.instances`).
    pub address: String,
    /// `up` when the last scrape of `/metrics` answered, `down` otherwise
    /// (`unknown` before the first scrape).
    pub status: String,
    /// `/readyz` answered 200 at the last scrape (null: not scraped yet or
    /// down).
    pub ready: Option<bool>,
    /// Why it is down or not ready (the error or `/readyz`'s failing lines).
    pub problem: Option<String>,
    /// CPU in use, percent of one core, between the last two scrapes
    /// (`process_cpu_seconds_total`; null until two scrapes).
    pub cpu_percent: Option<f64>,
    /// Resident memory, bytes (`process_resident_memory_bytes`).
    pub memory_bytes: Option<u64>,
    /// Seconds since the process started (`process_start_time_seconds`).
    pub uptime_s: Option<f64>,
    /// The stage, from the instance's metrics (`ingest`, `batcher`, `relay`,
    /// `verifier`, `workflow`, `witness`; several for `anchord run`).
    pub services: Vec<String>,
    /// When the last scrape ended, RFC 3339 UTC (null: not yet).
    pub scraped_at: Option<String>,
    /// Its age in seconds when this answer was made.
    pub age_s: Option<f64>,
    /// How long the last scrape took, ms.
    pub scrape_ms: Option<u64>,
}

#[derive(Clone, Debug, Default)]
struct Scrape {
    at: Option<(std::time::Instant, time::OffsetDateTime)>,
    up: Option<bool>,
    ready: Option<bool>,
    problem: Option<String>,
    cpu_seconds: Option<f64>,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
    start_time_s: Option<f64>,
    services: Vec<String>,
    took_ms: Option<u64>,
}

/// The instances' last scrapes, shared by the loop and the handler.
#[derive(Debug, Default)]
pub struct Instances {
    last: std::sync::RwLock<Vec<(String, Scrape)>>,
}

impl Instances {
    pub fn new(urls: &[String]) -> Self {
        Instances {
            last: std::sync::RwLock::new(
                urls.iter()
                    .map(|u| (u.clone(), Scrape::default()))
                    .collect(),
            ),
        }
    }

    fn snapshot(&self) -> Vec<InstanceJson> {
        let now = time::OffsetDateTime::now_utc();
        let last = self
            .last
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.iter()
            .map(|(address, s)| InstanceJson {
                address: address.clone(),
                status: match s.up {
                    None => "unknown",
                    Some(true) => "up",
                    Some(false) => "down",
                }
                .into(),
                ready: s.ready,
                problem: s.problem.clone(),
                cpu_percent: s.cpu_percent,
                memory_bytes: s.memory_bytes,
                uptime_s: s
                    .start_time_s
                    .map(|t| (now.unix_timestamp() as f64 - t).max(0.0)),
                services: s.services.clone(),
                scraped_at: s.at.map(|(_, t)| crate::ts(t)),
                age_s: s.at.map(|(i, _)| i.elapsed().as_secs_f64()),
                scrape_ms: s.took_ms,
            })
            .collect()
    }

    fn store(&self, i: usize, s: Scrape) {
        let mut last = self
            .last
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = last.get_mut(i) {
            slot.1 = s;
        }
    }

    fn previous(&self, i: usize) -> Scrape {
        self.last
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(i)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }
}

/// The value of an unlabelled sample `name` in a Prometheus text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let v = rest.strip_prefix(' ')?;
        v.split_whitespace().next()?.parse::<f64>().ok()
    })
}

/// The stages whose metrics an exposition carries.
fn services_of(text: &str) -> Vec<String> {
    [
        "ingest", "batcher", "relay", "verifier", "workflow", "witness",
    ]
    .iter()
    .filter(|s| {
        let p = format!("anchord_{s}_");
        text.lines().any(|l| l.starts_with(&p))
    })
    .map(|s| (*s).to_owned())
    .collect()
}

/// The most bytes read from one answer.
const MAX_SCRAPE_BYTES: usize = 4 << 20;

async fn body_bounded(resp: reqwest::Response) -> Result<String, String> {
    let mut resp = resp;
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_SCRAPE_BYTES {
            return Err(format!("answer over {MAX_SCRAPE_BYTES} bytes"));
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Scrape one instance: `/metrics`, then `/readyz`.
async fn scrape_one(
    http: &reqwest::Client,
    policy: &crate::egress::Policy,
    base: &str,
    prev: &Scrape,
) -> Scrape {
    let started = std::time::Instant::now();
    let base = base.trim_end_matches('/');
    let mut s = Scrape::default();
    let metrics = async {
        let u = policy
            .check_url(&format!("{base}/metrics"), false)
            .await
            .map_err(|r| r.0)?;
        let resp = http.get(u).send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                format!("cannot connect: {e}")
            } else {
                e.to_string()
            }
        })?;
        if !resp.status().is_success() {
            return Err(format!("/metrics answered {}", resp.status()));
        }
        body_bounded(resp).await
    };
    match metrics.await {
        Err(e) => {
            s.up = Some(false);
            s.problem = Some(e);
        }
        Ok(text) => {
            s.up = Some(true);
            s.cpu_seconds = sample(&text, "process_cpu_seconds_total");
            s.memory_bytes = sample(&text, "process_resident_memory_bytes").map(|v| v as u64);
            s.start_time_s = sample(&text, "process_start_time_seconds");
            s.services = services_of(&text);
            if let (Some(now), Some(before), Some((at, _))) =
                (s.cpu_seconds, prev.cpu_seconds, prev.at)
                && prev.start_time_s == s.start_time_s
            {
                let dt = at.elapsed().as_secs_f64();
                if dt > 0.0 && now >= before {
                    s.cpu_percent = Some((now - before) / dt * 100.0);
                }
            }
            let ready = async {
                let u = policy
                    .check_url(&format!("{base}/readyz"), false)
                    .await
                    .map_err(|r| r.0)?;
                let resp = http.get(u).send().await.map_err(|e| e.to_string())?;
                let ok = resp.status().is_success();
                let text = body_bounded(resp).await?;
                Ok::<_, String>((ok, text))
            };
            match ready.await {
                Ok((true, _)) => s.ready = Some(true),
                Ok((false, text)) => {
                    s.ready = Some(false);
                    let failing: Vec<&str> = text
                        .lines()
                        .filter(|l| !l.starts_with("ok") && !l.trim().is_empty())
                        .take(10)
                        .collect();
                    s.problem = Some(failing.join("; ").chars().take(1000).collect());
                }
                Err(e) => {
                    s.ready = Some(false);
                    s.problem = Some(format!("/readyz: {e}"));
                }
            }
        }
    }
    s.took_ms = Some(started.elapsed().as_millis() as u64);
    s.at = Some((std::time::Instant::now(), time::OffsetDateTime::now_utc()));
    s
}

/// The owned background loop: scrape every configured instance (at once)
/// every `workflow.monitor.scrape_interval_ms`, through a client pinned to
/// the configured hosts with short timeouts.
pub async fn run_scraper(wf: Arc<Workflow>, shutdown: tokio_util::sync::CancellationToken) {
    let m = &wf.config.monitor;
    let urls = m.instances.clone();
    let policy = match crate::egress::Policy::pinned(&urls, &[]) {
        Ok(p) => Arc::new(p.hint("workflow.monitor.instances")),
        Err(e) => {
            // Refused by the configuration's validation before start.
            tracing::error!(error = %e, "workflow.monitor.instances");
            shutdown.cancelled().await;
            return;
        }
    };
    let http = match policy.client(
        std::time::Duration::from_millis(m.connect_timeout_ms),
        std::time::Duration::from_millis(m.timeout_ms),
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "monitoring HTTP client");
            shutdown.cancelled().await;
            return;
        }
    };
    let every = std::time::Duration::from_millis(m.scrape_interval_ms);
    loop {
        let round = futures::future::join_all(urls.iter().enumerate().map(|(i, u)| {
            let (http, policy, wf) = (&http, &policy, &wf);
            async move {
                let prev = wf.instances.previous(i);
                let s = scrape_one(http, policy, u, &prev).await;
                wf.instances.store(i, s);
            }
        }));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = round => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Per service instance (`workflow.monitor.instances`): address, up or
/// down, readiness, CPU and memory, with the age of the last scrape
/// (administrators). A down instance shows `down`; the page never fails for
/// one instance.
#[utoipa::path(get, path = "/v1/monitoring/instances",
    responses((status = 200, body = [InstanceJson])))]
pub async fn instances(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
) -> axum::Json<Vec<InstanceJson>> {
    axum::Json(wf.instances.snapshot())
}

#[cfg(test)]
mod instance_tests {
    use super::*;

    #[test]
    fn samples_and_services_are_read_from_the_exposition() {
        let text = "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nprocess_cpu_seconds_total_x 3\nprocess_resident_memory_bytes 1.2e+07\nanchord_ingest_paused 0\nanchord_batcher_blocks_sealed_total{a=\"b\"} 2\n";
        assert_eq!(sample(text, "process_cpu_seconds_total"), Some(12.5));
        assert_eq!(sample(text, "process_resident_memory_bytes"), Some(12e6));
        assert_eq!(sample(text, "process_start_time_seconds"), None);
        assert_eq!(services_of(text), ["ingest", "batcher"]);
    }

    #[test]
    fn instance_lists_are_checked() {
        use crate::config::check_instances;
        assert!(
            check_instances(&[
                "http://ingest-0:9464".into(),
                "https://10.0.0.1:9464/".into()
            ])
            .is_ok()
        );
        for bad in [
            "ftp://x:1",
            "http://u:p@x:1",
            "http://x:1/?a=b",
            "not a url",
        ] {
            assert!(check_instances(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(check_instances(&["http://a:1".into(), "http://a:1".into()]).is_err());
    }
}
