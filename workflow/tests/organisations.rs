//! Issue 15: organisations as data, users per organisation, to-do inboxes
//! and e-mail notifications, over HTTP against the real services (and a
//! real SMTP server, aiosmtpd from the test venv, for the mails).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use anchord_testkit::process::free_port;
use common::smtp::{mails, smtp_up};
use common::{Env, start};
use serde_json::{Value, json};

/// A submitted preservation of `token`'s bank; returns (id, number).
async fn submitted(env: &Env, token: &str, product: i64) -> (i64, String) {
    let v = env
        .submitted_preservation(
            token,
            product,
            json!({"borrower": "张三", "amount": 100}),
            "call.pdf",
            format!("%PDF-1.4 evidence {}", hex::encode(common::rand_bytes())).into_bytes(),
        )
        .await;
    (
        v["id"].as_i64().unwrap(),
        v["number"].as_str().unwrap().to_owned(),
    )
}

/// The administrator manages organisations and their users; a reviewer of
/// bank A manages nobody (bank B's users least of all); a non-admin cannot
/// reset a password; disabling a user or an organisation ends the existing
/// sessions and refuses logins until enabled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_and_their_users_are_managed_by_the_administrator_only() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;

    // Validation: each field named; CR/LF in a name refused.
    for (body, field) in [
        (json!({"kind": "bank", "name": "A"}), "tenant"),
        (json!({"kind": "shop", "name": "A", "tenant": "x"}), "kind"),
        (
            json!({"kind": "bank", "name": "A\r\nB", "tenant": "x"}),
            "name",
        ),
        (json!({"kind": "court", "name": "C"}), "institution_id"),
        (
            json!({"kind": "bank", "name": "A", "tenant": "bad tenant"}),
            "tenant",
        ),
    ] {
        let (s, v) = env
            .call("POST", "/v1/organisations", Some(&admin), Some(body))
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["error"]["fields"][field].is_string(), "{field}: {v}");
    }
    let a = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "Bank A 甲银行", "tenant": "bank-a"}),
        )
        .await;
    let b = env
        .organisation(
            &admin,
            json!({"kind": "enterprise", "name": "Enterprise B", "tenant": "bank-b"}),
        )
        .await;
    let notary = env.organisation(&admin,
        json!({"kind": "notary", "name": "Notary N", "institution_id": "notary-n", "fee_cents": 5000}),
    )
    .await;
    let (s, v) = env
        .call(
            "POST",
            "/v1/organisations",
            Some(&admin),
            Some(json!({"kind": "bank", "name": "again", "tenant": "bank-a"})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // The notary is also an institution users apply to.
    let inst = env
        .ok(200, "GET", "/v1/institutions", Some(&admin), None)
        .await;
    assert!(
        inst.as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == "notary-n" && i["fee_cents"] == 5000),
        "{inst}"
    );
    // Paged list, newest first.
    let ids = env.walk_pages("/v1/organisations?limit=1", &admin).await;
    assert_eq!(ids, vec![notary, b, a]);
    let banks = env
        .ok(
            200,
            "GET",
            "/v1/organisations?kind=bank",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(banks.as_array().unwrap().len(), 1);
    let (s, _) = env
        .call("GET", "/v1/organisations?kind=shop", Some(&admin), None)
        .await;
    assert_eq!(s, 422);

    let (_ra_id, ra) = env.member(&admin, a, "rita", "reviewer", json!({})).await;
    let (ua_id, ua) = env
        .member(
            &admin,
            a,
            "alice",
            "user",
            json!({"email": "alice@bank-a.test"}),
        )
        .await;
    let (ub_id, ub) = env.member(&admin, b, "bob", "user", json!({})).await;
    // A role the organisation has not; an organisation in both forms.
    let (s, v) = env
        .call(
            "POST",
            &format!("/v1/organisations/{notary}/users"),
            Some(&admin),
            Some(json!({"username": "nu", "password": common::password_of("nu"), "role": "user"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = env
        .call("POST", "/v1/users", Some(&admin),
              Some(json!({"username": "nu", "password": common::password_of("nu"), "role": "user", "organisation_id": a, "tenant": "bank-b"})))
        .await;
    assert_eq!(s, 422, "{v}");
    // API v1: a bare tenant still works, creating its bank organisation.
    let v = env
        .ok(201, "POST", "/v1/users", Some(&admin),
            Some(json!({"username": "carl", "password": common::password_of("carl"), "role": "user", "tenant": "bank-c"})))
        .await;
    let c_org = v["organisation_id"].as_i64().unwrap();
    let o = env
        .ok(
            200,
            "GET",
            &format!("/v1/organisations/{c_org}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (o["kind"].as_str(), o["tenant"].as_str()),
        (Some("bank"), Some("bank-c"))
    );

    // A reviewer of bank A manages nobody: not bank B's users, not its own.
    for (method, path, body) in [
        ("POST", format!("/v1/users/{ub_id}/disable"), None),
        (
            "PUT",
            format!("/v1/users/{ub_id}/password"),
            Some(json!({"new_password": "violet-Kettle-orbit-42"})),
        ),
        (
            "PATCH",
            format!("/v1/users/{ub_id}"),
            Some(json!({"role": "reviewer"})),
        ),
        ("DELETE", format!("/v1/users/{ub_id}/sessions"), None),
        (
            "POST",
            format!("/v1/organisations/{b}/users"),
            Some(json!({"username": "x1", "password": "violet-Kettle-orbit-42", "role": "user"})),
        ),
        ("GET", format!("/v1/organisations/{b}/users"), None),
        ("GET", format!("/v1/organisations/{b}"), None),
        ("POST", format!("/v1/organisations/{b}/disable"), None),
        (
            "PUT",
            format!("/v1/users/{ua_id}/password"),
            Some(json!({"new_password": "violet-Kettle-orbit-42"})),
        ),
        (
            "POST",
            "/v1/organisations".to_owned(),
            Some(json!({"kind": "bank", "name": "mine", "tenant": "bank-z"})),
        ),
    ] {
        let (s, v) = env.call(method, &path, Some(&ra), body).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
    }
    // A user resets nobody's password (not even a colleague's).
    let (s, _) = env
        .call(
            "PUT",
            &format!("/v1/users/{ub_id}/password"),
            Some(&ua),
            Some(json!({"new_password": "violet-Kettle-orbit-42"})),
        )
        .await;
    assert_eq!(s, 403);
    // The reviewer reads their own bank's users only.
    let mine = env
        .ok(
            200,
            "GET",
            &format!("/v1/organisations/{a}/users"),
            Some(&ra),
            None,
        )
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let listed = env.ok(200, "GET", "/v1/users", Some(&ra), None).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["tenant"] == "bank-a"),
        "{listed}"
    );

    // Edits: header injection in e-mail fields refused; a role change
    // revokes the sessions.
    for (field, value) in [
        ("email", "alice@bank-a.test\r\nBcc: evil@attacker.test"),
        ("email", "not an address"),
        ("display_name", "Alice\r\nBcc: evil@attacker.test"),
        ("display_name", ""),
    ] {
        let (s, v) = env
            .call(
                "PATCH",
                &format!("/v1/users/{ua_id}"),
                Some(&admin),
                Some(json!({field: value})),
            )
            .await;
        assert_eq!(s, 422, "{field} {value:?}: {v}");
        assert!(v["error"]["fields"][field].is_string(), "{v}");
    }
    let v = env
        .ok(
            200,
            "PATCH",
            &format!("/v1/users/{ua_id}"),
            Some(&admin),
            Some(json!({"display_name": "Alice 爱丽丝", "email": null})),
        )
        .await;
    assert_eq!(
        (v["display_name"].as_str(), v["email"].is_null()),
        (Some("Alice 爱丽丝"), true)
    );
    let v = env
        .ok(
            200,
            "PATCH",
            &format!("/v1/users/{ub_id}"),
            Some(&admin),
            Some(json!({"role": "reviewer"})),
        )
        .await;
    assert_eq!(v["role"], "reviewer");
    let (s, _) = env.call("GET", "/v1/me", Some(&ub), None).await;
    assert_eq!(s, 401, "the old role's session is revoked");
    let ub = env.login("bob", &common::password_of("bob")).await;

    // A disabled user's existing session stops at once.
    env.ok(
        200,
        "POST",
        &format!("/v1/users/{ua_id}/disable"),
        Some(&admin),
        None,
    )
    .await;
    let (s, _) = env.call("GET", "/v1/me", Some(&ua), None).await;
    assert_eq!(s, 401);
    env.ok(
        200,
        "POST",
        &format!("/v1/users/{ua_id}/enable"),
        Some(&admin),
        None,
    )
    .await;

    // Disabling organisation B: its users' sessions end, logins refused
    // (the one answer of every failed login); enabling restores them.
    let v = env
        .ok(
            200,
            "POST",
            &format!("/v1/organisations/{b}/disable"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(v["enabled"], false);
    let (s, v) = env.call("GET", "/v1/me", Some(&ub), None).await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = env
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "bob", "password": common::password_of("bob")})),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "invalid_credentials");
    // Bank A is untouched.
    env.ok(200, "GET", "/v1/me", Some(&ra), None).await;
    env.ok(
        200,
        "POST",
        &format!("/v1/organisations/{b}/enable"),
        Some(&admin),
        None,
    )
    .await;
    env.login("bob", &common::password_of("bob")).await;
    // A disabled notary office is no longer offered to applicants.
    env.ok(
        200,
        "POST",
        &format!("/v1/organisations/{notary}/disable"),
        Some(&admin),
        None,
    )
    .await;
    let inst = env
        .ok(200, "GET", "/v1/institutions", Some(&ra), None)
        .await;
    assert!(
        inst.as_array()
            .unwrap()
            .iter()
            .all(|i| i["id"] != "notary-n"),
        "{inst}"
    );
    // Renaming keeps the tenant; a bank has no fee.
    let v = env
        .ok(
            200,
            "PATCH",
            &format!("/v1/organisations/{a}"),
            Some(&admin),
            Some(json!({"name": "Bank A (renamed)"})),
        )
        .await;
    assert_eq!(
        (v["name"].as_str(), v["tenant"].as_str()),
        (Some("Bank A (renamed)"), Some("bank-a"))
    );
    let (s, _) = env
        .call(
            "PATCH",
            &format!("/v1/organisations/{a}"),
            Some(&admin),
            Some(json!({"fee_cents": 1})),
        )
        .await;
    assert_eq!(s, 422);
}

/// An administrator's reset revokes the user's sessions and obliges them
/// to change the password at the next login: until then every route but
/// who-am-I, the change and logout answers 403 `password_change_required`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_forces_a_change_at_the_next_login() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;
    let a = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "A", "tenant": "bank-a"}),
        )
        .await;
    let (id, old) = env.member(&admin, a, "alice", "user", json!({})).await;
    let temporary = "Temporary-violet-Kettle-9";
    let v = env
        .ok(
            200,
            "PUT",
            &format!("/v1/users/{id}/password"),
            Some(&admin),
            Some(json!({"new_password": temporary})),
        )
        .await;
    assert_eq!(v["must_change_password"], true);
    let (s, _) = env.call("GET", "/v1/me", Some(&old), None).await;
    assert_eq!(s, 401, "the reset revokes every session");
    let login = env
        .ok(
            200,
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": temporary})),
        )
        .await;
    assert_eq!(login["user"]["must_change_password"], true);
    let t = login["token"].as_str().unwrap().to_owned();
    for path in ["/v1/preservations", "/v1/inbox", "/v1/me/notifications"] {
        let (s, v) = env.call("GET", path, Some(&t), None).await;
        assert_eq!(s, 403, "{path}: {v}");
        assert_eq!(v["error"]["code"], "password_change_required");
    }
    env.ok(200, "GET", "/v1/me", Some(&t), None).await;
    let (s, v) = env
        .call(
            "PUT",
            "/v1/me/password",
            Some(&t),
            Some(json!({"current_password": temporary, "new_password": temporary})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    env.ok(
        204,
        "PUT",
        "/v1/me/password",
        Some(&t),
        Some(json!({"current_password": temporary, "new_password": "Alice-own-orbit-Kettle-7"})),
    )
    .await;
    env.ok(200, "GET", "/v1/preservations", Some(&t), None)
        .await;
    let me = env.ok(200, "GET", "/v1/me", Some(&t), None).await;
    assert_eq!(me["must_change_password"], false);
}

/// Inboxes count what waits for the caller and list it paged; a reviewer
/// sees only their own bank's submissions, never their own; kinds outside
/// the caller's role are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inboxes_count_what_waits_and_never_show_another_bank_s_items() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;
    let product = env.product(&admin).await;
    let a = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "A", "tenant": "bank-a"}),
        )
        .await;
    let b = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "B", "tenant": "bank-b"}),
        )
        .await;
    let n = env
        .organisation(
            &admin,
            json!({"kind": "court", "name": "Court", "institution_id": "court-1"}),
        )
        .await;
    let (_, ra) = env.member(&admin, a, "rita", "reviewer", json!({})).await;
    let (_, ua) = env.member(&admin, a, "alice", "user", json!({})).await;
    let (_, rb) = env.member(&admin, b, "rob", "reviewer", json!({})).await;
    let (_, ub) = env.member(&admin, b, "bob", "user", json!({})).await;
    let (_, judge) = env
        .member(&admin, n, "judge", "institution", json!({}))
        .await;

    let (a1, _) = submitted(&env, &ua, product).await;
    let (a2, _) = submitted(&env, &ua, product).await;
    let (b1, _) = submitted(&env, &ub, product).await;
    // The reviewer's own submission is not in their inbox.
    let (_own, _) = submitted(&env, &ra, product).await;

    let v = env.ok(200, "GET", "/v1/inbox", Some(&ra), None).await;
    assert_eq!(v["counts"]["preservation_reviews"], 2, "{v}");
    assert_eq!(v["counts"]["contract_reviews"], 0);
    assert_eq!(v["total"], 2);
    let ids = env
        .walk_pages("/v1/inbox/preservation_reviews?limit=1", &ra)
        .await;
    assert_eq!(ids, vec![a2, a1]);
    let items = env
        .ok(
            200,
            "GET",
            "/v1/inbox/preservation_reviews",
            Some(&rb),
            None,
        )
        .await;
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], b1);
    assert_eq!(items[0]["href"], format!("/v1/preservations/{b1}"));
    // Approving one takes it out of the inbox.
    env.ok(
        200,
        "POST",
        &format!("/v1/preservations/{a1}/approve"),
        Some(&ra),
        None,
    )
    .await;
    let v = env.ok(200, "GET", "/v1/inbox", Some(&ra), None).await;
    assert_eq!(v["counts"]["preservation_reviews"], 1, "{v}");

    // Users have only signatures; institutions only their requests.
    let v = env.ok(200, "GET", "/v1/inbox", Some(&ua), None).await;
    assert_eq!(v["counts"], json!({"contract_signatures": 0}));
    let v = env.ok(200, "GET", "/v1/inbox", Some(&judge), None).await;
    assert_eq!(v["counts"], json!({"judicial_requests": 0}));
    let (s, _) = env
        .call("GET", "/v1/inbox/preservation_reviews", Some(&ua), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = env
        .call("GET", "/v1/inbox/judicial_requests", Some(&ra), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = env
        .call("GET", "/v1/inbox/everything", Some(&ra), None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = env
        .call(
            "GET",
            "/v1/inbox/preservation_reviews?limit=0",
            Some(&ra),
            None,
        )
        .await;
    assert_eq!(s, 422);
    let v = env.ok(200, "GET", "/v1/inbox", Some(&admin), None).await;
    assert_eq!(v["total"], 0);
}

async fn wait_mails(out: &Path, n: usize, what: &str) -> Vec<Value> {
    for _ in 0..300 {
        let m = mails(out);
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}: {:?}", mails(out));
}

async fn outbox(env: &Env) -> Vec<(String, String, String, i32, Option<String>)> {
    let c = env.db.client().await;
    c.query(
        "SELECT recipient, kind, state, attempts, last_error FROM workflow.mail_outbox ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// E-mail notifications through a real SMTP server: a submission mails the
/// bank's reviewers (not another bank's, not one who turned the kind off),
/// with the right recipient, subject and link; while the server is down the
/// mail waits in the outbox and is delivered once it is back; a rejection
/// mails the creator; nothing a user typed adds a header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_mails_reach_the_right_people_and_survive_a_down_relay() {
    let port = free_port();
    let dir = common::temp_dir("wf_smtp");
    let out = dir.join("mails.jsonl");
    let env = start(false, |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.from = "Anchord 通知 <noreply@anchord.test>".into();
        c.smtp.tls = anchord_workflow::config::SmtpTls::None;
        c.smtp.link_base = "https://console.anchord.test/".into();
        c.smtp.poll_ms = 100;
        c.smtp.timeout_ms = 2000;
        c.smtp.backoff_initial_ms = 100;
        c.smtp.backoff_max_ms = 400;
    })
    .await;
    let admin = env.admin().await;
    let product = env.product(&admin).await;
    let a = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "A", "tenant": "bank-a"}),
        )
        .await;
    let b = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "B", "tenant": "bank-b"}),
        )
        .await;
    let (_, _ra) = env
        .member(
            &admin,
            a,
            "rita",
            "reviewer",
            json!({"email": "rita@bank-a.test", "display_name": "Rita"}),
        )
        .await;
    let (_, quiet) = env
        .member(
            &admin,
            a,
            "quinn",
            "reviewer",
            json!({"email": "quinn@bank-a.test"}),
        )
        .await;
    let (_, _rb) = env
        .member(
            &admin,
            b,
            "rob",
            "reviewer",
            json!({"email": "rob@bank-b.test"}),
        )
        .await;
    let (_, ua) = env.member(&admin, a, "alice", "user", json!({})).await;

    // Preferences: every kind listed, on by default; quinn turns one off;
    // unknown kinds and injected addresses are refused.
    let v = env
        .ok(200, "GET", "/v1/me/notifications", Some(&quiet), None)
        .await;
    assert_eq!(v["mail_enabled"], true);
    assert_eq!(v["events"]["preservation.awaiting_review"], true, "{v}");
    let (s, v) = env
        .call(
            "PUT",
            "/v1/me/notifications",
            Some(&quiet),
            Some(json!({"events": {"everything": false}})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = env
        .call(
            "PUT",
            "/v1/me/notifications",
            Some(&ua),
            Some(json!({"email": "alice@bank-a.test\r\nBcc: evil@attacker.test"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let v = env
        .ok(
            200,
            "PUT",
            "/v1/me/notifications",
            Some(&quiet),
            Some(json!({"events": {"preservation.awaiting_review": false}})),
        )
        .await;
    assert_eq!(v["events"]["preservation.awaiting_review"], false);
    env.ok(
        200,
        "PUT",
        "/v1/me/notifications",
        Some(&ua),
        Some(json!({"email": "alice@bank-a.test"})),
    )
    .await;

    // 1. The relay is down: the mail waits in the outbox, attempted.
    let (id, number) = submitted(&env, &ua, product).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let o = outbox(&env).await;
        assert_eq!(
            o.len(),
            1,
            "one mail: rita only (quinn opted out, rob is another bank): {o:?}"
        );
        let (to, kind, state, attempts, err) = &o[0];
        assert_eq!(
            (to.as_str(), kind.as_str()),
            ("rita@bank-a.test", "preservation.awaiting_review")
        );
        if *attempts >= 2 {
            assert_eq!(state, "pending");
            assert!(err.is_some(), "{o:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mails(&out).is_empty());

    // 2. The relay comes back: the mail arrives, once, as specified.
    let smtp = smtp_up(port, &out, &[]).await;
    let m = wait_mails(&smtp.out, 1, "the review mail").await;
    let m = &m[0];
    assert_eq!(m["rcpt_tos"], json!(["rita@bank-a.test"]), "{m}");
    assert_eq!(m["mail_from"], "noreply@anchord.test");
    assert!(m["subject"].as_str().unwrap().contains(&number), "{m}");
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .contains("awaits your review"),
        "{m}"
    );
    let link = format!("https://console.anchord.test/preservations/{id}");
    assert!(m["body"].as_str().unwrap().contains(&link), "{m}");
    assert!(
        m["message_id"].as_str().unwrap().ends_with("@anchord>"),
        "{m}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while outbox(&env).await[0].2 != "sent" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            outbox(&env).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 3. A rejection mails the creator; the reason a reviewer typed (with
    // line breaks) stays in the body and adds no header or recipient.
    let rita = env.login("rita", &common::password_of("rita")).await;
    env.ok(
        200,
        "POST",
        &format!("/v1/preservations/{id}/reject"),
        Some(&rita),
        Some(json!({"reason": "blurred scan\r\nBcc: evil@attacker.test"})),
    )
    .await;
    let all = wait_mails(&smtp.out, 2, "the rejection mail").await;
    let m = &all[1];
    assert_eq!(m["rcpt_tos"], json!(["alice@bank-a.test"]), "{m}");
    assert!(m["subject"].as_str().unwrap().contains("rejected"), "{m}");
    assert!(
        m["headers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| !h[0].as_str().unwrap().eq_ignore_ascii_case("bcc")),
        "{m}"
    );
    assert!(
        m["body"]
            .as_str()
            .unwrap()
            .contains("blurred scan Bcc: evil@attacker.test"),
        "{m}"
    );
    // Nobody else got anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails(&smtp.out).len(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

/// The other kinds through the real SMTP server, with the pipeline running:
/// a contract mails its pending signer and its outside invitee (with the
/// one-time link), its title's CR/LF adding no header or recipient; an
/// approval mails the creator; a judicial request mails the addressed
/// institution's users and its decision the applicant. The inboxes count
/// the same things.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_and_judicial_events_mail_signers_invitees_and_institutions() {
    let port = free_port();
    let dir = common::temp_dir("wf_smtp2");
    let smtp = smtp_up(port, &dir.join("mails.jsonl"), &[]).await;
    let env = start(true, |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.from = "noreply@anchord.test".into();
        c.smtp.tls = anchord_workflow::config::SmtpTls::None;
        c.smtp.link_base = "https://console.anchord.test".into();
        c.smtp.poll_ms = 100;
    })
    .await;
    let admin = env.admin().await;
    let product = env.product(&admin).await;
    let a = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "A", "tenant": "bank-a"}),
        )
        .await;
    let n = env.organisation(&admin,
        json!({"kind": "notary", "name": "Notary", "institution_id": "notary-n", "fee_cents": 100}),
    )
    .await;
    let (_, alice) = env
        .member(
            &admin,
            a,
            "alice",
            "user",
            json!({"email": "alice@bank-a.test"}),
        )
        .await;
    let (_, sam) = env
        .member(
            &admin,
            a,
            "sam",
            "user",
            json!({"email": "sam@bank-a.test"}),
        )
        .await;
    let (_, rita) = env
        .member(
            &admin,
            a,
            "rita",
            "reviewer",
            json!({"email": "rita@bank-a.test"}),
        )
        .await;
    let (_, judge) = env
        .member(
            &admin,
            n,
            "judge",
            "institution",
            json!({"email": "judge@notary.test"}),
        )
        .await;

    // A contract: sam signs, guest is invited by e-mail.
    let tid = env
        .ok(
            201,
            "POST",
            "/v1/contract-types",
            Some(&admin),
            Some(json!({"name": "loan", "template_text": "借款人 {{a}}"})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // A title with a line break is refused at the door (422, H19); one that
    // only looks like a header stays on the subject's one line.
    env.ok(422, "POST", "/v1/contracts", Some(&alice),
        Some(json!({"contract_type_id": tid, "title": "Loan\r\nBcc: evil@attacker.test",
                    "variables": {"a": "张三"}, "signers": ["sam", {"email": "guest@outside.test"}]})))
        .await;
    let k = env
        .ok(201, "POST", "/v1/contracts", Some(&alice),
            Some(json!({"contract_type_id": tid, "title": "Loan Bcc: evil@attacker.test",
                        "variables": {"a": "张三"}, "signers": ["sam", {"email": "guest@outside.test"}]})))
        .await;
    let number = k["number"].as_str().unwrap().to_owned();
    let token = k["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let all = wait_mails(&smtp.out, 2, "the signer's and the invitee's mails").await;
    let to = |m: &Value| m["rcpt_tos"].clone();
    let for_sam = all
        .iter()
        .find(|m| to(m) == json!(["sam@bank-a.test"]))
        .expect("sam's mail");
    let subject = for_sam["subject"].as_str().unwrap();
    assert!(
        subject.contains(&number) && subject.contains("awaits your signature"),
        "{for_sam}"
    );
    assert!(
        subject.contains("Loan Bcc: evil@attacker.test"),
        "the title, on one line: {for_sam}"
    );
    assert!(for_sam["body"].as_str().unwrap().contains(&format!(
        "https://console.anchord.test/contracts/{}",
        k["id"]
    )));
    let for_guest = all
        .iter()
        .find(|m| to(m) == json!(["guest@outside.test"]))
        .expect("the invitee's mail");
    assert!(
        for_guest["body"].as_str().unwrap().contains(&format!(
            "https://console.anchord.test/invitation#token={token}"
        )),
        "{for_guest}"
    );
    let v = env.ok(200, "GET", "/v1/inbox", Some(&sam), None).await;
    assert_eq!(v["counts"]["contract_signatures"], 1, "{v}");

    // A preservation reviewed, sealed, then notarized.
    let (pid, _) = submitted(&env, &alice, product).await;
    env.ok(
        200,
        "POST",
        &format!("/v1/preservations/{pid}/approve"),
        Some(&rita),
        None,
    )
    .await;
    env.wait_until(
        "the preservation on chain",
        &format!("/v1/preservations/{pid}"),
        &alice,
        90,
        |v| v["status"] == "on_chain",
    )
    .await;
    let r = env
        .ok(201, "POST", "/v1/judicial-requests", Some(&alice),
            Some(json!({"kind": "notarization", "subject_kind": "preservation", "subject_id": pid, "institution_id": "notary-n"})))
        .await;
    let rid = r["id"].as_i64().unwrap();
    let v = env.ok(200, "GET", "/v1/inbox", Some(&judge), None).await;
    assert_eq!(v["counts"]["judicial_requests"], 1, "{v}");
    let ids = env
        .walk_pages("/v1/inbox/judicial_requests?limit=10", &judge)
        .await;
    assert_eq!(ids, vec![rid]);
    env.ok(
        200,
        "POST",
        &format!("/v1/judicial-requests/{rid}/refuse"),
        Some(&judge),
        Some(json!({"reason": "no original"})),
    )
    .await;
    let v = env.ok(200, "GET", "/v1/inbox", Some(&judge), None).await;
    assert_eq!(v["counts"]["judicial_requests"], 0, "{v}");

    // 2 contract mails + rita's review + alice's approval + the judge's
    // request + alice's decision.
    let all = wait_mails(&smtp.out, 6, "six mails").await;
    let kinds: Vec<(String, String)> = all
        .iter()
        .map(|m| {
            (
                m["rcpt_tos"][0].as_str().unwrap().to_owned(),
                m["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |to: &str, what: &str| kinds.iter().any(|(t, s)| t == to && s.contains(what));
    assert!(has("rita@bank-a.test", "awaits your review"), "{kinds:?}");
    assert!(has("alice@bank-a.test", "approved"), "{kinds:?}");
    assert!(has("judge@notary.test", "received"), "{kinds:?}");
    assert!(has("alice@bank-a.test", "refused"), "{kinds:?}");
    for m in &all {
        assert_eq!(m["rcpt_tos"].as_array().unwrap().len(), 1, "{m}");
        assert!(
            m["headers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| !h[0].as_str().unwrap().eq_ignore_ascii_case("bcc")),
            "{m}"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails(&smtp.out).len(), 6, "{kinds:?}");
    let _ = (rita, std::fs::remove_dir_all(dir));
}

/// Issue 15, second pass: an organisation administrator (`org_admin`)
/// manages the users of their own organisation (create, edit, disable,
/// enable, reset a password, revoke sessions) and nothing else: every such
/// route refuses another organisation's users (and the platform
/// administrator) with 403 and changes nothing; nobody is created as or
/// raised to a platform administrator; an organisation administrator is a
/// role of every kind of organisation and reads no bank records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_admins_manage_their_own_organisation_only() {
    let env = start(false, |_| {}).await;
    let admin = env.admin().await;
    let admin_id = env.ok(200, "GET", "/v1/me", Some(&admin), None).await["id"].clone();
    let a = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "A", "tenant": "bank-a"}),
        )
        .await;
    let b = env
        .organisation(
            &admin,
            json!({"kind": "bank", "name": "B", "tenant": "bank-b"}),
        )
        .await;
    let court = env
        .organisation(
            &admin,
            json!({"kind": "court", "name": "法院", "institution_id": "court-1"}),
        )
        .await;
    // The platform administrator appoints one per organisation.
    let (oa_id, oa) = env
        .member(&admin, a, "olivia", "org_admin", json!({}))
        .await;
    let (_, ob) = env.member(&admin, b, "oscar", "org_admin", json!({})).await;
    let (_, oc) = env
        .member(&admin, court, "otto", "org_admin", json!({}))
        .await;
    let me = env.ok(200, "GET", "/v1/me", Some(&oa), None).await;
    assert_eq!(
        (&me["role"], &me["organisation_id"], &me["tenant"]),
        (&json!("org_admin"), &json!(a), &json!("bank-a")),
        "{me}"
    );
    // An organisation administrator needs an organisation.
    let (s, v) = env
        .call(
            "POST",
            "/v1/users",
            Some(&admin),
            Some(json!({"username": "nobody", "password": common::password_of("nobody"), "role": "org_admin"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");

    // Olivia creates users of bank A: by either route, at most her role.
    let new = |name: &str, role: &str| json!({"username": name, "password": common::password_of(name), "role": role});
    let u = env
        .ok(
            201,
            "POST",
            "/v1/users",
            Some(&oa),
            Some(new("ann", "user")),
        )
        .await;
    assert_eq!(
        (u["organisation_id"].as_i64(), u["tenant"].as_str()),
        (Some(a), Some("bank-a")),
        "{u}"
    );
    let ann_id = u["id"].as_i64().unwrap();
    let (rex_id, _) = env.member(&oa, a, "rex", "reviewer", json!({})).await;
    let (_, deputy) = env.member(&oa, a, "dora", "org_admin", json!({})).await;
    // The court's administrator creates institution users of the court.
    let (_, judge) = env
        .member(&oc, court, "judy", "institution", json!({}))
        .await;
    assert_eq!(
        env.ok(200, "GET", "/v1/me", Some(&judge), None).await["institution_id"],
        "court-1"
    );
    // Bank B's user, and the users olivia must not touch.
    let (bo_id, bo) = env.member(&ob, b, "bert", "user", json!({})).await;

    // Never a platform administrator, never another organisation's user.
    for (path, body, want) in [
        ("/v1/users".to_owned(), new("root2", "admin"), 403),
        (
            format!("/v1/organisations/{a}/users"),
            new("root3", "admin"),
            403,
        ),
        (
            "/v1/users".to_owned(),
            json!({"username": "x2", "password": common::password_of("x2"), "role": "user", "organisation_id": b}),
            403,
        ),
        (
            format!("/v1/organisations/{b}/users"),
            new("x3", "user"),
            403,
        ),
        (
            format!("/v1/organisations/{court}/users"),
            new("x4", "institution"),
            403,
        ),
        (
            "/v1/users".to_owned(),
            json!({"username": "x5", "password": common::password_of("x5"), "role": "user", "tenant": "bank-b"}),
            403,
        ),
        (
            "/v1/users".to_owned(),
            json!({"username": "x6", "password": common::password_of("x6"), "role": "institution", "institution_id": "court-1"}),
            403,
        ),
        // Her own tenant in the v1 form is her organisation.
        (
            "/v1/users".to_owned(),
            json!({"username": "x9", "password": common::password_of("x9"), "role": "user", "tenant": "bank-a"}),
            201,
        ),
        ("/v1/users".to_owned(), new("x7", "institution"), 422),
        ("/v1/users".to_owned(), new("x8", "signer"), 422),
    ] {
        let (s, v) = env.call("POST", &path, Some(&oa), Some(body.clone())).await;
        assert_eq!(s, want, "POST {path} {body}: {v}");
    }

    // Every management route, on bank B's user and on the platform
    // administrator: 403, and nothing changed.
    let reset = json!({"new_password": "violet-Kettle-orbit-42"});
    for target in [json!(bo_id), admin_id.clone()] {
        for (method, path, body) in [
            (
                "PATCH",
                format!("/v1/users/{target}"),
                Some(json!({"display_name": "taken over"})),
            ),
            (
                "PATCH",
                format!("/v1/users/{target}"),
                Some(json!({"role": "org_admin"})),
            ),
            ("POST", format!("/v1/users/{target}/disable"), None),
            ("POST", format!("/v1/users/{target}/enable"), None),
            (
                "PUT",
                format!("/v1/users/{target}/password"),
                Some(reset.clone()),
            ),
            ("DELETE", format!("/v1/users/{target}/sessions"), None),
        ] {
            let (s, v) = env.call(method, &path, Some(&oa), body).await;
            assert_eq!(s, 403, "{method} {path}: {v}");
        }
    }
    env.ok(200, "GET", "/v1/me", Some(&bo), None).await;
    env.ok(200, "GET", "/v1/me", Some(&admin), None).await;
    let bert = env
        .ok(
            200,
            "GET",
            &format!("/v1/users?organisation_id={b}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(bert.to_string().contains("\"bert\""), "{bert}");
    assert!(!bert.to_string().contains("taken over"), "{bert}");
    // Lists: her organisation's users only.
    let listed = env.ok(200, "GET", "/v1/users", Some(&oa), None).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x9", "dora", "rex", "ann", "olivia"], "{listed}");
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["organisation_id"] == a)
    );
    for path in [
        format!("/v1/users?organisation_id={b}"),
        format!("/v1/organisations/{b}/users"),
        format!("/v1/organisations/{b}"),
    ] {
        let (s, v) = env.call("GET", &path, Some(&oa), None).await;
        assert_eq!(s, 403, "GET {path}: {v}");
    }
    let own = env
        .ok(
            200,
            "GET",
            &format!("/v1/organisations/{a}/users"),
            Some(&oa),
            None,
        )
        .await;
    assert_eq!(own.as_array().unwrap().len(), 5, "{own}");
    // Nothing of the platform's or of the bank's records.
    for (method, path, body) in [
        (
            "POST",
            "/v1/organisations",
            Some(json!({"kind": "bank", "name": "Z", "tenant": "bank-z"})),
        ),
        (
            "POST",
            &format!("/v1/organisations/{a}/disable") as &str,
            None,
        ),
        (
            "PATCH",
            &format!("/v1/organisations/{a}") as &str,
            Some(json!({"name": "renamed"})),
        ),
        ("GET", "/v1/organisations", None),
        ("GET", "/v1/preservations", None),
        ("GET", "/v1/search/contracts", None),
        ("GET", "/v1/audit", None),
    ] {
        let (s, v) = env.call(method, path, Some(&oa), body).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
    }

    // Roles move within the organisation's roles only: never to admin or
    // signer, never a role of another kind of organisation.
    for role in ["admin", "signer", "institution"] {
        let (s, v) = env
            .call(
                "PATCH",
                &format!("/v1/users/{ann_id}"),
                Some(&oa),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(s, 422, "{role}: {v}");
        assert!(v["error"]["fields"]["role"].is_string(), "{v}");
    }
    let v = env
        .ok(
            200,
            "PATCH",
            &format!("/v1/users/{rex_id}"),
            Some(&oa),
            Some(json!({"role": "org_admin", "display_name": "Rex"})),
        )
        .await;
    assert_eq!(
        (v["role"].as_str(), v["display_name"].as_str()),
        (Some("org_admin"), Some("Rex"))
    );
    let v = env
        .ok(
            200,
            "PATCH",
            &format!("/v1/users/{rex_id}"),
            Some(&oa),
            Some(json!({"role": "reviewer"})),
        )
        .await;
    assert_eq!(v["role"], "reviewer");

    // Her own users: reset (sessions end, a change is due), revoke,
    // disable (login refused), enable.
    let ann = env.login("ann", &common::password_of("ann")).await;
    let v = env
        .ok(
            200,
            "PUT",
            &format!("/v1/users/{ann_id}/password"),
            Some(&oa),
            Some(reset.clone()),
        )
        .await;
    assert_eq!(v["must_change_password"], true, "{v}");
    let (s, _) = env.call("GET", "/v1/me", Some(&ann), None).await;
    assert_eq!(s, 401, "the reset ended ann's session");
    let ann = env.login("ann", "violet-Kettle-orbit-42").await;
    let v = env
        .ok(
            200,
            "DELETE",
            &format!("/v1/users/{ann_id}/sessions"),
            Some(&oa),
            None,
        )
        .await;
    assert_eq!(v["revoked"], 1, "{v}");
    let (s, _) = env.call("GET", "/v1/me", Some(&ann), None).await;
    assert_eq!(s, 401);
    env.ok(
        200,
        "POST",
        &format!("/v1/users/{ann_id}/disable"),
        Some(&oa),
        None,
    )
    .await;
    let (s, _) = env
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"username": "ann", "password": "violet-Kettle-orbit-42"})),
        )
        .await;
    assert_eq!(s, 401, "disabled");
    env.ok(
        200,
        "POST",
        &format!("/v1/users/{ann_id}/enable"),
        Some(&oa),
        None,
    )
    .await;
    env.login("ann", "violet-Kettle-orbit-42").await;
    // Not herself; and her deputy (an org_admin of bank A) manages her.
    let (s, _) = env
        .call(
            "POST",
            &format!("/v1/users/{oa_id}/disable"),
            Some(&oa),
            None,
        )
        .await;
    assert_eq!(s, 409);
    env.ok(
        200,
        "PATCH",
        &format!("/v1/users/{oa_id}"),
        Some(&deputy),
        Some(json!({"display_name": "Olivia"})),
    )
    .await;
    // Bank B's administrator cannot touch bank A's.
    let (s, _) = env
        .call(
            "POST",
            &format!("/v1/users/{oa_id}/disable"),
            Some(&ob),
            None,
        )
        .await;
    assert_eq!(s, 403);

    // The database holds the same line whoever writes: an organisation
    // administrator has its organisation's tenant; a platform
    // administrator has no organisation.
    let db = env.db.client().await;
    let r = db
        .query_one(
            "SELECT tenant, institution_id FROM workflow.users WHERE username = 'otto'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1)),
        (None, Some("court-1".into()))
    );
    let e = db
        .execute(
            "UPDATE workflow.users SET role = 'org_admin' WHERE username = 'root'",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.as_db_error().and_then(|d| d.constraint()),
        Some("users_organisation"),
        "{e}"
    );
}
