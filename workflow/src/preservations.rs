//! Preservations: a bank user fills a product's template and uploads a file;
//! a reviewer of the same bank (never the creator) approves it into the
//! ledger, or rejects it with a reason.
//!
//! Status machine: `saved → submitted → approved → on_chain`, and
//! `submitted → rejected → (edit) saved → submitted …`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::authz::{Caller, Require, Role, roles};
use crate::error::{ApiError, Json, Multipart, Path, Query};
use crate::evidence::{self, NewSubmission, SubmissionJson};
use crate::status::{self, Actor, PreservationStatus, Status};
use crate::store::preservations as store;
use crate::store::search as search_store;
use crate::{Workflow, events, files, products, search, ts, ts_opt};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPreservation {
    pub product_id: i64,
    /// Field key → value (strings; numbers allowed for `number` fields).
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPreservation {
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

impl Reason {
    /// The reason, trimmed: 1-2000 characters, line breaks and tabs but no
    /// other control character (PostgreSQL text holds no NUL: a reason
    /// with one was a 500), or a field error.
    pub fn checked(&self) -> Result<&str, ApiError> {
        let r = self.reason.trim();
        if r.is_empty() || self.reason.chars().count() > 2000 {
            return Err(ApiError::field("reason", "1-2000 characters"));
        }
        if r.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ApiError::field(
                "reason",
                "no control characters other than line breaks and tabs",
            ));
        }
        Ok(r)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileJson {
    pub name: String,
    pub size: i64,
    pub sha256: String,
    /// Under the sm3 suite.
    pub sm3: Option<String>,
}

/// Where the evidence stands in the ledger, with its anchors.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerJson {
    #[serde(flatten)]
    pub submission: SubmissionJson,
    /// `anchored` or `pending` (from the proof bundle), once sealed.
    pub anchor_status: Option<String>,
    /// `target chain_kind chain_id tx <id> block <n>`.
    pub anchors: Vec<String>,
    /// The proof bundle is at `proof_path` once sealed.
    pub proof_path: Option<String>,
    /// The preservation certificate (PDF) is at `certificate_path` once sealed.
    pub certificate_path: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreservationJson {
    pub id: i64,
    /// Human-facing number, e.g. `BQ0000000017`.
    pub number: String,
    pub tenant: String,
    pub product_id: i64,
    /// `saved`, `submitted`, `approved`, `on_chain`, `rejected`.
    pub status: String,
    #[schema(value_type = Object)]
    pub fields: serde_json::Value,
    pub file: Option<FileJson>,
    pub reject_reason: Option<String>,
    pub created_by: i64,
    pub reviewed_by: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub submitted_at: Option<String>,
    pub reviewed_at: Option<String>,
    pub ledger: Option<LedgerJson>,
}

impl From<store::Preservation> for PreservationJson {
    fn from(p: store::Preservation) -> Self {
        PreservationJson {
            id: p.id,
            number: p.number,
            tenant: p.tenant,
            product_id: p.product_id,
            status: p.status.as_str().to_owned(),
            fields: p.fields,
            file: p.file.map(|f| FileJson {
                name: f.name,
                size: f.size,
                sha256: f.sha256,
                sm3: f.sm3,
            }),
            reject_reason: p.reject_reason,
            created_by: p.created_by,
            reviewed_by: p.reviewed_by,
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
            submitted_at: ts_opt(p.submitted_at),
            reviewed_at: ts_opt(p.reviewed_at),
            ledger: None,
        }
    }
}

/// Load a preservation the caller may read (403 otherwise), on a
/// connection of its own (returned before the caller goes on).
async fn load(wf: &Workflow, caller: &Caller, id: i64) -> Result<store::Preservation, ApiError> {
    let c = wf.db().await?;
    load_on(&c, caller, id).await
}

/// [`load`] on the caller's connection: a handler never holds two.
async fn load_on(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<store::Preservation, ApiError> {
    let p = store::get(c, id).await?;
    if !caller.can_read_tenant(&p.tenant) {
        return Err(ApiError::forbidden(
            "this preservation belongs to another bank",
        ));
    }
    Ok(p)
}

/// The answer of a change: the record as the caller reads it now.
async fn answer(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    Ok(axum::Json(load_on(c, caller, id).await?.into()))
}

pub(crate) async fn ledger_view(
    wf: &Workflow,
    sub: Option<i64>,
    proof_path: String,
) -> Result<Option<LedgerJson>, ApiError> {
    let Some(sub) = sub else { return Ok(None) };
    // The connection goes back before the prover reads the ledger (conn.rs).
    let Some(s) = evidence::get(&*wf.db().await?, sub).await? else {
        return Ok(None);
    };
    let mut view = LedgerJson {
        submission: s,
        anchor_status: None,
        anchors: Vec::new(),
        proof_path: None,
        certificate_path: None,
    };
    if view.submission.state == crate::store::submissions::SubmissionState::Sealed.as_str()
        && let Some(b) = evidence::bundle(wf, &view.submission).await?
    {
        view.anchor_status = Some(
            match b.anchor.status {
                anchord_core::bundle::AnchorState::Anchored => "anchored",
                anchord_core::bundle::AnchorState::Pending => "pending",
            }
            .into(),
        );
        view.anchors = b
            .anchor
            .receipts
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} tx {} block {}",
                    r.target, r.chain_kind, r.chain_id, r.tx_id, r.block_number
                )
            })
            .collect();
        view.certificate_path = proof_path
            .strip_suffix("/proof")
            .map(|p| format!("{p}/certificate"));
        view.proof_path = Some(proof_path);
    }
    Ok(Some(view))
}

fn clean_fields(v: std::collections::BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        v.into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    )
}

/// Create a preservation (status `saved`).
#[utoipa::path(post, path = "/v1/preservations", request_body = NewPreservation, responses(
    (status = 201, body = PreservationJson),
    (status = 422, description = "a field violates the template; see `fields`", body = crate::error::ErrorBody),
))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Json(p): Json<NewPreservation>,
) -> Result<(StatusCode, axum::Json<PreservationJson>), ApiError> {
    let tenant = caller.tenant()?.to_owned();
    let c = wf.db().await?;
    let Some(template) = products::template(&c, p.product_id).await? else {
        return Err(ApiError::field("product_id", "no such product"));
    };
    let values = products::validate_values(&template, &p.fields).map_err(ApiError::validation)?;
    let fields = clean_fields(values);
    let id = store::create(c.client(), &tenant, p.product_id, caller.id, &fields).await?;
    Ok((StatusCode::CREATED, answer(&c, &caller, id).await?))
}

/// Edit the fields (creator; while `saved` or `rejected`).
#[utoipa::path(patch, path = "/v1/preservations/{id}", params(("id" = i64, Path)), request_body = EditPreservation,
    responses((status = 200, body = PreservationJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn edit(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Json<EditPreservation>, ApiError>,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    let c = wf.db().await?;
    let p = load_on(&c, &caller, id).await?;
    if p.created_by != caller.id {
        return Err(ApiError::forbidden("only the creator edits a preservation"));
    }
    // The body only now: the caller may touch the record (authz::Require).
    let Json(e) = body?;
    store::require_status(c.client(), &p, "editing", store::EDITABLE).await?;
    let template = products::template(&c, p.product_id)
        .await?
        .ok_or_else(|| ApiError::invalid_state("the product was deleted"))?;
    let values = products::validate_values(&template, &e.fields).map_err(ApiError::validation)?;
    store::edit_fields(c.client(), id, &clean_fields(values)).await?;
    answer(&c, &caller, id).await
}

/// Upload (or replace) the evidence file (creator; while `saved` or
/// `rejected`). Multipart form, part `file`; streamed and hashed.
#[utoipa::path(put, path = "/v1/preservations/{id}/file", params(("id" = i64, Path)),
    request_body(content = crate::error::FileUpload, content_type = "multipart/form-data", description = "part `file`"),
    responses((status = 200, body = PreservationJson),
              (status = 413, description = "over workflow.max_upload_bytes", body = crate::error::ErrorBody)))]
pub async fn upload(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Multipart, ApiError>,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    let p = load(&wf, &caller, id).await?;
    if p.created_by != caller.id {
        return Err(ApiError::forbidden("only the creator uploads the file"));
    }
    // The body only now: the caller may touch the record (authz::Require).
    let Multipart(mp) = body?;
    if !store::EDITABLE.contains(&p.status) {
        let c = wf.db().await?;
        store::require_status(c.client(), &p, "changing the file", store::EDITABLE).await?;
    }
    let f = files::receive(&wf, mp).await?;
    {
        // The reference change and the release of the file it replaces
        // (or of this upload, when refused) in one transaction; the
        // collector deletes after commit (files.rs).
        let mut c = wf.db().await?;
        let tx = c.transaction().await?;
        let Some(current) = store::lock_for_file(&tx, id).await? else {
            files::release(&tx, &f.sha256).await?;
            tx.commit().await?;
            return Err(ApiError::invalid_state(
                "the preservation was submitted meanwhile; its file cannot change",
            ));
        };
        let stored = store::StoredFile {
            name: f.name.clone(),
            size: f.size as i64,
            sha256: f.sha256.clone(),
            sm3: f.sm3.clone(),
        };
        store::set_file(&tx, id, &stored).await?;
        if let Some(old) = current
            && old != f.sha256
        {
            files::release(&tx, &old).await?;
        }
        tx.commit().await?;
    }
    Ok(axum::Json(load(&wf, &caller, id).await?.into()))
}

/// Submit for review (creator; needs a file).
#[utoipa::path(post, path = "/v1/preservations/{id}/submit", params(("id" = i64, Path)),
    responses((status = 200, body = PreservationJson), (status = 409, body = crate::error::ErrorBody)))]
pub async fn submit(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    let mut c = wf.db().await?;
    let p = load_on(&c, &caller, id).await?;
    if p.created_by != caller.id {
        return Err(ApiError::forbidden(
            "only the creator submits a preservation",
        ));
    }
    if p.file.is_none() {
        return Err(ApiError::field(
            "file",
            "upload the evidence file before submitting",
        ));
    }
    let tx = c.transaction().await?;
    store::submit(&tx, Actor::user(&caller), id).await?;
    events::emit(
        &tx,
        Some(&p.tenant),
        "preservation.submitted",
        serde_json::json!({"type": "preservation", "id": id, "number": p.number}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

fn review_guard(caller: &Caller, p: &store::Preservation) -> Result<(), ApiError> {
    if caller.tenant.as_deref() != Some(p.tenant.as_str()) {
        return Err(ApiError::forbidden(
            "reviewers review only their own bank's records",
        ));
    }
    if p.created_by == caller.id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "self_approval",
            "nobody reviews their own submission",
        ));
    }
    Ok(())
}

/// Approve (a reviewer of the bank, not the creator): the evidence goes to
/// the ledger through the evidence topic.
#[utoipa::path(post, path = "/v1/preservations/{id}/approve", params(("id" = i64, Path)),
    responses((status = 200, body = PreservationJson), (status = 403, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)))]
pub async fn approve(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Reviewer>,
    Path(id): Path<i64>,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    let mut c = wf.db().await?;
    let p = load_on(&c, &caller, id).await?;
    review_guard(&caller, &p)?;
    store::require_status(c.client(), &p, "approval", store::SUBMITTED).await?;
    let file = p
        .file
        .as_ref()
        .ok_or_else(|| ApiError::invalid_state("no file"))?;
    let alg = wf.evidence_alg();
    let hash = match alg {
        anchord_core::EvidenceAlg::Sm3 => file.sm3.clone().unwrap_or_default(),
        _ => file.sha256.clone(),
    };
    if hash.is_empty() {
        return Err(ApiError::invalid_state(
            "the file was uploaded before the deployment switched suites; upload it again",
        ));
    }
    let tx = c.transaction().await?;
    // The guard also pins the file the reviewer saw.
    store::approve(&tx, Actor::user(&caller), id, caller.id, &file.sha256).await?;
    let sub = evidence::enqueue(
        &tx,
        &NewSubmission {
            kind: "preservation",
            object_id: id,
            tenant: p.tenant.clone(),
            hash_alg: alg.name(),
            hash,
            // Committed, never published (evidence.rs).
            record: serde_json::json!({
                "source": "anchord-workflow",
                "kind": "preservation",
                "number": p.number,
                "product_id": p.product_id,
                "file_name": file.name,
                "file_size": file.size,
                "fields": p.fields,
            }),
        },
    )
    .await?;
    store::set_submission(&tx, id, sub).await?;
    events::emit(
        &tx,
        Some(&p.tenant),
        "preservation.approved",
        serde_json::json!({"type": "preservation", "id": id, "number": p.number}),
    )
    .await?;
    tx.commit().await?;
    wf.submissions_kick.notify_one();
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

/// Reject with a reason (a reviewer of the bank, not the creator).
#[utoipa::path(post, path = "/v1/preservations/{id}/reject", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = PreservationJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn reject(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Reviewer>,
    Path(id): Path<i64>,
    body: Result<Json<Reason>, ApiError>,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    let mut c = wf.db().await?;
    let p = load_on(&c, &caller, id).await?;
    review_guard(&caller, &p)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Json(r) = body?;
    let reason_text = r.checked()?;
    let tx = c.transaction().await?;
    store::reject(&tx, Actor::user(&caller), id, caller.id, reason_text).await?;
    events::emit(
        &tx,
        Some(&p.tenant),
        "preservation.rejected",
        serde_json::json!({"type": "preservation", "id": id, "number": p.number, "reason": reason_text}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
}

/// Details, with the ledger entry, block height and anchors.
#[utoipa::path(get, path = "/v1/preservations/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = PreservationJson), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<PreservationJson>, ApiError> {
    let p = load(&wf, &caller, id).await?;
    let sub = p.submission_id;
    let mut out = PreservationJson::from(p);
    out.ledger = ledger_view(&wf, sub, format!("/v1/preservations/{id}/proof")).await?;
    Ok(axum::Json(out))
}

/// The proof bundle (`docs/proof-format.md`), once the block is sealed.
#[utoipa::path(get, path = "/v1/preservations/{id}/proof", params(("id" = i64, Path)),
    responses((status = 200, description = "the proof bundle", body = Object),
              (status = 409, description = "not on chain yet", body = crate::error::ErrorBody)))]
pub async fn proof(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<anchord_core::bundle::Bundle>, ApiError> {
    let sub = load(&wf, &caller, id).await?.submission_id;
    bundle_of(&wf, sub).await
}

pub(crate) async fn bundle_of(
    wf: &Workflow,
    sub: Option<i64>,
) -> Result<axum::Json<anchord_core::bundle::Bundle>, ApiError> {
    let not_yet = || ApiError::invalid_state("the evidence is not sealed in a block yet");
    let sub = sub.ok_or_else(not_yet)?;
    // The connection goes back before the prover reads the ledger (conn.rs).
    let s = evidence::get(&*wf.db().await?, sub)
        .await?
        .ok_or_else(not_yet)?;
    let b = evidence::bundle(wf, &s).await?.ok_or_else(not_yet)?;
    Ok(axum::Json(b))
}

/// The preservation's preservation certificate (电子数据保全证书, PDF), once
/// sealed: the verifier's certificate of its ledger entry, then the
/// preservation's number, product, disclosed fields and file.
#[utoipa::path(get, path = "/v1/preservations/{id}/certificate", params(("id" = i64, Path)),
    responses((status = 200, description = "the certificate", content_type = "application/pdf"),
              (status = 409, description = "not sealed yet", body = crate::error::ErrorBody),
              (status = 503, description = "no certificate font on this server", body = crate::error::ErrorBody)))]
pub async fn certificate(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    crate::certificates::preservation_pdf(&wf, &caller, id).await
}

/// Download the evidence file.
#[utoipa::path(get, path = "/v1/preservations/{id}/file", params(("id" = i64, Path)),
    responses((status = 200, description = "the file", content_type = "application/octet-stream")))]
pub async fn download(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let p = load(&wf, &caller, id).await?;
    let f = p.file.ok_or_else(|| ApiError::not_found("file"))?;
    files::download(&wf, &f.sha256, &f.name, "application/octet-stream").await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub product_id: Option<i64>,
    /// `saved`, `submitted`, `approved`, `on_chain`, `rejected`.
    #[param(pattern = "^(saved|submitted|approved|on_chain|rejected)$")]
    pub status: Option<String>,
    /// The number or its beginning, any case (`BQ0000000017`, `bq00000000`);
    /// `%` and `_` are literal.
    pub number: Option<String>,
    /// With `field_value`: records whose template field `field_key` equals
    /// it exactly (with `product_id`, the key must be one of its fields).
    pub field_key: Option<String>,
    pub field_value: Option<String>,
    /// The file's SHA-256 (or SM3), 64 hex digits, any case.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    pub hash: Option<String>,
    /// The creator's username.
    pub initiator: Option<String>,
    /// Created at or after: RFC 3339, or a date (`2026-01-31`) in the
    /// deployment's zone (`workflow.utc_offset`).
    pub from: Option<String>,
    /// Created before: RFC 3339, or a date (that whole day included).
    pub to: Option<String>,
    /// At most this many, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the record with this id (the last id of the previous
    /// page; the `Anchord-Next-After` header of a full page).
    #[param(minimum = 1)]
    pub after: Option<i64>,
    /// Skip this many (0-10000; prefer `after`).
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<i64>,
}

/// The longest field value a search takes, in characters (a field's
/// longest value).
const MAX_FIELD_VALUE_CHARS: usize = 4096;

/// Search and list (administrators: all banks; reviewers and users: their
/// bank), newest first, paged (`limit`, `after`): by number, hash,
/// product, status, initiator, a template field's value and a date range
/// (docs/workflow-api.md, "Search").
#[utoipa::path(get, path = "/v1/preservations", params(ListQuery),
    responses((status = 200, body = [PreservationJson],
        headers(("Anchord-Next-After" = i64, description = "`after` for the next page, on a full page")))))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::AdminOrBank>,
    Query(q): Query<ListQuery>,
) -> Result<crate::paging::Paged<PreservationJson>, ApiError> {
    let tenant = if caller.role == Role::Admin {
        None
    } else {
        Some(caller.tenant()?.to_owned())
    };
    if q.field_key.is_some() != q.field_value.is_some() {
        return Err(ApiError::bad("field_key and field_value go together"));
    }
    if let Some(k) = &q.field_key
        && !products::valid_key(k)
    {
        return Err(ApiError::field("field_key", "a field key"));
    }
    if let Some(v) = &q.field_value
        && (v.chars().count() > MAX_FIELD_VALUE_CHARS || v.contains('\0'))
    {
        return Err(ApiError::field(
            "field_value",
            format!("at most {MAX_FIELD_VALUE_CHARS} characters, no NUL"),
        ));
    }
    crate::error::one_of("status", &q.status, &status::strs(PreservationStatus::ALL))?;
    let status = q
        .status
        .as_deref()
        .and_then(PreservationStatus::parse)
        .map(|s| s.as_str());
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let (from, to) = search::range(&q.from, &q.to, wf.config.zone())?;
    let filter = search_store::Preservations {
        tenant,
        product_id: q.product_id,
        status,
        number: search::number(&q.number)?,
        hash: search::hash(&q.hash)?,
        initiator: search::initiator(&q.initiator)?,
        // Values are stored trimmed (products::validate_values).
        field: q
            .field_key
            .clone()
            .zip(q.field_value.as_ref().map(|v| v.trim().to_owned())),
        from,
        to,
    };
    let offset = search::offset(q.offset)?;
    let c = wf.db().await?;
    if let (Some(pid), Some(k)) = (q.product_id, &q.field_key) {
        let fields = products::template(&c, pid).await?.unwrap_or_default();
        if !fields.iter().any(|f| &f.key == k) {
            return Err(ApiError::field("field_key", "not a field of this product"));
        }
    }
    let rows = search_store::preservations(
        c.client(),
        &filter,
        search_store::Page {
            limit: page.limit,
            after: page.after,
            offset,
        },
    )
    .await?;
    Ok(crate::paging::Paged::new(
        rows.into_iter().map(PreservationJson::from).collect(),
        page,
        |p| p.id,
    ))
}
