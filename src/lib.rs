//! The task-execution DAL: store and coordinate task executions of a workflow
//! engine on PostgreSQL or embedded SQLite.

#[doc(inline)]
pub use te_core::{
    Backend, ClaimResult, DalConfig, DalError, EventType, ExecutionEvent, HeartbeatResult,
    NewPipelineExecution, NewTaskExecution, PipelineExecution, PipelineStatus, RetryStats,
    RunnerClaimResult, StaleClaim, SubStatus, TaskExecution, TaskExecutionDal,
    TaskExecutionMetadata, TaskStatus,
};
#[doc(inline)]
pub use te_claiming::TaskClaiming;
#[doc(inline)]
pub use te_context::TaskContexts;
#[doc(inline)]
pub use te_crud::TaskCrud;
#[doc(inline)]
pub use te_queries::TaskQueries;
#[doc(inline)]
pub use te_state::TaskState;

/// Everything a user of the DAL needs, in one import.
pub mod prelude {
    pub use te_claiming::TaskClaiming;
    pub use te_context::TaskContexts;
    pub use te_core::{
        Backend, ClaimResult, DalConfig, DalError, EventType, ExecutionEvent, HeartbeatResult,
        NewPipelineExecution, NewTaskExecution, PipelineExecution, PipelineStatus, RetryStats,
        RunnerClaimResult, StaleClaim, SubStatus, TaskExecution, TaskExecutionDal,
        TaskExecutionMetadata, TaskStatus,
    };
    pub use te_crud::TaskCrud;
    pub use te_queries::TaskQueries;
    pub use te_state::TaskState;
}
