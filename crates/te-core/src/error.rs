//! `DalError`: the one error type every operation returns.

use std::fmt;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use crate::models::TaskStatus;

/// Error of the pool that hands out connections: a timeout waiting for a
/// connection, a connection that could not be made, or a closed pool.
pub type PoolError = deadpool::managed::PoolError<diesel::ConnectionError>;

/// Every failure of the DAL.
///
/// Each variant keeps its cause: pool failures ([`DalError::Pool`]), failures
/// to connect ([`DalError::Connection`]) and failures of a query
/// ([`DalError::Database`]) stay distinct, and a refused operation
/// ([`DalError::IllegalTransition`], [`DalError::InvalidInput`],
/// [`DalError::Conflict`], [`DalError::NotFound`]) never wrote anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DalError {
    /// No row has this key.
    #[error("{entity} {key} not found")]
    NotFound {
        /// What was looked for, e.g. `"task execution"`.
        entity: &'static str,
        /// The key that was looked for (an id or a name).
        key: String,
    },

    /// A unique key is already taken (e.g. a second task with the same name in
    /// one pipeline execution).
    #[error("conflict: {message}")]
    Conflict {
        /// The database's description of the violated key.
        message: String,
        /// The underlying database error.
        #[source]
        source: DieselError,
    },

    /// The task is not in a status the requested transition may start from.
    /// Nothing was written.
    #[error("illegal transition of task {task_id}: {from} -> {to}")]
    IllegalTransition {
        /// The task whose transition was refused.
        task_id: Uuid,
        /// Its status when the transition was attempted.
        from: TaskStatus,
        /// The status the transition would have set.
        to: TaskStatus,
    },

    /// The runner no longer holds the claim on this task.
    #[error("runner {runner_id} no longer holds the claim on task {task_id}")]
    ClaimLost {
        /// The task.
        task_id: Uuid,
        /// The runner that lost its claim.
        runner_id: Uuid,
    },

    /// An argument was rejected before anything was written.
    #[error("invalid input for `{field}`: {reason}")]
    InvalidInput {
        /// The argument or field at fault.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// The connection pool could not hand out a connection (timeout, closed
    /// pool, or a new connection that could not be made).
    #[error("connection pool: {0}")]
    Pool(#[source] PoolError),

    /// A connection to the database could not be established.
    #[error("cannot connect to {target}: {source}")]
    Connection {
        /// The database, with any password removed.
        target: String,
        /// The cause reported by the driver.
        #[source]
        source: diesel::ConnectionError,
    },

    /// A query failed.
    #[error("database error: {0}")]
    Database(#[source] DieselError),

    /// A stored value could not be decoded (e.g. a context that is not valid JSON).
    #[error("stored data is invalid: {what}")]
    InvalidData {
        /// What could not be decoded.
        what: String,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The migrations could not be applied or reverted.
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The configuration (URL, pool settings) is unusable.
    #[error("configuration error: {0}")]
    Config(String),

    /// The blocking task that ran a query panicked or was cancelled.
    #[error("query task was interrupted: {0}")]
    Interrupted(String),
}

impl DalError {
    /// A [`DalError::NotFound`] for `entity` with the given key.
    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        DalError::NotFound {
            entity,
            key: key.to_string(),
        }
    }

    /// A [`DalError::InvalidInput`] for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DalError::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// True for [`DalError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, DalError::NotFound { .. })
    }
}

impl From<DieselError> for DalError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                DalError::Conflict {
                    message: info.message().to_owned(),
                    source: err,
                }
            }
            DieselError::NotFound => DalError::NotFound {
                entity: "row",
                key: String::new(),
            },
            other => DalError::Database(other),
        }
    }
}

impl From<PoolError> for DalError {
    fn from(err: PoolError) -> Self {
        DalError::Pool(err)
    }
}

/// True when `err` is a foreign-key violation (e.g. a task for a pipeline
/// execution that does not exist).
pub fn is_foreign_key_violation(err: &DalError) -> bool {
    matches!(
        err,
        DalError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation,
            _
        ))
    )
}
