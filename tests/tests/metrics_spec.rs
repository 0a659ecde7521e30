//! `docs/metrics.md` against the code: every metric every stage registers
//! is in the spec with the same type and label names, every metric in the
//! spec is registered, fixed label sets are created up front with exactly
//! the spec's values, names follow the rules, and the pipeline-latency
//! histograms share their buckets.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use anchord_testkit::metrics_spec::{self, SpecMetric};
use prometheus::core::Collector;
use prometheus::proto::{MetricFamily, MetricType};

/// What the code says about one metric.
#[derive(Debug)]
struct CodeMetric {
    kind: &'static str,
    labels: Vec<String>,
    family: MetricFamily,
}

fn kind(t: MetricType) -> &'static str {
    match t {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "untyped",
    }
}

/// Register every stage's metrics (and one relay target's series), then
/// describe them from the collectors' descriptors, so that a labelled
/// metric without any series yet is still seen.
fn code_metrics() -> BTreeMap<String, CodeMetric> {
    anchord_ingest::metrics::init();
    anchord_batcher::metrics::register();
    anchord_batcher::metrics::register_witness();
    anchord_relay::metrics::register();
    anchord_relay::metrics::init_target("court");
    anchord_verifier::metrics::init();
    anchord_workflow::metrics::init();
    // The standard process metrics every service exports (the prometheus
    // crate's `process` feature registers this collector in the default
    // registry of the anchord binary).
    let process: &'static dyn Collector = Box::leak(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ));
    let collectors: Vec<&'static dyn Collector> = [
        anchord_ingest::metrics::collectors(),
        anchord_batcher::metrics::collectors(),
        anchord_batcher::metrics::witness_collectors(),
        anchord_relay::metrics::collectors(),
        anchord_verifier::metrics::collectors(),
        anchord_workflow::metrics::collectors(),
        vec![process],
    ]
    .concat();
    let mut out = BTreeMap::new();
    for c in collectors {
        let descs = c.desc();
        let families = c.collect();
        assert_eq!(descs.len(), families.len(), "one family per descriptor");
        for (d, f) in descs.into_iter().zip(families) {
            assert_eq!(d.fq_name, f.name());
            let mut labels: Vec<String> = d
                .const_label_pairs
                .iter()
                .map(|l| l.name().to_owned())
                .collect();
            labels.extend(d.variable_labels.iter().cloned());
            let prev = out.insert(
                d.fq_name.clone(),
                CodeMetric {
                    kind: kind(f.get_field_type()),
                    labels,
                    family: f,
                },
            );
            assert!(prev.is_none(), "{} listed twice by collectors()", d.fq_name);
        }
    }
    out
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort();
    v
}

#[test]
fn the_metrics_spec_and_the_code_agree() {
    let spec: BTreeMap<String, SpecMetric> = metrics_spec::load();
    let code = code_metrics();
    let mut problems = Vec::new();

    // Whatever is in the default registry must be known too (a metric
    // registered elsewhere without being listed in a collectors()).
    for f in prometheus::gather() {
        if !code.contains_key(f.name()) {
            problems.push(format!(
                "{} is registered but missing from its crate's metrics::collectors()",
                f.name()
            ));
        }
    }
    for (name, c) in &code {
        let Some(s) = spec.get(name) else {
            problems.push(format!(
                "{name} ({}) is in the code but not in docs/metrics.md",
                c.kind
            ));
            continue;
        };
        if s.kind != c.kind {
            problems.push(format!(
                "{name}: the spec says {}, the code registers a {}",
                s.kind, c.kind
            ));
        }
        let spec_labels = sorted(s.labels.iter().map(|l| l.name.clone()));
        let code_labels = sorted(c.labels.iter().cloned());
        if spec_labels != code_labels {
            problems.push(format!(
                "{name}: labels differ: spec {spec_labels:?}, code {code_labels:?}"
            ));
        }
        // Fixed label sets: every exported value is allowed, and metrics
        // whose labels are all fixed (or `target`, created per target) are
        // created with exactly the spec's values.
        let all_fixed = s
            .labels
            .iter()
            .all(|l| l.values.is_some() || l.name == "target");
        for l in s.labels.iter().filter(|l| l.values.is_some()) {
            let allowed: BTreeSet<&str> = l
                .values
                .as_ref()
                .unwrap()
                .iter()
                .map(String::as_str)
                .collect();
            let seen: BTreeSet<&str> = c
                .family
                .get_metric()
                .iter()
                .flat_map(|m| m.get_label())
                .filter(|p| p.name() == l.name)
                .map(|p| p.value())
                .collect();
            if !seen.is_subset(&allowed) {
                problems.push(format!(
                    "{name}{{{}}}: values {seen:?} outside the spec's {allowed:?}",
                    l.name
                ));
            }
            if all_fixed && seen != allowed {
                problems.push(format!(
                    "{name}{{{}}}: created with {seen:?} at registration, the spec lists {allowed:?}",
                    l.name
                ));
            }
        }
        // Naming rules.
        if s.stage == "process" {
            if !name.starts_with("process_") {
                problems.push(format!("{name}: stage process names start with process_"));
            }
        } else if !name.starts_with(&format!("anchord_{}_", s.stage)) {
            problems.push(format!(
                "{name}: must start with anchord_{}_ (its stage)",
                s.stage
            ));
        }
        if (c.kind == "counter") != name.ends_with("_total") {
            problems.push(format!(
                "{name}: counters, and only counters, end in _total"
            ));
        }
        if s.unit == "seconds" && !name.ends_with("_seconds") && !name.ends_with("_seconds_total") {
            problems.push(format!("{name}: unit seconds but the name does not say so"));
        }
        if name.ends_with("_seconds") && s.unit != "seconds" {
            problems.push(format!(
                "{name}: named _seconds but the spec's unit is {}",
                s.unit
            ));
        }
        if c.labels.iter().any(|l| l == "le" || l == "quantile") {
            problems.push(format!("{name}: reserved label name"));
        }
    }
    for (name, s) in &spec {
        // Stage `admin` is registered by the anchord binary's admin listener
        // (no library to call here); anchord/tests/prometheus.rs checks it
        // on every running service's exposition.
        if !code.contains_key(name) && s.stage != "admin" {
            problems.push(format!(
                "{name} ({}) is in docs/metrics.md but no stage registers it",
                s.kind
            ));
        }
    }

    // The pipeline-latency histograms share their buckets.
    let latency: Vec<(&String, Vec<f64>)> = code
        .iter()
        .filter(|(n, _)| n.contains("_time_to_") && n.ends_with("_seconds"))
        .map(|(n, c)| {
            let m = c
                .family
                .get_metric()
                .first()
                .unwrap_or_else(|| panic!("{n}: no series after registration"));
            let b = m
                .get_histogram()
                .get_bucket()
                .iter()
                .map(|b| b.upper_bound())
                .collect();
            (n, b)
        })
        .collect();
    let stages: BTreeSet<&str> = latency
        .iter()
        .map(|(n, _)| n.split("_time_to_").nth(1).unwrap())
        .collect();
    assert_eq!(
        stages,
        BTreeSet::from([
            "anchored_seconds",
            "checkpointed_seconds",
            "sealed_seconds",
            "sequenced_seconds",
            "witnessed_seconds"
        ]),
        "one latency histogram per pipeline stage"
    );
    for (n, b) in &latency {
        if *b != latency[0].1 {
            problems.push(format!(
                "{n}: buckets {b:?} differ from {}'s {:?}",
                latency[0].0, latency[0].1
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "docs/metrics.md and the code disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_exposition_of_every_stage_is_well_formed_text() {
    code_metrics();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&prometheus::gather())
        .unwrap();
    for (name, m) in metrics_spec::load() {
        if m.stage == "admin" {
            continue; // the binary's admin listener (see above)
        }
        // Labels whose values come with traffic (verifier routes, assigned
        // partitions) have no series before it; everything else (fixed sets,
        // configured targets) is exported from the start.
        if m.labels
            .iter()
            .any(|l| l.values.is_none() && l.name != "target")
        {
            continue;
        }
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not exported right after registration:\n{text}"
        );
    }
}
