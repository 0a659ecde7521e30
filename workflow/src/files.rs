//! Streamed uploads: hashed as they arrive (SHA-256, plus SM3 under the sm3
//! suite), written to a temporary file, size-limited, then moved to
//! `storage_dir/sha256/<2 hex>/<64 hex>` (content-addressed: the same bytes
//! are stored once).
//!
//! Multipart forms carry exactly one part, `file`: any other part (named or
//! not) and a second `file` are refused before they are read.
//!
//! Garbage collection: a change that drops a reference to a file (a
//! replaced upload, an upload refused after it was stored) records the
//! file's SHA-256 in `workflow.file_gc` in the same transaction; the owned
//! background task [`run_gc`] deletes such a file after commit, only when no
//! row references it (preservations, judicial certificates, submissions)
//! and only when the file was not placed within `workflow.file_gc_grace_s`
//! (an upload of the same bytes may be between placing it and committing its
//! reference). It also sweeps the storage directory now and then for files
//! older than the grace period that nothing references (a crash between
//! placing and committing), and removes stale temporary files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anchord_core::EvidenceAlg;
use anchord_core::filehash::FileHasher;
use axum::extract::Multipart;
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use crate::Workflow;
use crate::error::ApiError;
use crate::store::files as store;

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
        .join(sha256_hex.get(..2).unwrap_or_default())
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

/// Room for the multipart envelope (boundaries, part headers) beside the
/// file itself.
pub const UPLOAD_ENVELOPE_BYTES: u64 = 64 << 10;

/// The largest request body an upload route reads: `max_upload_bytes` plus
/// the envelope. Beyond it the request answers 413 (docs/workflow-api.md).
pub fn upload_body_limit(config: &crate::config::WorkflowConfig) -> usize {
    usize::try_from(
        config
            .max_upload_bytes
            .saturating_add(UPLOAD_ENVELOPE_BYTES),
    )
    .unwrap_or(usize::MAX)
}

/// Read a multipart form whose `file` part is the upload; other parts are
/// ignored. Over `max_upload_bytes` the rest of the body is read and
/// discarded (up to a bound) so that the client receives the 413 answer.
pub async fn receive(wf: &Workflow, mut mp: Multipart) -> Result<Stored, ApiError> {
    let limit = wf.config.max_upload_bytes;
    let with_sm3 = wf.evidence_alg() == EvidenceAlg::Sm3;
    if let Some(mut field) = mp.next_field().await.map_err(mp_error)? {
        only_file_part(&field)?;
        let name: String = field
            .file_name()
            .unwrap_or("upload.bin")
            .chars()
            .filter(|c| !crate::text::unfit_in_name(*c) && *c != '/' && *c != '\\')
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
        drop(field);
        if let Err(e) = no_more_parts(&mut mp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
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

/// The one part a form may have: `file`.
fn only_file_part(field: &axum::extract::multipart::Field<'_>) -> Result<(), ApiError> {
    match field.name() {
        Some("file") => Ok(()),
        Some(other) => Err(ApiError::field(
            "file",
            format!(
                "unexpected multipart part {:?}: the form has one part, `file`",
                other.chars().take(64).collect::<String>()
            ),
        )),
        None => Err(ApiError::field(
            "file",
            "a multipart part without a name: the form has one part, `file`",
        )),
    }
}

/// After `file`, the form must end.
async fn no_more_parts(mp: &mut Multipart) -> Result<(), ApiError> {
    match mp.next_field().await.map_err(mp_error)? {
        None => Ok(()),
        Some(f) => {
            let name = f.name().unwrap_or("").chars().take(64).collect::<String>();
            Err(ApiError::field(
                "file",
                format!("unexpected multipart part {name:?} after `file`: the form has one part"),
            ))
        }
    }
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
    if let Some(mut field) = mp.next_field().await.map_err(mp_error)? {
        only_file_part(&field)?;
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
        drop(field);
        no_more_parts(&mut mp).await?;
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

/// Serve a stored file, streamed from disk, with an RFC 6266
/// `Content-Disposition` (`filename*=UTF-8''...` for non-ASCII names).
pub async fn download(
    wf: &Workflow,
    sha256_hex: &str,
    name: &str,
    content_type: &'static str,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let file = match tokio::fs::File::open(path_of(wf, sha256_hex)).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::error!(
                sha256 = sha256_hex,
                "a referenced file is missing from storage"
            );
            return Err(ApiError::not_found("file"));
        }
        Err(e) => return Err(io_error(e)),
    };
    let len = file.metadata().await.map_err(io_error)?.len();
    let body =
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024));
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                content_disposition(name),
            ),
        ],
        body,
    )
        .into_response())
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`
/// (RFC 6266 with RFC 8187 encoding; the fallback replaces what is not
/// printable ASCII, quotes and backslashes with `_`). Hand-written: a dozen
/// lines of a fixed grammar.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        // RFC 8187 attr-char.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Record that `sha256_hex` may have lost its last reference, in the
/// caller's transaction (the collector decides after commit).
pub async fn release(
    tx: &tokio_postgres::Transaction<'_>,
    sha256_hex: &str,
) -> Result<(), ApiError> {
    Ok(store::release(tx, sha256_hex).await?)
}

/// [`release`] outside a transaction (an upload refused after its file was
/// stored).
pub async fn release_now(c: &tokio_postgres::Client, sha256_hex: &str) -> Result<(), ApiError> {
    Ok(store::release(c, sha256_hex).await?)
}

/// The owned background task: collect released files every
/// `file_gc_interval_s` (and on a kick), sweep the storage directory every
/// `file_gc_sweep_interval_s`.
pub async fn run_gc(wf: Arc<Workflow>, shutdown: CancellationToken) {
    let every = Duration::from_secs(wf.config.file_gc_interval_s);
    let sweep_every = Duration::from_secs(wf.config.file_gc_sweep_interval_s);
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        if last_sweep.is_none_or(|t| t.elapsed() >= sweep_every) {
            last_sweep = Some(tokio::time::Instant::now());
            if let Err(e) = sweep(&wf, &shutdown).await {
                tracing::warn!(error = ?e, "sweeping the workflow file storage");
            }
        }
        if let Err(e) = collect(&wf).await {
            tracing::warn!(error = ?e, "collecting unreferenced workflow files");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Delete released files nothing references; returns how many were deleted.
pub async fn collect(wf: &Workflow) -> Result<usize, ApiError> {
    let grace = Duration::from_secs(wf.config.file_gc_grace_s);
    let mut deleted = 0;
    let c = wf.db().await?;
    let candidates = store::released(c.client(), 500).await?;
    for sha in candidates {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            store::forget(c.client(), &sha).await?;
            continue;
        }
        let referenced = store::referenced(c.client(), &sha).await?;
        if !referenced && remove_unless_fresh(&path_of(wf, &sha), grace).await? == Gc::Fresh {
            // Placed moments ago: an upload of the same bytes may be about to
            // commit its reference. Look again later.
            continue;
        }
        if !referenced {
            deleted += 1;
            tracing::info!(sha256 = %sha, "unreferenced stored file deleted");
        }
        store::forget(c.client(), &sha).await?;
    }
    Ok(deleted)
}

#[derive(Debug, PartialEq, Eq)]
enum Gc {
    Removed,
    Fresh,
}

/// Move the file out of its name (atomically: a concurrent upload of the
/// same bytes then simply places a new one), then delete it unless it was
/// placed within `grace` (then it goes back: same name, same bytes).
async fn remove_unless_fresh(path: &Path, grace: Duration) -> Result<Gc, ApiError> {
    let doomed = path.with_extension(format!("gc-{}", hex::encode(&crate::random32()[..6])));
    match tokio::fs::rename(path, &doomed).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Gc::Removed),
        Err(e) => return Err(io_error(e)),
    }
    let fresh = tokio::fs::metadata(&doomed)
        .await
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < grace);
    if fresh {
        tokio::fs::rename(&doomed, path).await.map_err(io_error)?;
        return Ok(Gc::Fresh);
    }
    tokio::fs::remove_file(&doomed).await.map_err(io_error)?;
    Ok(Gc::Removed)
}

/// Release every stored file older than the grace period (the collector
/// keeps referenced ones) and delete temporary files older than a day.
async fn sweep(wf: &Workflow, shutdown: &CancellationToken) -> Result<(), ApiError> {
    let grace = Duration::from_secs(wf.config.file_gc_grace_s);
    let old = |m: &std::fs::Metadata, age: Duration| {
        m.modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|a| a >= age)
    };
    let root = wf.config.storage_dir.join("sha256");
    let mut shards = match tokio::fs::read_dir(&root).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(e)),
    };
    let mut unreferenced = Vec::new();
    while let Some(shard) = shards.next_entry().await.map_err(io_error)? {
        let Ok(mut files) = tokio::fs::read_dir(shard.path()).await else {
            continue;
        };
        while let Some(f) = files.next_entry().await.map_err(io_error)? {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let name = f.file_name().to_string_lossy().into_owned();
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            if let Ok(m) = f.metadata().await
                && old(&m, grace)
            {
                let c = wf.db().await?;
                if !store::referenced(c.client(), &name).await? {
                    store::release(c.client(), &name).await?;
                    unreferenced.push(name);
                }
            }
        }
    }
    if !unreferenced.is_empty() {
        tracing::info!(
            files = unreferenced.len(),
            "unreferenced stored files released"
        );
    }
    if let Ok(mut tmp) = tokio::fs::read_dir(wf.config.storage_dir.join("tmp")).await {
        while let Ok(Some(f)) = tmp.next_entry().await {
            if let Ok(m) = f.metadata().await
                && old(&m, Duration::from_secs(86_400))
            {
                let _ = tokio::fs::remove_file(f.path()).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_has_an_ascii_fallback_and_rfc_8187_name() {
        assert_eq!(
            content_disposition("催收录音 2026.pdf"),
            "attachment; filename=\"____ 2026.pdf\"; filename*=UTF-8''%E5%82%AC%E6%94%B6%E5%BD%95%E9%9F%B3%202026.pdf"
        );
        assert_eq!(
            content_disposition("a\"b\\c;d.txt"),
            "attachment; filename=\"a_b_c;d.txt\"; filename*=UTF-8''a%22b%5Cc%3Bd.txt"
        );
    }
}
