//! Collecting witness cosignatures (c2sp.org/tlog-witness client) and RFC
//! 3161 timestamps for the newest checkpoint, off the seal path.
//!
//! The cosigner always works on the newest checkpoint (a `watch` channel):
//! if witnesses are slow, intermediate checkpoints are skipped, and a later
//! final checkpoint covers them through the block log's consistency.

use std::time::Duration;

use anchord_core::HashSuite;
use anchord_core::checkpoint::{NoteSignature, NoteVerifier, SignedNote};
use anchord_ledger::{Ledger, SignatureRole, SignatureRow};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::WitnessPeer;
use crate::tsa::Tsa;
use crate::{BatcherError, metrics, now_us};

/// One witness and what we believe its latest cosigned size is.
#[derive(Debug)]
pub(crate) struct Peer {
    pub config: WitnessPeer,
    pub verifier: NoteVerifier,
    pub known_size: u64,
}

#[derive(Debug)]
pub(crate) struct Cosigner {
    pub ledger: Ledger,
    pub suite: HashSuite,
    pub peers: Vec<Peer>,
    pub quorum: usize,
    pub http: reqwest::Client,
    pub attempts: u32,
    pub tsa: Option<Tsa>,
}

/// Why one witness did not cosign.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AskError {
    #[error("witness {name} answered {status}: {body}")]
    Rejected {
        name: String,
        status: u16,
        body: String,
    },
    #[error("witness {name} has already cosigned size {size}, newer than this checkpoint")]
    Ahead { name: String, size: u64 },
    #[error("witness {name}: {detail}")]
    Failed { name: String, detail: String },
}

impl Cosigner {
    pub(crate) async fn run(mut self, mut rx: watch::Receiver<u64>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
            let size = *rx.borrow_and_update();
            if size == 0 {
                continue;
            }
            if let Err(e) = self.process(size).await {
                tracing::warn!(size, error = %e, "collecting cosignatures");
            }
        }
    }

    /// Timestamp and witness checkpoint `size`; record what came back.
    pub(crate) async fn process(&mut self, size: u64) -> Result<(), BatcherError> {
        let Some(cp) = self.ledger.checkpoint(size).await? else {
            return Err(BatcherError::Integrity(format!(
                "checkpoint {size} vanished"
            )));
        };
        let mut note = SignedNote::parse(&cp.signed_note)?;
        if let Some(tsa) = &self.tsa
            && cp.timestamp_token.is_none()
        {
            match tsa.timestamp(note.text.as_bytes()).await {
                Ok(token) => {
                    metrics::TSA_REQUESTS.with_label_values(&["ok"]).inc();
                    self.ledger.set_timestamp_token(size, &token).await?;
                }
                Err(e) => {
                    metrics::TSA_REQUESTS.with_label_values(&["error"]).inc();
                    tracing::warn!(size, error = %e, "RFC 3161 timestamp");
                }
            }
        }
        if self.peers.is_empty() || cp.final_at_us.is_some() {
            return Ok(());
        }
        let (suite, attempts, http, ledger) = (self.suite, self.attempts, &self.http, &self.ledger);
        let text = note.format();
        let asks = self
            .peers
            .iter_mut()
            .filter(|p| note.verify_by(&p.verifier).is_err())
            .map(|p| ask(p, http, ledger, suite, &text, &note.text, size, attempts));
        let results = futures::future::join_all(asks).await;
        let mut rows = Vec::new();
        for r in results {
            match r {
                Ok(sig) => {
                    rows.push(SignatureRow {
                        size,
                        key_name: sig.name.clone(),
                        key_id: sig.key_id,
                        role: SignatureRole::Witness,
                        signature: sig.payload.clone(),
                        signed_at_us: sig
                            .cosignature_time()
                            .unwrap_or(0)
                            .saturating_mul(1_000_000) as i64,
                    });
                    note.signatures.push(sig);
                }
                Err(e) => tracing::warn!(size, error = %e, "witness did not cosign"),
            }
        }
        let cosigned = self
            .peers
            .iter()
            .filter(|p| note.verify_by(&p.verifier).is_ok())
            .count();
        let is_final = cosigned >= self.quorum;
        if rows.is_empty() && !is_final {
            return Ok(());
        }
        self.ledger
            .add_cosignatures(size, &rows, &note.format(), is_final.then(now_us))
            .await?;
        if is_final {
            metrics::FINAL_CHECKPOINT_SIZE.set(size as i64);
            observe_witnessed(&self.ledger, size).await;
            tracing::info!(size, cosigned, quorum = self.quorum, "checkpoint final");
        }
        Ok(())
    }
}

/// Pipeline latency, stage `witnessed`: now minus the received time of the
/// first entry of checkpoint `size`'s newest block. Best effort: a failed
/// lookup only skips the observation.
async fn observe_witnessed(ledger: &Ledger, size: u64) {
    let Some(height) = size.checked_sub(1) else {
        return;
    };
    if let Ok(Some(block)) = ledger.block(height).await
        && let Ok(Some(received)) = ledger.received_at(block.header.first_seq).await
    {
        metrics::TIME_TO_WITNESSED.observe((now_us() - received).max(0) as f64 / 1e6);
    }
}

/// The `add-checkpoint` request body: core's one definition.
pub use anchord_core::witness::add_checkpoint_body;

#[allow(clippy::too_many_arguments)]
async fn ask(
    peer: &mut Peer,
    http: &reqwest::Client,
    ledger: &Ledger,
    suite: HashSuite,
    note: &str,
    body_text: &str,
    size: u64,
    attempts: u32,
) -> Result<NoteSignature, AskError> {
    let name = peer.config.name.clone();
    let url = format!("{}/add-checkpoint", peer.config.url.trim_end_matches('/'));
    let failed = |detail: String| AskError::Failed {
        name: name.clone(),
        detail,
    };
    let mut last = failed("no attempt made".into());
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
        }
        let old = peer.known_size;
        if old > size {
            return Err(AskError::Ahead { name, size: old });
        }
        let proof = match crate::consistency_proof(ledger, suite, old, size).await {
            Ok(p) => p,
            Err(e) => {
                last = failed(format!("consistency proof {old} -> {size}: {e}"));
                continue;
            }
        };
        let resp = http
            .post(&url)
            .body(add_checkpoint_body(old, &proof, note))
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                metrics::WITNESS_REQUESTS
                    .with_label_values(&["error"])
                    .inc();
                last = failed(format!("request: {e}"));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let is_size = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/x.tlog.size"));
        let text = resp.text().await.unwrap_or_default();
        match status {
            200 => {
                let sig = text
                    .lines()
                    .filter_map(|l| NoteSignature::parse_line(l).ok())
                    .find(|s| peer.verifier.verify(body_text, s).is_ok());
                match sig {
                    Some(sig) => {
                        metrics::WITNESS_REQUESTS.with_label_values(&["ok"]).inc();
                        peer.known_size = size;
                        return Ok(sig);
                    }
                    None => {
                        metrics::WITNESS_REQUESTS
                            .with_label_values(&["error"])
                            .inc();
                        last = failed("200 without a valid cosignature by its key".into());
                    }
                }
            }
            409 if is_size => {
                metrics::WITNESS_REQUESTS
                    .with_label_values(&["conflict"])
                    .inc();
                match anchord_core::checkpoint::parse_decimal(text.trim_end_matches('\n')) {
                    Some(n) if n != old => {
                        peer.known_size = n;
                        last = failed(format!("its size was {n}, not {old}"));
                    }
                    _ => {
                        last = AskError::Rejected {
                            name: name.clone(),
                            status,
                            body: text.chars().take(200).collect(),
                        };
                        return Err(last);
                    }
                }
            }
            500..=599 => {
                metrics::WITNESS_REQUESTS
                    .with_label_values(&["error"])
                    .inc();
                last = failed(format!("status {status}"));
            }
            _ => {
                metrics::WITNESS_REQUESTS
                    .with_label_values(&["rejected"])
                    .inc();
                if status == 422 {
                    tracing::error!(witness = %name, size, old, "witness says the block log is INCONSISTENT with what it cosigned");
                }
                return Err(AskError::Rejected {
                    name,
                    status,
                    body: text.chars().take(200).collect(),
                });
            }
        }
    }
    Err(last)
}
