//! `list_tasks`: filtered task executions, one keyset page at a time.

use diesel::prelude::*;
use te_core::schema::task_executions;
use te_core::toolkit::{bind, require_row};
use te_core::{AnyConnection, DalError, MultiBackend, TaskExecution};

use crate::TaskFilter;

diesel::alias!(task_executions as cursor_row: CursorRow);

/// One page of the task executions `filter` selects, ordered by
/// `(created_at, id)`, in one query (never `OFFSET`).
///
/// With [`TaskFilter::after`], the page starts after that row: `(created_at,
/// id) > (c, after)` where `c` is read by a subquery (`after_cursor!`).
/// Only when such a page comes back empty is a second query made, to tell
/// the end of the list from a cursor naming no task execution
/// ([`DalError::NotFound`]).
///
/// Validates `filter` first ([`TaskFilter::validate`]).
pub fn list_tasks(
    conn: &mut AnyConnection,
    filter: &TaskFilter,
) -> Result<Vec<TaskExecution>, DalError> {
    let page_size = filter.validate()?;
    let mut query = task_executions::table
        .select(TaskExecution::as_select())
        .order(super::shared::by_creation())
        .limit(page_size)
        .into_boxed::<MultiBackend>();
    if let Some(pipeline_id) = filter.pipeline_execution_id {
        query = query.filter(task_executions::pipeline_execution_id.eq(bind::id(pipeline_id)));
    }
    if !filter.statuses.is_empty() {
        query = query
            .filter(task_executions::status.eq_any(super::shared::unique(filter.statuses.clone())));
    }
    if let Some(name) = &filter.task_name {
        query = query.filter(task_executions::task_name.eq(name.clone()));
    }
    if let Some(t) = filter.created_after {
        query = query.filter(task_executions::created_at.gt(bind::ts(t)));
    }
    if let Some(t) = filter.created_before {
        query = query.filter(task_executions::created_at.lt(bind::ts(t)));
    }
    if let Some(t) = filter.updated_after {
        query = query.filter(task_executions::updated_at.gt(bind::ts(t)));
    }
    if let Some(t) = filter.updated_before {
        query = query.filter(task_executions::updated_at.lt(bind::ts(t)));
    }
    if let Some(after) = filter.after {
        query = query.filter(after_cursor!(task_executions, cursor_row, after));
    }
    let page = query.load(conn)?;
    super::shared::keyset_page(conn, page, filter.after, |conn, after| {
        let cursor = task_executions::table.find(bind::id(after));
        require_row(
            conn,
            cursor.select(task_executions::id),
            DalError::task_not_found(after),
        )
    })
}
