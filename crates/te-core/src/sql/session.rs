//! The statements that set up and look after a connection, rather than read
//! or write the DAL's rows: SQLite's pragmas and write transactions, the
//! PostgreSQL migration lock, the checks behind wake-ups and connection
//! health. Each is one short statement with no caller's string in it.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, QueryResult, QueryableByName, RunQueryDsl, SqliteConnection};

use crate::data::any_connection::AnyConnection;

/// How SQLite opens a write transaction: taking the write lock up front
/// (waiting up to the busy timeout), so two writers never both read a row
/// and then race to change it.
pub(crate) const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// `PRAGMA busy_timeout` for `timeout`, in whole milliseconds (a number,
/// never a caller's string).
fn busy_timeout_pragma(timeout: Duration) -> String {
    let ms = timeout.as_millis().min(i32::MAX as u128);
    format!("PRAGMA busy_timeout = {ms};")
}

/// Sets up a new SQLite connection: the busy timeout first (so that
/// switching to WAL waits for other connections instead of failing),
/// foreign keys, and for a file WAL mode with `synchronous` (`NORMAL` or
/// `FULL`, one of [`Synchronous`](crate::Synchronous)'s values): one batch.
pub(crate) fn prepare_sqlite(
    conn: &mut SqliteConnection,
    busy_timeout: Duration,
    wal: Option<&'static str>,
) -> QueryResult<()> {
    let mut pragmas = busy_timeout_pragma(busy_timeout);
    pragmas.push_str(" PRAGMA foreign_keys = ON;");
    if let Some(synchronous) = wal {
        pragmas.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = ");
        pragmas.push_str(synchronous);
        pragmas.push(';');
    }
    conn.batch_execute(&pragmas)
}

/// Sets a SQLite connection's busy timeout.
pub(crate) fn set_busy_timeout(conn: &mut AnyConnection, timeout: Duration) -> QueryResult<()> {
    conn.batch_execute(&busy_timeout_pragma(timeout))
}

/// A round trip that proves a connection alive: `SELECT 1`.
pub(crate) fn ping(conn: &mut AnyConnection) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// Takes the PostgreSQL advisory lock `key` until the transaction ends:
/// migrations hold it so that two processes never migrate at once, and a
/// transaction-level lock never outlives its caller behind a pooler.
pub(crate) fn migration_lock(pg: &mut PgConnection, key: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(key)
        .execute(pg)
        .map(drop)
}

/// One number a query returns.
#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether a SQLite database has a table called `name`, read from
/// `sqlite_master` (which works on a read-only connection).
pub(crate) fn sqlite_has_table(conn: &mut SqliteConnection, name: &str) -> QueryResult<bool> {
    let found: Number = diesel::sql_query(
        "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
    )
    .bind::<Text, _>(name)
    .get_result(conn)?;
    Ok(found.n > 0)
}

/// SQLite's `PRAGMA data_version`: it changes when another connection
/// commits a write to the database file.
pub(crate) fn data_version(conn: &mut SqliteConnection) -> QueryResult<i64> {
    /// The pragma's one row.
    #[derive(QueryableByName)]
    struct DataVersion {
        #[diesel(sql_type = BigInt)]
        data_version: i64,
    }
    let version: DataVersion = diesel::sql_query("PRAGMA data_version").get_result(conn)?;
    Ok(version.data_version)
}

/// `LISTEN` on `channel` (a constant of the DAL's: a channel cannot be a
/// bound parameter).
pub(crate) fn listen(pg: &mut PgConnection, channel: &'static str) -> QueryResult<()> {
    pg.batch_execute(&format!("LISTEN {channel}"))
}

/// `pg_notify(channel, payload)`, both bound.
pub(crate) fn notify(conn: &mut AnyConnection, channel: &str, payload: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(channel)
        .bind::<Text, _>(payload)
        .execute(conn)
        .map(drop)
}
