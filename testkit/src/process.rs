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

/// A port nobody listens on right now (the OS's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
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
