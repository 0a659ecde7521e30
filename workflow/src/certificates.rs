//! The preservation certificate (电子数据保全证书) of an on-chain
//! preservation: the verifier's PDF certificate, rendered from the same
//! proof bundle `GET …/proof` serves, with a QR code pointing at the public
//! proof URL (`workflow.proof_url`) where a court checks it, followed by the
//! preservation's number, product, disclosed fields and file; and the same
//! certificate as JSON (docs/workflow-api.md, "Preservation certificate").

use std::sync::Arc;

use anchord_core::bundle::{AnchorState, Bundle, TrustedKeys, verify_bundle};
use anchord_verifier::certificate::IssueError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use crate::Workflow;
use crate::authz::Caller;
use crate::error::{ApiError, Path};
use crate::store::{preservations as preservation_store, products as product_store};

/// The PDF for `bundle`, named `filename` in the download, with `extra`
/// lines after the ledger certificate's own.
pub(crate) async fn pdf_with(
    wf: &Workflow,
    bundle: Bundle,
    filename: &str,
    extra: Vec<(f32, String)>,
) -> Result<Response, ApiError> {
    let url = format!(
        "{}/{}",
        wf.config.proof_url.trim_end_matches('/'),
        hex::encode(&bundle.entry.evidence_hash)
    );
    let bytes = wf
        .certificates
        .pdf_with(bundle, url, extra)
        .await
        .map_err(|e| match e {
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

// ---------------------------------------------------------------------------
// The preservation certificate as JSON: what a court reads, field by field.

/// A time in UTC and in the deployment's zone (`workflow.utc_offset`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CertTime {
    /// RFC 3339, UTC (`…Z`).
    pub utc: String,
    /// RFC 3339 in the deployment's zone (`…+08:00`).
    pub local: String,
}

fn cert_time(us: i64, zone: time::UtcOffset) -> CertTime {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    CertTime {
        utc: f(t.to_offset(time::UtcOffset::UTC)),
        local: f(t.to_offset(zone)),
    }
}

fn odt_us(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// A template field the bank discloses on certificates.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertField {
    pub key: String,
    /// The field's display name.
    pub label: String,
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertFile {
    pub name: String,
    pub size: i64,
    pub sha256: String,
    /// Under the sm3 suite.
    pub sm3: Option<String>,
}

/// The ledger entry the evidence became.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertEntry {
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: String,
    /// The evidence hash sealed (the file's digest, or the commitment to
    /// it: docs/workflow-api.md, "What is public").
    pub evidence_hash: String,
    pub sequence: u64,
    pub received_at: CertTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertBlock {
    pub height: u64,
    pub hash: String,
    pub merkle_root: String,
    pub sealed_at: CertTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: String,
    /// Witnesses whose cosignatures verified, and the quorum.
    pub cosigned_by: Vec<String>,
    pub quorum: usize,
}

/// What this platform found of a checkpoint's RFC 3161 token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimestampStatus {
    /// The token verified under a TSA certificate this platform trusts
    /// (`workflow.tsa_certs`), over the checkpoint, and its time is not
    /// before the block was sealed: `gen_time` is the TSA's time.
    Verified,
    /// No TSA certificate is configured here: `gen_time` is what the token
    /// claims, unverified by this platform (the court checks it with
    /// `checked_by`).
    Unverified,
    /// The token does not verify under any trusted TSA certificate (or
    /// cannot be read): no time is shown; `note` says why.
    Failed,
}

/// The checkpoint's RFC 3161 token, when the TSA gave one.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertTimestamp {
    /// SHA-256 of the DER token (it is in the proof bundle).
    pub token_sha256: String,
    pub token_bytes: usize,
    pub status: TimestampStatus,
    /// The token's genTime: verified (`verified`) or claimed and unverified
    /// by this platform (`unverified`); never shown for `failed`.
    pub gen_time: Option<CertTime>,
    /// The TSA: the subject of the trusted certificate the token verified
    /// under (`verified` only).
    pub tsa: Option<String>,
    /// What the status means here, and for `failed` why.
    pub note: String,
    /// The command that checks the token, with the TSA certificate in the
    /// court's trust file.
    pub checked_by: String,
}

/// A TSA certificate this platform trusts, with its subject.
#[derive(Debug)]
struct TrustedTsa {
    der: Vec<u8>,
    name: String,
}

/// The TSA certificates of `workflow.tsa_certs`, loaded at start (a file
/// that cannot be read or is no certificate stops the start).
#[derive(Debug, Default)]
pub(crate) struct TrustedTsas(Vec<TrustedTsa>);

impl TrustedTsas {
    pub(crate) fn load(paths: &[std::path::PathBuf]) -> Result<Self, crate::WorkflowError> {
        let bad = |e: String| crate::WorkflowError::Config(format!("workflow.tsa_certs: {e}"));
        paths
            .iter()
            .map(|p| {
                let der = anchord_tsa::load_cert_der(p).map_err(|e| bad(e.to_string()))?;
                let name = anchord_tsa::certificate_subject(&der)
                    .map_err(|e| bad(format!("{}: {e}", p.display())))?;
                Ok(TrustedTsa { der, name })
            })
            .collect::<Result<_, _>>()
            .map(TrustedTsas)
    }

    /// The verdict on `bundle`'s checkpoint token, if it has one.
    fn check(&self, bundle: &Bundle) -> Option<Stamp> {
        let token = bundle.checkpoint.timestamp_token.as_ref()?;
        let failed = |why: String| Stamp {
            token_sha256: hex::encode(crate::sha256(token)),
            token_bytes: token.len(),
            status: TimestampStatus::Failed,
            gen_time_us: None,
            tsa: None,
            note: format!("does not verify: {why}"),
        };
        let info_us = |i: &anchord_tsa::TokenInfo| {
            i.gen_time_unix
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(i.gen_time_nanos / 1000))
        };
        if self.0.is_empty() {
            return Some(match anchord_tsa::read_token_unverified(token) {
                Ok(info) => Stamp {
                    gen_time_us: Some(info_us(&info)),
                    status: TimestampStatus::Unverified,
                    note: "unverified by this platform (no TSA certificate is configured: workflow.tsa_certs); the court verifies it with the command".into(),
                    ..failed(String::new())
                },
                Err(e) => failed(e.to_string()),
            });
        }
        let note = match anchord_core::checkpoint::SignedNote::parse(&bundle.checkpoint.signed_note)
        {
            Ok(n) => n,
            Err(e) => return Some(failed(format!("the checkpoint note: {e}"))),
        };
        let digest = anchord_core::HashSuite::Sha256.digest(note.text.as_bytes());
        let mut why = String::new();
        for t in &self.0 {
            match anchord_tsa::verify_token(token, &digest, &t.der) {
                Ok(info) => {
                    let not_before = bundle
                        .block
                        .sealed_at_us
                        .saturating_sub(anchord_core::bundle::CLOCK_TOLERANCE_US);
                    if info.gen_time_unix.saturating_mul(1_000_000) < not_before {
                        return Some(failed(format!(
                            "its time ({} Unix seconds) is before block {} was sealed",
                            info.gen_time_unix, bundle.block.height
                        )));
                    }
                    return Some(Stamp {
                        gen_time_us: Some(info_us(&info)),
                        status: TimestampStatus::Verified,
                        tsa: Some(t.name.clone()),
                        note: "verified by this platform under the TSA certificate of workflow.tsa_certs".into(),
                        ..failed(String::new())
                    });
                }
                Err(e) => why = e.to_string(),
            }
        }
        Some(failed(format!(
            "under none of the {} trusted TSA certificates ({why})",
            self.0.len()
        )))
    }
}

/// [`TrustedTsas::check`]'s verdict.
#[derive(Debug)]
struct Stamp {
    token_sha256: String,
    token_bytes: usize,
    status: TimestampStatus,
    gen_time_us: Option<i64>,
    tsa: Option<String>,
    note: String,
}

/// The command a court runs on a preservation's bundle and file.
fn verify_command(number: &str, file_name: &str) -> String {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "anchord verify --trust trust.toml --bundle {number}-bundle.json --file {} --online",
        if safe.is_empty() { "<file>" } else { &safe }
    )
}

/// The certificate's timestamp lines (PDF): a time only when there is one
/// to show, marked verified or unverified; a failing token as failing.
fn timestamp_lines(s: &Stamp, zone: time::UtcOffset, command: &str) -> Vec<(f32, String)> {
    let when = |us: i64| {
        let t = cert_time(us, zone);
        format!("{} / {}", t.local, t.utc)
    };
    let mut l = vec![(11.0, "可信时间戳 Trusted timestamp (RFC 3161):".to_owned())];
    match (s.status, s.gen_time_us) {
        (TimestampStatus::Verified, Some(us)) => {
            l.push((9.0, format!("    时间 Time: {}", when(us))));
            l.push((9.0, "    本平台已验证 verified by this platform".to_owned()));
            if let Some(n) = &s.tsa {
                l.push((9.0, format!("    TSA: {}", printable(n))));
            }
        }
        (TimestampStatus::Unverified, Some(us)) => {
            l.push((9.0, format!("    时间 Time: {}", when(us))));
            l.push((
                9.0,
                "    本平台未验证 unverified by this platform (no TSA certificate configured)"
                    .to_owned(),
            ));
        }
        _ => {
            l.push((
                9.0,
                "    验证失败 FAILS verification: no time is shown".to_owned(),
            ));
            l.push((9.0, format!("    {}", printable(&s.note))));
        }
    }
    l.push((9.0, format!("    令牌 Token SHA-256: {}", s.token_sha256)));
    l.push((8.0, format!("    {command}")));
    l
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertAnchor {
    pub target: String,
    pub chain_kind: String,
    pub chain_id: String,
    pub tx_id: String,
    pub block_number: u64,
    pub block_time: CertTime,
    /// The checkpoint size the anchor covers.
    pub checkpoint_size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertVerification {
    /// The command a court runs (docs/proof-format.md).
    pub command: String,
    /// The trust file it names: this deployment's trust policy
    /// (`anchord trust export --out trust.toml`), obtained out of band.
    pub trust_file: String,
    /// Where the proof bundle is downloaded (save it as `bundle.json`).
    pub bundle_path: String,
    /// The public proof URL (also the PDF's QR code).
    pub proof_url: String,
    /// The printable certificate (PDF).
    pub pdf_path: String,
}

/// The preservation certificate (电子数据保全证书), version 1.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreservationCertificate {
    /// `anchord-preservation-certificate/v1`.
    pub format: String,
    pub title: String,
    pub number: String,
    pub preservation_id: i64,
    pub tenant: String,
    pub product_id: i64,
    pub product: String,
    /// Only the fields whose `disclose_on_certificate` is set, in the
    /// template's order.
    pub fields: Vec<CertField>,
    pub file: CertFile,
    pub entry: CertEntry,
    pub block: CertBlock,
    pub checkpoint: CertCheckpoint,
    pub trusted_timestamp: Option<CertTimestamp>,
    /// `anchored` or `pending`.
    pub anchor_status: String,
    pub anchors: Vec<CertAnchor>,
    pub verification: CertVerification,
    /// The deployment's zone the `local` times are in.
    pub utc_offset: String,
    pub issued_at: CertTime,
}

/// The preservation the caller may read (403 otherwise), its product's name
/// and template, on one connection returned before the ledger is read.
async fn subject(
    wf: &Workflow,
    caller: &Caller,
    id: i64,
) -> Result<
    (
        preservation_store::Preservation,
        String,
        Vec<product_store::FieldRow>,
    ),
    ApiError,
> {
    let c = wf.db().await?;
    let p = preservation_store::get(c.client(), id).await?;
    if !caller.can_read_tenant(&p.tenant) {
        return Err(ApiError::forbidden(
            "this preservation belongs to another bank",
        ));
    }
    let product = product_store::name_of(c.client(), p.product_id).await?;
    let template = product_store::fields_of(c.client(), p.product_id).await?;
    Ok((p, product, template))
}

/// The fields the bank discloses on certificates, in the template's order,
/// filled ones only.
fn disclosed(template: Vec<product_store::FieldRow>, values: &serde_json::Value) -> Vec<CertField> {
    template
        .into_iter()
        .filter(|f| f.disclose_on_certificate)
        .filter_map(|f| {
            let v = values.get(&f.key)?.as_str()?.to_owned();
            Some(CertField {
                key: f.key,
                label: f.display_name,
                value: v,
            })
        })
        .collect()
}

/// Text a CJK certificate font can set: printable ASCII, Latin-1, CJK
/// punctuation, the unified ideographs and full-width forms; anything else
/// (an emoji, a control character) becomes `?` instead of failing the
/// certificate.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff | 0x3000..=0x303f | 0x4e00..=0x9fff | 0xff00..=0xffef => c,
            _ => '?',
        })
        .collect()
}

/// The preservation certificate (PDF) of preservation `id`: the ledger
/// certificate, then the preservation's number, product, disclosed fields
/// and file.
pub(crate) async fn preservation_pdf(
    wf: &Workflow,
    caller: &Caller,
    id: i64,
) -> Result<Response, ApiError> {
    let (p, product, template) = subject(wf, caller, id).await?;
    let not_yet = || ApiError::invalid_state("the evidence is not sealed in a block yet");
    let sub = p.submission_id.ok_or_else(not_yet)?;
    let s = crate::evidence::get(&*wf.db().await?, sub)
        .await?
        .ok_or_else(not_yet)?;
    let bundle = crate::evidence::bundle(wf, &s).await?.ok_or_else(not_yet)?;
    let mut extra = vec![
        (9.0, String::new()),
        (11.0, "保全信息 Preservation:".to_owned()),
        (9.0, format!("    保全编号 Number: {}", p.number)),
        (9.0, format!("    产品 Product: {}", printable(&product))),
    ];
    for f in disclosed(template, &p.fields) {
        extra.push((
            9.0,
            format!("    {}: {}", printable(&f.label), printable(&f.value)),
        ));
    }
    if let Some(f) = &p.file {
        extra.push((9.0, format!("    文件 File: {}", printable(&f.name))));
        extra.push((9.0, format!("    文件 SHA-256: {}", f.sha256)));
        if let Some(sm3) = &f.sm3 {
            extra.push((9.0, format!("    文件 SM3: {sm3}")));
        }
    }
    if let Some(stamp) = wf.tsa_certs.check(&bundle) {
        let name = p.file.as_ref().map(|f| f.name.as_str()).unwrap_or_default();
        extra.push((9.0, String::new()));
        extra.extend(timestamp_lines(
            &stamp,
            wf.config.zone(),
            &verify_command(&p.number, name),
        ));
    }
    pdf_with(
        wf,
        bundle,
        &format!("preservation-{id}-certificate.pdf"),
        extra,
    )
    .await
}

/// The preservation certificate as JSON, once the evidence is sealed: the
/// number, product, the fields the bank discloses, the file's name and
/// hash, sequence, block, checkpoint, trusted timestamp, each anchor and
/// the court's verification command. Issued only for a bundle that
/// verifies against the deployment's keys.
#[utoipa::path(get, path = "/v1/preservations/{id}/certificate.json", params(("id" = i64, Path)),
    responses((status = 200, body = PreservationCertificate),
              (status = 409, description = "not sealed yet", body = crate::error::ErrorBody)))]
pub async fn preservation_json(
    State(wf): State<Arc<Workflow>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<PreservationCertificate>, ApiError> {
    let (p, product, template) = subject(&wf, &caller, id).await?;
    let not_yet = || ApiError::invalid_state("the evidence is not sealed in a block yet");
    let sub = p.submission_id.ok_or_else(not_yet)?;
    // The connection goes back before the prover reads the ledger (conn.rs).
    let s = crate::evidence::get(&*wf.db().await?, sub)
        .await?
        .ok_or_else(not_yet)?;
    let bundle = crate::evidence::bundle(&wf, &s)
        .await?
        .ok_or_else(not_yet)?;
    let report = TrustedKeys::from_bundle(&bundle)
        .map_err(|e| e.to_string())
        .and_then(|k| verify_bundle(&bundle, &k, None).map_err(|e| e.to_string()))
        .map_err(|e| {
            tracing::error!(error = %e, "the deployment's own bundle does not verify");
            ApiError::internal()
        })?;
    let file = p
        .file
        .ok_or_else(|| ApiError::invalid_state("the preservation has no file"))?;
    let zone = wf.config.zone();
    let fields = disclosed(template, &p.fields);
    let evidence_hash = hex::encode(&bundle.entry.evidence_hash);
    let proof_url = format!(
        "{}/{}",
        wf.config.proof_url.trim_end_matches('/'),
        evidence_hash
    );
    let command = verify_command(&p.number, &file.name);
    let stamp = wf.tsa_certs.check(&bundle);
    let cert = PreservationCertificate {
        format: "anchord-preservation-certificate/v1".into(),
        title: "电子数据保全证书 Electronic Data Preservation Certificate".into(),
        number: p.number.clone(),
        preservation_id: p.id,
        tenant: p.tenant.clone(),
        product_id: p.product_id,
        product,
        fields,
        file: CertFile {
            name: file.name.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
            sm3: file.sm3.clone(),
        },
        entry: CertEntry {
            tenant: report.tenant.clone(),
            external_id: report.external_id.clone(),
            hash_alg: report.hash_alg.clone(),
            evidence_hash,
            sequence: report.seq,
            received_at: cert_time(report.received_at_us, zone),
        },
        block: CertBlock {
            height: bundle.block.height,
            hash: hex::encode(bundle.block.hash),
            merkle_root: hex::encode(bundle.block.merkle_root),
            sealed_at: cert_time(bundle.block.sealed_at_us, zone),
        },
        checkpoint: CertCheckpoint {
            origin: bundle.checkpoint.origin.clone(),
            size: bundle.checkpoint.size,
            root: hex::encode(bundle.checkpoint.root),
            cosigned_by: report.cosigned_by.clone(),
            quorum: report.quorum,
        },
        trusted_timestamp: stamp.map(|s| CertTimestamp {
            token_sha256: s.token_sha256,
            token_bytes: s.token_bytes,
            status: s.status,
            gen_time: s.gen_time_us.map(|us| cert_time(us, zone)),
            tsa: s.tsa,
            note: s.note,
            checked_by: command.clone(),
        }),
        anchor_status: match bundle.anchor.status {
            AnchorState::Anchored => "anchored",
            AnchorState::Pending => "pending",
        }
        .into(),
        anchors: bundle
            .anchor
            .receipts
            .iter()
            .map(|r| CertAnchor {
                target: r.target.clone(),
                chain_kind: r.chain_kind.clone(),
                chain_id: r.chain_id.clone(),
                tx_id: r.tx_id.clone(),
                block_number: r.block_number,
                block_time: cert_time(r.block_time_us, zone),
                checkpoint_size: r.checkpoint_size,
            })
            .collect(),
        verification: CertVerification {
            command,
            trust_file: "trust.toml".into(),
            bundle_path: format!("/v1/preservations/{id}/proof"),
            proof_url,
            pdf_path: format!("/v1/preservations/{id}/certificate"),
        },
        utc_offset: wf.config.utc_offset.clone(),
        issued_at: cert_time(odt_us(time::OffsetDateTime::now_utc()), zone),
    };
    Ok(axum::Json(cert))
}
