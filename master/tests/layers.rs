//! The master's map, enforced: reads `master/src`, finds every module each file imports
//! (`crate::…`, `super::…`, in `use` trees and inline paths, test code left out) and checks that
//! no two modules import each other (directly or round a cycle) and that the folders import
//! only downward, as `lib.rs`'s map says. `cargo test -p stampede-master --test layers --
//! --nocapture` prints the module tree and the folder graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level folder may import (besides itself), from `lib.rs`'s map.
const ALLOWED: &[(&str, &[&str])] = &[
    ("scenario", &[]),
    ("outcome", &["scenario"]),
    ("stats", &["outcome", "scenario"]),
    ("wire", &["stats"]),
    ("view", &["outcome", "scenario"]),
    ("report", &["outcome", "scenario"]),
    ("journal", &["stats", "outcome", "scenario"]),
    (
        "run",
        &["journal", "stats", "wire", "view", "outcome", "scenario"],
    ),
    (
        "app",
        &[
            "run", "journal", "stats", "wire", "view", "report", "outcome", "scenario",
        ],
    ),
];

type Module = Vec<String>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The worker crate's sources, beside the master's.
fn worker_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/src")
}

/// Every module file under `src` with its module path (`run/fleet.rs` → `run::fleet`);
/// `tests.rs` files are test code and left out.
fn modules(dir: &Path, prefix: &Module, out: &mut BTreeMap<Module, PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            let mut m = prefix.clone();
            m.push(name);
            modules(&path, &m, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let m = match name.as_str() {
                "mod" | "lib" => prefix.clone(),
                "main" | "tests" => continue,
                _ => {
                    let mut m = prefix.clone();
                    m.push(name);
                    m
                }
            };
            out.insert(m, path);
        }
    }
}

/// The text before the first `#[cfg(test)]`: what the library itself imports.
fn library_code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Every path written in the code that starts at `crate` or `super`, `use` trees expanded:
/// `use super::{a, b::{c, d}}` gives `super::a`, `super::b::c`, `super::b::d`.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in code.split(';') {
        let Some(i) = stmt.find("use ") else { continue };
        let tree: String = stmt[i + 4..]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        expand("", &tree, &mut out);
    }
    // Inline paths (`crate::view::tui::terminal::restore()`).
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            let mut end = at;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || b"_:".contains(&bytes[end]))
            {
                end += 1;
            }
            out.push(code[at..end].trim_end_matches(':').to_owned());
            from = end.max(at + 1);
        }
    }
    out.retain(|p| p.starts_with("crate") || p.starts_with("super"));
    out
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    match tree.find('{') {
        None => out.push(format!("{prefix}{tree}")),
        Some(open) => {
            let head = &tree[..open];
            let inner = tree[open + 1..]
                .strip_suffix('}')
                .unwrap_or(&tree[open + 1..]);
            let mut depth = 0;
            let mut part = String::new();
            for c in inner.chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !part.is_empty() {
                            expand(&format!("{prefix}{head}"), &part, out);
                        }
                        part.clear();
                        continue;
                    }
                    _ => {}
                }
                part.push(c);
            }
        }
    }
}

/// The module a path names, from module `here`: the longest known module it starts with.
fn resolve(path: &str, here: &Module, known: &BTreeSet<Module>) -> Option<Module> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Module = match *segments.first()? {
        "crate" => Vec::new(),
        // A module's `super` is its parent, for a `mod.rs` module as for a file one.
        "super" => here[..here.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    segments.remove(0);
    while segments.first() == Some(&"super") {
        base.pop();
        segments.remove(0);
    }
    let mut best = None;
    let mut m = base.clone();
    if known.contains(&m) {
        best = Some(m.clone());
    }
    for s in segments {
        m.push(s.to_owned());
        if known.contains(&m) {
            best = Some(m.clone());
        }
    }
    best
}

/// Module → the modules it imports (itself and its own ancestors left out).
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    graph_of(&src())
}

fn graph_of(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = BTreeMap::new();
    modules(src, &Vec::new(), &mut files);
    let known: BTreeSet<Module> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (m, file) in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut deps = BTreeSet::new();
        for p in paths(library_code(&text)) {
            if let Some(target) = resolve(&p, m, &known)
                && !m.starts_with(&target)
                && &target != m
            {
                deps.insert(target);
            }
        }
        graph.insert(m.clone(), deps);
    }
    graph
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// A cycle through `graph`, if there is one (depth-first search with colours).
fn cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, u8>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for d in graph.get(m).into_iter().flatten() {
            // A module's own parent (`mod.rs`) declaring it is not an import.
            if d.is_empty() || m.starts_with(d) || d.starts_with(m) {
                continue;
            }
            match state.get(d).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == d).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(d.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(d, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if state.get(m).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(m, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_parser_sees_use_trees_and_inline_paths() {
    let code = "use super::{a, b::{c, d}};\nuse crate::x::Y;\nfn f() { crate::z::w(); }\n// use crate::commented;";
    let p = paths(code);
    for want in [
        "super::a",
        "super::b::c",
        "super::b::d",
        "crate::x::Y",
        "crate::z::w",
    ] {
        assert!(p.iter().any(|x| x == want), "{want} in {p:?}");
    }
    assert!(!p.iter().any(|x| x.contains("commented")));
    let known: BTreeSet<Module> = [
        vec![],
        vec!["run".into()],
        vec!["run".into(), "fleet".into()],
    ]
    .into_iter()
    .collect();
    let pacing = vec!["run".to_owned(), "pacing".to_owned()];
    assert_eq!(
        resolve("super::fleet::Lost", &pacing, &known),
        Some(vec!["run".into(), "fleet".into()])
    );
}

#[test]
fn no_module_cycle_and_folders_import_only_downward() {
    let g = graph();
    println!(
        "master/src modules ({}), each with what it imports:",
        g.len()
    );
    for (m, deps) in &g {
        let deps: Vec<String> = deps.iter().map(name).collect();
        println!("  {:<28} -> {}", name(m), deps.join(", "));
    }
    if let Some(c) = cycle(&g) {
        let c: Vec<String> = c.iter().map(name).collect();
        panic!("import cycle: {}", c.join(" -> "));
    }
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (m, deps) in &g {
        let Some(from) = m.first() else { continue };
        for d in deps {
            let Some(to) = d.first() else { continue };
            if to == from {
                continue;
            }
            folders.entry(from.clone()).or_default().insert(to.clone());
            let allowed = ALLOWED
                .iter()
                .find(|(f, _)| f == from)
                .is_some_and(|(_, ok)| ok.contains(&to.as_str()));
            if !allowed {
                wrong.push(format!("{} imports {}", name(m), name(d)));
            }
        }
    }
    println!("folders:");
    for (f, deps) in &folders {
        println!(
            "  {f:<9} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(
        wrong.is_empty(),
        "imports against the map:\n{}",
        wrong.join("\n")
    );
    // The map covers every folder.
    for f in folders.keys() {
        assert!(
            ALLOWED.iter().any(|(a, _)| a == f),
            "folder {f} is not in the map"
        );
    }
}

/// The worker is flat (one concept per module): no two of its modules import each other.
#[test]
fn no_module_cycle_in_the_worker() {
    let g = graph_of(&worker_src());
    assert!(g.len() > 10, "read the worker's modules: {}", g.len());
    if let Some(c) = cycle(&g) {
        let c: Vec<String> = c.iter().map(name).collect();
        panic!("import cycle in the worker: {}", c.join(" -> "));
    }
}
