//! The judicial gateway protocol, version 1 (`docs/judicial-gateway-v1.md`):
//! message types and the exact strings that are signed. Shared by the
//! client ([`crate::judicial`]) and the simulator ([`crate::sim`]).

use anchord_core::HashSuite;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

/// Requests are accepted when their timestamp is within this many
/// milliseconds of the gateway's clock.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// Evidence content of an anchor: one checkpoint of the block log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Always "c2sp-checkpoint".
    #[serde(rename = "type")]
    pub kind: String,
    pub origin: String,
    pub size: u64,
    /// Base64 root hash, as in the checkpoint body.
    pub root: String,
}

pub const EVIDENCE_KIND: &str = "c2sp-checkpoint";

/// `POST /v1/anchors`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitRequest {
    pub account_id: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub idempotency_key: String,
    pub evidence: Evidence,
    /// Lower-case hex of the SHA256withRSA signature over
    /// [`SubmitRequest::signing_string`].
    pub signed_data: String,
}

impl SubmitRequest {
    pub fn signing_string(&self) -> String {
        format!(
            "anchord-gateway/v1\nsubmit\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            self.account_id,
            self.timestamp,
            self.idempotency_key,
            self.evidence.kind,
            self.evidence.origin,
            self.evidence.size,
            self.evidence.root
        )
    }
}

/// `POST /v1/anchors/query`: by transaction id or by idempotency key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRequest {
    pub account_id: String,
    pub timestamp: i64,
    #[serde(default)]
    pub tx_id: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    pub signed_data: String,
}

impl QueryRequest {
    pub fn signing_string(&self) -> String {
        format!(
            "anchord-gateway/v1\nquery\n{}\n{}\n{}\n{}\n",
            self.account_id,
            self.timestamp,
            self.tx_id.as_deref().unwrap_or(""),
            self.idempotency_key.as_deref().unwrap_or("")
        )
    }
}

/// A transaction's state: the answer to both endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxResponse {
    /// "confirmed" (in a block: consortium chains are final at once) or
    /// "pending" (accepted, not yet in a block).
    pub status: String,
    pub chain_id: String,
    pub tx_id: String,
    pub idempotency_key: String,
    pub evidence: Evidence,
    #[serde(default)]
    pub block_height: Option<u64>,
    /// Lower-case hex.
    #[serde(default)]
    pub block_hash: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(default)]
    pub block_time: Option<i64>,
    /// True when this submission repeated a known idempotency key and the
    /// existing transaction is returned.
    #[serde(default)]
    pub duplicate: bool,
}

/// Error body: `{"error": "<code>", "message": "…"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub message: String,
}

/// SHA256withRSA (RSASSA-PKCS1-v1_5, SHA-256) DigestInfo prefix.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn scheme() -> Pkcs1v15Sign {
    Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
    }
}

/// Hex SHA256withRSA signature of `message`. (Deterministic PKCS#1 v1.5,
/// computed locally: no remote party can time it.)
pub fn sign(key: &RsaPrivateKey, message: &str) -> Result<String, rsa::Error> {
    let digest = HashSuite::Sha256.digest(message.as_bytes());
    Ok(hex::encode(key.sign(scheme(), &digest)?))
}

/// Check a hex SHA256withRSA signature.
pub fn verify(key: &RsaPublicKey, message: &str, signed_data: &str) -> bool {
    let Ok(sig) = hex::decode(signed_data) else {
        return false;
    };
    let digest = HashSuite::Sha256.digest(message.as_bytes());
    key.verify(scheme(), &digest, &sig).is_ok()
}

/// A PEM text that is not the RSA key it should be (the decoder's reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an RSA private key in PKCS#8 or PKCS#1 PEM: {0}")]
    Private(String),
    #[error("not an RSA public key in SPKI or PKCS#1 PEM: {0}")]
    Public(String),
}

/// Load an RSA private key: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`) PEM.
pub fn load_private_key(pem: &str) -> Result<RsaPrivateKey, KeyError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|e| KeyError::Private(e.to_string()))
}

/// Load an RSA public key: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 PEM.
pub fn load_public_key(pem: &str) -> Result<RsaPublicKey, KeyError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|e| KeyError::Public(e.to_string()))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    anchord_core::time::unix_millis(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signing_string_matches_the_spec_example() {
        let r = SubmitRequest {
            account_id: "anchord-bank-a".into(),
            timestamp: 1_732_350_000_123,
            idempotency_key: "09cccc17ee9f74bb7b5efa8e16054497".into(),
            evidence: Evidence {
                kind: EVIDENCE_KIND.into(),
                origin: "bank-a.example/ledger".into(),
                size: 1042,
                root: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            },
            signed_data: String::new(),
        };
        assert_eq!(
            r.signing_string(),
            "anchord-gateway/v1\nsubmit\nanchord-bank-a\n1732350000123\n\
             09cccc17ee9f74bb7b5efa8e16054497\nc2sp-checkpoint\nbank-a.example/ledger\n1042\n\
             AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
        );
    }
}
