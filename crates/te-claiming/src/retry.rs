//! Retry scheduling: a `Running` or `Failed` task made `Ready` again for a
//! later attempt, and the query for retries that are due. Plain functions on
//! one connection.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use te_core::schema::task_executions::dsl as t;
use te_core::toolkit::event_data;
use te_core::toolkit::{Transition, bind, now, refuse_requeue_if_cancelled, unclaimed};
use te_core::{AnyConnection, DalError, EventType, TaskExecution, TaskStatus};
use uuid::Uuid;

/// The statuses a retry may be scheduled from.
const RETRYABLE: &[TaskStatus] = &[TaskStatus::Running, TaskStatus::Failed];

/// Schedules the retry; `new_attempt` was checked to be at least 1. Call
/// inside a write transaction.
pub(crate) fn schedule_retry(
    conn: &mut AnyConnection,
    task_id: Uuid,
    retry_at: DateTime<Utc>,
    new_attempt: i32,
) -> Result<(), DalError> {
    // A cancelled pipeline execution runs nothing more: no retry for its
    // tasks. Its row stays locked until the retry commits, so that a cancel
    // either commits first (and is seen here) or waits for the retry (and
    // then skips the task it made `Ready`).
    refuse_requeue_if_cancelled(conn, task_id)?;
    Transition::new(task_id, RETRYABLE, Some(TaskStatus::Ready))
        .max_attempts_at_least(new_attempt)
        .event(EventType::RetryScheduled)
        .data(event_data::retry_scheduled(retry_at, new_attempt))
        .apply(
            conn,
            now(),
            (
                t::retry_at.eq(bind::opt_ts(Some(retry_at))),
                t::attempt.eq(new_attempt),
                t::started_at.eq(bind::opt_ts(None)),
                t::completed_at.eq(bind::opt_ts(None)),
                t::error_details.eq(None::<String>),
                unclaimed(),
            ),
        )
        .map(drop)
}

/// `Ready` tasks whose `retry_at` has passed, earliest `retry_at` first (then by `id`).
pub(crate) fn ready_for_retry(conn: &mut AnyConnection) -> Result<Vec<TaskExecution>, DalError> {
    Ok(t::task_executions
        .filter(t::status.eq(TaskStatus::Ready))
        .filter(t::retry_at.le(bind::opt_ts(Some(now()))))
        .order((t::retry_at.asc(), t::id.asc()))
        .select(TaskExecution::as_select())
        .load(conn)?)
}
