use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::LedgerError;

/// Where the ledger lives and how many connections to keep.
///
/// `Debug` never shows the password: configuration is logged at start-up.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A libpq-style URL, `postgres://user:password@host:port/dbname`.
    pub url: String,
    /// Upper bound of pooled connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long to wait for a new connection before giving up.
    #[serde(default = "default_connect_timeout", with = "secs")]
    pub connect_timeout: Duration,
    /// How long to wait for a free pooled connection.
    #[serde(default = "default_acquire_timeout", with = "secs")]
    pub acquire_timeout: Duration,
}

fn default_max_connections() -> usize {
    8
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_acquire_timeout() -> Duration {
    Duration::from_secs(30)
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?))
    }
}

impl DatabaseConfig {
    /// A configuration with defaults for everything but the URL.
    pub fn from_url(url: impl Into<String>) -> Self {
        DatabaseConfig {
            url: url.into(),
            max_connections: default_max_connections(),
            connect_timeout: default_connect_timeout(),
            acquire_timeout: default_acquire_timeout(),
        }
    }

    /// Check the URL parses, without connecting.
    pub fn validate(&self) -> Result<(), LedgerError> {
        self.pg_config().map(|_| ())
    }

    pub(crate) fn pg_config(&self) -> Result<tokio_postgres::Config, LedgerError> {
        let mut pg = tokio_postgres::Config::from_str(&self.url)
            .map_err(|e| LedgerError::Config(format!("database url {}: {e}", redact(&self.url))))?;
        if self.max_connections == 0 {
            return Err(LedgerError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        pg.connect_timeout(self.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("anchord");
        }
        Ok(pg)
    }

    /// The URL with any password replaced by `***`, fit for logs and errors.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// Replace the password of a `scheme://user:password@host` URL, and any
/// `password=` key of a key-value connection string.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@')
            && let Some((user, _)) = userinfo.split_once(':')
        {
            return format!("{scheme}://{user}:***@{host}");
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let c = DatabaseConfig::from_url("postgres://bank:s3cret@db.internal:5432/anchord");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("bank:***@db.internal"), "{shown}");
        assert_eq!(
            redact("host=x password=s3cret user=u"),
            "host=x password=*** user=u"
        );
        let bad = DatabaseConfig::from_url("postgres://u:s3cret@h:notaport/db");
        let err = bad.validate().unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn zero_connections_is_rejected() {
        let mut c = DatabaseConfig::from_url("postgres://u@h/db");
        c.max_connections = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_connections")
        );
    }
}
