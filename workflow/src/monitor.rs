//! The monitoring summary and the system log view (chain events from the
//! ledger), for administrators.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Workflow;
use crate::authz::{Require, roles};
use crate::error::{ApiError, Query};

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

async fn counts(
    c: &tokio_postgres::Client,
    sql: &str,
) -> Result<std::collections::BTreeMap<String, i64>, ApiError> {
    Ok(c.query(sql, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Block height, counts, service health (administrators).
#[utoipa::path(get, path = "/v1/monitoring/summary", responses((status = 200, body = Summary)))]
pub async fn summary(
    State(wf): State<Arc<Workflow>>,
    _: Require<roles::Admin>,
) -> Result<axum::Json<Summary>, ApiError> {
    let s = wf.ledger.summary().await?;
    let c = wf.db().await?;
    let preservations = counts(
        &c,
        "SELECT status, count(*) FROM workflow.preservations GROUP BY status",
    )
    .await?;
    let contracts = counts(
        &c,
        "SELECT status, count(*) FROM workflow.contracts GROUP BY status",
    )
    .await?;
    let users = counts(
        &c,
        "SELECT role, count(*) FROM workflow.users GROUP BY role",
    )
    .await?;
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM workflow.judicial_requests),
                    (SELECT count(*) FROM workflow.submissions WHERE state = 'pending'),
                    (SELECT extract(epoch FROM now() - min(created_at))::float8
                       FROM workflow.submissions WHERE state = 'pending'),
                    (SELECT count(*) FROM workflow.submissions WHERE state IN ('published', 'recorded')),
                    (SELECT count(*) FROM workflow.webhook_deliveries WHERE state = 'pending'),
                    (SELECT count(*) FROM workflow.webhook_deliveries WHERE state = 'failed')",
            &[],
        )
        .await?;
    Ok(axum::Json(Summary {
        block_height: s.blocks.checked_sub(1),
        ledger_entries: s.entries,
        checkpoint_size: s.checkpoint_size,
        anchors: s.anchors,
        preservations,
        contracts,
        users,
        judicial_requests: r.get(0),
        health: Health {
            database: true,
            submissions_unpublished: r.get(1),
            oldest_unpublished_s: r.get(2),
            submissions_unsealed: r.get(3),
            webhooks_pending: r.get(4),
            webhooks_failed: r.get(5),
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
