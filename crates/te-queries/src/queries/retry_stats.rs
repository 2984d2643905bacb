//! Retry statistics of a pipeline execution, aggregated by the database in one query.

use te_core::{AnyConnection, DalError, RetryStats};
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
pub fn retry_stats(conn: &mut AnyConnection, pipeline_id: Uuid) -> Result<RetryStats, DalError> {
    let (pipelines, tasks_with_retries, total_retries, max_attempts_used, tasks_exhausted_retries) =
        crate::sql::retry_stats_row(conn, pipeline_id)?;
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
