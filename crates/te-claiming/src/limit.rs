//! A pipeline's `max_running` outside the batch claim: the runner claim of
//! one `Ready` task (which reserves it, and a reservation counts toward the
//! limit), and the instant the next delayed task becomes due (the timer of
//! `wait_for_ready`). Plain functions on one connection.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use te_core::schema::pipeline_limits as pl;
use te_core::schema::task_executions::dsl as t;
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, TaskStatus};
use uuid::Uuid;

/// The `max_running` of the pipeline of task `task_id`, if it has one
/// (`None` too for an unknown task). `max_running` never changes, so this
/// may be read outside the transaction that relies on it.
pub(crate) fn limit_of_task(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<Option<i32>, DalError> {
    Ok(t::task_executions
        .inner_join(pl::table.on(pl::pipeline_id.eq(t::pipeline_execution_id)))
        .filter(t::id.eq(bind::id(task_id)))
        .select(pl::max_running)
        .first::<i32>(conn)
        .optional()?)
}

/// True when a runner claim of task `task_id` would put its pipeline over
/// `max_running`: the task is `Ready` and not reserved (so the claim would
/// add to the count) and the pipeline's running and reserved tasks already
/// reach the limit. Call it inside the runner claim's write transaction: on
/// PostgreSQL it locks the task's row, then the pipeline's `pipeline_limits`
/// row (the lock every claim of a limited pipeline takes, in that order:
/// task rows first), and counts under that lock; on SQLite the write lock
/// already orders it with every claim.
pub(crate) fn runner_claim_overfills(
    conn: &mut AnyConnection,
    task_id: Uuid,
    max_running: i32,
) -> Result<bool, DalError> {
    let task = || {
        t::task_executions.find(bind::id(task_id)).select((
            t::status,
            t::claimed_by,
            t::pipeline_execution_id,
        ))
    };
    let row: Option<(TaskStatus, Option<Uuid>, Uuid)> = match conn {
        AnyConnection::Postgres(c) => task().for_update().first(c).optional()?,
        AnyConnection::Sqlite(c) => task().first(c).optional()?,
    };
    let Some((TaskStatus::Ready, None, pipeline)) = row else {
        return Ok(false);
    };
    let limit = || pl::table.find(bind::id(pipeline)).select(pl::pipeline_id);
    match conn {
        AnyConnection::Postgres(c) => limit().for_update().first::<Uuid>(c).optional()?,
        AnyConnection::Sqlite(c) => limit().first::<Uuid>(c).optional()?,
    };
    Ok(occupied(conn, pipeline)? >= i64::from(max_running))
}

/// How many tasks of `pipeline` are `Running` or `Ready` and reserved by a
/// runner: what its `max_running` bounds.
pub(crate) fn occupied(conn: &mut AnyConnection, pipeline: Uuid) -> Result<i64, DalError> {
    let running: i64 = t::task_executions
        .filter(t::pipeline_execution_id.eq(bind::id(pipeline)))
        .filter(t::status.eq(TaskStatus::Running))
        .count()
        .get_result(conn)?;
    let reserved: i64 = t::task_executions
        .filter(t::pipeline_execution_id.eq(bind::id(pipeline)))
        .filter(t::status.eq(TaskStatus::Ready))
        .filter(t::claimed_by.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(running + reserved)
}

/// The earliest instant after `now` at which a `Ready` task of `queues`
/// (`None`: any queue) that is not claimable yet, for its `run_after` or its
/// retry's `retry_at`, may become due; `None` when there is none. It may
/// be earlier than the true instant (a task waiting for both is counted at
/// the earlier), never later. Two look-ups of partial indexes that hold
/// delayed ready tasks only.
pub(crate) fn next_due(
    conn: &mut AnyConnection,
    queues: &Option<Vec<String>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DalError> {
    // The first due instant after now of one column, in the queues named.
    macro_rules! earliest {
        ($column:expr) => {{
            let due = t::task_executions
                .filter(t::status.eq(TaskStatus::Ready))
                .filter($column.gt(bind::opt_ts(Some(now))))
                .select($column)
                .order($column.asc());
            match queues {
                Some(queues) => due
                    .filter(t::queue.eq_any(queues.clone()))
                    .first::<Option<DateTime<Utc>>>(conn)
                    .optional()?,
                None => due.first::<Option<DateTime<Utc>>>(conn).optional()?,
            }
            .flatten()
        }};
    }
    let run_after = earliest!(t::run_after);
    let retry_at = earliest!(t::retry_at);
    Ok(match (run_after, retry_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}
