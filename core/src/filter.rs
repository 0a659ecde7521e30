//! The filters of a closed ledger partition: blocked Bloom filters over
//! the 32-byte keys of one `seq` range, so that a lookup skips the index of
//! every partition that cannot hold a key (docs/ledger-schema.md,
//! "Filters of closed partitions"). Two kinds ([`FilterKind`]):
//!
//! - identities (`entry::identity_key`, SHA-256 values), for the writer's
//!   idempotency check and proofs by identity;
//! - evidence hashes, for proofs by hash, keyed by [`evidence_hash_key`]
//!   (a SHA-256 of the hash: a client chooses its hashes, so their bytes are
//!   not trusted to be uniform).
//!
//! A filter answers "maybe" for every key inserted (no false negatives) and
//! for a small share of the others (about 0.1% at [`BITS_PER_KEY`]). A
//! "maybe" costs one index probe; a "no" is final.
//!
//! Format version 1, stored in `identity_filters.bits` and
//! `evidence_hash_filters.bits`: `n` blocks of 64 bytes, each eight
//! little-endian `u64` words (512 bits). A key `k` (32 bytes) selects block
//! `((u64_le(k[0..8]) as u128 * n) >> 64)` and, in it, the [`BITS_SET`]
//! bits `(u128_le(k[8..24]) >> 9i) & 511` for `i` in `0..8`; bit `b` of a
//! block is bit `b % 64` of word `b / 64`. Keys are uniform SHA-256
//! values, so their bytes are used as the hash directly.
//!
//! Written here rather than taken from a Bloom-filter crate: the filter is
//! stored and read back by other versions of Anchord (and by `anchord
//! audit`), so its bit layout must be fixed and specified, and crates
//! re-hash keys with hashers whose output is not promised across releases.

use crate::Digest32;
use sha2::{Digest, Sha256};

/// Bits per identity a filter is sized for.
pub const BITS_PER_KEY: u64 = 16;
/// Bits set per identity, all in one 512-bit block.
pub const BITS_SET: u32 = 8;
/// The stored format this module reads and writes.
pub const FORMAT_VERSION: i16 = 1;

const BLOCK_BYTES: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("identity filter: {0} bytes is not a whole, non-zero number of 64-byte blocks")]
    Length(usize),
    #[error("identity filter format {0} is not known (this build reads format 1)")]
    Format(i16),
}

/// What a filter's keys are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// `entry::identity_key` of each entry.
    Identity,
    /// [`evidence_hash_key`] of each entry's evidence hash.
    EvidenceHash,
}

impl FilterKind {
    pub const ALL: [FilterKind; 2] = [FilterKind::Identity, FilterKind::EvidenceHash];

    /// The domain tag of [`filter_digest`].
    fn digest_tag(self) -> &'static [u8] {
        match self {
            FilterKind::Identity => b"anchord identity filter v1\0",
            FilterKind::EvidenceHash => b"anchord evidence-hash filter v1\0",
        }
    }

    /// For logs and reports: "identity", "evidence-hash".
    pub fn name(self) -> &'static str {
        match self {
            FilterKind::Identity => "identity",
            FilterKind::EvidenceHash => "evidence-hash",
        }
    }
}

/// The key an evidence hash (32 or 64 bytes, any algorithm) has in an
/// evidence-hash filter: SHA-256 of a domain tag and the hash.
pub fn evidence_hash_key(hash: &[u8]) -> Digest32 {
    let mut h = Sha256::new();
    h.update(b"anchord evidence-hash filter key v1\0");
    h.update(hash);
    h.finalize().into()
}

/// A blocked Bloom filter over 32-byte keys.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFilter {
    blocks: Vec<[u64; 8]>,
}

impl std::fmt::Debug for KeyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFilter")
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

/// The block an identity selects among `n`, and the bit positions it sets.
fn place(key: &Digest32, n: usize) -> (usize, [u16; BITS_SET as usize]) {
    let h1 = u64::from_le_bytes(key[0..8].try_into().expect("8 bytes"));
    let block = ((h1 as u128 * n as u128) >> 64) as usize;
    let h2 = u128::from_le_bytes(key[8..24].try_into().expect("16 bytes"));
    let mut bits = [0u16; BITS_SET as usize];
    for (i, b) in bits.iter_mut().enumerate() {
        *b = ((h2 >> (9 * i)) & 511) as u16;
    }
    (block, bits)
}

impl KeyFilter {
    /// An empty filter sized for `keys` identities.
    pub fn with_capacity(keys: u64) -> Self {
        let blocks = (keys.saturating_mul(BITS_PER_KEY)).div_ceil(512).max(1);
        KeyFilter {
            blocks: vec![[0u64; 8]; blocks as usize],
        }
    }

    pub fn insert(&mut self, key: &Digest32) {
        let (block, bits) = place(key, self.blocks.len());
        let words = &mut self.blocks[block];
        for b in bits {
            words[(b / 64) as usize] |= 1u64 << (b % 64);
        }
    }

    /// False only when `key` was never inserted.
    pub fn may_contain(&self, key: &Digest32) -> bool {
        let (block, bits) = place(key, self.blocks.len());
        let words = &self.blocks[block];
        bits.iter()
            .all(|&b| words[(b / 64) as usize] & (1u64 << (b % 64)) != 0)
    }

    /// Size of the stored form, in bytes.
    pub fn len_bytes(&self) -> usize {
        self.blocks.len() * BLOCK_BYTES
    }

    /// The stored form (format version 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len_bytes());
        for block in &self.blocks {
            for w in block {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Read the stored form of format `format`.
    pub fn from_bytes(format: i16, bytes: &[u8]) -> Result<Self, FilterError> {
        if format != FORMAT_VERSION {
            return Err(FilterError::Format(format));
        }
        if bytes.is_empty() || !bytes.len().is_multiple_of(BLOCK_BYTES) {
            return Err(FilterError::Length(bytes.len()));
        }
        let blocks = bytes
            .chunks_exact(BLOCK_BYTES)
            .map(|c| {
                let mut words = [0u64; 8];
                for (w, b) in words.iter_mut().zip(c.chunks_exact(8)) {
                    *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
                }
                words
            })
            .collect();
        Ok(KeyFilter { blocks })
    }
}

/// The digest stored beside a filter: SHA-256 over its kind's domain tag,
/// the partition's `[lo, hi)`, the number of keys and the stored bytes.
/// Checked when a filter is loaded, so that a damaged one is set aside
/// (the partition's index answers instead) rather than trusted.
pub fn filter_digest(kind: FilterKind, lo: u64, hi: u64, keys: u64, bytes: &[u8]) -> Digest32 {
    let mut h = Sha256::new();
    h.update(kind.digest_tag());
    h.update(lo.to_be_bytes());
    h.update(hi.to_be_bytes());
    h.update(keys.to_be_bytes());
    h.update(bytes);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u64) -> Digest32 {
        Sha256::digest(i.to_be_bytes()).into()
    }

    /// Known answers computed apart from this code (a few lines of Python
    /// following the module's format description).
    #[test]
    fn known_answer_placement_and_bytes() {
        // SHA-256 of the 8-byte big-endian integer 0.
        let k = key(0);
        assert_eq!(
            const_hex::encode(k),
            "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc"
        );
        let (block, bits) = place(&k, 1000);
        assert_eq!(block, KAT_BLOCK);
        assert_eq!(bits, KAT_BITS);
        let mut f = KeyFilter::with_capacity(100);
        assert_eq!(f.len_bytes(), 256); // 1,600 bits -> 4 blocks
        f.insert(&k);
        assert_eq!(
            const_hex::encode(Sha256::digest(f.to_bytes())),
            KAT_BYTES_SHA256
        );
        assert_eq!(
            const_hex::encode(filter_digest(
                FilterKind::Identity,
                0,
                100,
                1,
                &f.to_bytes()
            )),
            KAT_DIGEST
        );
    }

    #[test]
    fn known_answer_evidence_hash_key_and_digest() {
        assert_eq!(
            const_hex::encode(evidence_hash_key(&[0u8; 32])),
            KAT_HASH_KEY
        );
        assert_eq!(
            const_hex::encode(filter_digest(
                FilterKind::EvidenceHash,
                0,
                100,
                1,
                &[0u8; 64]
            )),
            KAT_HASH_DIGEST
        );
        assert_ne!(
            filter_digest(FilterKind::EvidenceHash, 0, 100, 1, &[0u8; 64]),
            filter_digest(FilterKind::Identity, 0, 100, 1, &[0u8; 64]),
            "the kinds' digests are apart"
        );
    }

    const KAT_HASH_KEY: &str = "de61d7dcc9bdc2b96874ff1eb799e914b03db0a1a099c108fe08a224e7bef414";
    const KAT_HASH_DIGEST: &str =
        "21408a1b961f0c1ac266295d8c4185a45c1a1f10cc3f99579a82834080bd5ada";
    const KAT_BLOCK: usize = 476;
    const KAT_BITS: [u16; 8] = [247, 454, 235, 233, 172, 304, 61, 26];
    const KAT_BYTES_SHA256: &str =
        "01122e3c53d439d0d02d253fa516b57ffdc5c307a120a2bb71ae7ac6bf643058";
    const KAT_DIGEST: &str = "418aef6b76a6af9f11d80523b08532a54909dad4af833273fe25749b2c49e452";

    #[test]
    fn stored_form_is_checked() {
        assert_eq!(KeyFilter::from_bytes(1, &[]), Err(FilterError::Length(0)));
        assert_eq!(
            KeyFilter::from_bytes(1, &[0; 65]),
            Err(FilterError::Length(65))
        );
        assert_eq!(
            KeyFilter::from_bytes(2, &[0; 64]),
            Err(FilterError::Format(2))
        );
    }

    #[test]
    fn false_positive_rate_is_near_its_design() {
        let n = 100_000u64;
        let mut f = KeyFilter::with_capacity(n);
        for i in 0..n {
            f.insert(&key(i));
        }
        let trials = 200_000u64;
        let hits = (n..n + trials).filter(|&i| f.may_contain(&key(i))).count();
        let rate = hits as f64 / trials as f64;
        // A blocked filter of 16 bits per key and 8 bits set: about 0.1%.
        assert!(rate < 0.004, "false-positive rate {rate}");
    }

    proptest! {
        #[test]
        fn every_inserted_identity_is_found_after_a_round_trip(
            keys in proptest::collection::vec(any::<[u8; 32]>(), 0..600),
            capacity in 1u64..700,
        ) {
            let mut f = KeyFilter::with_capacity(capacity);
            for k in &keys {
                f.insert(k);
            }
            let back = KeyFilter::from_bytes(FORMAT_VERSION, &f.to_bytes()).unwrap();
            prop_assert_eq!(&back, &f);
            for k in &keys {
                prop_assert!(back.may_contain(k));
            }
        }

        #[test]
        fn a_cleared_bit_of_an_identity_hides_it(k in any::<[u8; 32]>(), which in 0usize..8) {
            let mut f = KeyFilter::with_capacity(10);
            f.insert(&k);
            let (block, bits) = place(&k, f.blocks.len());
            let b = bits[which];
            // Another of the key's bits may share the word and position;
            // clear them all at once when they do.
            f.blocks[block][(b / 64) as usize] &= !(1u64 << (b % 64));
            prop_assert!(!f.may_contain(&k));
            let stored = f.to_bytes();
            prop_assert_ne!(
                filter_digest(FilterKind::Identity, 0, 10, 1, &stored),
                {
                    let mut g = KeyFilter::with_capacity(10);
                    g.insert(&k);
                    filter_digest(FilterKind::Identity, 0, 10, 1, &g.to_bytes())
                }
            );
        }
    }
}
