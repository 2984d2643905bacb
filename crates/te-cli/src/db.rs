//! Opening the database a command names: SQLite file paths, connecting with
//! a pool sized for the command, and refusing a database that is not there.

use std::path::PathBuf;

use task_execution_dal::prelude::*;

use crate::error::CliError;

/// The SQLite file a URL names, if it names one (mirrors the DAL's URL rules:
/// `sqlite://PATH`, `sqlite:PATH`, or a bare path ending in `.db`, `.sqlite`
/// or `.sqlite3`); `None` for PostgreSQL, in-memory SQLite and anything else.
pub(crate) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        return (!path.is_empty() && path != ":memory:" && path != "memory:")
            .then(|| PathBuf::from(path));
    }
    let lower = url.to_ascii_lowercase();
    (!url.contains("://")
        && [".db", ".sqlite", ".sqlite3"]
            .iter()
            .any(|ext| lower.ends_with(ext)))
    .then(|| PathBuf::from(url))
}

/// Connects to `url`, with at most `max_connections` pooled connections if given.
pub(crate) async fn connect(
    url: &str,
    max_connections: Option<usize>,
) -> Result<TaskExecutionDal, CliError> {
    let mut config = DalConfig::new(url);
    if let Some(n) = max_connections {
        config = config.max_connections(n);
    }
    Ok(TaskExecutionDal::connect_with(config).await?)
}

/// Connects to a database that must already exist: a SQLite URL naming a
/// missing file is [`CliError::MissingDatabase`] (instead of creating an
/// empty file).
pub(crate) async fn connect_existing(url: &str) -> Result<TaskExecutionDal, CliError> {
    if let Some(path) = sqlite_file(url)
        && !path.exists()
    {
        return Err(CliError::MissingDatabase {
            path: path.display().to_string(),
        });
    }
    connect(url, None).await
}

/// Removes a SQLite database file and its `-wal` and `-shm` companions, if present.
pub(crate) fn remove_sqlite_files(path: &std::path::Path) -> Result<(), CliError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CliError::Io {
                    what: format!("cannot remove {}", file.display()),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_files() {
        assert_eq!(
            sqlite_file("sqlite://te-demo.db"),
            Some("te-demo.db".into())
        );
        assert_eq!(sqlite_file("sqlite:///tmp/x.db"), Some("/tmp/x.db".into()));
        assert_eq!(sqlite_file("sqlite:a.db?mode=rwc"), Some("a.db".into()));
        assert_eq!(sqlite_file("data/t.sqlite3"), Some("data/t.sqlite3".into()));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
        assert_eq!(sqlite_file("mysql://h/x.db"), None);
    }

    #[test]
    fn removes_database_and_companions() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        for name in ["x.db", "x.db-wal", "x.db-shm", "other.db"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        remove_sqlite_files(&db).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec!["other.db".to_owned()]);
        remove_sqlite_files(&db).unwrap();
    }
}
