//! Webhooks and their delivery outbox: every SQL statement of `webhooks.rs`
//! and `events.rs`.

use tokio_postgres::GenericClient;
use tokio_postgres::Transaction;

use super::StoreError;

/// A webhook as stored (its secret is never read back here).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub tenant: Option<String>,
    pub url: String,
    pub enabled: bool,
    pub created_at: time::OffsetDateTime,
}

const COLUMNS: &str = "id, tenant, url, disabled_at IS NULL, created_at";

fn from_row(r: &tokio_postgres::Row) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        url: r.try_get(2)?,
        enabled: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

/// Register a webhook for `tenant` (`None`: every bank) unless it already
/// has `max` (under a per-tenant advisory lock, so concurrent registrations
/// never exceed it); `Conflict` then.
pub async fn create(
    tx: &Transaction<'_>,
    tenant: Option<&str>,
    url: &str,
    secret: &str,
    created_by: i64,
    max: i64,
) -> Result<Webhook, StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('anchord-webhooks/' || coalesce($1, '*'), 0))",
        &[&tenant],
    )
    .await?;
    let n: i64 = tx
        .query_one(
            "SELECT count(*) FROM workflow.webhooks WHERE deleted_at IS NULL AND tenant IS NOT DISTINCT FROM $1",
            &[&tenant],
        )
        .await?
        .get(0);
    if n >= max {
        return Err(StoreError::Conflict(format!(
            "at most {max} webhooks per bank (workflow.webhook_max_per_tenant); delete one first"
        )));
    }
    let r = tx
        .query_one(
            &format!(
                "INSERT INTO workflow.webhooks (tenant, url, secret, created_by) VALUES ($1, $2, $3, $4)
                 RETURNING {COLUMNS}"
            ),
            &[&tenant, &url, &secret, &created_by],
        )
        .await?;
    from_row(&r)
}

/// Webhooks not deleted, newest first, keyset-paged: every one (`all`) or
/// `tenant`'s.
pub async fn list<C: GenericClient + Sync>(
    c: &C,
    all: bool,
    tenant: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Webhook>, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT {COLUMNS} FROM workflow.webhooks
                  WHERE deleted_at IS NULL AND ($1 OR tenant = $2)
                    AND ($3::bigint IS NULL OR id < $3)
                  ORDER BY id DESC LIMIT $4"
            ),
            &[&all, &tenant, &after, &limit],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// The tenant of webhook `id` (`Some(None)`: platform-wide); deleted ones
/// count only when `deleted` is true.
pub async fn tenant_of<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    deleted: bool,
) -> Result<Option<String>, StoreError> {
    let r = c
        .query_opt(
            "SELECT tenant FROM workflow.webhooks WHERE id = $1 AND ($2 OR deleted_at IS NULL)",
            &[&id, &deleted],
        )
        .await?
        .ok_or(StoreError::NotFound("webhook"))?;
    Ok(r.try_get(0)?)
}

/// Delete a webhook: its pending deliveries are marked failed.
pub async fn delete(tx: &Transaction<'_>, id: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workflow.webhooks SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL",
        &[&id],
    )
    .await?;
    tx.execute(
        "UPDATE workflow.webhook_deliveries SET state = 'failed', last_error = 'the webhook was deleted'
          WHERE webhook_id = $1 AND state = 'pending'",
        &[&id],
    )
    .await?;
    Ok(())
}

/// Enable or disable a webhook.
pub async fn set_enabled<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    enabled: bool,
) -> Result<Webhook, StoreError> {
    let r = c
        .query_opt(
            &format!(
                "UPDATE workflow.webhooks
                    SET disabled_at = CASE WHEN $2 THEN NULL ELSE coalesce(disabled_at, now()) END
                  WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
            ),
            &[&id, &enabled],
        )
        .await?
        .ok_or(StoreError::NotFound("webhook"))?;
    from_row(&r)
}

/// A delivery as listed.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub delivery_id: String,
    pub event: String,
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: time::OffsetDateTime,
    pub delivered_at: Option<time::OffsetDateTime>,
}

/// A webhook's deliveries, newest first, keyset-paged.
pub async fn deliveries<C: GenericClient + Sync>(
    c: &C,
    webhook: i64,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = c
        .query(
            "SELECT id, delivery_id, event, state, attempts, last_status, last_error, next_attempt_at, delivered_at
               FROM workflow.webhook_deliveries
              WHERE webhook_id = $1 AND ($2::bigint IS NULL OR id < $2)
              ORDER BY id DESC LIMIT $3",
            &[&webhook, &after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Delivery {
                id: r.try_get(0)?,
                delivery_id: r.try_get(1)?,
                event: r.try_get(2)?,
                state: r.try_get(3)?,
                attempts: r.try_get(4)?,
                last_status: r.try_get(5)?,
                last_error: r.try_get(6)?,
                next_attempt_at: r.try_get(7)?,
                delivered_at: r.try_get(8)?,
            })
        })
        .collect()
}

/// The enabled webhooks that receive `tenant`'s events (its own and the
/// platform-wide ones).
pub async fn subscribers(
    tx: &Transaction<'_>,
    tenant: Option<&str>,
) -> Result<Vec<i64>, StoreError> {
    Ok(tx
        .query(
            "SELECT id FROM workflow.webhooks
              WHERE deleted_at IS NULL AND disabled_at IS NULL AND (tenant IS NULL OR tenant = $1)",
            &[&tenant],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Queue one delivery.
pub async fn queue(
    tx: &Transaction<'_>,
    delivery_id: &str,
    webhook: i64,
    event: &str,
    body: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO workflow.webhook_deliveries (delivery_id, webhook_id, event, body)
         VALUES ($1, $2, $3, $4)",
        &[&delivery_id, &webhook, &event, &body],
    )
    .await?;
    Ok(())
}

/// A claimed delivery.
#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    pub delivery_id: String,
    pub event: String,
    pub body: String,
    pub attempts: i32,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
}

/// Claim up to `limit` due deliveries, at most `per_target - busy` of each
/// webhook (`hooks`/`busy`: requests in flight per webhook id), in one
/// short statement that moves their next attempt `lease_s` ahead.
pub async fn claim<C: GenericClient + Sync>(
    c: &C,
    limit: i64,
    hooks: &[i64],
    busy: &[i32],
    per_target: i64,
    lease_s: f64,
) -> Result<Vec<Claimed>, StoreError> {
    let rows = c
        .query(
            "WITH ranked AS (
                SELECT d.id, d.webhook_id,
                       row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS rn
                  FROM workflow.webhook_deliveries d JOIN workflow.webhooks w ON w.id = d.webhook_id
                 WHERE d.state = 'pending' AND d.next_attempt_at <= now()
                   AND w.deleted_at IS NULL AND w.disabled_at IS NULL
             ), pick AS (
                SELECT d.id FROM workflow.webhook_deliveries d
                  JOIN ranked r ON r.id = d.id
                  LEFT JOIN unnest($2::bigint[], $3::int[]) AS f(hook, busy) ON f.hook = r.webhook_id
                 WHERE r.rn <= $4::bigint - coalesce(f.busy, 0)
                   AND d.state = 'pending' AND d.next_attempt_at <= now()
                 ORDER BY d.next_attempt_at, d.id
                 LIMIT $1
                   FOR UPDATE OF d SKIP LOCKED
             )
             UPDATE workflow.webhook_deliveries d
                SET next_attempt_at = now() + make_interval(secs => $5)
               FROM workflow.webhooks w
              WHERE d.id IN (SELECT id FROM pick) AND w.id = d.webhook_id
             RETURNING d.id, d.delivery_id, d.event, d.body, d.attempts, d.webhook_id, w.url, w.secret",
            &[&limit, &hooks, &busy, &per_target, &lease_s],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get(0)?,
                delivery_id: r.try_get(1)?,
                event: r.try_get(2)?,
                body: r.try_get(3)?,
                attempts: r.try_get(4)?,
                webhook_id: r.try_get(5)?,
                url: r.try_get(6)?,
                secret: r.try_get(7)?,
            })
        })
        .collect()
}

/// Record a delivered attempt.
pub async fn delivered<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    attempts: i32,
    status: Option<i32>,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.webhook_deliveries
            SET state = 'delivered', attempts = $2, last_status = $3, last_error = NULL,
                delivered_at = now()
          WHERE id = $1 AND state = 'pending'",
        &[&id, &attempts, &status],
    )
    .await?;
    Ok(())
}

/// Record a failed attempt: retried after `delay_s`, or `failed` when
/// `give_up`.
pub async fn attempt_failed<C: GenericClient + Sync>(
    c: &C,
    id: i64,
    attempts: i32,
    status: Option<i32>,
    error: &str,
    give_up: bool,
    delay_s: f64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE workflow.webhook_deliveries
            SET state = CASE WHEN $5 THEN 'failed' ELSE 'pending' END,
                attempts = $2, last_status = $3, last_error = $4,
                next_attempt_at = now() + make_interval(secs => $6)
          WHERE id = $1 AND state = 'pending'",
        &[&id, &attempts, &status, &error, &give_up, &delay_s],
    )
    .await?;
    Ok(())
}
