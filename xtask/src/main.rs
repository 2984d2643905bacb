//! `cargo xtask`: the project's one entry point for checks and tests, used by
//! developers and by CI alike.
//!
//! ```text
//! cargo xtask test [--backend sqlite|postgres|all] [--require-postgres] [--skip-lints] [--long] [--pooler URL]
//! cargo xtask tidy
//! cargo xtask bench [--runs N] [--backend sqlite|postgres|all] [--chart PATH] [-- TE BENCH ARGS…]
//! ```

// A command-line tool: printing to stdout is its job.
#![allow(clippy::print_stdout)]

mod bench;
mod consumer;
mod minimal;
mod postgres;
mod test;
mod tidy;

use std::process::ExitCode;

fn usage() -> &'static str {
    "usage:\n  cargo xtask test [--backend sqlite|postgres|all] [--require-postgres] [--skip-lints] [--long] [--pooler URL]\n  cargo xtask tidy\n  cargo xtask bench [--runs N] [--backend sqlite|postgres|all] [--chart PATH] [-- TE BENCH ARGS]"
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test") => test::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("tidy") => tidy::run(),
        Some("-h" | "--help" | "help") => {
            eprintln!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n{}", usage())),
        None => Err(usage().to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Which backends a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backends {
    Sqlite,
    Postgres,
    All,
}

impl Backends {
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        match value {
            "sqlite" => Ok(Backends::Sqlite),
            "postgres" | "postgresql" | "pg" => Ok(Backends::Postgres),
            "all" => Ok(Backends::All),
            other => Err(format!(
                "--backend {other}: expected sqlite, postgres or all"
            )),
        }
    }

    pub(crate) fn sqlite(self) -> bool {
        matches!(self, Backends::Sqlite | Backends::All)
    }

    pub(crate) fn postgres(self) -> bool {
        matches!(self, Backends::Postgres | Backends::All)
    }
}

/// The cargo that runs this xtask.
pub(crate) fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The workspace's root directory (the parent of `xtask/`).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}
