//! E-mail notifications and the notification outbox: the outbox loop that
//! sends queued mail through the configured SMTP relay (`[workflow.smtp]`,
//! `lettre` over tokio with rustls) and queued SMS through the SMS gateway
//! (`[workflow.sms]`, `sms.rs`), purges what is past its retention, and each
//! user's notification settings (`GET`/`PUT /v1/me/notifications`).
//!
//! Mails are queued by `events::emit` in the transaction of their event
//! (`store/notify.rs`), invitations by the contracts feature in the
//! transaction that invites, so none is lost on a crash. The loop claims due
//! rows in one short statement (a lease, like webhook deliveries), sends
//! them holding no pool connection, and records each outcome: sent, retried
//! after `backoff_initial_ms · 2^(attempt-1)` (at most `backoff_max_ms`)
//! while the relay is down, refuses the login, fails TLS or answers a
//! transient error, failed after `max_attempts` or at once when the message
//! itself is refused (a 5xx for the recipient, a malformed address).
//! Delivery is at least once: a retry after an unrecorded success carries
//! the same `Message-ID`, on which receivers deduplicate.
//!
//! The relay is the only host the mailer connects to (the operator's
//! `workflow.smtp.host`, resolved through a pinned egress policy that still
//! refuses cloud metadata addresses); users choose only recipients. The
//! connection is secured as `workflow.smtp.tls` says (STARTTLS required by
//! default, never a silent downgrade; or implicit TLS), the relay's
//! certificate verified for `host` against the system roots or only
//! `workflow.smtp.ca_file`; the login (PLAIN or LOGIN, only over TLS) uses
//! the password read at start-up from `password_file` or `password_env`,
//! which is never logged nor recorded.
//!
//! Every `purge_interval_s` the loop deletes, in batches of
//! [`PURGE_BATCH`], the sent and given-up rows older than their channel's
//! `retention_days`, and recounts the outbox per channel and state
//! (`anchord_workflow_outbox_messages`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::authz::Caller;
use crate::config::{SmtpConfig, SmtpTls, WorkflowConfig};
use crate::error::{ApiError, Json};
use crate::store::notify::Channel;
use crate::store::{notify, users};
use crate::{Workflow, WorkflowError, egress, sms};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Rows deleted per statement by the retention purge.
pub const PURGE_BATCH: i64 = 500;
/// Statements per purge round at most (the rest waits for the next round).
const PURGE_ROUNDS: usize = 200;

/// What the outbox sends through, prepared at start-up.
#[derive(Default)]
pub struct Senders {
    /// The SMTP relay, when e-mail is on.
    relay: Option<Relay>,
    /// The SMS gateway, when SMS is on.
    sms: Option<sms::Gateway>,
}

impl std::fmt::Debug for Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Senders")
            .field("mail", &self.relay.is_some())
            .field("sms", &self.sms)
            .finish()
    }
}

/// The relay's transport security and login, as configured.
struct Relay {
    tls: Tls,
    credentials: Option<Credentials>,
    /// What the certificate is checked against (named in errors).
    roots: String,
}

impl Senders {
    /// Read the relay's password and CA file, build its TLS parameters, and
    /// check and load the SMS gateway. Errors name the key at fault.
    pub async fn load(c: &WorkflowConfig) -> Result<Senders, WorkflowError> {
        let relay = if c.smtp.enabled() {
            Some(Relay::load(&c.smtp)?)
        } else {
            None
        };
        let sms = sms::Gateway::load(&c.sms).await?;
        Ok(Senders { relay, sms })
    }
}

/// The first line of a secret file, or the value of a variable.
fn read_secret(file: Option<&std::path::Path>, env: &str, key: &str) -> Result<String, String> {
    let value = match file {
        Some(p) => crate::config::secret_file_line(p, &format!("workflow.smtp.{key}_file"))?
            .trim_end_matches('\r')
            .to_owned(),
        None => std::env::var(env)
            .map_err(|_| format!("workflow.smtp.{key}_env: the variable {env} is not set"))?,
    };
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(format!(
            "workflow.smtp.{key}: empty, or holds a control character"
        ));
    }
    Ok(value)
}

impl Relay {
    fn load(c: &SmtpConfig) -> Result<Relay, WorkflowError> {
        let cfg = WorkflowError::Config;
        let mut params = TlsParameters::builder(c.host.clone());
        let roots = match &c.ca_file {
            Some(p) => {
                let pem = std::fs::read(p)
                    .map_err(|e| cfg(format!("workflow.smtp.ca_file {}: {e}", p.display())))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| cfg(format!("workflow.smtp.ca_file {}: {e}", p.display())))?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(cfg(format!(
                        "workflow.smtp.ca_file {}: no PEM certificate in it",
                        p.display()
                    )));
                }
                params = params
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(cert);
                format!("the CA file {}", p.display())
            }
            None => "the system roots".to_owned(),
        };
        let params = || {
            params
                .clone()
                .build()
                .map_err(|e| cfg(format!("workflow.smtp: TLS parameters for {}: {e}", c.host)))
        };
        let tls = match c.tls {
            SmtpTls::Starttls => Tls::Required(params()?),
            SmtpTls::Implicit => Tls::Wrapper(params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::None => Tls::None,
        };
        let credentials = if c.username.is_empty() {
            None
        } else {
            let password = read_secret(c.password_file.as_deref(), &c.password_env, "password")
                .map_err(cfg)?;
            Some(Credentials::new(c.username.clone(), password))
        };
        Ok(Relay {
            tls,
            credentials,
            roots,
        })
    }
}

/// Background task: every `workflow.smtp.poll_ms` send what is due through
/// each configured channel; every `workflow.smtp.purge_interval_s` purge
/// what is past its retention and recount the outbox; until `stop`.
pub async fn run(wf: Arc<Workflow>, stop: CancellationToken) {
    let poll = Duration::from_millis(wf.config.smtp.poll_ms);
    let purge_every = Duration::from_secs(wf.config.smtp.purge_interval_s);
    let sending = wf.senders.relay.is_some() || wf.senders.sms.is_some();
    let mut next_purge = tokio::time::Instant::now();
    loop {
        if wf.senders.relay.is_some()
            && let Err(e) = send_due(&wf, Channel::Email, &stop).await
        {
            tracing::warn!(error = ?e, "sending notification e-mails");
        }
        if wf.senders.sms.is_some()
            && let Err(e) = send_due(&wf, Channel::Sms, &stop).await
        {
            tracing::warn!(error = ?e, "sending SMS");
        }
        if tokio::time::Instant::now() >= next_purge {
            if let Err(e) = purge(&wf, &stop).await {
                tracing::warn!(error = ?e, "purging the notification outbox");
            }
            next_purge = tokio::time::Instant::now() + purge_every;
        }
        let wait = if sending {
            poll
        } else {
            next_purge.saturating_duration_since(tokio::time::Instant::now())
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One purge round: delete finished rows past their channel's retention,
/// [`PURGE_BATCH`] per statement (a connection held for one statement at a
/// time), then recount the outbox. Returns how many rows went.
pub async fn purge(wf: &Workflow, stop: &CancellationToken) -> Result<u64, ApiError> {
    let mut gone = 0;
    for channel in Channel::ALL {
        let days = match channel {
            Channel::Email => wf.config.smtp.retention_days,
            Channel::Sms => wf.config.sms.retention_days,
        };
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        for _ in 0..PURGE_ROUNDS {
            if stop.is_cancelled() {
                return Ok(gone);
            }
            let n = {
                let c = wf.db().await?;
                notify::purge(c.client(), channel, days, PURGE_BATCH).await?
            };
            gone += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
            // Let other work have the connection between batches.
            tokio::task::yield_now().await;
        }
    }
    if gone > 0 {
        tracing::info!(
            rows = gone,
            "purged finished notifications past their retention"
        );
    }
    let depth = {
        let c = wf.db().await?;
        notify::depth(c.client()).await?
    };
    for channel in Channel::ALL {
        for state in notify::STATES {
            let n = depth
                .iter()
                .find(|(c, s, _)| c == channel.as_str() && s == state)
                .map_or(0, |d| d.2);
            crate::metrics::OUTBOX_MESSAGES
                .with_label_values(&[channel.as_str(), state])
                .set(n);
        }
    }
    Ok(gone)
}

/// One pass over `channel`: claim what is due, send it, record each
/// outcome. Returns how many messages were attempted.
pub async fn send_due(
    wf: &Workflow,
    channel: Channel,
    stop: &CancellationToken,
) -> Result<usize, ApiError> {
    let smtp = &wf.config.smtp;
    let (timeout_ms, max_attempts, backoff_initial_ms, backoff_max_ms) = match channel {
        Channel::Email => (
            smtp.timeout_ms,
            smtp.max_attempts,
            smtp.backoff_initial_ms,
            smtp.backoff_max_ms,
        ),
        Channel::Sms => {
            let s = &wf.config.sms;
            (
                s.timeout_ms + s.connect_timeout_ms,
                s.max_attempts,
                s.backoff_initial_ms,
                s.backoff_max_ms,
            )
        }
    };
    let lease_s = timeout_ms as f64 / 1000.0 * 3.0 + 30.0;
    let claimed = {
        let c = wf.db().await?;
        if channel == Channel::Email {
            let pending = notify::pending(c.client()).await?;
            crate::metrics::MAIL_PENDING.set(pending);
        }
        notify::claim(c.client(), channel, smtp.batch as i64, lease_s).await?
    };
    if claimed.is_empty() {
        return Ok(0);
    }
    // E-mail: one transport per pass, and a first connection (TLS and the
    // login) so that a relay problem retries every mail of the pass with
    // the relay's error instead of failing them one by one.
    let relay: Option<Result<Transport, String>> = match (channel, &wf.senders.relay) {
        (Channel::Email, Some(r)) => Some(match transport(wf, r).await {
            Ok(t) => match t.test_connection().await {
                Ok(_) => Ok(t),
                Err(e) => Err(relay_error(r, &e)),
            },
            Err(why) => Err(why),
        }),
        (Channel::Email, None) => Some(Err("e-mail is off".into())),
        (Channel::Sms, _) => None,
    };
    let n = claimed.len();
    for m in claimed {
        if stop.is_cancelled() {
            // The rest is retried after its lease.
            break;
        }
        let outcome = match (&relay, &wf.senders.sms) {
            (Some(Err(why)), _) => Err((why.clone(), false)),
            (Some(Ok(t)), _) => match &wf.senders.relay {
                Some(r) => send_one(wf, r, t, &m).await,
                None => Err(("e-mail is off".into(), false)),
            },
            (None, Some(g)) => g.send(&m.recipient, &m.body, &m.message_id).await,
            (None, None) => Err(("SMS is off".into(), false)),
        };
        let attempts = m.attempts + 1;
        let label = match channel {
            Channel::Email => &crate::metrics::MAIL_ATTEMPTS,
            Channel::Sms => &crate::metrics::SMS_ATTEMPTS,
        };
        let c = wf.db().await?;
        match outcome {
            Ok(()) => {
                notify::sent(c.client(), m.id, attempts).await?;
                label.with_label_values(&["sent"]).inc();
            }
            Err((why, permanent)) => {
                let give_up = permanent || attempts as u32 >= max_attempts;
                let delay = crate::webhooks::backoff_delay(
                    backoff_initial_ms,
                    backoff_max_ms,
                    attempts as u32,
                );
                tracing::warn!(message = m.id, channel = channel.as_str(), attempts, give_up, error = %why, "a notification was not sent");
                notify::attempt_failed(
                    c.client(),
                    m.id,
                    attempts,
                    &why,
                    give_up,
                    delay.as_secs_f64(),
                )
                .await?;
                label
                    .with_label_values(&[if give_up { "failed" } else { "retry" }])
                    .inc();
            }
        }
    }
    Ok(n)
}

/// A transport to the relay: its address resolved through the pinned
/// egress policy, TLS and the login as configured.
async fn transport(wf: &Workflow, relay: &Relay) -> Result<Transport, String> {
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
    let mut b = Transport::builder_dangerous(ip.to_string())
        .port(smtp.port)
        .tls(relay.tls.clone())
        .timeout(Some(Duration::from_millis(smtp.timeout_ms)));
    if let Some(c) = &relay.credentials {
        b = b
            .credentials(c.clone())
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(b.build())
}

/// Is this SMTP error the relay refusing the login (530, 534, 535, 538)?
fn login_refused(e: &lettre::transport::smtp::Error) -> bool {
    e.status()
        .is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"))
}

/// Did TLS with the relay fail (the handshake, the certificate)? `lettre`
/// reports a certificate refused by rustls during the handshake as a
/// connection error: read the whole chain.
fn tls_failed(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_tls() {
        return true;
    }
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        let t = s.to_string();
        if t.contains("certificate") || t.contains("handshake") || t.contains("TLS") {
            return true;
        }
        src = s.source();
    }
    false
}

/// What went wrong with the relay itself (not with one mail), for the
/// outbox's `last_error`: never the password.
fn relay_error(relay: &Relay, e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    if text.contains("STARTTLS is not supported") {
        "the relay does not offer STARTTLS; workflow.smtp.tls = \"starttls\" refuses to send in clear".into()
    } else if tls_failed(e) {
        format!(
            "TLS with the relay failed (its certificate is checked against {}): {text}",
            relay.roots
        )
    } else if login_refused(e) {
        format!("the relay refused the login (workflow.smtp.username and its password): {text}")
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        format!("relay unavailable: {text}")
    }
}

/// Send one mail; `Err((why, permanent))`.
async fn send_one(
    wf: &Workflow,
    relay: &Relay,
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
        // The relay's own trouble (TLS, the login) is no fault of the mail.
        Err(e) if tls_failed(&e) || login_refused(&e) => Err((relay_error(relay, &e), false)),
        Err(e) if e.is_permanent() => Err((format!("refused by the relay: {e}"), true)),
        Err(e) if e.is_timeout() => Err(("timed out".into(), false)),
        Err(e) => Err((relay_error(relay, &e), false)),
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
