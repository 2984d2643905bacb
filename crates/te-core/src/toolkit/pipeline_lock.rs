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
//! ([`PipelineLock::Cancel`], `FOR NO KEY UPDATE`) and the retry reads it
//! with a lock that conflicts ([`PipelineLock::Requeue`], `FOR SHARE`): one
//! of the two waits for the other to commit, and then sees what it did.
//! Neither mode conflicts with the `FOR KEY SHARE` lock of an event's
//! foreign-key check, so claims, which never read pipeline rows, never wait
//! on either. SQLite's write transaction holds the database's write lock, so
//! there the plain read is enough.

use diesel::prelude::*;
use uuid::Uuid;

use crate::connection::AnyConnection;
use crate::error::DalError;
use crate::models::PipelineStatus;
use crate::schema::{pipeline_executions as pe, task_executions as te};
use crate::toolkit::bind;

/// Which side of a cancel a transaction is on; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineLock {
    /// The cancel itself: `FOR NO KEY UPDATE` on PostgreSQL.
    Cancel,
    /// A write that makes a task `Ready` again (a retry, a recovery, a reset
    /// of the retry state): `FOR SHARE` on PostgreSQL, so that several of
    /// them never wait on each other.
    Requeue,
}

/// The status and paused flag of pipeline execution `pipeline_id`, its row
/// locked in `lock`'s mode until the transaction ends (PostgreSQL); `None`
/// when it does not exist. Call it inside a write transaction, before the
/// transaction reads or writes the pipeline's tasks.
pub fn lock_pipeline(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    lock: PipelineLock,
) -> Result<Option<(PipelineStatus, bool)>, DalError> {
    let query = || {
        pe::table
            .find(bind::id(pipeline_id))
            .select((pe::status, pe::paused))
    };
    Ok(match conn {
        AnyConnection::Postgres(c) => match lock {
            PipelineLock::Cancel => query().for_no_key_update().first(c).optional()?,
            PipelineLock::Requeue => query().for_share().first(c).optional()?,
        },
        AnyConnection::Sqlite(c) => query().first(c).optional()?,
    })
}

/// The pipeline execution of task `task_id` and that pipeline's status, its
/// row locked as [`PipelineLock::Requeue`] until the transaction ends;
/// `None` when the task does not exist. Call it inside a write transaction,
/// before the write that makes the task `Ready` again.
pub fn lock_pipeline_of_task(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<Option<(Uuid, PipelineStatus)>, DalError> {
    let pipeline_id = te::table
        .find(bind::id(task_id))
        .select(te::pipeline_execution_id)
        .first::<Uuid>(conn)
        .optional()?;
    let Some(pipeline_id) = pipeline_id else {
        return Ok(None);
    };
    Ok(lock_pipeline(conn, pipeline_id, PipelineLock::Requeue)?
        .map(|(status, _)| (pipeline_id, status)))
}
