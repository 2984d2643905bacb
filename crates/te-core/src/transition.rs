//! Shared pieces of guarded status changes: the current time, new ids, the
//! compare-and-set of tasks, and why a compare-and-set matched no row.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::DalError;
use crate::connection::AnyConnection;
use crate::models::TaskStatus;
use crate::schema::task_executions;

/// Now, truncated to the microsecond: what both backends store, so a value
/// written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new time-ordered (version 7) UUID: rows created later sort later.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Compare-and-set of many tasks: moves each of `task_ids` whose status is
/// one of `from` (and, when `runner` is `Some`, whose `claimed_by` is that
/// runner) to status `to`, with `updated_at = now` and `changes`; returns
/// `(id, pipeline_execution_id)` of every row changed. One `UPDATE … RETURNING` per [`crate::batch::MAX_IN_LIST`]
/// ids. Call inside a write transaction, with the changes' audit events.
pub fn compare_and_set<C>(
    conn: &mut AnyConnection,
    task_ids: &[Uuid],
    from: &[TaskStatus],
    to: TaskStatus,
    runner: Option<Uuid>,
    now: DateTime<Utc>,
    changes: C,
) -> Result<Vec<(Uuid, Uuid)>, DalError>
where
    C: AsChangeset<Target = task_executions::table> + Clone,
    C::Changeset: diesel::query_builder::QueryFragment<crate::MultiBackend>,
{
    let mut changed = Vec::new();
    for chunk in task_ids.chunks(crate::batch::MAX_IN_LIST) {
        let target = task_executions::table
            .filter(task_executions::id.eq_any(crate::bind::ids(chunk)))
            .filter(task_executions::status.eq_any(from.to_vec()))
            .filter(
                task_executions::claimed_by
                    .eq(crate::bind::opt_id(runner))
                    .or(crate::bind::Bind::<diesel::sql_types::Bool, bool>::new(
                        runner.is_none(),
                    )),
            );
        let rows = diesel::update(target)
            .set((
                task_executions::status.eq(to),
                task_executions::updated_at.eq(crate::bind::ts(now)),
                changes.clone(),
            ))
            .returning((task_executions::id, task_executions::pipeline_execution_id))
            .get_results::<(Uuid, Uuid)>(conn)?;
        changed.extend(rows);
    }
    Ok(changed)
}

/// Why a (possibly runner-guarded) compare-and-set of one task towards `to`
/// changed nothing: `Ok(())` when the task still is in one of `from` but
/// `runner` does not hold its claim (the fence held: the caller reports
/// `false`); else [`DalError::IllegalTransition`] from its current status, or
/// [`DalError::NotFound`] when there is no such task. Call inside the
/// transaction of the update.
pub fn fenced_or_refused(
    conn: &mut AnyConnection,
    task_id: Uuid,
    from: &[TaskStatus],
    to: TaskStatus,
    runner: Option<Uuid>,
) -> Result<(), DalError> {
    let current = task_executions::table
        .find(crate::bind::id(task_id))
        .select((task_executions::status, task_executions::claimed_by))
        .first::<(TaskStatus, Option<Uuid>)>(conn)
        .optional()?;
    match (current, runner) {
        (Some((status, holder)), Some(runner))
            if from.contains(&status) && holder != Some(runner) =>
        {
            Ok(())
        }
        (Some((from, _)), _) => Err(DalError::IllegalTransition { task_id, from, to }),
        (None, _) => Err(DalError::not_found("task execution", task_id)),
    }
}
