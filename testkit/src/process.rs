//! Helpers for tests that run `anchord` (or a peer such as promtool) as a
//! process: a child killed on drop, free ports, scratch directories, and
//! registry-installed peers found or reported loudly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process killed (SIGKILL) and reaped when dropped, so a failing
/// test leaves nothing running.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now, for a child process to listen on.
///
/// Picked below the kernel's ephemeral range (`ip_local_port_range`), never
/// in it: a port the OS hands out for `bind(0)` is also what it hands out
/// as the local port of outgoing connections, so between this call and the
/// child's bind, any client connection (a test's PostgreSQL pool, a
/// producer) could take it. A chaos run failed on exactly that ("witness-2:
/// Address already in use"). Ports handed out once are not handed out again
/// by this process.
pub fn free_port() -> u16 {
    use rand::Rng as _;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = if ephemeral_low > 12_000 {
        (10_000, ephemeral_low - 1)
    } else {
        // An unusual range: fall back to the OS's pick.
        (0, 0)
    };
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = if hi == 0 {
            0
        } else {
            rng.random_range(lo..=hi)
        };
        if port != 0 && given.contains(&port) {
            continue;
        }
        // Free for both a plain and a SO_REUSEADDR listener: nothing bound.
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port))
            && let Ok(a) = l.local_addr()
        {
            given.push(a.port());
            return a.port();
        }
    }
    panic!("no free port found in {lo}..={hi}")
}

/// A new, empty directory under the system's temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(crate::unique(tag));
    std::fs::create_dir_all(&d).expect("creating a temporary directory");
    d
}

/// A program from the test peers (`scripts/test-peers`), on PATH or in
/// /usr/bin; panics naming the script when it is missing.
pub fn peer(name: &str) -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/local/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is missing: run scripts/test-peers (it installs the test peers \
                 from Debian, PyPI and npm)"
            )
        })
}

/// `promtool check metrics` on a Prometheus text exposition: it must pass
/// without a single complaint. `what` names the exposition in the failure.
pub fn promtool_check(body: &str, what: &str) {
    let mut c = Command::new(peer("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    c.stdin
        .take()
        .expect("promtool's stdin")
        .write_all(body.as_bytes())
        .expect("writing to promtool");
    let out = c.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics on {what}: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    /// Ports for children come from below the kernel's ephemeral range, so
    /// no outgoing connection can take one before the child binds it, and
    /// never twice from one process.
    #[test]
    fn free_ports_are_outside_the_ephemeral_range_and_distinct() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            low > 12_000,
            "this machine's ephemeral range starts at {low}"
        );
        let ports: Vec<u16> = (0..200).map(|_| super::free_port()).collect();
        for &p in &ports {
            assert!((10_000..low).contains(&p), "port {p}, ephemeral from {low}");
            std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }
}
