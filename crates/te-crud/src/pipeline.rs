//! Creating and reading pipeline executions (with their initial context).

use diesel::prelude::*;
use serde_json::{Value, json};
use te_core::schema::{contexts, pipeline_executions};
use te_core::{
    AnyConnection, DalError, EventType, NewEvent, NewPipelineExecution, PipelineExecution, bind,
    record_event,
};
use uuid::Uuid;

/// Inserts the pipeline execution, its initial context (unless absent or an
/// empty object) and its `PipelineCreated` event. Call inside a write
/// transaction, after `new.validate()`.
pub(crate) fn create(
    conn: &mut AnyConnection,
    mut new: NewPipelineExecution,
) -> Result<PipelineExecution, DalError> {
    let now = te_core::now();
    let context_id = match new.context.take() {
        Some(value) if !is_empty_object(&value) => Some(insert_context(conn, value, now)?),
        _ => None,
    };
    let row = new.into_row(context_id, now);
    diesel::insert_into(pipeline_executions::table)
        .values(row.clone())
        .execute(conn)?;
    record_event(
        conn,
        NewEvent {
            id: te_core::new_id(),
            pipeline_execution_id: row.id,
            task_execution_id: None,
            event_type: EventType::PipelineCreated,
            event_data: Some(json!({
                "pipeline_name": row.pipeline_name,
                "pipeline_version": row.pipeline_version,
            })),
            runner_id: None,
            created_at: now,
        },
    )?;
    Ok(row)
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(|map| map.is_empty())
}

fn insert_context(
    conn: &mut AnyConnection,
    value: Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Uuid, DalError> {
    let id = te_core::new_id();
    diesel::insert_into(contexts::table)
        .values((
            contexts::id.eq(bind::id(id)),
            contexts::value.eq(bind::json(value)),
            contexts::created_at.eq(bind::ts(now)),
            contexts::updated_at.eq(bind::ts(now)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// The pipeline execution `pipeline_id`, or [`DalError::NotFound`].
pub(crate) fn get(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<PipelineExecution, DalError> {
    pipeline_executions::table
        .find(bind::id(pipeline_id))
        .select(PipelineExecution::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| DalError::not_found("pipeline execution", pipeline_id))
}
