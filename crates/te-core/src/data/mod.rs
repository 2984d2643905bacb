//! The data floor: the diesel schema, the custom SQL types and the binds
//! that map Rust values onto them, the multi-backend connection type, and
//! the models (rows, new-row builders and results). It builds on the ground
//! floor only.

pub(crate) mod any_connection;
pub mod bind;
pub mod event_data;
pub(crate) mod models;
pub mod schema;
pub mod sql_types;
