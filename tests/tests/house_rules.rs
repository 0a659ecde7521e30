//! House rules that the build can check (ARCHITECTURE.md): pipeline stages
//! never depend on each other (tests and benches may use another stage as a
//! dev-dependency, to seal blocks to prove, say; the library may not); each
//! format is spelled only in core; only core hashes; only the ledger and its
//! named exceptions speak PostgreSQL; core does no I/O; only core converts
//! clock readings.

#![allow(clippy::unwrap_used)]

const STAGES: [&str; 4] = ["ingest", "batcher", "relay", "verifier"];

/// Each workspace member's (by directory) normal dependencies, from
/// `cargo metadata` (so target-specific tables and renamed dependencies
/// count too): package names, not dev- or build-dependencies.
fn normal_dependencies() -> &'static std::collections::BTreeMap<String, Vec<String>> {
    static DEPS: std::sync::OnceLock<std::collections::BTreeMap<String, Vec<String>>> =
        std::sync::OnceLock::new();
    DEPS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(root())
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let root = root().canonicalize().unwrap();
        let mut map = std::collections::BTreeMap::new();
        for p in v["packages"].as_array().unwrap() {
            let manifest = std::path::Path::new(p["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap();
            let member = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            map.insert(member, deps);
        }
        map
    })
}

#[test]
fn pipeline_stages_never_depend_on_each_other() {
    let mut broken = Vec::new();
    for stage in STAGES {
        let deps = manifest_deps(stage);
        assert!(
            deps.iter().any(|d| d == "anchord-core"),
            "{stage}: dependencies not found: {deps:?}"
        );
        for other in STAGES.iter().filter(|o| **o != stage) {
            if deps.iter().any(|d| *d == format!("anchord-{other}")) {
                broken.push(format!("{stage} depends on {other}"));
            }
        }
    }
    assert!(broken.is_empty(), "stages import stages: {broken:?}");
}

/// Every workspace member, by directory.
const MEMBERS: [&str; 13] = [
    "core", "ledger", "ingest", "batcher", "tsa", "egress", "relay", "verifier", "workflow",
    "testkit", "tests", "anchord", "fuzz",
];

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifest_deps(member: &str) -> Vec<String> {
    normal_dependencies()
        .get(member)
        .unwrap_or_else(|| panic!("{member} is not a workspace member"))
        .clone()
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// (file relative to the workspace, line number) of every non-comment line
/// in a member's `src/` containing `needle`.
fn code_lines_with(needle: &str) -> Vec<(String, usize)> {
    let mut hits = Vec::new();
    for m in MEMBERS {
        let mut files = Vec::new();
        rust_files(&root().join(m).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                if !line.trim_start().starts_with("//") && line.contains(needle) {
                    let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
                    hits.push((rel, n + 1));
                }
            }
        }
    }
    hits
}

fn outside_core(hits: Vec<(String, usize)>) -> Vec<(String, usize)> {
    hits.into_iter()
        .filter(|(f, _)| !f.starts_with("core/src/"))
        .collect()
}

#[test]
fn the_member_list_is_the_workspaces() {
    let have: Vec<&str> = normal_dependencies().keys().map(String::as_str).collect();
    let mut want = MEMBERS.to_vec();
    want.sort_unstable();
    assert_eq!(have, want, "update MEMBERS in tests/tests/house_rules.rs");
}

/// ARCHITECTURE.md: each format has one definition, in core. The anchor
/// payload's magic, its idempotency-key domain, the judicial simulator's
/// transaction id, the checkpoint body's layout and the block-root and
/// leaf-hash rechecks are spelled only there.
#[test]
fn only_core_spells_the_formats() {
    let mut broken = Vec::new();
    for needle in [
        "\"ANCHORD1",
        "b\"ANCHORD1\"",
        "414e43484f524431",
        "anchord-anchor/v1",
        "anchord-sim-tx/v1",
        "format!(\"old {",
        ".strip_prefix(\"old \")",
        "\"{}\\n{}\\n{}\\n\"",
        "{origin}\\n{",
        "stored merkle root",
        "but the entry recomputes",
    ] {
        for (f, n) in outside_core(code_lines_with(needle)) {
            broken.push(format!("{f}:{n} spells {needle:?}"));
        }
    }
    assert!(
        broken.is_empty(),
        "formats defined outside core: {broken:#?}"
    );
}

/// ARCHITECTURE.md: only core hashes. No other member depends on a hash
/// function crate; they call `HashSuite` (the test-only `anchord-tests`
/// recomputes independently in its chaos checker).
#[test]
fn only_core_depends_on_hash_functions() {
    let core = manifest_deps("core");
    assert!(
        core.iter().any(|d| d == "sha2") && core.iter().any(|d| d == "sm3"),
        "core's dependencies not read: {core:?}"
    );
    let mut broken = Vec::new();
    for m in MEMBERS.iter().filter(|m| !matches!(**m, "core" | "tests")) {
        for d in manifest_deps(m) {
            if matches!(
                d.as_str(),
                "sha2" | "sm3" | "sha1" | "md-5" | "blake3" | "digest"
            ) {
                broken.push(format!("{m} depends on {d}"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:?}");
}

/// ARCHITECTURE.md: only the ledger speaks SQL; the workflow for its own
/// schema; testkit and the test-only `anchord-tests` to create databases and
/// check them from outside.
#[test]
fn only_the_ledger_and_its_named_exceptions_depend_on_postgres() {
    let allowed = ["ledger", "workflow", "testkit", "tests"];
    assert!(
        manifest_deps("ledger")
            .iter()
            .any(|d| d == "tokio-postgres"),
        "the ledger's dependencies not read"
    );
    // Dev-dependencies are not counted: ingest's tests use tokio-postgres.
    assert!(
        !manifest_deps("ingest")
            .iter()
            .any(|d| d.contains("postgres"))
    );
    let mut broken = Vec::new();
    for m in MEMBERS.iter().filter(|m| !allowed.contains(m)) {
        for d in manifest_deps(m) {
            if d.contains("postgres") {
                broken.push(format!("{m} depends on {d}"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:?}");
}

/// ARCHITECTURE.md: core does no I/O: no runtime, network, database or
/// broker crate among its dependencies, and no file, socket, environment,
/// process or clock access in its library code (tests excepted).
#[test]
fn core_does_no_io() {
    for d in manifest_deps("core") {
        assert!(
            !matches!(
                d.as_str(),
                "tokio"
                    | "reqwest"
                    | "hyper"
                    | "axum"
                    | "rdkafka"
                    | "tokio-postgres"
                    | "deadpool-postgres"
                    | "anchord-ledger"
            ),
            "core depends on {d}"
        );
    }
    let mut files = Vec::new();
    rust_files(&root().join("core/src"), &mut files);
    let mut broken = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Library code only: stop at the unit-test module.
        let lib = text.split("#[cfg(test)]").next().unwrap_or_default();
        if f.ends_with("bundle/tests.rs") {
            continue;
        }
        for needle in [
            "std::fs",
            "std::net",
            "std::env",
            "std::process",
            "SystemTime::now",
            "Instant::now",
        ] {
            for (n, line) in lib.lines().enumerate() {
                if !line.trim_start().starts_with("//") && line.contains(needle) {
                    broken.push(format!("{}:{} uses {needle}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

/// One definition of "µs / ms since the epoch": `core::time`. No other
/// code converts a clock reading itself.
#[test]
fn only_core_converts_clock_readings() {
    let mut broken = Vec::new();
    for m in MEMBERS {
        let mut files = Vec::new();
        rust_files(&root().join(m).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            if text.contains("UNIX_EPOCH")
                && (text.contains("as_micros()") || text.contains("as_millis()"))
                && !f.ends_with("core/src/time.rs")
            {
                broken.push(f.display().to_string());
            }
        }
    }
    assert!(
        broken.is_empty(),
        "convert through anchord_core::time: {broken:?}"
    );
}
