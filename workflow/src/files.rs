//! Streamed uploads: hashed as they arrive (SHA-256, plus SM3 under the sm3
//! suite), written to a temporary file, size-limited, then moved to
//! `storage_dir/sha256/<2 hex>/<64 hex>` (content-addressed: the same bytes
//! are stored once).

use std::path::PathBuf;

use anchord_core::EvidenceAlg;
use anchord_core::filehash::FileHasher;
use axum::extract::Multipart;
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt as _;

use crate::Workflow;
use crate::error::ApiError;

/// A file stored by its SHA-256.
#[derive(Clone, Debug)]
pub struct Stored {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub sm3: Option<String>,
    pub path: PathBuf,
}

impl Stored {
    /// The digest under the evidence algorithm the deployment submits.
    pub fn evidence_hash(&self, alg: EvidenceAlg) -> String {
        match alg {
            EvidenceAlg::Sm3 => self.sm3.clone().unwrap_or_default(),
            _ => self.sha256.clone(),
        }
    }
}

/// Where the file with this SHA-256 lives.
pub fn path_of(wf: &Workflow, sha256_hex: &str) -> PathBuf {
    wf.config
        .storage_dir
        .join("sha256")
        .join(&sha256_hex[..2.min(sha256_hex.len())])
        .join(sha256_hex)
}

fn mp_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        )
    } else {
        ApiError::bad(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Read a multipart form whose `file` part is the upload; other parts are
/// ignored. Over `max_upload_bytes` the rest of the body is read and
/// discarded (up to a bound) so that the client receives the 413 answer.
pub async fn receive(wf: &Workflow, mut mp: Multipart) -> Result<Stored, ApiError> {
    let limit = wf.config.max_upload_bytes;
    let with_sm3 = wf.evidence_alg() == EvidenceAlg::Sm3;
    while let Some(mut field) = mp.next_field().await.map_err(mp_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name: String = field
            .file_name()
            .unwrap_or("upload.bin")
            .chars()
            .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
            .take(200)
            .collect();
        let tmp = wf
            .config
            .storage_dir
            .join("tmp")
            .join(hex::encode(&crate::random32()[..12]));
        let mut out = tokio::fs::File::create(&tmp).await.map_err(io_error)?;
        let mut sha = FileHasher::new(EvidenceAlg::Sha256);
        let mut sm3 = with_sm3.then(|| FileHasher::new(EvidenceAlg::Sm3));
        let mut size = 0u64;
        let mut over = false;
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(mp_error(e));
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                over = true;
                break;
            }
            sha.update(&chunk);
            if let Some(h) = sm3.as_mut() {
                h.update(&chunk);
            }
            if let Err(e) = out.write_all(&chunk).await {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(io_error(e));
            }
        }
        if over {
            drop(out);
            let _ = tokio::fs::remove_file(&tmp).await;
            let bound = limit.saturating_mul(4).saturating_add(16 << 20);
            let n = drain_field(&mut field, bound).await;
            drop(field);
            drain_rest(&mut mp, bound.saturating_sub(n)).await;
            crate::metrics::UPLOADS
                .with_label_values(&["too_large"])
                .inc();
            return Err(ApiError::too_large(limit));
        }
        out.flush().await.map_err(io_error)?;
        out.sync_all().await.map_err(io_error)?;
        drop(out);
        let sha256 = hex::encode(sha.finalize());
        let dest = path_of(wf, &sha256);
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
        }
        tokio::fs::rename(&tmp, &dest).await.map_err(io_error)?;
        crate::metrics::UPLOADS.with_label_values(&["ok"]).inc();
        crate::metrics::UPLOAD_BYTES.inc_by(size);
        return Ok(Stored {
            name,
            size,
            sha256,
            sm3: sm3.map(|h| hex::encode(h.finalize())),
            path: dest,
        });
    }
    Err(ApiError::field(
        "file",
        "no `file` part in the multipart form",
    ))
}

/// Read and discard the rest of a part, at most `bound` bytes.
async fn drain_field(field: &mut axum::extract::multipart::Field<'_>, bound: u64) -> u64 {
    let mut n = 0u64;
    while let Ok(Some(c)) = field.chunk().await {
        n += c.len() as u64;
        if n > bound {
            break;
        }
    }
    n
}

/// Read and discard the remaining parts, at most `bound` bytes.
async fn drain_rest(mp: &mut Multipart, bound: u64) {
    let mut n = 0u64;
    while let Ok(Some(mut f)) = mp.next_field().await {
        while let Ok(Some(c)) = f.chunk().await {
            n += c.len() as u64;
            if n > bound {
                return;
            }
        }
    }
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "workflow file storage");
    ApiError::internal()
}

/// Hash an upload without storing it (comparisons): `(sha256, sm3)`.
pub async fn hash_only(
    wf: &Workflow,
    mut mp: Multipart,
) -> Result<(String, Option<String>, u64), ApiError> {
    let limit = wf.config.max_upload_bytes;
    let with_sm3 = wf.evidence_alg() == EvidenceAlg::Sm3;
    while let Some(mut field) = mp.next_field().await.map_err(mp_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut sha = FileHasher::new(EvidenceAlg::Sha256);
        let mut sm3 = with_sm3.then(|| FileHasher::new(EvidenceAlg::Sm3));
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(mp_error)? {
            size += chunk.len() as u64;
            if size > limit {
                let bound = limit.saturating_mul(4).saturating_add(16 << 20);
                let n = drain_field(&mut field, bound).await;
                drop(field);
                drain_rest(&mut mp, bound.saturating_sub(n)).await;
                return Err(ApiError::too_large(limit));
            }
            sha.update(&chunk);
            if let Some(h) = sm3.as_mut() {
                h.update(&chunk);
            }
        }
        return Ok((
            hex::encode(sha.finalize()),
            sm3.map(|h| hex::encode(h.finalize())),
            size,
        ));
    }
    Err(ApiError::field(
        "file",
        "no `file` part in the multipart form",
    ))
}

/// Serve a stored file.
pub async fn download(
    wf: &Workflow,
    sha256_hex: &str,
    name: &str,
    content_type: &'static str,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let bytes = tokio::fs::read(path_of(wf, sha256_hex))
        .await
        .map_err(io_error)?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
