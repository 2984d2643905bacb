//! The identity of a SQLite database file (device and inode on unix), taken
//! when a handle connects and compared on every checkout, so that a file
//! deleted or replaced under a running handle is refused instead of written
//! into after it was unlinked.

use crate::ground::error::DalError;

/// A SQLite file as it was when the handle connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    path: String,
    id: (u64, u64),
}

impl FileIdentity {
    /// The identity of the file at `path` now; `None` where it cannot be
    /// known (not unix, or the file cannot be read): such a handle is not
    /// checked.
    pub(crate) fn of(path: &str) -> Option<Self> {
        Some(FileIdentity {
            path: path.to_owned(),
            id: file_id(path)?,
        })
    }

    /// Ok when the path still names the same file, else
    /// [`DalError::DatabaseFileMissing`]. One `stat` (about a microsecond).
    pub(crate) fn check(&self) -> Result<(), DalError> {
        if file_id(&self.path) == Some(self.id) {
            Ok(())
        } else {
            Err(DalError::DatabaseFileMissing {
                path: self.path.clone(),
            })
        }
    }
}

#[cfg(unix)]
fn file_id(path: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_path: &str) -> Option<(u64, u64)> {
    None
}
