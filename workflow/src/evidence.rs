//! Evidence from the workflow enters the ledger exactly like a bank's stream:
//! a Kafka evidence message v1 (`docs/kafka-message-v1.md`) on the evidence
//! topic, which `anchord ingest` records with a gap-free sequence number.
//!
//! `workflow.submissions` is a transactional outbox: an approval writes its
//! submission row in the same transaction as the status change; this task
//! publishes pending rows (idempotent producer, `acks=all`), then links each
//! published row to its ledger entry by identity
//! (`Ledger::entry_by_identity(tenant, external_id)`) and, once its block is
//! sealed, marks the preservation or contract `on_chain`. A resend after a
//! crash is harmless: the ledger treats the same (tenant, external id, hash)
//! as a duplicate.
//!
//! What reaches the ledger is public (the verifier serves it to anyone), so
//! a submission carries nothing about the bank's customer: its external id
//! is random (`wf-<32 hex>`, 128 bits, not enumerable) and its metadata is
//! only a salted commitment to the record (number, file name and size,
//! fields, ...): `SHA-256("anchord-workflow/commitment/v1" || 0x00 || salt
//! || JCS(record))` with a random 32-byte salt kept in `workflow.submissions`
//! and shown, with the record, only to those who may read the object
//! ([`SubmissionJson::commitment`]).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::status::{self, Actor, Change, ContractStatus, PreservationStatus};
use crate::store::submissions as store;
use crate::{Workflow, WorkflowConfig, WorkflowError, audit, events};

/// A row for the outbox. Its external id and public metadata are made by
/// [`enqueue`]: the caller names no id and publishes nothing of `record`.
#[derive(Debug)]
pub struct NewSubmission {
    /// `preservation`, `contract`, `certificate` or `audit_head`.
    pub kind: &'static str,
    pub object_id: i64,
    pub tenant: String,
    pub hash_alg: &'static str,
    /// Hex digest.
    pub hash: String,
    /// What the evidence is (number, file name, fields, ...): kept in the
    /// workflow database, only a salted commitment to it goes to the ledger.
    pub record: serde_json::Value,
}

/// Domain separation of the commitment (`docs/workflow-api.md`).
pub const COMMITMENT_DOMAIN: &[u8] = b"anchord-workflow/commitment/v1";
/// The `scheme` named in the public metadata.
pub const COMMITMENT_SCHEME: &str = "anchord-commitment-v1";

/// `SHA-256(COMMITMENT_DOMAIN || 0x00 || salt || JCS(record))`.
pub fn commitment(salt: &[u8], record: &serde_json::Value) -> Result<[u8; 32], ApiError> {
    let canon = serde_json_canonicalizer::to_vec(record).map_err(|_| ApiError::internal())?;
    Ok(anchord_core::HashSuite::Sha256.digest_parts(&[COMMITMENT_DOMAIN, &[0], salt, &canon]))
}

/// A fresh public id: `wf-` and 128 random bits in hex.
pub fn random_external_id() -> String {
    format!("wf-{}", hex::encode(&crate::random32()[..16]))
}

/// The pooled connection as the client the store takes.
fn client(c: &crate::conn::Conn) -> &tokio_postgres::Client {
    c
}

/// The idempotent producer (`enable.idempotence`, `acks=all`).
pub fn producer(config: &WorkflowConfig) -> Result<FutureProducer, WorkflowError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "30000");
    for (k, v) in &config.librdkafka {
        cc.set(k, v);
    }
    cc.create()
        .map_err(|e| WorkflowError::Kafka(format!("workflow.brokers: {e}")))
}

/// Insert a submission in the caller's transaction; returns its id.
pub async fn enqueue(
    tx: &tokio_postgres::Transaction<'_>,
    s: &NewSubmission,
) -> Result<i64, ApiError> {
    let salt = crate::random32();
    let value = commitment(&salt, &s.record)?;
    // Public: nothing personal, nothing guessable.
    let metadata = serde_json::json!({
        "source": "anchord-workflow",
        "scheme": COMMITMENT_SCHEME,
        "commitment": hex::encode(value),
    });
    let external_id = random_external_id();
    let id = store::insert(
        tx,
        &store::NewRow {
            kind: s.kind,
            object_id: s.object_id,
            tenant: &s.tenant,
            external_id: &external_id,
            hash_alg: s.hash_alg,
            hash: &s.hash,
            metadata: &metadata,
            salt: salt.as_slice(),
            record: &s.record,
        },
    )
    .await?;
    Ok(id)
}

/// Where a submission stands in the ledger.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SubmissionJson {
    pub id: i64,
    pub tenant: String,
    pub external_id: String,
    pub hash_alg: String,
    pub hash: String,
    /// `pending` (not yet on the topic), `published`, `recorded` (in the
    /// ledger), `sealed` (in a block).
    pub state: String,
    pub ledger_seq: Option<i64>,
    pub block_height: Option<i64>,
    pub published_at: Option<String>,
    pub sealed_at: Option<String>,
    pub last_error: Option<String>,
    /// The opening of the public commitment (for those who may read the
    /// object; absent on submissions older than commitments).
    pub commitment: Option<CommitmentJson>,
}

/// The salted commitment published as the entry's metadata, opened: anyone
/// holding it recomputes `commitment` from `salt` and `record`.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CommitmentJson {
    /// `anchord-commitment-v1`.
    pub scheme: String,
    /// Hex of the 32-byte salt.
    pub salt: String,
    /// The committed record (JCS-canonicalised when hashed).
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    /// Hex `SHA-256("anchord-workflow/commitment/v1" || 0x00 || salt || JCS(record))`:
    /// the ledger metadata's `commitment`.
    pub commitment: String,
}

pub async fn get(c: &tokio_postgres::Client, id: i64) -> Result<Option<SubmissionJson>, ApiError> {
    let Some(r) = store::get(c, id).await? else {
        return Ok(None);
    };
    let commitment = match (r.salt, r.record) {
        (Some(salt), Some(record)) => Some(CommitmentJson {
            scheme: COMMITMENT_SCHEME.into(),
            commitment: hex::encode(commitment(&salt, &record)?),
            salt: hex::encode(salt),
            record,
        }),
        _ => None,
    };
    Ok(Some(SubmissionJson {
        id: r.id,
        tenant: r.tenant,
        external_id: r.external_id,
        hash_alg: r.hash_alg,
        hash: r.hash,
        state: r.state.as_str().to_owned(),
        ledger_seq: r.ledger_seq,
        block_height: r.block_height,
        published_at: crate::ts_opt(r.published_at),
        sealed_at: crate::ts_opt(r.sealed_at),
        last_error: r.last_error,
        commitment,
    }))
}

/// The proof bundle of a sealed submission (the verifier's prover).
pub async fn bundle(
    wf: &Workflow,
    s: &SubmissionJson,
) -> Result<Option<anchord_core::bundle::Bundle>, ApiError> {
    use anchord_verifier::prover::Lookup;
    // The prover takes a connection of its own from the same pool.
    crate::conn::none_held("reading a proof bundle");
    match wf.prover.by_identity(&s.tenant, &s.external_id).await? {
        Lookup::Found(served) => Ok(Some(served.bundle.clone())),
        _ => Ok(None),
    }
}

/// The background task: publish, link, repeat.
pub async fn run(wf: Arc<Workflow>, shutdown: CancellationToken) {
    let every = Duration::from_millis(wf.config.link_poll_ms);
    loop {
        if let Err(e) = publish_pending(&wf).await {
            tracing::warn!(error = ?e, "publishing workflow evidence");
        }
        if let Err(e) = link(&wf).await {
            tracing::warn!(error = ?e, "linking workflow evidence to the ledger");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wf.submissions_kick.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Publish every pending submission; returns how many were sent.
pub async fn publish_pending(wf: &Workflow) -> Result<usize, ApiError> {
    let c = wf.db().await?;
    let client = client(&c);
    let rows = store::pending(client, 200).await?;
    let mut sent = 0;
    for r in rows {
        let id = r.id;
        let external_id = r.external_id;
        let msg = serde_json::json!({
            "v": 1,
            "tenant": r.tenant,
            "external_id": external_id,
            "hash_alg": r.hash_alg,
            "hash": r.hash,
            "metadata": r.metadata,
            "produced_at": (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        });
        let payload = serde_json::to_vec(&msg).map_err(|_| ApiError::internal())?;
        let rec = FutureRecord::to(&wf.config.evidence_topic)
            .key(&external_id)
            .payload(&payload);
        match wf.producer.send(rec, Duration::from_secs(30)).await {
            Ok(_) => {
                store::mark_published(client, id).await?;
                crate::metrics::EVIDENCE_PUBLISHED
                    .with_label_values(&["ok"])
                    .inc();
                sent += 1;
            }
            Err((e, _)) => {
                tracing::warn!(submission = id, error = %e, "evidence message not delivered; will retry");
                store::publish_failed(client, id, &e.to_string()).await?;
                crate::metrics::EVIDENCE_PUBLISHED
                    .with_label_values(&["error"])
                    .inc();
            }
        }
    }
    Ok(sent)
}

/// Link published submissions to their ledger entries and blocks.
pub async fn link(wf: &Workflow) -> Result<(), ApiError> {
    // One connection at a time (conn.rs): the ledger reads below take their
    // own from the same pool, so none is held across them.
    let rows = {
        let c = wf.db().await?;
        store::unsealed(client(&c), 500).await?
    };
    for r in rows {
        let store::Unsealed {
            id,
            kind,
            object_id,
            tenant,
            external_id,
            hash,
            ledger_seq,
        } = r;
        let mut seq = ledger_seq;
        if seq.is_none() {
            let Some(e) = wf.ledger.entry_by_identity(&tenant, &external_id).await? else {
                continue;
            };
            if hex::encode(&e.entry.evidence_hash) != hash {
                // The ledger keeps the first entry with this identity.
                let c = wf.db().await?;
                let why = format!(
                    "the ledger holds another hash under this identity (seq {})",
                    e.entry.seq
                );
                store::set_error(client(&c), id, &why).await?;
                continue;
            }
            let recorded = e.entry.seq as i64;
            seq = Some(recorded);
            let c = wf.db().await?;
            store::mark_recorded(client(&c), id, recorded).await?;
        }
        let Some(s) = seq else { continue };
        let Some(block) = wf.ledger.block_containing(s as u64).await? else {
            continue;
        };
        let height = block.header.height as i64;
        on_sealed(wf, id, &kind, object_id, &tenant, height).await?;
    }
    Ok(())
}

/// A submission's block is sealed: record it and move its object on chain.
async fn on_sealed(
    wf: &Workflow,
    id: i64,
    kind: &str,
    object_id: i64,
    tenant: &str,
    height: i64,
) -> Result<(), ApiError> {
    let mut c = wf.db().await?;
    let tx = c.transaction().await?;
    if !store::mark_sealed(&tx, id, height).await? {
        return Ok(());
    }
    let note = format!("block {height}");
    let change = || Change {
        note: Some(&note),
        ..Change::default()
    };
    // The status changes write their audit rows in this transaction.
    let (event, audited) = match kind {
        "preservation" => {
            status::try_transition(
                &tx,
                Actor::SYSTEM,
                object_id,
                &[PreservationStatus::Approved],
                PreservationStatus::OnChain,
                change(),
            )
            .await?;
            (Some(("preservation.on_chain", "preservation")), true)
        }
        "contract" => {
            status::try_transition(
                &tx,
                Actor::SYSTEM,
                object_id,
                &[ContractStatus::Approved],
                ContractStatus::OnChain,
                change(),
            )
            .await?;
            (Some(("contract.on_chain", "contract")), true)
        }
        "certificate" => (
            Some(("judicial_request.certificate_on_chain", "judicial_request")),
            false,
        ),
        _ => (None, false),
    };
    if let Some((event, object)) = event {
        events::emit(
            &tx,
            Some(tenant),
            event,
            serde_json::json!({"type": object, "id": object_id, "block_height": height}),
        )
        .await?;
    }
    tx.commit().await?;
    drop(c);
    crate::metrics::EVIDENCE_SEALED.inc();
    wf.webhooks_kick.notify_one();
    if let Some((event, object)) = event.filter(|_| !audited) {
        audit::record(
            wf,
            None,
            "system",
            event,
            &format!("{object}/{object_id}"),
            "ok",
            &format!("block {height}"),
        )
        .await;
    }
    Ok(())
}
