//! `[batcher]` and `[witness]` configuration: typed, defaulted, validated
//! before anything starts, errors naming the key at fault.

use std::path::PathBuf;
use std::time::Duration;

use anchord_core::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, NoteVerifier, validate_origin};
use serde::Deserialize;

use crate::BatcherError;

/// The sealer (`[batcher]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatcherConfig {
    /// Seal as soon as this many entries are pending.
    #[serde(default = "default_block_max_entries")]
    pub block_max_entries: u64,
    /// Seal whatever is pending (never nothing) once this long has passed
    /// since the oldest pending entry was first seen.
    #[serde(default = "default_block_interval_ms")]
    pub block_interval_ms: u64,
    /// The block log's origin line (its identity for witnesses).
    #[serde(default = "default_origin")]
    pub origin: String,
    /// The sealer's private key file (`anchord keygen`); required to seal.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// The sealer's public key (vkey), for `anchord audit` on a machine
    /// without the private key. Derived from `signing_key` when absent.
    #[serde(default)]
    pub sealer_vkey: Option<String>,
    /// Witnesses asked to cosign each checkpoint.
    #[serde(default)]
    pub witnesses: Vec<WitnessPeer>,
    /// Cosignatures needed for finality; defaults to all witnesses. With no
    /// witnesses the sealer's own signature is final.
    #[serde(default)]
    pub quorum: Option<usize>,
    /// Per-request timeout towards a witness or the TSA.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Attempts per witness per checkpoint (with exponential backoff).
    #[serde(default = "default_witness_attempts")]
    pub witness_attempts: u32,
    /// RFC 3161 time-stamping authority URL (optional).
    #[serde(default)]
    pub tsa_url: Option<String>,
    /// The TSA's certificate (PEM or DER) that its tokens must be signed by.
    #[serde(default)]
    pub tsa_cert: Option<PathBuf>,
    /// How often a standby tries to take the lead.
    #[serde(default = "default_standby_poll_ms")]
    pub standby_poll_ms: u64,
}

/// One witness the sealer asks for cosignatures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessPeer {
    /// The witness's key name (as in its vkey).
    pub name: String,
    /// Submission prefix: `<url>/add-checkpoint` is posted to.
    pub url: String,
    /// The witness's cosignature/v1 verifier key.
    pub vkey: String,
}

fn default_block_max_entries() -> u64 {
    100_000
}
fn default_block_interval_ms() -> u64 {
    1000
}
fn default_origin() -> String {
    "anchord.local/ledger".into()
}
fn default_request_timeout_ms() -> u64 {
    5000
}
fn default_witness_attempts() -> u32 {
    3
}
fn default_standby_poll_ms() -> u64 {
    500
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            block_max_entries: default_block_max_entries(),
            block_interval_ms: default_block_interval_ms(),
            origin: default_origin(),
            signing_key: None,
            sealer_vkey: None,
            witnesses: Vec::new(),
            quorum: None,
            request_timeout_ms: default_request_timeout_ms(),
            witness_attempts: default_witness_attempts(),
            tsa_url: None,
            tsa_cert: None,
            standby_poll_ms: default_standby_poll_ms(),
        }
    }
}

fn invalid(key: &str, why: impl std::fmt::Display) -> BatcherError {
    BatcherError::Config(format!("batcher.{key}: {why}"))
}

impl BatcherConfig {
    /// Everything that can be checked without reading files.
    pub fn validate(&self) -> Result<(), BatcherError> {
        if self.block_max_entries == 0 || self.block_max_entries > 10_000_000 {
            return Err(invalid("block_max_entries", "must be 1 to 10,000,000"));
        }
        if self.block_interval_ms == 0 {
            return Err(invalid("block_interval_ms", "must be at least 1"));
        }
        validate_origin(&self.origin).map_err(|e| invalid("origin", e))?;
        if self.request_timeout_ms == 0 {
            return Err(invalid("request_timeout_ms", "must be at least 1"));
        }
        if self.witness_attempts == 0 {
            return Err(invalid("witness_attempts", "must be at least 1"));
        }
        if self.standby_poll_ms == 0 {
            return Err(invalid("standby_poll_ms", "must be at least 1"));
        }
        if let Some(v) = &self.sealer_vkey {
            let v = NoteVerifier::parse(v).map_err(|e| invalid("sealer_vkey", e))?;
            if v.alg != ALG_ED25519 {
                return Err(invalid("sealer_vkey", "must be an Ed25519 (0x01) note key"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, w) in self.witnesses.iter().enumerate() {
            let key = format!("witnesses[{i}]");
            let v = NoteVerifier::parse(&w.vkey).map_err(|e| invalid(&format!("{key}.vkey"), e))?;
            if v.alg != ALG_COSIGNATURE_V1 {
                return Err(invalid(
                    &format!("{key}.vkey"),
                    "must be a cosignature/v1 (0x04) key",
                ));
            }
            if v.name != w.name {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("{:?} differs from the vkey's name {:?}", w.name, v.name),
                ));
            }
            if !names.insert(w.name.clone()) {
                return Err(invalid(&format!("{key}.name"), "duplicate witness name"));
            }
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(invalid(&format!("{key}.url"), "must be an http(s) URL"));
            }
        }
        match (self.quorum, self.witnesses.len()) {
            (Some(q), 0) if q > 0 => {
                return Err(invalid("quorum", "set, but no witnesses are configured"));
            }
            (Some(q), n) if n > 0 && (q == 0 || q > n) => {
                return Err(invalid(
                    "quorum",
                    format!("must be 1 to {n} (the witnesses)"),
                ));
            }
            _ => {}
        }
        match (&self.tsa_url, &self.tsa_cert) {
            (Some(_), None) => return Err(invalid("tsa_cert", "required when tsa_url is set")),
            (None, Some(_)) => return Err(invalid("tsa_url", "required when tsa_cert is set")),
            _ => {}
        }
        Ok(())
    }

    /// The number of cosignatures that makes a checkpoint final (0: none
    /// needed).
    pub fn effective_quorum(&self) -> usize {
        if self.witnesses.is_empty() {
            0
        } else {
            self.quorum.unwrap_or(self.witnesses.len())
        }
    }

    /// The witnesses' verifier keys (call after [`validate`](Self::validate)).
    pub fn witness_verifiers(&self) -> Result<Vec<NoteVerifier>, BatcherError> {
        self.witnesses
            .iter()
            .enumerate()
            .map(|(i, w)| {
                NoteVerifier::parse(&w.vkey)
                    .map_err(|e| invalid(&format!("witnesses[{i}].vkey"), e))
            })
            .collect()
    }

    pub fn block_interval(&self) -> Duration {
        Duration::from_millis(self.block_interval_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn standby_poll(&self) -> Duration {
        Duration::from_millis(self.standby_poll_ms)
    }
}

/// The witness service (`[witness]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Where `POST /add-checkpoint` is served.
    #[serde(default = "default_witness_listen")]
    pub listen: std::net::SocketAddr,
    /// The witness's cosignature key file (`anchord keygen --witness`).
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// The logs this witness cosigns.
    #[serde(default)]
    pub logs: Vec<WitnessedLog>,
}

/// A log a witness follows: its origin and the keys trusted to sign it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLog {
    pub origin: String,
    /// The log's tree hash suite (for checking consistency proofs).
    #[serde(default = "default_log_suite")]
    pub hash_suite: anchord_core::HashSuite,
    /// Ed25519 (0x01) vkeys; a checkpoint needs a valid signature by one.
    pub vkeys: Vec<String>,
}

fn default_log_suite() -> anchord_core::HashSuite {
    anchord_core::HashSuite::Sha256
}

fn default_witness_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 7380))
}

impl Default for WitnessConfig {
    fn default() -> Self {
        WitnessConfig {
            listen: default_witness_listen(),
            signing_key: None,
            logs: Vec::new(),
        }
    }
}

impl WitnessConfig {
    pub fn validate(&self) -> Result<(), BatcherError> {
        let bad = |k: String, why: String| BatcherError::Config(format!("witness.{k}: {why}"));
        let mut origins = std::collections::HashSet::new();
        for (i, l) in self.logs.iter().enumerate() {
            validate_origin(&l.origin)
                .map_err(|e| bad(format!("logs[{i}].origin"), e.to_string()))?;
            if !origins.insert(&l.origin) {
                return Err(bad(format!("logs[{i}].origin"), "duplicate origin".into()));
            }
            if l.vkeys.is_empty() {
                return Err(bad(
                    format!("logs[{i}].vkeys"),
                    "at least one key is needed".into(),
                ));
            }
            for (j, k) in l.vkeys.iter().enumerate() {
                let v = NoteVerifier::parse(k)
                    .map_err(|e| bad(format!("logs[{i}].vkeys[{j}]"), e.to_string()))?;
                if v.alg != ALG_ED25519 {
                    return Err(bad(
                        format!("logs[{i}].vkeys[{j}]"),
                        "must be an Ed25519 (0x01) note key".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchord_core::checkpoint::NoteSigner;

    fn witness_vkey(name: &str) -> String {
        NoteSigner::from_seed(name, ALG_COSIGNATURE_V1, &[1; 32])
            .unwrap()
            .verifier()
            .vkey()
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c: BatcherConfig = toml::from_str("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.block_max_entries, 100_000);
        assert_eq!(c.block_interval_ms, 1000);
        assert_eq!(c.origin, "anchord.local/ledger");
        assert_eq!(c.effective_quorum(), 0);
    }

    #[test]
    fn errors_name_the_key() {
        let err = |toml: &str| {
            let c: BatcherConfig = toml::from_str(toml).unwrap();
            c.validate().unwrap_err().to_string()
        };
        assert!(err("block_max_entries = 0").contains("batcher.block_max_entries"));
        assert!(err("block_interval_ms = 0").contains("batcher.block_interval_ms"));
        assert!(err("origin = \"\"").contains("batcher.origin"));
        assert!(err("quorum = 1").contains("batcher.quorum"));
        assert!(err("tsa_url = \"http://x\"").contains("batcher.tsa_cert"));
        let w = witness_vkey("w1");
        let one =
            format!("[[witnesses]]\nname = \"w1\"\nurl = \"http://127.0.0.1:1\"\nvkey = \"{w}\"\n");
        assert!(err(&format!("quorum = 2\n{one}")).contains("batcher.quorum"));
        assert!(err(&one.replace("name = \"w1\"", "name = \"w2\"")).contains("witnesses[0].name"));
        let c: BatcherConfig = toml::from_str(&one).unwrap();
        c.validate().unwrap();
        assert_eq!(c.effective_quorum(), 1);
        let bad = toml::from_str::<BatcherConfig>("block_max_entrys = 3")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("block_max_entrys"), "{bad}");
    }
}
