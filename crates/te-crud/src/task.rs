//! Creating (one or many, all or nothing) and reading task executions.

use std::collections::BTreeSet;

use diesel::prelude::*;
use te_core::schema::{pipeline_executions, task_executions};
use te_core::{
    AnyConnection, DalError, EventType, NewEvent, NewTaskExecution, TaskExecution,
    TaskExecutionDal, bind, record_events, validate,
};
use uuid::Uuid;

/// Bound parameters per inserted task row (one per column).
const BINDS_PER_ROW: usize = 20;

/// Validates every row, then inserts them all with a `TaskCreated` event each
/// in one write transaction. A foreign-key violation becomes
/// [`DalError::NotFound`] naming a pipeline execution that does not exist.
pub(crate) async fn create_rows(
    dal: &TaskExecutionDal,
    new: Vec<NewTaskExecution>,
) -> Result<Vec<TaskExecution>, DalError> {
    if let Err(err) = validate_all(&new) {
        validate::discard(
            new.into_iter()
                .flat_map(|task| [task.trigger_rules, task.task_configuration]),
        );
        return Err(err);
    }
    let pipeline_ids: BTreeSet<Uuid> = new.iter().map(|n| n.pipeline_execution_id).collect();
    let now = te_core::now();
    let rows: Vec<TaskExecution> = new.into_iter().map(|n| n.into_row(now)).collect();
    let result = dal
        .write(move |conn| {
            insert_rows(conn, &rows)?;
            Ok(rows)
        })
        .await;
    match result {
        Err(err) if te_core::error::is_foreign_key_violation(&err) => {
            // The transaction is rolled back; find which pipeline is missing.
            let missing = dal
                .run(move |conn| missing_pipeline(conn, pipeline_ids))
                .await?;
            Err(missing.map_or(err, |id| DalError::not_found("pipeline execution", id)))
        }
        other => other,
    }
}

fn validate_all(new: &[NewTaskExecution]) -> Result<(), DalError> {
    for (index, task) in new.iter().enumerate() {
        task.validate().map_err(|err| match err {
            DalError::InvalidInput { field, reason } if new.len() > 1 => {
                DalError::invalid(field, format!("{reason} (row {index})"))
            }
            other => other,
        })?;
    }
    Ok(())
}

fn insert_rows(conn: &mut AnyConnection, rows: &[TaskExecution]) -> Result<(), DalError> {
    for chunk in rows.chunks(te_core::batch::rows_per_statement(BINDS_PER_ROW)) {
        let values = chunk.to_vec();
        te_core::on_backend!(conn, c => diesel::insert_into(task_executions::table)
            .values(values)
            .execute(c))?;
    }
    let events: Vec<NewEvent> = rows
        .iter()
        .map(|row| {
            NewEvent::task(
                row.pipeline_execution_id,
                row.id,
                EventType::TaskCreated,
                row.created_at,
            )
            .data(serde_json::json!({ "task_name": row.task_name, "status": row.status }))
        })
        .collect();
    record_events(conn, &events)?;
    Ok(())
}

fn missing_pipeline(
    conn: &mut AnyConnection,
    ids: BTreeSet<Uuid>,
) -> Result<Option<Uuid>, DalError> {
    let wanted: Vec<Uuid> = ids.into_iter().collect();
    let found: BTreeSet<Uuid> = pipeline_executions::table
        .filter(pipeline_executions::id.eq_any(te_core::bind::ids(&wanted)))
        .select(pipeline_executions::id)
        .load::<Uuid>(conn)?
        .into_iter()
        .collect();
    Ok(wanted.into_iter().find(|id| !found.contains(id)))
}

/// The task execution `task_id`, or [`DalError::NotFound`].
pub(crate) fn get(conn: &mut AnyConnection, task_id: Uuid) -> Result<TaskExecution, DalError> {
    task_executions::table
        .find(bind::id(task_id))
        .select(TaskExecution::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| DalError::not_found("task execution", task_id))
}

/// Every task execution of `pipeline_id`, ordered by `(created_at, id)`.
pub(crate) fn for_pipeline(
    conn: &mut AnyConnection,
    pipeline_id: Uuid,
) -> Result<Vec<TaskExecution>, DalError> {
    Ok(task_executions::table
        .filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)))
        .order((task_executions::created_at, task_executions::id))
        .select(TaskExecution::as_select())
        .load(conn)?)
}
