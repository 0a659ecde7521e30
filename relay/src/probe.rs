//! Readiness: can each configured target's endpoint be reached? A TCP
//! connect to the gateway or JSON-RPC endpoint, bounded in time. It says
//! nothing about the target accepting anchors (the worker's circuit breaker
//! and `anchord_relay_*` metrics do); it catches a wrong address, a DNS
//! failure or a network policy blocking the relay.

use std::time::Duration;

use crate::config::{RelayConfig, TargetConfig};

/// Probe every target concurrently; one line per unreachable target.
pub async fn unreachable_targets(config: &RelayConfig, timeout: Duration) -> Vec<String> {
    let probes = config.targets.iter().map(|t| async move {
        probe(t, timeout)
            .await
            .err()
            .map(|e| format!("target {}: {e}", t.name))
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Why a target's endpoint is not reachable.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no endpoint configured")]
    NoEndpoint,
    #[error("bad endpoint {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("endpoint {0} has no host")]
    NoHost(String),
    #[error("endpoint {0} has no port")]
    NoPort(String),
    #[error("{host}:{port} unreachable: {source}")]
    Unreachable {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("{host}:{port} did not answer within {timeout:?}")]
    Timeout {
        host: String,
        port: u16,
        timeout: Duration,
    },
}

async fn probe(t: &TargetConfig, timeout: Duration) -> Result<(), ProbeError> {
    let Some(url) = t.url.as_deref().or(t.rpc_url.as_deref()) else {
        return Err(ProbeError::NoEndpoint);
    };
    let url = reqwest::Url::parse(url).map_err(|e| ProbeError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let host = url
        .host_str()
        .ok_or_else(|| ProbeError::NoHost(url.to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ProbeError::NoPort(url.to_string()))?;
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ProbeError::Unreachable { host, port, source }),
        Err(_) => Err(ProbeError::Timeout {
            host,
            port,
            timeout,
        }),
    }
}
