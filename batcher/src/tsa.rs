//! RFC 3161 trusted timestamps for checkpoints (being written).

use std::path::Path;
use std::time::Duration;

use crate::BatcherError;

/// A configured time-stamping authority.
#[derive(Debug, Clone)]
pub struct Tsa {
    url: String,
    cert_der: Vec<u8>,
    http: reqwest::Client,
}

impl Tsa {
    pub fn new(url: &str, cert: &Path, timeout: Duration) -> Result<Self, BatcherError> {
        let bytes = std::fs::read(cert).map_err(|e| {
            BatcherError::Config(format!("batcher.tsa_cert {}: {e}", cert.display()))
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| BatcherError::Tsa(e.to_string()))?;
        Ok(Tsa {
            url: url.to_owned(),
            cert_der: bytes,
            http,
        })
    }

    pub async fn timestamp(&self, _data: &[u8]) -> Result<Vec<u8>, BatcherError> {
        let _ = (&self.url, &self.cert_der, &self.http);
        Err(BatcherError::Tsa("not implemented yet".into()))
    }
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub gen_time_unix: i64,
}

/// Verify a token over `digest` (SHA-256) against the TSA certificate (DER).
pub fn verify_token(
    _token: &[u8],
    _digest: &[u8; 32],
    _cert_der: &[u8],
) -> Result<TokenInfo, BatcherError> {
    Err(BatcherError::Tsa("not implemented yet".into()))
}

/// Read a certificate file, PEM or DER, as DER.
pub fn load_cert_der(path: &Path) -> Result<Vec<u8>, BatcherError> {
    let bytes = std::fs::read(path)
        .map_err(|e| BatcherError::Config(format!("batcher.tsa_cert {}: {e}", path.display())))?;
    Ok(bytes)
}
