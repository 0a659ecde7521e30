//! The public proof route, for the court's verification page.
//!
//! The page (`console/verify`, served at `/verify/`) fetches a bundle from
//! its own origin's `/v1/proofs/{evidence_hash}`: the verifier's public
//! route, on another port. The workflow answers the same route itself, with
//! the same prover the verifier uses (`anchord_verifier::prover`), so the
//! page's "type the hash and fetch the bundle" works where the console is
//! served, with no cross-origin request and no change to the page's policy.
//! Public like the verifier's: no session; a caller without one is held to
//! the workflow's per-address limit for anonymous requests (`limits.rs`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::Workflow;
use crate::error::{ApiError, Path, Query};
use anchord_verifier::prover::Lookup;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Only the entry of this tenant (several tenants may preserve one file).
    pub tenant: Option<String>,
}

/// An evidence hash as the verifier takes it: 64 or 128 hex digits.
fn parse_hash(s: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::bad("the evidence hash must be 64 or 128 hexadecimal digits");
    if s.len() != 64 && s.len() != 128 {
        return Err(bad());
    }
    hex::decode(s).map_err(|_| bad())
}

/// The proof bundle of an evidence hash (`docs/proof-format.md`), exactly
/// as the verifier's `GET /v1/proofs/{evidence_hash}` serves it. Public.
#[utoipa::path(get, path = "/v1/proofs/{evidence_hash}", security(()),
    params(("evidence_hash" = String, Path, description = "hex evidence hash (64 or 128 hex digits)"), ProofQuery),
    responses(
        (status = 200, description = "the proof bundle", body = Object, content_type = "application/json"),
        (status = 202, description = "recorded, its block not sealed yet; retry after `Retry-After` seconds", body = Object),
        (status = 404, description = "`not_found`: no evidence with this hash (of this tenant)", body = crate::error::ErrorBody),
    ))]
pub async fn by_hash(
    State(wf): State<Arc<Workflow>>,
    Path(hash): Path<String>,
    Query(q): Query<ProofQuery>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    if let Some(t) = &q.tenant
        && anchord_core::entry::validate_tenant(t).is_err()
    {
        return Err(ApiError::field("tenant", "a tenant id"));
    }
    // The prover takes a connection of its own (conn.rs).
    crate::conn::none_held("reading a public proof bundle");
    match wf.prover.by_hash(&hash, q.tenant.as_deref()).await? {
        Lookup::Found(s) => {
            let mut r = Response::new(Body::from(s.json.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        Lookup::NotSealed { seq } => {
            let body = serde_json::json!({
                "status": "sealing",
                "seq": seq,
                "message": "the entry is recorded but its block is not sealed yet; retry shortly",
            });
            let mut r = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            Ok(r)
        }
        Lookup::NotFound => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no evidence with this hash",
        )),
    }
}
