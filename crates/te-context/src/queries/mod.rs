//! The statements behind each [`crate::TaskContexts`] method, as plain
//! functions on one connection (so that tests can run them on one connection
//! and count the statements each issues).

mod batch;
mod contexts;
mod dependency;
mod reading;
mod task_context;
pub use batch::{dependency_metadata_with_contexts, task_contexts_batch};
pub use contexts::{create_context, delete_context, read_context, update_context};
pub use dependency::{dependency_context, initial_context};
pub use task_context::{complete_with_context, load_task_context, save_task_context};
