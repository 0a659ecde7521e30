//! The one error body of the API:
//! `{"error": {"code": "...", "message": "...", "fields": {...}}}`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `unauthenticated`, `forbidden`,
    /// `not_found`, `validation_failed`, `conflict`, `too_large`,
    /// `account_locked`, `bad_request`, `internal`, ...
    pub code: &'static str,
    /// Human-readable explanation (never internal error text).
    pub message: String,
    /// Per-field problems (key → message), for `validation_failed`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// A client-facing error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    /// `Retry-After` in whole seconds (at least 1), for a 429; a 429
    /// without one is answered with `Retry-After: 1`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
        }
    }
    /// 429 `rate_limited`, retry after `secs` seconds (at least 1).
    pub fn rate_limited(message: impl Into<String>, secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_state", message)
    }
    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: "some fields are invalid; see `fields`".into(),
            fields,
            retry_after: None,
        }
    }
    pub fn field(key: &str, message: impl Into<String>) -> Self {
        Self::validation(BTreeMap::from([(key.to_owned(), message.into())]))
    }
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the uploaded file exceeds the limit of {limit} bytes"),
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        tracing::error!(error = %e, "workflow database error");
        ApiError::internal()
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::error!(error = %e, "workflow database pool error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; retry later",
        )
    }
}

impl From<anchord_ledger::LedgerError> for ApiError {
    fn from(e: anchord_ledger::LedgerError) -> Self {
        tracing::error!(error = %e, "ledger error");
        ApiError::internal()
    }
}

impl From<anchord_verifier::prover::ProveError> for ApiError {
    fn from(e: anchord_verifier::prover::ProveError) -> Self {
        tracing::error!(error = %e, "assembling a proof failed");
        ApiError::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                fields: self.fields,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            ensure_retry_after(&mut resp, self.retry_after.unwrap_or(1));
        }
        resp
    }
}

/// Every 429 the workflow sends carries `Retry-After` (whole seconds, at
/// least 1): `secs` unless the answer already has one.
pub fn ensure_retry_after(resp: &mut Response, secs: u64) {
    if resp.status() != StatusCode::TOO_MANY_REQUESTS
        || resp.headers().contains_key(axum::http::header::RETRY_AFTER)
    {
        return;
    }
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(secs.max(1)),
    );
}

/// JSON body extractor whose rejections use the error body above.
///
/// Every request body of the API is a JSON object. serde's derived struct
/// reader also takes an array of the fields in order (`[]` filled every
/// optional field with nothing and answered 200), so an array is refused
/// here, once for every route, before the body is read as `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

/// `application/json` or `application/<anything>+json`, as axum's own JSON
/// extractor accepts.
fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S, T> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as `Content-Type: application/json`",
            ));
        }
        let bytes =
            match <axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(req, state)
                .await
            {
                Ok(b) => b,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        "the request body is too large",
                    ));
                }
                Err(e) => return Err(ApiError::new(e.status(), "bad_body", e.body_text())),
            };
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_json",
                "the body is a JSON object, not an array",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            // 400 (syntax) or 422 (well-formed JSON of the wrong shape).
            Err(e) => Err(ApiError::new(e.status(), "bad_json", e.body_text())),
        }
    }
}

/// Path extractor with the error body above.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(_) => Err(ApiError::bad("malformed path parameter")),
        }
    }
}

/// Query extractor with the error body above.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(ApiError::bad(format!("malformed query: {}", e.body_text()))),
        }
    }
}

/// A query value that must be one of `allowed` (422 otherwise).
pub(crate) fn one_of(key: &str, v: &Option<String>, allowed: &[&str]) -> Result<(), ApiError> {
    match v {
        Some(s) if !allowed.contains(&s.as_str()) => Err(ApiError::field(
            key,
            format!("one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// A query number that must be within `min..=max` (422 otherwise).
pub(crate) fn in_range(key: &str, v: Option<i64>, min: i64, max: i64) -> Result<(), ApiError> {
    match v {
        Some(n) if n < min || n > max => {
            Err(ApiError::field(key, format!("between {min} and {max}")))
        }
        _ => Ok(()),
    }
}

/// A query hash: 64 hex digits (SHA-256 or SM3), 422 otherwise.
pub(crate) fn hex64(key: &str, v: &Option<String>) -> Result<(), ApiError> {
    match v {
        Some(s) if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) => Err(
            ApiError::field(key, "64 hexadecimal digits (a SHA-256 or SM3 digest)"),
        ),
        _ => Ok(()),
    }
}

/// Multipart extractor whose rejections (no or a malformed
/// `multipart/form-data` content type) use the error body above.
#[derive(Debug)]
pub struct Multipart(pub axum::extract::Multipart);

impl<S> axum::extract::FromRequest<S> for Multipart
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let is_multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !is_multipart {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the file as `multipart/form-data` with a part named `file`",
            ));
        }
        match axum::extract::Multipart::from_request(req, state).await {
            Ok(m) => Ok(Multipart(m)),
            Err(e) => Err(ApiError::bad(format!(
                "malformed multipart body: {}",
                e.body_text()
            ))),
        }
    }
}

/// The multipart form of an upload (OpenAPI only).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FileUpload {
    /// The file (any content; a PDF for certificates).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}
