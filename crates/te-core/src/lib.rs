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

// The floors, each building only on those listed before it.
mod config;
mod data;
mod ground;
mod handle;
mod sql;
#[doc(hidden)]
pub mod toolkit;

pub use config::{Backend, DalConfig, Synchronous, Target};
pub use data::any_connection::{AnyConnection, MultiBackend};
pub use data::models::{
    CancelOutcome, ClaimResult, ExecutionEvent, HeartbeatResult, NewPipelineExecution,
    NewTaskExecution, PipelineExecution, PruneOutcome, RetryStats, RunnerClaimResult, StaleClaim,
    TaskExecution, TaskExecutionMetadata,
};
pub use data::{schema, sql_types};
pub use ground::error::{DalError, DalFuture, Interruption, PipelineOperation, PoolError};
pub use ground::status::{EventType, ParseEnumError, PipelineStatus, SubStatus, TaskStatus};
pub use handle::dal::TaskExecutionDal;
pub use handle::pool::{ConnectionManager, Pool};
