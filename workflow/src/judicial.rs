//! Judicial services: notarization and ruling requests for on-chain
//! preservations and contracts, processed by the institution they are
//! addressed to (and only by it).
//!
//! Status: `pending → in_review` (the institution starts its review, `POST
//! …/review`, or runs a comparison) `→ certified` (a certificate PDF was
//! issued; it is hashed and anchored through the evidence topic like any
//! evidence) or `→ refused` (with a reason). Reading a request never changes
//! it; every transition, and the comparison, is guarded in SQL (409 with
//! the current status otherwise): a decided request is final.

use std::collections::BTreeMap;
use std::sync::Arc;

use anchord_core::bundle::{TrustedKeys, verify_bundle};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::authz::{Caller, Require, Role, roles};
use crate::error::{ApiError, Json, Multipart, Path, Query};
use crate::evidence::{self, NewSubmission};
use crate::preservations::Reason;
use crate::status::{
    self, Actor, Change, ContractStatus, JudicialStatus, PreservationStatus, Status,
};
use crate::{Workflow, events, files, ts, ts_opt};

pub const MATCH_MESSAGE: &str = "结果一致，数据未篡改";
pub const MISMATCH_MESSAGE: &str = "结果不一致，数据与保全记录不符";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// `notarization` or `ruling`.
    pub kind: String,
    /// `preservation` or `contract`.
    pub subject_kind: String,
    pub subject_id: i64,
    /// A notary office (notarization) or a court (ruling).
    pub institution_id: String,
    /// Rulings: the case.
    pub case_description: Option<String>,
    /// Rulings: `civil_litigation`, `evidence_retention` or `other`.
    pub purpose: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestJson {
    pub id: i64,
    pub number: String,
    pub kind: String,
    pub tenant: String,
    pub subject_kind: String,
    pub subject_id: i64,
    pub institution_id: String,
    pub institution_name: String,
    /// Notarization fee, fen (CNY cents).
    pub fee_cents: Option<i64>,
    pub case_description: Option<String>,
    pub purpose: Option<String>,
    /// `pending`, `in_review`, `certified`, `refused`.
    pub status: String,
    pub refuse_reason: Option<String>,
    /// The last automatic comparison.
    #[schema(value_type = Option<Object>)]
    pub comparison: Option<serde_json::Value>,
    pub certificate: Option<CertificateJson>,
    pub created_by: i64,
    pub created_at: String,
    pub decided_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateJson {
    pub sha256: String,
    pub size: i64,
    pub download_path: String,
    /// Where the certificate's own hash stands in the ledger.
    pub ledger: Option<evidence::SubmissionJson>,
}

/// The states an institution acts on (compare, certify, refuse).
const OPEN: &[JudicialStatus] = &[JudicialStatus::Pending, JudicialStatus::InReview];

/// Is the request (its status as served) in one of `states`?
fn is_in(status: &str, states: &[JudicialStatus]) -> bool {
    states.iter().any(|s| s.as_str() == status)
}

/// Load a request the caller may read (403 otherwise), on a connection of
/// its own (returned before the caller goes on).
async fn load(
    wf: &Workflow,
    caller: &Caller,
    id: i64,
) -> Result<(RequestJson, Option<i64>), ApiError> {
    let c = wf.db().await?;
    load_on(&c, caller, id).await
}

/// [`load`] on the caller's connection: a handler never holds two.
async fn load_on(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<(RequestJson, Option<i64>), ApiError> {
    let r = c
        .query_opt(
            "SELECT r.id, r.number, r.kind, r.tenant, r.subject_kind, r.subject_id, r.institution_id, i.name,
                    r.fee_cents, r.case_description, r.purpose, r.status, r.refuse_reason, r.comparison,
                    r.certificate_sha256, r.certificate_size, r.created_by, r.created_at, r.decided_at,
                    r.certificate_submission_id
               FROM workflow.judicial_requests r JOIN workflow.institutions i ON i.id = r.institution_id
              WHERE r.id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("judicial request"))?;
    let tenant: String = r.get(3);
    let institution: String = r.get(6);
    let allowed = match caller.role {
        Role::Institution => caller.institution_id.as_deref() == Some(institution.as_str()),
        _ => caller.can_read_tenant(&tenant),
    };
    if !allowed {
        return Err(ApiError::forbidden(
            "this request is not addressed to you or your bank",
        ));
    }
    let cert_sub: Option<i64> = r.get(19);
    let certificate = match r.get::<_, Option<String>>(14) {
        Some(sha256) => Some(CertificateJson {
            sha256,
            size: r.get::<_, Option<i64>>(15).unwrap_or(0),
            download_path: format!("/v1/judicial-requests/{id}/certificate"),
            ledger: match cert_sub {
                Some(s) => evidence::get(c, s).await?,
                None => None,
            },
        }),
        None => None,
    };
    Ok((
        RequestJson {
            id: r.get(0),
            number: r.get(1),
            kind: r.get(2),
            tenant,
            subject_kind: r.get(4),
            subject_id: r.get(5),
            institution_id: institution,
            institution_name: r.get(7),
            fee_cents: r.get(8),
            case_description: r.get(9),
            purpose: r.get(10),
            status: r.get(11),
            refuse_reason: r.get(12),
            comparison: r.get(13),
            certificate,
            created_by: r.get(16),
            created_at: ts(r.get(17)),
            decided_at: ts_opt(r.get(18)),
        },
        cert_sub,
    ))
}

/// The subject's tenant, status, channels and submission.
async fn subject(
    c: &tokio_postgres::Client,
    kind: &str,
    id: i64,
) -> Result<Option<(String, String, Vec<String>, Option<i64>)>, ApiError> {
    let row = match kind {
        "preservation" => {
            c.query_opt(
                "SELECT p.tenant, p.status, pr.channels, p.submission_id
                   FROM workflow.preservations p JOIN workflow.products pr ON pr.id = p.product_id
                  WHERE p.id = $1",
                &[&id],
            )
            .await?
        }
        "contract" => {
            c.query_opt(
                "SELECT tenant, status, ARRAY['notarization', 'judicial_ruling']::text[], submission_id
                   FROM workflow.contracts WHERE id = $1",
                &[&id],
            )
            .await?
        }
        _ => None,
    };
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
}

/// Check a new request's own fields (those that need no record) into
/// `errs`; returns the institution kind and channel its `kind` needs
/// (`None`: an unknown kind).
pub fn check_new_request(
    n: &NewRequest,
    errs: &mut BTreeMap<String, String>,
) -> Option<(&'static str, &'static str)> {
    let kinds = match n.kind.as_str() {
        "notarization" => Some(("notary", "notarization")),
        "ruling" => Some(("court", "judicial_ruling")),
        _ => {
            errs.insert("kind".into(), "notarization or ruling".into());
            None
        }
    };
    if !matches!(n.subject_kind.as_str(), "preservation" | "contract") {
        errs.insert("subject_kind".into(), "preservation or contract".into());
    }
    if n.institution_id.is_empty() || n.institution_id.chars().count() > 64 {
        errs.insert("institution_id".into(), "no such institution".into());
    }
    match &n.case_description {
        Some(d) if !d.trim().is_empty() && d.chars().count() <= 4000 => {}
        None if n.kind != "ruling" => {}
        _ => {
            errs.insert(
                "case_description".into(),
                if n.kind == "ruling" {
                    "required, 1-4000 characters"
                } else {
                    "1-4000 characters"
                }
                .into(),
            );
        }
    }
    match n.purpose.as_deref() {
        Some("civil_litigation" | "evidence_retention" | "other") => {}
        None if n.kind != "ruling" => {}
        _ => {
            errs.insert(
                "purpose".into(),
                "civil_litigation, evidence_retention or other".into(),
            );
        }
    }
    kinds
}

/// Apply for a notarization or a ruling (a user of the subject's bank).
#[utoipa::path(post, path = "/v1/judicial-requests", request_body = NewRequest,
    responses((status = 201, body = RequestJson), (status = 409, body = crate::error::ErrorBody),
              (status = 422, body = crate::error::ErrorBody)))]
pub async fn create(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Json(n): Json<NewRequest>,
) -> Result<
    (
        StatusCode,
        [(axum::http::HeaderName, String); 1],
        axum::Json<RequestJson>,
    ),
    ApiError,
> {
    let tenant = caller.tenant()?.to_owned();
    let c = wf.db().await?;
    let mut errs = BTreeMap::new();
    let Some((want_kind, channel)) = check_new_request(&n, &mut errs) else {
        return Err(ApiError::validation(errs));
    };
    let inst = c
        .query_opt(
            "SELECT kind, fee_cents FROM workflow.institutions WHERE id = $1",
            &[&n.institution_id],
        )
        .await?;
    let fee = match inst {
        Some(r) if r.get::<_, String>(0) == want_kind => r.get::<_, i64>(1),
        Some(_) => {
            errs.insert(
                "institution_id".into(),
                format!("a {} request goes to a {want_kind}", n.kind),
            );
            0
        }
        None => {
            errs.insert("institution_id".into(), "no such institution".into());
            0
        }
    };
    let Some((subject_tenant, status, channels, _)) =
        subject(&c, &n.subject_kind, n.subject_id).await?
    else {
        errs.insert(
            "subject_id".into(),
            "no such preservation or contract".into(),
        );
        return Err(ApiError::validation(errs));
    };
    if subject_tenant != tenant {
        return Err(ApiError::forbidden("the subject belongs to another bank"));
    }
    let on_chain = if n.subject_kind == "contract" {
        ContractStatus::OnChain.as_str()
    } else {
        PreservationStatus::OnChain.as_str()
    };
    if status != on_chain {
        return Err(ApiError::invalid_state(format!(
            "the subject is {status}; only on-chain records can be notarized or ruled on"
        )));
    }
    if !channels.iter().any(|ch| ch == channel) {
        errs.insert(
            "kind".into(),
            format!("the product does not offer the {channel} channel"),
        );
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut c = c;
    let tx = c.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO workflow.judicial_requests
                (kind, tenant, subject_kind, subject_id, institution_id, fee_cents, case_description, purpose, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &n.kind,
                &tenant,
                &n.subject_kind,
                &n.subject_id,
                &n.institution_id,
                &(n.kind == "notarization").then_some(fee),
                &n.case_description.as_deref().map(str::trim),
                &n.purpose,
                &caller.id,
            ],
        )
        .await?
        .get(0);
    events::emit(
        &tx,
        Some(&tenant),
        "judicial_request.created",
        serde_json::json!({"type": "judicial_request", "id": id, "kind": n.kind}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok((
        StatusCode::CREATED,
        [(
            axum::http::header::LOCATION,
            format!("/v1/judicial-requests/{id}"),
        )],
        axum::Json(load_on(&c, &caller, id).await?.0),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending`, `in_review`, `certified`, `refused`.
    #[param(pattern = "^(pending|in_review|certified|refused)$")]
    pub status: Option<String>,
    /// `notarization` or `ruling`.
    #[param(pattern = "^(notarization|ruling)$")]
    pub kind: Option<String>,
    /// Items in the page (1-1000, default 100; "Paging").
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Continue after the request with this id (the `Anchord-Next-After`
    /// header of the previous, full page).
    #[param(minimum = 1)]
    pub after: Option<i64>,
}

/// Institutions: their queue; bank users: their bank's requests. Newest
/// first, in pages (`limit`, `after`; a full page names the next cursor in
/// `Anchord-Next-After`).
#[utoipa::path(get, path = "/v1/judicial-requests", params(ListQuery),
    responses((status = 200, body = [RequestJson])))]
pub async fn list(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<crate::paging::Paged<RequestJson>, ApiError> {
    let (tenant, inst) = match caller.role {
        Role::Admin => (None, None),
        Role::Institution => (None, caller.institution_id.clone()),
        _ => (Some(caller.tenant()?.to_owned()), None),
    };
    crate::error::one_of("status", &q.status, &status::strs(JudicialStatus::ALL))?;
    crate::error::one_of("kind", &q.kind, &["notarization", "ruling"])?;
    let page = crate::paging::Page {
        limit: q.limit,
        after: q.after,
    }
    .checked()?;
    let c = wf.db().await?;
    let ids: Vec<i64> = c
        .query(
            "SELECT id FROM workflow.judicial_requests
              WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR institution_id = $2)
                AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR kind = $4)
                AND ($5::bigint IS NULL OR id < $5)
              ORDER BY id DESC LIMIT $6",
            &[&tenant, &inst, &q.status, &q.kind, &page.after, &page.limit],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for id in ids {
        out.push(load_on(&c, &caller, id).await?.0);
    }
    Ok(crate::paging::Paged::new(out, page, |r| r.id))
}

/// One request. Reading never changes it (the institution starts its
/// review with `POST /v1/judicial-requests/{id}/review`).
#[utoipa::path(get, path = "/v1/judicial-requests/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = RequestJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn get(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<RequestJson>, ApiError> {
    Ok(axum::Json(load(&wf, &caller, id).await?.0))
}

/// Start the review (the addressed institution): `pending → in_review`.
#[utoipa::path(post, path = "/v1/judicial-requests/{id}/review", params(("id" = i64, Path)),
    responses((status = 200, body = RequestJson), (status = 403, body = crate::error::ErrorBody),
              (status = 409, description = "not pending", body = crate::error::ErrorBody)))]
pub async fn review(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Institution>,
    Path(id): Path<i64>,
) -> Result<axum::Json<RequestJson>, ApiError> {
    let mut c = wf.db().await?;
    let (r, _) = load_on(&c, &caller, id).await?;
    institution_guard(&caller, &r)?;
    let tx = c.transaction().await?;
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        &[JudicialStatus::Pending],
        JudicialStatus::InReview,
        "starting the review",
        Change::default(),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(load_on(&c, &caller, id).await?.0))
}

fn institution_guard(caller: &Caller, r: &RequestJson) -> Result<(), ApiError> {
    if caller.institution_id.as_deref() != Some(r.institution_id.as_str()) {
        return Err(ApiError::forbidden("this request is not addressed to you"));
    }
    Ok(())
}

/// The automatic comparison.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Comparison {
    /// `match` or `mismatch`.
    pub result: String,
    /// 结果一致，数据未篡改 / 结果不一致，数据与保全记录不符.
    pub message: String,
    pub hash_alg: String,
    /// The digest of the file supplied now.
    pub supplied_hash: String,
    /// The digest in the ledger entry.
    pub ledger_hash: String,
    pub supplied_size: u64,
    /// The proof bundle verified (`anchord_core::bundle::verify_bundle`,
    /// with the keys it declares).
    pub proof_verified: bool,
    pub proof_error: Option<String>,
    pub ledger_seq: u64,
    pub block_height: u64,
    pub anchored: bool,
    pub anchors: Vec<String>,
    pub compared_at: String,
}

/// Compare a file supplied now with the ledger entry, and verify the proof
/// (the addressed institution). Multipart form, part `file`.
#[utoipa::path(post, path = "/v1/judicial-requests/{id}/compare", params(("id" = i64, Path)),
    request_body(content = crate::error::FileUpload, content_type = "multipart/form-data", description = "part `file`"),
    responses((status = 200, body = Comparison), (status = 403, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody)))]
pub async fn compare(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Institution>,
    Path(id): Path<i64>,
    body: Result<Multipart, ApiError>,
) -> Result<axum::Json<Comparison>, ApiError> {
    let s = {
        let c = wf.db().await?;
        let (r, _) = load_on(&c, &caller, id).await?;
        institution_guard(&caller, &r)?;
        if !is_in(&r.status, OPEN) {
            return Err(status::conflict::<JudicialStatus, tokio_postgres::Client>(
                &c,
                id,
                "comparing",
                OPEN,
            )
            .await);
        }
        let (_, _, _, sub) = subject(&c, &r.subject_kind, r.subject_id)
            .await?
            .ok_or_else(|| ApiError::not_found("subject"))?;
        let not_sealed = || ApiError::invalid_state("the subject is not sealed in the ledger");
        evidence::get(&c, sub.ok_or_else(not_sealed)?)
            .await?
            .ok_or_else(not_sealed)?
        // The connection goes back before the upload is read.
    };
    // The body only now: the caller may touch the record (authz::Require).
    let Multipart(mp) = body?;
    let not_sealed = || ApiError::invalid_state("the subject is not sealed in the ledger");
    let b = evidence::bundle(&wf, &s).await?.ok_or_else(not_sealed)?;
    let (sha256, sm3, size) = files::hash_only(&wf, mp).await?;
    let supplied = if b.entry.hash_alg == anchord_core::EvidenceAlg::Sm3 {
        sm3.unwrap_or_default()
    } else {
        sha256
    };
    let supplied_bytes = hex::decode(&supplied).unwrap_or_default();
    let keys = TrustedKeys::from_bundle(&b).map_err(|_| ApiError::internal())?;
    // The proof itself (without the file), then the file against it.
    let (proof_verified, proof_error, anchored, anchors) = match verify_bundle(&b, &keys, None) {
        Ok(rep) => (true, None, rep.anchored, rep.anchors),
        Err(e) => (
            false,
            Some(format!("{}: {e}", e.check())),
            false,
            Vec::new(),
        ),
    };
    let matches = supplied_bytes == b.entry.evidence_hash
        && verify_bundle(&b, &keys, Some(&supplied_bytes)).is_ok();
    let cmp = Comparison {
        result: if matches { "match" } else { "mismatch" }.into(),
        message: if matches {
            MATCH_MESSAGE
        } else {
            MISMATCH_MESSAGE
        }
        .into(),
        hash_alg: b.entry.hash_alg.name().into(),
        supplied_hash: supplied,
        ledger_hash: hex::encode(&b.entry.evidence_hash),
        supplied_size: size,
        proof_verified,
        proof_error,
        ledger_seq: b.entry.seq,
        block_height: b.block.height,
        anchored,
        anchors,
        compared_at: ts(time::OffsetDateTime::now_utc()),
    };
    let json = serde_json::to_value(&cmp).map_err(|_| ApiError::internal())?;
    let mut c = wf.db().await?;
    // Guarded in SQL: a request decided meanwhile keeps its comparison.
    let tx = c.transaction().await?;
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        OPEN,
        JudicialStatus::InReview,
        "comparing",
        Change {
            set: ", comparison = $4",
            params: &[&json],
            note: Some(&format!("comparison: {}", cmp.result)),
            ..Change::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(cmp))
}

/// Issue the certificate (the addressed institution): an uploaded PDF,
/// hashed and anchored through the evidence topic.
#[utoipa::path(post, path = "/v1/judicial-requests/{id}/certificate", params(("id" = i64, Path)),
    request_body(content = crate::error::FileUpload, content_type = "multipart/form-data", description = "part `file`: the PDF"),
    responses((status = 200, body = RequestJson), (status = 409, body = crate::error::ErrorBody),
              (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn issue_certificate(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Institution>,
    Path(id): Path<i64>,
    body: Result<Multipart, ApiError>,
) -> Result<axum::Json<RequestJson>, ApiError> {
    let (r, _) = load(&wf, &caller, id).await?;
    institution_guard(&caller, &r)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Multipart(mp) = body?;
    if !is_in(&r.status, OPEN) {
        let c = wf.db().await?;
        return Err(status::conflict::<JudicialStatus, tokio_postgres::Client>(
            &c,
            id,
            "certifying",
            OPEN,
        )
        .await);
    }
    let f = files::receive(&wf, mp).await?;
    let mut head = [0u8; 5];
    let is_pdf = match tokio::fs::File::open(&f.path).await {
        Ok(mut file) => {
            use tokio::io::AsyncReadExt as _;
            file.read_exact(&mut head).await.is_ok() && &head == b"%PDF-"
        }
        Err(_) => false,
    };
    if !is_pdf {
        return Err(ApiError::field("file", "the certificate must be a PDF"));
    }
    let alg = wf.evidence_alg();
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        OPEN,
        JudicialStatus::Certified,
        "certifying",
        Change {
            set: ", certificate_sha256 = $4, certificate_size = $5, decided_by = $6, decided_at = now()",
            params: &[&f.sha256, &(f.size as i64), &caller.id],
            ..Change::default()
        },
    )
    .await?;
    let sub = evidence::enqueue(
        &tx,
        &NewSubmission {
            kind: "certificate",
            object_id: id,
            tenant: r.tenant.clone(),
            hash_alg: alg.name(),
            hash: f.evidence_hash(alg),
            record: serde_json::json!({
                "source": "anchord-workflow",
                "kind": "certificate",
                "request": r.number,
                "request_kind": r.kind,
                "institution": r.institution_id,
                "subject": format!("{}/{}", r.subject_kind, r.subject_id),
            }),
        },
    )
    .await?;
    tx.execute(
        "UPDATE workflow.judicial_requests SET certificate_submission_id = $2 WHERE id = $1",
        &[&id, &sub],
    )
    .await?;
    events::emit(
        &tx,
        Some(&r.tenant),
        "judicial_request.certified",
        serde_json::json!({"type": "judicial_request", "id": id, "number": r.number}),
    )
    .await?;
    tx.commit().await?;
    wf.submissions_kick.notify_one();
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load_on(&c, &caller, id).await?.0))
}

/// Refuse with a reason (the addressed institution).
#[utoipa::path(post, path = "/v1/judicial-requests/{id}/refuse", params(("id" = i64, Path)), request_body = Reason,
    responses((status = 200, body = RequestJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn refuse(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Institution>,
    Path(id): Path<i64>,
    body: Result<Json<Reason>, ApiError>,
) -> Result<axum::Json<RequestJson>, ApiError> {
    let mut c = wf.db().await?;
    let (r, _) = load_on(&c, &caller, id).await?;
    institution_guard(&caller, &r)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Json(reason) = body?;
    let reason_text = reason.checked()?;
    let tx = c.transaction().await?;
    status::transition(
        &tx,
        Actor::user(&caller),
        id,
        OPEN,
        JudicialStatus::Refused,
        "refusing",
        Change {
            set: ", refuse_reason = $4, decided_by = $5, decided_at = now()",
            params: &[&reason_text, &caller.id],
            ..Change::default()
        },
    )
    .await?;
    events::emit(
        &tx,
        Some(&r.tenant),
        "judicial_request.refused",
        serde_json::json!({"type": "judicial_request", "id": id, "reason": reason_text}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    Ok(axum::Json(load_on(&c, &caller, id).await?.0))
}

/// Download the certificate PDF (the requesting bank or the institution).
#[utoipa::path(get, path = "/v1/judicial-requests/{id}/certificate", params(("id" = i64, Path)),
    responses((status = 200, description = "the PDF", content_type = "application/pdf"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn download_certificate(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (r, _) = load(&wf, &caller, id).await?;
    let cert = r
        .certificate
        .ok_or_else(|| ApiError::not_found("certificate"))?;
    files::download(
        &wf,
        &cert.sha256,
        &format!("{}-certificate.pdf", r.number),
        "application/pdf",
    )
    .await
}
