//! `anchord verify` (offline bundle verification), `anchord export`
//! (.ots / .tlog-proof from a bundle) and `anchord verifier` (the API).
//!
//! `verify` exit codes: 0 valid, 1 invalid (the failed check and its values
//! on stderr), 2 usage error (unreadable arguments or files). It opens no
//! network connection unless `--online`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anchord_core::bundle::{Bundle, TrustedKeys, verify_bundle};
use anchord_core::filehash::FileHasher;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The proof bundle (JSON, docs/proof-format.md).
    #[arg(long)]
    pub bundle: PathBuf,
    /// The evidence file: it must hash to the bundle's evidence hash.
    #[arg(long, conflicts_with = "hash")]
    pub file: Option<PathBuf>,
    /// The evidence hash, hex.
    #[arg(long)]
    pub hash: Option<String>,
    /// Keys you trust (TOML: sealers, witnesses, quorum, tsa_certs). Without
    /// it the bundle's own declared keys are used, and the output says so.
    #[arg(long)]
    pub trusted_keys: Option<PathBuf>,
    /// Also look each anchor up on its chain.
    #[arg(long)]
    pub online: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The proof bundle (JSON).
    #[arg(long)]
    pub bundle: PathBuf,
    /// `ots` (OpenTimestamps), `tlog-proof` (C2SP) or `pdf` (the
    /// preservation certificate, 电子数据保全证书).
    #[arg(long, value_parser = ["ots", "tlog-proof", "pdf"])]
    pub format: String,
    /// CJK font for the certificate (TTF/OTF/TTC; subsetted into the PDF).
    #[arg(long, default_value = anchord_verifier::certificate::DEFAULT_FONT)]
    pub font: PathBuf,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
    /// Where the bundle can be fetched again (pending OTS attestation URI).
    #[arg(long, default_value = "http://127.0.0.1:7480/v1/proofs")]
    pub proof_url: String,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn invalid(check: &str, msg: impl std::fmt::Display) -> ExitCode {
    println!("INVALID ({check}): {msg}");
    ExitCode::from(1)
}

/// Read and parse a bundle: unreadable is a usage error, unparseable invalid.
fn read_bundle(path: &PathBuf) -> Result<Bundle, ExitCode> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| invalid("format", format!("not a proof bundle: {e}")))
}

pub fn verify(args: &VerifyArgs) -> ExitCode {
    let b = match read_bundle(&args.bundle) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let expected = match (&args.file, &args.hash) {
        (Some(path), _) => {
            let mut f = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => return usage(format!("reading {}: {e}", path.display())),
            };
            let mut h = FileHasher::new(b.entry.hash_alg);
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => h.update(&buf[..n]),
                    Err(e) => return usage(format!("reading {}: {e}", path.display())),
                }
            }
            Some(h.finalize())
        }
        (None, Some(hx)) => match hex::decode(hx.trim()) {
            Ok(v) if v.len() == 32 || v.len() == 64 => Some(v),
            _ => return usage("--hash must be 64 or 128 hex digits"),
        },
        (None, None) => None,
    };
    let keys = match &args.trusted_keys {
        Some(p) => match anchord_verifier::trust::load(p) {
            Ok(k) => k,
            Err(e) => return usage(format!("--trusted-keys: {e}")),
        },
        None => match TrustedKeys::from_bundle(&b) {
            Ok(k) => k,
            Err(e) => return invalid("trusted_keys", e),
        },
    };
    let report = match verify_bundle(&b, &keys, expected.as_deref()) {
        Ok(r) => r,
        Err(e) => return invalid(e.check(), e),
    };
    let mut online = Vec::new();
    if args.online {
        if b.anchor.receipts.is_empty() {
            return invalid(
                "anchor_online",
                "the bundle has no anchor receipt to look up yet",
            );
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return invalid("anchor_online", e),
        };
        let http = match anchord_verifier::online::client() {
            Ok(c) => c,
            Err(e) => return invalid("anchor_online", e),
        };
        for r in &b.anchor.receipts {
            let origin = &b.checkpoint.origin;
            match rt.block_on(anchord_verifier::online::check_receipt(&http, origin, r)) {
                Ok(what) => online.push(format!("{}: {what}", r.target)),
                Err(e) => return invalid("anchor_online", format!("target {}: {e}", r.target)),
            }
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => return usage(e),
        }
    } else {
        println!("VALID");
        println!(
            "evidence   {} {} (tenant {}, external id {})",
            report.hash_alg, report.evidence_hash, report.tenant, report.external_id
        );
        println!(
            "recorded   seq {} at {} µs since the epoch (UTC)",
            report.seq, report.received_at_us
        );
        println!(
            "block      {} in checkpoint {} of {}",
            report.block_height, report.checkpoint_size, report.checkpoint_origin
        );
        println!(
            "witnesses  {} of {} required: {:?}",
            report.cosigned_by.len(),
            report.quorum,
            report.cosigned_by
        );
        match (report.timestamp_unix, report.timestamp_unchecked) {
            (Some(t), _) => println!("timestamp  RFC 3161 genTime {t} (Unix seconds)"),
            (None, true) => println!("timestamp  present, NOT checked (no tsa_certs trusted)"),
            (None, false) => println!("timestamp  none"),
        }
        if report.anchored {
            for a in &report.anchors {
                println!("anchor     {a}");
            }
        } else {
            println!(
                "anchor     pending (expected at {} µs); fetch the bundle again later",
                b.anchor.expected_at_us.unwrap_or_default()
            );
        }
        for line in &online {
            println!("online     {line}");
        }
    }
    if report.keys_from_bundle {
        eprintln!(
            "warning: signatures were checked against the keys the bundle itself declares; \
             pass --trusted-keys with keys you trust"
        );
    }
    ExitCode::SUCCESS
}

pub fn export(args: &ExportArgs) -> ExitCode {
    let b = match read_bundle(&args.bundle) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let bytes = match args.format.as_str() {
        "ots" => {
            let url = format!(
                "{}/{}",
                args.proof_url.trim_end_matches('/'),
                hex::encode(&b.entry.evidence_hash)
            );
            match anchord_verifier::ots::export(&b, &url) {
                Ok(v) => v,
                Err(e) => return invalid("ots", e),
            }
        }
        "pdf" => {
            let font = match anchord_verifier::certificate::CjkFont::load(&args.font) {
                Ok(f) => f,
                Err(e) => return usage(format!("--font: {e}")),
            };
            let url = format!(
                "{}/{}",
                args.proof_url.trim_end_matches('/'),
                hex::encode(&b.entry.evidence_hash)
            );
            let issued_at_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64);
            let input = anchord_verifier::certificate::CertificateInput {
                bundle: &b,
                verify_url: &url,
                issued_at_us,
            };
            match anchord_verifier::certificate::render(&input, &font) {
                Ok(v) => v,
                Err(e) => return invalid("certificate", e),
            }
        }
        _ => anchord_verifier::tlog_proof::export(&b).into_bytes(),
    };
    if let Err(e) = std::fs::write(&args.out, bytes) {
        return usage(format!("writing {}: {e}", args.out.display()));
    }
    ExitCode::SUCCESS
}

/// `anchord verifier`: serve the proof API.
/// The keys the verifier declares in every bundle: the sealer's and the
/// witnesses' (from the batcher section) and the quorum.
pub fn declared_keys(config: &Config) -> anyhow::Result<anchord_core::bundle::DeclaredKeys> {
    let sealer = anchord_batcher::sealer_verifier(&config.batcher)?;
    let witnesses = config.batcher.witness_verifiers()?;
    Ok(anchord_core::bundle::DeclaredKeys {
        sealer: sealer.vkey(),
        witnesses: witnesses.iter().map(|w| w.vkey()).collect(),
        quorum: config.batcher.effective_quorum(),
    })
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let keys = declared_keys(&config)?;
    let ledger = crate::open_ledger(&config).await?;
    let shutdown = crate::shutdown::on_signal();
    let admin = crate::admin::serve(config.admin.listen, ledger.clone(), shutdown.clone()).await?;
    let result = anchord_verifier::run(
        config.verifier,
        config.hash_suite,
        keys,
        ledger,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = admin.await;
    Ok(result?)
}
