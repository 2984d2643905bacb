//! Guarded writes of one task row: the compare-and-set `UPDATE` whose
//! `WHERE` names the statuses a change may start from (and the runner that
//! must hold the claim), the audit event written with it, and why a write
//! that matched no row was refused.
//!
//! Every transition of te-state and every runner operation of te-claiming is
//! one [`Transition`]: fencing lives in the `WHERE` clause, never in a read
//! followed by a write.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use serde_json::Value;
use uuid::Uuid;

use crate::data::any_connection::{AnyConnection, MultiBackend};
use crate::data::bind;
use crate::data::models::NewEvent;
use crate::data::schema::{pipeline_executions, task_executions};
use crate::ground::error::{DalError, PipelineOperation};
use crate::ground::status::{EventType, PipelineStatus, TaskStatus};
use crate::sql::guarded_update::{GuardedUpdate, PipelineOf};
use crate::toolkit::guard::{Holder, PipelineGuard, condition};
use crate::toolkit::rows::record_event;

/// What a guarded write did when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The row matched the guard and was changed; the event was recorded.
    Applied {
        /// The pipeline execution of the changed task.
        pipeline_id: Uuid,
    },
    /// The runner named by the guard does not hold the task's claim: nothing
    /// was written. Runner-guarded operations report this as `false` (or as
    /// `ClaimLost` / `AlreadyClaimed`), whatever the task's status is now.
    Fenced,
}

impl Outcome {
    /// True for [`Outcome::Applied`].
    pub fn applied(self) -> bool {
        matches!(self, Outcome::Applied { .. })
    }
}

/// A changeset with the status and `updated_at` a transition sets.
type WithStatus<C> = (
    Option<diesel::dsl::Eq<task_executions::status, TaskStatus>>,
    Option<diesel::dsl::Eq<task_executions::updated_at, bind::TsParam>>,
    C,
);

/// One guarded write of one task: where it may start, what it sets, who must
/// hold the claim, and the audit event that records it.
///
/// ```text
/// Transition::new(task_id, &[Running], Some(Completed))
///     .holder(Holder::Runner(runner_id))
///     .event(EventType::TaskCompleted)
///     .apply(conn, now, finished(now))?
/// ```
#[derive(Debug, Clone)]
pub struct Transition {
    task_id: Uuid,
    from: &'static [TaskStatus],
    to: Option<TaskStatus>,
    holder: Holder,
    event: Option<EventType>,
    data: Option<Value>,
    touch: bool,
    max_attempts_at_least: Option<i32>,
    pipeline_guard: PipelineGuard,
}

impl Transition {
    /// A write of `task_id` allowed from `from`, setting the status to `to`
    /// (`None`: the status stays), bumping `updated_at`, with no claim guard
    /// and no event until [`Transition::event`] names one.
    pub fn new(task_id: Uuid, from: &'static [TaskStatus], to: Option<TaskStatus>) -> Self {
        Transition {
            task_id,
            from,
            to,
            holder: Holder::Any,
            event: None,
            data: None,
            touch: true,
            max_attempts_at_least: None,
            pipeline_guard: PipelineGuard::Any,
        }
    }

    /// Also requires what `guard` says of the task's pipeline execution, in
    /// the same `WHERE` clause. A task refused by it: for
    /// [`PipelineGuard::NotCancelled`] (and `NotCancelledIn`, of its own
    /// pipeline) [`DalError::IllegalPipelineTransition`] from `Cancelled`;
    /// for [`PipelineGuard::ReadyNotHeld`] [`Outcome::Fenced`] (the task is
    /// not the runner's to take); for another pipeline than the one named
    /// [`Outcome::Fenced`] too.
    pub fn pipeline_guard(mut self, guard: PipelineGuard) -> Self {
        self.pipeline_guard = guard;
        self
    }

    /// Requires the claim to be held as `holder` says; the event names its runner.
    pub fn holder(mut self, holder: Holder) -> Self {
        self.holder = holder;
        self
    }

    /// Records an event of `event_type` when the write applies.
    pub fn event(mut self, event_type: EventType) -> Self {
        self.event = Some(event_type);
        self
    }

    /// Attaches details to the event.
    pub fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Leaves `updated_at` alone (a heartbeat is not a change of the task).
    pub fn untouched(mut self) -> Self {
        self.touch = false;
        self
    }

    /// Also requires `max_attempts >= attempt`; a task that allows fewer is
    /// refused with [`DalError::InvalidInput`] naming `new_attempt`.
    pub fn max_attempts_at_least(mut self, attempt: i32) -> Self {
        self.max_attempts_at_least = Some(attempt);
        self
    }

    /// Applies `changes` (with the status, and `updated_at = now` unless
    /// [`Transition::untouched`]) if the task is in one of `from`, passes the
    /// holder guard and any other requirement, and records the event: one
    /// compare-and-set `UPDATE … RETURNING`, then the event's `INSERT`. Call
    /// it inside a write transaction so that both commit together.
    ///
    /// When no row matched, the task is read to say why: [`Outcome::Fenced`]
    /// when a named runner does not hold the claim (whatever the status),
    /// else [`DalError::NotFound`], [`DalError::IllegalTransition`] or
    /// [`DalError::InvalidInput`]; nothing is written in any of these cases.
    pub fn apply<C>(
        &self,
        conn: &mut AnyConnection,
        now: DateTime<Utc>,
        changes: C,
    ) -> Result<Outcome, DalError>
    where
        C: AsChangeset<Target = task_executions::table> + Clone,
        C::Changeset: QueryFragment<MultiBackend>,
    {
        // On PostgreSQL another transaction may change the row between the
        // update and the read that explains a miss; the update is then
        // simply tried again against the row as it is now.
        for _ in 0..3 {
            if let Some(pipeline_id) = self.apply_if_allowed(conn, now, changes.clone())? {
                return Ok(Outcome::Applied { pipeline_id });
            }
            if let Some(refusal) = self.refusal(conn)? {
                return refusal;
            }
        }
        Err(DalError::Contended {
            task_id: self.task_id,
        })
    }

    /// The status, `updated_at` and `changes`, as one changeset.
    fn changeset<C>(&self, now: DateTime<Utc>, changes: C) -> WithStatus<C> {
        (
            self.to.map(|to| task_executions::status.eq(to)),
            self.touch
                .then(|| task_executions::updated_at.eq(bind::ts(now))),
            changes,
        )
    }

    /// The event this write records, once its pipeline is known.
    fn new_event(&self, pipeline_id: Uuid, now: DateTime<Utc>) -> Option<NewEvent> {
        let event_type = self.event?;
        let mut event =
            NewEvent::task(pipeline_id, self.task_id, event_type, now).runner(self.holder.runner());
        event.event_data = self.data.clone();
        Some(event)
    }

    /// Applies the write as [`Transition::apply`] does when the task passes
    /// every guard and returns its pipeline; otherwise writes nothing and
    /// returns `None`, without reading why (for batch operations, which
    /// count what they changed): the compare-and-set `UPDATE … RETURNING`
    /// and the event's `INSERT`.
    ///
    /// On PostgreSQL they are ONE statement (a data-modifying CTE): atomic on
    /// its own, so that a transition costs one round trip and one commit,
    /// with or without a surrounding transaction, and whose text depends
    /// only on the transition's shape, so that each connection prepares it
    /// once (a `GuardedUpdate`). On SQLite they are two statements, inside
    /// the caller's write transaction.
    pub fn apply_if_allowed<C>(
        &self,
        conn: &mut AnyConnection,
        now: DateTime<Utc>,
        changes: C,
    ) -> Result<Option<Uuid>, DalError>
    where
        C: AsChangeset<Target = task_executions::table>,
        C::Changeset: QueryFragment<MultiBackend>,
    {
        // PostgreSQL writes the event in the update's own statement; SQLite,
        // which has no data-modifying CTE, with its own insert below.
        let in_statement = matches!(conn, AnyConnection::Postgres(_));
        let updated = GuardedUpdate {
            changeset: self.changeset(now, changes).as_changeset(),
            condition: condition(
                Box::new(task_executions::id.eq(bind::id(self.task_id))),
                self.from,
                self.holder,
                self.max_attempts_at_least,
                self.pipeline_guard,
            ),
            event: self.new_event(Uuid::nil(), now).filter(|_| in_statement),
            returning: std::marker::PhantomData::<PipelineOf>,
        }
        .get_result::<Uuid>(conn)
        .optional()?;
        if in_statement {
            return Ok(updated);
        }
        if let Some(pipeline_id) = updated
            && let Some(event) = self.new_event(pipeline_id, now)
        {
            record_event(conn, event)?;
        }
        Ok(updated)
    }

    /// Why the update matched no row, read from the task as it is now;
    /// `None` when the task now passes every guard (it changed meanwhile).
    fn refusal(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<Option<Result<Outcome, DalError>>, DalError> {
        let current = task_executions::table
            .find(bind::id(self.task_id))
            .select((
                task_executions::status,
                task_executions::claimed_by,
                task_executions::max_attempts,
                task_executions::pipeline_execution_id,
            ))
            .first::<(TaskStatus, Option<Uuid>, i32, Uuid)>(conn)
            .optional()?;
        let Some((status, holder, max_attempts, pipeline_id)) = current else {
            return Ok(Some(Err(DalError::task_not_found(self.task_id))));
        };
        if !self.holder.admits(holder) {
            return Ok(Some(Ok(Outcome::Fenced)));
        }
        if !self.from.contains(&status) {
            return Ok(Some(Err(DalError::IllegalTransition {
                task_id: self.task_id,
                from: status,
                to: self.to.unwrap_or(status),
            })));
        }
        if let Some(attempt) = self.max_attempts_at_least
            && max_attempts < attempt
        {
            return Ok(Some(Err(DalError::invalid(
                "new_attempt",
                format!("must be at most max_attempts ({max_attempts}), got {attempt}"),
            ))));
        }
        self.pipeline_refusal(conn, status, pipeline_id)
    }

    /// Why the [`PipelineGuard`] refused a task that passes every other
    /// guard; `None` when it does not refuse it (now).
    fn pipeline_refusal(
        &self,
        conn: &mut AnyConnection,
        status: TaskStatus,
        pipeline_id: Uuid,
    ) -> Result<Option<Result<Outcome, DalError>>, DalError> {
        let wanted = match self.pipeline_guard {
            PipelineGuard::Any => return Ok(None),
            PipelineGuard::NotCancelledIn(wanted) if wanted != pipeline_id => {
                return Ok(Some(Ok(Outcome::Fenced)));
            }
            PipelineGuard::ReadyNotHeld if status != TaskStatus::Ready => return Ok(None),
            guard => guard,
        };
        let (pipeline_status, paused) = pipeline_executions::table
            .find(bind::id(pipeline_id))
            .select((pipeline_executions::status, pipeline_executions::paused))
            .first::<(PipelineStatus, bool)>(conn)?;
        let cancelled = pipeline_status == PipelineStatus::Cancelled;
        Ok(match wanted {
            PipelineGuard::ReadyNotHeld if cancelled || paused => Some(Ok(Outcome::Fenced)),
            PipelineGuard::NotCancelled | PipelineGuard::NotCancelledIn(_) if cancelled => {
                Some(Err(DalError::IllegalPipelineTransition {
                    pipeline_id,
                    from: PipelineStatus::Cancelled,
                    to: PipelineStatus::Running,
                    operation: PipelineOperation::ReadyTask,
                }))
            }
            _ => None,
        })
    }
}
