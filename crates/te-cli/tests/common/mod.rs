//! Helpers shared by the tests that run `te` as a process.
// Each test binary uses only some of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `te` with `args`, without any `DATABASE_URL` from the test's environment.
pub(crate) fn te(args: &[&str]) -> Output {
    command(args).output().expect("te runs")
}

/// Runs `te` in `dir`, as [`te`] does.
pub(crate) fn te_in(dir: &Path, args: &[&str]) -> Output {
    command(args).current_dir(dir).output().expect("te runs")
}

/// `te` with `args`, without any `DATABASE_URL` from the test's environment.
pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_te"));
    command.args(args).env_remove("DATABASE_URL");
    command
}

/// The stdout of a run that must have succeeded.
pub(crate) fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "te failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
