//! Creating (one or many, all or nothing) and reading task executions.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use te_core::schema::{pipeline_executions, task_executions};
use te_core::sql_types::{DbJson, DbUuid, UtcTimestamp};
use te_core::toolkit::event_data;
use te_core::toolkit::{
    NewEvent, bind, find_row, insert_tasks, lock_pipelines_for_new_tasks, new_id, record_events,
    statement,
};
use te_core::{
    AnyConnection, DalError, EventType, NewTaskExecution, PipelineOperation, PipelineStatus,
    TaskExecution,
};
use uuid::Uuid;

use crate::sql::{POSTGRES_CREATE_TASK_SQL, POSTGRES_CREATE_TASKS_SQL};

/// Checks every row; the error names the field at fault (and its row, for
/// more than one).
pub(crate) fn validate_all(new: &[NewTaskExecution]) -> Result<(), DalError> {
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

/// Inserts `rows` with a `TaskCreated` event each. Call inside a write
/// transaction, after [`validate_all`].
pub(crate) fn insert(conn: &mut AnyConnection, rows: &[TaskExecution]) -> Result<(), DalError> {
    insert_tasks(conn, rows)?;
    let events: Vec<NewEvent> = rows
        .iter()
        .map(|row| {
            NewEvent::task(
                row.pipeline_execution_id,
                row.id,
                EventType::TaskCreated,
                row.created_at,
            )
            .data(event_data::task_created(&row.task_name, row.status))
        })
        .collect();
    record_events(conn, &events)
}

/// What [`POSTGRES_CREATE_TASK_SQL`] answers.
#[derive(Debug, QueryableByName)]
struct Created {
    #[diesel(sql_type = Nullable<Text>)]
    pipeline_status: Option<String>,
    #[diesel(sql_type = BigInt)]
    inserted: i64,
}

/// Creates `row` (a new row, from [`NewTaskExecution::into_row`]) with its
/// `TaskCreated` event, after locking its pipeline for the creation of tasks
/// and refusing a cancelled or missing one (see
/// [`lock_pipelines_for_new_tasks`]).
///
/// PostgreSQL: one statement ([`POSTGRES_CREATE_TASK_SQL`]), atomic on its
/// own; run it without a transaction. SQLite: the lock's read, the insert
/// and the event, inside the caller's write transaction.
pub(crate) fn create_one(conn: &mut AnyConnection, row: &TaskExecution) -> Result<(), DalError> {
    let AnyConnection::Postgres(pg) = conn else {
        lock_pipelines_for_new_tasks(conn, &[row.pipeline_execution_id])?;
        return insert(conn, std::slice::from_ref(row));
    };
    let created = statement(POSTGRES_CREATE_TASK_SQL)
        .bind::<DbUuid, _>(row.id)
        .bind::<DbUuid, _>(row.pipeline_execution_id)
        .bind::<Text, _>(row.task_name.as_str())
        .bind::<Text, _>(row.status.as_str())
        .bind::<Integer, _>(row.attempt)
        .bind::<Integer, _>(row.max_attempts)
        .bind::<DbJson, _>(&row.trigger_rules)
        .bind::<DbJson, _>(&row.task_configuration)
        .bind::<UtcTimestamp, _>(row.created_at)
        .bind::<Integer, _>(row.priority)
        .bind::<DbUuid, _>(new_id())
        .bind::<Text, _>(row.queue.as_str())
        .bind::<Nullable<UtcTimestamp>, _>(row.run_after)
        .get_result::<Created>(pg)?;
    match created.pipeline_status.as_deref() {
        None => Err(DalError::pipeline_not_found(row.pipeline_execution_id)),
        Some(status) if status == PipelineStatus::Cancelled.as_str() => {
            Err(DalError::IllegalPipelineTransition {
                pipeline_id: row.pipeline_execution_id,
                from: PipelineStatus::Cancelled,
                to: PipelineStatus::Running,
                operation: PipelineOperation::CreateTasks,
            })
        }
        Some(_) if created.inserted == 1 => Ok(()),
        Some(status) => Err(DalError::from(diesel::result::Error::QueryBuilderError(
            format!("the task was not inserted into a pipeline in status {status}").into(),
        ))),
    }
}

/// What [`POSTGRES_CREATE_TASKS_SQL`] answers.
#[derive(Debug, QueryableByName)]
struct CreatedMany {
    #[diesel(sql_type = Nullable<DbUuid>)]
    cancelled: Option<Uuid>,
    #[diesel(sql_type = Nullable<DbUuid>)]
    missing: Option<Uuid>,
    #[diesel(sql_type = BigInt)]
    inserted: i64,
}

/// Creates `rows` (new rows, from [`NewTaskExecution::into_row`]) with a
/// `TaskCreated` event each, all or nothing, after locking their pipelines
/// `pipelines` (sorted, distinct) for the creation of tasks and refusing
/// the creation when one is cancelled or missing, as
/// [`lock_pipelines_for_new_tasks`] does.
///
/// PostgreSQL: one statement of fixed text with one array per column
/// ([`POSTGRES_CREATE_TASKS_SQL`]), atomic on its own; run it without a
/// transaction. SQLite: the lock's read and the inserts, inside the caller's
/// write transaction.
pub(crate) fn create_many(
    conn: &mut AnyConnection,
    rows: &[TaskExecution],
    pipelines: &[Uuid],
) -> Result<(), DalError> {
    let AnyConnection::Postgres(pg) = conn else {
        lock_pipelines_for_new_tasks(conn, pipelines)?;
        return insert(conn, rows);
    };
    let column = |f: fn(&TaskExecution) -> i32| rows.iter().map(f).collect::<Vec<i32>>();
    let created = statement(POSTGRES_CREATE_TASKS_SQL)
        .bind::<Array<DbUuid>, _>(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind::<Array<DbUuid>, _>(
            rows.iter()
                .map(|r| r.pipeline_execution_id)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            rows.iter()
                .map(|r| r.task_name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(column(|r| r.attempt))
        .bind::<Array<Integer>, _>(column(|r| r.max_attempts))
        .bind::<Array<DbJson>, _>(rows.iter().map(|r| &r.trigger_rules).collect::<Vec<_>>())
        .bind::<Array<DbJson>, _>(
            rows.iter()
                .map(|r| &r.task_configuration)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<UtcTimestamp>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(column(|r| r.priority))
        .bind::<Array<DbUuid>, _>(rows.iter().map(|_| new_id()).collect::<Vec<_>>())
        .bind::<Array<DbUuid>, _>(pipelines.to_vec())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.queue.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<UtcTimestamp>>, _>(
            rows.iter().map(|r| r.run_after).collect::<Vec<_>>(),
        )
        .get_result::<CreatedMany>(pg)?;
    if let Some(pipeline_id) = created.cancelled {
        return Err(DalError::IllegalPipelineTransition {
            pipeline_id,
            from: PipelineStatus::Cancelled,
            to: PipelineStatus::Running,
            operation: PipelineOperation::CreateTasks,
        });
    }
    if let Some(missing) = created.missing {
        return Err(DalError::pipeline_not_found(missing));
    }
    if usize::try_from(created.inserted).ok() != Some(rows.len()) {
        return Err(DalError::from(diesel::result::Error::QueryBuilderError(
            format!("{} of {} tasks were inserted", created.inserted, rows.len()).into(),
        )));
    }
    Ok(())
}

/// The first of `ids` that names no pipeline execution, if any: what a
/// foreign-key violation of an insert of tasks was about.
pub(crate) fn missing_pipeline(
    conn: &mut AnyConnection,
    ids: BTreeSet<Uuid>,
) -> Result<Option<Uuid>, DalError> {
    let wanted: Vec<Uuid> = ids.into_iter().collect();
    let found: BTreeSet<Uuid> = pipeline_executions::table
        .filter(pipeline_executions::id.eq_any(bind::ids(&wanted)))
        .select(pipeline_executions::id)
        .load::<Uuid>(conn)?
        .into_iter()
        .collect();
    Ok(wanted.into_iter().find(|id| !found.contains(id)))
}

/// The task execution `task_id`, or [`DalError::NotFound`].
pub(crate) fn get(conn: &mut AnyConnection, task_id: Uuid) -> Result<TaskExecution, DalError> {
    let row = task_executions::table
        .find(bind::id(task_id))
        .select(TaskExecution::as_select());
    find_row(conn, row, || DalError::task_not_found(task_id))
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
