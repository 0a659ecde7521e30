//! RFC 3161 against a real TSA: `openssl ts -reply` behind a tiny loopback
//! HTTP wrapper (`anchord_testkit::tsa`). One TSA signs with RSA and
//! fractional-second genTime, the other with ECDSA P-256 and whole seconds.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use anchord_testkit::evidence;
use anchord_testkit::tsa::{local_tsa, setup};
use std::time::Duration;

use anchord_batcher::tsa::{Tsa, verify_token};
use anchord_core::HashSuite;

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
