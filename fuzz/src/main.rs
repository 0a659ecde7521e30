//! `anchord-fuzz <target>|all [--seconds N] [--iterations N] [--seed N]`:
//! mutate `fuzz/corpus/<target>/`, print executions/s, save a crashing
//! input under `fuzz/crashes/<target>/` and exit 1 on any panic.

use std::process::ExitCode;
use std::time::Duration;

use anchord_fuzz::driver::{Budget, load_corpus, run, save_crash};
use anchord_fuzz::{TARGETS, fuzz_dir};

fn usage() -> ExitCode {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    eprintln!(
        "usage: anchord-fuzz <target|all|list> [--seconds N] [--iterations N] [--seed N]\ntargets: {}",
        names.join(", ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else {
        return usage();
    };
    if which == "list" {
        for (n, _) in TARGETS {
            println!("{n}");
        }
        return ExitCode::SUCCESS;
    }
    let mut seconds = None;
    let mut iterations = None;
    let mut seed = 1u64;
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--seconds", Some(v)) => seconds = Some(v),
            ("--iterations", Some(v)) => iterations = Some(v),
            ("--seed", Some(v)) => seed = v,
            _ => return usage(),
        }
        i += 2;
    }
    let budget = match (iterations, seconds) {
        (Some(n), Some(s)) => Budget::Both(n, Duration::from_secs(s)),
        (Some(n), None) => Budget::Iterations(n),
        (None, Some(s)) => Budget::Time(Duration::from_secs(s)),
        (None, None) => Budget::Time(Duration::from_secs(10)),
    };
    let selected: Vec<_> = TARGETS
        .iter()
        .filter(|(n, _)| which == "all" || n == which)
        .collect();
    if selected.is_empty() {
        return usage();
    }
    // Panics are caught and reported once, below.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for (name, target) in selected {
        let corpus = load_corpus(&fuzz_dir().join("corpus").join(name));
        let s = run(name, *target, &corpus, seed, budget);
        println!(
            "{name}: {} executions in {:.1} s = {:.0} exec/s; {} accepted; corpus {} seeds, pool {}; crashes {}",
            s.executions,
            s.elapsed.as_secs_f64(),
            s.per_second(),
            s.accepted,
            s.corpus,
            s.pool,
            u8::from(s.crash.is_some()),
        );
        if let Some((input, msg)) = s.crash {
            failed = true;
            match save_crash(&fuzz_dir().join("crashes").join(name), &input) {
                Ok(p) => println!("{name}: CRASH: {msg}\n  input saved to {}", p.display()),
                Err(e) => println!("{name}: CRASH: {msg}\n  (could not save the input: {e})"),
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
