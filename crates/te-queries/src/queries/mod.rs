//! The query behind each [`crate::TaskQueries`] method, as a plain function
//! on one connection (so that tests can run several on one connection and
//! count the statements each issues).

mod completion;
mod counts;
mod events;
mod list;
mod retry_stats;
mod status;
mod tasks;

use std::collections::HashSet;
use std::hash::Hash;

pub use completion::{pipeline_completion, pipeline_failure};
pub use counts::{count_running_tasks, count_tasks_by_status};
pub use events::{events_for_pipeline, events_for_task};
pub use list::list_tasks;
pub use retry_stats::retry_stats;
pub use status::{all_task_statuses_for_pipelines, task_status, task_statuses_batch};
pub use tasks::{exhausted_retry_tasks, orphaned_tasks, pending_tasks, pending_tasks_batch};

/// `values` without repeats, first occurrence kept, order otherwise unchanged:
/// a value repeated across two chunks of an `IN` list must not be returned twice.
pub(crate) fn unique<T: Eq + Hash + Clone>(values: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::with_capacity(values.len());
    values
        .into_iter()
        .filter(|value| seen.insert(value.clone()))
        .collect()
}

/// The entity a [`te_core::DalError::NotFound`] names for an unknown pipeline execution.
pub(crate) const PIPELINE: &str = "pipeline execution";

#[cfg(test)]
mod tests {
    use super::unique;

    #[test]
    fn unique_keeps_first_occurrences_in_order() {
        assert_eq!(unique(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
        assert!(unique(Vec::<u8>::new()).is_empty());
    }
}
