//! The statements behind each [`crate::TaskContexts`] method, as plain
//! functions on one connection (so that tests can run them on one connection
//! and count the statements each issues).

mod batch;
mod contexts;
mod dependency;
mod task_context;

use diesel::result::Error as DieselError;
use te_core::DalError;

pub use batch::{dependency_metadata_with_contexts, task_contexts_batch};
pub use contexts::{create_context, delete_context, read_context, update_context};
pub use dependency::{dependency_context, initial_context};
pub use task_context::{complete_with_context, load_task_context, save_task_context};

/// Maps the error of a query that reads contexts: a stored document that
/// cannot be decoded is [`DalError::InvalidData`] (the whole read fails, no
/// partial result), anything else as usual.
pub(crate) fn reading(what: &'static str) -> impl Fn(DieselError) -> DalError {
    move |err| match err {
        DieselError::DeserializationError(source) => DalError::InvalidData {
            what: what.to_owned(),
            source,
        },
        other => other.into(),
    }
}
