//! Loading the saved contexts of many tasks of one pipeline execution at once.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::Value;
use te_core::schema::{contexts, task_execution_metadata};
use te_core::toolkit::batch::{MAX_IN_LIST, unique};
use te_core::toolkit::bind;
use te_core::{AnyConnection, DalError, TaskExecutionMetadata};
use uuid::Uuid;

use super::reading::reading;

/// The saved context of each of `task_names` of `pipeline_id` that has one;
/// other names are absent. One joined query (metadata ⋈ contexts) per
/// [`MAX_IN_LIST`] distinct names, none for an empty input. A context that
/// cannot be decoded fails the whole call ([`DalError::InvalidData`]).
pub fn task_contexts_batch(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    task_names: &[String],
) -> Result<HashMap<String, Value>, DalError> {
    let task_names = unique(task_names.iter());
    let mut found = HashMap::with_capacity(task_names.len());
    for chunk in task_names.chunks(MAX_IN_LIST) {
        let rows = task_execution_metadata::table
            .inner_join(contexts::table)
            .filter(task_execution_metadata::pipeline_execution_id.eq(bind::id(pipeline_id)))
            .filter(task_execution_metadata::task_name.eq_any(chunk))
            .select((task_execution_metadata::task_name, contexts::value))
            .load::<(String, Value)>(conn)
            .map_err(reading("task context"))?;
        found.extend(rows);
    }
    Ok(found)
}

/// The metadata row of each of `task_names` of `pipeline_id` that has one,
/// with its context (`None` when the row links none), in the order the names
/// are given. One `LEFT JOIN` query per [`MAX_IN_LIST`] distinct names, none
/// for an empty input.
pub fn dependency_metadata_with_contexts(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    task_names: &[String],
) -> Result<Vec<(TaskExecutionMetadata, Option<Value>)>, DalError> {
    let task_names = unique(task_names.iter());
    let mut rows = Vec::with_capacity(task_names.len());
    for chunk in task_names.chunks(MAX_IN_LIST) {
        rows.extend(
            task_execution_metadata::table
                .left_join(contexts::table)
                .filter(task_execution_metadata::pipeline_execution_id.eq(bind::id(pipeline_id)))
                .filter(task_execution_metadata::task_name.eq_any(chunk))
                .select((
                    TaskExecutionMetadata::as_select(),
                    contexts::value.nullable(),
                ))
                .load::<(TaskExecutionMetadata, Option<Value>)>(conn)
                .map_err(reading("task context"))?,
        );
    }
    let position: HashMap<&str, usize> = task_names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    rows.sort_by_key(|(metadata, _)| position.get(metadata.task_name.as_str()).copied());
    Ok(rows)
}
