//! Hand-written SQL whose text is fixed at compile time, run as a prepared
//! statement that each connection keeps and reuses.
//!
//! diesel's `sql_query` never enters the prepared-statement cache (it cannot
//! know whether its text was built at run time), so a statement run through
//! it is parsed and planned again on every call. [`Statement`] takes only a
//! `&'static str`: its text is one of a fixed set, diesel caches it by that
//! text and the binds' types, and a per-task call (a claim) pays for parsing
//! and planning once per connection instead of once per call.

use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// `QueryId`, `Query` (of SQL type `$sql_type`) and `RunQueryDsl` for a
/// hand-built query type `$ty<$param, …>` whose text is one of a fixed set: it
/// has no static query id, so diesel caches it by its text and the binds'
/// types, and each connection prepares it once.
macro_rules! query_cached_by_text {
    ($ty:ident<$($param:ident),+>, $sql_type:ty) => {
        impl<$($param),+> diesel::query_builder::QueryId for $ty<$($param),+> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }

        impl<$($param),+> diesel::query_builder::Query for $ty<$($param),+> {
            type SqlType = $sql_type;
        }

        impl<$($param,)+ Conn> diesel::RunQueryDsl<Conn> for $ty<$($param),+> {}
    };
}

/// SQL text fixed at compile time, with the binds added so far (`B`: `()`
/// or a chain of [`Bound`]). Placeholders are written `?N` (SQLite) or `$N`
/// (PostgreSQL), numbered from 1 in the order of [`Statement::bind`]; one
/// placeholder may appear several times. No other `?` or `$` may be
/// followed by a digit in the text. Load rows with `load::<T>()` for a `T`
/// that derives `QueryableByName`, or run it with `execute`.
#[derive(Debug, Clone)]
#[must_use = "a statement does nothing until it is run"]
pub struct Statement<B = ()> {
    sql: &'static str,
    binds: B,
    count: usize,
}

/// One bind of a [`Statement`], placeholder number `index`, after the binds
/// in `Prev`.
#[derive(Debug, Clone)]
pub struct Bound<Prev, ST, V> {
    prev: Prev,
    index: usize,
    value: V,
    sql_type: PhantomData<ST>,
}

/// A statement of the text `sql`, to be completed with [`Statement::bind`]
/// in the order of its placeholders' numbers.
pub fn statement(sql: &'static str) -> Statement {
    Statement {
        sql,
        binds: (),
        count: 0,
    }
}

impl<B> Statement<B> {
    /// Binds `value` as SQL type `ST` to the next placeholder number.
    pub fn bind<ST, V>(self, value: V) -> Statement<Bound<B, ST, V>> {
        let index = self.count + 1;
        Statement {
            sql: self.sql,
            binds: Bound {
                prev: self.binds,
                index,
                value,
                sql_type: PhantomData,
            },
            count: index,
        }
    }
}

/// The binds of a statement, pushed by placeholder number.
pub trait Binds<DB: Backend> {
    /// Pushes the bind of placeholder `n` onto `out` (the backend writes the
    /// placeholder itself); an error when no bind has that number.
    fn push_nth<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<DB: Backend> Binds<DB> for () {
    fn push_nth<'b>(&'b self, n: usize, _out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        Err(diesel::result::Error::QueryBuilderError(
            format!("placeholder {n} has no bind").into(),
        ))
    }
}

impl<DB, Prev, ST, V> Binds<DB> for Bound<Prev, ST, V>
where
    DB: Backend + HasSqlType<ST>,
    Prev: Binds<DB>,
    V: ToSql<ST, DB>,
{
    fn push_nth<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if n == self.index {
            out.push_bind_param::<ST, V>(&self.value)
        } else {
            self.prev.push_nth(n, out)
        }
    }
}

/// The next placeholder of `sql`: its start, its end and its number.
///
/// diesel walks a statement several times per execution (its cache key, its
/// binds), and the claim's text is about 2 kB, so the search is `memchr2`'s
/// vectorized one rather than a scan of chars.
fn next_placeholder(sql: &str) -> Option<(usize, usize, usize)> {
    let bytes = sql.as_bytes();
    let mut at = 0;
    while let Some(offset) = memchr::memchr2(b'?', b'$', &bytes[at..]) {
        let start = at + offset;
        let digits = bytes[start + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 {
            let end = start + 1 + digits;
            let number = sql[start + 1..end].parse().ok()?;
            return Some((start, end, number));
        }
        at = start + 1;
    }
    None
}

impl<DB: Backend, B: Binds<DB>> QueryFragment<DB> for Statement<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // Unlike `sql_query`, the text is never marked unsafe to cache: it
        // is a `&'static str`, one of a fixed set. Each placeholder becomes
        // the backend's own, with its bind pushed at that point.
        let mut rest = self.sql;
        while let Some((start, end, number)) = next_placeholder(rest) {
            out.push_sql(&rest[..start]);
            self.binds.push_nth(number, &mut out)?;
            rest = &rest[end..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

query_cached_by_text!(Statement<B>, Untyped);

#[cfg(test)]
mod tests {
    use super::next_placeholder;

    #[test]
    fn placeholders_are_found_in_order_with_their_numbers() {
        let sql = "SELECT $1::uuid[], x FROM t WHERE a = ?12 AND b <= ?1 LIMIT +?4";
        let mut rest = sql;
        let mut numbers = Vec::new();
        while let Some((_, end, number)) = next_placeholder(rest) {
            numbers.push(number);
            rest = &rest[end..];
        }
        assert_eq!(numbers, [1, 12, 1, 4]);
        assert_eq!(next_placeholder("SELECT '$' || '?' FROM t"), None);
    }
}
