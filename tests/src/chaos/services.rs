//! The suite's own PostgreSQL and broker, through `scripts/services` with
//! their own data directory and ports (so restarting them never disturbs
//! another test), the broker on sqlite storage (it must keep messages and
//! group offsets across restarts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The repository's `scripts/services` (`ANCHORD_SERVICES_SCRIPT`: another
/// copy, e.g. an older one to show a regression test failing on it).
pub fn script() -> PathBuf {
    std::env::var_os("ANCHORD_SERVICES_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services"))
}

/// Make this process the reaper of its orphaned descendants (the postmaster
/// and the broker that `scripts/services` starts and leaves behind), so that
/// stopping them leaves no zombie even where PID 1 does not reap orphans.
/// [`reap`] collects them once stopped.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!(
            "chaos: cannot become a child subreaper ({e}); stopped services may stay defunct"
        );
    }
}

/// Reap `pid` if it is our (adopted) child and has exited; waits up to 3 s.
pub fn reap(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            _ => return, // reaped, or not our child
        }
        if Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private PostgreSQL + broker pair.
#[derive(Debug)]
pub struct Services {
    pub dir: PathBuf,
    pub pg_port: u16,
    pub kafka_port: u16,
    pub storage: &'static str,
    torn_down: bool,
}

impl Services {
    /// Start both (initialising the cluster on first use).
    pub fn up(dir: &Path, storage: &'static str) -> Result<Services, String> {
        Services::up_only(dir, storage, "all")
    }

    /// Start `which`: `postgres`, `kafka` or `all`.
    pub fn up_only(dir: &Path, storage: &'static str, which: &str) -> Result<Services, String> {
        let s = Services {
            dir: dir.to_owned(),
            pg_port: anchord_testkit::process::free_port(),
            kafka_port: anchord_testkit::process::free_port(),
            storage,
            torn_down: false,
        };
        s.run(&["up", which])?;
        Ok(s)
    }

    /// `scripts/services ARGS` with this instance's environment, from a
    /// working directory that is neither the repository nor `/`.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Result<String, String> {
        let pids = if matches!(args.first(), Some(&"down") | Some(&"reset")) {
            self.pids()
        } else {
            Vec::new()
        };
        let mut c = Command::new(script());
        c.args(args)
            .current_dir(std::env::temp_dir())
            .env("ANCHORD_DEV_DIR", &self.dir)
            .env("ANCHORD_PG_PORT", self.pg_port.to_string())
            .env("ANCHORD_KAFKA_PORT", self.kafka_port.to_string())
            .env("ANCHORD_KAFKA_STORAGE", self.storage);
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = c
            .output()
            .map_err(|e| format!("running scripts/services {args:?}: {e}"))?;
        for (_, pid) in pids {
            reap(pid);
        }
        if !out.status.success() {
            return Err(format!(
                "scripts/services {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// (service, pid) of what runs now.
    pub fn pids(&self) -> Vec<(String, i32)> {
        let mut c = Command::new(script());
        c.arg("pids")
            .env("ANCHORD_DEV_DIR", &self.dir)
            .env("ANCHORD_PG_PORT", self.pg_port.to_string())
            .env("ANCHORD_KAFKA_PORT", self.kafka_port.to_string())
            .env("ANCHORD_KAFKA_STORAGE", self.storage);
        let Ok(out) = c.output() else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_owned(), v.trim().parse().ok()?))
            })
            .collect()
    }

    /// Admin URL (database `postgres`).
    pub fn admin_url(&self) -> String {
        self.db_url("postgres")
    }

    pub fn db_url(&self, db: &str) -> String {
        format!("postgres://anchord@127.0.0.1:{}/{db}", self.pg_port)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// Stop PostgreSQL (immediate: as a crash; else fast) and start it again.
    pub fn restart_postgres(&self, immediate: bool) -> Result<(), String> {
        let mode = if immediate { "immediate" } else { "fast" };
        self.run_env(&["down", "postgres"], &[("ANCHORD_PG_STOP_MODE", mode)])?;
        self.run(&["up", "postgres"]).map(drop)
    }

    /// Stop the broker and start it again on the same storage.
    pub fn restart_kafka(&self) -> Result<(), String> {
        self.run(&["down", "kafka"])?;
        self.run(&["up", "kafka"]).map(drop)
    }

    /// Copy the broker's and PostgreSQL's logs into `to` (before a reset
    /// deletes them).
    pub fn save_logs(&self, to: &Path) {
        let _ = std::fs::copy(self.dir.join("kafka/tansu.log"), to.join("tansu.log"));
        if let Ok(status) = self.run(&["status"])
            && let Some(data) = status
                .lines()
                .find_map(|l| l.split("(data ").nth(1)?.strip_suffix(')'))
            && let Some(pg_dir) = Path::new(data).parent()
        {
            let _ = std::fs::copy(pg_dir.join("postgres.log"), to.join("postgres.log"));
        }
    }

    /// Stop both and delete their data.
    pub fn reset(&mut self) {
        if !self.torn_down {
            self.torn_down = true;
            let _ = self.run(&["reset"]);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.reset();
    }
}

/// Create `db` on the admin connection (idempotent).
pub async fn create_database(admin_url: &str, db: &str) -> Result<(), String> {
    let client = connect(admin_url).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .map_err(|e| format!("CREATE DATABASE {db}: {e}"))?;
    }
    Ok(())
}

/// A plain client (its connection task spawned).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .map_err(|_| format!("connecting to {url}: timed out"))?
    .map_err(|e| format!("connecting to {url}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
