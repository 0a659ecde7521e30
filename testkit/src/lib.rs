//! Test harness on real services.
//!
//! Every test gets its own PostgreSQL database (created here, dropped when the
//! handle drops) and its own Kafka topics, on the services that
//! `scripts/services up` starts. Nothing here skips: a missing service is a
//! loud failure that says how to start it.

use std::time::Duration;

use anchord_ledger::{DatabaseConfig, Ledger};
use rand::Rng;

pub mod chaos;
pub mod evidence;
pub mod kafka;
pub mod metrics_spec;
pub mod process;
pub mod tsa;

/// Admin URL of the test PostgreSQL (a superuser; any database).
pub const PG_URL_VAR: &str = "ANCHORD_TEST_DATABASE_URL";
/// The dev services' PostgreSQL, used when the variable is unset.
pub const DEFAULT_PG_URL: &str = "postgres://anchord@127.0.0.1:56432/postgres";

const HOW_TO_START: &str =
    "start the test services with `scripts/services up` (the README's test command does this)";

/// A short random suffix for database, topic and group names.
pub fn unique(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}_{n:016x}")
}

/// A private database, dropped (with FORCE) when this handle drops.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    admin_url: String,
    url: String,
}

impl TestDb {
    /// Create a fresh, empty database. Panics with instructions when
    /// PostgreSQL is unreachable.
    pub async fn new() -> TestDb {
        let admin_url = std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let name = unique("anchord_test");
        let client = admin_client(&admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        TestDb {
            name,
            admin_url,
            url,
        }
    }

    /// A fresh database with the ledger schema applied.
    pub async fn migrated() -> (TestDb, Ledger) {
        let db = TestDb::new().await;
        let ledger = db.ledger();
        ledger
            .migrate()
            .await
            .expect("migrations apply to an empty database");
        (db, ledger)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig::from_url(&self.url)
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::connect(&self.config()).expect("test database config is valid")
    }

    /// A plain client on this database, for tests that inspect or tamper
    /// with rows directly.
    pub async fn client(&self) -> tokio_postgres::Client {
        admin_client(&self.url).await
    }

    /// Set `ledger_meta.evidence_partition_size` (tests use small
    /// partitions to cross their boundaries with few entries).
    pub async fn set_partition_size(&self, size: u64) {
        self.client()
            .await
            .execute(
                "UPDATE ledger_meta SET value = $1 WHERE key = 'evidence_partition_size'",
                &[&size.to_string()],
            )
            .await
            .expect("setting evidence_partition_size");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime; use a thread with its own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok((c, conn)) =
                        tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = c
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let connect = tokio_postgres::connect(url, tokio_postgres::NoTls);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((client, conn))) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        }
        Ok(Err(e)) => panic!(
            "PostgreSQL is not reachable at {url} ({e}); {HOW_TO_START}, or set {PG_URL_VAR}"
        ),
        Err(_) => panic!(
            "PostgreSQL did not answer at {url} within 10 s; {HOW_TO_START}, or set {PG_URL_VAR}"
        ),
    }
}

/// Replace the database name of a `postgres://…/db` URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Poll `f` every 20 ms until it holds; panic naming `what` after `secs`.
pub async fn wait_for<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// A 2048-bit RSA key pair made with the `openssl` CLI (the key a bank's
/// platform account signs judicial-gateway requests with): the private key
/// `judicial.pem` and public key `judicial.pub.pem` in `dir`.
pub fn rsa_keypair(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("judicial.pem");
    let public = dir.join("judicial.pub.pem");
    let run = |args: &[&std::ffi::OsStr]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl is installed (Debian package openssl)")
            .success();
        assert!(ok, "openssl {args:?} failed");
    };
    run(&[
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "RSA".as_ref(),
        "-pkeyopt".as_ref(),
        "rsa_keygen_bits:2048".as_ref(),
        "-out".as_ref(),
        key.as_os_str(),
    ]);
    run(&[
        "pkey".as_ref(),
        "-pubout".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        public.as_os_str(),
    ]);
    (key, public)
}

/// A benchmark's database: a fresh migrated one (dropped with the returned
/// [`TestDb`]), or the database named by ANCHORD_BENCH_DB, created when
/// missing, migrated and kept (None). Used by `bench/proofs` and
/// `bench/scale`, which hand a loaded ledger from one to the other.
pub async fn bench_database() -> (Option<TestDb>, String) {
    let Ok(name) = std::env::var("ANCHORD_BENCH_DB") else {
        let (db, _) = TestDb::migrated().await;
        let url = db.url().to_owned();
        return (Some(db), url);
    };
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "ANCHORD_BENCH_DB: letters, digits and _ only"
    );
    let admin = std::env::var(PG_URL_VAR).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{admin}: {e}"));
    tokio::spawn(conn);
    let exists = c
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("pg_database")
        .is_some();
    if !exists {
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the kept database");
    }
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("{admin}: not a postgres:// URL"),
    };
    let ledger = Ledger::connect(&DatabaseConfig::from_url(&url)).expect("ledger");
    ledger.migrate().await.expect("migrate the kept database");
    (None, url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_database_replaces_only_the_name() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://a@h:1/postgres", "x"),
            "postgres://a@h:1/x"
        );
        assert_eq!(with_database("postgres://a@h:1", "x"), "postgres://a@h:1/x");
        assert_eq!(
            with_database("postgres://a@h/postgres?sslmode=disable", "x"),
            "postgres://a@h/x?sslmode=disable"
        );
    }
}
