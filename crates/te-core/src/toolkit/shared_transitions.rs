//! The transitions two operation crates perform, written once: the
//! completion (`mark_completed` in te-state, `complete_with_context` in
//! te-context) and the promotion to `Ready` (`mark_ready_many` in te-state,
//! `complete_and_promote` in te-context). An operation crate never imports a
//! sibling, so what both apply lives here; every other legality rule lives
//! in the crate that applies it.

use uuid::Uuid;

use crate::data::any_connection::AnyConnection;
use crate::data::schema::task_executions;
use crate::ground::error::DalError;
use crate::ground::status::{EventType, SubStatus, TaskStatus};
use crate::toolkit::guard::{Holder, PipelineGuard};
use crate::toolkit::many::{Batch, transition_batch};
use crate::toolkit::transition::Transition;
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
