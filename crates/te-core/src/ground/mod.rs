//! The ground floor: errors, statuses, the clock and input checks. Nothing
//! here imports any other part of the crate.

pub mod clock;
pub(crate) mod driver_errors;
pub(crate) mod error;
pub(crate) mod status;
pub mod validate;
