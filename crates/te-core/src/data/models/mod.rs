//! The models of the DAL: rows, new-row builders, enums and result types (data only).

mod event;
mod metadata;
mod pipeline;
mod results;
mod task;

pub use event::{ExecutionEvent, NewEvent};
pub use metadata::TaskExecutionMetadata;
pub use pipeline::{NewPipelineExecution, PipelineExecution};
pub use results::{
    CancelOutcome, ClaimResult, HeartbeatResult, PruneOutcome, RetryStats, RunnerClaimResult,
    StaleClaim,
};
pub use task::{NewTaskExecution, TaskExecution};
