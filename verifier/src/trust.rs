//! What an offline verifier trusts: a small TOML file naming the sealer and
//! witness keys, the quorum and the TSA certificates.
//!
//! ```toml
//! sealers = ["anchord.local/ledger+5e63ea27+AepKbGPi…"]
//! witnesses = ["witness.example/w1+d9ed62c5+BO1JKMYo…"]
//! quorum = 1
//! tsa_certs = ["tsa.pem"]        # PEM or DER; relative to this file
//! ```

use std::path::Path;

use anchord_core::bundle::{TimestampVerifier, TrustedKeys};
use anchord_core::checkpoint::{ALG_COSIGNATURE_V1, ALG_ED25519, NoteVerifier};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    sealers: Vec<String>,
    #[serde(default)]
    witnesses: Vec<String>,
    #[serde(default)]
    quorum: Option<usize>,
    #[serde(default)]
    tsa_certs: Vec<std::path::PathBuf>,
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
            match anchord_batcher::tsa::verify_token(token, digest, cert) {
                Ok(info) => return Ok(info.gen_time_unix),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

/// Parse a trusted keys file. Witness quorum defaults to all witnesses.
pub fn load(path: &Path) -> Result<TrustedKeys, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let f: TrustFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = |v: &String, alg: u8, what: &str| {
        let k = NoteVerifier::parse(v).map_err(|e| format!("{what} {v:?}: {e}"))?;
        if k.alg != alg {
            return Err(format!("{what} {v:?}: wrong key type"));
        }
        Ok(k)
    };
    let sealers = f
        .sealers
        .iter()
        .map(|v| key(v, ALG_ED25519, "sealer"))
        .collect::<Result<Vec<_>, _>>()?;
    if sealers.is_empty() {
        return Err("at least one sealer key is required".into());
    }
    let witnesses = f
        .witnesses
        .iter()
        .map(|v| key(v, ALG_COSIGNATURE_V1, "witness"))
        .collect::<Result<Vec<_>, _>>()?;
    let quorum = f.quorum.unwrap_or(witnesses.len());
    if quorum > witnesses.len() {
        return Err(format!(
            "quorum {quorum} is more than the {} witnesses",
            witnesses.len()
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let certs = f
        .tsa_certs
        .iter()
        .map(|p| {
            anchord_batcher::tsa::load_cert_der(&base.join(p))
                .map_err(|e| format!("tsa_certs: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrustedKeys {
        sealers,
        witnesses,
        quorum,
        timestamps: (!certs.is_empty())
            .then(|| Box::new(PinnedTsa::new(certs)) as Box<dyn TimestampVerifier + Send + Sync>),
        from_bundle: false,
    })
}
