//! Guarded writes of many task rows: one compare-and-set `UPDATE` per chunk
//! of ids with an audit event for each row it changed, and the changesets
//! that leaving `Running` and finishing set.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use uuid::Uuid;

use crate::data::any_connection::{AnyConnection, MultiBackend};
use crate::data::bind;
use crate::data::models::NewEvent;
use crate::data::schema::task_executions;
use crate::ground::error::DalError;
use crate::ground::status::{EventType, SubStatus, TaskStatus};
use crate::sql::guarded_update::{GuardedUpdate, IdAndPipeline};
use crate::toolkit::batch::MAX_IN_LIST;
use crate::toolkit::guard::{Holder, PipelineGuard, condition};
use crate::toolkit::transition::Transition;

/// `ids` sorted, each once: the rows a batch transition locks, in one order
/// whoever calls.
pub fn distinct(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// True when a batch transition of `task_ids` is one statement on
/// PostgreSQL (a single task), so that it can run without a surrounding
/// transaction.
pub fn is_one_statement(task_ids: &[Uuid]) -> bool {
    task_ids.len() == 1
}

/// What a batch transition requires and sets: the statuses it may start
/// from, the status it sets, the runner that must hold each claim (when
/// `Some`) and what each task's pipeline must be.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// The statuses a task may start from.
    pub from: &'static [TaskStatus],
    /// The status it sets.
    pub to: TaskStatus,
    /// The runner that must hold each task's claim, when `Some`.
    pub runner: Option<Uuid>,
    /// What each task's pipeline execution must be.
    pub guard: PipelineGuard,
}

/// Moves each of `task_ids` that passes `batch` (its status one of
/// `batch.from`, its claim held by `batch.runner` when `Some`, its pipeline
/// passing `batch.guard`) to `batch.to`, setting `changes(now)`
/// ([`compare_and_set`]), and records an `event_type` event naming the
/// runner for each task changed, in id order; returns how many changed.
/// Call inside a write transaction, with `task_ids` [`distinct`].
///
/// A single task goes through the single-task transition instead, the same
/// guard and event as one statement on PostgreSQL (see
/// [`is_one_statement`]).
pub fn transition_batch<C>(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    batch: Batch,
    event_type: EventType,
    changes: impl FnOnce(DateTime<Utc>) -> C,
) -> Result<usize, DalError>
where
    C: AsChangeset<Target = task_executions::table> + Clone,
    C::Changeset: QueryFragment<MultiBackend>,
{
    let now = crate::toolkit::now();
    let runner_id = batch.runner;
    if is_one_statement(task_ids) {
        let changed = Transition::new(task_ids[0], batch.from, Some(batch.to))
            .holder(Holder::Runner(runner_id))
            .pipeline_guard(batch.guard)
            .event(event_type)
            .apply_if_allowed(conn, now, changes(now))?;
        return Ok(usize::from(changed.is_some()));
    }
    let mut changed = compare_and_set(conn, task_ids, batch, now, changes(now))?;
    changed.sort_unstable();
    let events: Vec<NewEvent> = changed
        .iter()
        .map(|&(task_id, pipeline_id)| {
            NewEvent::task(pipeline_id, task_id, event_type, now).runner(runner_id)
        })
        .collect();
    crate::toolkit::rows::record_events(conn, &events)?;
    Ok(changed.len())
}

/// Compare-and-set of many tasks: moves each of `task_ids` whose status is
/// one of `batch.from` (and, when `batch.runner` is `Some`, whose
/// `claimed_by` is that runner, and whose pipeline passes `batch.guard`) to
/// status `batch.to`, with `updated_at = now` and `changes`; returns
/// `(id, pipeline_execution_id)` of every row changed. One `UPDATE …
/// RETURNING` per [`MAX_IN_LIST`] ids. Call inside a write transaction, with
/// the changes' audit events.
pub fn compare_and_set<C>(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    batch: Batch,
    now: DateTime<Utc>,
    changes: C,
) -> Result<Vec<(Uuid, Uuid)>, DalError>
where
    C: AsChangeset<Target = task_executions::table> + Clone,
    C::Changeset: QueryFragment<MultiBackend>,
{
    let mut changed = Vec::new();
    for chunk in task_ids.chunks(MAX_IN_LIST) {
        let rows = GuardedUpdate::<_, _, IdAndPipeline> {
            changeset: (
                task_executions::status.eq(batch.to),
                task_executions::updated_at.eq(bind::ts(now)),
                changes.clone(),
            )
                .as_changeset(),
            condition: condition(
                Box::new(task_executions::id.eq_any(bind::ids(chunk))),
                batch.from,
                Holder::Runner(batch.runner),
                None,
                batch.guard,
            ),
            event: None,
            returning: std::marker::PhantomData,
        }
        .get_results::<(Uuid, Uuid)>(conn)?;
        changed.extend(rows);
    }
    Ok(changed)
}

/// What [`unclaimed`] sets, as a named type: a plain tuple of assignments,
/// which diesel lets an `UPDATE … WHERE` carry.
pub type Unclaimed = (
    diesel::dsl::Eq<task_executions::sub_status, Option<SubStatus>>,
    diesel::dsl::Eq<task_executions::claimed_by, bind::OptIdParam>,
    diesel::dsl::Eq<task_executions::heartbeat_at, bind::OptTsParam>,
);

/// What [`finished`] sets, as a named type (see [`Unclaimed`]).
pub type Finished = (
    diesel::dsl::Eq<task_executions::completed_at, bind::OptTsParam>,
    Unclaimed,
);

/// The changeset that clears a task's runner claim and its sub-status: what
/// leaving `Running` (or losing the runner) sets.
pub fn unclaimed() -> Unclaimed {
    (
        task_executions::sub_status.eq(None::<SubStatus>),
        task_executions::claimed_by.eq(bind::opt_id(None)),
        task_executions::heartbeat_at.eq(bind::opt_ts(None)),
    )
}

/// What every terminal status sets: `completed_at = now`, and no claim.
pub fn finished(now: DateTime<Utc>) -> Finished {
    (
        task_executions::completed_at.eq(bind::opt_ts(Some(now))),
        unclaimed(),
    )
}
