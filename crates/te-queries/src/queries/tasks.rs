//! Queries returning whole task executions: pending, orphaned and exhausted ones.

use diesel::dsl::{Eq, Filter};
use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::batch::MAX_IN_LIST;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, TaskExecution, TaskStatus};
use uuid::Uuid;

use super::shared::{by_creation, load_ordered};

/// The `NotStarted` tasks of `pipeline_id`, ordered by `(created_at, id)`.
pub fn pending_tasks(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<TaskExecution>, DalError> {
    let source = in_status(TaskStatus::NotStarted)
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)));
    load_ordered(conn, source, by_creation())
}

/// The `NotStarted` tasks of every pipeline in `pipeline_ids`, ordered by
/// `(created_at, id)`: one query per [`MAX_IN_LIST`] distinct ids, none for
/// an empty input.
pub fn pending_tasks_batch(
    conn: &mut AnyConnection,
    pipeline_ids: Vec<Uuid>,
) -> Result<Vec<TaskExecution>, DalError> {
    let pipeline_ids = super::shared::unique(pipeline_ids);
    let mut tasks: Vec<TaskExecution> = Vec::new();
    for chunk in pipeline_ids.chunks(MAX_IN_LIST) {
        let source = in_status(TaskStatus::NotStarted)
            .filter(task_executions::pipeline_execution_id.eq_any(bind::ids(chunk)));
        tasks.extend(load_ordered(conn, source, by_creation())?);
    }
    if pipeline_ids.len() > MAX_IN_LIST {
        tasks.sort_by_key(|task| (task.created_at, task.id));
    }
    Ok(tasks)
}

/// Every `Running` task, of any pipeline, ordered by `(created_at, id)`.
pub fn orphaned_tasks(conn: &mut AnyConnection) -> Result<Vec<TaskExecution>, DalError> {
    let source = in_status(TaskStatus::Running);
    load_ordered(conn, source, by_creation())
}

/// The `Failed` tasks of `pipeline_id` with `attempt >= max_attempts`,
/// ordered by `(created_at, id)`.
pub fn exhausted_retry_tasks(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<TaskExecution>, DalError> {
    let source = in_status(TaskStatus::Failed)
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .filter(task_executions::attempt.ge(task_executions::max_attempts));
    load_ordered(conn, source, by_creation())
}

/// The task executions in `status`, to filter further.
fn in_status(
    status: TaskStatus,
) -> Filter<task_executions::table, Eq<task_executions::status, TaskStatus>> {
    task_executions::table.filter(task_executions::status.eq(status))
}
