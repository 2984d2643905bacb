//! `cargo xtask tidy`: checks, by reading the files, that the rules the
//! docs state still hold, so that drift fails CI instead of misleading a
//! reader. `cargo xtask test` runs it first.
//!
//! - every Rust file starts with a `//!` line saying what it holds;
//! - every `te` subcommand (a variant of clap's `Command` in te-cli's
//!   `cli.rs`, the one list `te` itself takes its names from) is named in
//!   README.md and ARCHITECTURE.md;
//! - every public method of the operation traits is in `src/lib.md`'s index;
//! - ARCHITECTURE.md's layering invariants: an operation crate depends on
//!   `te-core` and on no sibling; the facade is re-exports and docs only;
//!   `te` reaches the DAL through the facade; te-cli's floor plan (`base/`
//!   imports no command, a command no other command);
//! - no import circles: no source file of a crate imports, directly or
//!   through others, a file that imports it back ([`imports`]);
//! - te-core's floors ([`TE_CORE_FLOORS`]): a file imports nothing from a
//!   floor above its own;
//! - an operation crate's trait methods (in its `src/lib.rs`) are the only
//!   place that calls the handle's `run` or `write`, or the toolkit's
//!   `write_statement` ([`HANDLE_CALLS`]);
//!   everything else is a plain function on one connection;
//! - no source file under `crates/` is longer than [`MAX_LINES`] lines;
//! - SQL written as text lives in a crate's `sql` catalogue ([`sql`]).

mod imports;
mod sql;

use std::path::Path;
use std::process::Command;

/// The operation crates and the trait each adds to the handle.
const OPERATION_CRATES: &[(&str, &str)] = &[
    ("te-crud", "TaskCrud"),
    ("te-state", "TaskTransitions"),
    ("te-context", "TaskContexts"),
    ("te-claiming", "TaskClaiming"),
    ("te-queries", "TaskQueries"),
];

pub(crate) fn run() -> Result<(), String> {
    let root = crate::workspace_root();
    let mut problems = Vec::new();
    file_headers(&root, &mut problems)?;
    te_commands(&root, &mut problems)?;
    method_index(&root, &mut problems)?;
    layering(&root, &mut problems)?;
    circles(&root, &mut problems)?;
    te_core_floors(&root, &mut problems)?;
    handle_calls(&root, &mut problems)?;
    file_lengths(&root, &mut problems)?;
    sql_catalogue(&root, &mut problems)?;
    te_cli_floor_plan(&root, &mut problems)?;
    if problems.is_empty() {
        eprintln!("xtask: tidy: every check holds");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("tidy: {problem}");
    }
    Err(format!("tidy found {} problem(s)", problems.len()))
}

fn read(root: &Path, relative: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(relative)).map_err(|e| format!("{relative}: {e}"))
}

/// The files git tracks (a clean checkout's files), by relative path.
fn tracked(root: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["ls-files"])
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !out.status.success() {
        return Err("git ls-files failed".into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

fn file_headers(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    for file in tracked(root)?.iter().filter(|f| f.ends_with(".rs")) {
        let text = read(root, file)?;
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.starts_with("//!") {
            problems.push(format!("{file}: does not start with a `//!` line"));
        }
    }
    Ok(())
}

/// The subcommands of `te`: the variants of `enum Command` in its CLI,
/// as clap names them (kebab case).
fn subcommands(cli: &str) -> Vec<String> {
    let Some(start) = cli.find("enum Command {") else {
        return Vec::new();
    };
    let body = &cli[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    body.lines()
        .filter_map(|line| {
            let line = line.trim();
            let name: String = line
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            let rest = &line[name.len()..];
            let is_variant = name.starts_with(|c: char| c.is_ascii_uppercase())
                && (rest.starts_with('(') || rest.starts_with(',') || rest.starts_with(" {"));
            is_variant.then(|| kebab(&name))
        })
        .collect()
}

fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn te_commands(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let commands = subcommands(&read(root, "crates/te-cli/src/cli.rs")?);
    if commands.is_empty() {
        problems.push("crates/te-cli/src/cli.rs: no `enum Command` with variants found".into());
    }
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = read(root, doc)?;
        for command in &commands {
            if !text.contains(&format!("te {command}")) {
                problems.push(format!("{doc}: does not name `te {command}`"));
            }
        }
    }
    Ok(())
}

/// The methods of `pub trait NAME` in `source`, except `#[doc(hidden)]` ones.
fn trait_methods(source: &str, name: &str) -> Vec<String> {
    let Some(start) = source.find(&format!("pub trait {name}")) else {
        return Vec::new();
    };
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    let mut methods = Vec::new();
    let mut hidden = false;
    for line in body.lines().map(str::trim) {
        if line.starts_with("#[doc(hidden)]") {
            hidden = true;
        } else if let Some(rest) = line.strip_prefix("fn ") {
            let method: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !hidden {
                methods.push(method);
            }
            hidden = false;
        }
    }
    methods
}

fn method_index(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let index = read(root, "src/lib.md")?;
    for (krate, name) in OPERATION_CRATES {
        let source = read(root, &format!("crates/{krate}/src/lib.rs"))?;
        let methods = trait_methods(&source, name);
        if methods.is_empty() {
            problems.push(format!(
                "crates/{krate}/src/lib.rs: no methods of `{name}` found"
            ));
        }
        for method in methods {
            if !index.contains(&format!("({name}::{method})")) {
                problems.push(format!(
                    "src/lib.md: the method index lacks `{name}::{method}` ({krate})"
                ));
            }
        }
    }
    Ok(())
}

/// The names in a manifest's `[dependencies]` table.
fn dependencies(manifest: &str) -> Vec<String> {
    let Some(start) = manifest.find("\n[dependencies]") else {
        return Vec::new();
    };
    manifest[start + 1..]
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| {
            let name = line.split(['=', '.']).next()?.trim();
            (!name.is_empty() && !name.starts_with('#')).then(|| name.to_owned())
        })
        .collect()
}

fn layering(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let siblings: Vec<&str> = OPERATION_CRATES.iter().map(|(krate, _)| *krate).collect();
    for krate in &siblings {
        let deps = dependencies(&read(root, &format!("crates/{krate}/Cargo.toml"))?);
        if !deps.iter().any(|d| d == "te-core") {
            problems.push(format!("{krate}: does not depend on te-core"));
        }
        for dep in deps
            .iter()
            .filter(|d| siblings.contains(&d.as_str()) || *d == "task-execution-dal")
        {
            problems.push(format!(
                "{krate}: depends on `{dep}`; an operation crate depends on te-core only"
            ));
        }
    }
    let facade = read(root, "src/lib.rs")?;
    for line in facade.lines().map(str::trim) {
        if line.starts_with("fn ") || line.starts_with("pub fn ") || line.starts_with("impl ") {
            problems.push(format!(
                "src/lib.rs: `{line}`: the facade holds re-exports and docs only"
            ));
        }
    }
    let cli = dependencies(&read(root, "crates/te-cli/Cargo.toml")?);
    for dep in cli.iter().filter(|d| siblings.contains(&d.as_str())) {
        problems.push(format!("te-cli: depends on `{dep}`; `te` uses the facade"));
    }
    Ok(())
}

/// The most lines a source file under `crates/` may have: past it, a file
/// holds more than one responsibility and is split.
const MAX_LINES: usize = 450;

/// te-core's floors, lowest first: a file on one floor imports from its own
/// floor and those below, never from one above.
const TE_CORE_FLOORS: &[&str] = &["ground", "data", "sql", "config", "handle", "toolkit"];

/// The floor of a te-core file (its first folder under `src/`), if any.
fn floor(file: &Path) -> Option<usize> {
    let relative = file.to_str()?.split("crates/te-core/src/").nth(1)?;
    let folder = relative.split('/').next()?;
    TE_CORE_FLOORS.iter().position(|f| *f == folder)
}

fn te_core_floors(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    let krate = imports::Crate::read(&root.join("crates/te-core/src/lib.rs"))?;
    for (from, to) in krate.imports() {
        if let (Some(low), Some(high)) = (floor(&from), floor(&to))
            && high > low
        {
            problems.push(format!(
                "{} imports {}: an arrow up from the {} floor to the {} floor",
                from.strip_prefix(root).unwrap_or(&from).display(),
                to.strip_prefix(root).unwrap_or(&to).display(),
                TE_CORE_FLOORS[low],
                TE_CORE_FLOORS[high],
            ));
        }
    }
    Ok(())
}

/// The crate roots of the workspace's library and command-line code.
fn crate_roots(root: &Path) -> Result<Vec<String>, String> {
    Ok(tracked(root)?
        .into_iter()
        .filter(|f| {
            (f.starts_with("crates/") || f.starts_with("xtask/"))
                && (f.ends_with("/src/lib.rs") || f.ends_with("/src/main.rs"))
        })
        .collect())
}

fn circles(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    for krate in crate_roots(root)? {
        for circle in imports::Crate::read(&root.join(&krate))?.circles() {
            let files: Vec<String> = circle
                .iter()
                .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
                .collect();
            problems.push(format!("import circle: {}", files.join(" ⇄ ")));
        }
    }
    Ok(())
}

/// The calls that run a closure on the handle: its methods `run` and
/// `write`, and the toolkit's one-statement writes (`write_statement(&dal,
/// f)`, `write_statement_without_wakeup(&dal, f)`, by any path).
const HANDLE_CALLS: &[&str] = &[
    ".run(",
    ".write(",
    "write_statement(",
    "write_statement_without_wakeup(",
];

fn handle_calls(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    for (krate, _) in OPERATION_CRATES {
        let prefix = format!("crates/{krate}/src/");
        for file in tracked(root)?
            .iter()
            .filter(|f| f.starts_with(&prefix) && f.ends_with(".rs") && !f.ends_with("/src/lib.rs"))
        {
            let text = read(root, file)?;
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if HANDLE_CALLS.iter().any(|call| code.contains(call)) {
                    problems.push(format!(
                        "{file}:{}: calls the handle outside the trait methods of src/lib.rs: {}",
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    Ok(())
}

fn file_lengths(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    for file in tracked(root)?
        .iter()
        .filter(|f| f.starts_with("crates/") && f.contains("/src/") && f.ends_with(".rs"))
    {
        let lines = read(root, file)?.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{file}: {lines} lines, over {MAX_LINES}: split it by responsibility"
            ));
        }
    }
    Ok(())
}

fn sql_catalogue(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    for file in tracked(root)?.iter().filter(|f| {
        f.starts_with("crates/")
            && f.contains("/src/")
            && f.ends_with(".rs")
            && !sql::is_catalogue(f)
    }) {
        if let Some((line, text)) = sql::first_sql(&read(root, file)?) {
            problems.push(format!(
                "{file}:{line}: SQL as text outside the crate's `sql` catalogue: {text}"
            ));
        }
    }
    Ok(())
}

/// The modules of `crate::…` paths in `source`, `crate::{a, b}` groups
/// included (the first name of each path).
fn crate_imports(source: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                names.extend(group.split(',').map(|item| ident(item.trim())));
            }
            None => names.push(ident(rest)),
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

/// te-cli's floor plan (ARCHITECTURE.md): each top-level module but
/// `main` and `cli` (which list and dispatch the commands) imports only
/// itself and `base`, and `base` only itself.
fn te_cli_floor_plan(root: &Path, problems: &mut Vec<String>) -> Result<(), String> {
    const SRC: &str = "crates/te-cli/src/";
    for file in tracked(root)?
        .iter()
        .filter(|f| f.starts_with(SRC) && f.ends_with(".rs"))
    {
        let relative = &file[SRC.len()..];
        let module = relative
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".rs");
        if module == "main" || module == "cli" {
            continue;
        }
        for name in crate_imports(&read(root, file)?) {
            if name != module && name != "base" {
                problems.push(format!(
                    "{file}: imports `crate::{name}`; te-cli's `{module}` may import only itself and `base`"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_are_read_from_the_command_enum() {
        let cli = "enum Command {\n    /// Run.\n    Demo(DemoArgs),\n    Migrate(DbArgs),\n    \
                   ListAll,\n    Big {\n        x: u8,\n    },\n}\n";
        assert_eq!(subcommands(cli), ["demo", "migrate", "list-all", "big"]);
    }

    #[test]
    fn crate_paths_are_read_with_their_groups() {
        let source = "use crate::base::{db, output};\nuse crate::{bench, demo::args};\n\
                      /// See [`crate::status`].\nlet x = crate::cli::run();\n";
        assert_eq!(
            crate_imports(source),
            ["base", "bench", "demo", "status", "cli"]
        );
    }

    #[test]
    fn hidden_trait_methods_are_left_out() {
        let source = "pub trait T: Sealed {\n    /// Doc.\n    fn a(&self);\n    #[doc(hidden)]\n    \
                      fn b(&self);\n    fn c_d(\n        &self,\n    );\n}\n";
        assert_eq!(trait_methods(source, "T"), ["a", "c_d"]);
    }

    #[test]
    fn dependencies_are_read_from_their_table() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nte-core.workspace = true\n\
                        diesel = { workspace = true }\n\n[dev-dependencies]\nte-crud.workspace = true\n";
        assert_eq!(dependencies(manifest), ["te-core", "diesel"]);
    }
}
