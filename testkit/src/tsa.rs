//! A real RFC 3161 TSA for tests: `openssl ts -reply` behind a tiny
//! loopback HTTP wrapper. [`setup`] makes two TSA keys and self-signed
//! certificates (critical EKU timeStamping) and an `openssl ts` config with
//! two sections: `fractional` signs with RSA and millisecond genTime,
//! `whole` with ECDSA P-256 and whole seconds. [`local_tsa`] serves one
//! section. Used by the batcher's TSA tests and the workflow's certificate
//! tests. Needs `openssl` on the PATH; fails loudly without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A TSA serving on 127.0.0.1 until dropped.
#[derive(Debug)]
pub struct LocalTsa {
    /// Its URL (the batcher's `tsa_url`).
    pub url: String,
    /// Its certificate (the batcher's `tsa_cert`).
    pub cert: PathBuf,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for LocalTsa {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct TsaState {
    dir: PathBuf,
    section: &'static str,
}

async fn reply(State(s): State<TsaState>, body: Bytes) -> Vec<u8> {
    let n = crate::unique("q");
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
pub async fn local_tsa(dir: &Path, section: &'static str, cert: PathBuf) -> LocalTsa {
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
        stop,
    }
}

/// A directory with the two TSAs' keys, certificates and config: (dir,
/// RSA certificate, EC certificate).
pub fn setup() -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(crate::unique("anchord_tsa"));
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
