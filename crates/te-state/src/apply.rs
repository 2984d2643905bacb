//! Running one guarded transition: the compare-and-set `UPDATE`, its audit
//! event in the same write transaction, and the answer when no row matched.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use serde_json::Value;
use te_core::schema::task_executions;
use te_core::transition::{compare_and_set, fenced_or_refused};
use te_core::{
    DalError, EventType, MultiBackend, NewEvent, TaskExecutionDal, TaskStatus, record_event,
};
use uuid::Uuid;

/// One transition of one task: where it may start, where it goes, and the
/// event that records it.
pub(crate) struct Move {
    task_id: Uuid,
    from: &'static [TaskStatus],
    to: TaskStatus,
    event: EventType,
    runner: Option<Uuid>,
    data: Option<Value>,
}

impl Move {
    /// `task_id` from one of `from` to `to`, recorded as `event`.
    pub(crate) fn new(
        task_id: Uuid,
        from: &'static [TaskStatus],
        to: TaskStatus,
        event: EventType,
    ) -> Self {
        Move {
            task_id,
            from,
            to,
            event,
            runner: None,
            data: None,
        }
    }

    /// Requires `runner` (when `Some`) to hold the claim, and names it in the event.
    pub(crate) fn runner(mut self, runner: Option<Uuid>) -> Self {
        self.runner = runner;
        self
    }

    /// Attaches details to the event.
    pub(crate) fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Sets the status to `to`, `updated_at` to `now` and applies `changes`
    /// if the task is in one of `from` (and held by the runner, if any), and
    /// records the event, in one write transaction. `Ok(true)` when applied;
    /// `Ok(false)` when the runner guard refused a task that could otherwise
    /// move; else [`DalError::IllegalTransition`] or [`DalError::NotFound`].
    pub(crate) async fn apply<C>(
        self,
        dal: &TaskExecutionDal,
        now: DateTime<Utc>,
        changes: C,
    ) -> Result<bool, DalError>
    where
        C: AsChangeset<Target = task_executions::table> + Clone + Send + 'static,
        C::Changeset: QueryFragment<MultiBackend>,
    {
        dal.write(move |conn| {
            let changed = compare_and_set(
                conn,
                &[self.task_id],
                self.from,
                self.to,
                self.runner,
                now,
                changes,
            )?;
            match changed.first() {
                Some(&(_, pipeline_id)) => {
                    let mut event = NewEvent::task(pipeline_id, self.task_id, self.event, now)
                        .runner(self.runner);
                    event.event_data = self.data;
                    record_event(conn, event)?;
                    Ok(true)
                }
                None => fenced_or_refused(conn, self.task_id, self.from, self.to, self.runner)
                    .map(|()| false),
            }
        })
        .await
    }
}
