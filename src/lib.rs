//! The task-execution DAL: store and coordinate task executions of a workflow
//! engine on PostgreSQL or embedded SQLite.
#![doc = ""]
#![doc = include_str!("lib.md")]

// The root and the prelude expose the same items; they are listed once, in
// the prelude.
#[doc(inline)]
pub use prelude::*;

/// Everything a user of the DAL needs, in one import.
pub mod prelude {
    pub use te_claiming::TaskClaiming;
    pub use te_context::{TaskContexts, merge_context_values};
    pub use te_core::{
        Backend, CancelOutcome, ClaimResult, DalConfig, DalError, DalFuture, EventType,
        ExecutionEvent, HeartbeatResult, Interruption, NewPipelineExecution, NewTaskExecution,
        PipelineExecution, PipelineOperation, PipelineStatus, PruneOutcome, RetryStats,
        RunnerClaimResult, StaleClaim, SubStatus, Synchronous, Target, TaskExecution,
        TaskExecutionDal, TaskExecutionMetadata, TaskStatus,
    };
    pub use te_crud::{TaskCrud, TaskUpdate, check_prune_arguments};
    pub use te_queries::{PipelineFilter, TaskFilter, TaskQueries};
    pub use te_state::TaskTransitions;
}
