//! Issue 12, flaw 3, over HTTP against the real services: after approval,
//! what the public verifier serves for a preservation (its proof bundle,
//! with the ledger metadata) names none of the customer's data, the public
//! id is random, the old sequential ids find nothing, and the bank's own
//! details open the salted commitment.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use anchord_core::EvidenceAlg;
use anchord_verifier::VerifierConfig;
use anchord_verifier::prover::Prover;
use serde_json::{Value, json};

/// The public verifier API (`anchord verify`'s router) over this test's
/// ledger, on 127.0.0.1.
async fn public_verifier(env: &common::Env) -> String {
    let config = VerifierConfig::default();
    let sealer = anchord_core::checkpoint::NoteSigner::from_seed(
        "anchord.test/workflow",
        anchord_core::checkpoint::ALG_ED25519,
        &[9; 32],
    )
    .unwrap();
    let prover = Arc::new(Prover::new(
        env.ledger.clone(),
        env.suite,
        anchord_core::bundle::DeclaredKeys {
            sealer: sealer.verifier().vkey(),
            witnesses: vec![],
            quorum: 0,
        },
        &config,
    ));
    let app = anchord_verifier::api::router(prover, &config);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = env.stop.clone();
    tokio::spawn(async move {
        axum::serve(l, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

/// Create, upload, submit and approve a preservation; wait until on chain.
async fn on_chain(
    env: &common::Env,
    product: i64,
    user: &str,
    reviewer: &str,
    fields: Value,
    name: &str,
    file: &[u8],
) -> Value {
    let v = env
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(user),
            Some(json!({"product_id": product, "fields": fields})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", v["id"]);
    let (s, v) = env
        .upload("PUT", &format!("{pp}/file"), user, name, file.to_vec())
        .await;
    assert_eq!(s, 200, "{v}");
    env.ok(200, "POST", &format!("{pp}/submit"), Some(user), None)
        .await;
    env.ok(200, "POST", &format!("{pp}/approve"), Some(reviewer), None)
        .await;
    env.wait_until("the preservation on chain", &pp, user, 90, |v| {
        v["status"] == "on_chain" && v["ledger"]["state"] == "sealed"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_verifier_learns_nothing_of_a_preservations_customer() {
    let env = common::start(true, |_| {}).await;
    let verifier = public_verifier(&env).await;
    let admin = env.admin().await;
    let t = json!({"tenant": "bank-a"});
    let alice = env.user(&admin, "alice", "user", t.clone()).await;
    let rita = env.user(&admin, "rita", "reviewer", t).await;
    let bob = env
        .user(&admin, "bob", "user", json!({"tenant": "bank-b"}))
        .await;
    let product = env.product(&admin).await;
    let name = "张三-借款合同-13800138000.pdf";
    let file =
        b"%PDF-1.4 recorded call with borrower Zhang San about card 6222020200112233445".repeat(7);
    let fields =
        json!({"borrower": "张三", "amount": "52000.00", "card_no": "6222020200112233445"});
    let p1 = on_chain(&env, product, &alice, &rita, fields.clone(), name, &file).await;
    let other = b"second evidence file".to_vec();
    let p2 = on_chain(
        &env,
        product,
        &alice,
        &rita,
        json!({"borrower": "李四", "amount": "1"}),
        "b.pdf",
        &other,
    )
    .await;

    let id1 = p1["id"].as_i64().unwrap();
    let number = p1["number"].as_str().unwrap().to_owned();
    let ext1 = p1["ledger"]["external_id"].as_str().unwrap().to_owned();
    let ext2 = p2["ledger"]["external_id"].as_str().unwrap().to_owned();
    for e in [&ext1, &ext2] {
        assert!(
            e.len() == 35 && e.starts_with("wf-") && e[3..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{e}: not a random 128-bit id"
        );
    }
    // Not sequential: consecutive approvals share no common prefix beyond
    // chance, and the old ids find nothing.
    let common_prefix = ext1
        .bytes()
        .zip(ext2.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(common_prefix < 3 + 8, "{ext1} / {ext2} look sequential");
    let http = reqwest::Client::new();
    for old in [
        format!("wf-preservation-{id1}"),
        format!("wf-preservation-{}", p2["id"]),
    ] {
        let r = http
            .get(format!("{verifier}/v1/proofs/by-id/bank-a/{old}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{old}");
    }

    // What anyone can read.
    let r = http
        .get(format!("{verifier}/v1/proofs/by-id/bank-a/{ext1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let public = r.text().await.unwrap();
    let bundle: Value = serde_json::from_str(&public).unwrap();
    let sha = hex::encode(EvidenceAlg::Sha256.hash(&file));
    assert!(public.contains(&sha), "the bundle proves the file's hash");
    // The canonical fields and the unsalted digest the old metadata carried.
    let canon = serde_json_canonicalizer::to_string(&p1["fields"]).unwrap();
    let unsalted = hex::encode(EvidenceAlg::Sha256.hash(canon.as_bytes()));
    for secret in [
        name.to_string(),
        "13800138000".into(),
        "借款合同".into(),
        serde_json::to_string(name)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        number.clone(),
        "张三".into(),
        "\\u5f20".into(),
        "52000.00".into(),
        "6222020200112233445".into(),
        "file_name".into(),
        "file_size".into(),
        "fields".into(),
        "borrower".into(),
        unsalted.clone(),
        format!("wf-preservation-{id1}"),
    ] {
        assert!(
            !public.contains(&secret),
            "the public bundle contains {secret:?}: {public}"
        );
    }
    // The metadata is exactly the commitment.
    let meta_text = find_metadata(&bundle).expect("the bundle carries the entry's metadata");
    let meta: Value = serde_json::from_str(&meta_text).unwrap();
    assert_eq!(
        meta.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["commitment", "scheme", "source"],
        "{meta}"
    );

    // The bank's own details open it: salt and record recompute it.
    let detail = env
        .ok(
            200,
            "GET",
            &format!("/v1/preservations/{id1}"),
            Some(&alice),
            None,
        )
        .await;
    let opening = &detail["ledger"]["commitment"];
    assert_eq!(opening["scheme"], "anchord-commitment-v1");
    assert_eq!(opening["commitment"], meta["commitment"]);
    assert_eq!(opening["record"]["file_name"], name);
    assert_eq!(opening["record"]["number"], number);
    assert_eq!(opening["record"]["fields"], fields);
    let salt = hex::decode(opening["salt"].as_str().unwrap()).unwrap();
    assert_eq!(salt.len(), 32);
    let record = serde_json_canonicalizer::to_vec(&opening["record"]).unwrap();
    let recomputed = hex::encode(anchord_core::HashSuite::Sha256.digest_parts(&[
        b"anchord-workflow/commitment/v1",
        &[0],
        &salt,
        &record,
    ]));
    assert_eq!(meta["commitment"], recomputed);
    // A guess of the fields without the salt reproduces nothing public.
    assert!(!public.contains(&unsalted));
    // Another bank sees neither the details nor the opening.
    let (s, v) = env
        .call("GET", &format!("/v1/preservations/{id1}"), Some(&bob), None)
        .await;
    assert_eq!(s.as_u16(), 403, "{v}");
    assert!(!v.to_string().contains(opening["salt"].as_str().unwrap()));
}

/// The entry's `metadata` string wherever the bundle nests it.
fn find_metadata(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(s)) = m.get("metadata") {
                return Some(s.clone());
            }
            m.values().find_map(find_metadata)
        }
        Value::Array(a) => a.iter().find_map(find_metadata),
        _ => None,
    }
}
