//! Rows written exactly as a test gives them: no validation, no events.
//! For tests that need a state no sequence of calls reaches cheaply (a task
//! saved without its context, ten thousand contexts at once); the DAL's own
//! writes never use them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use te_core::schema::{contexts, task_execution_metadata};
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, TaskExecutionMetadata};
use uuid::Uuid;

/// Inserts metadata rows exactly as given, one statement each (no events).
/// Call inside a write transaction.
pub fn insert_metadata(
    conn: &mut AnyConnection,
    rows: &[TaskExecutionMetadata],
) -> Result<(), DalError> {
    for row in rows {
        diesel::insert_into(task_execution_metadata::table)
            .values(row.clone())
            .execute(conn)?;
    }
    Ok(())
}

/// Inserts context documents `(id, value)` stamped `now`, one statement
/// each, exactly as given. Call inside a write transaction.
pub fn insert_contexts(
    conn: &mut AnyConnection,
    documents: &[(Uuid, Value)],
    now: DateTime<Utc>,
) -> Result<(), DalError> {
    for (id, value) in documents {
        diesel::insert_into(contexts::table)
            .values((
                contexts::id.eq(bind::id(*id)),
                contexts::value.eq(bind::json(value.clone())),
                contexts::created_at.eq(bind::ts(now)),
                contexts::updated_at.eq(bind::ts(now)),
            ))
            .execute(conn)?;
    }
    Ok(())
}
