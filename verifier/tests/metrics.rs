//! Every answered request is counted by route template and status class,
//! never by raw path (bounded labels).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use anchord_core::HashSuite;
use anchord_core::bundle::DeclaredKeys;
use anchord_testkit::TestDb;
use anchord_verifier::VerifierConfig;
use anchord_verifier::prover::Prover;

fn count(route: &str, status: &str) -> f64 {
    prometheus::gather()
        .iter()
        .filter(|f| f.name() == "anchord_verifier_requests_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            let l = m.get_label();
            l.iter().any(|l| l.name() == "route" && l.value() == route)
                && l.iter()
                    .any(|l| l.name() == "status" && l.value() == status)
        })
        .map(|m| m.get_counter().get_value())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_route_template_and_status_class() {
    let (_db, ledger) = TestDb::migrated().await;
    let config = VerifierConfig::default();
    let keys = DeclaredKeys {
        sealer: String::new(),
        witnesses: vec![],
        quorum: 0,
    };
    let prover = Arc::new(Prover::new(ledger, HashSuite::Sha256, keys, &config));
    let app = anchord_verifier::api::router(prover, &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let route = "/v1/proofs/{evidence_hash}";
    let (before_404, before_400) = (count(route, "4xx"), count("/v1/openapi.json", "2xx"));
    let http = reqwest::Client::new();
    for h in ["00".repeat(32), "11".repeat(32), "not-hex".to_owned()] {
        let r = http
            .get(format!("http://{addr}/v1/proofs/{h}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{h}: {}", r.status());
    }
    let r = http
        .get(format!("http://{addr}/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        count(route, "4xx") - before_404,
        3.0,
        "three misses on one template"
    );
    assert_eq!(count("/v1/openapi.json", "2xx") - before_400, 1.0);
    let raw_paths = prometheus::gather()
        .iter()
        .filter(|f| f.name() == "anchord_verifier_requests_total")
        .flat_map(|f| f.get_metric().iter())
        .flat_map(|m| m.get_label().iter())
        .any(|l| l.value().contains("0000"));
    assert!(!raw_paths, "a raw path leaked into a label");
}
