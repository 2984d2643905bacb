//! Queries returning whole task executions: pending, orphaned and exhausted ones.

use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::batch::MAX_IN_LIST;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, TaskExecution, TaskStatus};
use uuid::Uuid;

/// The `NotStarted` tasks of `pipeline_id`, ordered by `(created_at, id)`.
pub fn pending_tasks(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<TaskExecution>, DalError> {
    Ok(task_executions::table
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .filter(task_executions::status.eq(TaskStatus::NotStarted))
        .order((task_executions::created_at.asc(), task_executions::id.asc()))
        .select(TaskExecution::as_select())
        .load(conn)?)
}

/// The `NotStarted` tasks of every pipeline in `pipeline_ids`, ordered by
/// `(created_at, id)`: one query per [`MAX_IN_LIST`] distinct ids, none for
/// an empty input.
pub fn pending_tasks_batch(
    conn: &mut AnyConnection,
    pipeline_ids: Vec<Uuid>,
) -> Result<Vec<TaskExecution>, DalError> {
    let pipeline_ids = super::unique(pipeline_ids);
    let mut tasks = Vec::new();
    for chunk in pipeline_ids.chunks(MAX_IN_LIST) {
        tasks.extend(
            task_executions::table
                .filter(task_executions::pipeline_execution_id.eq_any(bind::ids(chunk)))
                .filter(task_executions::status.eq(TaskStatus::NotStarted))
                .order((task_executions::created_at.asc(), task_executions::id.asc()))
                .select(TaskExecution::as_select())
                .load(conn)?,
        );
    }
    if pipeline_ids.len() > MAX_IN_LIST {
        tasks.sort_by_key(|task| (task.created_at, task.id));
    }
    Ok(tasks)
}

/// Every `Running` task, of any pipeline, ordered by `(created_at, id)`.
pub fn orphaned_tasks(conn: &mut AnyConnection) -> Result<Vec<TaskExecution>, DalError> {
    Ok(task_executions::table
        .filter(task_executions::status.eq(TaskStatus::Running))
        .order((task_executions::created_at.asc(), task_executions::id.asc()))
        .select(TaskExecution::as_select())
        .load(conn)?)
}

/// The `Failed` tasks of `pipeline_id` with `attempt >= max_attempts`,
/// ordered by `(created_at, id)`.
pub fn exhausted_retry_tasks(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<TaskExecution>, DalError> {
    Ok(task_executions::table
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .filter(task_executions::status.eq(TaskStatus::Failed))
        .filter(task_executions::attempt.ge(task_executions::max_attempts))
        .order((task_executions::created_at.asc(), task_executions::id.asc()))
        .select(TaskExecution::as_select())
        .load(conn)?)
}
