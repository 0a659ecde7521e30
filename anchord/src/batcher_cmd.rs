//! `anchord batcher`, `keygen`, `witness` and `audit`: thin wrappers over
//! the batcher crate.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Key name: the log origin for a sealer key (e.g. bank-a.example/ledger),
    /// the witness's name for a witness key.
    #[arg(long)]
    pub name: String,
    /// Private key file to create (refuses to overwrite); the vkey goes to FILE.pub.
    #[arg(long)]
    pub out: PathBuf,
    /// Make a witness cosignature/v1 key (algorithm 0x04) instead of a sealer note key (0x01).
    #[arg(long)]
    pub witness: bool,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn keygen(args: &KeygenArgs) -> ExitCode {
    match anchord_batcher::keys::keygen(&args.name, args.witness, &args.out) {
        Ok(g) => {
            eprintln!(
                "private key written to {} (keep it secret); public key to {}",
                g.private_path.display(),
                g.public_path.display()
            );
            println!("{}", g.vkey);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

pub async fn batcher(config: Config) -> anyhow::Result<()> {
    let ledger = crate::open_ledger(&config).await?;
    let shutdown = crate::shutdown::on_signal();
    let admin = crate::admin::serve(config.admin.listen, ledger.clone(), shutdown.clone()).await?;
    let result =
        anchord_batcher::run(config.batcher, config.hash_suite, ledger, shutdown.clone()).await;
    shutdown.cancel();
    let _ = admin.await;
    Ok(result?)
}

pub async fn witness(config: Config) -> anyhow::Result<()> {
    let ledger = crate::open_ledger(&config).await?;
    let shutdown = crate::shutdown::on_signal();
    let admin = crate::admin::serve(config.admin.listen, ledger.clone(), shutdown.clone()).await?;
    let result = anchord_batcher::witness::run(config.witness, ledger, shutdown.clone()).await;
    shutdown.cancel();
    let _ = admin.await;
    Ok(result?)
}

pub async fn audit(config: Config, args: AuditArgs) -> anyhow::Result<()> {
    let ledger = crate::open_ledger(&config).await?;
    let keys = anchord_batcher::audit::AuditKeys {
        sealer: anchord_batcher::sealer_verifier(&config.batcher)?,
        witnesses: config.batcher.witness_verifiers()?,
        quorum: config.batcher.effective_quorum(),
        tsa_cert: match &config.batcher.tsa_cert {
            Some(p) => Some(anchord_batcher::tsa::load_cert_der(p)?),
            None => None,
        },
    };
    let report =
        anchord_batcher::audit::audit(&ledger, config.hash_suite, &keys, !args.no_progress)
            .await
            .context("audit could not read the ledger")?;
    println!(
        "blocks: {}  entries sealed: {}  unsealed: {}  checkpoints: {} ({} final, {} timestamped)",
        report.blocks,
        report.entries_sealed,
        report.entries_unsealed,
        report.checkpoints,
        report.final_checkpoints,
        report.timestamped_checkpoints
    );
    for p in &report.problems {
        println!("INCONSISTENT: {p}");
    }
    if report.ok() {
        println!(
            "verdict: OK — every block root, the block chain, the block log and every checkpoint signature verify"
        );
        Ok(())
    } else {
        println!(
            "verdict: FAILED — {} inconsistencies",
            report.problems.len()
        );
        anyhow::bail!("audit found {} inconsistencies", report.problems.len())
    }
}
