//! The catalogue of te-context's SQL written as text: PostgreSQL's first
//! save of a task's output in one statement.

use chrono::{DateTime, Utc};
use diesel::PgConnection;
use diesel::RunQueryDsl;
use serde_json::Value;
use te_core::DalError;
use te_core::sql_types::{DbJson, DbUuid, UtcTimestamp};
use te_core::toolkit::{new_id, statement};
use uuid::Uuid;

/// PostgreSQL: the first output context of a task, its metadata row and
/// its `ContextSaved` event as ONE statement, written only when the task has
/// no metadata row yet (otherwise nothing is written and no row returned).
/// Binds: `$1` the context's id, `$2` the document, `$3` now, `$4` the task,
/// `$5` the metadata row's id, `$6` the event's id. A fixed text, prepared
/// once per connection. The event is the one
/// [`save_task_context`](crate::queries::save_task_context) records; the
/// tests of `context` read the rows and the event back through the DSL
/// path on both backends.
const POSTGRES_FIRST_SAVE_SQL: &str = concat!(
    "\
WITH ctx AS (
    INSERT INTO contexts (id, value, created_at, updated_at)
    SELECT $1, $2, $3, $3
    WHERE NOT EXISTS (
        SELECT 1 FROM task_execution_metadata AS m WHERE m.task_execution_id = $4)
    RETURNING id
), meta AS (
    INSERT INTO task_execution_metadata
        (id, task_execution_id, pipeline_execution_id, task_name, context_id, created_at, updated_at)
    SELECT $5, t.id, t.pipeline_execution_id, t.task_name, ctx.id, $3, $3
    FROM task_executions AS t CROSS JOIN ctx
    WHERE t.id = $4
    RETURNING pipeline_execution_id
), logged AS (
",
    te_core::toolkit::insert_events_head!(),
    "
SELECT $6, meta.pipeline_execution_id, $4, 'ContextSaved',
       jsonb_build_object('",
    te_core::toolkit::event_key!(context_id),
    "', $1), NULL::uuid, $3
FROM meta
)
SELECT pipeline_execution_id FROM meta"
);

/// Runs [`POSTGRES_FIRST_SAVE_SQL`]: true when it saved `value` as task
/// `task_id`'s first output, false (nothing written) when the task already
/// has a metadata row.
pub(crate) fn save_first_context(
    conn: &mut PgConnection,
    task_id: Uuid,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<bool, DalError> {
    let saved = statement(POSTGRES_FIRST_SAVE_SQL)
        .bind::<DbUuid, _>(new_id())
        .bind::<DbJson, _>(value.clone())
        .bind::<UtcTimestamp, _>(now)
        .bind::<DbUuid, _>(task_id)
        .bind::<DbUuid, _>(new_id())
        .bind::<DbUuid, _>(new_id())
        .execute(conn)?;
    Ok(saved == 1)
}
