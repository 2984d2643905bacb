//! The input context of a task: its pipeline's initial context, or its
//! dependencies' contexts merged in order.

use diesel::prelude::*;
use serde_json::{Map, Value};
use te_core::schema::{contexts, pipeline_executions};
use te_core::toolkit::{bind, require_row};
use te_core::{AnyConnection, DalError};
use uuid::Uuid;

use super::batch::task_contexts_batch;
use super::reading::reading;
use crate::merge_context_values;

/// The initial context of pipeline execution `pipeline_id` (`{}` when it
/// has none); [`DalError::NotFound`] for an unknown one. One query.
pub fn initial_context(conn: &mut AnyConnection, pipeline_id: Uuid) -> Result<Value, DalError> {
    pipeline_executions::table
        .left_join(contexts::table)
        .filter(pipeline_executions::id.eq(bind::id(pipeline_id)))
        .select(contexts::value.nullable())
        .first::<Option<Value>>(conn)
        .optional()
        .map_err(reading("pipeline context"))?
        .map(|context| context.unwrap_or_else(|| Value::Object(Map::new())))
        .ok_or_else(|| DalError::pipeline_not_found(pipeline_id))
}

/// The input context of a task of `pipeline_id` whose dependencies are
/// `dependency_task_names`: with none, the pipeline's initial context (see
/// [`initial_context`]); else the saved contexts of the dependencies merged
/// with [`merge_context_values`] in the order the names are given (a
/// dependency without a saved context adds nothing), starting from `{}`.
///
/// The contexts are read in one query; only when none is found is a second
/// query made, to report an unknown pipeline execution as
/// [`DalError::NotFound`]. A stored context that cannot be decoded is
/// [`DalError::InvalidData`], never a partial result.
pub fn dependency_context(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
    dependency_task_names: &[String],
) -> Result<Value, DalError> {
    if dependency_task_names.is_empty() {
        return initial_context(conn, pipeline_id);
    }
    let found = task_contexts_batch(conn, pipeline_id, dependency_task_names)?;
    if found.is_empty() {
        let pipeline = pipeline_executions::table
            .find(bind::id(pipeline_id))
            .select(pipeline_executions::id);
        require_row(conn, pipeline, DalError::pipeline_not_found(pipeline_id))?;
    }
    let mut merged = Value::Object(Map::new());
    for name in dependency_task_names {
        if let Some(context) = found.get(name) {
            merged = merge_context_values(&merged, context);
        }
    }
    Ok(merged)
}
