//! The public HTTP API (`docs/http-api.md`), with its OpenAPI document
//! generated from these handlers (`GET /v1/openapi.json`).
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with a
//! fixed, client-facing message; internal errors are logged here, once, and
//! answered with `internal` and no detail.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use anchord_core::EvidenceAlg;
use anchord_core::bundle::{TrustedKeys, verify_bundle};
use anchord_core::checkpoint::encode_hash;
use anchord_core::filehash::FileHasher;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State,
};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::VerifierConfig;
use crate::certificate::{IssueError, Issuer};
use crate::prover::{Lookup, ProveError, Prover};

/// The message of a verification that matched (the wording courts expect).
pub const MATCH_MESSAGE: &str = "结果一致，数据未篡改";
/// The message of a mismatch.
pub const MISMATCH_MESSAGE: &str = "结果不一致，数据与保全记录不符";
/// The message when nothing was preserved with this hash.
pub const NOT_FOUND_MESSAGE: &str = "未找到保全记录";

/// The handlers' state: one shared allocation, so that the clone axum
/// makes per request and per middleware is one reference count.
#[derive(Clone)]
struct AppState(Arc<Shared>);

struct Shared {
    prover: Arc<Prover>,
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    certificates: Issuer,
    public_url: Box<str>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The API router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// (the rate limit is per client IP).
pub fn router(prover: Arc<Prover>, config: &VerifierConfig) -> Router {
    let quota =
        Quota::per_second(NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN));
    let limiter = Arc::new(RateLimiter::keyed(quota));
    crate::metrics::init();
    let state = AppState(Arc::new(Shared {
        prover,
        limiter: limiter.clone(),
        certificates: Issuer::new(config.cjk_font.clone()),
        public_url: config.public_url.trim_end_matches('/').into(),
    }));
    // Forget idle clients now and then.
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let weak = Arc::downgrade(&limiter);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                match weak.upgrade() {
                    Some(l) => l.retain_recent(),
                    None => return,
                }
            }
        });
    }
    Router::new()
        .route("/v1/proofs/{evidence_hash}", get(proof_by_hash))
        .route("/v1/proofs/by-id/{tenant}/{external_id}", get(proof_by_id))
        .route(
            "/v1/proofs/{evidence_hash}/certificate.pdf",
            get(certificate),
        )
        .route("/v1/verify", post(verify))
        .route("/v1/checkpoints/latest", get(checkpoint_latest))
        .route("/v1/checkpoints/consistency", get(consistency))
        .route("/v1/checkpoints/{size}", get(checkpoint_by_size))
        .route("/v1/openapi.json", get(openapi_json))
        .route("/checkpoint", get(tlog_checkpoint))
        .route("/tile/{*path}", get(tlog_tile))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .route_layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn rate_limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if s.limiter.check_key(&ip).is_err() {
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this client; retry later",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    next.run(req).await
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_hash`, `not_found`.
    pub code: &'static str,
    /// Human-readable explanation (never internal error text).
    pub message: String,
}

/// A client-facing error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<ProveError> for ApiError {
    fn from(e: ProveError) -> Self {
        tracing::error!(error = %e, "assembling a proof failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn path_error(_: PathRejection) -> ApiError {
    ApiError::bad("bad_path", "malformed path parameter")
}

fn query_error(_: QueryRejection) -> ApiError {
    ApiError::bad("bad_query", "malformed query parameters")
}

/// A hex evidence hash: 32 or 64 bytes.
fn parse_hash(s: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::bad("bad_hash", "evidence hash must be 64 or 128 hex digits");
    if s.len() != 64 && s.len() != 128 {
        return Err(bad());
    }
    hex::decode(s).map_err(|_| bad())
}

fn json_bytes(status: StatusCode, bytes: Bytes) -> Response {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn lookup_response(l: Lookup) -> Result<Response, ApiError> {
    match l {
        Lookup::Found(s) => Ok(json_bytes(StatusCode::OK, s.json.clone())),
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
        Lookup::NotFound => Err(ApiError::not_found("no evidence with this hash or id")),
    }
}

// ---------------------------------------------------------------------------
// Proofs
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Only the entry of this tenant (several tenants may preserve one file).
    pub tenant: Option<String>,
}

/// A proof bundle: `docs/proof-format.md`.
#[utoipa::path(
    get,
    path = "/v1/proofs/{evidence_hash}",
    params(
        ("evidence_hash" = String, Path, description = "hex evidence hash (64 or 128 hex digits)"),
        ProofQuery,
    ),
    responses(
        (status = 200, description = "the proof bundle", body = Object, content_type = "application/json"),
        (status = 202, description = "recorded, block not sealed yet", body = Object),
        (status = 400, description = "malformed hash", body = ErrorBody),
        (status = 404, description = "unknown hash", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
    )
)]
async fn proof_by_hash(
    State(s): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(hash) = hash.map_err(path_error)?;
    let Query(q) = q.map_err(query_error)?;
    let hash = parse_hash(&hash)?;
    lookup_response(s.prover.by_hash(&hash, q.tenant.as_deref()).await?)
}

/// The proof bundle of the entry a tenant submitted under an external id.
#[utoipa::path(
    get,
    path = "/v1/proofs/by-id/{tenant}/{external_id}",
    params(
        ("tenant" = String, Path, description = "tenant id"),
        ("external_id" = String, Path, description = "the submitter's reference"),
    ),
    responses(
        (status = 200, description = "the proof bundle", body = Object, content_type = "application/json"),
        (status = 202, description = "recorded, block not sealed yet", body = Object),
        (status = 400, description = "malformed tenant or id", body = ErrorBody),
        (status = 404, description = "unknown entry", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
    )
)]
async fn proof_by_id(
    State(s): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((tenant, external_id)) = p.map_err(path_error)?;
    validate_identity(&tenant, &external_id)?;
    lookup_response(s.prover.by_identity(&tenant, &external_id).await?)
}

fn validate_identity(tenant: &str, external_id: &str) -> Result<(), ApiError> {
    anchord_core::entry::validate_tenant(tenant)
        .map_err(|_| ApiError::bad("bad_tenant", "malformed tenant"))?;
    anchord_core::entry::validate_external_id(external_id)
        .map_err(|_| ApiError::bad("bad_external_id", "malformed external id"))
}

/// The preservation certificate (电子数据保全证书) of an evidence item, PDF.
#[utoipa::path(
    get,
    path = "/v1/proofs/{evidence_hash}/certificate.pdf",
    params(
        ("evidence_hash" = String, Path, description = "hex evidence hash (64 or 128 hex digits)"),
        ProofQuery,
    ),
    responses(
        (status = 200, description = "the certificate", body = Vec<u8>, content_type = "application/pdf"),
        (status = 202, description = "recorded, block not sealed yet", body = Object),
        (status = 400, description = "malformed hash", body = ErrorBody),
        (status = 404, description = "unknown hash", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
        (status = 503, description = "no CJK font configured", body = ErrorBody),
    )
)]
async fn certificate(
    State(s): State<AppState>,
    hash: Result<Path<String>, PathRejection>,
    q: Result<Query<ProofQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(hash) = hash.map_err(path_error)?;
    let Query(q) = q.map_err(query_error)?;
    let hash = parse_hash(&hash)?;
    let served = match s.prover.by_hash(&hash, q.tenant.as_deref()).await? {
        Lookup::Found(b) => b,
        other => return lookup_response(other),
    };
    let url = format!("{}/v1/proofs/{}", s.public_url, hex::encode(&hash));
    let pdf = s
        .certificates
        .pdf(served.bundle.clone(), url)
        .await
        .map_err(|e| match e {
            IssueError::FontUnavailable(e) => {
                tracing::error!(error = %e, "loading the certificate font");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "certificate_unavailable",
                    "certificates are not available on this server",
                )
            }
            IssueError::Render(e) => ProveError::Corrupt(e).into(),
            e @ IssueError::NotVerified(_) => ProveError::Corrupt(e.to_string()).into(),
        })?;
    let mut r = Response::new(Body::from(pdf));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    Ok(r)
}

// ---------------------------------------------------------------------------
// Verify
// ---------------------------------------------------------------------------

/// Verify a hash (JSON body).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Hex digest of the file.
    pub hash: String,
    /// With `external_id`: compare against that entry instead of looking
    /// the hash up.
    pub tenant: Option<String>,
    pub external_id: Option<String>,
}

/// Verify a file (multipart/form-data): optional text fields `alg`
/// (`sha256`, `sm3`, `sha512`; default `sha256`), `tenant`, `external_id`
/// must come before the `file` part, which is hashed as it streams in.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct VerifyUpload {
    pub alg: Option<String>,
    pub tenant: Option<String>,
    pub external_id: Option<String>,
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The answer of `POST /v1/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// `match`, `mismatch` or `not_found`.
    pub result: &'static str,
    /// 结果一致，数据未篡改 / 结果不一致，数据与保全记录不符 / 未找到保全记录.
    pub message: &'static str,
    /// Hex digest that was checked.
    pub evidence_hash: String,
    pub hash_alg: String,
    /// The bundle (for a mismatch: of the named entry).
    #[schema(value_type = Option<Object>)]
    pub bundle: Option<serde_json::Value>,
}

/// Check a file or a hash against the ledger.
#[utoipa::path(
    post,
    path = "/v1/verify",
    request_body(content(
        (VerifyRequest = "application/json"),
        (VerifyUpload = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "match, mismatch or not found", body = VerifyResponse),
        (status = 202, description = "recorded, block not sealed yet", body = Object),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 413, description = "file too large", body = ErrorBody),
        (status = 415, description = "unsupported content type", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
    )
)]
async fn verify(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (alg, hash, identity) = if ct.starts_with("multipart/form-data") {
        let mp = Multipart::from_request(req, &())
            .await
            .map_err(|_| ApiError::bad("bad_multipart", "malformed multipart body"))?;
        read_upload(mp).await?
    } else if ct.starts_with("application/json") {
        let body = Bytes::from_request(req, &()).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad("bad_body", "could not read the request body")
            }
        })?;
        let r: VerifyRequest = serde_json::from_slice(&body)
            .map_err(|_| ApiError::bad("bad_json", "body must be {\"hash\": \"<hex>\"}"))?;
        let hash = parse_hash(&r.hash)?;
        let alg = if hash.len() == 64 {
            EvidenceAlg::Sha512
        } else {
            EvidenceAlg::Sha256
        };
        (alg, hash, identity(r.tenant, r.external_id)?)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or multipart/form-data",
        ));
    };
    let lookup = match &identity {
        Some((t, e)) => s.prover.by_identity(t, e).await?,
        None => s.prover.by_hash(&hash, None).await?,
    };
    let served = match lookup {
        Lookup::Found(b) => b,
        other @ Lookup::NotSealed { .. } => return lookup_response(other),
        Lookup::NotFound => {
            return Ok(axum::Json(VerifyResponse {
                result: "not_found",
                message: NOT_FOUND_MESSAGE,
                evidence_hash: hex::encode(&hash),
                hash_alg: alg.name().into(),
                bundle: None,
            })
            .into_response());
        }
    };
    let b = &served.bundle;
    // The server checks its own bundle too (with the keys it declares).
    let keys = TrustedKeys::from_bundle(b)
        .map_err(|e| ProveError::Corrupt(format!("declared keys: {e}")))?;
    let verdict = verify_bundle(b, &keys, Some(&hash));
    let bundle = serde_json::from_slice(&served.json).ok();
    let (result, message) = match verdict {
        Ok(_) => ("match", MATCH_MESSAGE),
        Err(e) if e.check() == "evidence_mismatch" => ("mismatch", MISMATCH_MESSAGE),
        Err(e) => {
            return Err(ProveError::Corrupt(format!("served bundle does not verify: {e}")).into());
        }
    };
    Ok(axum::Json(VerifyResponse {
        result,
        message,
        evidence_hash: hex::encode(&hash),
        hash_alg: alg.name().into(),
        bundle,
    })
    .into_response())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "the request body exceeds the size limit",
    )
}

type Identity = Option<(String, String)>;

fn identity(tenant: Option<String>, external_id: Option<String>) -> Result<Identity, ApiError> {
    match (tenant, external_id) {
        (Some(t), Some(e)) => {
            validate_identity(&t, &e)?;
            Ok(Some((t, e)))
        }
        (None, None) => Ok(None),
        _ => Err(ApiError::bad(
            "bad_identity",
            "give both tenant and external_id, or neither",
        )),
    }
}

async fn read_upload(mut mp: Multipart) -> Result<(EvidenceAlg, Vec<u8>, Identity), ApiError> {
    let mut alg = EvidenceAlg::Sha256;
    let (mut tenant, mut external_id) = (None, None);
    let mp_err = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad("bad_multipart", "malformed multipart body")
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(mp_err)? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let mut h = FileHasher::new(alg);
                while let Some(chunk) = field.chunk().await.map_err(mp_err)? {
                    h.update(&chunk);
                }
                return Ok((alg, h.finalize(), identity(tenant, external_id)?));
            }
            "alg" | "tenant" | "external_id" => {
                let v = field.text().await.map_err(mp_err)?;
                match name.as_str() {
                    "alg" => {
                        alg = v.parse().map_err(|_| {
                            ApiError::bad("bad_alg", "alg must be sha256, sm3 or sha512")
                        })?
                    }
                    "tenant" => tenant = Some(v),
                    _ => external_id = Some(v),
                }
            }
            _ => return Err(ApiError::bad("bad_multipart", "unexpected form field")),
        }
    }
    Err(ApiError::bad("missing_file", "no `file` part in the form"))
}

// ---------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------

/// A checkpoint of the block log.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointJson {
    pub size: u64,
    /// Hex root.
    pub root: String,
    pub origin: String,
    /// The C2SP signed note with every signature.
    pub signed_note: String,
    pub created_at_us: i64,
    pub final_at_us: Option<i64>,
    /// Hex DER RFC 3161 token, when present.
    pub timestamp_token: Option<String>,
}

fn checkpoint_json(cp: anchord_ledger::StoredCheckpoint) -> CheckpointJson {
    CheckpointJson {
        size: cp.size,
        root: hex::encode(cp.root),
        origin: cp.origin,
        signed_note: cp.signed_note,
        created_at_us: cp.created_at_us,
        final_at_us: cp.final_at_us,
        timestamp_token: cp.timestamp_token.map(hex::encode),
    }
}

/// The latest checkpoint.
#[utoipa::path(get, path = "/v1/checkpoints/latest", responses(
    (status = 200, description = "the latest checkpoint", body = CheckpointJson),
    (status = 404, description = "nothing sealed yet", body = ErrorBody),
    (status = 429, description = "rate limited", body = ErrorBody),
))]
async fn checkpoint_latest(State(s): State<AppState>) -> Result<Response, ApiError> {
    let cp = s.prover.latest_checkpoint().await?;
    let cp = cp.ok_or_else(|| ApiError::not_found("no checkpoint yet"))?;
    Ok(axum::Json(checkpoint_json(cp)).into_response())
}

/// The checkpoint of one size.
#[utoipa::path(get, path = "/v1/checkpoints/{size}",
    params(("size" = u64, Path, description = "block-log size, >= 1")),
    responses(
    (status = 200, description = "the checkpoint", body = CheckpointJson),
    (status = 400, description = "malformed size", body = ErrorBody),
    (status = 404, description = "no such checkpoint", body = ErrorBody),
    (status = 429, description = "rate limited", body = ErrorBody),
))]
async fn checkpoint_by_size(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(size) = p.map_err(path_error)?;
    let size = parse_size(&size)?;
    let cp = s
        .prover
        .ledger()
        .checkpoint(size)
        .await
        .map_err(ProveError::from)?;
    let cp = cp.ok_or_else(|| ApiError::not_found("no checkpoint of this size"))?;
    Ok(axum::Json(checkpoint_json(cp)).into_response())
}

fn parse_size(s: &str) -> Result<u64, ApiError> {
    anchord_core::checkpoint::parse_decimal(s)
        .filter(|&n| (1..=i64::MAX as u64).contains(&n))
        .ok_or_else(|| ApiError::bad("bad_size", "size must be a positive decimal integer"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older size (>= 1).
    pub from: String,
    /// The newer size (>= from).
    pub to: String,
}

/// An RFC 9162 consistency proof between two checkpoint sizes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyJson {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    /// Hex hashes, RFC 9162 §2.1.4 order.
    pub proof: Vec<String>,
    /// The same hashes in base64 (C2SP tlog-witness style).
    pub proof_base64: Vec<String>,
}

/// A consistency proof between two sizes of the block log.
#[utoipa::path(get, path = "/v1/checkpoints/consistency", params(ConsistencyQuery), responses(
    (status = 200, description = "the proof", body = ConsistencyJson),
    (status = 400, description = "malformed or inverted sizes", body = ErrorBody),
    (status = 404, description = "a size beyond the latest checkpoint", body = ErrorBody),
    (status = 429, description = "rate limited", body = ErrorBody),
))]
async fn consistency(
    State(s): State<AppState>,
    q: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let (from, to) = (parse_size(&q.from)?, parse_size(&q.to)?);
    if from > to {
        return Err(ApiError::bad("bad_size", "from must not exceed to"));
    }
    let Some((r1, r2, proof)) = s.prover.consistency(from, to).await? else {
        return Err(ApiError::not_found("no checkpoint of this size yet"));
    };
    Ok(axum::Json(ConsistencyJson {
        from,
        to,
        from_root: hex::encode(r1),
        to_root: hex::encode(r2),
        proof: proof.iter().map(hex::encode).collect(),
        proof_base64: proof.iter().map(encode_hash).collect(),
    })
    .into_response())
}

// ---------------------------------------------------------------------------
// tlog-tiles (c2sp.org/tlog-tiles): the block log as static resources
// ---------------------------------------------------------------------------

/// `Cache-Control` of a full tile or entry bundle: it never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a partial tile or bundle (its bytes never change
/// either, but the log may stop serving it once the tile is full).
pub const PARTIAL: &str = "public, max-age=60";
/// `Cache-Control` of `/checkpoint` (mutable: a few seconds at most).
pub const CHECKPOINT_CACHE: &str = "public, max-age=1";

/// The latest checkpoint of the block log as a C2SP signed note, with every
/// signature collected so far (the sealer's, then witness cosignatures).
#[utoipa::path(get, path = "/checkpoint", responses(
    (status = 200, description = "the signed note (text/plain; charset=utf-8)", body = String, content_type = "text/plain"),
    (status = 404, description = "nothing sealed yet", body = ErrorBody),
    (status = 429, description = "rate limited", body = ErrorBody),
))]
async fn tlog_checkpoint(State(s): State<AppState>) -> Result<Response, ApiError> {
    let cp = s
        .prover
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::not_found("no checkpoint yet"))?;
    let mut r = cp.signed_note.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CHECKPOINT_CACHE),
    );
    Ok(r)
}

/// `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`: the
/// block log's hash tiles and entry bundles (each entry a block header's
/// canonical encoding, uint16 length-prefixed). Only tiles of the latest
/// checkpoint's tree (or, for partial tiles, of an earlier checkpoint's:
/// every block has one) exist; anything else is 404.
async fn tlog_tile(
    State(s): State<AppState>,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    use anchord_core::tiles::{self, Tile};
    let Path(rest) = p.map_err(path_error)?;
    let path = format!("tile/{rest}");
    let (level, index, width) =
        Tile::parse_path(&path).map_err(|e| ApiError::bad("bad_tile_path", e.to_string()))?;
    let Some(cp) = s.prover.latest_checkpoint().await? else {
        return Err(ApiError::not_found("no checkpoint yet"));
    };
    let have = tiles::tile_width(cp.size, level.unwrap_or(0), index).unwrap_or(0);
    let full = u64::from(width) == tiles::TILE_WIDTH;
    if have < width || (full && have != width) {
        return Err(ApiError::not_found(
            "no such tile in the latest checkpoint's tree",
        ));
    }
    let body = match level {
        Some(level) => s
            .prover
            .log_tile(Tile {
                level,
                index,
                width,
            })
            .await?
            .ok_or_else(|| {
                tracing::warn!(%path, size = cp.size, "a tile of the latest checkpoint's tree is not stored (the batcher writes the tiles of blocks sealed before tiles at its next start)");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "tiles_unavailable",
                    "the block log's tiles are not written yet",
                )
            })?,
        None => {
            let from = index * tiles::TILE_WIDTH;
            let headers = s
                .prover
                .ledger()
                .block_headers_between(from, from + u64::from(width))
                .await
                .map_err(ProveError::from)?;
            let encoded: Vec<Vec<u8>> = headers.iter().map(|h| h.encode()).collect();
            tiles::entry_bundle(&encoded).ok_or_else(|| {
                ApiError::from(ProveError::Corrupt("a block header over 65,535 bytes".into()))
            })?
        }
    };
    let mut r = Body::from(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if full { IMMUTABLE } else { PARTIAL }),
    );
    Ok(r)
}

// ---------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Anchord verifier API",
        version = "1",
        description = "Proof bundles, verification and checkpoints (docs/http-api.md)."
    ),
    paths(
        proof_by_hash,
        proof_by_id,
        verify,
        checkpoint_latest,
        checkpoint_by_size,
        consistency,
        tlog_checkpoint,
        openapi_json
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        VerifyRequest,
        VerifyUpload,
        VerifyResponse,
        CheckpointJson,
        ConsistencyJson
    ))
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", responses(
    (status = 200, description = "the OpenAPI document", body = Object),
    (status = 429, description = "rate limited", body = ErrorBody),
))]
async fn openapi_json() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}
