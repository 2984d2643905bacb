//! `Backend` and `Target`: which database a URL names.

use std::fmt;

use crate::config::redact::redact_password;
use crate::ground::error::DalError;

/// The database engine behind a [`crate::TaskExecutionDal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL: many workers on many hosts share one database.
    Postgres,
    /// SQLite: one host, embedded, one file (or memory).
    Sqlite,
}

impl Backend {
    /// The backend's name in lower case: `"postgres"` or `"sqlite"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the connections go, as parsed from a URL. Its `Debug` shows a
/// PostgreSQL URL with any password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL connection string (`postgres://…` or `postgresql://…`).
    Postgres(String),
    /// A SQLite database file path.
    SqliteFile(String),
    /// A private in-memory SQLite database (`sqlite::memory:`).
    SqliteMemory,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&redact_password(url))
                .finish(),
            Target::SqliteFile(path) => f.debug_tuple("SqliteFile").field(path).finish(),
            Target::SqliteMemory => f.write_str("SqliteMemory"),
        }
    }
}

impl Target {
    /// Parses a database URL.
    ///
    /// `postgres://` and `postgresql://` select PostgreSQL (the DAL's own
    /// query parameters, `pgbouncer` and `listen_url`, are removed from the
    /// connection string: see [`DalConfig`](crate::DalConfig)); `sqlite://PATH`,
    /// `sqlite:PATH`, `sqlite::memory:` and a bare path ending in `.db`,
    /// `.sqlite` or `.sqlite3` select SQLite. Anything else is
    /// [`DalError::Config`] naming the scheme, never the rest of the URL.
    pub fn parse(url: &str) -> Result<Self, DalError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // The DAL's own parameters (`pgbouncer`, `listen_url`) never
            // reach libpq, which refuses parameters it does not know.
            let (clean, _) = crate::config::url_params::split(url)?;
            return Ok(Target::Postgres(clean));
        }
        if url == "sqlite::memory:" || url == "sqlite://:memory:" || url == ":memory:" {
            return Ok(Target::SqliteMemory);
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(DalError::Config(
                    "a sqlite URL needs a file path, e.g. sqlite://tasks.db".into(),
                ));
            }
            return Ok(Target::SqliteFile(path.to_owned()));
        }
        let lower = url.to_ascii_lowercase();
        if !url.contains("://")
            && [".db", ".sqlite", ".sqlite3"]
                .iter()
                .any(|ext| lower.ends_with(ext))
        {
            return Ok(Target::SqliteFile(url.to_owned()));
        }
        let scheme = match url.split_once("://") {
            Some((scheme, _)) => format!("unsupported database URL scheme `{scheme}://`"),
            None if url.is_empty() => "the database URL is empty".to_owned(),
            None => {
                "the database URL has no scheme (expected postgres://, postgresql:// or sqlite://)"
                    .to_owned()
            }
        };
        Err(DalError::Config(format!(
            "{scheme}; expected postgres://, postgresql://, sqlite://PATH, sqlite::memory: or a path ending in .db/.sqlite/.sqlite3"
        )))
    }

    /// The backend this target selects.
    pub fn backend(&self) -> Backend {
        match self {
            Target::Postgres(_) => Backend::Postgres,
            Target::SqliteFile(_) | Target::SqliteMemory => Backend::Sqlite,
        }
    }

    /// The database file of a [`Target::SqliteFile`] target, as the URL
    /// names it (relative paths stay relative); `None` for PostgreSQL and
    /// in-memory SQLite.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            Target::SqliteFile(path) => Some(std::path::Path::new(path)),
            Target::Postgres(_) | Target::SqliteMemory => None,
        }
    }

    /// For a SQLite file: whether it holds the DAL's tables, found without
    /// writing anything. The file is opened read-only (`mode=ro`) and no
    /// pragma is set, where connecting switches the file to WAL, which
    /// writes even to an empty file. `None` for PostgreSQL, in-memory
    /// SQLite, a missing file, or a file that cannot be read this way (such
    /// as a WAL database whose `-shm` file a read-only connection may not
    /// create): connect to learn more.
    pub fn sqlite_file_is_migrated(&self) -> Option<bool> {
        use diesel::{Connection, SqliteConnection};

        let path = self.sqlite_path()?;
        if !path.is_file() {
            return None;
        }
        // A URI filename: `%`, `?` and `#` of the path are escaped.
        let mut uri = String::from("file:");
        for c in path.to_str()?.chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                other => uri.push(other),
            }
        }
        uri.push_str("?mode=ro");
        let mut conn = SqliteConnection::establish(&uri).ok()?;
        crate::sql::session::sqlite_has_table(&mut conn, "task_executions").ok()
    }

    /// A description safe to print: the URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Target::Postgres(url) => redact_password(url),
            Target::SqliteFile(path) => format!("sqlite://{path}"),
            Target::SqliteMemory => "sqlite::memory:".to_owned(),
        }
    }
}
