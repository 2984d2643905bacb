//! Status look-ups: one task's, many tasks' of one pipeline, every task's of many pipelines.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::batch::MAX_IN_LIST;
use te_core::toolkit::{bind, find_row};
use te_core::{AnyConnection, DalError, TaskStatus};
use uuid::Uuid;

/// The status of task `task_name` of `pipeline_id`; [`DalError::NotFound`]
/// (entity `"task execution"`, key the name) when there is no such task.
pub fn task_status(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    task_name: &str,
) -> Result<TaskStatus, DalError> {
    let row = task_executions::table
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .filter(task_executions::task_name.eq(task_name))
        .select(task_executions::status);
    find_row(conn, row, || DalError::task_name_not_found(task_name))
}

/// From how many distinct names [`task_statuses_batch`] first tries reading
/// the whole pipeline instead of looking each name up.
const WHOLE_PIPELINE_FROM: usize = 256;

/// The status of each named task of `pipeline_id` that exists; names of no
/// task are absent from the map. None for an empty input.
///
/// Many names of a pipeline that has not many more tasks than that (at most
/// twice as many) are answered by reading the pipeline's tasks once, through
/// its index, with one bound parameter; otherwise by one `IN` query per
/// [`MAX_IN_LIST`] distinct names.
pub fn task_statuses_batch(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    task_names: Vec<String>,
) -> Result<HashMap<String, TaskStatus>, DalError> {
    let wanted: HashSet<&str> = task_names.iter().map(String::as_str).collect();
    if wanted.len() >= WHOLE_PIPELINE_FROM {
        let most = 2 * wanted.len();
        let rows = task_executions::table
            .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
            .select((task_executions::task_name, task_executions::status))
            .limit(i64::try_from(most + 1).unwrap_or(i64::MAX))
            .load::<(String, TaskStatus)>(conn)?;
        if rows.len() <= most {
            return Ok(rows
                .into_iter()
                .filter(|(name, _)| wanted.contains(name.as_str()))
                .collect());
        }
    }
    let distinct: Vec<String> = wanted.into_iter().map(str::to_owned).collect();
    task_statuses_by_name(conn, pipeline_id, &distinct)
}

/// The status of each of the distinct `task_names` of `pipeline_id` that
/// names a task, looked up by name: one `IN` query per [`MAX_IN_LIST`] names.
pub fn task_statuses_by_name(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    task_names: &[String],
) -> Result<HashMap<String, TaskStatus>, DalError> {
    let mut statuses = HashMap::with_capacity(task_names.len());
    for chunk in task_names.chunks(MAX_IN_LIST) {
        let rows = task_executions::table
            .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
            .filter(task_executions::task_name.eq_any(chunk))
            .select((task_executions::task_name, task_executions::status))
            .load::<(String, TaskStatus)>(conn)?;
        statuses.extend(rows);
    }
    Ok(statuses)
}

/// For every id of `pipeline_ids` (each one a key, with an empty map when it
/// has no tasks or does not exist), the status of each of its tasks by name.
/// One query per [`MAX_IN_LIST`] distinct ids, grouped in memory; none for
/// an empty input.
pub fn all_task_statuses_for_pipelines(
    conn: &mut AnyConnection,
    pipeline_ids: Vec<Uuid>,
) -> Result<HashMap<Uuid, HashMap<String, TaskStatus>>, DalError> {
    let pipeline_ids = super::shared::unique(pipeline_ids);
    let mut by_pipeline: HashMap<Uuid, HashMap<String, TaskStatus>> = pipeline_ids
        .iter()
        .map(|id| (*id, HashMap::new()))
        .collect();
    for chunk in pipeline_ids.chunks(MAX_IN_LIST) {
        let rows = task_executions::table
            .filter(task_executions::pipeline_execution_id.eq_any(bind::ids(chunk)))
            .select((
                task_executions::pipeline_execution_id,
                task_executions::task_name,
                task_executions::status,
            ))
            .load::<(Uuid, String, TaskStatus)>(conn)?;
        for (pipeline_id, name, status) in rows {
            by_pipeline
                .entry(pipeline_id)
                .or_default()
                .insert(name, status);
        }
    }
    Ok(by_pipeline)
}
