//! The import graph of a crate's source files, and its circles: a file that
//! imports, directly or through others, a file that imports it back.
//!
//! A file's imports are the `crate::…`, `super::…` and `self::…` paths in its
//! code (in `use` trees and inline), and in a crate root or `mod.rs` the
//! paths that start with one of its own modules. A path is followed to the
//! file that defines its module; a name a module only re-exports (`pub use
//! x::Name`) is followed on to the file that defines it, so that importing
//! through a re-export counts as importing the defining file. Comments and
//! `#[cfg(test)]` modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's source files, keyed by module path (`[]` is the root).
pub(crate) struct Crate {
    files: BTreeMap<Vec<String>, File>,
}

struct File {
    path: PathBuf,
    /// The code, with comments and test modules removed.
    code: String,
    /// The child modules it declares (`mod x;`).
    children: Vec<String>,
}

impl Crate {
    /// Reads the crate whose root file is `root` (`src/lib.rs`, `src/main.rs`).
    pub(crate) fn read(root: &Path) -> Result<Self, String> {
        let mut files = BTreeMap::new();
        load(root, Vec::new(), true, &mut files)?;
        Ok(Self { files })
    }

    /// The circles: each a list of files that reach one another through
    /// imports, sorted.
    pub(crate) fn circles(&self) -> Vec<Vec<PathBuf>> {
        let edges = self.edges();
        // `TIDY_IMPORTS=1 cargo xtask tidy` prints every file's imports.
        if std::env::var_os("TIDY_IMPORTS").is_some() {
            for (module, targets) in &edges {
                for target in targets {
                    eprintln!(
                        "{} -> {}",
                        self.files[*module].path.display(),
                        self.files[target].path.display()
                    );
                }
            }
        }
        let nodes: Vec<&Vec<String>> = self.files.keys().collect();
        let mut circles = Vec::new();
        for component in strongly_connected(&nodes, &edges) {
            if component.len() > 1 {
                let mut paths: Vec<PathBuf> = component
                    .iter()
                    .map(|m| self.files[*m].path.clone())
                    .collect();
                paths.sort();
                circles.push(paths);
            }
        }
        circles.sort();
        circles
    }

    /// Every import, as the importing file and the imported one.
    pub(crate) fn imports(&self) -> Vec<(PathBuf, PathBuf)> {
        self.edges()
            .into_iter()
            .flat_map(|(from, targets)| {
                let from = self.files[from].path.clone();
                targets
                    .into_iter()
                    .map(move |to| (from.clone(), self.files[&to].path.clone()))
            })
            .collect()
    }

    /// Every file's imports, as module paths of files.
    fn edges(&self) -> BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> {
        let mut edges = BTreeMap::new();
        for (module, file) in &self.files {
            let mut targets = BTreeSet::new();
            for path in paths_in(&file.code) {
                if let Some(absolute) = self.absolute(module, file, &path)
                    && let Some(target) = self.resolve(&absolute, 0)
                    && &target != module
                {
                    targets.insert(target);
                }
            }
            edges.insert(module, targets);
        }
        edges
    }

    /// `path` as seen from `module`, from the crate root; `None` for a path
    /// into another crate.
    fn absolute(&self, module: &[String], file: &File, path: &[String]) -> Option<Vec<String>> {
        let mut base: Vec<String> = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            Some(first) if file.children.iter().any(|c| c == first) => {}
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines the item at `path`: the deepest module file on
    /// the path, or, for a name that file re-exports, the file it comes from.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
        let mut module: Vec<String> = Vec::new();
        let mut i = 0;
        while i < path.len() {
            let mut next = module.clone();
            next.push(path[i].clone());
            if !self.files.contains_key(&next) {
                break;
            }
            module = next;
            i += 1;
        }
        let file = &self.files[&module];
        if depth < 8
            && let Some(name) = path.get(i)
            && let Some(source) = re_export(&file.code, name)
            && let Some(absolute) = self.absolute(&module, file, &source)
            && absolute != path
        {
            return self.resolve(&absolute, depth + 1).or(Some(module));
        }
        Some(module)
    }
}

fn load(
    path: &Path,
    module: Vec<String>,
    root: bool,
    files: &mut BTreeMap<Vec<String>, File>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let code = strip(&text);
    let children = declared_modules(&code);
    let dir = if root || path.file_name().is_some_and(|n| n == "mod.rs") {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.with_extension("")
    };
    for child in &children {
        let mut child_module = module.clone();
        child_module.push(child.clone());
        let flat = dir.join(format!("{child}.rs"));
        let nested = dir.join(child).join("mod.rs");
        let file = if flat.exists() { flat } else { nested };
        if file.exists() {
            load(&file, child_module, false, files)?;
        }
    }
    files.insert(
        module,
        File {
            path: path.to_path_buf(),
            code,
            children,
        },
    );
    Ok(())
}

/// `text` without comments, string literals' contents and `#[cfg(test)]`
/// modules.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.contains('{'))
        {
            // Skip the module: up to the line that closes it at its indent.
            let indent = line.len() - line.trim_start().len();
            lines.next();
            for inner in lines.by_ref() {
                if inner.len() - inner.trim_start().len() == indent && inner.trim() == "}" {
                    break;
                }
            }
            continue;
        }
        let code = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The `mod x;` declarations of a file (not inline modules).
fn declared_modules(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub(crate) ").unwrap_or(line);
            let line = line.strip_prefix("pub ").unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// The paths a file's code names: every `use` tree expanded, and every
/// inline path that starts with `crate`, `super` or `self`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let tree = &rest[at..];
        let end = tree.find(';').unwrap_or(tree.len());
        expand(&tree[..end], &mut Vec::new(), &mut paths);
        rest = &tree[end..];
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let path: Vec<String> = code[at..]
                .split("::")
                .map(|segment| {
                    segment
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| !s.is_empty())
                .collect();
            // A path that opens a group (`crate::a::{…}`) is a `use` tree,
            // expanded above.
            let length: usize = path.iter().map(|s| s.len() + 2).sum::<usize>() - 2;
            let after = code[at + length..].trim_start();
            if path.len() > 1 && !after.starts_with("::{") && !after.starts_with("::*") {
                paths.push(path);
            }
        }
    }
    paths
}

/// Where the next `use` tree begins (after `use `), if any.
fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let at = from + at;
        let before = code[..at].trim_end();
        let starts = before.is_empty()
            || before.ends_with(';')
            || before.ends_with('}')
            || before.ends_with('{')
            || before.ends_with(']')
            || before.ends_with("pub")
            || before.ends_with(')');
        if starts {
            return Some(at + 4);
        }
        from = at + 4;
    }
    None
}

/// Expands one `use` tree (`a::{b, c::d}`) into its paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let (head, group) = match tree.find('{') {
        Some(open) => {
            let close = tree.rfind('}').unwrap_or(tree.len());
            (&tree[..open], Some(&tree[open + 1..close]))
        }
        None => (tree, None),
    };
    let depth = prefix.len();
    for segment in head.split("::").map(str::trim).filter(|s| !s.is_empty()) {
        let name = segment.split_whitespace().next().unwrap_or(segment);
        prefix.push(name.to_owned());
    }
    match group {
        Some(group) => {
            for item in split_top_level(group) {
                expand(item, prefix, out);
            }
        }
        None => out.push(prefix.iter().filter(|s| *s != "*").cloned().collect()),
    }
    prefix.truncate(depth);
}

/// `group` split at the commas outside nested braces.
fn split_top_level(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// The path a file re-exports `name` from (`pub use x::y::name;`, in a
/// group or renamed), if it does.
fn re_export(code: &str, name: &str) -> Option<Vec<String>> {
    let mut rest = code;
    while let Some(at) = rest
        .find("pub use ")
        .or_else(|| rest.find("pub(crate) use "))
    {
        let tree = &rest[at..];
        let tree = &tree[tree.find("use ")? + 4..];
        let end = tree.find(';').unwrap_or(tree.len());
        let mut paths = Vec::new();
        expand(&tree[..end], &mut Vec::new(), &mut paths);
        if let Some(path) = paths
            .into_iter()
            .find(|p| p.last().is_some_and(|l| l == name))
        {
            return Some(path);
        }
        rest = &tree[end..];
    }
    None
}

/// Tarjan's strongly connected components of the graph.
fn strongly_connected<'a>(
    nodes: &[&'a Vec<String>],
    edges: &BTreeMap<&Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<&'a Vec<String>>> {
    struct State<'a> {
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        next: usize,
        out: Vec<Vec<&'a Vec<String>>>,
    }
    fn visit<'a>(
        node: &'a Vec<String>,
        nodes: &[&'a Vec<String>],
        edges: &BTreeMap<&Vec<String>, BTreeSet<Vec<String>>>,
        s: &mut State<'a>,
    ) {
        s.index.insert(node, s.next);
        s.low.insert(node, s.next);
        s.next += 1;
        s.stack.push(node);
        s.on_stack.insert(node);
        for target in edges.get(node).into_iter().flatten() {
            let Some(&target) = nodes.iter().find(|n| **n == target) else {
                continue;
            };
            if !s.index.contains_key(target) {
                visit(target, nodes, edges, s);
                let low = s.low[target].min(s.low[node]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(target) {
                let low = s.index[target].min(s.low[node]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in nodes {
        if !state.index.contains_key(*node) {
            visit(node, nodes, edges, &mut state);
        }
    }
    state.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(code: &str) -> Vec<String> {
        paths_in(code).into_iter().map(|p| p.join("::")).collect()
    }

    #[test]
    fn use_trees_are_expanded() {
        let found: BTreeSet<String> = paths("use crate::{a::B, c::{D, e::F as G}};\nuse super::h;")
            .into_iter()
            .collect();
        let expected: BTreeSet<String> =
            ["crate::a::B", "crate::c::D", "crate::c::e::F", "super::h"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_circle_through_a_re_export_is_found() {
        let dir = std::env::temp_dir().join(format!("tidy-imports-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("m")).unwrap();
        std::fs::write(
            dir.join("lib.rs"),
            "//! r\nmod a;\nmod m;\npub use m::Thing;\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("a.rs"),
            "//! a\nuse crate::Thing;\npub struct A;\n",
        )
        .unwrap();
        std::fs::write(dir.join("m/mod.rs"), "//! m\nmod t;\npub use t::Thing;\n").unwrap();
        std::fs::write(
            dir.join("m/t.rs"),
            "//! t\npub struct Thing(crate::a::A);\n",
        )
        .unwrap();
        let krate = Crate::read(&dir.join("lib.rs")).unwrap();
        let circles = krate.circles();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(circles, [vec![dir.join("a.rs"), dir.join("m/t.rs")]]);
    }
}
