//! Publishing dead letters to the dead-letter topic.
//!
//! Rejections are first recorded in the ledger, in the same transaction as
//! the consumer positions that move past them, so none is lost when the
//! process dies. This module publishes recorded-but-unpublished rows to the
//! dead-letter topic afterwards, and again on start-up (to cover a crash
//! between commit and publish), then marks them published. Publishing is
//! therefore at-least-once: the record key `topic/partition/offset` lets
//! readers drop duplicates.

use std::sync::Arc;
use std::time::Duration;

use anchord_ledger::{DeadLetter, Ledger};
use base64::Engine as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{IngestError, metrics};

/// Dead-letter envelope, version 1 (`docs/kafka-message-v1.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeadLetterEnvelope {
    pub v: u32,
    /// The ledger's id of this dead letter (stable across republishing).
    pub dead_letter_id: i64,
    /// Machine-readable reason, `[a-z_]+`.
    pub reason: String,
    /// Human-readable explanation.
    pub detail: String,
    /// Where the message was read from (absent for inputs that did not come
    /// from Kafka).
    pub source: Option<EnvelopeSource>,
    /// The original message bytes, base64 (RFC 4648, with padding).
    pub payload_base64: String,
    /// Length of the original message in bytes.
    pub payload_bytes: usize,
    /// True when `payload_base64` holds only the first
    /// [`MAX_ENVELOPE_PAYLOAD`] bytes (the full bytes stay in the ledger).
    pub payload_truncated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvelopeSource {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Largest original payload copied into an envelope: keeps every envelope
/// under librdkafka's default 1 MB `message.max.bytes` after base64.
pub const MAX_ENVELOPE_PAYLOAD: usize = 512 * 1024;

impl DeadLetterEnvelope {
    pub fn new(d: &DeadLetter) -> Self {
        let truncated = d.payload.len() > MAX_ENVELOPE_PAYLOAD;
        let kept = &d.payload[..d.payload.len().min(MAX_ENVELOPE_PAYLOAD)];
        DeadLetterEnvelope {
            v: 1,
            dead_letter_id: d.id,
            reason: d.reason.clone(),
            detail: d.detail.clone(),
            source: d.source.as_ref().map(|s| EnvelopeSource {
                topic: s.topic.clone(),
                partition: s.partition,
                offset: s.offset,
            }),
            payload_base64: base64::engine::general_purpose::STANDARD.encode(kept),
            payload_bytes: d.payload.len(),
            payload_truncated: truncated,
        }
    }

    /// The record key: `topic/partition/offset`, or `dead-letter/<id>`.
    pub fn key(&self) -> String {
        match &self.source {
            Some(s) => format!("{}/{}/{}", s.topic, s.partition, s.offset),
            None => format!("dead-letter/{}", self.dead_letter_id),
        }
    }

    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.payload_base64)
    }
}

/// Publish every unpublished dead letter; returns how many were published.
pub async fn publish_pending(
    ledger: &Ledger,
    producer: &FutureProducer,
    topic: &str,
) -> Result<usize, IngestError> {
    let mut total = 0;
    loop {
        let letters = ledger.unpublished_dead_letters(500).await?;
        if letters.is_empty() {
            return Ok(total);
        }
        let envelopes: Vec<(String, Vec<u8>, i64)> = letters
            .iter()
            .map(|d| {
                let e = DeadLetterEnvelope::new(d);
                let body = serde_json::to_vec(&e).expect("envelope serialises");
                (e.key(), body, d.id)
            })
            .collect();
        let sends = envelopes.iter().map(|(key, body, _)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(body),
                Duration::from_secs(10),
            )
        });
        let results = futures::future::join_all(sends).await;
        let mut done = Vec::with_capacity(results.len());
        let mut first_err = None;
        for (r, (_, _, id)) in results.into_iter().zip(&envelopes) {
            match r {
                Ok(_) => done.push(*id),
                Err((e, _)) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !done.is_empty() {
            ledger.mark_dead_letters_published(&done).await?;
            metrics::DEAD_LETTERS_PUBLISHED.inc_by(done.len() as u64);
            total += done.len();
        }
        if let Some(e) = first_err {
            return Err(IngestError::Kafka(e));
        }
    }
}

/// Publish whenever notified (after a commit that recorded dead letters),
/// retrying every few seconds while a backlog remains; one last pass when
/// `done` is cancelled.
pub(crate) async fn publish_loop(
    ledger: Ledger,
    producer: FutureProducer,
    topic: String,
    notify: Arc<Notify>,
    done: CancellationToken,
) {
    let mut backlog = true; // start-up pass: recover a crash after commit
    loop {
        if backlog {
            match publish_pending(&ledger, &producer, &topic).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::debug!(published = n, topic = %topic, "dead letters published");
                    }
                    backlog = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, topic = %topic,
                        "publishing dead letters failed; they stay recorded in the ledger, retrying");
                }
            }
        }
        tokio::select! {
            _ = notify.notified() => backlog = true,
            _ = tokio::time::sleep(Duration::from_secs(5)), if backlog => {}
            _ = done.cancelled() => break,
        }
    }
    // Final pass, bounded: anything left is published by the next start.
    let last = tokio::time::timeout(
        Duration::from_secs(10),
        publish_pending(&ledger, &producer, &topic),
    )
    .await;
    match last {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "final dead-letter publish failed; the next start retries")
        }
        Err(_) => tracing::warn!("final dead-letter publish timed out; the next start retries"),
    }
}
