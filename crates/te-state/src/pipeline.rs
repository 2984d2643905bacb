//! Transitions of a pipeline execution: cancel (with the skip of its unstarted
//! tasks), pause and resume. Plain functions on one connection; call them
//! inside a write transaction.

use diesel::prelude::*;
use serde_json::json;
use te_core::schema::{pipeline_executions as pe, task_executions as te};
use te_core::toolkit::{
    NewEvent, bind, finished, lock_pipeline_for_cancel, now, record_event, record_events,
};
use te_core::{AnyConnection, CancelOutcome, DalError, EventType, PipelineStatus, TaskStatus};
use uuid::Uuid;

/// The task statuses a cancel skips.
const SKIPPED_BY_CANCEL: &[TaskStatus] = &[TaskStatus::NotStarted, TaskStatus::Ready];

/// The status and paused flag of `pipeline_id`, or [`DalError::NotFound`].
fn current(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<(PipelineStatus, bool), DalError> {
    pe::table
        .find(bind::id(pipeline_id))
        .select((pe::status, pe::paused))
        .first::<(PipelineStatus, bool)>(conn)
        .optional()?
        .ok_or_else(|| DalError::pipeline_not_found(pipeline_id))
}

/// Cancels `pipeline_id`: the pipeline becomes `Cancelled` (unless it is
/// already), every `NotStarted`/`Ready` task becomes `Skipped` with `reason`,
/// with one event each; `Running` tasks are counted and left alone.
pub(crate) fn cancel(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    reason: &str,
) -> Result<CancelOutcome, DalError> {
    let now = now();
    // The pipeline row is locked first, so that no retry or recovery of one
    // of its tasks commits between the skip below and the cancel's commit
    // (see `te_core::toolkit::pipeline_lock`); its status cannot change
    // until the cancel commits.
    let status = lock_pipeline_for_cancel(conn, pipeline_id)?
        .ok_or_else(|| DalError::pipeline_not_found(pipeline_id))?;
    refuse_finished(pipeline_id, status)?;
    // The tasks before the events: on PostgreSQL this waits for any claim of
    // them in flight to commit, so every claim of the pipeline's tasks is
    // logged before the cancel's own events.
    let mut skipped = diesel::update(
        te::table
            .filter(te::pipeline_execution_id.eq(bind::id(pipeline_id)))
            .filter(te::status.eq_any(SKIPPED_BY_CANCEL.to_vec())),
    )
    .set((
        te::status.eq(TaskStatus::Skipped),
        te::updated_at.eq(bind::ts(now)),
        te::error_details.eq(reason.to_owned()),
        finished(now),
    ))
    .returning(te::id)
    .get_results::<Uuid>(conn)?;
    skipped.sort_unstable();
    if status != PipelineStatus::Cancelled {
        diesel::update(pe::table.find(bind::id(pipeline_id)))
            .set((
                pe::status.eq(PipelineStatus::Cancelled),
                pe::completed_at.eq(bind::opt_ts(Some(now))),
                pe::updated_at.eq(bind::ts(now)),
            ))
            .execute(conn)?;
        record_event(
            conn,
            NewEvent::pipeline(pipeline_id, EventType::PipelineStatusChanged, now)
                .data(json!({ "from": status, "to": PipelineStatus::Cancelled, "reason": reason })),
        )?;
    }
    let events: Vec<NewEvent> = skipped
        .iter()
        .map(|&task_id| {
            NewEvent::task(pipeline_id, task_id, EventType::TaskSkipped, now)
                .data(json!({ "reason": reason }))
        })
        .collect();
    record_events(conn, &events)?;
    let running = te::table
        .filter(te::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .filter(te::status.eq(TaskStatus::Running))
        .count()
        .get_result::<i64>(conn)?;
    Ok(CancelOutcome {
        skipped: skipped.len(),
        running: usize::try_from(running).unwrap_or(0),
    })
}

/// A `Completed` or `Failed` pipeline cannot be cancelled.
fn refuse_finished(pipeline_id: Uuid, status: PipelineStatus) -> Result<(), DalError> {
    match status {
        PipelineStatus::Completed | PipelineStatus::Failed => {
            Err(DalError::IllegalPipelineTransition {
                pipeline_id,
                from: status,
                to: PipelineStatus::Cancelled,
            })
        }
        PipelineStatus::Pending | PipelineStatus::Running | PipelineStatus::Cancelled => Ok(()),
    }
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
