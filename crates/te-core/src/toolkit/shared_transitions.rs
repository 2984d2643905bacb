//! The transitions two operation crates perform, written once: the
//! completion (`mark_completed` in te-state, `complete_with_context` in
//! te-context), the promotion to `Ready` (`mark_ready_many` in te-state,
//! `complete_and_promote` in te-context) and the return of a task whose run
//! was lost (`reset_task_for_recovery` in te-state, the give-back of claimed
//! tasks nobody took in te-claiming). An operation crate never imports a
//! sibling, so what both apply lives here; every other legality rule lives
//! in the crate that applies it.

use serde_json::Value;
use uuid::Uuid;

use crate::data::any_connection::AnyConnection;
use crate::data::schema::task_executions;
use crate::data::{bind, event_data};
use crate::ground::clock::now;
use crate::ground::error::DalError;
use crate::ground::status::{EventType, SubStatus, TaskStatus};
use crate::toolkit::guard::{Holder, PipelineGuard};
use crate::toolkit::many::{Batch, finished, transition_batch, unclaimed};
use crate::toolkit::pipeline_lock::cancelled_pipeline_of;
use crate::toolkit::transition::{Outcome, Transition};
use diesel::ExpressionMethods;

/// `Running` → `Completed` of `task_id`, guarded by `runner` when given,
/// recorded as `TaskCompleted`: the completion shared by `mark_completed`
/// and `complete_with_context`. Apply it with
/// [`finished`](crate::toolkit::many::finished) as its changes.
pub fn completion(task_id: Uuid, runner: Option<Uuid>) -> Transition {
    Transition::new(task_id, &[TaskStatus::Running], Some(TaskStatus::Completed))
        .holder(Holder::Runner(runner))
        .event(EventType::TaskCompleted)
}

/// The statuses a task is made `Ready` from by `mark_ready` and its batch
/// forms: waiting for its dependencies, or already `Ready`.
pub const READY_FROM: &[TaskStatus] = &[TaskStatus::NotStarted, TaskStatus::Ready];

/// Makes each of `task_ids` (distinct) that is `NotStarted` or `Ready`
/// `Ready`, clearing its sub-status, with one `TaskReady` event each; the
/// others are left alone, and so is every task of a cancelled pipeline
/// execution (and, with `within`, of any pipeline but that one): the
/// condition is part of the `UPDATE`'s `WHERE` clause. Returns how many
/// changed: the promotion shared by `mark_ready_many` and
/// `complete_and_promote`. Call inside a write transaction.
pub fn promote(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    within: Option<Uuid>,
) -> Result<usize, DalError> {
    let changes = |_| task_executions::sub_status.eq(None::<SubStatus>);
    let batch = Batch {
        from: READY_FROM,
        to: TaskStatus::Ready,
        runner: None,
        guard: within.map_or(PipelineGuard::NotCancelled, PipelineGuard::NotCancelledIn),
    };
    transition_batch(conn, task_ids, batch, EventType::TaskReady, changes)
}

/// Makes `task_id`, whose run was lost, `Ready` again when it is in one of
/// `from` and the claim is held as `holder` says: `started_at`, sub-status
/// and claim cleared, event `RecoveryReset` (with `reset_data`, if any).
/// When its pipeline execution was cancelled meanwhile it becomes `Skipped`
/// instead, as the cancel skipped the others (nothing would ever claim it
/// `Ready`): `completed_at` now, the claim cleared, `skip_reason` in
/// `error_details` and in its `TaskSkipped` event. Either way
/// `recovery_attempts + 1` and `last_recovery_at` now. Call inside a write
/// transaction: the pipeline's row is read first (see
/// [`cancelled_pipeline_of`]).
pub fn requeue_lost(
    conn: &mut AnyConnection,
    task_id: Uuid,
    from: &'static [TaskStatus],
    holder: Holder,
    skip_reason: &str,
    reset_data: Option<Value>,
) -> Result<Outcome, DalError> {
    use task_executions as te;
    let cancelled = cancelled_pipeline_of(conn, task_id)?.is_some();
    let now = now();
    let recovered = (
        te::recovery_attempts.eq(te::recovery_attempts + 1),
        te::last_recovery_at.eq(bind::opt_ts(Some(now))),
    );
    let (to, event, data) = if cancelled {
        let data = event_data::reason(skip_reason);
        (TaskStatus::Skipped, EventType::TaskSkipped, Some(data))
    } else {
        (TaskStatus::Ready, EventType::RecoveryReset, reset_data)
    };
    let mut transition = Transition::new(task_id, from, Some(to))
        .holder(holder)
        .event(event);
    if let Some(data) = data {
        transition = transition.data(data);
    }
    if cancelled {
        let skipped = (finished(now), te::error_details.eq(skip_reason.to_owned()));
        transition.apply(conn, now, (recovered, skipped))
    } else {
        let ready = (te::started_at.eq(bind::opt_ts(None)), unclaimed());
        transition.apply(conn, now, (recovered, ready))
    }
}
