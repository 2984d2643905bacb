//! Writing rows that several operation crates write: context documents, task
//! executions in bulk, and audit events; and reading the one row a query
//! names, or telling whether it exists. Each is written here once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::query_dsl::LoadQuery;
use serde_json::Value;
use uuid::Uuid;

use crate::data::any_connection::AnyConnection;
use crate::data::models::{NewEvent, TaskExecution};
use crate::data::schema::{contexts, execution_events, task_executions};
use crate::data::sql_types::{DbJson, DbUuid, UtcTimestamp};
use crate::ground::error::DalError;
use crate::sql::events::SQLITE_EVENT_SQL;
use crate::sql::statement::statement;
use crate::toolkit::batch::rows_per_statement;
use crate::toolkit::{bind, clock};
use diesel::sql_types::{Nullable, Text};

/// Inserts `rows` into `table` in as few multi-row statements as the bind
/// limit allows (`binds` parameters per row). The generic `MultiBackend`
/// cannot express a multi-row insert, so each chunk runs on the concrete
/// connection; the statement is still written once.
macro_rules! insert_chunked {
    ($conn:expr, $table:expr, $rows:expr, $binds:expr) => {{
        for chunk in $rows.chunks(rows_per_statement($binds)) {
            let values = chunk.to_vec();
            match &mut *$conn {
                AnyConnection::Postgres(c) => {
                    diesel::insert_into($table).values(values).execute(c)?
                }
                AnyConnection::Sqlite(c) => {
                    diesel::insert_into($table).values(values).execute(c)?
                }
            };
        }
        Ok(())
    }};
}

/// Inserts task execution rows exactly as given (no validation, no events),
/// with as few statements as the backend's bind limit allows. Call inside a
/// write transaction.
pub fn insert_tasks(conn: &mut AnyConnection, rows: &[TaskExecution]) -> Result<(), DalError> {
    insert_chunked!(
        conn,
        task_executions::table,
        rows,
        TaskExecution::BINDS_PER_ROW
    )
}

/// Appends events to the audit log, in order. Call it inside the transaction
/// that made the change the events record.
///
/// PostgreSQL: as few multi-row statements as the bind limit allows. SQLite:
/// one prepared single-row insert per event, which each connection prepares
/// once; a multi-row `INSERT` would be parsed again for every call, and a
/// statement in SQLite costs no round trip.
pub fn record_events(conn: &mut AnyConnection, events: &[NewEvent]) -> Result<(), DalError> {
    let AnyConnection::Sqlite(lite) = conn else {
        return insert_chunked!(
            conn,
            execution_events::table,
            events,
            NewEvent::BINDS_PER_ROW
        );
    };
    for event in events {
        statement(SQLITE_EVENT_SQL)
            .bind::<DbUuid, _>(event.id)
            .bind::<DbUuid, _>(event.pipeline_execution_id)
            .bind::<Nullable<DbUuid>, _>(event.task_execution_id)
            .bind::<Text, _>(event.event_type)
            .bind::<Nullable<DbJson>, _>(&event.event_data)
            .bind::<Nullable<DbUuid>, _>(event.runner_id)
            .bind::<UtcTimestamp, _>(event.created_at)
            .execute(lite)?;
    }
    Ok(())
}

/// Appends one event to the audit log (see [`record_events`]).
pub fn record_event(conn: &mut AnyConnection, event: NewEvent) -> Result<(), DalError> {
    record_events(conn, std::slice::from_ref(&event))
}

/// Inserts `value` as a new context row stamped `now` and returns its id.
/// The caller has checked that `value` is a JSON object. Call inside the
/// transaction that links the context to its owner.
pub fn insert_context(
    conn: &mut AnyConnection,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<Uuid, DalError> {
    let id = clock::new_id();
    diesel::insert_into(contexts::table)
        .values((
            contexts::id.eq(bind::id(id)),
            contexts::value.eq(bind::json(value.clone())),
            contexts::created_at.eq(bind::ts(now)),
            contexts::updated_at.eq(bind::ts(now)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Like [`insert_context`], but an empty object stores nothing and returns
/// `None`: an empty context and no context are the same.
pub fn store_context(
    conn: &mut AnyConnection,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DalError> {
    if value.as_object().is_some_and(|object| object.is_empty()) {
        return Ok(None);
    }
    insert_context(conn, value, now).map(Some)
}

/// The row `query` (a query of at most one row, such as
/// `table.find(id).select(…)`) finds, else `Err(missing())`: a row that is
/// not there is the [`DalError::NotFound`] that names it.
pub fn find_row<'q, Q, T>(
    conn: &mut AnyConnection,
    query: Q,
    missing: impl FnOnce() -> DalError,
) -> Result<T, DalError>
where
    Q: diesel::query_dsl::methods::LimitDsl + RunQueryDsl<AnyConnection>,
    diesel::dsl::Limit<Q>: LoadQuery<'q, AnyConnection, T>,
{
    query.first(conn).optional()?.ok_or_else(missing)
}

/// `Ok(())` when `row` (a query of at most one row, such as
/// `table.find(id).select(table::id)`) finds one, else `Err(missing)`: one
/// `SELECT EXISTS (…)`.
pub fn require_row<Q>(conn: &mut AnyConnection, row: Q, missing: DalError) -> Result<(), DalError>
where
    diesel::dsl::exists<Q>: Expression,
    diesel::dsl::select<diesel::dsl::exists<Q>>:
        diesel::query_builder::AsQuery + for<'a> LoadQuery<'a, AnyConnection, bool>,
{
    if diesel::select(diesel::dsl::exists(row)).get_result::<bool>(conn)? {
        Ok(())
    } else {
        Err(missing)
    }
}
