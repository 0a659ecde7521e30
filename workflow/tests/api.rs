//! The workflow API through HTTP, against real PostgreSQL and the real
//! broker: every role's flow, the denials, the audit chain, lockout,
//! session expiry and webhooks.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anchord_core::EvidenceAlg;
use anchord_core::bundle::{Bundle, TrustedKeys, verify_bundle};
use common::{Env, start};
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};

use common::contract_statement as statement;

/// `key`'s hex signature over signer `index`'s statement on `k`.
fn sign_statement(key: &ed25519_dalek::SigningKey, k: &Value, index: usize) -> String {
    let pk = hex::encode(key.verifying_key().to_bytes());
    hex::encode(key.sign(statement(k, index, &pk).as_bytes()).to_bytes())
}

/// Register `key` as the caller's client-held key: a challenge, and the
/// registration statement signed with the key (proof of possession).
async fn register_client_key(env: &Env, token: &str, key: &ed25519_dalek::SigningKey) -> Value {
    let me = env.ok(200, "GET", "/v1/me", Some(token), None).await;
    let c = env
        .ok(
            201,
            "POST",
            "/v1/me/signing-key/challenge",
            Some(token),
            None,
        )
        .await;
    let pk = hex::encode(key.verifying_key().to_bytes());
    let text = format!(
        "anchord-signing-key-registration/v1\nuser-id {}\nusername {}\npublic-key {pk}\nchallenge {}\n",
        me["id"],
        me["username"].as_str().unwrap(),
        c["challenge"].as_str().unwrap()
    );
    env.ok(
        200,
        "PUT",
        "/v1/me/signing-key",
        Some(token),
        Some(
            json!({"custody": "client", "public_key": pk, "challenge": c["challenge"],
                    "proof": hex::encode(key.sign(text.as_bytes()).to_bytes())}),
        ),
    )
    .await
}

fn evidence_file() -> Vec<u8> {
    b"%PDF-1.4 call recording transcript, borrower Zhang San, 2026-01-05".to_vec()
}

fn verify_proof(bundle: &Value, file: &[u8]) {
    let b: Bundle = serde_json::from_value(bundle.clone()).unwrap();
    let keys = TrustedKeys::from_bundle(&b).unwrap();
    let hash = EvidenceAlg::Sha256.hash(file);
    verify_bundle(&b, &keys, Some(&hash)).unwrap();
    let mut other = file.to_vec();
    other[0] ^= 1;
    assert!(verify_bundle(&b, &keys, Some(&EvidenceAlg::Sha256.hash(&other))).is_err());
}

/// Administrator product set-up; a preservation from draft to a verified
/// proof (with a rejection and resubmission on the way); a notarization
/// request to certificate download; a ruling request refused; the
/// denials along the way; monitoring, system log and audit views.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_from_product_set_up_to_certificate_and_refused_ruling() {
    let env = start(true, |_| {}).await;
    let admin = env.admin().await;

    // --- administrator: institutions, users, product template ------------
    for (id, name, kind, fee) in [
        ("notary-xh", "徐汇公证处", "notary", 20000),
        ("court-hz", "杭州互联网法院", "court", 0),
        ("court-sh", "上海金融法院", "court", 0),
    ] {
        env.ok(
            201,
            "POST",
            "/v1/institutions",
            Some(&admin),
            Some(json!({"id": id, "name": name, "kind": kind, "fee_cents": fee})),
        )
        .await;
    }
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let rita = env
        .user(&admin, "rita", "reviewer", json!({"tenant": "bank-a"}))
        .await;
    let bob = env
        .user(&admin, "bob", "user", json!({"tenant": "bank-b"}))
        .await;
    let notary = env
        .user(
            &admin,
            "notary1",
            "institution",
            json!({"institution_id": "notary-xh"}),
        )
        .await;
    let judge = env
        .user(
            &admin,
            "judge1",
            "institution",
            json!({"institution_id": "court-hz"}),
        )
        .await;
    let other_judge = env
        .user(
            &admin,
            "judge2",
            "institution",
            json!({"institution_id": "court-sh"}),
        )
        .await;

    // Only administrators define products.
    let (s, v) = env
        .call(
            "POST",
            "/v1/products",
            Some(&alice),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");

    let product = env.product(&admin).await;
    let p = format!("/v1/products/{product}");
    // Add a field at position 1, edit one, reorder, delete one.
    let v = env
        .ok(
            201,
            "POST",
            &format!("{p}/fields"),
            Some(&admin),
            Some(
                json!({"key": "call_date", "display_name": "通话日期", "type": "date",
                        "max_length": 10, "required": true, "position": 1}),
            ),
        )
        .await;
    let keys: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["borrower", "call_date", "amount", "card_no"]);
    let v = env
        .ok(
            200,
            "PATCH",
            &format!("{p}/fields/amount"),
            Some(&admin),
            Some(json!({"display_name": "欠款金额", "max_length": 15})),
        )
        .await;
    assert_eq!(v["fields"][2]["display_name"], "欠款金额");
    assert_eq!(v["fields"][2]["max_length"], 15);
    let v = env
        .ok(
            200,
            "PUT",
            &format!("{p}/fields/order"),
            Some(&admin),
            Some(json!({"keys": ["amount", "borrower", "card_no", "call_date"]})),
        )
        .await;
    assert_eq!(v["fields"][0]["key"], "amount");
    let v = env
        .ok(
            200,
            "DELETE",
            &format!("{p}/fields/card_no"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v["fields"].as_array().unwrap().len(), 3);
    let (s, v) = env
        .call(
            "PUT",
            &format!("{p}/fields/order"),
            Some(&admin),
            Some(json!({"keys": ["amount"]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["keys"].is_string());
    let preview = env
        .ok(200, "GET", &format!("{p}/preview"), Some(&alice), None)
        .await;
    assert_eq!(preview["form"][0]["key"], "amount");
    assert_eq!(preview["form"][2]["input"], "date");
    assert_eq!(preview["form"][1]["label"], "借款人 *");
    // A second product, deleted; the list shows only the first.
    let spare = env.product(&admin).await;
    env.ok(
        204,
        "DELETE",
        &format!("/v1/products/{spare}"),
        Some(&admin),
        None,
    )
    .await;
    let list = env.ok(200, "GET", "/v1/products", Some(&alice), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], product);

    // --- preservation user: fields violating the template ----------------
    let (s, v) = env
        .call(
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {
                "borrower": "a name far longer than twenty characters",
                "amount": "lots", "call_date": "2026-13-01", "unknown": "x"}})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "validation_failed");
    for k in ["borrower", "amount", "call_date", "unknown"] {
        assert!(v["error"]["fields"][k].is_string(), "{k}: {v}");
    }
    let (s, v) = env
        .call(
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"amount": "12"}})),
        )
        .await;
    assert_eq!(s, 422);
    assert!(
        v["error"]["fields"]["borrower"]
            .as_str()
            .unwrap()
            .contains("required")
    );

    let v = env
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {
                "borrower": "张三", "amount": 52000.5, "call_date": "2026-01-05"}})),
        )
        .await;
    assert_eq!(v["status"], "saved");
    let id = v["id"].as_i64().unwrap();
    let number = v["number"].as_str().unwrap().to_owned();
    let pp = format!("/v1/preservations/{id}");

    // Oversized upload: 413 with a message, nothing stored.
    let (s, v) = env
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "big.bin",
            vec![7u8; 200 * 1024],
        )
        .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "too_large");
    assert!(v["error"]["message"].as_str().unwrap().contains("65536"));
    // Submitting without a file is refused.
    let (s, _) = env
        .call("POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    assert_eq!(s, 422);

    let file = evidence_file();
    let (s, v) = env
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "call.pdf",
            file.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let sha = hex::encode(EvidenceAlg::Sha256.hash(&file));
    assert_eq!(v["file"]["sha256"], sha);
    assert_eq!(v["file"]["size"], file.len());
    assert!(
        env.config
            .storage_dir
            .join("sha256")
            .join(&sha[..2])
            .join(&sha)
            .exists()
    );

    // Cross-tenant read and list.
    let (s, v) = env.call("GET", &pp, Some(&bob), None).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "forbidden");
    let bobs = env
        .ok(200, "GET", "/v1/preservations", Some(&bob), None)
        .await;
    assert!(bobs.as_array().unwrap().is_empty());
    let (s, _) = env.call("GET", &pp, Some(&notary), None).await;
    assert_eq!(s, 403);

    env.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    // Users do not approve; nobody approves their own submission.
    let (s, _) = env
        .call("POST", &format!("{pp}/approve"), Some(&alice), None)
        .await;
    assert_eq!(s, 403);
    let own = env
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&rita),
            Some(json!({"product_id": product, "fields": {
                "borrower": "李四", "amount": "1", "call_date": "2026-01-06"}})),
        )
        .await;
    let own = format!("/v1/preservations/{}", own["id"]);
    let (s, _) = env
        .upload(
            "PUT",
            &format!("{own}/file"),
            &rita,
            "own.txt",
            b"rita's own".to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    env.ok(200, "POST", &format!("{own}/submit"), Some(&rita), None)
        .await;
    let (s, v) = env
        .call("POST", &format!("{own}/approve"), Some(&rita), None)
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "self_approval");

    // Rejected with a reason, edited, resubmitted, approved.
    let v = env
        .ok(
            200,
            "POST",
            &format!("{pp}/reject"),
            Some(&rita),
            Some(json!({"reason": "金额与合同不符"})),
        )
        .await;
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["reject_reason"], "金额与合同不符");
    let v = env
        .ok(
            200,
            "PATCH",
            &pp,
            Some(&alice),
            Some(json!({"fields": {"borrower": "张三", "amount": "52000.00", "call_date": "2026-01-05"}})),
        )
        .await;
    assert_eq!(v["status"], "saved");
    env.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    let v = env
        .ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    assert_eq!(v["status"], "approved");

    // The evidence travels Kafka → ingest → ledger → block; the preservation
    // is linked and goes on chain.
    let v = env
        .wait_until("the preservation on chain", &pp, &alice, 90, |v| {
            v["status"] == "on_chain"
        })
        .await;
    let ledger = &v["ledger"];
    // A random public id (issue 12, flaw 3: not enumerable).
    let external_id = ledger["external_id"].as_str().unwrap().to_owned();
    assert!(
        external_id.len() == 35
            && external_id.starts_with("wf-")
            && external_id[3..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{external_id}"
    );
    assert_eq!(ledger["tenant"], "bank-a");
    assert_eq!(ledger["hash"], sha);
    assert_eq!(ledger["state"], "sealed");
    assert!(ledger["block_height"].as_i64().is_some());
    assert_eq!(ledger["anchor_status"], "pending");
    let entry = env
        .ledger
        .entry_by_identity("bank-a", &external_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.entry.seq as i64,
        ledger["ledger_seq"].as_i64().unwrap()
    );
    // The public metadata is the salted commitment; its opening is in the
    // owner's details.
    let meta: Value = serde_json::from_str(entry.entry.metadata.as_deref().unwrap()).unwrap();
    assert_eq!(meta["commitment"], ledger["commitment"]["commitment"]);
    assert_eq!(ledger["commitment"]["record"]["number"], number);
    let bundle = env
        .ok(200, "GET", &format!("{pp}/proof"), Some(&alice), None)
        .await;
    verify_proof(&bundle, &file);
    // Its preservation certificate, for the owner; not for another bank.
    let detail = env.ok(200, "GET", &pp, Some(&alice), None).await;
    assert_eq!(
        detail["ledger"]["certificate_path"],
        format!("{pp}/certificate"),
        "{detail}"
    );
    env.certificate_names(&format!("{pp}/certificate"), &alice, &sha)
        .await;

    // List filters.
    let own_id = own.rsplit('/').next().unwrap().parse::<i64>().unwrap();
    for (q, want) in [
        ("status=on_chain".to_string(), vec![id]),
        (format!("product_id={product}"), vec![own_id, id]),
        (
            format!("product_id={product}&status=submitted"),
            vec![own_id],
        ),
        (format!("number={number}"), vec![id]),
        (format!("hash={sha}"), vec![id]),
        (
            "field_key=borrower&field_value=%E5%BC%A0%E4%B8%89".to_string(),
            vec![id],
        ),
    ] {
        let l = env
            .ok(
                200,
                "GET",
                &format!("/v1/preservations?{q}"),
                Some(&rita),
                None,
            )
            .await;
        let ids: Vec<i64> = l
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, want, "{q}");
    }
    let l = env
        .ok(
            200,
            "GET",
            "/v1/preservations?status=rejected",
            Some(&alice),
            None,
        )
        .await;
    assert!(l.as_array().unwrap().is_empty());

    // --- notarization: request → comparison → certificate → download -----
    let (s, v) = env
        .call(
            "POST",
            "/v1/judicial-requests",
            Some(&bob),
            Some(
                json!({"kind": "notarization", "subject_kind": "preservation",
                        "subject_id": id, "institution_id": "notary-xh"}),
            ),
        )
        .await;
    assert_eq!(s, 403, "another bank cannot apply: {v}");
    let r = env
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(
                json!({"kind": "notarization", "subject_kind": "preservation",
                        "subject_id": id, "institution_id": "notary-xh"}),
            ),
        )
        .await;
    assert_eq!(r["fee_cents"], 20000);
    assert_eq!(r["status"], "pending");
    let rid = r["id"].as_i64().unwrap();
    let rp = format!("/v1/judicial-requests/{rid}");
    let queue = env
        .ok(
            200,
            "GET",
            "/v1/judicial-requests?status=pending",
            Some(&notary),
            None,
        )
        .await;
    assert_eq!(queue.as_array().unwrap().len(), 1);
    // Reading changes nothing; the institution starts its review with a POST.
    let read = env.ok(200, "GET", &rp, Some(&notary), None).await;
    assert_eq!(read["status"], "pending");
    let opened = env
        .ok(200, "POST", &format!("{rp}/review"), Some(&notary), None)
        .await;
    assert_eq!(opened["status"], "in_review");
    let (s, v) = env
        .upload(
            "POST",
            &format!("{rp}/compare"),
            &notary,
            "call.pdf",
            file.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], "match");
    assert_eq!(v["message"], "结果一致，数据未篡改");
    assert_eq!(v["proof_verified"], true);
    assert_eq!(v["supplied_hash"], sha);
    let mut tampered = file.clone();
    tampered.push(b'!');
    let (s, v) = env
        .upload(
            "POST",
            &format!("{rp}/compare"),
            &notary,
            "call.pdf",
            tampered,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"], "mismatch");
    assert_eq!(v["message"], "结果不一致，数据与保全记录不符");
    assert_eq!(v["proof_verified"], true);
    // Only the addressed institution compares or decides.
    let (s, _) = env
        .upload("POST", &format!("{rp}/compare"), &judge, "x", file.clone())
        .await;
    assert_eq!(s, 403);
    let (s, v) = env
        .upload(
            "POST",
            &format!("{rp}/certificate"),
            &notary,
            "c.txt",
            b"not a pdf".to_vec(),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let pdf = b"%PDF-1.7\n% notarial certificate (2026) Hu Xu Zheng Zi No. 17\n%%EOF\n".to_vec();
    let (s, v) = env
        .upload(
            "POST",
            &format!("{rp}/certificate"),
            &notary,
            "cert.pdf",
            pdf.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "certified");
    assert_eq!(
        v["certificate"]["sha256"],
        hex::encode(EvidenceAlg::Sha256.hash(&pdf))
    );
    // The certificate is itself anchored through the same path.
    env.wait_until("the certificate sealed", &rp, &alice, 90, |v| {
        v["certificate"]["ledger"]["state"] == "sealed"
    })
    .await;
    let cert_id =
        env.ok(200, "GET", &rp, Some(&alice), None).await["certificate"]["ledger"]["external_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let cert_entry = env
        .ledger
        .entry_by_identity("bank-a", &cert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cert_entry.entry.evidence_hash,
        EvidenceAlg::Sha256.hash(&pdf)
    );
    let resp = env
        .http
        .get(format!("{}{rp}/certificate", env.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), pdf);
    let (s, _) = env
        .call("GET", &format!("{rp}/certificate"), Some(&bob), None)
        .await;
    assert_eq!(s, 403);

    // --- ruling: wrong court cannot read it; the right one refuses ---------
    let (s, v) = env
        .call(
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(
                json!({"kind": "ruling", "subject_kind": "preservation", "subject_id": id,
                        "institution_id": "court-hz", "purpose": "lawsuit"}),
            ),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["purpose"].is_string());
    assert!(v["error"]["fields"]["case_description"].is_string());
    let r = env
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(
                json!({"kind": "ruling", "subject_kind": "preservation", "subject_id": id,
                        "institution_id": "court-hz", "purpose": "civil_litigation",
                        "case_description": "张三信用卡欠款纠纷"}),
            ),
        )
        .await;
    let rp = format!("/v1/judicial-requests/{}", r["id"]);
    let (s, v) = env.call("GET", &rp, Some(&other_judge), None).await;
    assert_eq!(s, 403, "a court reading a request not addressed to it: {v}");
    let q = env
        .ok(
            200,
            "GET",
            "/v1/judicial-requests",
            Some(&other_judge),
            None,
        )
        .await;
    assert!(q.as_array().unwrap().is_empty());
    let (s, _) = env
        .call(
            "POST",
            &format!("{rp}/refuse"),
            Some(&other_judge),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(s, 403);
    let q = env
        .ok(200, "GET", "/v1/judicial-requests", Some(&judge), None)
        .await;
    assert_eq!(q.as_array().unwrap().len(), 1);
    let v = env
        .ok(
            200,
            "POST",
            &format!("{rp}/refuse"),
            Some(&judge),
            Some(json!({"reason": "不属于本院管辖"})),
        )
        .await;
    assert_eq!(v["status"], "refused");
    let v = env.ok(200, "GET", &rp, Some(&alice), None).await;
    assert_eq!(v["refuse_reason"], "不属于本院管辖");
    let refused = env
        .ok(
            200,
            "GET",
            "/v1/judicial-requests?status=refused",
            Some(&judge),
            None,
        )
        .await;
    assert_eq!(refused.as_array().unwrap().len(), 1);

    // The bank's requests in pages of one, newest first, no 500-row cap:
    // walking `Anchord-Next-After` gives exactly the whole list.
    let all = env
        .ok(200, "GET", "/v1/judicial-requests", Some(&alice), None)
        .await;
    let all: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(all.len() >= 2, "{all:?}");
    let seen = env
        .walk_pages("/v1/judicial-requests?limit=1", &alice)
        .await;
    assert_eq!(seen, all);
    let (s, v) = env
        .call(
            "GET",
            "/v1/judicial-requests?limit=1001",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 422, "{v}");

    // --- administrator views ----------------------------------------------
    let m = env
        .ok(200, "GET", "/v1/monitoring/summary", Some(&admin), None)
        .await;
    assert!(m["block_height"].as_u64().is_some(), "{m}");
    assert_eq!(m["preservations"]["on_chain"], 1);
    assert_eq!(m["users"]["institution"], 3);
    assert_eq!(m["health"]["database"], true);
    let (s, _) = env
        .call("GET", "/v1/monitoring/summary", Some(&rita), None)
        .await;
    assert_eq!(s, 403);
    let ev = env
        .ok(200, "GET", "/v1/system/events", Some(&admin), None)
        .await;
    let kinds: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"block_sealed"), "{kinds:?}");
    assert!(kinds.contains(&"checkpoint_signed"), "{kinds:?}");
    // `kind` filters before `limit`: the newest two of that kind, even
    // when other kinds are newer.
    let only = env
        .ok(
            200,
            "GET",
            "/v1/system/events?kind=checkpoint_final&limit=2",
            Some(&admin),
            None,
        )
        .await;
    let only = only.as_array().unwrap();
    assert_eq!(only.len(), 2, "{only:?}");
    assert!(
        only.iter().all(|e| e["kind"] == "checkpoint_final"),
        "{only:?}"
    );
    // The audit log in pages (cursor `after`): the same rows as one answer.
    let created = env
        .ok(
            200,
            "GET",
            "/v1/audit?action=POST%20/v1/users",
            Some(&admin),
            None,
        )
        .await;
    let created: Vec<i64> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(created.len() >= 3, "{created:?}");
    let walked = env
        .walk_pages("/v1/audit?action=POST%20/v1/users&limit=2", &admin)
        .await;
    assert_eq!(walked, created);
    let audit = env
        .ok(200, "GET", "/v1/audit?user=rita", Some(&admin), None)
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"POST /v1/preservations/{id}/approve"),
        "{actions:?}"
    );
    let denied = env
        .ok(200, "GET", "/v1/audit?result=denied", Some(&admin), None)
        .await;
    assert!(
        denied
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["username"] == "bob")
    );
    let system = env
        .ok(200, "GET", "/v1/audit?user=system", Some(&admin), None)
        .await;
    assert!(
        system
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "preservation.on_chain")
    );
    let chain = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(chain["ok"], true, "{chain}");
}

/// A three-signer contract (two client-held keys, one platform-held) to a
/// verified proof; a refused contract; a bad signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_signer_contract_goes_on_chain_and_a_refusal_is_recorded() {
    let env = start(true, |_| {}).await;
    let admin = env.admin().await;
    let t = env
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "个人借款合同",
                        "template_text": "借款人 {{borrower}} 向出借人 {{lender}} 借款人民币 {{amount}} 元。担保人 {{guarantor}}。"})),
        )
        .await;
    assert_eq!(
        t["variables"],
        json!(["borrower", "lender", "amount", "guarantor"])
    );
    let tid = t["id"].as_i64().unwrap();
    let a = json!({"tenant": "bank-a"});
    let alice = env.user(&admin, "alice", "user", a.clone()).await;
    let s1 = env.user(&admin, "signer1", "user", a.clone()).await;
    let s2 = env.user(&admin, "signer2", "user", a.clone()).await;
    let s3 = env.user(&admin, "signer3", "user", a.clone()).await;
    let rita = env.user(&admin, "rita", "reviewer", a.clone()).await;
    let bob = env
        .user(&admin, "bob", "user", json!({"tenant": "bank-b"}))
        .await;

    let (s, v) = env
        .call(
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(json!({"contract_type_id": tid, "title": "借款合同", "variables": {"borrower": "张三"},
                        "signers": ["signer1", "bob"]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["variables.lender"].is_string());
    assert!(
        v["error"]["fields"]["signers[1]"].is_string(),
        "bob is another bank's"
    );

    let vars =
        json!({"borrower": "张三", "lender": "某银行", "amount": "50000", "guarantor": "李四"});
    let k = env
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "借款合同", "variables": vars,
                        "signers": ["signer1", "signer2", "signer3"]}),
            ),
        )
        .await;
    let body = "借款人 张三 向出借人 某银行 借款人民币 50000 元。担保人 李四。";
    assert_eq!(k["body"], body);
    let hash = EvidenceAlg::Sha256.hash(body.as_bytes());
    assert_eq!(k["contract_hash"], hex::encode(&hash));
    assert_eq!(k["status"], "signing");
    let kp = format!("/v1/contracts/{}", k["id"]);
    let (s, _) = env.call("GET", &kp, Some(&bob), None).await;
    assert_eq!(s, 403);

    // Signers 1 and 2 hold their own keys.
    let keys: Vec<ed25519_dalek::SigningKey> = (1u8..=2)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i; 32]))
        .collect();
    let (s, _) = env
        .call("POST", &format!("{kp}/sign"), Some(&s1), Some(json!({})))
        .await;
    assert_eq!(s, 409, "no key registered yet");
    for (tok, key) in [(&s1, &keys[0]), (&s2, &keys[1])] {
        let v = register_client_key(&env, tok, key).await;
        assert_eq!(v["custody"], "client");
    }
    // A signature by the wrong key does not verify.
    let (s, v) = env
        .call(
            "POST",
            &format!("{kp}/sign"),
            Some(&s1),
            Some(json!({"signature": sign_statement(&keys[1], &k, 0)})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["signature"].is_string());
    let v = env
        .ok(
            200,
            "POST",
            &format!("{kp}/sign"),
            Some(&s1),
            Some(json!({"signature": sign_statement(&keys[0], &k, 0)})),
        )
        .await;
    assert_eq!(v["signers"][0]["status"], "signed");
    assert_eq!(v["signers"][1]["status"], "pending");
    assert!(v["signers"][0]["signed_at"].is_string());
    assert_eq!(v["status"], "signing");
    // Someone who is not a signer cannot sign.
    let (s, _) = env
        .call("POST", &format!("{kp}/sign"), Some(&alice), Some(json!({})))
        .await;
    assert_eq!(s, 403);
    env.ok(
        200,
        "POST",
        &format!("{kp}/sign"),
        Some(&s2),
        Some(json!({"signature": sign_statement(&keys[1], &k, 1)})),
    )
    .await;
    // Signer 3 lets the platform keep the key, and is told so.
    let v = env
        .ok(
            200,
            "PUT",
            "/v1/me/signing-key",
            Some(&s3),
            Some(json!({"custody": "platform"})),
        )
        .await;
    assert!(v["statement"].as_str().unwrap().contains("platform"));
    let platform_pk = v["public_key"].as_str().unwrap().to_owned();
    let v = env
        .ok(
            200,
            "POST",
            &format!("{kp}/sign"),
            Some(&s3),
            Some(json!({})),
        )
        .await;
    assert_eq!(v["status"], "awaiting_review");
    let s3j = &v["signers"][2];
    assert_eq!(s3j["custody"], "platform");
    assert!(
        s3j["custody_statement"]
            .as_str()
            .unwrap()
            .contains("platform")
    );
    assert_eq!(s3j["public_key"], platform_pk);
    // Every stored signature verifies over its signer's statement, which
    // names the contract hash.
    for (i, sj) in v["signers"].as_array().unwrap().iter().enumerate() {
        let pk: [u8; 32] = hex::decode(sj["public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let sig: [u8; 64] = hex::decode(sj["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let text = statement(&v, i, sj["public_key"].as_str().unwrap());
        assert_eq!(sj["statement"], text.as_str());
        assert!(text.contains(&hex::encode(&hash)));
        ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .unwrap()
            .verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
    }
    // A signer cannot approve; the reviewer (not a signer) does.
    let (s, _) = env
        .call("POST", &format!("{kp}/approve"), Some(&s1), None)
        .await;
    assert_eq!(s, 403);
    env.ok(200, "POST", &format!("{kp}/approve"), Some(&rita), None)
        .await;
    env.wait_until("the contract on chain", &kp, &alice, 90, |v| {
        v["status"] == "on_chain"
    })
    .await;
    let bundle = env
        .ok(200, "GET", &format!("{kp}/proof"), Some(&alice), None)
        .await;
    verify_proof(&bundle, body.as_bytes());
    let contract_hash = bundle["entry"]["evidence_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    env.certificate_names(&format!("{kp}/certificate"), &alice, &contract_hash)
        .await;

    // A refusal.
    let k2 = env
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "借款合同 2", "variables": vars,
                        "signers": ["signer1", "signer2"]}),
            ),
        )
        .await;
    let kp2 = format!("/v1/contracts/{}", k2["id"]);
    let v = env
        .ok(
            200,
            "POST",
            &format!("{kp2}/refuse"),
            Some(&s2),
            Some(json!({"reason": "金额有误"})),
        )
        .await;
    assert_eq!(v["status"], "refused");
    assert_eq!(v["signers"][1]["status"], "refused");
    assert_eq!(v["signers"][1]["refuse_reason"], "金额有误");
    assert!(v["signers"][1]["refused_at"].is_string());
    let (s, _) = env
        .call(
            "POST",
            &format!("{kp2}/sign"),
            Some(&s1),
            Some(json!({"signature": "00"})),
        )
        .await;
    assert_eq!(s, 409);
    let l = env
        .ok(
            200,
            "GET",
            "/v1/contracts?status=refused",
            Some(&rita),
            None,
        )
        .await;
    assert_eq!(l.as_array().unwrap().len(), 1);
    // Contracts in pages of one (cursor `after`): the same as one answer.
    let all = env.ok(200, "GET", "/v1/contracts", Some(&rita), None).await;
    let all: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert!(all.len() >= 2, "{all:?}");
    assert_eq!(env.walk_pages("/v1/contracts?limit=1", &rita).await, all);
}

/// Repeated failures lock the account; the lock expires; sessions expire
/// and log out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_session_expiry_and_logout() {
    let env = start(false, |c| {
        c.lockout_threshold = 3;
        c.lockout_s = 2;
        c.session_ttl_s = 2;
    })
    .await;
    let bad = json!({"username": common::ADMIN, "password": "wrong-password"});
    for _ in 0..2 {
        let (s, v) = env
            .call("POST", "/v1/auth/login", None, Some(bad.clone()))
            .await;
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["error"]["code"], "invalid_credentials");
    }
    // The third failure locks the account; the answer is the same as for
    // any failure (issue 12: no 423, no unlock time).
    let (s, v) = env
        .call("POST", "/v1/auth/login", None, Some(bad.clone()))
        .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "invalid_credentials");
    // Even the right password is refused while locked.
    let good = json!({"username": common::ADMIN, "password": common::ADMIN_PASSWORD});
    let (s, v) = env
        .call("POST", "/v1/auth/login", None, Some(good.clone()))
        .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "invalid_credentials");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let token = env.admin().await;
    env.ok(200, "GET", "/v1/me", Some(&token), None).await;
    // The stored session holds only the token's hash.
    let c = env.db.client().await;
    let stored: Vec<Vec<u8>> = c
        .query("SELECT token_hash FROM workflow.sessions", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(stored.contains(&EvidenceAlg::Sha256.hash(token.as_bytes())));
    let phc: String = c
        .query_one(
            "SELECT password_hash FROM workflow.users WHERE username = $1",
            &[&common::ADMIN],
        )
        .await
        .unwrap()
        .get(0);
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    // Expiry.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (s, v) = env.call("GET", "/v1/me", Some(&token), None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "session_expired");
    // Logout.
    let token = env.admin().await;
    env.ok(204, "POST", "/v1/auth/logout", Some(&token), None)
        .await;
    let (s, v) = env.call("GET", "/v1/me", Some(&token), None).await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = env.call("GET", "/v1/me", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "unauthenticated");
    let (s, v) = env.call("GET", "/v1/nope", None, None).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "not_found");
}

/// Editing an audit row with raw SQL is detected; the head is anchored as
/// evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_audit_row_is_detected() {
    let env = start(false, |c| c.noise_summary_interval_s = 1).await;
    let admin = env.admin().await;
    env.user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    env.product(&admin).await;
    let (s, _) = env
        .call("POST", "/v1/products", None, Some(json!({})))
        .await;
    assert_eq!(s, 401);
    // Requests without a session are summarised (issue 12): one
    // `audit.noise_summary` row within the interval.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ok = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(ok["ok"], true, "{ok}");
    let rows = ok["rows"].as_i64().unwrap();
    assert!(rows >= 4, "{ok}");
    // Queries by date range, result and user.
    let from = "2000-01-01T00:00:00Z";
    let all = env
        .ok(
            200,
            "GET",
            &format!("/v1/audit?from={from}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(all.as_array().unwrap().len() as i64, rows);
    let none = env
        .ok(
            200,
            "GET",
            "/v1/audit?to=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    assert!(none.as_array().unwrap().is_empty());
    let denied = env
        .ok(200, "GET", "/v1/audit?result=denied", Some(&admin), None)
        .await;
    assert!(denied.as_array().unwrap().iter().any(|r| {
        r["username"] == "anonymous"
            && r["action"] == "audit.noise_summary"
            && r["detail"]
                .as_str()
                .unwrap()
                .contains("401 POST /v1/products")
    }));
    let root = env
        .ok(200, "GET", "/v1/audit?user=root", Some(&admin), None)
        .await;
    assert!(
        root.as_array()
            .unwrap()
            .iter()
            .all(|r| r["username"] == "root")
    );
    let (s, v) = env
        .call("GET", "/v1/audit?from=yesterday", Some(&admin), None)
        .await;
    assert_eq!(s, 422, "{v}");

    // Anchor the head: an evidence message for the audit tenant.
    let v = env
        .ok(200, "POST", "/v1/audit/anchor", Some(&admin), None)
        .await;
    assert!(v["submission_id"].as_i64().is_some(), "{v}");
    let c = env.db.client().await;
    let head: Vec<u8> = c
        .query_one("SELECT head_hash FROM workflow.audit_anchors", &[])
        .await
        .unwrap()
        .get(0);
    let sub = c
        .query_one(
            "SELECT tenant, hash FROM workflow.submissions WHERE kind = 'audit_head'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(sub.get::<_, String>(0), "anchord-workflow");
    assert_eq!(sub.get::<_, String>(1), hex::encode(&head));

    // Tamper.
    c.execute(
        "UPDATE workflow.audit_log SET result = 'ok' WHERE id = (SELECT min(id) FROM workflow.audit_log WHERE result = 'denied')",
        &[],
    )
    .await
    .unwrap();
    let bad_id: i64 = c
        .query_one("SELECT min(id) FROM workflow.audit_log WHERE action = 'audit.noise_summary' AND username = 'anonymous'", &[])
        .await
        .unwrap()
        .get(0);
    let v = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_id"], bad_id);
    // A deleted row is detected too (even with the edit undone).
    c.execute(
        "UPDATE workflow.audit_log SET result = 'denied' WHERE id = $1",
        &[&bad_id],
    )
    .await
    .unwrap();
    let v = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    c.execute("DELETE FROM workflow.audit_log WHERE id = 2", &[])
        .await
        .unwrap();
    let v = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_id"], 3);
    // Only administrators read the audit log.
    let alice = env.login("alice", &common::password_of("alice")).await;
    let (s, _) = env
        .call("GET", "/v1/audit/verify", Some(&alice), None)
        .await;
    assert_eq!(s, 403);
}

/// Webhooks: signed with HMAC-SHA256 over "timestamp.body", retried with
/// backoff under the same delivery id until the receiver accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_with_backoff() {
    // A loopback receiver: allow-listed (egress.rs refuses loopback otherwise).
    let env = start(false, |c| c.webhook_allow = vec!["127.0.0.1/32".into()]).await;
    // A receiver that fails twice, then accepts.
    type Seen = Arc<Mutex<Vec<(std::time::Instant, axum::http::HeaderMap, String)>>>;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(seen): axum::extract::State<Seen>,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let mut s = seen.lock().unwrap();
                    s.push((std::time::Instant::now(), headers, body));
                    if s.len() <= 2 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let admin = env.admin().await;
    let rita = env
        .user(&admin, "rita", "reviewer", json!({"tenant": "bank-a"}))
        .await;
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let secret = "a-very-secret-webhook-key";
    let hook = env
        .ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&rita),
            Some(json!({"url": format!("http://{addr}/hook"), "secret": secret})),
        )
        .await;
    assert_eq!(hook["tenant"], "bank-a");
    let product = env.product(&admin).await;
    let p = env
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "1"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", p["id"]);
    let (s, _) = env
        .upload("PUT", &format!("{pp}/file"), &alice, "f", b"x".to_vec())
        .await;
    assert_eq!(s, 200);
    env.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;

    anchord_testkit::wait_for("three delivery attempts", 30, || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().len() >= 3 }
    })
    .await;
    let d = env
        .wait_until(
            "the delivery recorded as delivered",
            &format!("/v1/webhooks/{}/deliveries", hook["id"]),
            &rita,
            10,
            |v| v[0]["state"] == "delivered",
        )
        .await;
    assert_eq!(d[0]["attempts"], 3);
    assert_eq!(d[0]["event"], "preservation.submitted");
    let seen = seen.lock().unwrap().clone();
    let ids: Vec<&str> = seen
        .iter()
        .map(|(_, h, _)| h["anchord-delivery"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one delivery id across retries: {ids:?}"
    );
    assert_eq!(ids[0], d[0]["delivery_id"].as_str().unwrap());
    for (_, h, body) in &seen {
        let t: i64 = h["anchord-timestamp"].to_str().unwrap().parse().unwrap();
        let sig = h["anchord-signature"].to_str().unwrap();
        assert_eq!(sig, anchord_workflow::webhooks::signature(secret, t, body));
        // Independently: HMAC-SHA256(secret, "t.body").
        let mac = anchord_workflow::webhooks::hmac_sha256(
            secret.as_bytes(),
            format!("{t}.{body}").as_bytes(),
        );
        assert_eq!(sig, format!("v1={}", hex::encode(mac)));
        assert_ne!(
            sig,
            anchord_workflow::webhooks::signature("other-secret-value!", t, body)
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["event"], "preservation.submitted");
        assert_eq!(v["delivery_id"], ids[0]);
    }
    // Backoff: the second gap is about twice the first (200 ms, 400 ms ±20 %).
    let g1 = seen[1].0 - seen[0].0;
    let g2 = seen[2].0 - seen[1].0;
    assert!(g1 >= Duration::from_millis(150), "{g1:?}");
    assert!(g2 >= Duration::from_millis(300), "{g2:?}");
    // Another bank's reviewer cannot see these deliveries.
    let other = env
        .user(&admin, "rex", "reviewer", json!({"tenant": "bank-b"}))
        .await;
    let (s, _) = env
        .call(
            "GET",
            &format!("/v1/webhooks/{}/deliveries", hook["id"]),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, 403, "a record of another bank answers 403");
}

/// The OpenAPI document lists every route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_the_routes() {
    let env: Env = start(false, |_| {}).await;
    let v = env.ok(200, "GET", "/v1/openapi.json", None, None).await;
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/v1/auth/login",
        "/v1/products/{id}/fields/order",
        "/v1/preservations/{id}/approve",
        "/v1/contracts/{id}/sign",
        "/v1/judicial-requests/{id}/compare",
        "/v1/audit/verify",
        "/v1/webhooks",
        "/v1/monitoring/summary",
        "/v1/system/events",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(v["components"]["schemas"]["ErrorBody"].is_object());
}

/// The transition table is one definition (issue 15): the database's copy
/// (`workflow.status_transitions`) equals the Rust enums' tables, and its
/// trigger refuses every status change outside it, whoever issues the
/// UPDATE, for every pair of preservation statuses. A transition through
/// the API writes its audit row (`preservation.approved`, `submitted ->
/// approved`, by the reviewer) in its own transaction; an illegal one
/// through the API answers 409 naming the current status.
#[tokio::test]
async fn status_transitions_are_one_table_enforced_by_the_database_and_audited() {
    use anchord_workflow::status::{
        ContractStatus, JudicialStatus, PreservationStatus, SignerStatus, Status,
    };
    use std::collections::BTreeSet;

    fn rust_table<S: Status>(out: &mut BTreeSet<(String, String, String)>) {
        let tbl = S::TABLE.trim_start_matches("workflow.");
        for (f, t) in S::TRANSITIONS {
            out.insert((tbl.into(), f.as_str().into(), t.as_str().into()));
        }
    }
    let e = start(false, |_| {}).await;
    let db = e.db.client().await;
    let mut want = BTreeSet::new();
    rust_table::<PreservationStatus>(&mut want);
    rust_table::<ContractStatus>(&mut want);
    rust_table::<JudicialStatus>(&mut want);
    rust_table::<SignerStatus>(&mut want);
    let got: BTreeSet<(String, String, String)> = db
        .query(
            "SELECT tbl, from_status, to_status FROM workflow.status_transitions",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(got, want, "the database's transition table is the enums'");

    let admin = e.admin().await;
    let bank = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", bank.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", bank).await;
    let product = e.product(&admin).await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "50000"}})),
        )
        .await;
    let id = p["id"].as_i64().unwrap();
    let pp = format!("/v1/preservations/{id}");
    // Approval before submission: 409 naming the status.
    let (s, v) = e
        .call("POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    assert_eq!(v["error"]["fields"]["status"], "saved", "{v}");
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "a.txt",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    e.ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    let rows = e
        .ok(
            200,
            "GET",
            "/v1/audit?action=preservation.approved",
            Some(&admin),
            None,
        )
        .await;
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object"] == format!("preservation/{id}"))
        .unwrap_or_else(|| panic!("no audit row for the approval: {rows}"));
    assert_eq!(row["username"], "rita");
    assert_eq!(row["detail"], "submitted -> approved");
    let submitted = e
        .ok(
            200,
            "GET",
            "/v1/audit?action=preservation.submitted",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        submitted
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["detail"] == "saved -> submitted" && r["username"] == "alice"),
        "{submitted}"
    );

    // Every (from, to) pair straight in SQL: the trigger allows exactly the
    // table. Each `from` is staged with triggers off (replica role).
    for from in PreservationStatus::ALL {
        for to in PreservationStatus::ALL {
            db.batch_execute("SET session_replication_role = replica")
                .await
                .unwrap();
            db.execute(
                "UPDATE workflow.preservations SET status = $2 WHERE id = $1",
                &[&id, &from.as_str()],
            )
            .await
            .unwrap();
            db.batch_execute("SET session_replication_role = origin; BEGIN")
                .await
                .unwrap();
            let r = db
                .execute(
                    "UPDATE workflow.preservations SET status = $2 WHERE id = $1",
                    &[&id, &to.as_str()],
                )
                .await;
            db.batch_execute("ROLLBACK").await.unwrap();
            let allowed = from == to || PreservationStatus::allowed(*from, *to);
            match r {
                Ok(n) => assert!(allowed && n == 1, "{from} -> {to} was allowed"),
                Err(err) => {
                    assert!(!allowed, "{from} -> {to} refused: {err}");
                    assert!(
                        err.as_db_error()
                            .is_some_and(|d| d.message().contains("not an allowed transition")),
                        "{err:?}"
                    );
                }
            }
        }
    }
}
