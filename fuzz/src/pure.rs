//! The pure targets: parsers that need only `anchord-core` and `anchord-tsa`
//! (plus `serde_json`, `hex` and a `crate::fuzz_dir()` in the including
//! crate). Each returns whether the parser accepted the input; a bug is a
//! panic (including a failed round-trip assertion).
//!
//! Shared, not copied: `anchord-fuzz` uses this module (re-exported from
//! [`crate::targets`]) and the coverage-guided AFL++ harness `fuzz/afl`
//! includes the same file with `#[path]`, so its build pulls none of the
//! pipeline stages (rdkafka, tokio, axum, PostgreSQL). Keep it that way: a
//! target that needs another crate belongs in `targets.rs`.

use std::sync::OnceLock;

use anchord_core::bundle::corpus;
use anchord_core::checkpoint::NoteVerifier;

/// Inputs that are text go through `str`; invalid UTF-8 is rejected the way
/// the services reject it (they read bodies as UTF-8 first).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Initialises what the targets load once (the corpus keys, the pinned TSA
/// certificates): the AFL++ harness calls it before its fork server starts,
/// so every forked run starts from the same state (stable coverage) instead
/// of each fork deriving the keys again.
pub fn warm_up() {
    let _ = keys();
    let _ = tsa_certs();
}

/// The corpus deployment's sealer and witness keys (the keys the seeds are
/// signed with, so mutated notes reach the signature checks).
fn keys() -> &'static (NoteVerifier, Vec<NoteVerifier>) {
    static KEYS: OnceLock<(NoteVerifier, Vec<NoteVerifier>)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            corpus::sealer().verifier(),
            (0..3).map(|i| corpus::witness(i).verifier()).collect(),
        )
    })
}

/// The entry encoding (`core::entry::Entry::decode`).
pub mod entry {
    use anchord_core::Entry;

    pub fn target(data: &[u8]) -> bool {
        let Ok(e) = Entry::decode(data) else {
            return false;
        };
        let bytes = e.encode();
        assert_eq!(
            Entry::decode(&bytes).as_ref(),
            Ok(&e),
            "decode(encode(x)) != x"
        );
        // One encoding per entry: what decodes re-encodes to the same bytes.
        assert_eq!(bytes, data, "a non-canonical encoding was accepted");
        let _ = e.identity();
        true
    }
}

/// Checkpoint bodies, block headers, signed notes, signature lines,
/// verifier keys and cosignature verification (`core::checkpoint`).
pub mod checkpoint {
    use anchord_core::checkpoint::{
        BlockHeader, Checkpoint, NoteSignature, NoteSigner, NoteVerifier, SignedNote,
        verify_checkpoint,
    };

    pub fn target(data: &[u8]) -> bool {
        let mut ok = false;
        if let Ok(h) = BlockHeader::decode(data) {
            assert_eq!(BlockHeader::decode(&h.encode()).as_ref(), Ok(&h));
            let _ = h.validate();
            let _ = h.hash();
            ok = true;
        }
        let Some(s) = super::text(data) else {
            return ok;
        };
        if let Ok(c) = Checkpoint::parse(s) {
            assert_eq!(Checkpoint::parse(&c.body()).as_ref(), Ok(&c));
            ok = true;
        }
        if let Ok(n) = SignedNote::parse(s) {
            assert_eq!(SignedNote::parse(&n.format()).as_ref(), Ok(&n));
            let (sealer, witnesses) = super::keys();
            for quorum in [0, 1, 3] {
                let _ = verify_checkpoint(&n, sealer, witnesses, quorum);
            }
            for w in witnesses {
                let _ = n.verify_by(w);
            }
            ok = true;
        }
        for line in s.lines() {
            if let Ok(sig) = NoteSignature::parse_line(line) {
                assert_eq!(NoteSignature::parse_line(&sig.line()).as_ref(), Ok(&sig));
                let _ = sig.cosignature_time();
                ok = true;
            }
            if let Ok(v) = NoteVerifier::parse(line) {
                assert_eq!(NoteVerifier::parse(&v.vkey()).as_ref(), Ok(&v));
                ok = true;
            }
            if NoteSigner::parse(line).is_ok() {
                ok = true;
            }
        }
        ok
    }
}

/// The witness endpoint's `add-checkpoint` body
/// (`anchord_core::witness::parse_add_checkpoint`).
pub mod witness {
    use anchord_core::checkpoint::Checkpoint;
    use anchord_core::witness::parse_add_checkpoint;

    pub fn target(data: &[u8]) -> bool {
        let Some(s) = super::text(data) else {
            return false;
        };
        let Ok(req) = parse_add_checkpoint(s) else {
            return false;
        };
        // What the handler does next with it.
        let _ = Checkpoint::parse(&req.note.text);
        let (sealer, _) = super::keys();
        let _ = req.note.verify_by(sealer);
        true
    }
}

/// A timestamp verifier over the pinned test TSA certificates, so bundle
/// verification reaches the RFC 3161 parser too.
struct PinnedTsa(Vec<u8>);

impl anchord_core::bundle::TimestampVerifier for PinnedTsa {
    fn verify(&self, token: &[u8], digest: &[u8; 32]) -> Result<i64, String> {
        anchord_tsa::verify_token(token, digest, &self.0)
            .map(|i| i.gen_time_unix)
            .map_err(|e| e.to_string())
    }
}

/// The test TSA certificates (DER) under `fuzz/assets/`.
fn tsa_certs() -> &'static [Vec<u8>] {
    static CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        ["tsa-rsa.der", "tsa-ec.der"]
            .iter()
            .filter_map(|f| std::fs::read(crate::fuzz_dir().join("assets").join(f)).ok())
            .collect()
    })
}

/// Proof bundles: parse, round trip, verify with the bundle's own keys and
/// with the corpus deployment's keys (`core::bundle`).
pub mod bundle {
    use anchord_core::bundle::{TrustedKeys, parse_bundle, verify_bundle};

    pub fn target(data: &[u8]) -> bool {
        let Some(s) = super::text(data) else {
            return false;
        };
        let Ok(b) = parse_bundle(s) else {
            return false;
        };
        let json = serde_json::to_string(&b).expect("a parsed bundle serialises");
        assert_eq!(
            parse_bundle(&json).as_ref(),
            Ok(&b),
            "parse(serialise(x)) != x"
        );
        if let Ok(keys) = TrustedKeys::from_bundle(&b) {
            let _ = verify_bundle(&b, &keys, None);
        }
        let (sealer, witnesses) = super::keys();
        let timestamps = super::tsa_certs().first().cloned().map(|c| {
            Box::new(super::PinnedTsa(c))
                as Box<dyn anchord_core::bundle::TimestampVerifier + Send + Sync>
        });
        let keys = TrustedKeys {
            sealers: vec![sealer.clone()],
            witnesses: witnesses.clone(),
            quorum: 2,
            timestamps,
            from_bundle: false,
        };
        let _ = verify_bundle(&b, &keys, Some(&b.entry.evidence_hash));
        let _ = verify_bundle(&b, &keys, Some(&[0u8; 32]));
        true
    }
}

/// The `.ots` export of a bundle (`core::ots`): operations and encoding of
/// whatever bundle a client uploads or the API serves.
pub mod ots {
    use anchord_core::bundle::parse_bundle;
    use anchord_core::ots::{Attestation, encode, operations};

    pub fn target(data: &[u8]) -> bool {
        let Some(s) = super::text(data) else {
            return false;
        };
        let Ok(b) = parse_bundle(s) else {
            return false;
        };
        let Ok(ops) = operations(&b) else {
            return false;
        };
        // Applying the operations is bounded (no op argument beyond the
        // OpenTimestamps limit was emitted).
        let mut msg = b.entry.evidence_hash.clone();
        msg = anchord_core::HashSuite::Sha256.digest(&msg).to_vec();
        for op in &ops {
            msg = op.apply(&msg);
            assert!(msg.len() <= 64 * 1024, "an .ots message grew past 64 KiB");
        }
        let file = encode(&b, &[Attestation::pending("https://anchord.test/p")])
            .expect("operations succeeded, so encoding does");
        assert!(file.starts_with(anchord_core::ots::MAGIC));
        true
    }
}

/// RFC 3161: a TSA's `TimeStampResp` (batcher) and the token inside it
/// (batcher's verification, core's DER shape check).
pub mod tsa {
    use anchord_core::bundle::{check_token_der, der_value_len};
    use anchord_tsa::{token_from_response, verify_token};

    pub fn target(data: &[u8]) -> bool {
        let digest = [0x5a; 32];
        let mut ok = false;
        let _ = der_value_len(data);
        let _ = check_token_der(data);
        for cert in super::tsa_certs() {
            ok |= verify_token(data, &digest, cert).is_ok();
        }
        // Certificates from the input (a pinned-but-hostile file).
        let _ = verify_token(data, &digest, data);
        if let Ok(token) = token_from_response(data) {
            ok = true;
            let _ = check_token_der(&token);
            for cert in super::tsa_certs() {
                let _ = verify_token(&token, &digest, cert);
            }
        }
        ok
    }
}

/// The anchor payload carried in EVM transaction input and the raw receipts
/// the relay reads from chains and gateways, checked against the summary as
/// the verifier and the relay's re-verification do (`core::anchor`,
/// `core::bundle::check_raw_receipt`).
pub mod anchor {
    use anchord_core::anchor::AnchorPayload;
    use anchord_core::bundle::{AnchorReceipt, check_raw_receipt};

    pub fn target(data: &[u8]) -> bool {
        let mut ok = false;
        if let Ok(p) = AnchorPayload::decode(data) {
            assert_eq!(p.encode(), data, "encode(decode(x)) != x");
            let hex = p.to_hex_data();
            assert!(p.matches_hex_data(&hex.to_uppercase().replacen("0X", "0x", 1)));
            assert_eq!(AnchorPayload::decode_hex_data(&hex).as_ref(), Ok(&p));
            ok = true;
        }
        if let Ok(r) = serde_json::from_slice::<AnchorReceipt>(data) {
            let _ = check_raw_receipt(&r, "anchord.test/ledger");
            ok = true;
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            // A bare raw receipt (the `receipt` object alone) under a
            // summary that matches nothing.
            if v.is_object() && !ok {
                let r = AnchorReceipt {
                    target: "t".into(),
                    chain_kind: "evm".into(),
                    chain_id: "1".into(),
                    tx_id: "0x".into(),
                    block_number: 0,
                    block_hash: String::new(),
                    block_time_us: 0,
                    checkpoint_size: 0,
                    checkpoint_root: [0; 32],
                    consistency_proof: Vec::new(),
                    receipt: v,
                };
                let _ = check_raw_receipt(&r, "anchord.test/ledger");
            }
        }
        ok
    }
}
