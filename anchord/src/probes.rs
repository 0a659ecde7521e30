//! Probes every service's admin listener refreshes at each scrape of
//! `/metrics` (docs/metrics.md, stage `admin`): whether the service's own
//! PostgreSQL pool answers `SELECT 1`, and how full the data directories it
//! writes are. At scrape time, with a short timeout, so no background task
//! is needed and the value is as fresh as the scrape.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{IntGauge, IntGaugeVec, register_int_gauge, register_int_gauge_vec};

/// How long the `SELECT 1` (pool checkout included) may take before the
/// database counts as unreachable for this scrape.
pub const POSTGRES_TIMEOUT: Duration = Duration::from_secs(2);

/// How long reading a file system's statistics may take (a hung network
/// file system must not hold the scrape).
const DISK_TIMEOUT: Duration = Duration::from_secs(2);

/// The share of a file system's size below which free space is low when
/// `admin.disk_low_free_bytes` is not set (the kubelet rule's 15%).
const DEFAULT_LOW_FREE_SHARE: f64 = 0.15;

pub static POSTGRES_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "anchord_admin_postgres_up",
        "1 when this service's PostgreSQL pool answered SELECT 1 within 2 s at this \
         scrape, 0 when it did not (refused, failed or timed out)."
    )
    .expect("metric registers once")
});

pub static DISK_FREE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "anchord_admin_disk_free_bytes",
        "Bytes available to this process on the file system holding the data \
         directory `volume`, at this scrape.",
        &["volume"]
    )
    .expect("metric registers once")
});

pub static DISK_SIZE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "anchord_admin_disk_size_bytes",
        "Size of the file system holding the data directory `volume`.",
        &["volume"]
    )
    .expect("metric registers once")
});

pub static DISK_LOW_FREE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "anchord_admin_disk_low_free_bytes",
        "Free bytes at or below which the data directory `volume` is low on space \
         (admin.disk_low_free_bytes, default 15% of the file system's size).",
        &["volume"]
    )
    .expect("metric registers once")
});

/// A data directory a service writes, watched for free space.
#[derive(Clone, Debug)]
pub struct Disk {
    /// The `volume` label: a fixed name, never the path (docs/metrics.md).
    pub volume: &'static str,
    pub dir: PathBuf,
    /// `admin.disk_low_free_bytes`, when configured.
    pub low_free: Option<u64>,
}

/// Register the probes' metrics (before the first scrape: the PostgreSQL
/// gauge starts at 0 until a probe answers).
pub fn init(disks: &[Disk]) {
    POSTGRES_UP.set(0);
    for d in disks {
        DISK_FREE.with_label_values(&[d.volume]);
        DISK_SIZE.with_label_values(&[d.volume]);
        DISK_LOW_FREE.with_label_values(&[d.volume]);
    }
}

/// Record one PostgreSQL probe's outcome.
pub fn record_postgres(up: bool) {
    POSTGRES_UP.set(i64::from(up));
}

/// Free and total bytes of the file system holding `dir` (or, while `dir`
/// does not exist yet, its nearest existing ancestor).
fn disk_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    let s = rustix::fs::statvfs(at)?;
    let frsize = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    };
    Ok((
        s.f_bavail.saturating_mul(frsize),
        s.f_blocks.saturating_mul(frsize),
    ))
}

/// The free-bytes threshold of a file system of `size` bytes.
pub fn low_free_threshold(configured: Option<u64>, size: u64) -> u64 {
    configured.unwrap_or((size as f64 * DEFAULT_LOW_FREE_SHARE) as u64)
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Refresh the disk gauges. A directory whose statistics cannot be read
/// keeps its previous values and is logged.
pub async fn refresh_disks(disks: &[Disk]) {
    for d in disks {
        let dir = d.dir.clone();
        let read = tokio::time::timeout(
            DISK_TIMEOUT,
            tokio::task::spawn_blocking(move || disk_space(&dir)),
        )
        .await;
        match read {
            Ok(Ok(Ok((free, size)))) => {
                DISK_FREE.with_label_values(&[d.volume]).set(gauge(free));
                DISK_SIZE.with_label_values(&[d.volume]).set(gauge(size));
                DISK_LOW_FREE
                    .with_label_values(&[d.volume])
                    .set(gauge(low_free_threshold(d.low_free, size)));
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(volume = d.volume, dir = %d.dir.display(), error = %e,
                    "reading the file system's free space")
            }
            Ok(Err(e)) => tracing::warn!(volume = d.volume, error = %e, "disk probe task"),
            Err(_) => tracing::warn!(volume = d.volume, dir = %d.dir.display(),
                "the file system's statistics took longer than {DISK_TIMEOUT:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_for_a_directory_not_created_yet() {
        let dir = std::env::temp_dir().join("anchord-probe-none/a/b");
        let (free, size) = disk_space(&dir).unwrap();
        assert!(size > 0 && free <= size, "{free} of {size}");
    }

    #[test]
    fn the_threshold_is_the_configured_one_or_15_percent() {
        assert_eq!(low_free_threshold(Some(5), 1000), 5);
        assert_eq!(low_free_threshold(None, 1000), 150);
    }
}
