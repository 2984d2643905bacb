//! Core of the task-execution DAL: the [`TaskExecutionDal`] handle (pool,
//! backend, configuration), [`DalError`], the models and status enums, the
//! diesel [`schema`] with its custom [`sql_types`], and the embedded
//! migrations.
//!
//! Operations live in sibling crates that each add a trait to
//! [`TaskExecutionDal`] (`te-crud`, `te-state`, `te-context`, `te-claiming`,
//! `te-queries`); the `task-execution-dal` facade re-exports them all. To run
//! a query of your own, write it once against [`AnyConnection`] with the
//! [`schema`] and hand it to [`TaskExecutionDal::run`] (reads) or
//! [`TaskExecutionDal::write`] (writes, in one transaction).

mod any_connection;
#[doc(hidden)]
pub mod coalesce;
mod config;
mod connection;
mod dal;
mod error;
mod file_identity;
mod group_commit;
mod migrations;
mod models;
mod pool;
pub mod schema;
pub mod sql_types;
#[doc(hidden)]
pub mod toolkit;
mod url_params;
mod wakeup;

pub use config::{Backend, DalConfig, Synchronous, Target};
pub use connection::{AnyConnection, MultiBackend};
pub use dal::TaskExecutionDal;
pub use error::{DalError, Interruption, PipelineOperation, PoolError};
pub use models::{
    CancelOutcome, ClaimResult, EventType, ExecutionEvent, HeartbeatResult, NewPipelineExecution,
    NewTaskExecution, ParseEnumError, PipelineExecution, PipelineStatus, PruneOutcome, RetryStats,
    RunnerClaimResult, StaleClaim, SubStatus, TaskExecution, TaskExecutionMetadata, TaskStatus,
};
pub use pool::{ConnectionManager, Pool};
#[doc(hidden)]
pub use wakeup::{MAX_WAIT, WAKEUP_POLL_INTERVAL};
