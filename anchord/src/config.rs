//! One TOML configuration file for every stage, each key overridable from the
//! environment, validated before any port is bound.
//!
//! Environment overrides: `ANCHORD__<SECTION>__<KEY>=value` (double
//! underscores separate the path; names are lower-cased), e.g.
//! `ANCHORD__DATABASE__URL=postgres://…` or `ANCHORD__INGEST__BATCH_MAX=5000`.
//! Values are read as TOML when they parse as such (numbers, booleans,
//! arrays), otherwise as strings. `DATABASE_URL` and `KAFKA_BROKERS` are also
//! honoured, as the conventional names.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use anchord_core::HashSuite;
use anchord_ledger::DatabaseConfig;

/// The whole configuration. See `anchord.example.toml` for every key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The deployment's tree hash suite: "sha256" (default) or "sm3".
    #[serde(default = "default_suite")]
    pub hash_suite: HashSuite,
    pub database: DatabaseConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub ingest: anchord_ingest::IngestConfig,
    #[serde(default)]
    pub batcher: anchord_batcher::BatcherConfig,
    #[serde(default)]
    pub witness: anchord_batcher::WitnessConfig,
    #[serde(default)]
    pub relay: anchord_relay::RelayConfig,
    #[serde(default)]
    pub verifier: anchord_verifier::VerifierConfig,
    #[serde(default)]
    pub workflow: anchord_workflow::WorkflowConfig,
}

fn default_suite() -> HashSuite {
    HashSuite::Sha256
}

/// The admin HTTP listener: metrics, liveness, readiness.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: std::net::SocketAddr,
    /// Free bytes at or below which a data directory the service writes
    /// (the workflow's `storage_dir`) counts as low on space
    /// (`anchord_admin_disk_low_free_bytes`, alert `AnchordDiskFilling`);
    /// default 15% of its file system's size.
    #[serde(default)]
    pub disk_low_free_bytes: Option<u64>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            disk_low_free_bytes: None,
        }
    }
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Config {
    /// Read the file (if any), apply the environment, parse and validate.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let mut doc: toml::Table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading configuration {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing configuration {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut doc, std::env::vars())?;
        let config: Config = toml::Value::Table(doc)
            .try_into()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        self.database.validate().context("database.url")?;
        self.ingest.validate().context("ingest")?;
        self.batcher.validate()?;
        self.witness.validate()?;
        self.relay.validate()?;
        self.verifier.validate()?;
        self.workflow
            .validate()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// Fold `ANCHORD__A__B=v` (and the two conventional names) into the table.
pub fn apply_env(
    doc: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<()> {
    let mut vars: Vec<(String, String)> = vars.collect();
    vars.sort();
    for (k, v) in vars {
        let path: Vec<String> = match k.as_str() {
            "DATABASE_URL" => vec!["database".into(), "url".into()],
            "KAFKA_BROKERS" => vec!["ingest".into(), "brokers".into()],
            _ => match k.strip_prefix("ANCHORD__") {
                Some(rest) => rest.split("__").map(str::to_lowercase).collect(),
                None => continue,
            },
        };
        if path.iter().any(String::is_empty) {
            bail!("environment variable {k}: empty path segment");
        }
        let value = parse_env_value(&v);
        let (last, parents) = path.split_last().expect("path has at least one segment");
        let mut table = &mut *doc;
        for p in parents {
            let entry = table
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => bail!("environment variable {k}: {p} is not a table"),
            };
        }
        table.insert(last.clone(), value);
    }
    Ok(())
}

fn parse_env_value(v: &str) -> toml::Value {
    // `x = <v>` parses for numbers, booleans, arrays and quoted strings;
    // anything else (a URL, a bare word) is a string.
    match toml::from_str::<toml::Table>(&format!("x = {v}")) {
        Ok(mut t) => t
            .remove("x")
            .unwrap_or_else(|| toml::Value::String(v.to_owned())),
        Err(_) => toml::Value::String(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_nest_and_type_values() {
        let mut doc: toml::Table = toml::from_str("[database]\nurl = \"postgres://file\"").unwrap();
        apply_env(
            &mut doc,
            vec![
                ("ANCHORD__INGEST__BATCH_MAX".to_string(), "5000".to_string()),
                (
                    "ANCHORD__INGEST__TENANTS".to_string(),
                    "[\"a\", \"b\"]".to_string(),
                ),
                ("DATABASE_URL".to_string(), "postgres://env/db".to_string()),
                ("UNRELATED".to_string(), "x".to_string()),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(doc["database"]["url"].as_str(), Some("postgres://env/db"));
        assert_eq!(doc["ingest"]["batch_max"].as_integer(), Some(5000));
        assert_eq!(doc["ingest"]["tenants"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn the_reference_configuration_parses_with_every_key_uncommented() {
        let text = include_str!("../../anchord.example.toml");
        let parsed: Config = toml::from_str(text).expect("anchord.example.toml parses as is");
        parsed.validate().unwrap();
        // Uncommenting every `# key = value` line must still parse: the
        // reference cannot document a key the code does not know.
        let mut uncommented = String::new();
        let mut in_array = false;
        for line in text.lines() {
            let body = line.trim_start().strip_prefix("# ").unwrap_or("");
            let is_key = body.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            });
            // A commented-out section header (`# [workflow.smtp]  # ...`)
            // opens its table, so its keys do not land in the one above.
            let header = body.split("  #").next().unwrap_or(body).trim_end();
            let is_header = header.len() > 2
                && header.starts_with('[')
                && header.ends_with(']')
                && header[1..header.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
            if is_header && !in_array {
                uncommented.push_str(header);
            } else if is_key || (in_array && !body.is_empty()) {
                // Drop a trailing explanation, keep the code.
                let code = body.split("  #").next().unwrap_or(body).trim_end();
                in_array = code.ends_with('[') || (in_array && code != "]");
                uncommented.push_str(code);
            } else {
                uncommented.push_str(line);
            }
            uncommented.push('\n');
        }
        let uncommented = toml::from_str::<Config>(&uncommented);
        assert!(
            uncommented.is_ok(),
            "uncommented reference fails: {:?}",
            uncommented.err()
        );
        // The verifier's section documents its defaults: a default changed
        // in the code is changed in the reference too (a tuning default an
        // operator reads there and copies is the one they get).
        assert_eq!(
            format!("{:?}", uncommented.expect("parsed").verifier),
            format!("{:?}", anchord_verifier::VerifierConfig::default()),
            "anchord.example.toml's [verifier] values differ from VerifierConfig::default()"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let doc: toml::Table =
            toml::from_str("[database]\nurl = \"postgres://x/y\"\nmax_conections = 3").unwrap();
        let err = toml::Value::Table(doc)
            .try_into::<Config>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_conections"), "{err}");
    }
}
