//! The embedded migrations (`migrations/postgres`, `migrations/sqlite`) and
//! how they are applied without two processes racing.

use diesel::connection::SimpleConnection;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::connection::{AnyConnection, write_transaction};
use crate::error::DalError;

/// PostgreSQL migrations, embedded at build time.
pub(crate) const POSTGRES_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../../migrations/postgres");
/// SQLite migrations, embedded at build time.
pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../../migrations/sqlite");

/// A constant key for PostgreSQL's advisory lock that serializes migration runs.
const MIGRATION_LOCK_KEY: i64 = 0x7465_5f64_616c_6d69; // "te_dalmi"

fn migration_error(err: Box<dyn std::error::Error + Send + Sync>) -> DalError {
    DalError::Migration(err)
}

/// Applies every pending migration. Safe to call again (it then does nothing)
/// and safe when several processes call it at once: PostgreSQL serializes the
/// callers with an advisory lock, SQLite with its write lock.
pub(crate) fn run_pending(conn: &mut AnyConnection) -> Result<usize, DalError> {
    match conn {
        AnyConnection::Postgres(pg) => with_pg_lock(pg, |pg| {
            pg.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|applied| applied.len())
                .map_err(migration_error)
        }),
        AnyConnection::Sqlite(_) => write_transaction(conn, |conn| {
            let AnyConnection::Sqlite(sqlite) = conn else {
                unreachable!("checked above")
            };
            sqlite_run(sqlite)
        }),
    }
}

fn sqlite_run(sqlite: &mut SqliteConnection) -> Result<usize, DalError> {
    sqlite
        .run_pending_migrations(SQLITE_MIGRATIONS)
        .map(|applied| applied.len())
        .map_err(migration_error)
}

/// Reverts every applied migration (used by tests of `down.sql`).
pub(crate) fn revert_all(conn: &mut AnyConnection) -> Result<usize, DalError> {
    match conn {
        AnyConnection::Postgres(pg) => with_pg_lock(pg, |pg| {
            pg.revert_all_migrations(POSTGRES_MIGRATIONS)
                .map(|reverted| reverted.len())
                .map_err(migration_error)
        }),
        AnyConnection::Sqlite(sqlite) => sqlite
            .revert_all_migrations(SQLITE_MIGRATIONS)
            .map(|reverted| reverted.len())
            .map_err(migration_error),
    }
}

fn with_pg_lock<T>(
    pg: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, DalError>,
) -> Result<T, DalError> {
    pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    let result = f(pg);
    let unlock = pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    let value = result?;
    unlock?;
    Ok(value)
}
