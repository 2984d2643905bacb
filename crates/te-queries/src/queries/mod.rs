//! The query behind each [`crate::TaskQueries`] method, as a plain function
//! on one connection (so that tests can run several on one connection and
//! count the statements each issues).

mod completion;
mod counts;
mod events;
mod list;
mod pipelines;
mod retry_stats;
mod status;
mod tasks;

pub use completion::{pipeline_completion, pipeline_failure};
pub use counts::{count_running_tasks, count_tasks_by_status};
pub use events::{events_for_pipeline, events_for_task};
pub use list::list_tasks;
pub use pipelines::{active_pipelines, list_pipelines};
pub use retry_stats::retry_stats;
pub use status::{all_task_statuses_for_pipelines, task_status, task_statuses_batch};
pub use tasks::{exhausted_retry_tasks, orphaned_tasks, pending_tasks, pending_tasks_batch};

pub(crate) use te_core::toolkit::batch::unique;
