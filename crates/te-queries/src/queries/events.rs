//! Reading the audit log of a task or a pipeline execution.

use diesel::prelude::*;
use te_core::schema::execution_events;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, ExecutionEvent};
use uuid::Uuid;

/// The events of task `task_id`, in the order they were written (`sequence`).
pub fn events_for_task(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<Vec<ExecutionEvent>, DalError> {
    super::shared::load_ordered(
        conn,
        execution_events::table
            .filter(execution_events::task_execution_id.eq(bind::opt_id(Some(task_id)))),
        execution_events::sequence.asc(),
    )
}

/// The events of pipeline execution `pipeline_id` and of all its tasks, in
/// the order they were written (`sequence`).
pub fn events_for_pipeline(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<ExecutionEvent>, DalError> {
    super::shared::load_ordered(
        conn,
        execution_events::table
            .filter(execution_events::pipeline_execution_id.eq(bind::id(pipeline_id))),
        execution_events::sequence.asc(),
    )
}
