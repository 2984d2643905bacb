//! The transitions of [`crate::TaskTransitions`], each a plain function on
//! one connection: a [`Transition`] (the compare-and-set and its event) and
//! the columns it sets. Call them inside a write transaction.

use diesel::prelude::*;
use te_core::schema::task_executions as te;
use te_core::toolkit::event_data;
use te_core::toolkit::{
    Batch, Holder, Outcome, PipelineGuard, READY_FROM, Transition, bind, completion, finished, now,
    refuse_requeue_if_cancelled, requeue_lost, transition_batch, unclaimed,
};
use te_core::{AnyConnection, DalError, EventType, SubStatus, TaskStatus};
use uuid::Uuid;

use TaskStatus::{Completed, Failed, NotStarted, Ready, Running, Skipped};

const START_FROM: &[TaskStatus] = &[Ready, Running];
const RUNNING: &[TaskStatus] = &[Running];
const FAIL_FROM: &[TaskStatus] = &[NotStarted, Ready, Running];
const SKIP_FROM: &[TaskStatus] = &[NotStarted, Ready];
const RECOVER_FROM: &[TaskStatus] = &[Running, Ready];

pub(crate) fn mark_ready(conn: &mut AnyConnection, task_id: Uuid) -> Result<(), DalError> {
    Transition::new(task_id, READY_FROM, Some(Ready))
        .pipeline_guard(PipelineGuard::NotCancelled)
        .event(EventType::TaskReady)
        .apply(conn, now(), te::sub_status.eq(None::<SubStatus>))
        .map(drop)
}

pub(crate) fn mark_started(conn: &mut AnyConnection, task_id: Uuid) -> Result<(), DalError> {
    let now = now();
    let started_at = diesel::dsl::case_when(te::started_at.is_null(), bind::opt_ts(Some(now)))
        .otherwise(te::started_at);
    Transition::new(task_id, START_FROM, Some(Running))
        .event(EventType::TaskStarted)
        .apply(conn, now, te::started_at.eq(started_at))
        .map(drop)
}

pub(crate) fn mark_completed(
    conn: &mut AnyConnection,
    task_id: Uuid,
    runner_id: Option<Uuid>,
) -> Result<bool, DalError> {
    let now = now();
    completion(task_id, runner_id)
        .apply(conn, now, finished(now))
        .map(|outcome| outcome.applied())
}

pub(crate) fn mark_completed_many(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    runner_id: Option<Uuid>,
) -> Result<usize, DalError> {
    let batch = Batch {
        from: RUNNING,
        to: Completed,
        runner: runner_id,
        guard: PipelineGuard::Any,
    };
    transition_batch(conn, task_ids, batch, EventType::TaskCompleted, finished)
}

/// Applies `failure`, a transition to `Failed`: `completed_at` now, the
/// claim cleared, `details` in `error_details` and `error` in `last_error`.
/// What `mark_failed` and `mark_abandoned` write.
fn fail(
    conn: &mut AnyConnection,
    failure: Transition,
    error: &str,
    details: String,
) -> Result<Outcome, DalError> {
    let now = now();
    let changes = (
        finished(now),
        te::error_details.eq(details),
        te::last_error.eq(error.to_owned()),
    );
    failure.apply(conn, now, changes)
}

pub(crate) fn mark_failed(
    conn: &mut AnyConnection,
    task_id: Uuid,
    error: &str,
    runner_id: Option<Uuid>,
) -> Result<bool, DalError> {
    let failure = Transition::new(task_id, FAIL_FROM, Some(Failed))
        .holder(Holder::Runner(runner_id))
        .event(EventType::TaskFailed)
        .data(event_data::task_failed(error));
    fail(conn, failure, error, error.to_owned()).map(|outcome| outcome.applied())
}

pub(crate) fn mark_skipped(
    conn: &mut AnyConnection,
    task_id: Uuid,
    reason: &str,
) -> Result<(), DalError> {
    let now = now();
    Transition::new(task_id, SKIP_FROM, Some(Skipped))
        .event(EventType::TaskSkipped)
        .data(event_data::reason(reason))
        .apply(
            conn,
            now,
            (finished(now), te::error_details.eq(reason.to_owned())),
        )
        .map(drop)
}

pub(crate) fn mark_abandoned(
    conn: &mut AnyConnection,
    task_id: Uuid,
    reason: &str,
) -> Result<(), DalError> {
    let abandonment = Transition::new(task_id, FAIL_FROM, Some(Failed))
        .event(EventType::TaskAbandoned)
        .data(event_data::reason(reason));
    let details = te_core::TaskExecution::abandoned_details(reason);
    fail(conn, abandonment, reason, details).map(drop)
}

pub(crate) fn set_sub_status(
    conn: &mut AnyConnection,
    task_id: Uuid,
    sub_status: Option<SubStatus>,
) -> Result<(), DalError> {
    Transition::new(task_id, RUNNING, Some(Running))
        .event(EventType::SubStatusChanged)
        .data(event_data::sub_status_changed(sub_status))
        .apply(conn, now(), te::sub_status.eq(sub_status))
        .map(drop)
}

/// What a task of a cancelled pipeline execution is skipped with when its
/// lost runner's claim is recovered.
pub(crate) const SKIPPED_AFTER_CANCEL: &str =
    "its pipeline execution was cancelled while it ran, and its runner was lost";

pub(crate) fn reset_retry_state(conn: &mut AnyConnection, task_id: Uuid) -> Result<(), DalError> {
    refuse_requeue_if_cancelled(conn, task_id)?;
    let changes = (
        te::attempt.eq(1),
        te::started_at.eq(bind::opt_ts(None)),
        te::completed_at.eq(bind::opt_ts(None)),
        te::retry_at.eq(bind::opt_ts(None)),
        te::error_details.eq(None::<String>),
        te::last_error.eq(None::<String>),
        unclaimed(),
    );
    Transition::new(task_id, TaskStatus::ALL, Some(Ready))
        .event(EventType::RetryStateReset)
        .apply(conn, now(), changes)
        .map(drop)
}

pub(crate) fn reset_task_for_recovery(
    conn: &mut AnyConnection,
    task_id: Uuid,
) -> Result<(), DalError> {
    requeue_lost(
        conn,
        task_id,
        RECOVER_FROM,
        Holder::Any,
        SKIPPED_AFTER_CANCEL,
        None,
    )
    .map(drop)
}
