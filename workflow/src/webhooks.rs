//! Webhooks on status changes, from a PostgreSQL outbox.
//!
//! A delivery row is written in the transaction of the change it reports.
//! The deliverer POSTs the body with
//!
//! ```text
//! Anchord-Delivery: <delivery id>          (the same on every retry: dedupe on it)
//! Anchord-Event: <event>
//! Anchord-Timestamp: <unix seconds>
//! Anchord-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! Any 2xx is success; anything else (or no answer) is retried after
//! `webhook_backoff_initial_ms · 2^(attempt-1)` (at most
//! `webhook_backoff_max_ms`, with ±20 % jitter) until
//! `webhook_max_attempts`, then the delivery is `failed`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::auth::{Require, Role, roles};
use crate::error::{ApiError, Json, Path};
use crate::{Workflow, ts, ts_opt};

/// HMAC-SHA256 (RFC 2104) through the core crate's SHA-256.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let sha = anchord_core::HashSuite::Sha256;
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha.digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = sha.digest_parts(&[&ipad, msg]);
    sha.digest_parts(&[&opad, &inner])
}

/// The `Anchord-Signature` value for a body sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let msg = format!("{timestamp}.{body}");
    format!(
        "v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), msg.as_bytes()))
    )
}

/// The retry delay after `attempts` failed attempts (exponential, capped).
pub fn backoff_delay(initial_ms: u64, max_ms: u64, attempts: u32) -> Duration {
    let exp = initial_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    Duration::from_millis(exp.min(max_ms))
}

fn jitter(d: Duration) -> Duration {
    let r = crate::random32();
    let f = 0.8 + 0.4 * (f64::from(r[0]) / 255.0);
    d.mul_f64(f)
}

/// Queue `event` for every webhook of `tenant` and every platform-wide one,
/// in the caller's transaction.
pub async fn enqueue(
    tx: &tokio_postgres::Transaction<'_>,
    tenant: Option<&str>,
    event: &str,
    object: serde_json::Value,
) -> Result<(), ApiError> {
    let hooks = tx
        .query(
            "SELECT id FROM workflow.webhooks
              WHERE deleted_at IS NULL AND (tenant IS NULL OR tenant = $1)",
            &[&tenant],
        )
        .await?;
    for h in hooks {
        let webhook_id: i64 = h.get(0);
        let delivery_id = hex::encode(&crate::random32()[..16]);
        let body = serde_json::json!({
            "delivery_id": delivery_id,
            "event": event,
            "tenant": tenant,
            "occurred_at": ts(time::OffsetDateTime::now_utc()),
            "object": object,
        })
        .to_string();
        tx.execute(
            "INSERT INTO workflow.webhook_deliveries (delivery_id, webhook_id, event, body)
             VALUES ($1, $2, $3, $4)",
            &[&delivery_id, &webhook_id, &event, &body],
        )
        .await?;
    }
    Ok(())
}

/// Background task: deliver due rows.
pub async fn run(wf: Arc<Workflow>, shutdown: CancellationToken) {
    let every = Duration::from_millis(wf.config.webhook_poll_ms);
    loop {
        if let Err(e) = deliver_due(&wf).await {
            tracing::warn!(error = ?e, "webhook delivery");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wf.webhooks_kick.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One pass over due deliveries.
pub async fn deliver_due(wf: &Workflow) -> Result<usize, ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let rows = tx
        .query(
            "SELECT d.id, d.delivery_id, d.event, d.body, d.attempts, w.url, w.secret
               FROM workflow.webhook_deliveries d JOIN workflow.webhooks w ON w.id = d.webhook_id
              WHERE d.state = 'pending' AND d.next_attempt_at <= now()
              ORDER BY d.next_attempt_at LIMIT 50
                FOR UPDATE OF d SKIP LOCKED",
            &[],
        )
        .await?;
    let n = rows.len();
    for r in rows {
        let id: i64 = r.get(0);
        let delivery_id: String = r.get(1);
        let event: String = r.get(2);
        let body: String = r.get(3);
        let attempts: i32 = r.get::<_, i32>(4) + 1;
        let url: String = r.get(5);
        let secret: String = r.get(6);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let result = wf
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("Anchord-Delivery", &delivery_id)
            .header("Anchord-Event", &event)
            .header("Anchord-Timestamp", now.to_string())
            .header("Anchord-Signature", signature(&secret, now, &body))
            .body(body)
            .send()
            .await;
        let (status, error) = match result {
            Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16() as i32), None),
            Ok(resp) => (
                Some(resp.status().as_u16() as i32),
                Some(format!("HTTP {}", resp.status().as_u16())),
            ),
            Err(e) => (None, Some(format!("request failed: {e}"))),
        };
        match error {
            None => {
                tx.execute(
                    "UPDATE workflow.webhook_deliveries
                        SET state = 'delivered', attempts = $2, last_status = $3, last_error = NULL,
                            delivered_at = now()
                      WHERE id = $1",
                    &[&id, &attempts, &status],
                )
                .await?;
                crate::metrics::WEBHOOK_ATTEMPTS
                    .with_label_values(&["delivered"])
                    .inc();
            }
            Some(err) => {
                let give_up = attempts as u32 >= wf.config.webhook_max_attempts;
                let delay = jitter(backoff_delay(
                    wf.config.webhook_backoff_initial_ms,
                    wf.config.webhook_backoff_max_ms,
                    attempts as u32,
                ));
                tx.execute(
                    "UPDATE workflow.webhook_deliveries
                        SET state = CASE WHEN $5 THEN 'failed' ELSE 'pending' END,
                            attempts = $2, last_status = $3, last_error = $4,
                            next_attempt_at = now() + make_interval(secs => $6)
                      WHERE id = $1",
                    &[
                        &id,
                        &attempts,
                        &status,
                        &err,
                        &give_up,
                        &delay.as_secs_f64(),
                    ],
                )
                .await?;
                crate::metrics::WEBHOOK_ATTEMPTS
                    .with_label_values(&[if give_up { "failed" } else { "retry" }])
                    .inc();
            }
        }
    }
    tx.commit().await?;
    Ok(n)
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// http(s) URL the events are POSTed to.
    pub url: String,
    /// Shared secret for the signature; generated when absent.
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookJson {
    pub id: i64,
    /// The bank whose events are delivered; null: every bank (administrators).
    pub tenant: Option<String>,
    pub url: String,
    /// Returned once, at creation.
    pub secret: Option<String>,
    pub created_at: String,
}

/// Register a webhook (administrators: every bank's events; reviewers:
/// their bank's).
#[utoipa::path(post, path = "/v1/webhooks", request_body = NewWebhook, responses(
    (status = 201, body = WebhookJson),
    (status = 422, body = crate::error::ErrorBody),
))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Json(w): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<WebhookJson>), ApiError> {
    if !(w.url.starts_with("http://") || w.url.starts_with("https://")) || w.url.len() > 2000 {
        return Err(ApiError::field("url", "an http(s) URL"));
    }
    let secret = match w.secret {
        Some(s) if s.len() >= 16 && s.len() <= 256 => s,
        Some(_) => return Err(ApiError::field("secret", "16-256 characters")),
        None => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::random32()),
    };
    let tenant = match caller.role {
        Role::Admin => None,
        _ => caller.tenant.clone(),
    };
    let c = wf.db().await?;
    let r = c
        .query_one(
            "INSERT INTO workflow.webhooks (tenant, url, secret, created_by) VALUES ($1, $2, $3, $4)
             RETURNING id, created_at",
            &[&tenant, &w.url, &secret, &caller.id],
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookJson {
            id: r.get(0),
            tenant,
            url: w.url,
            secret: Some(secret),
            created_at: ts(r.get(1)),
        }),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryJson {
    pub delivery_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", params(("id" = i64, Path)), responses(
    (status = 200, body = [DeliveryJson]),
    (status = 404, body = crate::error::ErrorBody),
))]
pub async fn deliveries(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<DeliveryJson>>, ApiError> {
    let c = wf.db().await?;
    let hook = c
        .query_opt("SELECT tenant FROM workflow.webhooks WHERE id = $1", &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let tenant: Option<String> = hook.get(0);
    if caller.role != Role::Admin && tenant != caller.tenant {
        return Err(ApiError::forbidden("this webhook belongs to another bank"));
    }
    let rows = c
        .query(
            "SELECT delivery_id, event, state, attempts, last_status, last_error, next_attempt_at, delivered_at
               FROM workflow.webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT 500",
            &[&id],
        )
        .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| DeliveryJson {
                delivery_id: r.get(0),
                event: r.get(1),
                state: r.get(2),
                attempts: r.get(3),
                last_status: r.get(4),
                last_error: r.get(5),
                next_attempt_at: ts(r.get(6)),
                delivered_at: ts_opt(r.get(7)),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_vectors() {
        // Test case 1.
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_delay(100, 1000, 1), Duration::from_millis(100));
        assert_eq!(backoff_delay(100, 1000, 2), Duration::from_millis(200));
        assert_eq!(backoff_delay(100, 1000, 4), Duration::from_millis(800));
        assert_eq!(backoff_delay(100, 1000, 5), Duration::from_millis(1000));
        assert_eq!(backoff_delay(100, 1000, 60), Duration::from_millis(1000));
    }
}
