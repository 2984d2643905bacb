//! The pipeline row lock that orders a cancel against every write that makes
//! one of the pipeline's tasks `Ready` again.
//!
//! A cancel skips the tasks that are `NotStarted` or `Ready` when it looks at
//! them; a retry or a recovery moves a task from a status the cancel leaves
//! alone (`Running`, `Failed`) to `Ready`. On PostgreSQL, under `READ
//! COMMITTED`, the two can interleave so that the retry reads the pipeline
//! before the cancel commits and writes the task after the cancel looked at
//! it: the task ends `Ready` in a cancelled pipeline, where nothing claims
//! it. So the cancel locks the pipeline row before it looks at any task
//! ([`lock_pipeline_for_cancel`], `FOR NO KEY UPDATE`) and the retry reads
//! it with a lock that conflicts ([`cancelled_pipeline_of`], `FOR SHARE`, so
//! that retries never wait on each other): one of the two waits for the
//! other to commit, and then sees what it did.
//! The creation of tasks reads their pipelines `FOR SHARE` too
//! ([`lock_pipelines_for_new_tasks`]): the foreign-key check of the insert
//! takes only `FOR KEY SHARE`, which does not conflict with the cancel's
//! lock, so without it a creation racing with a cancel could add `Ready`
//! tasks after the cancel looked at the pipeline's tasks.
//! Neither mode conflicts with the `FOR KEY SHARE` lock of an event's
//! foreign-key check, so claims, which never read pipeline rows, never wait
//! on either. SQLite's write transaction holds the database's write lock, so
//! there the plain read is enough.

use diesel::prelude::*;
use uuid::Uuid;

use crate::data::any_connection::AnyConnection;
use crate::data::schema::{pipeline_executions as pe, task_executions as te};
use crate::ground::error::{DalError, PipelineOperation};
use crate::ground::status::PipelineStatus;
use crate::toolkit::bind;

/// The status of pipeline execution `pipeline_id`, its row locked for the
/// cancel (`FOR NO KEY UPDATE`, PostgreSQL) until the transaction ends;
/// `None` when it does not exist. Call it inside the cancel's write
/// transaction, before it reads or writes the pipeline's tasks.
pub fn lock_pipeline_for_cancel(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Option<PipelineStatus>, DalError> {
    let query = || pe::table.find(bind::id(pipeline_id)).select(pe::status);
    Ok(match conn {
        AnyConnection::Postgres(c) => query().for_no_key_update().first(c).optional()?,
        AnyConnection::Sqlite(c) => query().first(c).optional()?,
    })
}

/// The pipeline execution of task `task_id` when it is cancelled, `None`
/// otherwise (or when the task does not exist). One statement: the
/// pipeline's row, found through the task, is read `FOR SHARE`
/// (PostgreSQL) until the transaction ends. Call it inside a
/// write transaction, before the write that makes the task `Ready` again.
pub fn cancelled_pipeline_of(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<Option<Uuid>, DalError> {
    let pipeline_of_task = te::table
        .find(bind::id(task_id))
        .select(te::pipeline_execution_id);
    let query = || {
        pe::table
            .filter(pe::id.eq_any(pipeline_of_task))
            .select((pe::id, pe::status))
    };
    let row: Option<(Uuid, PipelineStatus)> = match conn {
        AnyConnection::Postgres(c) => query().for_share().first(c).optional()?,
        AnyConnection::Sqlite(c) => query().first(c).optional()?,
    };
    Ok(row.and_then(|(id, status)| (status == PipelineStatus::Cancelled).then_some(id)))
}

/// Refuses a write that would make task `task_id` `Ready` again (a retry, a
/// reset of its retry state) when its pipeline execution is cancelled:
/// [`DalError::IllegalPipelineTransition`] from `Cancelled` to `Running`,
/// since the write would make the pipeline run again. Locks the pipeline's
/// row as [`cancelled_pipeline_of`] does.
pub fn refuse_requeue_if_cancelled(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<(), DalError> {
    match cancelled_pipeline_of(conn, task_id)? {
        Some(pipeline_id) => Err(DalError::IllegalPipelineTransition {
            pipeline_id,
            from: PipelineStatus::Cancelled,
            to: PipelineStatus::Running,
            operation: PipelineOperation::ReadyTask,
        }),
        None => Ok(()),
    }
}

/// Locks the pipeline executions `pipeline_ids` (sorted, distinct) for the
/// creation of tasks in them and refuses the creation when one of them is
/// cancelled ([`DalError::IllegalPipelineTransition`],
/// [`PipelineOperation::CreateTasks`]) or does not exist
/// ([`DalError::NotFound`]). One statement: the rows are read `FOR SHARE`
/// (PostgreSQL) until the transaction ends, so a creation and a cancel of
/// the same pipeline run one after the other. Call it inside the creation's
/// write transaction, before the insert.
pub fn lock_pipelines_for_new_tasks(
    conn: &mut AnyConnection,
    pipeline_ids: &[Uuid],
) -> Result<(), DalError> {
    let rows: Vec<(Uuid, PipelineStatus)> = match pipeline_ids {
        // One pipeline, as nearly every creation: a statement of fixed text.
        [one] => {
            let query = || pe::table.find(bind::id(*one)).select((pe::id, pe::status));
            match conn {
                AnyConnection::Postgres(c) => query().for_share().load(c)?,
                AnyConnection::Sqlite(c) => query().load(c)?,
            }
        }
        many => {
            let mut rows = Vec::with_capacity(many.len());
            for chunk in many.chunks(crate::toolkit::batch::MAX_IN_LIST) {
                let query = || {
                    pe::table
                        .filter(pe::id.eq_any(bind::ids(chunk)))
                        .select((pe::id, pe::status))
                };
                let found: Vec<(Uuid, PipelineStatus)> = match conn {
                    AnyConnection::Postgres(c) => query().for_share().load(c)?,
                    AnyConnection::Sqlite(c) => query().load(c)?,
                };
                rows.extend(found);
            }
            rows
        }
    };
    if let Some((pipeline_id, _)) = rows
        .iter()
        .find(|(_, status)| *status == PipelineStatus::Cancelled)
    {
        return Err(DalError::IllegalPipelineTransition {
            pipeline_id: *pipeline_id,
            from: PipelineStatus::Cancelled,
            to: PipelineStatus::Running,
            operation: PipelineOperation::CreateTasks,
        });
    }
    match pipeline_ids
        .iter()
        .find(|id| !rows.iter().any(|(found, _)| found == *id))
    {
        Some(missing) => Err(DalError::pipeline_not_found(*missing)),
        None => Ok(()),
    }
}
