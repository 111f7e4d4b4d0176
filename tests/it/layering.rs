//! The modules of `src/` import only from the layers below them, along the
//! data's path (see the README's "Design"):
//!
//! error -> util -> model -> input, layout, contacts -> check -> render -> output -> manifest
//! -> ops -> web -> review, serve -> cli
//!
//! `error` (the error type and exit codes) is below all. Two modules of the same layer (input and
//! layout; review and serve) do not import each other. Every `crate::` path outside comments
//! counts, in `use` lines and in code.

use std::path::Path;

/// The layers, lowest first.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["util"],
    &["model"],
    &["input", "layout", "contacts"],
    &["check"],
    &["render"],
    &["output"],
    &["manifest"],
    &["ops"],
    &["web"],
    &["review", "serve"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The imports against the order in one file of module `module`, as
/// `line: text`.
fn violations(module: &str, text: &str) -> Vec<String> {
    let Some(own) = layer(module) else {
        return vec![format!("module `{module}` is in no layer")];
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if code.contains("use crate::{") {
            out.push(format!("{}: import each module by its path: {code}", n + 1));
        }
        for (at, _) in code.match_indices("crate::") {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `letterpress_crate::` and the like
            }
            let target: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if target.is_empty() || target == module {
                continue;
            }
            match layer(&target) {
                Some(l) if l < own => {}
                Some(_) => out.push(format!(
                    "{}: `{module}` imports `{target}`, which is not below it: {code}",
                    n + 1
                )),
                // The crate root re-exports a few names for library users
                // (`letterpress::run`); inside, a path names the module.
                None if target.chars().next().is_some_and(char::is_uppercase) => out.push(format!(
                    "{}: name the module of `crate::{target}`: {code}",
                    n + 1
                )),
                None => out.push(format!("{}: `{target}` is in no layer: {code}", n + 1)),
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_points_down_the_data_path() {
    let src = crate::common::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut imports = 0;
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        imports += text.matches("use crate::").count();
        for v in violations(module, &text) {
            problems.push(format!("src/{}:{v}", rel.display()));
        }
    }
    assert!(files.len() > 40, "found only {} files", files.len());
    assert!(imports > 150, "found only {imports} imports");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import() {
    let text = "//! See [`crate::ops`].\nuse crate::util::clock::Date;\nuse crate::render::pdf::Renderer;\nfn f() { crate::ops::run::run(x); }\n";
    let found = violations("check", text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("3: `check` imports `render`"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("4: `check` imports `ops`"),
        "{found:?}"
    );
    assert!(violations("input", "use crate::layout::catalog::Layout;\n").len() == 1);
    assert!(violations("manifest", "fn f() -> crate::Result<()> {}\n").len() == 1);
    assert!(violations("ops", "use crate::render::pdf::Renderer;\n").is_empty());
}
