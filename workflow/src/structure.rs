//! The crate's structure as tests (issue 15): no import cycle between the
//! workflow's modules.
//!
//! The module graph is read from the sources: every `crate::…` path (in
//! `use` declarations, braced groups included, and in expressions) from a
//! module file names the module it depends on (the longest path prefix that
//! is a module file). The crate root (`lib.rs`), which declares and starts
//! everything, is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name (`store::preservations`) → source text, comments removed.
pub(crate) fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("the crate's sources are readable") {
            let p: PathBuf = e.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).expect("under src");
            let mut parts: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let name = parts.join("::");
            if name == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("a readable source file");
            out.insert(name, strip_comments(&text));
        }
    }
    out
}

/// The text without `//` comments (doc comments included); string literals
/// are kept (a `//` inside one cuts the rest of its line, harmless here).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path that follows `crate::`, braced groups expanded one level per
/// item (`crate::{a, b::{c, d}}` gives `a` and `b::{c, d}`).
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        // Not the tail of another path segment (`anchord_crate::`).
        let before = rest[..i].chars().next_back();
        let after = &rest[i + "crate::".len()..];
        if before.is_some_and(is_ident) {
            rest = after;
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut end = group.len();
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let inner = &group[..end];
            let mut depth = 0;
            let mut item = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(std::mem::take(&mut item).trim().to_owned());
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(item.trim().to_owned());
            rest = &group[end..];
        } else {
            let end = after
                .char_indices()
                .find(|&(_, c)| !(is_ident(c) || c == ':'))
                .map_or(after.len(), |(j, _)| j);
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// Module → the modules it names.
pub(crate) fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let mut g = BTreeMap::new();
    for (name, text) in &mods {
        let mut deps = BTreeSet::new();
        for path in crate_paths(text) {
            let segs: Vec<&str> = path
                .split(|c: char| !is_ident(c))
                .filter(|s| !s.is_empty())
                .collect();
            let target = (1..=segs.len())
                .rev()
                .map(|n| segs[..n].join("::"))
                .find(|cand| mods.contains_key(cand));
            if let Some(t) = target
                && &t != name
                && !name.starts_with(&format!("{t}::"))
            {
                deps.insert(t);
            }
        }
        g.insert(name.clone(), deps);
    }
    g
}

/// Every cycle of `g`, each as its strongly connected set of modules
/// (Tarjan).
pub(crate) fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                let self_loop = self.g.get(v).is_some_and(|d| d.contains(v));
                if comp.len() > 1 || self_loop {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn the_workflow_modules_import_each_other_without_a_cycle() {
    let g = graph();
    assert!(g.contains_key("auth") && g.contains_key("authz"), "{g:?}");
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles between workflow modules: {found:?}\n(module graph: {g:#?})"
    );
}

#[test]
fn the_cycle_finder_sees_cycles_and_the_parser_reads_braced_groups() {
    let paths = crate_paths(
        "use crate::{Workflow, audit, authz::{Require, roles}};\nlet x = crate::events::emit(); let y = anchord_crate::z;",
    );
    assert_eq!(
        paths,
        [
            "Workflow",
            "audit",
            "authz::{Require, roles}",
            "events::emit"
        ]
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edge = |g: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    };
    edge(&mut g, "evidence", "webhooks");
    edge(&mut g, "webhooks", "auth");
    edge(&mut g, "auth", "audit");
    edge(&mut g, "events", "error");
    assert!(cycles(&g).is_empty());
    edge(&mut g, "audit", "evidence");
    assert_eq!(cycles(&g), [vec!["audit", "auth", "evidence", "webhooks"]]);
}

/// Modules outside `store/` allowed to hold SQL text: `status` is the store
/// layer's one transition helper (`UPDATE ... WHERE status = ANY(from)` and
/// its audit row, generic over the status enums); `structure` names the
/// keywords it looks for.
const SQL_OUTSIDE_STORE: &[&str] = &["status", "structure"];

/// SQL statement keywords as they start a statement in a string.
const SQL: &[&str] = &["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH "];

/// Issue 15's "no SQL outside its store layer": every module of the crate
/// but `store::*` (and the two above) holds no SQL text, so a handler or a
/// background loop that grows a statement fails here.
#[test]
fn no_module_outside_the_store_holds_sql() {
    let mods = modules();
    assert!(mods.len() > 20, "modules found: {:?}", mods.keys());
    for m in [
        "store::preservations",
        "store::contracts",
        "store::judicial",
        "store::users",
        "store::submissions",
    ] {
        assert!(mods.contains_key(m), "{m} exists");
    }
    let mut found = Vec::new();
    for (name, text) in &mods {
        if name.starts_with("store::") || SQL_OUTSIDE_STORE.contains(&name.as_str()) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if let Some(k) = SQL.iter().find(|k| line.contains(*k)) {
                found.push(format!("{name}:{}: {k:?} in {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside store/:\n{}",
        found.join("\n")
    );
}
