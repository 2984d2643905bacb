//! `GuardedUpdate`: the compare-and-set `UPDATE` of task rows, written as
//! text of fixed shape so that each connection prepares it once, and on
//! PostgreSQL with its audit event in the same statement.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::ToSql;
use diesel::sql_types::{Bool, HasSqlType, Nullable, Text};
use serde_json::Value;
use uuid::Uuid;

use crate::data::models::NewEvent;
use crate::data::schema::task_executions;
use crate::data::sql_types::{DbJson, DbUuid, UtcTimestamp};
use crate::ground::status::EventType;

/// `UPDATE task_executions SET … WHERE … RETURNING pipeline_execution_id`,
/// and with an event `WITH changed AS (<that update>), logged AS (INSERT
/// INTO execution_events … SELECT … FROM changed) SELECT
/// pipeline_execution_id FROM changed`: a guarded update and its audit event
/// as one PostgreSQL statement. The event is written only when the update
/// changed the row; its pipeline comes from the updated row.
///
/// The `UPDATE` is written here rather than by diesel's `update()`, which
/// keeps every `UPDATE` out of the prepared-statement cache: this text is
/// fixed by the transition's shape (which columns it sets, which guards it
/// has), one of a small set, and every value in it is bound, so diesel
/// caches it by its text and a transition is parsed and planned once per
/// connection.
pub(crate) struct GuardedUpdate<S, DB, R = PipelineOf> {
    pub(crate) changeset: S,
    pub(crate) condition: Box<dyn BoxableExpression<task_executions::table, DB, SqlType = Bool>>,
    /// Written in the same statement (PostgreSQL only: SQLite has no
    /// data-modifying CTE, and records the event with its own `INSERT`).
    pub(crate) event: Option<NewEvent>,
    /// What each changed row returns.
    pub(crate) returning: PhantomData<R>,
}

/// The `RETURNING` list of a [`GuardedUpdate`] and its SQL type.
pub(crate) trait Returning {
    /// The columns, unqualified (the `changed` CTE names them so too).
    const COLUMNS: &'static str;
    /// The SQL type of one returned row.
    type SqlType;
}

/// A single-task transition returns the task's pipeline.
pub(crate) struct PipelineOf;

impl Returning for PipelineOf {
    const COLUMNS: &'static str = "pipeline_execution_id";
    type SqlType = DbUuid;
}

/// A batch compare-and-set returns each changed task and its pipeline.
pub(crate) struct IdAndPipeline;

impl Returning for IdAndPipeline {
    const COLUMNS: &'static str = "id, pipeline_execution_id";
    type SqlType = (DbUuid, DbUuid);
}

impl<S, DB, R: Returning> QueryFragment<DB> for GuardedUpdate<S, DB, R>
where
    DB: Backend
        + HasSqlType<DbUuid>
        + HasSqlType<Text>
        + HasSqlType<DbJson>
        + HasSqlType<UtcTimestamp>,
    S: QueryFragment<DB>,
    Uuid: ToSql<DbUuid, DB>,
    Option<Uuid>: ToSql<Nullable<DbUuid>, DB>,
    EventType: ToSql<Text, DB>,
    Option<Value>: ToSql<Nullable<DbJson>, DB>,
    DateTime<Utc>: ToSql<UtcTimestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.event.is_some() {
            out.push_sql("WITH changed AS (");
        }
        out.push_sql("UPDATE task_executions SET ");
        self.changeset.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        self.condition.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING ");
        out.push_sql(R::COLUMNS);
        let Some(event) = &self.event else {
            return Ok(());
        };
        out.push_sql(concat!(
            "), logged AS (",
            crate::__insert_events_head!(),
            " SELECT "
        ));
        out.push_bind_param::<DbUuid, _>(&event.id)?;
        out.push_sql(", changed.pipeline_execution_id, ");
        out.push_bind_param::<Nullable<DbUuid>, _>(&event.task_execution_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&event.event_type)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<DbJson>, _>(&event.event_data)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<DbUuid>, _>(&event.runner_id)?;
        out.push_sql(", ");
        out.push_bind_param::<UtcTimestamp, _>(&event.created_at)?;
        out.push_sql(" FROM changed) SELECT ");
        out.push_sql(R::COLUMNS);
        out.push_sql(" FROM changed");
        Ok(())
    }
}

// Like `query_cached_by_text!`, with the row type chosen by `R`: no static
// query id, so diesel caches the statement by its text and binds' types.
impl<S, DB, R> diesel::query_builder::QueryId for GuardedUpdate<S, DB, R> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<S, DB, R: Returning> diesel::query_builder::Query for GuardedUpdate<S, DB, R> {
    type SqlType = R::SqlType;
}

impl<S, DB, R, Conn> RunQueryDsl<Conn> for GuardedUpdate<S, DB, R> {}
