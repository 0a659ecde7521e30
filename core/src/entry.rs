//! The evidence entry and its canonical encoding (`docs/entry-encoding.md`).
//!
//! A ledger leaf commits to the whole entry, not just the evidence hash: the
//! leaf hash is `H(0x00 || encode(entry))`, so an inclusion proof shows who
//! submitted what, under which reference, when, and at which sequence number.
//!
//! The encoding is binary, big-endian, length-prefixed and has exactly one
//! valid form per entry: [`Entry::decode`] rejects anything that
//! [`Entry::encode`] would not have produced.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::suite::{Digest32, HashSuite};

mod metadata;
pub use metadata::MetadataJson;

/// The ASCII domain tag every encoded entry starts with.
pub const ENTRY_MAGIC: &[u8; 13] = b"anchord.entry";
/// The current (and only) entry encoding version.
pub const ENTRY_VERSION: u8 = 1;
/// Longest tenant id, in bytes.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest external id, in bytes of UTF-8.
pub const MAX_EXTERNAL_ID_LEN: usize = 256;
/// Longest canonical metadata, in bytes of UTF-8 (RFC 8785 form).
pub const MAX_METADATA_LEN: usize = 8192;

/// The algorithm the submitter hashed their evidence file with.
///
/// This is independent of the deployment's [`HashSuite`] (which builds the
/// trees); a deployment configures which evidence algorithms it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceAlg {
    /// SHA-256, 32-byte digests.
    Sha256,
    /// SM3, 32-byte digests.
    Sm3,
    /// SHA-512, 64-byte digests.
    Sha512,
}

deserialize_from_string_only!(EvidenceAlg {
    "sha256" => EvidenceAlg::Sha256,
    "sm3" => EvidenceAlg::Sm3,
    "sha512" => EvidenceAlg::Sha512,
});

impl EvidenceAlg {
    /// All algorithms, in id order.
    pub const ALL: [EvidenceAlg; 3] = [EvidenceAlg::Sha256, EvidenceAlg::Sm3, EvidenceAlg::Sha512];

    /// Stable numeric id used in the encoding and the database.
    pub const fn id(self) -> u8 {
        match self {
            EvidenceAlg::Sha256 => 1,
            EvidenceAlg::Sm3 => 2,
            EvidenceAlg::Sha512 => 3,
        }
    }

    /// The algorithm with the given numeric id.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Stable lowercase name used in messages, configuration and proofs.
    pub const fn name(self) -> &'static str {
        match self {
            EvidenceAlg::Sha256 => "sha256",
            EvidenceAlg::Sm3 => "sm3",
            EvidenceAlg::Sha512 => "sha512",
        }
    }

    /// Length of a digest of this algorithm, in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            EvidenceAlg::Sha256 | EvidenceAlg::Sm3 => 32,
            EvidenceAlg::Sha512 => 64,
        }
    }

    /// Hash a whole in-memory file with this algorithm.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            EvidenceAlg::Sha256 => HashSuite::Sha256.digest(data).to_vec(),
            EvidenceAlg::Sm3 => HashSuite::Sm3.digest(data).to_vec(),
            EvidenceAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

impl fmt::Display for EvidenceAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EvidenceAlg {
    type Err = EntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| EntryError::UnknownAlg(s.to_owned()))
    }
}

/// Why an entry, or one of its fields, is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(
        "tenant must be 1 to {MAX_TENANT_LEN} characters of [A-Za-z0-9._-] starting with a letter or digit, got {0:?}"
    )]
    BadTenant(String),
    #[error(
        "external id must be 1 to {MAX_EXTERNAL_ID_LEN} bytes of UTF-8 without control characters"
    )]
    BadExternalId,
    #[error("unknown hash algorithm {0:?} (expected sha256, sm3 or sha512)")]
    UnknownAlg(String),
    #[error("a {alg} hash is {expected} bytes, got {got}")]
    HashLength {
        alg: EvidenceAlg,
        expected: usize,
        got: usize,
    },
    #[error("metadata must be a JSON object")]
    MetadataNotObject,
    #[error("metadata is {0} bytes in canonical form, more than the {MAX_METADATA_LEN} allowed")]
    MetadataTooLarge(usize),
    #[error("metadata is not canonical RFC 8785 JSON")]
    MetadataNotCanonical,
    #[error("received time {0} is negative")]
    NegativeTime(i64),
    #[error("encoding: {0}")]
    Encoding(&'static str),
}

/// One piece of evidence as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Ledger sequence number: gap-free, from 0.
    pub seq: u64,
    /// When the ledger accepted the entry, microseconds since the Unix epoch (UTC).
    pub received_at_us: i64,
    /// The submitting bank or enterprise.
    pub tenant: String,
    /// The submitter's own reference (e.g. a loan contract number).
    pub external_id: String,
    /// The algorithm `evidence_hash` was computed with.
    pub hash_alg: EvidenceAlg,
    /// The digest of the evidence file.
    #[serde(with = "hex_bytes")]
    pub evidence_hash: Vec<u8>,
    /// Optional metadata, a JSON object in RFC 8785 canonical form.
    pub metadata: Option<String>,
}

impl Entry {
    /// Check every field against the rules of `docs/entry-encoding.md`.
    pub fn validate(&self) -> Result<(), EntryError> {
        validate_tenant(&self.tenant)?;
        validate_external_id(&self.external_id)?;
        validate_hash(self.hash_alg, &self.evidence_hash)?;
        if self.received_at_us < 0 {
            return Err(EntryError::NegativeTime(self.received_at_us));
        }
        if let Some(m) = &self.metadata {
            let value: serde_json::Value =
                serde_json::from_str(m).map_err(|_| EntryError::MetadataNotCanonical)?;
            if canonical_metadata(&value)? != *m {
                return Err(EntryError::MetadataNotCanonical);
            }
        }
        Ok(())
    }

    /// The canonical encoding (version 1). The entry must be valid.
    pub fn encode(&self) -> Vec<u8> {
        let entry = self.borrowed();
        let mut out = Vec::with_capacity(entry.encoded_len());
        entry.encode_into(&mut out);
        out
    }

    /// The entry's fields borrowed (see [`EntryRef`]).
    pub fn borrowed(&self) -> EntryRef<'_> {
        EntryRef {
            seq: self.seq,
            received_at_us: self.received_at_us,
            tenant: &self.tenant,
            external_id: &self.external_id,
            hash_alg: self.hash_alg,
            evidence_hash: &self.evidence_hash,
            metadata: self.metadata.as_deref(),
        }
    }

    /// Parse a canonical encoding; rejects any other byte string.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        let mut r = Reader(bytes);
        if r.take(ENTRY_MAGIC.len())? != ENTRY_MAGIC {
            return Err(EntryError::Encoding("missing the \"anchord.entry\" tag"));
        }
        if r.u8()? != ENTRY_VERSION {
            return Err(EntryError::Encoding("unsupported entry version"));
        }
        let seq = u64::from_be_bytes(r.array()?);
        let received_at_us = i64::from_be_bytes(r.array()?);
        let alg_id = r.u8()?;
        let hash_alg = EvidenceAlg::from_id(alg_id)
            .ok_or(EntryError::Encoding("unknown hash algorithm id"))?;
        let hash_len = r.u8()? as usize;
        let evidence_hash = r.take(hash_len)?.to_vec();
        let tenant_len = u16::from_be_bytes(r.array()?) as usize;
        let tenant = utf8(r.take(tenant_len)?)?;
        let ext_len = u16::from_be_bytes(r.array()?) as usize;
        let external_id = utf8(r.take(ext_len)?)?;
        let meta_len = u32::from_be_bytes(r.array()?) as usize;
        let metadata = match meta_len {
            0 => None,
            n => Some(utf8(r.take(n)?)?),
        };
        if !r.0.is_empty() {
            return Err(EntryError::Encoding("trailing bytes after the entry"));
        }
        let entry = Entry {
            seq,
            received_at_us,
            tenant,
            external_id,
            hash_alg,
            evidence_hash,
            metadata,
        };
        entry.validate()?;
        Ok(entry)
    }

    /// The RFC 6962 leaf hash of this entry in a tree of the given suite.
    pub fn leaf_hash(&self, suite: HashSuite) -> Digest32 {
        suite.leaf_hash(&self.encode())
    }

    /// The idempotency key of this entry; see [`identity_key`].
    pub fn identity(&self) -> Digest32 {
        identity_key(&self.tenant, &self.external_id)
    }

    /// Recompute the leaf hash and compare it with the stored one; the
    /// recomputed hash when they agree.
    pub fn check_leaf_hash(
        &self,
        suite: HashSuite,
        stored: &Digest32,
    ) -> Result<Digest32, LeafHashMismatch> {
        let recomputed = self.leaf_hash(suite);
        if recomputed != *stored {
            return Err(LeafHashMismatch {
                seq: self.seq,
                block: None,
                stored: *stored,
                recomputed,
            });
        }
        Ok(recomputed)
    }
}

/// An [`Entry`]'s fields borrowed from wherever they are kept: the ledger's
/// writer encodes and hashes the rows it plans straight from the batch's
/// messages, without copying four strings per row into an `Entry` first.
/// The one definition of the encoding: [`Entry::encode`] calls this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub seq: u64,
    pub received_at_us: i64,
    pub tenant: &'a str,
    pub external_id: &'a str,
    pub hash_alg: EvidenceAlg,
    pub evidence_hash: &'a [u8],
    pub metadata: Option<&'a str>,
}

impl EntryRef<'_> {
    /// The length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        ENTRY_MAGIC.len()
            + 1
            + 8
            + 8
            + 2
            + self.evidence_hash.len()
            + 2
            + 2
            + 4
            + self.tenant.len()
            + self.external_id.len()
            + self.metadata.map_or(0, str::len)
    }

    /// Append the canonical encoding (version 1) to `out`. The entry must be
    /// valid.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let meta = self.metadata.unwrap_or("");
        out.reserve(self.encoded_len());
        out.extend_from_slice(ENTRY_MAGIC);
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.received_at_us.to_be_bytes());
        out.push(self.hash_alg.id());
        out.push(self.evidence_hash.len() as u8);
        out.extend_from_slice(self.evidence_hash);
        out.extend_from_slice(&(self.tenant.len() as u16).to_be_bytes());
        out.extend_from_slice(self.tenant.as_bytes());
        out.extend_from_slice(&(self.external_id.len() as u16).to_be_bytes());
        out.extend_from_slice(self.external_id.as_bytes());
        out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        out.extend_from_slice(meta.as_bytes());
    }

    /// The RFC 6962 leaf hash, the encoding written into `scratch` (cleared
    /// first; kept by the caller so that a batch of rows allocates once).
    pub fn leaf_hash_with(&self, suite: HashSuite, scratch: &mut Vec<u8>) -> Digest32 {
        scratch.clear();
        self.encode_into(scratch);
        suite.leaf_hash(scratch)
    }

    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            seq: self.seq,
            received_at_us: self.received_at_us,
            tenant: self.tenant.to_owned(),
            external_id: self.external_id.to_owned(),
            hash_alg: self.hash_alg,
            evidence_hash: self.evidence_hash.to_vec(),
            metadata: self.metadata.map(str::to_owned),
        }
    }
}

/// A stored leaf hash that its entry does not reproduce.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "evidence seq {seq}{}: stored leaf hash {} but the entry recomputes {}",
    .block.map(|h| format!(" (block {h})")).unwrap_or_default(),
    hex::encode(.stored),
    hex::encode(.recomputed)
)]
pub struct LeafHashMismatch {
    pub seq: u64,
    /// The block the entry is sealed in, when the caller names it.
    pub block: Option<u64>,
    pub stored: Digest32,
    pub recomputed: Digest32,
}

impl LeafHashMismatch {
    /// The same mismatch, naming the block the entry is sealed in.
    pub fn in_block(self, height: u64) -> Self {
        LeafHashMismatch {
            block: Some(height),
            ..self
        }
    }
}

/// The idempotency key of a (tenant, external id) pair:
/// `SHA-256("anchord.identity" || u16 len || tenant || u16 len || external id)`.
///
/// It keys the ledger's uniqueness constraint and is never part of a proof,
/// so it is SHA-256 whatever the deployment's suite.
pub fn identity_key(tenant: &str, external_id: &str) -> Digest32 {
    HashSuite::Sha256.digest_parts(&[
        b"anchord.identity",
        &(tenant.len() as u16).to_be_bytes(),
        tenant.as_bytes(),
        &(external_id.len() as u16).to_be_bytes(),
        external_id.as_bytes(),
    ])
}

/// Tenants: 1..=64 bytes of `[A-Za-z0-9._-]`, the first a letter or digit.
pub fn validate_tenant(tenant: &str) -> Result<(), EntryError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant.as_bytes()[0].is_ascii_alphanumeric()
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EntryError::BadTenant(tenant.chars().take(80).collect()))
    }
}

/// External ids: 1..=256 bytes of UTF-8 with no control characters.
pub fn validate_external_id(external_id: &str) -> Result<(), EntryError> {
    let ok = !external_id.is_empty()
        && external_id.len() <= MAX_EXTERNAL_ID_LEN
        && !external_id.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(EntryError::BadExternalId)
    }
}

/// The digest length must match the algorithm.
pub fn validate_hash(alg: EvidenceAlg, hash: &[u8]) -> Result<(), EntryError> {
    if hash.len() == alg.digest_len() {
        Ok(())
    } else {
        Err(EntryError::HashLength {
            alg,
            expected: alg.digest_len(),
            got: hash.len(),
        })
    }
}

/// The RFC 8785 (JCS) canonical form of a metadata object, size-checked.
pub fn canonical_metadata(value: &serde_json::Value) -> Result<String, EntryError> {
    if !value.is_object() {
        return Err(EntryError::MetadataNotObject);
    }
    let s =
        serde_json_canonicalizer::to_string(value).map_err(|_| EntryError::MetadataNotCanonical)?;
    if s.len() > MAX_METADATA_LEN {
        return Err(EntryError::MetadataTooLarge(s.len()));
    }
    Ok(s)
}

fn utf8(b: &[u8]) -> Result<String, EntryError> {
    String::from_utf8(b.to_vec()).map_err(|_| EntryError::Encoding("a text field is not UTF-8"))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        if self.0.len() < n {
            return Err(EntryError::Encoding("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, EntryError> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&const_hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The worked example of `docs/entry-encoding.md`.
    pub(crate) fn example() -> Entry {
        Entry {
            seq: 42,
            received_at_us: 1_764_000_000_123_456,
            tenant: "icbc-sh".into(),
            external_id: "LOAN-2025-000017".into(),
            hash_alg: EvidenceAlg::Sha256,
            evidence_hash: HashSuite::Sha256.digest(b"signed loan agreement").to_vec(),
            metadata: Some(
                canonical_metadata(
                    &serde_json::json!({"type":"loan-contract","amount":"250000.00"}),
                )
                .unwrap(),
            ),
        }
    }

    #[test]
    fn leaf_hash_check_accepts_the_entrys_own_and_names_a_mismatch() {
        let e = example();
        let leaf = e.leaf_hash(HashSuite::Sha256);
        assert_eq!(e.check_leaf_hash(HashSuite::Sha256, &leaf), Ok(leaf));
        let mut stored = leaf;
        stored[31] ^= 1;
        let m = e.check_leaf_hash(HashSuite::Sha256, &stored).unwrap_err();
        assert_eq!(m.recomputed, leaf);
        assert_eq!(
            m.to_string(),
            format!(
                "evidence seq 42: stored leaf hash {} but the entry recomputes {}",
                hex::encode(stored),
                hex::encode(leaf)
            )
        );
        assert!(
            m.clone()
                .in_block(7)
                .to_string()
                .starts_with("evidence seq 42 (block 7): stored leaf hash ")
        );
        // The other suite's leaf is not this suite's.
        assert!(
            e.check_leaf_hash(HashSuite::Sm3, &leaf).is_err(),
            "an SM3 tree must not accept a SHA-256 leaf"
        );
        let mut changed = example();
        changed.evidence_hash[0] ^= 1;
        assert!(changed.check_leaf_hash(HashSuite::Sha256, &leaf).is_err());
    }

    #[test]
    fn worked_example_known_answer() {
        let e = example();
        assert_eq!(
            e.metadata.as_deref(),
            Some(r#"{"amount":"250000.00","type":"loan-contract"}"#)
        );
        let enc = e.encode();
        assert_eq!(
            hex::encode(&enc),
            concat!(
                "616e63686f72642e656e747279", // "anchord.entry"
                "01",                         // version
                "000000000000002a",           // seq 42
                "0006445941642240",           // received_at_us
                "01",
                "20", // sha256, 32 bytes
                "7bbfeca40ad9a92de2aa7b191dee370f2361d90a94135a42c10f9d49008367e9",
                "0007",
                "696362632d7368", // tenant
                "0010",
                "4c4f414e2d323032352d303030303137", // external id
                "0000002d",                         // metadata length 45
                "7b22616d6f756e74223a223235303030302e3030222c2274797065223a226c6f616e2d636f6e7472616374227d"
            )
        );
        assert_eq!(
            hex::encode(e.leaf_hash(HashSuite::Sha256)),
            "890026a0b207e08bbf280a77fdec816bf89543544556e241f050b8f82f9a105d"
        );
    }

    #[test]
    fn decode_rejects_every_single_byte_truncation_and_trailing_garbage() {
        let enc = example().encode();
        for n in 0..enc.len() {
            assert!(
                Entry::decode(&enc[..n]).is_err(),
                "prefix of {n} bytes decoded"
            );
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert_eq!(
            Entry::decode(&longer),
            Err(EntryError::Encoding("trailing bytes after the entry"))
        );
    }

    #[test]
    fn decode_rejects_wrong_tag_version_alg_and_non_canonical_metadata() {
        let enc = example().encode();
        let mut bad = enc.clone();
        bad[0] ^= 1;
        assert!(Entry::decode(&bad).is_err());
        let mut bad = enc.clone();
        bad[13] = 2;
        assert_eq!(
            Entry::decode(&bad),
            Err(EntryError::Encoding("unsupported entry version"))
        );
        let mut bad = enc.clone();
        bad[30] = 9;
        assert_eq!(
            Entry::decode(&bad),
            Err(EntryError::Encoding("unknown hash algorithm id"))
        );
        let mut e = example();
        e.metadata = Some(r#"{"type":"loan-contract","amount":"250000.00"}"#.into());
        assert_eq!(
            Entry::decode(&e.encode()),
            Err(EntryError::MetadataNotCanonical)
        );
    }

    #[test]
    fn field_rules() {
        assert!(validate_tenant("bank-01.sh_x").is_ok());
        for bad in ["", "-bank", "bank one", "银行", &"a".repeat(65)] {
            assert!(validate_tenant(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_external_id("合同-2025/17").is_ok());
        assert!(validate_external_id("").is_err());
        assert!(validate_external_id("a\nb").is_err());
        assert!(validate_external_id(&"x".repeat(257)).is_err());
        assert_eq!(
            validate_hash(EvidenceAlg::Sha512, &[0; 32]),
            Err(EntryError::HashLength {
                alg: EvidenceAlg::Sha512,
                expected: 64,
                got: 32
            })
        );
        assert_eq!(
            canonical_metadata(&serde_json::json!([1])),
            Err(EntryError::MetadataNotObject)
        );
        let big = serde_json::json!({"k": "x".repeat(MAX_METADATA_LEN)});
        assert!(matches!(
            canonical_metadata(&big),
            Err(EntryError::MetadataTooLarge(_))
        ));
    }

    #[test]
    fn identity_separates_fields() {
        // Length prefixes: moving a character across the boundary changes the key.
        assert_ne!(identity_key("ab", "c"), identity_key("a", "bc"));
        assert_eq!(identity_key("t", "x"), identity_key("t", "x"));
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<u64>(),
            0i64..i64::MAX,
            "[a-z0-9][a-z0-9._-]{0,20}",
            "[^\\p{Cc}]{1,40}",
            prop::sample::select(EvidenceAlg::ALL.to_vec()),
            any::<[u8; 64]>(),
            prop::option::of(prop::collection::btree_map(
                "[a-z]{1,8}",
                "[ -~]{0,16}",
                0..4,
            )),
        )
            .prop_map(|(seq, t, tenant, ext, alg, h, meta)| Entry {
                seq,
                received_at_us: t,
                tenant,
                external_id: ext,
                hash_alg: alg,
                evidence_hash: h[..alg.digest_len()].to_vec(),
                metadata: meta.map(|m| canonical_metadata(&serde_json::json!(m)).unwrap()),
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(e in arb_entry()) {
            e.validate().unwrap();
            prop_assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        }

        #[test]
        fn any_field_change_changes_the_leaf(e in arb_entry(), which in 0usize..5) {
            let mut f = e.clone();
            match which {
                0 => f.seq = f.seq.wrapping_add(1),
                1 => f.received_at_us ^= 1,
                2 => f.tenant.push('x'),
                3 => f.external_id.push('x'),
                _ => f.evidence_hash[0] ^= 1,
            }
            for s in HashSuite::ALL {
                prop_assert_ne!(e.leaf_hash(s), f.leaf_hash(s));
            }
        }
    }
}
