//! The seeded mutation driver: corpus in, executions out, crashes saved.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Target;
use crate::mutate::{Rng, mutate};

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Iterations(u64),
    Time(Duration),
    /// At least this many executions and at least this long.
    Both(u64, Duration),
}

/// The pool grows with accepted inputs up to this many entries.
const MAX_POOL: usize = 4096;

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub target: String,
    pub executions: u64,
    pub accepted: u64,
    pub elapsed: Duration,
    pub corpus: usize,
    pub pool: usize,
    /// The first input that panicked, and the panic message.
    pub crash: Option<(Vec<u8>, String)>,
}

impl Summary {
    pub fn per_second(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Every file of `fuzz/corpus/<target>/`, sorted by name (deterministic).
pub fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// Run `target` on every corpus input, then on mutations of the pool until
/// the budget is spent or an input panics.
pub fn run(name: &str, target: Target, corpus: &[Vec<u8>], seed: u64, budget: Budget) -> Summary {
    let mut rng = Rng::new(seed);
    let mut pool: Vec<Vec<u8>> = if corpus.is_empty() {
        vec![Vec::new()]
    } else {
        corpus.to_vec()
    };
    let start = Instant::now();
    let mut executions = 0u64;
    let mut accepted = 0u64;
    let mut crash = None;
    let exec = |input: &[u8], executions: &mut u64| -> Result<bool, String> {
        *executions += 1;
        catch_unwind(AssertUnwindSafe(|| target(input))).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "non-string panic".into())
        })
    };
    // The corpus itself first: every seed must pass.
    for input in corpus {
        match exec(input, &mut executions) {
            Ok(ok) => accepted += u64::from(ok),
            Err(msg) => {
                crash = Some((input.clone(), msg));
                break;
            }
        }
    }
    let done = |executions: u64, start: &Instant| match budget {
        Budget::Iterations(n) => executions >= n,
        Budget::Time(d) => start.elapsed() >= d,
        Budget::Both(n, d) => executions >= n && start.elapsed() >= d,
    };
    while crash.is_none() && !done(executions, &start) {
        // Check the clock every 256 executions only.
        for _ in 0..256 {
            let a = &pool[rng.below(pool.len())];
            let b = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, a, b);
            match exec(&input, &mut executions) {
                Ok(true) => {
                    accepted += 1;
                    if pool.len() < MAX_POOL {
                        pool.push(input);
                    } else if rng.chance(64) {
                        // Keep the pool fresh without losing the seeds.
                        let i = corpus.len() + rng.below(MAX_POOL - corpus.len().min(MAX_POOL));
                        if i < pool.len() {
                            pool[i] = input;
                        }
                    }
                }
                Ok(false) => {}
                Err(msg) => {
                    crash = Some((input, msg));
                    break;
                }
            }
            if matches!(budget, Budget::Iterations(n) if executions >= n) {
                break;
            }
        }
    }
    Summary {
        target: name.to_owned(),
        executions,
        accepted,
        elapsed: start.elapsed(),
        corpus: corpus.len(),
        pool: pool.len(),
        crash,
    }
}

/// Save a crashing input under `dir` (named by its content hash); returns
/// the path.
pub fn save_crash(dir: &Path, input: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let digest = anchord_core::HashSuite::Sha256.digest(input);
    let path = dir.join(format!("crash-{}", hex::encode(&digest[..8])));
    std::fs::write(&path, input)?;
    Ok(path)
}
