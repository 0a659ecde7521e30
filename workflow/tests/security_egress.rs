//! Issue 12, flaws 4 and 6, over HTTP against the real services: webhook
//! targets inside the network are refused after DNS resolution (at
//! registration, and again at delivery, recorded), redirects are not
//! followed, an allow-listed receiver works; deliveries of one bank's
//! hanging receivers do not delay another bank's; webhooks are capped per
//! bank, listed, disabled and deleted.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Env;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A loopback HTTP receiver. `answer`: the raw response it writes (None:
/// it reads and never answers). Returns its port and the arrival times of
/// the requests it got (with their first bytes).
async fn receiver(answer: Option<String>) -> (u16, Arc<Mutex<Vec<(Instant, String)>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(Vec::new()));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let (h, answer) = (h.clone(), answer.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut got = Vec::new();
                // Read until the headers and the body are in (small bodies).
                loop {
                    match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Err(_) => break,
                        Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                        Ok(Err(_)) => return,
                    }
                    if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got[..at]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= at + 4 + len {
                            break;
                        }
                    }
                }
                h.lock()
                    .unwrap()
                    .push((Instant::now(), String::from_utf8_lossy(&got).into_owned()));
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes()).await;
                        let _ = s.shutdown().await;
                    }
                    None => {
                        // Hang: hold the connection open.
                        tokio::time::sleep(Duration::from_secs(120)).await;
                    }
                }
            });
        }
    });
    (port, hits)
}

const OK: &str = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";

struct Bank {
    user: String,
    reviewer: String,
}

/// A bank's user and reviewer.
async fn bank(env: &Env, admin: &str, tenant: &str) -> Bank {
    let t = json!({ "tenant": tenant });
    Bank {
        user: env
            .user(admin, &format!("{tenant}-user"), "user", t.clone())
            .await,
        reviewer: env
            .user(admin, &format!("{tenant}-reviewer"), "reviewer", t)
            .await,
    }
}

/// A preservation of `user`, with a file, submitted (the
/// `preservation.submitted` event). Returns its path.
async fn submit_one(env: &Env, product: i64, user: &str) -> String {
    let v = env
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(user),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "100"}})),
        )
        .await;
    let pp = format!("/v1/preservations/{}", v["id"]);
    let (s, v) = env
        .upload(
            "PUT",
            &format!("{pp}/file"),
            user,
            "call.pdf",
            common::rand_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    env.ok(200, "POST", &format!("{pp}/submit"), Some(user), None)
        .await;
    pp
}

async fn deliveries(env: &Env, token: &str, hook: i64) -> Vec<Value> {
    env.ok(
        200,
        "GET",
        &format!("/v1/webhooks/{hook}/deliveries"),
        Some(token),
        None,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

/// Wait until every delivery of `hook` was attempted at least once.
async fn attempted(env: &Env, token: &str, hook: i64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = deliveries(env, token, hook).await;
        if !d.is_empty() && d.iter().all(|d| d["attempts"].as_i64().unwrap() >= 1) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "no attempt on webhook {hook}: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Loopback, private, link-local/metadata, IPv6 loopback, IPv4-mapped
/// loopback, numeric forms of 127.0.0.1 and a name resolving to 127.0.0.1
/// are refused at registration (422, nothing stored); rows that reach the
/// outbox anyway (written before the policy, or a name that resolves
/// inside at delivery time) are refused at delivery and the refusal is
/// recorded, with no request reaching the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_targets_inside_the_network_are_refused_after_dns_resolution() {
    let env = common::start(false, |_| {}).await;
    let admin = env.admin().await;
    let a = bank(&env, &admin, "bank-a").await;
    let product = env.product(&admin).await;
    let (port, hits) = receiver(Some(OK.into())).await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        "http://10.0.0.1/hook".to_string(),
        "http://192.168.1.10/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://100.100.100.200/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
        "http://[fd00:ec2::254]/".to_string(),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://LOCALHOST.:{port}/"),
        "http://0.0.0.0/".to_string(),
        "ftp://example.com/".to_string(),
        "http://user:secret@example.com/".to_string(),
    ] {
        for token in [&a.reviewer, &admin] {
            let (s, v) = env
                .call(
                    "POST",
                    "/v1/webhooks",
                    Some(token),
                    Some(json!({"url": url})),
                )
                .await;
            assert_eq!(s.as_u16(), 422, "{url} must be refused: {v}");
            assert_eq!(v["error"]["code"], "validation_failed", "{v}");
            assert!(v["error"]["fields"]["url"].is_string(), "{v}");
        }
    }
    let listed = env.ok(200, "GET", "/v1/webhooks", Some(&admin), None).await;
    assert_eq!(listed, json!([]), "nothing was registered");

    // Rows that bypassed registration: delivery refuses them after its own
    // resolution (the resolver filters `localhost` to nothing) and records it.
    let pool = env.ledger.workflow_pool();
    let mut ids = Vec::new();
    for url in [
        format!("http://localhost:{port}/rebound"),
        format!("http://127.0.0.1:{port}/literal"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let c = pool.get().await.unwrap();
        let uid: i64 = c
            .query_one(
                "SELECT id FROM workflow.users WHERE username = 'bank-a-reviewer'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let id: i64 = c
            .query_one(
                "INSERT INTO workflow.webhooks (tenant, url, secret, created_by)
                 VALUES ('bank-a', $1, 'sixteen-chars-secret', $2) RETURNING id",
                &[&url, &uid],
            )
            .await
            .unwrap()
            .get(0);
        ids.push(id);
    }
    submit_one(&env, product, &a.user).await;
    for id in ids {
        let d = attempted(&env, &a.reviewer, id).await;
        let err = d[0]["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(
            err.contains("refused by the address policy"),
            "webhook {id}: {err}"
        );
        assert!(d[0]["last_status"].is_null());
    }
    assert!(
        hits.lock().unwrap().is_empty(),
        "a request reached the loopback receiver"
    );
}

/// With loopback allow-listed (how an on-premise receiver is configured),
/// deliveries arrive signed; a receiver that redirects (to another loopback
/// service) gets its 302 recorded and the redirect is not followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_listed_receiver_gets_deliveries_and_redirects_are_not_followed() {
    let env = common::start(false, |c| {
        c.webhook_allow = vec!["127.0.0.1/32".into()];
    })
    .await;
    let admin = env.admin().await;
    let a = bank(&env, &admin, "bank-a").await;
    let product = env.product(&admin).await;
    let (ok_port, ok_hits) = receiver(Some(OK.into())).await;
    let (inner_port, inner_hits) = receiver(Some(OK.into())).await;
    let (redirect_port, redirect_hits) = receiver(Some(format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{inner_port}/readyz\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )))
    .await;
    let good = env
        .ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&a.reviewer),
            Some(json!({"url": format!("http://127.0.0.1:{ok_port}/hook"), "secret": "a-secret-of-16-chars"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let redirecting = env
        .ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&a.reviewer),
            Some(json!({"url": format!("http://127.0.0.1:{redirect_port}/hook")})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    submit_one(&env, product, &a.user).await;
    let d = attempted(&env, &a.reviewer, good).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while deliveries(&env, &a.reviewer, good).await[0]["state"] != "delivered" {
        assert!(Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = ok_hits.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let req = &got[0].1;
    assert!(req.starts_with("POST /hook "), "{req}");
    let lower = req.to_ascii_lowercase();
    assert!(
        lower.contains("anchord-event: preservation.submitted"),
        "{req}"
    );
    // The signature verifies with the secret.
    let ts = lower
        .lines()
        .find_map(|l| l.strip_prefix("anchord-timestamp: "))
        .unwrap()
        .trim()
        .parse::<i64>()
        .unwrap();
    let sig = lower
        .lines()
        .find_map(|l| l.strip_prefix("anchord-signature: "))
        .unwrap()
        .trim()
        .to_owned();
    let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        sig,
        anchord_workflow::webhooks::signature("a-secret-of-16-chars", ts, body)
    );

    let d = attempted(&env, &a.reviewer, redirecting).await;
    assert_eq!(d[0]["last_status"], 302, "{d:?}");
    assert!(
        d[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{d:?}"
    );
    assert_eq!(redirect_hits.lock().unwrap().len(), 1);
    // Retries happen, but never to the redirect's target.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        inner_hits.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
}

/// Three hanging receivers of bank A (5 s timeouts) do not delay bank B's
/// delivery: B's event arrives within 2 s of its change. Before: one
/// transaction sent every due delivery in turn (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_webhooks_of_one_bank_do_not_delay_another_banks() {
    let env = common::start(false, |c| {
        c.webhook_allow = vec!["127.0.0.1/32".into()];
        c.webhook_timeout_ms = 5_000;
        c.webhook_backoff_initial_ms = 60_000;
        c.webhook_backoff_max_ms = 60_000;
    })
    .await;
    let admin = env.admin().await;
    let a = bank(&env, &admin, "bank-a").await;
    let b = bank(&env, &admin, "bank-b").await;
    let product = env.product(&admin).await;
    let (hang_port, hang_hits) = receiver(None).await;
    let (b_port, b_hits) = receiver(Some(OK.into())).await;
    for i in 0..3 {
        env.ok(
            201,
            "POST",
            "/v1/webhooks",
            Some(&a.reviewer),
            Some(json!({"url": format!("http://127.0.0.1:{hang_port}/a{i}")})),
        )
        .await;
    }
    env.ok(
        201,
        "POST",
        "/v1/webhooks",
        Some(&b.reviewer),
        Some(json!({"url": format!("http://127.0.0.1:{b_port}/b")})),
    )
    .await;
    // Bank A: two events, six hanging deliveries.
    submit_one(&env, product, &a.user).await;
    submit_one(&env, product, &a.user).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while hang_hits.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "bank A's deliveries never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Bank B's change while they hang.
    let started = Instant::now();
    submit_one(&env, product, &b.user).await;
    let deadline = started + Duration::from_secs(10);
    let arrived = loop {
        if let Some((t, _)) = b_hits.lock().unwrap().first() {
            break *t;
        }
        assert!(Instant::now() < deadline, "bank B's delivery never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let delay = arrived.saturating_duration_since(started);
    eprintln!("bank B's delivery arrived {delay:?} after its change");
    assert!(
        delay < Duration::from_secs(2),
        "bank B's webhook waited {delay:?} behind bank A's hanging receivers"
    );
}

/// Per-bank cap (409), list (own bank only, no secrets), disable (no new
/// deliveries), enable, delete (gone from the list; pending deliveries
/// failed); another bank's reviewer can touch none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_capped_per_bank_listed_disabled_and_deleted() {
    let env = common::start(false, |c| {
        c.webhook_allow = vec!["127.0.0.1/32".into()];
        c.webhook_max_per_tenant = 3;
    })
    .await;
    let admin = env.admin().await;
    let a = bank(&env, &admin, "bank-a").await;
    let b = bank(&env, &admin, "bank-b").await;
    let product = env.product(&admin).await;
    let (port, hits) = receiver(Some(OK.into())).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let v = env
            .ok(
                201,
                "POST",
                "/v1/webhooks",
                Some(&a.reviewer),
                Some(json!({"url": format!("http://127.0.0.1:{port}/a{i}")})),
            )
            .await;
        ids.push(v["id"].as_i64().unwrap());
    }
    let (s, v) = env
        .call(
            "POST",
            "/v1/webhooks",
            Some(&a.reviewer),
            Some(json!({"url": format!("http://127.0.0.1:{port}/a3")})),
        )
        .await;
    assert_eq!(s.as_u16(), 409, "{v}");
    // Bank B has its own quota.
    env.ok(
        201,
        "POST",
        "/v1/webhooks",
        Some(&b.reviewer),
        Some(json!({"url": format!("http://127.0.0.1:{port}/b")})),
    )
    .await;
    let listed = env
        .ok(200, "GET", "/v1/webhooks", Some(&a.reviewer), None)
        .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|h| h["tenant"] == "bank-a" && h["secret"].is_null())
    );
    // Paged: one at a time, following the cursor header.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/webhooks?limit=1&after={a}"),
            None => "/v1/webhooks?limit=1".into(),
        };
        let resp = env
            .http
            .get(format!("{}{q}", env.base))
            .bearer_auth(&a.reviewer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        after = resp
            .headers()
            .get("anchord-next-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = resp.json().await.unwrap();
        seen.extend(page.iter().map(|h| h["id"].as_i64().unwrap()));
        if after.is_none() {
            break;
        }
        assert!(seen.len() <= 3);
    }
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(seen, want);
    for (q, code) in [("limit=0", 422), ("limit=1001", 422), ("after=-1", 422)] {
        let (s, _) = env
            .call("GET", &format!("/v1/webhooks?{q}"), Some(&a.reviewer), None)
            .await;
        assert_eq!(s.as_u16(), code, "{q}");
    }
    // Another bank can neither disable nor delete it.
    for (m, p) in [
        ("POST", format!("/v1/webhooks/{}/disable", ids[0])),
        ("POST", format!("/v1/webhooks/{}/enable", ids[0])),
        ("DELETE", format!("/v1/webhooks/{}", ids[0])),
    ] {
        let (s, _) = env.call(m, &p, Some(&b.reviewer), None).await;
        assert_eq!(s.as_u16(), 403, "{m} {p}");
    }
    // Disable one: no delivery is queued for it.
    let v = env
        .ok(
            200,
            "POST",
            &format!("/v1/webhooks/{}/disable", ids[0]),
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(v["enabled"], false);
    submit_one(&env, product, &a.user).await;
    attempted(&env, &a.reviewer, ids[1]).await;
    assert!(deliveries(&env, &a.reviewer, ids[0]).await.is_empty());
    let v = env
        .ok(
            200,
            "POST",
            &format!("/v1/webhooks/{}/enable", ids[0]),
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(v["enabled"], true);
    // Delete: gone from the list, a new one fits under the cap again.
    let (s, _) = env
        .call(
            "DELETE",
            &format!("/v1/webhooks/{}", ids[2]),
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 204);
    let (s, _) = env
        .call(
            "DELETE",
            &format!("/v1/webhooks/{}", ids[2]),
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(s.as_u16(), 404);
    let listed = env
        .ok(200, "GET", "/v1/webhooks", Some(&a.reviewer), None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    env.ok(
        201,
        "POST",
        "/v1/webhooks",
        Some(&a.reviewer),
        Some(json!({"url": format!("http://127.0.0.1:{port}/a4")})),
    )
    .await;
    // The administrator sees every bank's.
    let all = env.ok(200, "GET", "/v1/webhooks", Some(&admin), None).await;
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert!(!hits.lock().unwrap().is_empty());
}
