//! The running workflow API against its own OpenAPI document: schemathesis
//! (PyPI, installed by scripts/test-peers) generates valid and invalid
//! requests for every operation, signed in as an administrator and then as a
//! preservation user, and checks for server errors, undocumented status
//! codes, content types and response schemas.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::json;

/// Examples per operation and data-generation method; bounded so that both
/// runs stay well under two minutes on a 2-core machine.
const MAX_EXAMPLES: &str = "30";

async fn schemathesis(base: &str, who: &str, token: &str) {
    let st = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.anchord/peers/venv/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: run scripts/test-peers (installs schemathesis from PyPI)",
        st.display()
    );
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new(&st)
            .env("SCHEMATHESIS_HOOKS", "")
            .args([
                "run",
                "--checks",
                "all",
                "--data-generation-method",
                "all",
                "--hypothesis-max-examples",
                MAX_EXAMPLES,
                "--hypothesis-derandomize",
                "--hypothesis-suppress-health-check",
                "all",
                // The token comes from --header; generated (and negated)
                // security parameters would be overridden by it.
                "--generation-with-security-parameters=false",
                "--request-timeout",
                "10000",
                "--no-color",
                "--experimental=openapi-3.1",
                // Logging out would revoke the token the run signs in with;
                // so would disabling users, resetting or changing passwords
                // and revoking sessions (tests/security_auth.rs covers them).
                "--exclude-path",
                "/v1/auth/logout",
                "--exclude-path",
                "/v1/me/password",
                "--exclude-path",
                "/v1/users/{id}/disable",
                "--exclude-path",
                "/v1/users/{id}/password",
                "--exclude-path",
                "/v1/users/{id}/sessions",
                "--header",
            ])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{base}/v1/openapi.json"))
            // Hypothesis keeps a `.hypothesis` directory in the working
            // directory: not the source tree.
            .current_dir(std::env::temp_dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("schemathesis finishes within 240 s")
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis (signed in as {who}) failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "schemathesis as {who}: passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_api_conforms_to_its_openapi_document() {
    let e = common::start(false, |c| {
        c.max_upload_bytes = 4096;
        // Webhooks to 127.0.0.1 need the allow-list (egress.rs).
        c.webhook_allow = vec!["127.0.0.1/32".into()];
    })
    .await;
    let admin = e.admin().await;
    // Some records, so that ids 1, 2, ... exist for generated requests.
    e.ok(
        201,
        "POST",
        "/v1/institutions",
        Some(&admin),
        Some(json!({"id": "notary-1", "name": "公证处", "kind": "notary", "fee_cents": 100})),
    )
    .await;
    e.ok(
        201,
        "POST",
        "/v1/institutions",
        Some(&admin),
        Some(json!({"id": "court-1", "name": "法院", "kind": "court"})),
    )
    .await;
    let product = e.product(&admin).await;
    let user = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let _reviewer = e
        .user(&admin, "rita", "reviewer", json!({"tenant": "bank-a"}))
        .await;
    e.ok(
        201,
        "POST",
        "/v1/contract-types",
        Some(&admin),
        Some(json!({"name": "loan", "template_text": "Loan of {{amount}} to {{borrower}}."})),
    )
    .await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&user),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "100"}})),
        )
        .await;
    let pid = p["id"].as_i64().unwrap();
    let (s, v) = e
        .upload(
            "PUT",
            &format!("/v1/preservations/{pid}/file"),
            &user,
            "a.txt",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    e.ok(
        201,
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(json!({"url": "http://127.0.0.1:9/hook"})),
    )
    .await;

    // What the fuzzer does not reach: unknown routes and methods, bodies of
    // the wrong content type, all with the one error body.
    let code = |v: &serde_json::Value| v["error"]["code"].as_str().unwrap_or("").to_owned();
    let (s, v) = e.call("GET", "/v1/nope", Some(&admin), None).await;
    assert_eq!((s.as_u16(), code(&v).as_str()), (404, "not_found"), "{v}");
    let (s, v) = e.call("DELETE", "/v1/me", Some(&admin), None).await;
    assert_eq!(
        (s.as_u16(), code(&v).as_str()),
        (405, "method_not_allowed"),
        "{v}"
    );
    let r = e
        .http
        .put(format!("{}/v1/preservations/{pid}/file", e.base))
        .bearer_auth(&user)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&v), "unsupported_media_type", "{v}");
    let r = e
        .http
        .post(format!("{}/v1/products", e.base))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&v), "unsupported_media_type", "{v}");
    let (s, v) = e
        .call("GET", "/v1/preservations?limit=0", Some(&user), None)
        .await;
    assert_eq!(
        (s.as_u16(), code(&v).as_str()),
        (422, "validation_failed"),
        "{v}"
    );
    assert!(v["error"]["fields"]["limit"].is_string(), "{v}");
    // The document describes the upload's multipart form and the query
    // parameters as query parameters.
    let doc = e.ok(200, "GET", "/v1/openapi.json", None, None).await;
    let upload = &doc["paths"]["/v1/preservations/{id}/file"]["put"]["requestBody"]["content"]["multipart/form-data"]
        ["schema"];
    assert!(upload.is_object(), "{upload}");
    let params = &doc["paths"]["/v1/preservations"]["get"]["parameters"];
    assert!(
        params
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["in"] == "query" && p["required"] != true),
        "{params}"
    );
    for code in ["400", "401", "403", "404", "409", "413", "415", "422"] {
        assert!(
            doc["paths"]["/v1/preservations/{id}/file"]["put"]["responses"][code].is_object(),
            "{code} undocumented"
        );
    }

    schemathesis(&e.base, "admin", &admin).await;
    schemathesis(&e.base, "a preservation user", &user).await;
}
