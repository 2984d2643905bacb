//! Whether a pipeline execution has completed, and whether it has failed.

use diesel::dsl::{exists, not};
use diesel::prelude::*;
use te_core::schema::{pipeline_executions, task_executions};
use te_core::toolkit::{bind, find_row};
use te_core::{AnyConnection, DalError, TaskExecution, TaskStatus};
use uuid::Uuid;

/// The statuses a task may still leave on its own.
const NOT_TERMINAL: [TaskStatus; 3] = [
    TaskStatus::NotStarted,
    TaskStatus::Ready,
    TaskStatus::Running,
];

diesel::define_sql_function! {
    /// `substr(text, start, length)`, the same on PostgreSQL and SQLite.
    fn substr(text: diesel::sql_types::Nullable<diesel::sql_types::Text>, start: diesel::sql_types::Integer, length: diesel::sql_types::Integer) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// True when `pipeline_id` has at least one task and every one of its tasks
/// is terminal (`Completed`, `Failed` or `Skipped`). A pipeline execution
/// without tasks is not complete: its tasks may not have been created yet.
/// [`DalError::NotFound`] for an unknown pipeline execution. One query.
pub fn pipeline_completion(conn: &mut AnyConnection, pipeline_id: Uuid) -> Result<bool, DalError> {
    let tasks = || {
        task_executions::table
            .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
    };
    let complete = pipeline_executions::table
        .find(bind::id(pipeline_id))
        .select(
            exists(tasks().select(task_executions::id)).and(not(exists(
                tasks()
                    .filter(task_executions::status.eq_any(NOT_TERMINAL))
                    .select(task_executions::id),
            ))),
        );
    find_row(conn, complete, || DalError::pipeline_not_found(pipeline_id))
}

/// True when some task of `pipeline_id` was abandoned: status `Failed` and
/// `error_details` starting with [`TaskExecution::ABANDONED_PREFIX`]. [`DalError::NotFound`] for an
/// unknown pipeline execution. One query.
///
/// The prefix is compared exactly (not with `LIKE`, which ignores case on
/// SQLite), so the answer is the same on both backends.
pub fn pipeline_failure(conn: &mut AnyConnection, pipeline_id: Uuid) -> Result<bool, DalError> {
    let failed = pipeline_executions::table
        .find(bind::id(pipeline_id))
        .select(exists(
            task_executions::table
                .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
                .filter(task_executions::status.eq(TaskStatus::Failed))
                .filter(
                    substr(
                        task_executions::error_details,
                        1,
                        TaskExecution::ABANDONED_PREFIX.len() as i32,
                    )
                    .eq(TaskExecution::ABANDONED_PREFIX),
                )
                .select(task_executions::id),
        ));
    find_row(conn, failed, || DalError::pipeline_not_found(pipeline_id))
}
