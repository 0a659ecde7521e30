//! The chaos suite's long form (`scripts/chaos`): prints one line per round
//! and a summary line; exits 1 when anything was lost, doubled or anchored
//! twice, or the audit or a check failed.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    about = "Run the whole Anchord pipeline under a seeded fault schedule and check it from the outside"
)]
struct Args {
    /// Fault rounds.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Seed of the fault schedule and the producer.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Producer messages per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Milliseconds each round's faults last.
    #[arg(long, default_value_t = 10_000)]
    round_ms: u64,
    /// Milliseconds of calm after each round.
    #[arg(long, default_value_t = 3_000)]
    settle_ms: u64,
    /// Seconds the pipeline may take to catch up at the end.
    #[arg(long, default_value_t = 300)]
    converge_secs: u64,
    /// Proofs verified offline and online at the end.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Keep the work directory (logs) even on success.
    #[arg(long)]
    keep: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let a = Args::parse();
    let opts = anchord_tests::chaos::Options {
        rounds: a.rounds,
        seed: a.seed,
        rate: a.rate,
        round_ms: a.round_ms,
        settle_ms: a.settle_ms,
        converge_secs: a.converge_secs,
        samples: a.samples,
        bin: anchord_tests::chaos::anchord_bin(),
        keep: a.keep,
    };
    let say = |l: &str| println!("{l}");
    match anchord_tests::chaos::run(&opts, &say).await {
        Ok(s) => {
            println!("{}", s.line());
            if s.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            println!("chaos: could not run: {e}");
            ExitCode::from(2)
        }
    }
}
