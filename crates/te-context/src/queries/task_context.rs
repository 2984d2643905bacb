//! A task's output context: saving it with its metadata row, loading it back.

use diesel::prelude::*;
use serde_json::Value;
use te_core::schema::{contexts, task_execution_metadata, task_executions};
use te_core::toolkit::event_data;
use te_core::toolkit::{NewEvent, bind};
use te_core::{AnyConnection, DalError, EventType, TaskExecutionMetadata};
use uuid::Uuid;

use super::reading::reading;
use te_core::toolkit::{Outcome, completion, finished, insert_context};

/// The pipeline execution and name of task `task_id`, with the task's row
/// locked until the transaction ends, so that two saves of one task's
/// context run one after the other. PostgreSQL takes a row lock
/// (`FOR UPDATE`); SQLite's write transaction (`BEGIN IMMEDIATE`) already
/// holds the database's write lock. [`DalError::NotFound`] for an unknown task.
fn lock_task(conn: &mut AnyConnection, task_id: Uuid) -> Result<(Uuid, String), DalError> {
    let query = || {
        task_executions::table.find(bind::id(task_id)).select((
            task_executions::pipeline_execution_id,
            task_executions::task_name,
        ))
    };
    let row = match conn {
        AnyConnection::Postgres(c) => query().for_update().first::<(Uuid, String)>(c).optional()?,
        AnyConnection::Sqlite(c) => query().first::<(Uuid, String)>(c).optional()?,
    };
    row.ok_or_else(|| DalError::task_not_found(task_id))
}

/// Stores `value` (a JSON object) as the output context of task `task_id`
/// and upserts the task's metadata row, with a `ContextSaved` event; returns
/// the context's id. Call it inside a write transaction.
///
/// A second save replaces the first in place: the existing context row is
/// updated (same id), so no context is left orphaned, and the task keeps
/// exactly one metadata row. [`DalError::NotFound`] for an unknown task.
pub fn save_task_context(
    conn: &mut AnyConnection,
    task_id: Uuid,
    value: &Value,
) -> Result<Uuid, DalError> {
    let (pipeline_id, task_name) = lock_task(conn, task_id)?;
    let now = te_core::toolkit::now();
    let metadata = task_execution_metadata::table
        .filter(task_execution_metadata::task_execution_id.eq(bind::id(task_id)))
        .select((
            task_execution_metadata::id,
            task_execution_metadata::context_id,
        ))
        .first::<(Uuid, Option<Uuid>)>(conn)
        .optional()?;

    // Update the task's current context in place when it has one.
    let mut context_id = None;
    if let Some((_, Some(current))) = metadata {
        let updated = diesel::update(contexts::table.find(bind::id(current)))
            .set((
                contexts::value.eq(bind::json(value.clone())),
                contexts::updated_at.eq(bind::ts(now)),
            ))
            .execute(conn)?;
        if updated == 1 {
            context_id = Some(current);
        }
    }
    let context_id = match context_id {
        Some(id) => id,
        None => insert_context(conn, value, now)?,
    };

    match metadata {
        Some((metadata_id, _)) => {
            diesel::update(task_execution_metadata::table.find(bind::id(metadata_id)))
                .set((
                    task_execution_metadata::context_id.eq(bind::opt_id(Some(context_id))),
                    task_execution_metadata::task_name.eq(&task_name),
                    task_execution_metadata::updated_at.eq(bind::ts(now)),
                ))
                .execute(conn)?;
        }
        None => {
            diesel::insert_into(task_execution_metadata::table)
                .values(TaskExecutionMetadata {
                    id: te_core::toolkit::new_id(),
                    task_execution_id: task_id,
                    pipeline_execution_id: pipeline_id,
                    task_name,
                    context_id: Some(context_id),
                    created_at: now,
                    updated_at: now,
                })
                .execute(conn)?;
        }
    }

    te_core::toolkit::record_event(
        conn,
        NewEvent::task(pipeline_id, task_id, EventType::ContextSaved, now)
            .data(event_data::context_saved(context_id)),
    )?;
    Ok(context_id)
}

/// Completes `task_id` (guarded by `runner`) and saves `value` as its
/// output, in the caller's write transaction; returns the task's pipeline
/// execution, or `None`, with nothing written, when the runner does not
/// hold the claim.
///
/// On PostgreSQL a task's first output (no metadata row yet) is written by
/// one statement: the completion's update has locked the task's row, so no
/// other save of it can run in between.
pub fn complete_with_context(
    conn: &mut AnyConnection,
    task_id: Uuid,
    runner: Option<Uuid>,
    value: &Value,
) -> Result<Option<Uuid>, DalError> {
    let now = te_core::toolkit::now();
    let Outcome::Applied { pipeline_id } =
        completion(task_id, runner).apply(conn, now, finished(now))?
    else {
        return Ok(None);
    };
    if let AnyConnection::Postgres(pg) = conn
        && crate::sql::save_first_context(pg, task_id, value, now)?
    {
        return Ok(Some(pipeline_id));
    }
    save_task_context(conn, task_id, value)?;
    Ok(Some(pipeline_id))
}

/// The saved output context of task `task_id`, `None` when none was saved;
/// [`DalError::NotFound`] for an unknown task. One query: the task `LEFT
/// JOIN` its metadata `LEFT JOIN` its context.
pub fn load_task_context(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<Option<Value>, DalError> {
    task_executions::table
        .left_join(
            task_execution_metadata::table
                .on(task_execution_metadata::task_execution_id.eq(task_executions::id)),
        )
        .left_join(
            contexts::table.on(task_execution_metadata::context_id.eq(contexts::id.nullable())),
        )
        .filter(task_executions::id.eq(bind::id(task_id)))
        .select(contexts::value.nullable())
        .first::<Option<Value>>(conn)
        .optional()
        .map_err(reading("task context"))?
        .ok_or_else(|| DalError::task_not_found(task_id))
}
