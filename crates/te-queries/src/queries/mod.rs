//! The query behind each [`crate::TaskQueries`] method, as a plain function
//! on one connection (so that tests can run several on one connection and
//! count the statements each issues).

/// The keyset condition of a page after row `$after` of `$table` (a schema
/// module with `id` and `created_at`), ordered by `(created_at, id)`:
/// `created_at > c OR (created_at = c AND id > after)`, where `c`, the
/// cursor row's `created_at`, is read by a subquery on alias `$cursor`.
macro_rules! after_cursor {
    ($table:ident, $cursor:ident, $after:expr) => {{
        let after: uuid::Uuid = $after;
        let cursor_created_at = || {
            $cursor
                .filter($cursor.field($table::id).eq(bind::id(after)))
                .select($cursor.field($table::created_at))
                .single_value()
        };
        $table::created_at
            .nullable()
            .gt(cursor_created_at())
            .or($table::created_at
                .nullable()
                .eq(cursor_created_at())
                .and($table::id.gt(bind::id(after))))
    }};
}

mod completion;
mod counts;
mod events;
mod list;
mod pipelines;
mod retry_stats;
mod shared;
mod status;
mod tasks;

pub use completion::{pipeline_completion, pipeline_failure};
pub use counts::{count_running_tasks, count_tasks_by_status};
pub use events::{events_for_pipeline, events_for_task};
pub use list::list_tasks;
pub use pipelines::{active_pipelines, list_pipelines};
pub use retry_stats::retry_stats;
pub use status::{
    all_task_statuses_for_pipelines, task_status, task_statuses_batch, task_statuses_by_name,
};
pub use tasks::{exhausted_retry_tasks, orphaned_tasks, pending_tasks, pending_tasks_batch};
