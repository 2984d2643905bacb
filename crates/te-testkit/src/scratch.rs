//! Scratch databases: a fresh, empty database made for one use and removed
//! afterwards, either a new SQLite file or a new database on a PostgreSQL
//! server. The one place in the workspace that makes and drops them:
//! [`TestDb`](crate::TestDb), `te bench` and `cargo xtask bench` all use
//! [`ScratchDb`], and a URL is read by te-core's [`Target`], as the DAL
//! reads it.

use std::fmt;
use std::path::{Path, PathBuf};

use diesel::{Connection, PgConnection};
use te_core::{Backend, DalError, Target};
use uuid::Uuid;

use crate::sql;

/// A fresh database that exists until [`ScratchDb::remove`] or, failing
/// that, until it is dropped (which removes it too, ignoring errors).
///
/// Its name is `{prefix}_{uuid}` on PostgreSQL and `{prefix}-{uuid}.db` on
/// SQLite: generated, never taken from input, so that two scratch databases
/// never meet.
#[derive(Debug)]
pub struct ScratchDb {
    url: String,
    /// `None` once removed.
    place: Option<Place>,
}

#[derive(Debug)]
enum Place {
    /// A SQLite file (with its `-wal`, `-shm` and `-journal` companions),
    /// in a temporary directory of its own when `dir` is set.
    Sqlite {
        path: PathBuf,
        dir: Option<tempfile::TempDir>,
    },
    /// A database created on a PostgreSQL server.
    Postgres { admin_url: String, name: String },
}

/// Why a scratch database could not be made or removed.
#[derive(Debug)]
pub enum ScratchError {
    /// The URL names no database the DAL can open.
    Url(DalError),
    /// The PostgreSQL server could not be reached.
    Connect(diesel::ConnectionError),
    /// `CREATE DATABASE` or `DROP DATABASE` failed.
    Statement {
        /// The statement.
        statement: String,
        /// The server's error.
        source: diesel::result::Error,
    },
    /// A file or directory could not be made or removed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl fmt::Display for ScratchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScratchError::Url(err) => write!(f, "{err}"),
            ScratchError::Connect(err) => {
                write!(f, "cannot connect to the PostgreSQL server: {err}")
            }
            ScratchError::Statement { statement, source } => write!(f, "{statement}: {source}"),
            ScratchError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ScratchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScratchError::Url(err) => Some(err),
            ScratchError::Connect(err) => Some(err),
            ScratchError::Statement { source, .. } => Some(source),
            ScratchError::Io { source, .. } => Some(source),
        }
    }
}

impl ScratchDb {
    /// A scratch database where `url` points: on the PostgreSQL server a
    /// `postgres://` URL names (its query parameters, the DAL's own
    /// included, are kept in [`ScratchDb::url`]; the server is asked to
    /// create the database without the DAL's); beside the file a SQLite URL
    /// names (its query kept, e.g. `?synchronous=full`); for no URL, an
    /// in-memory one, or a file without a directory, in a temporary
    /// directory of its own. Blocks while PostgreSQL creates the database.
    pub fn at(url: Option<&str>, prefix: &str) -> Result<ScratchDb, ScratchError> {
        let Some(url) = url else {
            return ScratchDb::sqlite(None, prefix, "");
        };
        match Target::parse(url).map_err(ScratchError::Url)? {
            Target::Postgres(admin_url) => ScratchDb::create_on(&admin_url, url, prefix),
            target => {
                let dir = target
                    .sqlite_path()
                    .and_then(Path::parent)
                    .filter(|dir| !dir.as_os_str().is_empty());
                let query = url.split_once('?').map_or("", |(_, query)| query);
                ScratchDb::sqlite(dir, prefix, query)
            }
        }
    }

    /// A scratch database on the PostgreSQL server `server_url` names (any
    /// database on it that may create others). Blocks while the server
    /// creates it.
    pub fn postgres(server_url: &str, prefix: &str) -> Result<ScratchDb, ScratchError> {
        match Target::parse(server_url).map_err(ScratchError::Url)? {
            Target::Postgres(admin_url) => ScratchDb::create_on(&admin_url, server_url, prefix),
            _ => Err(ScratchError::Url(DalError::Config(
                "a scratch PostgreSQL database needs a postgres:// URL".into(),
            ))),
        }
    }

    /// A new SQLite file in `dir`, or in a new temporary directory; the
    /// file itself is made by whoever opens [`ScratchDb::url`].
    fn sqlite(dir: Option<&Path>, prefix: &str, query: &str) -> Result<ScratchDb, ScratchError> {
        let (dir, own) = match dir {
            Some(dir) => (dir.to_path_buf(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix(&format!("{prefix}-"))
                    .tempdir()
                    .map_err(|source| ScratchError::Io {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let path = dir.join(format!("{prefix}-{}.db", Uuid::new_v4().simple()));
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Ok(ScratchDb {
            url: format!("sqlite://{}{query}", path.display()),
            place: Some(Place::Sqlite { path, dir: own }),
        })
    }

    /// Creates `{prefix}_{uuid}` through `admin_url` (a URL libpq takes);
    /// its URL is `url`'s with the database name replaced.
    fn create_on(admin_url: &str, url: &str, prefix: &str) -> Result<ScratchDb, ScratchError> {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        create_database(admin_url, &name)?;
        Ok(ScratchDb {
            url: with_database(url, &name),
            place: Some(Place::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            }),
        })
    }

    /// The database's URL, for the DAL or another process.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend the database is on.
    pub fn backend(&self) -> Backend {
        match self.place {
            Some(Place::Postgres { .. }) => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The SQLite file, for a SQLite database.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.place {
            Some(Place::Sqlite { path, .. }) => Some(path),
            _ => None,
        }
    }

    /// The database's name on its PostgreSQL server, for a PostgreSQL database.
    pub fn postgres_name(&self) -> Option<&str> {
        match &self.place {
            Some(Place::Postgres { name, .. }) => Some(name),
            _ => None,
        }
    }

    /// Removes the database: drops a PostgreSQL database even while
    /// connections to it remain; deletes a SQLite file with its companions
    /// (and its temporary directory). Blocks while PostgreSQL drops it.
    pub fn remove(mut self) -> Result<(), ScratchError> {
        match self.place.take() {
            Some(place) => place.remove(),
            None => Ok(()),
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let Some(place) = self.place.take() {
            // On a thread of its own: a drop may happen on an async
            // runtime's thread, which must not be the one that blocks.
            let _ = std::thread::spawn(move || place.remove()).join();
        }
    }
}

impl Place {
    fn remove(self) -> Result<(), ScratchError> {
        match self {
            Place::Sqlite { path, dir } => {
                remove_sqlite_files(&path)?;
                match dir {
                    Some(dir) => {
                        let at = dir.path().to_path_buf();
                        dir.close()
                            .map_err(|source| ScratchError::Io { path: at, source })
                    }
                    None => Ok(()),
                }
            }
            Place::Postgres { admin_url, name } => drop_database(&admin_url, &name),
        }
    }
}

/// Removes a SQLite database file and its `-wal`, `-shm` and `-journal`
/// companions, those that are present.
pub fn remove_sqlite_files(path: &Path) -> Result<(), ScratchError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ScratchError::Io { path: file, source }),
        }
    }
    Ok(())
}

/// Creates the database `name` through `admin_url`.
pub(crate) fn create_database(admin_url: &str, name: &str) -> Result<(), ScratchError> {
    admin(admin_url, &sql::create_database(name))
}

/// Drops the database `name` through `admin_url`, ending its sessions first.
fn drop_database(admin_url: &str, name: &str) -> Result<(), ScratchError> {
    admin(admin_url, &sql::drop_database(name))
}

/// Runs `statement` on a connection of its own to `url` (a URL libpq
/// takes, without the DAL's own parameters).
fn admin(url: &str, statement: &str) -> Result<(), ScratchError> {
    let mut conn = PgConnection::establish(url).map_err(ScratchError::Connect)?;
    sql::execute(&mut conn, statement).map_err(|source| ScratchError::Statement {
        statement: statement.to_owned(),
        source,
    })
}

/// `url` with its database name replaced by `database`, its query kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| i + scheme_end);
    match query {
        Some(query) => format!("{}/{database}?{query}", &base[..path_start]),
        None => format!("{}/{database}", &base[..path_start]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable&pgbouncer=true", "x"),
            "postgresql://h/x?sslmode=disable&pgbouncer=true"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn a_sqlite_scratch_file_goes_where_the_url_points_and_is_removed_with_its_companions() {
        let dir = tempfile::tempdir().unwrap();
        let given = format!(
            "sqlite://{}?synchronous=full",
            dir.path().join("x.db").display()
        );
        let db = ScratchDb::at(Some(&given), "te-scratch").unwrap();
        let path = db.sqlite_path().unwrap().to_path_buf();
        assert_eq!(path.parent(), Some(dir.path()));
        assert!(db.url().ends_with(".db?synchronous=full"), "{}", db.url());
        assert_eq!(db.backend(), Backend::Sqlite);
        for suffix in ["", "-wal", "-shm"] {
            std::fs::write(format!("{}{suffix}", path.display()), b"").unwrap();
        }
        db.remove().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn without_a_place_sqlite_gets_a_temporary_directory_that_a_drop_removes() {
        let db = ScratchDb::at(None, "te-scratch").unwrap();
        let path = db.sqlite_path().unwrap().to_path_buf();
        let dir = path.parent().unwrap().to_path_buf();
        assert!(dir.is_dir());
        std::fs::write(&path, b"").unwrap();
        drop(db);
        assert!(!dir.exists());
        let memory = ScratchDb::at(Some("sqlite::memory:"), "te-scratch").unwrap();
        assert!(memory.url().starts_with("sqlite://"), "{}", memory.url());
    }

    #[test]
    fn a_url_the_dal_cannot_open_is_refused() {
        let err = ScratchDb::at(Some("mysql://root@h/x"), "te-scratch").unwrap_err();
        assert!(matches!(err, ScratchError::Url(_)), "{err}");
        let err = ScratchDb::postgres("sqlite://x.db", "te-scratch").unwrap_err();
        assert!(matches!(err, ScratchError::Url(_)), "{err}");
    }
}
