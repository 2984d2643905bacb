//! The consumer check of `cargo xtask test`: crates outside the workspace,
//! made in a temporary directory with no lock file (so cargo resolves
//! today's newest versions that our requirements allow, as every user's
//! first build does), that depend on this checkout by path, build, and run:
//!
//! - `facade`: the README's first example ("Use it"), with the README's own
//!   dependency lines, on SQLite as written and on PostgreSQL (its URL put
//!   where the example's comment says one goes);
//! - `parts`: `te-core` and `te-claiming` alone, claiming through them.

use std::path::{Path, PathBuf};
use te_testkit::ScratchDb;

use crate::cargo;

/// The URL the README's example connects to, replaced for the PostgreSQL run.
const EXAMPLE_URL: &str = "\"sqlite::memory:\"";

/// Runs both consumers, on SQLite and, when `postgres_admin` names a server,
/// on PostgreSQL (in a scratch database made there and dropped afterwards).
pub(crate) fn run(postgres_admin: Option<&str>) -> Result<(), String> {
    let root = crate::workspace_root();
    let readme =
        std::fs::read_to_string(root.join("README.md")).map_err(|e| format!("README.md: {e}"))?;
    let (deps, example) = use_it_section(&readme)?;
    let dir = std::env::temp_dir().join(format!("te-consumers-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(dir.clone());

    let facade = dir.join("facade");
    let deps = facade_dependencies(&deps, &root)?;
    write_crate(&facade, "te-consumer-facade", &deps, &example)?;
    let parts = dir.join("parts");
    let parts_deps = format!(
        "te-core = {{ path = {core:?} }}\nte-claiming = {{ path = {claiming:?} }}\n\
         tokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n",
        core = root.join("crates/te-core").display().to_string(),
        claiming = root.join("crates/te-claiming").display().to_string(),
    );
    write_crate(&parts, "te-consumer-parts", &parts_deps, PARTS_MAIN)?;

    consume(&facade, "the README's first example on SQLite", &[])?;
    consume(&parts, "te-core and te-claiming alone on SQLite", &[])?;
    let Some(admin) = postgres_admin else {
        eprintln!("xtask: consumer check ran on SQLite only (no PostgreSQL server named)");
        return Ok(());
    };
    let database = ScratchDb::postgres(admin, "te_consumer")
        .map_err(|e| format!("the consumer check's database: {e}"))?;
    let url = database.url().to_owned();
    let on_postgres = (|| {
        let main = facade.join("src/main.rs");
        std::fs::write(&main, example.replace(EXAMPLE_URL, &format!("{url:?}")))
            .map_err(|e| format!("{}: {e}", main.display()))?;
        consume(&facade, "the README's first example on PostgreSQL", &[])?;
        consume(
            &parts,
            "te-core and te-claiming alone on PostgreSQL",
            &[&url],
        )
    })();
    let removed = database
        .remove()
        .map_err(|e| format!("the consumer check's database: {e}"));
    on_postgres.and(removed)
}

/// The `toml` dependency lines and the first `rust` example of the README's
/// "Use it" section.
fn use_it_section(readme: &str) -> Result<(String, String), String> {
    let section = readme
        .split("\n## Use it")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .ok_or("README.md has no `## Use it` section")?;
    let block = |lang: &str| {
        section
            .split(&format!("```{lang}\n"))
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .map(str::to_owned)
            .ok_or(format!("README.md's `Use it` has no ```{lang} block"))
    };
    let example = block("rust")?;
    if !example.contains(EXAMPLE_URL) {
        return Err(format!(
            "README.md's first example no longer connects to {EXAMPLE_URL}"
        ));
    }
    Ok((block("toml")?, example))
}

/// The README's dependency lines with the facade's taken from this checkout.
fn facade_dependencies(lines: &str, root: &Path) -> Result<String, String> {
    let mut deps = String::new();
    let mut facade = false;
    for line in lines.lines() {
        let line = line.trim();
        if line.starts_with("task-execution-dal") && !facade {
            facade = true;
            deps.push_str(&format!(
                "task-execution-dal = {{ path = {:?} }}\n",
                root.display().to_string()
            ));
        } else if !line.starts_with('[')
            && !line.starts_with('#')
            && !line.is_empty()
            && !line.starts_with("task-execution-dal")
        {
            deps.push_str(line);
            deps.push('\n');
        }
    }
    if !facade {
        return Err("README.md's `Use it` does not depend on task-execution-dal".into());
    }
    Ok(deps)
}

/// What the `parts` consumer runs: a claim and a wait through the two
/// crates, on the URL given as its argument (in-memory SQLite without one).
const PARTS_MAIN: &str = r#"use std::time::Duration;

use te_claiming::TaskClaiming;
use te_core::{DalError, TaskExecutionDal};

#[tokio::main]
async fn main() -> Result<(), DalError> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "sqlite::memory:".into());
    let dal = TaskExecutionDal::connect(&url).await?;
    dal.run_migrations().await?;
    let claimed = dal.claim_ready_task(10).await?;
    assert!(claimed.is_empty(), "a new database has nothing to claim");
    assert!(!dal.wait_for_ready(Duration::from_millis(20)).await?);
    assert!(dal.find_stale_claims(Duration::from_secs(60)).await?.is_empty());
    Ok(())
}
"#;

fn write_crate(dir: &Path, name: &str, deps: &str, main: &str) -> Result<(), String> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    // An empty `[workspace]`: the crate is a workspace of its own, like a
    // user's project, whatever directory it is made in.
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\n{deps}"
    );
    for (path, text) in [
        (dir.join("Cargo.toml"), manifest.as_str()),
        (src.join("main.rs"), main),
    ] {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `cargo run` in the consumer `dir` (its lock file removed first, so that
/// every run resolves afresh), with `args` for the program.
fn consume(dir: &Path, what: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: consumer check: {what}");
    let _ = std::fs::remove_file(dir.join("Cargo.lock"));
    let status = cargo()
        .current_dir(dir)
        .args(["run", "--quiet", "--"])
        .args(args)
        .status()
        .map_err(|e| format!("cargo run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("consumer check failed: {what} ({status})"))
    }
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_has_an_example_and_dependencies_to_consume() {
        let readme = std::fs::read_to_string(crate::workspace_root().join("README.md")).unwrap();
        let (deps, example) = use_it_section(&readme).unwrap();
        assert!(example.contains("TaskExecutionDal::connect"), "{example}");
        let deps = facade_dependencies(&deps, Path::new("/repo")).unwrap();
        assert!(
            deps.contains("task-execution-dal = { path = \"/repo\" }"),
            "{deps}"
        );
        assert!(deps.contains("tokio"), "{deps}");
    }
}
