//! Retention: deleting finished pipeline executions with every row that
//! belongs to them, one short transaction per batch.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use te_core::schema::{
    contexts, execution_events, pipeline_executions as pe, task_execution_metadata, task_executions,
};
use te_core::toolkit::batch::{MAX_IN_LIST, unique};
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, PruneOutcome, TaskStatus};
use uuid::Uuid;

/// Most pipeline executions one batch deletes, whatever the caller asks:
/// their ids fit one `IN` list.
pub(crate) const MAX_BATCH: usize = 1_000;

/// The pipeline executions a prune takes next: terminal, finished before
/// `finished_before`, with no task still `Running` (a cancelled pipeline's
/// running tasks are left to finish), oldest finished first.
pub(crate) fn candidates(
    conn: &mut AnyConnection,
    finished_before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Uuid>, DalError> {
    let running = task_executions::table
        .filter(task_executions::pipeline_execution_id.eq(pe::id))
        .filter(task_executions::status.eq(TaskStatus::Running))
        .select(task_executions::id);
    Ok(pe::table
        .filter(crate::sql::terminal_pipeline())
        .filter(pe::completed_at.lt(bind::opt_ts(Some(finished_before))))
        .filter(diesel::dsl::not(diesel::dsl::exists(running)))
        .order((pe::completed_at.asc(), pe::id.asc()))
        .limit(i64::try_from(limit.min(MAX_BATCH)).unwrap_or(1))
        .select(pe::id)
        .load::<Uuid>(conn)?)
}

/// Deletes one batch of at most `batch_size` (and [`MAX_BATCH`]) pipeline
/// executions finished before `finished_before`, with their events, task
/// metadata, tasks, and initial, final and task output contexts; returns the
/// counts (all zero when nothing is left). Call inside a write transaction.
pub(crate) fn prune_batch(
    conn: &mut AnyConnection,
    finished_before: DateTime<Utc>,
    batch_size: usize,
) -> Result<PruneOutcome, DalError> {
    let ids = candidates(conn, finished_before, batch_size)?;
    if ids.is_empty() {
        return Ok(PruneOutcome::default());
    }
    let pipeline_contexts = pe::table
        .filter(pe::id.eq_any(bind::ids(&ids)))
        .select((pe::context_id, pe::final_context_id))
        .load::<(Option<Uuid>, Option<Uuid>)>(conn)?;
    let output_contexts = task_execution_metadata::table
        .filter(task_execution_metadata::pipeline_execution_id.eq_any(bind::ids(&ids)))
        .select(task_execution_metadata::context_id)
        .load::<Option<Uuid>>(conn)?;
    let context_ids = unique(
        pipeline_contexts
            .into_iter()
            .flat_map(|(initial, last)| [initial, last])
            .chain(output_contexts)
            .flatten(),
    );
    let events = diesel::delete(
        execution_events::table
            .filter(execution_events::pipeline_execution_id.eq_any(bind::ids(&ids))),
    )
    .execute(conn)?;
    diesel::delete(
        task_execution_metadata::table
            .filter(task_execution_metadata::pipeline_execution_id.eq_any(bind::ids(&ids))),
    )
    .execute(conn)?;
    let tasks = diesel::delete(
        task_executions::table
            .filter(task_executions::pipeline_execution_id.eq_any(bind::ids(&ids))),
    )
    .execute(conn)?;
    let pipelines =
        diesel::delete(pe::table.filter(pe::id.eq_any(bind::ids(&ids)))).execute(conn)?;
    let mut deleted_contexts = 0;
    for chunk in context_ids.chunks(MAX_IN_LIST) {
        deleted_contexts +=
            diesel::delete(contexts::table.filter(contexts::id.eq_any(bind::ids(chunk))))
                .execute(conn)?;
    }
    Ok(PruneOutcome {
        pipelines,
        tasks,
        contexts: deleted_contexts,
        events,
    })
}
