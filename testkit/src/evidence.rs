//! Evidence for tests that write to the ledger directly, not through Kafka.

use anchord_core::{EvidenceAlg, HashSuite};
use anchord_ledger::{AppendBatch, AppendOutcome, Ledger, NewEntry};

/// The acceptance time tests use unless they need another.
pub const RECEIVED_AT_US: i64 = 1_700_000_000_000_000;

/// A SHA-256 entry with no metadata and no Kafka source.
pub fn entry(tenant: &str, external_id: impl Into<String>, evidence_hash: Vec<u8>) -> NewEntry {
    NewEntry {
        tenant: tenant.to_owned(),
        external_id: external_id.into(),
        hash_alg: EvidenceAlg::Sha256,
        evidence_hash,
        metadata: None,
        source: None,
        raw: bytes::Bytes::new(),
    }
}

/// `n` entries of tenant `bank-a`, external ids `{tag}-{i}`, each hash the
/// SHA-256 of its external id.
pub fn entries(tag: &str, n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| {
            let id = format!("{tag}-{i}");
            let hash = HashSuite::Sha256.digest(id.as_bytes()).to_vec();
            entry("bank-a", id, hash)
        })
        .collect()
}

/// Append `entries` in one batch, as a non-Kafka source would; panics unless
/// every one of them is accepted.
pub async fn append(
    ledger: &Ledger,
    suite: HashSuite,
    received_at_us: i64,
    entries: Vec<NewEntry>,
) -> AppendOutcome {
    let n = entries.len();
    let out = ledger
        .append(&AppendBatch {
            suite,
            consumer_group: None,
            received_at_us,
            entries,
            rejections: vec![],
            positions: vec![],
        })
        .await
        .expect("appending test evidence");
    assert_eq!(out.accepted(), n, "every test entry is new");
    out
}
