//! Opening the database a command names: connecting with a pool sized for the
//! command, refusing a SQLite file that is not there (the URL is read by the
//! DAL's own [`Target`]), and removing SQLite files.

use std::path::Path;

use task_execution_dal::prelude::*;
use te_testkit::ScratchError;

use crate::base::error::CliError;

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
/// empty file), and a SQLite file without the DAL's tables (such as an
/// empty file) is [`CliError::NotMigrated`], found with a read-only look
/// before connecting, so that the file is left exactly as it was.
pub(crate) async fn connect_existing(url: &str) -> Result<TaskExecutionDal, CliError> {
    let target = Target::parse(url)?;
    if let Some(path) = target.sqlite_path()
        && !path.exists()
    {
        return Err(CliError::MissingDatabase {
            path: path.display().to_string(),
        });
    }
    if target.sqlite_file_is_migrated() == Some(false) {
        return Err(CliError::NotMigrated {
            target: target.redacted(),
        });
    }
    connect(url, None).await
}

/// Removes a SQLite database file and its companions (`-wal`, `-shm`,
/// `-journal`), those present, as te-testkit removes its scratch files.
pub(crate) fn remove_sqlite_files(path: &Path) -> Result<(), CliError> {
    te_testkit::remove_sqlite_files(path).map_err(|err| match err {
        ScratchError::Io { path, source } => CliError::Io {
            what: format!("cannot remove {}", path.display()),
            source,
        },
        other => CliError::Scratch(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_sqlite_file_is_refused_and_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        for url in [
            format!("sqlite://{}", path.display()),
            path.display().to_string(),
        ] {
            let err = connect_existing(&url).await.unwrap_err();
            assert!(
                matches!(err, CliError::MissingDatabase { .. }),
                "{url}: {err}"
            );
        }
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn in_memory_sqlite_needs_no_file() {
        for url in ["sqlite::memory:", "sqlite://:memory:"] {
            connect_existing(url).await.unwrap();
        }
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
