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
//!
//! Delivery never holds a transaction or a lock across a request: due rows
//! are *claimed* by one short statement (`FOR UPDATE SKIP LOCKED`, moving
//! `next_attempt_at` past the request timeout, so another replica or a
//! restart retries a claim that never reports), sent concurrently by owned
//! tasks (at most `webhook_concurrency` in all and
//! `webhook_per_target_concurrency` per webhook, connect and total timeouts
//! `webhook_connect_timeout_ms` / `webhook_timeout_ms`), and each result is
//! recorded afterwards. A slow or hanging receiver therefore holds only its
//! own slots. Targets pass the address policy of [`crate::egress`] at
//! registration and again at every delivery (a refusal is recorded as the
//! attempt's error); redirects are not followed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

use crate::authz::{Require, Role, roles};
use crate::error::{ApiError, Json, Path, Query};
use crate::paging::{Page, Paged};
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

use crate::store::webhooks::{self as store, Claimed};

/// Claim up to `limit` due deliveries, at most `per_target - busy` of each
/// webhook (`busy`: requests in flight per webhook id), in one short
/// statement.
async fn claim(
    wf: &Workflow,
    limit: usize,
    busy: &HashMap<i64, usize>,
) -> Result<Vec<Claimed>, ApiError> {
    let (hooks, counts): (Vec<i64>, Vec<i32>) = busy.iter().map(|(h, n)| (*h, *n as i32)).unzip();
    let lease_s = (wf.config.webhook_timeout_ms + wf.config.webhook_connect_timeout_ms) as f64
        / 1000.0
        + 30.0;
    let c = wf.db().await?;
    Ok(store::claim(
        c.client(),
        limit as i64,
        &hooks,
        &counts,
        wf.config.webhook_per_target_concurrency as i64,
        lease_s,
    )
    .await?)
}

/// Background task: claim due rows, send them concurrently (owned tasks,
/// drained at shutdown), record each result.
pub async fn run(wf: Arc<Workflow>, shutdown: CancellationToken) {
    let every = Duration::from_millis(wf.config.webhook_poll_ms);
    let mut inflight: JoinSet<i64> = JoinSet::new();
    let mut busy: HashMap<i64, usize> = HashMap::new();
    let done = |busy: &mut HashMap<i64, usize>, r: Result<i64, tokio::task::JoinError>| {
        if let Ok(hook) = r
            && let Some(n) = busy.get_mut(&hook)
        {
            *n -= 1;
            if *n == 0 {
                busy.remove(&hook);
            }
        }
    };
    loop {
        while let Some(r) = inflight.try_join_next() {
            done(&mut busy, r);
        }
        let free = wf.config.webhook_concurrency.saturating_sub(inflight.len());
        if free > 0 {
            match claim(&wf, free, &busy).await {
                Ok(rows) => {
                    for d in rows {
                        *busy.entry(d.webhook_id).or_insert(0) += 1;
                        let wf = wf.clone();
                        inflight.spawn(crate::conn::scope(async move {
                            let hook = d.webhook_id;
                            if let Err(e) = deliver_one(&wf, d).await {
                                tracing::warn!(error = ?e, "recording a webhook delivery");
                            }
                            hook
                        }));
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "claiming webhook deliveries"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wf.webhooks_kick.notified() => {}
            Some(r) = inflight.join_next(), if !inflight.is_empty() => done(&mut busy, r),
            _ = tokio::time::sleep(every) => {}
        }
    }
    // Drain: requests end within their timeout; their claims are retried
    // after the lease if they do not report.
    let bound = Duration::from_millis(
        wf.config.webhook_timeout_ms + wf.config.webhook_connect_timeout_ms + 1000,
    );
    if tokio::time::timeout(bound, async {
        while inflight.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        inflight.abort_all();
        while inflight.join_next().await.is_some() {}
    }
}

/// One pass: claim what is due and deliver it concurrently (tests and
/// tools; the background task does this continuously). Returns how many
/// were attempted.
pub async fn deliver_due(wf: &Arc<Workflow>) -> Result<usize, ApiError> {
    let rows = claim(wf, wf.config.webhook_concurrency, &HashMap::new()).await?;
    let n = rows.len();
    let mut set = JoinSet::new();
    for d in rows {
        let wf = wf.clone();
        set.spawn(crate::conn::scope(async move { deliver_one(&wf, d).await }));
    }
    while let Some(r) = set.join_next().await {
        if let Ok(Err(e)) = r {
            return Err(e);
        }
    }
    Ok(n)
}

/// Send one claimed delivery (outside any transaction), then record it.
async fn deliver_one(wf: &Workflow, d: Claimed) -> Result<(), ApiError> {
    let attempts = d.attempts + 1;
    let (status, error) = match wf.egress.check_url(&d.url, false).await {
        Err(refused) => (
            None,
            Some(format!("refused by the address policy: {refused}")),
        ),
        Ok(url) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let result = wf
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("Anchord-Delivery", &d.delivery_id)
                .header("Anchord-Event", &d.event)
                .header("Anchord-Timestamp", now.to_string())
                .header("Anchord-Signature", signature(&d.secret, now, &d.body))
                .body(d.body)
                .send()
                .await;
            match result {
                Ok(resp) if resp.status().is_success() => {
                    (Some(resp.status().as_u16() as i32), None)
                }
                Ok(resp) => (
                    Some(resp.status().as_u16() as i32),
                    Some(format!(
                        "HTTP {}{}",
                        resp.status().as_u16(),
                        if resp.status().is_redirection() {
                            " (redirects are not followed)"
                        } else {
                            ""
                        }
                    )),
                ),
                Err(e) => match crate::egress::refusal_in(&e) {
                    Some(r) => (None, Some(format!("refused by the address policy: {r}"))),
                    None if e.is_timeout() => (None, Some("timed out".into())),
                    None if e.is_connect() => (None, Some("could not connect".into())),
                    None => (None, Some("request failed".into())),
                },
            }
        }
    };
    let c = wf.db().await?;
    match error {
        None => {
            store::delivered(c.client(), d.id, attempts, status).await?;
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
            store::attempt_failed(
                c.client(),
                d.id,
                attempts,
                status,
                &err,
                give_up,
                delay.as_secs_f64(),
            )
            .await?;
            crate::metrics::WEBHOOK_ATTEMPTS
                .with_label_values(&[if give_up { "failed" } else { "retry" }])
                .inc();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// http(s) URL the events are POSTed to. It must resolve to public
    /// addresses only (or be allowed by `workflow.webhook_allow`).
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
    /// False once disabled (no new deliveries; pending ones wait).
    pub enabled: bool,
    pub created_at: String,
}

fn hook_json(h: store::Webhook) -> WebhookJson {
    WebhookJson {
        id: h.id,
        tenant: h.tenant,
        url: h.url,
        secret: None,
        enabled: h.enabled,
        created_at: ts(h.created_at),
    }
}

/// Register a webhook (administrators: every bank's events; reviewers:
/// their bank's). At most `workflow.webhook_max_per_tenant` per bank.
#[utoipa::path(post, path = "/v1/webhooks", request_body = NewWebhook, responses(
    (status = 201, body = WebhookJson),
    (status = 409, description = "the bank has workflow.webhook_max_per_tenant webhooks", body = crate::error::ErrorBody),
    (status = 422, description = "not an http(s) URL, or its host is not a public address", body = crate::error::ErrorBody),
))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Json(w): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<WebhookJson>), ApiError> {
    if w.url.len() > 2000 {
        return Err(ApiError::field("url", "at most 2000 bytes"));
    }
    if let Err(r) = wf.egress.check_url(&w.url, true).await {
        return Err(ApiError::field("url", format!("refused: {r}")));
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
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let h = store::create(
        &tx,
        tenant.as_deref(),
        &w.url,
        &secret,
        caller.id,
        wf.config.webhook_max_per_tenant,
    )
    .await?;
    tx.commit().await?;
    let mut j = hook_json(h);
    j.secret = Some(secret);
    Ok((StatusCode::CREATED, axum::Json(j)))
}

/// Webhooks (administrators: all; reviewers: their bank's), newest first,
/// paged (`limit`, `after`; see "Paging").
#[utoipa::path(get, path = "/v1/webhooks", params(Page), responses(
    (status = 200, body = [WebhookJson], headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page"))),
))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Query(page): Query<Page>,
) -> Result<Paged<WebhookJson>, ApiError> {
    let page = page.checked()?;
    let all = caller.role == Role::Admin;
    let c = wf.db().await?;
    let hooks = store::list(
        c.client(),
        all,
        caller.tenant.as_deref(),
        page.after,
        page.limit,
    )
    .await?;
    Ok(Paged::new(
        hooks.into_iter().map(hook_json).collect(),
        page,
        |h| h.id,
    ))
}

/// The webhook's tenant, if the caller may manage it (`deleted`: deleted
/// webhooks count, for reading their deliveries).
async fn own_hook(
    c: &tokio_postgres::Client,
    caller: &crate::authz::Caller,
    id: i64,
    deleted: bool,
) -> Result<Option<String>, ApiError> {
    let tenant = store::tenant_of(c, id, deleted).await?;
    if caller.role != Role::Admin && tenant != caller.tenant {
        return Err(ApiError::forbidden("this webhook belongs to another bank"));
    }
    Ok(tenant)
}

/// Delete a webhook: no further deliveries; pending ones are marked failed.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", params(("id" = i64, Path)), responses(
    (status = 204, description = "deleted"),
))]
pub async fn delete(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let mut c = wf.db().await?;
    own_hook(c.client(), &caller, id, false).await?;
    let tx = c.transaction().await?;
    store::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    wf: &Workflow,
    caller: &crate::authz::Caller,
    id: i64,
    enabled: bool,
) -> Result<axum::Json<WebhookJson>, ApiError> {
    let c = wf.db().await?;
    own_hook(c.client(), caller, id, false).await?;
    let h = store::set_enabled(c.client(), id, enabled).await?;
    Ok(axum::Json(hook_json(h)))
}

/// Disable a webhook: no new deliveries are queued; pending ones wait.
#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", params(("id" = i64, Path)), responses(
    (status = 200, body = WebhookJson),
))]
pub async fn disable(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Path(id): Path<i64>,
) -> Result<axum::Json<WebhookJson>, ApiError> {
    set_enabled(&wf, &caller, id, false).await
}

/// Enable a disabled webhook again.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", params(("id" = i64, Path)), responses(
    (status = 200, body = WebhookJson),
))]
pub async fn enable(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Path(id): Path<i64>,
) -> Result<axum::Json<WebhookJson>, ApiError> {
    let r = set_enabled(&wf, &caller, id, true).await;
    wf.webhooks_kick.notify_one();
    r
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryJson {
    /// Paging cursor (`after`).
    pub id: i64,
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

/// `limit` and `after` for deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Items in the page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the delivery with this `id`.
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

/// A webhook's deliveries, newest first, paged (`limit`, `after`).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", params(("id" = i64, Path), DeliveriesQuery), responses(
    (status = 200, body = [DeliveryJson], headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page"))),
    (status = 404, body = crate::error::ErrorBody),
))]
pub async fn deliveries(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrReviewer>,
    Path(id): Path<i64>,
    query: Result<Query<DeliveriesQuery>, ApiError>,
) -> Result<Paged<DeliveryJson>, ApiError> {
    let c = wf.db().await?;
    own_hook(c.client(), &caller, id, true).await?;
    // The query only now: the caller may read the record (authz::Require).
    let Query(q) = query?;
    let page = Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let rows = store::deliveries(c.client(), id, page.after, page.limit).await?;
    Ok(Paged::new(
        rows.into_iter()
            .map(|d| DeliveryJson {
                id: d.id,
                delivery_id: d.delivery_id,
                event: d.event,
                state: d.state,
                attempts: d.attempts,
                last_status: d.last_status,
                last_error: d.last_error,
                next_attempt_at: ts(d.next_attempt_at),
                delivered_at: ts_opt(d.delivered_at),
            })
            .collect(),
        page,
        |d| d.id,
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
