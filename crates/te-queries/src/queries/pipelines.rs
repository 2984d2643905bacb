//! `list_pipelines` and `get_active_pipelines`: pipeline executions, one
//! keyset page at a time or every one that is not finished.

use diesel::prelude::*;
use te_core::schema::pipeline_executions as pe;
use te_core::toolkit::{bind, require_row};
use te_core::{AnyConnection, DalError, MultiBackend, PipelineExecution, PipelineStatus};

use crate::PipelineFilter;

diesel::alias!(pe as cursor_pipeline: CursorPipeline);

/// One page of the pipeline executions `filter` selects, ordered by
/// `(created_at, id)`, in one query (never `OFFSET`); a second query only
/// when a page after a cursor comes back empty, to tell the end of the list
/// from a cursor naming no pipeline execution ([`DalError::NotFound`]).
/// Validates `filter` first.
pub fn list_pipelines(
    conn: &mut AnyConnection,
    filter: &PipelineFilter,
) -> Result<Vec<PipelineExecution>, DalError> {
    let page_size = filter.validate()?;
    let mut query = pe::table
        .select(PipelineExecution::as_select())
        .order((pe::created_at.asc(), pe::id.asc()))
        .limit(page_size)
        .into_boxed::<MultiBackend>();
    if !filter.statuses.is_empty() {
        query = query.filter(pe::status.eq_any(super::shared::unique(filter.statuses.clone())));
    }
    if let Some(name) = &filter.pipeline_name {
        query = query.filter(pe::pipeline_name.eq(name.clone()));
    }
    if let Some(t) = filter.created_after {
        query = query.filter(pe::created_at.ge(bind::ts(t)));
    }
    if let Some(t) = filter.created_before {
        query = query.filter(pe::created_at.lt(bind::ts(t)));
    }
    if let Some(after) = filter.after {
        query = query.filter(after_cursor!(pe, cursor_pipeline, after));
    }
    let page = query.load(conn)?;
    super::shared::keyset_page(conn, page, filter.after, |conn, after| {
        let cursor = pe::table.find(bind::id(after)).select(pe::id);
        require_row(conn, cursor, DalError::pipeline_not_found(after))
    })
}

/// Every pipeline execution that is not terminal, ordered by `(created_at, id)`.
pub fn active_pipelines(conn: &mut AnyConnection) -> Result<Vec<PipelineExecution>, DalError> {
    let active: Vec<PipelineStatus> = PipelineStatus::ALL
        .iter()
        .copied()
        .filter(|status| !status.is_terminal())
        .collect();
    super::shared::load_ordered(
        conn,
        pe::table.filter(pe::status.eq_any(active)),
        (pe::created_at.asc(), pe::id.asc()),
    )
}
