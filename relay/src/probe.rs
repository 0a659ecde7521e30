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

async fn probe(t: &TargetConfig, timeout: Duration) -> Result<(), String> {
    let Some(url) = t.url.as_deref().or(t.rpc_url.as_deref()) else {
        return Err("no endpoint configured".into());
    };
    let url = reqwest::Url::parse(url).map_err(|e| format!("bad endpoint {url:?}: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("endpoint {url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("endpoint {url} has no port"))?;
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{host}:{port} unreachable: {e}")),
        Err(_) => Err(format!("{host}:{port} did not answer within {timeout:?}")),
    }
}
