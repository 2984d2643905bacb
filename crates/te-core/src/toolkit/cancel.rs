//! The cancel of a pipeline execution, shared by `cancel_pipeline`
//! (te-state) and `update_pipeline_status` to `Cancelled` (te-crud), so that
//! both are the same cancel: the same skips, the same events.

use diesel::prelude::*;
use uuid::Uuid;

use crate::data::any_connection::AnyConnection;
use crate::data::event_data;
use crate::data::models::{CancelOutcome, NewEvent};
use crate::data::schema::{pipeline_executions as pe, task_executions as te};
use crate::ground::error::{DalError, PipelineOperation};
use crate::ground::status::{EventType, PipelineStatus, TaskStatus};
use crate::toolkit::many::finished;
use crate::toolkit::pipeline_lock::lock_pipeline_for_cancel;
use crate::toolkit::rows::{record_event, record_events};
use crate::toolkit::{bind, now};

/// The task statuses a cancel skips.
const SKIPPED_BY_CANCEL: &[TaskStatus] = &[TaskStatus::NotStarted, TaskStatus::Ready];

/// Cancels `pipeline_id`: the pipeline becomes `Cancelled` (unless it is
/// already) and is no longer paused, every `NotStarted`/`Ready` task becomes
/// `Skipped` with `reason`, with one event each; `Running` tasks are counted
/// and left alone. A `Completed` or `Failed` pipeline is
/// [`DalError::IllegalPipelineTransition`] ([`PipelineOperation::Cancel`]),
/// an unknown one [`DalError::NotFound`]. Call inside a write transaction.
pub fn cancel(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    reason: &str,
) -> Result<CancelOutcome, DalError> {
    let now = now();
    // The pipeline row is locked first, so that no retry, recovery or
    // creation of one of its tasks commits between the skip below and the
    // cancel's commit (see `pipeline_lock`); its status cannot change until
    // the cancel commits.
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
                // A terminal pipeline is never held by a pause.
                pe::paused.eq(false),
            ))
            .execute(conn)?;
        record_event(
            conn,
            NewEvent::pipeline(pipeline_id, EventType::PipelineStatusChanged, now)
                .data(event_data::pipeline_cancelled(status, reason)),
        )?;
    }
    let events: Vec<NewEvent> = skipped
        .iter()
        .map(|&task_id| {
            NewEvent::task(pipeline_id, task_id, EventType::TaskSkipped, now)
                .data(event_data::reason(reason))
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
                operation: PipelineOperation::Cancel,
            })
        }
        PipelineStatus::Pending | PipelineStatus::Running | PipelineStatus::Cancelled => Ok(()),
    }
}
