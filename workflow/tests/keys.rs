//! Platform-held signing keys: sealed at rest under
//! `workflow.key_encryption_key_file`, bound to their row, refused with a
//! clear answer when no key-encryption key is configured.
#![allow(clippy::unwrap_used)]

mod common;

use ed25519_dalek::Verifier as _;
use serde_json::{Value, json};

async fn contract_for(e: &common::Env, admin: &str, creator: &str, signer: &str) -> i64 {
    let t = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(admin),
            Some(json!({"name": format!("type for {signer}"), "template_text": "I, {{name}}, agree."})),
        )
        .await;
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(creator),
            Some(json!({"contract_type_id": t["id"], "title": "agreement",
                        "variables": {"name": signer}, "signers": [signer]})),
        )
        .await;
    k["id"].as_i64().unwrap()
}

fn verify(signer: &Value, hash_hex: &str) {
    let pk: [u8; 32] = hex::decode(signer["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig: [u8; 64] = hex::decode(signer["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    // The signature covers the signer's statement, which names the
    // contract hash (anchord-contract-signature/v1).
    let statement = signer["statement"].as_str().unwrap();
    assert!(statement.starts_with("anchord-contract-signature/v1\n"));
    assert!(statement.contains(&format!("\ncontract-hash {hash_hex}\n")));
    ed25519_dalek::VerifyingKey::from_bytes(&pk)
        .unwrap()
        .verify(
            statement.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_held_seeds_are_sealed_and_bound_to_their_row() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let bank = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", bank.clone()).await;
    let carol = e.user(&admin, "carol", "user", bank.clone()).await;
    let dave = e.user(&admin, "dave", "user", bank.clone()).await;

    let v = e
        .ok(
            200,
            "PUT",
            "/v1/me/signing-key",
            Some(&carol),
            Some(json!({"custody": "platform"})),
        )
        .await;
    assert_eq!(v["custody"], "platform");
    let carol_pk = v["public_key"].as_str().unwrap().to_owned();

    // In the database: only the sealed form, with its version byte; no
    // plaintext seed column at all.
    let pool = e.ledger.workflow_pool();
    let c = pool.get().await.unwrap();
    let cols: Vec<String> = c
        .query(
            "SELECT column_name::text FROM information_schema.columns
              WHERE table_schema = 'workflow' AND table_name = 'signing_keys'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!cols.contains(&"platform_seed".to_owned()), "{cols:?}");
    let row = c
        .query_one(
            "SELECT s.platform_seed_sealed, s.public_key, s.user_id FROM workflow.signing_keys s
               JOIN workflow.users u ON u.id = s.user_id WHERE u.username = 'carol'",
            &[],
        )
        .await
        .unwrap();
    let sealed: Vec<u8> = row.get(0);
    let carol_id: i64 = row.get(2);
    assert_eq!(sealed.len(), anchord_workflow::keyseal::SEALED_LEN);
    assert_eq!(sealed[0], anchord_workflow::keyseal::VERSION);
    assert_eq!(hex::encode(row.get::<_, Vec<u8>>(1)), carol_pk);
    // It opens with the configured key-encryption key, to the seed of the
    // registered public key, and only for its own row.
    let kek =
        anchord_workflow::keyseal::Kek::load(e.config.key_encryption_key_file.as_ref().unwrap())
            .unwrap();
    let pk: [u8; 32] = hex::decode(&carol_pk).unwrap().try_into().unwrap();
    let seed = kek.open(carol_id, &pk, &sealed).unwrap();
    assert_eq!(
        hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes()
        ),
        carol_pk
    );
    assert!(kek.open(carol_id + 1, &pk, &sealed).is_err());

    // The platform signs for carol with the unsealed key.
    let k = contract_for(&e, &admin, &alice, "carol").await;
    let v = e
        .ok(
            200,
            "POST",
            &format!("/v1/contracts/{k}/sign"),
            Some(&carol),
            Some(json!({})),
        )
        .await;
    assert_eq!(v["signers"][0]["custody"], "platform");
    assert_eq!(v["signers"][0]["public_key"], carol_pk);
    verify(&v["signers"][0], v["contract_hash"].as_str().unwrap());

    // A sealed seed copied to another row (dave's) does not open there:
    // signing fails without revealing why to the client, and nothing is
    // signed.
    e.ok(
        200,
        "PUT",
        "/v1/me/signing-key",
        Some(&dave),
        Some(json!({"custody": "platform"})),
    )
    .await;
    c.execute(
        "UPDATE workflow.signing_keys SET platform_seed_sealed = $1
          WHERE user_id = (SELECT id FROM workflow.users WHERE username = 'dave')",
        &[&sealed],
    )
    .await
    .unwrap();
    let k2 = contract_for(&e, &admin, &alice, "dave").await;
    let (s, v) = e
        .call(
            "POST",
            &format!("/v1/contracts/{k2}/sign"),
            Some(&dave),
            Some(json!({})),
        )
        .await;
    assert_eq!(s.as_u16(), 500, "{v}");
    assert_eq!(v["error"]["code"], "internal");
    let v = e
        .ok(
            200,
            "GET",
            &format!("/v1/contracts/{k2}"),
            Some(&dave),
            None,
        )
        .await;
    assert_eq!(v["signers"][0]["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_encryption_key_platform_custody_is_refused_clearly() {
    let e = common::start(false, |c| c.key_encryption_key_file = None).await;
    let admin = e.admin().await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let (s, v) = e
        .call(
            "PUT",
            "/v1/me/signing-key",
            Some(&alice),
            Some(json!({"custody": "platform"})),
        )
        .await;
    assert_eq!(s.as_u16(), 503, "{v}");
    assert_eq!(v["error"]["code"], "not_configured");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workflow.key_encryption_key_file"),
        "{v}"
    );
    // Client-held keys need no key-encryption key.
    let sk = ed25519_dalek::SigningKey::from_bytes(&common::rand_bytes());
    let pk = hex::encode(sk.verifying_key().to_bytes());
    let me = e.ok(200, "GET", "/v1/me", Some(&alice), None).await;
    let c = e
        .ok(
            201,
            "POST",
            "/v1/me/signing-key/challenge",
            Some(&alice),
            None,
        )
        .await;
    let text = format!(
        "anchord-signing-key-registration/v1\nuser-id {}\nusername alice\npublic-key {pk}\nchallenge {}\n",
        me["id"],
        c["challenge"].as_str().unwrap()
    );
    use ed25519_dalek::Signer as _;
    e.ok(
        200,
        "PUT",
        "/v1/me/signing-key",
        Some(&alice),
        Some(
            json!({"custody": "client", "public_key": pk, "challenge": c["challenge"],
                    "proof": hex::encode(sk.sign(text.as_bytes()).to_bytes())}),
        ),
    )
    .await;
}
