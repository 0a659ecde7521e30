//! `anchord conformance DIR`: check every Merkle test vector file under DIR.
//!
//! The files use the transparency-dev/merkle layout (`inclusion/<n>/*.json`,
//! `consistency/<n>/*.json`; see `docs/conformance.md`). Each is parsed and
//! verified by `anchord_core::vectors`; this module only walks the directory
//! and reports. One line per file, then `N passed, M failed`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anchord_core::vectors::check_vector_json;
use anyhow::Context as _;

/// Checks every `*.json` file under `dir` (recursively, in sorted order) and
/// prints one line per file and a summary to stdout.
///
/// Returns `Ok(true)` if every file passed, `Ok(false)` if any failed or none
/// was found, and `Err` only if `dir` itself cannot be read.
pub fn run(dir: &Path) -> anyhow::Result<bool> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(dir, &mut out)
}

/// [`run`], writing to `out`.
fn run_to(dir: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    anyhow::ensure!(meta.is_dir(), "{} is not a directory", dir.display());

    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    collect(dir, &mut files, &mut unreadable)
        .with_context(|| format!("reading {}", dir.display()))?;

    let (mut passed, mut failed) = (0usize, 0usize);
    for (path, reason) in &unreadable {
        writeln!(out, "FAIL {}: {reason}", display(dir, path))?;
        failed += 1;
    }
    for path in &files {
        let name = display(dir, path);
        let verdict = match std::fs::read(path) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(bytes) => match check_vector_json(&bytes) {
                Err(e) => Err(format!("not a usable vector: {e}")),
                Ok(outcome) if outcome.matched => Ok(()),
                Ok(outcome) => Err(outcome.explanation()),
            },
        };
        match verdict {
            Ok(()) => {
                writeln!(out, "ok   {name}")?;
                passed += 1;
            }
            Err(reason) => {
                writeln!(out, "FAIL {name}: {reason}")?;
                failed += 1;
            }
        }
    }
    if passed + failed == 0 {
        writeln!(
            out,
            "no *.json vector files under {}: nothing was checked",
            dir.display()
        )?;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(failed == 0 && passed > 0)
}

/// Collects `*.json` files under `dir`, sorted by name at every level.
/// Subdirectories that cannot be read are recorded, not fatal; `dir` itself
/// must be readable.
fn collect(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    unreadable: &mut Vec<(PathBuf, String)>,
) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if let Err(e) = collect(&path, files, unreadable) {
                unreadable.push((path, format!("cannot read directory: {e}")));
            }
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `root`, with `/` separators.
fn display(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use anchord_core::HashSuite;
    use anchord_core::vectors::generate;

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!(
                "anchord-conformance-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, rel: &str, contents: &[u8]) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run_captured(dir: &Path) -> (bool, Vec<String>) {
        let mut out = Vec::new();
        let ok = run_to(dir, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        (ok, text.lines().map(str::to_owned).collect())
    }

    #[test]
    fn committed_vectors_all_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors");
        let (ok, lines) = run_captured(&dir);
        let want = generate(HashSuite::Sha256).len() + generate(HashSuite::Sm3).len();
        assert_eq!(lines.last().unwrap(), &format!("{want} passed, 0 failed"));
        assert!(ok);
        assert!(lines.contains(&"ok   sha256/inclusion/1/happy-path.json".to_owned()));
        assert!(lines.contains(&"ok   sm3/consistency/2/happy-path.json".to_owned()));
    }

    #[test]
    fn a_corrupted_vector_and_a_bad_file_fail_with_reasons() {
        let tmp = TempDir::new();
        let files = generate(HashSuite::Sha256);
        for (rel, json) in &files {
            tmp.write(rel, json.as_bytes());
        }
        assert!(run_captured(&tmp.0).0);

        // Flip one base64 character of a happy path's root.
        let rel = "inclusion/5/happy-path.json";
        let json = &files.iter().find(|(p, _)| p == rel).unwrap().1;
        let at = json.find("\"root\": \"").unwrap() + 12;
        let mut bytes = json.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        tmp.write(rel, &bytes);
        tmp.write("consistency/zz/garbage.json", b"{\"size1\": ");
        tmp.write("consistency/zz/notes.txt", b"not a vector, not checked");

        let (ok, lines) = run_captured(&tmp.0);
        assert!(!ok);
        let fail = lines
            .iter()
            .find(|l| l.starts_with("FAIL inclusion/5/happy-path.json: "))
            .unwrap();
        assert!(
            fail.contains("expected wantErr=false, verifier said: root mismatch"),
            "{fail}"
        );
        let garbage = lines
            .iter()
            .find(|l| l.starts_with("FAIL consistency/zz/garbage.json: not a usable vector"))
            .unwrap();
        assert!(garbage.contains("JSON"), "{garbage}");
        assert!(!lines.iter().any(|l| l.contains("notes.txt")));
        assert_eq!(
            lines.last().unwrap(),
            &format!("{} passed, 2 failed", files.len() - 1)
        );
        // Sorted walk: consistency/ before inclusion/, numbers as names.
        let first = lines
            .iter()
            .position(|l| l.contains("consistency/"))
            .unwrap();
        let last = lines
            .iter()
            .rposition(|l| l.contains("inclusion/"))
            .unwrap();
        assert!(first < last);
    }

    #[test]
    fn an_empty_directory_is_a_failure() {
        let tmp = TempDir::new();
        tmp.write("README.txt", b"no vectors here");
        let (ok, lines) = run_captured(&tmp.0);
        assert!(!ok);
        assert!(
            lines[0].starts_with("no *.json vector files under "),
            "{lines:?}"
        );
        assert_eq!(lines.last().unwrap(), "0 passed, 0 failed");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let tmp = TempDir::new();
        let err = run_to(&tmp.0.join("nope"), &mut Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }
}
