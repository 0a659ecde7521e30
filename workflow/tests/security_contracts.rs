//! Issue 12, part B, over HTTP against the real services: the contract
//! template expansion bomb (flaw 2), one signature filling another signer's
//! slot (flaw 5), unguarded status transitions (flaw 8), a malformed
//! `id_number` panicking the handler (flaw 9) and a GET that changed a
//! judicial request's state (flaw 13).
#![allow(clippy::unwrap_used)]

mod common;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
use serde_json::{Value, json};

use common::contract_statement as statement;

fn pk_hex(sk: &SigningKey) -> String {
    hex::encode(sk.verifying_key().to_bytes())
}

fn sign_hex(sk: &SigningKey, text: &str) -> String {
    hex::encode(sk.sign(text.as_bytes()).to_bytes())
}

/// A fresh challenge and the registration statement for `key`, as the
/// caller behind `token`.
async fn challenge(e: &common::Env, token: &str, key_hex: &str) -> (String, String) {
    let me = e.ok(200, "GET", "/v1/me", Some(token), None).await;
    let c = e
        .ok(
            201,
            "POST",
            "/v1/me/signing-key/challenge",
            Some(token),
            None,
        )
        .await;
    let ch = c["challenge"].as_str().unwrap().to_owned();
    let text = format!(
        "anchord-signing-key-registration/v1\nuser-id {}\nusername {}\npublic-key {key_hex}\nchallenge {ch}\n",
        me["id"],
        me["username"].as_str().unwrap()
    );
    assert_eq!(
        c["statement_template"]
            .as_str()
            .unwrap()
            .replace("<public-key>", key_hex),
        text
    );
    (ch, text)
}

/// Register `sk` as the caller's client-held key, with its proof.
async fn register(e: &common::Env, token: &str, sk: &SigningKey) -> (u16, Value) {
    let (ch, text) = challenge(e, token, &pk_hex(sk)).await;
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(token),
            Some(
                json!({"custody": "client", "public_key": pk_hex(sk), "challenge": ch,
                        "proof": sign_hex(sk, &text)}),
            ),
        )
        .await;
    (s.as_u16(), v)
}

fn rand_key() -> SigningKey {
    SigningKey::from_bytes(&common::rand_bytes())
}

// --- flaw 2 ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_template_expansion_is_single_pass_strict_and_bounded() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    e.user(&admin, "signer1", "user", a.clone()).await;
    let tid = e.contract_type(&admin, "借款人 {{a}} 金额 {{b}}。").await;

    // The attack: values naming further placeholders, and variables the
    // template never names, that the old code substituted repeatedly.
    let nest = |inner: &str| inner.repeat(100);
    let (s, v) = e
        .call(
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(json!({"contract_type_id": tid, "title": "bomb", "signers": ["signer1"],
                        "variables": {"a": nest("{{c}}"), "b": "1", "c": nest("{{d}}"), "d": "x".repeat(2000)}})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    let fields = &v["error"]["fields"];
    assert!(fields["variables.c"].is_string(), "names c: {v}");
    assert!(fields["variables.d"].is_string(), "names d: {v}");
    assert!(fields.get("variables.a").is_none(), "{v}");

    // A placeholder without a value is named too.
    let (s, v) = e
        .call(
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "t", "signers": ["signer1"],
                        "variables": {"a": "张三"}}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["variables.b"].is_string(), "{v}");

    // Values are literal text: a value holding `{{b}}` stays `{{b}}`.
    let value = "{{b}}{{a}}{{ b }}".repeat(10);
    let k = e
        .contract(
            &alice,
            tid,
            json!({"a": value, "b": "100"}),
            json!(["signer1"]),
        )
        .await;
    let body = k["body"].as_str().unwrap();
    assert_eq!(body, format!("借款人 {value} 金额 100。"));
    assert!(body.len() <= "借款人 {{a}} 金额 {{b}}。".len() + value.len() + 3);

    // The rendered body is bounded: a template repeating one placeholder
    // 200 times with a 2000-character value would be 400,000 bytes.
    let big = e.contract_type(&admin, &"{{x}}\n".repeat(200)).await;
    let (s, v) = e
        .call(
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": big, "title": "t", "signers": ["signer1"],
                        "variables": {"x": "y".repeat(2000)}}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    let msg = v["error"]["fields"]["variables"].as_str().unwrap();
    assert!(msg.contains("262144"), "names the limit: {msg}");
    // Just under the limit is fine.
    let k = e
        .contract(
            &alice,
            big,
            json!({"x": "y".repeat(1300)}),
            json!(["signer1"]),
        )
        .await;
    assert_eq!(k["body"].as_str().unwrap().len(), 200 * 1301);

    // Lists carry no bodies (nor templates): the details do.
    let l = e.ok(200, "GET", "/v1/contracts", Some(&alice), None).await;
    let items = l.as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert!(item.get("body").is_none(), "{item}");
        assert!(item["body_bytes"].as_i64().unwrap() > 0);
        assert!(item["signers"][0].get("signature").is_none(), "{item}");
    }
    let types = e
        .ok(200, "GET", "/v1/contract-types", Some(&alice), None)
        .await;
    for t in types.as_array().unwrap() {
        assert!(t.get("template_text").is_none(), "{t}");
        assert!(t["variables"].is_array());
    }
    let t = e
        .ok(
            200,
            "GET",
            &format!("/v1/contract-types/{tid}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(t["template_text"], "借款人 {{a}} 金额 {{b}}。");
    assert_eq!(t["variables"], json!(["a", "b"]));
    let (s, _) = e
        .call("GET", "/v1/contract-types/999999", Some(&alice), None)
        .await;
    assert_eq!(s.as_u16(), 404);

    // Templates are bounded too.
    let (s, v) = e
        .call(
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "many", "template_text": (0..101).map(|i| format!("{{{{v{i}}}}}")).collect::<String>()})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["template_text"].is_string(), "{v}");
}

// --- flaw 5 ---------------------------------------------------------------

#[test]
fn contract_signature_statement_known_answer() {
    // The worked example of docs/workflow-api.md (computed independently
    // with Python's `cryptography`).
    let body = "借款人 张三 向出借人 某银行 借款人民币 50000 元。";
    let hash = hex::encode(anchord_core::EvidenceAlg::Sha256.hash(body.as_bytes()));
    assert_eq!(
        hash,
        "e3b33ea112afa2283f2df5a9924e0adb0bf0bdf4c5179c42e6ac32192e2f56ae"
    );
    let seed: [u8; 32] = core::array::from_fn(|i| i as u8 + 1);
    let sk = SigningKey::from_bytes(&seed);
    assert_eq!(
        pk_hex(&sk),
        "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
    );
    let text = anchord_workflow::contracts::signature_statement(
        &anchord_workflow::contracts::StatementFields {
            contract_id: 17,
            contract_number: "HT0000000017",
            tenant: "bank-a",
            hash_alg: "sha256",
            contract_hash: &hash,
            signer_index: 1,
            signer_user_id: 42,
            signer_username: "signer2",
            public_key: &pk_hex(&sk),
        },
    )
    .unwrap();
    assert_eq!(
        text,
        "anchord-contract-signature/v1\n\
         contract-id 17\n\
         contract-number HT0000000017\n\
         tenant bank-a\n\
         hash-alg sha256\n\
         contract-hash e3b33ea112afa2283f2df5a9924e0adb0bf0bdf4c5179c42e6ac32192e2f56ae\n\
         signer-index 1\n\
         signer-user-id 42\n\
         signer-username signer2\n\
         public-key 79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664\n"
    );
    let sig = sign_hex(&sk, &text);
    assert_eq!(
        sig,
        "1d3b1a77c96d412193ddf09e248ec8ce001699a68f4b4aaacefc4c9e31b43086\
         268702f42a3dad20b21e44b29d54aeeb54a99c9a481a88ebb47a75fd0cc51d04"
    );
    let vk = sk.verifying_key();
    assert!(anchord_workflow::contracts::verify_hex(&vk, &text, &sig));
    // The same signature is not valid for another slot, contract or hash.
    for other in [
        text.replace("signer-index 1", "signer-index 0"),
        text.replace("signer-user-id 42", "signer-user-id 43"),
        text.replace("contract-id 17", "contract-id 18"),
        text.replace("hash-alg sha256", "hash-alg sm3"),
    ] {
        assert!(!anchord_workflow::contracts::verify_hex(&vk, &other, &sig));
    }
    // The registration statement (proof of possession), same key.
    let reg = anchord_workflow::contracts::registration_statement(
        42,
        "signer2",
        &pk_hex(&sk),
        &format!("{}{}", "00".repeat(16), "ff".repeat(16)),
    )
    .unwrap();
    assert_eq!(
        sign_hex(&sk, &reg),
        "8076d9f4420c72a5f42652f66374f327fe1f03b56c624041892b7c17343720aa\
         a7f4b479935cfdb2006eca3f1678871ebde61e287120c73d41c428cb7780a909"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_another_signers_signature_into_your_slot_fails() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let s1 = e.user(&admin, "signer1", "user", a.clone()).await;
    let s2 = e.user(&admin, "signer2", "user", a.clone()).await;
    let tid = e.contract_type(&admin, "I, {{name}}, agree.").await;
    let k = e
        .contract(
            &alice,
            tid,
            json!({"name": "x"}),
            json!(["signer1", "signer2"]),
        )
        .await;
    let kp = format!("/v1/contracts/{}", k["id"]);
    let (k1, k2) = (rand_key(), rand_key());
    assert_eq!(register(&e, &s1, &k1).await.0, 200);
    assert_eq!(register(&e, &s2, &k2).await.0, 200);
    let v = e
        .ok(
            200,
            "POST",
            &format!("{kp}/sign"),
            Some(&s1),
            Some(json!({"signature": sign_hex(&k1, &statement(&k, 0, &pk_hex(&k1)))})),
        )
        .await;
    let copied = v["signers"][0]["signature"].as_str().unwrap().to_owned();
    assert_eq!(
        v["signers"][0]["statement"].as_str().unwrap(),
        statement(&k, 0, &pk_hex(&k1))
    );
    // signer2 copies signer1's signature into their slot: refused.
    let (s, v) = e
        .call(
            "POST",
            &format!("{kp}/sign"),
            Some(&s2),
            Some(json!({"signature": copied})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["signature"].is_string());
    // A signature over the bare contract hash (the old scheme) is refused.
    let hash = hex::decode(k["contract_hash"].as_str().unwrap()).unwrap();
    let (s, _) = e
        .call(
            "POST",
            &format!("{kp}/sign"),
            Some(&s2),
            Some(json!({"signature": hex::encode(k2.sign(&hash).to_bytes())})),
        )
        .await;
    assert_eq!(s.as_u16(), 422);
    // signer2's own statement for signer1's slot (index 0) is refused too.
    let mut wrong = statement(&k, 1, &pk_hex(&k2));
    wrong = wrong.replace("signer-index 1", "signer-index 0");
    let (s, _) = e
        .call(
            "POST",
            &format!("{kp}/sign"),
            Some(&s2),
            Some(json!({"signature": sign_hex(&k2, &wrong)})),
        )
        .await;
    assert_eq!(s.as_u16(), 422);
    // Nothing was signed by any of that.
    let v = e.ok(200, "GET", &kp, Some(&alice), None).await;
    assert_eq!(v["signers"][1]["status"], "pending");
    assert_eq!(v["status"], "signing");
    // The right statement signs; both signatures verify offline over their
    // own statements.
    let v = e
        .ok(
            200,
            "POST",
            &format!("{kp}/sign"),
            Some(&s2),
            Some(json!({"signature": sign_hex(&k2, &statement(&k, 1, &pk_hex(&k2)))})),
        )
        .await;
    assert_eq!(v["status"], "awaiting_review");
    for (i, key) in [&k1, &k2].into_iter().enumerate() {
        let sig: [u8; 64] = hex::decode(v["signers"][i]["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        key.verifying_key()
            .verify_strict(
                statement(&v, i, &pk_hex(key)).as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_someone_elses_public_key_fails() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let s1 = e.user(&admin, "signer1", "user", a.clone()).await;
    let mallory = e.user(&admin, "mallory", "user", a.clone()).await;
    let k1 = rand_key();
    let (s, v) = register(&e, &s1, &k1).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["public_key"], pk_hex(&k1));
    // Mallory knows signer1's public key (and even signer1's registration
    // proof) but not the private key: no statement of hers verifies.
    let (ch, _) = challenge(&e, &mallory, &pk_hex(&k1)).await;
    let c1 = e
        .ok(201, "POST", "/v1/me/signing-key/challenge", Some(&s1), None)
        .await;
    let s1_text = format!(
        "anchord-signing-key-registration/v1\nuser-id {}\nusername signer1\npublic-key {}\nchallenge {}\n",
        e.ok(200, "GET", "/v1/me", Some(&s1), None).await["id"],
        pk_hex(&k1),
        c1["challenge"].as_str().unwrap()
    );
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(&mallory),
            Some(
                json!({"custody": "client", "public_key": pk_hex(&k1), "challenge": ch,
                        "proof": sign_hex(&k1, &s1_text)}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["proof"].is_string(), "{v}");
    // Even holding the private key, a second account cannot register a key
    // that belongs to another user (unique across users).
    let (s, v) = register(&e, &mallory, &k1).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    // ... nor one that has signed for another user and was replaced since.
    let tid = e.contract_type(&admin, "I, {{name}}, agree.").await;
    let k = e
        .contract(&alice, tid, json!({"name": "x"}), json!(["signer1"]))
        .await;
    e.ok(
        200,
        "POST",
        &format!("/v1/contracts/{}/sign", k["id"]),
        Some(&s1),
        Some(json!({"signature": sign_hex(&k1, &statement(&k, 0, &pk_hex(&k1)))})),
    )
    .await;
    assert_eq!(register(&e, &s1, &rand_key()).await.0, 200);
    let (s, v) = register(&e, &mallory, &k1).await;
    assert_eq!(s, 409, "{v}");
    // The audit log names each key registered (and each contract created).
    let rows = e
        .ok(
            200,
            "GET",
            "/v1/audit?action=PUT%20/v1/me/signing-key&result=ok",
            Some(&admin),
            None,
        )
        .await;
    let objects: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["object"].as_str().unwrap())
        .collect();
    assert!(
        objects
            .iter()
            .any(|o| o.ends_with(&format!("/signing-key/client/{}", pk_hex(&k1)))),
        "{objects:?}"
    );
    let rows = e
        .ok(
            200,
            "GET",
            "/v1/audit?action=POST%20/v1/contracts&result=ok",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["object"] == format!("/v1/contracts/{}", k["id"])),
        "{rows}"
    );
    // The database holds the constraint itself.
    let c = e.ledger.workflow_pool().get().await.unwrap();
    let dup = c
        .execute(
            "INSERT INTO workflow.signing_keys (user_id, custody, public_key, pop_statement, pop_signature)
             SELECT u.id, 'client', k.public_key, 'x', k.pop_signature
               FROM workflow.users u, workflow.signing_keys k
              WHERE u.username = 'alice' AND k.user_id = (SELECT id FROM workflow.users WHERE username = 'signer1')",
            &[],
        )
        .await;
    assert!(dup.is_err(), "a second row with the same public key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_proof_of_possession_is_refused() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let s1 = e
        .user(&admin, "signer1", "user", json!({"tenant": "bank-a"}))
        .await;
    let k1 = rand_key();
    // The old request: just a public key.
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(&s1),
            Some(json!({"custody": "client", "public_key": pk_hex(&k1)})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["challenge"].is_string(), "{v}");
    assert!(v["error"]["fields"]["proof"].is_string(), "{v}");
    // A proof by another key, or over another challenge, does not verify.
    let (ch, text) = challenge(&e, &s1, &pk_hex(&k1)).await;
    for proof in [
        sign_hex(&rand_key(), &text),
        sign_hex(&k1, &text.replace(&ch, &"ab".repeat(32))),
        "00".repeat(64),
    ] {
        let (s, v) = e
            .call(
                "PUT",
                "/v1/me/signing-key",
                Some(&s1),
                Some(
                    json!({"custody": "client", "public_key": pk_hex(&k1), "challenge": ch,
                            "proof": proof}),
                ),
            )
            .await;
        assert_eq!(s.as_u16(), 422, "{v}");
        assert!(v["error"]["fields"]["proof"].is_string(), "{v}");
    }
    // A challenge the server did not issue is refused, even with a proof.
    let forged = "cd".repeat(32);
    let forged_text = text.replace(&ch, &forged);
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(&s1),
            Some(
                json!({"custody": "client", "public_key": pk_hex(&k1), "challenge": forged,
                        "proof": sign_hex(&k1, &forged_text)}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["challenge"].is_string(), "{v}");
    // The right proof registers, once: the challenge is used up.
    let body = json!({"custody": "client", "public_key": pk_hex(&k1), "challenge": ch,
                      "proof": sign_hex(&k1, &text)});
    e.ok(
        200,
        "PUT",
        "/v1/me/signing-key",
        Some(&s1),
        Some(body.clone()),
    )
    .await;
    let (s, v) = e
        .call("PUT", "/v1/me/signing-key", Some(&s1), Some(body))
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["challenge"].is_string(), "{v}");
    // An expired challenge is refused.
    let k2 = rand_key();
    let (ch, text) = challenge(&e, &s1, &pk_hex(&k2)).await;
    let c = e.ledger.workflow_pool().get().await.unwrap();
    c.execute(
        "UPDATE workflow.signing_key_challenges SET expires_at = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(&s1),
            Some(
                json!({"custody": "client", "public_key": pk_hex(&k2), "challenge": ch,
                        "proof": sign_hex(&k2, &text)}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    // A small-order public key is refused.
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(&s1),
            Some(
                json!({"custody": "client", "public_key": format!("01{}", "00".repeat(31)),
                        "challenge": "00".repeat(32), "proof": "00".repeat(64)}),
            ),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["public_key"].is_string(), "{v}");
    // The stored proof checks offline.
    let row = c
        .query_one(
            "SELECT pop_statement, pop_signature, public_key FROM workflow.signing_keys
              WHERE user_id = (SELECT id FROM workflow.users WHERE username = 'signer1')",
            &[],
        )
        .await
        .unwrap();
    let (text, sig, pk): (String, Vec<u8>, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
    ed25519_dalek::VerifyingKey::from_bytes(&pk.try_into().unwrap())
        .unwrap()
        .verify(
            text.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig.try_into().unwrap()),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_held_keys_sign_the_same_statement() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let carol = e.user(&admin, "carol", "user", a.clone()).await;
    let v = e
        .ok(
            200,
            "PUT",
            "/v1/me/signing-key",
            Some(&carol),
            Some(json!({"custody": "platform"})),
        )
        .await;
    let pk = v["public_key"].as_str().unwrap().to_owned();
    let tid = e.contract_type(&admin, "I, {{name}}, agree.").await;
    let k = e
        .contract(&alice, tid, json!({"name": "carol"}), json!(["carol"]))
        .await;
    // A platform-held key takes no client signature.
    let (s, _) = e
        .call(
            "POST",
            &format!("/v1/contracts/{}/sign", k["id"]),
            Some(&carol),
            Some(json!({"signature": "00".repeat(64)})),
        )
        .await;
    assert_eq!(s.as_u16(), 422);
    let v = e
        .ok(
            200,
            "POST",
            &format!("/v1/contracts/{}/sign", k["id"]),
            Some(&carol),
            Some(json!({})),
        )
        .await;
    let sj = &v["signers"][0];
    assert_eq!(sj["custody"], "platform");
    let text = statement(&v, 0, &pk);
    assert_eq!(sj["statement"].as_str().unwrap(), text);
    let vk = anchord_workflow::contracts::parse_public_key(&pk).unwrap();
    assert!(anchord_workflow::contracts::verify_hex(
        &vk,
        &text,
        sj["signature"].as_str().unwrap()
    ));
}

// --- flaw 8 ---------------------------------------------------------------

/// A 409 `invalid_state` naming the current status.
fn conflict(s: reqwest::StatusCode, v: &Value, status: &str) {
    assert_eq!(s.as_u16(), 409, "{v}");
    assert_eq!(v["error"]["code"], "invalid_state", "{v}");
    assert_eq!(v["error"]["fields"]["status"], status, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(status),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preservation_transitions_are_guarded_in_sql() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a.clone()).await;
    let product = e.product(&admin).await;
    let fields = json!({"borrower": "张三", "amount": "100"});
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": fields})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", p["id"]);
    // Review before submission: 409, saved.
    let (s, v) = e
        .call("POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    conflict(s, &v, "saved");
    let (s, v) = e
        .call(
            "POST",
            &format!("{pp}/reject"),
            Some(&rita),
            Some(json!({"reason": "no"})),
        )
        .await;
    conflict(s, &v, "saved");
    let (s, _) = e
        .upload("PUT", &format!("{pp}/file"), &alice, "f", b"x".to_vec())
        .await;
    assert_eq!(s, 200);
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    // Submitted: not editable, not resubmittable.
    let (s, v) = e
        .call("POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    conflict(s, &v, "submitted");
    let (s, v) = e
        .call(
            "PATCH",
            &pp,
            Some(&alice),
            Some(json!({"fields": {"borrower": "李四", "amount": "1"}})),
        )
        .await;
    conflict(s, &v, "submitted");
    let (s, v) = e
        .upload("PUT", &format!("{pp}/file"), &alice, "g", b"y".to_vec())
        .await;
    conflict(s, &v, "submitted");
    // Concurrent approvals: exactly one wins, the others see `approved`.
    let approve = format!("{pp}/approve");
    let mut calls = Vec::new();
    for _ in 0..6 {
        calls.push(e.call("POST", &approve, Some(&rita), None));
    }
    let results = futures::future::join_all(calls).await;
    let wins = results.iter().filter(|(s, _)| s.as_u16() == 200).count();
    assert_eq!(wins, 1, "{results:?}");
    for (s, v) in results.iter().filter(|(s, _)| s.as_u16() != 200) {
        conflict(*s, v, "approved");
    }
    // Approved: not rejectable, editable, submittable.
    let (s, v) = e
        .call(
            "POST",
            &format!("{pp}/reject"),
            Some(&rita),
            Some(json!({"reason": "late"})),
        )
        .await;
    conflict(s, &v, "approved");
    let (s, v) = e
        .call(
            "PATCH",
            &pp,
            Some(&alice),
            Some(json!({"fields": {"borrower": "李四", "amount": "1"}})),
        )
        .await;
    conflict(s, &v, "approved");
    let (s, v) = e
        .call("POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    conflict(s, &v, "approved");
    // One submission went to the ledger outbox.
    let c = e.ledger.workflow_pool().get().await.unwrap();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM workflow.submissions WHERE kind = 'preservation' AND object_id = $1",
            &[&p["id"].as_i64().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_transitions_are_guarded_in_sql() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let s1 = e.user(&admin, "signer1", "user", a.clone()).await;
    let s2 = e.user(&admin, "signer2", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a.clone()).await;
    let tid = e.contract_type(&admin, "I, {{name}}, agree.").await;
    let (k1, k2) = (rand_key(), rand_key());
    assert_eq!(register(&e, &s1, &k1).await.0, 200);
    assert_eq!(register(&e, &s2, &k2).await.0, 200);
    let k = e
        .contract(
            &alice,
            tid,
            json!({"name": "x"}),
            json!(["signer1", "signer2"]),
        )
        .await;
    let kp = format!("/v1/contracts/{}", k["id"]);
    let sig1 = json!({"signature": sign_hex(&k1, &statement(&k, 0, &pk_hex(&k1)))});
    let sig2 = json!({"signature": sign_hex(&k2, &statement(&k, 1, &pk_hex(&k2)))});
    // Signing: no review yet.
    let (s, v) = e
        .call("POST", &format!("{kp}/approve"), Some(&rita), None)
        .await;
    conflict(s, &v, "signing");
    let (s, v) = e
        .call(
            "POST",
            &format!("{kp}/reject"),
            Some(&rita),
            Some(json!({"reason": "no"})),
        )
        .await;
    conflict(s, &v, "signing");
    e.ok(
        200,
        "POST",
        &format!("{kp}/sign"),
        Some(&s1),
        Some(sig1.clone()),
    )
    .await;
    // Signed once: a second signature or a refusal by the same signer is
    // refused, and the contract stays signing.
    let (s, _) = e
        .call("POST", &format!("{kp}/sign"), Some(&s1), Some(sig1.clone()))
        .await;
    assert_eq!(s.as_u16(), 409);
    let (s, _) = e
        .call(
            "POST",
            &format!("{kp}/refuse"),
            Some(&s1),
            Some(json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!(s.as_u16(), 409);
    let v = e.ok(200, "GET", &kp, Some(&alice), None).await;
    assert_eq!(v["status"], "signing");
    assert_eq!(v["signers"][0]["status"], "signed");
    // The last signature sent four times at once: one is stored, the
    // contract moves once, the others answer 409.
    let sign = format!("{kp}/sign");
    let results = futures::future::join_all(
        (0..4).map(|_| e.call("POST", &sign, Some(&s2), Some(sig2.clone()))),
    )
    .await;
    assert_eq!(
        results.iter().filter(|(s, _)| s.as_u16() == 200).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|(s, _)| s.as_u16() == 200 || s.as_u16() == 409),
        "{results:?}"
    );
    let v = e.ok(200, "GET", &kp, Some(&alice), None).await;
    assert_eq!(v["status"], "awaiting_review");
    assert_eq!(v["signers"][1]["status"], "signed");
    // Awaiting review: no more refusals.
    let (s, v) = e
        .call(
            "POST",
            &format!("{kp}/refuse"),
            Some(&s2),
            Some(json!({"reason": "late"})),
        )
        .await;
    conflict(s, &v, "awaiting_review");
    e.ok(200, "POST", &format!("{kp}/approve"), Some(&rita), None)
        .await;
    // The committed record carries each signature with its statement.
    let v = e.ok(200, "GET", &kp, Some(&alice), None).await;
    let sigs = &v["ledger"]["commitment"]["record"]["signatures"];
    for (i, key) in [&k1, &k2].into_iter().enumerate() {
        assert_eq!(sigs[i]["statement"], statement(&k, i, &pk_hex(key)), "{v}");
        assert_eq!(sigs[i]["signature"], v["signers"][i]["signature"], "{v}");
    }
    for (path, body) in [
        (format!("{kp}/approve"), None),
        (format!("{kp}/reject"), Some(json!({"reason": "late"}))),
    ] {
        let (s, v) = e.call("POST", &path, Some(&rita), body).await;
        conflict(s, &v, "approved");
    }
    // A refused contract takes no signature.
    let k = e
        .contract(
            &alice,
            tid,
            json!({"name": "y"}),
            json!(["signer1", "signer2"]),
        )
        .await;
    let kp = format!("/v1/contracts/{}", k["id"]);
    e.ok(
        200,
        "POST",
        &format!("{kp}/refuse"),
        Some(&s2),
        Some(json!({"reason": "wrong amount"})),
    )
    .await;
    let (s, v) = e
        .call(
            "POST",
            &format!("{kp}/sign"),
            Some(&s1),
            Some(json!({"signature": sign_hex(&k1, &statement(&k, 0, &pk_hex(&k1)))})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    let (s, v) = e
        .call(
            "POST",
            &format!("{kp}/refuse"),
            Some(&s1),
            Some(json!({"reason": "me too"})),
        )
        .await;
    conflict(s, &v, "refused");
    let v = e.ok(200, "GET", &kp, Some(&alice), None).await;
    assert_eq!(v["signers"][0]["status"], "pending");
}

/// An on-chain preservation of bank-a (alice's), for judicial requests.
async fn on_chain_preservation(e: &common::Env, admin: &str, alice: &str, rita: &str) -> i64 {
    let product = e.product(admin).await;
    e.on_chain_preservation(
        alice,
        rita,
        product,
        json!({"borrower": "张三", "amount": "100"}),
        "call.wav",
        b"evidence".to_vec(),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judicial_transitions_are_guarded_and_reading_changes_nothing() {
    let e = common::start(true, |_| {}).await;
    let admin = e.admin().await;
    e.ok(
        201,
        "POST",
        "/v1/institutions",
        Some(&admin),
        Some(json!({"id": "notary-1", "name": "notary", "kind": "notary", "fee_cents": 100})),
    )
    .await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a.clone()).await;
    let nora = e
        .user(
            &admin,
            "nora",
            "institution",
            json!({"institution_id": "notary-1"}),
        )
        .await;
    let pid = on_chain_preservation(&e, &admin, &alice, &rita).await;
    let new_request = || {
        json!({"kind": "notarization", "subject_kind": "preservation", "subject_id": pid,
               "institution_id": "notary-1"})
    };
    let r = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(new_request()),
        )
        .await;
    let rp = format!("/v1/judicial-requests/{}", r["id"]);
    // The institution reading it (one request, and its queue) changes
    // nothing.
    for _ in 0..2 {
        let v = e.ok(200, "GET", &rp, Some(&nora), None).await;
        assert_eq!(v["status"], "pending");
    }
    e.ok(200, "GET", "/v1/judicial-requests", Some(&nora), None)
        .await;
    assert_eq!(
        e.ok(200, "GET", &rp, Some(&alice), None).await["status"],
        "pending"
    );
    // Starting the review is an explicit POST, once.
    let v = e
        .ok(200, "POST", &format!("{rp}/review"), Some(&nora), None)
        .await;
    assert_eq!(v["status"], "in_review");
    let (s, v) = e
        .call("POST", &format!("{rp}/review"), Some(&nora), None)
        .await;
    conflict(s, &v, "in_review");
    let (s, _) = e
        .call("POST", &format!("{rp}/review"), Some(&alice), None)
        .await;
    assert_eq!(s.as_u16(), 403);
    // Compare (a match), certify; then the decided request is final.
    let (s, v) = e
        .upload(
            "POST",
            &format!("{rp}/compare"),
            &nora,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], "match");
    let pdf = b"%PDF-1.7\n% certificate\n%%EOF\n".to_vec();
    let (s, v) = e
        .upload(
            "POST",
            &format!("{rp}/certificate"),
            &nora,
            "c.pdf",
            pdf.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "certified");
    // The attack: a comparison of another file on the certified request.
    let (s, v) = e
        .upload(
            "POST",
            &format!("{rp}/compare"),
            &nora,
            "other.wav",
            b"tampered".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    assert_eq!(v["error"]["fields"]["status"], "certified", "{v}");
    let v = e.ok(200, "GET", &rp, Some(&alice), None).await;
    assert_eq!(v["status"], "certified");
    assert_eq!(v["comparison"]["result"], "match", "kept: {v}");
    let (s, v) = e
        .call(
            "POST",
            &format!("{rp}/refuse"),
            Some(&nora),
            Some(json!({"reason": "late"})),
        )
        .await;
    conflict(s, &v, "certified");
    let (s, v) = e
        .upload(
            "POST",
            &format!("{rp}/certificate"),
            &nora,
            "c.pdf",
            pdf.clone(),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    let (s, v) = e
        .call("POST", &format!("{rp}/review"), Some(&nora), None)
        .await;
    conflict(s, &v, "certified");

    // A refused request is final too (refused straight from pending).
    let r2 = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(new_request()),
        )
        .await;
    let rp2 = format!("/v1/judicial-requests/{}", r2["id"]);
    e.ok(
        200,
        "POST",
        &format!("{rp2}/refuse"),
        Some(&nora),
        Some(json!({"reason": "incomplete"})),
    )
    .await;
    let (s, v) = e
        .upload(
            "POST",
            &format!("{rp2}/compare"),
            &nora,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    assert_eq!(v["error"]["fields"]["status"], "refused", "{v}");
    let (s, v) = e
        .upload("POST", &format!("{rp2}/certificate"), &nora, "c.pdf", pdf)
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    let (s, v) = e
        .call(
            "POST",
            &format!("{rp2}/refuse"),
            Some(&nora),
            Some(json!({"reason": "again"})),
        )
        .await;
    conflict(s, &v, "refused");
    let v = e.ok(200, "GET", &rp2, Some(&alice), None).await;
    assert!(v["comparison"].is_null(), "{v}");
}

// --- flaw 9 ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_id_number_is_a_field_error_not_a_dropped_connection() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/products",
            Some(&admin),
            Some(json!({"name": "kyc", "fields": [
                {"key": "id_no", "display_name": "身份证号", "type": "id_number", "max_length": 18, "required": true},
                {"key": "phone", "display_name": "电话", "type": "phone", "max_length": 40, "required": false}
            ]})),
        )
        .await;
    // Descriptions are bounded too.
    let (s, v) = e
        .call(
            "PATCH",
            &format!("/v1/products/{}", p["id"]),
            Some(&admin),
            Some(json!({"description": "描".repeat(4001)})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["description"].is_string(), "{v}");
    // 18 bytes with a multi-byte character across byte 17: the old
    // validator sliced `v[..17]` and panicked.
    for bad in [
        "1101051949123100é",
        "é1101051949123100",
        "11010519491231002é",
        "１１０１０５１９４９１２３１００２Ｘ",
        "11010519491231\u{0}02X",
    ] {
        let (s, v) = e
            .call(
                "POST",
                "/v1/preservations",
                Some(&alice),
                Some(json!({"product_id": p["id"], "fields": {"id_no": bad}})),
            )
            .await;
        assert_eq!(s.as_u16(), 422, "{bad}: {v}");
        assert!(v["error"]["fields"]["id_no"].is_string(), "{v}");
    }
    let (s, v) = e
        .call(
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": p["id"], "fields": {"id_no": "11010519491231002X", "phone": "+８６ 138"}})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["phone"].is_string(), "{v}");
    e.ok(
        201,
        "POST",
        "/v1/preservations",
        Some(&alice),
        Some(json!({"product_id": p["id"], "fields": {"id_no": "11010519491231002x", "phone": "+86 138-0000-0000"}})),
    )
    .await;
}

// --- issue 15: contracts across organisations, outside signers ------------

/// The text of a PDF (poppler's pdftotext, a test peer).
/// Sign contract `k` in slot `index` as `token` with `sk` (registered).
async fn sign_slot(
    e: &common::Env,
    token: &str,
    k: &Value,
    index: usize,
    sk: &SigningKey,
) -> (u16, Value) {
    let text = statement(k, index, &pk_hex(sk));
    let (s, v) = e
        .call(
            "POST",
            &format!("/v1/contracts/{}/sign", k["id"]),
            Some(token),
            Some(json!({"signature": sign_hex(sk, &text)})),
        )
        .await;
    (s.as_u16(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_span_organisations_and_invited_outside_signers() {
    let e = common::start(true, |c| c.webhook_allow = vec!["127.0.0.1/32".into()]).await;
    let admin = e.admin().await;
    // A platform-wide webhook: it must never receive an invitation token.
    e.ok(
        201,
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(json!({"url": "http://127.0.0.1:9/hook"})),
    )
    .await;
    let a = json!({"tenant": "bank-a"});
    let b = json!({"tenant": "bank-b"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a.clone()).await;
    let bob = e.user(&admin, "bob", "user", b.clone()).await;
    let ben = e.user(&admin, "ben", "reviewer", b.clone()).await;
    let tid = e.contract_type(&admin, "甲方 {{a}} 乙方 {{b}}").await;
    let vars = json!({"a": "bank-a", "b": "bob"});
    let new = |signers: Value| json!({"contract_type_id": tid, "title": "跨机构合同", "variables": vars.clone(), "signers": signers});

    // Hostile signer lists: each a field error naming the slot.
    for (signers, field) in [
        (json!(["bob"]), "signers[0]"),
        (json!([{"username": "bob"}]), "signers[0]"),
        (
            json!([{"username": "bob", "organisation": "bank-c"}]),
            "signers[0]",
        ),
        (json!([{"email": "not-an-address"}]), "signers[0]"),
        (
            json!([{"email": "x@example.com", "phone": "+8613800000000"}]),
            "signers[0]",
        ),
        (json!([{"phone": "12"}]), "signers[0]"),
        (
            json!([{"email": "x@example.com"}, {"email": "x@example.com"}]),
            "signers[1]",
        ),
        (
            json!([{"username": "bob", "organisation": "bank-b"}, {"username": "bob", "organisation": "bank-b"}]),
            "signers[1]",
        ),
    ] {
        let (s, v) = e
            .call(
                "POST",
                "/v1/contracts",
                Some(&alice),
                Some(new(signers.clone())),
            )
            .await;
        assert_eq!(s.as_u16(), 422, "{signers}: {v}");
        assert!(v["error"]["fields"][field].is_string(), "{signers}: {v}");
    }

    // bob of bank-b, and carol invited by e-mail.
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(new(json!([{"username": "bob", "organisation": "bank-b"}, {"email": "carol@example.com"}]))),
        )
        .await;
    let kp = format!("/v1/contracts/{}", k["id"]);
    assert_eq!(k["signers"][0]["organisation"], "bank-b", "{k}");
    assert!(k["signers"][1]["user_id"].is_null(), "{k}");
    assert_eq!(k["signers"][1]["invitation"]["email"], "carol@example.com");
    let links = k["invitation_links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{k}");
    let token = links[0]["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert!(links[0]["link"].as_str().unwrap().contains(&token));
    // The token is shown once: not in the contract as read later.
    let again = e.ok(200, "GET", &kp, Some(&alice), None).await;
    assert!(again["invitation_links"].as_array().unwrap().is_empty());
    assert!(!again.to_string().contains(&token));
    // Only its hash is stored.
    let db = e.db.client().await;
    let stored: Vec<u8> = db
        .query_one("SELECT token_hash FROM workflow.contract_invitations", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(stored, token.as_bytes());
    assert_eq!(
        stored,
        anchord_core::EvidenceAlg::Sha256.hash(token.as_bytes())
    );

    // The invitation event reached the webhook, without the token.
    let bodies: Vec<String> = db
        .query(
            "SELECT body FROM workflow.webhook_deliveries WHERE event = 'contract.invitation'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(bodies.len(), 1);
    assert!(bodies.iter().all(|b| !b.contains(&token)), "{bodies:?}");
    // bob (another bank) reads it and finds it among his to-dos; ben (bank-b,
    // not a signer) does not.
    e.ok(200, "GET", &kp, Some(&bob), None).await;
    let mine = e
        .ok(
            200,
            "GET",
            "/v1/contracts?awaiting_my_signature=true",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    let (s, _) = e.call("GET", &kp, Some(&ben), None).await;
    assert_eq!(s.as_u16(), 403);
    let theirs = e.ok(200, "GET", "/v1/contracts", Some(&ben), None).await;
    assert!(theirs.as_array().unwrap().is_empty(), "{theirs}");

    // The invitation: preview, then register once.
    let (s, _) = e
        .call(
            "POST",
            "/v1/invitations/preview",
            None,
            Some(json!({"token": "00".repeat(32)})),
        )
        .await;
    assert_eq!(s.as_u16(), 404);
    let (s, _) = e
        .call(
            "POST",
            "/v1/invitations/preview",
            None,
            Some(json!({"token": "zz"})),
        )
        .await;
    assert_eq!(s.as_u16(), 422);
    let p = e
        .ok(
            200,
            "POST",
            "/v1/invitations/preview",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(p["number"], k["number"]);
    let carol_pw = common::password_of("carol");
    // A taken username or a weak password registers nobody and leaves the
    // link usable.
    let (s, v) = e
        .call(
            "POST",
            "/v1/invitations/register",
            None,
            Some(json!({"token": token, "username": "alice", "password": common::password_of("alice2")})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    let (s, v) = e
        .call(
            "POST",
            "/v1/invitations/register",
            None,
            Some(json!({"token": token, "username": "carol", "password": "password"})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["password"].is_string(), "{v}");
    let v = e
        .ok(
            201,
            "POST",
            "/v1/invitations/register",
            None,
            Some(json!({"token": token, "username": "carol", "password": carol_pw})),
        )
        .await;
    assert_eq!(v["signers"][1]["username"], "carol", "{v}");
    // Used: the link works once.
    for path in ["/v1/invitations/register", "/v1/invitations/preview"] {
        let (s, v) = e
            .call(
                "POST",
                path,
                None,
                Some(if path.ends_with("register") {
                    json!({"token": token, "username": "mallory", "password": common::password_of("mallory")})
                } else {
                    json!({"token": token})
                }),
            )
            .await;
        assert_eq!(s.as_u16(), 409, "{path}: {v}");
    }
    let (s, _) = e
        .call(
            "POST",
            "/v1/invitations/accept",
            Some(&bob),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s.as_u16(), 409);
    let (s, _) = e
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "mallory", "password": common::password_of("mallory")})),
        )
        .await;
    assert_eq!(s.as_u16(), 401, "no account was made from a used link");

    // An expired invitation does not register either.
    let k2 = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(new(json!([{"phone": "+8613800000000"}]))),
        )
        .await;
    let token2 = k2["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    db.execute(
        "UPDATE workflow.contract_invitations SET expires_at = now() - interval '1 second' WHERE contract_id = $1",
        &[&k2["id"].as_i64().unwrap()],
    )
    .await
    .unwrap();
    let (s, v) = e
        .call(
            "POST",
            "/v1/invitations/register",
            None,
            Some(json!({"token": token2, "username": "dave", "password": common::password_of("dave")})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // An invitation accepted by someone with an account (ben, of bank-b):
    // the slot is his, he reads the contract; the link is spent.
    let k3 = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(new(json!([{"email": "ben@bank-b.example"}]))),
        )
        .await;
    let token3 = k3["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = e
        .call(
            "GET",
            &format!("/v1/contracts/{}", k3["id"]),
            Some(&ben),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 403);
    let v = e
        .ok(
            200,
            "POST",
            "/v1/invitations/accept",
            Some(&ben),
            Some(json!({"token": token3})),
        )
        .await;
    assert_eq!(v["signers"][0]["username"], "ben", "{v}");
    assert_eq!(v["signers"][0]["organisation"], "bank-b", "{v}");
    e.ok(
        200,
        "GET",
        &format!("/v1/contracts/{}", k3["id"]),
        Some(&ben),
        None,
    )
    .await;
    let (s, _) = e
        .call(
            "POST",
            "/v1/invitations/accept",
            Some(&bob),
            Some(json!({"token": token3})),
        )
        .await;
    assert_eq!(s.as_u16(), 409);

    // carol, an outside signer, sees only her contract.
    let carol = e.login("carol", &carol_pw).await;
    e.ok(200, "GET", &kp, Some(&carol), None).await;
    let (s, _) = e
        .call(
            "GET",
            &format!("/v1/contracts/{}", k2["id"]),
            Some(&carol),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 403);
    let hers = e.ok(200, "GET", "/v1/contracts", Some(&carol), None).await;
    assert_eq!(hers.as_array().unwrap().len(), 1, "{hers}");
    // She cannot act as a bank: no preservations, no contracts started.
    let (s, _) = e
        .call(
            "POST",
            "/v1/contracts",
            Some(&carol),
            Some(new(json!(["alice"]))),
        )
        .await;
    assert_eq!(s.as_u16(), 403);

    // Keys; bob signs; his signature copied into carol's slot fails, as
    // does carol signing the contract she is not a signer of.
    let (bob_key, carol_key) = (rand_key(), rand_key());
    assert_eq!(register(&e, &bob, &bob_key).await.0, 200);
    assert_eq!(register(&e, &carol, &carol_key).await.0, 200);
    let k = e.ok(200, "GET", &kp, Some(&alice), None).await;
    let (s, v) = sign_slot(&e, &bob, &k, 0, &bob_key).await;
    assert_eq!(s, 200, "{v}");
    let copied = v["signers"][0]["signature"].as_str().unwrap().to_owned();
    let (s, v) = e
        .call(
            "POST",
            &format!("{kp}/sign"),
            Some(&carol),
            Some(json!({"signature": copied})),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    // Her valid signature for her slot, sent to a contract she does not sign.
    let text = statement(&k, 1, &pk_hex(&carol_key));
    let (s, _) = e
        .call(
            "POST",
            &format!("/v1/contracts/{}/sign", k2["id"]),
            Some(&carol),
            Some(json!({"signature": sign_hex(&carol_key, &text)})),
        )
        .await;
    assert_eq!(s.as_u16(), 403);
    let (s, v) = sign_slot(&e, &carol, &k, 1, &carol_key).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "awaiting_review", "{v}");
    assert_eq!(v["signed_count"], 2);

    // The initiating bank reviews: not bank-b's reviewer.
    let (s, _) = e
        .call("POST", &format!("{kp}/approve"), Some(&ben), None)
        .await;
    assert_eq!(s.as_u16(), 403);
    e.ok(200, "POST", &format!("{kp}/approve"), Some(&rita), None)
        .await;

    // The contract certificate: every signer with time and key.
    let cert = e
        .ok(
            200,
            "GET",
            &format!("{kp}/certificate.json"),
            Some(&carol),
            None,
        )
        .await;
    let signers = cert["signers"].as_array().unwrap();
    assert_eq!(signers.len(), 2);
    for (s, key) in signers.iter().zip([&bob_key, &carol_key]) {
        assert_eq!(s["status"], "signed");
        assert!(s["signed_at"].is_string());
        assert_eq!(s["public_key"], pk_hex(key));
        let fp = format!(
            "SHA256:{}",
            hex::encode(anchord_core::EvidenceAlg::Sha256.hash(&key.verifying_key().to_bytes()))
        );
        assert_eq!(s["key_fingerprint"], fp);
        assert_eq!(s["signature_verified"], true, "{s}");
    }
    assert_eq!(signers[0]["organisation"], "bank-b");
    assert_eq!(signers[1]["invited"], "carol@example.com");
    assert!(
        cert["verification"][0]
            .as_str()
            .unwrap()
            .starts_with("anchord verify --trust")
    );
    // And in the PDF certificate, once sealed.
    e.wait_until("the contract on chain", &kp, &alice, 90, |v| {
        v["status"] == "on_chain"
    })
    .await;
    let (s, ctype, pdf) = e.get_bytes(&format!("{kp}/certificate"), &carol).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(ctype, "application/pdf");
    let text = common::pdf_text(&pdf);
    assert!(text.contains("电子数据保全证书"), "{text}");
    assert!(text.contains("签署方"), "{text}");
    for s in signers {
        let fp = s["key_fingerprint"].as_str().unwrap();
        // pdftotext may break a long line; the fingerprint's start is enough.
        assert!(text.contains(&fp[..40]), "{fp} in:\n{text}");
        assert!(text.contains(s["username"].as_str().unwrap()), "{text}");
    }
}

// --- issue 15: evidence handover in judicial requests ---------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judicial_evidence_handover_comparison_report_and_denials() {
    let e = common::start(true, |c| c.max_upload_bytes = 64 * 1024).await;
    let admin = e.admin().await;
    for (id, name) in [("notary-1", "第一公证处"), ("notary-2", "第二公证处")] {
        e.ok(
            201,
            "POST",
            "/v1/institutions",
            Some(&admin),
            Some(json!({"id": id, "name": name, "kind": "notary", "fee_cents": 100})),
        )
        .await;
    }
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a.clone()).await;
    let bob = e
        .user(&admin, "bob", "user", json!({"tenant": "bank-b"}))
        .await;
    let nora = e
        .user(
            &admin,
            "nora",
            "institution",
            json!({"institution_id": "notary-1"}),
        )
        .await;
    let nick = e
        .user(
            &admin,
            "nick",
            "institution",
            json!({"institution_id": "notary-2"}),
        )
        .await;
    let pid = on_chain_preservation(&e, &admin, &alice, &rita).await;
    let apply = |evidence: &str| {
        json!({"kind": "notarization", "subject_kind": "preservation", "subject_id": pid,
               "institution_id": "notary-1", "evidence": evidence})
    };
    let (s, v) = e
        .call(
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(apply("emailed")),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["evidence"].is_string(), "{v}");

    // Attached: the file comes with the application.
    let r = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(apply("attached")),
        )
        .await;
    assert_eq!(r["evidence"]["handover"], "attached");
    assert_eq!(r["evidence"]["available"], false);
    let rp = format!("/v1/judicial-requests/{}", r["id"]);
    // Nothing to compare yet.
    let (s, v) = e
        .call("POST", &format!("{rp}/compare-evidence"), Some(&nora), None)
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    // Over the upload limit: refused, nothing attached.
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{rp}/evidence"),
            &alice,
            "big.wav",
            vec![7u8; 64 * 1024 + 1],
        )
        .await;
    assert_eq!(s.as_u16(), 413, "{v}");
    // Another bank cannot attach, the institution cannot either.
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{rp}/evidence"),
            &bob,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 403);
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{rp}/evidence"),
            &nora,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 403);
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{rp}/evidence"),
            &alice,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    let sha = hex::encode(anchord_core::EvidenceAlg::Sha256.hash(b"evidence"));
    assert_eq!(v["evidence"]["file"]["sha256"], sha.as_str(), "{v}");
    assert_eq!(v["evidence"]["available"], true);

    // An institution not chosen, and another bank, see nothing of it.
    for (who, token) in [("nick", &nick), ("bob", &bob)] {
        for path in [
            rp.clone(),
            format!("{rp}/subject"),
            format!("{rp}/evidence"),
            format!("{rp}/proof"),
            format!("{rp}/comparison-report"),
        ] {
            let (s, v) = e.call("GET", &path, Some(token), None).await;
            assert_eq!(s.as_u16(), 403, "{who} GET {path}: {v}");
        }
        let (s, _) = e
            .call("POST", &format!("{rp}/compare-evidence"), Some(token), None)
            .await;
        assert_eq!(s.as_u16(), 403, "{who}");
        let list = e
            .ok(200, "GET", "/v1/judicial-requests", Some(token), None)
            .await;
        assert!(list.as_array().unwrap().is_empty(), "{who}: {list}");
    }

    // The chosen institution: the subject as the preservation detail shows
    // it, the file, the comparison, the report.
    let subj = e
        .ok(200, "GET", &format!("{rp}/subject"), Some(&nora), None)
        .await;
    assert_eq!(subj["kind"], "preservation");
    let p = &subj["preservation"];
    assert_eq!(p["fields"]["borrower"], "张三", "{subj}");
    assert_eq!(p["file"]["sha256"], sha.as_str());
    assert!(p["ledger"]["block_height"].is_u64(), "{subj}");
    let (s, _, bytes) = e.get_bytes(&format!("{rp}/evidence"), &nora).await;
    assert_eq!(s, 200);
    assert_eq!(bytes, b"evidence");
    let (s, _, _) = e.get_bytes(&format!("{rp}/proof"), &nora).await;
    assert_eq!(s, 200);
    let (s, _) = e
        .call("GET", &format!("{rp}/comparison-report"), Some(&nora), None)
        .await;
    assert_eq!(s.as_u16(), 404, "no comparison yet");
    let cmp = e
        .ok(
            200,
            "POST",
            &format!("{rp}/compare-evidence"),
            Some(&nora),
            None,
        )
        .await;
    assert_eq!(cmp["result"], "match", "{cmp}");
    assert_eq!(cmp["message"], "结果一致，数据未篡改");
    assert_eq!(cmp["source"], "attached_file");
    assert_eq!(cmp["supplied_hash"], sha.as_str());
    // The report, for the institution and the applicant alike.
    for token in [&nora, &alice] {
        let (s, ctype, pdf) = e.get_bytes(&format!("{rp}/comparison-report"), token).await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&pdf));
        assert_eq!(ctype, "application/pdf");
        let text = common::pdf_text(&pdf);
        assert!(text.contains("电子数据比对报告"), "{text}");
        assert!(text.contains("结果一致，数据未篡改"), "{text}");
        assert!(text.contains(&sha), "{text}");
        assert!(text.contains(r["number"].as_str().unwrap()), "{text}");
    }

    // A tampered attachment: the mismatch, with both hashes.
    let r2 = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(apply("attached")),
        )
        .await;
    let rp2 = format!("/v1/judicial-requests/{}", r2["id"]);
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{rp2}/evidence"),
            &alice,
            "call.wav",
            b"tampered".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 200);
    let cmp = e
        .ok(
            200,
            "POST",
            &format!("{rp2}/compare-evidence"),
            Some(&nora),
            None,
        )
        .await;
    assert_eq!(cmp["result"], "mismatch", "{cmp}");
    let tampered = hex::encode(anchord_core::EvidenceAlg::Sha256.hash(b"tampered"));
    assert_eq!(cmp["supplied_hash"], tampered.as_str());
    assert_eq!(cmp["ledger_hash"], sha.as_str());
    let (s, _, pdf) = e
        .get_bytes(&format!("{rp2}/comparison-report"), &alice)
        .await;
    assert_eq!(s, 200);
    let text = common::pdf_text(&pdf);
    assert!(text.contains("结果不一致"), "{text}");
    assert!(text.contains(&sha) && text.contains(&tampered), "{text}");

    // Authorised: the institution reads the preserved file itself.
    let r3 = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(apply("authorised")),
        )
        .await;
    let rp3 = format!("/v1/judicial-requests/{}", r3["id"]);
    assert_eq!(r3["evidence"]["available"], true);
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{rp3}/evidence"),
            &alice,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "an authorised request takes no attachment");
    let (s, _, bytes) = e.get_bytes(&format!("{rp3}/evidence"), &nora).await;
    assert_eq!(s, 200);
    assert_eq!(bytes, b"evidence");
    let cmp = e
        .ok(
            200,
            "POST",
            &format!("{rp3}/compare-evidence"),
            Some(&nora),
            None,
        )
        .await;
    assert_eq!(cmp["result"], "match", "{cmp}");
    assert_eq!(cmp["source"], "preserved_file");

    // The institution issues the certificate; the applicant downloads it;
    // the attachment is final.
    let cert_pdf = b"%PDF-1.7\n% notarial certificate\n%%EOF\n".to_vec();
    let (s, v) = e
        .upload(
            "POST",
            &format!("{rp}/certificate"),
            &nora,
            "c.pdf",
            cert_pdf.clone(),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    let (s, _, got) = e.get_bytes(&format!("{rp}/certificate"), &alice).await;
    assert_eq!(s, 200);
    assert_eq!(got, cert_pdf);
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{rp}/evidence"),
            &alice,
            "call.wav",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    // The attached file is referenced: the collector keeps it.
    let db = e.db.client().await;
    let kept: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM workflow.judicial_requests WHERE evidence_sha256 = $1)",
            &[&tampered],
        )
        .await
        .unwrap()
        .get(0);
    assert!(kept);
}
