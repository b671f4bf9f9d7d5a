//! The shape of the code, checked from its text: the store's modules import
//! only from below them, SQL lives in the statement files (no `format!`
//! builds it), only the bottom of the store knows which backend it runs on,
//! the store's `mod.rs` only declares and re-exports, and no source file
//! grows past 600 lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The store's modules, bottom first. A module may import from a lower
/// layer only; the three parts of layer 3 do not import one another.
const LAYERS: &[(&str, u8)] = &[
    ("sql", 0),
    ("db", 1),
    ("events", 2),
    ("runs", 3),
    ("queue", 3),
    ("reads", 3),
    ("janitor", 4),
    ("execution_store", 5),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text without `//` comments (doc comments included) — good enough
/// for this code base, whose strings hold no `//`.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file under `src/store`, as components after
/// `store` (`queue/claim.rs` → [queue, claim]; `queue/mod.rs` → [queue]).
fn module_path(file: &Path, store: &Path) -> Vec<String> {
    let relative = file.strip_prefix(store).unwrap();
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    if last != "mod.rs" {
        parts.push(last.trim_end_matches(".rs").to_owned());
    }
    parts
}

/// Every `use` statement of `text`, whole (they may span lines).
fn use_statements(text: &str) -> Vec<String> {
    let mut uses = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if current.is_none()
            && (trimmed.starts_with("use ")
                || trimmed.starts_with("pub use ")
                || trimmed.starts_with("pub(crate) use ")
                || trimmed.starts_with("pub(super) use "))
        {
            current = Some(String::new());
        }
        if let Some(statement) = current.as_mut() {
            statement.push_str(trimmed);
            statement.push(' ');
            if trimmed.contains(';') {
                uses.push(current.take().unwrap());
            }
        }
    }
    uses
}

/// The top modules of the store (`sql`, `db`, …, or `store` itself for its
/// re-exports) that a file at `module` names: in its `use` statements
/// (`super::…` resolved) and anywhere through `crate::store::…`.
fn imported(module: &[String], text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut note = |path: &str| {
        let first = path
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .find(|p| !p.is_empty());
        match first {
            Some(top) if LAYERS.iter().any(|(m, _)| *m == top) => found.insert(top.to_owned()),
            // `crate::store::{…}` or a re-export of `store` itself.
            Some(_) | None => found.insert("store".to_owned()),
        };
    };
    for (at, _) in text.match_indices("crate::store::") {
        let rest = &text[at + "crate::store::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    note(item);
                }
            }
        } else {
            note(rest);
        }
    }
    for statement in use_statements(text) {
        let path = statement
            .split_once("use ")
            .map(|(_, p)| p.trim())
            .unwrap_or("");
        // `use super::*` is a test module's glob of the module it is in.
        if !path.starts_with("super::") || path.starts_with("super::*") {
            continue;
        }
        let mut base: Vec<String> = module.to_vec();
        let mut rest = path;
        while let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        }
        match base.first() {
            // Inside a part: `super::…` names the part itself (or below).
            Some(top) => note(top),
            // From a top module's own file: `super::X` is store::X.
            None => note(rest),
        }
    }
    found
}

#[test]
fn store_modules_import_only_from_below() {
    let store = root().join("src/store");
    let layer_of = |m: &str| LAYERS.iter().find(|(name, _)| *name == m).map(|(_, l)| *l);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in rust_files(&store) {
        let module = module_path(&file, &store);
        let Some(top) = module.first() else {
            continue; // store/mod.rs: re-exports, checked below
        };
        let layer = layer_of(top).unwrap_or_else(|| panic!("{top} has no layer in LAYERS"));
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for other in imported(&module, &text) {
            checked += 1;
            if other == *top {
                continue;
            }
            let ok = layer_of(&other).is_some_and(|l| l < layer);
            if !ok {
                wrong.push(format!(
                    "{} ({top}, layer {layer}) imports {other}",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} imports found: is the parser blind?"
    );
    assert!(
        wrong.is_empty(),
        "imports from above:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_import_from_above() {
    let module = vec!["db".to_owned(), "handle".to_owned()];
    let text =
        "use super::run;\nuse crate::store::queue::Queue;\nuse crate::store::{sql::X, Execution};";
    let found = imported(&module, text);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["db", "queue", "sql", "store"]
    );
}

#[test]
fn the_store_mod_only_declares_and_re_exports() {
    let text = std::fs::read_to_string(root().join("src/store/mod.rs")).unwrap();
    let mut in_use = false;
    for line in code(&text).lines() {
        let line = line.trim();
        if in_use {
            in_use = !line.contains(';');
            continue;
        }
        if line.is_empty() || line.starts_with("mod ") || line.starts_with("pub mod ") {
            continue;
        }
        if line.starts_with("pub use ") {
            in_use = !line.contains(';');
            continue;
        }
        panic!("src/store/mod.rs holds more than declarations and re-exports: {line}");
    }
}

#[test]
fn sql_is_not_built_with_format_in_the_store() {
    let keywords = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "WHERE", " FROM ", " JOIN ",
    ];
    let mut found = Vec::new();
    for file in rust_files(&root().join("src/store")) {
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for (at, _) in text.match_indices("format!(") {
            let call: String = text[at..].chars().take(400).collect();
            let call = &call[..call.find(");").unwrap_or(call.len())];
            if keywords.iter().any(|k| call.contains(k)) {
                found.push(format!("{}: {call}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL built with format!:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_bottom_of_the_store_knows_its_backend() {
    let allowed = [root().join("src/store/db"), root().join("src/store/sql")];
    let markers = [
        "DbBackend::",
        "get_postgres_connection_pool",
        "get_sqlite_connection_pool",
        "SqlxPostgresPoolConnection",
        "SqlxSqlitePoolConnection",
    ];
    let mut found = Vec::new();
    for file in rust_files(&root().join("src")) {
        if allowed.iter().any(|dir| file.starts_with(dir)) {
            continue;
        }
        let text = code(&std::fs::read_to_string(&file).unwrap());
        for marker in markers {
            if text.contains(marker) {
                found.push(format!("{}: {marker}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "backend decisions outside store/db and store/sql:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_600_lines() {
    let long: Vec<String> = rust_files(&root().join("src"))
        .into_iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            (lines > 600).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over 600 lines:\n{}",
        long.join("\n")
    );
}

/// The explorer's modules import the helpers below them (`ui`, `api`,
/// `state`, `waterfall`, `details`) and never one another: only the entry
/// module (`explorer.js`) imports the others, and wires their actions.
#[test]
fn explorer_modules_do_not_import_one_another() {
    let dir = root().join("assets/explorer");
    let below = ["ui.js", "api.js", "state.js", "waterfall.js", "details.js"];
    let mut wrong = Vec::new();
    let mut modules = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".js") || name == "explorer.js" {
            continue;
        }
        modules += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| l.starts_with("import ")) {
            let Some(from) = line.split("from './").nth(1) else {
                continue;
            };
            let imported = from.trim_end_matches(['\'', ';']);
            let allowed = below.contains(&imported)
                && below.iter().position(|b| *b == imported)
                    < below.iter().position(|b| *b == name).or(Some(below.len()));
            if !allowed {
                wrong.push(format!("{name} imports {imported}"));
            }
        }
    }
    assert!(modules >= 10, "only {modules} modules found");
    assert!(wrong.is_empty(), "explorer imports:\n{}", wrong.join("\n"));
}
