//! RFC 3161 trusted timestamps for checkpoints.
//!
//! Each checkpoint's body (the signed text of its note) gets a token from the
//! configured time-stamping authority over `SHA-256(body)`. Building the
//! request and checking the answer are `anchord-tsa`'s (shared with the
//! verifier); this module is the HTTP client.

use std::path::Path;
use std::time::Duration;

use anchord_core::HashSuite;
pub use anchord_tsa::{
    TokenInfo, TsaError, load_cert_der, request_der, token_from_response, verify_token,
};
use rasn_pkix::Certificate;

use crate::BatcherError;

fn err(s: impl Into<String>) -> BatcherError {
    BatcherError::Tsa(s.into())
}

impl From<TsaError> for BatcherError {
    fn from(e: TsaError) -> Self {
        match e {
            TsaError::Invalid(s) => BatcherError::Tsa(s),
            TsaError::Cert { path, reason } => {
                BatcherError::Config(format!("batcher.tsa_cert {path}: {reason}"))
            }
        }
    }
}

/// A configured time-stamping authority.
#[derive(Debug, Clone)]
pub struct Tsa {
    url: String,
    cert_der: Vec<u8>,
    http: reqwest::Client,
}

impl Tsa {
    pub fn new(url: &str, cert: &Path, timeout: Duration) -> Result<Self, BatcherError> {
        let cert_der = load_cert_der(cert)?;
        rasn::der::decode::<Certificate>(&cert_der).map_err(|e| {
            BatcherError::Config(format!("batcher.tsa_cert {}: {e}", cert.display()))
        })?;
        // The TSA only at its configured address (anchord-egress).
        let http =
            anchord_egress::Policy::pinned_client(&[url], "batcher.tsa_url", timeout, timeout)
                .map_err(|e| BatcherError::Config(format!("batcher.tsa_url: {e}")))?;
        Ok(Tsa {
            url: url.to_owned(),
            cert_der,
            http,
        })
    }

    /// Fetch and verify a token over `SHA-256(data)`; returns the token
    /// (DER ContentInfo).
    pub async fn timestamp(&self, data: &[u8]) -> Result<Vec<u8>, BatcherError> {
        let digest = HashSuite::Sha256.digest(data);
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| err(e.to_string()))?;
        let nonce = u64::from_be_bytes(nonce) >> 1;
        let req = request_der(&digest, nonce)?;
        let resp = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .body(req)
            .send()
            .await
            .map_err(|e| err(format!("request: {e}")))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP status {}", resp.status())));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| err(format!("response: {e}")))?;
        let token = token_from_response(&body)?;
        let info = verify_token(&token, &digest, &self.cert_der)?;
        if info.nonce != Some(nonce as i128) {
            return Err(err("the response does not echo our nonce"));
        }
        Ok(token)
    }
}
