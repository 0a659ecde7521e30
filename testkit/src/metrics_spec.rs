//! The metrics specification, `docs/metrics.md`, as data: the rows of its
//! "Metrics" table. Used by the code-vs-spec test and by the Prometheus and
//! dashboard tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One label of a metric: its name and, for a fixed set, the allowed values
/// (`None`: values come from configuration or routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecLabel {
    pub name: String,
    pub values: Option<Vec<String>>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecMetric {
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: String,
    pub unit: String,
    pub labels: Vec<SpecLabel>,
    pub stage: String,
}

/// The path of `docs/metrics.md` in this workspace.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("metrics.md")
}

/// Read and parse `docs/metrics.md`; panics (naming the line) on a malformed row.
pub fn load() -> BTreeMap<String, SpecMetric> {
    let p = path();
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("reading the metrics spec {}: {e}", p.display()));
    parse(&text)
}

/// The backticked tokens of `s`, in order.
fn ticked(s: &str) -> Vec<String> {
    s.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, t)| t.to_owned())
        .collect()
}

/// Parse the table whose header starts `| name | type | unit | labels |`.
pub fn parse(text: &str) -> BTreeMap<String, SpecMetric> {
    let mut out = BTreeMap::new();
    let mut in_table = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("| name | type | unit | labels | stage |") {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if !line.starts_with('|') {
            if !out.is_empty() {
                break;
            }
            continue;
        }
        if line.starts_with("| ---") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert!(
            cells.len() == 6,
            "docs/metrics.md line {}: expected 6 cells, got {}: {line}",
            n + 1,
            cells.len()
        );
        let name = ticked(cells[0]);
        assert!(
            name.len() == 1,
            "docs/metrics.md line {}: the name cell must be one `name`",
            n + 1
        );
        let labels = if cells[3] == "—" {
            Vec::new()
        } else {
            cells[3]
                .split("; ")
                .map(|part| {
                    let toks = ticked(part);
                    let name = toks.first().cloned().unwrap_or_else(|| {
                        panic!("docs/metrics.md line {}: label without a `name`", n + 1)
                    });
                    let values = part.contains(" ∈ {").then(|| {
                        let (_, set) = part.split_once(" ∈ {").expect("checked");
                        ticked(set)
                    });
                    SpecLabel { name, values }
                })
                .collect()
        };
        let m = SpecMetric {
            name: name[0].clone(),
            kind: cells[1].to_owned(),
            unit: cells[2].to_owned(),
            labels,
            stage: cells[4].to_owned(),
        };
        assert!(
            out.insert(m.name.clone(), m).is_none(),
            "docs/metrics.md line {}: metric listed twice",
            n + 1
        );
    }
    assert!(!out.is_empty(), "docs/metrics.md: no metrics table found");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_with_fixed_and_open_label_sets() {
        let t = "x\n| name | type | unit | labels | stage | meaning |\n| --- | --- | --- | --- | --- | --- |\n\
                 | `a_total` | counter | requests | `target`: names; `class` ∈ {`x`, `y`} | relay | m. |\n\
                 | `b` | gauge | blocks | — | batcher | m. |\n\nafter\n";
        let m = parse(t);
        assert_eq!(m.len(), 2);
        let a = &m["a_total"];
        assert_eq!(a.kind, "counter");
        assert_eq!(a.labels[0].name, "target");
        assert_eq!(a.labels[0].values, None);
        assert_eq!(a.labels[1].values, Some(vec!["x".into(), "y".into()]));
        assert!(m["b"].labels.is_empty());
    }
}
