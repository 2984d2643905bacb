//! The embedded migrations (`migrations/postgres`, `migrations/sqlite`) and
//! how they are applied without two processes racing.

use diesel::{Connection, PgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::data::any_connection::AnyConnection;
use crate::ground::error::DalError;
use crate::handle::connection::write_transaction;
use crate::sql::session;

/// PostgreSQL migrations, embedded at build time.
pub(crate) const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// SQLite migrations, embedded at build time.
pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A constant key for PostgreSQL's advisory lock that serializes migration runs.
const MIGRATION_LOCK_KEY: i64 = 0x7465_5f64_616c_6d69; // "te_dalmi"

/// How many migrations a harness call applied or reverted, or its error as
/// [`DalError::Migration`].
fn counted<T>(done: diesel::migration::Result<Vec<T>>) -> Result<usize, DalError> {
    done.map(|done| done.len()).map_err(DalError::Migration)
}

/// Applies every pending migration. Safe to call again (it then does nothing)
/// and safe when several processes call it at once: PostgreSQL serializes the
/// callers with an advisory lock, SQLite with its write lock.
pub(crate) fn run_pending(conn: &mut AnyConnection) -> Result<usize, DalError> {
    match conn {
        AnyConnection::Postgres(pg) => with_pg_lock(pg, |pg| {
            counted(pg.run_pending_migrations(POSTGRES_MIGRATIONS))
        }),
        AnyConnection::Sqlite(_) => write_transaction(conn, |conn| {
            let AnyConnection::Sqlite(sqlite) = conn else {
                unreachable!("checked above")
            };
            counted(sqlite.run_pending_migrations(SQLITE_MIGRATIONS))
        }),
    }
}

/// Reverts every applied migration (used by tests of `down.sql`).
pub(crate) fn revert_all(conn: &mut AnyConnection) -> Result<usize, DalError> {
    match conn {
        AnyConnection::Postgres(pg) => with_pg_lock(pg, |pg| {
            counted(pg.revert_all_migrations(POSTGRES_MIGRATIONS))
        }),
        AnyConnection::Sqlite(sqlite) => counted(sqlite.revert_all_migrations(SQLITE_MIGRATIONS)),
    }
}

/// Runs `f` in one transaction holding PostgreSQL's transaction-scoped
/// advisory lock, so that concurrent callers run one after the other. The
/// lock ends with the transaction (a session-level lock would outlive a
/// caller behind a transaction-mode pooler, held by whichever server
/// connection took it); each migration's own transaction nests as a
/// savepoint.
fn with_pg_lock<T>(
    pg: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, DalError>,
) -> Result<T, DalError> {
    pg.transaction(|pg| {
        session::migration_lock(pg, MIGRATION_LOCK_KEY)?;
        f(pg)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel::migration::MigrationSource;
    use diesel::sqlite::Sqlite;
    use diesel::{Connection, SqliteConnection};

    use super::*;

    /// Name → (up.sql, down.sql) of one backend's migrations.
    type MigrationSet = BTreeMap<String, (String, String)>;

    /// The top-level `migrations/` of the workspace, the source of truth
    /// (te-core embeds them through its `migrations` link to it).
    fn top_level(backend: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(backend)
    }

    /// The migrations in `dir`, read from the files.
    fn on_disk(dir: &Path) -> MigrationSet {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
        };
        std::fs::read_dir(dir)
            .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_dir())
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (
                    name,
                    (read(path.join("up.sql")), read(path.join("down.sql"))),
                )
            })
            .collect()
    }

    /// The migrations compiled into te-core. diesel keeps their SQL private,
    /// so each is run and reverted on a scratch in-memory SQLite connection
    /// whose instrumentation records the text it is handed (whether or not
    /// SQLite accepts it: PostgreSQL's SQL is only read, not checked).
    fn embedded(migrations: &EmbeddedMigrations) -> MigrationSet {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.set_instrumentation(recorder(Arc::clone(&seen)));
        let last = || seen.lock().unwrap().pop().expect("the migration ran SQL");
        MigrationSource::<Sqlite>::migrations(migrations)
            .unwrap()
            .into_iter()
            .map(|migration| {
                let _ = migration.run(&mut conn);
                let up = last();
                let _ = migration.revert(&mut conn);
                let down = last();
                (migration.name().to_string(), (up, down))
            })
            .collect()
    }

    fn recorder(seen: Arc<Mutex<Vec<String>>>) -> impl Instrumentation {
        move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                seen.lock().unwrap().push(query.to_string());
            }
        }
    }

    #[test]
    fn embedded_migrations_are_the_top_level_files() {
        for (backend, migrations) in [
            ("postgres", &POSTGRES_MIGRATIONS),
            ("sqlite", &SQLITE_MIGRATIONS),
        ] {
            let files = on_disk(&top_level(backend));
            assert!(!files.is_empty(), "no {backend} migrations found");
            assert_eq!(embedded(migrations), files, "{backend} migrations differ");
        }
    }
}
