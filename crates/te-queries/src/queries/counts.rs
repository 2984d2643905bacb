//! Counting tasks: those running, and those in each status.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, TaskStatus};
use uuid::Uuid;

/// How many tasks of any pipeline are `Running`.
pub fn count_running_tasks(conn: &mut AnyConnection) -> Result<i64, DalError> {
    Ok(task_executions::table
        .filter(task_executions::status.eq(TaskStatus::Running))
        .count()
        .get_result(conn)?)
}

/// How many tasks are in each status (every status is a key, 0 when no task
/// has it), counted by the database with `GROUP BY`: over the tasks of
/// `pipeline_id` when given, else over every task.
pub fn count_tasks_by_status(
    conn: &mut AnyConnection,
    pipeline_id: Option<Uuid>,
) -> Result<HashMap<TaskStatus, i64>, DalError> {
    let mut query = task_executions::table
        .group_by(task_executions::status)
        .select((task_executions::status, count_star()))
        .into_boxed();
    if let Some(pipeline_id) = pipeline_id {
        query = query.filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)));
    }
    let rows = query.load::<(TaskStatus, i64)>(conn)?;
    let mut counts: HashMap<TaskStatus, i64> = TaskStatus::ALL.iter().map(|s| (*s, 0)).collect();
    counts.extend(rows);
    Ok(counts)
}
