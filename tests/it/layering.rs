//! The shape of `src/`, held as tests: data flows one way between the top-level modules (no
//! module imports one that imports it back, directly or around a circle), and no source file is
//! over 600 lines (docs/architecture.md draws the map these keep true).
//!
//! The imports are read as text: every `crate::NAME` outside comments, in the code of each file
//! of a top-level module (a file's own `#[cfg(test)] mod tests { .. }` block and `*_tests.rs`
//! files are left out: a test may reach anywhere).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest source file allowed, in lines (inline tests included).
const LONGEST_FILE: usize = 600;

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("src/ is readable").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The top-level module a file belongs to: `src/registry/http/client.rs` → `registry`,
/// `src/assemble.rs` → `assemble`; `None` for `lib.rs` and `main.rs`, which tie everything.
fn top_level_module(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).expect("files are under src/");
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The module names a file's code (not its comments, not its inline test module) takes from
/// `crate::`.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]\nmod tests {") {
        Some(tests) => &text[..tests],
        None => text,
    };
    let mut names = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::b, c};`: the first name of each item, as far as this line goes.
                for item in group.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        names.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// Top-level module → the top-level modules it imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = source_root();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&root) {
        let Some(module) = top_level_module(&root, &file) else {
            continue;
        };
        if file.to_string_lossy().ends_with("_tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("source files are UTF-8");
        let imports = imported_modules(&text);
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(imports.into_iter().filter(|name| *name != module));
    }
    graph
}

/// A chain of imports from `from` back to itself, if there is one.
fn circle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![vec![from.to_owned()]];
    while let Some(path) = pending.pop() {
        let last = path.last().expect("paths are never empty");
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                let mut circle = path.clone();
                circle.push(from.to_owned());
                return Some(circle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                pending.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_import_reader_sees_plain_grouped_and_qualified_uses_and_skips_comments() {
    let text = "//! Mentions crate::commented in a doc.\n\
                use crate::error::Result;\n\
                use crate::{digest::Sha256Digest, platform};\n\
                fn f() { crate::temporary::remember(); } // crate::trailing\n\
                #[cfg(test)]\nmod tests {\n    use crate::cli::run;\n}\n";
    let names = imported_modules(text);
    let expected: BTreeSet<String> = ["error", "digest", "platform", "temporary"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn the_circle_finder_finds_a_circle_of_three_and_none_in_a_line() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        circle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(circle_through(&graph, "d"), None);
}

#[test]
fn no_top_level_module_of_src_imports_one_that_imports_it_back() {
    let graph = import_graph();
    assert!(
        graph.len() > 10,
        "the import graph of src/ looks empty: {graph:?}"
    );
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|module| circle_through(&graph, module))
        .map(|circle| circle.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "data must flow one way between the top-level modules of src/ (docs/architecture.md), \
         but these import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let root = source_root();
    let long: Vec<String> = rust_files(&root)
        .into_iter()
        .filter_map(|file| {
            let lines = fs::read_to_string(&file).ok()?.lines().count();
            (lines > LONGEST_FILE).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern (docs/architecture.md): {}",
        long.join(", ")
    );
}
