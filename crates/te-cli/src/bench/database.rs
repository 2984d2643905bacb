//! The fresh database each bench run works on: a new SQLite file in a
//! temporary directory, or a new database on a PostgreSQL server, dropped
//! afterwards.

use std::path::PathBuf;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use task_execution_dal::prelude::*;
use uuid::Uuid;

use crate::db;
use crate::error::CliError;

/// A scratch database that exists until [`FreshDb::remove`].
#[derive(Debug)]
pub(crate) enum FreshDb {
    /// A SQLite file (with its `-wal` and `-shm` companions).
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The given URL's query (`?synchronous=full`), or empty.
        query: String,
    },
    /// A database created on a PostgreSQL server.
    Postgres {
        /// The server's URL as given (used for CREATE and DROP DATABASE).
        admin_url: String,
        /// The name of the created database.
        name: String,
        /// The URL of the created database.
        url: String,
    },
}

impl FreshDb {
    /// Creates a fresh database: on the PostgreSQL server `url` names, or,
    /// for no URL or a SQLite URL, a new file in the temporary directory (or
    /// beside the file the URL names).
    pub(crate) async fn create(url: Option<&str>) -> Result<Self, CliError> {
        let id = Uuid::new_v4().simple().to_string();
        match url {
            Some(url) if is_postgres(url) => {
                let name = format!("te_bench_{id}");
                // CREATE and DROP go to the server without the DAL's own
                // parameters (`pgbouncer`, `listen_url`), which libpq refuses.
                let admin_url = match Target::parse(url)? {
                    Target::Postgres(clean) => clean,
                    _ => url.to_owned(),
                };
                let db_url = with_database(url, &name);
                let sql = format!("CREATE DATABASE \"{name}\"");
                admin(admin_url.clone(), sql).await?;
                Ok(FreshDb::Postgres {
                    admin_url,
                    name,
                    url: db_url,
                })
            }
            other => {
                let dir = other
                    .and_then(|url| Target::parse(url).ok())
                    .and_then(|target| {
                        target
                            .sqlite_path()
                            .and_then(|p| p.parent().map(PathBuf::from))
                    })
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(std::env::temp_dir);
                let query = other
                    .and_then(|url| url.split_once('?'))
                    .map(|(_, query)| format!("?{query}"))
                    .unwrap_or_default();
                Ok(FreshDb::Sqlite {
                    path: dir.join(format!("te-bench-{id}.db")),
                    query,
                })
            }
        }
    }

    /// The URL to connect the DAL to.
    pub(crate) fn url(&self) -> String {
        match self {
            FreshDb::Sqlite { path, query } => format!("sqlite://{}{query}", path.display()),
            FreshDb::Postgres { url, .. } => url.clone(),
        }
    }

    /// Removes the database (a PostgreSQL database is dropped even while
    /// connections to it remain).
    pub(crate) async fn remove(self) -> Result<(), CliError> {
        match self {
            FreshDb::Sqlite { path, .. } => db::remove_sqlite_files(&path),
            FreshDb::Postgres {
                admin_url, name, ..
            } => {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                admin(admin_url, sql).await
            }
        }
    }
}

/// Whether `url` names a PostgreSQL server.
pub(crate) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Runs one administrative statement (the name in it is generated here,
/// never taken from input) on the database `url` names.
async fn admin(url: String, sql: String) -> Result<(), CliError> {
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).map_err(|e| {
            CliError::Bench(format!("cannot connect to the PostgreSQL server: {e}"))
        })?;
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .map(drop)
            .map_err(|e| CliError::Bench(format!("{sql}: {e}")))
    })
    .await
    .map_err(|e| CliError::Bench(format!("interrupted: {e}")))?
}

/// Connects the DAL to `fresh` with a pool of `connections` and migrates it.
pub(crate) async fn connect(
    fresh: &FreshDb,
    connections: usize,
) -> Result<TaskExecutionDal, CliError> {
    let dal = db::connect(&fresh.url(), Some(connections)).await?;
    dal.migrate().await?;
    Ok(dal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "x"),
            "postgresql://h/x?sslmode=disable"
        );
    }
}
