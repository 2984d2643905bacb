//! Binding `Uuid`, `DateTime<Utc>` and `serde_json::Value` to the custom SQL
//! types of [`crate::sql_types`] in queries.
//!
//! diesel's blanket impls keep a foreign type such as `uuid::Uuid` from
//! implementing `AsExpression` for our SQL types directly, so a value is
//! wrapped in [`Bind`] where a query compares or writes it:
//! `task_executions::id.eq(bind::id(task_id))`. Reading needs no wrapper.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, TypedExpressionType, ValidGrouping,
    is_aggregate,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Nullable, SqlType};
use serde_json::Value;
use uuid::Uuid;

use crate::data::sql_types::{DbJson, DbUuid, UtcTimestamp};

/// A Rust value bound as a query parameter of SQL type `ST`.
#[derive(Debug, Clone, Copy)]
pub struct Bind<ST, T> {
    value: T,
    _sql_type: PhantomData<ST>,
}

impl<ST, T> Bind<ST, T> {
    /// Binds `value` as `ST`.
    pub fn new(value: T) -> Self {
        Bind {
            value,
            _sql_type: PhantomData,
        }
    }
}

impl<ST, T> From<T> for Bind<ST, T> {
    fn from(value: T) -> Self {
        Bind::new(value)
    }
}

impl<ST, T> Expression for Bind<ST, T>
where
    ST: SqlType + TypedExpressionType,
{
    type SqlType = ST;
}

impl<ST, T, DB> QueryFragment<DB> for Bind<ST, T>
where
    DB: Backend + HasSqlType<ST>,
    T: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        pass.push_bind_param(&self.value)
    }
}

// Lets `eq_any` bind each element of an `IN (…)` list.
impl<ST, T, DB> ToSql<ST, DB> for Bind<ST, T>
where
    ST: std::fmt::Debug,
    T: ToSql<ST, DB>,
    DB: Backend,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        self.value.to_sql(out)
    }
}

impl<ST: QueryId, T> QueryId for Bind<ST, T> {
    type QueryId = Bind<ST::QueryId, ()>;
    const HAS_STATIC_QUERY_ID: bool = ST::HAS_STATIC_QUERY_ID;
}

impl<ST, T, QS> SelectableExpression<QS> for Bind<ST, T> where Bind<ST, T>: AppearsOnTable<QS> {}

impl<ST, T, QS> AppearsOnTable<QS> for Bind<ST, T> where Bind<ST, T>: Expression {}

impl<ST, T, GB> ValidGrouping<GB> for Bind<ST, T> {
    type IsAggregate = is_aggregate::Never;
}

/// A UUID as [`DbUuid`].
pub fn id(value: Uuid) -> Bind<DbUuid, Uuid> {
    Bind::new(value)
}

/// An optional UUID as nullable [`DbUuid`].
pub fn opt_id(value: Option<Uuid>) -> Bind<Nullable<DbUuid>, Option<Uuid>> {
    Bind::new(value)
}

/// Many UUIDs, for `eq_any` (at most [`crate::toolkit::batch::MAX_IN_LIST`] per statement).
pub fn ids(values: &[Uuid]) -> Vec<Bind<DbUuid, Uuid>> {
    values.iter().copied().map(id).collect()
}

/// An instant as [`UtcTimestamp`].
pub fn ts(value: DateTime<Utc>) -> Bind<UtcTimestamp, DateTime<Utc>> {
    Bind::new(value)
}

/// An optional instant as nullable [`UtcTimestamp`].
pub fn opt_ts(value: Option<DateTime<Utc>>) -> Bind<Nullable<UtcTimestamp>, Option<DateTime<Utc>>> {
    Bind::new(value)
}

/// A JSON document as [`DbJson`].
pub fn json(value: Value) -> Bind<DbJson, Value> {
    Bind::new(value)
}

/// An optional JSON document as nullable [`DbJson`].
pub fn opt_json(value: Option<Value>) -> Bind<Nullable<DbJson>, Option<Value>> {
    Bind::new(value)
}

/// How a `Uuid` field of a model is written (`#[diesel(serialize_as = …)]`).
pub type IdParam = Bind<DbUuid, Uuid>;
/// How an `Option<Uuid>` field of a model is written.
pub type OptIdParam = Bind<Nullable<DbUuid>, Option<Uuid>>;
/// How a `DateTime<Utc>` field of a model is written.
pub type TsParam = Bind<UtcTimestamp, DateTime<Utc>>;
/// How an `Option<DateTime<Utc>>` field of a model is written.
pub type OptTsParam = Bind<Nullable<UtcTimestamp>, Option<DateTime<Utc>>>;
/// How a JSON field of a model is written.
pub type JsonParam = Bind<DbJson, Value>;
/// How an optional JSON field of a model is written.
pub type OptJsonParam = Bind<Nullable<DbJson>, Option<Value>>;
