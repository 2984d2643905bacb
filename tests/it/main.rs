//! The integration tests of `task-execution-dal`, one module per topic, built
//! as ONE test binary (one link against libpq, OpenSSL and SQLite instead of
//! one per topic). Every test runs on the backend `TE_TEST_BACKEND` selects.
//!
//! Shared helpers live in [`common`]; a helper used by a single topic stays in
//! that topic's module.

mod common;

mod cancel_is_final;
mod claiming;
mod claiming_processes;
mod coalesce;
mod conformance;
mod context;
mod crash_and_load;
mod crud;
mod engine_ops;
mod faults;
mod group_commit;
mod hostile_input;
mod pipeline_control;
mod pooler;
mod prepared;
mod queries;
mod query_counts;
mod resilience;
mod routing;
mod state;
mod state_machine;
mod wakeup;
