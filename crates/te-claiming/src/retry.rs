//! Retry scheduling: a `Running` or `Failed` task made `Ready` again for a
//! later attempt, and the query for retries that are due.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use te_core::schema::task_executions::dsl as t;
use te_core::{
    DalError, EventType, NewEvent, SubStatus, TaskExecution, TaskExecutionDal, TaskStatus, bind,
    validate,
};
use uuid::Uuid;

/// The statuses a retry may be scheduled from.
const RETRYABLE: [TaskStatus; 2] = [TaskStatus::Running, TaskStatus::Failed];

pub(crate) async fn schedule_retry(
    dal: &TaskExecutionDal,
    task_id: Uuid,
    retry_at: DateTime<Utc>,
    new_attempt: i32,
) -> Result<(), DalError> {
    validate::at_least_one("new_attempt", new_attempt)?;
    validate::instant("retry_at", retry_at)?;
    dal.write(move |conn| {
        let now = te_core::now();
        // Compare-and-set: the expected statuses and the attempt bound are in
        // the WHERE clause.
        let pipeline_id = diesel::update(
            t::task_executions
                .filter(t::id.eq(bind::id(task_id)))
                .filter(t::status.eq_any(RETRYABLE))
                .filter(t::max_attempts.ge(new_attempt)),
        )
        .set((
            t::status.eq(TaskStatus::Ready),
            t::sub_status.eq(None::<SubStatus>),
            t::retry_at.eq(bind::opt_ts(Some(retry_at))),
            t::attempt.eq(new_attempt),
            t::started_at.eq(bind::opt_ts(None)),
            t::completed_at.eq(bind::opt_ts(None)),
            t::error_details.eq(None::<String>),
            t::claimed_by.eq(bind::opt_id(None)),
            t::heartbeat_at.eq(bind::opt_ts(None)),
            t::updated_at.eq(bind::ts(now)),
        ))
        .returning(t::pipeline_execution_id)
        .get_result::<Uuid>(conn)
        .optional()?;
        let Some(pipeline_id) = pipeline_id else {
            return Err(refused(conn, task_id, new_attempt));
        };
        te_core::record_event(
            conn,
            NewEvent::task(pipeline_id, task_id, EventType::RetryScheduled, now).data(json!({
                "retry_at": retry_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "attempt": new_attempt,
            })),
        )?;
        Ok(())
    })
    .await
}

/// Why the guarded update matched no row: no such task, a status a retry
/// cannot start from, or an attempt beyond `max_attempts`.
fn refused(conn: &mut te_core::AnyConnection, task_id: Uuid, new_attempt: i32) -> DalError {
    match t::task_executions
        .find(bind::id(task_id))
        .select((t::status, t::max_attempts))
        .first::<(TaskStatus, i32)>(conn)
        .optional()
    {
        Ok(Some((status, _))) if !RETRYABLE.contains(&status) => DalError::IllegalTransition {
            task_id,
            from: status,
            to: TaskStatus::Ready,
        },
        Ok(Some((_, max_attempts))) => DalError::invalid(
            "new_attempt",
            format!("must be at most max_attempts ({max_attempts}), got {new_attempt}"),
        ),
        Ok(None) => DalError::not_found("task execution", task_id),
        Err(err) => err.into(),
    }
}

pub(crate) async fn get_ready_for_retry(
    dal: &TaskExecutionDal,
) -> Result<Vec<TaskExecution>, DalError> {
    dal.run(|conn| {
        let now = te_core::now();
        Ok(t::task_executions
            .filter(t::status.eq(TaskStatus::Ready))
            .filter(t::retry_at.le(bind::opt_ts(Some(now))))
            .order((t::retry_at.asc(), t::id.asc()))
            .select(TaskExecution::as_select())
            .load(conn)?)
    })
    .await
}
