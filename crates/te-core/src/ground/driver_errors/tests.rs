//! Tests of `DalError`: its messages, and what driver errors become.

use super::*;
use crate::ground::error::*;

#[test]
fn missing_dal_tables_are_recognised_on_both_backends() {
    assert_eq!(
        missing_table("no such table: task_executions"),
        Some("task_executions")
    );
    assert_eq!(
        missing_table("no such table: main.contexts"),
        Some("contexts")
    );
    assert_eq!(
        missing_table("relation \"execution_events\" does not exist"),
        Some("execution_events")
    );
    assert_eq!(
        missing_table(
            "function te_claim_candidates(timestamp with time zone, uuid, integer) does not exist"
        ),
        Some("task_executions")
    );
    assert_eq!(missing_table("no such table: my_own_table"), None);
    assert_eq!(missing_table("syntax error"), None);
}

/// A database error as PostgreSQL reports it, with its SQLSTATE.
struct WithState(&'static str);

impl diesel::result::DatabaseErrorInformation for WithState {
    fn message(&self) -> &str {
        "prepared statement \"__diesel_stmt_6\" does not exist"
    }
    fn details(&self) -> Option<&str> {
        None
    }
    fn hint(&self) -> Option<&str> {
        None
    }
    fn table_name(&self) -> Option<&str> {
        None
    }
    fn column_name(&self) -> Option<&str> {
        None
    }
    fn constraint_name(&self) -> Option<&str> {
        None
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
    fn sqlstate(&self) -> Option<diesel::result::SqlState> {
        self.0.parse().ok()
    }
}

#[test]
fn prepared_statement_errors_name_the_pooler_flag() {
    let error = |state| {
        DalError::from(DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(WithState(state)),
        ))
    };
    for state in PREPARED_STATEMENT_STATES {
        let err = error(state);
        assert!(matches!(err, DalError::TransactionPooler { .. }), "{err:?}");
        assert!(err.to_string().contains("pgbouncer=true"), "{err}");
    }
    assert!(matches!(error("XX000"), DalError::Database(_)));
}

#[test]
fn new_errors_name_the_fix() {
    let err = DalError::NotMigrated {
        table: "task_executions".into(),
    };
    let text = err.to_string();
    assert!(
        text.contains("run_migrations") && text.contains("te migrate"),
        "{text}"
    );
    let err = DalError::Timeout {
        what: "sqlite_busy_timeout",
        after: Duration::from_millis(1500),
    };
    let text = err.to_string();
    assert!(
        text.contains("sqlite_busy_timeout") && text.contains("write lock"),
        "{text}"
    );
}
