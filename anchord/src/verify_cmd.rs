//! `anchord verify` (offline bundle verification against the court's trust
//! policy), `anchord export` (.ots / .tlog-proof / the PDF certificate from
//! a bundle), `anchord trust export` (a deployment's trust policy) and
//! `anchord verifier` (the API).
//!
//! `verify` exit codes (docs/trust-policy.md): 0 `VALID` (every check passed
//! against the trust policy; with `--online`, every anchor confirmed at the
//! policy's endpoints), 1 `INVALID (<check>)`, 2 usage error, 3 `UNTRUSTED
//! (<check>)` (internally consistent, but the signer, origin or anchor
//! target is not in the trust policy, or no policy was given), 4
//! `UNCONFIRMED (anchor_online)` (`--online` could not reach a trusted
//! endpoint, or there is no anchor yet). It opens no network connection
//! unless `--online`, and then only to the policy's endpoints (the bundle's
//! own only with `--allow-bundle-endpoints`).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anchord_core::bundle::{Bundle, Report, parse_bundle};
use anchord_core::filehash::FileHasher;
use anchord_verifier::online::Confirmed;
use anchord_verifier::trust::{TrustPolicy, Verdict};

use crate::config::Config;

/// `println!` for reports: a reader that stops early (`anchord verify … |
/// head`) closes the pipe, which is not an error and must not panic; the
/// exit code still carries the verdict. Any other write failure (a full
/// disk under `> report.txt`) is said on stderr and exits 2, so a truncated
/// report is never silent.
macro_rules! say {
    ($($arg:tt)*) => { crate::verify_cmd::say_line(format_args!($($arg)*), true) };
}

pub(crate) fn say_line(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(2);
    }
}

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
    /// The court's trust policy (TOML, docs/trust-policy.md): sealer and
    /// witness keys, quorum, TSA certificates, the chain registry. Without
    /// it the answer is never VALID (exit 3, UNTRUSTED (no_trust_policy)).
    #[arg(long, visible_alias = "trusted-keys")]
    pub trust: Option<PathBuf>,
    /// Also look each anchor up on its chain, at the endpoints the trust
    /// policy lists for its target.
    #[arg(long)]
    pub online: bool,
    /// With --online: also try the endpoint the bundle's receipt recorded
    /// (after the policy's). Only for bundles from a source you trust.
    #[arg(long, requires = "online")]
    pub allow_bundle_endpoints: bool,
    /// With --allow-bundle-endpoints: an address, CIDR or host name a
    /// bundle's endpoint may reach although it is not public (repeatable).
    /// Without it, a bundle's endpoint on a loopback, private, link-local or
    /// metadata address is refused before any connection (docs/security.md).
    #[arg(
        long = "egress-allow",
        value_name = "CIDR|IP|HOST",
        requires = "allow_bundle_endpoints",
        value_parser = egress_allow_entry
    )]
    pub egress_allow: Vec<String>,
    /// Print the verdict and report as JSON on stdout.
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
    /// The trust policy the certificate is issued under (required for
    /// `pdf`: a certificate is issued only for a bundle that verifies
    /// against it).
    #[arg(long, visible_alias = "trusted-keys")]
    pub trust: Option<PathBuf>,
    /// For `pdf`: check the anchors online (at the policy's endpoints)
    /// first; the certificate says which were checked and when.
    #[arg(long)]
    pub online: bool,
    /// CJK font for the certificate (TTF/OTF/TTC; subsetted into the PDF).
    #[arg(long, default_value = anchord_verifier::certificate::DEFAULT_FONT)]
    pub font: PathBuf,
    /// Output file. For `ots` of evidence hashed with SM3 or SHA-512, the
    /// stamped file (the canonical entry, `0x00 ‖ entry encoding`) is
    /// written beside it: `--out` without `.ots` (as `ots verify` expects),
    /// or `--out` plus `.entry` when it does not end in `.ots`.
    #[arg(long)]
    pub out: PathBuf,
    /// Where the bundle can be fetched again (pending OTS attestation URI).
    #[arg(long, default_value = "http://127.0.0.1:7480/v1/proofs")]
    pub proof_url: String,
}

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    pub command: TrustCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TrustCommand {
    /// Write this deployment's trust policy (sealer and witness keys,
    /// quorum, TSA certificate, origin, and each relay target's chain id and
    /// endpoint, the chain id asked from the endpoint) for courts to obtain
    /// out of band (docs/trust-policy.md).
    Export {
        /// Output file (`-` for stdout).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

/// One `--egress-allow` entry, checked as the argument is parsed: a bad
/// entry is a usage error (exit 2) naming it, not an UNCONFIRMED verdict.
fn egress_allow_entry(entry: &str) -> Result<String, String> {
    anchord_egress::Policy::new(&[entry.to_owned()])?;
    Ok(entry.trim().to_owned())
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn invalid(check: &str, msg: impl std::fmt::Display) -> ExitCode {
    say!("INVALID ({check}): {msg}");
    ExitCode::from(1)
}

/// Read and parse a bundle: unreadable is a usage error, unparseable invalid.
fn read_bundle(path: &PathBuf) -> Result<Bundle, ExitCode> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("reading {}: {e}", path.display())))?;
    parse_bundle(&text).map_err(|e| invalid(e.check(), e))
}

/// `anchord verify`'s bundle: with `--json` an unparseable bundle is
/// answered in JSON too (`docs/trust-policy.md`: `--json` prints the verdict
/// object with the same exit code), not as a text line.
fn read_bundle_for_verify(args: &VerifyArgs) -> Result<Bundle, ExitCode> {
    if !args.json {
        return read_bundle(&args.bundle);
    }
    let text = std::fs::read_to_string(&args.bundle)
        .map_err(|e| usage(format!("reading {}: {e}", args.bundle.display())))?;
    parse_bundle(&text).map_err(|e| {
        let v = serde_json::json!({
            "verdict": "INVALID",
            "check": e.check(),
            "message": e.to_string(),
            "trust_policy_sha256": null,
            "report": null,
            "online": [],
        });
        say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        ExitCode::from(1)
    })
}

fn read_policy(path: Option<&PathBuf>) -> Result<Option<TrustPolicy>, ExitCode> {
    path.map(|p| {
        anchord_verifier::trust::load_policy(p).map_err(|e| usage(format!("--trust: {e}")))
    })
    .transpose()
}

fn now_us() -> i64 {
    anchord_core::time::unix_micros(std::time::SystemTime::now())
}

/// The outcome of `--online`.
enum Online {
    Confirmed(Vec<Confirmed>),
    /// The chain contradicts a receipt.
    Failed(String),
    /// Nothing could be confirmed (no anchor yet, no endpoint reachable).
    Unconfirmed(String),
}

/// Look every receipt up at the trust policy's endpoints for its target;
/// with `bundle_egress` (`--allow-bundle-endpoints`), then at the endpoint
/// the receipt names, through a client that reaches only public addresses
/// and the `--egress-allow` entries.
fn check_online(b: &Bundle, policy: &TrustPolicy, bundle_egress: Option<&[String]>) -> Online {
    use std::sync::Arc;
    use std::time::Duration;
    if b.anchor.receipts.is_empty() {
        return Online::Unconfirmed("the bundle has no anchor receipt to look up yet".into());
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Online::Unconfirmed(e.to_string()),
    };
    // The policy's endpoints are the court's choice: pinned. A bundle's
    // endpoint is the bundle author's: public addresses only.
    let policy_urls: Vec<&str> = policy
        .chains
        .values()
        .flat_map(|c| c.endpoints.iter().map(String::as_str))
        .collect();
    let (connect_timeout, timeout) = (Duration::from_secs(5), Duration::from_secs(15));
    let trusted_http = match anchord_egress::Policy::pinned_client(
        &policy_urls,
        "the trust policy's chain endpoints",
        connect_timeout,
        timeout,
    ) {
        Ok(c) => c,
        Err(e) => return Online::Unconfirmed(format!("trust policy endpoints: {e}")),
    };
    // `--egress-allow` was validated with the arguments (a bad entry is a
    // usage error, exit 2, before anything is read).
    let bundle_http = match bundle_egress {
        None => None,
        Some(allow) => {
            let client = anchord_egress::Policy::new(allow).map(|p| {
                let p = Arc::new(p.hint("--egress-allow"));
                let c = p
                    .client(connect_timeout, timeout)
                    .map_err(|e| e.to_string());
                (p, c)
            });
            match client {
                Ok((p, Ok(c))) => Some((p, c)),
                Ok((_, Err(e))) | Err(e) => {
                    return Online::Unconfirmed(format!("--egress-allow: {e}"));
                }
            }
        }
    };
    let mut done = Vec::new();
    for r in &b.anchor.receipts {
        let Some(chain) = policy.chains.get(&r.target) else {
            return Online::Unconfirmed(format!(
                "target {:?} is not in the trust policy",
                r.target
            ));
        };
        let mut res = rt.block_on(anchord_verifier::online::check_receipt(
            &trusted_http,
            &b.checkpoint.origin,
            r,
            chain,
            &chain.endpoints,
            policy.anchor_time_tolerance_us,
        ));
        if let (Err(e), Some((egress, http))) = (&res, &bundle_http)
            && e.is_unconfirmed()
            && let Some(ep) = anchord_verifier::online::bundle_endpoint(r)
            && !chain.endpoints.contains(&ep)
        {
            res = match rt.block_on(egress.check_url(&ep, false)) {
                Err(refused) => Err(
                    anchord_verifier::online::OnlineError::BundleEndpointRefused {
                        first: Box::new(e.clone()),
                        endpoint: ep.clone(),
                        refused: refused.to_string(),
                    },
                ),
                Ok(_) => rt.block_on(anchord_verifier::online::check_receipt(
                    http,
                    &b.checkpoint.origin,
                    r,
                    chain,
                    std::slice::from_ref(&ep),
                    policy.anchor_time_tolerance_us,
                )),
            };
        }
        match res {
            Ok(c) => done.push(c),
            Err(e) if e.is_unconfirmed() => {
                return Online::Unconfirmed(format!("target {}: {e}", r.target));
            }
            Err(e) => return Online::Failed(format!("target {}: {e}", r.target)),
        }
    }
    Online::Confirmed(done)
}

fn hash_of_file(path: &PathBuf, b: &Bundle) -> Result<Vec<u8>, ExitCode> {
    let mut f =
        std::fs::File::open(path).map_err(|e| usage(format!("reading {}: {e}", path.display())))?;
    let mut h = FileHasher::new(b.entry.hash_alg);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) => return Err(usage(format!("reading {}: {e}", path.display()))),
        }
    }
    Ok(h.finalize())
}

fn print_report(b: &Bundle, report: &Report) {
    say!(
        "evidence   {} {} (tenant {}, external id {})",
        report.hash_alg,
        report.evidence_hash,
        report.tenant,
        report.external_id
    );
    let tz = crate::times::local_zone();
    say!(
        "recorded   seq {} at {}",
        report.seq,
        crate::times::human_in(report.received_at_us, &tz)
    );
    say!(
        "block      {} in checkpoint {} of {}",
        report.block_height,
        report.checkpoint_size,
        report.checkpoint_origin
    );
    say!(
        "witnesses  {} of {} required: {:?}",
        report.cosigned_by.len(),
        report.quorum,
        report.cosigned_by
    );
    match (report.timestamp_unix, report.timestamp_unchecked) {
        (Some(t), _) => say!(
            "timestamp  RFC 3161 genTime {}",
            crate::times::human_in(t.saturating_mul(1_000_000), &tz)
        ),
        (None, true) => say!("timestamp  present, NOT checked (no tsa_certs trusted)"),
        (None, false) => say!("timestamp  none"),
    }
    if report.anchored {
        for (i, a) in report.anchors.iter().enumerate() {
            match b.anchor.receipts.get(i) {
                Some(r) => say!(
                    "anchor     {a} (block time {})",
                    crate::times::human_in(r.block_time_us, &tz)
                ),
                None => say!("anchor     {a}"),
            }
        }
    } else {
        match b.anchor.expected_at_us {
            Some(t) => say!(
                "anchor     pending (expected by {}); fetch the bundle again later",
                crate::times::human_in(t, &tz)
            ),
            None => say!("anchor     pending; fetch the bundle again later"),
        }
    }
}

pub fn verify(args: &VerifyArgs) -> ExitCode {
    let b = match read_bundle_for_verify(args) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let expected = match (&args.file, &args.hash) {
        (Some(path), _) => match hash_of_file(path, &b) {
            Ok(h) => Some(h),
            Err(code) => return code,
        },
        (None, Some(hx)) => match hex::decode(hx.trim()) {
            Ok(v) if v.len() == 32 || v.len() == 64 => Some(v),
            _ => return usage("--hash must be 64 or 128 hex digits"),
        },
        (None, None) => None,
    };
    let policy = match read_policy(args.trust.as_ref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if args.online && policy.is_none() {
        return usage("--online needs --trust: anchors are looked up only at endpoints you trust");
    }
    let verdict = anchord_verifier::trust::judge(&b, policy.as_ref(), expected.as_deref());
    let fingerprint = policy.as_ref().map(|p| p.fingerprint.clone());
    let (word, check, message, report, code) = match verdict {
        Verdict::Invalid { check, message } => ("INVALID", Some(check), Some(message), None, 1u8),
        Verdict::Untrusted {
            check,
            message,
            report,
        } => ("UNTRUSTED", Some(check), Some(message), report, 3),
        Verdict::Valid(r) => ("VALID", None, None, Some(r), 0),
    };
    let (word, check, message, code, online) = match (code, &policy) {
        (0, Some(p)) if args.online => match check_online(
            &b,
            p,
            args.allow_bundle_endpoints
                .then_some(args.egress_allow.as_slice()),
        ) {
            Online::Confirmed(c) => (word, check, message, code, c),
            Online::Failed(m) => (
                "INVALID",
                Some("anchor_online".to_owned()),
                Some(m),
                1,
                vec![],
            ),
            Online::Unconfirmed(m) => (
                "UNCONFIRMED",
                Some("anchor_online".to_owned()),
                Some(m),
                4,
                vec![],
            ),
        },
        _ => (word, check, message, code, vec![]),
    };
    if args.json {
        let v = serde_json::json!({
            "verdict": word,
            "check": check,
            "message": message,
            "trust_policy_sha256": fingerprint,
            "report": report,
            "online": online,
        });
        match serde_json::to_string_pretty(&v) {
            Ok(s) => say!("{s}"),
            Err(e) => return usage(e),
        }
    } else {
        match (&check, &message) {
            (Some(c), Some(m)) => say!("{word} ({c}): {m}"),
            _ => say!("{word}"),
        }
        if let Some(r) = &report {
            print_report(&b, r);
        }
        for c in &online {
            say!(
                "online     {}: {} (at {}, checked {})",
                c.target,
                c.summary,
                c.endpoint,
                crate::times::human(c.checked_at_us)
            );
        }
        if let Some(f) = &fingerprint {
            say!("policy     trust policy sha256 {f}");
        }
    }
    ExitCode::from(code)
}

/// Where `anchord export --format ots` writes the stamped entry file: the
/// `.ots` path without its extension, or with `.entry` added.
fn ots_stamped_path(out: &Path) -> PathBuf {
    match out.to_str().and_then(|s| s.strip_suffix(".ots")) {
        Some(base) if !base.is_empty() && !base.ends_with('/') => PathBuf::from(base),
        _ => {
            let mut s = out.as_os_str().to_owned();
            s.push(".entry");
            PathBuf::from(s)
        }
    }
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
            let subject = match anchord_core::ots::subject(&b) {
                Ok(s) => s,
                Err(e) => return invalid("ots", e),
            };
            let file = match anchord_verifier::ots::export(&b, &url) {
                Ok(v) => v,
                Err(e) => return invalid("ots", e),
            };
            if subject == anchord_core::ots::Subject::Entry {
                let stamped = ots_stamped_path(&args.out);
                if let Err(e) = std::fs::write(&stamped, anchord_core::ots::leaf_input(&b)) {
                    return usage(format!("writing {}: {e}", stamped.display()));
                }
                say!(
                    "{} evidence: OpenTimestamps cannot express its hash; the .ots stamps the \
                     canonical entry {} (0x00 ‖ entry encoding, holding the evidence hash; its \
                     SHA-256 is the leaf hash)",
                    b.entry.hash_alg.name(),
                    stamped.display()
                );
            }
            file
        }
        "pdf" => {
            let policy = match read_policy(args.trust.as_ref()) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    return usage(
                        "--trust is required for a certificate: it is issued only for a bundle \
                         that verifies against a trust policy",
                    );
                }
                Err(code) => return code,
            };
            // A certificate prints only verified facts.
            match anchord_verifier::trust::judge(&b, Some(&policy), None) {
                Verdict::Valid(_) => {}
                Verdict::Invalid { check, message } => return invalid(&check, message),
                Verdict::Untrusted { check, message, .. } => {
                    say!("UNTRUSTED ({check}): {message}");
                    return ExitCode::from(3);
                }
            }
            let online = if args.online {
                match check_online(&b, &policy, None) {
                    Online::Confirmed(c) => c,
                    Online::Failed(m) => return invalid("anchor_online", m),
                    Online::Unconfirmed(m) => {
                        say!("UNCONFIRMED (anchor_online): {m}");
                        return ExitCode::from(4);
                    }
                }
            } else {
                vec![]
            };
            let font = match anchord_verifier::certificate::CjkFont::load(&args.font) {
                Ok(f) => f,
                Err(e) => return usage(format!("--font: {e}")),
            };
            let url = format!(
                "{}/{}",
                args.proof_url.trim_end_matches('/'),
                hex::encode(&b.entry.evidence_hash)
            );
            let issued_at_us = now_us();
            let trust_file = args.trust.as_ref().and_then(|p| p.file_name()).map_or_else(
                || "trust.toml".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            let input = anchord_verifier::certificate::CertificateInput {
                bundle: &b,
                verify_url: &url,
                issued_at_us,
                verified: anchord_verifier::certificate::Verified {
                    verified_at_us: issued_at_us,
                    policy: format!("{trust_file} (sha256 {})", &policy.fingerprint[..16]),
                    trust_file,
                    online,
                },
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

/// `anchord trust export`: this deployment's trust policy, from its
/// configuration (keys) and its relay targets (chain ids asked from the
/// configured endpoints).
pub async fn trust(config: &Config, args: &TrustArgs) -> anyhow::Result<()> {
    let TrustCommand::Export { out } = &args.command;
    let keys = declared_keys(config).map_err(crate::service::config_error)?;
    let mut file = anchord_verifier::trust::TrustFile {
        format: Some(anchord_verifier::trust::TRUST_POLICY_FORMAT_V1.into()),
        origins: vec![config.batcher.origin.clone()],
        sealers: vec![keys.sealer],
        witnesses: keys.witnesses,
        quorum: Some(keys.quorum),
        anchor_time_tolerance_s: Some(anchord_verifier::trust::DEFAULT_ANCHOR_TIME_TOLERANCE_S),
        ..Default::default()
    };
    if let Some(cert) = &config.batcher.tsa_cert {
        let der = anchord_tsa::load_cert_der(cert)
            .map_err(|e| crate::service::config_error(anyhow::anyhow!("batcher.tsa_cert: {e}")))?;
        file.tsa_certs
            .push(anchord_verifier::trust::der_to_pem(&der));
    }
    for t in &config.relay.targets {
        let (kind, endpoint) = match t.kind {
            anchord_relay::config::TargetKind::Judicial => ("judicial", t.url.clone()),
            anchord_relay::config::TargetKind::Evm => ("evm", t.rpc_url.clone()),
        };
        let endpoint = endpoint
            .ok_or_else(|| anyhow::anyhow!("relay target {}: no endpoint configured", t.name))?;
        let chain_id = match (kind, t.chain_id) {
            ("evm", Some(id)) => id.to_string(),
            _ => anchord_verifier::online::chain_id_of(&t.http_client(&endpoint)?, kind, &endpoint)
                .await
                .map_err(|e| anyhow::anyhow!("relay target {}: chain id: {e}", t.name))?,
        };
        file.chains.insert(
            t.name.clone(),
            anchord_verifier::trust::TrustedChain {
                kind: kind.into(),
                chain_id,
                endpoints: vec![endpoint],
            },
        );
    }
    let text = format!(
        "# Trust policy of the Anchord deployment {}, exported by `anchord trust export`.\n\
         # A court obtains it out of band (docs/trust-policy.md) and checks its sha256\n\
         # against the one the operator, the witnesses or a notary publish.\n{}",
        config.batcher.origin,
        toml::to_string_pretty(&file)?
    );
    if out.as_os_str() == "-" {
        say_line(format_args!("{text}"), false);
    } else {
        std::fs::write(out, &text)?;
        eprintln!(
            "wrote {} (sha256 {})",
            out.display(),
            hex::encode(anchord_core::HashSuite::Sha256.digest(text.as_bytes()))
        );
    }
    Ok(())
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

/// `anchord verifier`: a reader. Its sessions are read-only and it never
/// migrates, so it can serve from a hot standby or as a SELECT-only role.
pub struct VerifierService;

impl crate::service::Service for VerifierService {
    type Prepared = anchord_core::bundle::DeclaredKeys;
    type Db = anchord_ledger::Ledger;

    fn validate(&self, config: &Config) -> anyhow::Result<Self::Prepared> {
        config.verifier.validate()?;
        declared_keys(config)
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<Self::Db> {
        crate::service::open_reader(config).await
    }

    fn readiness(
        &self,
        _: &Config,
        _: &Self::Prepared,
        ledger: &Self::Db,
    ) -> anyhow::Result<crate::admin::Readiness> {
        Ok(crate::admin::Readiness::new(ledger.clone()))
    }

    async fn run(
        self,
        config: Config,
        keys: Self::Prepared,
        ledger: Self::Db,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        Ok(
            anchord_verifier::run(config.verifier, config.hash_suite, keys, ledger, shutdown)
                .await?,
        )
    }
}
