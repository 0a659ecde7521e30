//! One target per parser. Each returns whether the parser accepted the
//! input; a bug is a panic (including a failed round-trip assertion).
//!
//! The targets that need only `anchord-core` and `anchord-tsa` live in
//! [`crate::pure`] (shared with the AFL++ harness `fuzz/afl`) and are
//! re-exported here; the ones below need a pipeline crate.

pub use crate::pure::{bundle, checkpoint, entry, ots, tsa, witness};

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

/// What the relay reads from chains and gateways: judicial simulator
/// blocks (here), and the anchor payload and raw receipts
/// ([`crate::pure::anchor`], which the AFL++ harness fuzzes on its own).
pub mod relay {
    use anchord_relay::sim::SimBlock;

    pub fn target(data: &[u8]) -> bool {
        let mut ok = false;
        if let Ok(b) = serde_json::from_slice::<SimBlock>(data) {
            let _ = b.compute_hash();
            let again: SimBlock =
                serde_json::from_str(&serde_json::to_string(&b).expect("serialises"))
                    .expect("round trip");
            assert_eq!(again, b);
            ok = true;
        }
        ok |= crate::pure::anchor::target(data);
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
