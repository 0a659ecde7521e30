//! The anchor payload: the bytes an EVM anchor transaction carries in its
//! data field (`docs/proof-format.md`, receipts; `docs/trust-policy.md`,
//! `--online`):
//!
//! ```text
//! "ANCHORD1" (8 bytes) ‖ checkpoint size (u64 big-endian) ‖ checkpoint root (32 bytes) ‖ origin (UTF-8, the rest)
//! ```
//!
//! and, as a receipt and an EVM node show it, `0x` followed by the lowercase
//! hex of those bytes. The relay builds it, `core::bundle` checks a receipt's
//! `details.input` against it offline and the verifier compares it with the
//! chain online: this module is its one definition.

use crate::checkpoint::{Checkpoint, validate_origin};
use crate::suite::Digest32;

/// The magic the payload starts with (ASCII `ANCHORD1`: Anchord, payload
/// version 1).
pub const PAYLOAD_MAGIC: &[u8; 8] = b"ANCHORD1";

/// Length of the fixed part: magic, size, root.
pub const PAYLOAD_FIXED_LEN: usize = 8 + 8 + 32;

/// What the EVM data field says, in the receipts' words.
pub const PAYLOAD_FORMAT: &str = "ANCHORD1 || u64be size || root(32) || origin utf-8";

/// The checkpoint an anchor commits to: origin, size and root (extension
/// lines are not anchored; Anchord writes none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorPayload {
    pub origin: String,
    pub size: u64,
    pub root: Digest32,
}

/// Why bytes are not an anchor payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnchorPayloadError {
    #[error("anchor payload is {len} bytes; it needs at least {PAYLOAD_FIXED_LEN} and an origin")]
    TooShort { len: usize },
    #[error("anchor payload does not start with \"ANCHORD1\"")]
    Magic,
    #[error("anchor payload origin is not UTF-8")]
    OriginNotUtf8,
    #[error("anchor payload origin: {0}")]
    Origin(String),
    #[error("anchor payload hex: {0}")]
    Hex(String),
}

impl AnchorPayload {
    pub fn new(origin: impl Into<String>, size: u64, root: Digest32) -> Self {
        AnchorPayload {
            origin: origin.into(),
            size,
            root,
        }
    }

    /// The payload of a checkpoint (its extension lines are not anchored).
    pub fn of(cp: &Checkpoint) -> Self {
        AnchorPayload::new(cp.origin.clone(), cp.size, cp.root)
    }

    /// The checkpoint this payload commits to (no extension lines).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.origin.clone(), self.size, self.root)
    }

    /// The binary payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(PAYLOAD_FIXED_LEN + self.origin.len());
        v.extend_from_slice(PAYLOAD_MAGIC);
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.root);
        v.extend_from_slice(self.origin.as_bytes());
        v
    }

    /// `0x` ‖ lowercase hex of [`AnchorPayload::encode`]: the EVM
    /// transaction's `input` as a node returns it and a receipt records it.
    pub fn to_hex_data(&self) -> String {
        format!("0x{}", hex::encode(self.encode()))
    }

    /// Parse [`AnchorPayload::encode`]: the magic, the size, the root, and an
    /// origin that is a valid checkpoint origin (non-empty UTF-8, printable,
    /// at most 256 bytes, no surrounding space). Exactly what `encode`
    /// writes is accepted, so `decode(x)?.encode() == x`.
    pub fn decode(data: &[u8]) -> Result<Self, AnchorPayloadError> {
        if data.len() <= PAYLOAD_FIXED_LEN {
            return Err(AnchorPayloadError::TooShort { len: data.len() });
        }
        let (magic, rest) = data.split_at(8);
        if magic != PAYLOAD_MAGIC {
            return Err(AnchorPayloadError::Magic);
        }
        let (size, rest) = rest.split_at(8);
        let (root, origin) = rest.split_at(32);
        let mut size_be = [0u8; 8];
        size_be.copy_from_slice(size);
        let mut root_bytes = [0u8; 32];
        root_bytes.copy_from_slice(root);
        let origin = std::str::from_utf8(origin).map_err(|_| AnchorPayloadError::OriginNotUtf8)?;
        validate_origin(origin).map_err(|e| AnchorPayloadError::Origin(e.to_string()))?;
        Ok(AnchorPayload::new(
            origin,
            u64::from_be_bytes(size_be),
            root_bytes,
        ))
    }

    /// Parse [`AnchorPayload::to_hex_data`] (`0x` prefix optional, either
    /// case of hex digits, as nodes differ).
    pub fn decode_hex_data(s: &str) -> Result<Self, AnchorPayloadError> {
        let h = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(h).map_err(|e| AnchorPayloadError::Hex(e.to_string()))?;
        AnchorPayload::decode(&bytes)
    }

    /// Does an EVM `input` (as a node or a receipt shows it) carry exactly
    /// this payload? Hex digits compare case-insensitively.
    pub fn matches_hex_data(&self, input: &str) -> bool {
        input.eq_ignore_ascii_case(&self.to_hex_data())
    }
}

/// The idempotency key of anchoring checkpoint `cp` on `target`
/// (`docs/judicial-gateway-v1.md`): `hex(SHA-256("anchord-anchor/v1\n" ‖
/// target ‖ "\n" ‖ checkpoint body))` truncated to 32 hex digits. The same
/// checkpoint on the same target always gets the same key, so a
/// resubmission is recognisable.
pub fn idempotency_key(target: &str, cp: &Checkpoint) -> String {
    let body = cp.body();
    let d = crate::suite::HashSuite::Sha256.digest_parts(&[
        b"anchord-anchor/v1\n",
        target.as_bytes(),
        b"\n",
        body.as_bytes(),
    ]);
    hex::encode(&d[..16])
}

/// The relay's raw receipt of a confirmed anchor (`docs/proof-format.md`,
/// "receipt"), stored verbatim and carried in proof bundles, where
/// `bundle::check_raw_receipt` reads it back. Its one writer.
#[derive(Clone, Debug)]
pub struct RawReceipt<'a> {
    pub target: &'a str,
    pub chain_kind: &'a str,
    pub chain_id: &'a str,
    pub tx_id: &'a str,
    pub block_number: u64,
    pub block_hash: &'a str,
    pub block_time_us: i64,
    /// The chain's genesis block hash; omitted when unknown.
    pub genesis_hash: Option<&'a str>,
    pub idempotency_key: &'a str,
    /// The anchored checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Per chain kind (`docs/proof-format.md`).
    pub details: &'a serde_json::Value,
}

impl RawReceipt<'_> {
    /// The receipt as JSON (version 1).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "version": 1,
            "target": self.target,
            "chainKind": self.chain_kind,
            "chainId": self.chain_id,
            "txId": self.tx_id,
            "blockNumber": self.block_number,
            "blockHash": self.block_hash,
            "blockTimeUs": self.block_time_us,
            "idempotencyKey": self.idempotency_key,
            "checkpoint": {
                "origin": self.checkpoint.origin,
                "size": self.checkpoint.size,
                "root": crate::checkpoint::encode_hash(&self.checkpoint.root),
                "body": self.checkpoint.body(),
            },
            "details": self.details,
        });
        if let Some(g) = self.genesis_hash {
            v["genesisHash"] = serde_json::Value::from(g);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn kat_root() -> Digest32 {
        let mut root = [0u8; 32];
        for (i, b) in root.iter_mut().enumerate() {
            *b = i as u8;
        }
        root
    }

    /// Checkpoint 1042 of `bank-a.example/ledger`, root 00 01 … 1f (the
    /// judicial gateway spec's example), written out by hand from the
    /// format: magic, size 1042 = 0x412 big-endian, root, origin.
    const KAT_HEX: &str = "414e43484f52443100000000000004120001020304050607\
                           08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                           62616e6b2d612e6578616d706c652f6c6564676572";

    #[test]
    fn known_answer() {
        let p = AnchorPayload::new("bank-a.example/ledger", 1042, kat_root());
        let want = KAT_HEX.replace(' ', "");
        assert_eq!(hex::encode(p.encode()), want);
        assert_eq!(p.to_hex_data(), format!("0x{want}"));
        assert_eq!(
            AnchorPayload::decode(&hex::decode(&want).unwrap()).unwrap(),
            p
        );
        assert_eq!(
            AnchorPayload::decode_hex_data(&format!("0x{}", want.to_uppercase())).unwrap(),
            p
        );
        assert!(p.matches_hex_data(&format!("0x{}", want.to_uppercase())));
        assert_eq!(
            p.checkpoint().body(),
            "bank-a.example/ledger\n1042\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
        );
    }

    #[test]
    fn idempotency_key_known_answer_from_the_gateway_spec() {
        // docs/judicial-gateway-v1.md: checkpoint 1042 of
        // bank-a.example/ledger, root 00 01 … 1f, target hz-court.
        let cp = Checkpoint::new("bank-a.example/ledger", 1042, kat_root());
        assert_eq!(
            idempotency_key("hz-court", &cp),
            "09cccc17ee9f74bb7b5efa8e16054497"
        );
        assert_ne!(
            idempotency_key("hz-court", &cp),
            idempotency_key("hz-court2", &cp)
        );
        let other = Checkpoint::new("bank-a.example/ledger", 1043, kat_root());
        assert_ne!(
            idempotency_key("hz-court", &cp),
            idempotency_key("hz-court", &other)
        );
    }

    #[test]
    fn raw_receipt_known_answer() {
        let cp = Checkpoint::new("bank-a.example/ledger", 1042, kat_root());
        let details = serde_json::json!({"gateway": "https://gw.example"});
        let r = RawReceipt {
            target: "hz-court",
            chain_kind: "judicial",
            chain_id: "hz-internet-court",
            tx_id: "tx9",
            block_number: 77,
            block_hash: "bh",
            block_time_us: 1_764_000_000_000_000,
            genesis_hash: Some("g0"),
            idempotency_key: &idempotency_key("hz-court", &cp),
            checkpoint: &cp,
            details: &details,
        };
        assert_eq!(
            r.to_json().to_string(),
            concat!(
                r#"{"blockHash":"bh","blockNumber":77,"blockTimeUs":1764000000000000,"#,
                r#""chainId":"hz-internet-court","chainKind":"judicial","#,
                r#""checkpoint":{"body":"bank-a.example/ledger\n1042\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n","#,
                r#""origin":"bank-a.example/ledger","root":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","size":1042},"#,
                r#""details":{"gateway":"https://gw.example"},"genesisHash":"g0","#,
                r#""idempotencyKey":"09cccc17ee9f74bb7b5efa8e16054497","target":"hz-court","#,
                r#""txId":"tx9","version":1}"#
            )
        );
        let without = RawReceipt {
            genesis_hash: None,
            ..r
        };
        assert!(without.to_json().get("genesisHash").is_none());
    }

    #[test]
    fn the_bytes_are_those_of_the_stored_test_corpus() {
        // testdata/ bundles carry this payload in their EVM receipts; the
        // corpus generator and the relay both encode through this module.
        let cp = Checkpoint::new("anchord.test/ledger", 3, [0xab; 32]);
        let p = AnchorPayload::of(&cp);
        let e = p.encode();
        assert_eq!(&e[..8], b"ANCHORD1");
        assert_eq!(&e[8..16], &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&e[16..48], &[0xab; 32]);
        assert_eq!(&e[48..], b"anchord.test/ledger");
        assert_eq!(p.checkpoint(), cp);
    }

    #[test]
    fn mutated_payloads_are_refused_or_differ() {
        let p = AnchorPayload::new("bank-a.example/ledger", 1042, kat_root());
        let good = p.encode();
        // Truncations: nothing shorter than magic+size+root+1 parses.
        for n in 0..=PAYLOAD_FIXED_LEN {
            assert_eq!(
                AnchorPayload::decode(&good[..n]),
                Err(AnchorPayloadError::TooShort { len: n })
            );
        }
        // Any flipped bit in the magic is refused.
        for i in 0..8 {
            for bit in 0..8 {
                let mut m = good.clone();
                m[i] ^= 1 << bit;
                assert_eq!(AnchorPayload::decode(&m), Err(AnchorPayloadError::Magic));
            }
        }
        // A flipped bit in size or root parses to another checkpoint, which
        // no longer matches the original's data.
        for i in 8..PAYLOAD_FIXED_LEN {
            let mut m = good.clone();
            m[i] ^= 0x01;
            let q = AnchorPayload::decode(&m).unwrap();
            assert_ne!(q, p);
            assert!(!p.matches_hex_data(&format!("0x{}", hex::encode(&m))));
        }
        // Origins: not UTF-8, control characters, surrounding space, too long.
        let with_origin = |o: &[u8]| {
            let mut m = good[..PAYLOAD_FIXED_LEN].to_vec();
            m.extend_from_slice(o);
            AnchorPayload::decode(&m)
        };
        assert_eq!(
            with_origin(b"bank\xff"),
            Err(AnchorPayloadError::OriginNotUtf8)
        );
        for bad in [&b"bank\nx"[..], b" bank", b"bank ", b"a\x00b", &[b'a'; 257]] {
            assert!(
                matches!(with_origin(bad), Err(AnchorPayloadError::Origin(_))),
                "{bad:?}"
            );
        }
        // Hex forms.
        assert!(matches!(
            AnchorPayload::decode_hex_data("0xzz"),
            Err(AnchorPayloadError::Hex(_))
        ));
        assert!(!p.matches_hex_data(&p.to_hex_data()[..p.to_hex_data().len() - 2]));
        assert!(!p.matches_hex_data(&format!("{}00", p.to_hex_data())));
    }

    proptest! {
        #[test]
        fn round_trip(
            origin in "[a-z0-9][a-z0-9./_-]{0,60}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
        ) {
            let p = AnchorPayload::new(origin, size, root);
            let e = p.encode();
            prop_assert_eq!(AnchorPayload::decode(&e).unwrap(), p.clone());
            prop_assert_eq!(AnchorPayload::decode_hex_data(&p.to_hex_data()).unwrap(), p.clone());
            prop_assert_eq!(AnchorPayload::of(&p.checkpoint()), p);
        }

        #[test]
        fn whatever_decodes_encodes_back_to_the_same_bytes(data in proptest::collection::vec(any::<u8>(), 0..120), tag in any::<bool>()) {
            let mut data = data;
            if tag && data.len() >= 8 {
                data[..8].copy_from_slice(PAYLOAD_MAGIC);
            }
            if let Ok(p) = AnchorPayload::decode(&data) {
                prop_assert_eq!(p.encode(), data);
            }
        }
    }
}
