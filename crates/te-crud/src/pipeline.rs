//! Creating and reading pipeline executions (with their initial context).

use diesel::prelude::*;
use te_core::schema::{contexts, pipeline_executions};
use te_core::toolkit::event_data;
use te_core::toolkit::{
    NewEvent, bind, cancel, find_row, insert_context, now, record_event, store_context,
};
use te_core::{
    AnyConnection, DalError, EventType, NewPipelineExecution, PipelineExecution, PipelineOperation,
    PipelineStatus,
};
use uuid::Uuid;

/// Inserts the pipeline execution, its initial context (unless absent or an
/// empty object) and its `PipelineCreated` event. Call inside a write
/// transaction, after `new.validate()`.
pub(crate) fn create(
    conn: &mut AnyConnection,
    mut new: NewPipelineExecution,
) -> Result<PipelineExecution, DalError> {
    let now = now();
    let context_id = match new.context.take() {
        Some(value) => store_context(conn, &value, now)?,
        None => None,
    };
    let row = new.into_row(context_id, now);
    diesel::insert_into(pipeline_executions::table)
        .values(row.clone())
        .execute(conn)?;
    record_event(
        conn,
        NewEvent::pipeline(row.id, EventType::PipelineCreated, now).data(
            event_data::pipeline_created(&row.pipeline_name, &row.pipeline_version),
        ),
    )?;
    Ok(row)
}

/// The pipeline execution `pipeline_id`, or [`DalError::NotFound`].
pub(crate) fn get(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<PipelineExecution, DalError> {
    let row = pipeline_executions::table
        .find(bind::id(pipeline_id))
        .select(PipelineExecution::as_select());
    find_row(conn, row, || DalError::pipeline_not_found(pipeline_id))
}

/// The reason a cancel through `update_pipeline_status` stores on the
/// tasks it skips when no `error_details` is given.
const CANCEL_REASON: &str = "pipeline execution cancelled";

/// Sets the status of `pipeline_id`: `completed_at` is stamped when the new
/// status is terminal (and cleared otherwise), a terminal status clears the
/// pause, `error_details` is replaced, `updated_at` bumped, and a
/// `PipelineStatusChanged` event written with the old and new status.
/// Setting the status it already has writes nothing and returns the row as
/// it is. `Cancelled` is the cancel of [`te_core::toolkit::cancel`] (its
/// skips and events), with `error_details` as the reason. Leaving a terminal
/// status is refused with [`DalError::IllegalPipelineTransition`]. Call
/// inside a write transaction.
pub(crate) fn set_status(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    status: PipelineStatus,
    error_details: Option<String>,
) -> Result<PipelineExecution, DalError> {
    let current = get(conn, pipeline_id)?;
    if current.status == status {
        return Ok(current);
    }
    if current.status.is_terminal() {
        return Err(DalError::IllegalPipelineTransition {
            pipeline_id,
            from: current.status,
            to: status,
            operation: PipelineOperation::SetStatus,
        });
    }
    if status == PipelineStatus::Cancelled {
        cancel(
            conn,
            pipeline_id,
            error_details.as_deref().unwrap_or(CANCEL_REASON),
        )?;
        diesel::update(pipeline_executions::table.find(bind::id(pipeline_id)))
            .set(pipeline_executions::error_details.eq(error_details))
            .execute(conn)?;
        return get(conn, pipeline_id);
    }
    let now = now();
    let terminal = status.is_terminal();
    let completed_at = terminal.then_some(now);
    let changed = diesel::update(
        pipeline_executions::table
            .find(bind::id(pipeline_id))
            // Compare-and-set on the status just read.
            .filter(pipeline_executions::status.eq(current.status)),
    )
    .set((
        pipeline_executions::status.eq(status),
        pipeline_executions::completed_at.eq(bind::opt_ts(completed_at)),
        pipeline_executions::error_details.eq(error_details),
        pipeline_executions::updated_at.eq(bind::ts(now)),
        // A terminal pipeline is never held by a pause.
        terminal.then(|| pipeline_executions::paused.eq(false)),
    ))
    .execute(conn)?;
    if changed == 0 {
        // Changed by another writer since it was read: report what it is now.
        return Err(DalError::invalid(
            "status",
            format!("pipeline execution {pipeline_id} changed concurrently; read it again"),
        ));
    }
    record_event(
        conn,
        NewEvent::pipeline(pipeline_id, EventType::PipelineStatusChanged, now)
            .data(event_data::pipeline_status_changed(current.status, status)),
    )?;
    get(conn, pipeline_id)
}

/// Stores `value` as the final context of `pipeline_id` (replacing and
/// deleting any earlier one) with a `PipelineFinalContextSet` event; returns
/// the new context's id. Call inside a write transaction, after checking
/// that `value` is a JSON object.
pub(crate) fn set_final_context(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    value: &serde_json::Value,
) -> Result<Uuid, DalError> {
    let previous = get(conn, pipeline_id)?.final_context_id;
    let now = now();
    let context_id = insert_context(conn, value, now)?;
    diesel::update(pipeline_executions::table.find(bind::id(pipeline_id)))
        .set((
            pipeline_executions::final_context_id.eq(bind::opt_id(Some(context_id))),
            pipeline_executions::updated_at.eq(bind::ts(now)),
        ))
        .execute(conn)?;
    if let Some(previous) = previous {
        diesel::delete(contexts::table.find(bind::id(previous))).execute(conn)?;
    }
    record_event(
        conn,
        NewEvent::pipeline(pipeline_id, EventType::PipelineFinalContextSet, now)
            .data(event_data::pipeline_final_context_set(context_id, previous)),
    )?;
    Ok(context_id)
}
