//! `DalConfig` and `Backend`: which database a URL names, and how the pool behaves.

use std::fmt;
use std::time::Duration;

use crate::error::DalError;

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

/// Where the connections go, as parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A PostgreSQL connection string (`postgres://…` or `postgresql://…`).
    Postgres(String),
    /// A SQLite database file path.
    SqliteFile(String),
    /// A private in-memory SQLite database (`sqlite::memory:`).
    SqliteMemory,
}

impl Target {
    /// Parses a database URL.
    ///
    /// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://PATH`,
    /// `sqlite:PATH`, `sqlite::memory:` and a bare path ending in `.db`,
    /// `.sqlite` or `.sqlite3` select SQLite. Anything else is
    /// [`DalError::Config`] naming the scheme, never the rest of the URL.
    pub fn parse(url: &str) -> Result<Self, DalError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_owned()));
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

    /// A description safe to print: the URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Target::Postgres(url) => redact_password(url),
            Target::SqliteFile(path) => format!("sqlite://{path}"),
            Target::SqliteMemory => "sqlite::memory:".to_owned(),
        }
    }
}

/// Replaces the password of `scheme://user:password@host/…` with `***`.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!(
                    "{scheme}://{user}:***@{}{}",
                    &authority[at + 1..],
                    &rest[authority_end..]
                ),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// How to connect and how the connection pool behaves.
///
/// `DalConfig::new(url)` gives sensible defaults for the backend the URL
/// selects; every field can be changed before
/// [`crate::TaskExecutionDal::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DalConfig {
    /// The database URL (see [`Target::parse`]).
    pub url: String,
    /// Most connections the pool keeps open. `None`: 10 on PostgreSQL, 4 on a
    /// SQLite file, 1 for in-memory SQLite (each in-memory connection would
    /// otherwise see its own database).
    pub max_connections: Option<usize>,
    /// How long an operation waits for a free connection before
    /// [`DalError::Timeout`] naming `acquire_timeout`.
    pub acquire_timeout: Duration,
    /// How long making one new connection may take.
    pub connect_timeout: Duration,
    /// SQLite only: how long a write waits in all for its turn among this
    /// handle's writers and for the database's write lock (which another
    /// process may hold), and how long any statement waits for a lock,
    /// before [`DalError::Timeout`] naming `sqlite_busy_timeout`.
    pub sqlite_busy_timeout: Duration,
}

impl DalConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DalConfig {
            url: url.into(),
            max_connections: None,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(30),
        }
    }

    /// Sets [`DalConfig::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Sets [`DalConfig::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`DalConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`DalConfig::sqlite_busy_timeout`].
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.sqlite_busy_timeout = timeout;
        self
    }

    pub(crate) fn pool_size(&self, target: &Target) -> usize {
        match (target, self.max_connections) {
            (Target::SqliteMemory, _) => 1,
            (_, Some(n)) => n.max(1),
            (Target::Postgres(_), None) => 10,
            (Target::SqliteFile(_), None) => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_backends() {
        assert_eq!(
            Target::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Target::parse("sqlite://tasks.db").unwrap(),
            Target::SqliteFile("tasks.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///tmp/x.db").unwrap(),
            Target::SqliteFile("/tmp/x.db".into())
        );
        assert_eq!(
            Target::parse("sqlite::memory:").unwrap(),
            Target::SqliteMemory
        );
        assert_eq!(
            Target::parse("data/t.sqlite3").unwrap(),
            Target::SqliteFile("data/t.sqlite3".into())
        );
    }

    #[test]
    fn unknown_scheme_names_scheme_not_password() {
        let err = Target::parse("mysql://root:hunter2@db/x").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mysql://"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(err, DalError::Config(_)));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
    }
}
