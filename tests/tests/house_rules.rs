//! House rules that the build can check: pipeline stages never depend on
//! each other (ARCHITECTURE.md). Tests and benches may use another stage as
//! a dev-dependency (to seal blocks to prove, say); the library may not.

const STAGES: [&str; 4] = ["ingest", "batcher", "relay", "verifier"];

/// The crate names in `[dependencies]` of `manifest` (not dev- or build-).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && let Some((name, _)) = line.split_once('=') {
            // `anchord-core.workspace = true` or `anchord-core = { … }`.
            let name = name.split('.').next().unwrap_or("").trim();
            if !name.is_empty() && !name.starts_with('#') {
                out.push(name.to_owned());
            }
        }
    }
    out
}

#[test]
fn pipeline_stages_never_depend_on_each_other() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut broken = Vec::new();
    for stage in STAGES {
        let text = std::fs::read_to_string(root.join(stage).join("Cargo.toml")).unwrap();
        let deps = dependencies(&text);
        assert!(
            deps.iter().any(|d| d == "anchord-core"),
            "{stage}: [dependencies] not found or parsed: {deps:?}"
        );
        for other in STAGES.iter().filter(|o| **o != stage) {
            if deps.iter().any(|d| *d == format!("anchord-{other}")) {
                broken.push(format!("{stage} depends on {other}"));
            }
        }
    }
    assert!(broken.is_empty(), "stages import stages: {broken:?}");
}
