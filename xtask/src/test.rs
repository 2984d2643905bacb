//! `cargo xtask test`: formatting, lints, docs, then the whole test suite once
//! per backend, with the count of tests each backend ran.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::{Backends, cargo, postgres};

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut backends = Backends::All;
    let mut require_postgres = false;
    let mut lints = true;
    let mut long = false;
    // A transaction-mode pooler in front of the PostgreSQL server: the
    // PostgreSQL tests run once more through it.
    let mut pooler = std::env::var(POOLER_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty());
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--backend" => {
                backends = Backends::parse(iter.next().ok_or("--backend needs a value")?)?
            }
            "--require-postgres" => require_postgres = true,
            "--skip-lints" => lints = false,
            "--long" => long = true,
            "--pooler" => pooler = Some(iter.next().ok_or("--pooler needs a URL")?.clone()),
            other => return Err(format!("unknown flag `{other}` for `test`")),
        }
    }
    let started = Instant::now();
    // `--long` enlarges the fault and invariant tests (see `LONG_RUN`); the
    // default sizes keep the suite well under CI's limit.
    let sizes: &[(&str, &str)] = if long { LONG_RUN } else { &[] };
    // The docs' rules before anything is built.
    banner("cargo xtask tidy");
    crate::tidy::run()?;
    if lints {
        step("cargo fmt --check", &["fmt", "--all", "--", "--check"], &[])?;
        step(
            "cargo clippy -D warnings",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
        step(
            "cargo doc (warnings are errors)",
            &["doc", "--workspace", "--no-deps"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        )?;
    }

    // Crates outside the workspace, resolved afresh as a user's are, build
    // and run the README's example before any test of ours.
    banner("consumer check (fresh resolution, no lock file)");
    let postgres_admin = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| backends.postgres() && url.starts_with("postgres"));
    crate::consumer::run(postgres_admin.as_deref())?;
    // The lowest versions our requirements allow build too.
    banner("minimal versions (every direct dependency at its lowest allowed version)");
    crate::minimal::run()?;

    let mut results: Vec<(&str, Result<Counts, String>)> = Vec::new();
    if backends.sqlite() {
        banner("tests on SQLite");
        results.push((
            "sqlite",
            run_tests("sqlite", &["test", "--workspace"], sizes, None),
        ));
    }
    let mut skipped_postgres = None;
    if backends.postgres() {
        match postgres::availability() {
            Ok(origin) => {
                banner(&format!("tests on PostgreSQL via {origin}"));
                // The integration tests are the ones that touch a database;
                // unit tests and doctests ran in the SQLite pass.
                let integration = ["test", "--workspace", "--test", "*"];
                results.push(("postgres", run_tests("postgres", &integration, sizes, None)));
                if let Some(url) = &pooler {
                    banner(&format!("tests on PostgreSQL through the pooler at {url}"));
                    results.push((
                        "pooler",
                        run_tests("postgres", &integration, sizes, Some(url)),
                    ));
                }
            }
            Err(why) if require_postgres => {
                return Err(format!(
                    "--require-postgres: no PostgreSQL can be had: {why}"
                ));
            }
            Err(why) => skipped_postgres = Some(why),
        }
    }

    banner("summary");
    let mut total = Counts::default();
    let mut failures = Vec::new();
    for (backend, result) in &results {
        match result {
            Ok(c) => {
                println!(
                    "{backend:>8}: {} passed, {} failed, {} ignored",
                    c.passed, c.failed, c.ignored
                );
                total.passed += c.passed;
                total.failed += c.failed;
            }
            Err(e) => {
                println!("{backend:>8}: FAILED ({e})");
                failures.push(*backend);
            }
        }
    }
    if let Some(why) = &skipped_postgres {
        println!();
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("!!! PostgreSQL tests were SKIPPED: {why}");
        println!("!!! Set DATABASE_URL=postgres://… (or install PostgreSQL, or start Docker);");
        println!("!!! CI runs with --require-postgres, which fails instead of skipping.");
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }
    println!("    time: {:.0?}", started.elapsed());
    println!("xtask: {} passed, {} failed", total.passed, total.failed);
    if failures.is_empty() && total.failed == 0 {
        Ok(())
    } else {
        Err(format!("tests failed on: {}", failures.join(", ")))
    }
}

/// What `--long` sets: 2,000 model-based cases instead of 200 and a load
/// test of 20,000 tasks instead of 2,000.
const LONG_RUN: &[(&str, &str)] = &[("TE_PROPTEST_CASES", "2000"), ("TE_LOAD_TASKS", "20000")];

fn banner(title: &str) {
    eprintln!();
    eprintln!("==== {title} ====");
}

fn step(title: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    banner(title);
    let mut cmd = cargo();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().map_err(|e| format!("{title}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{title} failed ({status})"))
    }
}

/// The variable that sends the test databases' connections through a
/// transaction-mode pooler (te-testkit's `POOLER_ENV`).
const POOLER_ENV: &str = "TE_TEST_POOLER_URL";

/// Runs `cargo test` with `TE_TEST_BACKEND=backend` and `env`, through the
/// pooler at `pooler` when given, echoing its output and adding up its
/// `test result:` lines.
fn run_tests(
    backend: &str,
    args: &[&str],
    env: &[(&str, &str)],
    pooler: Option<&str>,
) -> Result<Counts, String> {
    let mut cmd = cargo();
    match pooler {
        Some(url) => cmd.env(POOLER_ENV, url),
        None => cmd.env_remove(POOLER_ENV),
    };
    let mut child = cmd
        .args(args)
        .envs(env.iter().copied())
        .env("TE_TEST_BACKEND", backend)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo test: {e}"))?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(c) = parse_result_line(&line) {
            counts.passed += c.passed;
            counts.failed += c.failed;
            counts.ignored += c.ignored;
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("cargo test exited with {status}"));
    }
    if counts.passed == 0 {
        return Err("no test ran".into());
    }
    Ok(counts)
}

/// Parses `test result: ok. 7 passed; 0 failed; 0 ignored; …`.
fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut counts = Counts::default();
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let (n, what) = match words.as_slice() {
            [_, n, what] if n.parse::<u64>().is_ok() => (*n, *what),
            [n, what] => (*n, *what),
            _ => continue,
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => counts.passed = n,
            "failed" => counts.failed = n,
            "ignored" => counts.ignored = n,
            _ => {}
        }
    }
    Some(counts)
}

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn parses_cargo_test_summaries() {
        let c = parse_result_line(
            "test result: ok. 7 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.09s",
        )
        .unwrap();
        assert_eq!((c.passed, c.failed, c.ignored), (7, 2, 1));
        assert!(parse_result_line("running 7 tests").is_none());
    }
}
