//! What several queries share: deduplicated filter lists, loading in a
//! given order, the order of creation, and the end of a keyset page.

pub(crate) use te_core::toolkit::batch::unique;

use diesel::dsl::{AsSelect, Asc, Order, Select};
use diesel::prelude::*;
use diesel::query_builder::QueryId;
use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::{OrderDsl, SelectDsl};
use te_core::schema::task_executions;
use te_core::{AnyConnection, DalError, MultiBackend};
use uuid::Uuid;

/// The rows `source` (a table, filtered) selects, as `T`, ordered by
/// `order`: `SELECT <T's columns> FROM … WHERE … ORDER BY …`, one query.
pub(crate) fn load_ordered<S, O, T>(
    conn: &mut AnyConnection,
    source: S,
    order: O,
) -> Result<Vec<T>, DalError>
where
    O: Expression,
    S: OrderDsl<O>,
    T: Selectable<MultiBackend>,
    T::SelectExpression: QueryId,
    Order<S, O>: SelectDsl<AsSelect<T, MultiBackend>>,
    Select<Order<S, O>, AsSelect<T, MultiBackend>>: for<'a> LoadQuery<'a, AnyConnection, T>,
{
    Ok(source.order(order).select(T::as_select()).load(conn)?)
}

/// `(created_at, id)`: the order of every list of task executions.
pub(crate) fn by_creation() -> (Asc<task_executions::created_at>, Asc<task_executions::id>) {
    (task_executions::created_at.asc(), task_executions::id.asc())
}

/// `page`, a keyset page read after cursor `after` (when `Some`), once it is
/// known to be one: a page that comes back empty after a cursor is the end
/// of the list only if the cursor's row exists, which `require_cursor`
/// checks (a second query, made only then) and otherwise refuses with
/// [`DalError::NotFound`].
pub(crate) fn keyset_page<T>(
    conn: &mut AnyConnection,
    page: Vec<T>,
    after: Option<Uuid>,
    require_cursor: impl FnOnce(&mut AnyConnection, Uuid) -> Result<(), DalError>,
) -> Result<Vec<T>, DalError> {
    if page.is_empty()
        && let Some(after) = after
    {
        require_cursor(conn, after)?;
    }
    Ok(page)
}
