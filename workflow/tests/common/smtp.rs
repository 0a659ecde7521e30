//! A real SMTP relay for the mail tests: aiosmtpd (`tests/smtp_sink.py`,
//! installed into the peers' venv by `scripts/test-peers`), recording each
//! message it accepts as one JSON line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anchord_testkit::process::Proc;
use serde_json::Value;

/// The relay on its port; stopped when dropped.
pub struct Smtp {
    _proc: Proc,
    pub out: PathBuf,
}

fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.anchord/peers/venv/bin/python");
    assert!(
        p.exists(),
        "{}: run scripts/test-peers (installs aiosmtpd into the venv)",
        p.display()
    );
    p
}

/// Start the relay on `port`, recording into `out`; `args`: its mode,
/// certificate and login options (`smtp_sink.py --help`).
pub async fn smtp_up(port: u16, out: &Path, args: &[&str]) -> Smtp {
    let child = std::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py"))
        .arg(port.to_string())
        .arg(out)
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting aiosmtpd");
    let proc = Proc(child);
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Smtp {
                _proc: proc,
                out: out.to_owned(),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("aiosmtpd did not listen on {port}");
}

/// The messages recorded so far.
pub fn mails(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
