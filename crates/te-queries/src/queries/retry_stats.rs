//! Retry statistics of a pipeline execution, aggregated by the database in one query.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use te_core::schema::{pipeline_executions, task_executions};
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, RetryStats, TaskStatus};
use uuid::Uuid;

/// The [`RetryStats`] of `pipeline_id`, computed by ONE aggregate statement
/// (no task row is loaded): the pipeline execution `LEFT JOIN` its tasks, so
/// that an unknown pipeline execution ([`DalError::NotFound`]) is told from
/// one without tasks (all zeros).
///
/// - `tasks_with_retries`: tasks with `attempt > 1`;
/// - `total_retries`: the sum of `attempt - 1`;
/// - `max_attempts_used`: the highest `attempt` (0 without tasks);
/// - `tasks_exhausted_retries`: `Failed` tasks with `attempt >= max_attempts`.
///
/// The SQL fragments are constant text; the pipeline id and the status are bound.
pub fn retry_stats(conn: &mut AnyConnection, pipeline_id: Uuid) -> Result<RetryStats, DalError> {
    let (pipelines, tasks_with_retries, total_retries, max_attempts_used, tasks_exhausted_retries) =
        pipeline_executions::table
            .left_join(task_executions::table)
            .filter(pipeline_executions::id.eq(bind::id(pipeline_id)))
            .select((
                sql::<BigInt>("COUNT(DISTINCT pipeline_executions.id)"),
                sql::<BigInt>(
                    "COALESCE(SUM(CASE WHEN task_executions.attempt > 1 THEN 1 ELSE 0 END), 0)",
                ),
                sql::<BigInt>("COALESCE(SUM(task_executions.attempt - 1), 0)"),
                sql::<Integer>("COALESCE(MAX(task_executions.attempt), 0)"),
                sql::<BigInt>("COALESCE(SUM(CASE WHEN task_executions.status = ")
                    .bind::<Text, _>(TaskStatus::Failed)
                    .sql(
                        " AND task_executions.attempt >= task_executions.max_attempts \
                         THEN 1 ELSE 0 END), 0)",
                    ),
            ))
            .first::<(i64, i64, i64, i32, i64)>(conn)?;
    if pipelines == 0 {
        return Err(DalError::pipeline_not_found(pipeline_id));
    }
    Ok(RetryStats {
        tasks_with_retries,
        total_retries,
        max_attempts_used,
        tasks_exhausted_retries,
    })
}
