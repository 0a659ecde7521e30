//! Processes the chaos suite runs, kills (SIGKILL) and restarts: every
//! pipeline stage as its own `anchord` process, and the peers (anvil, the
//! TSA, the judicial simulator).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a process shows it is ready.
#[derive(Clone, Debug)]
pub enum Ready {
    /// `GET /readyz` on this admin port answers 200.
    Admin(u16),
    /// `GET` of this URL answers 2xx.
    Http(String),
    /// A JSON-RPC `eth_chainId` on this URL answers.
    JsonRpc(String),
    /// This TCP port accepts connections.
    Port(u16),
}

/// One process: its command line, environment and log, and the running
/// child if any. Logs are appended across restarts.
#[derive(Debug)]
pub struct Managed {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    pub ready: Ready,
    child: Option<Child>,
    pub starts: u32,
    pub kills: u32,
}

impl Managed {
    pub fn new(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
        logs: &Path,
        ready: Ready,
    ) -> Managed {
        Managed {
            name: name.to_owned(),
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            log: logs.join(format!("{name}.log")),
            ready,
            child: None,
            starts: 0,
            kills: 0,
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Start it (no-op when it runs).
    pub fn start(&mut self) -> Result<(), String> {
        if self.running() {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: log {}: {e}", self.name, self.log.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("{}: log: {e}", self.name))?;
        let mut c = Command::new(&self.program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ANCHORD_LOG", "info,librdkafka=warn")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let child = c
            .spawn()
            .map_err(|e| format!("{}: starting {}: {e}", self.name, self.program.display()))?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL it and reap it; true when it was running.
    pub fn kill(&mut self) -> bool {
        let was = self.running();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if was {
            self.kills += 1;
        }
        was
    }

    /// Whether the child is alive (an exited one is reaped and forgotten).
    pub fn running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The last lines of its log.
    pub fn tail(&self, n: usize) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Wait until it is ready; an exit on the way is an error with its log.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, secs: u64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if is_ready(http, &self.ready).await {
                return Ok(());
            }
            if !self.running() {
                return Err(format!(
                    "{} exited before it was ready; its log ends:\n{}",
                    self.name,
                    self.tail(30)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready within {secs} s; its log ends:\n{}",
                    self.name,
                    self.tail(30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One readiness probe.
pub async fn is_ready(http: &reqwest::Client, r: &Ready) -> bool {
    let timeout = Duration::from_secs(3);
    match r {
        Ready::Admin(port) => http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .timeout(timeout)
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200),
        Ready::Http(url) => http
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Ready::JsonRpc(url) => super::checks::rpc(http, url, "eth_chainId", serde_json::json!([]))
            .await
            .is_ok(),
        Ready::Port(port) => std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], *port)),
            timeout,
        )
        .is_ok(),
    }
}
