//! Conditions written as SQL text because diesel's DSL has no word for them
//! on the generic backend: constant text, no value in any of them.

use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::sql_types::Bool;

/// `NOT EXISTS` a cancelled pipeline of the task being written. A
/// correlated subquery on `pipeline_executions`' primary key; the DSL
/// cannot alias the outer table inside an `exists` on `MultiBackend`.
const NOT_IN_CANCELLED_PIPELINE: &str = "NOT EXISTS (SELECT 1 FROM pipeline_executions AS p \
     WHERE p.id = task_executions.pipeline_execution_id AND p.status = 'Cancelled')";

/// A `Ready` task whose pipeline is held (paused or cancelled: the
/// `held_pipelines` table) is left out; any other status passes.
const READY_NOT_HELD: &str = "(task_executions.status <> 'Ready' OR NOT EXISTS \
     (SELECT 1 FROM held_pipelines AS h WHERE h.pipeline_id = task_executions.pipeline_execution_id))";

/// The task's pipeline execution is not `Cancelled`.
pub(crate) fn not_in_cancelled_pipeline() -> SqlLiteral<Bool> {
    sql::<Bool>(NOT_IN_CANCELLED_PIPELINE)
}

/// The task is not `Ready` in a held pipeline execution.
pub(crate) fn ready_not_held() -> SqlLiteral<Bool> {
    sql::<Bool>(READY_NOT_HELD)
}

/// A condition no row meets: a write allowed from no status.
pub(crate) fn never() -> SqlLiteral<Bool> {
    sql::<Bool>("FALSE")
}
