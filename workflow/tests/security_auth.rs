//! Issue 12, account and request security, attacked over HTTP against the
//! real services: the pool freeze by concurrent logins (flaw 1), lockout
//! beaten by concurrency (7), username enumeration (10), rate limits and
//! the anonymous audit noise (11), password strength, `create-admin`'s and
//! creations' audit rows (13), security headers, account management and
//! the session purge.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN, ADMIN_PASSWORD, Env, SUITE, start, start_pool};
use serde_json::{Value, json};

fn login_body(user: &str, password: &str) -> Value {
    json!({"username": user, "password": password})
}

async fn audit_rows(env: &Env, sql_where: &str) -> Vec<(String, String, String)> {
    let c = env.db.client().await;
    c.query(
        &format!(
            "SELECT action, object, detail FROM workflow.audit_log WHERE {sql_where} ORDER BY id"
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn audit_count(env: &Env) -> i64 {
    let c = env.db.client().await;
    c.query_one("SELECT count(*) FROM workflow.audit_log", &[])
        .await
        .unwrap()
        .get(0)
}

/// Flaw 1: fifty concurrent logins (wrong and right passwords for one known
/// user) on a pool of two connections: none waits for the pool, another
/// user's requests are served meanwhile, each within eight times one login
/// measured alone in the same run (not a wall-clock constant: a slow or
/// shared CI machine slows both alike), and every attempt has its audit
/// row. Before the fix a login held one connection and took a second for
/// its audit row: a dozen concurrent logins froze the pool until its
/// timeout (503s, lost audit rows), so another user's request waited
/// behind the queued logins, about 25 logins' time on a pool of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_logins_keep_a_two_connection_pool_responsive() {
    let env = start_pool(false, SUITE, 2, |c| {
        c.lockout_threshold = 1000;
    })
    .await;
    assert_eq!(env.pool, 2);
    let admin = env.admin().await;
    let other = env
        .user(&admin, "other", "user", json!({"tenant": "bank-a"}))
        .await;
    env.user(&admin, "victim", "user", json!({"tenant": "bank-a"}))
        .await;
    let right = common::password_of("victim");
    // One login alone, the slowest of three (in this run, on this machine):
    // the unit the probes below are measured in.
    let mut single = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        env.login("victim", &right).await;
        single = single.max(t.elapsed());
    }
    let before: i64 = audit_rows(&env, "action = 'auth.login'").await.len() as i64;
    let logins = (0..50).map(|i| {
        let (http, base) = (env.http.clone(), env.base.clone());
        let password = if i % 5 == 0 {
            right.clone()
        } else {
            format!("wrong-guess-{i}")
        };
        tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/auth/login"))
                .json(&login_body("victim", &password))
                .send()
                .await
                .unwrap();
            (i % 5 == 0, r.status().as_u16())
        })
    });
    let logins: Vec<_> = logins.collect();
    // Meanwhile another user's requests.
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    let started = Instant::now();
    while !logins.iter().all(|h| h.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        let t = Instant::now();
        env.ok(200, "GET", "/v1/me", Some(&other), None).await;
        slowest = slowest.max(t.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ok = 0;
    for h in logins {
        let (right, status) = h.await.unwrap();
        assert_eq!(
            status,
            if right { 200 } else { 401 },
            "right password: {right}"
        );
        ok += usize::from(right);
    }
    eprintln!(
        "50 logins in {:.2} s; one login alone {:.0} ms; {probes} probes of another user, slowest {:.0} ms",
        started.elapsed().as_secs_f64(),
        single.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0
    );
    assert_eq!(ok, 10);
    assert!(probes >= 3, "the probe ran only {probes} times");
    // A probe needs no password hash: it waits for no login unless the
    // logins hold the pool. Eight logins' time (and never less than the
    // half second this test once demanded outright) is far above a probe
    // that waits for nothing and far below one queued behind the storm
    // (25 logins' time on two connections, or the pool's timeout).
    let bound = (single * 8).max(Duration::from_millis(500));
    assert!(
        slowest < bound,
        "another user's request took {slowest:?} during the logins (one login alone: {single:?}, bound {bound:?}): it waited for the pool"
    );
    let after = audit_rows(&env, "action = 'auth.login'").await.len() as i64;
    assert_eq!(after - before, 50, "one audit row per attempt");
    let v = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
}

/// Flaw 7: attempts are counted before the password is checked. Seven
/// concurrent wrong guesses against a threshold of five check at most five
/// passwords, and a concurrent right password does not clear the lock they
/// reached. Before the fix all seven were checked and the right password
/// reset the counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_cannot_beat_the_lockout() {
    let env = start(false, |c| {
        c.lockout_threshold = 5;
        c.lockout_s = 600;
    })
    .await;
    let admin = env.admin().await;
    env.user(&admin, "carol", "user", json!({"tenant": "bank-a"}))
        .await;
    let right = common::password_of("carol");
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let (http, base) = (env.http.clone(), env.base.clone());
            let password = if i == 3 {
                right.clone()
            } else {
                format!("guess-number-{i}")
            };
            tokio::spawn(async move {
                http.post(format!("{base}/v1/auth/login"))
                    .json(&login_body("carol", &password))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for a in attempts {
        let s = a.await.unwrap();
        assert!(s == 200 || s == 401, "{s}");
    }
    let rows = audit_rows(
        &env,
        "action = 'auth.login' AND username = 'carol' AND result = 'denied'",
    )
    .await;
    let checked_wrong = rows
        .iter()
        .filter(|r| r.2.starts_with("wrong password"))
        .count();
    assert!(
        checked_wrong <= 5,
        "{checked_wrong} wrong passwords were checked against a threshold of 5: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.2 == "account locked"),
        "later guesses were refused unchecked: {rows:?}"
    );
    // The lock holds, for the right password too.
    let (s, v) = env
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login_body("carol", &right)),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    let c = env.db.client().await;
    let locked: bool = c
        .query_one(
            "SELECT locked_until > now() FROM workflow.users WHERE username = 'carol'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(locked);
    // An administrator's reset clears it.
    let id = c
        .query_one(
            "SELECT id FROM workflow.users WHERE username = 'carol'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    env.ok(
        200,
        "PUT",
        &format!("/v1/users/{id}/password"),
        Some(&admin),
        Some(json!({"new_password": "carol-Reset-horse-91"})),
    )
    .await;
    env.login("carol", "carol-Reset-horse-91").await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Flaw 10: an unknown user, a wrong password, a locked and a disabled
/// account get the same status and body, after comparable work (a dummy
/// hash for unknown users). Before the fix unknown users answered ten
/// times faster and locked accounts got 423 with the unlock time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_indistinguishable() {
    let env = start(false, |c| {
        c.lockout_threshold = 3;
        c.lockout_s = 600;
    })
    .await;
    let admin = env.admin().await;
    env.user(&admin, "known", "user", json!({"tenant": "bank-a"}))
        .await;
    env.user(&admin, "locky", "user", json!({"tenant": "bank-a"}))
        .await;
    let gone = env
        .ok(
            201,
            "POST",
            "/v1/users",
            Some(&admin),
            Some(json!({"username": "gone", "password": common::password_of("gone"), "role": "user", "tenant": "bank-a"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    env.ok(
        200,
        "POST",
        &format!("/v1/users/{gone}/disable"),
        Some(&admin),
        None,
    )
    .await;
    for i in 0..3 {
        env.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login_body("locky", &format!("bad-{i}"))),
        )
        .await;
    }
    let mut answers = Vec::new();
    for body in [
        login_body("nobody-here", "some-password-1"),
        login_body("known", "some-password-1"),
        login_body("locky", &common::password_of("locky")),
        login_body("gone", &common::password_of("gone")),
        login_body("not a valid name!", "x"),
    ] {
        let r = env
            .http
            .post(format!("{}/v1/auth/login", env.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        answers.push((body["username"].clone(), status, text));
    }
    for a in &answers {
        assert_eq!((a.1, &a.2), (answers[0].1, &answers[0].2), "{answers:?}");
    }
    assert_eq!(answers[0].1, 401);
    assert!(!answers[2].2.contains("until"), "{answers:?}");
    // Comparable time: medians of unknown and known-user failures.
    let mut unknown = Vec::new();
    let mut known = Vec::new();
    for i in 0..9 {
        for (who, times) in [("ghost-user", &mut unknown), ("known", &mut known)] {
            let t = Instant::now();
            let (s, _) = env
                .call(
                    "POST",
                    "/v1/auth/login",
                    None,
                    Some(login_body(who, &format!("wrong-{i}"))),
                )
                .await;
            times.push(t.elapsed());
            assert_eq!(s, 401);
        }
        // Stay under the known user's lockout threshold.
        if i % 2 == 1 {
            let c = env.db.client().await;
            c.execute(
                "UPDATE workflow.users SET failed_logins = 0 WHERE username = 'known'",
                &[],
            )
            .await
            .unwrap();
        }
    }
    let (u, k) = (median(unknown), median(known));
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    eprintln!("median failed login: unknown {u:?}, known {k:?} (ratio {ratio:.2})");
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {u:?} vs known {k:?}: the time tells whether a user exists"
    );
}

/// Flaw 11: per-address and per-account login limits, per-user write
/// limits and the anonymous limit answer 429 with `Retry-After`; a limit
/// says nothing about whether the account exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let env = start(false, |c| {
        c.client_ip_header = "x-forwarded-for".into();
        c.login_per_ip_per_min = 4;
        c.login_per_account_per_min = 3;
        c.writes_per_user_per_min = 6;
        c.anonymous_per_ip_per_min = 5;
    })
    .await;
    let login_from = |ip: &'static str, user: &'static str, pw: &'static str| {
        let (http, base) = (env.http.clone(), env.base.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/auth/login"))
                .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
                .json(&login_body(user, pw))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (status, retry, v)
        }
    };
    // A session first (from 127.0.0.1), and a known user (one change).
    let token = env.admin().await;
    env.ok(
        201,
        "POST",
        "/v1/users",
        Some(&token),
        Some(json!({"username": "kim", "password": common::password_of("kim"), "role": "user", "tenant": "bank-a"})),
    )
    .await;
    // Per address: the fifth attempt from 10.0.0.1 (any usernames).
    for u in ["a1", "a2", "a3", "a4"] {
        assert_eq!(login_from("10.0.0.1", u, "whatever-1").await.0, 401);
    }
    let (s, retry, v) = login_from("10.0.0.1", "a5", "whatever-1").await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(retry.is_some_and(|r| (1..=60).contains(&r)), "{retry:?}");
    // Another address is not limited.
    assert_eq!(login_from("10.0.0.2", "a6", "whatever-1").await.0, 401);
    // Per username, from fresh addresses: a known and an unknown name are
    // limited alike (a 429 does not tell whether the account exists).
    for (user, ips) in [
        ("kim", ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"]),
        ("nobody", ["10.2.0.1", "10.2.0.2", "10.2.0.3", "10.2.0.4"]),
    ] {
        for ip in &ips[..3] {
            assert_eq!(login_from(ip, user, "not-the-password").await.0, 401);
        }
        let (s, retry, v) = login_from(ips[3], user, "not-the-password").await;
        assert_eq!((s, retry.is_some()), (429, true), "{user}: {v}");
    }
    // Guessing the current password with a session counts against the
    // username's login limit (root logged in once: two guesses, then 429).
    for want in [422, 422, 429] {
        let (s, v) = env
            .call(
                "PUT",
                "/v1/me/password",
                Some(&token),
                Some(json!({"current_password": "a-guess-here", "new_password": "violet-Kettle-orbit-42"})),
            )
            .await;
        assert_eq!(s, want, "{v}");
        if want == 429 {
            let m = v["error"]["message"].as_str().unwrap();
            assert!(m.contains("login attempts for this username"), "{v}");
        }
    }
    // Writes per user: the seventh change in a minute (kim and the three
    // password changes were four).
    for i in 0..2 {
        env.ok(
            201,
            "POST",
            "/v1/institutions",
            Some(&token),
            Some(json!({"id": format!("notary-{i}"), "name": "n", "kind": "notary"})),
        )
        .await;
    }
    let r = env
        .http
        .post(format!("{}/v1/institutions", env.base))
        .bearer_auth(&token)
        .json(&json!({"id": "notary-9", "name": "n", "kind": "notary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Reads are not changes.
    env.ok(200, "GET", "/v1/institutions", Some(&token), None)
        .await;
    // Anonymous requests per address.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = env
            .http
            .get(format!("{}/v1/me", env.base))
            .header("x-forwarded-for", "10.7.7.7")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
}

/// Flaw 11: requests without a session do not grow the hash-chained audit
/// log one row each; they are summarised in one `audit.noise_summary` row.
/// Before the fix 300 anonymous requests wrote 300 rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_noise_is_summarised_not_chained_row_by_row() {
    let env = start(false, |c| {
        c.noise_summary_interval_s = 1;
    })
    .await;
    let admin = env.admin().await;
    // Let a summary interval pass so that the admin's own rows settle.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = audit_count(&env).await;
    let mut n = 0;
    for i in 0..100 {
        for (method, path, token) in [
            ("POST", "/v1/preservations", None),
            ("GET", "/v1/audit", None),
            ("DELETE", "/v1/products/1", Some("bogus-token")),
        ] {
            let (s, _) = env
                .call(
                    method,
                    path,
                    token,
                    Some(json!({"i": i})).filter(|_| method != "GET"),
                )
                .await;
            assert_eq!(s, 401);
            n += 1;
        }
    }
    assert_eq!(n, 300);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = audit_count(&env).await;
    assert!(
        after - before <= 3,
        "{} audit rows for 300 anonymous requests",
        after - before
    );
    let rows = audit_rows(&env, "action = 'audit.noise_summary'").await;
    let total: u64 = rows
        .iter()
        .map(|r| r.2.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 300, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.2.contains("401 POST /v1/preservations")),
        "{rows:?}"
    );
    let v = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
}

/// Flaw 13: common, breached and weak passwords are refused (`password`
/// was accepted); so are the operator's blocklisted ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_and_common_passwords_are_refused() {
    let dir = common::temp_dir("wf_blocklist");
    let list = dir.join("blocklist.txt");
    std::fs::write(&list, "Bank-of-Anchord-2026!\n").unwrap();
    let env = start(false, |c| c.password_blocklist_file = Some(list.clone())).await;
    let admin = env.admin().await;
    for (i, weak) in [
        "password",
        "P@ssw0rd",
        "qwerty123456",
        "letmein123",
        "Password1!",
        "short",
        "bank-of-anchord-2026!",
        "dave-password",
    ]
    .into_iter()
    .enumerate()
    {
        let (s, v) = env
            .call(
                "POST",
                "/v1/users",
                Some(&admin),
                Some(json!({"username": format!("dave{i}"), "password": weak, "role": "user", "tenant": "bank-a"})),
            )
            .await;
        assert_eq!(s, 422, "{weak}: {v}");
        assert!(v["error"]["fields"]["password"].is_string(), "{v}");
    }
    env.ok(
        201,
        "POST",
        "/v1/users",
        Some(&admin),
        Some(json!({"username": "dave", "password": "violet-Kettle-orbit-42", "role": "user", "tenant": "bank-a"})),
    )
    .await;
    // create-admin: the same rules, and an audit row.
    let config = env.config.clone();
    let weak =
        anchord_workflow::auth::create_admin(&env.ledger, &config, "admin2", "password").await;
    assert!(weak.is_err(), "a weak create-admin password is refused");
    let id = anchord_workflow::auth::create_admin(
        &env.ledger,
        &config,
        "admin2",
        "violet-Kettle-orbit-43",
    )
    .await
    .unwrap();
    // (The harness's administrator has its row too.)
    let rows = audit_rows(&env, "action = 'user.create_admin'").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1].1, format!("user/{id}"));
    assert!(rows[1].2.contains("admin2"), "{rows:?}");
    let v = env
        .ok(200, "GET", "/v1/audit/verify", Some(&admin), None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Flaw 13: the audit row of a creation names the created object, not
/// only the route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_are_audited_with_the_created_object() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;
    let u = env
        .ok(
            201,
            "POST",
            "/v1/users",
            Some(&admin),
            Some(json!({"username": "erin", "password": common::password_of("erin"), "role": "user", "tenant": "bank-a"})),
        )
        .await;
    let product = env.product(&admin).await;
    env.ok(
        201,
        "POST",
        "/v1/institutions",
        Some(&admin),
        Some(json!({"id": "notary-7", "name": "公证处", "kind": "notary"})),
    )
    .await;
    let objects: Vec<String> = audit_rows(&env, "action LIKE 'POST %' AND result = 'ok'")
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    for want in [
        format!("/v1/users/{}", u["id"]),
        format!("/v1/products/{product}"),
        "/v1/institutions/notary-7".to_owned(),
    ] {
        assert!(objects.contains(&want), "{want} not in {objects:?}");
    }
}

/// Security headers on every answer: authenticated, public, errors and
/// unknown routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;
    for (method, path, token) in [
        ("GET", "/v1/me", Some(admin.as_str())),
        ("GET", "/v1/users", Some(admin.as_str())),
        ("GET", "/v1/me", None),
        ("GET", "/v1/no-such-route", None),
        ("GET", "/v1/openapi.json", None),
        ("POST", "/v1/auth/login", None),
    ] {
        let mut req = env
            .http
            .request(method.parse().unwrap(), format!("{}{path}", env.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if method == "POST" {
            req = req.json(&login_body(ADMIN, ADMIN_PASSWORD));
        }
        let r = req.send().await.unwrap();
        let h = r.headers();
        let get = |k: &str| {
            h.get(k)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
        let csp = get("content-security-policy");
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(get("cache-control"), "no-store", "{path}");
    }
}

/// Disable, enable, change and reset passwords, revoke sessions: sessions
/// end with the account's access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_management_revokes_sessions() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;
    let frank = env
        .user(&admin, "frank", "user", json!({"tenant": "bank-a"}))
        .await;
    let frank2 = env.login("frank", &common::password_of("frank")).await;
    let me = env.ok(200, "GET", "/v1/me", Some(&frank), None).await;
    let id = me["id"].as_i64().unwrap();
    // Not for other roles.
    for (m, p, b) in [
        ("POST", format!("/v1/users/{id}/disable"), None),
        ("DELETE", format!("/v1/users/{id}/sessions"), None),
        (
            "PUT",
            format!("/v1/users/{id}/password"),
            Some(json!({"new_password": "violet-Kettle-orbit-42"})),
        ),
    ] {
        let (s, _) = env.call(m, &p, Some(&frank), b).await;
        assert_eq!(s, 403, "{m} {p}");
    }
    // Change one's own password: wrong current, weak new, then right.
    let (s, v) = env
        .call(
            "PUT",
            "/v1/me/password",
            Some(&frank),
            Some(json!({"current_password": "nope-nope-nope", "new_password": "violet-Kettle-orbit-42"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["current_password"].is_string(), "{v}");
    let (s, v) = env
        .call(
            "PUT",
            "/v1/me/password",
            Some(&frank),
            Some(json!({"current_password": common::password_of("frank"), "new_password": "password"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["new_password"].is_string(), "{v}");
    env.ok(
        204,
        "PUT",
        "/v1/me/password",
        Some(&frank),
        Some(json!({"current_password": common::password_of("frank"), "new_password": "violet-Kettle-orbit-42"})),
    )
    .await;
    env.ok(200, "GET", "/v1/me", Some(&frank), None).await;
    let (s, _) = env.call("GET", "/v1/me", Some(&frank2), None).await;
    assert_eq!(s, 401, "the other session is revoked");
    let (s, _) = env
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login_body("frank", &common::password_of("frank"))),
        )
        .await;
    assert_eq!(s, 401, "the old password is gone");
    let frank3 = env.login("frank", "violet-Kettle-orbit-42").await;
    // Revoke every session.
    let v = env
        .ok(
            200,
            "DELETE",
            &format!("/v1/users/{id}/sessions"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v["revoked"], 2, "{v}");
    for t in [&frank, &frank3] {
        let (s, _) = env.call("GET", "/v1/me", Some(t), None).await;
        assert_eq!(s, 401);
    }
    // Disable: sessions end, logins fail with the one answer; enable.
    let frank4 = env.login("frank", "violet-Kettle-orbit-42").await;
    let v = env
        .ok(
            200,
            "POST",
            &format!("/v1/users/{id}/disable"),
            Some(&admin),
            None,
        )
        .await;
    assert!(v["disabled_at"].is_string(), "{v}");
    let (s, _) = env.call("GET", "/v1/me", Some(&frank4), None).await;
    assert_eq!(s, 401);
    let (s, v) = env
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login_body("frank", "violet-Kettle-orbit-42")),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let me_admin = env.ok(200, "GET", "/v1/me", Some(&admin), None).await;
    let (s, _) = env
        .call(
            "POST",
            &format!("/v1/users/{}/disable", me_admin["id"]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 409, "administrators do not disable themselves");
    env.ok(
        200,
        "POST",
        &format!("/v1/users/{id}/enable"),
        Some(&admin),
        None,
    )
    .await;
    let frank5 = env.login("frank", "violet-Kettle-orbit-42").await;
    // An administrator's reset: sessions end, the new password works.
    let v = env
        .ok(
            200,
            "PUT",
            &format!("/v1/users/{id}/password"),
            Some(&admin),
            Some(json!({"new_password": "amber-Lantern-river-17"})),
        )
        .await;
    assert!(v["password_changed_at"].is_string(), "{v}");
    let (s, _) = env.call("GET", "/v1/me", Some(&frank5), None).await;
    assert_eq!(s, 401);
    env.login("frank", "amber-Lantern-river-17").await;
    let (s, _) = env
        .call(
            "PUT",
            "/v1/users/999999/password",
            Some(&admin),
            Some(json!({"new_password": "amber-Lantern-river-17"})),
        )
        .await;
    assert_eq!(s, 404);
    // Every one of these changes is in the audit log, naming the user.
    let rows = audit_rows(&env, &format!("object LIKE '/v1/users/{id}/%'")).await;
    for action in [
        "POST /v1/users/{id}/disable",
        "POST /v1/users/{id}/enable",
        "PUT /v1/users/{id}/password",
        "DELETE /v1/users/{id}/sessions",
    ] {
        assert!(rows.iter().any(|r| r.0 == action), "{action}: {rows:?}");
    }
}

/// Expired sessions are purged by the housekeeping task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_purged() {
    let env = start(false, |c| {
        c.session_ttl_s = 1;
        c.session_purge_interval_s = 1;
        c.session_purge_grace_s = 0;
    })
    .await;
    for _ in 0..3 {
        env.admin().await;
    }
    let c = env.db.client().await;
    let count = || async {
        c.query_one("SELECT count(*) FROM workflow.sessions", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert!(count().await >= 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count().await > 0 {
        assert!(
            Instant::now() < deadline,
            "expired sessions were not purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
