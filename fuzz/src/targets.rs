//! One target per parser. Each returns whether the parser accepted the
//! input; a bug is a panic (including a failed round-trip assertion).

use std::sync::OnceLock;

use anchord_core::bundle::corpus;
use anchord_core::checkpoint::NoteVerifier;

/// Inputs that are text go through `str`; invalid UTF-8 is rejected the way
/// the services reject it (they read bodies as UTF-8 first).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
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

/// The Kafka evidence message decoder (`ingest::message::decode_record`).
pub mod ingest_message {
    use std::sync::OnceLock;

    use anchord_core::EvidenceAlg;
    use anchord_ingest::message::{MessageV1, Rules, decode_record};

    fn rules() -> &'static Rules {
        static RULES: OnceLock<Rules> = OnceLock::new();
        RULES.get_or_init(|| Rules {
            tenants: ["icbc-sh", "bank-a", "t"].map(String::from).into(),
            accepted_algs: EvidenceAlg::ALL.to_vec(),
            max_message_bytes: 64 * 1024,
        })
    }

    pub fn target(data: &[u8]) -> bool {
        let rules = rules();
        let Ok(d) = decode_record(Some(data), rules) else {
            return false;
        };
        // What the decoder accepts satisfies the entry rules...
        anchord_core::entry::validate_tenant(&d.tenant).expect("accepted tenant is valid");
        anchord_core::entry::validate_external_id(&d.external_id)
            .expect("accepted external_id is valid");
        anchord_core::entry::validate_hash(d.hash_alg, &d.hash).expect("accepted hash is valid");
        assert!(rules.tenants.contains(&d.tenant));
        // ...and re-encoding it as a producer would decodes to the same.
        let metadata = d.metadata.as_deref().map(|m| {
            serde_json::from_str::<serde_json::Value>(m).expect("canonical metadata is JSON")
        });
        let again = MessageV1 {
            v: 1,
            tenant: d.tenant.clone(),
            external_id: d.external_id.clone(),
            hash_alg: d.hash_alg.name().to_owned(),
            hash: hex::encode(&d.hash),
            metadata,
            produced_at: d.produced_at_ms,
        };
        let round = decode_record(Some(&again.to_bytes()), rules);
        assert_eq!(round.as_ref(), Ok(&d), "decode(encode(x)) != x");
        true
    }
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
    use anchord_core::witness::parse_add_checkpoint;
    use anchord_core::checkpoint::Checkpoint;

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

/// What the relay reads from chains and gateways: judicial simulator
/// blocks, raw receipts (checked against the summary as the verifier and
/// `relay`'s re-verification do) and the tagged anchor payload carried in
/// EVM transaction input.
pub mod relay {
    use anchord_core::anchor::AnchorPayload;
    use anchord_core::bundle::{AnchorReceipt, check_raw_receipt};
    use anchord_relay::sim::SimBlock;

    pub fn target(data: &[u8]) -> bool {
        let mut ok = false;
        if let Ok(p) = AnchorPayload::decode(data) {
            assert_eq!(p.encode(), data, "encode(decode(x)) != x");
            let hex = p.to_hex_data();
            assert!(p.matches_hex_data(&hex.to_uppercase().replacen("0X", "0x", 1)));
            assert_eq!(AnchorPayload::decode_hex_data(&hex).as_ref(), Ok(&p));
            ok = true;
        }
        if let Ok(b) = serde_json::from_slice::<SimBlock>(data) {
            let _ = b.compute_hash();
            let again: SimBlock =
                serde_json::from_str(&serde_json::to_string(&b).expect("serialises"))
                    .expect("round trip");
            assert_eq!(again, b);
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

/// The relay's real clients (`JudicialTarget`, `EvmTarget`) reading hostile
/// gateway and JSON-RPC responses: a loopback HTTP server answers each
/// request with the next part of the input (parts separated by
/// [`relay_http::SEPARATOR`]; a part starting `status:NNN\n` sets the HTTP
/// status; the last part repeats), while the client identifies the chain,
/// prepares, sends, looks up and re-verifies a receipt.
pub mod relay_http {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, OnceLock};

    use anchord_ledger::AnchorReceipt;
    use anchord_relay::evm::EvmTarget;
    use anchord_relay::judicial::JudicialTarget;
    use anchord_relay::target::{AnchorPayload, Prepared, Target};
    use anchord_relay::{TargetConfig, TargetKind};
    use axum::http::StatusCode;

    /// Separates the responses in an input.
    pub const SEPARATOR: &[u8] = b"\n----\n";

    type Queue = Arc<Mutex<(VecDeque<(u16, Vec<u8>)>, (u16, Vec<u8>))>>;

    struct Harness {
        rt: tokio::runtime::Runtime,
        queue: Queue,
        judicial: JudicialTarget,
        evm: EvmTarget,
    }

    fn harness() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let queue: Queue = Arc::new(Mutex::new((VecDeque::new(), (200, Vec::new()))));
            let q = queue.clone();
            let app = axum::Router::new().fallback(move || {
                let q = q.clone();
                async move {
                    let mut g = q.lock().unwrap_or_else(|e| e.into_inner());
                    let (status, body) = match g.0.pop_front() {
                        Some(r) => r,
                        None => g.1.clone(),
                    };
                    (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        [("content-type", "application/json")],
                        body,
                    )
                }
            });
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind loopback");
            let addr = listener.local_addr().expect("addr");
            rt.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            let assets = crate::fuzz_dir().join("assets");
            let config = |kind| TargetConfig {
                name: "fuzz".into(),
                kind,
                request_timeout_ms: 2_000,
                confirm_poll_ms: 1,
                url: Some(format!("http://{addr}")),
                account_id: Some("anchord-bank-a".into()),
                signing_key: Some(assets.join(match kind {
                    TargetKind::Judicial => "judicial-test-key.pem",
                    TargetKind::Evm => "evm-test-key.hex",
                })),
                rpc_url: Some(format!("http://{addr}/")),
                chain_id: Some(31337),
                confirmations: Some(2),
                to: None,
            };
            Harness {
                judicial: JudicialTarget::new(&config(TargetKind::Judicial)).expect("judicial"),
                evm: EvmTarget::new(&config(TargetKind::Evm)).expect("evm"),
                rt,
                queue,
            }
        })
    }

    fn responses(data: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = data;
        loop {
            let (part, next) = match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
                Some(i) => (&rest[..i], Some(&rest[i + SEPARATOR.len()..])),
                None => (rest, None),
            };
            let parsed = part
                .strip_prefix(b"status:")
                .and_then(|p| {
                    let nl = p.iter().position(|&b| b == b'\n')?;
                    let code = std::str::from_utf8(&p[..nl]).ok()?.parse::<u16>().ok()?;
                    Some((code, p[nl + 1..].to_vec()))
                })
                .unwrap_or((200, part.to_vec()));
            out.push(parsed);
            match next {
                Some(n) if out.len() < 64 => rest = n,
                _ => break,
            }
        }
        out
    }

    fn load(q: &Queue, rs: &[(u16, Vec<u8>)]) {
        let mut g = q.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = rs.iter().cloned().collect();
        g.1 = rs.last().cloned().unwrap_or((200, Vec::new()));
    }

    pub fn target(data: &[u8]) -> bool {
        let h = harness();
        let rs = responses(data);
        let payload = AnchorPayload {
            checkpoint: anchord_core::checkpoint::Checkpoint::new(
                "anchord.test/ledger",
                3,
                anchord_core::checkpoint::decode_hash(
                    "CkUr3QwTsfwBgSkovzjM6KdyY27ugW6PKv9vrtiY8ss=",
                )
                .expect("a base64 root"),
            ),
            idempotency_key: "faada94f64049e07693f9708679b9911".into(),
        };
        let receipt = AnchorReceipt {
            id: 1,
            target: "fuzz".into(),
            checkpoint_size: 3,
            job_id: 1,
            chain_kind: "judicial".into(),
            chain_id: "sim-court".into(),
            tx_id: "0xaa".into(),
            block_number: 43,
            block_hash: "d129be657a38fcdcc34e1a93cd586349718665f1a244081cf5df8f834c402b5c".into(),
            block_time_us: 1_764_000_100_003_000,
            receipt_json: "{}".into(),
            confirmed_at_us: 1_764_000_100_003_000,
            genesis_hash: Some("00".repeat(32)),
            lost_at_us: None,
            lost_reason: None,
            verified_at_us: None,
            verified_depth: None,
        };
        h.rt.block_on(async {
            let mut ok = false;
            load(&h.queue, &rs);
            ok |= h.judicial.identity().await.is_ok();
            load(&h.queue, &rs);
            let prepared = h.judicial.prepare(&payload).await;
            if let Ok(p) = &prepared {
                load(&h.queue, &rs);
                ok |= h.judicial.send(&payload, p).await.is_ok();
            }
            load(&h.queue, &rs);
            ok |= h.judicial.lookup(&payload, None).await.is_ok();
            load(&h.queue, &rs);
            ok |= h.judicial.verify_receipt(&receipt).await.is_ok();

            load(&h.queue, &rs);
            ok |= h.evm.identity().await.is_ok();
            load(&h.queue, &rs);
            let prepared = h.evm.prepare(&payload).await;
            let recorded = Prepared {
                tx_id: Some(format!("0x{}", "ab".repeat(32))),
                data: serde_json::json!({}),
            };
            for p in prepared.iter().chain(std::iter::once(&recorded)) {
                load(&h.queue, &rs);
                ok |= h.evm.send(&payload, p).await.is_ok();
                load(&h.queue, &rs);
                ok |= h.evm.lookup(&payload, Some(p)).await.is_ok();
                load(&h.queue, &rs);
                let _ = h.evm.refresh(&payload, p).await;
            }
            let mut evm_receipt = receipt.clone();
            evm_receipt.chain_kind = "evm".into();
            evm_receipt.chain_id = "31337".into();
            load(&h.queue, &rs);
            ok |= h.evm.verify_receipt(&evm_receipt).await.is_ok();
            ok
        })
    }
}
