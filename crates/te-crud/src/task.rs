//! Creating (one or many, all or nothing) and reading task executions.

use std::collections::BTreeSet;

use diesel::prelude::*;
use te_core::schema::{pipeline_executions, task_executions};
use te_core::toolkit::{NewEvent, bind, insert_tasks, record_events};
use te_core::{AnyConnection, DalError, EventType, NewTaskExecution, TaskExecution};
use uuid::Uuid;

/// Checks every row; the error names the field at fault (and its row, for
/// more than one).
pub(crate) fn validate_all(new: &[NewTaskExecution]) -> Result<(), DalError> {
    for (index, task) in new.iter().enumerate() {
        task.validate().map_err(|err| match err {
            DalError::InvalidInput { field, reason } if new.len() > 1 => {
                DalError::invalid(field, format!("{reason} (row {index})"))
            }
            other => other,
        })?;
    }
    Ok(())
}

/// Inserts `rows` with a `TaskCreated` event each. Call inside a write
/// transaction, after [`validate_all`].
pub(crate) fn insert(conn: &mut AnyConnection, rows: &[TaskExecution]) -> Result<(), DalError> {
    insert_tasks(conn, rows)?;
    let events: Vec<NewEvent> = rows
        .iter()
        .map(|row| {
            NewEvent::task(
                row.pipeline_execution_id,
                row.id,
                EventType::TaskCreated,
                row.created_at,
            )
            .data(serde_json::json!({ "task_name": row.task_name, "status": row.status }))
        })
        .collect();
    record_events(conn, &events)
}

/// The first of `ids` that names no pipeline execution, if any: what a
/// foreign-key violation of an insert of tasks was about.
pub(crate) fn missing_pipeline(
    conn: &mut AnyConnection,
    ids: BTreeSet<Uuid>,
) -> Result<Option<Uuid>, DalError> {
    let wanted: Vec<Uuid> = ids.into_iter().collect();
    let found: BTreeSet<Uuid> = pipeline_executions::table
        .filter(pipeline_executions::id.eq_any(bind::ids(&wanted)))
        .select(pipeline_executions::id)
        .load::<Uuid>(conn)?
        .into_iter()
        .collect();
    Ok(wanted.into_iter().find(|id| !found.contains(id)))
}

/// The task execution `task_id`, or [`DalError::NotFound`].
pub(crate) fn get(conn: &mut AnyConnection, task_id: Uuid) -> Result<TaskExecution, DalError> {
    task_executions::table
        .find(bind::id(task_id))
        .select(TaskExecution::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| DalError::task_not_found(task_id))
}

/// Every task execution of `pipeline_id`, ordered by `(created_at, id)`.
pub(crate) fn for_pipeline(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<TaskExecution>, DalError> {
    Ok(task_executions::table
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .order((task_executions::created_at, task_executions::id))
        .select(TaskExecution::as_select())
        .load(conn)?)
}
