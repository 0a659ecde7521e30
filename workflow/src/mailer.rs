//! E-mail notifications: the mailer loop that sends the mail outbox through
//! the configured SMTP relay (`[workflow.smtp]`, `lettre` over tokio with
//! rustls), and each user's notification settings
//! (`GET`/`PUT /v1/me/notifications`).
//!
//! Mails are queued by `events::emit` in the transaction of their event
//! (`store/notify.rs`), so none is lost on a crash. The loop claims due
//! rows in one short statement (a lease, like webhook deliveries), sends
//! them holding no pool connection, and records each outcome: sent, retried
//! after `backoff_initial_ms · 2^(attempt-1)` (at most `backoff_max_ms`)
//! while the relay is down or answers a transient error, failed after
//! `max_attempts` or at once on a permanent refusal (5xx, a malformed
//! address). Delivery is at least once: a retry after an unrecorded success
//! carries the same `Message-ID`, on which receivers deduplicate.
//!
//! The relay is the only host the mailer connects to (the operator's
//! `workflow.smtp.host`, resolved through a pinned egress policy that still
//! refuses cloud metadata addresses); users choose only recipients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::authz::Caller;
use crate::error::{ApiError, Json};
use crate::store::{notify, users};
use crate::{Workflow, egress};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Background task: send what is due every `poll_ms` until `stop`. With no
/// relay configured it only waits for the stop (nothing is queued then).
pub async fn run(wf: Arc<Workflow>, stop: CancellationToken) {
    if !wf.config.smtp.enabled() {
        stop.cancelled().await;
        return;
    }
    let every = Duration::from_millis(wf.config.smtp.poll_ms);
    loop {
        if let Err(e) = send_due(&wf, &stop).await {
            tracing::warn!(error = ?e, "sending notification e-mails");
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One pass: claim what is due, send it, record each outcome. Returns how
/// many mails were attempted.
pub async fn send_due(wf: &Workflow, stop: &CancellationToken) -> Result<usize, ApiError> {
    let smtp = &wf.config.smtp;
    let lease_s = smtp.timeout_ms as f64 / 1000.0 * 3.0 + 30.0;
    let claimed = {
        let c = wf.db().await?;
        let pending = notify::pending(c.client()).await?;
        crate::metrics::MAIL_PENDING.set(pending);
        notify::claim(c.client(), smtp.batch as i64, lease_s).await?
    };
    if claimed.is_empty() {
        return Ok(0);
    }
    let transport = transport(wf).await;
    let n = claimed.len();
    for m in claimed {
        if stop.is_cancelled() {
            // The rest is retried after its lease.
            break;
        }
        let outcome = match &transport {
            Err(why) => Err((why.clone(), false)),
            Ok(t) => send_one(wf, t, &m).await,
        };
        let attempts = m.attempts + 1;
        let c = wf.db().await?;
        match outcome {
            Ok(()) => {
                notify::sent(c.client(), m.id, attempts).await?;
                crate::metrics::MAIL_ATTEMPTS
                    .with_label_values(&["sent"])
                    .inc();
            }
            Err((why, permanent)) => {
                let give_up = permanent || attempts as u32 >= smtp.max_attempts;
                let delay = crate::webhooks::backoff_delay(
                    smtp.backoff_initial_ms,
                    smtp.backoff_max_ms,
                    attempts as u32,
                );
                tracing::warn!(mail = m.id, attempts, give_up, error = %why, "a notification e-mail was not sent");
                notify::attempt_failed(
                    c.client(),
                    m.id,
                    attempts,
                    &why,
                    give_up,
                    delay.as_secs_f64(),
                )
                .await?;
                crate::metrics::MAIL_ATTEMPTS
                    .with_label_values(&[if give_up { "failed" } else { "retry" }])
                    .inc();
            }
        }
    }
    Ok(n)
}

/// A transport to the relay: its address resolved through the pinned
/// egress policy, STARTTLS required unless configured off.
async fn transport(wf: &Workflow) -> Result<Transport, String> {
    let smtp = &wf.config.smtp;
    let policy = egress::Policy::new(std::slice::from_ref(&smtp.host))
        .map(|p| p.hint("workflow.smtp.host"))
        .map_err(|e| format!("workflow.smtp.host: {e}"))?;
    let addrs = policy
        .resolve(&smtp.host, false)
        .await
        .map_err(|r| format!("refused by the address policy: {r}"))?;
    let ip = addrs
        .first()
        .map(|a| a.ip())
        .ok_or_else(|| format!("{} does not resolve", smtp.host))?;
    let tls = if smtp.starttls {
        Tls::Required(
            TlsParameters::new(smtp.host.clone())
                .map_err(|e| format!("TLS parameters for {}: {e}", smtp.host))?,
        )
    } else {
        Tls::None
    };
    Ok(Transport::builder_dangerous(ip.to_string())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(Duration::from_millis(smtp.timeout_ms)))
        .build())
}

/// Send one mail; `Err((why, permanent))`.
async fn send_one(
    wf: &Workflow,
    t: &Transport,
    m: &notify::Outgoing,
) -> Result<(), (String, bool)> {
    let from: Mailbox = wf
        .config
        .smtp
        .from
        .parse()
        .map_err(|e| (format!("workflow.smtp.from: {e}"), true))?;
    let to: lettre::Address = m
        .recipient
        .parse()
        .map_err(|e| (format!("recipient: {e}"), true))?;
    let msg = Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        // Built by store/notify.rs from server data, cleaned once more.
        .subject(notify::one_line(&m.subject, 250))
        .message_id(Some(format!("<{}@anchord>", m.message_id)))
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| (format!("building the message: {e}"), true))?;
    match t.send(msg).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err((format!("refused by the relay: {e}"), true)),
        Err(e) if e.is_timeout() => Err(("timed out".into(), false)),
        Err(e) => Err((format!("relay unavailable: {e}"), false)),
    }
}

// ---------------------------------------------------------------------------
// HTTP: the caller's notification settings
// ---------------------------------------------------------------------------

/// A user's e-mail notification settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notifications {
    /// Where mails go; none: no mail.
    pub email: Option<String>,
    /// This deployment sends e-mail (`[workflow.smtp]` is configured).
    pub mail_enabled: bool,
    /// Every notification kind: on (the default) or off.
    pub events: BTreeMap<String, bool>,
    /// What each kind tells.
    pub descriptions: BTreeMap<String, String>,
}

/// A change of the caller's notification settings; absent keys stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsUpdate {
    /// A new address (`null`: none, no mail).
    #[serde(default, deserialize_with = "crate::auth::nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Kinds to turn on (`true`) or off (`false`).
    #[serde(default)]
    pub events: BTreeMap<String, bool>,
}

async fn settings(
    wf: &Workflow,
    c: &tokio_postgres::Client,
    user: i64,
) -> Result<Notifications, ApiError> {
    let u = users::get(c, user).await?;
    let chosen: BTreeMap<String, bool> = notify::prefs(c, user).await?.into_iter().collect();
    Ok(Notifications {
        email: u.email,
        mail_enabled: wf.config.smtp.enabled(),
        events: notify::KINDS
            .iter()
            .map(|(k, _)| ((*k).to_owned(), chosen.get(*k).copied().unwrap_or(true)))
            .collect(),
        descriptions: notify::KINDS
            .iter()
            .map(|(k, d)| ((*k).to_owned(), (*d).to_owned()))
            .collect(),
    })
}

/// Your e-mail notification settings: the address and, per kind, on or off.
#[utoipa::path(get, path = "/v1/me/notifications", responses((status = 200, body = Notifications)))]
pub async fn get_notifications(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
) -> Result<axum::Json<Notifications>, ApiError> {
    let c = wf.db().await?;
    Ok(axum::Json(settings(&wf, c.client(), caller.id).await?))
}

/// Change your e-mail notification settings: the address (one bare
/// address, no control characters) and kinds on or off.
#[utoipa::path(put, path = "/v1/me/notifications", request_body = NotificationsUpdate, responses(
    (status = 200, body = Notifications),
    (status = 422, description = "`validation_failed`: an invalid address or an unknown kind", body = crate::error::ErrorBody),
))]
pub async fn put_notifications(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Json(u): Json<NotificationsUpdate>,
) -> Result<axum::Json<Notifications>, ApiError> {
    let mut errs = BTreeMap::new();
    if let Some(Some(e)) = &u.email
        && let Some(why) = crate::auth::email_problem(e)
    {
        errs.insert("email".to_owned(), why);
    }
    for k in u.events.keys() {
        if !notify::KINDS.iter().any(|(kind, _)| kind == k) {
            errs.insert(
                format!("events.{}", notify::one_line(k, 64)),
                "unknown kind (see GET /v1/me/notifications)".into(),
            );
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    if let Some(email) = &u.email {
        users::update(
            &*tx,
            caller.id,
            &users::UserEdit {
                email: Some(email.as_deref()),
                ..Default::default()
            },
        )
        .await?;
    }
    let choices: Vec<(&str, bool)> = u.events.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    notify::set_prefs(&tx, caller.id, &choices).await?;
    tx.commit().await?;
    Ok(axum::Json(settings(&wf, c.client(), caller.id).await?))
}
