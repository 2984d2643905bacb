//! Reading the audit log of a task or a pipeline execution.

use diesel::prelude::*;
use te_core::schema::execution_events as ev;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, ExecutionEvent, MultiBackend};
use uuid::Uuid;

/// The events of task `task_id`, in the order they were written (`sequence`).
pub fn events_for_task(conn: &mut AnyConnection, task_id: Uuid) -> Log {
    let of_task = ev::task_execution_id.eq(bind::opt_id(Some(task_id)));
    in_log_order(conn, ev::table.filter(of_task).into_boxed())
}

/// The events of pipeline execution `pipeline_id` and of all its tasks, in
/// the order they were written (`sequence`).
pub fn events_for_pipeline(conn: &mut AnyConnection, pipeline_id: Uuid) -> Log {
    let of_pipeline = ev::pipeline_execution_id.eq(bind::id(pipeline_id));
    in_log_order(conn, ev::table.filter(of_pipeline).into_boxed())
}

/// What a read of the audit log answers: the events in log order.
type Log = Result<Vec<ExecutionEvent>, DalError>;

/// The events `events` selects, ordered by `sequence`: one query.
fn in_log_order(conn: &mut AnyConnection, events: ev::BoxedQuery<'static, MultiBackend>) -> Log {
    super::shared::load_ordered(conn, events, ev::sequence.asc())
}
