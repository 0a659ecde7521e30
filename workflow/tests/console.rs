//! The web console served by the workflow API (`workflow/src/console.rs`),
//! over HTTP against the real services: the built assets with their
//! security and cache headers and the single-page fallback; the session
//! cookie no script can read, its CSRF guard, and Bearer clients unchanged;
//! the committed OpenAPI document the console's client is generated from.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

const INDEX: &str = "<!doctype html><html><head><meta name=\"csp-nonce\" content=\"__CSP_NONCE__\">\
<script type=\"module\" src=\"/assets/index-AbC123.js\"></script></head><body><div id=\"root\"></div></body></html>";

/// A built console (as `npm run build` leaves it) in a temporary directory.
fn fake_console() -> PathBuf {
    let dir = common::temp_dir("anchord_console");
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join("assets/index-AbC123.js"), "console.log(1);\n").unwrap();
    std::fs::write(dir.join("assets/index-AbC123.css"), "body{margin:0}\n").unwrap();
    std::fs::write(
        dir.join("favicon.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    dir
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn get(e: &common::Env, path: &str) -> (u16, HeaderMap, String) {
    let r = e
        .http
        .get(format!("{}{path}", e.base))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, h, r.text().await.unwrap())
}

/// The nonce in the served index.html's meta element.
fn nonce_of(body: &str) -> String {
    let at = body.find("name=\"csp-nonce\" content=\"").unwrap() + 26;
    body[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_served_with_a_strict_policy_cache_rules_and_spa_fallback() {
    let dir = fake_console();
    let e = common::start(false, |c| {
        c.console_dir = dir.clone();
        c.verify_dir = dir.join("no-verify-page");
    })
    .await;

    // The root and any application route: index.html, revalidated, with a
    // fresh style nonce that the policy names (and nothing inline besides).
    let mut nonces = vec![];
    for path in [
        "/",
        "/preservations/12",
        "/admin/products/3/fields",
        "/login?next=%2F",
    ] {
        let (s, h, body) = get(&e, path).await;
        assert_eq!(s, 200, "{path}: {body}");
        assert_eq!(
            header(&h, "content-type"),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(header(&h, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff");
        assert_eq!(header(&h, "referrer-policy"), "no-referrer");
        let csp = header(&h, "content-security-policy");
        let nonce = nonce_of(&body);
        assert!(
            !nonce.contains("__CSP_NONCE__") && nonce.len() >= 16,
            "{body}"
        );
        for want in [
            "default-src 'none'",
            "script-src 'self';",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            &format!("style-src 'self' 'nonce-{nonce}'"),
        ] {
            assert!(csp.contains(want), "{path}: CSP {csp} lacks {want}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "every answer has its own nonce");

    // Hashed assets: a year, immutable, with their type and nosniff.
    let (s, h, body) = get(&e, "/assets/index-AbC123.js").await;
    assert_eq!((s, body.as_str()), (200, "console.log(1);\n"));
    assert!(
        header(&h, "content-type").starts_with("text/javascript"),
        "{h:?}"
    );
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    let (s, h, _) = get(&e, "/assets/index-AbC123.css").await;
    assert_eq!(s, 200);
    assert!(header(&h, "content-type").starts_with("text/css"), "{h:?}");
    // Unhashed files: revalidated.
    let (s, h, _) = get(&e, "/favicon.svg").await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "cache-control"), "no-cache");
    // Missing files are 404s, never the application (a stale hashed
    // asset must not come back as HTML).
    for path in ["/assets/index-Old999.js", "/assets/nope", "/robots.txt"] {
        let (s, h, _) = get(&e, path).await;
        assert_eq!(s, 404, "{path}");
        assert_ne!(
            header(&h, "cache-control"),
            "public, max-age=31536000, immutable"
        );
    }
    // No escape from the directory.
    for path in [
        "/assets/..%2f..%2fCargo.toml",
        "/..%2fCargo.toml",
        "/assets/%2e%2e/index.html",
    ] {
        let (s, _, body) = get(&e, path).await;
        assert!(!body.contains("[package]"), "{path} escaped: {body}");
        assert!(
            s == 404 || s == 400 || (s == 200 && body.contains("csp-nonce")),
            "{path}: {s}"
        );
    }
    // API paths keep their JSON 404; the console's pages are GET only.
    let (s, v) = e.call("GET", "/v1/nope", None, None).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, v) = e.call("POST", "/", None, Some(json!({}))).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // The verification page's mount redirects to its directory; unbuilt, it
    // says how to build it.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/verify", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(header(r.headers(), "location"), "/verify/");
    let (s, _, body) = get(&e, "/verify/").await;
    assert_eq!(s, 503);
    assert!(
        body.contains("npm ci &amp;&amp; npm run build") && body.contains("console/verify"),
        "{body}"
    );
}

/// The court's verification page (console/verify) is served at /verify/
/// under the policy its build wrote (its inline script and style by hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_page_is_served_under_its_own_policy() {
    let dir = common::temp_dir("anchord_verify_page");
    std::fs::write(dir.join("index.html"), "<!doctype html><title>核验</title>").unwrap();
    let own =
        "default-src 'none'; script-src 'sha256-AAAA'; style-src 'sha256-BBBB'; connect-src 'self'";
    std::fs::write(dir.join("index.html.csp"), format!("{own}\n")).unwrap();
    let e = common::start(false, |c| c.verify_dir = dir.clone()).await;
    let (s, h, body) = get(&e, "/verify/").await;
    assert_eq!(s, 200);
    assert!(body.contains("核验"), "{body}");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert_eq!(
        header(&h, "content-security-policy"),
        format!("{own}; frame-ancestors 'none'")
    );
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    // Not an application: unknown paths are 404s.
    let (s, _, _) = get(&e, "/verify/cases/12").await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_console_the_api_works_and_the_root_says_how_to_build_it() {
    let missing = common::temp_dir("anchord_console_missing").join("dist");
    let e = common::start(false, |c| c.console_dir = missing.clone()).await;
    for path in ["/", "/preservations"] {
        let (s, h, body) = get(&e, path).await;
        assert_eq!(s, 503, "{path}");
        assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
        assert!(body.contains("npm ci &amp;&amp; npm run build"), "{body}");
        assert!(body.contains("workflow.console_dir"), "{body}");
        assert!(body.contains(&missing.display().to_string()), "{body}");
    }
    let admin = e.admin().await;
    let v = e.ok(200, "GET", "/v1/me", Some(&admin), None).await;
    assert_eq!(v["username"], common::ADMIN);
}

/// `POST /v1/auth/login` as the console sends it.
async fn cookie_login(e: &common::Env, user: &str, password: &str) -> (u16, HeaderMap, Value) {
    let r = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .header("x-anchord-csrf", "1")
        .header("origin", &e.base)
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, h, r.json().await.unwrap_or(Value::Null))
}

/// The `name=value` pair of the session cookie in `set-cookie`.
fn session_pair(h: &HeaderMap) -> (String, String) {
    let c = h
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-anchord_session=") || v.starts_with("anchord_session="))
        .expect("a session cookie is set");
    let pair = c.split(';').next().unwrap().to_owned();
    (pair, c)
}

/// The status of `GET /v1/me` sent with only this `Cookie` header.
async fn me_status(e: &common::Env, cookie: &str) -> u16 {
    e.http
        .get(format!("{}/v1/me", e.base))
        .headers(cookie_headers(cookie))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn cookie_headers(pair: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("cookie", HeaderValue::from_str(pair).unwrap());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_session_cookie_is_httponly_strict_and_changes_need_the_csrf_guard() {
    let e = common::start(false, |_| {}).await;
    let (s, h, v) = cookie_login(&e, common::ADMIN, common::ADMIN_PASSWORD).await;
    assert_eq!(s, 200, "{v}");
    let (pair, full) = session_pair(&h);
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(full.contains(attr), "{full} lacks {attr}");
    }
    // `__Host-`: the browser keeps it only as set by this host (Secure,
    // Path=/, no Domain), so no sibling site can plant one.
    assert!(pair.starts_with("__Host-anchord_session="), "{full}");
    assert!(!full.to_ascii_lowercase().contains("domain="), "{full}");
    // The same token under the unprefixed name, which any site under the
    // parent domain could set, is not a session.
    let token = pair.split_once('=').unwrap().1;
    assert_eq!(
        me_status(&e, &format!("anchord_session={token}")).await,
        401,
        "an unprefixed session cookie was honoured"
    );
    // No script can read the session: the answer carries no token.
    assert_eq!(v["token"], "", "{v}");
    assert_eq!(v["user"]["username"], common::ADMIN);

    // Reads with the cookie alone.
    let r = e
        .http
        .get(format!("{}/v1/me", e.base))
        .headers(cookie_headers(&pair))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["username"], common::ADMIN);

    let institution = |id: &str| json!({"id": id, "name": "公证处", "kind": "notary"});
    let post = |h: HeaderMap, body: Value| {
        e.http
            .post(format!("{}/v1/institutions", e.base))
            .headers(h)
            .json(&body)
            .send()
    };
    // A change with the cookie but without the header (what a cross-site
    // form sends): 403, and nothing changed.
    let r = post(cookie_headers(&pair), institution("forged-1"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "csrf_failed", "{v}");
    // The header from another origin, or a cross-site fetch: 403.
    let mut h = cookie_headers(&pair);
    h.insert("x-anchord-csrf", HeaderValue::from_static("1"));
    h.insert("origin", HeaderValue::from_static("https://evil.example"));
    let r = post(h, institution("forged-2")).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let mut h = cookie_headers(&pair);
    h.insert("x-anchord-csrf", HeaderValue::from_static("1"));
    h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
    let r = post(h, institution("forged-3")).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let admin = e.admin().await;
    let list = e
        .ok(200, "GET", "/v1/institutions", Some(&admin), None)
        .await;
    assert!(!list.to_string().contains("forged"), "{list}");
    // With the header, from this origin: done.
    let mut h = cookie_headers(&pair);
    h.insert("x-anchord-csrf", HeaderValue::from_static("1"));
    h.insert("origin", HeaderValue::from_str(&e.base).unwrap());
    h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
    let guarded = h;
    let r = post(guarded.clone(), institution("via-cookie"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());

    // Bearer clients are unchanged: no CSRF header needed.
    e.ok(
        201,
        "POST",
        "/v1/institutions",
        Some(&admin),
        Some(institution("via-bearer")),
    )
    .await;
    // A cookie login needs the guard too (no login CSRF from another site).
    let r = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .header("x-anchord-csrf", "1")
        .header("origin", "https://evil.example")
        .json(&json!({"username": common::ADMIN, "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // A Bearer login sets no cookie and answers the token.
    let r = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .json(&json!({"username": common::ADMIN, "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    let v: Value = r.json().await.unwrap();
    assert!(v["token"].as_str().unwrap().len() > 20, "{v}");
    // A wrong password in cookie mode: the usual 401, no cookie.
    let (s, denied, _) = cookie_login(&e, common::ADMIN, "wrong-password-1").await;
    assert_eq!(s, 401);
    assert!(denied.get("set-cookie").is_none());

    // Logout (a change: guarded) revokes the session and clears the cookie.
    let r = e
        .http
        .post(format!("{}/v1/auth/logout", e.base))
        .headers(cookie_headers(&pair))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "logout without the header");
    let r = e
        .http
        .post(format!("{}/v1/auth/logout", e.base))
        .headers(guarded)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, cleared) = session_pair(r.headers());
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(me_status(&e, &pair).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_secure_is_configurable_for_plain_http_hosts() {
    let e = common::start(false, |c| c.session_cookie_secure = false).await;
    let (s, h, _) = cookie_login(&e, common::ADMIN, common::ADMIN_PASSWORD).await;
    assert_eq!(s, 200);
    let (pair, full) = session_pair(&h);
    assert!(!full.contains("Secure"), "{full}");
    // A `__Host-` cookie must be Secure: without it, the plain name.
    assert!(pair.starts_with("anchord_session="), "{full}");
    assert_eq!(me_status(&e, &pair).await, 200);
    assert!(
        full.contains("HttpOnly") && full.contains("SameSite=Strict"),
        "{full}"
    );
}

fn committed_openapi() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/workflow-openapi.json")
}

/// docs/workflow-openapi.json, which the console's typed client is
/// generated from (`npm run gen`), is the document the server serves.
/// Regenerate it with `anchord workflow openapi > docs/workflow-openapi.json`
/// (or this test with `ANCHORD_BLESS=1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_openapi_document_is_the_one_the_server_serves() {
    let e = common::start(false, |_| {}).await;
    let (s, served) = e.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(s.as_u16(), 200);
    let path = committed_openapi();
    if std::env::var_os("ANCHORD_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        committed == served,
        "{} is not what GET /v1/openapi.json serves: regenerate it with \
         `anchord workflow openapi > docs/workflow-openapi.json` (or \
         ANCHORD_BLESS=1 cargo test -p anchord-workflow --test console committed), \
         then `npm run build` in console/ to check the console against it",
        path.display()
    );
}

/// The court's page at `/verify/` fetches a bundle by typed evidence hash
/// from its own origin's `/v1/proofs/{hash}` (console/verify): the workflow
/// answers that route itself, publicly, with the verifier's bundle; before,
/// the route was the console's JSON 404 and the page's fetch-by-hash only
/// worked on the verifier's port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn court_page_fetches_a_bundle_by_hash_from_the_same_origin() {
    let e = common::start(true, |_| {}).await;
    let admin = e.admin().await;
    let product = e.product(&admin).await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let rita = e
        .user(&admin, "rita", "reviewer", json!({"tenant": "bank-a"}))
        .await;
    let v = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "100"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", v["id"]);
    let file = format!("court page {}", anchord_testkit::unique("f")).into_bytes();
    let (s, v) = e
        .upload("PUT", &format!("{pp}/file"), &alice, "a.txt", file)
        .await;
    assert_eq!(s, 200, "{v}");
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    e.ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    e.wait_until("on chain", &pp, &alice, 90, |v| v["status"] == "on_chain")
        .await;
    let own = e
        .ok(200, "GET", &format!("{pp}/proof"), Some(&alice), None)
        .await;
    let hash = own["entry"]["evidence_hash"].as_str().unwrap().to_owned();

    // No session: the bundle, as JSON, the same as the record's own proof.
    let r = e
        .http
        .get(format!("{}/v1/proofs/{hash}", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-type"), "application/json");
    let public: Value = r.json().await.unwrap();
    assert_eq!(public, own);
    let (s, v) = e
        .call(
            "GET",
            &format!("/v1/proofs/{hash}?tenant=bank-a"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Hostile input: a clear 4xx, never the console's page or a 500.
    for (path, want, code) in [
        (format!("/v1/proofs/{hash}?tenant=bank-b"), 404, "not_found"),
        (format!("/v1/proofs/{}", "ab".repeat(32)), 404, "not_found"),
        (format!("/v1/proofs/{}", "ab".repeat(64)), 404, "not_found"),
        (format!("/v1/proofs/{}", &hash[..63]), 400, "bad_request"),
        (format!("/v1/proofs/{}zz", &hash[..62]), 400, "bad_request"),
        (format!("/v1/proofs/{hash}0"), 400, "bad_request"),
        ("/v1/proofs/%00".to_owned(), 400, "bad_request"),
        (
            format!("/v1/proofs/{hash}?tenant=no%20such"),
            422,
            "validation_failed",
        ),
        (format!("/v1/proofs/{hash}?other=1"), 400, "bad_request"),
    ] {
        let (s, v) = e.call("GET", &path, None, None).await;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str()),
            (want, Some(code)),
            "{path}: {v}"
        );
    }
    let (s, _) = e
        .call("POST", &format!("/v1/proofs/{hash}"), None, Some(json!({})))
        .await;
    assert_eq!(s, 405);
}
