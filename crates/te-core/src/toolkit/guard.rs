//! The guards of a write of task rows: who must hold the task's claim, what
//! its pipeline execution must be, and the `WHERE` clause they make with the
//! statuses the write may start from. Every value in it is bound.

use diesel::prelude::*;
use diesel::sql_types::Bool;
use uuid::Uuid;

use crate::data::any_connection::MultiBackend;
use crate::data::bind;
use crate::data::schema::task_executions;
use crate::ground::status::TaskStatus;
use crate::sql::fragments;

/// Who must hold the task's runner claim for a write to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Anyone or no one: the claim is not checked.
    Any,
    /// Exactly this runner; with `None`, not checked (an unguarded call).
    Runner(Option<Uuid>),
    /// No runner, or this one (taking a claim).
    FreeOr(Uuid),
}

impl Holder {
    /// Whether a task held by `holder` passes this guard.
    pub(crate) fn admits(self, holder: Option<Uuid>) -> bool {
        match self {
            Holder::Any | Holder::Runner(None) => true,
            Holder::Runner(Some(runner)) => holder == Some(runner),
            Holder::FreeOr(runner) => holder.is_none() || holder == Some(runner),
        }
    }

    /// The runner to name in the event.
    pub(crate) fn runner(self) -> Option<Uuid> {
        match self {
            Holder::Any => None,
            Holder::Runner(runner) => runner,
            Holder::FreeOr(runner) => Some(runner),
        }
    }
}

/// What a guarded write requires of the task's pipeline execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineGuard {
    /// Nothing.
    Any,
    /// It is not `Cancelled`: a write that makes a task `Ready` (a
    /// cancelled pipeline never gets work again).
    NotCancelled,
    /// It is this pipeline execution and not `Cancelled`: the promotion of
    /// a completed task's dependents.
    NotCancelledIn(Uuid),
    /// A `Ready` task's pipeline is not held (paused or cancelled, see the
    /// `held_pipelines` table): a runner claim, which must not take a task
    /// that no claim would hand out. A `Running` task passes.
    ReadyNotHeld,
}

/// A boxed condition on `task_executions` rows.
pub(crate) type Condition =
    Box<dyn BoxableExpression<task_executions::table, MultiBackend, SqlType = Bool>>;

/// The `WHERE` clause of a guarded write: the task ids (`ids`, an
/// expression on `task_executions::id`), the statuses it may start from, the
/// holder guard, an optional lower bound on `max_attempts` and the
/// [`PipelineGuard`]; every value bound.
pub(crate) fn condition(
    ids: Condition,
    from: &[TaskStatus],
    holder: Holder,
    max_attempts_at_least: Option<i32>,
    guard: PipelineGuard,
) -> Condition {
    // `status = $a OR status = $b …`, not `eq_any`: on SQLite an `IN` list
    // keeps a statement out of diesel's prepared-statement cache.
    let mut statuses: Option<Condition> = None;
    for status in from.iter().copied() {
        let this = task_executions::status.eq(status);
        statuses = Some(match statuses {
            None => Box::new(this),
            Some(before) => Box::new(before.or(this)),
        });
    }
    let mut condition: Condition = match statuses {
        Some(statuses) => Box::new(ids.and(statuses)),
        // No status to start from: nothing matches.
        None => Box::new(ids.and(fragments::never())),
    };
    match holder {
        Holder::Any | Holder::Runner(None) => {}
        Holder::Runner(Some(runner)) => {
            condition = Box::new(condition.and(claimed_by_is(runner)));
        }
        Holder::FreeOr(runner) => {
            condition = Box::new(
                condition.and(
                    task_executions::claimed_by
                        .is_null()
                        .or(claimed_by_is(runner)),
                ),
            );
        }
    }
    if let Some(attempt) = max_attempts_at_least {
        condition = Box::new(condition.and(task_executions::max_attempts.ge(attempt)));
    }
    match guard {
        PipelineGuard::Any => {}
        PipelineGuard::NotCancelled => {
            condition = Box::new(condition.and(fragments::not_in_cancelled_pipeline()));
        }
        PipelineGuard::NotCancelledIn(pipeline_id) => {
            condition = Box::new(
                condition
                    .and(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
                    .and(fragments::not_in_cancelled_pipeline()),
            );
        }
        PipelineGuard::ReadyNotHeld => {
            condition = Box::new(condition.and(fragments::ready_not_held()));
        }
    }
    condition
}

/// `claimed_by = runner` (false, not NULL, for an unclaimed task).
pub(crate) fn claimed_by_is(
    runner: Uuid,
) -> diesel::dsl::Eq<diesel::dsl::AssumeNotNull<task_executions::claimed_by>, bind::IdParam> {
    task_executions::claimed_by
        .assume_not_null()
        .eq(bind::id(runner))
}
