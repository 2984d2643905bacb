//! Core of the task-execution DAL: the [`TaskExecutionDal`] handle (pool,
//! backend, configuration), [`DalError`], the models and status enums, the
//! diesel schema with its custom SQL types, the embedded migrations, and the
//! one mechanism ([`TaskExecutionDal::run`] / [`TaskExecutionDal::write`])
//! that runs a query, written once, on PostgreSQL or SQLite.
//!
//! Operations live in sibling crates that each add a trait to
//! [`TaskExecutionDal`]; the `task-execution-dal` facade re-exports them all.

mod any_connection;
pub mod batch;
pub mod bind;
pub mod config;
pub mod connection;
mod dal;
pub mod error;
pub mod migrations;
pub mod models;
pub mod pool;
pub mod schema;
pub mod sql_types;
pub mod transition;
pub mod validate;

pub use config::{Backend, DalConfig, Target};
pub use connection::{AnyConnection, MultiBackend, write_transaction};
pub use dal::TaskExecutionDal;
pub use error::DalError;
pub use models::*;
pub use transition::{new_id, now};

/// Re-exported so that operation crates and users build queries with the same diesel.
pub use diesel;
