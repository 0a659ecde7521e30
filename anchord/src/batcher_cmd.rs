//! `anchord batcher`, `keygen`, `witness` and `audit`: thin wrappers over
//! the batcher crate.

use std::path::PathBuf;
use std::process::ExitCode;

use anchord_core::checkpoint::ALG_ED25519;
use anchord_ledger::{Ledger, WitnessStore};
use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::config::Config;
use crate::service::{self, Service};

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

/// `anchord batcher`: validated (sealer key, witness keys, TSA certificate)
/// before the ledger is opened as a writer.
pub struct BatcherService;

impl Service for BatcherService {
    type Prepared = ();
    type Db = Ledger;

    fn validate(&self, config: &Config) -> anyhow::Result<()> {
        let c = &config.batcher;
        c.validate()?;
        let key = c
            .signing_key
            .as_ref()
            .context("batcher.signing_key is required to seal")?;
        anchord_batcher::keys::load_signer(key, ALG_ED25519)?;
        c.witness_verifiers()?;
        if let Some(cert) = &c.tsa_cert {
            anchord_tsa::load_cert_der(cert)
                .map_err(|e| anyhow::anyhow!("batcher.tsa_cert: {e}"))?;
        }
        Ok(())
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<Ledger> {
        service::open_writer(config).await
    }

    fn readiness(&self, _: &Config, _: &(), ledger: &Ledger) -> anyhow::Result<Readiness> {
        Ok(Readiness::new(ledger.clone()))
    }

    async fn run(
        self,
        config: Config,
        _: (),
        ledger: Ledger,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        Ok(anchord_batcher::run(config.batcher, config.hash_suite, ledger, shutdown).await?)
    }
}

/// `anchord witness`: another organisation's service, on its own database
/// and schema (`anchord_witness`), validated (its cosignature key, the logs
/// it follows) before anything is bound.
pub struct WitnessService;

impl Service for WitnessService {
    type Prepared = ();
    type Db = WitnessStore;

    fn validate(&self, config: &Config) -> anyhow::Result<()> {
        anchord_batcher::witness::check_config(&config.witness)?;
        Ok(())
    }

    async fn connect(&self, config: &Config) -> anyhow::Result<WitnessStore> {
        service::open_witness_store(config).await
    }

    fn readiness(&self, _: &Config, _: &(), store: &WitnessStore) -> anyhow::Result<Readiness> {
        Ok(Readiness::witness(store.clone()))
    }

    async fn run(
        self,
        config: Config,
        _: (),
        store: WitnessStore,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        Ok(anchord_batcher::witness::run(config.witness, store, shutdown).await?)
    }
}

/// `anchord audit`: a reader (read-only sessions, no migration).
pub async fn audit(config: Config, args: AuditArgs) -> anyhow::Result<()> {
    let keys = audit_keys(&config).map_err(service::config_error)?;
    let ledger = service::open_reader(&config).await?;
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
    if report.blocks_without_leaf_tiles > 0 {
        println!(
            "blocks without stored level-0 tiles (sealed before ledger schema 9; the batcher back-fills them): {}",
            report.blocks_without_leaf_tiles
        );
    }
    if report.blocks_added_meanwhile > 0 {
        println!(
            "blocks sealed while the audit ran (not checked; the next audit checks them): {}",
            report.blocks_added_meanwhile
        );
    }
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

fn audit_keys(config: &Config) -> anyhow::Result<anchord_batcher::audit::AuditKeys> {
    Ok(anchord_batcher::audit::AuditKeys {
        sealer: anchord_batcher::sealer_verifier(&config.batcher)?,
        witnesses: config.batcher.witness_verifiers()?,
        quorum: config.batcher.effective_quorum(),
        tsa_cert: match &config.batcher.tsa_cert {
            Some(p) => Some(
                anchord_tsa::load_cert_der(p)
                    .map_err(|e| anyhow::anyhow!("batcher.tsa_cert: {e}"))?,
            ),
            None => None,
        },
    })
}
