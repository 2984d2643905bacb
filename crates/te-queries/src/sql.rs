//! The hand-written SQL of te-queries (its catalogue): aggregate
//! expressions diesel's DSL cannot write on the generic backend.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use te_core::schema::{pipeline_executions, task_executions};
use te_core::toolkit::bind;
use te_core::{AnyConnection, TaskStatus};
use uuid::Uuid;

/// The retry statistics of `pipeline_id` as one aggregate row: how many
/// pipeline executions matched (0 or 1), tasks with `attempt > 1`, the sum
/// of `attempt - 1`, the highest `attempt` (0 without tasks), and `Failed`
/// tasks with `attempt >= max_attempts`.
///
/// Reason: `COUNT(DISTINCT …)`, `SUM(CASE …)` and `COALESCE` over a `LEFT
/// JOIN` have no DSL form on `MultiBackend`; one aggregate statement loads no
/// task row. The fragments are constant text; the pipeline id and the
/// status are bound. Tests hold each figure to what the rows say
/// (`queries::retry_stats_are_computed_by_the_database`).
pub(crate) fn retry_stats_row(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> QueryResult<(i64, i64, i64, i32, i64)> {
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
        .first::<(i64, i64, i64, i32, i64)>(conn)
}
