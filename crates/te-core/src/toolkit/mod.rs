//! The toolkit of the `te-*` operation crates: binding values to the custom
//! SQL types, batching, input checks, guarded transitions, the rows that several crates
//! write, statements of fixed text that each connection prepares once, and
//! the handle's calls that only they make: a write of one statement
//! ([`write_statement`]), coalesced calls ([`coalesce()`], [`run_coalesced`])
//! and the wait for a wake-up ([`wait_for_wakeup`]), each a function of the
//! handle, so that a user's [`TaskExecutionDal`](crate::TaskExecutionDal)
//! shows only its documented methods.
//!
//! **Not part of the public API.** This module exists so that the sibling
//! crates `te-crud`, `te-state`, `te-context`, `te-claiming`, `te-queries`
//! and `te-testkit` share one implementation of each fact; it is not covered
//! by semantic versioning and may change in any release. Program against the
//! items at the crate root and the operation traits instead.

pub mod batch;
pub mod cancel;
pub mod guard;
pub mod many;
pub mod pipeline_lock;
pub mod rows;
pub mod shared_transitions;
pub mod transition;

pub use crate::data::{bind, event_data};
pub use crate::ground::{clock, validate};
pub use crate::handle::coalesce;
pub use crate::sql::statement;

pub use crate::__event_key as event_key;
pub use crate::__insert_events_head as insert_events_head;
pub use crate::data::models::NewEvent;
pub use crate::ground::clock::{new_id, now};
pub use crate::handle::coalesce::{coalesce, run_coalesced};
pub use crate::handle::connection::write_transaction;
pub use crate::handle::dal::{write_statement, write_statement_without_wakeup};
pub use crate::handle::wakeup::wait_for_wakeup;
pub use crate::sql::statement::{Statement, statement};
pub use cancel::cancel;
pub use guard::{Holder, PipelineGuard};
pub use many::{
    Batch, Finished, Unclaimed, compare_and_set, distinct, finished, is_one_statement,
    transition_batch, unclaimed,
};
pub use pipeline_lock::{
    cancelled_pipeline_of, lock_pipeline_for_cancel, lock_pipelines_for_new_tasks,
    refuse_requeue_if_cancelled,
};
pub use rows::{
    find_row, insert_context, insert_tasks, record_event, record_events, require_row, store_context,
};
pub use shared_transitions::{READY_FROM, completion, promote, requeue_lost};
pub use transition::{Outcome, Transition};
