//! Issue 12, flaw 12 and the storage/list items, over HTTP against the real
//! services: replaced and refused uploads are collected, never a file that
//! is still referenced; multipart forms carry only `file`; downloads stream
//! with an RFC 6266 name; lists page with `limit` + `after`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anchord_core::EvidenceAlg;
use serde_json::{Value, json};

fn stored(env: &common::Env, data: &[u8]) -> PathBuf {
    let sha = hex::encode(EvidenceAlg::Sha256.hash(data));
    env.config
        .storage_dir
        .join("sha256")
        .join(&sha[..2])
        .join(sha)
}

async fn preservation(env: &common::Env, product: i64, user: &str) -> String {
    let v = env
        .ok(
            201,
            "POST",
            "/v1/preservations",
            Some(user),
            Some(json!({"product_id": product, "fields": {"borrower": "张三", "amount": "1"}})),
        )
        .await;
    format!("/v1/preservations/{}", v["id"])
}

async fn wait_gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} was not collected",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A replaced upload is deleted once nothing references it; the same bytes
/// still referenced by another preservation are kept; an upload refused
/// after it was stored (the record left the editable states meanwhile) is
/// collected too. Before: every version stayed on disk for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_and_refused_uploads_are_collected_but_referenced_files_kept() {
    let env = common::start(false, |c| {
        c.file_gc_interval_s = 1;
        c.file_gc_grace_s = 0;
    })
    .await;
    let admin = env.admin().await;
    let t = json!({"tenant": "bank-a"});
    let alice = env.user(&admin, "alice", "user", t.clone()).await;
    let product = env.product(&admin).await;
    let p1 = preservation(&env, product, &alice).await;
    let p2 = preservation(&env, product, &alice).await;
    let (shared, first, second) = (
        b"shared bytes".to_vec(),
        b"first version".to_vec(),
        b"second version".to_vec(),
    );
    for (p, data) in [(&p1, &shared), (&p2, &shared)] {
        let (s, v) = env
            .upload("PUT", &format!("{p}/file"), &alice, "a.pdf", data.clone())
            .await;
        assert_eq!(s, 200, "{v}");
    }
    // p1 moves on to its own versions: `shared` is still p2's.
    for data in [&first, &second] {
        let (s, v) = env
            .upload("PUT", &format!("{p1}/file"), &alice, "a.pdf", data.clone())
            .await;
        assert_eq!(s, 200, "{v}");
    }
    wait_gone(&stored(&env, &first)).await;
    assert!(
        stored(&env, &second).exists(),
        "the current file was deleted"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        stored(&env, &shared).exists(),
        "a file still referenced by p2 was deleted"
    );
    let (status, _, body) = env.get_bytes(&format!("{p2}/file"), &alice).await;
    assert_eq!((status, body), (200, shared.clone()));
    let (status, _, body) = env.get_bytes(&format!("{p1}/file"), &alice).await;
    assert_eq!((status, body), (200, second.clone()));

    // Refused after storing: p1 is submitted between the check and the
    // reference change. Simulated by submitting it and uploading: the
    // handler answers 409 before storing; the race path is the same release.
    env.ok(200, "POST", &format!("{p1}/submit"), Some(&alice), None)
        .await;
    let late = b"late upload".to_vec();
    let (s, _) = env
        .upload(
            "PUT",
            &format!("{p1}/file"),
            &alice,
            "late.pdf",
            late.clone(),
        )
        .await;
    assert_eq!(s.as_u16(), 409);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!stored(&env, &late).exists());
    // Files under approved evidence are never collected, even when released.
    let pool = env.ledger.workflow_pool();
    let c = pool.get().await.unwrap();
    c.execute(
        "INSERT INTO workflow.file_gc (sha256) VALUES ($1), ($2)",
        &[
            &hex::encode(EvidenceAlg::Sha256.hash(&second)),
            &hex::encode(EvidenceAlg::Sha256.hash(&shared)),
        ],
    )
    .await
    .unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(stored(&env, &second).exists());
    assert!(stored(&env, &shared).exists());
    let c = pool.get().await.unwrap();
    let left: i64 = c
        .query_one("SELECT count(*) FROM workflow.file_gc", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "handled candidates are removed");
}

async fn multipart(
    env: &common::Env,
    path: &str,
    token: &str,
    form: reqwest::multipart::Form,
) -> (u16, Value) {
    let resp = env
        .http
        .put(format!("{}{path}", env.base))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// A form with any part besides the one `file` (before or after it, named
/// or not, large or small) is refused with 422 and stores nothing. Before:
/// other parts were read without a size limit and ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_forms_carry_only_the_file_part() {
    let env = common::start(false, |_| {}).await;
    let admin = env.admin().await;
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let product = env.product(&admin).await;
    let p = preservation(&env, product, &alice).await;
    let path = format!("{p}/file");
    let file = || reqwest::multipart::Part::bytes(b"evidence".to_vec()).file_name("e.pdf");
    let big = || reqwest::multipart::Part::bytes(vec![b'x'; 4 << 20]);
    use reqwest::multipart::Form;
    for (what, form) in [
        (
            "a part before",
            Form::new().part("note", big()).part("file", file()),
        ),
        (
            "a part after",
            Form::new().part("file", file()).part("note", big()),
        ),
        (
            "a second file",
            Form::new().part("file", file()).part("file", file()),
        ),
        ("only another part", Form::new().text("comment", "hello")),
    ] {
        let (s, v) = multipart(&env, &path, &alice, form).await;
        assert_eq!(s, 422, "{what}: {v}");
        assert!(v["error"]["fields"]["file"].is_string(), "{what}: {v}");
    }
    assert!(
        !stored(&env, b"evidence").exists(),
        "a refused form left its file"
    );
    let (s, v) = multipart(&env, &path, &alice, Form::new().part("file", file())).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["file"]["name"], "e.pdf");
}

/// A part whose header section never ends (a multipart "header bomb") is
/// cut off at the upload body limit with 413; before, the upload routes had
/// no body limit and multer buffered the whole header section in memory
/// until the client stopped sending (then answered 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_header_that_never_ends_is_cut_off_at_the_body_limit() {
    let env = common::start(false, |_| {}).await;
    let admin = env.admin().await;
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let product = env.product(&admin).await;
    let p = preservation(&env, product, &alice).await;
    let limit = env.config.max_upload_bytes as usize;
    let mut body =
        b"--XBOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\nX-Junk: "
            .to_vec();
    body.resize(body.len() + limit * 8, b'a');
    body.extend_from_slice(b"\r\n\r\nx\r\n--XBOUND--\r\n");
    let resp = env
        .http
        .put(format!("{}{p}/file", env.base))
        .bearer_auth(&alice)
        .header("content-type", "multipart/form-data; boundary=XBOUND")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "too_large", "{v}");
    // An upload of exactly the limit still fits in the envelope.
    let (s, v) = env
        .upload(
            "PUT",
            &format!("{p}/file"),
            &alice,
            "max.bin",
            vec![1u8; limit],
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

/// Downloads carry `Content-Length` and an RFC 6266 `Content-Disposition`
/// whose `filename*` is the UTF-8 name (a Chinese name survives), with an
/// ASCII fallback; the body is the file (streamed from disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_name_non_ascii_files_per_rfc_6266() {
    let env = common::start(false, |c| c.max_upload_bytes = 8 << 20).await;
    let admin = env.admin().await;
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let product = env.product(&admin).await;
    let p = preservation(&env, product, &alice).await;
    let name = "催收录音 \"张三\".pdf";
    let data: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
    let (s, v) = env
        .upload("PUT", &format!("{p}/file"), &alice, name, data.clone())
        .await;
    assert_eq!(s, 200, "{v}");
    let resp = env
        .http
        .get(format!("{}{p}/file", env.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let disposition = h["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(
        disposition,
        "attachment; filename=\"____ ____.pdf\"; filename*=UTF-8''%E5%82%AC%E6%94%B6%E5%BD%95%E9%9F%B3%20%22%E5%BC%A0%E4%B8%89%22.pdf",
    );
    // The encoded name decodes back to the original.
    let encoded = disposition.split("filename*=UTF-8''").nth(1).unwrap();
    let mut bytes = Vec::new();
    let mut it = encoded.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hi = it.next().unwrap();
            let lo = it.next().unwrap();
            bytes.push(u8::from_str_radix(&format!("{}{}", hi as char, lo as char), 16).unwrap());
        } else {
            bytes.push(b);
        }
    }
    assert_eq!(String::from_utf8(bytes).unwrap(), name);
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        data.len().to_string()
    );
    assert_eq!(h["content-type"], "application/octet-stream");
    let body = resp.bytes().await.unwrap();
    assert!(body == data, "the downloaded bytes differ");
}

/// Lists page with `limit` and `after` (newest first, a cursor header on
/// full pages), every record exactly once; `limit` over 1000 is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preservation_lists_page_with_a_cursor() {
    let env = common::start(false, |_| {}).await;
    let admin = env.admin().await;
    let alice = env
        .user(&admin, "alice", "user", json!({"tenant": "bank-a"}))
        .await;
    let product = env.product(&admin).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let p = preservation(&env, product, &alice).await;
        ids.push(p.rsplit('/').next().unwrap().parse::<i64>().unwrap());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            Some(a) => format!("{}/v1/preservations?limit=2&after={a}", env.base),
            None => format!("{}/v1/preservations?limit=2", env.base),
        };
        let resp = env.http.get(url).bearer_auth(&alice).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        after = resp
            .headers()
            .get("anchord-next-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = resp.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|p| p["id"].as_i64().unwrap()));
        pages += 1;
        if after.is_none() {
            break;
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, ids);
    for q in ["limit=1001", "limit=0", "after=0", "after=x"] {
        let (s, _) = env
            .call("GET", &format!("/v1/preservations?{q}"), Some(&alice), None)
            .await;
        assert!(s.as_u16() == 422 || s.as_u16() == 400, "{q}: {s}");
    }
}
