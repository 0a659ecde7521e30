//! The preservation certificate (电子数据保全证书) of an on-chain
//! preservation or contract: the verifier's PDF certificate, rendered from
//! the same proof bundle `GET …/proof` serves, with a QR code pointing at
//! the public proof URL (`workflow.proof_url`) where a court checks it.

use anchord_core::bundle::Bundle;
use anchord_verifier::certificate::IssueError;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::Workflow;
use crate::error::ApiError;

/// The PDF for `bundle`, named `filename` in the download.
pub(crate) async fn pdf(
    wf: &Workflow,
    bundle: Bundle,
    filename: &str,
) -> Result<Response, ApiError> {
    let url = format!(
        "{}/{}",
        wf.config.proof_url.trim_end_matches('/'),
        hex::encode(&bundle.entry.evidence_hash)
    );
    let bytes = wf.certificates.pdf(bundle, url).await.map_err(|e| match e {
        IssueError::FontUnavailable(e) => {
            tracing::error!(error = %e, "loading the certificate font (workflow.certificate_font)");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "certificates are not available on this server: its CJK font (workflow.certificate_font) cannot be loaded",
            )
        }
        // The deployment's own bundle not verifying is a server fault.
        IssueError::Render(e) | IssueError::NotVerified(e) => {
            tracing::error!(error = %e, "rendering a certificate");
            ApiError::internal()
        }
    })?;
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
