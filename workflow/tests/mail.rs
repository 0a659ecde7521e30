//! Issue 15 (H18): the notification outbox as banks run it, over HTTP against
//! the real services: SMTP with a login and TLS against a real relay
//! (aiosmtpd from the test venv, with a throwaway CA made here), the
//! outbox's retention, invitations by phone through an SMS gateway (a local
//! HTTP sink), and a flood of concurrent invitation registrations.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anchord_testkit::process::free_port;
use anchord_workflow::config::{SmsConfig, SmtpTls};
use common::smtp::{mails, smtp_up};
use common::{Env, start};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers

/// A throwaway certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_owned());
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Write the CA's certificate to `dir/name.pem`.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let f = dir.join(format!("{name}.pem"));
        std::fs::write(&f, self.cert.pem()).unwrap();
        f
    }

    /// A server certificate for 127.0.0.1 and localhost signed by this CA:
    /// (certificate file, key file) under `dir`.
    fn server(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "relay".to_owned());
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

/// One outbox row: id, channel, recipient, state, attempts, last_error,
/// body.
type Row = (i64, String, String, String, i32, Option<String>, String);

async fn outbox(env: &Env) -> Vec<Row> {
    let c = env.db.client().await;
    c.query(
        "SELECT id, channel, recipient, state, attempts, last_error, body
           FROM workflow.mail_outbox ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        )
    })
    .collect()
}

/// Poll the outbox until `f` holds (at most `secs`).
async fn wait_outbox(env: &Env, what: &str, secs: u64, f: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let rows = outbox(env).await;
        if f(&rows) {
            return rows;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A bank user `alice` of bank-a and a contract type; returns (admin,
/// alice, type id).
async fn bank(env: &Env) -> (String, String, i64) {
    let admin = env.admin().await;
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
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
    (admin, alice, tid)
}

/// Create a contract with `signers` as alice; returns its answer.
async fn contract(env: &Env, alice: &str, tid: i64, signers: Value) -> Value {
    env.ok(
        201,
        "POST",
        "/v1/contracts",
        Some(alice),
        Some(json!({"contract_type_id": tid, "title": "Loan 借款合同",
                    "variables": {"a": "张三"}, "signers": signers})),
    )
    .await
}

const RELAY_USER: &str = "anchord-mailer";
const RELAY_PASSWORD: &str = "relay-Secret-7f3c";

fn password_file(dir: &Path) -> PathBuf {
    let f = dir.join("smtp-password");
    std::fs::write(&f, format!("{RELAY_PASSWORD}\n")).unwrap();
    f
}

// ---------------------------------------------------------------------------
// SMTP: login and TLS

/// SMTP as banks run it, against one relay address that changes behind the
/// mailer's back (STARTTLS required, the relay's certificate checked
/// against the configured CA file, a login read from a file): a relay that
/// refuses the password, one with an untrusted certificate and one that
/// does not offer STARTTLS each leave the invitation mail pending with a
/// clear recorded error (no crash, no mail through them, never the password
/// in the error); the right relay then delivers it, over TLS, logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_login_and_starttls_deliver_and_refuse_wrong_passwords_untrusted_relays_and_downgrades()
 {
    let dir = common::temp_dir("wf_smtp_tls");
    let port = free_port();
    let trusted = Ca::new("Bank internal CA");
    let stranger = Ca::new("Someone else's CA");
    let ca_file = trusted.write(&dir, "ca");
    let (good_crt, good_key) = trusted.server(&dir, "relay");
    let (bad_crt, bad_key) = stranger.server(&dir, "impostor");
    let pw = password_file(&dir);
    let env = start(false, |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.from = "noreply@anchord.test".into();
        c.smtp.tls = SmtpTls::Starttls;
        c.smtp.ca_file = Some(ca_file.clone());
        c.smtp.username = RELAY_USER.into();
        c.smtp.password_file = Some(pw.clone());
        c.smtp.link_base = "https://console.anchord.test".into();
        c.smtp.poll_ms = 100;
        c.smtp.timeout_ms = 3000;
        c.smtp.backoff_initial_ms = 100;
        c.smtp.backoff_max_ms = 300;
        c.smtp.max_attempts = 10_000;
    })
    .await;
    let (_, alice, tid) = bank(&env).await;
    let k = contract(&env, &alice, tid, json!([{"email": "guest@outside.test"}])).await;
    let link = &k["invitation_links"][0];
    assert_eq!(link["delivery"], "email", "{k}");
    let token = link["token"].as_str().unwrap().to_owned();

    let crt = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let (good_crt, good_key, bad_crt, bad_key) =
        (crt(&good_crt), crt(&good_key), crt(&bad_crt), crt(&bad_key));
    let scenarios: [(&str, Vec<&str>, &str); 3] = [
        (
            "a relay that refuses the password",
            vec![
                "--mode",
                "starttls",
                "--cert",
                &good_crt,
                "--key",
                &good_key,
                "--user",
                RELAY_USER,
                "--password",
                "not-the-configured-one",
            ],
            "refused the login",
        ),
        (
            "a relay whose certificate the CA file does not vouch for",
            vec![
                "--mode",
                "starttls",
                "--cert",
                &bad_crt,
                "--key",
                &bad_key,
                "--user",
                RELAY_USER,
                "--password",
                RELAY_PASSWORD,
            ],
            "TLS with the relay failed",
        ),
        (
            "a relay that does not offer STARTTLS",
            vec!["--mode", "plain"],
            "does not offer STARTTLS",
        ),
    ];
    for (i, (what, args, error)) in scenarios.iter().enumerate() {
        let out = dir.join(format!("refused-{i}.jsonl"));
        let relay = smtp_up(port, &out, args).await;
        let before = outbox(&env).await[0].4;
        let rows = wait_outbox(&env, what, 60, |r| {
            r[0].4 > before && r[0].5.as_deref().is_some_and(|e| e.contains(error))
        })
        .await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            rows[0].3, "pending",
            "{what}: retried, not failed: {rows:?}"
        );
        let recorded = rows[0].5.clone().unwrap();
        assert!(
            !recorded.contains(RELAY_PASSWORD),
            "{what}: the error holds the password: {recorded}"
        );
        assert!(mails(&relay.out).is_empty(), "{what}: a mail went through");
        drop(relay);
        // Let the port go before the next relay binds it.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The service never stopped.
    assert!(!env.handle.as_ref().unwrap().is_finished());
    env.ok(200, "GET", "/v1/me", Some(&alice), None).await;

    // The right relay: STARTTLS required by it too, the login required.
    let out = dir.join("delivered.jsonl");
    let relay = smtp_up(
        port,
        &out,
        &[
            "--mode",
            "starttls",
            "--require-starttls",
            "--cert",
            &good_crt,
            "--key",
            &good_key,
            "--user",
            RELAY_USER,
            "--password",
            RELAY_PASSWORD,
        ],
    )
    .await;
    let rows = wait_outbox(&env, "the invitation mail sent", 60, |r| r[0].3 == "sent").await;
    assert!(rows[0].5.is_none(), "{rows:?}");
    let m = mails(&relay.out);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["rcpt_tos"], json!(["guest@outside.test"]));
    assert_eq!(m[0]["tls"], true, "{}", m[0]);
    assert_eq!(m[0]["login"], RELAY_USER, "{}", m[0]);
    assert!(
        m[0]["body"].as_str().unwrap().contains(&format!(
            "https://console.anchord.test/invitation#token={token}"
        )),
        "{}",
        m[0]
    );
}

/// Implicit TLS (SMTPS, as on port 465) with a login whose password comes
/// from an environment variable: delivered over TLS, logged in. (The
/// variable is one cargo sets for every test process, `CARGO_PKG_NAME`:
/// the workspace forbids the `unsafe` `set_var`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_implicit_tls_with_a_login_from_the_environment_delivers() {
    let password = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    let dir = common::temp_dir("wf_smtps");
    let port = free_port();
    let ca = Ca::new("Bank internal CA");
    let ca_file = ca.write(&dir, "ca");
    let (crt, key) = ca.server(&dir, "relay");
    let out = dir.join("mails.jsonl");
    let relay = smtp_up(
        port,
        &out,
        &[
            "--mode",
            "implicit",
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--user",
            RELAY_USER,
            "--password",
            &password,
        ],
    )
    .await;
    let env = start(false, |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.from = "noreply@anchord.test".into();
        c.smtp.tls = SmtpTls::Implicit;
        c.smtp.ca_file = Some(ca_file.clone());
        c.smtp.username = RELAY_USER.into();
        c.smtp.password_env = "CARGO_PKG_NAME".into();
        c.smtp.link_base = "https://console.anchord.test".into();
        c.smtp.poll_ms = 100;
        c.smtp.backoff_initial_ms = 100;
        c.smtp.backoff_max_ms = 300;
    })
    .await;
    let (_, alice, tid) = bank(&env).await;
    contract(&env, &alice, tid, json!([{"email": "guest@outside.test"}])).await;
    let rows = wait_outbox(&env, "the mail sent", 60, |r| r[0].3 == "sent").await;
    assert_eq!(rows[0].4, 1, "{rows:?}");
    let m = mails(&relay.out);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["tls"], true);
    assert_eq!(m[0]["login"], RELAY_USER);
}

/// `tls = "opportunistic"` (no login): STARTTLS, with the certificate
/// checked, when the relay offers it; plaintext when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_opportunistic_tls_upgrades_when_offered_and_sends_in_clear_otherwise() {
    let dir = common::temp_dir("wf_smtp_opp");
    let port = free_port();
    let ca = Ca::new("Bank internal CA");
    let ca_file = ca.write(&dir, "ca");
    let (crt, key) = ca.server(&dir, "relay");
    let env = start(false, |c| {
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = port;
        c.smtp.from = "noreply@anchord.test".into();
        c.smtp.tls = SmtpTls::Opportunistic;
        c.smtp.ca_file = Some(ca_file.clone());
        c.smtp.link_base = "https://console.anchord.test".into();
        c.smtp.poll_ms = 100;
        c.smtp.backoff_initial_ms = 100;
        c.smtp.backoff_max_ms = 300;
    })
    .await;
    let (_, alice, tid) = bank(&env).await;
    let out = dir.join("tls.jsonl");
    let relay = smtp_up(
        port,
        &out,
        &[
            "--mode",
            "starttls",
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    contract(&env, &alice, tid, json!([{"email": "one@outside.test"}])).await;
    wait_outbox(&env, "the first mail sent", 60, |r| r[0].3 == "sent").await;
    let m = mails(&relay.out);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["tls"], true, "STARTTLS when offered: {}", m[0]);
    drop(relay);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = dir.join("plain.jsonl");
    let relay = smtp_up(port, &out, &["--mode", "plain"]).await;
    contract(&env, &alice, tid, json!([{"email": "two@outside.test"}])).await;
    wait_outbox(&env, "the second mail sent", 60, |r| {
        r.len() == 2 && r[1].3 == "sent"
    })
    .await;
    let m = mails(&relay.out);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["tls"], false, "in clear when not offered: {}", m[0]);
}

/// A login is configured only over TLS, with a password source; a CA file
/// only with TLS.
#[test]
fn smtp_logins_need_tls_and_a_password_source() {
    let base = || {
        let mut c = anchord_workflow::WorkflowConfig::default();
        c.smtp.host = "smtp.bank.test".into();
        c.smtp.from = "noreply@anchord.test".into();
        c.smtp.link_base = "https://console.anchord.test".into();
        c.smtp.username = "mailer".into();
        c.smtp.password_file = Some("/run/secrets/smtp".into());
        c
    };
    assert!(base().validate().is_ok());
    for tls in [SmtpTls::None, SmtpTls::Opportunistic] {
        let mut c = base();
        c.smtp.tls = tls;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("only over TLS"), "{tls:?}: {e}");
    }
    let mut c = base();
    c.smtp.password_file = None;
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("password_file or workflow.smtp.password_env"),
        "{e}"
    );
    let mut c = base();
    c.smtp.username.clear();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("need workflow.smtp.username"), "{e}");
    let mut c = base();
    c.smtp.username.clear();
    c.smtp.password_file = None;
    c.smtp.tls = SmtpTls::None;
    c.smtp.ca_file = Some("/etc/ssl/bank-ca.pem".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("ca_file needs tls"), "{e}");
}

// ---------------------------------------------------------------------------
// Retention

/// The owned outbox loop deletes sent and given-up rows past their
/// channel's retention, in bounded batches (more rows than one batch), and
/// keeps recent and pending ones, even while e-mail is off; the outbox
/// gauge counts what is left by channel and state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_past_their_retention_are_purged_and_recent_and_pending_ones_stay() {
    let env = start(false, |c| {
        c.smtp.purge_interval_s = 1;
        c.smtp.retention_days = 30;
        c.sms.retention_days = 7;
    })
    .await;
    let c = env.db.client().await;
    let old = anchord_workflow::mailer::PURGE_BATCH * 2 + 17;
    let insert = "INSERT INTO workflow.mail_outbox
                    (message_id, recipient, kind, object, subject, body, state, channel, created_at, sent_at, finished_at)
                  SELECT gen_random_uuid()::text, $1, 'contract.awaiting_signature', $2, 's', 'b', $3, $4,
                         now() - make_interval(days => $5), CASE WHEN $3 = 'sent' THEN now() - make_interval(days => $5) END,
                         CASE WHEN $3 <> 'pending' THEN now() - make_interval(days => $5) END
                    FROM generate_series(1::int8, $6::int8)";
    let rows: [(&str, &str, &str, &str, i32, i64); 7] = [
        // recipient, object, state, channel, age in days, how many
        ("old@x.test", "gone", "sent", "email", 40, old),
        ("old@x.test", "gone", "failed", "email", 31, 3),
        ("+8613800000009", "gone", "sent", "sms", 8, 2),
        ("new@x.test", "kept-sent", "sent", "email", 29, 1),
        ("new@x.test", "kept-failed", "failed", "email", 1, 1),
        ("old@x.test", "kept-pending", "pending", "email", 400, 1),
        ("+8613800000009", "kept-sms", "sent", "sms", 6, 1),
    ];
    for (to, object, state, channel, days, n) in rows {
        c.execute(insert, &[&to, &object, &state, &channel, &days, &n])
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let gone: i64 = c
            .query_one(
                "SELECT count(*) FROM workflow.mail_outbox WHERE object = 'gone'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if gone == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{gone} rows past their retention are still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kept: Vec<String> = c
        .query(
            "SELECT object FROM workflow.mail_outbox ORDER BY object",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kept,
        ["kept-failed", "kept-pending", "kept-sent", "kept-sms"],
        "recent and pending rows stay"
    );
    // The gauge: what is left (each series set by the purge round; other
    // tests of this binary may set it too, so wait for this one's counts).
    let gauge = |ch: &str, st: &str| {
        anchord_workflow::metrics::OUTBOX_MESSAGES
            .with_label_values(&[ch, st])
            .get()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(gauge("email", "sent") == 1
        && gauge("email", "failed") == 1
        && gauge("email", "pending") == 1
        && gauge("sms", "sent") == 1
        && gauge("sms", "pending") == 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox gauge: email sent {} failed {} pending {}, sms sent {}",
            gauge("email", "sent"),
            gauge("email", "failed"),
            gauge("email", "pending"),
            gauge("sms", "sent")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------
// SMS invitations

/// What the local SMS gateway received: (authorization, idempotency key,
/// body).
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A local SMS gateway on 127.0.0.1 answering the statuses `answers` in
/// turn (then 200).
async fn sms_gateway(answers: Vec<u16>) -> (u16, Received) {
    let got: Received = Arc::default();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post({
            let got = got.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (got, answers) = (got.clone(), answers.clone());
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock()
                        .unwrap()
                        .push((h("authorization"), h("idempotency-key"), v));
                    let status = answers.lock().unwrap().next().unwrap_or(200);
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        "gateway says so",
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, got)
}

/// An outside party invited by phone receives the one-time link by SMS: the
/// answer says `delivery: sms`; the gateway gets a POST with the bearer
/// token from the file, the number and the link; a 503 is retried with the
/// same message id; a 400 fails the message at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_invitations_send_the_link_by_sms_through_the_gateway_with_retries() {
    let dir = common::temp_dir("wf_sms");
    let token_file = dir.join("sms-token");
    std::fs::write(&token_file, "sms-Token-81f2\n").unwrap();
    let (port, got) = sms_gateway(vec![503, 200, 400]).await;
    let env = start(false, |c| {
        c.sms.url = format!("http://127.0.0.1:{port}/send");
        c.sms.token_file = Some(token_file.clone());
        c.sms.link_base = "https://console.anchord.test/".into();
        c.sms.backoff_initial_ms = 100;
        c.sms.backoff_max_ms = 300;
        c.smtp.poll_ms = 100;
    })
    .await;
    let (_, alice, tid) = bank(&env).await;
    let phone = "+8613800000001";
    let k = contract(&env, &alice, tid, json!([{"phone": phone}])).await;
    let link = &k["invitation_links"][0];
    assert_eq!(link["delivery"], "sms", "{k}");
    let token = link["token"].as_str().unwrap().to_owned();
    let rows = wait_outbox(&env, "the SMS sent", 60, |r| r[0].3 == "sent").await;
    assert_eq!(rows[0].1, "sms");
    assert_eq!(rows[0].2, phone);
    assert_eq!(rows[0].4, 2, "one 503, then delivered: {rows:?}");
    let seen = got.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (auth, key, body) in &seen {
        assert_eq!(auth, "Bearer sms-Token-81f2");
        assert_eq!(body["to"], phone);
        assert_eq!(body["message_id"].as_str(), Some(key.as_str()));
        let text = body["text"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "https://console.anchord.test/invitation#token={token}"
            )),
            "{text}"
        );
    }
    assert_eq!(seen[0].1, seen[1].1, "a retry carries the same message id");
    // The gateway refuses the next one outright (400): failed at once.
    contract(&env, &alice, tid, json!([{"phone": "+8613800000002"}])).await;
    let rows = wait_outbox(&env, "the refused SMS failed", 60, |r| {
        r.len() == 2 && r[1].3 == "failed"
    })
    .await;
    assert_eq!(rows[1].4, 1, "{rows:?}");
    assert!(rows[1].5.as_deref().unwrap().contains("400"), "{rows:?}");
    assert!(!rows[1].5.as_deref().unwrap().contains("sms-Token-81f2"));
}

/// Without a gateway (or a relay), an invitation still answers its link
/// once, and says that nothing was sent; nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_without_a_gateway_or_relay_say_nothing_was_sent() {
    let env = start(false, |_| {}).await;
    let (_, alice, tid) = bank(&env).await;
    let k = contract(
        &env,
        &alice,
        tid,
        json!([{"phone": "+8613800000003"}, {"email": "guest@outside.test"}]),
    )
    .await;
    let links = k["invitation_links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{k}");
    for l in links {
        assert_eq!(l["delivery"], "none", "{l}");
        assert_eq!(l["token"].as_str().unwrap().len(), 64);
    }
    assert!(
        links[0]["delivery_note"]
            .as_str()
            .unwrap()
            .contains("no SMS was sent"),
        "{k}"
    );
    assert!(
        links[1]["delivery_note"]
            .as_str()
            .unwrap()
            .contains("no mail was sent"),
        "{k}"
    );
    assert!(outbox(&env).await.is_empty());
}

/// The gateway's URL is checked against the egress policy at start-up: the
/// service does not start with a cloud metadata address, plain http to a
/// non-loopback host, or credentials in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_gateway_outside_the_egress_policy_is_refused_at_start_up() {
    let dir = common::temp_dir("wf_sms_ssrf");
    let token_file = dir.join("sms-token");
    std::fs::write(&token_file, "t0ken\n").unwrap();
    let sms = |url: &str| SmsConfig {
        url: url.into(),
        token_file: Some(token_file.clone()),
        link_base: "https://console.anchord.test".into(),
        ..SmsConfig::default()
    };
    for (url, why) in [
        ("http://169.254.169.254/latest/send", "metadata"),
        ("https://[fd00:ec2::254]/send", "metadata"),
        ("http://10.1.2.3/send", "plain http"),
        ("https://user:pw@sms.example.com/send", "credentials"),
        ("ftp://sms.example.com/send", "http"),
    ] {
        let e = anchord_workflow::sms::Gateway::load(&sms(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("workflow.sms.url") && e.contains(why),
            "{url}: {e}"
        );
    }
    // The service itself refuses to start.
    let (db, ledger) = anchord_testkit::TestDb::migrated().await;
    ledger.ensure_suite(common::SUITE).await.unwrap();
    let config = anchord_workflow::WorkflowConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage_dir: dir.join("files"),
        brokers: anchord_testkit::kafka::brokers(),
        evidence_topic: "unused".into(),
        sms: sms("http://169.254.169.254/latest/send"),
        ..anchord_workflow::WorkflowConfig::default()
    };
    let sealer = anchord_core::checkpoint::NoteSigner::from_seed(
        "anchord.test/workflow",
        anchord_core::checkpoint::ALG_ED25519,
        &[9; 32],
    )
    .unwrap();
    let deps = anchord_workflow::Deps {
        ledger: anchord_ledger::Ledger::connect(&anchord_ledger::DatabaseConfig {
            max_connections: 2,
            ..db.config()
        })
        .unwrap(),
        suite: common::SUITE,
        keys: anchord_core::bundle::DeclaredKeys {
            sealer: sealer.verifier().vkey(),
            witnesses: vec![],
            quorum: 0,
        },
        health: anchord_workflow::Health::new(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let e = anchord_workflow::start(config, deps, stop.clone())
        .await
        .expect_err("the service must not start")
        .to_string();
    stop.cancel();
    assert!(
        e.contains("workflow.sms.url") && e.contains("metadata"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// A flood of registrations

/// 200 concurrent public registrations, half with random tokens and half
/// racing on one valid link: exactly one registers, every other answer is
/// a 4xx, none a 5xx; a signed-in user is served throughout; and the
/// password is hashed only for the live token's one claimant (with one
/// hashing slot and a 3 s wait for it, a hundred hashes would answer 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_invitation_registrations_registers_once_and_starves_nobody() {
    let env = Arc::new(
        start(false, |c| {
            c.password_hash_concurrency = 1;
            c.password_hash_wait_ms = 3000;
        })
        .await,
    );
    let (_, alice, tid) = bank(&env).await;
    let k = contract(&env, &alice, tid, json!([{"email": "guest@outside.test"}])).await;
    let token = k["invitation_links"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (env, done) = (env.clone(), done.clone());
        let t = if i % 2 == 0 {
            token.clone()
        } else {
            hex::encode(common::rand_bytes())
        };
        flood.spawn(async move {
            let name = format!("flood{i}");
            let (s, v) = env
                .call(
                    "POST",
                    "/v1/invitations/register",
                    None,
                    Some(json!({"token": t, "username": name, "password": common::password_of(&name)})),
                )
                .await;
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (i, s.as_u16(), v)
        });
    }
    // A signed-in user is served while the flood runs.
    let mut served = 0;
    while done.load(std::sync::atomic::Ordering::SeqCst) < 200 {
        env.ok(200, "GET", "/v1/contracts", Some(&alice), None)
            .await;
        served += 1;
    }
    assert!(served >= 1);
    let mut created = Vec::new();
    while let Some(r) = flood.join_next().await {
        let (i, s, v) = r.unwrap();
        assert!(s < 500, "request {i}: {s} {v}");
        if s == 201 {
            created.push(i);
        } else {
            assert!((400..500).contains(&s), "request {i}: {s} {v}");
            if i % 2 == 1 {
                assert!(s == 404 || s == 429, "a random token: {s} {v}");
            }
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0] % 2, 0, "only the valid token registers");
    let c = env.db.client().await;
    let signers: i64 = c
        .query_one(
            "SELECT count(*) FROM workflow.users WHERE role = 'signer'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(signers, 1);
}
