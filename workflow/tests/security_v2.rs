//! A second, adversarial review of the workflow v2 surface (issue 15,
//! helper H19), over HTTP against the real services: each test is an
//! attack. Those named after a fix failed on the code before it; the
//! others pin behaviour that was already safe (see the report of H19 and
//! docs/workflow-api.md).
//!
//! - the console's static files: traversal (`..`, encoded, backslashes),
//!   NUL, over-long names, symlinks out of the directory: never a 500, never
//!   a byte from outside, the CSP and `nosniff` on every answer;
//! - cookie sessions: the CSRF guard on every unsafe route of the OpenAPI
//!   document, login CSRF, session fixation, cookie tossing (two session
//!   cookies), a disabled user's cookie;
//! - usernames that differ only in case (an invitee registering `ROOT`);
//! - invitations of a closed contract, and an initiator taking the slot of
//!   the outside party they invited;
//! - search bounds (offset, limit, sort, wildcards);
//! - monitoring scrapes: redirects not followed, huge and endless answers
//!   bounded;
//! - the judicial handover: hostile file names (CR/LF, bidi overrides) in
//!   downloads, JSON and the comparison report, and requests addressed to a
//!   disabled institution.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// ---------------------------------------------------------------------------
// Raw HTTP: paths exactly as written (reqwest normalises `..` and `%2e%2e`).

struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GET `target` (sent byte for byte) from the server at `base`.
async fn raw_get(base: &str, target: &str) -> Raw {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .expect("the server answers")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

// ---------------------------------------------------------------------------
// The console's static files

const SECRET: &str = "H19-SECRET-OUTSIDE-THE-CONSOLE";

/// `root/console` (a built console) and `root/verify` (the court page),
/// with `root/secret.txt` beside them and symlinks from inside to it.
fn console_tree() -> (PathBuf, PathBuf, PathBuf) {
    let root = common::temp_dir("h19_console");
    let console = root.join("console");
    let verify = root.join("verify");
    let outside = root.join("outside");
    for d in [&console.join("assets"), &verify, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(
        console.join("index.html"),
        "<!doctype html><html><head><meta name=\"csp-nonce\" content=\"__CSP_NONCE__\"></head><body>console</body></html>",
    )
    .unwrap();
    std::fs::write(console.join("assets/app-1a2b3c.js"), "console.log(1);\n").unwrap();
    std::fs::write(
        verify.join("index.html"),
        "<!doctype html><html><body>verify</body></html>",
    )
    .unwrap();
    std::fs::write(root.join("secret.txt"), SECRET).unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    let link = |target: &Path, at: PathBuf| std::os::unix::fs::symlink(target, at).unwrap();
    link(&root.join("secret.txt"), console.join("leak.txt"));
    link(
        &root.join("secret.txt"),
        console.join("assets/leak-1a2b3c.js"),
    );
    link(&outside, console.join("linked"));
    link(&root.join("secret.txt"), verify.join("leak.txt"));
    link(&outside, verify.join("linked"));
    (root, console, verify)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_static_paths_stay_inside_the_directory_and_never_answer_500() {
    let (root, console, verify) = console_tree();
    let e = common::start(false, |c| {
        c.console_dir = console.clone();
        c.verify_dir = verify.clone();
    })
    .await;
    let long = "a".repeat(300);
    let deep = "a/".repeat(3000);
    let targets = [
        // Symlinks out of the directory (a file, an asset, a directory).
        "/leak.txt".to_owned(),
        "/assets/leak-1a2b3c.js".to_owned(),
        "/linked/secret.txt".to_owned(),
        "/verify/leak.txt".to_owned(),
        "/verify/linked/secret.txt".to_owned(),
        // Traversal, plain and encoded, slashes and backslashes.
        "/../secret.txt".to_owned(),
        "/%2e%2e/secret.txt".to_owned(),
        "/%2e%2e%2fsecret.txt".to_owned(),
        "/assets/..%2f..%2fsecret.txt".to_owned(),
        "/assets/%2e%2e%2f%2e%2e%2fsecret.txt".to_owned(),
        "/..%5csecret.txt".to_owned(),
        "/assets/..%5c..%5csecret.txt".to_owned(),
        "/assets\\..\\..\\secret.txt".to_owned(),
        "/verify/..%2fsecret.txt".to_owned(),
        "/verify/%2e%2e/%2e%2e/secret.txt".to_owned(),
        "/%2fetc%2fpasswd".to_owned(),
        "//etc/passwd".to_owned(),
        "/assets//etc/passwd".to_owned(),
        "/%252e%252e/secret.txt".to_owned(),
        "/%c0%ae%c0%ae/secret.txt".to_owned(),
        // NUL and other control bytes, encoded.
        "/%00".to_owned(),
        "/index.html%00.js".to_owned(),
        "/assets/app-1a2b3c.js%00".to_owned(),
        "/assets/a%00b.js".to_owned(),
        "/verify/%00.js".to_owned(),
        "/a%0d%0aSet-Cookie:%20x=1.js".to_owned(),
        // Over-long names and paths.
        format!("/{long}.js"),
        format!("/assets/{long}.js"),
        format!("/verify/{long}.js"),
        format!("/{deep}x.js"),
        format!("/assets/{deep}x.js"),
        // A file as a directory.
        "/index.html/x.js".to_owned(),
        "/assets/app-1a2b3c.js/x".to_owned(),
    ];
    for t in &targets {
        let r = raw_get(&e.base, t).await;
        let shown: String = t.chars().take(80).collect();
        assert!(
            r.status < 500,
            "GET {shown}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains(SECRET),
            "GET {shown} read a file outside the directory"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{shown}"
        );
        assert!(r.header("content-security-policy").is_some(), "{shown}");
        if r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
        {
            let csp = r.header("content-security-policy").unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{shown}: {csp}");
        }
        for (k, _) in &r.headers {
            assert!(!k.eq_ignore_ascii_case("set-cookie"), "{shown}");
        }
    }
    // What is inside is still served, under its rules.
    let r = raw_get(&e.base, "/assets/app-1a2b3c.js").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"console.log(1);\n");
    let r = raw_get(&e.base, "/some/route").await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("console"));
    let r = raw_get(&e.base, "/verify/").await;
    assert_eq!(r.status, 200);
    // A huge request line: refused by the server, not a crash.
    let huge = format!("/{}", "b".repeat(200_000));
    let addr = e.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = s
        .write_all(
            format!("GET {huge} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(20)]).into_owned();
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 4"),
        "a 200 KB request line: {head}"
    );
    // The server still serves.
    let r = raw_get(&e.base, "/").await;
    assert_eq!(r.status, 200);
    let _ = std::fs::remove_dir_all(root);
}

// ---------------------------------------------------------------------------
// Cookie sessions

/// A cookie-mode login (as the console sends it): the `name=value` pair.
async fn cookie_session(
    e: &common::Env,
    user: &str,
    password: &str,
    extra: Option<&str>,
) -> String {
    let mut req = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .header("x-anchord-csrf", "1")
        .header("origin", &e.base)
        .json(&json!({"username": user, "password": password}));
    if let Some(c) = extra {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-anchord_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn me_with_cookie(e: &common::Env, cookie: &str) -> (u16, Value) {
    let r = e
        .http
        .get(format!("{}/v1/me", e.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unsafe_route_refuses_a_cookie_without_the_csrf_guard() {
    let e = common::start(false, |_| {}).await;
    let cookie = cookie_session(&e, common::ADMIN, common::ADMIN_PASSWORD, None).await;
    let doc = e.ok(200, "GET", "/v1/openapi.json", None, None).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = {
            let mut out = String::new();
            let mut in_param = false;
            for c in path.chars() {
                match c {
                    '{' => {
                        in_param = true;
                        out.push('1');
                    }
                    '}' => in_param = false,
                    _ if in_param => {}
                    _ => out.push(c),
                }
            }
            out
        };
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            if path == "/v1/auth/login" {
                continue;
            }
            let url = format!("{}{concrete}", e.base);
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            // No header (a cross-site form); the header from another site;
            // a cross-site fetch; a sibling origin.
            let variants: [&[(&str, String)]; 5] = [
                &[],
                &[("origin", e.base.clone())],
                &[
                    ("x-anchord-csrf", "1".into()),
                    ("origin", "https://evil.example".into()),
                ],
                &[
                    ("x-anchord-csrf", "1".into()),
                    ("origin", format!("{}.evil.example", e.base)),
                ],
                &[
                    ("x-anchord-csrf", "1".into()),
                    ("sec-fetch-site", "same-site".into()),
                ],
            ];
            for headers in variants {
                let mut req = e
                    .http
                    .request(m.clone(), &url)
                    .header("cookie", &cookie)
                    .header("content-type", "application/json")
                    .body("{}");
                for (k, v) in headers {
                    req = req.header(*k, v);
                }
                let r = req.send().await.unwrap();
                let s = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(s, 403, "{method} {path} {headers:?}: {v}");
                assert_eq!(v["error"]["code"], "csrf_failed", "{method} {path}: {v}");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} unsafe routes in the document");

    // Login CSRF: a cross-site form cannot log the browser in. Without the
    // header the token is only in the body (which the other site cannot
    // read) and no cookie is set; with it, another origin is refused.
    let r = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .header("origin", "https://evil.example")
        .json(&json!({"username": common::ADMIN, "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    let r = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .header("x-anchord-csrf", "1")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"username": common::ADMIN, "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // A form post (text/plain, what a cross-site form can send) is no JSON.
    let r = e
        .http
        .post(format!("{}/v1/auth/login", e.base))
        .header("content-type", "text/plain")
        .body(format!(
            "{{\"username\": \"{}\", \"password\": \"{}\"}}",
            common::ADMIN,
            common::ADMIN_PASSWORD
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_resist_fixation_tossing_and_die_with_the_account() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    e.user(&admin, "dora", "user", a.clone()).await;
    e.user(&admin, "mallory", "user", a).await;

    // Fixation: a cookie planted before login is neither kept nor honoured.
    let planted = "__Host-anchord_session=planted-by-the-attacker";
    let dora = cookie_session(&e, "dora", &common::password_of("dora"), Some(planted)).await;
    assert_ne!(dora, planted);
    assert_eq!(me_with_cookie(&e, planted).await.0, 401);
    let (s, v) = me_with_cookie(&e, &dora).await;
    assert_eq!((s, v["username"].as_str()), (200, Some("dora")));

    // Tossing: a second session cookie (set for a parent domain or a longer
    // path by a sibling site) must not decide whose session this is.
    let mallory = cookie_session(&e, "mallory", &common::password_of("mallory"), None).await;
    for pair in [format!("{mallory}; {dora}"), format!("{dora}; {mallory}")] {
        let (s, v) = me_with_cookie(&e, &pair).await;
        assert_eq!(s, 401, "two session cookies ({pair}): {v}");
        assert_eq!(v["error"]["code"], "unauthenticated", "{v}");
    }
    // The same cookie twice is still one session.
    assert_eq!(me_with_cookie(&e, &format!("{dora}; {dora}")).await.0, 200);

    // A disabled account's cookie dies at once; re-enabled, it stays dead.
    let users = e.ok(200, "GET", "/v1/users", Some(&admin), None).await;
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "dora")
        .unwrap()["id"]
        .clone();
    e.ok(
        200,
        "POST",
        &format!("/v1/users/{id}/disable"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(me_with_cookie(&e, &dora).await.0, 401);
    e.ok(
        200,
        "POST",
        &format!("/v1/users/{id}/enable"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(me_with_cookie(&e, &dora).await.0, 401);
}

// ---------------------------------------------------------------------------
// Usernames

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_that_differ_only_in_case_are_one_name() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "Alice", "user", a.clone()).await;
    // An administrator cannot create a look-alike...
    for name in ["alice", "ALICE", "ROOT", "Root"] {
        let (s, v) = e
            .call(
                "POST",
                "/v1/users",
                Some(&admin),
                Some(
                    json!({"username": name, "password": common::password_of(name),
                            "role": "user", "tenant": "bank-a"}),
                ),
            )
            .await;
        assert_eq!(s.as_u16(), 409, "{name}: {v}");
    }
    // ...and neither can an invited outside party register one.
    let tid = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "甲方 {{a}}"})),
        )
        .await["id"]
        .clone();
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "合同", "variables": {"a": "x"},
                        "signers": [{"email": "outside@example.com"}]}),
            ),
        )
        .await;
    let token = k["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["ALICE", "rOOt"] {
        let (s, v) = e
            .call(
                "POST",
                "/v1/invitations/register",
                None,
                Some(json!({"token": token, "username": name,
                            "password": common::password_of("outsider")})),
            )
            .await;
        assert_eq!(s.as_u16(), 409, "{name}: {v}");
    }
    // The link still works for a name of their own; logins stay exact.
    e.ok(
        201,
        "POST",
        "/v1/invitations/register",
        None,
        Some(json!({"token": token, "username": "outsider",
                    "password": common::password_of("outsider")})),
    )
    .await;
    let (s, _) = e
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "OUTSIDER", "password": common::password_of("outsider")})),
        )
        .await;
    assert_eq!(s.as_u16(), 401);
}

// ---------------------------------------------------------------------------
// Invitations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_of_a_closed_contract_and_by_the_inviting_bank_are_refused() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let amy = e.user(&admin, "amy", "user", a.clone()).await;
    let bob = e
        .user(&admin, "bob", "user", json!({"tenant": "bank-b"}))
        .await;
    let tid = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "甲方 {{a}}"})),
        )
        .await["id"]
        .clone();
    let new = |signers: Value| json!({"contract_type_id": tid, "title": "合同", "variables": {"a": "x"}, "signers": signers});
    // The inviting bank's own users cannot take the outside party's slot
    // (the initiator holds the link to pass it on).
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(new(json!([{"email": "carol@example.com"}]))),
        )
        .await;
    let token = k["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, t) in [("alice", &alice), ("amy", &amy)] {
        let (s, v) = e
            .call(
                "POST",
                "/v1/invitations/accept",
                Some(t),
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(s.as_u16(), 403, "{who}: {v}");
    }
    // A user of another bank, invited by address, may.
    let v = e
        .ok(
            200,
            "POST",
            "/v1/invitations/accept",
            Some(&bob),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(v["signers"][0]["username"], "bob", "{v}");

    // A refused contract's open invitation is dead: no account is made.
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(new(json!(["amy", {"email": "dave@example.com"}]))),
        )
        .await;
    let token = k["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    e.ok(
        200,
        "POST",
        &format!("/v1/contracts/{}/refuse", k["id"]),
        Some(&amy),
        Some(json!({"reason": "no"})),
    )
    .await;
    let (s, v) = e
        .call(
            "POST",
            "/v1/invitations/preview",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    let (s, v) = e
        .call(
            "POST",
            "/v1/invitations/register",
            None,
            Some(json!({"token": token, "username": "dave", "password": common::password_of("dave")})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    let (s, _) = e
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "dave", "password": common::password_of("dave")})),
        )
        .await;
    assert_eq!(s.as_u16(), 401, "no account was made");
    let (s, v) = e
        .call(
            "POST",
            "/v1/invitations/accept",
            Some(&bob),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
}

// ---------------------------------------------------------------------------
// Search

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_parameters_are_bounded_and_wildcards_are_literal() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let product = e.product(&admin).await;
    for _ in 0..3 {
        e.ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "1"}})),
        )
        .await;
    }
    let long = "9".repeat(5000);
    for q in [
        "offset=10001".to_owned(),
        "offset=-1".to_owned(),
        "limit=0".to_owned(),
        "limit=1001".to_owned(),
        "limit=99999999999999999999".to_owned(),
        "after=0".to_owned(),
        "sort=id;DROP%20TABLE%20workflow.users".to_owned(),
        "order=created_at".to_owned(),
        format!("number={long}"),
        "number=".to_owned(),
        "number=%00".to_owned(),
        "hash=zz".to_owned(),
        "initiator=a%27%20OR%201=1--".to_owned(),
        "field_key=borrower".to_owned(),
        format!("field_key=borrower&field_value={long}"),
        "from=yesterday".to_owned(),
        "status=on_chain%27".to_owned(),
    ] {
        for path in ["/v1/preservations", "/v1/search/contracts"] {
            if path.ends_with("contracts") && q.starts_with("field_") {
                continue;
            }
            let (s, v) = e
                .call("GET", &format!("{path}?{q}"), Some(&alice), None)
                .await;
            assert!(
                s.as_u16() == 400 || s.as_u16() == 422,
                "GET {path}?{}: {s} {v}",
                q.chars().take(60).collect::<String>()
            );
        }
    }
    for q in [
        "number=%25",
        "number=_",
        "number=BQ%25",
        "number=%5C",
        "field_key=borrower&field_value=%25",
    ] {
        let v = e
            .ok(
                200,
                "GET",
                &format!("/v1/preservations?{q}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(
            v.as_array().unwrap().len(),
            0,
            "{q} matched as a wildcard: {v}"
        );
    }
    let v = e
        .ok(
            200,
            "GET",
            "/v1/preservations?number=bq",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(v.as_array().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------
// Monitoring scrapes

/// A listener answering every connection with `answer` (then, with
/// `trickle`, one byte a second forever); counts connections.
async fn fake_instance(
    answer: &'static [u8],
    trickle: bool,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                if s.write_all(answer).await.is_err() {
                    return;
                }
                if trickle {
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if s.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_scrapes_follow_no_redirect_and_bound_size_and_time() {
    // Where a redirect points (it must never be contacted).
    let (elsewhere, elsewhere_hits) =
        fake_instance(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).await;
    let redirect: &'static [u8] = Box::leak(
        format!("HTTP/1.1 302 Found\r\nLocation: {elsewhere}/metrics\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
            .into_boxed_slice(),
    );
    let (redirecting, _) = fake_instance(redirect, false).await;
    // 64 MiB announced, streamed forever: the read stops at its bound.
    let (huge, _) = fake_instance(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 67108864\r\n\r\n",
        true,
    )
    .await;
    // Headers at once, then a byte now and then (slow-loris).
    let (slow, _) = fake_instance(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
    )
    .await;
    let instances = vec![redirecting.clone(), huge.clone(), slow.clone()];
    let e = common::start(false, |c| {
        c.monitor.instances = instances;
        c.monitor.scrape_interval_ms = 200;
        c.monitor.timeout_ms = 1000;
        c.monitor.connect_timeout_ms = 500;
    })
    .await;
    let admin = e.admin().await;
    let started = Instant::now();
    let v = e
        .wait_until(
            "a scrape of every instance",
            "/v1/monitoring/instances",
            &admin,
            60,
            |v| {
                v.as_array()
                    .is_some_and(|a| a.len() == 3 && a.iter().all(|i| i["scraped_at"].is_string()))
            },
        )
        .await;
    for i in v.as_array().unwrap() {
        assert_eq!(i["status"], "down", "{i}");
        assert!(i["scrape_ms"].as_u64().unwrap() < 5_000, "{i}");
    }
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(
        elsewhere_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a redirect was followed"
    );
}

// ---------------------------------------------------------------------------
// Names people read

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_bidi_overrides_or_control_characters_are_refused() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let rlo = "\u{202E}";
    let tid = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "甲方 {{a}}"})),
        )
        .await["id"]
        .clone();
    for (who, path, body, field) in [
        (
            &admin,
            "/v1/organisations",
            json!({"kind": "bank", "name": format!("招商{rlo}行银"), "tenant": "bank-z"}),
            "name",
        ),
        (
            &admin,
            "/v1/institutions",
            json!({"id": "notary-x", "name": format!("公证{rlo}处"), "kind": "notary"}),
            "name",
        ),
        (
            &admin,
            "/v1/products",
            json!({"name": "p\u{2066}x", "channels": ["notarization"],
                   "fields": [{"key": "a", "display_name": "A", "type": "text", "max_length": 5, "required": true}]}),
            "name",
        ),
        (
            &admin,
            "/v1/users",
            json!({"username": "mallory", "password": common::password_of("mallory"), "role": "user",
                   "tenant": "bank-a", "display_name": format!("Bob{rlo}"),}),
            "display_name",
        ),
        (
            &alice,
            "/v1/contracts",
            json!({"contract_type_id": tid, "title": format!("借款{rlo}同合"), "variables": {"a": "x"},
                   "signers": [{"email": "x@example.com"}]}),
            "title",
        ),
        (
            &alice,
            "/v1/contracts",
            json!({"contract_type_id": tid, "title": "借款\r\nBcc: x@evil.example", "variables": {"a": "x"},
                   "signers": [{"email": "x@example.com"}]}),
            "title",
        ),
    ] {
        let (s, v) = e.call("POST", path, Some(who), Some(body)).await;
        assert_eq!(s.as_u16(), 422, "POST {path}: {v}");
        assert!(v["error"]["fields"][field].is_string(), "POST {path}: {v}");
    }

    // An uploaded file's name: overrides and control characters dropped,
    // at most 200 characters; the download's header is one clean line.
    let product = e.product(&admin).await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "1"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", p["id"]);
    // CR/LF inside the part's header: the envelope is malformed (400), or
    // the name is cleaned; never a header of the download.
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "a\r\nX-Injected: 1.wav",
            b"bytes".to_vec(),
        )
        .await;
    assert!(s.as_u16() == 400 || s.as_u16() == 200, "{s} {v}");
    let hostile = format!("invoice{rlo}fdp.exe\u{2067}\t{}", "长".repeat(300));
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            &hostile,
            b"bytes".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    let name = v["file"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("invoicefdp.exe"), "{name:?}");
    assert!(name.chars().count() <= 200, "{}", name.chars().count());
    assert!(
        !name
            .chars()
            .any(|c| c.is_control() || ('\u{2066}'..='\u{2069}').contains(&c) || c == '\u{202E}'),
        "{name:?}"
    );
    let r = e
        .http
        .get(format!("{}{pp}/file", e.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-injected").is_none());
    let cd = r
        .headers()
        .get_all("content-disposition")
        .iter()
        .collect::<Vec<_>>();
    assert_eq!(cd.len(), 1);
    let cd = cd[0].to_str().unwrap();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert!(
        !cd.contains("%E2%80%AE") && !cd.contains("%E2%81%A7"),
        "{cd}"
    );
    assert_eq!(
        r.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
}

// ---------------------------------------------------------------------------
// The judicial handover

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_documents_survive_hostile_names_and_disabled_institutions_take_nothing() {
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
    let rita = e.user(&admin, "rita", "reviewer", a).await;
    let nora = e
        .user(
            &admin,
            "nora",
            "institution",
            json!({"institution_id": "notary-1"}),
        )
        .await;
    // A preservation whose file is named with an emoji (no glyph in the
    // certificate font: the report was a 500 on this session's tree; now
    // drawn as U+FFFD or `?`) and a right-to-left override (dropped from
    // the name).
    let product = e.product(&admin).await;
    let p = e
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": {"borrower": "张三😀", "amount": "100"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", p["id"]);
    let (s, v) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "录音😀\u{202E}vaw.exe",
            b"evidence".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    e.ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    e.wait_until("the preservation on chain", &pp, &alice, 90, |v| {
        v["status"] == "on_chain"
    })
    .await;
    let apply = |institution: &str, evidence: &str| {
        json!({"kind": "notarization", "subject_kind": "preservation", "subject_id": p["id"],
               "institution_id": institution, "evidence": evidence})
    };

    // A disabled institution takes no request (and no evidence).
    let orgs = e
        .ok(200, "GET", "/v1/organisations", Some(&admin), None)
        .await;
    let n2 = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["institution_id"] == "notary-2")
        .unwrap()["id"]
        .clone();
    e.ok(
        200,
        "POST",
        &format!("/v1/organisations/{n2}/disable"),
        Some(&admin),
        None,
    )
    .await;
    let (s, v) = e
        .call(
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(apply("notary-2", "authorised")),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["institution_id"].is_string(), "{v}");

    // The preserved file, authorised: downloaded under a clean header,
    // compared, reported in a PDF despite the emoji.
    let r = e
        .ok(
            201,
            "POST",
            "/v1/judicial-requests",
            Some(&alice),
            Some(apply("notary-1", "authorised")),
        )
        .await;
    let rp = format!("/v1/judicial-requests/{}", r["id"]);
    let resp = e
        .http
        .get(format!("{}{rp}/evidence", e.base))
        .bearer_auth(&nora)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cd = resp
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!cd.contains("%E2%80%AE"), "{cd}");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"evidence");
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
    let started = Instant::now();
    let (status, ctype, pdf) = e.get_bytes(&format!("{rp}/comparison-report"), &nora).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(ctype, "application/pdf");
    assert!(started.elapsed() < Duration::from_secs(30));
    let dir = anchord_testkit::process::temp_dir("h19_report");
    let file = dir.join("report.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = std::process::Command::new(anchord_testkit::process::peer("pdftotext"))
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("结果一致") || text.contains("一致"), "{text}");
    assert!(!text.contains('\u{202E}'), "{text}");
    let _ = std::fs::remove_dir_all(dir);
    // The preservation certificate too.
    let (status, _, pdf) = e.get_bytes(&format!("{pp}/certificate"), &alice).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
}

// ---------------------------------------------------------------------------
// Across organisations

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_records_users_and_inbox_are_out_of_reach() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let b = json!({"tenant": "bank-b"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    e.user(&admin, "rita", "reviewer", a).await;
    let bob = e.user(&admin, "bob", "user", b.clone()).await;
    let ben = e.user(&admin, "ben", "reviewer", b).await;
    let orgs = e
        .ok(200, "GET", "/v1/organisations", Some(&admin), None)
        .await;
    let org_a = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["tenant"] == "bank-a")
        .unwrap()["id"]
        .clone();
    let users = e.ok(200, "GET", "/v1/users", Some(&admin), None).await;
    let id_of = |name: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .clone()
    };
    let (alice_id, rita_id) = (id_of("alice"), id_of("rita"));
    let pw = json!({"password": common::password_of("reset-by-bank-b")});
    for (who, token) in [("bob", &bob), ("ben", &ben)] {
        for (method, path, body) in [
            ("GET", format!("/v1/organisations/{org_a}"), None),
            ("GET", format!("/v1/organisations/{org_a}/users"), None),
            (
                "POST",
                format!("/v1/organisations/{org_a}/users"),
                Some(
                    json!({"username": "mole", "password": common::password_of("mole"), "role": "user"}),
                ),
            ),
            (
                "PATCH",
                format!("/v1/organisations/{org_a}"),
                Some(json!({"name": "x"})),
            ),
            ("POST", format!("/v1/organisations/{org_a}/disable"), None),
            (
                "PATCH",
                format!("/v1/users/{alice_id}"),
                Some(json!({"display_name": "x"})),
            ),
            (
                "PATCH",
                format!("/v1/users/{rita_id}"),
                Some(json!({"role": "user"})),
            ),
            ("POST", format!("/v1/users/{alice_id}/disable"), None),
            ("POST", format!("/v1/users/{alice_id}/enable"), None),
            (
                "PUT",
                format!("/v1/users/{alice_id}/password"),
                Some(pw.clone()),
            ),
            ("DELETE", format!("/v1/users/{alice_id}/sessions"), None),
        ] {
            let (s, v) = e.call(method, &path, Some(token), body).await;
            assert_eq!(s.as_u16(), 403, "{who} {method} {path}: {v}");
        }
    }
    // Nothing changed: alice still logs in and works.
    e.ok(200, "GET", "/v1/me", Some(&alice), None).await;
    // Inboxes: only the kinds of the caller's role, bounded to its own.
    let (s, _) = e
        .call("GET", "/v1/inbox/judicial_requests", Some(&bob), None)
        .await;
    assert_eq!(s.as_u16(), 403);
    let (s, _) = e
        .call("GET", "/v1/inbox/..%2f..%2fusers", Some(&bob), None)
        .await;
    assert!(s.as_u16() == 404 || s.as_u16() == 400, "{s}");
    // Another bank's contracts are not found by search.
    let tid = e
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "甲方 {{a}}"})),
        )
        .await["id"]
        .clone();
    let k = e
        .ok(
            201,
            "POST",
            "/v1/contracts",
            Some(&alice),
            Some(
                json!({"contract_type_id": tid, "title": "合同", "variables": {"a": "x"},
                        "signers": ["rita", {"email": "carol@example.com"}]}),
            ),
        )
        .await;
    let token = k["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for t in [&bob, &ben] {
        let v = e
            .ok(200, "GET", "/v1/search/contracts?number=HT", Some(t), None)
            .await;
        assert_eq!(v.as_array().unwrap().len(), 0, "{v}");
        let (s, _) = e
            .call("GET", &format!("/v1/contracts/{}", k["id"]), Some(t), None)
            .await;
        assert_eq!(s.as_u16(), 403);
    }
    // The invitation token is stored nowhere but as its hash: not in the
    // audit chain, a webhook delivery or a status transition. (With mail
    // or SMS on, the invitee's own message in the outbox carries the link.)
    e.ok(
        201,
        "POST",
        "/v1/invitations/register",
        None,
        Some(
            json!({"token": token, "username": "carol", "password": common::password_of("carol")}),
        ),
    )
    .await;
    let c = e.db.client().await;
    for table in [
        "workflow.audit_log",
        "workflow.webhook_deliveries",
        "workflow.status_transitions",
        "workflow.contract_invitations",
    ] {
        let n: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"),
                &[&token],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "the token is stored in {table}");
    }
    // A disabled organisation's users are no signers (they cannot log in:
    // the contract could never be signed).
    let new = json!({"contract_type_id": tid, "title": "跨机构", "variables": {"a": "x"},
                     "signers": [{"username": "bob", "organisation": "bank-b"}]});
    e.ok(
        201,
        "POST",
        "/v1/contracts",
        Some(&alice),
        Some(new.clone()),
    )
    .await;
    let org_b = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["tenant"] == "bank-b")
        .unwrap()["id"]
        .clone();
    e.ok(
        200,
        "POST",
        &format!("/v1/organisations/{org_b}/disable"),
        Some(&admin),
        None,
    )
    .await;
    let (s, v) = e
        .call("POST", "/v1/contracts", Some(&alice), Some(new))
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert!(v["error"]["fields"]["signers[0]"].is_string(), "{v}");
}

// ---------------------------------------------------------------------------
// Documents from hostile text

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_many_long_right_to_left_fields_renders_in_bounded_time() {
    let e = common::start(true, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a).await;
    const FIELDS: usize = 60;
    const CHARS: usize = 4000;
    let fields: Vec<Value> = (0..FIELDS)
        .map(|i| {
            json!({"key": format!("f{i}"), "display_name": format!("字段 {i}"), "type": "text",
                   "max_length": 4096, "required": true, "disclose_on_certificate": true})
        })
        .collect();
    let product = e
        .ok(
            201,
            "POST",
            "/v1/products",
            Some(&admin),
            Some(json!({"name": "长字段 long fields", "channels": ["notarization"], "fields": fields})),
        )
        .await["id"]
        .clone();
    // Arabic (right to left), combining marks, CJK, an emoji, Latin.
    let unit = "مرحبا\u{0301}\u{0301}张三😀W";
    let value: String = unit.chars().cycle().take(CHARS).collect();
    let values: serde_json::Map<String, Value> = (0..FIELDS)
        .map(|i| (format!("f{i}"), Value::String(value.clone())))
        .collect();
    let (s, v) = e
        .call(
            "POST",
            "/v1/preservations",
            Some(&alice),
            Some(json!({"product_id": product, "fields": values})),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{v}");
    let pp = format!("/v1/preservations/{}", v["id"]);
    let (s, _) = e
        .upload(
            "PUT",
            &format!("{pp}/file"),
            &alice,
            "long.bin",
            b"long".to_vec(),
        )
        .await;
    assert_eq!(s.as_u16(), 200);
    e.ok(200, "POST", &format!("{pp}/submit"), Some(&alice), None)
        .await;
    e.ok(200, "POST", &format!("{pp}/approve"), Some(&rita), None)
        .await;
    e.wait_until("the preservation on chain", &pp, &alice, 90, |v| {
        v["status"] == "on_chain"
    })
    .await;
    let started = Instant::now();
    let (status, ctype, pdf) = e.get_bytes(&format!("{pp}/certificate"), &alice).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(ctype, "application/pdf");
    eprintln!(
        "certificate of {FIELDS} fields x {CHARS} characters: {} bytes in {took:?} (shared cores)",
        pdf.len()
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(pdf.len() < 64 << 20, "{} bytes", pdf.len());
    let (s, _) = e
        .call("GET", &format!("{pp}/certificate.json"), Some(&alice), None)
        .await;
    assert_eq!(s.as_u16(), 200);
}

/// The contract list's exact `number` filter reached PostgreSQL unchecked:
/// a NUL (`?number=%00`, found by schemathesis) was a 500. Control
/// characters and over-long values are now a 422 naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_number_filter_refuses_control_characters() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let long = "A".repeat(65);
    for bad in ["%00", "a%0Ab", "%7F", "", long.as_str()] {
        let (s, v) = e
            .call(
                "GET",
                &format!("/v1/contracts?number={bad}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(s.as_u16(), 422, "number={bad}: {v}");
        assert!(v["error"]["fields"]["number"].is_string(), "{v}");
    }
    let (s, v) = e
        .call(
            "GET",
            "/v1/contracts?number=HT0000000001",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{v}");
}

// ---------------------------------------------------------------------------
// H26: polish left open by the last closing note.

/// Every word's right edge (`xMax`, points) in the PDF, read with poppler's
/// `pdftotext -bbox`, and the page width.
fn pdf_word_right_edges(pdf: &[u8]) -> (Vec<(f64, String)>, f64) {
    let dir = anchord_testkit::process::temp_dir("wf_bbox");
    let file = dir.join("doc.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new(anchord_testkit::process::peer("pdftotext"))
        .arg("-bbox")
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftotext -bbox: {out:?}");
    let _ = std::fs::remove_dir_all(dir);
    let html = String::from_utf8_lossy(&out.stdout).into_owned();
    let attr = |tag: &str, name: &str| -> f64 {
        let at = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        tag[at..].split('"').next().unwrap().parse().unwrap()
    };
    let page = html.split("<page ").nth(1).unwrap();
    let page_width = attr(page, "width");
    let words = html
        .split("<word ")
        .skip(1)
        .map(|w| {
            let text = w.split('>').nth(1).unwrap().split('<').next().unwrap();
            (attr(w, "xMax"), text.to_owned())
        })
        .collect();
    (words, page_width)
}

/// Certificate lines longer than the A4 text width (a 300-character file
/// name, hashes, a long Chinese organisation name) ran off the page: they
/// are wrapped by measured glyph width, every character kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_lines_wrap_inside_the_page_and_keep_every_character() {
    let e = common::start(true, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let rita = e.user(&admin, "rita", "reviewer", a).await;
    let org: String =
        "中华人民共和国广东省深圳市南山区科技园数字经济产业促进会电子数据保全服务中心"
            .chars()
            .cycle()
            .take(150)
            .collect();
    let product = e
        .ok(
            201,
            "POST",
            "/v1/products",
            Some(&admin),
            Some(
                json!({"name": "长名称 long names", "channels": ["notarization"], "fields": [
                {"key": "org", "display_name": "委托机构 Organisation", "type": "text",
                 "max_length": 400, "required": true, "disclose_on_certificate": true}]}),
            ),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // Words, then a long run without any break opportunity.
    let name: String = format!(
        "催收录音 call recording of the borrower {}",
        "0123456789abcdef".repeat(20)
    )
    .chars()
    .take(300)
    .collect();
    assert_eq!(name.chars().count(), 300);
    let v = e
        .on_chain_preservation(
            &alice,
            &rita,
            product,
            json!({"org": org}),
            &name,
            b"long names".to_vec(),
        )
        .await;
    // The name as stored (uploads keep at most 200 characters of it).
    let stored = v["file"]["name"].as_str().unwrap().to_owned();
    assert!(
        name.starts_with(&stored) && stored.chars().count() >= 200,
        "{v}"
    );
    let pp = format!("/v1/preservations/{}", v["id"]);
    let (status, _, pdf) = e.get_bytes(&format!("{pp}/certificate"), &alice).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));

    // Every character is there, in order (line breaks aside).
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let text = squeeze(&common::pdf_text(&pdf));
    for (what, want) in [
        ("file name", stored.as_str()),
        ("organisation", org.as_str()),
        ("file hash", v["file"]["sha256"].as_str().unwrap()),
    ] {
        assert!(
            text.contains(&squeeze(want)),
            "the certificate lost part of the {what} {want:?}:\n{text}"
        );
    }
    // No word runs past the frame's right edge (x = 559 on a 595 pt page).
    let (words, page_width) = pdf_word_right_edges(&pdf);
    assert!((page_width - 595.0).abs() < 1.0, "{page_width}");
    assert!(words.len() > 20, "{words:?}");
    let over: Vec<_> = words.iter().filter(|(x, _)| *x > 559.5).collect();
    assert!(over.is_empty(), "words past the frame: {over:?}");
}

/// `GET /v1/institutions` answers each institution's `enabled` state:
/// callers who pick one see only the enabled ones; administrators see
/// every one, a disabled organisation's with `enabled: false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn institutions_are_listed_to_applicants_only_while_enabled() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    for id in ["notary-1", "notary-2"] {
        e.ok(
            201,
            "POST",
            "/v1/institutions",
            Some(&admin),
            Some(json!({"id": id, "name": format!("公证处 {id}"), "kind": "notary", "fee_cents": 100})),
        )
        .await;
    }
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let orgs = e
        .ok(200, "GET", "/v1/organisations", Some(&admin), None)
        .await;
    let n2 = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["institution_id"] == "notary-2")
        .unwrap()["id"]
        .clone();
    e.ok(
        200,
        "POST",
        &format!("/v1/organisations/{n2}/disable"),
        Some(&admin),
        None,
    )
    .await;
    let listed = |v: Value| -> Vec<(String, Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_owned(), i["enabled"].clone()))
            .collect()
    };
    let for_alice = e
        .ok(200, "GET", "/v1/institutions", Some(&alice), None)
        .await;
    assert_eq!(
        listed(for_alice),
        vec![("notary-1".to_owned(), json!(true))]
    );
    let for_admin = e
        .ok(200, "GET", "/v1/institutions", Some(&admin), None)
        .await;
    assert_eq!(
        listed(for_admin),
        vec![
            ("notary-1".to_owned(), json!(true)),
            ("notary-2".to_owned(), json!(false))
        ]
    );
    // Enabled again, it is offered again.
    e.ok(
        200,
        "POST",
        &format!("/v1/organisations/{n2}/enable"),
        Some(&admin),
        None,
    )
    .await;
    let for_alice = e
        .ok(200, "GET", "/v1/institutions", Some(&alice), None)
        .await;
    assert_eq!(listed(for_alice).len(), 2);
}

/// `GET /v1/me/signing-key`: 404 `no_signing_key` before a key is
/// registered; then the caller's own key, its fingerprint and when it was
/// registered (never another user's, never the sealed seed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_registered_signing_key_can_be_read_back() {
    let e = common::start(false, |_| {}).await;
    let admin = e.admin().await;
    let a = json!({"tenant": "bank-a"});
    let alice = e.user(&admin, "alice", "user", a.clone()).await;
    let bob = e.user(&admin, "bob", "user", a).await;
    for who in [&alice, &bob] {
        let (s, v) = e.call("GET", "/v1/me/signing-key", Some(who), None).await;
        assert_eq!(s.as_u16(), 404, "{v}");
        assert_eq!(v["error"]["code"], "no_signing_key", "{v}");
    }
    let put = e
        .ok(
            200,
            "PUT",
            "/v1/me/signing-key",
            Some(&alice),
            Some(json!({"custody": "platform"})),
        )
        .await;
    let got = e
        .ok(200, "GET", "/v1/me/signing-key", Some(&alice), None)
        .await;
    let pk = put["public_key"].as_str().unwrap();
    assert_eq!(got["public_key"], pk, "{got}");
    assert_eq!(got["custody"], "platform");
    let fp = format!(
        "SHA256:{}",
        hex::encode(anchord_core::HashSuite::Sha256.digest(&hex::decode(pk).unwrap()))
    );
    assert_eq!(got["key_fingerprint"], fp.as_str(), "{got}");
    let at = got["registered_at"].as_str().unwrap();
    assert!(at.ends_with('Z') && at.len() >= 20, "{got}");
    assert_eq!(
        got.as_object().unwrap().len(),
        4,
        "custody, public_key, key_fingerprint, registered_at only: {got}"
    );
    // Bob still has none.
    let (s, _) = e.call("GET", "/v1/me/signing-key", Some(&bob), None).await;
    assert_eq!(s.as_u16(), 404);
    // Administrators sign nothing: 403, as for registering.
    let (s, _) = e
        .call("GET", "/v1/me/signing-key", Some(&admin), None)
        .await;
    assert_eq!(s.as_u16(), 403);
}

/// A 429's `Retry-After`: whole seconds, at least 1.
fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .filter(|s| *s >= 1)
}

/// The invitation routes answered 429 without `Retry-After` when every
/// slot of their share of the pool was taken: held here by a request
/// stuck behind a lock on the invitations table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_routes_answer_429_with_retry_after_when_their_slots_are_taken() {
    // A pool of 2: one invitation slot.
    let e = common::start_pool(false, common::SUITE, 2, |_| {}).await;
    let db = e.db.client().await;
    db.batch_execute("BEGIN; LOCK TABLE workflow.contract_invitations IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let token = hex::encode(common::rand_bytes());
    let post = |path: &'static str, body: Value| {
        let (http, base) = (e.http.clone(), e.base.clone());
        async move {
            http.post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // This one takes the slot and waits on the lock.
    let holder = tokio::spawn(post("/v1/invitations/preview", json!({"token": token})));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let others = [
        ("/v1/invitations/preview", json!({"token": token})),
        (
            "/v1/invitations/register",
            json!({"token": token, "username": "outsider", "password": common::password_of("outsider")}),
        ),
    ];
    for (path, body) in others {
        let r = post(path, body).await;
        assert_eq!(r.status().as_u16(), 429, "{path}");
        let after = retry_after(&r);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "rate_limited", "{path}: {v}");
        assert!(after.is_some(), "{path}: 429 without Retry-After: {v}");
    }
    db.batch_execute("ROLLBACK").await.unwrap();
    // The held request finishes (an unknown token).
    assert_eq!(holder.await.unwrap().status().as_u16(), 404);
}

/// Every route of the OpenAPI document, from an address over its limits
/// (logins, changes, requests without a session), answers 429 with
/// `Retry-After` (whole seconds, at least 1); only the document itself is
/// not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rate_limited_route_answers_429_with_retry_after() {
    let e = common::start(false, |c| {
        c.client_ip_header = "x-forwarded-for".into();
        c.login_per_ip_per_min = 1;
        c.writes_per_ip_per_min = 1;
        c.anonymous_per_ip_per_min = 1;
    })
    .await;
    let doc = e.ok(200, "GET", "/v1/openapi.json", None, None).await;
    let send = |m: &str, path: &str, body: Option<Value>| {
        let mut r = e
            .http
            .request(m.parse().unwrap(), format!("{}{path}", e.base))
            .header("x-forwarded-for", "10.9.9.9");
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    // Use up each limit of 10.9.9.9 once.
    send("GET", "/v1/me", None).await.unwrap();
    send(
        "POST",
        "/v1/auth/login",
        Some(json!({"username": "x", "password": "y"})),
    )
    .await
    .unwrap();
    send("POST", "/v1/auth/logout", Some(json!({})))
        .await
        .unwrap();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "1")
            .replace("{key}", "borrower")
            .replace("{hash}", &"ab".repeat(32));
        let concrete = concrete
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let m = method.to_ascii_uppercase();
            if path == "/v1/openapi.json"
                || !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str())
            {
                continue;
            }
            let body = (m != "GET" && m != "HEAD").then(|| json!({}));
            let r = send(&m, &concrete, body).await.unwrap();
            assert_eq!(r.status().as_u16(), 429, "{m} {path}");
            assert!(
                retry_after(&r).is_some(),
                "{m} {path}: 429 without a Retry-After of at least 1 s"
            );
            walked += 1;
        }
    }
    assert!(walked >= 50, "only {walked} operations walked");
}

/// Whether `s` begins with a CJK ideograph (Simplified Chinese first).
fn starts_in_chinese(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| matches!(u32::from(c), 0x4E00..=0x9FFF))
}

/// Notification texts were English first: the mail of a kind (a
/// preservation awaiting review) and every kind's description now read
/// Simplified Chinese first, English after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_texts_are_chinese_first_with_english_after() {
    let e = common::start(false, |c| {
        // Mail on; the relay is never reached (the mail stays queued).
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = 9;
        c.smtp.from = "noreply@anchord.test".into();
        c.smtp.tls = anchord_workflow::config::SmtpTls::None;
        c.smtp.link_base = "https://console.anchord.test/".into();
    })
    .await;
    let admin = e.admin().await;
    let alice = e
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    e.user(
        &admin,
        "rita",
        "reviewer",
        json!({"tenant": "bank-a", "email": "rita@bank-a.test"}),
    )
    .await;
    let product = e.product(&admin).await;
    let p = e
        .submitted_preservation(
            &alice,
            product,
            json!({"borrower": "张三", "amount": "100"}),
            "call.wav",
            b"call".to_vec(),
        )
        .await;
    let number = p["number"].as_str().unwrap().to_owned();
    let db = e.db.client().await;
    let row = db
        .query_one(
            "SELECT subject, body FROM workflow.mail_outbox
              WHERE kind = 'preservation.awaiting_review' AND recipient = 'rita@bank-a.test'",
            &[],
        )
        .await
        .unwrap();
    let (subject, body): (String, String) = (row.get(0), row.get(1));
    assert!(
        subject.contains("保全待审核") && subject.contains(&number),
        "{subject}"
    );
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        starts_in_chinese(lines[0])
            && lines[0].contains(&number)
            && lines[0].contains("等待您审核"),
        "the first line is Chinese: {body}"
    );
    assert!(
        lines[1].contains("awaits your review"),
        "English after: {body}"
    );
    let footer = body.split("\n--\n").nth(1).unwrap();
    assert!(
        starts_in_chinese(footer.trim_start_matches("Anchord。")),
        "{body}"
    );

    // Every kind's description, as the settings screen shows them.
    let n = e
        .ok(200, "GET", "/v1/me/notifications", Some(&alice), None)
        .await;
    let d = n["descriptions"].as_object().unwrap();
    assert_eq!(d.len(), 7, "{n}");
    for (kind, text) in d {
        let text = text.as_str().unwrap();
        assert!(
            starts_in_chinese(text) && text.contains(" (") && text.ends_with(')'),
            "{kind}: {text:?} is not Chinese first with English after"
        );
    }
}
