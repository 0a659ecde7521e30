//! RFC 3161 against a real TSA: `openssl ts -reply` behind a tiny loopback
//! HTTP wrapper. One TSA signs with RSA and fractional-second genTime, the
//! other with ECDSA P-256 and whole seconds.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use anchord_testkit::evidence;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anchord_batcher::tsa::{Tsa, verify_token};
use anchord_core::HashSuite;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("openssl is installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Make a TSA key and self-signed certificate (critical EKU timeStamping).
fn make_cert(dir: &Path, name: &str, ec: bool) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let mut c = Command::new("openssl");
    c.args(["req", "-x509", "-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN=Anchord test TSA {name}"))
        .args([
            "-addext",
            "extendedKeyUsage=critical,timeStamping",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ]);
    if ec {
        c.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
    } else {
        c.args(["-newkey", "rsa:2048"]);
    }
    run(c.arg("-keyout").arg(&key).arg("-out").arg(&crt));
    (key, crt)
}

struct LocalTsa {
    url: String,
    cert: PathBuf,
    _stop: tokio_util::sync::CancellationToken,
}

#[derive(Clone)]
struct TsaState {
    dir: PathBuf,
    section: &'static str,
}

async fn reply(State(s): State<TsaState>, body: Bytes) -> Vec<u8> {
    let n = anchord_testkit::unique("q");
    let q = s.dir.join(format!("{n}.tsq"));
    let r = s.dir.join(format!("{n}.tsr"));
    std::fs::write(&q, &body).unwrap();
    let out = tokio::process::Command::new("openssl")
        .args(["ts", "-reply", "-config"])
        .arg(s.dir.join("tsa.cnf"))
        .args(["-section", s.section, "-queryfile"])
        .arg(&q)
        .arg("-out")
        .arg(&r)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&r).unwrap()
}

/// Start a TSA on 127.0.0.1 for `section` of the generated config.
async fn local_tsa(dir: &Path, section: &'static str, cert: PathBuf) -> LocalTsa {
    let stop = tokio_util::sync::CancellationToken::new();
    let app = axum::Router::new()
        .route("/", post(reply))
        .with_state(TsaState {
            dir: dir.to_owned(),
            section,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
            .unwrap();
    });
    LocalTsa {
        url: format!("http://{addr}/"),
        cert,
        _stop: stop,
    }
}

fn setup() -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(anchord_testkit::unique("anchord_tsa"));
    std::fs::create_dir_all(&dir).unwrap();
    let (rsa_key, rsa_crt) = make_cert(&dir, "rsa", false);
    let (ec_key, ec_crt) = make_cert(&dir, "ec", true);
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    let common = |key: &Path, crt: &Path, digits: u8| {
        format!(
            "serial = {}\ncrypto_device = builtin\nsigner_cert = {}\nsigner_key = {}\n\
             signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\n\
             accuracy = secs:1, millisecs:500\nclock_precision_digits = {digits}\n\
             ordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir.join("serial").display(),
            crt.display(),
            key.display()
        )
    };
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = fractional\n\n[ fractional ]\n{}\n[ whole ]\n{}",
            common(&rsa_key, &rsa_crt, 3),
            common(&ec_key, &ec_crt, 0)
        ),
    )
    .unwrap();
    (dir, rsa_crt, ec_crt)
}

#[tokio::test]
async fn tokens_from_a_local_tsa_verify_with_fractional_and_whole_seconds() {
    let (dir, rsa_crt, ec_crt) = setup();
    let data = b"anchord.test/ledger\n5\ng2/xhOe0Gx4Ty1/Yn6HemNu6uZ6dKRiRP/Q7hqXHwhM=\n";
    let digest = HashSuite::Sha256.digest(data);
    for (section, crt, fractional) in [("fractional", &rsa_crt, true), ("whole", &ec_crt, false)] {
        let tsa_srv = local_tsa(&dir, section, crt.clone()).await;
        let tsa = Tsa::new(&tsa_srv.url, &tsa_srv.cert, Duration::from_secs(10)).unwrap();
        // A millisecond fraction of exactly .000 is printed without one:
        // try a few tokens for the fractional case.
        let mut seen_fraction = false;
        for _ in 0..5 {
            let token = tsa.timestamp(data).await.unwrap();
            let der = anchord_batcher::tsa::load_cert_der(crt).unwrap();
            let info = verify_token(&token, &digest, &der).unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            assert!((info.gen_time_unix - now).abs() < 300, "{info:?}");
            if !fractional {
                assert_eq!(info.gen_time_nanos, 0, "{section}: {info:?}");
                break;
            }
            if info.gen_time_nanos != 0 {
                seen_fraction = true;
                assert_eq!(info.gen_time_nanos % 1_000_000, 0, "millisecond precision");
                break;
            }
        }
        assert!(!fractional || seen_fraction, "no fractional genTime seen");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_token_over_another_digest_or_from_another_key_does_not_verify() {
    let (dir, rsa_crt, ec_crt) = setup();
    let tsa_srv = local_tsa(&dir, "fractional", rsa_crt.clone()).await;
    let tsa = Tsa::new(&tsa_srv.url, &tsa_srv.cert, Duration::from_secs(10)).unwrap();
    let token = tsa.timestamp(b"checkpoint one").await.unwrap();
    let rsa = anchord_batcher::tsa::load_cert_der(&rsa_crt).unwrap();
    let ec = anchord_batcher::tsa::load_cert_der(&ec_crt).unwrap();
    let right = HashSuite::Sha256.digest(b"checkpoint one");
    verify_token(&token, &right, &rsa).unwrap();
    let wrong = HashSuite::Sha256.digest(b"checkpoint two");
    let e = verify_token(&token, &wrong, &rsa).unwrap_err().to_string();
    assert!(e.contains("messageImprint"), "{e}");
    // Under another TSA's (EC) certificate: refused.
    assert!(verify_token(&token, &right, &ec).is_err());
    // Any flipped byte in the token breaks parsing or verification.
    let mut failures = 0;
    for i in (0..token.len()).step_by(7) {
        let mut t = token.clone();
        t[i] ^= 0x01;
        if verify_token(&t, &right, &rsa).is_err() {
            failures += 1;
        }
    }
    // Bytes inside unsigned parts (the embedded certificate) may not matter;
    // the signed ones must.
    assert!(failures > token.len() / 7 / 3, "{failures}");
    let mut t = token.clone();
    let n = t.len();
    t[n - 5] ^= 0x01; // inside the signature value, at the very end
    assert!(verify_token(&t, &right, &rsa).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_batcher_timestamps_each_checkpoint_and_audit_verifies_the_tokens() {
    use anchord_batcher::BatcherConfig;
    use anchord_core::checkpoint::{ALG_ED25519, NoteSigner};
    let (dir, rsa_crt, _) = setup();
    let tsa_srv = local_tsa(&dir, "fractional", rsa_crt.clone()).await;
    let (_db, ledger) = anchord_testkit::TestDb::migrated().await;
    let signer = NoteSigner::from_seed("anchord.test/ledger", ALG_ED25519, &[4; 32]).unwrap();
    let key = dir.join("sealer.key");
    std::fs::write(&key, signer.private_key_text()).unwrap();
    let entries = (0..3)
        .map(|i| evidence::entry("bank-a", format!("e-{i}"), vec![i as u8; 32]))
        .collect();
    evidence::append(
        &ledger,
        HashSuite::Sha256,
        evidence::RECEIVED_AT_US,
        entries,
    )
    .await;
    let config = BatcherConfig {
        block_interval_ms: 50,
        origin: "anchord.test/ledger".into(),
        signing_key: Some(key),
        tsa_url: Some(tsa_srv.url.clone()),
        tsa_cert: Some(rsa_crt.clone()),
        ..BatcherConfig::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(anchord_batcher::run(
        config,
        HashSuite::Sha256,
        ledger.clone(),
        stop.clone(),
    ));
    let mut stamped = false;
    for _ in 0..200 {
        if let Some(cp) = ledger.checkpoint(1).await.unwrap()
            && cp.timestamp_token.is_some()
        {
            stamped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(stamped, "checkpoint 1 never got a timestamp token");
    let report = anchord_batcher::audit::audit(
        &ledger,
        HashSuite::Sha256,
        &anchord_batcher::audit::AuditKeys {
            sealer: signer.verifier(),
            witnesses: vec![],
            quorum: 0,
            tsa_cert: Some(anchord_batcher::tsa::load_cert_der(&rsa_crt).unwrap()),
        },
        false,
    )
    .await
    .unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.timestamped_checkpoints, 1);
    std::fs::remove_dir_all(dir).unwrap();
}
