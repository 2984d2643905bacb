//! What several queries share: deduplicated filter lists, loading in a
//! given order, and the order of creation.

pub(crate) use te_core::toolkit::batch::unique;

use diesel::dsl::{AsSelect, Asc, Order, Select};
use diesel::prelude::*;
use diesel::query_builder::QueryId;
use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::{OrderDsl, SelectDsl};
use te_core::schema::task_executions;
use te_core::{AnyConnection, DalError, MultiBackend};

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
