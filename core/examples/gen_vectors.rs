//! Writes the conformance vector set: `<DIR>/<suite>/{inclusion,consistency}/<n>/<case>.json`
//! for every hash suite, replacing whatever generated files were there.
//!
//! ```text
//! cargo run -p anchord-core --example gen_vectors -- testdata/vectors
//! ```
//!
//! The output is a pure function of `anchord_core::vectors::generate`;
//! `core/tests/vectors.rs` fails if the committed set differs from it.

use std::path::PathBuf;
use std::process::ExitCode;

use anchord_core::HashSuite;
use anchord_core::vectors::{VectorKind, generate};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen_vectors <DIR>   (e.g. testdata/vectors)");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    for suite in HashSuite::ALL {
        let suite_dir = dir.join(suite.name());
        // Only the generated subtrees are replaced, so stale cases vanish.
        for kind in [VectorKind::Inclusion, VectorKind::Consistency] {
            let sub = suite_dir.join(kind.name());
            if sub.exists()
                && let Err(e) = std::fs::remove_dir_all(&sub)
            {
                eprintln!("cannot remove {}: {e}", sub.display());
                return ExitCode::FAILURE;
            }
        }
        let files = generate(suite);
        for (rel, json) in &files {
            let path = suite_dir.join(rel);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, json));
            if let Err(e) = written {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        println!("{}: {} vectors", suite_dir.display(), files.len());
    }
    ExitCode::SUCCESS
}
