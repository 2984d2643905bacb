//! `DalError`: the one error type every operation returns.

use std::fmt;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use crate::ground::status::{PipelineStatus, TaskStatus};

/// Error of the pool that hands out connections: a timeout waiting for a
/// connection, a connection that could not be made, or a closed pool.
pub type PoolError = deadpool::managed::PoolError<diesel::ConnectionError>;

/// What every operation of the DAL returns: a future, `Send` so that it can
/// run on any thread of a multi-threaded runtime, of `Result<T, DalError>`.
///
/// `impl DalFuture<T>` in a method's signature is a shorter spelling of
/// `impl Future<Output = Result<T, DalError>> + Send`; every such future is
/// one, and `.await` gives the `Result`.
pub trait DalFuture<T>: Future<Output = Result<T, DalError>> + Send {}

impl<T, F> DalFuture<T> for F where F: Future<Output = Result<T, DalError>> + Send {}

/// Every failure of the DAL.
///
/// Each variant keeps its cause: pool failures ([`DalError::Pool`]), failures
/// to connect ([`DalError::Connection`]) and failures of a query
/// ([`DalError::Database`]) stay distinct, and a refused operation
/// ([`DalError::IllegalTransition`], [`DalError::IllegalPipelineTransition`],
/// [`DalError::InvalidInput`],
/// [`DalError::Conflict`], [`DalError::NotFound`]) never wrote anything.
/// Neither did a call that gave up waiting ([`DalError::Timeout`]) or found
/// the database unusable ([`DalError::NotMigrated`],
/// [`DalError::DatabaseFileMissing`]).
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

    /// The pipeline execution is not in a status the requested change may
    /// start from (e.g. cancelling a `Completed` pipeline, pausing a
    /// terminal one, adding a task to a `Cancelled` one). Nothing was
    /// written. The message names the operation that was refused and the
    /// status that forbids it, e.g. `cannot pause pipeline execution …: it
    /// is Completed`; a refused status change names both statuses.
    #[error("{}", pipeline_refusal(*.operation, .pipeline_id, *.from, *.to))]
    IllegalPipelineTransition {
        /// The pipeline execution whose change was refused.
        pipeline_id: Uuid,
        /// Its status when the change was attempted.
        from: PipelineStatus,
        /// The status the change would have set (its current status for a
        /// pause or resume, which keep the status; `Running` for a write
        /// that would give a cancelled pipeline work again).
        to: PipelineStatus,
        /// What was refused.
        operation: PipelineOperation,
    },

    /// The runner no longer holds the claim on this task.
    ///
    /// Reserved for operations that cannot report a lost claim in their
    /// result. No operation of this version returns it: runner-guarded writes
    /// report a lost claim as `Ok(false)`, heartbeats as
    /// [`crate::HeartbeatResult::ClaimLost`] and runner claims as
    /// [`crate::RunnerClaimResult::AlreadyClaimed`].
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

    /// PostgreSQL reported a named prepared statement missing or already
    /// there (SQLSTATE `26000` or `42P05`): the mark of a connection pooler
    /// in transaction mode between this handle and the server, which sends
    /// each transaction to whichever server connection is free. Connect with
    /// `pgbouncer=true` in the URL (or [`crate::DalConfig::transaction_pooler`]).
    #[error(
        "{source}: a connection pooler in transaction mode (pgbouncer, pgcat, Supavisor) \
         seems to stand between this handle and PostgreSQL; add `pgbouncer=true` to the \
         database URL (or set `DalConfig::transaction_pooler`)"
    )]
    TransactionPooler {
        /// The database's error.
        #[source]
        source: DieselError,
    },

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

    /// The blocking task that ran a query panicked or was cancelled; the
    /// connection it held is discarded.
    #[error("query task was interrupted: {0}")]
    Interrupted(#[source] Interruption),

    /// A guarded write kept missing its row because other writers changed it
    /// between each attempt and the read that explains the miss. Nothing was
    /// written; trying again is safe.
    #[error("task execution {task_id} kept changing under concurrent writers; try again")]
    Contended {
        /// The task whose row kept changing.
        task_id: Uuid,
    },

    /// A configured timeout expired before the operation could start; nothing
    /// was written and trying again later is safe.
    ///
    /// `what` names the setting of [`crate::DalConfig`] that expired:
    /// `"acquire_timeout"` (no pooled connection became free) or
    /// `"sqlite_busy_timeout"` (the SQLite database's write lock stayed held
    /// by another writer, of this process or another). A call never waits
    /// much longer than the timeout it names.
    #[error("timed out after {after:?} waiting for {}; `{what}` expired", timeout_subject(.what))]
    Timeout {
        /// The [`crate::DalConfig`] setting that expired.
        what: &'static str,
        /// Its configured value.
        after: Duration,
    },

    /// The database has no table `table` of the DAL: it was never migrated
    /// (or its tables were dropped). Nothing was written.
    #[error(
        "the database has no table `{table}`: it is not migrated; run \
         `TaskExecutionDal::run_migrations` (or `te migrate`) first"
    )]
    NotMigrated {
        /// The missing table.
        table: String,
    },

    /// The SQLite file this handle opened was deleted or replaced while the
    /// handle was in use. Nothing was written: the handle refuses every call
    /// rather than write into a file no one can open again. Connect anew.
    #[error(
        "the SQLite database file {path} was deleted or replaced after it was opened; \
         connect again"
    )]
    DatabaseFileMissing {
        /// The file's path, as given in the URL.
        path: String,
    },
}

/// The operation on a pipeline execution that
/// [`DalError::IllegalPipelineTransition`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PipelineOperation {
    /// A change of its status (`update_pipeline_status`).
    SetStatus,
    /// `cancel_pipeline` (or `update_pipeline_status` to `Cancelled`).
    Cancel,
    /// `pause_pipeline`.
    Pause,
    /// `resume_pipeline`.
    Resume,
    /// Creating tasks in it (`create`, `create_many`).
    CreateTasks,
    /// Making one of its tasks `Ready` (`mark_ready`, a retry, a reset of
    /// the retry state).
    ReadyTask,
}

/// The message of [`DalError::IllegalPipelineTransition`].
fn pipeline_refusal(
    operation: PipelineOperation,
    pipeline_id: &Uuid,
    from: PipelineStatus,
    to: PipelineStatus,
) -> String {
    let refused = match operation {
        PipelineOperation::SetStatus => {
            return format!(
                "illegal transition of pipeline execution {pipeline_id}: {from} -> {to}"
            );
        }
        PipelineOperation::Cancel => {
            return format!(
                "cannot cancel pipeline execution {pipeline_id}: it is {from} ({from} -> {to} is not allowed)"
            );
        }
        PipelineOperation::Pause => "pause pipeline execution",
        PipelineOperation::Resume => "resume pipeline execution",
        PipelineOperation::CreateTasks => "create tasks in pipeline execution",
        PipelineOperation::ReadyTask => "make a task ready in pipeline execution",
    };
    format!("cannot {refused} {pipeline_id}: it is {from}")
}

/// What a [`DalError::Timeout`] waited for, by the setting's name.
fn timeout_subject(what: &str) -> &'static str {
    match what {
        "acquire_timeout" => "a pooled connection",
        "sqlite_busy_timeout" => "the SQLite write lock",
        _ => "the database",
    }
}

/// Why the blocking task that ran a query did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Interruption {
    /// The query's closure panicked; the message of the panic, if it had one.
    #[error("the query panicked: {0}")]
    Panicked(String),
    /// The blocking task was aborted before it finished (e.g. the runtime shut down).
    #[error("the query was aborted before it finished")]
    Aborted,
}

impl Interruption {
    /// The interruption of a blocking task that panicked with `payload`.
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Interruption::Panicked(message)
    }
}

impl From<deadpool_sync::InteractError> for Interruption {
    fn from(err: deadpool_sync::InteractError) -> Self {
        match err {
            deadpool_sync::InteractError::Panic(payload) => Interruption::from_panic(&*payload),
            deadpool_sync::InteractError::Cancelled => Interruption::Aborted,
        }
    }
}

impl From<tokio::task::JoinError> for Interruption {
    fn from(err: tokio::task::JoinError) -> Self {
        match err.try_into_panic() {
            Ok(payload) => Interruption::from_panic(&*payload),
            Err(_) => Interruption::Aborted,
        }
    }
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

    /// [`DalError::NotFound`] for the task execution `task_id`.
    pub fn task_not_found(task_id: Uuid) -> Self {
        Self::not_found(TASK_EXECUTION, task_id)
    }

    /// [`DalError::NotFound`] for the task named `task_name` (in a pipeline
    /// execution the caller names).
    pub fn task_name_not_found(task_name: &str) -> Self {
        Self::not_found(TASK_EXECUTION, task_name)
    }

    /// [`DalError::NotFound`] for the pipeline execution `pipeline_id`.
    pub fn pipeline_not_found(pipeline_id: Uuid) -> Self {
        Self::not_found(PIPELINE_EXECUTION, pipeline_id)
    }

    /// [`DalError::NotFound`] for the context `context_id`.
    pub fn context_not_found(context_id: Uuid) -> Self {
        Self::not_found(CONTEXT, context_id)
    }

    /// True for [`DalError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, DalError::NotFound { .. })
    }

    /// True when the connection a query ran on was lost (closed by the
    /// server, cut by the network): that connection must not be reused.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            DalError::Database(
                DieselError::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _
                ) | DieselError::BrokenTransactionManager
            )
        )
    }

    /// True when a foreign key was violated (e.g. a task for a pipeline
    /// execution that does not exist).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            DalError::Database(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }
}

/// The entity [`DalError::NotFound`] names for a task execution.
pub(crate) const TASK_EXECUTION: &str = "task execution";
/// The entity [`DalError::NotFound`] names for a pipeline execution.
pub(crate) const PIPELINE_EXECUTION: &str = "pipeline execution";
/// The entity [`DalError::NotFound`] names for a context.
pub(crate) const CONTEXT: &str = "context";
