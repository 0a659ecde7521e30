//! The SMS gateway (`[workflow.sms]`): how an outside party invited by phone
//! number receives the one-time link of their invitation.
//!
//! The contracts feature queues the message in the notification outbox
//! (`store/notify.rs`, channel `sms`) in the transaction that invites the
//! party; the outbox loop (`mailer.rs`) sends it with [`Gateway::send`] and
//! retries it like a mail. Each message is one HTTP `POST` of a JSON body
//! `{"to", "text", "message_id"}` to the operator's `url` with
//! `Authorization: Bearer <token>` and `Idempotency-Key: <message_id>` (a
//! retry after an unrecorded success carries the same id). A `2xx` answer
//! is delivered; `408`, `425`, `429`, a `5xx`, a timeout or a refused
//! connection are retried; any other `4xx` fails the message at once.
//!
//! The gateway is the only host contacted: its client is pinned to the
//! configured URL's host and port ([`egress::Policy::pinned`]), redirects
//! off, cloud metadata addresses refused, and the URL is checked at
//! start-up (a metadata address, credentials in the URL, or plain `http`
//! to anything but a loopback address stop the service from starting).

use std::net::IpAddr;
use std::time::Duration;

use crate::config::SmsConfig;
use crate::{WorkflowError, egress};

/// The configured gateway: its URL, its pinned client and the bearer token.
pub struct Gateway {
    url: reqwest::Url,
    http: reqwest::Client,
    token: String,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Gateway")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

fn config_error(m: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Config(format!("workflow.sms.url: {m}"))
}

/// Is `host` (a URL's host, IPv6 without brackets) a loopback address?
fn loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

impl Gateway {
    /// The gateway `c` configures (`None` while SMS is off): the URL checked
    /// against the egress policy (its host's current addresses too, when it
    /// is a name that resolves now), the token read from its file.
    pub async fn load(c: &SmsConfig) -> Result<Option<Gateway>, WorkflowError> {
        if !c.enabled() {
            return Ok(None);
        }
        let policy = std::sync::Arc::new(
            egress::Policy::pinned(std::slice::from_ref(&c.url), &[])
                .map_err(config_error)?
                .hint("workflow.sms.url"),
        );
        let url = policy
            .check_url(&c.url, false)
            .await
            .map_err(config_error)?;
        if url.fragment().is_some() {
            return Err(config_error("a fragment is never sent; remove it"));
        }
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if url.scheme() == "http" && !loopback(&host) {
            return Err(config_error(
                "plain http only to a loopback address (the bearer token would cross the network in clear); use https",
            ));
        }
        // A name: every address it has now must be permitted (a name that
        // points at a metadata address is refused here, not at the first
        // send). A name that does not resolve yet is left to the client's
        // guarded resolver.
        if host.parse::<IpAddr>().is_err() {
            match tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::lookup_host((host.as_str(), 0)),
            )
            .await
            {
                Ok(Ok(addrs)) => {
                    for a in addrs {
                        policy.permit(a.ip(), Some(&host)).map_err(|r| {
                            config_error(format!("{host} resolves to a refused address: {r}"))
                        })?;
                    }
                }
                _ => {
                    tracing::warn!(%host, "workflow.sms.url does not resolve now; checked again at each send")
                }
            }
        }
        let file = c.token_file.as_ref().ok_or_else(|| {
            WorkflowError::Config(
                "workflow.sms.token_file is required with workflow.sms.url".into(),
            )
        })?;
        let token = crate::config::secret_file_line(file, "workflow.sms.token_file")
            .map_err(WorkflowError::Config)?
            .trim()
            .to_owned();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) || token.len() > 4096 {
            return Err(WorkflowError::Config(format!(
                "workflow.sms.token_file {}: the first line must be the token (printable ASCII, no spaces, at most 4096 bytes)",
                file.display()
            )));
        }
        let http = policy
            .client(
                Duration::from_millis(c.connect_timeout_ms),
                Duration::from_millis(c.timeout_ms),
            )
            .map_err(|e| WorkflowError::Config(format!("workflow.sms: HTTP client: {e}")))?;
        Ok(Some(Gateway { url, http, token }))
    }

    /// Send one message; `Err((why, permanent))`. `why` never holds the
    /// token.
    pub async fn send(&self, to: &str, text: &str, message_id: &str) -> Result<(), (String, bool)> {
        let resp = self
            .http
            .post(self.url.clone())
            .bearer_auth(&self.token)
            .header("Idempotency-Key", message_id)
            .json(&serde_json::json!({"to": to, "text": text, "message_id": message_id}))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let why = match egress::refusal_in(&e) {
                    Some(r) => format!("refused by the address policy: {r}"),
                    None if e.is_timeout() => "timed out".to_owned(),
                    None => format!("gateway unavailable: {}", without_url(&e)),
                };
                return Err((why, false));
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // A short excerpt of the gateway's answer, one line.
        let body = resp.text().await.unwrap_or_default();
        let excerpt = crate::store::notify::one_line(&body, 200);
        let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
        Err((format!("the gateway answered {status}: {excerpt}"), !retry))
    }
}

/// A `reqwest` error's text without its URL (the configured URL is no
/// secret, but keep the recorded error short).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s
            .replace(&format!(" ({u})"), "")
            .replace(u.as_str(), "<gateway>");
    }
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}
