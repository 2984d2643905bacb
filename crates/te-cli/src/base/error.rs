//! `CliError`: every way a `te` command fails, each printed as one line.

use std::fmt;

use task_execution_dal::prelude::*;
use uuid::Uuid;

/// A failed command. Its `Display` is one line (no newlines), meant for stderr.
#[derive(Debug)]
pub(crate) enum CliError {
    /// A DAL operation failed.
    Dal(DalError),
    /// The database has none of the DAL's tables yet.
    NotMigrated {
        /// The database, without its password.
        target: String,
    },
    /// A SQLite file that a command needs does not exist.
    MissingDatabase {
        /// The path that was looked for.
        path: String,
    },
    /// No pipeline execution has this id.
    UnknownPipeline(Uuid),
    /// The demo refuses a database that still holds unfinished tasks.
    DatabaseBusy {
        /// How many tasks are not finished.
        unfinished: i64,
    },
    /// A file could not be removed or read.
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The demo ran but something it checks went wrong (the summary says what).
    Demo(String),
    /// `te bench` could not prepare, run or clean up a workload.
    Bench(String),
    /// `te bench` could not make or remove its scratch database.
    Scratch(te_testkit::ScratchError),
}

impl CliError {
    /// Converts a DAL error, recognising a database that was never migrated.
    pub(crate) fn from_dal(err: DalError, target: &str) -> Self {
        if is_missing_table(&err) {
            CliError::NotMigrated {
                target: target.to_owned(),
            }
        } else {
            CliError::Dal(err)
        }
    }
}

/// True when `err` says a table of the DAL does not exist.
fn is_missing_table(err: &DalError) -> bool {
    matches!(err, DalError::NotMigrated { .. })
}

impl From<DalError> for CliError {
    fn from(err: DalError) -> Self {
        CliError::Dal(err)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            CliError::Dal(err) => with_causes(err),
            CliError::NotMigrated { target } => format!(
                "the database {target} has no task-execution tables: run `te migrate --database-url …` first"
            ),
            CliError::MissingDatabase { path } => format!(
                "no database file at {path}: run `te migrate --database-url sqlite://{path}` first"
            ),
            CliError::UnknownPipeline(id) => format!("no pipeline execution with id {id}"),
            CliError::DatabaseBusy { unfinished } => format!(
                "the database still holds {unfinished} unfinished tasks; run the demo on a fresh database"
            ),
            CliError::Io { what, source } => format!("{what}: {source}"),
            CliError::Demo(message) => message.clone(),
            CliError::Bench(message) => format!("bench: {message}"),
            CliError::Scratch(err) => format!("bench: scratch database: {}", with_causes(err)),
        };
        f.write_str(&one_line(&text))
    }
}

impl std::error::Error for CliError {}

/// `err` followed by each cause that its message does not already contain.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Collapses every run of whitespace (newlines included) into one space.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n\tb  c\n"), "a b c");
        let err = CliError::Dal(DalError::Config("bad\nurl".into()));
        assert!(!err.to_string().contains('\n'));
        assert!(err.to_string().contains("bad url"));
    }

    #[test]
    fn not_migrated_points_at_migrate() {
        let err = CliError::NotMigrated {
            target: "sqlite://x.db".into(),
        };
        assert!(err.to_string().contains("te migrate"));
    }
}
