//! The catalogue of te-core's SQL written as text: every statement or
//! fragment that is not diesel's DSL lives here, each with its reason. The
//! floor builds on the ground and data floors only. (`cargo xtask tidy`
//! fails on SQL text anywhere else.)

pub(crate) mod events;
pub(crate) mod fragments;
pub(crate) mod guarded_update;
pub(crate) mod session;
pub mod statement;
