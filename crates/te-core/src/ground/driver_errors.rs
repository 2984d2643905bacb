//! How driver and pool errors become [`DalError`]s: a missing table means
//! an unmigrated database, a lost prepared statement means a pooler in
//! transaction mode, SQLite's lock timeout is a `Timeout`, and every message
//! is kept free of passwords.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::ground::error::{DalError, PoolError};

/// The DAL's tables: a query that finds one missing means the database
/// was not migrated.
const DAL_TABLES: &[&str] = &[
    "pipeline_executions",
    "task_executions",
    "task_execution_metadata",
    "execution_events",
    "contexts",
];

/// The DAL table a driver message says is missing: SQLite's
/// `no such table: X` or PostgreSQL's `relation "X" does not exist` (or,
/// for the claim, `function te_claim_candidates(…) does not exist`).
///
/// Together with [`DalError::is_database_locked`], this is the one place
/// where error message text is matched: diesel reports neither SQLSTATE nor
/// SQLite's result code for these errors (both come as
/// `DatabaseErrorKind::Unknown`), so their text is all there is.
fn missing_table(message: &str) -> Option<&'static str> {
    // The claim's function comes with the migrations too (PostgreSQL): a
    // database without it is not migrated (or not to this version), and
    // what it serves is the claim of task executions.
    if message.starts_with("function te_claim_candidates(") && message.ends_with("does not exist") {
        return Some("task_executions");
    }
    let name = if let Some(rest) = message.strip_prefix("no such table: ") {
        rest.trim()
    } else {
        message
            .strip_prefix("relation \"")?
            .strip_suffix("\" does not exist")?
    };
    let name = name.rsplit('.').next().unwrap_or(name);
    DAL_TABLES.iter().copied().find(|table| *table == name)
}

impl DalError {
    /// [`DalError::Timeout`] naming `sqlite_busy_timeout`, configured as `after`.
    pub(crate) fn sqlite_busy_timeout(after: Duration) -> Self {
        DalError::Timeout {
            what: "sqlite_busy_timeout",
            after,
        }
    }

    /// True for SQLite's "database is locked" (`SQLITE_BUSY`): the write lock
    /// stayed held for the whole busy timeout. See [`missing_table`] on why
    /// the message text is matched.
    pub(crate) fn is_database_locked(&self) -> bool {
        match self {
            DalError::Database(DieselError::DatabaseError(_, info)) => {
                info.message().contains("database is locked")
            }
            _ => false,
        }
    }
}

/// SQLSTATE `invalid_sql_statement_name` (`prepared statement … does not
/// exist`) and `duplicate_prepared_statement` (`… already exists`).
const PREPARED_STATEMENT_STATES: [&str; 2] = ["26000", "42P05"];

impl From<DieselError> for DalError {
    fn from(err: DieselError) -> Self {
        if let DieselError::DatabaseError(_, ref info) = err
            && info
                .sqlstate()
                .is_some_and(|state| PREPARED_STATEMENT_STATES.contains(&state.as_str()))
        {
            return DalError::TransactionPooler { source: err };
        }
        if let DieselError::DatabaseError(_, ref info) = err
            && let Some(table) = missing_table(info.message())
        {
            return DalError::NotMigrated {
                table: table.to_owned(),
            };
        }
        match err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                DalError::Conflict {
                    message: info.message().to_owned(),
                    source: err,
                }
            }
            // Operations look rows up with `.optional()` and name what they
            // looked for; this only describes a query of the caller's own.
            DieselError::NotFound => DalError::NotFound {
                entity: "row",
                key: "matching the query".to_owned(),
            },
            other => DalError::Database(other),
        }
    }
}

impl From<PoolError> for DalError {
    fn from(err: PoolError) -> Self {
        DalError::Pool(err)
    }
}

#[cfg(test)]
mod tests;
