//! Authorisation, route by route: every operation of the OpenAPI document
//! refuses a request without a session (401), and every route × role that
//! the roles table of docs/workflow-api.md does not allow answers 403 with
//! the error body, and changes nothing — also when the body is malformed,
//! empty or of the wrong content type: authorisation comes before the body.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// How a request carries its body.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    File,
    /// Raw bytes with this `Content-Type` (none when `None`).
    Raw(Option<&'static str>, &'static [u8]),
}

/// Bodies no route accepts: to the roles a route denies, each must answer
/// 403 like a valid body does, never 400, 413, 415 or 422.
const MALFORMED: [(Option<&str>, &[u8]); 6] = [
    (Some("application/json"), br#"{"nonsense": ["#),
    (Some("application/json"), br#"[1, "two", {"three": null}]"#),
    (Some("application/json"), b""),
    (None, b""),
    (Some("text/plain"), b"not multipart"),
    (Some("multipart/form-data"), b"no boundary"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_denies_every_role_the_table_does_not_allow() {
    // Webhooks to 127.0.0.1 need the allow-list (egress.rs).
    let e = common::start(true, |c| c.webhook_allow = vec!["127.0.0.1/32".into()]).await;
    let admin = e.admin().await;
    for (id, kind) in [("notary-1", "notary"), ("court-1", "court")] {
        e.ok(
            201,
            "POST",
            "/v1/institutions",
            Some(&admin),
            Some(json!({"id": id, "name": id, "kind": kind, "fee_cents": 100})),
        )
        .await;
    }
    let a = json!({"tenant": "bank-a"});
    let b = json!({"tenant": "bank-b"});
    let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
    tokens.insert("admin", admin.clone());
    tokens.insert("user", e.user(&admin, "alice", "user", a.clone()).await);
    tokens.insert(
        "reviewer",
        e.user(&admin, "rita", "reviewer", a.clone()).await,
    );
    tokens.insert(
        "notary",
        e.user(
            &admin,
            "nora",
            "institution",
            json!({"institution_id": "notary-1"}),
        )
        .await,
    );
    tokens.insert(
        "court",
        e.user(
            &admin,
            "carl",
            "institution",
            json!({"institution_id": "court-1"}),
        )
        .await,
    );
    tokens.insert("b_user", e.user(&admin, "bob", "user", b.clone()).await);
    tokens.insert(
        "b_reviewer",
        e.user(&admin, "rex", "reviewer", b.clone()).await,
    );
    // An organisation administrator of bank-b: none of bank-a's records,
    // users or settings are theirs.
    let org_b = e
        .ok(200, "GET", "/v1/me", Some(&tokens["b_user"]), None)
        .await["organisation_id"]
        .as_i64()
        .unwrap();
    let (_, olga) = e
        .member(&admin, org_b, "olga", "org_admin", json!({}))
        .await;
    tokens.insert("org_admin", olga);
    let (alice, rita, nora) = (
        tokens["user"].clone(),
        tokens["reviewer"].clone(),
        tokens["notary"].clone(),
    );

    // Records of bank-a: a product, an on-chain preservation, a contract
    // signed by alice, a notarization request addressed to notary-1, a
    // webhook of bank-a.
    let me = e.ok(200, "GET", "/v1/me", Some(&alice), None).await;
    let (alice_id, org_a) = (
        me["id"].as_i64().unwrap(),
        me["organisation_id"].as_i64().unwrap(),
    );
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
    let pid = p["id"].as_i64().unwrap();
    let pp = format!("/v1/preservations/{pid}");
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "f.txt",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    e.ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    e.wait_until("the preservation on chain", &pp, &alice, 60, |v| {
        v["status"] == "on_chain"
    })
    .await;
    let t = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "I, {{name}}, agree."})),
        )
        .await;
    let tid = t["id"].as_i64().unwrap();
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "t", "variables": {"name": "alice"},
                        "signers": ["alice"]}),
            ),
        )
        .await;
    let kid = k["id"].as_i64().unwrap();
    let j = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(
                json!({"kind": "notarization", "subject_kind": "preservation",
                        "subject_id": pid, "institution_id": "notary-1"}),
            ),
        )
        .await;
    let jid = j["id"].as_i64().unwrap();
    let w = e
        .ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&rita),
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    let wid = w["id"].as_i64().unwrap();

    let pk = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_bytes(),
    );
    let reason = Body::Json(json!({"reason": "no"}));
    let all_but = |allowed: &[&str]| -> Vec<&'static str> {
        [
            "admin",
            "user",
            "reviewer",
            "notary",
            "court",
            "b_user",
            "b_reviewer",
            "org_admin",
        ]
        .into_iter()
        .filter(|r| !allowed.contains(r))
        .collect()
    };
    let admin_only = all_but(&["admin"]);
    let bank_a_readers = all_but(&["admin", "user", "reviewer"]);
    // (method, path, body, roles that must be denied with 403)
    let table: Vec<(&str, String, Body, Vec<&str>)> = vec![
        (
            "POST",
            "/v1/users".into(),
            Body::Json(
                json!({"username": "zed", "password": "password-123", "role": "user", "tenant": "bank-a"}),
            ),
            // An organisation administrator may create users of its own
            // organisation, named in the body: its 403 for another
            // organisation's comes after the body is read (organisations.rs).
            all_but(&["admin", "org_admin"]),
        ),
        (
            "GET",
            "/v1/users".into(),
            Body::None,
            vec!["user", "notary", "court", "b_user"],
        ),
        (
            "POST",
            "/v1/institutions".into(),
            Body::Json(json!({"id": "x-1", "name": "x", "kind": "notary"})),
            admin_only.clone(),
        ),
        (
            "POST",
            "/v1/products".into(),
            Body::Json(
                json!({"name": "p2", "description": "d", "channels": ["notarization"], "fields": []}),
            ),
            admin_only.clone(),
        ),
        (
            "PATCH",
            format!("/v1/products/{product}"),
            Body::Json(json!({"description": "x"})),
            admin_only.clone(),
        ),
        (
            "POST",
            format!("/v1/products/{product}/fields"),
            Body::Json(
                json!({"key": "k9", "display_name": "K", "type": "text", "max_length": 5, "required": false}),
            ),
            admin_only.clone(),
        ),
        (
            "PATCH",
            format!("/v1/products/{product}/fields/card_no"),
            Body::Json(json!({"display_name": "x"})),
            admin_only.clone(),
        ),
        (
            "PUT",
            format!("/v1/products/{product}/fields/order"),
            Body::Json(json!({"keys": ["amount", "borrower", "card_no"]})),
            admin_only.clone(),
        ),
        (
            "DELETE",
            format!("/v1/products/{product}/fields/card_no"),
            Body::None,
            admin_only.clone(),
        ),
        (
            "DELETE",
            format!("/v1/products/{product}"),
            Body::None,
            admin_only.clone(),
        ),
        (
            "POST",
            "/v1/contract-types".into(),
            Body::Json(json!({"name": "n2", "template_text": "t"})),
            admin_only.clone(),
        ),
        (
            "POST",
            "/v1/preservations".into(),
            Body::Json(json!({"product_id": product, "fields": fields})),
            vec!["admin", "notary", "court"],
        ),
        (
            "GET",
            "/v1/preservations".into(),
            Body::None,
            vec!["notary", "court"],
        ),
        ("GET", pp.clone(), Body::None, bank_a_readers.clone()),
        (
            "PATCH",
            pp.clone(),
            Body::Json(json!({"fields": fields})),
            all_but(&["user"]),
        ),
        ("PUT", format!("{pp}/file"), Body::File, all_but(&["user"])),
        (
            "GET",
            format!("{pp}/file"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "GET",
            format!("{pp}/proof"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "GET",
            format!("{pp}/certificate"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "GET",
            format!("{pp}/certificate.json"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "POST",
            format!("{pp}/submit"),
            Body::None,
            all_but(&["user"]),
        ),
        (
            "POST",
            format!("{pp}/approve"),
            Body::None,
            all_but(&["reviewer"]),
        ),
        (
            "POST",
            format!("{pp}/reject"),
            reason.clone(),
            all_but(&["reviewer"]),
        ),
        (
            "PUT",
            "/v1/me/signing-key".into(),
            Body::Json(json!({"custody": "client", "public_key": pk})),
            vec!["admin", "notary", "court"],
        ),
        (
            "POST",
            "/v1/me/signing-key/challenge".into(),
            Body::None,
            vec!["admin", "notary", "court"],
        ),
        (
            "GET",
            "/v1/me/signing-key".into(),
            Body::None,
            vec!["admin", "notary", "court"],
        ),
        (
            "POST",
            "/v1/contracts".into(),
            Body::Json(
                json!({"contract_type_id": tid, "title": "t", "variables": {"name": "x"}, "signers": ["alice"]}),
            ),
            vec!["admin", "notary", "court"],
        ),
        (
            "GET",
            "/v1/contracts".into(),
            Body::None,
            vec!["notary", "court"],
        ),
        (
            "GET",
            format!("/v1/contracts/{kid}"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "GET",
            format!("/v1/contracts/{kid}/proof"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "GET",
            format!("/v1/contracts/{kid}/certificate"),
            Body::None,
            bank_a_readers.clone(),
        ),
        (
            "POST",
            format!("/v1/contracts/{kid}/sign"),
            Body::Json(json!({})),
            all_but(&["user"]),
        ),
        (
            "POST",
            format!("/v1/contracts/{kid}/refuse"),
            reason.clone(),
            all_but(&["user"]),
        ),
        (
            "POST",
            format!("/v1/contracts/{kid}/approve"),
            Body::None,
            all_but(&["reviewer"]),
        ),
        (
            "POST",
            format!("/v1/contracts/{kid}/reject"),
            reason.clone(),
            all_but(&["reviewer"]),
        ),
        (
            "POST",
            "/v1/judicial-requests".into(),
            Body::Json(
                json!({"kind": "notarization", "subject_kind": "preservation", "subject_id": pid,
                           "institution_id": "notary-1"}),
            ),
            vec!["admin", "notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            format!("/v1/judicial-requests/{jid}"),
            Body::None,
            vec!["court", "b_user", "b_reviewer"],
        ),
        (
            "POST",
            format!("/v1/judicial-requests/{jid}/compare"),
            Body::File,
            all_but(&["notary"]),
        ),
        (
            "POST",
            format!("/v1/judicial-requests/{jid}/certificate"),
            Body::File,
            all_but(&["notary"]),
        ),
        (
            "POST",
            format!("/v1/judicial-requests/{jid}/refuse"),
            reason.clone(),
            all_but(&["notary"]),
        ),
        (
            "POST",
            format!("/v1/judicial-requests/{jid}/review"),
            Body::None,
            all_but(&["notary"]),
        ),
        (
            "GET",
            format!("/v1/judicial-requests/{jid}/certificate"),
            Body::None,
            vec!["court", "b_user", "b_reviewer"],
        ),
        // contracts & judicial (H8, issue 15): the evidence handover and
        // contract certificates; invitations by role.
        (
            "PUT",
            format!("/v1/judicial-requests/{jid}/evidence"),
            Body::File,
            vec!["admin", "notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            format!("/v1/judicial-requests/{jid}/evidence"),
            Body::None,
            vec!["court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            format!("/v1/judicial-requests/{jid}/subject"),
            Body::None,
            vec!["court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            format!("/v1/judicial-requests/{jid}/proof"),
            Body::None,
            vec!["court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            format!("/v1/judicial-requests/{jid}/comparison-report"),
            Body::None,
            vec!["court", "b_user", "b_reviewer"],
        ),
        (
            "POST",
            format!("/v1/judicial-requests/{jid}/compare-evidence"),
            Body::None,
            all_but(&["notary"]),
        ),
        (
            "GET",
            format!("/v1/contracts/{kid}/certificate.json"),
            Body::None,
            vec!["notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "POST",
            "/v1/invitations/accept".into(),
            Body::Json(json!({"token": "00".repeat(32)})),
            vec!["admin", "notary", "court"],
        ),
        ("GET", "/v1/audit".into(), Body::None, admin_only.clone()),
        (
            "GET",
            "/v1/audit/verify".into(),
            Body::None,
            admin_only.clone(),
        ),
        (
            "POST",
            "/v1/audit/anchor".into(),
            Body::None,
            admin_only.clone(),
        ),
        (
            "GET",
            "/v1/system/events".into(),
            Body::None,
            admin_only.clone(),
        ),
        (
            "GET",
            "/v1/monitoring/summary".into(),
            Body::None,
            admin_only.clone(),
        ),
        (
            "GET",
            "/v1/monitoring/instances".into(),
            Body::None,
            admin_only.clone(),
        ),
        (
            "GET",
            "/v1/search/contracts".into(),
            Body::None,
            vec!["notary", "court"],
        ),
        (
            "GET",
            "/v1/search/on-chain".into(),
            Body::None,
            vec!["admin", "notary", "court"],
        ),
        (
            "POST",
            "/v1/webhooks".into(),
            Body::Json(json!({"url": "http://127.0.0.1:9/h2"})),
            vec!["user", "notary", "court", "b_user"],
        ),
        (
            "GET",
            format!("/v1/webhooks/{wid}/deliveries"),
            Body::None,
            vec!["user", "notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            "/v1/webhooks".into(),
            Body::None,
            vec!["user", "notary", "court", "b_user"],
        ),
        (
            "POST",
            format!("/v1/webhooks/{wid}/disable"),
            Body::None,
            vec!["user", "notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "POST",
            format!("/v1/webhooks/{wid}/enable"),
            Body::None,
            vec!["user", "notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "DELETE",
            format!("/v1/webhooks/{wid}"),
            Body::None,
            vec!["user", "notary", "court", "b_user", "b_reviewer"],
        ),
        // Organisations, users, inboxes (H9): only administrators manage;
        // a bank's reviewers list their own bank's users.
        (
            "POST",
            "/v1/organisations".into(),
            Body::Json(json!({"kind": "bank", "name": "z", "tenant": "bank-z"})),
            admin_only.clone(),
        ),
        (
            "GET",
            "/v1/organisations".into(),
            Body::None,
            admin_only.clone(),
        ),
        (
            "PATCH",
            format!("/v1/organisations/{org_a}"),
            Body::Json(json!({"name": "x"})),
            admin_only.clone(),
        ),
        (
            "POST",
            format!("/v1/organisations/{org_a}/disable"),
            Body::None,
            admin_only.clone(),
        ),
        (
            "POST",
            format!("/v1/organisations/{org_a}/users"),
            Body::Json(json!({"username": "zed2", "password": "password-123", "role": "user"})),
            admin_only.clone(),
        ),
        (
            "GET",
            format!("/v1/organisations/{org_a}/users"),
            Body::None,
            vec!["user", "notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "GET",
            format!("/v1/organisations/{org_a}"),
            Body::None,
            vec!["notary", "court", "b_user", "b_reviewer"],
        ),
        (
            "PATCH",
            format!("/v1/users/{alice_id}"),
            Body::Json(json!({"display_name": "x"})),
            admin_only.clone(),
        ),
        (
            "GET",
            "/v1/inbox/preservation_reviews".into(),
            Body::None,
            vec!["admin", "user", "notary", "court", "b_user"],
        ),
    ];

    let send = |method: &str, path: &str, token: Option<&str>, body: &Body| {
        let mut req = e
            .http
            .request(method.parse().unwrap(), format!("{}{path}", e.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::File => req.multipart(reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(b"%PDF-1.4 other".to_vec()).file_name("c.pdf"),
            )),
            Body::Raw(content_type, bytes) => {
                let req = match content_type {
                    Some(t) => req.header(reqwest::header::CONTENT_TYPE, *t),
                    None => req,
                };
                req.body(bytes.to_vec())
            }
        };
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };

    let before = e
        .ok(200, "GET", "/v1/monitoring/summary", Some(&admin), None)
        .await;
    let mut failures = Vec::new();
    let mut checked = 0;
    // (method, path) → denials sent, to find each in the audit log.
    let mut sent: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (method, path, body, denied) in &table {
        for role in denied {
            // A judicial request names its subject in the body: a bank user
            // of another bank is denied by the subject the body names, so
            // only a well-formed body can be denied as such.
            let body_names_the_record =
                *method == "POST" && path == "/v1/judicial-requests" && role.starts_with("b_");
            let malformed = MALFORMED
                .iter()
                .filter(|_| !body_names_the_record)
                .map(|(t, b)| (path.clone(), Body::Raw(*t, b)));
            let bad_query = format!("{path}?limit=not-a-number&nonsense=%5B");
            let requests = [(path.clone(), body.clone()), (bad_query, body.clone())]
                .into_iter()
                .chain(malformed);
            for (target, body) in requests {
                let (s, v) = send(method, &target, Some(&tokens[role]), &body).await;
                checked += 1;
                *sent.entry((method, path)).or_default() += 1;
                let code = v["error"]["code"].as_str().unwrap_or("");
                if s != 403 || !(code == "forbidden" || code == "self_approval") {
                    let shown = match &body {
                        Body::Raw(t, b) => {
                            format!(" (body {:?} as {t:?})", String::from_utf8_lossy(b))
                        }
                        _ => String::new(),
                    };
                    failures.push(format!("{method} {target} as {role}{shown}: {s} {v}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} denials did not answer 403:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Nothing changed: the records are as they were.
    let after = e
        .ok(200, "GET", "/v1/monitoring/summary", Some(&admin), None)
        .await;
    for k in ["preservations", "contracts", "users"] {
        assert_eq!(before[k], after[k], "{k}");
    }
    let p = e.ok(200, "GET", &pp, Some(&alice), None).await;
    assert_eq!(p["status"], "on_chain");
    let k = e
        .ok(
            200,
            "GET",
            &format!("/v1/contracts/{kid}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(k["status"], "signing");
    let j = e
        .ok(
            200,
            "GET",
            &format!("/v1/judicial-requests/{jid}"),
            Some(&alice),
            None,
        )
        .await;
    assert!(
        j["certificate"].is_null() && j["status"] != "refused",
        "{j}"
    );
    let pr = e
        .ok(
            200,
            "GET",
            &format!("/v1/products/{product}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(pr["fields"].as_array().unwrap().len(), 3);
    // Every denial is in the audit log.
    let denied = e
        .ok(
            200,
            "GET",
            "/v1/audit?result=denied&limit=10000",
            Some(&admin),
            None,
        )
        .await;
    assert!(
        denied.as_array().unwrap().len() >= checked,
        "{} denied rows for {checked} denials",
        denied.as_array().unwrap().len()
    );
    // ... under its route's action, whatever stage of the request refused it.
    let mut logged: BTreeMap<(String, String), usize> = BTreeMap::new();
    for row in denied.as_array().unwrap() {
        let action = row["action"].as_str().unwrap();
        let method = action.split(' ').next().unwrap().to_owned();
        *logged
            .entry((method, row["object"].as_str().unwrap().to_owned()))
            .or_default() += 1;
        assert_eq!(row["detail"], "403", "{row}");
    }
    for ((method, path), n) in &sent {
        let got = logged
            .get(&((*method).to_owned(), (*path).to_owned()))
            .copied()
            .unwrap_or(0);
        assert!(
            got >= *n,
            "{method} {path}: {got} denied rows for {n} denials"
        );
    }

    // Without a session, every operation of the document answers 401.
    let doc = e.ok(200, "GET", "/v1/openapi.json", None, None).await;
    let mut ops = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/v1/openapi.json" || path == "/v1/auth/login" {
            continue;
        }
        let concrete = path.replace("{id}", "1").replace("{key}", "borrower");
        for method in item.as_object().unwrap().keys() {
            // Operations the document declares public (`security: [{}]`:
            // contract invitations, opened before any account exists).
            if item[method]["security"] == json!([{}]) {
                continue;
            }
            let m = method.to_ascii_uppercase();
            let body = match item[method]["requestBody"]["content"]
                .as_object()
                .map(|c| c.contains_key("multipart/form-data"))
            {
                Some(true) => Body::File,
                Some(false) => Body::Json(json!({})),
                None => Body::None,
            };
            let (t, b) = MALFORMED[0];
            for token in [None, Some("not-a-session-token")] {
                for body in [body.clone(), Body::Raw(t, b)] {
                    let (s, v) = send(&m, &concrete, token, &body).await;
                    assert_eq!(s, 401, "{m} {path} with token {token:?}: {v}");
                    assert_eq!(v["error"]["code"], "unauthenticated", "{m} {path}: {v}");
                }
            }
            ops += 1;
        }
    }
    assert!(ops >= 50, "only {ops} operations in the document");
    let _ = nora;
}
