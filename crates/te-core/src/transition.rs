//! Shared pieces of guarded status changes: the current time, new ids, and
//! the error for a compare-and-set that matched no row.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::connection::AnyConnection;
use crate::models::TaskStatus;
use crate::schema::task_executions;
use crate::DalError;

/// Now, truncated to the microsecond: what both backends store, so a value
/// written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new time-ordered (version 7) UUID: rows created later sort later.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The error for a guarded update of `task_id` towards `to` that changed no
/// row: [`DalError::NotFound`] if the task does not exist, else
/// [`DalError::IllegalTransition`] from its current status. Call it inside the
/// transaction of the update.
pub fn refused(conn: &mut AnyConnection, task_id: Uuid, to: TaskStatus) -> DalError {
    match task_executions::table
        .find(crate::bind::id(task_id))
        .select(task_executions::status)
        .first::<TaskStatus>(conn)
        .optional()
    {
        Ok(Some(from)) => DalError::IllegalTransition { task_id, from, to },
        Ok(None) => DalError::not_found("task execution", task_id),
        Err(err) => err.into(),
    }
}
