//! The court's trust policy (`docs/trust-policy.md`): the keys, TSA
//! certificates and chains a verifier's *user* trusts, in a TOML file the
//! court obtains out of band. A verdict rests on it, never on what a bundle
//! says about itself.
//!
//! ```toml
//! format = "anchord.trust-policy/v1"
//! origins = ["ledger.bank-a.example"]          # optional: accepted checkpoint origins
//! sealers = ["ledger.bank-a.example+5e63ea27+AepKbGPi…"]
//! witnesses = ["witness.example/w1+d9ed62c5+BO1JKMYo…"]
//! quorum = 1
//! tsa_certs = ["tsa.pem"]                      # a path (relative to this file) or inline PEM
//! anchor_time_tolerance_s = 300
//!
//! [chains.hz-court]                            # the receipt's target name
//! kind = "judicial"
//! chain_id = "hz-internet-court"
//! endpoints = ["https://gateway.hz-court.example"]
//! ```
//!
//! A v1 `--trusted-keys` file (`sealers`, `witnesses`, `quorum`,
//! `tsa_certs`) is a trust policy without chains: it still loads, and
//! anchored bundles then answer `UNTRUSTED (anchor_not_trusted)`.

use std::collections::BTreeMap;
use std::path::Path;

use anchord_core::bundle::{
    Bundle, BundleError, ExpectedHash, Report, TimestampVerifier, TrustedKeys, verify_bundle,
};
use anchord_core::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, NoteVerifier};
use serde::{Deserialize, Serialize};

/// The `format` of a trust policy file.
pub const TRUST_POLICY_FORMAT_V1: &str = "anchord.trust-policy/v1";

/// Default tolerance between a receipt's block time and the chain's.
pub const DEFAULT_ANCHOR_TIME_TOLERANCE_S: u64 = 300;

/// The file, as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
    pub sealers: Vec<String>,
    #[serde(default)]
    pub witnesses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tsa_certs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_time_tolerance_s: Option<u64>,
    #[serde(default)]
    pub chains: BTreeMap<String, TrustedChain>,
}

/// One chain of the registry: what a receipt's target must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedChain {
    /// `judicial` or `evm`.
    pub kind: String,
    /// The chain's id (a judicial gateway's `GET /v1/chain` `chainId`; an
    /// EVM chain's decimal EIP-155 id).
    pub chain_id: String,
    /// Endpoints the court trusts for `--online` (judicial: gateway base
    /// URL; evm: JSON-RPC URL). Tried in order.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A loaded trust policy.
#[derive(Debug)]
pub struct TrustPolicy {
    pub keys: TrustedKeys,
    pub origins: Vec<String>,
    pub chains: BTreeMap<String, TrustedChain>,
    pub anchor_time_tolerance_us: i64,
    /// SHA-256 of the file's bytes, hex: printed with every verdict and on
    /// certificates, so a court can tell which policy was used.
    pub fingerprint: String,
}

/// RFC 3161 tokens checked against pinned TSA certificates (any of them).
#[derive(Debug)]
pub struct PinnedTsa {
    certs: Vec<Vec<u8>>,
}

impl PinnedTsa {
    pub fn new(certs: Vec<Vec<u8>>) -> Self {
        PinnedTsa { certs }
    }
}

impl TimestampVerifier for PinnedTsa {
    fn verify(&self, token: &[u8], digest: &[u8; 32]) -> Result<i64, String> {
        let mut last = String::from("no TSA certificate is trusted");
        for cert in &self.certs {
            match anchord_tsa::verify_token(token, digest, cert) {
                Ok(info) => return Ok(info.gen_time_unix),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

/// Why a trust policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not UTF-8")]
    NotUtf8(String),
    /// A problem in the file at `path`.
    #[error("{path}: {source}")]
    File {
        path: String,
        source: Box<TrustError>,
    },
    #[error("{0}")]
    Toml(String),
    #[error("format {0:?} is not {TRUST_POLICY_FORMAT_V1:?}")]
    Format(String),
    #[error("{what} {key:?}: {reason}")]
    Key {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("at least one sealer key is required")]
    NoSealer,
    #[error("quorum {quorum} is more than the {witnesses} witnesses")]
    Quorum { quorum: usize, witnesses: usize },
    #[error("tsa_certs: {0}")]
    TsaCert(String),
    #[error("chains.{name}.{what}")]
    Chain { name: String, what: String },
}

/// Load a trust policy file.
pub fn load_policy(path: &Path) -> Result<TrustPolicy, TrustError> {
    let shown = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TrustError::Read {
        path: shown(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| TrustError::NotUtf8(shown()))?;
    parse_policy(&text, path.parent().unwrap_or(Path::new("."))).map_err(|e| TrustError::File {
        path: shown(),
        source: Box::new(e),
    })
}

/// Parse a trust policy; relative certificate paths are under `base`.
pub fn parse_policy(text: &str, base: &Path) -> Result<TrustPolicy, TrustError> {
    let f: TrustFile = toml::from_str(text).map_err(|e| TrustError::Toml(e.to_string()))?;
    if let Some(fmt) = &f.format
        && fmt != TRUST_POLICY_FORMAT_V1
    {
        return Err(TrustError::Format(fmt.clone()));
    }
    let key = |v: &String, alg: u8, what: &'static str| {
        let bad = |reason: String| TrustError::Key {
            what,
            key: v.clone(),
            reason,
        };
        let k = NoteVerifier::parse(v).map_err(|e| bad(e.to_string()))?;
        if k.alg != alg {
            return Err(bad("wrong key type".into()));
        }
        Ok(k)
    };
    let sealers = f
        .sealers
        .iter()
        .map(|v| key(v, ALG_ED25519, "sealer"))
        .collect::<Result<Vec<_>, _>>()?;
    if sealers.is_empty() {
        return Err(TrustError::NoSealer);
    }
    let witnesses = f
        .witnesses
        .iter()
        .map(|v| key(v, ALG_COSIGNATURE_V1, "witness"))
        .collect::<Result<Vec<_>, _>>()?;
    let quorum = f.quorum.unwrap_or(witnesses.len());
    if quorum > witnesses.len() {
        return Err(TrustError::Quorum {
            quorum,
            witnesses: witnesses.len(),
        });
    }
    let certs = f
        .tsa_certs
        .iter()
        .map(|c| {
            if c.trim_start().starts_with("-----BEGIN") {
                pem_to_der(c).map_err(TrustError::TsaCert)
            } else {
                anchord_tsa::load_cert_der(&base.join(c))
                    .map_err(|e| TrustError::TsaCert(e.to_string()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (name, c) in &f.chains {
        let bad = |what: String| TrustError::Chain {
            name: name.clone(),
            what,
        };
        if c.kind != "judicial" && c.kind != "evm" {
            return Err(bad(format!(
                "kind {:?}: want \"judicial\" or \"evm\"",
                c.kind
            )));
        }
        if c.chain_id.is_empty() {
            return Err(bad("chain_id is empty".into()));
        }
        for e in &c.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(bad(format!("endpoints: {e:?} is not an http(s) URL")));
            }
        }
    }
    let tolerance = f
        .anchor_time_tolerance_s
        .unwrap_or(DEFAULT_ANCHOR_TIME_TOLERANCE_S);
    Ok(TrustPolicy {
        keys: TrustedKeys {
            sealers,
            witnesses,
            quorum,
            timestamps: (!certs.is_empty()).then(|| {
                Box::new(PinnedTsa::new(certs)) as Box<dyn TimestampVerifier + Send + Sync>
            }),
            from_bundle: false,
        },
        origins: f.origins,
        chains: f.chains,
        anchor_time_tolerance_us: i64::try_from(tolerance.saturating_mul(1_000_000))
            .unwrap_or(i64::MAX),
        fingerprint: hex::encode(anchord_core::HashSuite::Sha256.digest(text.as_bytes())),
    })
}

/// The keys only, for callers of the v1 API (`--trusted-keys`).
pub fn load(path: &Path) -> Result<TrustedKeys, TrustError> {
    load_policy(path).map(|p| p.keys)
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("inline PEM: {e}"))
}

/// DER to PEM (`CERTIFICATE`), for exported policies.
pub fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

/// What a verifier concludes.
#[derive(Debug)]
pub enum Verdict {
    /// Every check passed against the court's trust policy.
    Valid(Report),
    /// A check failed: the bundle is not a proof of anything.
    Invalid { check: String, message: String },
    /// Internally consistent, but it rests on something the court does not
    /// trust (no policy, a signer or an anchor target not in it).
    Untrusted {
        check: String,
        message: String,
        report: Option<Report>,
    },
}

impl Verdict {
    fn invalid(e: &BundleError) -> Self {
        Verdict::Invalid {
            check: e.check().into(),
            message: e.to_string(),
        }
    }
}

/// Judge a bundle: without a policy it can at best be `Untrusted
/// (no_trust_policy)`; with one, signatures must be by its keys and every
/// receipt's target must be one of its chains, of the same kind and id.
pub fn judge(b: &Bundle, policy: Option<&TrustPolicy>, expected: ExpectedHash<'_>) -> Verdict {
    let own = TrustedKeys::from_bundle(b).ok();
    let Some(policy) = policy else {
        let Some(own) = own else {
            return Verdict::Invalid {
                check: "trusted_keys".into(),
                message: "the bundle declares no usable keys".into(),
            };
        };
        return match verify_bundle(b, &own, expected) {
            Ok(r) => Verdict::Untrusted {
                check: "no_trust_policy".into(),
                message: "signatures valid, signer not trusted: no trust policy was given \
                          (pass --trust with the court's trust policy file)"
                    .into(),
                report: Some(r),
            },
            Err(e) => Verdict::invalid(&e),
        };
    };
    let report = match verify_bundle(b, &policy.keys, expected) {
        Ok(r) => r,
        Err(e) => {
            // Signatures that verify only under the bundle's own keys: a
            // forgery or another deployment, not a broken bundle.
            let untrusted = match &e {
                BundleError::SealerSignature(_) => Some("sealer_not_trusted"),
                BundleError::Quorum { .. } => Some("witness_not_trusted"),
                _ => None,
            };
            if let (Some(check), Some(own)) = (untrusted, own)
                && let Ok(r) = verify_bundle(b, &own, expected)
            {
                return Verdict::Untrusted {
                    check: check.into(),
                    message: format!(
                        "signatures valid, signer not trusted: under the trust policy {e}"
                    ),
                    report: Some(r),
                };
            }
            return Verdict::invalid(&e);
        }
    };
    if !policy.origins.is_empty() && !policy.origins.contains(&b.checkpoint.origin) {
        return Verdict::Untrusted {
            check: "origin_not_trusted".into(),
            message: format!(
                "checkpoint origin {:?} is not one the trust policy names",
                b.checkpoint.origin
            ),
            report: Some(report),
        };
    }
    for r in &b.anchor.receipts {
        if let Some(c) = policy.chains.get(&r.target)
            && (c.kind != r.chain_kind || c.chain_id != r.chain_id)
        {
            return Verdict::Invalid {
                check: "anchor_registry".into(),
                message: format!(
                    "target {:?}: the receipt says {} chain {:?}, the trust policy says {} chain {:?}",
                    r.target, r.chain_kind, r.chain_id, c.kind, c.chain_id
                ),
            };
        }
    }
    if let Some(r) = b
        .anchor
        .receipts
        .iter()
        .find(|r| !policy.chains.contains_key(&r.target))
    {
        return Verdict::Untrusted {
            check: "anchor_not_trusted".into(),
            message: format!(
                "anchor target {:?} ({} chain {:?}) is not in the trust policy's chain registry",
                r.target, r.chain_kind, r.chain_id
            ),
            report: Some(report),
        };
    }
    Verdict::Valid(report)
}
