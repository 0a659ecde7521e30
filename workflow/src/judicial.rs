//! Judicial services: notarization and ruling requests for on-chain
//! preservations and contracts, processed by the institution they are
//! addressed to (and only by it).
//!
//! Status: `pending → in_review` (the institution starts its review, `POST
//! …/review`, or runs a comparison) `→ certified` (a certificate PDF was
//! issued; it is hashed and anchored through the evidence topic like any
//! evidence) or `→ refused` (with a reason). Reading a request never changes
//! it; every transition, and the comparison, is guarded in SQL (409 with
//! the current status otherwise): a decided request is final
//! (`store/judicial.rs` holds every statement).
//!
//! Evidence handover: the applicant either attaches the file (`evidence:
//! attached`, then `PUT …/evidence`, within the upload limit, stored like
//! every workflow file) or authorises the institution to read the
//! preserved file or the contract's text (`authorised`). The institution
//! sees the subject (`GET …/subject`: fields, file, ledger entry, block,
//! anchors, as the preservation detail shows them), downloads the evidence
//! (`GET …/evidence`), runs the comparison (`POST …/compare-evidence`: the
//! file's hash, computed from the bytes now, against the ledger entry's,
//! with the proof verified) and downloads its report (`GET
//! …/comparison-report`, a PDF). Only the applicant's bank and the
//! addressed institution see a request and its evidence.

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
use crate::preservations::{Reason, bundle_of, ledger_view};
use crate::status::{self, Actor, ContractStatus, JudicialStatus, PreservationStatus, Status};
use crate::store::judicial as store;
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
    /// How the evidence is handed over: `attached` (upload it next with
    /// `PUT /v1/judicial-requests/{id}/evidence`) or `authorised` (the
    /// institution reads the preserved file, or the contract's text).
    /// Omitted: the institution compares a file it brings.
    #[schema(pattern = "^(attached|authorised)$")]
    pub evidence: Option<String>,
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
    /// How the applicant hands the evidence over, and the file.
    pub evidence: EvidenceJson,
    /// The last automatic comparison.
    #[schema(value_type = Option<Object>)]
    pub comparison: Option<serde_json::Value>,
    /// The comparison report (PDF) is at this path once compared.
    pub comparison_report_path: Option<String>,
    pub certificate: Option<CertificateJson>,
    pub created_by: i64,
    pub created_at: String,
    pub decided_at: Option<String>,
}

/// The evidence handover of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceJson {
    /// `attached` (the applicant uploads the file: `PUT …/evidence`),
    /// `authorised` (the institution reads the preserved file, or the
    /// contract's text), or `null` (the institution compares a file it
    /// brings: `POST …/compare`).
    pub handover: Option<String>,
    /// The attached file, once uploaded.
    pub file: Option<crate::preservations::FileJson>,
    /// Whether the institution can read the evidence now.
    pub available: bool,
    /// Where the institution (and the applicant) download it.
    pub download_path: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateJson {
    pub sha256: String,
    pub size: i64,
    pub download_path: String,
    /// Where the certificate's own hash stands in the ledger.
    pub ledger: Option<evidence::SubmissionJson>,
}

/// May `caller` read request `r`: the institution it is addressed to, or
/// the applicant's bank (administrators: all)?
fn may_read(caller: &Caller, r: &store::Request) -> bool {
    match caller.role {
        Role::Institution => caller.institution_id.as_deref() == Some(r.institution_id.as_str()),
        _ => caller.can_read_tenant(&r.tenant),
    }
}

/// Load a request the caller may read (403 otherwise), on a connection of
/// its own (returned before the caller goes on).
async fn load(wf: &Workflow, caller: &Caller, id: i64) -> Result<store::Request, ApiError> {
    let c = wf.db().await?;
    load_on(&c, caller, id).await
}

/// [`load`] on the caller's connection: a handler never holds two.
async fn load_on(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<store::Request, ApiError> {
    let r = store::get(c, id).await?;
    if !may_read(caller, &r) {
        return Err(ApiError::forbidden(
            "this request is not addressed to you or your bank",
        ));
    }
    Ok(r)
}

/// The request as served, on the caller's connection.
async fn view(c: &tokio_postgres::Client, r: store::Request) -> Result<RequestJson, ApiError> {
    let id = r.id;
    let certificate = match r.certificate_sha256 {
        Some(sha256) => Some(CertificateJson {
            sha256,
            size: r.certificate_size.unwrap_or(0),
            download_path: format!("/v1/judicial-requests/{id}/certificate"),
            ledger: match r.certificate_submission_id {
                Some(s) => evidence::get(c, s).await?,
                None => None,
            },
        }),
        None => None,
    };
    let available = match r.handover {
        Some(store::Handover::Attached) => r.evidence.is_some(),
        Some(store::Handover::Authorised) => true,
        None => false,
    };
    Ok(RequestJson {
        id,
        number: r.number,
        kind: r.kind,
        tenant: r.tenant,
        subject_kind: r.subject_kind,
        subject_id: r.subject_id,
        institution_id: r.institution_id,
        institution_name: r.institution_name,
        fee_cents: r.fee_cents,
        case_description: r.case_description,
        purpose: r.purpose,
        status: r.status.as_str().to_owned(),
        refuse_reason: r.refuse_reason,
        evidence: EvidenceJson {
            handover: r.handover.map(|h| h.as_str().to_owned()),
            file: r.evidence.map(|e| crate::preservations::FileJson {
                name: e.name,
                size: e.size,
                sha256: e.sha256,
                sm3: e.sm3,
            }),
            available,
            download_path: available.then(|| format!("/v1/judicial-requests/{id}/evidence")),
        },
        comparison_report_path: r
            .comparison
            .is_some()
            .then(|| format!("/v1/judicial-requests/{id}/comparison-report")),
        comparison: r.comparison,
        certificate,
        created_by: r.created_by,
        created_at: ts(r.created_at),
        decided_at: ts_opt(r.decided_at),
    })
}

/// The answer of a change: the request as the caller reads it now.
async fn answer(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
) -> Result<axum::Json<RequestJson>, ApiError> {
    let r = load_on(c, caller, id).await?;
    Ok(axum::Json(view(c, r).await?))
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
    if let Some(h) = &n.evidence
        && store::Handover::parse(h).is_none()
    {
        errs.insert("evidence".into(), "attached or authorised".into());
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

/// Apply for a notarization or a ruling (a user of the subject's bank, or a
/// signer of the subject contract).
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
    let mut c = wf.db().await?;
    let mut errs = BTreeMap::new();
    let Some((want_kind, channel)) = check_new_request(&n, &mut errs) else {
        return Err(ApiError::validation(errs));
    };
    let fee = match store::institution(c.client(), &n.institution_id).await? {
        // A disabled institution takes no requests: its users cannot log
        // in, and the evidence handed over would wait for nobody (security
        // review H19).
        Some((_, _, true)) => {
            errs.insert(
                "institution_id".into(),
                "this institution is disabled and takes no requests".into(),
            );
            0
        }
        Some((kind, fee, false)) if kind == want_kind => fee,
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
    let Some(subject) = store::subject(c.client(), &n.subject_kind, n.subject_id).await? else {
        errs.insert(
            "subject_id".into(),
            "no such preservation or contract".into(),
        );
        return Err(ApiError::validation(errs));
    };
    // The subjects the on-chain list offers (search.rs): the bank's own
    // records, and the contracts of other organisations the caller signs.
    if subject.tenant != tenant
        && !(n.subject_kind == "contract"
            && crate::store::contracts::get(c.client(), n.subject_id)
                .await?
                .signer(caller.id)
                .is_some())
    {
        return Err(ApiError::forbidden("the subject belongs to another bank"));
    }
    let on_chain = if n.subject_kind == "contract" {
        ContractStatus::OnChain.as_str()
    } else {
        PreservationStatus::OnChain.as_str()
    };
    if subject.status != on_chain {
        return Err(ApiError::invalid_state(format!(
            "the subject is {}; only on-chain records can be notarized or ruled on",
            subject.status
        )));
    }
    if !subject.channels.iter().any(|ch| ch == channel) {
        errs.insert(
            "kind".into(),
            format!("the product does not offer the {channel} channel"),
        );
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let tx = c.transaction().await?;
    let id = store::create(
        &tx,
        &store::NewRequest {
            kind: &n.kind,
            tenant: &tenant,
            subject_kind: &n.subject_kind,
            subject_id: n.subject_id,
            institution_id: &n.institution_id,
            fee_cents: (n.kind == "notarization").then_some(fee),
            case_description: n.case_description.as_deref().map(str::trim),
            purpose: n.purpose.as_deref(),
            created_by: caller.id,
            handover: n.evidence.as_deref().and_then(store::Handover::parse),
        },
    )
    .await?;
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
        answer(&c, &caller, id).await?,
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
    let rows = store::list(
        c.client(),
        &store::Filter {
            tenant: tenant.as_deref(),
            institution: inst.as_deref(),
            status: q.status.as_deref().and_then(JudicialStatus::parse),
            kind: q.kind.as_deref(),
            after: page.after,
            limit: page.limit,
        },
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(view(&c, r).await?);
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
    let c = wf.db().await?;
    answer(&c, &caller, id).await
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
    let r = load_on(&c, &caller, id).await?;
    institution_guard(&caller, &r)?;
    let tx = c.transaction().await?;
    store::start_review(&tx, Actor::user(&caller), id).await?;
    tx.commit().await?;
    answer(&c, &caller, id).await
}

fn institution_guard(caller: &Caller, r: &store::Request) -> Result<(), ApiError> {
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
    /// What was compared: `institution_file` (a file the institution
    /// supplied), `attached_file` (the applicant's attachment),
    /// `preserved_file` (the preserved file, read from storage) or
    /// `contract_text` (the contract's stored text).
    #[serde(default)]
    pub source: String,
    /// The compared file's name, when known.
    #[serde(default)]
    pub file_name: Option<String>,
    pub hash_alg: String,
    /// The digest of the file compared.
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

/// The file compared: where it came from and its digests.
struct Supplied {
    source: &'static str,
    name: Option<String>,
    sha256: String,
    sm3: Option<String>,
    size: u64,
}

/// The subject's ledger submission for an open request the caller (its
/// institution) acts on, on the caller's connection.
async fn open_subject(
    c: &tokio_postgres::Client,
    caller: &Caller,
    id: i64,
    action: &str,
) -> Result<(store::Request, evidence::SubmissionJson), ApiError> {
    let r = load_on(c, caller, id).await?;
    institution_guard(caller, &r)?;
    if !store::OPEN.contains(&r.status) {
        return Err(status::conflict::<JudicialStatus, tokio_postgres::Client>(
            c,
            id,
            action,
            store::OPEN,
        )
        .await);
    }
    let sub = store::subject(c, &r.subject_kind, r.subject_id)
        .await?
        .ok_or_else(|| ApiError::not_found("subject"))?;
    let not_sealed = || ApiError::invalid_state("the subject is not sealed in the ledger");
    let s = evidence::get(c, sub.submission_id.ok_or_else(not_sealed)?)
        .await?
        .ok_or_else(not_sealed)?;
    Ok((r, s))
}

/// Compare `supplied` with the subject's ledger entry `s`, verify the
/// proof, and record the comparison on request `id` (guarded in SQL).
async fn compare_and_record(
    wf: &Workflow,
    caller: &Caller,
    id: i64,
    s: &evidence::SubmissionJson,
    supplied: Supplied,
) -> Result<Comparison, ApiError> {
    let not_sealed = || ApiError::invalid_state("the subject is not sealed in the ledger");
    let b = evidence::bundle(wf, s).await?.ok_or_else(not_sealed)?;
    let hash = if b.entry.hash_alg == anchord_core::EvidenceAlg::Sm3 {
        supplied.sm3.unwrap_or_default()
    } else {
        supplied.sha256
    };
    let supplied_bytes = hex::decode(&hash).unwrap_or_default();
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
        source: supplied.source.into(),
        file_name: supplied.name,
        hash_alg: b.entry.hash_alg.name().into(),
        supplied_hash: hash,
        ledger_hash: hex::encode(&b.entry.evidence_hash),
        supplied_size: supplied.size,
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
    let tx = c.transaction().await?;
    store::record_comparison(&tx, Actor::user(caller), id, &json, &cmp.result).await?;
    tx.commit().await?;
    Ok(cmp)
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
        open_subject(&c, &caller, id, "comparing").await?.1
        // The connection goes back before the upload is read.
    };
    // The body only now: the caller may touch the record (authz::Require).
    let Multipart(mp) = body?;
    let (sha256, sm3, size) = files::hash_only(&wf, mp).await?;
    let supplied = Supplied {
        source: "institution_file",
        name: None,
        sha256,
        sm3,
        size,
    };
    Ok(axum::Json(
        compare_and_record(&wf, &caller, id, &s, supplied).await?,
    ))
}

/// The handed-over evidence of `r` (what the institution reads): the
/// attached file, the preserved file, or the contract's text.
enum Handed {
    /// A stored file: its SHA-256 (the storage key), name and size.
    Stored {
        source: &'static str,
        sha256: String,
        name: String,
    },
    /// The contract's text.
    Text { name: String, body: String },
}

async fn handed_over(c: &tokio_postgres::Client, r: &store::Request) -> Result<Handed, ApiError> {
    match r.handover {
        Some(store::Handover::Attached) => {
            let e = r.evidence.as_ref().ok_or_else(|| {
                ApiError::invalid_state(
                    "the applicant has not attached the evidence file yet (PUT /v1/judicial-requests/{id}/evidence)",
                )
            })?;
            Ok(Handed::Stored {
                source: "attached_file",
                sha256: e.sha256.clone(),
                name: e.name.clone(),
            })
        }
        Some(store::Handover::Authorised) if r.subject_kind == "contract" => {
            let k = crate::store::contracts::get(c, r.subject_id).await?;
            Ok(Handed::Text {
                name: format!("{}.txt", k.number),
                body: k.body,
            })
        }
        Some(store::Handover::Authorised) => {
            let p = crate::store::preservations::get(c, r.subject_id).await?;
            let f = p
                .file
                .ok_or_else(|| ApiError::not_found("preserved file"))?;
            Ok(Handed::Stored {
                source: "preserved_file",
                sha256: f.sha256,
                name: f.name,
            })
        }
        None => Err(ApiError::invalid_state(
            "this request hands no evidence over: compare a file you bring (POST /v1/judicial-requests/{id}/compare)",
        )),
    }
}

/// Hash a stored file as it is on disk now (SHA-256, and SM3 under the
/// sm3 suite), streamed: the comparison checks the bytes, not the name.
async fn hash_stored(
    wf: &Workflow,
    sha256_key: &str,
) -> Result<(String, Option<String>, u64), ApiError> {
    use anchord_core::EvidenceAlg;
    use anchord_core::filehash::FileHasher;
    use tokio::io::AsyncReadExt as _;
    let mut f = match tokio::fs::File::open(files::path_of(wf, sha256_key)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(
                sha256 = sha256_key,
                "a handed-over file is missing from storage"
            );
            return Err(ApiError::not_found("file"));
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a stored file");
            return Err(ApiError::internal());
        }
    };
    let mut sha = FileHasher::new(EvidenceAlg::Sha256);
    let mut sm3 =
        (wf.evidence_alg() == EvidenceAlg::Sm3).then(|| FileHasher::new(EvidenceAlg::Sm3));
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).await.map_err(|e| {
            tracing::error!(error = %e, "reading a stored file");
            ApiError::internal()
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        sha.update(&buf[..n]);
        if let Some(h) = sm3.as_mut() {
            h.update(&buf[..n]);
        }
    }
    Ok((
        hex::encode(sha.finalize()),
        sm3.map(|h| hex::encode(h.finalize())),
        size,
    ))
}

/// Compare the handed-over evidence (the applicant's attachment, or the
/// preserved file / contract text the applicant authorised) with the
/// ledger entry, and verify the proof (the addressed institution).
#[utoipa::path(post, path = "/v1/judicial-requests/{id}/compare-evidence", params(("id" = i64, Path)),
    responses((status = 200, body = Comparison), (status = 403, body = crate::error::ErrorBody),
              (status = 409, description = "decided, or no evidence handed over yet", body = crate::error::ErrorBody)))]
pub async fn compare_evidence(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Institution>,
    Path(id): Path<i64>,
) -> Result<axum::Json<Comparison>, ApiError> {
    let (s, handed) = {
        let c = wf.db().await?;
        let (r, s) = open_subject(&c, &caller, id, "comparing").await?;
        (s, handed_over(&c, &r).await?)
    };
    let supplied = match handed {
        Handed::Stored {
            source,
            sha256,
            name,
        } => {
            let (sha256, sm3, size) = hash_stored(&wf, &sha256).await?;
            Supplied {
                source,
                name: Some(name),
                sha256,
                sm3,
                size,
            }
        }
        Handed::Text { name, body } => Supplied {
            source: "contract_text",
            name: Some(name),
            sha256: hex::encode(anchord_core::EvidenceAlg::Sha256.hash(body.as_bytes())),
            sm3: Some(hex::encode(
                anchord_core::EvidenceAlg::Sm3.hash(body.as_bytes()),
            )),
            size: body.len() as u64,
        },
    };
    Ok(axum::Json(
        compare_and_record(&wf, &caller, id, &s, supplied).await?,
    ))
}

/// Attach the evidence file (the applicant's bank, while the request is
/// pending and hands its evidence over `attached`): multipart, part
/// `file`, within the upload limit. A new upload replaces the previous one.
#[utoipa::path(put, path = "/v1/judicial-requests/{id}/evidence", params(("id" = i64, Path)),
    request_body(content = crate::error::FileUpload, content_type = "multipart/form-data", description = "part `file`"),
    responses((status = 200, body = RequestJson), (status = 403, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
pub async fn attach_evidence(
    State(wf): State<Arc<Workflow>>,
    Require(caller, _): Require<roles::Bank>,
    Path(id): Path<i64>,
    body: Result<Multipart, ApiError>,
) -> Result<axum::Json<RequestJson>, ApiError> {
    {
        let r = load(&wf, &caller, id).await?;
        if r.handover != Some(store::Handover::Attached) {
            return Err(ApiError::invalid_state(
                "this request does not hand its evidence over as an attached file",
            ));
        }
        if r.status != JudicialStatus::Pending {
            let c = wf.db().await?;
            return Err(status::conflict::<JudicialStatus, tokio_postgres::Client>(
                &c,
                id,
                "attaching the evidence",
                &[JudicialStatus::Pending],
            )
            .await);
        }
    }
    // The body only now: the caller may touch the record (authz::Require).
    let Multipart(mp) = body?;
    let f = files::receive(&wf, mp).await?;
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    let attached = store::attach_evidence(
        &tx,
        id,
        &store::Evidence {
            name: f.name.clone(),
            size: f.size as i64,
            sha256: f.sha256.clone(),
            sm3: f.sm3.clone(),
        },
    )
    .await;
    let previous = match attached {
        Ok(p) => p,
        Err(e) => {
            drop(tx);
            // Stored but not referenced: the collector decides.
            files::release_now(&c, &f.sha256).await?;
            return Err(e.into());
        }
    };
    if let Some(prev) = previous.filter(|p| *p != f.sha256) {
        files::release(&tx, &prev).await?;
    }
    crate::audit::append_in(
        &tx,
        Some(caller.id),
        &caller.username,
        "judicial_request.evidence_attached",
        &format!("judicial_request/{id}"),
        "ok",
        &format!("{} ({} bytes, sha256 {})", f.name, f.size, f.sha256),
    )
    .await?;
    tx.commit().await?;
    answer(&c, &caller, id).await
}

/// Download the handed-over evidence (the addressed institution, or the
/// applicant's bank): the attached file, the preserved file the applicant
/// authorised, or the contract's text.
#[utoipa::path(get, path = "/v1/judicial-requests/{id}/evidence", params(("id" = i64, Path)),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
              (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn download_evidence(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let handed = {
        let c = wf.db().await?;
        let r = load_on(&c, &caller, id).await?;
        handed_over(&c, &r).await?
    };
    match handed {
        Handed::Stored { sha256, name, .. } => {
            files::download(&wf, &sha256, &name, "application/octet-stream").await
        }
        Handed::Text { name, body } => {
            use axum::response::IntoResponse as _;
            Ok((
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; charset=utf-8".to_owned(),
                    ),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        files::content_disposition(&name),
                    ),
                ],
                body,
            )
                .into_response())
        }
    }
}

/// The subject as the institution sees it: the preservation (its fields,
/// file, ledger entry, block and anchors, as the preservation detail shows
/// them) or the contract (text, signers, ledger entry).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectJson {
    /// `preservation` or `contract`.
    pub kind: String,
    pub preservation: Option<crate::preservations::PreservationJson>,
    pub contract: Option<crate::contracts::ContractJson>,
    /// The subject's proof bundle: `GET` this path.
    pub proof_path: String,
}

/// The request's subject (the addressed institution, or the applicant's
/// bank), read through the same code as the preservation and contract
/// details.
#[utoipa::path(get, path = "/v1/judicial-requests/{id}/subject", params(("id" = i64, Path)),
    responses((status = 200, body = SubjectJson), (status = 403, body = crate::error::ErrorBody)))]
pub async fn subject_view(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<SubjectJson>, ApiError> {
    let (r, p, k) = {
        let c = wf.db().await?;
        let r = load_on(&c, &caller, id).await?;
        match r.subject_kind.as_str() {
            "contract" => {
                let k = crate::store::contracts::get(c.client(), r.subject_id).await?;
                (r, None, Some(k))
            }
            _ => {
                let p = crate::store::preservations::get(c.client(), r.subject_id).await?;
                (r, Some(p), None)
            }
        }
    };
    let proof_path = format!("/v1/judicial-requests/{id}/proof");
    let preservation = match p {
        Some(p) => {
            let sub = p.submission_id;
            let mut j = crate::preservations::PreservationJson::from(p);
            j.ledger = ledger_view(&wf, sub, proof_path.clone()).await?;
            Some(j)
        }
        None => None,
    };
    let contract = match k {
        Some(k) => {
            let sub = k.submission_id;
            let mut j = crate::contracts::ContractJson::from(k);
            j.ledger = ledger_view(&wf, sub, proof_path.clone()).await?;
            Some(j)
        }
        None => None,
    };
    Ok(axum::Json(SubjectJson {
        kind: r.subject_kind,
        preservation,
        contract,
        proof_path,
    }))
}

/// The subject's proof bundle (the addressed institution, or the
/// applicant's bank).
#[utoipa::path(get, path = "/v1/judicial-requests/{id}/proof", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = crate::error::ErrorBody)))]
pub async fn subject_proof(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<anchord_core::bundle::Bundle>, ApiError> {
    let sub = {
        let c = wf.db().await?;
        let r = load_on(&c, &caller, id).await?;
        store::subject(c.client(), &r.subject_kind, r.subject_id)
            .await?
            .and_then(|s| s.submission_id)
    };
    bundle_of(&wf, sub).await
}

/// Wrap `text` into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The lines of a comparison report.
pub fn report_lines(r: &RequestJson, cmp: &Comparison, issued_at: &str) -> Vec<(f32, String)> {
    let mut l: Vec<(f32, String)> = vec![(24.0, "电子数据比对报告".into()), (10.0, String::new())];
    // A value that does not fit beside its label goes on its own line
    // (hashes stay whole: a reader copies them); longer ones are wrapped.
    let mut put = |label: &str, value: &str| {
        let line = format!("{label}：{value}");
        if line.chars().count() <= 70 {
            l.push((10.0, line));
        } else if value.chars().count() <= 80 {
            l.push((10.0, format!("{label}：")));
            l.push((10.0, format!("    {value}")));
        } else {
            for (i, part) in wrap(&line, 70).into_iter().enumerate() {
                l.push((10.0, if i == 0 { part } else { format!("    {part}") }));
            }
        }
    };
    let source = match cmp.source.as_str() {
        "attached_file" => "申请人提交的文件 (attached by the applicant)",
        "preserved_file" => "经授权读取的保全文件 (the preserved file, authorised)",
        "contract_text" => "合同文本 (the contract text)",
        _ => "出证机构提供的文件 (supplied by the institution)",
    };
    put("申请编号 Request", &r.number);
    put(
        "类型 Kind",
        if r.kind == "ruling" {
            "司法裁决 ruling"
        } else {
            "公证 notarization"
        },
    );
    put(
        "出证机构 Institution",
        &format!("{} ({})", r.institution_name, r.institution_id),
    );
    put("申请机构 Applicant", &r.tenant);
    put(
        "保全对象 Subject",
        &format!("{} {}", r.subject_kind, r.subject_id),
    );
    put("比对文件 Compared", source);
    if let Some(n) = &cmp.file_name {
        put("文件名 File", n);
    }
    put("文件大小 Size", &format!("{} bytes", cmp.supplied_size));
    put("哈希算法 Algorithm", &cmp.hash_alg);
    put("文件哈希 File hash", &cmp.supplied_hash);
    put("保全哈希 Preserved hash", &cmp.ledger_hash);
    put("比对结论 Verdict", &cmp.message);
    put(
        "证明校验 Proof",
        &match (&cmp.proof_verified, &cmp.proof_error) {
            (true, _) => "通过 verified".to_owned(),
            (false, e) => format!("未通过 not verified: {}", e.as_deref().unwrap_or("")),
        },
    );
    put("账本序号 Ledger seq", &cmp.ledger_seq.to_string());
    put("区块高度 Block", &cmp.block_height.to_string());
    if cmp.anchors.is_empty() {
        put("锚定 Anchors", "无 none yet");
    }
    for a in &cmp.anchors {
        put("锚定 Anchor", a);
    }
    put("比对时间 Compared at", &cmp.compared_at);
    put("报告生成 Issued at", issued_at);
    l
}

/// The comparison report (PDF) of the last comparison: request, subject,
/// what was compared, both hashes, the verdict, the proof's ledger entry,
/// block and anchors (the addressed institution, or the applicant's bank).
#[utoipa::path(get, path = "/v1/judicial-requests/{id}/comparison-report", params(("id" = i64, Path)),
    responses((status = 200, description = "the report", content_type = "application/pdf"),
              (status = 403, body = crate::error::ErrorBody),
              (status = 404, description = "not compared yet", body = crate::error::ErrorBody),
              (status = 503, description = "no CJK font on this server", body = crate::error::ErrorBody)))]
pub async fn comparison_report(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let r = {
        let c = wf.db().await?;
        let r = load_on(&c, &caller, id).await?;
        view(&c, r).await?
    };
    let cmp: Comparison = r
        .comparison
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| ApiError::not_found("comparison"))?;
    let lines = report_lines(&r, &cmp, &ts(time::OffsetDateTime::now_utc()));
    let bytes = wf.certificates.text_pdf(lines).await.map_err(|e| match e {
        anchord_verifier::certificate::IssueError::FontUnavailable(e) => {
            tracing::error!(error = %e, "loading the certificate font (workflow.certificate_font)");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "reports are not available on this server: its CJK font (workflow.certificate_font) cannot be loaded",
            )
        }
        e => {
            tracing::error!(error = %e, "rendering a comparison report");
            ApiError::internal()
        }
    })?;
    use axum::response::IntoResponse as _;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/pdf".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                files::content_disposition(&format!("{}-comparison-report.pdf", r.number)),
            ),
        ],
        bytes,
    )
        .into_response())
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
    let r = load(&wf, &caller, id).await?;
    institution_guard(&caller, &r)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Multipart(mp) = body?;
    if !store::OPEN.contains(&r.status) {
        let c = wf.db().await?;
        return Err(status::conflict::<JudicialStatus, tokio_postgres::Client>(
            &c,
            id,
            "certifying",
            store::OPEN,
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
    store::certify(
        &tx,
        Actor::user(&caller),
        id,
        caller.id,
        &f.sha256,
        f.size as i64,
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
    store::set_certificate_submission(&tx, id, sub).await?;
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
    answer(&c, &caller, id).await
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
    let r = load_on(&c, &caller, id).await?;
    institution_guard(&caller, &r)?;
    // The body only now: the caller may touch the record (authz::Require).
    let Json(reason) = body?;
    let reason_text = reason.checked()?;
    let tx = c.transaction().await?;
    store::refuse(&tx, Actor::user(&caller), id, caller.id, reason_text).await?;
    events::emit(
        &tx,
        Some(&r.tenant),
        "judicial_request.refused",
        serde_json::json!({"type": "judicial_request", "id": id, "reason": reason_text}),
    )
    .await?;
    tx.commit().await?;
    wf.webhooks_kick.notify_one();
    answer(&c, &caller, id).await
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
    let r = load(&wf, &caller, id).await?;
    let sha256 = r
        .certificate_sha256
        .ok_or_else(|| ApiError::not_found("certificate"))?;
    files::download(
        &wf,
        &sha256,
        &format!("{}-certificate.pdf", r.number),
        "application/pdf",
    )
    .await
}
