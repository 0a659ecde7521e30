//! Rate limits and the aggregation of anonymous noise (issue 12, flaw 11).
//!
//! - Per client address: login attempts, changes (non-GET requests) and
//!   requests without a valid session; per username: login attempts (known
//!   or not, so a 429 says nothing about the account); per signed-in user:
//!   changes. Over a limit the answer is 429 `rate_limited` with
//!   `Retry-After` (seconds). Limits are GCRA buckets (the `governor`
//!   crate) of `N` per minute with a burst of `N`.
//! - Requests without a valid session (401s) and rate-limited requests are
//!   not written to the hash-chained audit log one row each (an anonymous
//!   caller could grow it at will): they are counted in memory and written
//!   as one `audit.noise_summary` row every `noise_summary_interval_s`
//!   (and when the service stops).
//! - The housekeeping task also purges expired and revoked sessions and
//!   forgets idle limiter keys.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::config::WorkflowConfig;
use crate::error::ApiError;
use crate::{Workflow, audit};

type Keyed<K> = Option<DefaultKeyedRateLimiter<K>>;

fn keyed<K: std::hash::Hash + Eq + Clone>(per_min: u32) -> Keyed<K> {
    NonZeroU32::new(per_min).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// Distinct client addresses remembered per summary (beyond: only counted).
const NOISE_ADDRESSES: usize = 10_000;
/// Distinct (who, action, status) lines per summary (beyond: one "other").
const NOISE_LINES: usize = 200;

#[derive(Default)]
struct Noise {
    /// (who, action, status) -> count.
    lines: BTreeMap<(String, String, u16), u64>,
    addresses: HashSet<IpAddr>,
    total: u64,
}

/// The limiters and the noise counters.
pub struct Limits {
    login_ip: Keyed<IpAddr>,
    login_account: Keyed<String>,
    writes_user: Keyed<i64>,
    writes_ip: Keyed<IpAddr>,
    anonymous_ip: Keyed<IpAddr>,
    ip_header: Option<axum::http::HeaderName>,
    noise: Mutex<Noise>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

/// Which limit a request went over.
#[derive(Clone, Copy, Debug)]
pub enum Which {
    LoginIp,
    LoginAccount,
    WritesUser,
    WritesIp,
    AnonymousIp,
}

impl Which {
    fn text(self) -> &'static str {
        match self {
            Which::LoginIp => "too many login attempts from this address",
            Which::LoginAccount => "too many login attempts for this username",
            Which::WritesUser => "too many changes by this user",
            Which::WritesIp => "too many changes from this address",
            Which::AnonymousIp => "too many requests without a session from this address",
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(l: &Keyed<K>, key: &K) -> Result<(), Duration> {
    match l {
        None => Ok(()),
        Some(l) => l
            .check_key(key)
            .map_err(|n| n.wait_time_from(l.clock().now())),
    }
}

impl Limits {
    pub fn new(config: &WorkflowConfig) -> Limits {
        Limits {
            login_ip: keyed(config.login_per_ip_per_min),
            login_account: keyed(config.login_per_account_per_min),
            writes_user: keyed(config.writes_per_user_per_min),
            writes_ip: keyed(config.writes_per_ip_per_min),
            anonymous_ip: keyed(config.anonymous_per_ip_per_min),
            ip_header: (!config.client_ip_header.is_empty())
                .then(|| {
                    axum::http::HeaderName::from_bytes(config.client_ip_header.as_bytes()).ok()
                })
                .flatten(),
            noise: Mutex::new(Noise::default()),
        }
    }

    /// The client's address: the right-most address of the configured
    /// proxy header, else the TCP peer (unspecified when neither is known).
    pub fn client_ip(&self, headers: &HeaderMap, ext: &axum::http::Extensions) -> IpAddr {
        if let Some(h) = &self.ip_header {
            let from_header = headers
                .get_all(h)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = from_header {
                return ip;
            }
        }
        ext.get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    pub fn login_ip(&self, ip: IpAddr) -> Result<(), (Which, Duration)> {
        check(&self.login_ip, &ip).map_err(|d| (Which::LoginIp, d))
    }

    /// Keyed by the username as sent (bounded in length), whether or not
    /// such a user exists.
    pub fn login_account(&self, username: &str) -> Result<(), (Which, Duration)> {
        let key: String = username.chars().take(64).collect();
        check(&self.login_account, &key).map_err(|d| (Which::LoginAccount, d))
    }

    pub fn writes_ip(&self, ip: IpAddr) -> Result<(), (Which, Duration)> {
        check(&self.writes_ip, &ip).map_err(|d| (Which::WritesIp, d))
    }

    pub fn writes_user(&self, user: i64) -> Result<(), (Which, Duration)> {
        check(&self.writes_user, &user).map_err(|d| (Which::WritesUser, d))
    }

    pub fn anonymous_ip(&self, ip: IpAddr) -> Result<(), (Which, Duration)> {
        check(&self.anonymous_ip, &ip).map_err(|d| (Which::AnonymousIp, d))
    }

    /// Count a request that is not audited one row each.
    pub fn note_noise(&self, who: &str, action: &str, status: u16, ip: IpAddr) {
        let Ok(mut n) = self.noise.lock() else { return };
        n.total += 1;
        if n.addresses.len() < NOISE_ADDRESSES {
            n.addresses.insert(ip);
        }
        let key = (who.to_owned(), action.to_owned(), status);
        if n.lines.len() < NOISE_LINES || n.lines.contains_key(&key) {
            *n.lines.entry(key).or_insert(0) += 1;
        } else {
            *n.lines
                .entry(("*".into(), "other".into(), status))
                .or_insert(0) += 1;
        }
    }

    fn take_noise(&self) -> Option<Noise> {
        let mut n = self.noise.lock().ok()?;
        (n.total > 0).then(|| std::mem::take(&mut *n))
    }

    fn retain_recent(&self) {
        fn r<K: std::hash::Hash + Eq + Clone>(l: &Keyed<K>) {
            if let Some(l) = l {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        r(&self.login_ip);
        r(&self.login_account);
        r(&self.writes_user);
        r(&self.writes_ip);
        r(&self.anonymous_ip);
    }
}

/// 429 `rate_limited` with `Retry-After` (whole seconds, at least 1).
pub fn too_many((which, wait): (Which, Duration)) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("{}; retry in {secs} s", which.text()),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Write the noise counted since the last summary as one audit row.
pub async fn flush_noise(wf: &Workflow) {
    let Some(n) = wf.limits.take_noise() else {
        return;
    };
    let mut detail = format!(
        "{} requests from {}{} client addresses:",
        n.total,
        n.addresses.len(),
        if n.addresses.len() >= NOISE_ADDRESSES {
            "+"
        } else {
            ""
        }
    );
    for ((who, action, status), count) in &n.lines {
        detail.push_str(&format!(" {status} {action} by {who} x{count};"));
    }
    audit::record(
        wf,
        None,
        "anonymous",
        "audit.noise_summary",
        "requests without a session or over a rate limit",
        "denied",
        &detail,
    )
    .await;
}

/// Delete sessions that expired or were revoked more than
/// `session_purge_grace_s` ago; returns how many.
pub async fn purge_sessions(wf: &Workflow) -> Result<u64, ApiError> {
    let c = wf.db().await?;
    Ok(
        crate::store::users::purge_sessions(c.client(), wf.config.session_purge_grace_s as f64)
            .await?,
    )
}

/// The housekeeping task: noise summaries, session purge, limiter upkeep.
/// On shutdown it writes the last summary, then returns.
pub async fn run_housekeeping(wf: Arc<Workflow>, shutdown: CancellationToken) {
    let noise_every = Duration::from_secs(wf.config.noise_summary_interval_s);
    let purge_every = Duration::from_secs(wf.config.session_purge_interval_s);
    let mut noise = tokio::time::interval(noise_every);
    let mut purge = tokio::time::interval(purge_every);
    noise.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                flush_noise(&wf).await;
                return;
            }
            _ = noise.tick() => {
                flush_noise(&wf).await;
                wf.limits.retain_recent();
            }
            _ = purge.tick() => match purge_sessions(&wf).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "purged expired and revoked sessions"),
                Err(e) => tracing::warn!(error = ?e, "purging sessions"),
            },
        }
    }
}
