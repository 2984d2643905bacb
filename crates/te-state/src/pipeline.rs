//! Transitions of a pipeline execution: cancel (with the skip of its unstarted
//! tasks), pause and resume. Plain functions on one connection; call them
//! inside a write transaction.

use diesel::prelude::*;
use te_core::schema::pipeline_executions as pe;
use te_core::toolkit::{NewEvent, bind, find_row, now, record_event};
use te_core::{
    AnyConnection, CancelOutcome, DalError, EventType, PipelineOperation, PipelineStatus,
};
use uuid::Uuid;

/// The status and paused flag of `pipeline_id`, or [`DalError::NotFound`].
fn current(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<(PipelineStatus, bool), DalError> {
    let row = pe::table
        .find(bind::id(pipeline_id))
        .select((pe::status, pe::paused));
    find_row(conn, row, || DalError::pipeline_not_found(pipeline_id))
}

/// Cancels `pipeline_id`: see [`te_core::toolkit::cancel`], which
/// `update_pipeline_status` to `Cancelled` shares.
pub(crate) fn cancel(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    reason: &str,
) -> Result<CancelOutcome, DalError> {
    te_core::toolkit::cancel(conn, pipeline_id, reason)
}

/// Sets the paused flag of `pipeline_id` to `paused`, with its event, unless
/// it already has that value. Pausing a terminal pipeline is refused;
/// resuming one that is not paused does nothing, resuming a paused terminal
/// one is refused.
pub(crate) fn set_paused(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    paused: bool,
) -> Result<(), DalError> {
    loop {
        let (status, was_paused) = current(conn, pipeline_id)?;
        if was_paused == paused {
            return Ok(());
        }
        if status.is_terminal() {
            return Err(DalError::IllegalPipelineTransition {
                pipeline_id,
                from: status,
                to: status,
                operation: if paused {
                    PipelineOperation::Pause
                } else {
                    PipelineOperation::Resume
                },
            });
        }
        let now = now();
        let changed = diesel::update(
            pe::table
                .find(bind::id(pipeline_id))
                .filter(pe::status.eq(status))
                .filter(pe::paused.eq(was_paused)),
        )
        .set((pe::paused.eq(paused), pe::updated_at.eq(bind::ts(now))))
        .execute(conn)?;
        if changed == 1 {
            let event_type = if paused {
                EventType::PipelinePaused
            } else {
                EventType::PipelineResumed
            };
            return record_event(conn, NewEvent::pipeline(pipeline_id, event_type, now));
        }
    }
}
