//! `[relay]` configuration: typed, defaulted, validated before anything
//! starts; errors name the key at fault (`relay.targets[1].rpc_url`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::RelayError;

/// The relay (`[relay]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Where to anchor. Empty: the relay has nothing to do (and says so).
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// How often to look for new final checkpoints and due jobs.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// How long a claimed job stays leased to this instance; another
    /// instance takes it over (asking the target first) after that.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Retry backoff: first delay, cap, and jitter (0..1, the `backoff`
    /// crate's randomisation factor).
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    #[serde(default = "default_backoff_jitter")]
    pub backoff_jitter: f64,
    /// Circuit breaker: consecutive failures that open it, and how long it
    /// stays open (doubling on each failed probe, up to the max).
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    #[serde(default = "default_breaker_open_max_ms")]
    pub breaker_open_max_ms: u64,
    /// Finality policy per target name (`[relay.finality.<target>]`);
    /// targets not listed get the defaults of [`FinalityConfig`].
    #[serde(default)]
    pub finality: std::collections::BTreeMap<String, FinalityConfig>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            targets: Vec::new(),
            poll_ms: default_poll_ms(),
            lease_ms: default_lease_ms(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            backoff_jitter: default_backoff_jitter(),
            breaker_failures: default_breaker_failures(),
            breaker_open_ms: default_breaker_open_ms(),
            breaker_open_max_ms: default_breaker_open_max_ms(),
            finality: Default::default(),
        }
    }
}

/// Which kind of chain a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// An HTTPS + JSON judicial-chain gateway (`docs/judicial-gateway-v1.md`).
    Judicial,
    /// An Ethereum-compatible chain over JSON-RPC.
    Evm,
}

/// One anchoring target (`[[relay.targets]]`). Keys that do not apply to
/// the kind are rejected by [`RelayConfig::validate`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name used in the database, metrics and the CLI (a bounded label:
    /// `[a-z0-9-]`, 1..32 characters). Never change it once anchors exist.
    pub name: String,
    pub kind: TargetKind,
    /// Per-request timeout.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How often a submitted, unconfirmed transaction is looked up.
    #[serde(default = "default_confirm_poll_ms")]
    pub confirm_poll_ms: u64,

    // -- judicial --
    /// Gateway base URL (`…/v1/anchors` is posted to).
    #[serde(default)]
    pub url: Option<String>,
    /// The platform's account id at the gateway.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Judicial: RSA private key (PKCS#8 PEM) signing requests.
    /// EVM: file holding the hex secp256k1 private key.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,

    // -- evm --
    /// JSON-RPC endpoint.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// Expected chain id (checked against the node at start).
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Finality policy, part 1: blocks on top of the inclusion block
    /// (included) before an anchor is recorded (default 1).
    #[serde(default)]
    pub confirmations: Option<u64>,
    /// Recipient of the anchoring transactions (default: the sender itself).
    #[serde(default)]
    pub to: Option<String>,
}

impl TargetConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The HTTP client for this target's endpoint `url`: connects only to
    /// that host at that port (loopback or private is fine: the operator
    /// configured it) or to public addresses, never to a metadata address, follows no
    /// redirect and uses no environment proxy (anchord-egress).
    pub fn http_client(&self, url: &str) -> Result<reqwest::Client, crate::RelayError> {
        let err = |e: String| {
            crate::RelayError::Config(format!("relay.targets ({}): HTTP client: {e}", self.name))
        };
        anchord_egress::Policy::pinned_client(
            &[url],
            &format!("relay.targets ({}) endpoint", self.name),
            self.request_timeout(),
            self.request_timeout(),
        )
        .map_err(err)
    }

    /// Confirmations before an anchor is recorded.
    pub fn record_confirmations(&self) -> u64 {
        self.confirmations.unwrap_or(1).max(1)
    }
}

/// A target's finality policy (`[relay.finality.<target>]`; every key
/// optional). Part 1 is the target's own `confirmations` (blocks, the
/// inclusion block included, before an anchor is recorded; default 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalityConfig {
    /// Confirmations after which a recorded anchor is final and no longer
    /// re-verified block by block (a chain reset is still detected).
    /// Default: EVM max(confirmations, 12); judicial 1 (a consortium chain
    /// is final at inclusion).
    #[serde(default)]
    pub final_confirmations: Option<u64>,
    /// How often recorded anchors are looked at again on the chain: the
    /// chain's identity (a reset shows as another genesis block) and, by
    /// block hash, up to `reverify_batch` receipts that are not final yet.
    /// A lost anchor is marked lost and anchored again.
    #[serde(default = "default_reverify_ms")]
    pub reverify_ms: u64,
    #[serde(default = "default_reverify_batch")]
    pub reverify_batch: u32,
}

impl Default for FinalityConfig {
    fn default() -> Self {
        FinalityConfig {
            final_confirmations: None,
            reverify_ms: default_reverify_ms(),
            reverify_batch: default_reverify_batch(),
        }
    }
}

/// The finality policy in force for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finality {
    /// Confirmations before an anchor is recorded.
    pub record_depth: u64,
    /// Confirmations after which it is final.
    pub final_depth: u64,
    pub reverify: Duration,
    pub reverify_batch: u32,
}

fn default_poll_ms() -> u64 {
    500
}
fn default_lease_ms() -> u64 {
    30_000
}
fn default_backoff_initial_ms() -> u64 {
    200
}
fn default_backoff_max_ms() -> u64 {
    5_000
}
fn default_backoff_jitter() -> f64 {
    0.5
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    500
}
fn default_breaker_open_max_ms() -> u64 {
    2_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_confirm_poll_ms() -> u64 {
    1_000
}
fn default_reverify_ms() -> u64 {
    30_000
}
fn default_reverify_batch() -> u32 {
    100
}

/// A key name and whether it is set.
type KeyPresence<'a> = (&'a str, bool);

/// Valid target names: bounded metric label values and CLI arguments.
pub fn valid_target_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl RelayConfig {
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    /// The finality policy of target `t`.
    pub fn finality_of(&self, t: &TargetConfig) -> Finality {
        let f = self.finality.get(&t.name).cloned().unwrap_or_default();
        let record_depth = t.record_confirmations();
        let default = match t.kind {
            TargetKind::Evm => record_depth.max(12),
            TargetKind::Judicial => 1,
        };
        Finality {
            record_depth,
            final_depth: f.final_confirmations.unwrap_or(default).max(record_depth),
            reverify: Duration::from_millis(f.reverify_ms),
            reverify_batch: f.reverify_batch,
        }
    }

    /// Cross-field checks, naming the key at fault.
    pub fn validate(&self) -> Result<(), RelayError> {
        let bad = |k: String, why: &str| Err(RelayError::Config(format!("{k}: {why}")));
        if self.poll_ms == 0 {
            return bad("relay.poll_ms".into(), "must be > 0");
        }
        if self.lease_ms < 1_000 {
            return bad("relay.lease_ms".into(), "must be at least 1000");
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return bad(
                "relay.backoff_max_ms".into(),
                "must be >= relay.backoff_initial_ms > 0",
            );
        }
        if !(0.0..1.0).contains(&self.backoff_jitter) {
            return bad("relay.backoff_jitter".into(), "must be in [0, 1)");
        }
        if self.breaker_failures == 0 {
            return bad("relay.breaker_failures".into(), "must be > 0");
        }
        if self.breaker_open_ms == 0 || self.breaker_open_max_ms < self.breaker_open_ms {
            return bad(
                "relay.breaker_open_max_ms".into(),
                "must be >= relay.breaker_open_ms > 0",
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let key = |k: &str| format!("relay.targets[{i}].{k}");
            if !valid_target_name(&t.name) {
                return bad(key("name"), "1..32 characters from [a-z0-9-]");
            }
            if !seen.insert(&t.name) {
                return bad(key("name"), &format!("duplicate target name {:?}", t.name));
            }
            if t.request_timeout_ms == 0 {
                return bad(key("request_timeout_ms"), "must be > 0");
            }
            if t.lease_ms_ok(self.lease_ms).is_err() {
                return bad(
                    key("request_timeout_ms"),
                    "must be shorter than relay.lease_ms",
                );
            }
            let (required, forbidden): (&[KeyPresence], &[KeyPresence]) = match t.kind {
                TargetKind::Judicial => (
                    &[
                        ("url", t.url.is_some()),
                        ("account_id", t.account_id.is_some()),
                        ("signing_key", t.signing_key.is_some()),
                    ],
                    &[
                        ("rpc_url", t.rpc_url.is_some()),
                        ("chain_id", t.chain_id.is_some()),
                        ("confirmations", t.confirmations.is_some()),
                        ("to", t.to.is_some()),
                    ],
                ),
                TargetKind::Evm => (
                    &[
                        ("rpc_url", t.rpc_url.is_some()),
                        ("chain_id", t.chain_id.is_some()),
                        ("signing_key", t.signing_key.is_some()),
                    ],
                    &[
                        ("url", t.url.is_some()),
                        ("account_id", t.account_id.is_some()),
                    ],
                ),
            };
            for (k, present) in required {
                if !present {
                    return bad(key(k), &format!("required for kind {:?}", t.kind));
                }
            }
            for (k, present) in forbidden {
                if *present {
                    return bad(key(k), &format!("does not apply to kind {:?}", t.kind));
                }
            }
            for (k, u) in [("url", &t.url), ("rpc_url", &t.rpc_url)] {
                if let Some(u) = u
                    && reqwest::Url::parse(u)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .is_none()
                {
                    return bad(key(k), "not an http(s) URL");
                }
            }
            if let Some(a) = &t.account_id
                && !(1..=128).contains(&a.len())
            {
                return bad(key("account_id"), "1..128 bytes");
            }
        }
        for (name, f) in &self.finality {
            let key = |k: &str| format!("relay.finality.{name}.{k}");
            let Some(t) = self.targets.iter().find(|t| &t.name == name) else {
                return bad(
                    format!("relay.finality.{name}"),
                    "no target of that name in relay.targets",
                );
            };
            if f.reverify_ms == 0 {
                return bad(key("reverify_ms"), "must be > 0");
            }
            if !(1..=10_000).contains(&f.reverify_batch) {
                return bad(key("reverify_batch"), "must be in 1..=10000");
            }
            if let Some(fc) = f.final_confirmations
                && fc < t.record_confirmations()
            {
                return bad(
                    key("final_confirmations"),
                    "must be >= the target's confirmations (an anchor is recorded before it is final)",
                );
            }
        }
        Ok(())
    }
}

impl TargetConfig {
    fn lease_ms_ok(&self, lease_ms: u64) -> Result<(), ()> {
        if self.request_timeout_ms < lease_ms {
            Ok(())
        } else {
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(s: &str) -> Result<RelayConfig, String> {
        let c: RelayConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// A target's endpoint that redirects (to the metadata service, or
    /// anywhere) is not followed: the relay sees the 3xx and fails the
    /// attempt. reqwest's default client followed up to ten redirects.
    #[tokio::test]
    async fn target_clients_follow_no_redirect() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_port = other.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = other.accept().await {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let gw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", gw.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = gw.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let r = format!(
                    "HTTP/1.1 302 Found\r\nlocation: http://localhost:{other_port}/\r\ncontent-length: 0\r\n\r\n"
                );
                let _ = s.write_all(r.as_bytes()).await;
            }
        });
        let c = parse(&format!(
            "[[targets]]\nname = \"hz\"\nkind = \"judicial\"\nurl = \"{url}\"\naccount_id = \"b\"\nsigning_key = \"k.pem\"\n"
        ))
        .unwrap();
        let t = &c.targets[0];
        let http = t.http_client(&url).unwrap();
        let resp = http.get(format!("{url}/v1/chain")).send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn judicial_and_evm_targets_parse() {
        let c = parse(
            r#"
            poll_ms = 100
            [[targets]]
            name = "hz-court"
            kind = "judicial"
            url = "http://127.0.0.1:1"
            account_id = "bank"
            signing_key = "k.pem"
            [[targets]]
            name = "eth"
            kind = "evm"
            rpc_url = "http://127.0.0.1:2"
            chain_id = 31337
            signing_key = "k.hex"
            confirmations = 2
            "#,
        )
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.targets[1].kind, TargetKind::Evm);
    }

    #[test]
    fn finality_is_per_target_with_defaults_by_kind() {
        let c = parse(
            r#"
            [[targets]]
            name = "hz-court"
            kind = "judicial"
            url = "http://127.0.0.1:1"
            account_id = "bank"
            signing_key = "k.pem"
            [[targets]]
            name = "eth"
            kind = "evm"
            rpc_url = "http://127.0.0.1:2"
            chain_id = 31337
            signing_key = "k.hex"
            confirmations = 3
            [[targets]]
            name = "eth2"
            kind = "evm"
            rpc_url = "http://127.0.0.1:3"
            chain_id = 1
            signing_key = "k.hex"
            [finality.eth]
            final_confirmations = 30
            reverify_ms = 1000
            "#,
        )
        .unwrap();
        let f = |i: usize| c.finality_of(&c.targets[i]);
        assert_eq!((f(0).record_depth, f(0).final_depth), (1, 1));
        assert_eq!((f(1).record_depth, f(1).final_depth), (3, 30));
        assert_eq!(f(1).reverify, Duration::from_millis(1000));
        assert_eq!((f(2).record_depth, f(2).final_depth), (1, 12));
        assert_eq!(f(2).reverify, Duration::from_millis(30_000));
        let base = "[[targets]]\nname = \"eth\"\nkind = \"evm\"\nrpc_url = \"http://x\"\n\
                    chain_id = 1\nsigning_key = \"k\"\nconfirmations = 5\n";
        let e = parse(&format!("{base}[finality.eth]\nfinal_confirmations = 2\n")).unwrap_err();
        assert!(e.contains("relay.finality.eth.final_confirmations"), "{e}");
        let e = parse(&format!("{base}[finality.eth]\nreverify_ms = 0\n")).unwrap_err();
        assert!(e.contains("relay.finality.eth.reverify_ms"), "{e}");
        let e = parse(&format!("{base}[finality.other]\nreverify_ms = 5\n")).unwrap_err();
        assert!(e.contains("relay.finality.other"), "{e}");
        let e = parse(&format!("{base}[finality.eth]\nreverify = 5\n")).unwrap_err();
        assert!(e.contains("reverify"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(
            "[[targets]]\nname = \"eth\"\nkind = \"evm\"\nchain_id = 1\nsigning_key = \"k\"\n",
        )
        .unwrap_err();
        assert!(e.contains("relay.targets[0].rpc_url"), "{e}");
        let e = parse("[[targets]]\nname = \"Bad Name\"\nkind = \"evm\"\n").unwrap_err();
        assert!(e.contains("relay.targets[0].name"), "{e}");
        let e = parse(
            "[[targets]]\nname = \"j\"\nkind = \"judicial\"\nurl = \"http://x\"\naccount_id = \"a\"\nsigning_key = \"k\"\nchain_id = 3\n",
        )
        .unwrap_err();
        assert!(e.contains("relay.targets[0].chain_id"), "{e}");
        let e =
            parse("[[targets]]\nname = \"j\"\nkind = \"judicial\"\nurll = \"x\"\n").unwrap_err();
        assert!(e.contains("urll"), "{e}");
    }
}
