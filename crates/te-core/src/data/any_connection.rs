//! `AnyConnection`, derived by `diesel::MultiConnection`, and the `MultiBackend` it generates.
// The derive generates public items without doc comments.
#![allow(missing_docs)]

use diesel::{PgConnection, SqliteConnection};

/// A connection to either backend. Queries written once against this type
/// run on both; `match` on it only where the SQL truly differs.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// A PostgreSQL connection.
    Postgres(PgConnection),
    /// A SQLite connection.
    Sqlite(SqliteConnection),
}
